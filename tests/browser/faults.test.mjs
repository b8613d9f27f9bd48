// What users of other sync SDKs lose data to, each reproduced in a real browser: a page
// reloaded in the middle of a push, a reload right after insert resolved, a queue that
// must drain on its own after a failure, a token that expired while offline, and the
// browser's storage quota running out. The page reaches the server through a fault
// proxy the test runs (proxy.mjs), so each fault is the same in every engine.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setup, openPage, options, until, serverRows, newUser, client, contextWithQuota, engine } from './harness.mjs';
import { startProxy } from './proxy.mjs';

let env;
let proxy;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });
beforeEach(async () => { proxy = await startProxy(env.server.url); });
afterEach(async () => { await proxy.close(); });

/** `openReplica` options that reach the server through this test's proxy. */
const proxied = () => options(env.server, { url: proxy.url });

async function signedIn(context, user) {
  const page = await openPage(context, env.web.url);
  await page.evaluate(async ([opts, user]) => {
    window.db = await window.supasync.openReplica(opts);
    if (!window.db.auth.user()) await window.db.auth.signIn(user);
  }, [proxied(), { email: user.email, password: user.password }]);
  return page;
}

async function reopen(page) {
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  await page.evaluate(async (opts) => { window.db = await window.supasync.openReplica(opts); }, proxied());
}

/** A request of the REST API (`/rest/v1/…`), optionally of one table and method. */
const rest = (r, table = '', method = null) => r.url.startsWith(`/rest/v1/${table}`) && (!method || r.method === method);

test('a page reloaded while its push is in flight loses and duplicates nothing', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  // The server applies the insert, but its answer never reaches the page.
  proxy.set((r) => (rest(r, 'messages', 'POST') ? 'drop-answer' : 'pass'));
  const ids = await page.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'reload' });
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push((await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: `m${i}` })).local_id);
    db.syncNow().catch(() => {});
    return ids;
  });
  await until(() => proxy.requests((r) => rest(r, 'messages', 'POST')).length > 0, 'the push of the messages');
  await until(async () => (await serverRows(env.server, user, 'messages')).length > 0, 'the server applied it');
  proxy.set(null);
  await reopen(page);
  const settled = await page.evaluate(() => db.sync({ timeoutMs: 30000 }));
  assert.equal(settled.status.pending, 0);
  const server = await serverRows(env.server, user, 'messages');
  assert.equal(server.length, 20, 'each message once on the server');
  assert.deepEqual(new Set(server.map((r) => r.local_id)), new Set(ids));
  const local = await page.evaluate(() => db.query('messages'));
  assert.equal(local.length, 20, 'and once here');
  await context.close();
});

test('a reload right after insert resolved keeps the write and pushes it once', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  // The API cannot be reached, so nothing is pushed before the reload.
  proxy.set((r) => (rest(r) ? 'refuse' : 'pass'));
  const id = await page.evaluate(async () => (await db.insert('conversations', { title: 'kept' })).local_id);
  await reopen(page);
  assert.equal((await serverRows(env.server, user, 'conversations')).length, 0, 'not pushed before the reload');
  proxy.set(null);
  const row = await page.evaluate((id) => db.get('conversations', id), id);
  assert.equal(row?.row.title, 'kept', 'the write survived the reload');
  await page.evaluate(() => db.sync({ timeoutMs: 30000 }));
  assert.equal((await serverRows(env.server, user, 'conversations')).length, 1);
  await context.close();
});

test('status() counts every write whose promise resolved, and describes the reopened replica once openReplica resolves', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  // Manual mode and offline: nothing is pushed, so every write waits and writes to a
  // waiting row merge into it (the counts below are exact).
  await page.evaluate(() => db.setMode('manual'));
  proxy.set((r) => (rest(r) ? 'refuse' : 'pass'));
  const counts = await page.evaluate(async () => {
    const seen = [];
    const c = await db.insert('conversations', { title: 'counted' });
    seen.push(db.status().pending);
    // Five at once: each resolved promise is counted by the time it resolves.
    const rows = await Promise.all([0, 1, 2, 3, 4].map((i) => db.insert('messages', { conversation_id: c.local_id, role: 'user', content: `m${i}` })));
    seen.push(db.status().pending);
    for (let i = 5; i < 19; i++) {
      await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: `m${i}` });
      seen.push(db.status().pending);
    }
    // An update of a waiting insert merges into it; a delete of one cancels it.
    await db.update('messages', rows[0].local_id, { content: 'edited' });
    seen.push(db.status().pending);
    await db.delete('messages', rows[1].local_id);
    seen.push(db.status().pending);
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'last' });
    seen.push(db.status().pending);
    return seen;
  });
  assert.deepEqual(counts, [1, 6, ...Array.from({ length: 14 }, (_, i) => 7 + i), 20, 19, 20]);
  await reopen(page);
  const st = await page.evaluate(() => db.status());
  assert.equal(st.pending, 20, 'the 20 waiting writes, as soon as openReplica resolved');
  assert.equal(st.leader, true, 'the only tab leads');
  assert.notEqual(st.phase, 'paused', 'live sync runs for the signed-in user');
  proxy.set(null);
  const settled = await page.evaluate(() => db.sync({ timeoutMs: 30000 }));
  assert.equal(settled.status.pending, 0);
  assert.equal((await serverRows(env.server, user, 'messages')).length, 19);
  await context.close();
});

test('update, call and delete are counted in status() as their promises resolve, as the store counts them', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  await page.evaluate(() => db.setMode('manual'));
  const synced = await page.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'synced' });
    const m = await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'synced' });
    await db.sync({ timeoutMs: 30000 });
    return [c.local_id, m.local_id];
  });
  proxy.set((r) => (rest(r) ? 'refuse' : 'pass'));
  const seen = await page.evaluate(async ([cid, mid]) => {
    const seen = [];
    const note = (what) => seen.push([what, db.status().pending, db.status().rejected]);
    note('start');
    await db.update('messages', mid, { content: 'edited once' });
    note('update of a synced row: one more');
    await db.update('messages', mid, { content: 'edited twice' });
    note('a second update merges');
    await db.call('conversations', cid, 'share_conversation', { args: { email: 'nobody@example.com' } });
    note('a call: one more');
    await db.delete('messages', mid);
    note('a delete after an update replaces it');
    const b = await db.insert('conversations', { title: 'never sent' });
    note('insert');
    await db.insert('messages', { conversation_id: b.local_id, role: 'user', content: 'child' });
    const child = await db.insert('messages', { conversation_id: b.local_id, role: 'user', content: 'child 2' });
    note('two children');
    await db.delete('messages', child.local_id);
    note('a delete of an unsent insert cancels it');
    await db.delete('conversations', b.local_id);
    note('the unsent parent deleted: its child is rejected with it');
    return seen;
  }, synced);
  assert.deepEqual(seen, [
    ['start', 0, 0],
    ['update of a synced row: one more', 1, 0],
    ['a second update merges', 1, 0],
    ['a call: one more', 2, 0],
    ['a delete after an update replaces it', 2, 0],
    ['insert', 3, 0],
    ['two children', 5, 0],
    ['a delete of an unsent insert cancels it', 4, 0],
    ['the unsent parent deleted: its child is rejected with it', 2, 1],
  ]);
  // The counts shown are the store's.
  await reopen(page);
  const st = await page.evaluate(() => db.status());
  assert.deepEqual([st.pending, st.rejected], [2, 1]);
  await context.close();
});

test('after the server failed, the queue drains on its own timer, with no new write to wake it', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  let failures = 0;
  proxy.set((r) => {
    if (rest(r, 'conversations', 'POST') && failures < 2) {
      failures++;
      return { status: 503, body: 'unavailable' };
    }
    return 'pass';
  });
  await page.evaluate(() => db.insert('conversations', { title: 'retried by the timer' }));
  // The page learns it went through when the answer comes, after the server stored it:
  // wait for what the page shows, then check the server.
  await until(async () => (await page.evaluate(async () => (await db.query('conversations'))[0].status.state)) === 'synced', 'the outbox drains by itself', 30000);
  assert.equal(failures, 2, 'it failed twice first');
  assert.equal((await serverRows(env.server, user, 'conversations')).length, 1);
  await context.close();
});

test('a token that expired while offline is refreshed once, and the writes go through', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  // The hook expires tokens issued before the current second: let the clock pass the
  // second the page's token was issued in.
  const issued = Math.floor(Date.now() / 1000);
  await until(() => Math.floor(Date.now() / 1000) > issued, 'the next second');
  const refreshes = () => proxy.requests((r) => r.method === 'POST' && r.url.includes('grant_type=refresh_token')).length;
  await context.setOffline(true);
  await page.evaluate(() => db.insert('conversations', { title: 'written while the token expired' }));
  const res = await fetch(`${env.server.url}/_dev/expire-tokens`, { method: 'POST', headers: { apikey: env.server.serviceKey } });
  assert.equal(res.status, 204);
  await context.setOffline(false);
  await page.evaluate(() => db.sync({ timeoutMs: 30000 }));
  assert.equal((await serverRows(env.server, user, 'conversations')).length, 1);
  assert.equal(refreshes(), 1, 'one refresh, no 401 loop');
  await context.close();
});

const QUOTA = 'WebKitGTK\'s MiniBrowser has no switch for an origin\'s storage quota (WebKitWebsiteDataManager\'s origin-storage-ratio is the embedding app\'s), '
  + 'so a test cannot fill it short of filling the disk; the store error itself is checked in Chromium and Firefox';

test('when the storage quota runs out the write fails with a clear error and what was stored stays', { skip: engine === 'webkit' && QUOTA }, async () => {
  const user = await newUser(env.server);
  // A small quota for the app's origin.
  const { page, close } = await contextWithQuota(env.browser, env.web.url, engine === 'firefox' ? 2_000_000 : 1_000_000);
  await page.goto(env.web.url);
  await page.waitForFunction(() => window.ready === true);
  await page.evaluate(async ([opts, user]) => {
    window.db = await window.supasync.openReplica(opts);
    await window.db.auth.signIn(user);
    await window.db.insert('conversations', { title: 'before the quota' });
  }, [options(env.server), { email: user.email, password: user.password }]);
  // Firefox compresses what IndexedDB stores: only random bytes overflow it. Chromium
  // keeps counting the bytes of a refused random row for a while (the sync after it
  // then fails on the quota too); a row of one letter overflows it and leaves no trace.
  const err = await page.evaluate(async (random) => {
    try {
      let title = 'x'.repeat(3_000_000);
      if (random) {
        const bytes = new Uint8Array(3_000_000);
        for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
        title = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      }
      await db.insert('conversations', { title });
      return null;
    } catch (e) {
      return { name: e.name, kind: e.kind, message: e.message, isError: e instanceof window.supasync.SupaSyncError };
    }
  }, engine === 'firefox');
  assert.ok(err, 'the write failed');
  assert.equal(err.isError, true);
  assert.equal(err.kind, 'store', err.message);
  assert.match(err.message, /quota/i);
  const rows = await page.evaluate(() => db.query('conversations'));
  assert.deepEqual(rows.map((r) => r.row.title), ['before the quota'], 'nothing half-written, nothing lost');
  await page.evaluate(() => db.sync({ timeoutMs: 20000 }));
  assert.equal((await serverRows(env.server, user, 'conversations')).length, 1, 'the stored write still syncs');
  await close();
});

/** Messages on the server for a restore: signed in with supabase-js, one conversation,
 *  then each `[n, label]` of `batches` inserted in one transaction (contents `label0`…). */
async function seedMessages(user, batches) {
  const sb = client(env.server);
  await sb.auth.signInWithPassword({ email: user.email, password: user.password });
  const { data: conv, error } = await sb.from('conversations').insert({ title: 'many' }).select().single();
  if (error) throw error;
  for (const [n, label] of batches) {
    const rows = Array.from({ length: n }, (_, i) => ({ conversation_id: conv.id, role: 'user', content: `${label}${i}` }));
    const { error: e } = await sb.from('messages').insert(rows);
    if (e) throw e;
  }
  return sb;
}

/** How many messages the page's replica holds. */
const heldMessages = (page) => page.evaluate(async () => (await db.from('messages').select('*', { count: 'exact', head: true })).count);

/** The page's replica holds `n` messages, each once. */
async function everyMessageOnce(page, n) {
  const contents = await page.evaluate(async () => (await db.query('messages')).map((r) => r.row.content));
  assert.equal(contents.length, n, 'every message');
  assert.equal(new Set(contents).size, n, 'each once');
}

test('a restore split in ranges, cut short by a reload with one range held, goes on with that range alone: every row once', async () => {
  const user = await newUser(env.server);
  // 3,500 messages in 35 transactions: the restore splits its walk in three ranges,
  // beginning with the transactions of the rows a third and two thirds of the way in.
  const sb = await seedMessages(user, Array.from({ length: 35 }, (_, t) => [100, `m${t}-`]));
  // Where the last range begins: the transaction of the row two thirds of the way in.
  const at = Math.floor((3500 * 2) / 3);
  const { data: nth, error: ne } = await sb.from('messages').select('sync_txid').order('sync_txid').order('id').range(at, at);
  if (ne) throw ne;
  const t2 = nth[0].sync_txid;
  // The middle range's second page (after its first, below the last range) is held.
  const middle = (r) => rest(r, 'messages', 'GET') && r.url.includes('or=') && r.url.includes(`&sync_txid=lt.${t2}&`);
  proxy.set((r) => (middle(r) ? 'hold' : 'pass'));
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  await page.evaluate(() => { db.syncNow().catch(() => {}); });
  await until(() => proxy.requests(middle).length > 0, 'the middle range\'s second page asked for').catch(async (e) => {
    // Seen once in WebKit under load, never since: say what the restore had done.
    const asked = proxy.requests((r) => rest(r, 'messages', 'GET')).map((r) => r.url);
    const where = await page.evaluate(async () => ({ status: db.status(), history: await db.history({ limit: 10 }) })).catch((x) => String(x));
    throw new Error(`${e.message}; messages asked for: ${JSON.stringify(asked)}; the replica: ${JSON.stringify(where)}`);
  });
  const held = () => heldMessages(page);
  // The first and last ranges (1,100 and 1,200 rows) and the middle one's first page.
  await until(async () => (await held()) >= 3300, 'the other ranges stored');
  const firstRange = (r) => rest(r, 'messages', 'GET') && /select=\*&sync_txid=gte\.0&/.test(r.url);
  const lastRange = (r) => rest(r, 'messages', 'GET') && r.url.includes(`select=*&sync_txid=gte.${t2}&`);
  const probes = (r) => rest(r, 'messages', 'GET') && r.url.includes('offset=');
  const asked = () => [firstRange, lastRange, probes].map((f) => proxy.requests(f).length);
  // Each range's last page is asked for after its first is stored: wait for the marks
  // that say the first and last ranges are done (written after their last pages).
  const mark = () => page.evaluate(async () => {
    const name = (await indexedDB.databases()).map((d) => d.name).find((n) => n.startsWith('supasync:'));
    const idb = await new Promise((ok, no) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
    const v = await new Promise((ok) => { const r = idb.transaction('meta').objectStore('meta').get('restore:messages'); r.onsuccess = () => ok(r.result); });
    idb.close();
    return typeof v === 'string' ? JSON.parse(v) : (v ?? null);
  });
  await until(async () => {
    const m = await mark();
    return m?.ranges?.length === 3 && m.ranges[0].at == null && m.ranges[2].at == null;
  }, 'the first and last ranges marked done');
  assert.equal(await held(), 3300, 'the middle range\'s second page is not stored');
  const before = asked();
  assert.deepEqual(before, [1, 1, 2], 'the first page, the last range\'s first page, two probes');
  proxy.set(null);
  await reopen(page);
  const settled = await page.evaluate(() => db.sync({ timeoutMs: 60000 }));
  assert.equal(settled.status.pending, 0);
  assert.deepEqual(asked(), before, 'the ranges that were done are not walked again, nor split again');
  await everyMessageOnce(page, 3500);
  await context.close();
});

test('a restore cut short by a reload goes on where it stopped: nothing asked again from the start, every row once', async () => {
  const user = await newUser(env.server);
  // 3,500 messages in one transaction (the restore reads on inside it by key), then 10.
  const sb = await seedMessages(user, [[3500, 'm'], [10, 'late']]);
  // The fourth page starts after the 3,000th row in the walk's order: it is held.
  const { data: nth, error: ne } = await sb.from('messages').select('id').order('sync_txid').order('id').range(2999, 2999);
  if (ne) throw ne;
  const fourth = `&id=gt.${nth[0].id}&`;
  proxy.set((r) => (rest(r, 'messages', 'GET') && r.url.includes('sync_txid=eq.') && r.url.includes(fourth) ? 'hold' : 'pass'));
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.evaluate(() => { db.syncNow().catch(() => {}); });
  await until(() => proxy.requests((r) => r.url.includes(fourth)).length > 0, 'the fourth page asked for');
  const held = () => heldMessages(page);
  await until(async () => (await held()) >= 3000, 'three pages stored');
  assert.equal(await held(), 3000, 'the fourth page is not stored');
  // A page from the start (not the probes that look for where to split the walk).
  const fromStart = (r) => rest(r, 'messages', 'GET') && /select=\*&sync_txid=gte\.0&/.test(r.url);
  assert.equal(proxy.requests(fromStart).length, 1);
  // The tab goes away with the fourth page unanswered; a new one takes over.
  proxy.set(null);
  await reopen(page);
  const settled = await page.evaluate(() => db.sync({ timeoutMs: 60000 }));
  assert.equal(settled.status.pending, 0);
  assert.equal(proxy.requests(fromStart).length, 1, 'nothing asked again from the start');
  await everyMessageOnce(page, 3510);
  // The pages met again fail a request per row in IndexedDB (their keys are taken);
  // each failure reaches the transaction's handler, which must take them all.
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  await context.close();
});
