//! A driver helper's policy: the driver's shipped base policy
//! (`manifests/*.policy.toml`, compiled into the loader so a driver works
//! from any directory) with the grants its target reaches added.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use ffb_policy::grants::Grants;
use ffb_policy::sandbox::SandboxPolicy;

/// The shipped policy `text`, read from the file `path` names (for its
/// errors).
pub(super) fn parse(text: &str, path: &str) -> Result<SandboxPolicy> {
    ffb_policy::source::parse_toml_policy(text, path)
        .map_err(|e| Error::new(ErrorKind::BadArgument, format!("{path}: {e}")))
}

/// `base` with `grants`, named `name` (the driver), as audit lines and
/// errors show it.
pub(super) fn with_grants(
    base: SandboxPolicy,
    grants: &Grants,
    name: &str,
) -> Result<SandboxPolicy> {
    let mut p = base
        .with_grants(grants)
        .map_err(|e| Error::new(ErrorKind::BadArgument, format!("{name} policy: {e}")))?;
    p.name = name.to_string();
    Ok(p)
}

/// The paths of `paths` that exist: Landlock cannot grant one that does
/// not, and the library reports a missing file in its own words.
pub(super) fn existing(paths: impl IntoIterator<Item = PathBuf>) -> impl Iterator<Item = PathBuf> {
    paths.into_iter().filter(|p| p.exists())
}
