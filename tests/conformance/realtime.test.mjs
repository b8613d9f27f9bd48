// supabase-js (realtime-js) against supasync-dev's /realtime/v1, both serializers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, client, newUser, device, eventually, subscribed } from './harness.mjs';

let server, alice, bob;
before(async () => {
  server = await startServer();
  alice = await newUser(server);
  bob = await newUser(server);
});
after(async () => { await server?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const vsn of ['1.0.0', '2.0.0']) {
  test(`postgres_changes with per-user RLS (vsn ${vsn})`, async () => {
    const a1 = await device(server, alice, { vsn });
    const a2 = await device(server, alice, { vsn });
    const b1 = await device(server, bob, { vsn });
    const seenA = [];
    const seenB = [];
    const chA = a2.channel(`a-${vsn}`).on('postgres_changes', { event: '*', schema: 'public', table: 'todos', filter: `user_id=eq.${alice.user.id}` }, (p) => seenA.push(p));
    const chB = b1.channel(`b-${vsn}`).on('postgres_changes', { event: '*', schema: 'public', table: 'todos' }, (p) => seenB.push(p));
    await subscribed(chA);
    await subscribed(chB);
    const { data: row } = await a1.from('todos').insert({ task: `rt ${vsn}`, tags: ['x'], meta: { k: 1 } }).select().single();
    await eventually(() => seenA.length >= 1, 5000, 'insert event');
    const ins = seenA[0];
    assert.equal(ins.eventType, 'INSERT');
    assert.equal(ins.table, 'todos');
    assert.equal(ins.new.id, row.id);
    assert.equal(ins.new.task, `rt ${vsn}`);
    assert.deepEqual(ins.new.tags, ['x']);
    assert.deepEqual(ins.new.meta, { k: 1 });
    assert.match(ins.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await a1.from('todos').update({ done: true }).eq('id', row.id);
    await eventually(() => seenA.length >= 2, 5000, 'update event');
    assert.equal(seenA[1].eventType, 'UPDATE');
    assert.equal(seenA[1].new.done, true);
    assert.deepEqual(seenA[1].old, { id: row.id }, 'default replica identity: old has the key only');
    await a1.from('todos').delete().eq('id', row.id);
    // Bob listens to the whole table without a filter: RLS hides Alice's INSERT and
    // UPDATE, but DELETE skips RLS in Realtime and carries only the key (reference
    // §2.4). Alice's channel filters on user_id, which a DELETE under the default
    // replica identity does not carry, so her filtered channel gets no DELETE: that is
    // why supasync's catch-up relies on tombstones.
    await eventually(() => seenB.some((e) => e.eventType === 'DELETE' && e.old.id === row.id), 5000, 'delete event');
    await sleep(300);
    assert.equal(seenA.length, 2);
    assert.deepEqual(seenB.filter((e) => e.eventType !== 'DELETE'), []);
    assert.deepEqual(seenB.find((e) => e.eventType === 'DELETE').old, { id: row.id });
    await Promise.all([a1.removeAllChannels(), a2.removeAllChannels(), b1.removeAllChannels()]);
  });
}

test('filters and event types select what a channel gets', async () => {
  const a1 = await device(server, alice);
  const got = [];
  const ch = a1.channel('filtered')
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos', filter: 'priority=gt.5' }, (p) => got.push(['gt', p.new.priority]))
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'todos', filter: 'priority=in.(1,2)' }, (p) => got.push(['in', p.new.priority]));
  await subscribed(ch);
  const { data } = await a1.from('todos').insert([{ task: 'p3', priority: 3 }, { task: 'p9', priority: 9 }, { task: 'p1', priority: 1 }]).select();
  await a1.from('todos').update({ done: true }).in('id', data.map((d) => d.id));
  await eventually(() => got.length >= 2, 5000, 'filtered events');
  await sleep(400);
  assert.deepEqual(got.sort(), [['gt', 9], ['in', 1]]);
  await a1.removeAllChannels();
});

test('no replay: changes made before a subscription are not delivered', async () => {
  const a1 = await device(server, alice);
  await a1.from('todos').insert({ task: 'before-subscribe' });
  await sleep(300);
  const got = [];
  await subscribed(a1.channel('late').on('postgres_changes', { event: '*', schema: 'public', table: 'todos' }, (p) => got.push(p)));
  await a1.from('todos').insert({ task: 'after-subscribe' });
  await eventually(() => got.length >= 1, 5000);
  await sleep(300);
  assert.deepEqual(got.map((g) => g.new.task), ['after-subscribe']);
  await a1.removeAllChannels();
});

for (const [senderVsn, receiverVsn] of [['2.0.0', '2.0.0'], ['2.0.0', '1.0.0'], ['1.0.0', '2.0.0']]) {
  test(`broadcast with ack and self (sender ${senderVsn}, receiver ${receiverVsn})`, async () => {
    const s = client(server, { vsn: senderVsn });
    const r = client(server, { vsn: receiverVsn });
    const gotR = [];
    const gotS = [];
    const room = `room-${senderVsn}-${receiverVsn}`;
    const chS = s.channel(room, { config: { broadcast: { ack: true, self: true } } }).on('broadcast', { event: 'typing' }, (m) => gotS.push(m));
    const chR = r.channel(room).on('broadcast', { event: '*' }, (m) => gotR.push(m));
    await subscribed(chS);
    await subscribed(chR);
    const status = await chS.send({ type: 'broadcast', event: 'typing', payload: { who: 'ada', n: 1 } });
    assert.equal(status, 'ok');
    await eventually(() => gotR.length === 1 && gotS.length === 1, 5000, 'broadcast');
    assert.equal(gotR[0].event, 'typing');
    assert.deepEqual(gotR[0].payload, { who: 'ada', n: 1 });
    assert.deepEqual(gotS[0].payload, { who: 'ada', n: 1 }, 'self: true echoes to the sender');
    // Without self, the sender does not hear itself.
    const gotR2 = [];
    const chR2 = r.channel(room + '-2', { config: { broadcast: { self: false } } }).on('broadcast', { event: 'x' }, (m) => gotR2.push(m));
    await subscribed(chR2);
    await chR2.send({ type: 'broadcast', event: 'x', payload: {} });
    await sleep(300);
    assert.equal(gotR2.length, 0);
    await s.removeAllChannels();
    await r.removeAllChannels();
  });
}

test('postgres_changes: a change committed before a channel subscribed never reaches it, however late the poll', async () => {
  // A slow poll, so the burst is almost always read after the channel subscribed (the
  // case that went wrong); if a poll falls in between, nothing is delivered either.
  const slow = await startServer(['--realtime-poll-ms', '1500']);
  try {
    const u = await newUser(slow);
    const writer = await device(slow, u);
    const burst = Array.from({ length: 20 }, (_, i) => ({ task: `before ${i}` }));
    assert.equal((await writer.from('todos').insert(burst)).error, null);
    const seen = [];
    const reader = await device(slow, u);
    const ch = reader.channel('late').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos' }, (p) => seen.push(p.new.task));
    await subscribed(ch);
    assert.equal((await writer.from('todos').insert({ task: 'after' })).error, null);
    await eventually(() => seen.includes('after'), 10000, 'the change made after subscribing');
    assert.deepEqual(seen, ['after']);
    await reader.removeAllChannels();
  } finally {
    await slow.stop();
  }
});

test('REST broadcast reaches subscribers; bad token is 401', async () => {
  const r = client(server);
  const got = [];
  await subscribed(r.channel('news').on('broadcast', { event: 'headline' }, (m) => got.push(m.payload)));
  const res = await fetch(`${server.url}/realtime/v1/api/broadcast`, {
    method: 'POST',
    headers: { apikey: server.anonKey, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ topic: 'news', event: 'headline', payload: { t: 'hello' } }] }),
  });
  assert.equal(res.status, 202);
  await eventually(() => got.length === 1, 5000);
  assert.deepEqual(got[0], { t: 'hello' });
  const bad = await fetch(`${server.url}/realtime/v1/api/broadcast`, {
    method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{}',
  });
  assert.equal(bad.status, 401);
  await r.removeAllChannels();
});

test('httpSend: one message over HTTP reaches subscribers; a bad body and a bad token are refused', async () => {
  const r = await device(server, alice, { vsn: '2.0.0' });
  const s = await device(server, bob);
  const got = [];
  await subscribed(r.channel('alerts').on('broadcast', { event: '*' }, (m) => got.push(m)));
  const sender = s.channel('alerts'); // never joined: httpSend needs no socket
  assert.deepEqual(await sender.httpSend('storm', { level: 3 }), { success: true });
  await eventually(() => got.length === 1, 5000, 'the JSON message');
  assert.equal(got[0].event, 'storm');
  assert.deepEqual(got[0].payload, { level: 3 });
  const bytes = new Uint8Array([1, 2, 250]).buffer;
  assert.deepEqual(await sender.httpSend('blob', bytes), { success: true });
  await eventually(() => got.length === 2, 5000, 'the binary message');
  assert.equal(got[1].event, 'blob');
  assert.deepEqual([...new Uint8Array(got[1].payload)], [1, 2, 250]);
  const notJson = await fetch(`${server.url}/realtime/v1/api/broadcast/alerts/events/x`, {
    method: 'POST', headers: { apikey: server.anonKey, 'content-type': 'application/json' }, body: '{oops',
  });
  assert.equal(notJson.status, 422);
  assert.match((await notJson.json()).message, /not JSON/);
  const bad = await fetch(`${server.url}/realtime/v1/api/broadcast/alerts/events/x`, {
    method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{}',
  });
  assert.equal(bad.status, 401);
  assert.equal(got.length, 2, 'nothing refused was delivered');
  await r.removeAllChannels();
});

test('private channels: realtime.messages policies decide who joins and who sends; a public channel of the same name is another channel', async () => {
  const room = `room:${alice.user.id}`;
  const priv = { config: { private: true, broadcast: { ack: true } } };
  const a1 = await device(server, alice);
  const a2 = await device(server, alice, { vsn: '2.0.0' });
  const b1 = await device(server, bob);
  const b2 = await device(server, bob);
  const b3 = await device(server, bob);
  // (One client holds one channel per topic name: each of Bob's tries gets its own.)
  for (const c of [a1, a2, b1, b2, b3]) await c.realtime.setAuth();
  const got = [];
  const mine = await subscribed(a2.channel(room, priv).on('broadcast', { event: '*' }, (m) => got.push(m.payload.n)));
  const sender = await subscribed(a1.channel(room, priv));
  // Bob may not read Alice's room: the join is refused with Realtime's words.
  await assert.rejects(subscribed(b1.channel(room, priv)), /Unauthorized: You do not have permissions to read from this Channel topic/);
  // A public channel with the same name hears nothing of the private one.
  const overheard = [];
  await subscribed(b2.channel(room).on('broadcast', { event: '*' }, (m) => overheard.push(m)));
  // In the lobby Bob may read but not write: his send is acknowledged and dropped.
  const lobbyGot = [];
  await subscribed(a2.channel('lobby:1', priv).on('broadcast', { event: '*' }, (m) => lobbyGot.push(m.payload.n)));
  const bobInLobby = await subscribed(b2.channel('lobby:1', priv));
  assert.equal(await bobInLobby.send({ type: 'broadcast', event: 'say', payload: { n: 'bob' } }), 'ok');
  // Alice's sends in her room arrive; a refused httpSend from Bob does not.
  assert.deepEqual(await b3.channel(room, priv).httpSend('say', { n: 'bob over http' }), { success: true });
  assert.equal(await sender.send({ type: 'broadcast', event: 'say', payload: { n: 1 } }), 'ok');
  assert.deepEqual(await a1.channel(room, priv).httpSend('say', { n: 2 }), { success: true });
  await eventually(() => got.length === 2, 5000, 'both of Alice\'s messages');
  assert.deepEqual(got, [1, 2], 'Bob\'s refused message, sent first, never arrived');
  assert.deepEqual(overheard, []);
  assert.deepEqual(lobbyGot, []);
  await Promise.all([a1, a2, b1, b2, b3].map((c) => c.removeAllChannels()));
  void mine;
});

test('presence: both devices of a user are seen, and leaves are reported', async () => {
  const d1 = await device(server, alice);
  const d2 = await device(server, alice, { vsn: '1.0.0' });
  const leaves = [];
  const ch1 = d1.channel('devices', { config: { presence: { key: 'phone' } } });
  ch1.on('presence', { event: 'sync' }, () => {}).on('presence', { event: 'leave' }, (e) => leaves.push(e.key));
  const ch2 = d2.channel('devices', { config: { presence: { key: 'laptop' } } });
  ch2.on('presence', { event: 'sync' }, () => {});
  await subscribed(ch1);
  await subscribed(ch2);
  assert.equal(await ch1.track({ device: 'phone', at: 1 }), 'ok');
  assert.equal(await ch2.track({ device: 'laptop', at: 2 }), 'ok');
  await eventually(() => Object.keys(ch1.presenceState()).length === 2 && Object.keys(ch2.presenceState()).length === 2, 5000, 'presence sync');
  const st = ch1.presenceState();
  assert.equal(st.phone[0].device, 'phone');
  assert.equal(st.laptop[0].device, 'laptop');
  assert.ok(st.laptop[0].presence_ref);
  await ch2.untrack();
  await eventually(() => leaves.includes('laptop'), 5000, 'leave');
  assert.deepEqual(Object.keys(ch1.presenceState()), ['phone']);
  await d1.removeAllChannels();
  await d2.removeAllChannels();
});

test('presence: a channel joined without presence listeners is enabled by its first track', async () => {
  const d1 = await device(server, alice);
  const d2 = await device(server, bob);
  // Listens, and tracks first.
  const watcher = d2.channel('lobby', { config: { presence: { key: 'bob' } } });
  watcher.on('presence', { event: 'sync' }, () => {});
  await subscribed(watcher);
  assert.equal(await watcher.track({ who: 'bob' }), 'ok');
  // No presence listener: supabase-js joins with presence disabled, then tracks.
  const quiet = d1.channel('lobby', { config: { presence: { key: 'alice' } } });
  await subscribed(quiet);
  assert.deepEqual(quiet.presenceState(), {}, 'no presence before the track');
  assert.equal(await quiet.track({ who: 'alice' }), 'ok');
  await eventually(() => Object.keys(quiet.presenceState()).sort().join() === 'alice,bob', 5000, 'state after the first track');
  assert.equal(quiet.presenceState().bob[0].who, 'bob');
  await eventually(() => Object.keys(watcher.presenceState()).sort().join() === 'alice,bob', 5000, 'the others see the track');
  await d1.removeAllChannels();
  await d2.removeAllChannels();
});

// ---- the raw protocol, for what supabase-js never sends ----

function rawSocket(vsn = '1.0.0', key = server.anonKey) {
  const url = `${server.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${encodeURIComponent(key)}&vsn=${vsn}`;
  const ws = new WebSocket(url);
  const inbox = [];
  ws.on('message', (d, isBinary) => inbox.push(isBinary ? d : JSON.parse(d.toString())));
  const opened = new Promise((res, rej) => { ws.on('open', res); ws.on('error', rej); ws.on('unexpected-response', (_q, resp) => rej(Object.assign(new Error('refused'), { status: resp.statusCode }))); });
  return { ws, inbox, opened };
}

test('bad input on the socket: garbage, unknown topics, bad filters, bad tokens', async () => {
  // A bad connect token is refused before the upgrade.
  const refused = rawSocket('1.0.0', 'forged.token.value');
  await assert.rejects(refused.opened, (e) => e.status === 401);

  const s = rawSocket();
  await s.opened;
  s.ws.send('this is not json');
  s.ws.send(JSON.stringify([1, 2, 3]));
  s.ws.send(Buffer.from([9, 9, 9]));
  await eventually(() => s.inbox.filter((m) => m.event === 'phx_error').length === 3, 3000, 'malformed-frame errors');
  // The socket still works.
  s.ws.send(JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: 'hb1' }));
  await eventually(() => s.inbox.find((m) => m.ref === 'hb1' && m.payload.status === 'ok'), 3000, 'heartbeat reply');
  // Topics must start with realtime:, pushes need a joined topic.
  s.ws.send(JSON.stringify({ topic: 'room1', event: 'phx_join', payload: {}, ref: 'j1', join_ref: 'j1' }));
  s.ws.send(JSON.stringify({ topic: 'realtime:never-joined', event: 'broadcast', payload: {}, ref: 'b1' }));
  await eventually(() => s.inbox.filter((m) => m.payload?.response?.reason === 'unmatched topic').length === 2, 3000, 'unmatched topic');
  // An expired token in the join payload.
  const expired = makeJwt({ role: 'authenticated', exp: Math.floor(Date.now() / 1000) - 30 });
  s.ws.send(JSON.stringify({ topic: 'realtime:x', event: 'phx_join', payload: { config: {}, access_token: expired }, ref: 'j2', join_ref: 'j2' }));
  await eventually(() => s.inbox.find((m) => m.ref === 'j2'), 3000, 'expired join reply');
  assert.match(s.inbox.find((m) => m.ref === 'j2').payload.response.reason, /^InvalidJWTToken: Token has expired \d+ seconds ago$/);
  // A bad filter: the join succeeds, a system error explains, the channel stays open.
  s.ws.send(JSON.stringify({ topic: 'realtime:bad', event: 'phx_join', ref: 'j3', join_ref: 'j3', payload: { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'todos', filter: 'priority=eq.not-a-number' }] } } }));
  s.ws.send(JSON.stringify({ topic: 'realtime:bad2', event: 'phx_join', ref: 'j4', join_ref: 'j4', payload: { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'not_published' }] } } }));
  await eventually(() => s.inbox.filter((m) => m.event === 'system' && m.payload.status === 'error').length === 2, 3000, 'system errors');
  const sys = s.inbox.filter((m) => m.event === 'system');
  assert.ok(sys.some((m) => m.payload.extension === 'postgres_changes' && /invalid filter value/.test(m.payload.message)));
  assert.ok(sys.some((m) => /Unable to subscribe to changes/.test(m.payload.message)));
  // An oversized frame closes that socket only.
  const closed = new Promise((r) => s.ws.on('close', (code) => r(code)));
  s.ws.send('x'.repeat(5_100_000));
  // The server sends close code 1009; when the rest of the oversized frame is still
  // unread, closing the TCP socket resets it and the client may only see 1006.
  assert.ok([1009, 1006].includes(await closed));
  // Everyone else is still served.
  const a1 = await device(server, alice);
  const got = [];
  await subscribed(a1.channel('after-garbage').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos' }, (p) => got.push(p)));
  await a1.from('todos').insert({ task: 'still served' });
  await eventually(() => got.length === 1, 5000);
  await a1.removeAllChannels();
});

test('leave gets a reply and phx_close; a duplicate join closes the old channel', async () => {
  const s = rawSocket('2.0.0');
  await s.opened;
  s.ws.send(JSON.stringify(['1', '1', 'realtime:dup', 'phx_join', { config: {} }]));
  s.ws.send(JSON.stringify(['2', '2', 'realtime:dup', 'phx_join', { config: {} }]));
  await eventually(() => s.inbox.some((m) => m[3] === 'phx_reply' && m[1] === '2'), 3000);
  assert.ok(s.inbox.some((m) => m[3] === 'phx_close' && m[0] === '1'), 'old channel closed');
  s.ws.send(JSON.stringify(['2', '3', 'realtime:dup', 'phx_leave', {}]));
  await eventually(() => s.inbox.some((m) => m[3] === 'phx_close' && m[0] === '2'), 3000);
  const reply = s.inbox.find((m) => m[1] === '3');
  assert.deepEqual(reply, ['2', '3', 'realtime:dup', 'phx_reply', { status: 'ok', response: {} }]);
  s.ws.close();
});

import { createHmac } from 'node:crypto';
function makeJwt(claims, secret = 'super-secret-jwt-token-with-at-least-32-characters-long') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(claims);
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
