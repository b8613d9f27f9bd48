// supabase-js's own postgres_changes subscription, as an app without supasync would
// listen: prints "ready" once subscribed and the server says changes flow, then one
// JSON line per INSERT received, {"local_id", "at_ms"} (wall clock, sub-millisecond).
// Env: SUPABASE_URL, SUPABASE_ANON_KEY, BENCH_EMAIL, BENCH_PASSWORD.
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const c = createClient(env('SUPABASE_URL'), env('SUPABASE_ANON_KEY'), {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: WebSocket },
});
const { data, error } = await c.auth.signInWithPassword({ email: env('BENCH_EMAIL'), password: env('BENCH_PASSWORD') });
if (error) throw error;
const now = () => performance.timeOrigin + performance.now();
c.realtime.setAuth(data.session.access_token);
const ch = c.channel('bench-js')
  .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'messages', filter: `user_id=eq.${data.user.id}` },
    (p) => console.log(JSON.stringify({ local_id: p.new.local_id, at_ms: now() })))
  .on('system', {}, (p) => { if (p.extension === 'postgres_changes' && p.status === 'ok') console.log('ready'); });
ch.subscribe();
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
