//! Loading a library from its extension manifest
//! ([`ffb_policy::manifest::Manifest`]): every function it declares, its
//! handle kinds with their closers and parents, and the buffers the library
//! retains, applied to a [`BridgeBuilder`] in one step.
//!
//! ```
//! use ffb_loader::{Bridge, BridgeMode, Manifest, Value};
//!
//! let text = r#"
//! [library]
//! name = "libz.so.1"
//! policy = "pure"
//! [functions.crc32]
//! sig = "crc32(u64, bytes, u32) -> u64"
//! effects = "pure"
//! "#;
//! let manifest = Manifest::parse(text, "zlib.toml").unwrap();
//! let mut z = Bridge::from_manifest(&manifest)?
//! #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
//!     .bridge_mode(BridgeMode::Enabled)
//!     .load()?;
//! let out = z.call_by_name("crc32", &[Value::U64(0), Value::bytes("hello"), Value::U32(5)])?;
//! assert_eq!(out.ret, Value::U64(0x3610a686));
//! # Ok::<(), ffb_loader::Error>(())
//! ```

use ffb_policy::manifest::Manifest;

use crate::bridge::{Bridge, BridgeBuilder};
use crate::error::{Error, ErrorKind, Result};

impl Bridge {
    /// A builder for the manifest's library, under the manifest's policy,
    /// with everything the manifest declares (see [`BridgeBuilder::manifest`]).
    /// A policy that cannot be loaded is a `load_failed` error naming its
    /// file, line and column.
    pub fn from_manifest(manifest: &Manifest) -> Result<BridgeBuilder> {
        let policy = manifest
            .load_policy()
            .map_err(|e| Error::new(ErrorKind::LoadFailed, e.to_string()))?;
        Bridge::builder(manifest.library.clone())
            .policy(policy)
            .manifest(manifest)
    }
}

impl BridgeBuilder {
    /// Declares every function of `manifest`, with its handle kinds (what
    /// closes each, and which parent's closing invalidates it) and the
    /// argument buffers the library retains. The library and the policy are
    /// the builder's own: [`Bridge::from_manifest`] takes both from the manifest.
    pub fn manifest(self, manifest: &Manifest) -> Result<Self> {
        let mut b = self;
        for f in &manifest.functions {
            b = b.declare(f.signature.to_string());
            for &arg in &f.retained {
                b = b.retain(f.name(), arg);
            }
        }
        for h in &manifest.handles {
            b = b.handle_kind(&h.name, Some(&h.close), h.parent.as_deref());
        }
        Ok(b)
    }
}
