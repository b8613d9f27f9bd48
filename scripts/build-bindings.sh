#!/usr/bin/env bash
# Build the native bindings from crates/sdk-ffi:
#   target/bindings/python/   the wheel (`pip install` it, then `import supasync`),
#                             built by maturin with uniffi bindings.
# Kotlin and Swift come next (see docs/ARCHITECTURE.md).
# PROFILE=dev builds the debug library (faster, for tests); release by default.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
out=target/bindings
mkdir -p "$out/python"
venv="$out/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import maturin' 2>/dev/null || "$venv/bin/pip" install -q 'maturin>=1.16,<2' pytest
release=--release
[ "${PROFILE:-release}" = dev ] && release=
rm -f "$out"/python/supasync-*.whl
(cd bindings/python && "../../$venv/bin/maturin" build $release --quiet -o "../../$out/python") >&2
ls "$out"/python/supasync-*.whl
