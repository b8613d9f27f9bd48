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
    return { list, found, page2, either, none, head, bad: { data: bad.data, code: bad.error?.code, kind: bad.error?.kind, message: bad.error?.message }, url };
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
