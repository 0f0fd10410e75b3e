//! # ffb-contract
//!
//! Everything that crosses between ffb's host and its helper, and nothing
//! else. The helper (`ffb-shim`) depends on this crate alone, so it stays
//! small enough to read next to the hostile library it hosts.
//!
//! * [`wire`]: the shared arena's layout, the ops and statuses, the spawn
//!   request and the handshake messages, and their encoding.
//! * [`fds`]: where a helper finds the fds it was sent.
//! * [`exit`]: what the shim's exit codes mean.
//! * [`handoff`]: the spin-then-sleep wait both sides run on the arena, and
//!   [`spin`], the adaptive budget it spins for.
//! * [`sys`]: the futex, `SCM_RIGHTS` and raw-write wrappers both sides use.
//! * [`artefacts`]: what the host compiles for a helper and the helper
//!   applies: the BPF program, the Landlock rules, limits, namespaces and
//!   identity.
//! * [`signature`]: C signatures (re-exported from `ffb-abi`), which the
//!   helper parses to build each call.
#![deny(missing_docs)]

pub mod artefacts;
pub mod exit;
pub mod fds;
pub mod handoff;
pub mod spin;
pub mod sys;
pub mod wire;

pub use ffb_abi::signature;
