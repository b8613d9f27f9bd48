// Tokens in the browser: an app that signs in with supabase-js hands its token over
// (`accessToken`) and the SDK keeps none; a token that runs out while live is
// refreshed and live sync goes on. A second server issues 65-second tokens, which the
// SDK refreshes once less than a minute is left; live, the Realtime heartbeat (every
// 25 s) asks for the token, so the refresh comes by the first heartbeat after that.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, appWithSupabaseJs, serve, startChatServer, schema, until, serverRows, newUser } from './harness.mjs';

let server, shortLived, web, browser;
before(async () => {
  server = await startChatServer();
  shortLived = await startChatServer(['--jwt-expiry', '65']);
  web = await serve(await appWithSupabaseJs());
  browser = await launch();
});
after(async () => { await browser?.close(); web?.close(); await server?.stop(); await shortLived?.stop(); });

async function page() {
  const context = await browser.newContext();
  const p = await context.newPage();
  await p.goto(web.url);
  await p.waitForFunction(() => window.ready === true);
  return { context, page: p };
}

const opts = (s = server) => ({ url: s.url, anonKey: s.anonKey, schema });

test('with supabase-js signing in, the SDK uses its token, keeps none, and follows its refresh after a 401', async () => {
  const user = await newUser(server);
  const { context, page: p } = await page();
  const authCalls = [];
  const who = await p.evaluate(async ([o, user]) => {
    window.sb = window.createClient(o.url, o.anonKey, { auth: { persistSession: false, autoRefreshToken: false } });
    const { error } = await sb.auth.signInWithPassword(user);
    if (error) throw error;
    window.db = await window.supasync.openReplica({ ...o, accessToken: async () => (await sb.auth.getSession()).data.session?.access_token ?? null });
    return db.auth.user();
  }, [opts(), { email: user.email, password: user.password }]);
  p.on('request', (r) => { if (r.url().includes('/auth/v1/')) authCalls.push(r.url()); });
  assert.equal(who.id, user.user.id, 'the replica is the token\'s user\'s');
  await p.evaluate(() => db.insert('conversations', { title: 'with supabase-js' }));
  await until(async () => (await serverRows(server, user, 'conversations')).length === 1, 'the write is pushed with supabase-js\'s token');
  assert.deepEqual(authCalls, [], 'the SDK made no auth request of its own');
  const stored = await p.evaluate(async () => {
    const dbs = await indexedDB.databases();
    const name = dbs.map((d) => d.name).find((n) => n.startsWith('supasync:'));
    const idb = await new Promise((res) => { const r = indexedDB.open(name); r.onsuccess = () => res(r.result); });
    return new Promise((res) => { const r = idb.transaction('meta').objectStore('meta').getAll(); r.onsuccess = () => res(JSON.stringify(r.result)); });
  });
  assert.ok(!stored.includes('access_token'), 'no token is stored in IndexedDB');

  // Every token is expired; supabase-js refreshes only when the app says so.
  const issued = Math.floor(Date.now() / 1000);
  await until(() => Math.floor(Date.now() / 1000) > issued, 'the next second');
  await fetch(`${server.url}/_dev/expire-tokens`, { method: 'POST', headers: { apikey: server.serviceKey } });
  await p.evaluate(() => db.insert('conversations', { title: 'after expiry' }));
  await until(() => p.evaluate(() => db.status().last_error), 'the push is refused while the token is expired');
  await p.evaluate(() => sb.auth.refreshSession());
  await until(async () => (await serverRows(server, user, 'conversations')).length === 2, 'after supabase-js refreshed, the queued write goes out on its own', 40000);
  await context.close();
});

test('a token that runs out while live is refreshed, and changes keep arriving live', async () => {
  const user = await newUser(shortLived);
  const devices = [];
  for (let i = 0; i < 2; i++) {
    const d = await page();
    await d.page.evaluate(async ([o, user]) => {
      window.db = await window.supasync.openReplica(o);
      await db.auth.signIn(user);
      window.seen = [];
      db.live('conversations', {}, (rows) => { window.seen = rows; });
    }, [opts(shortLived), { email: user.email, password: user.password }]);
    devices.push(d);
  }
  const [a, b] = devices;
  let refreshes = 0;
  a.page.on('request', (r) => { if (r.url().includes('grant_type=refresh_token')) refreshes++; });
  await until(() => a.page.evaluate(() => db.status().phase === 'live'), 'A is live');
  // Past the refresh point (5 s after sign-in), A's live sync must refresh to go on.
  await until(() => refreshes >= 1, 'A refreshes its token while live', 40000);
  await b.page.evaluate(() => db.insert('conversations', { title: 'after A refreshed' }));
  await until(() => a.page.evaluate(() => window.seen.some((r) => r.row.title === 'after A refreshed')), 'A still gets changes live');
  await a.page.evaluate(() => db.insert('conversations', { title: 'from A with the new token' }));
  await until(() => b.page.evaluate(() => window.seen.length === 2), 'B gets A\'s write');
  assert.ok(refreshes <= 2, `no refresh loop (${refreshes})`);
  for (const d of devices) await d.context.close();
});
