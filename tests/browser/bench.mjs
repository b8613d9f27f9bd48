// Browser benchmarks of the npm package, measured side by side in one run in one engine
// (SUPASYNC_ENGINE: chromium, the default, or firefox with persistent profiles, so
// IndexedDB is on disk as in a user's browser; webkit, WebKitGTK's MiniBrowser through
// its WebDriver, whose automation sessions keep their storage apart and in the session).
// They print ratios and do not gate. Run: `node tests/browser/bench.mjs` (WebKit:
// `xvfb-run -a node …`) after `scripts/build-npm.sh` (and `cargo build -p
// supasync-devserver`).
//
//  1. one optimistic write (row + outbox entry + index keys, one IndexedDB transaction,
//     the writer Web Lock, and what the write sets off: status, other tabs) p50 ÷ a
//     raw IndexedDB put of the same row in its own transaction (phases before and after
//     ours, so neither is slowed by the other's leftovers);
//  2. pulling 10k rows into the replica ÷ fetching the same rows with supabase-js plus
//     raw puts of them in one transaction (the floor for "download and store", the
//     mean of one run before ours and one after, each after a 5 s pause);
//     Then, once 100k messages are on the server (3), a restore of them all into a new
//     replica ÷ the same rows fetched by keyset pages with supabase-js plus raw puts;
//  3. cold start: a page load to the first 50 rows of a 10k-message conversation
//     (`db.from('messages')…order('timestamp', desc).limit(50)`, read through the
//     declared index `messages(conversation_id, timestamp)`), with 10k and then 100k
//     rows in the store, timed by the page itself from the navigation's start; the
//     app's files from the HTTP cache (revalidated), and without it;
//  4. one tab's write → another tab's live query (BroadcastChannel), p50;
//  5. device A's write → device B's live query (`db.live` and `db.from(…).live`), p50,
//     next to supabase-js's own postgres_changes callback for the same writes in the
//     same page of B; then the same with the writes made by supabase-js in Node (so no
//     second Chromium competes with B for the 2 cores as it handles its own echo);
//  6. package size (wasm + JS, gzip -9).
// BENCH_PROFILE=1 (Chromium) also prints where the page's main thread spent the 100k
// restore (2b), by function, from a CDP CPU profile.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { appWithSupabaseJs, serve, startChatServer, schema, newUser, client, engine } from './harness.mjs';
import { device, closeDevices } from './bench-device.mjs';

// BENCH_ONLY=write,pull,live runs only those parts (the package size is always shown).
const only = process.env.BENCH_ONLY?.split(',');
const wanted = (part) => !only || only.includes(part);
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(2)} ms`;
const results = [];
const report = (what, measured) => {
  results.push([what, measured]);
  console.log(`${what}: ${measured}`);
};

const server = await startChatServer();
const dist = await appWithSupabaseJs(`
const cold = new URLSearchParams(location.search).get('cold');
if (cold) {
  const ready = performance.now();
  window.coldStart = (async () => {
    const db = await supasync.openReplica(JSON.parse(cold));
    const opened = performance.now();
    const { data, error } = await db.from('messages').select('*').eq('conversation_id', 'seed-conv').order('timestamp', { ascending: false }).limit(50);
    const now = performance.now();
    await db.close();
    if (error) throw new Error(error.message);
    return { ready, opened, now, n: data.length };
  })();
}
`);
const web = await serve(dist, { cache: true });
const opts = { url: server.url, anonKey: server.anonKey, schema };


async function page(context) {
  const p = await context.newPage();
  await p.goto(web.url);
  await p.waitForFunction(() => window.ready === true);
  return p;
}

const user = await newUser(server);
const creds = { email: user.email, password: user.password };

// 1. One optimistic write vs a raw IndexedDB put.
if (wanted('write')) {
  const ctx = await device();
  const p = await page(ctx);
  const r = await p.evaluate(async ([o, creds]) => {
    const db = await supasync.openReplica({ ...o, mode: 'manual', name: 'writes' });
    await db.auth.signIn(creds);
    const conv = await db.insert('conversations', { title: 'bench' });
    const raw = await new Promise((res) => {
      const q = indexedDB.open('raw-bench', 1);
      q.onupgradeneeded = () => { q.result.createObjectStore('rows', { keyPath: 'local_id' }); q.result.createObjectStore('outbox', { autoIncrement: true }); };
      q.onsuccess = () => res(q.result);
    });
    const put = (row) => new Promise((res, rej) => { const t = raw.transaction('rows', 'readwrite'); t.objectStore('rows').put(row); t.oncomplete = res; t.onabort = () => rej(t.error); });
    // Our design's floor: the row and its outbox entry in one transaction over two
    // stores, as JSON text (what the store keeps), with nothing of the SDK around it.
    const put2 = (row) => new Promise((res, rej) => {
      const t = raw.transaction(['rows', 'outbox'], 'readwrite');
      const d = JSON.stringify(row);
      t.objectStore('rows').put({ local_id: row.local_id, d });
      t.objectStore('outbox').add({ l: row.local_id, op: 'insert', d });
      t.oncomplete = res;
      t.onabort = () => rej(t.error);
    });
    let twoStoresMs = 0;
    // Phases, not interleaving: work our writes leave behind (status, other tabs) is
    // charged to our next write, not to the raw puts.
    const row = (i) => ({ conversation_id: conv.local_id, role: 'user', content: `message ${i} `.repeat(8) });
    // Each write is timed (p50), and each phase as a whole (the mean per write): Firefox
    // and WebKit give pages a clock of 1 ms steps, too coarse for one write.
    const ours = [], floor = [];
    let floorMs = 0, oursMs = 0;
    const rawPhase = async () => {
      const start = performance.now();
      for (let i = 0; i < 200; i++) {
        const t = performance.now();
        await put({ local_id: crypto.randomUUID(), ...row(i) });
        floor.push(performance.now() - t);
      }
      floorMs += performance.now() - start;
    };
    await rawPhase();
    for (let i = 0; i < 400; i++) {
      const t = performance.now();
      await db.insert('messages', row(i));
      ours.push(performance.now() - t);
      if (i === 49) oursMs = -performance.now();
    }
    oursMs += performance.now();
    // Updates and deletes of rows written above (each reads the row and its waiting
    // write first, under the writer Web Lock, then writes): means of 100.
    const mine = (await db.query('messages')).slice(0, 100).map((r) => r.local_id);
    let start = performance.now();
    for (const id of mine) await db.update('messages', id, { content: 'edited' });
    const updateMs = (performance.now() - start) / mine.length;
    start = performance.now();
    for (const id of mine) await db.delete('messages', id);
    const deleteMs = (performance.now() - start) / mine.length;
    await rawPhase();
    const start2 = performance.now();
    for (let i = 0; i < 200; i++) await put2({ local_id: crypto.randomUUID(), ...row(i) });
    twoStoresMs = (performance.now() - start2) / 200;
    // Our layout's floor: the records our store wrote for the last insert (row and
    // outbox entry, as they are), put again under fresh keys into a database with our
    // layout's stores and indexes, by plain IndexedDB calls: what the layout costs,
    // apart from the SDK's work around it.
    const idbReq = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
    const ourDb = await idbReq(indexedDB.open(db.databaseFor(db.auth.user().id)));
    const rt = ourDb.transaction(['rows', 'outbox'], 'readonly');
    const [rowRecs, outRecs] = await Promise.all([idbReq(rt.objectStore('rows').getAll()), idbReq(rt.objectStore('outbox').getAll())]);
    ourDb.close();
    const lastRow = rowRecs.filter((r) => r.t === 'messages').pop();
    const lastOut = outRecs.pop();
    const layout = await new Promise((res) => {
      const q = indexedDB.open('raw-layout', 1);
      q.onupgradeneeded = () => {
        const rows = q.result.createObjectStore('rows', { keyPath: ['t', 'l'] });
        rows.createIndex('by_server_id', ['t', 's']);
        rows.createIndex('by_value', 'ix', { multiEntry: true });
        const outbox = q.result.createObjectStore('outbox', { keyPath: 'k', autoIncrement: true });
        outbox.createIndex('by_row', ['t', 'l']);
        outbox.createIndex('rejected', 'r');
      };
      q.onsuccess = () => res(q.result);
    });
    const put3 = () => new Promise((res, rej) => {
      const l = crypto.randomUUID();
      const t = layout.transaction(['rows', 'outbox'], 'readwrite');
      t.objectStore('rows').put({ ...lastRow, l });
      const o = { ...lastOut, l };
      delete o.k;
      t.objectStore('outbox').add(o);
      t.oncomplete = res;
      t.onabort = () => rej(t.error);
    });
    const start3 = performance.now();
    for (let i = 0; i < 200; i++) await put3();
    const layoutMs = (performance.now() - start3) / 200;
    layout.close();
    await db.close();
    return { ours: ours.slice(50), floor, oursMean: oursMs / 350, floorMean: floorMs / 400, twoStoresMs, layoutMs, updateMs, deleteMs, recordBytes: JSON.stringify(lastRow).length + JSON.stringify(lastOut).length };
  }, [opts, creds]);
  const fine = p50(r.floor) > 0 && r.floor.filter((x) => !Number.isInteger(x)).length > r.floor.length / 2;
  const perWrite = `mean of 350 in a row ${(r.oursMean / r.floorMean).toFixed(2)}× (${ms(r.oursMean)} vs ${ms(r.floorMean)})`;
  report('one optimistic write ÷ raw IndexedDB put', fine ? `p50 ${(p50(r.ours) / p50(r.floor)).toFixed(2)}× (${ms(p50(r.ours))} vs ${ms(p50(r.floor))}); ${perWrite}` : perWrite);
  report('one update ÷ raw put; one delete ÷ raw put (means of 100)', `${(r.updateMs / r.floorMean).toFixed(2)}× (${ms(r.updateMs)}); ${(r.deleteMs / r.floorMean).toFixed(2)}× (${ms(r.deleteMs)})`);
  report('the row and an outbox entry in one raw transaction (our design\'s floor) ÷ raw put, mean of 200', `${(r.twoStoresMs / r.floorMean).toFixed(2)}× (${ms(r.twoStoresMs)}); ours ÷ that floor ${(r.oursMean / r.twoStoresMs).toFixed(2)}×`);
  report('our layout\'s floor: the records our store wrote, put raw into our stores and indexes, ÷ raw put, mean of 200', `${(r.layoutMs / r.floorMean).toFixed(2)}× (${ms(r.layoutMs)}; ${r.recordBytes} bytes of records as JSON); ours ÷ that floor ${(r.oursMean / r.layoutMs).toFixed(2)}×`);
  await ctx.close();
}

// Seed 10k messages on the server for the pull and cold-start measurements.
const other = await newUser(server);
const sb = client(server);
await sb.auth.signInWithPassword({ email: other.email, password: other.password });
if (wanted('pull')) {
  const { data: convRow } = await sb.from('conversations').insert({ title: 'seeded', local_id: 'seed-conv' }).select().single();
  for (let b = 0; b < 10; b++) {
    // A second apart, as a conversation's messages are (one insert would give them all
    // the same `now()`).
    const rows = Array.from({ length: 1000 }, (_, i) => ({ conversation_id: convRow.id, role: 'user', content: `seeded message ${b * 1000 + i} `.repeat(6), local_id: `seed-${b}-${i}`,
      timestamp: new Date(Date.UTC(2026, 0, 1) + (b * 1000 + i) * 1000).toISOString() }));
    const { error } = await sb.from('messages').insert(rows);
    if (error) throw error;
  }
}

// 2 and 3. Pull 10k rows; then a cold start on them.
if (wanted('pull')) {
  const ctx = await device();
  const p = await page(ctx);
  const r = await p.evaluate(async ([o, creds]) => {
    const sbc = createClient(o.url, o.anonKey, { auth: { persistSession: false } });
    await sbc.auth.signInWithPassword(creds);
    // The floor, before and after ours (the mean of both), each into a new database,
    // with a pause before each measurement: right after 10k rows are written the
    // browser compacts its on-disk store for a while, which slows whatever runs next
    // on this 2-core machine.
    const settle = () => new Promise((r) => setTimeout(r, 5000));
    const floor = async (name) => {
      let t = performance.now();
      const fetched = [];
      for (let from = 0; ; from += 1000) {
        const { data, error } = await sbc.from('messages').select('*').order('id').range(from, from + 999);
        if (error) throw error;
        fetched.push(...data);
        if (data.length < 1000) break;
      }
      const fetchMs = performance.now() - t;
      const raw = await new Promise((res) => { const q = indexedDB.open(name, 1); q.onupgradeneeded = () => q.result.createObjectStore('rows', { keyPath: 'id' }); q.onsuccess = () => res(q.result); });
      t = performance.now();
      await new Promise((res, rej) => { const tx = raw.transaction('rows', 'readwrite'); const s = tx.objectStore('rows'); for (const row of fetched) s.put(row); tx.oncomplete = res; tx.onabort = () => rej(tx.error); });
      raw.close();
      return { fetchMs, putMs: performance.now() - t, fetched: fetched.length };
    };
    const before = await floor('raw-pull');
    await settle();
    const db = await supasync.openReplica({ ...o, mode: 'manual', name: 'pull' });
    await db.auth.signIn(creds);
    const t = performance.now();
    await db.sync({ timeoutMs: 120000 });
    const pullMs = performance.now() - t;
    const n = (await db.query('messages')).length;
    await db.close();
    await settle();
    const after = await floor('raw-pull-2');
    const fetchMs = (before.fetchMs + after.fetchMs) / 2;
    const putMs = (before.putMs + after.putMs) / 2;
    const fetched = { length: Math.min(before.fetched, after.fetched) };
    return { fetchMs, putMs, pullMs, n, fetched: fetched.length };
  }, [opts, { email: other.email, password: other.password }]);
  if (r.n !== 10000 || r.fetched !== 10000) throw new Error(`expected 10k rows, got ${r.n} / ${r.fetched}`);
  report('pulling 10k rows into the replica ÷ supabase-js fetching them + raw puts in one transaction',
    `${(r.pullMs / (r.fetchMs + r.putMs)).toFixed(2)}× (${ms(r.pullMs)} vs ${ms(r.fetchMs)} + ${ms(r.putMs)})`);

  // Right after writing many rows the browser compacts its on-disk store for a while
  // (LevelDB, in the browser's process), which slows everything on this 2-core machine,
  // the page's own loading included: each size is measured then, and again once that
  // work has settled (20 s), as a user's next visit finds it.
  //
  // The page opens the replica and reads as its module loads, as an app does, and
  // keeps the times (from the navigation's start) in `window.coldStart`: nothing of
  // Playwright's own round trips is in them. The app's files come from the browser's
  // HTTP cache, checked again with the server (ETag) as a static host serves them; the
  // same with the cache off (a first visit's downloads) is shown beside.
  // Only Chromium can turn the HTTP cache off for a page (CDP); elsewhere every load is
  // a cached one.
  const cdp = engine === 'chromium' ? await ctx.newCDPSession(p) : null;
  const coldUrl = `${web.url}?cold=${encodeURIComponent(JSON.stringify({ ...opts, mode: 'manual', name: 'pull' }))}`;
  const coldStart = async (label) => {
    await p.goto(coldUrl);
    await p.evaluate(() => window.coldStart);
    // Cached and uncached loads alternate, so that work the browser does in the
    // background after a big pull (LevelDB compaction) weighs on both alike.
    const cached = [], uncached = [];
    for (let i = 0; i < 14; i++) {
      const withCache = i % 2 === 0;
      if (!cdp && !withCache) continue;
      await cdp?.send('Network.setCacheDisabled', { cacheDisabled: !withCache });
      await p.reload();
      const at = await p.evaluate(() => window.coldStart);
      if (at.n !== 50) throw new Error(`cold start query returned ${at.n} rows`);
      (withCache ? cached : uncached).push(at);
      console.log(`  cold start ${i >> 1} (${label}, ${withCache ? 'cached' : 'no cache'}): module ready ${at.ready.toFixed(0)} ms, replica open ${at.opened.toFixed(0)} ms, first rows ${at.now.toFixed(0)} ms`);
    }
    await cdp?.send('Network.setCacheDisabled', { cacheDisabled: false });
    await p.goto(web.url);
    await p.waitForFunction(() => window.ready === true);
    const part = (xs, k) => p50(xs.map((x) => x[k]));
    const noCache = cdp ? `; without the HTTP cache ${ms(part(uncached, 'now'))}` : '';
    return `${ms(part(cached, 'now'))} (module ready ${part(cached, 'ready').toFixed(0)}, replica open ${part(cached, 'opened').toFixed(0)})${noCache}`;
  };
  const coldLabel = (rows) => `cold start: page load → first 50 rows of a 10k-message conversation, ${rows} in the store, p50 of 7`;
  const busy10k = await coldStart('10k rows, right after the pull');
  await new Promise((r) => setTimeout(r, 20000));
  report(coldLabel('10k rows'), `${await coldStart('10k rows')}; right after the pull: ${busy10k}`);
  // 90k more messages in 90 other conversations, pulled into the same replica.
  for (let c = 0; c < 90; c++) {
    const { data: conv, error: ce } = await sb.from('conversations').insert({ title: `filler ${c}`, local_id: `filler-${c}` }).select().single();
    if (ce) throw ce;
    const rows = Array.from({ length: 1000 }, (_, i) => ({ conversation_id: conv.id, role: 'user', content: `filler message ${c}-${i} `.repeat(6), local_id: `filler-${c}-${i}`,
      timestamp: new Date(Date.UTC(2026, 0, 1) + (c * 1000 + i) * 1000).toISOString() }));
    const { error } = await sb.from('messages').insert(rows);
    if (error) throw error;
  }
  const held = await p.evaluate(async ([o, creds]) => {
    const db = await supasync.openReplica({ ...o, mode: 'manual', name: 'pull' });
    await db.sync({ timeoutMs: 600000 });
    const { count } = await db.from('messages').select('*', { count: 'exact', head: true });
    await db.close();
    return count;
  }, [opts, { email: other.email, password: other.password }]);
  if (held !== 100000) throw new Error(`expected 100k messages in the replica, got ${held}`);
  const busy = await coldStart('100k rows, right after the pull');
  await new Promise((r) => setTimeout(r, 20000));
  report(coldLabel('100k rows'), `${await coldStart('100k rows')}; right after pulling the 90k: ${busy}`);

  // 2b. A restore of those 100k messages (and their 91 conversations) into a new
  // replica ÷ its floor: the same rows fetched the way the restore fetches them (keyset
  // pages of 1,000 in key order, supabase-js) and put raw into a bare IndexedDB store
  // in one transaction. The floor runs before ours and after (the mean of both), each
  // into a new database after a pause, as in 2.
  // BENCH_PROFILE=1 (Chromium): the page's main thread sampled through the restore
  // (CDP Profiler), its self time by function printed, to see where the page's time
  // goes and how much of it the page waits on IndexedDB (idle).
  const profiling = process.env.BENCH_PROFILE && engine === 'chromium';
  if (profiling) await profileHooks(ctx, p);
  const restore = await p.evaluate(async ([o, creds]) => {
    const sbc = createClient(o.url, o.anonKey, { auth: { persistSession: false } });
    await sbc.auth.signInWithPassword(creds);
    const settle = () => new Promise((r) => setTimeout(r, 10000));
    const floor = async (name) => {
      let t = performance.now();
      const fetched = [];
      for (const table of ['conversations', 'messages']) {
        let last = null;
        for (;;) {
          let q = sbc.from(table).select('*').order('id').limit(1000);
          if (last) q = q.gt('id', last);
          const { data, error } = await q;
          if (error) throw error;
          fetched.push(...data);
          if (data.length < 1000) break;
          last = data[data.length - 1].id;
        }
      }
      const fetchMs = performance.now() - t;
      const raw = await new Promise((res) => { const q = indexedDB.open(name, 1); q.onupgradeneeded = () => q.result.createObjectStore('rows', { keyPath: 'id' }); q.onsuccess = () => res(q.result); });
      t = performance.now();
      await new Promise((res, rej) => { const tx = raw.transaction('rows', 'readwrite'); const s = tx.objectStore('rows'); for (const row of fetched) s.put(row); tx.oncomplete = res; tx.onabort = () => rej(tx.error); });
      raw.close();
      return { fetchMs, putMs: performance.now() - t, fetched: fetched.length };
    };
    await settle();
    const before = await floor('raw-restore');
    await settle();
    const db = await supasync.openReplica({ ...o, mode: 'manual', name: 'restore-100k' });
    await db.auth.signIn(creds);
    await window.benchProfile?.('start');
    const t = performance.now();
    await db.sync({ timeoutMs: 600000 });
    const restoreMs = performance.now() - t;
    await window.benchProfile?.('stop');
    const { count } = await db.from('messages').select('*', { count: 'exact', head: true });
    await db.close();
    await settle();
    const after = await floor('raw-restore-2');
    return { restoreMs, count, before, after };
  }, [opts, { email: other.email, password: other.password }]);
  if (restore.count !== 100000 || restore.before.fetched !== 100091 || restore.after.fetched !== 100091) {
    throw new Error(`expected 100k messages restored and 100,091 rows fetched, got ${restore.count}, ${restore.before.fetched}, ${restore.after.fetched}`);
  }
  const restoreFloor = (restore.before.fetchMs + restore.before.putMs + restore.after.fetchMs + restore.after.putMs) / 2;
  report('restoring 100k messages into a new replica ÷ supabase-js fetching them by keyset + raw puts in one transaction',
    `${(restore.restoreMs / restoreFloor).toFixed(2)}× (${ms(restore.restoreMs)} vs ${ms(restoreFloor)}: fetch ${ms(restore.before.fetchMs)}, ${ms(restore.after.fetchMs)}; puts ${ms(restore.before.putMs)}, ${ms(restore.after.putMs)})`);
  await ctx.close();
}

/** `window.benchProfile('start' | 'stop')` in page `p`: a CPU profile of its main
 *  thread over CDP, printed on stop as the top self times by function. */
async function profileHooks(ctx, p) {
  const cdp = await ctx.newCDPSession(p);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
  await p.exposeFunction('benchProfile', async (what) => {
    if (what === 'start') return void await cdp.send('Profiler.start');
    const { profile } = await cdp.send('Profiler.stop');
    const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    profile.samples.forEach((id, i) => {
      const f = byNode.get(id).callFrame;
      const name = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').pop() + ':' + f.lineNumber : ''}`.trim();
      self.set(name, (self.get(name) || 0) + (profile.timeDeltas[i] || 0) / 1000);
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`restore profile: ${total.toFixed(0)} ms sampled; self time by function:`);
    for (const [name, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${t.toFixed(0).padStart(7)} ms ${(100 * t / total).toFixed(1).padStart(5)}%  ${name}`);
  });
}

// 4. Tab → tab, and 5. device → device next to supabase-js.
if (wanted('live')) {
  const ctxA = await device();
  const ctxB = await device();
  const a = await page(ctxA);
  const a2 = await page(ctxA);
  const b = await page(ctxB);
  const conv = await a.evaluate(async ([o, creds]) => {
    window.db = await supasync.openReplica(o);
    await db.auth.signIn(creds);
    const c = await db.insert('conversations', { title: 'latency' });
    await db.sync({ timeoutMs: 20000 });
    return c.local_id;
  }, [opts, creds]);
  await a2.evaluate(async ([o, conv]) => {
    window.db = await supasync.openReplica(o);
    window.arrivals = {};
    db.live('messages', { where: { conversation_id: conv } }, (rows) => {
      const now = performance.timeOrigin + performance.now();
      for (const r of rows) arrivals[r.row.content] ??= now;
    });
  }, [opts, conv]);
  await b.evaluate(async ([o, creds, conv, uid]) => {
    window.db = await supasync.openReplica(o);
    await db.auth.signIn(creds);
    await db.sync({ timeoutMs: 20000 });
    window.ours = {};
    window.built = {};
    window.theirs = {};
    db.live('messages', { where: { conversation_id: conv } }, (rows) => {
      const now = performance.timeOrigin + performance.now();
      for (const r of rows) ours[r.row.content] ??= now;
    });
    db.from('messages').select('*').eq('conversation_id', conv).live(({ data }) => {
      const now = performance.timeOrigin + performance.now();
      for (const r of data ?? []) built[r.content] ??= now;
    });
    const sbc = createClient(o.url, o.anonKey, { auth: { persistSession: false } });
    await sbc.auth.signInWithPassword(creds);
    await new Promise((res) => sbc.channel('bench').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'messages', filter: `user_id=eq.${uid}` },
      (m) => { theirs[m.new.content] ??= performance.timeOrigin + performance.now(); }).subscribe((s) => s === 'SUBSCRIBED' && res()));
    while (db.status().phase !== 'live') await new Promise((r) => setTimeout(r, 20));
  }, [opts, creds, conv, user.user.id]);
  const sent = {};
  for (let i = 0; i < 60; i++) {
    const content = `latency ${i}`;
    sent[content] = await a.evaluate(async ([conv, content]) => {
      const t = performance.timeOrigin + performance.now();
      await db.insert('messages', { conversation_id: conv, role: 'user', content });
      return t;
    }, [conv, content]);
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 250));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const tabs = await a2.evaluate(() => window.arrivals);
  const { ours, built, theirs } = await b.evaluate(() => ({ ours: window.ours, built: window.built, theirs: window.theirs }));
  const keys = Object.keys(sent);
  const tabLat = keys.filter((k) => tabs[k]).map((k) => tabs[k] - sent[k]);
  const both = keys.filter((k) => ours[k] && theirs[k]);
  report('one tab\'s write → another tab\'s live query, p50', `${ms(p50(tabLat))} (${tabLat.length} of ${keys.length} writes)`);
  report('device A\'s write → device B\'s live query, p50', ms(p50(both.map((k) => ours[k] - sent[k]))));
  report('supabase-js postgres_changes callback for the same writes in B, p50', ms(p50(both.map((k) => theirs[k] - sent[k]))));
  report('our extra over supabase-js\'s callback, p50', `${ms(p50(both.map((k) => ours[k] - theirs[k])))} (${both.length} writes)`);
  const viaFrom = keys.filter((k) => built[k] && theirs[k]);
  report('our extra over supabase-js\'s callback, db.from(…).live, p50', `${ms(p50(viaFrom.map((k) => built[k] - theirs[k])))} (${viaFrom.length} writes)`);
  // The same writes made by a supabase-js client in Node, with device A closed: another
  // device that is not a second Chromium on this 2-core machine, busy with its own
  // echo of each write at the very moment B handles it.
  await ctxA.close();
  const sbw = client(server);
  await sbw.auth.signInWithPassword(creds);
  const { data: convRow, error: convErr } = await sbw.from('conversations').select('id').eq('local_id', conv).single();
  if (convErr) throw convErr;
  const nodeKeys = [];
  for (let i = 0; i < 60; i++) {
    const content = `from node ${i}`;
    nodeKeys.push(content);
    const { error } = await sbw.from('messages').insert({ conversation_id: convRow.id, role: 'user', content, local_id: `bench-node-${i}` });
    if (error) throw error;
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 250));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const later = await b.evaluate(() => ({ ours: window.ours, built: window.built, theirs: window.theirs }));
  const fromNode = nodeKeys.filter((k) => later.ours[k] && later.theirs[k]);
  report('our extra over supabase-js\'s callback, writes from Node (no second browser busy), p50', `${ms(p50(fromNode.map((k) => later.ours[k] - later.theirs[k])))} (db.live), ${ms(p50(fromNode.filter((k) => later.built[k]).map((k) => later.built[k] - later.theirs[k])))} (db.from(…).live) (${fromNode.length} writes)`);
  await ctxB.close();
}

// 6. Package size.
{
  const pkg = path.join(dist, '..', 'node_modules/supasync/dist');
  const files = [];
  const walk = (d) => { for (const f of readdirSync(d)) { const p = path.join(d, f); if (statSync(p).isDirectory()) walk(p); else files.push(p); } };
  walk(pkg);
  const gz = (f) => gzipSync(readFileSync(f), { level: 9 }).length;
  const wasm = files.filter((f) => f.endsWith('.wasm')).reduce((s, f) => s + gz(f), 0);
  const js = gzipSync(Buffer.concat(files.filter((f) => f.endsWith('.js')).map((f) => readFileSync(f))), { level: 9 }).length;
  report('package size, gzip -9: wasm + JS', `${((wasm + js) / 1024).toFixed(0)} KB (wasm ${(wasm / 1024).toFixed(0)} KB, JS ${(js / 1024).toFixed(0)} KB)`);
}

web.close();
await server.stop();
await closeDevices();
console.log(`\n| what (${engine}) | measured |\n|---|---|`);
for (const [w, m] of results) console.log(`| ${w} | ${m} |`);
process.exit(0);
