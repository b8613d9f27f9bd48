// What browsers do to a page's storage and tabs that a sync SDK must survive, most of
// it WebKit's habits: the IndexedDB connection closed under the app (WebKit closes it
// in background tabs; another tab's upgrade asks for it), a write in flight when that
// happens, storage that is not there at all (private modes, disabled storage, opaque
// origins), and engines without Web Locks or BroadcastChannel. Each is provoked for
// real where the engine lets a test do it; where it does not, the test says why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, openPage, options, until, serverRows, newUser, engine, serve, installApp, launchWithBackForwardCache } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

async function signedIn(context, user, opts = {}) {
  const page = await openPage(context, env.web.url);
  await page.evaluate(async ([opts, user]) => {
    window.db = await window.supasync.openReplica(opts);
    if (!window.db.auth.user()) await window.db.auth.signIn(user);
  }, [options(env.server, opts), { email: user.email, password: user.password }]);
  return page;
}

const titles = (page) => page.evaluate(async () => (await db.query('conversations')).map((r) => r.row.title).sort());

test('another tab asking to upgrade the database closes this tab\'s connection: the next write reopens it, nothing is lost, and the status says so', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  await page.evaluate(() => db.insert('conversations', { title: 'before' }));
  assert.equal(await page.evaluate(() => db.status().reopened), undefined, 'nothing reopened yet');
  const status = await page.evaluate(async () => {
    const name = db.databaseFor(db.auth.user().id);
    const { version } = (await indexedDB.databases()).find((d) => d.name === name);
    // A newer version of the app opens the database in another tab: this tab's
    // connection is asked to close (`versionchange`) and does; that upgrade then fails
    // (aborted), so the database keeps its version and this tab can open it again.
    await new Promise((resolve) => {
      const r = indexedDB.open(name, version + 1);
      r.onupgradeneeded = () => r.transaction.abort();
      r.onerror = (e) => { e.preventDefault(); resolve(); };
      r.onsuccess = () => { r.result.close(); resolve(); };
    });
    await db.insert('conversations', { title: 'after' });
    return db.status();
  });
  assert.equal(status.reopened?.count, 1, JSON.stringify(status));
  assert.match(status.reopened.reason, /upgrade/);
  assert.deepEqual(await titles(page), ['after', 'before']);
  await page.evaluate(() => db.sync({ timeoutMs: 20000 }));
  assert.deepEqual((await serverRows(env.server, user, 'conversations')).map((r) => r.title).sort(), ['after', 'before']);
  await context.close();
});

const FORCE_CLOSE = 'only Chromium lets a test close a page\'s IndexedDB connection from outside, as WebKit does to background tabs (chrome://indexeddb-internals, "Force close"); '
  + 'Firefox and WebKitGTK have no such control for a test, so there the reopening is checked through the upgrade test above, which takes the same path';

test('the browser closing IndexedDB under a write in flight: the write runs again on a new connection, once, and the status says so', { skip: engine !== 'chromium' && FORCE_CLOSE }, async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await signedIn(context, user);
  await page.evaluate(() => db.sync({ timeoutMs: 20000 }));
  // A second connection keeps every object store busy, so the app's next write waits
  // in IndexedDB's queue (its transaction is created, not yet running).
  await page.evaluate((name) => new Promise((resolve, reject) => {
    const r = indexedDB.open(name);
    r.onerror = () => reject(r.error);
    r.onsuccess = () => {
      const c = r.result;
      const t = c.transaction([...c.objectStoreNames], 'readwrite');
      const s = t.objectStore(c.objectStoreNames[0]);
      const spin = () => { s.count().onsuccess = spin; };
      spin();
      t.onabort = () => { window.blocker = t.error?.name; };
      resolve();
    };
  }), await page.evaluate(() => db.databaseFor(db.auth.user().id)));
  await page.evaluate(() => {
    // Note each read-write transaction the page creates from now on (the store's).
    window.queued = 0;
    const create = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (stores, mode, ...rest) {
      if (mode === 'readwrite') window.queued++;
      return create.call(this, stores, mode, ...rest);
    };
    window.written = db.insert('conversations', { title: 'in flight' }).then((r) => r.local_id, (e) => ({ kind: e.kind, message: e.message }));
  });
  await until(() => page.evaluate(() => window.queued > 0), 'the write to wait in IndexedDB\'s queue');
  const internals = await context.newPage();
  await internals.goto('chrome://indexeddb-internals/');
  await internals.locator('.force-close').first().click();
  const written = await page.evaluate(() => window.written);
  assert.equal(typeof written, 'string', `the write went through: ${JSON.stringify(written)}`);
  assert.equal(await page.evaluate(() => window.blocker), 'UnknownError', 'the browser aborted what was in flight');
  const status = await page.evaluate(() => db.status());
  assert.equal(status.reopened?.count, 1, JSON.stringify(status));
  assert.match(status.reopened.reason, /IndexedDB connection was (lost|closed)/);
  assert.deepEqual(await titles(page), ['in flight'], 'stored once');
  await page.evaluate(() => db.sync({ timeoutMs: 20000 }));
  const server = await serverRows(env.server, user, 'conversations');
  assert.deepEqual(server.map((r) => r.local_id), [written], 'pushed once');
  await context.close();
});

test('where IndexedDB cannot be used (an opaque origin, as a sandboxed frame or storage turned off) the replica says so with a `store` error, and one in memory still works', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  const page = await openPage(context, env.web.url);
  // A frame without `allow-same-origin` has an opaque origin: no IndexedDB, no
  // localStorage, no Web Locks, as in a private mode that refuses storage.
  await page.evaluate(() => new Promise((resolve) => {
    const f = document.createElement('iframe');
    f.sandbox = 'allow-scripts';
    f.src = '/index.html';
    f.onload = resolve;
    document.body.append(f);
  }));
  const frame = page.frames().find((f) => f !== page.mainFrame());
  await frame.waitForFunction(() => window.ready === true);
  const out = await frame.evaluate(async ([opts, user]) => {
    const db = await window.supasync.openReplica(opts);
    let error;
    try {
      await db.auth.signIn(user);
    } catch (e) {
      error = { kind: e.kind, message: e.message };
    }
    db.close();
    const mem = await window.supasync.openReplica({ ...opts, store: 'memory' });
    await mem.auth.signIn(user);
    await mem.insert('conversations', { title: 'in memory' });
    const settled = await mem.sync({ timeoutMs: 20000 });
    return { error, pending: settled.status.pending, tabs: mem.status().tabs };
  }, [options(env.server), { email: user.email, password: user.password }]);
  assert.equal(out.error?.kind, 'store', JSON.stringify(out.error));
  assert.match(out.error.message, /IndexedDB/);
  assert.match(out.error.message, /memory/, 'the error says what the app can do');
  assert.equal(out.pending, 0);
  assert.equal(out.tabs.mode, 'alone');
  assert.deepEqual((await serverRows(env.server, user, 'conversations')).map((r) => r.title), ['in memory']);
  await context.close();
});

test('without Web Locks and BroadcastChannel each tab works alone, the status says why, and two tabs pushing the same queue double nothing', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  // As in an engine (or embedded webview) that has neither.
  await context.addInitScript(() => {
    delete Navigator.prototype.locks;
    delete globalThis.BroadcastChannel;
  });
  const one = await signedIn(context, user);
  const two = await signedIn(context, user);
  for (const p of [one, two]) {
    const st = await p.evaluate(() => db.status());
    assert.equal(st.tabs.mode, 'alone', JSON.stringify(st.tabs));
    assert.match(st.tabs.reason, /BroadcastChannel|Web Locks/);
    assert.equal(st.leader, true, 'each tab talks to the server itself');
  }
  const write = (p, who) => p.evaluate(async (who) => {
    for (let i = 0; i < 5; i++) await db.insert('conversations', { title: `${who} ${i}` });
    return db.sync({ timeoutMs: 30000 });
  }, who);
  // Both tabs share one IndexedDB database, so each pushes the other's writes too.
  await Promise.all([write(one, 'one'), write(two, 'two')]);
  await two.evaluate(() => db.sync({ timeoutMs: 30000 }));
  const server = await serverRows(env.server, user, 'conversations');
  assert.equal(server.length, 10, 'every write reached the server exactly once');
  assert.equal(new Set(server.map((r) => r.local_id)).size, 10);
  const local = await two.evaluate(async () => (await db.query('conversations')).map((r) => r.status.state));
  assert.deepEqual(local, Array(10).fill('synced'));
  await context.close();
});

test('Web Locks that fail (a webview that refuses them) leave the tab working alone, not waiting for a lead that never comes', async () => {
  const user = await newUser(env.server);
  const context = await env.browser.newContext();
  await context.addInitScript(() => {
    if (!navigator.locks) return;
    navigator.locks.request = () => Promise.reject(new DOMException('locks are disabled here', 'SecurityError'));
  });
  const page = await signedIn(context, user);
  const st = await until(() => page.evaluate(() => db.status().tabs.mode === 'alone' && db.status()), 'the tab to work alone');
  assert.match(st.tabs.reason, /Web Locks failed: SecurityError/);
  assert.equal(st.leader, true);
  await page.evaluate(() => db.insert('conversations', { title: 'alone' }));
  const settled = await page.evaluate(() => db.sync({ timeoutMs: 20000 }));
  assert.equal(settled.status.pending, 0);
  assert.deepEqual((await serverRows(env.server, user, 'conversations')).map((r) => r.title), ['alone']);
  await context.close();
});

/** Two devices of one user: `a` (the one the test freezes or sends away), `b` writing meanwhile. */
async function twoDevices(browser, web) {
  const user = await newUser(env.server);
  const a = await browser.newContext();
  const b = await env.browser.newContext();
  const pageA = await openPage(a, web.url);
  await pageA.evaluate(async ([opts, user]) => {
    window.db = await window.supasync.openReplica(opts);
    await window.db.auth.signIn(user);
    window.seen = [];
    db.live('conversations', {}, (rows) => { window.seen = rows.map((r) => r.row.title).sort(); });
  }, [options(env.server), { email: user.email, password: user.password }]);
  await until(() => pageA.evaluate(() => db.status().phase === 'live'), 'device a to be live');
  const pageB = await signedIn(b, user);
  return { user, a, b, pageA, pageB, close: async () => { await a.close(); await b.close(); } };
}

/** Device `a` goes away (`away`), `b` writes meanwhile, `a` comes back (`back`): `a`
 *  must take that write, live, and push its own next one; each is on the server once. */
async function awayAndBack(d, what, away, back) {
  await away();
  await d.pageB.evaluate(async (title) => { await db.insert('conversations', { title }); await db.sync({ timeoutMs: 20000 }); }, `while ${what}`);
  await back();
  await until(() => d.pageA.evaluate((t) => window.seen.includes(t), `while ${what}`), `the ${what} device to see the write made meanwhile, live`);
  await d.pageA.evaluate(async (title) => { await db.insert('conversations', { title }); await db.sync({ timeoutMs: 20000 }); }, `after ${what}`);
  const server = (await serverRows(env.server, d.user, 'conversations')).map((r) => r.title).sort();
  assert.deepEqual(server, [`after ${what}`, `while ${what}`]);
  assert.equal(await d.pageA.evaluate(() => db.status().phase), 'live');
}

const FREEZE = 'only Chromium lets a test freeze a page as browsers freeze background tabs (CDP Page.setWebLifecycleState); WebDriver BiDi (Firefox) and classic WebDriver (WebKitGTK) have no such command';

test('a tab frozen and resumed carries on: it takes what another device wrote meanwhile, live, and pushes its own writes', { skip: engine !== 'chromium' && FREEZE }, async () => {
  const d = await twoDevices(env.browser, env.web);
  const cdp = await d.a.newCDPSession(d.pageA);
  await awayAndBack(d, 'frozen',
    () => cdp.send('Page.setWebLifecycleState', { state: 'frozen' }),
    () => cdp.send('Page.setWebLifecycleState', { state: 'active' }));
  await d.close();
});

const BFCACHE = 'Firefox ESR does not keep this page in its back-forward cache here (going back loads it afresh, the reload the fault tests cover); '
  + 'Chromium does once Playwright\'s --disable-back-forward-cache is left out';

test('a page restored from the back-forward cache carries on: it takes what another device wrote while it was away, live, and pushes its own writes', { skip: engine === 'firefox' && BFCACHE }, async () => {
  // A browser that keeps pages in its back-forward cache, and an app served as a static
  // host does (a page sent with `no-store` is never kept).
  const browser = await launchWithBackForwardCache();
  const web = await serve(installApp(), { cache: true });
  const d = await twoDevices(browser, web);
  await d.pageA.evaluate(() => window.addEventListener('pageshow', (e) => { window.restored = e.persisted; }));
  await awayAndBack(d, 'in the back-forward cache',
    () => d.pageA.goto(`${web.url}package.json`),
    async () => {
      await d.pageA.goBack({ waitUntil: 'commit' });
      await d.pageA.waitForFunction(() => document.readyState === 'complete');
      assert.equal(await d.pageA.evaluate(() => window.restored), true, 'the page came back from the cache, not reloaded');
    });
  await d.close();
  await browser.close();
  web.close();
});
