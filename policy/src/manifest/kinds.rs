//! Where a signature carries handles, and of which kind: the one place
//! that reads the signature grammar's handle types for manifests.

use ffb_abi::signature::{ArgType, Pointee, RetType, Signature};

/// One place a signature passes or returns a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleSlot<'a> {
    /// The 0-based argument position; `None` for the return value.
    pub position: Option<usize>,
    /// The declared kind (`handle<kind>`); `None` for an untyped `handle`.
    pub kind: Option<&'a str>,
    /// True when the function hands a new handle out: returned, or written
    /// through a `*handle` argument.
    pub out: bool,
}

/// Every handle a signature passes in or hands out, arguments first.
pub(super) fn handle_slots(sig: &Signature) -> Vec<HandleSlot<'_>> {
    let mut slots: Vec<HandleSlot<'_>> = sig
        .args
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let out = match a {
                ArgType::Handle => false,
                ArgType::Ptr(Pointee::Handle) => true,
                _ => return None,
            };
            Some(HandleSlot {
                position: Some(i),
                kind: sig.arg_kind(i),
                out,
            })
        })
        .collect();
    if matches!(sig.ret, RetType::Handle) {
        slots.push(HandleSlot {
            position: None,
            kind: sig.ret_kind(),
            out: true,
        });
    }
    slots
}
