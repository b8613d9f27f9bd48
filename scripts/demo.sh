#!/usr/bin/env bash
# The README's first command: the two-device chat demo. It installs what it needs
# (scripts/setup.sh), builds the demo, and runs it: the dev server with the chat schema
# and the SQL kit starts inside it, then a laptop and a phone of one user sync live,
# go offline, edit at once, get a write refused, and end identical. Exits 0 only if
# every step held.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked -q -p supasync-chat-demo --bin chat-demo
exec ./target/debug/chat-demo
