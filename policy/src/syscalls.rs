//! Syscall names and numbers for x86_64, the only architecture the helper runs on.
//!
//! ```
//! use ffb_policy::syscalls::{name_of, number_of};
//! assert_eq!(number_of("execve"), Some(59));
//! assert_eq!(name_of(59), Some("execve"));
//! assert_eq!(number_of("no_such_call"), None);
//! ```

use crate::syscall_table::SYSCALLS;

/// The number of the syscall called `name`, if x86_64 has one.
pub fn number_of(name: &str) -> Option<i64> {
    SYSCALLS.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

/// The name of syscall `nr`. x32-ABI numbers (bit 30 set) have no name here:
/// the helper never uses that ABI, so any such call is reported by number.
pub fn name_of(nr: i64) -> Option<&'static str> {
    SYSCALLS
        .binary_search_by_key(&nr, |(_, n)| *n)
        .ok()
        .map(|i| SYSCALLS[i].0)
}

/// A printable name for `nr`: its name, or `syscall_<nr>` when it has none.
pub fn display_name(nr: i64) -> String {
    match name_of(nr) {
        Some(name) => name.to_string(),
        None => format!("syscall_{nr}"),
    }
}

/// Every known syscall name, in number order.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    SYSCALLS.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in SYSCALLS.windows(2) {
            assert!(pair[0].1 < pair[1].1, "{:?} then {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn well_known_numbers() {
        for (name, nr) in [
            ("read", 0),
            ("write", 1),
            ("openat", 257),
            ("socket", 41),
            ("clone", 56),
            ("clone3", 435),
            ("kill", 62),
            ("tgkill", 234),
            ("io_uring_setup", 425),
            ("seccomp", 317),
        ] {
            assert_eq!(number_of(name), Some(nr), "{name}");
            assert_eq!(name_of(nr), Some(name));
        }
        assert_eq!(display_name(0x4000_0000), "syscall_1073741824");
    }
}
