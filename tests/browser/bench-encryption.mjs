// Browser benchmark of encryption at rest: the same work on an encrypted replica and
// on a plaintext one, side by side in one run in one engine (SUPASYNC_ENGINE: chromium,
// the default, firefox or webkit), taking turns so neither gets the warmer browser. It
// prints ratios and does not gate. Run after `scripts/build-npm.sh` and `cargo build
// -p supasync-devserver`: `node tests/browser/bench-encryption.mjs` (WebKit:
// `xvfb-run -a node …`).
//
//  1. one optimistic write (a message), the mean of 100 in a row, 4 rounds each;
//  2. a page applied: a first sync of 1,000 rows (one page), five pairs;
//  3. a restore of 10k rows (a first sync, ten pages), seven pairs;
//  (for both, the ratio is the median of each pair's ratio, the times the medians)
//  4. cold start: a page load to the first 50 rows of the 10k-message conversation
//     (`db.from('messages')…order('timestamp', desc).limit(50)`), timed by the page from
//     the navigation's start, the app's files from the HTTP cache.
import { appWithSupabaseJs, serve, startChatServer, schema, newUser, client, engine } from './harness.mjs';
import { device, closeDevices } from './bench-device.mjs';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(2)} ms`;
const rows = [];
/** `ratio`: given when it is the median of each pair's ratio rather than of the medians. */
const report = (what, enc, plain, ratio = enc / plain) => {
  const line = [what, `${ratio.toFixed(2)}×`, ms(enc), ms(plain)];
  rows.push(line);
  console.log(line.join(' | '));
};

const server = await startChatServer();
const dist = await appWithSupabaseJs(`
const cold = new URLSearchParams(location.search).get('cold');
if (cold) {
  window.coldStart = (async () => {
    const o = JSON.parse(cold);
    if (o.keyByte) o.encryptionKey = new Uint8Array(32).fill(o.keyByte);
    const db = await supasync.openReplica(o);
    const { data, error } = await db.from('messages').select('*').eq('conversation_id', 'seed-conv').order('timestamp', { ascending: false }).limit(50);
    const now = performance.now();
    await db.close();
    if (error) throw new Error(error.message);
    return { now, n: data.length };
  })();
}
`);
const web = await serve(dist, { cache: true });
const opts = { url: server.url, anonKey: server.anonKey, schema, mode: 'manual' };


const ctx = await device();
const page = await ctx.newPage();
await page.goto(web.url);
await page.waitForFunction(() => window.ready === true);

// Seed: 10k messages of one conversation, a second apart, for the restores and the cold start.
const user = await newUser(server);
const creds = { email: user.email, password: user.password };
const sb = client(server);
await sb.auth.signInWithPassword(creds);
const { data: conv, error: convError } = await sb.from('conversations').insert({ title: 'seeded', local_id: 'seed-conv' }).select().single();
if (convError) throw convError;
for (let b = 0; b < 10; b++) {
  const batch = Array.from({ length: 1000 }, (_, i) => ({ conversation_id: conv.id, role: 'user', content: `seeded message ${b * 1000 + i} `.repeat(6), local_id: `seed-${b}-${i}`,
    timestamp: new Date(Date.UTC(2026, 0, 1) + (b * 1000 + i) * 1000).toISOString() }));
  const { error } = await sb.from('messages').insert(batch);
  if (error) throw error;
}

// 1. One write.
{
  const r = await page.evaluate(async ([o, creds]) => {
    const open = async (name, keyByte) => {
      const db = await supasync.openReplica({ ...o, name, ...(keyByte ? { encryptionKey: new Uint8Array(32).fill(keyByte) } : {}) });
      if (!db.auth.user()) await db.auth.signIn(creds);
      const c = await db.insert('conversations', { title: 'bench' });
      return { db, c };
    };
    const enc = await open('writes-enc', 7);
    const plain = await open('writes-plain', null);
    const phase = async ({ db, c }) => {
      const t = performance.now();
      for (let i = 0; i < 100; i++) await db.insert('messages', { conversation_id: c.local_id, role: 'user', content: `message ${i} `.repeat(8) });
      return (performance.now() - t) / 100;
    };
    await phase(enc); await phase(plain); // warm-up
    const e = [], p = [];
    for (let round = 0; round < 4; round++) {
      if (round % 2 === 0) { e.push(await phase(enc)); p.push(await phase(plain)); } else { p.push(await phase(plain)); e.push(await phase(enc)); }
    }
    await enc.db.close(); await plain.db.close();
    return { e, p };
  }, [opts, creds]);
  report('one write (mean of 100, median of 4 rounds)', median(r.e), median(r.p));
}

// 2 and 3. Restores of 1,000 and 10,000 rows: a first sync into a new replica.
const restore = (name, keyByte, creds) => page.evaluate(async ([o, creds, name, keyByte]) => {
  const db = await supasync.openReplica({ ...o, name, ...(keyByte ? { encryptionKey: new Uint8Array(32).fill(keyByte) } : {}) });
  if (!db.auth.user()) await db.auth.signIn(creds);
  const t = performance.now();
  await db.sync({ timeoutMs: 300000 });
  const took = performance.now() - t;
  const n = (await db.query('messages')).length;
  await db.close();
  return { took, n };
}, [opts, creds, name, keyByte]);

/** `times` restores of each kind into new replicas, taking turns (who goes first too). */
async function restores(label, prefix, creds, rowsWanted, times) {
  const e = [], p = [];
  for (let i = 0; i < times; i++) {
    const order = i % 2 === 0 ? ['enc', 'plain'] : ['plain', 'enc'];
    for (const kind of order) {
      const r = await restore(`${prefix}-${kind}-${i}`, kind === 'enc' ? 7 : null, creds);
      if (r.n !== rowsWanted) throw new Error(`expected ${rowsWanted} rows, got ${r.n}`);
      (kind === 'enc' ? e : p).push(r.took);
    }
  }
  // Each pair ran back to back: the median of their ratios follows the machine's
  // drift between pairs less than the ratio of the two medians does.
  report(label, median(e), median(p), median(e.map((x, i) => x / p[i])));
}

{
  // One page: a user of their own with 1,000 messages.
  const small = await newUser(server);
  const sb2 = client(server);
  await sb2.auth.signInWithPassword({ email: small.email, password: small.password });
  const { data: c2, error: e2 } = await sb2.from('conversations').insert({ title: 'one page', local_id: 'page-conv' }).select().single();
  if (e2) throw e2;
  const { error } = await sb2.from('messages').insert(Array.from({ length: 1000 }, (_, i) => ({ conversation_id: c2.id, role: 'user', content: `page message ${i} `.repeat(6), local_id: `page-${i}` })));
  if (error) throw error;
  await restores('a page applied: first sync of 1,000 rows (5 pairs; the median of their ratios)', 'page', { email: small.email, password: small.password }, 1000, 5);
}
await restores('a restore of 10k rows (7 pairs; the median of their ratios)', 'big', creds, 10000, 7);

// 4. Cold start on the 10k-row replicas restored above.
{
  const cold = async (name, keyByte) => {
    await page.goto(`${web.url}?cold=${encodeURIComponent(JSON.stringify({ ...opts, name, keyByte }))}`);
    const r = await page.evaluate(() => window.coldStart);
    if (r.n !== 50) throw new Error(`expected 50 rows, got ${r.n}`);
    return r.now;
  };
  await cold('big-enc-0', 7); await cold('big-plain-0', null); // warm-up: the HTTP cache
  const e = [], p = [];
  for (let i = 0; i < 10; i++) {
    if (i % 2 === 0) { e.push(await cold('big-enc-0', 7)); p.push(await cold('big-plain-0', null)); } else { p.push(await cold('big-plain-0', null)); e.push(await cold('big-enc-0', 7)); }
  }
  report('cold start: page load to the first 50 of 10k rows (median of 10)', median(e), median(p));
}

await ctx.close();
await closeDevices();
await server.stop();
console.log(`\n| ${engine}: what | encrypted ÷ plaintext | encrypted | plaintext |\n|---|---|---|---|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
process.exit(0);
