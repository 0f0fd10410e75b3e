//! Calling a driver's bridged functions: declaring them at load, sending
//! several in one round trip, and reading what they answered (an integer
//! return, a returned string, an out-value). Every driver does each of
//! these many times; here each is written once.

use crate::bridge::{Bridge, BridgeBuilder, FunctionId};
use crate::error::Result;
use crate::value::Value as Raw;
use crate::CallOutput;

/// `builder` with every signature of `signatures` declared.
pub(super) fn declare_all<S: Into<String>>(
    builder: BridgeBuilder,
    signatures: impl IntoIterator<Item = S>,
) -> BridgeBuilder {
    signatures.into_iter().fold(builder, BridgeBuilder::declare)
}

/// The id of a function the driver declared when it loaded the library (a
/// missing one is the driver's own bug, not the helper's doing).
pub(super) fn declared(bridge: &Bridge, name: &str) -> FunctionId {
    bridge.function(name).expect("declared at load")
}

/// Declares a driver's table of functions: a struct with a [`FunctionId`]
/// field for each, and `of(&Bridge)`, which looks each up by its symbol
/// once the library is loaded.
///
/// ```text
/// functions! {
///     /// The declared functions, by name.
///     struct Functions {
///         finish: "PQfinish",
///         status: "PQstatus",
///     }
/// }
/// ```
macro_rules! functions {
    ($(#[$meta:meta])* struct $name:ident { $($field:ident: $symbol:literal),* $(,)? }) => {
        $(#[$meta])*
        struct $name {
            $($field: $crate::bridge::FunctionId,)*
        }

        impl $name {
            fn of(bridge: &$crate::bridge::Bridge) -> $name {
                $name {
                    $($field: $crate::sql::calls::declared(bridge, $symbol),)*
                }
            }
        }
    };
}
pub(super) use functions;

/// Sends `calls` in one round trip; a failure is the failing call's error.
pub(super) fn batch(
    bridge: &mut Bridge,
    calls: &[(FunctionId, &[Raw])],
) -> Result<Vec<CallOutput>> {
    bridge.call_batch(calls).map_err(|f| f.error)
}

/// Calls `f` once with each argument list of `args`, in one round trip.
pub(super) fn batch_each<A: AsRef<[Raw]>>(
    bridge: &mut Bridge,
    f: FunctionId,
    args: &[A],
) -> Result<Vec<CallOutput>> {
    let calls: Vec<(FunctionId, &[Raw])> = args.iter().map(|a| (f, a.as_ref())).collect();
    batch(bridge, &calls)
}

/// Sends `calls`, each a function and its own argument list, in one round
/// trip.
pub(super) fn batch_owned(
    bridge: &mut Bridge,
    calls: &[(FunctionId, Vec<Raw>)],
) -> Result<Vec<CallOutput>> {
    let calls: Vec<(FunctionId, &[Raw])> = calls.iter().map(|(f, a)| (*f, a.as_slice())).collect();
    batch(bridge, &calls)
}

/// An integer return or out-value as i64 (every integer the drivers declare
/// fits; anything that is not an integer is 0).
pub(super) fn int(v: &Raw) -> i64 {
    v.as_i128().unwrap_or_default() as i64
}

/// A returned string, lossily (an absent one is empty).
pub(super) fn text(v: &Raw) -> String {
    match v {
        Raw::Str(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// The `i`th out-value of a call (`Null` when it has none).
pub(super) fn out(o: &CallOutput, i: usize) -> Raw {
    o.out.get(i).cloned().flatten().unwrap_or(Raw::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_leniently() {
        assert_eq!(int(&Raw::I16(-3)), -3);
        assert_eq!(int(&Raw::U64(7)), 7);
        assert_eq!(int(&Raw::Null), 0);
        assert_eq!(text(&Raw::Str(b"a\xffb".to_vec())), "a\u{fffd}b");
        assert_eq!(text(&Raw::Null), "");
        let o = CallOutput {
            ret: Raw::Null,
            out: vec![None, Some(Raw::I32(5))],
            ..CallOutput::default()
        };
        assert_eq!(out(&o, 1), Raw::I32(5));
        assert_eq!(out(&o, 0), Raw::Null);
        assert_eq!(out(&o, 9), Raw::Null);
    }
}
