#!/usr/bin/env bash
# Start the local Supabase-compatible dev server with the chat schema of seed 004 and
# show how to reach it (for trying supabase-js or the `supasync` CLI by hand). Ctrl-C
# stops it, PostgreSQL included. With DEMO_SMOKE=1 it checks the server answers a
# signup and a query, then exits.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked -q -p supasync-devserver --bin supasync-dev

. scripts/lib/chat-server.sh
start_chat_server "${PORT:-54321}"
cat <<MSG
supasync-dev is running with the chat schema (conversations, messages, memories).

  SUPABASE_URL=$SUPABASE_URL
  SUPABASE_ANON_KEY=$SUPABASE_ANON_KEY
  DATABASE_URL=$DATABASE_URL

  createClient(process.env.SUPABASE_URL, process.env.SUPABASE_ANON_KEY) works unchanged.
MSG
if [ "${DEMO_SMOKE:-0}" = 1 ]; then
  email="demo$(date +%s%N)@example.com"
  token=$(curl -sf -X POST "$SUPABASE_URL/auth/v1/signup" -H "apikey: $SUPABASE_ANON_KEY" \
    -H 'content-type: application/json' -d "{\"email\":\"$email\",\"password\":\"demo-password\"}" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  curl -sf -X POST "$SUPABASE_URL/rest/v1/conversations" -H "apikey: $SUPABASE_ANON_KEY" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' -d '{"title":"hello","local_id":"c1"}' >/dev/null
  n=$(curl -sf "$SUPABASE_URL/rest/v1/conversations?select=title" -H "apikey: $SUPABASE_ANON_KEY" -H "authorization: Bearer $token")
  [ "$n" = '[{"title":"hello"}]' ] || { echo "smoke check failed: $n" >&2; exit 1; }
  echo "smoke check: signup, insert and select under RLS work."
  exit 0
fi
echo "Press Ctrl-C to stop."
wait $CHAT_SERVER_PID
