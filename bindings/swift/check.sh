#!/usr/bin/env bash
# The Swift binding cannot be compiled here (no Swift toolchain). This checks its shape
# instead, and fails on a gap: every API the README promises exists in the hand-written
# layer, and every generated function that layer calls exists in the generated sources
# (target/bindings/swift from scripts/build-bindings.sh). One "ok - " line per check.
set -euo pipefail
cd "$(dirname "$0")/../.."
pkg=target/bindings/swift
layer=$pkg/Sources/Supasync/Supasync.swift
gen=$pkg/Sources/SupasyncFFI/supasync_ffi.swift
fail=0
for f in "$pkg/Package.swift" "$layer" "$gen" "$pkg/Sources/supasync_ffiFFI/supasync_ffiFFI.h" "$pkg/Sources/supasync_ffiFFI/module.modulemap"; do
  if [ -s "$f" ]; then echo "ok - $f exists"; else echo "FAILED: $f is missing" >&2; fail=1; fi
done
for api in openReplica rekeyReplica signUp signIn signOut user insert update delete call get query select liveSelect sync syncNow status rejected retry discard history uploadFile file files readFile fileUrl removeFile setMode pause resume live statuses channel close; do
  if grep -Eq "public func $api\(" "$layer"; then echo "ok - the Swift API has $api"; else echo "FAILED: the Swift API lacks $api" >&2; fail=1; fi
done
for f in $(grep -oE '(inner|SupasyncFFI)\.[a-zA-Z]+\(' "$layer" | sed -E 's/.*\.([a-zA-Z]+)\(/\1/' | sort -u); do
  if grep -Eq "func $f\(" "$gen"; then echo "ok - the generated code has $f"; else echo "FAILED: the layer calls $f, which the generated code lacks" >&2; fail=1; fi
done
for proto in RowsListener StatusListener ChannelListener; do
  if grep -q "public protocol $proto" "$gen"; then echo "ok - the generated code has the $proto protocol"; else echo "FAILED: no $proto protocol" >&2; fail=1; fi
done
[ "$fail" = 0 ] && echo "swift shape checks passed"
exit "$fail"
