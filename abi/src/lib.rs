//! # ffb-abi
//!
//! What a foreign function declares at Molt's Foreign Function Boundary:
//!
//! * [`signature`]: its C signature, `name(type, ...) -> ret`, which both the
//!   host (to lay out arguments) and the helper (to build the libffi call) read.
//! * [`effects`]: its effect set (`pure`, `alloc`, `io`, `mutates`, `throws`,
//!   `nondet`), and the worst case that bridge mode enforces on every call.
//!
//! Pure data and parsers: nothing here touches the kernel. Both notations
//! are read with one character cursor (`cursor`, crate-private), so their
//! errors point at columns and describe what was found in the same words.
#![deny(missing_docs)]

mod cursor;
pub mod effects;
pub mod signature;
