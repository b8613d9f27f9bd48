// What an app without supasync does, timed: supabase-js inserting messages one by one,
// and paging through them 1,000 at a time. Prints one JSON line.
// Env: SUPABASE_URL, SUPABASE_ANON_KEY, BENCH_EMAIL, BENCH_PASSWORD, BENCH_CONVERSATION,
// BENCH_ONE_BY_ONE (rows to insert one by one), BENCH_RESTORE (rows expected on restore).
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const c = createClient(env('SUPABASE_URL'), env('SUPABASE_ANON_KEY'), {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket },
});
const { error } = await c.auth.signInWithPassword({ email: env('BENCH_EMAIL'), password: env('BENCH_PASSWORD') });
if (error) throw error;

const n = Number(env('BENCH_ONE_BY_ONE'));
const conv = env('BENCH_CONVERSATION');
let t = performance.now();
for (let i = 0; i < n; i++) {
  const { error: e } = await c.from('messages').insert({ conversation_id: conv, role: 'user', content: `js ${i} ${'lorem ipsum dolor sit amet '.repeat(6)}`, local_id: `js-${Date.now()}-${i}` });
  if (e) throw e;
}
const oneByOneMs = performance.now() - t;

const expect = Number(env('BENCH_RESTORE'));
t = performance.now();
let rows = 0;
for (let from = 0; ; from += 1000) {
  const { data, error: e } = await c.from('messages').select('*').order('id').range(from, from + 999);
  if (e) throw e;
  rows += data.length;
  if (data.length < 1000) break;
}
const restoreMs = performance.now() - t;
console.log(JSON.stringify({ one_by_one_rows: n, one_by_one_ms: oneByOneMs, restore_rows: rows, restore_expected: expect, restore_ms: restoreMs }));
process.exit(0);
