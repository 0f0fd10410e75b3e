//! Handles: the generation-tagged tokens that stand for opaque pointers
//! living in a helper.
//!
//! The host never hands a raw helper pointer to its caller. A pointer a
//! function returns (or leaves behind a `*handle`) becomes a [`Handle`]: the
//! generation of the helper that issued it and an index into this table.
//! When the helper ends, the table is cleared and the bridge's generation
//! changes, so an old token can never reach a new helper as a pointer.

use std::collections::HashMap;

use crate::error::{err, Error, ErrorKind, Result};
use crate::value::{Handle, Value};

/// The raw pointer values behind the current helper's handles.
#[derive(Debug, Default)]
pub(super) struct HandleTable {
    /// By token index.
    raw: Vec<u64>,
    /// Token index by raw value, so the same pointer keeps one token.
    index: HashMap<u64, usize>,
}

impl HandleTable {
    /// Forgets every token, when the helper that issued them is gone.
    pub(super) fn clear(&mut self) {
        self.raw.clear();
        self.index.clear();
    }

    /// The raw pointer to pass for a `handle` argument `v`, on the helper of
    /// `generation`: NULL for [`Value::Null`], else the pointer behind a token
    /// this helper issued.
    pub(super) fn resolve(&self, v: &Value, generation: u64) -> Result<u64> {
        match v {
            Value::Null => Ok(0),
            Value::Handle(h) if h.generation == generation => {
                self.raw.get(h.index as usize).copied().ok_or_else(|| {
                    Error::new(ErrorKind::StaleHandle, format!("{h} was never issued"))
                })
            }
            Value::Handle(h) => err(
                ErrorKind::StaleHandle,
                format!("{h} belongs to a helper that is gone"),
            ),
            other => err(ErrorKind::BadArgument, format!("{other:?} is not a handle")),
        }
    }

    /// The token for a raw pointer the helper of `generation` returned:
    /// [`Value::Null`] for NULL, else a handle (the same one each time for the
    /// same pointer).
    pub(super) fn register(&mut self, raw: u64, generation: u64) -> Value {
        if raw == 0 {
            return Value::Null;
        }
        let next = self.raw.len();
        let index = *self.index.entry(raw).or_insert(next);
        if index == next {
            self.raw.push(raw);
        }
        Value::Handle(Handle {
            generation,
            index: index as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_keeps_one_token() {
        let mut table = HandleTable::default();
        let a = table.register(0x1000, 7);
        let b = table.register(0x2000, 7);
        assert_eq!(table.register(0x1000, 7), a);
        assert_ne!(a, b);
        assert_eq!(table.resolve(&a, 7), Ok(0x1000));
        assert_eq!(table.resolve(&b, 7), Ok(0x2000));
        assert_eq!(table.register(0, 7), Value::Null);
        assert_eq!(table.resolve(&Value::Null, 7), Ok(0));
    }

    #[test]
    fn tokens_of_another_helper_are_stale() {
        let mut table = HandleTable::default();
        let h = table.register(0x1000, 7);
        let kind = |r: Result<u64>| r.unwrap_err().kind;
        assert_eq!(kind(table.resolve(&h, 8)), ErrorKind::StaleHandle);
        table.clear();
        assert_eq!(kind(table.resolve(&h, 7)), ErrorKind::StaleHandle);
        assert_eq!(
            kind(table.resolve(&Value::U64(1), 7)),
            ErrorKind::BadArgument
        );
    }
}
