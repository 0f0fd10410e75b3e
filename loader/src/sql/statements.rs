//! A driver's table of prepared statements: the [`StatementId`]s it hands
//! to [`Connection`](super::Connection), and each statement's state behind
//! its id. Ids count up from 1 and are never reused, so a finalized
//! statement's id stays stale.

use std::collections::HashMap;

use super::StatementId;
use crate::error::{Error, ErrorKind, Result};

/// The open statements of one connection, each with the driver's state `P`.
#[derive(Debug)]
pub(super) struct Statements<P> {
    by_id: HashMap<u64, P>,
    next: u64,
}

impl<P> Default for Statements<P> {
    fn default() -> Self {
        Statements {
            by_id: HashMap::new(),
            next: 1,
        }
    }
}

impl<P> Statements<P> {
    /// Opens a statement: its state gets the next id.
    pub fn insert(&mut self, prepared: P) -> StatementId {
        let id = self.next;
        self.next += 1;
        self.by_id.insert(id, prepared);
        StatementId(id)
    }

    /// An open statement's state; `stale_handle` for an id that is not open.
    pub fn get_mut(&mut self, stmt: StatementId) -> Result<&mut P> {
        self.by_id.get_mut(&stmt.0).ok_or_else(|| not_open(stmt))
    }

    /// An open statement's state, to read; `stale_handle` as for
    /// [`Statements::get_mut`].
    pub fn get(&self, stmt: StatementId) -> Result<&P> {
        self.by_id.get(&stmt.0).ok_or_else(|| not_open(stmt))
    }

    /// Closes a statement: its state, if it was open.
    pub fn remove(&mut self, stmt: StatementId) -> Option<P> {
        self.by_id.remove(&stmt.0)
    }

    /// The open statements whose state satisfies `which`, in no particular
    /// order (a snapshot, so the caller may close them one by one).
    pub fn ids_where(&self, which: impl Fn(&P) -> bool) -> Vec<StatementId> {
        self.by_id
            .iter()
            .filter(|(_, p)| which(p))
            .map(|(&id, _)| StatementId(id))
            .collect()
    }

    /// Every open statement (a snapshot, as for [`Statements::ids_where`]).
    pub fn ids(&self) -> Vec<StatementId> {
        self.ids_where(|_| true)
    }
}

fn not_open(stmt: StatementId) -> Error {
    Error::new(
        ErrorKind::StaleHandle,
        format!("statement {} is not open", stmt.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused() {
        let mut t = Statements::default();
        let a = t.insert('a');
        let b = t.insert('b');
        assert_eq!((a, b), (StatementId(1), StatementId(2)));
        assert_eq!(t.remove(a), Some('a'));
        assert_eq!(t.insert('c'), StatementId(3));
        let e = t.get_mut(a).unwrap_err();
        assert_eq!(e.kind, ErrorKind::StaleHandle);
        assert_eq!(e.message, "statement 1 is not open");
        assert_eq!(t.get(b).copied().ok(), Some('b'));
        let mut ids = t.ids();
        ids.sort_by_key(|s| s.0);
        assert_eq!(ids, [StatementId(2), StatementId(3)]);
        assert_eq!(t.ids_where(|&p| p == 'c'), [StatementId(3)]);
    }
}
