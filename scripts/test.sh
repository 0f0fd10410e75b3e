#!/usr/bin/env bash
# Runs ffb's whole test suite, and the checks that keep the tree clean:
# formatting, clippy (warnings are errors, `undocumented_unsafe_blocks`
# among them), and the docs (broken links are errors). Then it builds the
# binaries the integration tests drive (ffb, ffb-shim) and runs every unit,
# integration and doc test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
step "cargo build --bins"
cargo build --workspace --bins --locked
step "cargo test"
# Doc examples run real helpers: they find the freshly built ffb-shim here.
export FFB_SHIM="$PWD/target/debug/ffb-shim"
cargo test --workspace --locked "$@"
