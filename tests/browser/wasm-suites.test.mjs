// The Rust test suites that run in a browser (wasm-bindgen-test): the core's browser
// tests and the IndexedDB store suite, in the engine this run drives. wasm-bindgen's
// runner only drives a browser through a WebDriver server (chromedriver, geckodriver,
// safaridriver); here it serves its test page (`NO_HEADLESS` mode) and the engine opens
// it through Playwright like every other page, so the same suites run in every engine
// without one more driver to install. Each Rust test is reported as a test of its own.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { launch, root, engine } from './harness.mjs';
import { freePort } from './webkit.mjs';

/** The suites' wasm test binaries, built if needed (`cargo test --no-run`). */
function built() {
  const suites = [['supasync-core', 'browser'], ['supasync-wasm', 'idb_store']];
  return suites.map(([crate, name]) => {
    const out = execFileSync('cargo', ['test', '-p', crate, '--test', name, '--target', 'wasm32-unknown-unknown', '--locked', '--no-run', '--message-format=json'],
      { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    const wasm = out.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((m) => m.reason === 'compiler-artifact' && m.executable && m.target?.name === name)?.executable;
    if (!wasm) throw new Error(`cargo built no test binary for ${crate} --test ${name}`);
    return { crate, name, wasm };
  });
}

/** Serve one suite's test page with wasm-bindgen's runner; resolves with its URL. */
async function serveSuite(wasm) {
  const port = await freePort();
  const runner = spawn('wasm-bindgen-test-runner', [wasm], {
    env: { ...process.env, NO_HEADLESS: '1', WASM_BINDGEN_TEST_ADDRESS: `127.0.0.1:${port}` },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let text = '';
    runner.stdout.on('data', (d) => {
      text += d;
      const m = /available at (http:\/\/\S+)/.exec(text);
      if (m) resolve(m[1]);
    });
    runner.on('exit', (code) => reject(new Error(`wasm-bindgen-test-runner exited (${code}) before serving ${wasm}: ${text}`)));
  });
  return { url, stop: () => runner.kill() };
}

/** Run the page's tests; `{results: [{name, ok}], output}` once the suite has ended. */
async function runSuite(browser, url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => /test result: (ok|FAILED)/.test(document.getElementById('output')?.textContent ?? ''), null, { timeout: 240000 });
    const output = await page.textContent('#output');
    const results = [...output.matchAll(/^test (\S+) \.\.\. (ok|FAILED)$/gm)].map(([, name, r]) => ({ name, ok: r === 'ok' }));
    return { results, output };
  } finally {
    await context.close();
  }
}

const suites = built();
let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

for (const suite of suites) {
  describe(`${suite.crate} --test ${suite.name} (Rust, wasm-bindgen-test) in ${engine}`, async () => {
    let run;
    before(async () => {
      const served = await serveSuite(suite.wasm);
      try {
        run = await runSuite(browser, served.url);
      } finally {
        served.stop();
      }
    });
    // The test names are the suite's own (read from the binary's listing, so a test
    // that never reports is a failure, not a missing line).
    for (const name of listed(suite.wasm)) {
      it(name, () => {
        const r = run.results.find((x) => x.name === name);
        assert.ok(r, `${name} did not report; the suite's output:\n${run.output}`);
        assert.ok(r.ok, `${name} failed:\n${run.output}`);
      });
    }
  });
}

/** The tests a wasm test binary holds, from wasm-bindgen's own listing. */
function listed(wasm) {
  const out = execFileSync('wasm-bindgen-test-runner', [wasm, '--list', '--format', 'terse'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const names = out.split('\n').map((l) => /^(\S+): test$/.exec(l.trim())?.[1]).filter(Boolean);
  if (names.length === 0) throw new Error(`no tests listed in ${wasm}:\n${out}`);
  return names;
}
