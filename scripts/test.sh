#!/usr/bin/env bash
# Runs ffb's whole test suite, and the checks that keep the tree clean:
# formatting, clippy (warnings are errors, `undocumented_unsafe_blocks`
# among them), and the docs (broken links are errors). Then it builds the
# binaries the integration tests drive (ffb, ffb-shim) and runs every unit,
# integration and doc test, and a short pass of every fuzz target
# (scripts/fuzz.sh --short). Extra arguments go to `cargo test`.
#
# First it runs scripts/setup.sh, which installs the ODBC packages the tests
# need when they are missing. The tests run against real servers and
# drivers: a private PostgreSQL (scripts/postgres.sh) and a private unixODBC
# configuration with PostgreSQL and SQLite DSNs (scripts/odbc.sh), started
# just before `cargo test` and removed on exit, also when a step fails or on
# Ctrl-C. Their FFB_TEST_PG_*, FFB_TEST_ODBC_*, ODBCSYSINI and ODBCINI
# variables are exported to the tests, which fail, naming what is missing,
# when run without them.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "scripts/setup.sh"
scripts/setup.sh
step "scripts/python.sh (the project's .venv: numpy, pandas, pyarrow, psycopg2, msgpack)"
scripts/python.sh >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
step "cargo build --bins --lib (the binaries and the Python host, libffb_pyhost.so)"
cargo build --workspace --bins --lib --locked
step "start the test PostgreSQL server and ODBC configuration"
# Stops whatever was started, keeping the script's exit status.
cleanup() {
    local rc=$?
    if [[ -n ${FFB_TEST_ODBC_DIR:-} ]]; then
        scripts/odbc.sh stop "$FFB_TEST_ODBC_DIR" || rc=1
    fi
    if [[ -n ${FFB_TEST_PG_DIR:-} ]]; then
        scripts/postgres.sh stop "$FFB_TEST_PG_DIR" || rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Not `eval "$(...)"`: a failed start must stop the script.
unset FFB_TEST_PG_DIR FFB_TEST_ODBC_DIR
# libpq fills in whatever a conninfo leaves out from PG* variables (PGSSLMODE,
# PGOPTIONS, PGSERVICE...); the tests must see only the private server.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PG' || true)
pg_env=$(scripts/postgres.sh start)
eval "$pg_env"
odbc_env=$(scripts/odbc.sh start)
eval "$odbc_env"
printf 'PostgreSQL 15 on %s and 127.0.0.1:%s; ODBC DSNs in %s\n' \
    "$FFB_TEST_PG_SOCKET_DIR" "$FFB_TEST_PG_PORT" "$ODBCINI" >&2

step "cargo test"
# Doc examples run real helpers: they find the freshly built ffb-shim here.
export FFB_SHIM="$PWD/target/debug/ffb-shim"
export FFB_PYHOST="$PWD/target/debug/libffb_pyhost.so"
cargo test --workspace --locked "$@"

step "scripts/fuzz.sh --short"
# Every saved fuzz input replayed as a test, then each fuzz target for a few
# seconds (cargo-fuzz is installed first when missing).
scripts/fuzz.sh --short
