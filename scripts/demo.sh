#!/usr/bin/env bash
# The main job, worked through on a real library: zlib, loaded only inside a
# sandboxed helper, called through the bridge from the ffb CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --locked >&2
ffb=target/release/ffb
lib=libz.so.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

echo "ffb demo: zlib through the bridge (the .so is loaded only in a seccomp-locked helper)"

# Without bridge mode nothing is loaded.
say "$ffb call --lib $lib --sig 'zlibVersion() -> cstr'"
"$ffb" call --lib "$lib" --sig 'zlibVersion() -> cstr' || echo "(exit $? : bridge mode is opt-in)"

run "$ffb" call --bridge-mode --lib "$lib" --sig 'zlibVersion() -> cstr'
run "$ffb" call --bridge-mode --lib "$lib" --sig 'crc32(u64, bytes, u32) -> u64' 0 'hello, bridge' 13
run "$ffb" call --bridge-mode --lib "$lib" --json --sig 'adler32(u64, bytes, u32) -> u64' 1 'hello, bridge' 13

# compress(dest, &destLen, source, sourceLen): out[N] and *u64 come back after the call.
head -c 4096 /usr/share/common-licenses/GPL-3 2>/dev/null > "$tmp/input" || yes 'ffb bridges zlib' | head -c 4096 > "$tmp/input"
size=$(stat -c %s "$tmp/input")
say "$ffb call --bridge-mode --lib $lib --json --sig 'compress(out[8192], *u64, bytes, u64) -> i32' 8192 @input $size"
"$ffb" call --bridge-mode --lib "$lib" --json --sig 'compress(out[8192], *u64, bytes, u64) -> i32' 8192 "@$tmp/input" "$size" > "$tmp/compressed.json"
# The reply carries all 8 KiB of out[8192] as hex; show its shape, not every byte.
sed -E 's/("hex":"[0-9a-f]{48})[0-9a-f]*"/\1..."/g' "$tmp/compressed.json"

# A session keeps one helper (and its state) across calls: JSON lines in, JSON lines out.
say "a session: deflate stream sizes and two crc32 calls on one helper"
printf '%s\n' \
  '{"id":"bound","sig":"compressBound(u64) -> u64","args":[1000000]}' \
  '{"id":"crc-a","sig":"crc32(u64, bytes, u32) -> u64","args":[0,"abc",3]}' \
  '{"id":"crc-b","sig":"crc32(u64, bytes, u32) -> u64","args":[0,{"hex":"616263"},3]}' \
  '{"id":"oops","sig":"crc32(u64, bytes, ...) -> u64","args":[]}' \
  | "$ffb" session --bridge-mode --lib "$lib"

# What a hot call costs through the bridge.
run "$ffb" call --bridge-mode --lib "$lib" --sig 'crc32(u64, bytes, u32) -> u64' --repeat 100000 0 abc 3
