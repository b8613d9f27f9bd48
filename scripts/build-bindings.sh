#!/usr/bin/env bash
# Build the native bindings from crates/sdk-ffi:
#   target/bindings/python/   the wheel (`pip install` it, then `import supasync`),
#                             built by maturin with uniffi bindings;
#   target/bindings/kotlin/   supasync.jar: the generated and hand-written Kotlin and the
#                             native library (JNA finds it in the jar), compiled with
#                             kotlinc; it needs JNA and kotlinx-coroutines at run time;
#   target/bindings/swift/    the Swift package (bindings/swift with the generated
#                             sources and the library); not compiled here: no Swift
#                             toolchain on these machines.
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
# The native library carries its own SQLite and cipher (crates/sqlite3mc) and links
# only the C library, so the wheel needs nothing repaired (`--auditwheel skip`).
(cd bindings/python && "../../$venv/bin/maturin" build $release --quiet --auditwheel skip -o "../../$out/python") >&2
ls "$out"/python/supasync-*.whl

# Kotlin: generate from the library the wheel was built from, compile, pack the .so.
profile_dir=release
[ "${PROFILE:-release}" = dev ] && profile_dir=debug
cargo build -q -p supasync-ffi --locked $release
lib="target/$profile_dir/libsupasync_ffi.so"
rm -rf "$out/kotlin" && mkdir -p "$out/kotlin/gen" "$out/kotlin/classes/linux-x86-64"
cargo run -q -p supasync-ffi --bin uniffi-bindgen --locked -- generate --library "$lib" --language kotlin --no-format --out-dir "$out/kotlin/gen" >/dev/null
kotlinc=bindings/kotlin/node_modules/kotlin-compiler/bin/kotlinc
[ -x "$kotlinc" ] || (cd bindings/kotlin && npm ci --no-audit --no-fund --loglevel=error)
coroutines=bindings/kotlin/node_modules/kotlin-compiler/lib/kotlinx-coroutines-core-jvm.jar
"$kotlinc" -nowarn "$out/kotlin/gen" bindings/kotlin/src -cp "/usr/share/java/jna.jar:$coroutines" -d "$out/kotlin/classes"
cp "$lib" "$out/kotlin/classes/linux-x86-64/"
(cd "$out/kotlin/classes" && jar cf ../supasync.jar .)
ls "$out/kotlin/supasync.jar"

# Swift: the package layout with the generated sources filled in.
rm -rf "$out/swift" && mkdir -p "$out/swift/Sources/SupasyncFFI" "$out/swift/Sources/supasync_ffiFFI" "$out/swift/lib"
cp bindings/swift/Package.swift "$out/swift/"
cp -r bindings/swift/Sources/Supasync "$out/swift/Sources/"
cargo run -q -p supasync-ffi --bin uniffi-bindgen --locked -- generate --library "$lib" --language swift --out-dir "$out/swift/gen" >/dev/null 2>&1
mv "$out/swift/gen/supasync_ffi.swift" "$out/swift/Sources/SupasyncFFI/"
mv "$out/swift/gen/supasync_ffiFFI.h" "$out/swift/Sources/supasync_ffiFFI/"
mv "$out/swift/gen/supasync_ffiFFI.modulemap" "$out/swift/Sources/supasync_ffiFFI/module.modulemap"
rmdir "$out/swift/gen"
cp "$lib" "$out/swift/lib/"
ls -d "$out/swift"
