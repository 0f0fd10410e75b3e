//! The wire between host and helper: the shared arena's layout
//! ([`layout`]), the ops and statuses of a request ([`ops`]), fetch
//! programs ([`fetch`]), the spawn request the fork server receives
//! ([`spawn`]), the messages of the handshake that follows
//! ([`handshake`]), and the Python host's request and reply documents
//! ([`python`]).
//!
//! Host and helper must come from the same build: [`WIRE_VERSION`] travels
//! in every spawn request, and a mismatch is refused at spawn, never guessed
//! at. The JSON encoding of the two messages lives here too
//! ([`SpawnRequest::encode`], [`HelperMessage::decode`], ...), so neither
//! side spells the format itself.
//!
//! The items most code needs are re-exported here, so `wire::Op` and
//! `wire::CONTROL_SIZE` name the same things as their module paths.

pub mod fetch;
pub mod handshake;
pub mod layout;
pub mod ops;
pub mod python;
pub mod spawn;

pub use handshake::{HelperMessage, LoadFailureKind, MAX_HANDSHAKE};
pub use layout::{
    align_up, Control, HelperLine, HostLine, ProgressLine, BUFFER_ALIGN, CONTROL_SIZE,
    MAX_WIRE_ARGS, MESSAGE_CAPACITY, MESSAGE_OFFSET, MIN_ARENA,
};
pub use ops::{Op, Status, LOADED_SEQ};
pub use spawn::{
    DecodeError, ExitReport, OwnIdentity, SpawnReply, SpawnRequest, OWN_ID_BASE, SPAWN_FDS,
    WIRE_VERSION,
};
