#!/usr/bin/env bash
# Measures ffb beside its baselines (an in-process call; unix-socket, pipe and
# futex request/response helpers) in one run, and prints the machine, the
# commands used, a table of medians, p99s and ratios, a payload sweep, and
# every target with met/missed.
#
#   scripts/bench.sh [--quick] [--calls N] [--json FILE] [--plot FILE.svg]
#
# --quick takes under a minute; a full run a few minutes at most. Extra
# arguments go to ffb-bench (target/release/ffb-bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."

build=(cargo build --release --workspace --bins --locked)
"${build[@]}" >&2
mkdir -p target/bench
lib=target/bench/libffb_fixture.so
compile=(cc -shared -fPIC -O2 -o "$lib" tests/fixtures/ffb_fixture.c -lpthread)
"${compile[@]}"

# Recorded by ffb-bench in its report and JSON.
printf -v invoked ' %q' "$@"
export FFB_BENCH_SCRIPT="scripts/bench.sh${invoked}"
export FFB_BENCH_BUILD="${build[*]}
${compile[*]}"
export FFB_BENCH_TOOLCHAIN="$(rustc -V); $(cc --version | head -n 1)"
exec target/release/ffb-bench --lib "$lib" "$@"
