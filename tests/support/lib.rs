//! Support code for ffb's integration tests.
//!
//! * [`fixture_lib`] / [`hostile_lib`]: the C fixtures from `fixtures/`,
//!   compiled into real shared libraries by `build.rs`.
//! * [`ffb_bin`] / [`shim_bin`]: the workspace binaries under test (built
//!   by `cargo build --workspace --bins`, which `scripts/test.sh` runs
//!   first).
//! * [`bridge`]: the one way the tests build a bridge to a fixture, and
//!   the readers for what the fixtures return.
//! * [`procfs`]: `/proc` observers used to assert that the host process
//!   leaks no fds, helpers, zombies or arena mappings.
//! * [`in_process`]: load a fixture directly into the test process, for
//!   differential tests that compare a bridged call against a direct one.
//! * [`cli`]: run the `ffb` binary as a real process under a watchdog and
//!   check its output, for the command-line tests.
//! * [`rng`]: the small seeded generator behind the fuzz tests.
//! * [`postgres`] / [`odbc`]: the private PostgreSQL server and ODBC DSNs
//!   that `scripts/test.sh` starts, and libpq and the ODBC driver manager
//!   loaded in process; without them these panic, naming what is missing.
//!
//! The tests themselves are four binaries (see `tests/integration/main.rs`):
//! `integration` holds every test that can share a process; `errors`,
//! `leaks` and `stress_leaks` each run in a process of their own because
//! they count what the whole process holds.

use std::path::{Path, PathBuf};

pub mod bridge;
pub mod cli;
pub mod in_process;
pub mod odbc;
pub mod postgres;
pub mod procfs;
pub mod python;
pub mod rng;
pub mod sql;
pub mod sql_corpus;

pub use bridge::{bridge_builder, fixture_bridge, hostile_bridge, load_bridge};
pub use procfs::{child_processes, memfd_mappings, open_fds};

/// The number in environment variable `name` (a test's size knob, such as
/// `FFB_STRESS_SCALE`), or `default` if it is unset or not a number.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `tests/fixtures/policies/NAME`.
pub fn fixture_policy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/policies")
        .join(name)
}

/// Docker's default seccomp profile: `shared/fixtures/` beside the repository
/// (`<repo>/../shared`). The repository is this crate's parent directory,
/// taken both as given and with symlinks resolved. Missing, it fails the
/// test with the paths it tried: it is a real input, never skipped.
pub fn docker_default_profile() -> PathBuf {
    const REL: &str = "shared/fixtures/docker-default-seccomp.json";
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut tried = Vec::new();
    for start in [Some(manifest.clone()), manifest.canonicalize().ok()]
        .into_iter()
        .flatten()
    {
        // <repo>/tests -> <repo> -> beside it.
        if let Some(beside) = start.parent().and_then(Path::parent) {
            let candidate = beside.join(REL);
            if candidate.is_file() {
                return candidate;
            }
            tried.push(candidate);
        }
    }
    panic!(
        "Docker's default seccomp profile ({REL}) is not beside the repository; tried {tried:?}"
    );
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_exist_and_load() {
        assert!(fixture_lib().is_file(), "{}", fixture_lib().display());
        assert!(hostile_lib().is_file(), "{}", hostile_lib().display());
        let lib = in_process::InProcess::open(fixture_lib());
        // SAFETY: ffb_add_i64 is `int64_t (int64_t, int64_t)`, wrapping, and
        // defined for every pair of arguments (fixtures/ffb_fixture.h), so a
        // safe fn pointer of that type is sound.
        let add = unsafe { lib.sym::<extern "C" fn(i64, i64) -> i64>("ffb_add_i64") };
        assert_eq!(add(i64::MAX, 1), i64::MIN);
    }
}
