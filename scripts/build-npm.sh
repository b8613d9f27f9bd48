#!/usr/bin/env bash
# Build the npm package `supasync` into target/npm/package and pack it as
# target/npm/supasync-<version>.tgz: the Rust core and browser platform compiled to
# wasm (wasm-bindgen --target web, wasm-opt -Oz), and the TypeScript wrapper compiled
# with tsc --strict (which also writes the .d.ts types).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
out=target/npm
version=$(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)

echo "== wasm (cargo, profile wasm-release)" >&2
cargo build -p supasync-wasm --target wasm32-unknown-unknown --profile wasm-release --locked
rm -rf "$out/stage" "$out/package"
mkdir -p "$out/stage/src/wasm" "$out/package/dist"
wasm-bindgen --target web --out-dir "$out/stage/src/wasm" \
  target/wasm32-unknown-unknown/wasm-release/supasync_wasm.wasm

echo "== wasm-opt -Oz" >&2
(cd crates/sdk-wasm/js && { [ -x node_modules/.bin/tsc ] && [ -x node_modules/.bin/wasm-opt ] || npm ci --no-audit --no-fund; })
crates/sdk-wasm/js/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$out/stage/src/wasm/supasync_wasm_bg.wasm" -o "$out/stage/src/wasm/supasync_wasm_bg.wasm"

# The wrapper opens the database while the module compiles, at the store's layout.
rust_layout=$(sed -n 's/^pub const SCHEMA_VERSION: u32 = \([0-9]*\);/\1/p' crates/sdk-wasm/src/store/migrations.rs)
ts_layout=$(sed -n 's/^const IDB_LAYOUT = \([0-9]*\);/\1/p' crates/sdk-wasm/js/src/index.ts)
if [ -z "$rust_layout" ] || [ "$rust_layout" != "$ts_layout" ]; then
  echo "build-npm: IDB_LAYOUT in js/src/index.ts ($ts_layout) is not SCHEMA_VERSION in store/migrations.rs ($rust_layout)" >&2
  exit 1
fi

echo "== tsc --strict" >&2
cp crates/sdk-wasm/js/src/*.ts "$out/stage/src/"
crates/sdk-wasm/js/node_modules/.bin/tsc -p crates/sdk-wasm/js/tsconfig.json
mkdir -p "$out/package/dist/wasm"
cp "$out/stage/src/wasm/supasync_wasm.js" "$out/stage/src/wasm/supasync_wasm.d.ts" \
   "$out/stage/src/wasm/supasync_wasm_bg.wasm" "$out/package/dist/wasm/"
sed "s/\"version\": \"0.0.0\"/\"version\": \"$version\"/" crates/sdk-wasm/js/package.template.json > "$out/package/package.json"
cp crates/sdk-wasm/js/README.md "$out/package/README.md"

echo "== npm pack" >&2
rm -f "$out"/supasync-*.tgz
(cd "$out/package" && npm pack --silent --pack-destination ..) >/dev/null
ls -l "$out"/supasync-"$version".tgz >&2
echo "$out/supasync-$version.tgz"
