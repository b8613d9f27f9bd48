// One optimistic write ÷ a raw IndexedDB put, in a browser that no test driver controls.
//
// bench.mjs drives the page over CDP, WebDriver BiDi or classic WebDriver, and a driven
// page is not quite a user's: Firefox makes it a debuggee (async stacks are captured for
// every microtask), and each engine's driver adds its own work. Here the browser is
// started as a user starts it, on a page that runs the benchmark once it has loaded
// and posts the figures back to this script's server. The replica is the package's
// (manual mode, so no network in the loop), the floor a put of the same row in its own
// transaction into a bare store; after a settling wait (a new profile's start-up work),
// three rounds of raw puts, our inserts and raw puts again, each round's ratio printed.
//
// Run after scripts/build-npm.sh: `node tests/browser/bench-unautomated.mjs firefox`
// (or chromium; webkit needs a display: `xvfb-run -a node … webkit`). WAIT_MS sets the
// settling wait (8000). It prints and does not gate.
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { appWithSupabaseJs, startChatServer, schema, newUser } from './harness.mjs';

const which = process.argv[2] ?? 'firefox';
const browsers = {
  firefox: (dir, url) => {
    writeFileSync(path.join(dir, 'user.js'), ['browser.shell.checkDefaultBrowser', 'app.update.enabled', 'datareporting.policy.dataSubmissionEnabled', 'browser.aboutwelcome.enabled']
      .map((p) => `user_pref("${p}", false);\n`).join(''));
    return [process.env.FIREFOX || '/usr/bin/firefox-esr', ['--headless', '--no-remote', '--profile', dir, url]];
  },
  chromium: (dir, url) => [process.env.CHROMIUM || '/usr/bin/chromium', ['--headless=new', '--no-sandbox', '--no-first-run', `--user-data-dir=${dir}`, url]],
  webkit: (_dir, url) => [process.env.WEBKIT_BROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser', [url]],
};
if (!browsers[which]) throw new Error(`use firefox, chromium or webkit, not ${which}`);

const server = await startChatServer();
const dist = await appWithSupabaseJs(`
const asked = new URLSearchParams(location.search);
if (asked.get('bench')) (async () => {
  const post = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) });
  try {
    const [o, creds] = JSON.parse(asked.get('bench'));
    const db = await supasync.openReplica({ ...o, mode: 'manual', name: 'writes' });
    await db.auth.signIn(creds);
    const conv = await db.insert('conversations', { title: 'bench' });
    const raw = await new Promise((resolve, reject) => {
      const q = indexedDB.open('raw-bench', 1);
      q.onupgradeneeded = () => q.result.createObjectStore('rows', { keyPath: 'local_id' });
      q.onsuccess = () => resolve(q.result);
      q.onerror = () => reject(q.error);
    });
    const put = (row) => new Promise((resolve, reject) => {
      const t = raw.transaction('rows', 'readwrite');
      t.objectStore('rows').put(row);
      t.oncomplete = resolve;
      t.onabort = () => reject(t.error);
    });
    const row = (i) => ({ conversation_id: conv.local_id, role: 'user', content: \`message \${i} \`.repeat(8) });
    await new Promise((r) => setTimeout(r, Number(asked.get('wait'))));
    for (let i = 0; i < 50; i++) await db.insert('messages', row(i));
    const timed = async (n, write) => {
      const start = performance.now();
      for (let i = 0; i < n; i++) await write(i);
      return (performance.now() - start) / n;
    };
    const rounds = [];
    for (let k = 0; k < Number(asked.get('rounds')); k++) {
      const before = await timed(200, (i) => put({ local_id: crypto.randomUUID(), ...row(i) }));
      const ours = await timed(200, (i) => db.insert('messages', row(i)));
      const after = await timed(200, (i) => put({ local_id: crypto.randomUUID(), ...row(i) }));
      rounds.push({ ours, raw: (before + after) / 2 });
    }
    await db.close();
    await post({ rounds, agent: navigator.userAgent });
  } catch (e) {
    await post({ error: String(e?.message ?? e) });
  }
})();
`);
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
let answer;
const answered = new Promise((resolve) => (answer = resolve));
const web = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/result') {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      res.end();
      answer(JSON.parse(body));
    });
    return;
  }
  const file = path.join(dist, path.normalize(new URL(req.url, 'http://x').pathname === '/' ? 'index.html' : new URL(req.url, 'http://x').pathname));
  if (!file.startsWith(dist) || !existsSync(file)) {
    res.statusCode = 404;
    return res.end();
  }
  res.setHeader('content-type', types[path.extname(file)] ?? 'application/octet-stream');
  res.end(readFileSync(file));
});
await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
const user = await newUser(server);
const bench = JSON.stringify([{ url: server.url, anonKey: server.anonKey, schema }, { email: user.email, password: user.password }]);
const url = `http://127.0.0.1:${web.address().port}/?wait=${process.env.WAIT_MS ?? 8000}&rounds=${process.env.ROUNDS ?? 3}&bench=${encodeURIComponent(bench)}`;
const [bin, args] = browsers[which](mkdtempSync(path.join(tmpdir(), 'supasync-unautomated-')), url);
const browser = spawn(bin, args, { stdio: 'ignore', detached: true });
let failed = false;
try {
  const r = await Promise.race([answered, new Promise((_, reject) => setTimeout(() => reject(new Error('the page posted nothing within 180 s')), 180_000))]);
  if (r.error) throw new Error(`the page failed: ${r.error}`);
  const fmt = (x) => `${x.toFixed(3)} ms`;
  console.log(`${which}, no driver (${r.agent})`);
  r.rounds.forEach((x, i) => console.log(`  round ${i + 1}: one write ${fmt(x.ours)} ÷ raw put ${fmt(x.raw)} = ${(x.ours / x.raw).toFixed(2)}×`));
  const mean = (k) => r.rounds.reduce((s, x) => s + x[k], 0) / r.rounds.length;
  console.log(`  mean: ${(mean('ours') / mean('raw')).toFixed(2)}×`);
} catch (e) {
  console.error(e.message);
  failed = true;
} finally {
  try {
    process.kill(-browser.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  web.close();
  await server.stop();
}
process.exit(failed ? 1 : 0);
