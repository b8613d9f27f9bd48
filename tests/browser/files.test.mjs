// Files in the npm package: an image uploaded offline is shown at once from IndexedDB
// (an <img> of its object URL), goes to Storage before the message that names it, and
// the user's other device reads it; a refused file refuses its message with Storage's
// reason; bad names are clear errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setup, openPage, options, until, serverRows, newUser } from './harness.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.teardown(); });

async function device(user) {
  const context = await env.browser.newContext();
  const page = await openPage(context, env.web.url);
  const me = await page.evaluate(async ([opts, user]) => {
    window.db = await window.supasync.openReplica(opts);
    return db.auth.signIn(user);
  }, [options(env.server), { email: user.email, password: user.password }]);
  return { context, page, me };
}

/** In the page: a PNG of w×h drawn on a canvas, as a Blob. */
const makePng = ([w, h]) => new Promise((resolve) => {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  const g = c.getContext('2d');
  g.fillStyle = '#c33';
  g.fillRect(0, 0, w, h);
  c.toBlob(resolve, 'image/png');
});

/** In the page: the natural size of an <img> showing `url`. */
const shown = (url) => new Promise((resolve, reject) => {
  const img = new Image();
  img.onload = () => resolve([img.naturalWidth, img.naturalHeight]);
  img.onerror = () => reject(new Error('the image did not load'));
  img.src = url;
});

test('an image uploaded offline shows at once, goes before its message and reaches the other device', async () => {
  const user = await newUser(env.server);
  const a = await device(user);
  await a.context.setOffline(true);
  const path = `${a.me.id}/photo.png`;
  const written = await a.page.evaluate(async ([path, makePngSrc, shownSrc]) => {
    const makePng = eval(makePngSrc);
    const shown = eval(shownSrc);
    const blob = await makePng([32, 24]);
    const f = await db.files.upload('attachments', path, blob);
    const c = await db.insert('conversations', { title: 'Photos' });
    await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'look', attachment: path });
    const size = await shown(await db.files.url('attachments', path));
    return { f, size, pending: db.status().pending, conv: c.local_id, bytes: blob.size };
  }, [path, makePng.toString(), shown.toString()]);
  assert.deepEqual([written.f.status, written.f.content_type, written.f.cached], ['pending', 'image/png', true]);
  assert.deepEqual(written.size, [32, 24], 'the <img> shows it offline, from IndexedDB');
  assert.equal(written.pending, 3, 'the file waits in the same outbox as the rows');
  await a.context.setOffline(false);
  await a.page.evaluate(() => db.sync({ timeoutMs: 30000 }));
  assert.equal((await a.page.evaluate((p) => db.files.get('attachments', p), path)).status, 'synced');
  const msgs = await serverRows(env.server, user, 'messages');
  assert.deepEqual(msgs.map((m) => m.attachment), [path]);

  const b = await device(user);
  await b.page.evaluate(() => db.sync({ timeoutMs: 30000 }));
  const onB = await until(() => b.page.evaluate(async ([cid, shownSrc]) => {
    const shown = eval(shownSrc);
    const [m] = await db.query('messages', { where: { conversation_id: cid } });
    if (!m) return false;
    const blob = await db.files.download('attachments', m.row.attachment);
    return { size: await shown(await db.files.url('attachments', m.row.attachment)), bytes: blob.size, type: blob.type };
  }, [written.conv, shown.toString()]), 'B reads the image');
  assert.deepEqual(onB, { size: [32, 24], bytes: written.bytes, type: 'image/png' });
  await a.context.close();
  await b.context.close();
});

test('a refused file refuses its message with the reason; bad names are clear errors', async () => {
  const user = await newUser(env.server);
  const a = await device(user);
  const out = await a.page.evaluate(async () => {
    const errors = [];
    for (const [bucket, path] of [['attachments', '../x'], ['attachments', 'a//b'], ['a/b', 'x']]) {
      try {
        await db.files.upload(bucket, path, new Uint8Array([1]));
        errors.push('accepted');
      } catch (e) {
        errors.push(e.kind);
      }
    }
    // Another user's folder: the bucket's policy refuses it.
    const foreign = '00000000-0000-0000-0000-000000000000/x.txt';
    await db.files.upload('attachments', foreign, new Blob(['hi'], { type: 'text/plain' }));
    const c = await db.insert('conversations', { title: 'Refused' });
    const m = await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: 'x', attachment: foreign });
    await db.sync({ timeoutMs: 30000 }).catch(() => undefined);
    return { errors, file: await db.files.get('attachments', foreign), rejected: await db.rejected(), m: m.local_id };
  });
  assert.deepEqual(out.errors, ['invalid', 'invalid', 'invalid']);
  assert.equal(out.file.status, 'rejected');
  assert.match(out.file.reason, /row-level security/);
  const msg = out.rejected.find((e) => e.local_id === out.m);
  assert.ok(msg, 'the message is refused with its file');
  assert.match(msg.rejected, /row-level security/);
  assert.deepEqual(await serverRows(env.server, user, 'messages'), []);
  await a.context.close();
});

test('a large file goes over TUS from the browser, and a reload mid-upload resumes it', async () => {
  const user = await newUser(env.server);
  const a = await device(user);
  // Every upload the page creates (a TUS POST), before and after the reload.
  let created = 0;
  a.page.on('request', (r) => { if (r.method() === 'POST' && /\/storage\/v1\/upload\/resumable$/.test(r.url())) created += 1; });
  // What went over TUS and when (ms from here), for the failure messages below (WebKit's
  // driver reports only each request's method and URL).
  const tus = [];
  const t0 = Date.now();
  const isTus = (r) => /\/upload\/resumable/.test(r.url());
  a.page.on('request', (r) => { if (isTus(r)) tus.push(`${r.method()} ${r.headers?.()['upload-offset'] ?? ''}@${Date.now() - t0}`); });
  a.page.on('response', (res) => { if (isTus(res.request())) tus.push(`${res.request().method()}→${res.status()}`); });
  a.page.on('requestfailed', (r) => { if (isTus(r)) tus.push(`${r.method()}→${r.failure()?.errorText ?? 'failed'}`); });
  a.page.on('domcontentloaded', () => tus.push(`reloaded@${Date.now() - t0}`));
  const path = `${a.me.id}/big.bin`;
  const size = 13 * 1024 * 1024 + 5;
  // Written, then the push starts; the page reloads once Storage holds the first piece.
  await a.page.evaluate(async ([path, size]) => {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 255;
    await db.files.upload('attachments', path, bytes, { contentType: 'application/octet-stream' });
    window.uploads = [];
    db.onStatus((s) => s.upload && window.uploads.push(s.upload.sent));
    db.syncNow().catch(() => undefined);
  }, [path, size]);
  await until(() => a.page.evaluate(() => window.uploads.length > 0), 'the first piece stored');
  await a.page.reload();
  await a.page.waitForFunction(() => window.ready === true);
  const after = await a.page.evaluate(async ([opts]) => {
    window.db = await window.supasync.openReplica(opts);
    const error = await db.sync({ timeoutMs: 60000 }).then(() => undefined, (e) => e);
    return { error, status: db.status(), file: await db.files.get('attachments', `${(db.auth.user()).id}/big.bin`) };
  }, [options(env.server)]);
  const seen = `${JSON.stringify(after)}; over TUS: ${tus.join(', ')}`;
  assert.ok(!after.error, seen);
  assert.equal(after.file.status, 'synced', seen);
  // Never started over: the reloaded page went on with the upload created before the
  // reload (the bytes Storage held stay; TUS refuses a piece at an offset it is past),
  // where a restart creates a second upload. Counted at the network, not from the
  // status: until the page before the reload lets go of the lead (WebKit lets it
  // linger a moment), the reloaded tab follows it and is shown that page's progress.
  assert.equal(created, 1, `one TUS upload created, before the reload, and none after; over TUS: ${tus.join(', ')}`);
  const b = await device(user);
  const ok = await b.page.evaluate(async ([path, size]) => {
    const blob = await db.files.download('attachments', path);
    const got = new Uint8Array(await blob.arrayBuffer());
    if (got.length !== size) return `length ${got.length}`;
    for (let i = 0; i < size; i += 4099) if (got[i] !== ((i * 31 + 7) & 255)) return `byte ${i}`;
    return 'same';
  }, [path, size]);
  assert.equal(ok, 'same');
  await a.context.close();
  await b.context.close();
});
