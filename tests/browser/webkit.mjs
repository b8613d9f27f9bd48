// WebKit for the browser suite: WebKitGTK's MiniBrowser driven by WebKitWebDriver
// (Debian's `webkit2gtk-driver`), behind the few calls of Playwright's API the tests use,
// so the same test files run in WebKit as in Chromium and Firefox. Playwright's own
// WebKit is a patched build that Debian does not ship; WebKitGTK's driver speaks classic
// WebDriver only, so what that protocol lacks is built here from its commands:
// - a context (one device) is one WebDriver session, with its own driver process (the
//   driver holds one session) and its own MiniBrowser, whose automation session keeps
//   its storage apart from every other (checked: a second session sees no database of
//   the first);
// - a page is a window of that session; commands are queued per session and each first
//   switches to its page's window;
// - `evaluate` starts the function in the page and polls for its outcome with short
//   commands, so a long evaluate in one page never blocks another page's commands (as
//   in Playwright, where pages run side by side);
// - the network goes through a proxy per context (MiniBrowser's `--proxy`), which is how
//   `setOffline` cuts it (every connection, WebSockets included, and new ones refused)
//   and how `request` events are seen. WebKit's own connectivity does not change, so
//   coming back online also fires the page's `online` event, as the engine does when the
//   network returns;
// - `pageerror` comes from listeners the page gets after each load, and init scripts
//   run after each load too (after the page's own scripts: WebDriver has no earlier
//   hook), which is enough for what the tests change (before `openReplica`);
// - frames are entered with WebDriver's Switch To Frame, by index.
// What classic WebDriver cannot do at all (Chromium's CDP, a storage quota)
// throws an error that says so; the tests that need it skip in WebKit and say why.
import { spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { connect, createServer as netServer } from 'node:net';
import { EventEmitter } from 'node:events';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const DRIVER = process.env.WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';
const BROWSER = process.env.WEBKIT_BROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
/** `SUPASYNC_WEBKIT_TRACE=1`: every WebDriver command and how long it took, on stderr. */
const TRACE = Boolean(process.env.SUPASYNC_WEBKIT_TRACE);

/** A free port on 127.0.0.1 (for a driver or a runner this suite starts). */
export function freePort() {
  return new Promise((resolve) => {
    const s = netServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** An error of a command WebKit's WebDriver does not have. */
export function unsupported(what) {
  return new Error(`${what}: not available in WebKit through WebKitGTK's WebDriver (classic WebDriver has no such command)`);
}

/** The context's network: a forward proxy that can go offline and tells each request. */
async function startNetwork(onRequest) {
  let offline = false;
  const sockets = new Set();
  const track = (s) => {
    if (sockets.has(s)) return;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const srv = createServer((req, res) => {
    if (offline) {
      req.socket.destroy();
      return;
    }
    onRequest(req.method, req.url);
    let target;
    try {
      target = new URL(req.url);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const up = httpRequest({ host: target.hostname, port: target.port || 80, method: req.method, path: target.pathname + target.search, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    up.on('socket', track);
    up.on('error', () => req.socket.destroy());
    // The page gave up on the request (a reload, a closed tab, an abort): so does the
    // proxy, as the browser's own connection would end. Kept open, the server would wait
    // for the rest of a body that never comes (a TUS chunk holding its upload's lock).
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  srv.on('connection', track);
  // As in proxy.mjs: an idle kept-alive connection closed by Node under a request the
  // engine just sent on it would be a network fault nobody asked for.
  srv.keepAliveTimeout = 0;
  // WebSockets: the proxy gets the absolute URL with an Upgrade header; the rest of the
  // exchange is passed through as bytes.
  srv.on('upgrade', (req, socket, head) => {
    if (offline) {
      socket.destroy();
      return;
    }
    onRequest(req.method, req.url);
    const target = new URL(req.url);
    const up = connect(Number(target.port || 80), target.hostname, () => {
      const lines = [`${req.method} ${target.pathname}${target.search} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    track(up);
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
    socket.on('close', () => up.destroy());
    up.on('close', () => socket.destroy());
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    setOffline(value) {
      offline = value;
      if (value) for (const s of sockets) s.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

/** The drivers' process groups still running: killed when this process ends, however
 *  it ends (a test file that timed out is sent SIGTERM), as they are detached from it. */
const running = new Set();
const killGroup = (pid) => {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
  running.delete(pid);
};
process.on('exit', () => [...running].forEach(killGroup));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    [...running].forEach(killGroup);
    process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
  });
}

/** One WebDriver session: its driver process, its commands in order. */
class Session {
  static async start(args) {
    const port = await freePort();
    // In a process group of its own, with the MiniBrowser and web processes it starts:
    // closing the session kills the whole group, so a session that could not be ended
    // leaves no browser behind holding connections open (the test file would not exit).
    const driver = spawn(DRIVER, [`--port=${port}`], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    running.add(driver.pid);
    let stderr = '';
    driver.stderr.on('data', (d) => { stderr += d; });
    const base = `http://127.0.0.1:${port}`;
    // Each try is bounded: a driver that accepts the connection and never answers is
    // an error naming this step after 20 s, not a test file that hangs to its timeout.
    const deadline = Date.now() + 20000;
    for (;;) {
      try {
        await fetch(`${base}/status`, { signal: AbortSignal.timeout(2000) });
        break;
      } catch (e) {
        if (Date.now() > deadline || driver.exitCode !== null) throw new Error(`WebKitWebDriver did not start: ${stderr || e.message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const s = new Session(driver, base);
    const created = await s.raw('POST', '/session', {
      capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary: BROWSER, args: ['--automation', ...args] } } },
    });
    s.id = created.sessionId;
    await s.raw('POST', `/session/${s.id}/timeouts`, { script: 120000, pageLoad: 60000 });
    return s;
  }

  constructor(driver, base) {
    this.driver = driver;
    this.base = base;
    this.queue = Promise.resolve();
    this.current = null;
  }

  async raw(method, path, body) {
    if (TRACE) {
      const started = Date.now();
      const what = `${method} ${path.replace(/^\/session\/[^/]+/, '')}`;
      try {
        const v = await this.exchange(method, path, body);
        process.stderr.write(`webkit ${started % 100000} ${what}: ${Date.now() - started} ms\n`);
        return v;
      } catch (e) {
        process.stderr.write(`webkit ${started % 100000} ${what}: ${e.message}\n`);
        throw e;
      }
    }
    return this.exchange(method, path, body);
  }

  async exchange(method, path, body) {
    let res;
    try {
      res = await fetch(this.base + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(90000) });
    } catch (e) {
      throw new Error(`WebKit WebDriver ${method} ${path.replace(/^\/session\/[^/]+/, '')}: no answer (${e.cause?.message ?? e.message})`);
    }
    const json = await res.json();
    if (json.value && json.value.error) throw new Error(`WebKit WebDriver ${method} ${path.replace(/^\/session\/[^/]+/, '')}: ${json.value.error}: ${json.value.message}`);
    return json.value;
  }

  /** Run `path` for the window `handle`, after the commands queued before it. */
  command(handle, method, path, body, frame = null) {
    const run = async () => {
      if (handle && this.current !== handle) {
        await this.raw('POST', `/session/${this.id}/window`, { handle });
        this.current = handle;
      }
      if (frame === null) return this.raw(method, `/session/${this.id}${path}`, body);
      await this.raw('POST', `/session/${this.id}/frame`, { id: frame });
      try {
        return await this.raw(method, `/session/${this.id}${path}`, body);
      } finally {
        await this.raw('POST', `/session/${this.id}/frame/parent`, {});
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  async close() {
    try {
      await this.raw('DELETE', `/session/${this.id}`);
    } finally {
      killGroup(this.driver.pid);
      this.driver.stderr.destroy();
    }
  }
}

/** The script that starts an evaluation in the page; its outcome lands in `__wk`. */
const START = `
const [id, source, isFunction, arg] = arguments;
const box = (window.__wk ??= { next: 0, results: {}, errors: [] });
box.results[id] = { done: false };
const settle = (r) => { if (box.results[id]) box.results[id] = r; };
try {
  const value = isFunction ? (0, eval)('(' + source + ')')(arg) : (0, eval)(source);
  Promise.resolve(value).then(
    (v) => settle({ done: true, ok: true, undefined: v === undefined, value: v === undefined ? null : v }),
    (e) => settle({ done: true, ok: false, name: e?.name ?? 'Error', message: String(e?.message ?? e) }));
} catch (e) {
  settle({ done: true, ok: false, name: e?.name ?? 'Error', message: String(e?.message ?? e) });
}`;

/** The script that reads an outcome (and the page's errors since the last read). */
const POLL = `
const box = window.__wk;
if (!box) return { lost: true };
const errors = box.errors.splice(0);
const r = box.results[arguments[0]];
if (!r) return { lost: true, errors };
if (r.done) delete box.results[arguments[0]];
return { ...r, errors, frames: window.frames.length };`;

/** Listeners for the page's uncaught errors, added after each load. */
const WATCH = `
const box = (window.__wk ??= { next: 0, results: {}, errors: [] });
if (!box.watching) {
  box.watching = true;
  addEventListener('error', (e) => box.errors.push(String(e.message ?? e.error?.message ?? e)));
  addEventListener('unhandledrejection', (e) => box.errors.push(String(e.reason?.message ?? e.reason)));
}`;

let nextId = 0;

/** WebDriver's key codes for the keys the tests press. */
const KEYS = { Enter: '\uE007', End: '\uE010', Home: '\uE011', Shift: '\uE008', Control: '\uE009', Delete: '\uE017', Backspace: '\uE003', Tab: '\uE004', Escape: '\uE00C' };

/** The page's keyboard, as WebDriver key actions (real key events in the engine). */
class Keyboard {
  constructor(page) {
    this.page = page;
  }

  async actions(list) {
    await this.page.cmd('POST', '/actions', { actions: [{ type: 'key', id: 'keyboard', actions: list }] });
    await this.page.cmd('DELETE', '/actions');
  }

  async press(combo) {
    const keys = combo.split('+').map((k) => KEYS[k] ?? (k.length === 1 ? k : null));
    if (keys.includes(null)) throw new Error(`keyboard.press('${combo}'): no WebDriver key for it in webkit.mjs`);
    await this.actions([...keys.map((value) => ({ type: 'keyDown', value })), ...keys.reverse().map((value) => ({ type: 'keyUp', value }))]);
  }

  async type(text) {
    await this.actions([...text].flatMap((value) => [{ type: 'keyDown', value }, { type: 'keyUp', value }]));
  }
}

/** Finds a locator's elements in the page: Playwright's rules for the few kinds the
 *  tests use (test id; label, role name and text matched case-insensitively as
 *  substrings, whitespace collapsed). Runs in the page. */
function findAll(steps) {
  const norm = (t) => (t ?? '').replace(/\s+/g, ' ').trim().toLowerCase();
  const has = (t, want) => norm(t).includes(norm(want));
  const labelOf = (el) => {
    const parts = [el.getAttribute('aria-label')];
    for (const id of (el.getAttribute('aria-labelledby') ?? '').split(/\s+/).filter(Boolean)) parts.push(document.getElementById(id)?.textContent);
    for (const l of el.labels ?? []) parts.push(l.textContent);
    return parts.filter((x) => x != null);
  };
  const roles = {
    button: (el) => el.matches('button, [role=button], input[type=button], input[type=submit]'),
    checkbox: (el) => el.matches('input[type=checkbox], [role=checkbox]'),
    link: (el) => el.matches('a[href], [role=link]'),
    textbox: (el) => el.matches('textarea, input:not([type]), input[type=text], input[type=email], input[type=password], [role=textbox]'),
  };
  const nameOf = (el) => el.getAttribute('aria-label') ?? labelOf(el)[0] ?? (el.value && el.matches('input') ? el.value : el.textContent);
  let set = [document.documentElement];
  let first = true;
  for (const s of steps) {
    if (s.kind === 'filter') set = set.filter((el) => has(el.textContent, s.hasText));
    else if (s.kind === 'first') set = set.slice(0, 1);
    else {
      const within = set.flatMap((root) => [...(first ? [root] : []), ...root.querySelectorAll('*')]);
      const unique = [...new Set(within)];
      if (s.kind === 'css') set = set.flatMap((root) => [...root.querySelectorAll(s.value)]);
      else if (s.kind === 'testid') set = unique.filter((el) => el.getAttribute('data-testid') === s.value);
      else if (s.kind === 'label') set = unique.filter((el) => labelOf(el).some((t) => has(t, s.value)));
      else if (s.kind === 'role') {
        const is = roles[s.role];
        if (!is) throw new Error(`getByRole('${s.role}'): webkit.mjs knows button, checkbox, link, textbox`);
        set = unique.filter((el) => is(el) && (s.name == null || has(nameOf(el), s.name)));
      }
      set = [...new Set(set)];
    }
    first = false;
  }
  return set;
}

/** A Playwright-like locator: resolved again at each action, waiting until it matches
 *  (Playwright's auto-wait), strict (one element) for actions. */
class Locator {
  constructor(page, steps) {
    this.pg = page;
    this.steps = steps;
  }

  page() {
    return this.pg;
  }

  and(step) {
    return new Locator(this.pg, [...this.steps, step]);
  }

  getByTestId(value) { return this.and({ kind: 'testid', value }); }
  getByLabel(value) { return this.and({ kind: 'label', value }); }
  getByRole(role, { name } = {}) { return this.and({ kind: 'role', role, name }); }
  locator(value) { return this.and({ kind: 'css', value }); }
  filter({ hasText }) { return this.and({ kind: 'filter', hasText }); }
  first() { return this.and({ kind: 'first' }); }

  /** Run `fn(elements, arg)` in the page. */
  run(fn, arg) {
    return this.pg.evaluate(`(${fn})((${findAll})(${JSON.stringify(this.steps)}), ${JSON.stringify(arg ?? null)})`);
  }

  count() {
    return this.run((els) => els.length);
  }

  allInnerTexts() {
    return this.run((els) => els.map((e) => e.innerText));
  }

  /** The one element, waited for; `fn(element, arg)` runs on it in the page. */
  async one(fn, arg, timeout = 30000) {
    const end = Date.now() + timeout;
    for (;;) {
      const r = await this.run((els, a) => (els.length !== 1 ? { n: els.length }
        : Promise.resolve((0, eval)(`(${a.fn})`)(els[0], a.arg)).then((v) => ({ v }))), { fn: fn.toString(), arg });
      if (r.n === undefined) return r.v;
      if (r.n > 1) throw new Error(`locator ${JSON.stringify(this.steps)}: strict mode, ${r.n} elements match`);
      if (Date.now() > end) throw new Error(`locator ${JSON.stringify(this.steps)}: no element after ${timeout} ms`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  /** The one element as a WebDriver reference, for real input (click, keys). */
  async element() {
    await this.one(() => true);
    const steps = JSON.stringify(this.steps);
    return this.pg.sync(`return (${findAll})(${steps})[0];`);
  }

  async waitFor({ timeout = 30000 } = {}) {
    await this.one(() => true, null, timeout);
  }

  innerText() { return this.one((e) => e.innerText); }
  inputValue() { return this.one((e) => e.value); }
  getAttribute(name) { return this.one((e, n) => e.getAttribute(n), name); }
  focus() { return this.one((e) => { e.focus(); return true; }); }

  evaluate(fn, arg) {
    return this.one(fn, arg);
  }

  /** A real click, as Playwright makes one: the element scrolled into view, then the
   *  mouse pressed and released at its centre (WebDriver pointer actions). */
  async click() {
    const at = await this.one((e) => {
      e.scrollIntoView({ block: 'center', inline: 'center' });
      const r = e.getBoundingClientRect();
      return { x: Math.round(r.left + r.width / 2), y: Math.round(r.top + r.height / 2) };
    });
    await this.pg.cmd('POST', '/actions', { actions: [{ type: 'pointer', id: 'mouse', parameters: { pointerType: 'mouse' }, actions: [
      { type: 'pointerMove', origin: 'viewport', x: at.x, y: at.y, duration: 0 },
      { type: 'pointerDown', button: 0 },
      { type: 'pointerUp', button: 0 },
    ] }] });
    await this.pg.cmd('DELETE', '/actions');
  }

  async press(key) {
    await this.focus();
    await this.pg.keyboard.press(key);
  }

  async selectOption(value) {
    const id = await this.one((e, v) => {
      const i = [...e.options].findIndex((o) => o.value === v || o.label === v);
      return i;
    }, value);
    if (id < 0) throw new Error(`selectOption('${value}'): no such option`);
    const option = await this.pg.sync(`return (${findAll})(${JSON.stringify(this.steps)})[0].options[arguments[0]];`, [id]);
    await this.pg.cmd('POST', `/element/${Object.values(option)[0]}/click`, {});
  }

  async setInputFiles({ name, buffer }) {
    const dir = mkdtempSync(path.join(tmpdir(), 'supasync-upload-'));
    const file = path.join(dir, name);
    writeFileSync(file, buffer);
    const el = await this.element();
    await this.pg.cmd('POST', `/element/${Object.values(el)[0]}/value`, { text: file });
  }
}

class WebKitPage extends EventEmitter {
  constructor(context, handle) {
    super();
    this.ctx = context;
    this.handle = handle;
  }

  context() {
    return this.ctx;
  }

  get keyboard() {
    return new Keyboard(this);
  }

  getByTestId(value) { return new Locator(this, [{ kind: 'testid', value }]); }
  getByLabel(value) { return new Locator(this, [{ kind: 'label', value }]); }
  getByRole(role, { name } = {}) { return new Locator(this, [{ kind: 'role', role, name }]); }
  locator(value) { return new Locator(this, [{ kind: 'css', value }]); }

  cmd(method, path, body) {
    return this.ctx.session.command(this.handle, method, path, body, this.frameIndex ?? null);
  }

  sync(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  async watch() {
    await this.sync(WATCH);
  }

  async goto(url) {
    await this.cmd('POST', '/url', { url });
    await this.loaded();
  }

  async reload() {
    await this.cmd('POST', '/refresh', {});
    await this.loaded();
  }

  async goBack() {
    await this.cmd('POST', '/back', {});
    await this.loaded();
  }

  /** After a load: the error listeners, then the context's init scripts (which run after
   *  the page's own scripts here: classic WebDriver has no way to run one before). */
  async loaded() {
    await this.watch();
    for (const script of this.ctx.initScripts) await this.evaluate(script);
  }

  mainFrame() {
    return this;
  }

  async evaluate(fn, arg) {
    const id = `e${nextId++}`;
    const isFunction = typeof fn === 'function';
    await this.sync(START, [id, isFunction ? fn.toString() : String(fn), isFunction, arg === undefined ? null : arg]);
    for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
      const r = await this.sync(POLL, [id]);
      for (const message of r.errors ?? []) this.emit('pageerror', new Error(message));
      if (r.lost) throw new Error('page.evaluate: the page navigated or was closed before the function settled');
      if (r.done) {
        if (!r.ok) {
          const e = new Error(`page.evaluate: ${r.name}: ${r.message}`);
          e.name = r.name;
          throw e;
        }
        if (this.frameIndex === undefined) this.childFrames = r.frames;
        return r.undefined ? undefined : r.value;
      }
      await new Promise((res) => setTimeout(res, delay));
    }
  }

  async waitForFunction(fn, arg, { timeout = 30000 } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
      const value = await this.evaluate(fn, arg);
      if (value) return { jsonValue: async () => value };
      if (Date.now() > end) throw new Error(`page.waitForFunction: timed out after ${timeout} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  textContent(selector) {
    return this.evaluate((s) => document.querySelector(s)?.textContent ?? null, selector);
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.ctx.pageList = this.ctx.pageList.filter((p) => p !== this);
    if (this.ctx.pageList.length === 0 && !this.ctx.spare) {
      // The session's last window: closing it would end the session, so a blank window
      // is opened first to be the next page's. (Navigating this one to about:blank
      // instead left the page alive in the back-forward cache, frozen, still holding
      // its replica's Web Lock and IndexedDB connection: a later page's open waited on
      // it for ever, now and then.)
      this.ctx.spare = (await this.cmd('POST', '/window/new', { type: 'window' })).handle;
    }
    await this.cmd('DELETE', '/window');
    this.ctx.session.current = null;
  }

  /** Playwright's `frames()` is synchronous; here the frames are read when the page
   *  loads a frame through `evaluate`, so `frames()` answers from the last count. */
  frames() {
    return [this, ...Array.from({ length: this.childFrames ?? 0 }, (_, i) => new WebKitFrame(this, i))];
  }

  /** The window as WebDriver takes it (Take Screenshot). */
  async screenshot({ path: file } = {}) {
    const png = Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
    if (file) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, png);
    }
    return png;
  }
}

/** A child frame of a page: the same commands, run inside the frame. */
class WebKitFrame extends WebKitPage {
  constructor(page, index) {
    super(page.ctx, page.handle);
    this.frameIndex = index;
  }
}

class WebKitContext {
  static async create() {
    const ctx = new WebKitContext();
    ctx.network = await startNetwork((method, url) => {
      for (const p of ctx.pageList) p.emit('request', { method: () => method, url: () => url });
    });
    ctx.session = await Session.start([`--proxy=${ctx.network.url}`]);
    ctx.spare = await ctx.session.raw('GET', `/session/${ctx.session.id}/window`);
    ctx.session.current = ctx.spare;
    return ctx;
  }

  constructor() {
    this.pageList = [];
    this.initScripts = [];
    this.offline = false;
  }

  pages() {
    return [...this.pageList];
  }

  async newPage() {
    let handle = this.spare;
    this.spare = null;
    // A window of its own, not a tab: a background tab is not painted, so WebDriver
    // could not take its screenshot (the command hangs).
    if (!handle) handle = (await this.session.command(null, 'POST', '/window/new', { type: 'window' })).handle;
    const page = new WebKitPage(this, handle);
    this.pageList.push(page);
    return page;
  }

  async setOffline(value) {
    this.offline = value;
    this.network.setOffline(value);
    if (!value) {
      for (const p of this.pageList) await p.sync(`dispatchEvent(new Event('online'))`);
    }
  }

  addInitScript(fn) {
    this.initScripts.push(fn);
  }

  newCDPSession() {
    throw unsupported('context.newCDPSession() (Chromium only)');
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.session.close();
    } finally {
      this.network.close();
    }
  }
}

/** WebKit with a Playwright-like `newContext()` and `close()`. */
export async function launchWebKit() {
  const contexts = new Set();
  return {
    async newContext() {
      const c = await WebKitContext.create();
      contexts.add(c);
      return c;
    },
    async close() {
      await Promise.all([...contexts].map((c) => c.close().catch(() => {})));
    },
  };
}
