// supasync/react rendered for real: React 19 and the hooks bundled into a page (as an
// app would), in Chromium, on the packed package. Render counts show that a live
// query re-renders only when its result changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { here, installApp, serve, launch, startChatServer, schema, until, newUser } from './harness.mjs';

let server, web, browser;
before(async () => {
  server = await startChatServer();
  const app = installApp();
  writeFileSync(path.join(app, 'main.jsx'), `
import { createRoot } from 'react-dom/client';
import { act } from 'react';
import * as supasync from 'supasync';
import { ReplicaProvider, useReplica, useLiveQuery, useSyncStatus, useRejected, useUser, useChannel, usePresence, useBroadcast } from 'supasync/react';
import { useState } from 'react';

window.renders = { messages: 0, counts: 0 };
function Counts() {
  const db = useReplica();
  const answer = useLiveQuery(db.from('conversations').select('title, messages(count)').order('title'));
  window.renders.counts++;
  if (!answer) return <p id="counts">loading</p>;
  if (answer.error) return <p id="counts">{answer.error.code}</p>;
  return <ul id="counts">{answer.data.map((c) => <li key={c.title}>{c.title}: {c.messages[0].count}</li>)}</ul>;
}
function Messages() {
  const rows = useLiveQuery('messages', { order: 'content' });
  window.renders.messages++;
  if (!rows) return <p id="loading">loading</p>;
  return <ul id="messages">{rows.map((r) => <li key={r.local_id} data-state={r.status.state}>{r.row.content}</li>)}</ul>;
}
function Status() {
  const s = useSyncStatus();
  return <p id="status">{s.phase} {s.pending} pending {s.rejected} rejected</p>;
}
function Rejected() {
  const list = useRejected();
  return <ul id="rejected">{list.map((e) => <li key={e.seq}>{e.local_id}: {e.rejected}</li>)}</ul>;
}
function Who() {
  const u = useUser();
  return <p id="user">{u ? u.email : 'signed out'}</p>;
}
function Typing({ me }) {
  const ch = useChannel('typing:test', { presenceKey: me });
  const present = usePresence(ch);
  const [heard, setHeard] = useState('');
  useBroadcast(ch, (event, payload) => setHeard(event + ':' + payload.who));
  window.channel = ch;
  return <p id="presence">{Object.keys(present).sort().join(',')}|{heard}</p>;
}
window.mount = async (opts, me) => {
  window.db = await supasync.openReplica(opts);
  window.root = createRoot(document.getElementById('root'));
  await act(async () => root.render(
    <ReplicaProvider replica={db}><Who /><Status /><Messages /><Counts /><Rejected />{me ? <Typing me={me} /> : null}</ReplicaProvider>));
};
window.act = act;
window.IS_REACT_ACT_ENVIRONMENT = false;
window.ready = true;
`);
  const dist = path.join(app, 'dist');
  await esbuild.build({ absWorkingDir: app, entryPoints: ['main.jsx'], bundle: true, format: 'esm', outdir: dist, jsx: 'automatic',
    nodePaths: [path.join(here, 'node_modules')], define: { 'process.env.NODE_ENV': '"development"' }, logLevel: 'silent' });
  copyFileSync(path.join(app, 'node_modules/supasync/dist/wasm/supasync_wasm_bg.wasm'), path.join(dist, 'supasync_wasm_bg.wasm'));
  writeFileSync(path.join(dist, 'index.html'), '<!doctype html><div id="root"></div><script type="module" src="main.js"></script>');
  web = await serve(dist);
  browser = await launch();
});
after(async () => { await browser?.close(); web?.close(); await server?.stop(); });

const opts = () => ({ url: server.url, anonKey: server.anonKey, schema });

async function mounted(me) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(web.url);
  await page.waitForFunction(() => window.ready === true);
  await page.evaluate(([o, me]) => window.mount(o, me), [opts(), me ?? null]);
  return { context, page, errors };
}

// WebKit ends a list's innerText with a line break where Chromium and Firefox do not.
const text = async (page, sel) => (await page.locator(sel).innerText()).trimEnd();

test('useLiveQuery renders rows with their status and re-renders only when the result changes', async () => {
  const { context, page, errors } = await mounted();
  await until(async () => (await page.locator('#messages').count()) === 1, 'the first result');
  assert.equal(await text(page, '#user'), 'signed out');
  await page.evaluate(() => db.insert('messages', { role: 'user', content: 'b' }));
  await until(async () => (await text(page, '#messages')) === 'b', 'the new row');
  assert.equal(await page.locator('#messages li').getAttribute('data-state'), 'pending');
  await until(async () => (await text(page, '#status')).includes('1 pending'), 'the pending count');
  const before = await page.evaluate(() => window.renders.messages);
  // A write to another table, and a no-op: the messages list does not re-render.
  await page.evaluate(async () => {
    await db.insert('memories', { content: 'unrelated' });
    const [m] = await db.query('messages');
    await db.update('messages', m.local_id, { content: 'b' });
  });
  await until(async () => (await text(page, '#status')).includes('2 pending'), 'the other write counted');
  assert.equal(await page.evaluate(() => window.renders.messages), before, 'no re-render for a result that did not change');
  await page.evaluate(() => db.insert('messages', { role: 'user', content: 'a' }));
  await until(async () => (await text(page, '#messages')) === 'a\nb', 'ordered rows');
  assert.equal(await page.evaluate(() => window.renders.messages), before + 1, 'one re-render for one change');
  assert.deepEqual(errors, []);
  await context.close();
});

test('useLiveQuery(db.from(…)) renders embeds and counts, and re-renders only when the answer changes', async () => {
  const { context, page, errors } = await mounted();
  await until(async () => (await text(page, '#counts')) === '', 'the first (empty) answer');
  const cid = await page.evaluate(async () => {
    const c = await db.insert('conversations', { title: 'Lisbon' });
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'one' });
    return c.local_id;
  });
  await until(async () => (await text(page, '#counts')) === 'Lisbon: 1', 'the count of the new conversation');
  const before = await page.evaluate(() => window.renders.counts);
  await page.evaluate(() => db.insert('memories', { content: 'unrelated' }));
  await until(async () => (await text(page, '#status')).includes('3 pending'), 'the unrelated write counted');
  assert.equal(await page.evaluate(() => window.renders.counts), before, 'a write to a table it does not read: no re-render');
  await page.evaluate((cid) => db.insert('messages', { conversation_id: cid, role: 'user', content: 'two' }), cid);
  await until(async () => (await text(page, '#counts')) === 'Lisbon: 2', 'the count follows');
  assert.equal(await page.evaluate(() => window.renders.counts), before + 1, 'one re-render for one change');
  assert.deepEqual(errors, []);
  await context.close();
});

test('useUser, useSyncStatus and useRejected follow sign-in, sync and a refusal', async () => {
  const user = await newUser(server);
  const { context, page, errors } = await mounted();
  await page.evaluate((u) => db.auth.signIn(u), { email: user.email, password: user.password });
  await until(async () => (await text(page, '#user')) === user.email, 'the signed-in user');
  await until(async () => (await text(page, '#status')).startsWith('live'), 'live');
  const bad = await page.evaluate(async () => (await db.insert('messages', { role: 'robot', content: 'refused' })).local_id);
  await until(async () => (await text(page, '#rejected')).includes(bad), 'the refused write is listed');
  assert.match(await text(page, '#rejected'), /messages_role_check/);
  assert.match(await text(page, '#status'), /1 rejected/);
  await page.evaluate((id) => db.discard(id), bad);
  await until(async () => (await text(page, '#rejected')) === '', 'discarded');
  await page.evaluate(() => db.auth.signOut());
  await until(async () => (await text(page, '#user')) === 'signed out', 'signed out');
  assert.deepEqual(errors, []);
  await context.close();
});

test('useChannel, usePresence and useBroadcast: two devices see each other and hear a broadcast', async () => {
  const user = await newUser(server);
  const laptop = await mounted('laptop');
  const phone = await mounted('phone');
  for (const d of [laptop, phone]) await d.page.evaluate((u) => db.auth.signIn(u), { email: user.email, password: user.password });
  await until(() => laptop.page.evaluate(() => !!window.channel), 'the channel');
  for (const [d, me] of [[laptop, 'laptop'], [phone, 'phone']]) await d.page.evaluate((me) => window.channel.track({ device: me }), me);
  await until(async () => (await text(laptop.page, '#presence')).startsWith('laptop,phone|'), 'the laptop sees both devices');
  await until(async () => (await text(phone.page, '#presence')).startsWith('laptop,phone|'), 'the phone sees both devices');
  await laptop.page.evaluate(() => window.channel.send('typing', { who: 'laptop' }));
  await until(async () => (await text(phone.page, '#presence')).endsWith('|typing:laptop'), 'the phone hears the laptop typing');
  assert.deepEqual([...laptop.errors, ...phone.errors], []);
  await laptop.context.close();
  await phone.context.close();
});
