// Short-lived access tokens: a refreshed token keeps Realtime delivering; an expired one
// ends the channel, as Realtime does. The server issues 4-second tokens here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, newUser, device, eventually, subscribed } from './harness.mjs';

let server, alice;
before(async () => {
  server = await startServer(['--jwt-expiry', '4']);
  alice = await newUser(server);
});
after(async () => { await server?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('token refresh keeps postgres_changes flowing past the old expiry', async () => {
  const writer = await device(server, alice);
  const reader = await device(server, alice);
  const got = [];
  const statuses = [];
  const ch = reader.channel('refresh').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'todos' }, (p) => got.push(p.new.task));
  await new Promise((resolve, reject) => ch.subscribe((s, e) => { statuses.push(s); if (s === 'SUBSCRIBED') resolve(); else if (s !== 'CLOSED') reject(e); }));
  const { data: { session: s0 } } = await reader.auth.getSession();
  // Refresh twice while the channel is joined; supabase-js pushes access_token each time.
  for (let i = 0; i < 2; i++) {
    await sleep(2500);
    const { data, error } = await reader.auth.refreshSession();
    assert.equal(error, null);
    assert.notEqual(data.session.access_token, s0.access_token);
  }
  assert.ok(Date.now() / 1000 > JSON.parse(Buffer.from(s0.access_token.split('.')[1], 'base64url')).exp, 'the first token has expired');
  await writer.auth.refreshSession();
  const { error } = await writer.from('todos').insert({ task: 'after refresh' });
  assert.equal(error, null);
  await eventually(() => got.includes('after refresh'), 5000, 'delivery after refresh');
  assert.deepEqual(statuses, ['SUBSCRIBED']);
  await reader.removeAllChannels();
});

test('an expired channel token ends the channel with a system error', async () => {
  const reader = await device(server, alice);
  const statuses = [];
  const systems = [];
  const ch = reader.channel('expiring').on('system', {}, (m) => systems.push(m));
  await new Promise((resolve) => ch.subscribe((s) => { statuses.push(s); if (s === 'SUBSCRIBED') resolve(); }));
  await eventually(() => statuses.includes('CLOSED') || statuses.includes('CHANNEL_ERROR'), 8000, 'channel end');
  assert.ok(systems.some((m) => /Token has expired/.test(m.message)), JSON.stringify(systems));
  await reader.removeAllChannels();
});
