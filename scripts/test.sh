#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (the dev server over a real
# PostgreSQL); in Chromium, Firefox and WebKit (Playwright's API; WebKitGTK through
# its WebDriver, tests/browser/webkit.mjs): the core's browser tests
# and the IndexedDB store suite (wasm), and the npm package built, packed and driven
# against the dev server; then the official supabase-js conformance suite against the
# dev server, the Python, Kotlin and Swift bindings, the demos, and the Tauri example
# built and driven under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase says when it began (time into the run), so a slow run shows where it went.
phase() { echo "== $1 [$((SECONDS / 60))m$((SECONDS % 60))s into the run]" >&2; }
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# A test run builds once from scratch: incremental-compilation caches would only add
# gigabytes to target/ (more than half of it) and never be read.
export CARGO_INCREMENTAL=0
# The whole run needs about 4 GB in target/ (debug, wasm, Tauri, bindings). Say so
# plainly up front instead of failing in the middle of a compile.
need_kb=$((5 * 1024 * 1024))
free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ "${free_kb:-0}" -lt "$need_kb" ]; then
  echo "test: only $((free_kb / 1024)) MB free on $(df -P . | awk 'NR==2 {print $6}'); the test run needs about 5 GB for target/." >&2
  exit 1
fi

phase "cargo build"
cargo build --workspace --locked
phase "cargo test"
cargo test --workspace --locked 2>&1 | tee /tmp/supasync-cargo-test.log
rust_passed=$(grep -E '^test result:' /tmp/supasync-cargo-test.log | awk '{s+=$4} END {print s+0}')
rust_failed=$(grep -E '^test result:' /tmp/supasync-cargo-test.log | awk '{s+=$6} END {print s+0}')

phase "the core's browser tests and the IndexedDB store suite, built for wasm"
# They run in each engine below, with the npm package's tests (tests/browser/wasm-suites.test.mjs).
cargo test -p supasync-core --test browser -p supasync-wasm --test idb_store --target wasm32-unknown-unknown --locked --no-run
browser_passed=0; browser_failed=0

phase "the npm package, built and packed"
./scripts/build-npm.sh
export SUPASYNC_DEV_BIN="$PWD/target/debug/supasync-dev"
# Each engine from Debian's packages: Chromium over CDP, Firefox ESR over WebDriver BiDi,
# WebKitGTK's MiniBrowser over classic WebDriver (it needs a display: Xvfb).
browser_skipped=0
: > /tmp/supasync-engine-limits.log
: > /tmp/supasync-engine-failures.log
for engine in chromium firefox webkit; do
  phase "the npm package in $engine against the dev server"
  rm -f /tmp/supasync-npm-$engine.tap
  display=(); [ "$engine" = webkit ] && display=(xvfb-run -a)
  # A test that hangs fails after five minutes instead of holding the run.
  (cd tests/browser && SUPASYNC_ENGINE=$engine "${display[@]}" node --test --test-concurrency=1 --test-timeout=300000 \
     --test-reporter=spec --test-reporter-destination=stdout \
     --test-reporter=tap --test-reporter-destination=/tmp/supasync-npm-$engine.tap ./*.test.mjs) || true
  npm_passed=$(grep -E '^# pass' /tmp/supasync-npm-$engine.tap 2>/dev/null | awk '{print $3}' || true)
  npm_failed=$(grep -E '^# fail' /tmp/supasync-npm-$engine.tap 2>/dev/null | awk '{print $3}' || true)
  npm_skipped=$(grep -E '^# skipped' /tmp/supasync-npm-$engine.tap 2>/dev/null | awk '{print $3}' || true)
  # A test file that ran past the timeout is cancelled, not failed, in node's count: it is a failure.
  npm_cancelled=$(grep -E '^# cancelled' /tmp/supasync-npm-$engine.tap 2>/dev/null | awk '{print $3}' || true)
  npm_failed=$(( ${npm_failed:-1} + ${npm_cancelled:-0} ))
  # What an engine cannot do for a test is skipped with the reason, listed here.
  grep -E '# SKIP' /tmp/supasync-npm-$engine.tap 2>/dev/null | sed "s/^/$engine cannot run: /" >> /tmp/supasync-engine-limits.log || true
  # A failure is listed with its engine at the end (the spec output above names only the test).
  # With its diagnostics (the assertion, what was seen, the stack; at most 40 lines of
  # 800 characters), so the end of the log says why as well as what.
  awk -v e="$engine" '/^not ok/ { print "failed in " e ": " $0; n = 40; next }
    n > 0 { if ($0 ~ /^  \.\.\.$/) { n = 0; next } print "    " substr($0, 1, 800); n-- }' \
    /tmp/supasync-npm-$engine.tap >> /tmp/supasync-engine-failures.log 2>/dev/null || true
  browser_skipped=$((browser_skipped + ${npm_skipped:-0}))
  browser_passed=$((browser_passed + ${npm_passed:-0})); browser_failed=$((browser_failed + ${npm_failed:-1}))
done

phase "the Python bindings (pytest) against the dev server"
PROFILE=dev ./scripts/build-bindings.sh >/dev/null
target/bindings/venv/bin/pip install -q --force-reinstall target/bindings/python/supasync-*.whl
(cd bindings/python/tests && ../../../target/bindings/venv/bin/pytest -q --junitxml=/tmp/supasync-python.xml) || true
py_passed=$(python3 -c "import xml.etree.ElementTree as E; s=E.parse('/tmp/supasync-python.xml').getroot(); s=s if s.tag=='testsuite' else s[0]; print(int(s.get('tests'))-int(s.get('failures'))-int(s.get('errors'))-int(s.get('skipped')))")
py_failed=$(python3 -c "import xml.etree.ElementTree as E; s=E.parse('/tmp/supasync-python.xml').getroot(); s=s if s.tag=='testsuite' else s[0]; print(int(s.get('failures'))+int(s.get('errors'))+int(s.get('skipped')))")

phase "the Kotlin binding (a Kotlin program on the JVM) against the dev server"
kt_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
PORT=$kt_port ./bindings/kotlin/run-tests.sh 2>&1 | tee /tmp/supasync-kotlin.log || true
kt_passed=$(grep -c '^ok - ' /tmp/supasync-kotlin.log || true)
if grep -q 'checks passed$' /tmp/supasync-kotlin.log; then kt_failed=0; else kt_failed=1; fi
py_passed=$((py_passed + kt_passed)); py_failed=$((py_failed + kt_failed))
phase "the Swift binding's shape (no Swift toolchain here)"
./bindings/swift/check.sh 2>&1 | tee /tmp/supasync-swift.log || true
sw_passed=$(grep -c '^ok - ' /tmp/supasync-swift.log || true)
sw_failed=$(grep -c '^FAILED' /tmp/supasync-swift.log || true)
py_passed=$((py_passed + sw_passed)); py_failed=$((py_failed + sw_failed))

phase "supabase-js conformance"
export SUPASYNC_DEV_BIN="$PWD/target/debug/supasync-dev"
rm -f /tmp/supasync-conformance.tap
(cd tests/conformance && node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
   --test-reporter=tap --test-reporter-destination=/tmp/supasync-conformance.tap ./*.test.mjs) || true
# A step that failed before it counted anything counts as one failure, never as a stop
# without the summary below (set -e would end the run at an empty count).
js_passed=$(grep -E '^# pass' /tmp/supasync-conformance.tap 2>/dev/null | awk '{print $3}' || true); js_passed=${js_passed:-0}
js_failed=$(grep -E '^# fail' /tmp/supasync-conformance.tap 2>/dev/null | awk '{print $3}' || true); js_failed=${js_failed:-1}

phase "the README's demo command"
if ./scripts/demo.sh; then demo_passed=1; demo_failed=0; else demo_passed=0; demo_failed=1; fi
phase "the dev server script (smoke mode)"
dev_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
if DEMO_SMOKE=1 PORT=$dev_port ./scripts/dev-server.sh; then dev_passed=1; dev_failed=0; else dev_passed=0; dev_failed=1; fi
phase "the web example script (smoke mode)"
web_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
if DEMO_SMOKE=1 PORT=$dev_port WEB_PORT=$web_port ./scripts/web-demo.sh; then web_passed=1; web_failed=0; else web_passed=0; web_failed=1; fi
demo_passed=$((demo_passed + dev_passed + web_passed)); demo_failed=$((demo_failed + dev_failed + web_failed))

phase "the Tauri example: built, then driven end to end under Xvfb (tauri-driver)"
rm -f /tmp/supasync-tauri.tap
DEMO_SMOKE=1 TAP_OUT=/tmp/supasync-tauri.tap ./scripts/tauri-demo.sh || true
tauri_passed=$(grep -E '^# pass' /tmp/supasync-tauri.tap 2>/dev/null | awk '{print $3}' || true); tauri_passed=${tauri_passed:-0}
tauri_failed=$(grep -E '^# fail' /tmp/supasync-tauri.tap 2>/dev/null | awk '{print $3}' || true); tauri_failed=${tauri_failed:-1}
demo_passed=$((demo_passed + tauri_passed)); demo_failed=$((demo_failed + tauri_failed))

echo
if [ -s /tmp/supasync-engine-limits.log ]; then
  echo "Tests an engine cannot run (each says why; see README, Browser engines):"
  cat /tmp/supasync-engine-limits.log
fi
if [ -s /tmp/supasync-engine-failures.log ]; then
  echo "Browser tests that failed:"
  cat /tmp/supasync-engine-failures.log
fi
echo "rust: $rust_passed passed, $rust_failed failed; browser: $browser_passed passed, $browser_failed failed, $browser_skipped not runnable in an engine; bindings (python, kotlin, swift shape): $py_passed passed, $py_failed failed; supabase-js conformance: $js_passed passed, $js_failed failed; demo, dev-server and web-example smoke, Tauri example: $demo_passed passed, $demo_failed failed"
echo "$((rust_passed + browser_passed + py_passed + js_passed + demo_passed)) passed, $((rust_failed + browser_failed + py_failed + js_failed + demo_failed)) failed, in $((SECONDS / 60))m$((SECONDS % 60))s"
[ $((rust_failed + browser_failed + py_failed + js_failed + demo_failed)) = 0 ]
