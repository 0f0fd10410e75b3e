//! # ffb-contract
//!
//! Everything that crosses between ffb's host and its helper, and nothing
//! else. The helper (`ffb-shim`) depends on this crate alone, so it stays
//! small enough to read next to the hostile library it hosts.
//!
//! * [`wire`]: the shared arena's layout, the ops and statuses, the spawn
//!   request and the handshake messages.
//! * [`artefacts`]: what the host compiles for a helper and the helper
//!   applies: the BPF program, the Landlock rules, limits, namespaces and
//!   identity.
//! * [`spin`]: the adaptive spin budget both sides use for the handoff.
//! * [`signature`]: C signatures (re-exported from `ffb-abi`), which the
//!   helper parses to build each call.
#![deny(missing_docs)]

pub mod artefacts;
pub mod spin;
pub mod wire;

pub use ffb_abi::signature;
