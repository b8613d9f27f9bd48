// What an app without supasync does with files, timed: supabase-js uploading N files
// one by one (each awaited, as an upload loop does), then downloading one. Prints one
// JSON line. Env: SUPABASE_URL, SUPABASE_ANON_KEY, BENCH_EMAIL, BENCH_PASSWORD,
// BENCH_BUCKET, BENCH_FILES (how many), BENCH_FILE_BYTES (each one's size).
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const c = createClient(env('SUPABASE_URL'), env('SUPABASE_ANON_KEY'), {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket },
});
const { data: signed, error } = await c.auth.signInWithPassword({ email: env('BENCH_EMAIL'), password: env('BENCH_PASSWORD') });
if (error) throw error;
const uid = signed.user.id;
const bucket = env('BENCH_BUCKET');
const n = Number(env('BENCH_FILES'));
const size = Number(env('BENCH_FILE_BYTES'));
const bytes = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 255);

let t = performance.now();
for (let i = 0; i < n; i++) {
  const { error: e } = await c.storage.from(bucket).upload(`${uid}/js-${i}.bin`, bytes, { contentType: 'application/octet-stream' });
  if (e) throw e;
}
const uploadMs = performance.now() - t;
t = performance.now();
const { data, error: e2 } = await c.storage.from(bucket).download(`${uid}/js-0.bin`);
if (e2) throw e2;
const downloadMs = performance.now() - t;
console.log(JSON.stringify({ files: n, bytes: size, upload_ms: uploadMs, download_ms: downloadMs, downloaded: data.size }));
process.exit(0);
