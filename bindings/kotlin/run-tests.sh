#!/usr/bin/env bash
# Compile and run the Kotlin test program (test/Main.kt) against a dev server it starts,
# with target/bindings/kotlin/supasync.jar (scripts/build-bindings.sh) on the classpath.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/bindings/kotlin
kotlin_lib=bindings/kotlin/node_modules/kotlin-compiler/lib
cp="$out/supasync.jar:/usr/share/java/jna.jar:$kotlin_lib/kotlinx-coroutines-core-jvm.jar"
bindings/kotlin/node_modules/kotlin-compiler/bin/kotlinc -nowarn bindings/kotlin/test/Main.kt -cp "$cp" -d "$out/test-classes"
log=$(mktemp)
"${SUPASYNC_DEV_BIN:-target/debug/supasync-dev}" --port "${PORT:-54411}" --migrations examples/chat/migrations >"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do grep -q '^DATABASE_URL=' "$log" && break; kill -0 $pid 2>/dev/null || exit 1; sleep 0.1; done
. <(sed 's/^/export /' "$log")
java -cp "$out/test-classes:$cp:$kotlin_lib/kotlin-stdlib.jar" MainKt
