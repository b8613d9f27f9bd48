#!/usr/bin/env bash
# The web example (examples/web): start the dev server with the chat schema, build the
# npm package and the Vite + React app against it, serve the app, and print its URL
# and a test account. Open the URL in two browsers (or a normal and a private window)
# to see two devices sync. Ctrl-C stops everything. With DEMO_SMOKE=1 it checks that
# the app, its wasm and the test account work, then exits.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked -q -p supasync-devserver --bin supasync-dev
tgz=$(./scripts/build-npm.sh 2>/dev/null | tail -1)
(cd examples/web && npm install --no-save --no-audit --no-fund --loglevel=error "../../$tgz")

web_port=${WEB_PORT:-5173}
. scripts/lib/chat-server.sh
preview=
CLEANUP='if [ -n "$preview" ]; then kill $preview 2>/dev/null || true; fi'
start_chat_server "${PORT:-54321}"
demo_account
email=$DEMO_EMAIL
password=$DEMO_PASSWORD

(cd examples/web && VITE_SUPABASE_URL="$SUPABASE_URL" VITE_SUPABASE_ANON_KEY="$SUPABASE_ANON_KEY" npm run -s build >/dev/null)
(cd examples/web && exec ./node_modules/.bin/vite preview --host 127.0.0.1 --port "$web_port" --strictPort >/dev/null) &
preview=$!
app="http://127.0.0.1:$web_port/"
for _ in $(seq 1 200); do curl -sf "$app" >/dev/null && break; sleep 0.1; done

cat <<MSG
Virgil, the supasync chat, is running.

  app:          $app   (add ?device=laptop, ?device=phone to name each browser)
  test account: $email / $password
  Supabase:     $SUPABASE_URL (supasync-dev, the chat schema)

MSG
if [ "${DEMO_SMOKE:-0}" = 1 ]; then
  curl -sf "$app" | grep -q '<div id="root">' || { echo "smoke: the app page is missing" >&2; exit 1; }
  wasm=$(curl -sf "$app/precache.json" | tr ',' '\n' | grep -o '/assets/[^"]*\.wasm' | head -1)
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$app${wasm#/}")" = 200 ] || { echo "smoke: the wasm is not served" >&2; exit 1; }
  curl -sf -X POST "$SUPABASE_URL/auth/v1/token?grant_type=password" -H "apikey: $SUPABASE_ANON_KEY" \
    -H 'content-type: application/json' -d "{\"email\":\"$email\",\"password\":\"$password\"}" >/dev/null \
    || { echo "smoke: the test account cannot sign in" >&2; exit 1; }
  echo "smoke check: the app, its wasm and the test account work."
  exit 0
fi
echo "Press Ctrl-C to stop."
wait $CHAT_SERVER_PID
