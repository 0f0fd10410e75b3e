//! Extension manifests: what a legacy library offers and how far to trust it,
//! in one TOML file, so that nobody types signatures by hand.
//!
//! A manifest names the library, the policy its helper runs under, the kinds
//! of handles it hands out (and the function that frees each), and every
//! function: its signature in the `--sig` syntax, which pointer arguments the
//! foreign code keeps (`retained`; the others are borrowed for the call), and
//! the effects it declares. The declared effects are recorded and shown, but
//! bridge mode still fences every call as the worst case. The format is
//! described in `docs/manifests.md`.
//!
//! ```
//! use ffb_policy::manifest::{Manifest, ManifestPolicy};
//!
//! let text = r#"
//! [library]
//! name = "libz.so.1"
//! policy = "pure"
//!
//! [functions.crc32]
//! sig = "crc32(u64, bytes, u32) -> u64"
//! effects = "pure"
//! "#;
//! let m = Manifest::parse(text, "zlib.toml").unwrap();
//! assert_eq!(m.library, "libz.so.1");
//! assert_eq!(m.policy, ManifestPolicy::Preset("pure".into()));
//! assert_eq!(m.functions[0].signature.to_string(), "crc32(u64, bytes, u32) -> u64");
//! assert!(m.functions[0].declared_effects.is_pure());
//!
//! let e = Manifest::parse(&text.replace("effects", "efects"), "zlib.toml").unwrap_err();
//! assert_eq!(e.to_string(), "zlib.toml:8:1: unknown key 'efects' (did you mean 'effects'?)");
//! ```

use std::path::{Path, PathBuf};

use ffb_abi::effects::EffectSet;
use ffb_abi::signature::Signature;

use crate::diagnostics::PolicyFileError;
use crate::sandbox::{SandboxPolicy, PRESETS};
use crate::source::load_policy;

mod kinds;
mod parse;

pub use kinds::HandleSlot;
#[cfg(test)]
mod tests;

/// A parsed and checked extension manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Where the manifest came from, as given: it names the file in errors.
    pub origin: String,
    /// The library: a soname (`libsqlite3.so.0`) or a path.
    pub library: String,
    /// The policy the library's helper runs under.
    pub policy: ManifestPolicy,
    /// What the library is, for `ffb describe`.
    pub description: Option<String>,
    /// The kinds of handles the library hands out, in file order.
    pub handles: Vec<HandleDecl>,
    /// The functions, in file order.
    pub functions: Vec<FunctionDecl>,
    /// Where the `policy` value is, for errors about the file it names.
    policy_at: (usize, usize),
}

/// The policy a manifest asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestPolicy {
    /// A preset, by name (`pure`, `fs-read`, `db-client`).
    Preset(String),
    /// A policy file, resolved against the manifest's directory.
    File(PathBuf),
}

/// A kind of handle: an opaque pointer the library hands out and frees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleDecl {
    /// The kind's name, as written in `handle<name>`.
    pub name: String,
    /// The declared function that frees a handle of this kind: the first
    /// argument of this kind is the one it frees.
    pub close: String,
    /// The kind whose handles own these: closing a parent invalidates its
    /// children (a statement dies with its connection).
    pub parent: Option<String>,
}

/// One declared function.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDecl {
    /// Its C signature.
    pub signature: Signature,
    /// The effects the manifest declares; the worst case when it says nothing.
    /// Recorded and shown only: bridge mode fences every call as the worst case.
    pub declared_effects: EffectSet,
    /// The 0-based positions of `cstr` and `bytes` arguments whose buffers
    /// the foreign code keeps after the call, sorted; every other pointer is
    /// borrowed.
    pub retained: Vec<usize>,
}

/// Who owns a pointer argument's buffer after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Valid only for the call.
    Borrowed,
    /// Kept by the foreign code: pinned until released.
    Retained,
}

impl Ownership {
    /// `"borrowed"` or `"retained"`.
    pub fn name(self) -> &'static str {
        match self {
            Ownership::Borrowed => "borrowed",
            Ownership::Retained => "retained",
        }
    }
}

impl FunctionDecl {
    /// The function's name (its C symbol).
    pub fn name(&self) -> &str {
        &self.signature.name
    }

    /// Every handle the function takes or hands out, arguments first, then
    /// the return value.
    pub fn handle_slots(&self) -> Vec<HandleSlot<'_>> {
        kinds::handle_slots(&self.signature)
    }

    /// Each pointer argument's position and ownership, in order.
    pub fn pointer_args(&self) -> Vec<(usize, Ownership)> {
        self.signature
            .args
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_pointer())
            .map(|(i, _)| {
                let own = if self.retained.contains(&i) {
                    Ownership::Retained
                } else {
                    Ownership::Borrowed
                };
                (i, own)
            })
            .collect()
    }
}

impl Manifest {
    /// Parses and checks a manifest's text. `origin` names it in errors and
    /// is the path a relative `policy` file is resolved against.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, PolicyFileError> {
        parse::parse(text, origin)
    }

    /// Reads and parses the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, PolicyFileError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text =
            crate::files::read_regular_text(path, crate::files::MAX_MANIFEST).map_err(|e| {
                PolicyFileError::whole(&origin, format!("cannot read the manifest: {e}"))
            })?;
        Manifest::parse(&text, &origin)
    }

    /// The declared function named `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionDecl> {
        self.functions.iter().find(|f| f.name() == name)
    }

    /// The declared function whose name is closest to `name`, for a
    /// "did you mean" when `name` is not declared.
    pub fn closest_function(&self, name: &str) -> Option<&str> {
        let names: Vec<&str> = self.functions.iter().map(FunctionDecl::name).collect();
        parse::closest(name, &names)
    }

    /// The message for a function name this manifest does not declare, with
    /// the closest declared name when there is one.
    pub fn unknown_function(&self, name: &str) -> String {
        match self.closest_function(name) {
            Some(close) => format!(
                "'{name}' is not declared in {} (did you mean '{close}'?)",
                self.origin
            ),
            None => format!(
                "'{name}' is not declared in {} (ffb describe --manifest {} lists its functions)",
                self.origin, self.origin
            ),
        }
    }

    /// The handle kind named `name`.
    pub fn handle(&self, name: &str) -> Option<&HandleDecl> {
        self.handles.iter().find(|h| h.name == name)
    }

    /// The policy spec as [`load_policy`] takes it: the preset's name or the
    /// resolved path.
    pub fn policy_spec(&self) -> String {
        match &self.policy {
            ManifestPolicy::Preset(name) => name.clone(),
            ManifestPolicy::File(path) => path.display().to_string(),
        }
    }

    /// Loads the manifest's policy. An error inside the policy file names
    /// that file; a policy file that cannot be read is reported at the
    /// manifest's `policy` value.
    pub fn load_policy(&self) -> Result<SandboxPolicy, PolicyFileError> {
        let spec = self.policy_spec();
        load_policy(&spec).map_err(|e| {
            if e.line == 0 && e.path == spec {
                let (line, column) = self.policy_at;
                PolicyFileError {
                    path: self.origin.clone(),
                    line,
                    column,
                    message: format!("policy '{spec}': {}", e.message),
                }
            } else {
                e
            }
        })
    }
}

/// Whether `spec` names a preset rather than a file.
fn is_preset(spec: &str) -> bool {
    PRESETS.contains(&spec)
}
