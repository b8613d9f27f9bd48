#!/usr/bin/env bash
# The Tauri example (examples/tauri): Virgil on the desktop, on supasync-native. Builds
# the web UI (Vite) and the Tauri 2 app (several minutes on 2 cores the first time),
# starts the dev server with the chat schema and a test account, and opens the app.
# Without a display it runs under Xvfb, which shows nothing: use a desktop session.
#
# With DEMO_SMOKE=1 it runs the app's end-to-end test instead (examples/tauri/test:
# the app under Xvfb, driven through tauri-driver, the CLI as the user's other
# device), writing TAP to $TAP_OUT if set and screenshots to target/tauri-screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup-tauri.sh
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --locked -q -p supasync-devserver --bin supasync-dev -p supasync-native --bin supasync
echo "== the desktop UI (Vite)" >&2
(cd examples/tauri && npm run -s build >/dev/null)
echo "== the Tauri app" >&2
cargo build --locked --manifest-path examples/tauri/src-tauri/Cargo.toml --features custom-protocol --target-dir target/tauri
app="$PWD/target/tauri/debug/virgil-desktop"

if [ "${DEMO_SMOKE:-0}" = 1 ]; then
  echo "== the desktop app end to end (tauri-driver, Xvfb)" >&2
  reporters=(--test-reporter=spec --test-reporter-destination=stdout)
  [ -n "${TAP_OUT:-}" ] && reporters+=(--test-reporter=tap "--test-reporter-destination=$TAP_OUT")
  VIRGIL_BIN="$app" exec xvfb-run -a -s "-screen 0 1280x800x24" node --test "${reporters[@]}" examples/tauri/test/desktop.test.mjs
fi

. scripts/lib/chat-server.sh
start_chat_server "${PORT:-54321}"
demo_account
email=$DEMO_EMAIL
password=$DEMO_PASSWORD

cat <<MSG
Virgil on the desktop is starting.

  test account: $email / $password
  Supabase:     $SUPABASE_URL (supasync-dev, the chat schema)
  replicas:     ${VIRGIL_DATA_DIR:-the app data directory} (VIRGIL_DATA_DIR)

A second device of the same account, from another terminal:
  export SUPABASE_URL=$SUPABASE_URL SUPABASE_ANON_KEY=$SUPABASE_ANON_KEY
  ./target/debug/supasync --store /tmp/phone --schema examples/chat/schema.json login --email $email --password $password
  ./target/debug/supasync --store /tmp/phone --schema examples/chat/schema.json insert conversations '{"title":"from the phone"}'
  ./target/debug/supasync --store /tmp/phone --schema examples/chat/schema.json sync

MSG
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  "$app"
else
  echo "(no display: running under Xvfb, where the window is not visible)" >&2
  xvfb-run -a "$app"
fi
