// The packed package under the three bundlers web apps use, with no configuration of
// the wasm file: Vite and webpack pick it up from `new URL(..., import.meta.url)`;
// esbuild leaves that URL alone, so its one documented step is to copy the .wasm next
// to the bundle. Each bundle runs in Chromium: it opens a replica, writes, reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { build as viteBuild } from 'vite';
import webpack from 'webpack';
import { installApp, serve, launch, schema } from './harness.mjs';

let app, browser;
before(async () => {
  app = installApp();
  writeFileSync(path.join(app, 'main.js'), `
import { openReplica, SupaSyncError } from 'supasync';
window.run = async (opts) => {
  const db = await openReplica(opts);
  await db.insert('conversations', { title: 'bundled' });
  const titles = (await db.query('conversations')).map((r) => r.row.title);
  await db.close();
  let kind;
  try { await db.query('conversations'); } catch (e) { kind = e instanceof SupaSyncError && e.kind; }
  return { titles, kind };
};
window.ready = true;
`);
  browser = await launch();
});
after(async () => { await browser?.close(); });

async function runIn(dir, html) {
  writeFileSync(path.join(dir, 'index.html'), html);
  const web = await serve(dir);
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(web.url);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 15000 });
  // No user is signed in: the replica is the in-memory signed-out one; what matters is
  // that the bundle found and instantiated the wasm.
  const out = await page.evaluate((o) => window.run(o), { url: 'http://127.0.0.1:9', anonKey: 'anon', schema });
  await context.close();
  web.close();
  assert.deepEqual(errors, []);
  return out;
}

const expected = { titles: ['bundled'], kind: 'closed' };

test('Vite builds it with no configuration', async () => {
  writeFileSync(path.join(app, 'index.html'), '<!doctype html><script type="module" src="/main.js"></script>');
  const outDir = path.join(app, 'dist-vite');
  await viteBuild({ root: app, logLevel: 'silent', build: { outDir, emptyOutDir: true } });
  assert.ok(readdirSync(path.join(outDir, 'assets')).some((f) => f.endsWith('.wasm')), 'Vite emitted the wasm as an asset');
  const html = (await import('node:fs')).readFileSync(path.join(outDir, 'index.html'), 'utf8');
  assert.deepEqual(await runIn(outDir, html), expected);
});

test('webpack builds it with no configuration', async () => {
  const outDir = path.join(app, 'dist-webpack');
  const stats = await new Promise((resolve, reject) =>
    webpack({ mode: 'production', context: app, entry: './main.js', output: { path: outDir, filename: 'main.js', publicPath: '' } }, (e, s) => (e ? reject(e) : resolve(s))));
  assert.equal(stats.hasErrors(), false, stats.toString('errors-only'));
  assert.ok(readdirSync(outDir).some((f) => f.endsWith('.wasm')), 'webpack emitted the wasm as an asset');
  assert.deepEqual(await runIn(outDir, '<!doctype html><script src="main.js"></script>'), expected);
});

test('esbuild bundles it; the wasm is copied next to the bundle (the one documented step)', async () => {
  const outDir = path.join(app, 'dist-esbuild');
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({ absWorkingDir: app, entryPoints: ['main.js'], bundle: true, format: 'esm', outdir: outDir, logLevel: 'silent' });
  copyFileSync(path.join(app, 'node_modules/supasync/dist/wasm/supasync_wasm_bg.wasm'), path.join(outDir, 'supasync_wasm_bg.wasm'));
  assert.deepEqual(await runIn(outDir, '<!doctype html><script type="module" src="main.js"></script>'), expected);
});
