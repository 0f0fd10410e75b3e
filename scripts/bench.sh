#!/usr/bin/env bash
# Measures ffb beside its baselines (an in-process call; unix-socket, pipe and
# futex request/response helpers; in-process libsqlite3 and libpq, the
# sqlite3 and psql shells) in one run, and prints the machine, the commands
# used, a table of medians, p99s and ratios, a payload sweep, and every
# target with met/missed.
#
#   scripts/bench.sh [--quick] [--only sql] [--calls N] [--json FILE] [--plot FILE.svg]
#
# --quick takes about a minute; a full run a few minutes at most. --only sql
# measures just the database rows. Extra arguments go to ffb-bench
# (target/release/ffb-bench --help).
#
# The PostgreSQL rows need a server: the one FFB_BENCH_PG_CONNINFO or
# FFB_TEST_PG_SOCKET_CONNINFO names (`eval "$(scripts/postgres.sh start)"`),
# else a private one this script starts with scripts/postgres.sh and stops
# when it ends. The sqlite3 rows need the sqlite3 shell (scripts/setup.sh
# installs it); without it they are left out, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."

build=(cargo build --release --workspace --bins --lib --locked)
"${build[@]}" >&2
# The Python rows use the project's .venv (numpy, pandas, msgpack).
scripts/python.sh >/dev/null
mkdir -p target/bench
lib=target/bench/libffb_fixture.so
compile=(cc -shared -fPIC -O2 -o "$lib" tests/fixtures/ffb_fixture.c -lpthread)
"${compile[@]}"

started_pg=
cleanup() {
    if [[ -n "$started_pg" ]]; then
        scripts/postgres.sh stop "$started_pg" >&2 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [[ -z "${FFB_BENCH_PG_CONNINFO:-}${FFB_TEST_PG_SOCKET_CONNINFO:-}" ]] \
    && [[ -x "${FFB_PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]]; then
    pg_env=$(scripts/postgres.sh start)
    eval "$pg_env"
    started_pg=$FFB_TEST_PG_DIR
fi

# Recorded by ffb-bench in its report and JSON.
printf -v invoked ' %q' "$@"
export FFB_BENCH_SCRIPT="scripts/bench.sh${invoked}"
export FFB_BENCH_BUILD="${build[*]}
${compile[*]}"
export FFB_BENCH_TOOLCHAIN="$(rustc -V); $(cc --version | head -n 1)"
target/release/ffb-bench --lib "$lib" "$@"
