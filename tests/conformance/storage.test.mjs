// supabase-js (storage-js) against supasync-dev's /storage/v1: buckets, uploads (raw,
// multipart, upsert), downloads (authenticated, public, signed, ranges), info, list v1
// and v2, move, copy, remove, signed upload URLs, TUS resumable uploads, row-level
// security on storage.objects, and bad input that changes nothing (on disk included).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import zlib from 'node:zlib';
import { startServer, client, newUser, device } from './harness.mjs';

let server, service, alice, bob, a1, b1, dir;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'supasync-storage-test-'));
  server = await startServer(['--storage-dir', dir]);
  service = client(server, { key: server.serviceKey });
  alice = await newUser(server);
  bob = await newUser(server);
  a1 = await device(server, alice);
  b1 = await device(server, bob);
});
after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const files = (sub) => readdirSync(path.join(dir, sub)).sort();
let n = 0;
async function bucket(opts = { public: false }) {
  const name = `b${Date.now()}-${n++}`;
  const { error } = await service.storage.createBucket(name, opts);
  assert.equal(error, null);
  return name;
}
/** An HTTP request whose path goes out exactly as given. */
function rawRequest(method, rawPath, body) {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, method, path: rawPath, headers: { authorization: `Bearer ${server.serviceKey}`, 'content-type': 'text/plain' } }, (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const text = async (blob) => (blob ? await blob.text() : null);

test('buckets: create, get, list with search, update, empty, delete', async () => {
  const name = await bucket({ public: false, fileSizeLimit: '20mb', allowedMimeTypes: ['image/png'] });
  const got = await service.storage.getBucket(name);
  assert.equal(got.error, null);
  assert.deepEqual(
    { id: got.data.id, name: got.data.name, public: got.data.public, limit: got.data.file_size_limit, mimes: got.data.allowed_mime_types },
    { id: name, name, public: false, limit: 20000000, mimes: ['image/png'] },
  );
  const listed = await service.storage.listBuckets({ search: name });
  assert.deepEqual(listed.data.map((b) => b.id), [name]);

  const upd = await service.storage.updateBucket(name, { public: true });
  assert.deepEqual(upd.data, { message: 'Successfully updated' });
  const after = (await service.storage.getBucket(name)).data;
  assert.equal(after.public, true);
  assert.equal(after.file_size_limit, 20000000, 'a field not given keeps its value');

  const dup = await service.storage.createBucket(name);
  assert.equal(dup.error.statusCode, '409');

  await service.storage.from(name).upload('a.png', new Blob(['png'], { type: 'image/png' }));
  const notEmpty = await service.storage.deleteBucket(name);
  assert.equal(notEmpty.error.statusCode, '409', 'a bucket with objects is not deleted');
  assert.equal((await service.storage.emptyBucket(name)).error, null);
  assert.deepEqual((await service.storage.from(name).list()).data, []);
  assert.deepEqual((await service.storage.deleteBucket(name)).data, { message: 'Successfully deleted' });
  assert.equal((await service.storage.getBucket(name)).error.message, 'Bucket not found');
});

test('buckets: a signed-in user without a policy on storage.buckets can neither see nor create them', async () => {
  const name = await bucket();
  assert.equal((await a1.storage.getBucket(name)).error.message, 'Bucket not found');
  const made = await a1.storage.createBucket(`mine-${Date.now()}`);
  assert.equal(made.error.statusCode, '403');
  assert.match(made.error.message, /row-level security/);
});

test('upload raw, Blob (multipart) and with metadata; download and info give them back', async () => {
  const name = await bucket();
  const s = service.storage.from(name);
  assert.deepEqual((await s.upload('raw.txt', 'raw bytes', { contentType: 'text/plain' })).data.fullPath, `${name}/raw.txt`);
  await s.upload('blob.json', new Blob(['{"a":1}'], { type: 'application/json' }), { metadata: { tag: 'x' }, cacheControl: '60' });
  assert.equal(await text((await s.download('raw.txt')).data), 'raw bytes');
  const blob = (await s.download('blob.json')).data;
  assert.equal(blob.type, 'application/json');
  assert.equal(await blob.text(), '{"a":1}');
  const info = (await s.info('blob.json')).data;
  assert.deepEqual(
    { size: info.size, contentType: info.contentType, cacheControl: info.cacheControl, metadata: info.metadata, bucketId: info.bucketId },
    { size: 7, contentType: 'application/json', cacheControl: 'max-age=60', metadata: { tag: 'x' }, bucketId: name },
  );
  assert.match(info.etag, /^"[0-9a-f]{32}"$/);
  assert.equal((await s.exists('blob.json')).data, true);
  assert.equal((await s.exists('nope.json')).data, false);
});

test('an existing object is refused without upsert (409, unchanged) and replaced with it or by update', async () => {
  const name = await bucket();
  const s = service.storage.from(name);
  await s.upload('f.txt', 'one');
  const again = await s.upload('f.txt', 'two');
  assert.equal(again.error.statusCode, '409');
  assert.equal(again.error.message, 'The resource already exists');
  assert.equal(await text((await s.download('f.txt')).data), 'one');
  assert.equal((await s.upload('f.txt', 'three', { upsert: true })).error, null);
  assert.equal(await text((await s.download('f.txt')).data), 'three');
  assert.equal((await s.update('f.txt', 'four')).error, null);
  assert.equal(await text((await s.download('f.txt')).data), 'four');
  assert.equal(files('objects').length > 0, true);
});

test('size and type limits refuse before anything is kept', async () => {
  const name = await bucket({ public: false, fileSizeLimit: 10, allowedMimeTypes: ['image/*'] });
  const s = service.storage.from(name);
  const before = files('objects');
  const big = await s.upload('big.png', new Blob(['x'.repeat(11)], { type: 'image/png' }));
  assert.equal(big.error.statusCode, '413');
  assert.equal(big.error.message, 'The object exceeded the maximum allowed size');
  const wrong = await s.upload('doc.txt', 'hello', { contentType: 'text/plain' });
  assert.equal(wrong.error.statusCode, '415');
  assert.equal(wrong.error.message, 'mime type text/plain is not supported');
  assert.equal((await s.upload('ok.png', new Blob(['tiny'], { type: 'image/png' }))).error, null, 'image/* allows image/png');
  assert.deepEqual((await s.list()).data.map((o) => o.name), ['ok.png']);
  assert.equal(files('objects').length, before.length + 1, 'only the accepted file is on disk');
  assert.deepEqual(files('tmp'), [], 'no staged upload is left behind');
});

test('a refusal reaches the client whole even when the refused body is large (the server reads it before answering)', async () => {
  const name = await bucket({ public: false, fileSizeLimit: 1000, allowedMimeTypes: ['image/*'] });
  const s = service.storage.from(name);
  const mb = 'x'.repeat(1 << 20);
  for (let i = 0; i < 5; i++) {
    const wrong = await s.upload(`doc-${i}.txt`, mb, { contentType: 'text/plain' });
    assert.equal(wrong.error?.statusCode, '415', `raw, refused by type before a byte is read: ${wrong.error?.message}`);
    const big = await s.upload(`big-${i}.png`, new Blob([mb], { type: 'image/png' }));
    assert.equal(big.error?.statusCode, '413', `multipart, refused by size part way: ${big.error?.message}`);
  }
  assert.deepEqual((await s.list()).data, []);
});

test('bad input: missing bucket, bad keys and bad bodies get clear errors and change nothing', async () => {
  const name = await bucket();
  const s = service.storage.from(name);
  await s.upload('keep.txt', 'keep');
  const missing = await service.storage.from('no-such-bucket').upload('a.txt', 'x');
  assert.equal(missing.error.message, 'Bucket not found');
  assert.equal(missing.error.statusCode, '404');
  // Sent byte for byte (fetch's URL parser would fold `..` away before sending).
  for (const key of ['../escape.txt', 'a/../b.txt', '%2E%2E/escape.txt', 'a//b.txt', 'back%5Cslash.txt', './a.txt']) {
    const r = await rawRequest('POST', `/storage/v1/object/${name}/${key}`, 'x');
    assert.equal(r.status, 400, key);
    assert.equal(JSON.parse(r.body).code, 'InvalidKey', key);
  }
  const res = await fetch(`${server.url}/storage/v1/object/list/${name}`, {
    method: 'POST', headers: { authorization: `Bearer ${server.serviceKey}`, 'content-type': 'application/json' }, body: '{not json',
  });
  assert.equal(res.status, 400);
  assert.match((await res.json()).message, /not valid JSON/);
  const noToken = await fetch(`${server.url}/storage/v1/bucket`);
  assert.equal(noToken.status, 401);
  assert.equal((await noToken.json()).message, 'Invalid Compact JWS');
  assert.deepEqual((await s.list()).data.map((o) => o.name), ['keep.txt']);
  assert.deepEqual(files('tmp'), []);
});

test('downloads: public bucket without a token, private bucket not public, byte ranges, download names', async () => {
  const pub = await bucket({ public: true });
  const priv = await bucket({ public: false });
  await service.storage.from(pub).upload('dir/p.txt', 'public bytes');
  await service.storage.from(priv).upload('s.txt', 'secret');
  const url = service.storage.from(pub).getPublicUrl('dir/p.txt').data.publicUrl;
  const r = await fetch(url);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'public bytes');
  const hidden = await fetch(service.storage.from(priv).getPublicUrl('s.txt').data.publicUrl);
  assert.equal(hidden.status, 404);
  assert.doesNotMatch(await hidden.text(), /secret/);
  const part = await fetch(url, { headers: { range: 'bytes=7-11' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), 'bytes 7-11/12');
  assert.equal(await part.text(), 'bytes');
  const bad = await fetch(url, { headers: { range: 'bytes=50-60' } });
  assert.equal(bad.status, 416);
  const named = await fetch(service.storage.from(pub).getPublicUrl('dir/p.txt', { download: 'report.txt' }).data.publicUrl);
  assert.match(named.headers.get('content-disposition'), /attachment; filename\*=UTF-8''report\.txt/);
});

test('list v1: one folder level, folders without ids, search, sort and paging', async () => {
  const name = await bucket();
  const s = service.storage.from(name);
  for (const k of ['docs/b.txt', 'docs/a.txt', 'docs/sub/c.txt', 'docs/ab.txt', 'top.txt']) await s.upload(k, k);
  const level = (await s.list('docs')).data;
  assert.deepEqual(level.map((e) => [e.name, e.id === null]), [['a.txt', false], ['ab.txt', false], ['b.txt', false], ['sub', true]]);
  assert.deepEqual((await s.list('docs', { search: 'a' })).data.map((e) => e.name), ['a.txt', 'ab.txt']);
  assert.deepEqual((await s.list('docs', { sortBy: { column: 'name', order: 'desc' }, limit: 2, offset: 1 })).data.map((e) => e.name), ['b.txt', 'ab.txt']);
  assert.deepEqual((await s.list()).data.map((e) => e.name), ['docs', 'top.txt']);
  const bad = await s.list('docs', { sortBy: { column: 'size; drop table x', order: 'asc' } });
  assert.equal(bad.error.statusCode, '400');
});

test('list v2: recursive or by folder, cursor pages with an exact hasNext', async () => {
  const name = await bucket();
  const s = service.storage.from(name);
  const keys = ['p/e', 'p/a', 'p/d', 'p/b', 'p/c', 'p/sub/x'];
  for (const k of keys) await s.upload(k, k);
  const all = (await s.listV2({ prefix: 'p/' })).data;
  assert.deepEqual(all.objects.map((o) => o.name), ['p/a', 'p/b', 'p/c', 'p/d', 'p/e', 'p/sub/x']);
  assert.deepEqual(all.folders, []);
  let cursor, pages = [], hasNext = true;
  while (hasNext) {
    const { data, error } = await s.listV2({ prefix: 'p/', with_delimiter: true, limit: 2, ...(cursor ? { cursor } : {}) });
    assert.equal(error, null);
    pages.push([...data.folders.map((f) => f.name), ...data.objects.map((o) => o.name)].sort());
    hasNext = data.hasNext;
    cursor = data.nextCursor;
  }
  assert.deepEqual(pages, [['p/a', 'p/b'], ['p/c', 'p/d'], ['p/e', 'p/sub/']], 'folders sort among objects by name');
  const top = (await s.listV2({ with_delimiter: true })).data;
  assert.deepEqual(top.folders, [{ key: 'p', name: 'p/' }]);
  assert.equal((await s.listV2({ cursor: 'forged' })).error.statusCode, '400');
});

test('move and copy, within a bucket and across buckets; a taken destination is refused', async () => {
  const a = await bucket();
  const b = await bucket();
  const s = service.storage.from(a);
  await s.upload('m.txt', 'move me');
  await s.upload('c.txt', 'copy me', { metadata: { k: 'v' } });
  await s.upload('taken.txt', 'taken');
  assert.deepEqual((await s.move('m.txt', 'moved/m.txt')).data, { message: 'Successfully moved' });
  assert.equal((await s.download('m.txt')).error.statusCode, '404');
  assert.equal(await text((await s.download('moved/m.txt')).data), 'move me');
  assert.equal((await s.move('moved/m.txt', 'x.txt', { destinationBucket: b })).error, null);
  assert.equal(await text((await service.storage.from(b).download('x.txt')).data), 'move me');
  assert.deepEqual((await s.copy('c.txt', 'c2.txt', { destinationBucket: b })).data, { path: `${b}/c2.txt` });
  assert.equal(await text((await service.storage.from(b).download('c2.txt')).data), 'copy me');
  assert.deepEqual((await service.storage.from(b).info('c2.txt')).data.metadata, { k: 'v' });
  assert.equal(await text((await s.download('c.txt')).data), 'copy me', 'the source stays');
  assert.equal((await s.move('c.txt', 'taken.txt')).error.statusCode, '409');
  assert.equal((await s.move('nope.txt', 'y.txt')).error.statusCode, '404');
  assert.equal((await s.move('c.txt', 'y.txt', { destinationBucket: 'no-such-bucket' })).error.message, 'Bucket not found');
});

test('remove returns what it removed, and the bytes leave the disk', async () => {
  const name = await bucket();
  const s = service.storage.from(name);
  const before = files('objects').length;
  await s.upload('r1.txt', '1');
  await s.upload('r2.txt', '2');
  assert.equal(files('objects').length, before + 2);
  const res = await s.remove(['r1.txt', 'r2.txt', 'never.txt']);
  assert.deepEqual(res.data.map((o) => o.name).sort(), ['r1.txt', 'r2.txt']);
  assert.equal(files('objects').length, before);
  assert.equal((await s.download('r1.txt')).error.statusCode, '404');
});

test('signed URLs: download until expiry, only for their object; signed uploads once, or upsert', async () => {
  const name = await bucket();
  const s = service.storage.from(name);
  await s.upload('doc.txt', 'signed');
  await s.upload('other.txt', 'other');
  const { data } = await s.createSignedUrl('doc.txt', 60);
  const r = await fetch(data.signedUrl);
  assert.equal(await r.text(), 'signed');
  const token = new URL(data.signedUrl).searchParams.get('token');
  const swapped = await fetch(`${server.url}/storage/v1/object/sign/${name}/other.txt?token=${token}`);
  assert.equal(swapped.status, 401);
  assert.equal((await s.createSignedUrl('missing.txt', 60)).error.statusCode, '404');
  const many = (await s.createSignedUrls(['doc.txt', 'missing.txt'], 60)).data;
  assert.equal(many[0].error, null);
  assert.match(many[1].error, /does not exist/);
  assert.equal(many[1].signedUrl, null);

  const up = (await s.createSignedUploadUrl('up.txt')).data;
  assert.equal((await s.uploadToSignedUrl(up.path, up.token, 'via link')).error, null);
  assert.equal(await text((await s.download('up.txt')).data), 'via link');
  const twice = await s.uploadToSignedUrl(up.path, up.token, 'again');
  assert.equal(twice.error.statusCode, '409');
  const ups = (await s.createSignedUploadUrl('up.txt', { upsert: true })).data;
  assert.equal((await s.uploadToSignedUrl(ups.path, ups.token, 'replaced')).error, null);
  assert.equal(await text((await s.download('up.txt')).data), 'replaced');
  const forged = await s.uploadToSignedUrl('up.txt', `${ups.token}x`, 'forged');
  assert.equal(forged.error.statusCode, '401');
  assert.equal(await text((await s.download('up.txt')).data), 'replaced');
});

test('row-level security: each user reads and writes only their own folder', async () => {
  const A = a1.storage.from('user-files');
  const B = b1.storage.from('user-files');
  const aid = alice.user.id;
  const bid = bob.user.id;
  assert.equal((await A.upload(`${aid}/note.txt`, 'alice only')).error, null);
  const intrude = await A.upload(`${bid}/evil.txt`, 'no');
  assert.equal(intrude.error.statusCode, '403');
  assert.match(intrude.error.message, /row-level security/);
  assert.equal((await B.download(`${aid}/note.txt`)).error.statusCode, '404', 'another user cannot read it');
  assert.deepEqual((await B.list(aid)).data, [], 'nor list it');
  assert.deepEqual((await B.remove([`${aid}/note.txt`])).data, [], 'nor remove it');
  assert.equal(await text((await A.download(`${aid}/note.txt`)).data), 'alice only');
  assert.equal((await B.createSignedUrl(`${aid}/note.txt`, 60)).error.statusCode, '404', 'nor sign a link to it');
  const su = await B.createSignedUploadUrl(`${aid}/planted.txt`);
  assert.equal(su.error.statusCode, '403', 'nor get an upload link into it');
  const anon = client(server).storage.from('user-files');
  assert.equal((await anon.download(`${aid}/note.txt`)).error.statusCode, '404');
  assert.equal((await a1.storage.from('avatars').upload(`${aid}.png`, new Blob(['img'], { type: 'image/png' }))).error, null);
});

async function tus(method, url, { token = server.serviceKey, headers = {}, body } = {}) {
  return fetch(url, { method, headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0', ...headers }, body });
}
const meta = (o) => Object.entries(o).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',');

test('TUS: create, append in chunks, a wrong offset changes nothing, HEAD resumes, the last byte makes the object', async () => {
  const name = await bucket();
  const payload = Buffer.from('0123456789abcdefghij');
  const created = await tus('POST', `${server.url}/storage/v1/upload/resumable`, {
    headers: { 'upload-length': String(payload.length), 'upload-metadata': meta({ bucketName: name, objectName: 'big/file.bin', contentType: 'application/octet-stream' }) },
  });
  assert.equal(created.status, 201);
  const loc = created.headers.get('location');
  assert.match(loc, /\/storage\/v1\/upload\/resumable\//);
  const patch = (offset, bytes) => tus('PATCH', loc, { headers: { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }, body: bytes });
  assert.equal((await patch(0, payload.subarray(0, 8))).headers.get('upload-offset'), '8');
  const wrong = await patch(3, payload.subarray(3, 10));
  assert.equal(wrong.status, 409);
  const head = await tus('HEAD', loc);
  assert.equal(head.headers.get('upload-offset'), '8', 'the refused chunk changed nothing');
  assert.equal(head.headers.get('upload-length'), '20');
  assert.equal((await service.storage.from(name).download('big/file.bin')).error.statusCode, '404', 'not an object until complete');
  const last = await patch(8, payload.subarray(8));
  assert.equal(last.status, 204);
  assert.equal(last.headers.get('upload-offset'), '20');
  const got = Buffer.from(await (await service.storage.from(name).download('big/file.bin')).data.arrayBuffer());
  assert.deepEqual(got, payload);
  assert.equal((await tus('HEAD', loc)).status, 404, 'a finished upload is gone');
  assert.deepEqual(files('resumable'), []);
});

test('TUS: limits and rights are checked at creation; termination removes the bytes', async () => {
  const name = await bucket({ public: false, fileSizeLimit: 10 });
  const url = `${server.url}/storage/v1/upload/resumable`;
  const big = await tus('POST', url, { headers: { 'upload-length': '11', 'upload-metadata': meta({ bucketName: name, objectName: 'x' }) } });
  assert.equal(big.status, 413);
  const noBucket = await tus('POST', url, { headers: { 'upload-length': '1', 'upload-metadata': meta({ bucketName: 'no-such-bucket', objectName: 'x' }) } });
  assert.equal(noBucket.status, 404);
  const badKey = await tus('POST', url, { headers: { 'upload-length': '1', 'upload-metadata': meta({ bucketName: name, objectName: '../x' }) } });
  assert.equal(badKey.status, 400);
  const denied = await tus('POST', url, {
    token: alice.session.access_token,
    headers: { 'upload-length': '1', 'upload-metadata': meta({ bucketName: 'user-files', objectName: `${bob.user.id}/x` }) },
  });
  assert.equal(denied.status, 403);
  const ok = await tus('POST', url, { headers: { 'upload-length': '10', 'upload-metadata': meta({ bucketName: name, objectName: 'x' }) } });
  const loc = ok.headers.get('location');
  await tus('PATCH', loc, { headers: { 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: Buffer.from('abc') });
  assert.deepEqual(files('resumable').length, 1);
  const other = await tus('HEAD', loc, { token: alice.session.access_token });
  assert.equal(other.status, 404, 'another caller cannot see the upload');
  const tooMuch = await tus('PATCH', loc, { headers: { 'upload-offset': '3', 'content-type': 'application/offset+octet-stream' }, body: Buffer.from('0123456789') });
  assert.equal(tooMuch.status, 400);
  assert.equal((await tus('HEAD', loc)).headers.get('upload-offset'), '3');
  assert.equal((await tus('DELETE', loc)).status, 204);
  assert.equal((await tus('HEAD', loc)).status, 404);
  assert.deepEqual(files('resumable'), []);
});

/** A solid-colour RGB PNG of `w`×`h` pixels, made by hand (no image library needed). */
function png(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const rows = Buffer.concat(Array.from({ length: h }, () => Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3, 0x80)])));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}
const pngSize = (buf) => [buf.readUInt32BE(16), buf.readUInt32BE(20)];

test('image transformations: resized downloads, public and signed URLs, bad options refused', async () => {
  const name = await bucket({ public: true });
  const s = service.storage.from(name);
  await s.upload('pic.png', png(40, 20), { contentType: 'image/png' });
  const small = await s.download('pic.png', { transform: { width: 10 } });
  assert.equal(small.error, null);
  assert.equal(small.data.type, 'image/png');
  assert.deepEqual(pngSize(Buffer.from(await small.data.arrayBuffer())), [10, 5], 'the aspect ratio is kept');
  const boxed = await fetch(s.getPublicUrl('pic.png', { transform: { width: 8, height: 8, resize: 'contain' } }).data.publicUrl);
  assert.deepEqual(pngSize(Buffer.from(await boxed.arrayBuffer())), [8, 4]);
  const signed = (await s.createSignedUrl('pic.png', 60, { transform: { width: 6, height: 6 } })).data.signedUrl;
  assert.match(signed, /\/render\/image\/sign\//);
  const r = await fetch(signed);
  assert.equal(r.headers.get('x-transformations'), 'height:6,width:6,resizing_type:fill');
  assert.deepEqual(pngSize(Buffer.from(await r.arrayBuffer())), [6, 6]);
  const bad = await s.download('pic.png', { transform: { width: 0, height: 99999 } });
  assert.equal(bad.error.statusCode, '400');
  await s.upload('note.txt', 'not an image');
  assert.equal((await s.download('note.txt', { transform: { width: 10 } })).error.statusCode, '400');
});
