#!/usr/bin/env bash
# Measures ffb beside its baselines in one run and prints a table of medians,
# p99s and ratios. Extra arguments go to ffb-bench (e.g. --quick, --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --locked >&2
mkdir -p target/bench
lib=target/bench/libffb_fixture.so
cc -shared -fPIC -O2 -o "$lib" tests/fixtures/ffb_fixture.c -lpthread
echo "# $(date -u +%FT%TZ) on $(uname -r), $(nproc) cpus: target/release/ffb-bench --lib $lib $*"
exec target/release/ffb-bench --lib "$lib" "$@"
