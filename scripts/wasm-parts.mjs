#!/usr/bin/env node
// What each part of the browser package's wasm costs: every function and data segment
// of the release build (before wasm-bindgen and wasm-opt strip the names), measured by
// twiggy, summed by the part of the SDK it belongs to, and each part's share applied to
// the shipped file (gzip -9 of target/npm/package/dist/wasm/supasync_wasm_bg.wasm).
// Generic code is charged to the first supasync module its name mentions (a serde
// deserializer instantiated for a core type is that module's cost), else to the
// library it comes from. Run after scripts/build-npm.sh; needs `cargo install twiggy`.
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const named = path.join(root, 'target/wasm32-unknown-unknown/wasm-release/supasync_wasm.wasm');
const shipped = path.join(root, 'target/npm/package/dist/wasm/supasync_wasm_bg.wasm');
for (const f of [named, shipped]) if (!existsSync(f)) throw new Error(`${f} is missing: run scripts/build-npm.sh first`);

let csv;
try {
  csv = execFileSync('twiggy', ['top', '-f', 'csv', named], { encoding: 'utf8', maxBuffer: 256 << 20 });
} catch (e) {
  throw new Error(`twiggy failed (${e.message}); install it with: cargo install twiggy`);
}

/** The part of the SDK (or the library) an item's name belongs to. */
function part(name) {
  // Not shipped: names, wasm-bindgen's metadata and the describe functions it runs at
  // build time and removes.
  if (/^"function names"|^custom section|^"?producers|^"?target_features|__wbindgen_describe|^export "/.test(name)) return null;
  const ours = /supasync_(core|wasm|query_syntax)::(\w+)(?:::(\w+))?/.exec(name);
  if (ours) {
    const [, crate, module, sub] = ours;
    if (crate === 'query_syntax') return 'query language (parser)';
    if (crate === 'core' && ['sync', 'app', 'local', 'net'].includes(module) && sub && !/^[A-Z]/.test(sub) && !/^h[0-9a-f]{16}$/.test(sub)) return `core::${module}::${sub}`;
    return `${crate}::${module}`;
  }
  if (/^data segment|^data\[/.test(name)) return 'data (strings, tables)';
  if (/drop_in_place/.test(name)) return 'drop glue (std types)';
  if (/serde_json/.test(name)) return 'serde_json';
  if (/serde_wasm_bindgen|serde(_core)?::/.test(name)) return 'serde';
  if (/wasm_bindgen|js_sys|web_sys/.test(name)) return 'wasm-bindgen, js-sys, web-sys glue';
  if (/core::fmt|core::num|flt2dec|zmij|itoa/.test(name)) return 'formatting (core::fmt, numbers)';
  if (/alloc::collections::btree/.test(name)) return 'BTreeMap and BTreeSet (one copy per key and value type)';
  if (/core::slice::sort/.test(name)) return 'sorting (one copy per comparator)';
  if (/core::iter|core::ops::function|try_process|GenericShunt/.test(name)) return 'iterator adapters and closures (generic)';
  if (/alloc::|hashbrown|std::collections|dlmalloc|core::str|__rdl_/.test(name)) return 'Vec, HashMap, strings, allocator';
  if (/futures|async_lock|event_listener|gloo/.test(name)) return 'futures, async-lock, timers';
  if (/uuid|md5|md_5|digest|base64|hex|percent_encoding|form_urlencoded/.test(name)) return 'uuid, md5, base64, url encoding';
  return 'other (std, compiler builtins, unnamed)';
}

const sums = new Map();
let total = 0;
/** One CSV line's cells (a quoted cell may hold commas and doubled quotes). */
function cells(line) {
  const out = [];
  let cur = '', quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

for (const line of csv.split('\n').slice(1)) {
  // Name,ShallowSize,ShallowSizePercent,RetainedSize,RetainedSizePercent
  const [name, shallow] = cells(line);
  const size = Number(shallow);
  if (!Number.isFinite(size) || /^Σ|^\.\.\. and/.test(name)) continue;
  const p = part(name);
  if (p === null) continue;
  sums.set(p, (sums.get(p) ?? 0) + size);
  total += size;
}

const gz = gzipSync(readFileSync(shipped), { level: 9 }).length;
console.log(`shipped wasm: ${(readFileSync(shipped).length / 1024).toFixed(0)} KB, ${(gz / 1024).toFixed(0)} KB gzip -9; named build ${(total / 1024).toFixed(0)} KB of code and data\n`);
console.log('| part | share | ≈ KB of the gzipped wasm |\n|---|---|---|');
for (const [p, s] of [...sums].sort((a, b) => b[1] - a[1])) {
  if (s / total < 0.005) continue;
  console.log(`| ${p} | ${((100 * s) / total).toFixed(1)}% | ${((gz * s) / total / 1024).toFixed(0)} |`);
}
const small = [...sums].filter(([, s]) => s / total < 0.005).reduce((a, [, s]) => a + s, 0);
if (small) console.log(`| ${[...sums].filter(([, s]) => s / total < 0.005).length} smaller parts | ${((100 * small) / total).toFixed(1)}% | ${((gz * small) / total / 1024).toFixed(0)} |`);
