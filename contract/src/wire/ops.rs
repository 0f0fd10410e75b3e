//! What the host can ask for in the host line, and what the helper can
//! answer in the helper line. Both travel as `u32`; the host checks every
//! status it reads, since the helper line is hostile.

/// A `#[repr(u32)]` enum with `from_u32`, which decodes a wire value with a
/// plain `match` (the host decodes a status on every call).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $value:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$variant_meta])* $variant = $value,)*
        }

        impl $name {
            /// The value for a wire word, if it is one.
            pub fn from_u32(v: u32) -> Option<$name> {
                match v {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

wire_enum! {
    /// Operations the host can request.
    ///
    /// ```
    /// use ffb_contract::wire::Op;
    /// assert_eq!(Op::from_u32(Op::Batch as u32), Some(Op::Batch));
    /// assert_eq!(Op::from_u32(0), None);
    /// ```
    pub enum Op {
        /// Call function `func` with `nargs` argument words.
        Call = 1,
        /// Declare one more function: its signature text is at the start of the
        /// data area and `args[0]` is its length. The response's `ret` is its index.
        Declare = 2,
        /// Run `nargs` calls in order. Their records start at the data area, each
        /// `func | nargs << 32` followed by `nargs` argument words; `args[0]` is
        /// the offset of the results, one 64-bit word per call. `completed`
        /// counts the calls done.
        Batch = 3,
        /// Run a fetch program ([`fetch`](super::fetch)): its request is in
        /// `args` (indices in [`fetch::arg`](super::fetch::arg)), its answer and
        /// page where `args` say. `ret` is unused.
        Fetch = 4,
    }
}

wire_enum! {
    /// Response status codes.
    ///
    /// ```
    /// use ffb_contract::wire::Status;
    /// assert_eq!(Status::from_u32(Status::BadRequest as u32), Some(Status::BadRequest));
    /// assert_eq!(Status::from_u32(7), None);
    /// ```
    pub enum Status {
        /// The call ran; `ret` holds its return value.
        Ok = 0,
        /// A declared symbol was not found; the message says which.
        SymbolNotFound = 1,
        /// A declared signature did not parse or libffi refused it.
        BadSignature = 2,
        /// The request was malformed (a host bug, or a scribbled arena).
        BadRequest = 3,
    }
}

/// The `resp_seq` with which the helper reports the end of its loading
/// phase, in place of an answer: `status` is [`Status::Ok`] when the
/// library is loaded and every function resolved, [`Status::SymbolNotFound`]
/// or [`Status::BadSignature`] with `ret` the index of the function that
/// failed, or [`Status::BadRequest`] when `dlopen` itself failed; the
/// message area holds the helper's own words, if any. The helper then writes
/// the wake eventfd. The host's requests are numbered from 1 and never reach
/// this value while loading.
///
/// This report is in the arena, not on the control socket, because the
/// socket is closed before `dlopen`: a constructor can find the arena and
/// scribble here too, so the host builds every message from its own
/// declarations and quotes the helper's text only as the helper's.
pub const LOADED_SEQ: u32 = u32::MAX;
