// Bad input over REST: malformed filters and orders, unknown names, invalid bodies, bad
// JWTs, and SQL-injection attempts. Each gets a PostgREST-shaped error, the server keeps
// serving, and no data changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startServer, client, newUser, device } from './harness.mjs';

let server, alice, a1, service;
const SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function jwt(claims, { secret = SECRET, alg = 'HS256' } = {}) {
  const head = b64({ alg, typ: 'JWT' });
  const body = b64(claims);
  if (alg === 'none') return `${head}.${body}.`;
  return `${head}.${body}.${createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')}`;
}

before(async () => {
  server = await startServer();
  alice = await newUser(server);
  a1 = await device(server, alice);
  service = client(server, { key: server.serviceKey });
  await a1.from('todos').insert([{ task: 'keep 1' }, { task: 'keep 2' }]);
});
after(async () => { await server?.stop(); });

async function snapshot() {
  const { data, error } = await service.from('todos').select('id, task, done, user_id').order('id');
  assert.equal(error, null);
  return JSON.stringify(data);
}

async function raw(pathAndQuery, { method = 'GET', token, body, headers = {} } = {}) {
  const res = await fetch(`${server.url}/rest/v1/${pathAndQuery}`, {
    method,
    headers: { apikey: server.anonKey, authorization: `Bearer ${token ?? alice.session.access_token}`, 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* empty body */ }
  return { status: res.status, json, headers: res.headers };
}

function assertPgrstShape(r) {
  assert.ok(r.json && typeof r.json.code === 'string' && typeof r.json.message === 'string', JSON.stringify(r.json));
  assert.ok('details' in r.json && 'hint' in r.json);
}

test('malformed filters, orders, limits and selects are PGRST100', async () => {
  const before = await snapshot();
  for (const q of ['todos?id=eq', 'todos?id=bogus.1', 'todos?id=in.1,2', 'todos?done=is.maybe', 'todos?or=id.eq.1',
    'todos?or=(id.eq.1,)', 'todos?order=id.sideways', 'todos?order=', 'todos?limit=-5', 'todos?offset=abc',
    'todos?select=id,(', 'todos?select=id::text;drop']) {
    const r = await raw(q);
    assert.equal(r.status, 400, q);
    assertPgrstShape(r);
    assert.equal(r.json.code, 'PGRST100', q);
  }
  assert.equal(await snapshot(), before);
});

test('unknown tables, columns and functions', async () => {
  let r = await raw('nope');
  assert.equal(r.status, 404); assert.equal(r.json.code, 'PGRST205');
  r = await raw('todos?nope=eq.1');
  assert.equal(r.status, 400); assert.equal(r.json.code, '42703');
  r = await raw('todos?order=nope.desc');
  assert.equal(r.json.code, '42703');
  r = await raw('todos?select=nope');
  assert.equal(r.json.code, '42703');
  r = await raw('todos', { method: 'POST', body: JSON.stringify({ task: 'x', nope: 1 }) });
  assert.equal(r.json.code, 'PGRST204');
  r = await raw('rpc/nope', { method: 'POST', body: '{}' });
  assert.equal(r.status, 404); assert.equal(r.json.code, 'PGRST202');
  r = await raw('todos', { headers: { 'accept-profile': 'auth' } });
  assert.equal(r.status, 406); assert.equal(r.json.code, 'PGRST106');
});

test('invalid JSON bodies are PGRST102 and write nothing', async () => {
  const before = await snapshot();
  for (const body of ['{not json', '', '42', '"str"', '[1,2]', '[{"task":"ok"}, 5]']) {
    const r = await raw('todos', { method: 'POST', body });
    assert.equal(r.status, 400, body);
    assert.equal(r.json.code, 'PGRST102', body);
  }
  let r = await raw('todos?id=gt.0', { method: 'PATCH', body: '[{"task":"x"}]' });
  assert.equal(r.json.code, 'PGRST102');
  r = await raw('rpc/add_numbers', { method: 'POST', body: '[1]' });
  assert.equal(r.json.code, 'PGRST102');
  assert.equal(await snapshot(), before);
});

test('a failing row in a bulk insert writes none of the batch', async () => {
  const before = await snapshot();
  const r = await raw('todos', { method: 'POST', body: JSON.stringify([{ task: 'ok 1' }, { task: '' }, { task: 'ok 3' }]) });
  assert.equal(r.status, 400);
  assert.equal(r.json.code, '23514');
  assert.equal(await snapshot(), before);
});

test('forged, alg:none, expired and claim-less JWTs are refused with 401', async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = [
    [jwt({ role: 'service_role', exp: now + 100 }, { secret: 'x'.repeat(40) }), 'PGRST301'],
    [jwt({ role: 'service_role', exp: now + 100 }, { alg: 'none' }), 'PGRST301'],
    [jwt({ role: 'authenticated', sub: alice.user.id, exp: now - 5 }), 'PGRST303'],
    [jwt({ role: 'authenticated', sub: alice.user.id }), 'PGRST303'],
    ['not-a-jwt', 'PGRST301'],
  ];
  const before = await snapshot();
  for (const [token, code] of cases) {
    const r = await raw('todos', { token });
    assert.equal(r.status, 401, token);
    assert.equal(r.json.code, code, token);
    assert.match(r.headers.get('www-authenticate') || '', /Bearer/);
    const w = await raw('todos?id=gt.0', { method: 'DELETE', token });
    assert.equal(w.status, 401);
  }
  // A token for a role that does not exist.
  const r = await raw('todos', { token: jwt({ role: 'superuser', exp: now + 100 }) });
  assert.equal(r.status, 401);
  // A wrong apikey: the gateway refuses.
  const res2 = await fetch(`${server.url}/rest/v1/todos`, { headers: { apikey: 'wrong' } });
  assert.equal(res2.status, 401);
  // No apikey at all: /rest/v1 lets it through as the anonymous role (as `supabase
  // start` does), so RLS decides: anon sees no one's todos and cannot write any.
  const anonRead = await fetch(`${server.url}/rest/v1/todos?select=id`);
  assert.equal(anonRead.status, 200);
  assert.deepEqual(await anonRead.json(), []);
  const anonWrite = await fetch(`${server.url}/rest/v1/todos`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task: 'sneaky' }),
  });
  assert.equal(anonWrite.status, 401);
  assert.equal((await anonWrite.json()).code, '42501');
  // ... but a bad bearer token is still checked.
  const badBearer = await fetch(`${server.url}/rest/v1/todos`, { headers: { authorization: 'Bearer not.a.jwt' } });
  assert.equal(badBearer.status, 401);
  // Other services still want the key.
  const authNoKey = await fetch(`${server.url}/auth/v1/user`);
  assert.equal(authNoKey.status, 401);
  assert.equal(await snapshot(), before);
});

test('SQL injection in values, identifiers, order and select is inert', async () => {
  const before = await snapshot();
  const attempts = [
    `todos?task=eq.${encodeURIComponent("x'; DELETE FROM todos; --")}`,
    `todos?id=eq.${encodeURIComponent('1 OR 1=1')}`,
    `todos?id=in.(${encodeURIComponent("1); DELETE FROM todos; --")})`,
    `todos?${encodeURIComponent('id" = 1 OR "1')}=eq.1`,
    `todos?order=${encodeURIComponent('id; DELETE FROM todos')}`,
    `todos?order=${encodeURIComponent('(select 1)')}`,
    `todos?select=${encodeURIComponent('id, (select count(*) from auth.users)')}`,
    `todos?select=${encodeURIComponent('x:id::text); DELETE FROM todos; --')}`,
    `${encodeURIComponent('todos; DELETE FROM todos')}`,
    `todos?task=like.${encodeURIComponent("%' OR '1'='1")}`,
    // Aggregates, quantified operators, range operators, RPC filters, embeds by FK name.
    `todos?select=${encodeURIComponent('id.sum();DELETE FROM todos')}`,
    `todos?select=${encodeURIComponent('x:id.count()::int4);DELETE FROM todos;--')}`,
    `todos?select=${encodeURIComponent('"id) FROM todos; DELETE FROM todos; --".sum()')}`,
    `todos?select=${encodeURIComponent('count()::text); DELETE FROM todos; --')}`,
    `todos?task=like(any).${encodeURIComponent("{x'); DELETE FROM todos; --,y}")}`,
    `todos?id=eq(all).${encodeURIComponent('{1) OR (1=1}')}`,
    `todos?id=sl.${encodeURIComponent('[1,2); DELETE FROM todos; --')}`,
    `rpc/todos_done?is_done=true&task=eq.${encodeURIComponent("x' OR '1'='1")}`,
    `rpc/todos_done?is_done=true&select=${encodeURIComponent('id, (select 1)')}`,
    `messages?select=${encodeURIComponent('id,messages_conversation_id_fkey; DELETE FROM todos(*)')}`,
    `todos?task=fts(${encodeURIComponent("english'); DELETE FROM todos; --")}).x`,
    `todos?task=wfts.${encodeURIComponent("x') OR true OR ('")}`,
    `todos?${encodeURIComponent("meta->>a') = 'a' OR ('1")}=eq.1`,
    // Embedded filters, order and limit; spread and empty embeds; computed fields.
    `todos?select=task,labels(name)&${encodeURIComponent('labels.name"; DELETE FROM todos; --')}=eq.x`,
    `todos?select=task,labels!inner(name)&labels.name=eq.${encodeURIComponent("x'); DELETE FROM todos; --")}`,
    `todos?select=task,labels!inner(name)&labels.or=${encodeURIComponent("(name.eq.x'),id.eq.(select 1))")}`,
    `todos?select=task,labels(name)&labels.order=${encodeURIComponent('name; DELETE FROM todos')}`,
    `todos?select=task,labels(name)&labels.limit=${encodeURIComponent('1; DELETE FROM todos')}`,
    `todos?select=${encodeURIComponent('task,...labels(name); DELETE FROM todos(*)')}`,
    `todos?select=${encodeURIComponent('task,labels!inner(); DELETE FROM todos')}`,
    `todos?select=${encodeURIComponent('shout(todos); DELETE FROM todos')}`,
    `todos?shout=eq.${encodeURIComponent("X' OR '1'='1")}`,
  ];
  for (const q of attempts) {
    const r = await raw(q);
    if (r.status === 200) {
      assert.deepEqual(r.json, [], `${q} must match nothing`);
    } else {
      assert.ok(r.status >= 400 && r.status < 500, `${q}: ${r.status}`);
      assertPgrstShape(r);
    }
  }
  // A JSON path's key is a value: this one is looked up (and found in no row), not run.
  const key = "'x') FROM todos; DELETE FROM todos; --";
  const path = await raw(`todos?select=${encodeURIComponent(`meta->>${key}`)}`);
  assert.equal(path.status, 200);
  assert.ok(path.json.length > 0 && path.json.every((row) => row[key] === null), JSON.stringify(path.json));
  const ordered = await raw(`todos?select=task&order=${encodeURIComponent('meta->a); DELETE FROM todos; --')}`);
  assert.equal(ordered.status, 200, 'ordered by a key no row has');
  assert.ok(ordered.json.length > 0);
  // Plan options are a fixed list: anything else is ignored, never spliced.
  const plan = await fetch(`${server.url}/rest/v1/todos?select=id`, {
    headers: { apikey: server.anonKey, authorization: `Bearer ${alice.session.access_token}`, accept: 'application/vnd.pgrst.plan+text; options=analyze|verbose); DELETE FROM todos; --' },
  });
  assert.equal(plan.status, 200);
  assert.match(await plan.text(), /Aggregate/);
  // A body passed whole to a function is a value.
  const echoed = await raw('rpc/echo_body', { method: 'POST', body: JSON.stringify({ q: "'); DELETE FROM todos; --" }) });
  assert.equal(echoed.status, 200);
  assert.deepEqual(echoed.json, { q: "'); DELETE FROM todos; --" });
  const r = await raw(`todos?task=eq.${encodeURIComponent("x' OR '1'='1")}`, { method: 'DELETE' });
  assert.equal(r.status, 204);
  const w = await raw('todos', { method: 'POST', body: JSON.stringify({ task: "'); DROP TABLE todos; --" }), headers: { prefer: 'return=representation' } });
  assert.equal(w.status, 201);
  assert.equal(w.json[0].task, "'); DROP TABLE todos; --", 'stored verbatim as data');
  await raw(`todos?id=eq.${w.json[0].id}`, { method: 'DELETE' });
  assert.equal(await snapshot(), before);
});
