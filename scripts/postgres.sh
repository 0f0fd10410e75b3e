#!/usr/bin/env bash
# A private PostgreSQL 15 server for ffb's tests.
#
#   scripts/postgres.sh start        start one; print `export VAR=...` lines
#   scripts/postgres.sh env [DIR]    print them again
#   scripts/postgres.sh stop [DIR]   stop it and remove every file it made
#
# `start` makes a fresh temporary directory (printed as FFB_TEST_PG_DIR,
# which `env` and `stop` default to), runs initdb into it, as the
# unprivileged `postgres` user when run as root (initdb refuses root;
# scripts/setup.sh makes sure the user exists), and starts the server on a
# unix socket in that directory and on a free loopback TCP port. It creates
# the role `ffb`, with a known password, owning the database `ffb_test`;
# the bootstrap superuser is `postgres` (no password: socket only).
#
# Authentication (pg_hba.conf): the unix socket trusts every role; TCP
# (127.0.0.1 and ::1) asks for a scram-sha-256 password, so a test can
# check that a wrong password is refused.
#
# Use: eval "$(scripts/postgres.sh start)"; ...; scripts/postgres.sh stop
# The variables are also written to $FFB_TEST_PG_DIR/env. Each start is
# independent, so several can run side by side.
set -euo pipefail

PG_BIN=${FFB_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=ffb
PG_PASSWORD=ffb-test-password
PG_DB=ffb_test
PG_HOST=127.0.0.1

die() {
    printf 'postgres.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    die "usage: scripts/postgres.sh start | env [DIR] | stop [DIR]"
}

# Runs a server binary as the unprivileged owner of the cluster: the
# `postgres` user when we are root, ourselves otherwise. From `/`, because
# the caller's directory may be closed to that user.
as_owner() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# The temporary directory that `env`/`stop` act on: the argument, else
# $FFB_TEST_PG_DIR. Refuses anything that `start` did not make.
state_dir() {
    local dir=${1:-${FFB_TEST_PG_DIR:-}}
    [[ -n $dir ]] || die "no server given: pass the DIR that 'start' printed, or set FFB_TEST_PG_DIR"
    [[ -f $dir/.ffb-postgres ]] || die "$dir is not a directory made by scripts/postgres.sh start"
    printf '%s\n' "$dir"
}

# A loopback TCP port that nothing listens on now (checked in /proc/net);
# `start` retries with another if the server still loses a race for it.
pick_port() {
    local port hex
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        hex=$(printf ':%04X ' "$port")
        if ! grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            printf '%s\n' "$port"
            return
        fi
    done
    die "found no free loopback port"
}

write_env() {
    local dir=$1 port=$2 sock=$dir/socket
    cat >"$dir/env" <<EOF
export FFB_TEST_PG_DIR='$dir'
export FFB_TEST_PG_SOCKET_DIR='$sock'
export FFB_TEST_PG_HOST='$PG_HOST'
export FFB_TEST_PG_PORT='$port'
export FFB_TEST_PG_USER='$PG_USER'
export FFB_TEST_PG_SUPERUSER='postgres'
export FFB_TEST_PG_PASSWORD='$PG_PASSWORD'
export FFB_TEST_PG_DB='$PG_DB'
export FFB_TEST_PG_SOCKET_CONNINFO='host=$sock port=$port user=$PG_USER dbname=$PG_DB'
export FFB_TEST_PG_TCP_CONNINFO='host=$PG_HOST port=$port user=$PG_USER password=$PG_PASSWORD dbname=$PG_DB'
EOF
}

start() {
    [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 server not found in $PG_BIN (package postgresql-15; run scripts/setup.sh)"
    if ((EUID == 0)); then
        getent passwd postgres >/dev/null || die "no 'postgres' user to run the server as; run scripts/setup.sh"
    fi

    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ffb-postgres.XXXXXX")
    # From here on, any failure removes what was made.
    trap 'stop_dir "$dir" >/dev/null 2>&1 || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    touch "$dir/.ffb-postgres"
    # Everyone may reach the socket (a sandboxed helper may run as another
    # user); the data directory stays private to its owner.
    chmod 0755 "$dir"
    mkdir -m 0700 "$dir/data"
    mkdir -m 0755 "$dir/socket"
    if ((EUID == 0)); then
        chown postgres: "$dir/data" "$dir/socket"
    fi

    # The bootstrap superuser is `postgres`; the test role is made below.
    as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >"$dir/data/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
EOF
    cat >>"$dir/data/postgresql.conf" <<EOF
# ffb test server: throwaway data, so no durability.
listen_addresses = '$PG_HOST'
unix_socket_directories = '$dir/socket'
unix_socket_permissions = 0777
password_encryption = scram-sha-256
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
logging_collector = off
EOF

    local port started=0
    for _ in 1 2 3 4 5; do
        port=$(pick_port)
        if as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" \
            -o "-p $port" -w -t 30 start >/dev/null 2>&1; then
            started=1
            break
        fi
        # Lost the port to someone else? Try another; anything else is fatal.
        grep -q 'could not bind\|Address already in use' "$dir/data/server.log" 2>/dev/null ||
            { cat "$dir/data/server.log" >&2 2>/dev/null || true; die "the server did not start"; }
    done
    ((started)) || die "the server did not start: no free port after 5 tries"

    as_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/socket" -p "$port" -U postgres \
        -d postgres >/dev/null <<EOF || die "could not create the test role and database"
CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD';
CREATE DATABASE $PG_DB OWNER $PG_USER;
EOF

    write_env "$dir" "$port"
    trap - EXIT
    cat "$dir/env"
}

# Stops the server in DIR (if it runs) and removes DIR.
stop_dir() {
    local dir=$1
    # `status` is 0 only while the server runs (a server that died leaves a
    # stale postmaster.pid behind, which `stop` would trip on).
    if [[ -d $dir/data ]] && as_owner "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        # Immediate: the data is thrown away, so skip the shutdown checkpoint.
        # A server killed a moment ago may still look alive (not yet
        # reaped): then `stop` fails, and a second look settles it.
        if ! as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 &&
            as_owner "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
            die "could not stop the server in $dir"
        fi
    fi
    rm -rf -- "$dir"
}

case ${1:-} in
start)
    (($# == 1)) || usage
    start
    ;;
env)
    (($# <= 2)) || usage
    dir=$(state_dir "${2:-}")
    [[ -f $dir/env ]] || die "$dir has no env file (the server did not finish starting)"
    cat "$dir/env"
    ;;
stop)
    (($# <= 2)) || usage
    dir=$(state_dir "${2:-}")
    stop_dir "$dir"
    ;;
*) usage ;;
esac
