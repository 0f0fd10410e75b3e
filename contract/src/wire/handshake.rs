//! What a new helper tells the host on its control socket (fd
//! [`crate::fds::CONTROL`]) while it locks itself down: where its seccomp
//! listener is, or why lockdown failed. One JSON record per message.
//!
//! The helper closes the socket once the host has taken the listener,
//! before `dlopen`: no code of the library ever runs while the socket is
//! open, so nothing on it can be the library's. How loading ended travels in
//! the arena instead ([`LOADED_SEQ`](super::LOADED_SEQ)), where the host
//! treats it as the helper's claim.

use serde::{Deserialize, Serialize};

/// Messages from the helper on the control socket during the handshake.
///
/// ```
/// use ffb_contract::wire::{HelperMessage, LoadFailureKind};
/// let failed = HelperMessage::Failed {
///     kind: LoadFailureKind::SymbolNotFound,
///     message: "symbol 'f' not found in the library".into(),
/// };
/// let bytes = failed.encode();
/// assert!(String::from_utf8_lossy(&bytes).contains(r#""kind":"symbol_not_found""#));
/// assert!(matches!(
///     HelperMessage::decode(&bytes),
///     Ok(HelperMessage::Failed { kind: LoadFailureKind::SymbolNotFound, .. })
/// ));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelperMessage {
    /// The filter is installed and its listener is fd `listener_fd` in the
    /// helper: the host takes it with `pidfd_getfd` and answers with one byte.
    Listener {
        /// fd number in the helper.
        listener_fd: i32,
    },
    /// Locking down failed, before anything of the library was loaded.
    Failed {
        /// Which step failed.
        kind: LoadFailureKind,
        /// What went wrong, for the user.
        message: String,
    },
}

/// Why a helper could not start serving. The host reports each as the error
/// kind of the same name. Sent on the control socket only before the
/// library is loaded (then always [`LoadFailureKind::LoadFailed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadFailureKind {
    /// Mapping the arena, locking down, or loading the library failed.
    LoadFailed,
    /// A declared symbol is not in the library.
    SymbolNotFound,
    /// A declared signature did not parse, or libffi refused it.
    BadSignature,
}

impl HelperMessage {
    /// The message as it travels.
    pub fn encode(&self) -> Vec<u8> {
        // Plain strings, numbers and unit variants: serializing cannot fail.
        serde_json::to_vec(self).expect("a handshake message always serializes")
    }

    /// Reads one message.
    pub fn decode(bytes: &[u8]) -> serde_json::Result<HelperMessage> {
        serde_json::from_slice(bytes)
    }
}

/// Largest handshake message the host accepts.
pub const MAX_HANDSHAKE: usize = 8192;
