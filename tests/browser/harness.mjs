// The browser suite's harness: the dev server with the chat schema, the packed npm
// package installed into a fresh app folder served on localhost (an import map points
// `supasync` at the package's `exports` entry, as a web app without a bundler would),
// and Playwright driving a browser engine from Debian's packages, chosen by
// SUPASYNC_ENGINE: `chromium` (the default, over CDP), `firefox` (Firefox ESR over
// WebDriver BiDi, Playwright's `moz-firefox` channel) or `webkit` (WebKitGTK over its
// classic WebDriver, behind the same calls: webkit.mjs). Each context is one device.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, statSync, readdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, firefox } from 'playwright-core';
import * as esbuild from 'esbuild';
import { launchWebKit, unsupported } from './webkit.mjs';
import { startServer, client, newUser } from '../conformance/harness.mjs';

export { client, newUser };
export const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const schema = JSON.parse(readFileSync(path.join(root, 'examples/chat/schema.json'), 'utf8'));

/** The dev server with the chat app's migrations. */
export function startChatServer(extraArgs = []) {
  return startServer(extraArgs, { migrations: path.join(root, 'examples/chat/migrations') });
}

/** The packed package (built by scripts/build-npm.sh). */
export function tarball() {
  const dir = path.join(root, 'target/npm');
  const tgz = existsSync(dir) && readdirSync(dir).find((f) => /^supasync-.*\.tgz$/.test(f));
  if (!tgz) throw new Error('target/npm/supasync-*.tgz is missing: run scripts/build-npm.sh first');
  return path.join(dir, tgz);
}

/** A fresh app folder with the tarball installed, as a user's project would have it. */
export function installApp() {
  const dir = mkdtempSync(path.join(tmpdir(), 'supasync-app-'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', tarball()], { cwd: dir, stdio: 'inherit' });
  writeFileSync(
    path.join(dir, 'index.html'),
    `<!doctype html><meta charset="utf-8"><title>supasync test page</title>
<script type="importmap">{"imports":{"supasync":"/node_modules/supasync/dist/index.js"}}</script>
<script type="module">
  import * as supasync from 'supasync';
  window.supasync = supasync;
  window.ready = true;
</script>`,
  );
  return dir;
}

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

/** Serve `dir` on 127.0.0.1 (a secure context, so Web Locks exist). `fault(req)` may
 *  return an HTTP status to answer a request with instead of its file. */
export function serve(dir, { cache = false, fault = () => undefined } = {}) {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      // A test's fault: an HTTP status to answer this request with instead of the file.
      const status = fault(req);
      if (status) {
        res.writeHead(status).end();
        return;
      }
      const p = path.join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname));
      const file = p.endsWith('/') ? path.join(p, 'index.html') : p;
      if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      const type = types[path.extname(file)] ?? 'application/octet-stream';
      if (!cache) {
        // Readable from any origin, as a CDN serves a package: a sandboxed frame of the
        // app (an opaque origin) loads the same files.
        res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
        res.end(readFileSync(file));
        return;
      }
      // As a static host serves an app's files: kept by the browser, checked again on
      // every load (ETag, 304 when unchanged).
      const st = statSync(file);
      const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
      const headers = { 'content-type': type, 'cache-control': 'no-cache', etag };
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers).end();
        return;
      }
      res.writeHead(200, headers);
      res.end(readFileSync(file));
    });
    srv.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${srv.address().port}/`, close: () => { srv.close(); srv.closeAllConnections(); } }));
  });
}

export const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The engine this run drives (SUPASYNC_ENGINE). */
export const engine = process.env.SUPASYNC_ENGINE || 'chromium';
if (!['chromium', 'firefox', 'webkit'].includes(engine)) throw new Error(`SUPASYNC_ENGINE=${engine}: use chromium, firefox or webkit`);

/** Firefox's preferences for a test profile (no first-run pages, no updates). */
const firefoxPrefs = { 'browser.shell.checkDefaultBrowser': false, 'app.update.enabled': false, 'datareporting.policy.dataSubmissionEnabled': false };

/** The engine's browser; `prefs` are more Firefox preferences (ignored elsewhere). */
export function launch({ prefs = {} } = {}) {
  if (engine === 'webkit') return launchWebKit();
  if (engine === 'firefox') {
    return firefox.launch({ channel: 'moz-firefox', executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr', headless: true, firefoxUserPrefs: { ...firefoxPrefs, ...prefs } });
  }
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs });
}

/** Chromium as Playwright launches it, but keeping pages in its back-forward cache
 *  (WebKit keeps them as it is launched). */
export function launchWithBackForwardCache() {
  if (engine === 'webkit') return launchWebKit();
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: chromiumArgs, ignoreDefaultArgs: ['--disable-back-forward-cache'] });
}

/** A fresh context (one device) whose origin `url` may store about `bytes`: Chromium
 *  sets the quota of the origin over CDP, Firefox is launched apart with a storage limit
 *  (its preference counts kilobytes, for the whole profile). `close()` ends it. */
export async function contextWithQuota(browser, url, bytes) {
  if (engine === 'webkit') throw unsupported('a storage quota for a test origin');
  if (engine === 'chromium') {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    // Chromium applies it to storage created after.
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(url).origin, quotaSize: bytes });
    return { context, page, close: () => context.close() };
  }
  const own = await launch({ prefs: { 'dom.quotaManager.temporaryStorage.fixedLimit': Math.ceil(bytes / 1024) } });
  const context = await own.newContext();
  return { context, page: await context.newPage(), close: () => own.close() };
}

/** Whether a page error is Firefox's report of a request that failed on the network
 *  (it logs those as errors of the page, where Chromium does not): while a test has a
 *  device offline they are expected, and the SDK's own handling is what is checked. */
export function isNetworkReport(message) {
  return /CORS request did not succeed|can.t establish a connection to the server|NetworkError when attempting to fetch/.test(message);
}

/** A page of the app, loaded, with `window.supasync` ready. */
export async function openPage(context, appUrl) {
  const page = await context.newPage();
  page.on('pageerror', (e) => { if (!isNetworkReport(e.message)) console.error('page error:', e.message); });
  await page.goto(appUrl);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

/** Everything a test needs, started once per test file. */
export async function setup() {
  const server = await startChatServer();
  const app = installApp();
  const web = await serve(app);
  const browser = await launch();
  return {
    server,
    web,
    browser,
    async teardown() {
      await browser.close();
      web.close();
      await server.stop();
    },
  };
}

/** `openReplica` options for this server, as a page passes them. */
export function options(server, extra = {}) {
  return { url: server.url, anonKey: server.anonKey, schema, ...extra };
}

/** Poll `f` until it returns a truthy value (deadline, not a sleep). */
export async function until(f, what, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await f();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** The user's rows on the server, through PostgREST with their own token (RLS decides). */
export async function serverRows(server, user, table, filter = (q) => q) {
  const c = client(server);
  const { error } = await c.auth.signInWithPassword({ email: user.email, password: user.password });
  if (error) throw error;
  const { data, error: e2 } = await filter(c.from(table).select('*'));
  if (e2) throw e2;
  return data;
}

/** An app page bundled with esbuild that has both supabase-js (`window.createClient`,
 *  from the conformance suite's pinned install) and supasync (`window.supasync`), as
 *  an app that already uses supabase-js would; `more` is code the module runs after
 *  (with `supasync` in scope). Returns the folder to serve. */
export async function appWithSupabaseJs(more = '') {
  const app = installApp();
  writeFileSync(path.join(app, 'main.js'), `
import { createClient } from '@supabase/supabase-js';
import * as supasync from 'supasync';
window.supasync = supasync;
window.createClient = createClient;
window.ready = true;
${more}`);
  const dist = path.join(app, 'dist');
  await esbuild.build({ absWorkingDir: app, entryPoints: ['main.js'], bundle: true, format: 'esm', minify: true, outdir: dist,
    nodePaths: [path.join(root, 'tests/conformance/node_modules')], logLevel: 'silent' });
  // esbuild leaves `new URL(..., import.meta.url)` alone: the wasm goes next to the bundle.
  copyFileSync(path.join(app, 'node_modules/supasync/dist/wasm/supasync_wasm_bg.wasm'), path.join(dist, 'supasync_wasm_bg.wasm'));
  writeFileSync(path.join(dist, 'index.html'), '<!doctype html><script type="module" src="main.js"></script>');
  return dist;
}
