// Two devices of one user (two browser contexts), the packed package in a real page,
// against the dev server: live messages, offline writes, a refused write rolled back
// with its reason, and another user who sees none of it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, openPage, options, until, serverRows, newUser } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

/** A device: a context with the app open and a replica signed in as `user`. */
async function device(user, { signUp = false } = {}) {
  const context = await env.browser.newContext();
  const page = await openPage(context, env.web.url);
  await page.evaluate(async ([opts, user, signUp]) => {
    window.db = await window.supasync.openReplica(opts);
    if (signUp) await window.db.auth.signUp(user);
    else await window.db.auth.signIn(user);
  }, [options(env.server), { email: user.email, password: user.password }, signUp]);
  return { context, page };
}

test('a message written on one device shows up live on the other', async () => {
  const user = await newUser(env.server);
  const a = await device(user);
  const b = await device(user);
  const conv = await a.page.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'Trip' });
    await db.sync({ timeoutMs: 20000 });
    return c;
  });
  assert.equal(conv.row.title, 'Trip');
  assert.deepEqual(conv.status, { state: 'pending' }, 'an optimistic row is pending until pushed');
  // B watches the conversation's messages before A writes.
  await until(() => b.page.evaluate(async (id) => (await db.query('conversations')).some((c) => c.local_id === id), conv.local_id), 'B holds the conversation');
  await b.page.evaluate((cid) => {
    window.seen = [];
    window.stop = db.live('messages', { where: { conversation_id: cid }, order: 'timestamp.asc' }, (rows) => { window.seen = rows; });
  }, conv.local_id);
  await a.page.evaluate((cid) => db.insert('messages', { conversation_id: cid, role: 'user', content: 'hi from A' }), conv.local_id);
  const rows = await until(() => b.page.evaluate(() => window.seen.length === 1 && window.seen), 'B sees A\'s message live');
  assert.equal(rows[0].row.content, 'hi from A');
  assert.deepEqual(rows[0].status, { state: 'synced' });
  assert.equal(rows[0].row.conversation_id, conv.local_id, 'references are local ids on every device');
  await a.context.close();
  await b.context.close();
});

test('another device\'s new message shows before the store has been read for it', async () => {
  // Applying a Realtime change reads the store first (an IndexedDB round trip); a row
  // another device inserted is shown to live queries while that read is on its way.
  const user = await newUser(env.server);
  const a = await device(user);
  const b = await device(user);
  const conv = await a.page.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'Early' });
    await db.sync({ timeoutMs: 20000 });
    return c.local_id;
  });
  await until(() => b.page.evaluate(async (id) => (await db.query('conversations')).some((c) => c.local_id === id), conv), 'B holds the conversation');
  await until(() => b.page.evaluate(() => db.status().phase === 'live'), 'B is live');
  await b.page.evaluate((cid) => {
    // Every IndexedDB get the page issues, and whether it was answered yet.
    window.reads = { issued: 0, answered: 0 };
    for (const proto of [IDBObjectStore.prototype, IDBIndex.prototype]) {
      const get = proto.get;
      proto.get = function (...args) {
        const req = get.apply(this, args);
        reads.issued += 1;
        const done = () => { reads.answered += 1; };
        req.addEventListener('success', done);
        req.addEventListener('error', done);
        return req;
      };
    }
    window.shown = null;
    db.live('messages', { where: { conversation_id: cid } }, (rows) => {
      if (shown === null && rows.some((r) => r.row.content === 'early')) {
        shown = { row: rows.find((r) => r.row.content === 'early'), unanswered: reads.issued - reads.answered };
      }
    });
  }, conv);
  await a.page.evaluate((cid) => db.insert('messages', { conversation_id: cid, role: 'user', content: 'early' }), conv);
  const shown = await until(() => b.page.evaluate(() => window.shown), 'B shows the message');
  assert.ok(shown.unanswered > 0, `shown while the change's read was still out (${shown.unanswered} gets unanswered)`);
  assert.equal(shown.row.row.conversation_id, conv, 'with its conversation\'s local id');
  assert.deepEqual(shown.row.status, { state: 'synced' });
  // And stored, once.
  const held = await until(async () => {
    const rows = await b.page.evaluate((cid) => db.query('messages', { where: { conversation_id: cid } }), conv);
    return rows.length === 1 && rows;
  }, 'B stores the message');
  assert.equal(held[0].local_id, shown.row.local_id);
  await a.context.close();
  await b.context.close();
});

test('writes made offline reach the other device, once each, when back online', async () => {
  const user = await newUser(env.server);
  const a = await device(user);
  const b = await device(user);
  await b.context.setOffline(true);
  const cid = await b.page.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'Written offline' });
    for (let i = 0; i < 3; i++) await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: `offline ${i}` });
    return c.local_id;
  });
  assert.equal((await b.page.evaluate(() => db.query('messages'))).length, 3, 'offline writes are visible at once');
  assert.equal((await serverRows(env.server, user, 'messages')).length, 0, 'nothing reached the server while offline');
  await b.context.setOffline(false);
  await b.page.evaluate(() => db.sync({ timeoutMs: 30000 }));
  const onA = await until(async () => {
    const rows = await a.page.evaluate((cid) => db.query('messages', { where: { conversation_id: cid }, order: 'content' }), cid);
    return rows.length === 3 && rows;
  }, 'A sees the offline messages');
  assert.deepEqual(onA.map((r) => r.row.content), ['offline 0', 'offline 1', 'offline 2']);
  const server = await serverRows(env.server, user, 'messages');
  assert.equal(server.length, 3, 'each write reached the server exactly once');
  assert.equal((await b.page.evaluate(() => db.status())).pending, 0);
  await a.context.close();
  await b.context.close();
});

test('a write the server refuses is rolled back with its reason; another user sees nothing', async () => {
  const user = await newUser(env.server);
  const a = await device(user);
  const result = await a.page.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'Mine' });
    const bad = await db.insert('messages', { conversation_id: c.local_id, role: 'robot', content: 'not a role' });
    const settled = await db.sync({ timeoutMs: 20000 });
    const rejected = await db.rejected();
    const row = await db.get('messages', bad.local_id);
    const status = db.status();
    await db.discard(bad.local_id);
    return { rejected, row, settled: settled.status, status, left: await db.rejected(), convs: await db.query('conversations') };
  });
  assert.equal(result.rejected.length, 1);
  assert.match(result.rejected[0].rejected, /role|check/i, 'the reason names what the server refused');
  assert.equal(result.row, null, 'the refused insert is rolled back: the app no longer sees the row');
  assert.equal(result.settled.rejected, 1, 'sync() settles (nothing waits) and counts the refusal');
  assert.equal(result.status.rejected, 1, 'the status shows it');
  assert.deepEqual(result.left, [], 'discard drops the refused write');
  assert.equal(result.convs[0].status.state, 'synced', 'the valid parent went through');

  const other = await newUser(env.server);
  const c = await device(other);
  const seen = await c.page.evaluate(async () => {
    await db.sync({ timeoutMs: 20000 });
    return { convs: await db.query('conversations'), msgs: await db.query('messages') };
  });
  assert.deepEqual(seen, { convs: [], msgs: [] }, 'RLS: another user pulls none of it');
  assert.equal((await serverRows(env.server, other, 'conversations')).length, 0);
  await a.context.close();
  await c.context.close();
});
