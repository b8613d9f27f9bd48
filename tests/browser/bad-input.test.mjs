// Bad input gets a clear SupaSyncError with a kind, in the browser and in Node, and
// nothing already written is lost by it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setup, openPage, options, newUser, installApp, schema } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

/** A new user, and a page where `attempt(f)` answers what `f` threw: its `kind`, its
 *  message, and whether it is a `SupaSyncError`. */
async function signedUpPage() {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await openPage(context, env.web.url);
  await page.evaluate(() => {
    window.attempt = async (f) => {
      try { await f(); return { ok: true }; } catch (e) { return { kind: e.kind, message: e.message, typed: e instanceof window.supasync.SupaSyncError }; }
    };
  });
  return { user, context, page };
}

test('bad rows, unknown tables, bad options and calls after close() are clear errors', async () => {
  const { user, context, page } = await signedUpPage();
  const out = await page.evaluate(async ([opts, user]) => {
    const { openReplica } = window.supasync;
    const r = {};
    r.noUrl = await attempt(() => openReplica({ anonKey: 'k', schema: opts.schema }));
    r.badSchema = await attempt(() => openReplica({ ...opts, schema: { tables: [{ name: 'messages', references: { conversation_id: 'nowhere' } }] } }));
    r.badMode = await attempt(() => openReplica({ ...opts, mode: 'sometimes' }));
    const db = await openReplica(opts);
    await db.auth.signIn(user);
    const kept = await db.insert('conversations', { title: 'kept' });
    r.unknownTable = await attempt(() => db.insert('nope', { a: 1 }));
    r.notAnObject = await attempt(() => db.insert('conversations', 42));
    r.badLocalId = await attempt(() => db.insert('conversations', { local_id: 7, title: 'x' }));
    r.unknownRow = await attempt(() => db.update('conversations', 'no-such-id', { title: 'x' }));
    r.badLimit = await attempt(() => db.query('conversations', { limit: -1 }));
    r.badWhere = await attempt(() => db.query('conversations', { where: 5 }));
    r.noRejected = await attempt(() => db.retry(kept.local_id));
    r.wrongPassword = await attempt(() => db.auth.signIn({ email: user.email, password: 'wrong' }));
    r.stillThere = (await db.query('conversations')).map((x) => x.row.title);
    await db.close();
    r.afterClose = await attempt(() => db.insert('conversations', { title: 'late' }));
    r.queryAfterClose = await attempt(() => db.query('conversations'));
    const again = await openReplica(opts);
    r.afterReopen = (await again.query('conversations')).map((x) => x.row.title);
    await again.close();
    return r;
  }, [options(env.server), { email: user.email, password: user.password }]);
  const expect = {
    noUrl: 'invalid', badSchema: 'invalid', badMode: 'invalid', unknownTable: 'invalid', notAnObject: 'invalid',
    badLocalId: 'invalid', unknownRow: 'invalid', badLimit: 'invalid', badWhere: 'invalid', noRejected: 'not_found',
    wrongPassword: 'auth', afterClose: 'closed', queryAfterClose: 'closed',
  };
  for (const [k, kind] of Object.entries(expect)) {
    assert.equal(out[k].kind, kind, `${k}: ${JSON.stringify(out[k])}`);
    assert.equal(out[k].typed, true, `${k} is a SupaSyncError`);
    assert.ok(out[k].message.length > 10, `${k} says why: ${out[k].message}`);
  }
  assert.match(out.unknownTable.message, /nope/);
  assert.match(out.badSchema.message, /nowhere/);
  assert.deepEqual(out.stillThere, ['kept'], 'failed calls wrote nothing and lost nothing');
  assert.deepEqual(out.afterReopen, ['kept'], 'a closed replica reopens with its data');
  await context.close();
});

test('values are read as supabase-js reads them: a Date as its ISO text, undefined left out; a BigInt or a cycle is a clear error that writes nothing', async () => {
  const { user, context, page } = await signedUpPage();
  const out = await page.evaluate(async ([opts, user]) => {
    const { openReplica } = window.supasync;
    const db = await openReplica(opts);
    await db.auth.signIn(user);
    const conv = await db.insert('conversations', { title: 'dates', note: undefined });
    const at = new Date(Date.UTC(2026, 11, 7, 16, 30, 0, 250));
    const m = await db.insert('messages', { conversation_id: conv.local_id, role: 'user', content: 'hi', timestamp: at });
    const cyclic = { conversation_id: conv.local_id, role: 'user', content: 'loop' };
    cyclic.self = cyclic;
    const r = {
      stored: (await db.get('messages', m.local_id)).row.timestamp,
      convKeys: Object.keys((await db.get('conversations', conv.local_id)).row),
      bigint: await attempt(() => db.insert('messages', { conversation_id: conv.local_id, role: 'user', content: 'big', n: 10n })),
      cycle: await attempt(() => db.insert('messages', cyclic)),
      badUpdate: await attempt(() => db.update('messages', m.local_id, { content: 5n })),
      dateFilter: (await db.from('messages').select('content').eq('timestamp', at.toISOString())).data,
      messages: (await db.query('messages')).map((x) => x.row.content),
      pending: db.status().pending,
    };
    await db.close();
    return r;
  }, [options(env.server), { email: user.email, password: user.password }]);
  assert.equal(out.stored, '2026-12-07T16:30:00.250Z', 'a Date is stored as its ISO text (JSON.stringify, as supabase-js sends it)');
  assert.ok(!out.convKeys.includes('note'), `an undefined property is left out: ${out.convKeys}`);
  for (const k of ['bigint', 'cycle', 'badUpdate']) {
    assert.equal(out[k].kind, 'invalid', `${k}: ${JSON.stringify(out[k])}`);
    assert.equal(out[k].typed, true, `${k} is a SupaSyncError`);
  }
  assert.match(out.bigint.message, /^row: .*BigInt/i, out.bigint.message);
  assert.match(out.cycle.message, /^row: .*(cyclic|circular)/i, out.cycle.message);
  assert.match(out.badUpdate.message, /^fields: /, out.badUpdate.message);
  assert.deepEqual(out.dateFilter, [{ content: 'hi' }], 'the stored text is found by its ISO form');
  assert.deepEqual(out.messages, ['hi'], 'the refused writes wrote nothing');
  assert.equal(out.pending, 2, 'two writes wait: the conversation and the message');
  await context.close();
});

test('in Node, IndexedDB is missing: a clear error, or an in-memory replica when asked for', async () => {
  const app = installApp();
  const mod = await import(pathToFileURL(path.join(app, 'node_modules/supasync/dist/index.js')).href);
  const wasm = readFileSync(path.join(app, 'node_modules/supasync/dist/wasm/supasync_wasm_bg.wasm'));
  const opts = { url: env.server.url, anonKey: env.server.anonKey, schema, wasm };
  await assert.rejects(mod.openReplica(opts), (e) => e instanceof mod.SupaSyncError && e.kind === 'unsupported' && /store: 'memory'/.test(e.message));
  const db = await mod.openReplica({ ...opts, store: 'memory' });
  const c = await db.insert('conversations', { title: 'in memory' });
  assert.deepEqual((await db.query('conversations')).map((r) => r.local_id), [c.local_id]);
  await db.close();
});
