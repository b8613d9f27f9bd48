// supabase-js (auth-js) against supasync-dev's /auth/v1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, newUser, device } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

test('signup is confirmed at once and returns a session with Supabase claims', async () => {
  const u = await newUser(server);
  assert.ok(u.session.access_token && u.session.refresh_token);
  assert.equal(u.session.token_type, 'bearer');
  assert.equal(u.session.expires_in, 3600);
  const c = claims(u.session.access_token);
  assert.equal(c.sub, u.user.id);
  assert.equal(c.role, 'authenticated');
  assert.equal(c.aud, 'authenticated');
  assert.equal(c.email, u.email);
  assert.ok(c.session_id && c.exp > c.iat);
  assert.ok(u.user.email_confirmed_at);
});

test('duplicate signup, weak password and bad email are refused', async () => {
  const u = await newUser(server);
  const c = client(server);
  let r = await c.auth.signUp({ email: u.email, password: 'another-password' });
  assert.equal(r.error.status, 422);
  assert.equal(r.error.code, 'user_already_exists');
  r = await c.auth.signUp({ email: 'weak@example.com', password: '123' });
  assert.equal(r.error.code, 'weak_password');
  r = await c.auth.signUp({ email: 'not-an-email', password: 'long-enough' });
  assert.equal(r.error.status, 400);
});

test('password sign-in, wrong password, getUser, updateUser', async () => {
  const u = await newUser(server);
  const c = client(server);
  let r = await c.auth.signInWithPassword({ email: u.email, password: 'wrong-password' });
  assert.equal(r.error.code, 'invalid_credentials');
  assert.equal(r.error.message, 'Invalid login credentials');
  r = await c.auth.signInWithPassword({ email: u.email, password: u.password });
  assert.equal(r.error, null);
  assert.equal(r.data.user.id, u.user.id);
  const g = await c.auth.getUser();
  assert.equal(g.data.user.email, u.email);
  const up = await c.auth.updateUser({ data: { display_name: 'Ada' } });
  assert.equal(up.error, null);
  assert.equal(up.data.user.user_metadata.display_name, 'Ada');
});

test('refresh-token rotation: new token each time, lost-response reuse, family revoked on replay', async () => {
  const u = await newUser(server);
  const c = client(server);
  await c.auth.setSession({ access_token: u.session.access_token, refresh_token: u.session.refresh_token });
  const r1 = await c.auth.refreshSession();
  assert.equal(r1.error, null);
  const t1 = r1.data.session.refresh_token;
  assert.notEqual(t1, u.session.refresh_token);
  // The first token was rotated away, but it is the parent of the active one: a client
  // whose answer got lost gets the active token back.
  const other = client(server);
  const again = await other.auth.refreshSession({ refresh_token: u.session.refresh_token });
  assert.equal(again.error, null);
  assert.equal(again.data.session.refresh_token, t1);
  const r2 = await c.auth.refreshSession();
  const t2 = r2.data.session.refresh_token;
  assert.notEqual(t2, t1);
  // A token two generations old, past the reuse window for parents, is a replay:
  // GoTrue revokes the whole session. (Our reuse window is 10 s, so wait it out.)
  await new Promise((res) => setTimeout(res, 10500));
  const replay = await other.auth.refreshSession({ refresh_token: u.session.refresh_token });
  assert.equal(replay.error.code, 'refresh_token_already_used');
  const after = await client(server).auth.refreshSession({ refresh_token: t2 });
  assert.ok(after.error, 'the session was revoked');
});

test('logout revokes the session', async () => {
  const u = await newUser(server);
  const c = client(server);
  await c.auth.signInWithPassword({ email: u.email, password: u.password });
  const { data: { session } } = await c.auth.getSession();
  assert.equal((await c.auth.signOut()).error, null);
  const r = await client(server).auth.getUser(session.access_token);
  // auth-js turns GoTrue's 403 session_not_found into AuthSessionMissingError.
  assert.equal(r.error.name, 'AuthSessionMissingError');
  const raw = await fetch(`${server.url}/auth/v1/user`, {
    headers: { apikey: server.anonKey, authorization: `Bearer ${session.access_token}`, 'x-supabase-api-version': '2024-01-01' },
  });
  assert.equal(raw.status, 403);
  assert.equal((await raw.json()).code, 'session_not_found');
  assert.equal(raw.headers.get('x-supabase-api-version'), '2024-01-01');
  const rr = await client(server).auth.refreshSession({ refresh_token: session.refresh_token });
  assert.ok(rr.error);
});

test('bad bearer tokens on /auth/v1/user', async () => {
  const c = client(server);
  const r = await c.auth.getUser('not.a.jwt');
  assert.equal(r.error.status, 403);
  assert.equal(r.error.code, 'bad_jwt');
});

test('the dev hook /_dev/expire-tokens: issued access tokens are refused, a refresh gets a working one', async () => {
  const u = await newUser(server);
  const c = await device(server, u);
  const tooEarly = await fetch(`${server.url}/_dev/expire-tokens`, { method: 'POST', headers: { apikey: server.anonKey } });
  assert.equal(tooEarly.status, 403, 'only the service-role key may call it');
  // Tokens issued in the current second stay valid: let it pass.
  const issued = Math.floor(Date.now() / 1000);
  while (Math.floor(Date.now() / 1000) <= issued) await new Promise((r) => setTimeout(r, 20));
  const res = await fetch(`${server.url}/_dev/expire-tokens`, { method: 'POST', headers: { apikey: server.serviceKey } });
  assert.equal(res.status, 204);
  const { error } = await c.from('todos').select('*');
  assert.equal(error?.code, 'PGRST303', 'the old token is refused as expired (PostgREST 12: JWT expired)');
  const { error: re } = await c.auth.refreshSession();
  assert.equal(re, null);
  const { error: after } = await c.from('todos').select('*');
  assert.equal(after, null, 'the refreshed token works');
});
