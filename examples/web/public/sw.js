// The app shell offline: on install, cache every file the build emitted (listed in
// precache.json, the wasm included). Pages come from the network when it answers (so a
// new build is picked up) and from the cache when it does not; hashed assets come from
// the cache first. Data never goes through here: the SDK keeps it in IndexedDB and
// talks to Supabase itself.
const CACHE = 'virgil-shell-v1';

// A download that stalls fails the install after this long instead of holding it until
// the browser gives up on the worker; the page then tries again (main.tsx).
const INSTALL_LIMIT_MS = 30000;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    let timer;
    const stalled = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('the app shell download stalled')), INSTALL_LIMIT_MS); });
    try {
      await Promise.race([stalled, (async () => {
        const listed = await fetch('/precache.json', { cache: 'no-store' });
        if (!listed.ok) throw new Error(`precache.json: HTTP ${listed.status}`);
        const cache = await caches.open(CACHE);
        await cache.addAll(await listed.json());
      })()]);
    } finally {
      clearTimeout(timer);
    }
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    if (event.request.mode === 'navigate') {
      try {
        const res = await fetch(event.request);
        if (res.ok) cache.put('/', res.clone());
        return res;
      } catch {
        return (await cache.match('/')) ?? Response.error();
      }
    }
    const hit = await cache.match(event.request);
    if (hit) return hit;
    const res = await fetch(event.request);
    if (res.ok) cache.put(event.request, res.clone());
    return res;
  })());
});
