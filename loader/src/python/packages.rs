//! Which files of an environment's site-packages a Python helper may read:
//! the allowed modules' distributions and everything they require,
//! transitively, as their `*.dist-info` metadata says.
//!
//! This is decided on the host, from the files alone (no Python code runs
//! here), before the helper exists: it becomes the helper's Landlock rules.
//! The directories themselves can be listed, so that imports can look for
//! modules, but only the granted entries can be opened.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ffb_policy::files::read_regular_text;

/// The largest `METADATA`, `RECORD` or `top_level.txt` read (pyarrow's
/// RECORD is about 300 KB).
const MAX_METADATA: u64 = 8 << 20;

/// One installed distribution.
#[derive(Debug)]
struct Distribution {
    /// Its `*.dist-info` directory.
    info: PathBuf,
    /// The names it installs at the top of site-packages (`numpy`,
    /// `numpy.libs`, `six.py`).
    entries: BTreeSet<String>,
    /// The importable top-level modules among them.
    modules: BTreeSet<String>,
    /// Normalized names of the distributions it requires (extras aside).
    requires: Vec<String>,
}

/// What a helper may read for a set of allowed modules.
#[derive(Debug, Default)]
pub(super) struct Grants {
    /// Files and directories to read (whole trees).
    pub read: Vec<PathBuf>,
    /// Top-level module names the import allowlist lets through.
    pub modules: BTreeSet<String>,
}

/// The distributions of every site directory, by normalized name.
fn distributions(site: &[PathBuf]) -> Result<BTreeMap<String, Distribution>, String> {
    let mut found = BTreeMap::new();
    for dir in site {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".dist-info") else {
                continue;
            };
            let dist_name = stem.split('-').next().unwrap_or(stem);
            let info = entry.path();
            let dist = read_distribution(dir, &info)?;
            found.entry(normalize(dist_name)).or_insert(dist);
        }
    }
    Ok(found)
}

fn read_distribution(site: &Path, info: &Path) -> Result<Distribution, String> {
    let record = read_regular_text(&info.join("RECORD"), MAX_METADATA).unwrap_or_default();
    let mut entries = BTreeSet::new();
    for line in record.lines() {
        let path = line.split(',').next().unwrap_or("");
        let top = path.split('/').next().unwrap_or("");
        if top.is_empty()
            || top.starts_with("..")
            || top.ends_with(".dist-info")
            || top == "__pycache__"
        {
            continue;
        }
        if site.join(top).exists() {
            entries.insert(top.to_string());
        }
    }
    let mut modules: BTreeSet<String> = entries.iter().filter_map(|e| module_name(e)).collect();
    if let Ok(top_level) = read_regular_text(&info.join("top_level.txt"), MAX_METADATA) {
        modules.extend(
            top_level
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    let metadata = read_regular_text(&info.join("METADATA"), MAX_METADATA)
        .map_err(|e| format!("{}: {e}", info.join("METADATA").display()))?;
    let requires = metadata
        .lines()
        .filter_map(|l| l.strip_prefix("Requires-Dist:"))
        .filter(|r| !r.contains("extra =="))
        .filter_map(|r| {
            let name: String = r
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            (!name.is_empty()).then(|| normalize(&name))
        })
        .collect();
    Ok(Distribution {
        info: info.to_path_buf(),
        entries,
        modules,
        requires,
    })
}

/// The module a top-level site-packages entry provides, if any: a package
/// directory, `name.py`, or an extension module `name.cpython-311-....so`.
fn module_name(entry: &str) -> Option<String> {
    let name = entry
        .strip_suffix(".py")
        .or_else(|| entry.find(".cpython-").map(|i| &entry[..i]))
        .or_else(|| entry.strip_suffix(".abi3.so"))
        .or_else(|| entry.strip_suffix(".so"))
        .unwrap_or(entry);
    let valid = !name.is_empty()
        && !name.contains('.')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    valid.then(|| name.to_string())
}

/// PEP 503's normal form of a distribution name.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_dash {
                out.push('-');
            }
            last_dash = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_dash = false;
        }
    }
    out
}

/// The grants for `allowed` top-level modules found in `site`. A name no
/// distribution provides is returned in the error list (the caller may
/// find it elsewhere: the standard library, a module path).
pub(super) fn grants(
    site: &[PathBuf],
    allowed: &[String],
) -> Result<(Grants, Vec<String>), String> {
    let dists = distributions(site)?;
    let mut wanted: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for module in allowed {
        match dists.iter().find(|(_, d)| d.modules.contains(module)) {
            Some((name, _)) => wanted.push(name.clone()),
            None => unknown.push(module.clone()),
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Grants::default();
    while let Some(name) = wanted.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(dist) = dists.get(&name) else {
            // A requirement that is not installed: the import will fail
            // with its own ImportError, as it would outside the sandbox.
            continue;
        };
        let site_dir = dist.info.parent().unwrap_or(Path::new("/"));
        out.read.push(dist.info.clone());
        out.read
            .extend(dist.entries.iter().map(|e| site_dir.join(e)));
        out.modules.extend(dist.modules.iter().cloned());
        wanted.extend(dist.requires.iter().cloned());
    }
    Ok((out, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_as_pep_503_says() {
        assert_eq!(normalize("Python_Dateutil"), "python-dateutil");
        assert_eq!(normalize("a.-_b"), "a-b");
    }

    #[test]
    fn module_names_come_from_entries() {
        assert_eq!(module_name("numpy").as_deref(), Some("numpy"));
        assert_eq!(module_name("six.py").as_deref(), Some("six"));
        assert_eq!(
            module_name("_cffi_backend.cpython-311-x86_64-linux-gnu.so").as_deref(),
            Some("_cffi_backend")
        );
        assert_eq!(module_name("numpy.libs"), None);
        assert_eq!(module_name("distutils-precedence.pth"), None);
    }

    #[test]
    fn requirements_are_followed_and_extras_are_not() {
        let dir = std::env::temp_dir().join(format!("ffb-packages-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |p: &str, text: &str| {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("top/__init__.py", "");
        write("top-1.0.dist-info/RECORD", "top/__init__.py,,\n");
        write(
            "top-1.0.dist-info/METADATA",
            "Name: top\nRequires-Dist: Low_Level>=1\nRequires-Dist: extra-thing; extra == \"x\"\n",
        );
        write("low/__init__.py", "");
        write("low.libs/libx.so", "");
        write(
            "low_level-2.0.dist-info/RECORD",
            "low/__init__.py,,\nlow.libs/libx.so,,\n",
        );
        write("low_level-2.0.dist-info/METADATA", "Name: low-level\n");
        write("extra/__init__.py", "");
        write("extra_thing-1.0.dist-info/RECORD", "extra/__init__.py,,\n");
        write("extra_thing-1.0.dist-info/METADATA", "Name: extra-thing\n");
        let (g, unknown) = grants(
            std::slice::from_ref(&dir),
            &["top".into(), "nowhere".into()],
        )
        .unwrap();
        assert_eq!(unknown, vec!["nowhere".to_string()]);
        assert!(
            g.modules.contains("top") && g.modules.contains("low"),
            "{g:?}"
        );
        assert!(!g.modules.contains("extra"), "{g:?}");
        assert!(g.read.contains(&dir.join("low.libs")), "{g:?}");
        assert!(!g.read.contains(&dir.join("extra")), "{g:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
