// supabase-js (postgrest-js) against supasync-dev's /rest/v1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, client, newUser, device } from './harness.mjs';

let server, alice, bob, a1, a2, b1, b2, anon, service;

before(async () => {
  server = await startServer(['--schemas', 'public,personal']);
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
  // A merging upsert answers 201 when it inserted a row, 200 when every row existed.
  r = await c.from('messages').upsert({ local_id: 'L-4', body: 'new' }, { onConflict: 'user_id,local_id' }).select('body');
  assert.equal(r.status, 201);
  r = await c.from('messages').upsert([{ local_id: 'L-3', body: 'b3!' }, { local_id: 'L-4', body: 'new!' }], { onConflict: 'user_id,local_id', count: 'exact' }).select('body');
  assert.equal(r.status, 200);
  assert.equal(r.count, 2);
  assert.deepEqual(r.data.map((m) => m.body), ['b3!', 'new!']);
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
  // An identity column's default is its sequence, drawn once per row (as PostgREST does).
  const t = await c.from('tickets').insert([{ id: 1000, title: 'given' }, { title: 'drawn' }, {}], { defaultToNull: false }).select();
  assert.equal(t.error, null);
  assert.equal(t.data[0].id, 1000);
  assert.equal(t.data[2].id, t.data[1].id + 1);
  assert.deepEqual(t.data.map((x) => x.title), ['given', 'drawn', 'untitled']);
});

test('PUT: a single-row upsert named by its primary key', async () => {
  const put = (q, body, prefer = 'return=representation') => fetch(`${server.url}/rest/v1/tickets?${q}`, {
    method: 'PUT',
    headers: { apikey: server.anonKey, 'content-type': 'application/json', prefer },
    body: JSON.stringify(body),
  });
  let r = await put('id=eq.7001', { id: 7001, title: 'first' });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), [{ id: 7001, title: 'first' }]);
  r = await put('id=eq.7001', { id: 7001, title: 'replaced' }, 'return=minimal');
  assert.equal(r.status, 204);
  const { data } = await anon.from('tickets').select('title').eq('id', 7001);
  assert.deepEqual(data, [{ title: 'replaced' }], 'replaced, not doubled');
  r = await put('title=eq.x', { id: 7002, title: 'x' });
  assert.equal(r.status, 405);
  assert.equal((await r.json()).code, 'PGRST105');
  r = await put('id=gt.7001', { id: 7002, title: 'x' });
  assert.equal((await r.json()).code, 'PGRST105');
  r = await put('id=eq.7002', { id: 7003, title: 'x' });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).code, 'PGRST115');
  const { data: none } = await anon.from('tickets').select('id').in('id', [7002, 7003]);
  assert.deepEqual(none, []);
});

test('Prefer: max-affected with handling=strict refuses a write touching more rows (PGRST124), and nothing changes', async () => {
  const c = await device(server, await newUser(server));
  await seedTodos(c, 4, 'cap');
  let r = await c.from('todos').update({ done: true }).like('task', 'cap%').maxAffected(3);
  assert.equal(r.status, 400);
  assert.equal(r.error.code, 'PGRST124');
  assert.equal(r.error.details, 'The query affects 4 rows');
  r = await c.from('todos').delete().like('task', 'cap%').maxAffected(2).select();
  assert.equal(r.error.code, 'PGRST124');
  const { data: left } = await c.from('todos').select('done').like('task', 'cap%');
  assert.equal(left.length, 4, 'the refused delete was rolled back');
  assert.equal(left.filter((x) => x.done).length, 2, 'the refused update was rolled back');
  r = await c.from('todos').update({ done: true }).eq('task', 'cap 1').maxAffected(1).select('task, done');
  assert.equal(r.error, null);
  assert.deepEqual(r.data, [{ task: 'cap 1', done: true }]);
  // On an RPC returning rows too.
  await service.from('tickets').insert([{ title: 'cap-a' }, { title: 'cap-b' }]);
  r = await c.rpc('close_tickets', { pattern: 'cap-%' }).maxAffected(1);
  assert.equal(r.error.code, 'PGRST124');
  const { data: open } = await service.from('tickets').select('title').like('title', 'cap-%').order('title');
  assert.deepEqual(open, [{ title: 'cap-a' }, { title: 'cap-b' }]);
});

test('counts: planned is the planner estimate (206 when it says more rows than came); RPC scalars count as one', async () => {
  const c = await device(server, await newUser(server));
  await seedTodos(c, 5, 'plan');
  const r = await c.from('todos').select('id', { count: 'planned' }).limit(1);
  assert.equal(r.error, null);
  assert.equal(r.data.length, 1);
  assert.ok(Number.isInteger(r.count) && r.count > 1, `an estimate above the one row sent: ${r.count}`);
  assert.equal(r.status, 206);
  const h = await c.from('todos').select('*', { count: 'planned', head: true });
  assert.ok(Number.isInteger(h.count));
  const s = await anon.rpc('add_numbers', { a: 1, b: 2 }, { count: 'exact' });
  assert.equal(s.data, 3);
  assert.equal(s.count, 1);
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

test('embeds: one-to-one as an object; relations named by foreign key column or constraint', async () => {
  const c = await device(server, await newUser(server));
  const { data: conv } = await c.from('conversations').insert({ title: 'settings' }).select().single();
  assert.equal((await c.from('conversation_settings').insert({ conversation_id: conv.id, muted: true })).error, null);
  let r = await c.from('conversations').select('title, conversation_settings(muted)').eq('id', conv.id).single();
  assert.deepEqual(r.data, { title: 'settings', conversation_settings: { muted: true } });
  assert.equal((await c.from('messages').insert({ local_id: 'fk1', body: 'by column', conversation_id: conv.id })).error, null);
  r = await c.from('messages').select('body, conversation_id(title)').eq('local_id', 'fk1').single();
  assert.deepEqual(r.data, { body: 'by column', conversation_id: { title: 'settings' } });
  r = await c.from('messages').select('body, messages_conversation_id_fkey(title)').eq('local_id', 'fk1').single();
  assert.deepEqual(r.data, { body: 'by column', messages_conversation_id_fkey: { title: 'settings' } });
  r = await c.from('conversations').select('title, messages_conversation_id_fkey(body)').eq('id', conv.id).single();
  assert.deepEqual(r.data, { title: 'settings', messages_conversation_id_fkey: [{ body: 'by column' }] });
  r = await c.from('messages').select('body, nothing_like_this(*)');
  assert.equal(r.error.code, 'PGRST200');
});

test('embeds: many-to-many through a junction table, both ways', async () => {
  const c = await device(server, await newUser(server));
  const todos = await seedTodos(c, 2, 'mm');
  const [home, work] = [`home-${todos[0].id}`, `work-${todos[0].id}`];
  const { data: labels, error } = await c.from('labels').insert([{ name: home }, { name: work }]).select();
  assert.equal(error, null);
  assert.equal((await c.from('todo_labels').insert([
    { todo_id: todos[0].id, label_id: labels[0].id },
    { todo_id: todos[0].id, label_id: labels[1].id },
    { todo_id: todos[1].id, label_id: labels[1].id },
  ])).error, null);
  let r = await c.from('todos').select('task, labels(name)').in('id', todos.map((t) => t.id)).order('task');
  assert.equal(r.error, null);
  assert.deepEqual(r.data.map((t) => [t.task, t.labels.map((l) => l.name).sort()]), [['mm 0', [home, work]], ['mm 1', [work]]]);
  r = await c.from('labels').select('name, todos(task)').eq('id', labels[1].id).single();
  assert.deepEqual(r.data.todos.map((t) => t.task).sort(), ['mm 0', 'mm 1']);
  r = await c.from('todos').select('task, labels!todo_labels(name)').eq('id', todos[1].id).single();
  assert.deepEqual(r.data.labels, [{ name: work }]);
  // An embedded filter with !inner keeps only the todos that have such a label.
  r = await c.from('todos').select('task, labels!inner(name)').in('id', todos.map((t) => t.id)).eq('labels.name', home);
  assert.equal(r.error, null);
  assert.deepEqual(r.data, [{ task: 'mm 0', labels: [{ name: home }] }]);
  r = await c.from('todos').select('task, labels!nope(name)');
  assert.equal(r.error.code, 'PGRST200');
});

test('embedded filters, order, limit and offset; !inner; spread; empty embeds', async () => {
  const c = await device(server, await newUser(server));
  const { data: convs } = await c.from('conversations').insert([{ title: 'one' }, { title: 'two' }]).select('id, title').order('title');
  const [one, two] = convs;
  const msgs = ['a', 'b', 'c', 'd'].map((body, i) => ({ local_id: `emb-${i}`, body, conversation_id: one.id }));
  msgs.push({ local_id: 'emb-9', body: 'z', conversation_id: two.id });
  assert.equal((await c.from('messages').insert(msgs)).error, null);
  const bodies = (r) => { assert.equal(r.error, null); return r.data.map((x) => [x.title, x.messages.map((m) => m.body)]); };
  // Filters, order, limit and offset apply inside the embed; the parents all stay.
  let r = await c.from('conversations').select('title, messages(body)').order('title')
    .in('messages.body', ['a', 'c', 'd', 'z']).order('body', { referencedTable: 'messages', ascending: false })
    .range(1, 2, { referencedTable: 'messages' });
  assert.deepEqual(bodies(r), [['one', ['c', 'a']], ['two', []]]);
  r = await c.from('conversations').select('title, messages(body)').order('title')
    .or('body.eq.a,body.eq.z', { referencedTable: 'messages' }).limit(1, { referencedTable: 'messages' });
  assert.deepEqual(bodies(r), [['one', ['a']], ['two', ['z']]]);
  // With !inner, the embed's filter also filters the parents.
  r = await c.from('conversations').select('title, messages!inner(body)').eq('messages.body', 'z');
  assert.deepEqual(bodies(r), [['two', ['z']]]);
  // Spread: a many-to-one's columns join the row; a one-to-many's become arrays.
  r = await c.from('messages').select('body, ...conversations(conversation:title)').eq('local_id', 'emb-9').single();
  assert.deepEqual(r.data, { body: 'z', conversation: 'two' });
  r = await c.from('conversations').select('title, ...messages(bodies:body)').eq('id', two.id).single();
  assert.deepEqual(r.data, { title: 'two', bodies: ['z'] });
  // An empty embed shows nothing; with !inner it still filters.
  r = await c.from('conversations').select('title, messages!inner()').eq('messages.body', 'b');
  assert.deepEqual(r.data, [{ title: 'one' }]);
  // Parameters for an embed the select does not have are an error, not ignored.
  r = await c.from('conversations').select('title').eq('messages.body', 'b');
  assert.equal(r.status, 400);
  assert.equal(r.error.code, 'PGRST108');
  // Counting with an !inner filter counts the parents it keeps.
  r = await c.from('conversations').select('title, messages!inner()', { count: 'exact' }).in('messages.body', ['a', 'b']);
  assert.equal(r.count, 1);
});

test('self-referencing tables: by table name the children, by column the parent', async () => {
  const { data: [root] } = await service.from('folders').insert({ name: 'root' }).select();
  await service.from('folders').insert([{ name: 'docs', parent_id: root.id }, { name: 'pics', parent_id: root.id }]);
  let r = await anon.from('folders').select('name, folders(name)').eq('id', root.id).single();
  assert.equal(r.error, null);
  assert.deepEqual(r.data.folders.map((f) => f.name).sort(), ['docs', 'pics']);
  r = await anon.from('folders').select('name, folders!parent_id(name)').eq('id', root.id).single();
  assert.equal(r.data.folders.length, 2);
  r = await anon.from('folders').select('name, parent:parent_id(name)').eq('name', 'docs').single();
  assert.deepEqual(r.data, { name: 'docs', parent: { name: 'root' } });
  r = await anon.from('folders').select('name, folders!folders_parent_id_fkey(name)');
  assert.equal(r.status, 400);
  assert.equal(r.error.code, 'PGRST200');
  assert.match(r.error.details, /using the hint 'folders_parent_id_fkey' in the schema 'public'/);
  // Two keys to one table: PGRST201 lists each candidate, and the hint names them.
  r = await anon.from('folders').select('name, moves(id)');
  assert.equal(r.status, 300);
  assert.equal(r.error.code, 'PGRST201');
  assert.deepEqual(r.error.details, [
    { cardinality: 'one-to-many', embedding: 'folders with moves', relationship: 'moves_from_fkey using folders(id) and moves(from_folder)' },
    { cardinality: 'one-to-many', embedding: 'folders with moves', relationship: 'moves_to_fkey using folders(id) and moves(to_folder)' },
  ]);
  assert.match(r.error.hint, /'moves!moves_from_fkey', 'moves!moves_to_fkey'/);
  r = await anon.from('folders').select('name, moves!moves_to_fkey(id)').eq('id', root.id).single();
  assert.deepEqual(r.data, { name: 'root', moves: [] });
  // Two embeds under one name would collapse into one key: refused, as PostgREST does.
  r = await anon.from('folders').select('name, moves!moves_from_fkey(id), moves!moves_to_fkey(id)');
  assert.equal(r.status, 400);
  assert.equal(r.error.code, '42712');
  r = await anon.from('folders').select('name, sent:moves!moves_from_fkey(id), received:moves!moves_to_fkey(id)').eq('id', root.id).single();
  assert.deepEqual(r.data, { name: 'root', sent: [], received: [] }, 'aliases tell them apart');
});

test('views in relationships: a view showing a key has it; a view showing what a key points at stands in for its table', async () => {
  const c = await device(server, await newUser(server));
  const { data: conv } = await c.from('conversations').insert({ title: 'viewed' }).select('id').single();
  await c.from('messages').insert({ local_id: 'vw-1', body: 'through a view', conversation_id: conv.id });
  let r = await c.from('message_bodies').select('body, conversations(title)').eq('conversation_id', conv.id).single();
  assert.equal(r.error, null);
  assert.deepEqual(r.data, { body: 'through a view', conversations: { title: 'viewed' } });
  r = await c.from('conversations').select('title, message_bodies(body)').eq('id', conv.id).single();
  assert.deepEqual(r.data, { title: 'viewed', message_bodies: [{ body: 'through a view' }] });
  const [done, open] = await seedTodos(c, 2, 'vt'); // vt 0 is done, vt 1 is not
  const { data: label } = await c.from('labels').insert({ name: `vt-${open.id}` }).select().single();
  await c.from('todo_labels').insert([{ todo_id: open.id, label_id: label.id }, { todo_id: done.id, label_id: label.id }]);
  r = await c.from('todo_labels').select('todo_id, open_todos(task)').eq('label_id', label.id).order('todo_id');
  assert.deepEqual(r.data, [{ todo_id: done.id, open_todos: null }, { todo_id: open.id, open_todos: { task: 'vt 1' } }]);
});

test('operators: like/ilike/comparisons over (any|all) lists, and the range operators', async () => {
  const c = await device(server, await newUser(server));
  await seedTodos(c, 6, 'op'); // op 0 … op 5; priority: op 1, op 2, op 4, op 5 = 1, 2, 4, 5
  const tasks = (r) => { assert.equal(r.error, null); return r.data.map((t) => t.task).sort(); };
  assert.deepEqual(tasks(await c.from('todos').select('task').likeAnyOf('task', ['op 1', 'op 3*'])), ['op 1', 'op 3']);
  assert.deepEqual(tasks(await c.from('todos').select('task').likeAllOf('task', ['op*', '*5'])), ['op 5']);
  assert.deepEqual(tasks(await c.from('todos').select('task').ilikeAnyOf('task', ['OP 2', 'OP 4'])), ['op 2', 'op 4']);
  assert.deepEqual(tasks(await c.from('todos').select('task').ilikeAllOf('task', ['OP*', '*0'])), ['op 0']);
  assert.deepEqual(tasks(await c.from('todos').select('task').filter('priority', 'gt(any)', '{4,1}')), ['op 2', 'op 4', 'op 5']);
  assert.deepEqual(tasks(await c.from('todos').select('task').filter('priority', 'lt(all)', '{4,5}')), ['op 1', 'op 2']);
  assert.deepEqual(tasks(await c.from('todos').select('task').not('task', 'like(any)', '{op 0,op 1}').like('task', 'op*')), ['op 2', 'op 3', 'op 4', 'op 5']);
  const r0 = await c.from('todos').select('task').filter('priority', 'in(any)', '{1}');
  assert.equal(r0.status, 400, 'in takes no quantifier');
  assert.equal((await c.from('bookings').insert([{ room: 'a', during: '[1,5)' }, { room: 'b', during: '[5,9)' }, { room: 'c', during: '[10,20)' }])).error, null);
  const rooms = (r) => { assert.equal(r.error, null); return r.data.map((b) => b.room).sort(); };
  assert.deepEqual(rooms(await c.from('bookings').select('room').rangeLt('during', '[9,10)')), ['a', 'b']);
  assert.deepEqual(rooms(await c.from('bookings').select('room').rangeGt('during', '[2,4)')), ['b', 'c']);
  assert.deepEqual(rooms(await c.from('bookings').select('room').rangeGte('during', '[5,6)')), ['b', 'c']);
  assert.deepEqual(rooms(await c.from('bookings').select('room').rangeLte('during', '[1,9)')), ['a', 'b']);
  assert.deepEqual(rooms(await c.from('bookings').select('room').rangeAdjacent('during', '[9,10)')), ['b', 'c']);
});

test('full-text search: fts, plfts, phfts and wfts, with or without a configuration', async () => {
  const c = await device(server, await newUser(server));
  assert.equal((await c.from('todos').insert([{ task: 'walk the dogs in the park' }, { task: 'feed the cat' }, { task: 'the dog walks alone' }])).error, null);
  const tasks = async (q) => { const r = await q; assert.equal(r.error, null, JSON.stringify(r.error)); return r.data.map((t) => t.task).sort(); };
  const todos = () => c.from('todos').select('task');
  assert.deepEqual(await tasks(todos().textSearch('task', 'dog & walk', { config: 'english' })), ['the dog walks alone', 'walk the dogs in the park']);
  assert.deepEqual(await tasks(todos().textSearch('task', 'feed cat', { type: 'plain' })), ['feed the cat']);
  assert.deepEqual(await tasks(todos().textSearch('task', 'dog walks', { type: 'phrase', config: 'english' })), ['the dog walks alone']);
  assert.deepEqual(await tasks(todos().textSearch('task', '"the park" or cat', { type: 'websearch', config: 'english' })), ['feed the cat', 'walk the dogs in the park']);
  assert.deepEqual(await tasks(todos().not('task', 'fts(english)', 'dog')), ['feed the cat']);
  const bad = await todos().textSearch('task', 'dog', { config: 'klingon' });
  assert.ok(bad.status >= 400 && bad.status < 500, String(bad.status));
  assert.match(bad.error.message, /klingon/);
});

test('JSON paths in select, filters and order', async () => {
  const c = await device(server, await newUser(server));
  assert.equal((await c.from('todos').insert([
    { task: 'j1', meta: { kind: 'home', n: 3, tags: ['a', 'b'], deep: { x: 'one' } } },
    { task: 'j2', meta: { kind: 'work', n: 10, tags: ['c'], deep: { x: 'two' } } },
  ])).error, null);
  let r = await c.from('todos').select('task, meta->kind, n:meta->>n, first:meta->tags->0, meta->deep->>x').order('task');
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.deepEqual(r.data, [
    { task: 'j1', kind: 'home', n: '3', first: 'a', x: 'one' },
    { task: 'j2', kind: 'work', n: '10', first: 'c', x: 'two' },
  ]);
  const tasks = async (q) => { const x = await q; assert.equal(x.error, null, JSON.stringify(x.error)); return x.data.map((t) => t.task); };
  const todos = () => c.from('todos').select('task');
  assert.deepEqual(await tasks(todos().eq('meta->>kind', 'work')), ['j2']);
  assert.deepEqual(await tasks(todos().eq('meta->n', 3)), ['j1']);
  assert.deepEqual(await tasks(todos().gt('meta->n', 5)), ['j2']);
  assert.deepEqual(await tasks(todos().in('meta->>kind', ['home'])), ['j1']);
  assert.deepEqual(await tasks(todos().like('meta->deep->>x', 't*')), ['j2']);
  assert.deepEqual(await tasks(todos().order('meta->n', { ascending: false })), ['j2', 'j1']);
  assert.deepEqual(await tasks(todos().order('meta->>n')), ['j2', 'j1'], 'as text, "10" sorts before "3"');
  r = await c.from('todos').select('nope->a');
  assert.equal(r.status, 400);
  assert.match(r.error.message, /nope/);
  r = await c.from('todos').select('meta->');
  assert.equal(r.status, 400);
});

test('aggregates: count(), col.sum()/avg()/min()/max() grouped by the other columns, rel(count)', async () => {
  const c = await device(server, await newUser(server));
  await seedTodos(c, 6, 'ag'); // done: ag 0, 2, 4; priority: 1, 2, 4, 5 (ag 0 and ag 3 none)
  let r = await c.from('todos').select('count()');
  assert.equal(r.error, null);
  assert.deepEqual(r.data, [{ count: 6 }]);
  r = await c.from('todos').select('done, count(), priority.sum(), top:priority.max(), priority.min()').order('done');
  assert.deepEqual(r.data, [
    { done: false, count: 3, sum: 6, top: 5, min: 1 },
    { done: true, count: 3, sum: 6, top: 4, min: 2 },
  ]);
  r = await c.from('todos').select('priority.avg()::int4').not('priority', 'is', null);
  assert.deepEqual(r.data, [{ avg: 3 }]);
  const { data: conv } = await c.from('conversations').insert({ title: 'counted' }).select().single();
  await c.from('messages').insert([{ local_id: 'ag1', body: 'a', conversation_id: conv.id }, { local_id: 'ag2', body: 'b', conversation_id: conv.id }]);
  r = await c.from('conversations').select('title, messages(count)').eq('id', conv.id).single();
  assert.deepEqual(r.data, { title: 'counted', messages: [{ count: 2 }] });
  r = await c.from('todos').select('nope.sum()');
  assert.equal(r.status, 400);
  assert.match(r.error.message, /nope/);
});

test('schemas: Accept-Profile / Content-Profile pick an exposed schema; others are PGRST106', async () => {
  const c = await device(server, await newUser(server));
  const other = await device(server, await newUser(server));
  let r = await c.schema('personal').from('notes').insert({ body: 'mine' }).select().single();
  assert.equal(r.error, null);
  assert.equal(r.data.body, 'mine');
  r = await c.schema('personal').from('notes').select('body');
  assert.deepEqual(r.data, [{ body: 'mine' }]);
  r = await other.schema('personal').from('notes').select('body');
  assert.deepEqual(r.data, [], 'RLS in every schema');
  // Same table name, other schema: the profile decides.
  assert.equal((await c.schema('personal').from('todos').insert({ label: 'in personal' })).error, null);
  r = await c.schema('personal').from('todos').select('label');
  assert.deepEqual(r.data, [{ label: 'in personal' }]);
  r = await c.from('todos').select('label');
  assert.equal(r.status, 400, 'public.todos has no label');
  r = await c.schema('personal').rpc('note_count');
  assert.equal(r.data, 1);
  r = await c.from('notes').select('*');
  assert.equal(r.status, 404);
  assert.equal(r.error.code, 'PGRST205');
  r = await c.schema('auth').from('users').select('*');
  assert.equal(r.status, 406);
  assert.equal(r.error.code, 'PGRST106');
  assert.match(r.error.message, /public, personal/);
});

test('media types: CSV, GeoJSON, stripped nulls and execution plans; others 406 PGRST107', async () => {
  const c = await device(server, await newUser(server));
  await c.from('todos').insert([{ task: 'plain' }, { task: 'with, comma "quoted"', priority: 2, meta: { a: [1, 2] } }]);
  // CSV: a header, then each row as PostgreSQL writes a record (NULL as nothing).
  let r = await c.from('todos').select('task, priority, meta').order('task').csv();
  assert.equal(r.error, null);
  assert.equal(r.data, 'task,priority,meta\nplain,,\n"with, comma ""quoted""",2,"{""a"": [1, 2]}"');
  // nulls=stripped: null fields are left out, of arrays and of single objects.
  r = await c.from('todos').select('task, priority').eq('task', 'plain').stripNulls();
  assert.deepEqual(r.data, [{ task: 'plain' }]);
  r = await c.from('todos').select('task, priority').eq('task', 'plain').single().stripNulls();
  assert.deepEqual(r.data, { task: 'plain' });
  // GeoJSON: a FeatureCollection, the geometry column as geometry, the rest as properties.
  r = await anon.from('places').select('name, spot').geojson();
  assert.equal(r.error, null);
  assert.deepEqual(r.data, {
    type: 'FeatureCollection',
    features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: [-71.1, 42.37] }, properties: { name: 'harbour' } }],
  });
  // Execution plans, as JSON or text, with options.
  r = await c.from('todos').select('task').explain({ format: 'json' });
  assert.equal(r.error, null);
  assert.ok(r.data[0].Plan, JSON.stringify(r.data));
  r = await c.from('todos').select('task').explain();
  assert.match(r.data, /Aggregate {2}\(cost=/);
  r = await c.from('todos').select('task').explain({ analyze: true, verbose: true, format: 'json' });
  assert.equal(typeof r.data[0]['Query Identifier'], 'number');
  assert.equal(typeof r.data[0]['Execution Time'], 'number');
  // Types nobody can produce.
  const get = (accept) => fetch(`${server.url}/rest/v1/todos?select=task`, {
    headers: { apikey: server.anonKey, authorization: `Bearer ${alice.session.access_token}`, accept },
  });
  const bad = await get('application/xml');
  assert.equal(bad.status, 406);
  assert.equal((await bad.json()).code, 'PGRST107');
  const ok = await get('application/xml, application/json;q=0.5');
  assert.equal(ok.status, 200);
  assert.ok(Array.isArray(await ok.json()));
  assert.equal((await get('*/*')).status, 200);
  // Writes answer JSON only.
  r = await c.from('todos').insert({ task: 'csv write' }).select().csv();
  assert.equal(r.status, 406);
});

test('in-database configuration: aggregates and plans are off unless the authenticator role turns them on', async () => {
  const c = await device(server, await newUser(server));
  // The reload after a setting changes is asynchronous (a NOTIFY): wait for its effect.
  const until = async (ask, done) => {
    let r;
    for (let i = 0; i < 200; i++) {
      r = await ask();
      if (done(r)) return r;
      await new Promise((res) => setTimeout(res, 20));
    }
    return r;
  };
  try {
    assert.equal((await service.rpc('dev_set_pgrst', { setting: 'db_aggregates_enabled', enabled: false })).error, null);
    let r = await until(() => c.from('todos').select('count()'), (x) => x.error);
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST123');
    assert.equal(r.error.message, 'Use of aggregate functions is not allowed');
    assert.equal((await service.rpc('dev_set_pgrst', { setting: 'db_plan_enabled', enabled: false })).error, null);
    r = await until(() => c.from('todos').select('task').explain(), (x) => x.status === 406);
    assert.equal(r.status, 406);
  } finally {
    await service.rpc('dev_set_pgrst', { setting: 'db_aggregates_enabled', enabled: true });
    await service.rpc('dev_set_pgrst', { setting: 'db_plan_enabled', enabled: true });
  }
  const back = await until(() => c.from('todos').select('count()'), (x) => !x.error);
  assert.equal(back.error, null);
});

test('RPC rows read like a table: select, filters, order, range, count, single, embeds', async () => {
  const c = await device(server, await newUser(server));
  await seedTodos(c, 6, 'q'); // done: q 0, q 2, q 4; priority: q 1..q 5 but q 3 null
  let r = await c.rpc('todos_done', { is_done: true }, { count: 'exact' }).select('task').order('task', { ascending: false }).range(0, 1);
  assert.equal(r.error, null);
  assert.deepEqual(r.data, [{ task: 'q 4' }, { task: 'q 2' }]);
  assert.equal(r.count, 3);
  assert.equal(r.status, 206);
  r = await c.rpc('todos_done', { is_done: true }).select('task, priority').not('priority', 'is', null).order('task');
  assert.deepEqual(r.data, [{ task: 'q 2', priority: 2 }, { task: 'q 4', priority: 4 }]);
  // GET: the arguments ride in the query string beside the filters.
  r = await c.rpc('todos_done', { is_done: false }, { get: true }).select('task').eq('priority', 5);
  assert.deepEqual(r.data, [{ task: 'q 5' }]);
  r = await c.rpc('todos_done', { is_done: true }).select('task').eq('task', 'q 2').single();
  assert.deepEqual(r.data, { task: 'q 2' });
  r = await c.rpc('todos_done', { is_done: true }).select('task').limit(1).order('task');
  assert.deepEqual(r.data, [{ task: 'q 0' }]);
  // RETURNS TABLE columns filter and select like a table's.
  r = await c.rpc('todo_stats').select('n').eq('done', true);
  assert.deepEqual(r.data, [{ n: 3 }]);
  // Rows of a table embed like the table's.
  const { data: conv } = await c.from('conversations').insert({ title: 'via rpc' }).select().single();
  await c.from('messages').insert([{ local_id: 'r1', body: 'one', conversation_id: conv.id }, { local_id: 'r2', body: 'two', conversation_id: conv.id }]);
  r = await c.rpc('messages_of', { conv: conv.id }).select('body, conversations(title)').order('body');
  assert.deepEqual(r.data, [{ body: 'one', conversations: { title: 'via rpc' } }, { body: 'two', conversations: { title: 'via rpc' } }]);
  // A volatile function runs once, also when a count is asked for.
  r = await c.rpc('add_notice', { body: 'once-only' }, { count: 'exact' });
  assert.equal(r.error, null);
  assert.equal(r.count, 1);
  const { data: notices } = await service.from('notices').select('id').eq('body', 'once-only');
  assert.equal(notices.length, 1, 'inserted once');
  // Names are checked against the result's columns.
  r = await c.rpc('todos_done', { is_done: true }).select('nope');
  assert.equal(r.status, 400);
  assert.match(r.error.message, /nope/);
  r = await c.rpc('todos_done', { is_done: true }).eq('nope', 1);
  assert.equal(r.status, 400);
});

test('RPC: overloads, an unnamed argument taking the body, row-typed arguments, PGRST202/203 as PostgREST words them', async () => {
  let r = await anon.rpc('pick', { x: 'a' });
  assert.equal(r.status, 300);
  assert.equal(r.error.code, 'PGRST203');
  assert.equal(r.error.message, 'Could not choose the best candidate function between: public.pick(x => integer), public.pick(x => text)');
  assert.match(r.error.hint, /function overloading can be resolved/);
  // One unnamed json (or text) argument receives the whole body, as sent.
  r = await anon.rpc('echo_body', { any: ['thing', 1] });
  assert.equal(r.error, null);
  assert.deepEqual(r.data, { any: ['thing', 1] });
  r = await anon.rpc('body_text', { '': 'abc' });
  assert.equal(r.data, JSON.stringify({ '': 'abc' }).length);
  // Other unnamed arguments cannot be passed over HTTP.
  r = await anon.rpc('unnamed_int', { '': 1 });
  assert.equal(r.status, 404);
  assert.equal(r.error.code, 'PGRST202');
  assert.equal(r.error.message, 'Could not find the function public.unnamed_int() in the schema cache');
  assert.equal(r.error.details, 'Searched for the function public.unnamed_int with parameter  or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.');
  r = await anon.rpc('unnamed_int');
  assert.equal(r.error.message, 'Could not find the function public.unnamed_int without parameters in the schema cache');
  // Hints as PostgREST gives them: the closest function name, or the closest parameters.
  r = await anon.rpc('pickk', { x: 'a' });
  assert.equal(r.error.hint, 'Perhaps you meant to call the function public.pick');
  r = await anon.rpc('describe', { tt: {} });
  assert.equal(r.error.hint, 'Perhaps you meant to call the function public.describe(t)');
  r = await anon.rpc('nothing_like_any_function_here', {});
  assert.equal(r.error.hint, null);
  // A row-typed argument takes an object.
  r = await anon.rpc('describe', { t: { task: 'walk', done: true } });
  assert.equal(r.error, null);
  assert.equal(r.data, 'walk (done)');
});

test('computed fields and computed relationships: functions of a row read like columns and embeds', async () => {
  const c = await device(server, await newUser(server));
  const [t] = await seedTodos(c, 1, 'comp');
  // A computed field is selected, filtered and ordered by name, never part of `*`.
  let r = await c.from('todos').select('task, shout, describe').eq('id', t.id).single();
  assert.equal(r.error, null);
  assert.deepEqual(r.data, { task: 'comp 0', shout: 'COMP 0', describe: 'comp 0 (done)' });
  r = await c.from('todos').select('id').eq('shout', 'COMP 0').order('shout');
  assert.deepEqual(r.data, [{ id: t.id }]);
  r = await c.from('todos').select('*').eq('id', t.id).single();
  assert.equal('shout' in r.data, false);
  // It cannot be written.
  r = await c.from('todos').insert({ task: 'x', shout: 'X' });
  assert.equal(r.error.code, 'PGRST204');
  // A function of a conversation's row returning messages embeds like a relation.
  const { data: conv } = await c.from('conversations').insert({ title: 'computed' }).select('id').single();
  await c.from('messages').insert([{ local_id: 'cm-1', body: 'one', conversation_id: conv.id }, { local_id: 'cm-2', body: 'two', conversation_id: conv.id }]);
  r = await c.from('conversations').select('title, texts:conversation_texts(body)').eq('id', conv.id).single();
  assert.equal(r.error, null);
  assert.deepEqual(r.data.texts.map((m) => m.body).sort(), ['one', 'two']);
  r = await c.from('conversations').select('title, latest:latest_text(body)').eq('id', conv.id).single();
  assert.deepEqual(r.data.latest, { body: 'two' });
  r = await c.from('conversations').select('title, conversation_texts(body)').eq('id', conv.id).eq('conversation_texts.body', 'one').single();
  assert.deepEqual(r.data.conversation_texts, [{ body: 'one' }]);
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
