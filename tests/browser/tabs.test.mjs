// Several tabs of one device (pages of one browser context) share one replica: one
// leads and talks to the server, every tab writes and sees every tab's writes, and
// when the leader closes another takes over with nothing lost or pushed twice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, openPage, options, until, serverRows, newUser } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

async function tab(context, signIn) {
  const page = await openPage(context, env.web.url);
  await page.evaluate(async ([opts, user]) => {
    window.db = await window.supasync.openReplica(opts);
    if (user) await window.db.auth.signIn(user);
  }, [options(env.server), signIn ?? null]);
  return page;
}

test('one tab leads; every tab sees the others\' writes; a new leader takes over and nothing is lost or doubled', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const one = await tab(context, { email: user.email, password: user.password });
  const two = await tab(context); // signed in already: the replica of this device's user
  assert.equal(await two.evaluate(() => db.auth.user()?.id), user.user.id, 'the second tab opens the same user\'s replica');
  await until(() => one.evaluate(() => db.isLeader), 'the first tab leads');
  assert.equal(await two.evaluate(() => db.isLeader), false, 'only one tab leads');
  for (const p of [one, two]) assert.deepEqual(await p.evaluate(() => db.status().tabs), { mode: 'shared' });

  const cid = await one.evaluate(async () => (await db.insert('conversations', { title: 'Tabs' })).local_id);
  for (const p of [one, two]) {
    await p.evaluate((cid) => {
      window.seen = [];
      db.live('messages', { where: { conversation_id: cid } }, (rows) => { window.seen = rows; });
    }, cid);
  }
  // Both tabs write at once; the leader closes after its fifth write.
  const writes = (p, who, n) => p.evaluate(async ([cid, who, n]) => {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push((await db.insert('messages', { conversation_id: cid, role: 'user', content: `${who} ${i}` })).local_id);
    return ids;
  }, [cid, who, n]);
  const [fromOne, fromTwo] = await Promise.all([writes(one, 'one', 5), writes(two, 'two', 10)]);
  await until(() => one.evaluate(() => window.seen.length === 15), 'the leader sees the other tab\'s writes');
  await one.close();
  await until(() => two.evaluate(() => db.isLeader), 'the second tab takes over', 5000);
  await two.evaluate(() => db.sync({ timeoutMs: 30000 }));
  // The live query is told of the confirmations as they are stored, which may be
  // just after sync() resolves: wait for its answer to say so.
  await until(() => two.evaluate(() => window.seen.length === 15 && window.seen.every((r) => r.status.state === 'synced')),
    'the live query in the new leader to show every write confirmed', 5000).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await two.evaluate(() => window.seen.map((r) => [r.row.content, r.status.state])))} STORE ${JSON.stringify(await two.evaluate(async () => (await db.query('messages')).map((r) => [r.row.content, r.status.state])))} STATUS ${JSON.stringify(await two.evaluate(() => db.status()))}`);
  });
  const server = await serverRows(env.server, user, 'messages');
  assert.equal(server.length, 15, 'every write reached the server once');
  assert.deepEqual(new Set(server.map((r) => r.local_id)), new Set([...fromOne, ...fromTwo]));
  await context.close();
});

test('a follower tab writes offline-durably and its sync() goes through the leader', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const one = await tab(context, { email: user.email, password: user.password });
  await until(() => one.evaluate(() => db.isLeader), 'the first tab leads');
  const two = await tab(context);
  const settled = await two.evaluate(async () => {
    await db.insert('conversations', { title: 'from the follower' });
    return db.sync({ timeoutMs: 20000 });
  });
  assert.equal(settled.status.pending, 0);
  assert.equal((await serverRows(env.server, user, 'conversations')).length, 1);
  const st = await two.evaluate(() => db.status());
  assert.equal(st.leader, false);
  await context.close();
});

test('a leader that stored the other tab\'s confirmations and closed before telling it: the tab that takes over shows them', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const one = await tab(context, { email: user.email, password: user.password });
  await until(() => one.evaluate(() => db.isLeader), 'the first tab leads');
  const two = await tab(context);
  await until(() => two.evaluate(() => db.auth.user()?.email), 'the second tab has the user');
  // From now on the leader tells the other tabs nothing, as if each of its messages
  // were lost as it closed: it still hears them, pushes their writes and stores the
  // confirmations.
  await one.evaluate(() => { BroadcastChannel.prototype.postMessage = () => {}; });
  await two.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'Tabs' });
    window.seen = [];
    db.live('messages', { where: { conversation_id: c.local_id } }, (rows) => { window.seen = rows; });
    for (let i = 0; i < 3; i++) await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: `m${i}` });
  });
  await until(async () => (await serverRows(env.server, user, 'messages')).length === 3, 'the leader pushed the messages');
  // And pulled after: the next leader's first pull brings nothing new to show.
  await one.evaluate(() => db.sync({ timeoutMs: 20000 }));
  await until(async () => (await one.evaluate(async () => (await db.query('messages')).every((r) => r.status.state === 'synced'))), 'the leader stored the confirmations');
  assert.deepEqual(await two.evaluate(() => window.seen.map((r) => r.status.state)), ['pending', 'pending', 'pending'], 'the second tab was not told');
  await one.close();
  await until(() => two.evaluate(() => db.isLeader), 'the second tab takes over', 5000);
  await until(() => two.evaluate(() => window.seen.length === 3 && window.seen.every((r) => r.status.state === 'synced')),
    'the new leader\'s live query to show the confirmations the old one stored', 5000);
  // The counts are read again on their own (a burst of changes is counted once per 30
  // ms): they follow the live query, not necessarily in the same turn.
  await until(async () => (await two.evaluate(() => db.status())).pending === 0, 'the new leader\'s counts to show nothing pending', 5000);
  await context.close();
});

test('a leading tab alone posts nothing per write; a tab that opens meanwhile still sees every write', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const watched = async (install) => {
    const page = await openPage(context, env.web.url);
    await page.evaluate(install);
    return page;
  };
  // Manual mode: nothing but these writes changes the store (no push, no confirmations
  // stored later, each of which would be announced). The first tab counts what it
  // posts to other tabs.
  const opts = { ...options(env.server), mode: 'manual' };
  const one = await watched(() => {
    window.posted = [];
    const post = BroadcastChannel.prototype.postMessage;
    BroadcastChannel.prototype.postMessage = function (m) { window.posted.push(m.t); return post.call(this, m); };
  });
  await one.evaluate(async ([opts, u]) => { window.db = await supasync.openReplica(opts); await db.auth.signIn(u); }, [opts, { email: user.email, password: user.password }]);
  await until(() => one.evaluate(() => db.isLeader), 'the first tab leads');
  const cid = await one.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'alone' });
    for (let i = 0; i < 20; i++) await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: `m${i}` });
    return c.local_id;
  });
  const said = await one.evaluate(() => window.posted.filter((t) => t === 'changed' || t === 'status'));
  assert.deepEqual(said, [], 'a leader that has heard no other tab announces nothing');

  // A second tab opens and reads, but its hello is held back: the leader writes five
  // more without knowing it is there.
  const two = await watched(() => {
    const post = BroadcastChannel.prototype.postMessage;
    BroadcastChannel.prototype.postMessage = function (m) {
      if (m.t === 'hello' && !window.releaseHello) { window.releaseHello = () => post.call(this, m); return; }
      return post.call(this, m);
    };
  });
  await two.evaluate(async ([opts, cid]) => {
    window.db = await supasync.openReplica(opts);
    window.seen = [];
    await new Promise((resolve) => db.live('messages', { where: { conversation_id: cid } }, (rows) => { window.seen = rows; resolve(); }));
  }, [opts, cid]);
  assert.equal(await two.evaluate(() => window.seen.length), 20);
  await one.evaluate(async (cid) => { for (let i = 20; i < 25; i++) await db.insert('messages', { conversation_id: cid, role: 'user', content: `m${i}` }); }, cid);
  assert.equal(await one.evaluate(() => window.posted.filter((t) => t === 'changed').length), 0, 'still nothing said');
  assert.equal(await two.evaluate(() => window.seen.length), 20, 'the second tab has not heard of the five');
  // Its hello arrives: the leader tells it to read everything again.
  await two.evaluate(() => window.releaseHello());
  await until(() => two.evaluate(() => window.seen.length === 25), 'the second tab to show the writes made before its hello arrived', 5000);
  // From now on every write is announced.
  await one.evaluate(async (cid) => { await db.insert('messages', { conversation_id: cid, role: 'user', content: 'm25' }); }, cid);
  await until(() => two.evaluate(() => window.seen.length === 26), 'the second tab to show the next write', 5000);
  assert.ok(await one.evaluate(() => window.posted.filter((t) => t === 'changed').length >= 2));
  await context.close();
});

test('a tab that takes over the lead says so at once, without the old leader\'s restore progress', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const opts = { ...options(env.server), mode: 'manual' };
  const open = async (signIn) => {
    const page = await openPage(context, env.web.url);
    await page.evaluate(async ([opts, u]) => { window.db = await supasync.openReplica(opts); if (u) await db.auth.signIn(u); }, [opts, signIn]);
    return page;
  };
  const one = await open({ email: user.email, password: user.password });
  await until(() => one.evaluate(() => db.isLeader), 'the first tab leads');
  const two = await open(null);
  // The leader's last report, as a restore in progress sends it to the other tabs.
  await one.evaluate(() => {
    const bc = new BroadcastChannel(`supasync:${db.databaseFor(db.auth.user().id)}`);
    bc.postMessage({ t: 'status', status: { ...db.status(), phase: 'syncing', progress: { table: 'messages', rows: 1000, total: 20000, done: false } } });
    bc.close();
  });
  await until(() => two.evaluate(() => db.status().progress?.rows === 1000), 'the follower to show the leader\'s progress');
  assert.equal(await two.evaluate(() => db.status().leader), false);
  // Every status the second tab shows once it leads.
  await two.evaluate(() => {
    window.asLeader = [];
    db.onStatus((s) => { if (db.isLeader) window.asLeader.push(s); });
  });
  await one.close();
  await until(() => two.evaluate(() => db.isLeader), 'the second tab takes over', 5000);
  await until(() => two.evaluate(() => db.status().leader === true && !('progress' in db.status())),
    'the new leader\'s status to say it leads, with no progress of the old one', 2000).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await two.evaluate(() => db.status()))}`);
  });
  const stale = await two.evaluate(() => window.asLeader.filter((s) => !s.leader || 'progress' in s));
  assert.deepEqual(stale, [], 'no status shown while leading says another tab leads or carries its progress');
  await context.close();
});
