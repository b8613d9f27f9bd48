// Shared rows in the browser (issue 22): a conversation shared by email between two
// users, with the owner's writes and share made in a follower tab (the leader tab
// pushes them), each user's live query seeing the other's messages, and the share
// withdrawn live.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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

const watch = (page) => page.evaluate(() => {
  window.convs = [];
  window.msgs = [];
  db.live('conversations', {}, (rows) => { window.convs = rows.map((r) => r.row.title); });
  db.live('messages', { order: 'content.asc' }, (rows) => { window.msgs = rows.map((r) => r.row.content); });
});

test('a conversation shared from a follower tab reaches the other user live, both ways, and leaves when unshared', async () => {
  const [owner, guest] = [await newUser(env.server), await newUser(env.server)];
  const ownerContext = await env.browser.newContext();
  const leader = await tab(ownerContext, { email: owner.email, password: owner.password });
  await until(() => leader.evaluate(() => db.isLeader), 'the first tab leads');
  const follower = await tab(ownerContext);
  assert.equal(await follower.evaluate(() => db.isLeader), false);
  const guestPage = await tab(await env.browser.newContext(), { email: guest.email, password: guest.password });
  for (const p of [follower, guestPage]) await watch(p);
  await until(() => guestPage.evaluate(() => db.status().phase === 'live'), 'the guest is live');

  // In the follower tab: a conversation, a message, and the share (a queued call).
  const cid = await follower.evaluate(async (email) => {
    const c = await db.insert('conversations', { title: 'Shared in the browser' });
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'a: hello' });
    const shared = await db.call('conversations', c.local_id, 'share_conversation', { args: { email } });
    if (shared.status.state !== 'pending') throw new Error(`the call shows as ${shared.status.state}`);
    return c.local_id;
  }, guest.email);
  await until(async () => (await guestPage.evaluate(() => window.convs)).includes('Shared in the browser'), 'the conversation on the guest, live');
  await until(async () => (await guestPage.evaluate(() => window.msgs)).includes('a: hello'), "the owner's message on the guest");
  await guestPage.evaluate((cid) => db.insert('messages', { conversation_id: cid, role: 'user', content: 'b: hi' }), cid);
  await until(async () => (await follower.evaluate(() => window.msgs)).includes('b: hi'), "the guest's message in the owner's follower tab");

  // Withdrawn: the conversation and the owner's messages leave the guest's device live;
  // the guest's own message stays (the example's policies let the guest read it).
  await follower.evaluate(async ([cid, email]) => db.call('conversations', cid, 'unshare_conversation', { args: { email } }), [cid, guest.email]);
  await until(async () => (await guestPage.evaluate(() => window.convs)).length === 0, 'the conversation gone from the guest');
  assert.deepEqual(await guestPage.evaluate(() => window.msgs), ['b: hi']);
  const guestRejected = await guestPage.evaluate(() => db.rejected());
  assert.deepEqual(guestRejected, [], 'the guest had no waiting write of it');
  // Bad input to a call is refused at once, with nothing queued.
  const err = await follower.evaluate(async (cid) => {
    try { await db.call('conversations', cid, 'share_conversation', { args: [1] }); return null; } catch (e) { return e.kind; }
  }, cid);
  assert.equal(err, 'invalid');
  await ownerContext.close();
});
