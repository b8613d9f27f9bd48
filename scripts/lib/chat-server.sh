# Sourced by the demo scripts (dev-server, web-demo, tauri-demo): the dev server with
# the chat schema, started once the same way everywhere.
#
#   start_chat_server PORT   starts target/debug/supasync-dev on PORT with
#                            examples/chat/migrations, waits until it is up, exports
#                            SUPABASE_URL, SUPABASE_ANON_KEY, DATABASE_URL, … and
#                            stops it (PostgreSQL included) when the script exits;
#                            a script with more to clean up puts it in CLEANUP.
#   demo_account             creates the demo account (DEMO_EMAIL / DEMO_PASSWORD).

DEMO_EMAIL=demo@example.com
DEMO_PASSWORD=virgil-demo-password
CLEANUP=${CLEANUP:-}

start_chat_server() {
  local port=$1
  CHAT_SERVER_OUT=$(mktemp)
  ./target/debug/supasync-dev --port "$port" --migrations examples/chat/migrations >"$CHAT_SERVER_OUT" &
  CHAT_SERVER_PID=$!
  trap 'eval "$CLEANUP" || true; kill $CHAT_SERVER_PID 2>/dev/null; wait $CHAT_SERVER_PID 2>/dev/null; rm -f "$CHAT_SERVER_OUT"' EXIT
  for _ in $(seq 1 600); do
    grep -q '^DATABASE_URL=' "$CHAT_SERVER_OUT" && break
    kill -0 "$CHAT_SERVER_PID" 2>/dev/null || { echo "supasync-dev did not start" >&2; exit 1; }
    sleep 0.1
  done
  . <(sed 's/^/export /' "$CHAT_SERVER_OUT")
}

demo_account() {
  curl -sf -X POST "$SUPABASE_URL/auth/v1/signup" -H "apikey: $SUPABASE_ANON_KEY" -H 'content-type: application/json' \
    -d "{\"email\":\"$DEMO_EMAIL\",\"password\":\"$DEMO_PASSWORD\"}" >/dev/null
}
