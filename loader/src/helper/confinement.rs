//! What a helper may reach on the filesystem and the network: the
//! Landlock rules the host derives from its policy and the library it loads.

use std::path::{Path, PathBuf};

use ffb_contract::artefacts::{FsSpec, LandlockSpec};
use ffb_policy::sandbox::SandboxPolicy;

/// System directories the dynamic loader reads from.
const LOADER_PATHS: &[&str] = &[
    "/etc/ld.so.cache",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
];

/// Landlock rules for a policy: its own paths and ports, plus what loading
/// the library and its preloads (each a soname or a canonical path) reads. Nothing for a
/// policy that does not confine: only an imported profile relaxed, explicitly
/// and linted, with `[filesystem] unconfined = true`. An imported profile as
/// it is confines: it may read the loader's directories and write nothing.
pub(super) fn landlock_spec(
    policy: &SandboxPolicy,
    library: &str,
    preload: &[String],
    list: &[PathBuf],
) -> LandlockSpec {
    if !policy.confine {
        return LandlockSpec::default();
    }
    let mut read = policy.filesystem.read.clone();
    let mut extra: Vec<PathBuf> = LOADER_PATHS.iter().map(PathBuf::from).collect();
    for loaded in std::iter::once(library).chain(preload.iter().map(String::as_str)) {
        if loaded.contains('/') {
            extra.extend(Path::new(loaded).parent().map(PathBuf::from));
        }
    }
    if let Ok(dirs) = std::env::var("LD_LIBRARY_PATH") {
        extra.extend(dirs.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
    }
    read.extend(extra.into_iter().filter(|p| p.exists()));
    let required = !policy.filesystem.read.is_empty()
        || !list.is_empty()
        || !policy.filesystem.write.is_empty()
        || !policy.network.is_empty();
    LandlockSpec {
        fs: Some(FsSpec {
            read,
            write: policy.filesystem.write.clone(),
            list: list.to_vec(),
        }),
        net: Some(policy.network.clone()),
        required,
    }
}
