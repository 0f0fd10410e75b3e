#!/usr/bin/env bash
# Runs ffb's whole test suite: builds the binaries the integration tests
# drive (ffb, ffb-shim), then every unit, integration and doc test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
