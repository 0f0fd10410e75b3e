#!/usr/bin/env bash
# Coverage-guided fuzzing of ffb's parsers and decoders (cargo-fuzz, libFuzzer).
# The targets live in fuzz/ (its own crate, outside the workspace); each one is
# a thin wrapper over a function in fuzz/entries (ffb-fuzz-entries), whose
# own test (fuzz/entries/tests/replay.rs) feeds every saved corpus entry
# (fuzz/corpus/TARGET/) and every regression input (fuzz/regressions/TARGET/,
# minimized crashes) through the same functions. A crash found by a run lands
# in fuzz/artifacts/TARGET/; minimize it (cargo fuzz tmin) into regressions/.
#
#   scripts/fuzz.sh --install        install cargo-fuzz if it is missing
#   scripts/fuzz.sh --list           list the targets
#   scripts/fuzz.sh --replay         replay every corpus entry and regression
#                                    input as a test (no fuzzing)
#   scripts/fuzz.sh --short          the replay, then each target for a few
#                                    seconds (CI: about 40 s of fuzzing)
#   scripts/fuzz.sh TARGET [ARGS]    run one target; ARGS go to libFuzzer
#                                    (e.g. -max_total_time=600 -runs=10000000)
#
# cargo-fuzz needs nightly features; the machine has only the stable
# toolchain, so RUSTC_BOOTSTRAP=1 lets stable accept them. The install step is
# idempotent: `cargo install cargo-fuzz --locked` runs only when `cargo fuzz`
# is not there.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
# Seconds each target runs under --short: nine targets, about 40 s in all.
SHORT_SECONDS=${FFB_FUZZ_SHORT_SECONDS:-4}

fail() {
    printf 'fuzz: %s\n' "$*" >&2
    exit 1
}

ensure_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        return
    fi
    printf 'fuzz: installing cargo-fuzz\n' >&2
    cargo install cargo-fuzz --locked
    cargo fuzz --version >/dev/null 2>&1 || fail "cargo-fuzz did not install"
}

targets() {
    cargo fuzz list --fuzz-dir fuzz
}

# Runs one target with its saved corpus (new finds go to a scratch
# directory, so a CI pass leaves the tree unchanged) and the given
# libFuzzer arguments. A crash input lands in fuzz/artifacts/TARGET/.
run_target() {
    local target=$1
    shift
    local corpus=fuzz/corpus/$target
    [[ -d $corpus ]] || fail "no corpus directory $corpus"
    # FFB_FUZZ_WORK=DIR keeps a long run's finds in DIR/TARGET (for the next
    # run); without it they go to a scratch directory removed afterwards.
    local scratch keep=
    if [[ -n ${FFB_FUZZ_WORK:-} ]]; then
        scratch=$FFB_FUZZ_WORK/$target keep=1
        mkdir -p "$scratch"
    else
        scratch=$(mktemp -d "${TMPDIR:-/tmp}/ffb-fuzz-$target.XXXXXX")
    fi
    # `--` separates cargo-fuzz's options from libFuzzer's. The scratch
    # corpus comes first: libFuzzer writes new inputs to its first directory.
    local rc=0
    cargo fuzz run --fuzz-dir fuzz "$target" "$scratch" "$corpus" -- \
        -artifact_prefix="fuzz/artifacts/$target/" "$@" || rc=$?
    [[ -n $keep ]] || rm -rf "$scratch"
    return "$rc"
}

# The corpus and regression inputs through the same functions the targets
# call, as an ordinary cargo test of fuzz/entries (no sanitizer, no nightly
# features). Not --locked: fuzz/Cargo.lock follows the root one, and a
# dependency added to a workspace crate is added here on the next build.
replay() {
    cargo test --manifest-path fuzz/Cargo.toml -p ffb-fuzz-entries
}

case ${1:-} in
--install)
    ensure_cargo_fuzz
    ;;
--list)
    ensure_cargo_fuzz
    targets
    ;;
--replay)
    replay
    ;;
--short)
    replay
    ensure_cargo_fuzz
    cargo fuzz build --fuzz-dir fuzz
    for target in $(targets); do
        mkdir -p "fuzz/artifacts/$target"
        printf '\n== fuzz %s (%s s)\n' "$target" "$SHORT_SECONDS" >&2
        run_target "$target" -max_total_time="$SHORT_SECONDS" -print_final_stats=1
    done
    ;;
"" | -h | --help)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    ;;
-*)
    fail "unknown option $1 (see scripts/fuzz.sh --help)"
    ;;
*)
    ensure_cargo_fuzz
    target=$1
    shift
    mkdir -p "fuzz/artifacts/$target"
    run_target "$target" "$@"
    ;;
esac
