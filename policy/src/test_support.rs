//! What the unit tests share: fixture paths, syscall numbers, and running a
//! compiled filter through the BPF interpreter.

use crate::bpf::interp::evaluate;
use crate::sandbox::CompiledFilter;
use crate::syscalls::number_of;

/// No arguments at all.
pub(crate) const NONE: [u64; 6] = [0; 6];

/// The path of a policy fixture shared with the integration tests.
pub(crate) fn fixture(name: &str) -> String {
    format!(
        "{}/../tests/fixtures/policies/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The number of a syscall the test names.
pub(crate) fn nr(name: &str) -> i64 {
    number_of(name).unwrap_or_else(|| panic!("no syscall '{name}'"))
}

/// The first three arguments; the rest are 0.
pub(crate) fn args(a0: u64, a1: u64, a2: u64) -> [u64; 6] {
    [a0, a1, a2, 0, 0, 0]
}

/// The action word `filter` returns for the call, as the interpreter runs it.
pub(crate) fn run(filter: &CompiledFilter, nr: i64, args: &[u64; 6]) -> u32 {
    evaluate(filter, nr, args).unwrap_or_else(|e| panic!("the interpreter refused the filter: {e}"))
}
