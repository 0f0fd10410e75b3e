#!/usr/bin/env bash
# Private unixODBC configuration for ffb's tests.
#
#   scripts/odbc.sh start        write it; print `export VAR=...` lines
#   scripts/odbc.sh env [DIR]    print them again
#   scripts/odbc.sh stop [DIR]   remove every file it made
#
# `start` makes a fresh temporary directory (printed as FFB_TEST_ODBC_DIR,
# which `env` and `stop` default to) holding odbcinst.ini and odbc.ini, so
# that the tests never read or change the machine's /etc/odbc*.ini: unixODBC
# reads them from ODBCSYSINI (the directory) and ODBCINI (the file). The
# DSNs:
#
#   ffb_pg         psqlODBC (Unicode driver) over TCP to the private server
#                  of scripts/postgres.sh, with its user and password
#   ffb_pg_socket  the same over its unix socket (trust auth)
#   ffb_sqlite     the SQLite ODBC driver on a new, empty database file
#
# Both PostgreSQL DSNs read results through a cursor (UseDeclareFetch = 1,
# Fetch = 1024 rows a round trip), so rows stream: without it psqlODBC reads
# a whole result into memory at SQLExecute, and an endless one never
# returns. The bridged driver sends a DSN as it is, like the in-process one.
#
# It needs the FFB_TEST_PG_* variables that `scripts/postgres.sh start`
# prints, and the drivers that scripts/setup.sh installs.
#
# Use: eval "$(scripts/odbc.sh start)"; ...; scripts/odbc.sh stop
set -euo pipefail

DRIVER_DIR=${FFB_ODBC_DRIVER_DIR:-/usr/lib/x86_64-linux-gnu/odbc}
PG_DRIVER=$DRIVER_DIR/psqlodbcw.so
SQLITE_DRIVER=$DRIVER_DIR/libsqlite3odbc.so

die() {
    printf 'odbc.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    die "usage: scripts/odbc.sh start | env [DIR] | stop [DIR]"
}

state_dir() {
    local dir=${1:-${FFB_TEST_ODBC_DIR:-}}
    [[ -n $dir ]] || die "no configuration given: pass the DIR that 'start' printed, or set FFB_TEST_ODBC_DIR"
    [[ -f $dir/.ffb-odbc ]] || die "$dir is not a directory made by scripts/odbc.sh start"
    printf '%s\n' "$dir"
}

start() {
    [[ -f $PG_DRIVER ]] || die "psqlODBC driver $PG_DRIVER missing (package odbc-postgresql; run scripts/setup.sh)"
    [[ -f $SQLITE_DRIVER ]] || die "SQLite ODBC driver $SQLITE_DRIVER missing (package libsqliteodbc; run scripts/setup.sh)"
    local var
    for var in FFB_TEST_PG_SOCKET_DIR FFB_TEST_PG_HOST FFB_TEST_PG_PORT FFB_TEST_PG_USER \
        FFB_TEST_PG_PASSWORD FFB_TEST_PG_DB; do
        [[ -n ${!var:-} ]] || die "$var unset: start the server first, eval \"\$(scripts/postgres.sh start)\""
    done

    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ffb-odbc.XXXXXX")
    trap 'rm -rf -- "$dir"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    touch "$dir/.ffb-odbc"
    # Readable by a sandboxed helper that runs as another user; the SQLite
    # database directory is writable by it too (journal and WAL files are
    # created beside the database).
    chmod 0755 "$dir"
    mkdir -m 0777 "$dir/sqlite"
    local db=$dir/sqlite/test.db
    : >"$db"
    chmod 0666 "$db"

    cat >"$dir/odbcinst.ini" <<EOF
[PostgreSQL Unicode]
Description = psqlODBC, Unicode
Driver = $PG_DRIVER

[SQLite3]
Description = SQLite3 ODBC driver
Driver = $SQLITE_DRIVER
EOF
    cat >"$dir/odbc.ini" <<EOF
[ffb_pg]
Driver = PostgreSQL Unicode
Servername = $FFB_TEST_PG_HOST
Port = $FFB_TEST_PG_PORT
Database = $FFB_TEST_PG_DB
Username = $FFB_TEST_PG_USER
Password = $FFB_TEST_PG_PASSWORD
SSLmode = disable
UseDeclareFetch = 1
Fetch = 1024

[ffb_pg_socket]
Driver = PostgreSQL Unicode
Servername = $FFB_TEST_PG_SOCKET_DIR
Port = $FFB_TEST_PG_PORT
Database = $FFB_TEST_PG_DB
Username = $FFB_TEST_PG_USER
SSLmode = disable
UseDeclareFetch = 1
Fetch = 1024

[ffb_sqlite]
Driver = SQLite3
Database = $db
EOF
    chmod 0644 "$dir/odbcinst.ini" "$dir/odbc.ini"

    cat >"$dir/env" <<EOF
export FFB_TEST_ODBC_DIR='$dir'
export ODBCSYSINI='$dir'
export ODBCINI='$dir/odbc.ini'
export FFB_TEST_ODBC_PG_DSN='ffb_pg'
export FFB_TEST_ODBC_PG_SOCKET_DSN='ffb_pg_socket'
export FFB_TEST_ODBC_SQLITE_DSN='ffb_sqlite'
export FFB_TEST_ODBC_SQLITE_DB='$db'
export FFB_TEST_ODBC_PG_DRIVER='$PG_DRIVER'
export FFB_TEST_ODBC_SQLITE_DRIVER='$SQLITE_DRIVER'
EOF
    trap - EXIT
    cat "$dir/env"
}

case ${1:-} in
start)
    (($# == 1)) || usage
    start
    ;;
env)
    (($# <= 2)) || usage
    dir=$(state_dir "${2:-}")
    cat "$dir/env"
    ;;
stop)
    (($# <= 2)) || usage
    dir=$(state_dir "${2:-}")
    rm -rf -- "$dir"
    ;;
*) usage ;;
esac
