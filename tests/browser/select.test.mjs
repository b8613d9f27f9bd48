// Local queries in supabase-js's words in the browser (issue 23): `db.from(…)` awaited
// and live over IndexedDB, answers with pending writes, refusals as `error` (never a
// rejected promise), and a live query in one tab answering another tab's write.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { setup, openPage, options, until, newUser } from './harness.mjs';

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

test('db.from answers as supabase-js would: embeds, counts, filters, order, single, and errors as values', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await tab(context, { email: user.email, password: user.password });
  const got = await page.evaluate(async () => {
    db.pause(); // every write stays pending: the answers come from the device alone
    const lisbon = await db.insert('conversations', { title: 'Lisbon' });
    const porto = await db.insert('conversations', { title: 'Porto' });
    await db.insert('conversations', { title: null });
    for (const [c, content] of [[lisbon, 'Flights'], [lisbon, 'Hotel near Alfama'], [lisbon, 'Tram 28'], [porto, 'Port wine']]) {
      await db.insert('messages', { conversation_id: c.local_id, role: 'user', content });
    }
    const list = await db.from('conversations').select('title, messages(count)').order('title', { ascending: true, nullsFirst: true });
    const found = await db.from('messages').select('content, conversations(title)').ilike('content', '%TRAM%').single();
    const page2 = await db.from('messages').select('content', { count: 'exact' }).eq('conversation_id', lisbon.local_id).order('content', { ascending: false }).range(1, 2);
    const either = await db.from('messages').select('content').or('content.eq.Flights,content.like.Port*').order('content');
    const none = await db.from('conversations').select('title').eq('title', 'Madrid').maybeSingle();
    const bad = await db.from('conversations').select('*, memories(*)');
    const url = db.from('messages').select('id, content').eq('role', 'user').url();
    const head = await db.from('messages').select('*', { count: 'exact', head: true }).eq('conversation_id', lisbon.local_id);
    const keyed = await db.from('messages').select('role, content, conversations(title)').eq('content', 'Flights').single();
    return { list, found, page2, either, none, head, keys: Object.keys(keyed.data), bad: { data: bad.data, code: bad.error?.code, kind: bad.error?.kind, message: bad.error?.message }, url };
  });
  assert.deepEqual(got.list.data, [
    { title: null, messages: [{ count: 0 }] },
    { title: 'Lisbon', messages: [{ count: 3 }] },
    { title: 'Porto', messages: [{ count: 1 }] },
  ]);
  assert.equal(got.list.error, null);
  assert.equal(got.list.sync[1].status.state, 'pending', 'each row says it waits');
  assert.deepEqual(got.found.data, { content: 'Tram 28', conversations: { title: 'Lisbon' } });
  assert.deepEqual([got.page2.data, got.page2.count], [[{ content: 'Hotel near Alfama' }, { content: 'Flights' }], 3]);
  assert.deepEqual(got.either.data, [{ content: 'Flights' }, { content: 'Port wine' }]);
  assert.equal(got.none.data, null);
  assert.deepEqual([got.bad.data, got.bad.code, got.bad.kind], [null, 'PGRST200', 'invalid']);
  assert.match(got.bad.message, /Could not find a relationship between 'conversations' and 'memories'/);
  assert.equal(got.url, 'messages?select=id%2Ccontent&role=eq.user', 'the URL postgrest-js would send');
  assert.deepEqual([got.head.data, got.head.count, got.head.error], [null, 3, null], 'head: the count alone');
  assert.deepEqual(got.keys, ['role', 'content', 'conversations'], 'keys in the select list\'s order, as PostgREST gives them');
  await context.close();
});

test("a live db.from query in a follower tab answers the leader tab's writes, and a refused write leaves it", async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const leader = await tab(context, { email: user.email, password: user.password });
  await until(() => leader.evaluate(() => db.isLeader), 'the first tab leads');
  const follower = await tab(context);
  await until(() => follower.evaluate(() => db.auth.user()?.email), 'the follower tab has the user');
  await follower.evaluate(() => {
    window.answers = [];
    window.stop = db.from('conversations').select('title, messages(count)').order('title').live((r) => window.answers.push(r));
  });
  await until(async () => (await follower.evaluate(() => window.answers.length)) >= 1, 'the first answer');
  assert.deepEqual(await follower.evaluate(() => window.answers.at(-1).data), []);
  const cid = await leader.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'Lisbon' });
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'hello' });
    return c.local_id;
  });
  await until(async () => isDeepStrictEqual(await follower.evaluate(() => window.answers.at(-1).data), [{ title: 'Lisbon', messages: [{ count: 1 }] }]),
    "the leader's writes in the follower's live answer");
  // A message the server refuses (role 'robot'): counted at once in the other tab,
  // then rolled back out of it when the refusal comes.
  await until(async () => (await leader.evaluate(() => db.status().pending)) === 0, 'the first writes pushed');
  await leader.evaluate(async (cid) => {
    db.pause();
    await db.insert('messages', { conversation_id: cid, role: 'robot', content: 'beep' });
  }, cid);
  await until(async () => isDeepStrictEqual(await follower.evaluate(() => window.answers.at(-1).data), [{ title: 'Lisbon', messages: [{ count: 2 }] }]),
    'the pending message counted in the follower tab');
  await leader.evaluate(() => db.resume());
  await until(async () => (await leader.evaluate(() => db.status().rejected)) === 1, 'the refusal');
  await until(async () => isDeepStrictEqual(await follower.evaluate(() => window.answers.at(-1).data), [{ title: 'Lisbon', messages: [{ count: 1 }] }]),
    'the refused message left the count');
  assert.deepEqual(await leader.evaluate(async () => (await db.from('messages').select('content', { count: 'exact' })).count), 1, 'rolled back in the leader too');
  await follower.evaluate(() => window.stop());
  await context.close();
});

test('a live answer hands back the very objects of rows that did not change, and new objects for rows that did', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await tab(context, { email: user.email, password: user.password });
  const got = await page.evaluate(async () => {
    db.pause();
    const c = await db.insert('conversations', { title: 'Lisbon' });
    const a = await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'a' });
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'b' });
    // Each live query's answers, and a wait for the one that satisfies `done`.
    const watch = (start) => {
      const answers = [];
      let wake = () => {};
      start((x) => { answers.push(x); wake(); });
      const when = async (done) => { while (!answers.length || !done(answers.at(-1))) await new Promise((r) => { wake = r; }); return answers.at(-1); };
      return when;
    };
    const from = watch((cb) => db.from('messages').select('content').eq('conversation_id', c.local_id).order('content').live(cb));
    const live = watch((cb) => db.live('messages', { where: { conversation_id: c.local_id }, order: 'content' }, cb));
    const contents = (rows) => rows.map((r) => r.content ?? r.row.content).join();
    const f1 = await from((x) => contents(x.data) === 'a,b');
    const l1 = await live((x) => contents(x) === 'a,b');
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'c' });
    const f2 = await from((x) => contents(x.data) === 'a,b,c');
    const l2 = await live((x) => contents(x) === 'a,b,c');
    await db.update('messages', a.local_id, { content: 'a2' });
    const f3 = await from((x) => contents(x.data) === 'a2,b,c');
    const l3 = await live((x) => contents(x) === 'a2,b,c');
    return {
      keptFrom: [f2.data[0] === f1.data[0], f2.data[1] === f1.data[1], f2.sync[0] === f1.sync[0], f3.data[1] === f2.data[1], f3.data[2] === f2.data[2]],
      keptLive: [l2[0] === l1[0], l2[1] === l1[1], l3[1] === l2[1], l3[2] === l2[2]],
      changed: [f3.data[0] !== f2.data[0], l3[0] !== l2[0], f3.data !== f2.data, l3 !== l2],
      shapes: [f3.data, f3.sync.map((s) => s.status.state), f3.count, l3.map((r) => [r.row.content, r.status.state])],
    };
  });
  assert.deepEqual(got.keptFrom, [true, true, true, true, true], 'db.from(…).live: unchanged rows (and their sync entries) are the same objects');
  assert.deepEqual(got.keptLive, [true, true, true, true], 'db.live: unchanged rows are the same objects');
  assert.deepEqual(got.changed, [true, true, true, true], 'a changed row is a new object, and every answer a new array');
  assert.deepEqual(got.shapes, [[{ content: 'a2' }, { content: 'b' }, { content: 'c' }], ['pending', 'pending', 'pending'], null,
    [['a2', 'pending'], ['b', 'pending'], ['c', 'pending']]]);
  await context.close();
});
