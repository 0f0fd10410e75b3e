#!/usr/bin/env bash
# Installs what ffb's tests need beyond the base image, so that a fresh
# machine can run `scripts/test.sh` (which runs this first, as does CI
# through `.ci/run`):
#
#   unixodbc         the ODBC driver manager, libodbc.so.2 (and isql)
#   odbc-postgresql  psqlODBC, the PostgreSQL ODBC driver
#   libsqliteodbc    the SQLite ODBC driver, libsqlite3odbc.so
#   python3.11, python3.11-venv, python3.11-dev, libpython3.11
#                    the CPython the Python helper embeds (its shared
#                    libpython3.11.so.1.0), venv for scripts/python.sh, and
#                    the headers the tests' hostile extension module needs
#
# The PostgreSQL 15 server (postgresql-15), libpq5 and the sqlite3 shell
# are part of the image; they are checked here too, so that a machine
# without them gets the same one-line answer. It also makes sure there is an
# unprivileged `postgres` user, because `scripts/postgres.sh` runs the
# private test server as that user when run as root (initdb refuses root).
#
# Idempotent: when everything is present it only runs `dpkg -s` and exits.
# `apt-get update` runs only when something is missing.
set -euo pipefail

PACKAGES=(unixodbc odbc-postgresql libsqliteodbc postgresql-15 libpq5 sqlite3 python3.11 python3.11-venv python3.11-dev libpython3.11)

fail() {
    printf 'setup: %s\n' "$*" >&2
    exit 1
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    # `dpkg -s` succeeds for removed-but-configured packages too; ask for
    # the status word itself.
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    if ((EUID != 0)); then
        fail "missing package(s): ${missing[*]}; install them as root (apt-get install ${missing[*]}) or run scripts/setup.sh as root"
    fi
    printf 'setup: installing %s\n' "${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Wait for a dpkg lock held by someone else (another setup run) rather
    # than failing at once.
    apt_opts=(-q -o DPkg::Lock::Timeout=300)
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    if ! apt-get "${apt_opts[@]}" update >"$log" 2>&1; then
        tail -n 5 "$log" >&2
        fail "apt-get update failed, so ${missing[*]} cannot be installed"
    fi
    for pkg in "${missing[@]}"; do
        if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "$pkg" >"$log" 2>&1; then
            tail -n 5 "$log" >&2
            fail "could not install package $pkg with apt-get"
        fi
    done
fi

if ! getent passwd postgres >/dev/null; then
    if ((EUID != 0)); then
        fail "no 'postgres' user (scripts/postgres.sh runs the test server as that user when root); create it as root"
    fi
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postgres ||
        fail "could not create the system user 'postgres'"
fi
