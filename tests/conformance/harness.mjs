// Starts supasync-dev for a test file and gives supabase-js clients for it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import WebSocket from 'ws';
import { createClient } from '@supabase/supabase-js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Start a dev server with the conformance migrations (or `migrations`, a folder). */
export async function startServer(extraArgs = [], { migrations = path.join(here, 'migrations') } = {}) {
  const bin = process.env.SUPASYNC_DEV_BIN || path.join(root, 'target/debug/supasync-dev');
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--migrations', migrations, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const env = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`supasync-dev did not start: ${err}`)), 60000);
    child.stdout.on('data', (d) => {
      out += d;
      const vars = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      if (vars.DATABASE_URL) { clearTimeout(timer); resolve(vars); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`supasync-dev exited with ${code}: ${err}`)); });
  });
  return {
    url: env.SUPABASE_URL,
    anonKey: env.SUPABASE_ANON_KEY,
    serviceKey: env.SUPABASE_SERVICE_ROLE_KEY,
    dbUrl: env.DATABASE_URL,
    stderr: () => err,
    async stop() {
      child.removeAllListeners('exit');
      const done = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}

/** A supabase-js client ("a device"). */
export function client(server, { key, vsn, accessToken } = {}) {
  return createClient(server.url, key || server.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket, ...(vsn ? { vsn } : {}), heartbeatIntervalMs: 5000 },
    ...(accessToken ? { accessToken: async () => accessToken } : {}),
  });
}

let userCounter = 0;
/** Sign up a fresh user; returns { email, password, session, user }. */
export async function newUser(server) {
  const email = `user${Date.now()}_${process.pid}_${userCounter++}@example.com`;
  const password = 'correct-horse-battery';
  const c = client(server);
  const { data, error } = await c.auth.signUp({ email, password });
  if (error) throw error;
  return { email, password, session: data.session, user: data.user };
}

/** A signed-in device of `user`. */
export async function device(server, user, opts = {}) {
  const c = client(server, opts);
  const { error } = await c.auth.signInWithPassword({ email: user.email, password: user.password });
  if (error) throw error;
  return c;
}

/** Resolve when `pred()` is true, polling; reject after `ms`. */
export async function eventually(pred, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Subscribe and wait until SUBSCRIBED. */
export function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve(channel);
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err || new Error(status));
    });
  });
}
