//! Support code for ffb's integration tests.
//!
//! * [`fixture_lib`] / [`hostile_lib`]: the C fixtures from `fixtures/`,
//!   compiled into real shared libraries by `build.rs`.
//! * [`ffb_bin`] / [`shim_bin`]: the workspace binaries under test (built
//!   by `cargo build --workspace --bins`, which `scripts/test.sh` runs
//!   first).
//! * [`open_fds`], [`child_processes`], [`memfd_mappings`]: `/proc`
//!   observers used to assert that the host process leaks no fds,
//!   helpers, zombies or arena mappings.
//! * [`in_process`]: load a fixture directly into the test process, for
//!   differential tests that compare a bridged call against a direct one.

use std::fs;
use std::path::{Path, PathBuf};

/// Path of `libffb_fixture.so`, the well-behaved ABI-matrix fixture
/// (`fixtures/ffb_fixture.c`).
pub fn fixture_lib() -> &'static Path {
    Path::new(env!("FFB_FIXTURE_LIB"))
}

/// Path of `libffb_hostile.so`, the hostile corpus
/// (`fixtures/ffb_hostile.c`).
pub fn hostile_lib() -> &'static Path {
    Path::new(env!("FFB_HOSTILE_LIB"))
}

/// The cargo target profile directory (`target/<profile>`, or
/// `target/<triple>/<profile>` when cross-compiling) that the running test
/// binary lives in.
///
/// Test binaries run from `target/<profile>/deps/<bin>`; examples from
/// `target/<profile>/examples/<bin>`. Anything else is assumed to sit
/// directly in the profile directory.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("ffb-tests: cannot determine current_exe()");
    let mut dir = exe
        .parent()
        .unwrap_or_else(|| panic!("ffb-tests: current_exe {} has no parent", exe.display()))
        .to_path_buf();
    if matches!(
        dir.file_name().and_then(|n| n.to_str()),
        Some("deps") | Some("examples")
    ) {
        dir.pop();
    }
    dir
}

fn workspace_bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.is_file() {
        panic!(
            "{name} not found at {}: run `cargo build --workspace --bins` (scripts/test.sh does this) before the tests",
            path.display()
        );
    }
    path
}

/// `target_dir()/ffb`, the ffb command-line binary.
///
/// # Panics
/// If it has not been built.
pub fn ffb_bin() -> PathBuf {
    workspace_bin("ffb")
}

/// `target_dir()/ffb-shim`, the sandboxed helper binary.
///
/// # Panics
/// If it has not been built, with a message saying how to build it.
pub fn shim_bin() -> PathBuf {
    workspace_bin("ffb-shim")
}

/// The open file descriptors of this process with their `readlink`
/// targets (e.g. `socket:[1234]`, `/memfd:ffb-arena (deleted)`), sorted by
/// fd.
///
/// The directory fd used to list `/proc/self/fd` is closed before the
/// links are read, so it does not appear in the result.
pub fn open_fds() -> Vec<(i32, String)> {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .expect("ffb-tests: cannot read /proc/self/fd")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    let mut out: Vec<(i32, String)> = fds
        .into_iter()
        .filter_map(|fd| {
            fs::read_link(format!("/proc/self/fd/{fd}"))
                .ok()
                .map(|t| (fd, t.to_string_lossy().into_owned()))
        })
        .collect();
    out.sort();
    out
}

/// Every process whose parent is this process: `(pid, state, comm)`, where
/// `state` is the one-letter state from `/proc/PID/stat` (`R`, `S`, `Z`
/// for a zombie, ...). Sorted by pid.
///
/// Only thread-group leaders are listed (threads of this process are not
/// children).
pub fn child_processes() -> Vec<(i32, char, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // The process may exit between listing and reading: skip it.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((ppid, state, comm)) = parse_stat(&stat) {
            if ppid == me {
                out.push((pid, state, comm));
            }
        }
    }
    out.sort();
    out
}

/// Parses `pid (comm) state ppid ...` into `(ppid, state, comm)`. `comm`
/// may itself contain spaces and parentheses, so the fields are taken
/// after the *last* `)`.
fn parse_stat(stat: &str) -> Option<(i32, char, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, state, comm))
}

/// Number of lines in `/proc/self/maps` that contain `memfd:`, i.e. the
/// memfd-backed mappings (shared arenas) this process currently holds.
pub fn memfd_mappings() -> usize {
    fs::read_to_string("/proc/self/maps")
        .expect("ffb-tests: cannot read /proc/self/maps")
        .lines()
        .filter(|l| l.contains("memfd:"))
        .count()
}

/// Direct, in-process loading of a fixture, for differential tests: call
/// the same function through ffb and directly, and compare.
///
/// Only use this with [`fixture_lib`](crate::fixture_lib()) (or functions
/// of the hostile corpus that are known to be harmless): whatever the
/// library does happens to the test process itself.
pub mod in_process {
    use std::path::Path;

    /// A shared library `dlopen`ed into the test process.
    pub struct InProcess {
        lib: libloading::Library,
    }

    impl InProcess {
        /// `dlopen`s `path`.
        ///
        /// # Panics
        /// If the library cannot be loaded.
        pub fn open(path: impl AsRef<Path>) -> Self {
            let path = path.as_ref();
            // SAFETY: the fixtures have no initialisers with side effects.
            let lib = unsafe { libloading::Library::new(path) }
                .unwrap_or_else(|e| panic!("ffb-tests: cannot dlopen {}: {e}", path.display()));
            InProcess { lib }
        }

        /// Looks up `name`, e.g.
        /// `lib.sym::<unsafe extern "C" fn(i64, i64) -> i64>("ffb_add_i64")`.
        ///
        /// # Safety
        /// `T` must match the C signature of the symbol exactly; calling
        /// through a mismatched type is undefined behaviour.
        ///
        /// # Panics
        /// If the symbol is missing.
        pub unsafe fn sym<T>(&self, name: &str) -> libloading::Symbol<'_, T> {
            self.lib
                .get(name.as_bytes())
                .unwrap_or_else(|e| panic!("ffb-tests: symbol {name} not found: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_odd_comm() {
        let s = "123 (a) b) (c) S 456 123 123 0 -1 4194560";
        assert_eq!(parse_stat(s), Some((456, 'S', "a) b) (c".to_string())));
    }

    #[test]
    fn fixtures_exist_and_load() {
        assert!(fixture_lib().is_file(), "{}", fixture_lib().display());
        assert!(hostile_lib().is_file(), "{}", hostile_lib().display());
        let lib = in_process::InProcess::open(fixture_lib());
        let add = unsafe { lib.sym::<unsafe extern "C" fn(i64, i64) -> i64>("ffb_add_i64") };
        assert_eq!(unsafe { add(i64::MAX, 1) }, i64::MIN);
    }

    #[test]
    fn proc_observers_work() {
        assert!(open_fds().iter().any(|(fd, _)| *fd <= 2));
        let _ = child_processes();
        let _ = memfd_mappings();
    }
}
