#!/usr/bin/env bash
# Install what supasync's demo and tests need on a Debian machine, idempotently:
# PostgreSQL with wal2json (the dev server's database and Realtime), Node.js and npm
# (the supabase-js conformance suite), and the Rust toolchain's pieces.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root (or sudo) to run: $*" >&2; exit 1; fi
}

need_apt=()
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then need_apt+=(postgresql); fi
if ! ls /usr/lib/postgresql/*/lib/wal2json.so >/dev/null 2>&1; then need_apt+=(wal2json); fi
# PostGIS: the dev server's GeoJSON answers (and postgrest-js's own test schema) need it.
if ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then need_apt+=(postgis); fi
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
[ -e /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
command -v javac >/dev/null || need_apt+=(default-jdk-headless)
# The browser suite's second engine (Playwright drives it over WebDriver BiDi).
[ -x /usr/bin/firefox-esr ] || need_apt+=(firefox-esr)
# The third engine: WebKitGTK's WebDriver and MiniBrowser, shown on a virtual display.
[ -x /usr/bin/WebKitWebDriver ] || need_apt+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null || need_apt+=(xvfb)
command -v xauth >/dev/null || need_apt+=(xauth)   # xvfb-run needs it

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  as_root apt-get update -qq
  pkgs=()
  for p in "${need_apt[@]}"; do
    if [ "$p" = wal2json ] || [ "$p" = postgis ]; then
      # wal2json and PostGIS must match the server's major version; install the server first.
      if [ -z "$pg_bin" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      fi
      ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
      if [ "$p" = wal2json ]; then pkgs+=("postgresql-$ver-wal2json"); else pkgs+=("postgresql-$ver-postgis-3"); fi
    else
      pkgs+=("$p")
    fi
  done
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; else
    echo "setup: installing Rust with rustup" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

# The browser tests: the wasm target and the wasm-bindgen CLI matching Cargo.lock.
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
wb_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, "", $0); print; exit}' Cargo.lock)
if [ -n "$wb_version" ] && [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  echo "setup: installing wasm-bindgen-cli $wb_version (a few minutes)" >&2
  cargo install --quiet wasm-bindgen-cli --version "$wb_version"
fi

# The conformance suite's pinned supabase-js.
if [ ! -d tests/conformance/node_modules/@supabase/supabase-js ] || [ tests/conformance/package-lock.json -nt tests/conformance/node_modules ]; then
  (cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
fi

# The npm package's build tools (tsc, wasm-opt), the browser suite's Playwright and
# bundlers, and the web example's Vite and React.
for d in crates/sdk-wasm/js tests/browser examples/web bindings/kotlin; do
  if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
