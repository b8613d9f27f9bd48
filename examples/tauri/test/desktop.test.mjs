// Virgil on the desktop, driven as its users drive it: the built Tauri app runs in a
// real window (under Xvfb, started by scripts/tauri-demo.sh), tauri-driver and
// WebKitWebDriver give WebDriver access to its webview, and a second device of the
// same user is the native CLI (`supasync`), on its own SQLite replica. Nothing is
// mocked: the app's Rust side is supasync-native against supasync-dev on PostgreSQL.
//
// The flow: the CLI writes a conversation with a message and syncs; the desktop app
// signs in and shows both (pulled at sign-in); a message typed in the app reaches the
// CLI's replica through the server; a message the CLI writes while the app is open
// appears in the app live (Realtime), with the server-kept message count. A
// screenshot of the synced conversation goes to target/tauri-screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import zlib from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, newUser, eventually } from '../../../tests/conformance/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const app = process.env.VIRGIL_BIN || path.join(root, 'target/tauri/debug/virgil-desktop');
const cli = path.join(root, 'target/debug/supasync');
const schemaFile = path.join(root, 'examples/chat/schema.json');
const shots = path.join(root, 'target/tauri-screenshots');
const DRIVER = 'http://127.0.0.1:4444';

let server, user, driver, session, cliStore, data;

/** The CLI as the user's other device. */
function device(...args) {
  const out = execFileSync(cli, ['--store', cliStore, '--schema', schemaFile, ...args], {
    env: { ...process.env, SUPABASE_URL: server.url, SUPABASE_ANON_KEY: server.anonKey },
    encoding: 'utf8',
  });
  return out.trim() ? JSON.parse(out.trim().split('\n').at(-1)) : null;
}

/** One WebDriver command. */
async function wd(method, route, body) {
  const res = await fetch(`${DRIVER}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`WebDriver ${method} ${route}: ${JSON.stringify(json.value)}`);
  return json.value;
}

const s = (route) => `/session/${session}${route}`;
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'; // the W3C element key

async function find(css) {
  const el = await wd('POST', s('/element'), { using: 'css selector', value: css });
  return el[ELEMENT];
}

/** The text of every element matching `css` (read in the page: WebKitWebDriver's
 *  element text misses text in flex children). */
function texts(css) {
  return wd('POST', s('/execute/sync'), { script: 'return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent.trim())', args: [css] });
}

async function type(css, text) {
  const el = await find(css);
  await wd('POST', s(`/element/${el}/clear`), {});
  await wd('POST', s(`/element/${el}/value`), { text });
}

async function click(css) {
  await wd('POST', s(`/element/${await find(css)}/click`), {});
}

async function screenshot(name) {
  mkdirSync(shots, { recursive: true });
  const png = await wd('GET', s('/screenshot'));
  writeFileSync(path.join(shots, `${name}.png`), Buffer.from(png, 'base64'));
}

before(async () => {
  server = await startServer([], { migrations: path.join(root, 'examples/chat/migrations') });
  user = await newUser(server);
  cliStore = mkdtempSync(path.join(tmpdir(), 'virgil-cli-'));
  device('login', '--email', user.email, '--password', user.password);

  data = mkdtempSync(path.join(tmpdir(), 'virgil-desktop-'));
  // A webview with no data of its own (localStorage, caches), as on a user's first
  // start: what an earlier run left in ~/.local/share must not decide this one.
  const webviewData = mkdtempSync(path.join(tmpdir(), 'virgil-webview-'));
  // Output through pipes of this process, never inherited: the app tauri-driver starts
  // would otherwise hold the test runner's stdout open, and the runner waits for it.
  driver = spawn('tauri-driver', ['--port', '4444'], {
    env: { ...process.env, XDG_DATA_HOME: webviewData, SUPABASE_URL: server.url, SUPABASE_ANON_KEY: server.anonKey, VIRGIL_DATA_DIR: data, VIRGIL_DEVICE: 'desktop', VIRGIL_ENCRYPTION_KEY: 'c3'.repeat(32) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  driver.stdout.on('data', (d) => process.stderr.write(d));
  driver.stderr.on('data', (d) => process.stderr.write(d));
  await eventually(async () => fetch(`${DRIVER}/status`).then((r) => r.ok, () => false), 20000, 'tauri-driver');
  const created = await wd('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application: app } } } });
  session = created.sessionId;
  await wd('POST', s('/timeouts'), { implicit: 10000 });
});

after(async () => {
  if (session) await wd('DELETE', s('')).catch(() => undefined);
  driver?.kill();
  // Ending the WebDriver session asks the app to quit; should it outlive tauri-driver
  // (seen once, under load: the CI run then waited on it for minutes), end it here.
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let argv0 = '';
    try {
      argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    } catch {
      continue; // gone meanwhile
    }
    if (argv0 === app) {
      try {
        process.kill(Number(pid), 'SIGTERM');
      } catch {
        // It ended between the read and the kill.
      }
    }
  }
  await server?.stop();
});

test('the desktop app and another device of the same user stay in sync', async () => {
  // The other device writes while the desktop app is signed out.
  const conv = device('insert', 'conversations', JSON.stringify({ title: 'Trip to Lisbon' }));
  device('insert', 'messages', JSON.stringify({ conversation_id: conv.local_id, role: 'user', content: 'Book the 9:40 train', timestamp: new Date().toISOString() }));
  device('sync');

  await type('input[aria-label=email]', user.email);
  await type('input[aria-label=password]', user.password);
  await click('button[type=submit]');
  await eventually(async () => (await texts('[data-testid=phase]'))[0] === 'Connected', 20000, 'the desktop app to go live');
  // Presence through the app's channel commands: this device is listed among the user's.
  await eventually(async () => (await texts('[data-testid=devices] .device')).includes('desktop'), 20000, 'presence');

  // Pulled at sign-in: the same conversation, under the same local id's title.
  await eventually(async () => (await texts('[data-testid=conversation] .title')).includes('Trip to Lisbon'), 20000, 'the conversation');
  await click('[data-testid=conversation]');
  await eventually(async () => (await texts('[data-testid=message] .content')).includes('Book the 9:40 train'), 20000, 'the message');

  // Written on the desktop: reaches the other device through the server.
  await type('input[aria-label=message]', 'Seat 42, window');
  await click('form.composer button[type=submit]');
  await eventually(async () => (await texts('[data-testid=pending]')).length === 0, 20000, 'the desktop write to be pushed');
  await eventually(() => {
    device('sync');
    const rows = device('query', 'messages', '--where', `conversation_id=${conv.local_id}`);
    return rows.some((r) => r.row.content === 'Seat 42, window');
  }, 20000, 'the desktop message on the other device');

  // Written on the other device while the app is open: arrives live, with the count
  // the server's trigger keeps.
  // The app's replica is encrypted at rest (VIRGIL_ENCRYPTION_KEY): its files hold none
  // of what it shows.
  const users = path.join(data, 'users');
  const raw = Buffer.concat(readdirSync(users).map((f) => readFileSync(path.join(users, f)))).toString('latin1');
  assert.deepEqual(['Trip to Lisbon', 'Seat 42, window', user.email].filter((t) => raw.includes(t)), [], 'nothing readable in the encrypted replica');
  device('insert', 'messages', JSON.stringify({ conversation_id: conv.local_id, role: 'assistant', content: 'Done: coach 5, seat 42', timestamp: new Date().toISOString() }));
  device('sync');
  await eventually(async () => (await texts('[data-testid=message] .content')).includes('Done: coach 5, seat 42'), 20000, 'the live message');
  await eventually(async () => (await texts('[data-testid=count]'))[0] === '3', 20000, 'the message count');
  assert.deepEqual(await texts('[data-testid=message] .content'), ['Book the 9:40 train', 'Seat 42, window', 'Done: coach 5, seat 42']);
  await screenshot('virgil-desktop');
});

test('a refused write in the desktop app shows its reason and can be discarded', async () => {
  // The chat schema's check constraint allows no 'tool' role: the server refuses it,
  // the message is rolled back, and the UI says why.
  await click('select[aria-label=role] option[value=tool]');
  await type('input[aria-label=message]', 'Calling a tool');
  await click('form.composer button[type=submit]');
  await eventually(async () => (await texts('[data-testid=reason]')).length === 1, 20000, 'the refusal');
  const [reason] = await texts('[data-testid=reason]');
  assert.match(reason, /role|check/i, reason);
  assert.ok(!(await texts('[data-testid=message] .content')).includes('Calling a tool'), 'the refused message is rolled back');
  await screenshot('virgil-desktop-refused');
  await click('[data-testid=rejected-write] button.secondary:last-child');
  await eventually(async () => (await texts('[data-testid=rejected-write]')).length === 0, 20000, 'the discard');
  await eventually(async () => (await texts('[data-testid=pending]')).length === 0, 20000, 'nothing left waiting');
  assert.equal(device('query', 'messages', '--where', 'role=tool').length, 0, 'the other device never saw it');
});

test('a conversation shared from the desktop app reaches another user with its messages', async () => {
  // The guest uses the CLI as their own device (their own store).
  const guest = await newUser(server);
  const guestStore = mkdtempSync(path.join(tmpdir(), 'virgil-guest-'));
  const asGuest = (...args) => {
    const out = execFileSync(cli, ['--store', guestStore, '--schema', schemaFile, ...args], {
      env: { ...process.env, SUPABASE_URL: server.url, SUPABASE_ANON_KEY: server.anonKey },
      encoding: 'utf8',
    });
    return out.trim() ? JSON.parse(out.trim().split('\n').at(-1)) : null;
  };
  asGuest('login', '--email', guest.email, '--password', guest.password);
  // The conversation open in the app (from the first test) is shared through the
  // app's share form: a queued call through the Tauri command.
  await type('input[aria-label="share with (email)"]', guest.email);
  await click('form.share button[type=submit]');
  await eventually(async () => (await texts('[data-testid=pending]')).length === 0, 20000, 'the share to be pushed');
  await eventually(() => {
    asGuest('sync');
    return asGuest('query', 'messages').some((r) => r.row.content === 'Seat 42, window');
  }, 20000, 'the shared conversation\'s messages on the guest\'s device');
  assert.deepEqual(asGuest('query', 'conversations').map((r) => r.row.title), ['Trip to Lisbon']);
  await screenshot('virgil-desktop-shared');
});

test('an image attached in the desktop app shows in it and reaches the other device', async () => {
  // A 2×2 PNG (made by hand: signature, IHDR, IDAT, IEND), written where the app's
  // file picker can be given it.
  const chunk = (type, data) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
  const rows = Buffer.from([0, 200, 40, 40, 200, 40, 40, 0, 200, 40, 40, 200, 40, 40]);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'virgil-img-')), 'map.png');
  writeFileSync(file, png);
  await click('select[aria-label=role] option[value=user]'); // the refusal test left `tool` chosen
  await type('input[aria-label=message]', 'the map');
  const picker = await find('input[aria-label="attach image"]');
  await wd('POST', s(`/element/${picker}/value`), { text: file });
  await click('form.composer button[type=submit]');
  // Shown in the app from its own replica, then uploaded before its message.
  await eventually(async () => {
    const [size] = await wd('POST', s('/execute/sync'), {
      script: 'return [...document.querySelectorAll("[data-testid=message]")].filter((m) => m.textContent.includes(arguments[0])).map((m) => { const i = m.querySelector("img.attachment"); return i && i.complete ? i.naturalWidth : 0; })',
      args: ['the map'],
    });
    return size === 2;
  }, 20000, 'the image in the app');
  await eventually(async () => (await texts('[data-testid=pending]')).length === 0, 20000, 'the image and its message to be pushed');
  await screenshot('virgil-desktop-image');
  const attachment = await eventually(() => {
    device('sync');
    const m = device('query', 'messages').find((r) => r.row.content === 'the map');
    return m?.row.attachment;
  }, 20000, 'the message on the other device');
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'virgil-read-')), 'copy.png');
  device('files', 'read', 'attachments', attachment, '--out', out);
  assert.deepEqual(readFileSync(out), png, 'the other device reads the same bytes');
});
