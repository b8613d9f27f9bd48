import { firefox, chromium } from 'playwright-core';
import http from 'node:http';
const srv = http.createServer((q, r) => { r.setHeader('content-type', 'text/html'); r.end('<html><body>x</body></html>'); }).listen(0);
const url = `http://127.0.0.1:${srv.address().port}/`;
const b = await firefox.launchPersistentContext('/tmp/idbx/ff' + Date.now(), { channel: 'moz-firefox', executablePath: '/usr/bin/firefox-esr', headless: true });
const p = await b.newPage();
await p.goto(url);
const res = await p.evaluate(async () => {
  const hex = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => x.toString(16).padStart(2, '0')).join('');
  const uuid = () => crypto.randomUUID();
  const ix = (i) => [`messages\0conversation_id\0${'a'.repeat(36)}`, `messages\0timestamp\0${String(i).padStart(8, '0')}`];
  const text = (i) => JSON.stringify({ mirror: { id: uuid(), content: `seeded message ${i} `.repeat(6), conversation_id: 'a'.repeat(36), role: 'user', timestamp: '2026-01-01T00:00:00Z', local_id: `seed-${i}`, user_id: uuid() } });
  const pair = (i) => { const u = new Uint8Array(text(i).length + 16); crypto.getRandomValues(u); return [crypto.getRandomValues(new Uint8Array(16)), u]; };
  const kinds = {
    plain: (i) => ({ s: uuid(), ix: ix(i), d: text(i) }),
    enc: (i) => ({ s: hex(), ix: ix(i), d: pair(i) }),
  };
  const out = {};
  for (let round = 0; round < 7; round++) for (const [k, make] of Object.entries(kinds)) {
    const db = await new Promise((ok) => { const r = indexedDB.open(`y-${k}-${round}`); r.onupgradeneeded = () => { const s = r.result.createObjectStore('rows', { keyPath: ['t', 'l'] }); s.createIndex('by_server_id', ['t', 's']); s.createIndex('by_value', 'ix', { multiEntry: true }); }; r.onsuccess = () => ok(r.result); });
    const recs = Array.from({ length: 10000 }, (_, i) => { const u = new Uint8Array(580); crypto.getRandomValues(u); return { t: 'messages', l: `l-${String(i).padStart(6, '0')}`, ...make(i) }; });
    const t0 = performance.now();
    for (let p = 0; p < 10; p++) {
      const t = db.transaction('rows', 'readwrite');
      const s = t.objectStore('rows');
      for (let i = p * 1000; i < p * 1000 + 1000; i++) s.add(recs[i]);
      await new Promise((ok) => { t.oncomplete = ok; });
    }
    (out[k] ||= []).push(Math.round(performance.now() - t0));
    db.close();
  }
  return out;
});
console.log(JSON.stringify(res));
await b.close(); srv.close();
