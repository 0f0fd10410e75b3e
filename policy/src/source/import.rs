//! `[seccomp] import = "profile.json"` in a TOML policy: the syscall rules of
//! a Docker/OCI seccomp profile or a seccompiler filter, with ffb's own
//! `[filesystem]`, `[network]`, `[limits]`, ... beside them.
//!
//! The path is relative to the TOML file's directory (or absolute). Only a
//! JSON profile can be imported: not an ffb TOML policy, so an import never
//! imports in turn.

use std::path::{Path, PathBuf};

use super::parse_profile;
use crate::sandbox::SandboxPolicy;

/// The policy of the profile that `import` names, for the TOML file at
/// `toml_path`; or what is wrong with it, on one line (the caller places it
/// at the import's position in the TOML file).
pub(super) fn load_import(
    import: &str,
    toml_path: &str,
    kernel: (u32, u32),
) -> Result<SandboxPolicy, String> {
    if import.trim().is_empty() {
        return Err(
            "import = \"\" names no file: give the path of a Docker/OCI seccomp \
                    profile or a seccompiler filter, relative to this file's directory"
                .to_string(),
        );
    }
    let resolved = resolve(import, toml_path);
    let shown = resolved.display().to_string();
    let cannot = |why: String| format!("cannot import '{import}' ({shown}): {why}");
    if resolved.is_dir() {
        return Err(cannot(
            "it is a directory, not a Docker/OCI seccomp profile or a seccompiler filter"
                .to_string(),
        ));
    }
    let text =
        crate::files::read_regular_text(&resolved, crate::files::MAX_POLICY).map_err(cannot)?;
    if !text.trim_start().starts_with('{') {
        return Err(cannot(not_a_profile(&text)));
    }
    let (mut policy, kind) = parse_profile(&text, &shown, kernel).map_err(|e| {
        // The profile's own error already names its file, line and column.
        format!("cannot import '{import}': {e}")
    })?;
    for w in &mut policy.warnings {
        *w = format!("{import}: {w}");
    }
    policy
        .warnings
        .insert(0, format!("syscall rules imported from {import}, {kind}"));
    Ok(policy)
}

/// `import` relative to the TOML file's directory, unless absolute.
fn resolve(import: &str, toml_path: &str) -> PathBuf {
    let dir = Path::new(toml_path).parent().unwrap_or(Path::new(""));
    dir.join(import)
}

/// Why a file that is not a JSON object cannot be imported.
fn not_a_profile(text: &str) -> String {
    let imports = text.parse::<::toml::Table>().ok().and_then(|t| {
        t.get("seccomp")?
            .get("import")?
            .as_str()
            .map(str::to_string)
    });
    match imports {
        Some(inner) => format!(
            "it is an ffb TOML policy that itself imports '{inner}', and an import cannot \
             import: import '{inner}' directly"
        ),
        None if text.trim().is_empty() => "it is empty".to_string(),
        None => "it is not a Docker/OCI seccomp profile or a seccompiler filter (a JSON \
                 object); an ffb TOML policy cannot be imported"
            .to_string(),
    }
}
