// supabase-js (postgrest-js) against supasync-dev's /rest/v1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, newUser, device } from './harness.mjs';

let server, alice, bob, a1, a2, b1, b2, anon, service;

before(async () => {
  server = await startServer();
  alice = await newUser(server);
  bob = await newUser(server);
  a1 = await device(server, alice);
  a2 = await device(server, alice);
  b1 = await device(server, bob);
  b2 = await device(server, bob);
  anon = client(server);
  service = client(server, { key: server.serviceKey });
});
after(async () => { await server?.stop(); });

async function seedTodos(c, n, prefix) {
  const rows = Array.from({ length: n }, (_, i) => ({
    task: `${prefix} ${i}`, priority: i % 3 === 0 ? null : i, done: i % 2 === 0, tags: [`t${i % 4}`], meta: { i },
  }));
  const { data, error } = await c.from('todos').insert(rows).select();
  assert.equal(error, null);
  return data;
}

test('RLS isolates users across devices; anon sees nothing', async () => {
  const rows = await seedTodos(a1, 5, 'alice');
  assert.equal(rows.length, 5);
  assert.equal(rows[0].user_id, alice.user.id);
  const { data: onA2 } = await a2.from('todos').select('id').like('task', 'alice%');
  assert.equal(onA2.length, 5);
  const { data: onB } = await b1.from('todos').select('id');
  assert.deepEqual(onB, []);
  // Bob's own rows are shared between his devices and invisible to Alice's.
  await b2.from('todos').insert({ task: 'bob only' });
  const { data: bobOnB1 } = await b1.from('todos').select('task');
  assert.deepEqual(bobOnB1, [{ task: 'bob only' }]);
  const { data: bobOnA1 } = await a1.from('todos').select('task').eq('task', 'bob only');
  assert.deepEqual(bobOnA1, []);
  const { data: onAnon } = await anon.from('todos').select('id');
  assert.deepEqual(onAnon, []);
  const { data: all } = await service.from('todos').select('id').like('task', 'alice%');
  assert.equal(all.length, 5, 'service role bypasses RLS');
  // Bob cannot update or delete Alice's rows: zero rows affected, nothing changes.
  const { data: upd, error: updErr } = await b1.from('todos').update({ task: 'hacked' }).eq('id', rows[0].id).select();
  assert.equal(updErr, null);
  assert.deepEqual(upd, []);
  await b1.from('todos').delete().eq('id', rows[0].id);
  const { data: still } = await a1.from('todos').select('task').eq('id', rows[0].id).single();
  assert.equal(still.task, 'alice 0');
});

test('select columns, aliases, casts and values typed as PostgREST renders them', async () => {
  const [row] = await seedTodos(a1, 1, 'typed');
  const { data, error } = await a1.from('todos').select('id, label:task, prio:priority::text, tags, meta, created_at').eq('id', row.id).single();
  assert.equal(error, null);
  assert.equal(data.label, 'typed 0');
  assert.equal(data.prio, null);
  assert.deepEqual(data.tags, ['t0']);
  assert.deepEqual(data.meta, { i: 0 });
  assert.match(data.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00$/);
});

test('filters, logic trees, order, range and exact count', async () => {
  const c = (await device(server, await newUser(server)));
  await seedTodos(c, 12, 'f');
  const q = () => c.from('todos').select('task, priority, done', { count: 'exact' });
  let r = await q().eq('done', true);
  assert.equal(r.count, 6);
  r = await q().neq('done', true);
  assert.equal(r.data.length, 6);
  r = await q().gt('priority', 8);
  assert.deepEqual(r.data.map((x) => x.priority).sort((a, b) => a - b), [10, 11]);
  r = await q().gte('priority', 10).lte('priority', 10);
  assert.equal(r.data.length, 1);
  r = await q().lt('priority', 2);
  assert.deepEqual(r.data.map((x) => x.priority), [1]);
  r = await q().is('priority', null);
  assert.equal(r.data.length, 4);
  r = await q().not('priority', 'is', null);
  assert.equal(r.data.length, 8);
  r = await q().in('priority', [1, 2, 5]);
  assert.equal(r.data.length, 3);
  r = await q().ilike('task', 'F 1%');
  assert.deepEqual(r.data.map((x) => x.task).sort(), ['f 1', 'f 10', 'f 11']);
  r = await q().or('priority.eq.1,priority.eq.2,and(done.eq.true,priority.gt.9)');
  assert.deepEqual(r.data.map((x) => x.priority).sort((a, b) => a - b), [1, 2, 10]);
  r = await q().contains('tags', ['t1']);
  assert.equal(r.data.length, 3);
  r = await q().order('done', { ascending: false }).order('priority', { ascending: true, nullsFirst: true });
  assert.equal(r.data[0].done, true);
  assert.equal(r.data[0].priority, null);
  r = await q().order('priority', { ascending: false, nullsFirst: false }).range(2, 4);
  assert.equal(r.error, null);
  assert.deepEqual(r.data.map((x) => x.priority), [8, 7, 5]);
  assert.equal(r.count, 12);
  assert.equal(r.status, 206);
  r = await q().limit(3).order('priority').range(0, 1);
  assert.equal(r.data.length, 2);
  const head = await c.from('todos').select('*', { count: 'exact', head: true }).eq('done', false);
  assert.equal(head.count, 6);
  assert.equal(head.data, null);
  r = await q().range(50, 60);
  assert.equal(r.status, 416);
  assert.equal(r.error.code, 'PGRST103');
});

test('single and maybeSingle', async () => {
  const c = await device(server, await newUser(server));
  let r = await c.from('todos').select('*').eq('id', -1).single();
  assert.equal(r.error.code, 'PGRST116');
  assert.equal(r.status, 406);
  r = await c.from('todos').select('*').eq('id', -1).maybeSingle();
  assert.equal(r.error, null);
  assert.equal(r.data, null);
  await seedTodos(c, 2, 's');
  r = await c.from('todos').select('*').single();
  assert.equal(r.error.code, 'PGRST116');
  assert.match(r.error.details, /2 rows/);
});

test('idempotent upsert on a composite unique key', async () => {
  const c = await device(server, await newUser(server));
  const row = { local_id: 'L-1', body: 'first' };
  let r = await c.from('messages').upsert(row, { onConflict: 'user_id,local_id' }).select();
  assert.equal(r.error, null);
  const id = r.data[0].id;
  r = await c.from('messages').upsert({ ...row, body: 'second' }, { onConflict: 'user_id,local_id' }).select();
  assert.equal(r.error, null);
  assert.equal(r.data[0].id, id, 'same row, not a duplicate');
  assert.equal(r.data[0].body, 'second');
  r = await c.from('messages').upsert({ ...row, body: 'ignored' }, { onConflict: 'user_id,local_id', ignoreDuplicates: true }).select();
  assert.deepEqual(r.data, []);
  const { data: all } = await c.from('messages').select('body');
  assert.deepEqual(all, [{ body: 'second' }]);
  // Bulk upsert of 3 rows, one of them already there.
  r = await c.from('messages').upsert([{ local_id: 'L-1', body: 'b1' }, { local_id: 'L-2', body: 'b2' }, { local_id: 'L-3', body: 'b3' }], { onConflict: 'user_id,local_id' });
  assert.equal(r.error, null);
  assert.equal(r.status, 201);
  const { count } = await c.from('messages').select('*', { count: 'exact', head: true });
  assert.equal(count, 3);
  // A plain insert of an existing local id is a 409 unique violation.
  r = await c.from('messages').insert({ local_id: 'L-2', body: 'dup' });
  assert.equal(r.status, 409);
  assert.equal(r.error.code, '23505');
});

test('insert defaults and missing=default for bulk rows', async () => {
  const c = await device(server, await newUser(server));
  const { data, error } = await c.from('todos').insert([{ task: 'a', done: true }, { task: 'b' }], { defaultToNull: false }).select('task, done');
  assert.equal(error, null);
  assert.deepEqual(data, [{ task: 'a', done: true }, { task: 'b', done: false }]);
  const r = await c.from('todos').insert([{ task: 'c', done: true }, { task: 'd' }]).select('task, done');
  assert.equal(r.error.code, '23502', 'without missing=default a missing key is NULL');
});

test('update and delete with filters, returning rows', async () => {
  const c = await device(server, await newUser(server));
  await seedTodos(c, 4, 'u');
  let r = await c.from('todos').update({ done: true, meta: { changed: true } }).eq('done', false).select('task, done, meta');
  assert.equal(r.data.length, 2);
  assert.ok(r.data.every((x) => x.done && x.meta.changed));
  r = await c.from('todos').delete().in('task', ['u 0', 'u 1']).select('task');
  assert.deepEqual(r.data.map((x) => x.task).sort(), ['u 0', 'u 1']);
  r = await c.from('todos').delete().eq('task', 'u 2');
  assert.equal(r.status, 204);
  const { count } = await c.from('todos').select('*', { count: 'exact', head: true });
  assert.equal(count, 1);
});

test('errors have PostgREST codes and statuses', async () => {
  let r = await a1.from('todos').insert({ task: '' });
  assert.equal(r.status, 400);
  assert.equal(r.error.code, '23514');
  r = await a1.from('todos').insert({ task: 'x', user_id: bob.user.id });
  assert.equal(r.status, 403);
  assert.equal(r.error.code, '42501');
  r = await anon.from('todos').insert({ task: 'x' });
  assert.ok([400, 401].includes(r.status), `anon insert: ${r.status}`);
  r = await anon.from('conversations').insert({ title: 'x', user_id: alice.user.id });
  assert.equal(r.status, 401);
  assert.equal(r.error.code, '42501');
  r = await a1.from('no_such_table').select('*');
  assert.equal(r.status, 404);
  assert.equal(r.error.code, 'PGRST205');
  r = await a1.from('todos').select('nope');
  assert.equal(r.status, 400);
  assert.equal(r.error.code, '42703');
  r = await a1.from('todos').insert({ task: 'x', nope: 1 });
  assert.equal(r.error.code, 'PGRST204');
  r = await a1.from('todos').select('*').eq('id', 'not-a-number');
  assert.equal(r.error.code, '22P02');
  r = await a1.from('messages').insert({ local_id: 'fk', body: 'x', conversation_id: '00000000-0000-0000-0000-000000000000' });
  assert.equal(r.status, 409);
  assert.equal(r.error.code, '23503');
});

test('embedding one level both ways', async () => {
  const c = await device(server, await newUser(server));
  const { data: conv } = await c.from('conversations').insert({ title: 'trip' }).select().single();
  await c.from('messages').insert([{ local_id: 'm1', body: 'hi', conversation_id: conv.id }, { local_id: 'm2', body: 'yo', conversation_id: conv.id }]);
  const { data, error } = await c.from('conversations').select('title, messages(body)').eq('id', conv.id).single();
  assert.equal(error, null);
  assert.deepEqual(data.messages.map((m) => m.body).sort(), ['hi', 'yo']);
  const { data: msgs } = await c.from('messages').select('body, conversation:conversations(title)').order('body');
  assert.deepEqual(msgs, [{ body: 'hi', conversation: { title: 'trip' } }, { body: 'yo', conversation: { title: 'trip' } }]);
  const r = await c.from('todos').select('*, conversations(*)');
  assert.equal(r.error.code, 'PGRST200');
});

test('RPC: scalar, set-returning, RLS inside, raised errors', async () => {
  let r = await anon.rpc('add_numbers', { a: 2, b: 40 });
  assert.equal(r.data, 42);
  const c = await device(server, await newUser(server));
  await seedTodos(c, 3, 'rpc');
  r = await c.rpc('my_todo_count');
  assert.equal(r.data, 3);
  r = await b1.rpc('todos_done', { is_done: true });
  assert.ok(Array.isArray(r.data));
  assert.ok(r.data.every((t) => t.user_id === bob.user.id));
  r = await c.rpc('todos_done', { is_done: true });
  assert.equal(r.data.length, 2);
  r = await c.rpc('fail_with', { msg: 'nope' });
  assert.equal(r.status, 400);
  assert.equal(r.error.code, 'P0001');
  assert.equal(r.error.message, 'nope');
  r = await c.rpc('no_such_fn', {});
  assert.equal(r.status, 404);
  assert.equal(r.error.code, 'PGRST202');
});
