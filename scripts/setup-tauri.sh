#!/usr/bin/env bash
# What the Tauri example (examples/tauri) needs on a Debian machine, idempotently, on
# top of scripts/setup.sh: WebKitGTK and GTK to build and run a Tauri 2 app, Xvfb to
# run its window without a display, WebKitWebDriver and tauri-driver to drive it in
# the smoke test, and the example's Vite + React + @tauri-apps/api.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup-tauri: need root (or sudo) to run: $*" >&2; exit 1; fi
}

need_apt=()
pkg-config --exists webkit2gtk-4.1 2>/dev/null || need_apt+=(libwebkit2gtk-4.1-dev)
pkg-config --exists gtk+-3.0 2>/dev/null || need_apt+=(libgtk-3-dev)
pkg-config --exists librsvg-2.0 2>/dev/null || need_apt+=(librsvg2-dev)
command -v xvfb-run >/dev/null || need_apt+=(xvfb)
command -v xauth >/dev/null || need_apt+=(xauth)   # xvfb-run needs it
command -v WebKitWebDriver >/dev/null || need_apt+=(webkit2gtk-driver)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-tauri: installing ${need_apt[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export PATH="$HOME/.cargo/bin:$PATH"
driver_version=2.1.0
if ! cargo install --list | grep -qx "tauri-driver v$driver_version:"; then
  echo "setup-tauri: installing tauri-driver $driver_version" >&2
  cargo install --quiet --locked tauri-driver --version "$driver_version"
fi

d=examples/tauri
if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
  (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
fi
