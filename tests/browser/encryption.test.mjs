// Encryption at rest in the browser: a replica opened with `encryptionKey` keeps no
// message, email or token readable in IndexedDB (read here directly, as a copied
// browser profile would be read); a wrong key is refused with kind `key` and changes
// nothing; a plaintext replica is encrypted in place with its pending writes, which
// then sync once; a second tab opened without the key gets it from the open one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, openPage, options, serverRows, newUser } from './harness.mjs';
import { startProxy } from './proxy.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

const SECRET = 'the launch code is 0000';

/** Open the replica in a new page, with the key made of `keyByte` (none if null),
 *  signing `user` in if the device has no user yet; `url`: the server's (a proxy's);
 *  `first(page)` runs before the replica opens. */
async function open(context, user, keyByte, { url = env.server.url, first = async () => undefined } = {}) {
  const page = await openPage(context, env.web.url);
  const firstly = await first(page);
  const failed = await page.evaluate(async ([opts, user, keyByte]) => {
    if (keyByte !== null) opts.encryptionKey = new Uint8Array(32).fill(keyByte);
    try {
      window.db = await window.supasync.openReplica(opts);
      if (!window.db.auth.user()) await window.db.auth.signIn(user);
      return null;
    } catch (e) {
      return { kind: e.kind, message: e.message };
    }
  }, [{ ...options(env.server), url }, { email: user.email, password: user.password }, keyByte]);
  return { page, failed, firstly };
}

/** Every value and key of this origin's supasync databases, read directly, as text
 *  (bytes as Latin-1). */
function rawText(page) {
  return page.evaluate(async () => {
    const parts = [];
    const walk = (v) => {
      if (typeof v === 'string') parts.push(v);
      else if (v instanceof Uint8Array || v instanceof ArrayBuffer) parts.push(new TextDecoder('latin1').decode(v));
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    for (const { name } of await indexedDB.databases()) {
      if (!name.startsWith('supasync:')) continue;
      const db = await new Promise((ok, no) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
      for (const store of db.objectStoreNames) {
        const t = db.transaction(store);
        const reqs = [t.objectStore(store).getAll(), t.objectStore(store).getAllKeys()];
        walk(await Promise.all(reqs.map((r) => new Promise((ok) => { r.onsuccess = () => ok(r.result); }))));
      }
      db.close();
    }
    return parts.join('\n');
  });
}

/** What must not be readable: the message, the user's email, a JWT (the session's
 *  access token: three base64url parts, the first a JSON object's). */
function readable(text, user) {
  const found = [SECRET, user.email].filter((s) => text.includes(s));
  if (/eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/.test(text)) found.push('a JWT');
  return found;
}

async function writeSecret(page) {
  await page.evaluate(async (secret) => {
    const c = await db.insert('conversations', { title: 'Plans' });
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: secret });
  }, SECRET);
}

const contents = (page) => page.evaluate(async () => (await db.query('messages')).map((r) => r.row.content));

test('IndexedDB read raw shows no message, email or token; the same page with the key reads everything and syncs', async () => {
  // Without a key, the raw reader does find all three: what the test looks for is there.
  const plainUser = await newUser(env.server);
  const plain = await env.browser.newContext();
  const p = await open(plain, plainUser, null);
  assert.equal(p.failed, null);
  await writeSecret(p.page);
  assert.deepEqual(readable(await rawText(p.page), plainUser), [SECRET, plainUser.email, 'a JWT']);
  await plain.close();

  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const { page, failed } = await open(context, user, 7);
  assert.equal(failed, null);
  await writeSecret(page);
  await page.evaluate(() => db.sync({ timeoutMs: 20000 }));
  assert.deepEqual(readable(await rawText(page), user), [], 'nothing readable at rest');
  assert.equal((await serverRows(env.server, user, 'messages'))[0].content, SECRET, 'the server has it, in plaintext for RLS and queries');
  await page.close();
  // A reload with the key: still signed in, everything there.
  const again = await open(context, user, 7);
  assert.equal(again.failed, null);
  assert.deepEqual(await contents(again.page), [SECRET]);
  assert.equal(await again.page.evaluate(() => db.auth.user()?.email), user.email);
  await context.close();
});

test('a wrong key is refused with kind `key` and changes nothing; the right key opens it again', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const first = await open(context, user, 7);
  await writeSecret(first.page);
  await first.page.close();
  // What IndexedDB holds just before the wrong key's open, and just after.
  const wrong = await open(context, user, 8, { first: rawText });
  assert.equal(wrong.failed?.kind, 'key', JSON.stringify(wrong.failed));
  assert.match(wrong.failed.message, /does not open/);
  assert.equal(await rawText(wrong.page), wrong.firstly, 'the refused open changed nothing');
  await wrong.page.close();
  const right = await open(context, user, 7);
  assert.equal(right.failed, null);
  assert.deepEqual(await contents(right.page), [SECRET]);
  await context.close();
});

test('a plaintext replica with writes made offline is encrypted in place; they then reach the server once', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  // The pages reach the server through a proxy that refuses them while "offline".
  const proxy = await startProxy(env.server.url);
  const plain = await open(context, user, null, { url: proxy.url });
  assert.equal(plain.failed, null);
  proxy.set(() => 'refuse');
  proxy.cut();
  await writeSecret(plain.page);
  assert.equal(await plain.page.evaluate(() => db.status().pending), 2);
  // The same page closes the plaintext replica and opens it with a key, as an app
  // that turns encryption on does at its next start. (Not a new page: WebKit's
  // driver keeps a context's last window, loading about:blank into it, and the old
  // page may linger in the back-forward cache holding the writer Web Lock that
  // encrypting in place waits for.)
  const failed = await plain.page.evaluate(async (opts) => {
    await db.close();
    try {
      window.db = await window.supasync.openReplica({ ...opts, encryptionKey: new Uint8Array(32).fill(7) });
      return null;
    } catch (e) {
      return { kind: e.kind, message: e.message };
    }
  }, { ...options(env.server), url: proxy.url });
  const enc = { page: plain.page, failed };
  assert.equal(enc.failed, null);
  assert.deepEqual(readable(await rawText(enc.page), user), [], 'nothing readable after the encryption in place');
  assert.equal(await enc.page.evaluate(() => db.status().pending), 2, 'the two writes still pending');
  proxy.set(null);
  await enc.page.evaluate(() => db.sync({ timeoutMs: 20000 }));
  const rows = await serverRows(env.server, user, 'messages');
  assert.deepEqual(rows.map((r) => r.content), [SECRET], 'the offline write reached the server exactly once');
  assert.equal((await serverRows(env.server, user, 'conversations')).length, 1);
  await context.close();
  await proxy.close();
});

test('a second tab opened without the key gets it from the tab that has it', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const one = await open(context, user, 7);
  await writeSecret(one.page);
  const two = await open(context, user, null);
  assert.equal(two.failed, null, JSON.stringify(two.failed));
  assert.deepEqual(await contents(two.page), [SECRET]);
  await two.page.evaluate(() => db.insert('conversations', { title: 'from the second tab' }));
  assert.deepEqual(readable(await rawText(two.page), user), []);
  await one.page.close();
  await two.page.close();
  // With no tab open to ask, a tab without the key is refused.
  const three = await open(context, user, null);
  assert.equal(three.failed?.kind, 'key', JSON.stringify(three.failed));
  assert.match(three.failed.message, /no other open tab/);
  await context.close();
});

test('two users on one browser: each user\'s replica is sealed with keys of its own, and each reads back its own', async () => {
  const [ada, bob] = [await newUser(env.server), await newUser(env.server)];
  const context = await env.browser.newContext();
  const { page, failed } = await open(context, ada, 7);
  assert.equal(failed, null);
  await writeSecret(page);
  const dbs = await page.evaluate(async (bob) => {
    const adaDb = db.databaseFor(db.auth.user().id);
    await db.auth.signOut();
    await db.auth.signIn(bob);
    await db.insert('conversations', { title: 'bob\'s secret plans' });
    return [adaDb, db.databaseFor(db.auth.user().id)];
  }, { email: bob.email, password: bob.password });
  assert.notEqual(dbs[0], dbs[1], 'a database per user');
  const text = await rawText(page);
  assert.deepEqual(readable(text, ada), []);
  assert.deepEqual(readable(text, bob), []);
  assert.ok(!text.includes('bob\'s secret plans'));
  // Both databases hold a key check: both are encrypted (each with its own user's
  // keys: crates/sdk-wasm/tests/idb_store/encrypted.rs refuses one user's key on the
  // other's database).
  const checks = await page.evaluate(async (names) => Promise.all(names.map((name) => new Promise((ok) => {
    const r = indexedDB.open(name);
    r.onsuccess = () => {
      const g = r.result.transaction('meta').objectStore('meta').get('supasync.cipher');
      // A sealed value is bytes (a plaintext one would be text).
      g.onsuccess = () => { r.result.close(); ok(g.result instanceof Uint8Array && g.result.length > 32); };
    };
  }))), dbs);
  assert.deepEqual(checks, [true, true], 'both databases are encrypted');
  const back = await page.evaluate(async (ada) => {
    await db.auth.signOut();
    await db.auth.signIn(ada);
    return (await db.query('messages')).map((r) => r.row.content);
  }, { email: ada.email, password: ada.password });
  assert.deepEqual(back, [SECRET], 'the first user\'s replica opens again with their keys');
  await context.close();
});
