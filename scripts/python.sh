#!/usr/bin/env bash
# Makes the project-local Python environment the Python-helper tests and
# benchmarks use: a virtual environment at .venv (ignored by git) of the
# system's CPython 3.11, with the pinned packages of python/requirements.txt
# (numpy, pandas, pyarrow, psycopg2-binary, msgpack) installed from the
# package registry as wheels.
#
#   scripts/python.sh          make or update .venv; print its interpreter
#
# Idempotent: when .venv already holds exactly the pinned packages it only
# checks them (one `pip freeze`) and exits. scripts/test.sh and
# scripts/bench.sh run it first; FFB_PYTHON (default /usr/bin/python3.11)
# names the base interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

base=${FFB_PYTHON:-/usr/bin/python3.11}
venv=.venv
requirements=python/requirements.txt

fail() {
    printf 'python: %s\n' "$*" >&2
    exit 1
}

[[ -x $base ]] || fail "no Python interpreter at $base (install python3.11 and python3.11-venv, or set FFB_PYTHON)"

wanted=$(grep -v '^#' "$requirements" | grep -v '^$' | sort)
if [[ -x $venv/bin/python ]] && [[ $("$venv/bin/python" -m pip freeze 2>/dev/null | sort) == "$wanted" ]]; then
    printf '%s\n' "$PWD/$venv/bin/python"
    exit 0
fi

if [[ ! -x $venv/bin/python ]]; then
    printf 'python: making %s from %s\n' "$venv" "$base" >&2
    rm -rf "$venv"
    "$base" -m venv "$venv" || fail "$base -m venv failed (is python3.11-venv installed?)"
fi
printf 'python: installing %s into %s\n' "$requirements" "$venv" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --only-binary :all: -q -r "$requirements" >"$log" 2>&1; then
    tail -n 5 "$log" >&2
    fail "pip could not install $requirements into $venv (is the package registry reachable?)"
fi
printf '%s\n' "$PWD/$venv/bin/python"
