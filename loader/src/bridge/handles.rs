//! Handles: the tokens that stand for opaque pointers living in a helper,
//! what kind each one is, and when it stops being usable.
//!
//! The host never hands a raw helper pointer to its caller. A pointer a
//! function returns (or leaves behind a `*handle`) becomes a [`Handle`]: the
//! generation of the helper that issued it and an index into this table.
//! A token is good for exactly one object:
//!
//! * when the helper ends, the table is cleared and the bridge's generation
//!   changes, so an old token can never reach a new helper as a pointer;
//! * a token's index is never reused within a helper, and closing a token
//!   (calling its kind's close function on it, or closing its parent)
//!   forgets its pointer, so an object the allocator later puts at the same
//!   address gets a new token while the old one stays closed;
//! * a token made by a `handle<kind>` return or `*handle<kind>` out-argument
//!   records that kind, and a `handle<kind>` parameter takes only tokens of
//!   its kind (untyped ones take any).
//!
//! A closed or foreign token is refused before anything is sent
//! (`stale_handle`), so the library never sees a dangling pointer. Checking a
//! token is an index into a `Vec` and a comparison: no hashing and no
//! allocation on the call path. The table also owns the
//! [pinned region](super::pinned): a retained buffer is released when the
//! handle that owns it is closed.

use std::collections::HashMap;

use ffb_abi::signature::{ArgType, RetType, Signature};

use super::pinned::PinnedRegion;
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::{Handle, Value};

/// "No kind", "no parent", "no token": a u32 no table index can reach.
pub(super) const NONE: u32 = u32::MAX;

/// A kind's number in its bridge's [`Kinds`].
pub(super) type KindId = u32;

/// The handle kinds a bridge knows, and their rules: which function closes
/// a kind, and which kind it belongs to.
#[derive(Clone, Debug, Default)]
pub(super) struct Kinds {
    names: Vec<String>,
    by_name: HashMap<String, KindId>,
    /// By kind: the function that closes it, if one was declared.
    closed_by: Vec<Option<String>>,
    /// By kind: the kind whose closing closes it too.
    parent: Vec<KindId>,
}

impl Kinds {
    /// The number of kind `name`, made up on first use.
    pub(super) fn intern(&mut self, name: &str) -> KindId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.names.len() as KindId;
        self.names.push(name.to_string());
        self.by_name.insert(name.to_string(), id);
        self.closed_by.push(None);
        self.parent.push(NONE);
        id
    }

    /// The kind's name.
    pub(super) fn name(&self, id: KindId) -> &str {
        self.names.get(id as usize).map_or("?", String::as_str)
    }

    /// The kind's parent kind, or [`NONE`].
    fn parent(&self, id: KindId) -> KindId {
        self.parent.get(id as usize).copied().unwrap_or(NONE)
    }

    /// Records how handles of `kind` end and what they belong to. A kind has
    /// one rule: giving the same rule again is fine, a different one is an
    /// error (two manifests disagreeing should not be settled silently).
    pub(super) fn set_rule(
        &mut self,
        kind: &str,
        closed_by: Option<&str>,
        parent: Option<&str>,
    ) -> Result<()> {
        for name in [Some(kind), parent].into_iter().flatten() {
            if !valid_kind(name) {
                return err(
                    ErrorKind::BadSignature,
                    format!("'{name}' is not a handle kind: a kind is a C identifier, as in handle<stmt>"),
                );
            }
        }
        let id = self.intern(kind);
        let parent_id = parent.map_or(NONE, |p| self.intern(p));
        let old_close = self.closed_by[id as usize].as_deref();
        let old_parent = self.parent[id as usize];
        let same_close = old_close.is_none() || old_close == closed_by;
        let same_parent = old_parent == NONE || old_parent == parent_id;
        if !same_close || !same_parent {
            let describe = |c: Option<&str>, p: Option<&str>| {
                format!(
                    "closed by {}, parent {}",
                    c.unwrap_or("nothing"),
                    p.unwrap_or("none")
                )
            };
            let old_parent = (old_parent != NONE).then(|| self.name(old_parent).to_string());
            return err(
                ErrorKind::BadSignature,
                format!(
                    "handle kind '{kind}' already has a rule ({}); it cannot also be {}",
                    describe(old_close, old_parent.as_deref()),
                    describe(closed_by, parent)
                ),
            );
        }
        if closed_by.is_some() {
            self.closed_by[id as usize] = closed_by.map(str::to_string);
        }
        if parent_id != NONE {
            self.parent[id as usize] = parent_id;
        }
        Ok(())
    }

    /// Whether `function` closes some kind.
    fn closes_any(&self, function: &str) -> bool {
        self.closed_by
            .iter()
            .any(|c| c.as_deref() == Some(function))
    }

    /// Whether `function` closes `kind`.
    fn closes(&self, function: &str, kind: KindId) -> bool {
        self.closed_by
            .get(kind as usize)
            .is_some_and(|c| c.as_deref() == Some(function))
    }
}

/// True for a C identifier, the spelling of a kind.
fn valid_kind(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What one declared function does with handles, worked out once from its
/// signature and the bridge's rules so that a call only indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct FnHandles {
    /// By argument: the kind a `handle<kind>` or `*handle<kind>` declares,
    /// or [`NONE`]. Empty when no argument declares one.
    arg_kinds: Vec<KindId>,
    /// The kind a `-> handle<kind>` return makes, or [`NONE`].
    pub ret_kind: KindId,
    /// The argument whose token the call closes, if the function is a
    /// close function.
    pub closes: Option<usize>,
    /// Bit `i` set: argument `i` is a retained buffer (pinned, not scratch).
    pub retained: u64,
}

impl FnHandles {
    /// Works out `sig`'s handle behaviour under `kinds`, with the arguments
    /// in `retained` (a bit per argument) pinned. Fails when a rule cannot
    /// apply to this signature: a close function with no `handle`
    /// argument, or a retained argument that is not a buffer.
    pub(super) fn derive(sig: &Signature, kinds: &mut Kinds, retained: u64) -> Result<FnHandles> {
        let mut arg_kinds = Vec::new();
        if !sig.arg_kinds.is_empty() {
            arg_kinds = (0..sig.args.len())
                .map(|i| sig.arg_kind(i).map_or(NONE, |k| kinds.intern(k)))
                .collect();
        }
        let ret_kind = match (sig.ret, sig.ret_kind()) {
            (RetType::Handle, Some(k)) => kinds.intern(k),
            _ => NONE,
        };
        let mut closes = None;
        if kinds.closes_any(&sig.name) {
            // The handle argument of a kind this function closes, else the
            // first untyped handle argument.
            let by_value = |i: &usize| sig.args[*i] == ArgType::Handle;
            let typed = (0..sig.args.len()).filter(by_value).find(|&i| {
                arg_kinds
                    .get(i)
                    .is_some_and(|&k| k != NONE && kinds.closes(&sig.name, k))
            });
            let untyped = (0..sig.args.len())
                .filter(by_value)
                .find(|&i| arg_kinds.get(i).is_none_or(|&k| k == NONE));
            closes = typed.or(untyped);
            if closes.is_none() {
                return err(
                    ErrorKind::BadSignature,
                    format!(
                        "'{sig}' is declared to close handles, but it has no handle argument of that kind to close"
                    ),
                );
            }
        }
        let valid = match sig.args.len() {
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        if retained & !valid != 0 {
            return err(
                ErrorKind::BadSignature,
                format!(
                    "'{sig}' has {} arguments; a retained argument index is past them",
                    sig.args.len()
                ),
            );
        }
        for i in (0..sig.args.len()).filter(|&i| retained & (1 << i) != 0) {
            if !matches!(sig.args[i], ArgType::CStr | ArgType::Bytes) {
                return err(
                    ErrorKind::BadSignature,
                    format!(
                        "argument {} of '{sig}' is {}: only cstr and bytes arguments can be retained",
                        i + 1,
                        sig.arg_text(i)
                    ),
                );
            }
        }
        Ok(FnHandles {
            arg_kinds,
            ret_kind,
            closes,
            retained,
        })
    }

    /// The kind argument `i` declares, or [`NONE`].
    pub(super) fn arg_kind(&self, i: usize) -> KindId {
        self.arg_kinds.get(i).copied().unwrap_or(NONE)
    }

    /// Whether argument `i` is retained.
    pub(super) fn is_retained(&self, i: usize) -> bool {
        i < 64 && self.retained & (1 << i) != 0
    }
}

/// Why a token cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// Still usable.
    Live,
    /// Passed to function number `.0`, its close function.
    By(u32),
    /// Closed with its parent, token `.0`.
    WithParent(u32),
}

/// One issued token.
#[derive(Debug)]
struct Entry {
    raw: u64,
    kind: KindId,
    parent: u32,
    closed: Closed,
    /// Set to the table's current batch mark when a close function earlier
    /// in the batch being checked closes it.
    doomed: u64,
    /// Live tokens whose parent this is.
    children: Vec<u32>,
    /// Offsets of the retained buffers this token owns.
    pins: Vec<usize>,
}

/// A token that was refused, before any message is worded (the wording
/// needs the kinds' and functions' names, which the caller has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Issued by a helper that is gone.
    Gone(Handle),
    /// Never issued by this helper (a forged index).
    NeverIssued(Handle),
    /// Closed by function number `by`.
    ClosedBy(Handle, KindId, u32),
    /// Closed with its parent token.
    ClosedWithParent(Handle, KindId, Handle),
    /// A close function earlier in the batch being checked closes it.
    ClosedInBatch(Handle, KindId),
    /// Of kind `.1` where kind `.2` is declared.
    WrongKind(Handle, KindId, KindId),
    /// Not a handle at all.
    NotAHandle,
}

/// A token that was accepted: the pointer to pass and the token's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The raw pointer (0 for NULL).
    pub raw: u64,
    /// The token's index, or [`NONE`] for NULL.
    pub token: u32,
}

/// The tokens of the current helper, and its pinned region.
#[derive(Debug, Default)]
pub(super) struct HandleTable {
    /// By token index; entries are never removed within a helper.
    entries: Vec<Entry>,
    /// Token index by raw value, for live tokens only, so the same pointer
    /// keeps one token while it lives.
    index: HashMap<u64, u32>,
    /// The current batch check's mark (see [`Entry::doomed`]).
    batch_mark: u64,
    /// Retained buffers.
    pub pinned: PinnedRegion,
}

impl HandleTable {
    /// Forgets every token and pin, when the helper that issued them is gone;
    /// the next helper's pins may take `pin_cap` bytes below `arena_top`.
    pub(super) fn reset(&mut self, arena_top: usize, pin_cap: usize) {
        self.entries.clear();
        self.index.clear();
        self.pinned = PinnedRegion::new(arena_top, pin_cap);
    }

    /// Forgets every token and pin.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.pinned.clear();
    }

    /// The raw pointer to pass for a `handle` argument `v`, on the helper of
    /// `generation`, whatever its kind: NULL for [`Value::Null`], else the
    /// pointer behind a live token this helper issued.
    pub(super) fn resolve(&self, v: &Value, generation: u64) -> Result<u64> {
        self.check(v, generation, NONE)
            .map(|r| r.raw)
            .map_err(|refusal| refusal_error(refusal, None))
    }

    /// Checks `v` for a parameter that declares `kind` ([`NONE`] for any):
    /// the token must be this helper's, live, not closed earlier in the batch
    /// being checked, and of that kind.
    pub(super) fn check(
        &self,
        v: &Value,
        generation: u64,
        kind: KindId,
    ) -> std::result::Result<Resolved, Refusal> {
        let h = match v {
            Value::Null => {
                return Ok(Resolved {
                    raw: 0,
                    token: NONE,
                })
            }
            Value::Handle(h) => *h,
            _ => return Err(Refusal::NotAHandle),
        };
        if h.generation != generation {
            return Err(Refusal::Gone(h));
        }
        let Some(entry) = self.entries.get(h.index as usize) else {
            return Err(Refusal::NeverIssued(h));
        };
        match entry.closed {
            Closed::Live => {}
            Closed::By(f) => return Err(Refusal::ClosedBy(h, entry.kind, f)),
            Closed::WithParent(p) => {
                let parent = Handle {
                    generation,
                    index: p,
                };
                return Err(Refusal::ClosedWithParent(h, entry.kind, parent));
            }
        }
        if entry.doomed == self.batch_mark && self.batch_mark != 0 {
            return Err(Refusal::ClosedInBatch(h, entry.kind));
        }
        if kind != NONE && entry.kind != kind {
            return Err(Refusal::WrongKind(h, entry.kind, kind));
        }
        Ok(Resolved {
            raw: entry.raw,
            token: h.index,
        })
    }

    /// The kind token `index` was made with, or [`NONE`].
    pub(super) fn kind_of(&self, index: u32) -> KindId {
        self.entries.get(index as usize).map_or(NONE, |e| e.kind)
    }

    /// The token for a raw pointer the helper of `generation` returned, of
    /// `kind` ([`NONE`] for untyped), belonging to token `parent` ([`NONE`]
    /// for none): [`Value::Null`] for NULL, else a handle (the same one for
    /// the same pointer while its token lives; an untyped token takes the
    /// kind of its first typed sighting).
    pub(super) fn register(
        &mut self,
        raw: u64,
        generation: u64,
        kind: KindId,
        parent: u32,
    ) -> Result<Value> {
        if raw == 0 {
            return Ok(Value::Null);
        }
        let handle = |index| Value::Handle(Handle { generation, index });
        if let Some(&index) = self.index.get(&raw) {
            let entry = &mut self.entries[index as usize];
            if entry.kind == NONE {
                entry.kind = kind;
            }
            return Ok(handle(index));
        }
        let index = match u32::try_from(self.entries.len()) {
            Ok(i) if i != NONE => i,
            _ => return err(
                ErrorKind::ResourceLimit,
                "this helper has issued 4294967295 handles, the most one can; respawn the bridge",
            ),
        };
        let parent = match self.entries.get_mut(parent as usize) {
            Some(p) if p.closed == Closed::Live => {
                p.children.push(index);
                parent
            }
            _ => NONE,
        };
        self.entries.push(Entry {
            raw,
            kind,
            parent,
            closed: Closed::Live,
            doomed: 0,
            children: Vec::new(),
            pins: Vec::new(),
        });
        self.index.insert(raw, index);
        Ok(handle(index))
    }

    /// The parent a token of `kind`, made by a call whose handle arguments
    /// resolved to `tokens`, gets: the first of them whose kind is `kind`'s
    /// parent kind, or [`NONE`].
    pub(super) fn parent_for(
        &self,
        kinds: &Kinds,
        kind: KindId,
        tokens: impl Iterator<Item = u32>,
    ) -> u32 {
        let parent_kind = kinds.parent(kind);
        if parent_kind == NONE {
            return NONE;
        }
        tokens
            .filter(|&t| t != NONE)
            .find(|&t| self.kind_of(t) == parent_kind)
            .unwrap_or(NONE)
    }

    /// Starts checking a batch: nothing is doomed by it yet.
    pub(super) fn begin_batch(&mut self) {
        self.batch_mark += 1;
    }

    /// Ends checking a batch.
    pub(super) fn end_batch(&mut self) {
        // The mark moves on, so what this batch doomed is usable again if the
        // batch was refused, and closed for real if it was sent.
        self.batch_mark += 1;
    }

    /// Marks token `index` and its descendants as closed by a call earlier
    /// in the batch being checked, so later calls of the batch refuse them.
    pub(super) fn doom(&mut self, index: u32) {
        let mark = self.batch_mark;
        let mut stack = vec![index];
        while let Some(t) = stack.pop() {
            if let Some(entry) = self.entries.get_mut(t as usize) {
                entry.doomed = mark;
                stack.extend_from_slice(&entry.children);
            }
        }
    }

    /// Attaches the retained buffer at `offset` to token `owner` (released
    /// when it is closed); with no owner ([`NONE`]) it stays until the
    /// helper ends.
    pub(super) fn own_pin(&mut self, owner: u32, offset: usize) {
        if let Some(entry) = self.entries.get_mut(owner as usize) {
            if entry.closed == Closed::Live {
                entry.pins.push(offset);
                return;
            }
            // Closed by this very call: the foreign code let go of it.
            self.pinned.unpin(offset);
        }
    }

    /// Releases the retained buffers token `index` owns, leaving the token
    /// live; the number of bytes released.
    pub(super) fn release_pins(&mut self, index: u32) -> usize {
        let Some(entry) = self.entries.get_mut(index as usize) else {
            return 0;
        };
        let before = self.pinned.used();
        for offset in std::mem::take(&mut entry.pins) {
            self.pinned.unpin(offset);
        }
        before - self.pinned.used()
    }

    /// Closes token `index`, which function number `by` was called with:
    /// forgets its pointer, releases its pins, and closes every token whose
    /// parent it is, recursively. Closing a closed token does nothing.
    pub(super) fn close(&mut self, index: u32, by: u32) {
        let Some(entry) = self.entries.get_mut(index as usize) else {
            return;
        };
        if entry.closed != Closed::Live {
            return;
        }
        entry.closed = Closed::By(by);
        let parent = entry.parent;
        if let Some(p) = self.entries.get_mut(parent as usize) {
            if let Some(at) = p.children.iter().position(|&c| c == index) {
                p.children.swap_remove(at);
            }
        }
        let mut stack = vec![index];
        while let Some(t) = stack.pop() {
            let entry = &mut self.entries[t as usize];
            if t != index {
                entry.closed = Closed::WithParent(entry.parent);
            }
            if self.index.get(&entry.raw) == Some(&t) {
                self.index.remove(&entry.raw);
            }
            for offset in std::mem::take(&mut entry.pins) {
                self.pinned.unpin(offset);
            }
            stack.extend(std::mem::take(&mut entry.children));
        }
    }
}

/// The error for a refused token, at argument `position` (1-based) when
/// known, without the kinds' and close functions' names.
pub(super) fn refusal_error(refusal: Refusal, position: Option<usize>) -> Error {
    refusal_message(refusal, position, &Kinds::default(), &|_| None)
}

/// [`refusal_error`] with names: the kinds' from `kinds`, and the close
/// functions' from `function_name`.
pub(super) fn refusal_message(
    refusal: Refusal,
    position: Option<usize>,
    kinds: &Kinds,
    function_name: &dyn Fn(u32) -> Option<String>,
) -> Error {
    let at = position.map_or(String::new(), |p| format!("argument {p}: "));
    let of = |h: Handle, kind: KindId| {
        if kind == NONE {
            h.to_string()
        } else {
            format!("{h} ({})", kinds.name(kind))
        }
    };
    let (kind, message) = match refusal {
        Refusal::Gone(h) => (
            ErrorKind::StaleHandle,
            format!("{h} belongs to a helper that is gone"),
        ),
        Refusal::NeverIssued(h) => (ErrorKind::StaleHandle, format!("{h} was never issued")),
        Refusal::ClosedBy(h, k, f) => (
            ErrorKind::StaleHandle,
            match function_name(f) {
                Some(name) => format!("{} was closed by {name}", of(h, k)),
                None => format!("{} was closed", of(h, k)),
            },
        ),
        Refusal::ClosedWithParent(h, k, p) => (
            ErrorKind::StaleHandle,
            format!("{} was closed with its parent {p}", of(h, k)),
        ),
        Refusal::ClosedInBatch(h, k) => (
            ErrorKind::StaleHandle,
            format!("{} is closed by a call earlier in this batch", of(h, k)),
        ),
        Refusal::WrongKind(h, got, want) => (
            ErrorKind::BadArgument,
            if got == NONE {
                format!(
                    "{h} is an untyped handle, but handle<{}> is declared",
                    kinds.name(want)
                )
            } else {
                format!(
                    "{h} is a {} handle, but handle<{}> is declared",
                    kinds.name(got),
                    kinds.name(want)
                )
            },
        ),
        Refusal::NotAHandle => (ErrorKind::BadArgument, "expected a handle".to_string()),
    };
    Error::new(kind, format!("{at}{message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HandleTable {
        let mut t = HandleTable::default();
        t.reset(1 << 16, 1 << 12);
        t
    }

    fn token(v: &Value) -> u32 {
        match v {
            Value::Handle(h) => h.index,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_pointer_keeps_one_token() {
        let mut table = table();
        let a = table.register(0x1000, 7, NONE, NONE).unwrap();
        let b = table.register(0x2000, 7, NONE, NONE).unwrap();
        assert_eq!(table.register(0x1000, 7, NONE, NONE).unwrap(), a);
        assert_ne!(a, b);
        assert_eq!(table.resolve(&a, 7), Ok(0x1000));
        assert_eq!(table.resolve(&b, 7), Ok(0x2000));
        assert_eq!(table.register(0, 7, NONE, NONE).unwrap(), Value::Null);
        assert_eq!(table.resolve(&Value::Null, 7), Ok(0));
    }

    #[test]
    fn tokens_of_another_helper_are_stale() {
        let mut table = table();
        let h = table.register(0x1000, 7, NONE, NONE).unwrap();
        let kind = |r: Result<u64>| r.unwrap_err().kind;
        assert_eq!(kind(table.resolve(&h, 8)), ErrorKind::StaleHandle);
        table.clear();
        assert_eq!(kind(table.resolve(&h, 7)), ErrorKind::StaleHandle);
        assert_eq!(
            kind(table.resolve(&Value::U64(1), 7)),
            ErrorKind::BadArgument
        );
    }

    #[test]
    fn a_closed_pointer_at_the_same_address_gets_a_new_token() {
        let mut table = table();
        let old = table.register(0x1000, 7, NONE, NONE).unwrap();
        table.close(token(&old), 3);
        assert_eq!(
            table.check(&old, 7, NONE).unwrap_err(),
            Refusal::ClosedBy(
                Handle {
                    generation: 7,
                    index: 0
                },
                NONE,
                3
            )
        );
        // The allocator hands out the same address again: a new token, and
        // the old one stays closed.
        let new = table.register(0x1000, 7, NONE, NONE).unwrap();
        assert_ne!(new, old);
        assert_eq!(table.resolve(&new, 7), Ok(0x1000));
        assert!(table.resolve(&old, 7).is_err());
    }

    #[test]
    fn kinds_are_checked_and_closing_a_parent_closes_its_children() {
        let mut kinds = Kinds::default();
        kinds.set_rule("db", Some("close"), None).unwrap();
        kinds
            .set_rule("stmt", Some("finalize"), Some("db"))
            .unwrap();
        let (db_kind, stmt_kind) = (kinds.intern("db"), kinds.intern("stmt"));
        let mut table = table();
        let db = table.register(0x10, 1, db_kind, NONE).unwrap();
        let parent = table.parent_for(&kinds, stmt_kind, [NONE, token(&db)].into_iter());
        assert_eq!(parent, token(&db));
        let s1 = table.register(0x20, 1, stmt_kind, parent).unwrap();
        let s2 = table.register(0x30, 1, stmt_kind, parent).unwrap();
        assert_eq!(table.check(&s1, 1, stmt_kind).unwrap().raw, 0x20);
        assert!(matches!(
            table.check(&s1, 1, db_kind),
            Err(Refusal::WrongKind(_, k, w)) if k == stmt_kind && w == db_kind
        ));
        let e = refusal_message(
            table.check(&s1, 1, db_kind).unwrap_err(),
            Some(1),
            &kinds,
            &|_| None,
        );
        assert_eq!(e.kind, ErrorKind::BadArgument);
        assert_eq!(
            e.message,
            "argument 1: handle:1:1 is a stmt handle, but handle<db> is declared"
        );
        // Finalizing s1 leaves the db and s2; closing the db closes s2.
        table.close(token(&s1), 5);
        assert!(table.check(&db, 1, db_kind).is_ok());
        table.close(token(&db), 4);
        assert!(matches!(
            table.check(&s2, 1, NONE),
            Err(Refusal::ClosedWithParent(_, _, p)) if p.index == token(&db)
        ));
        // A token in a batch: doomed for the rest of the check only.
        let s3 = table.register(0x40, 1, stmt_kind, NONE).unwrap();
        table.begin_batch();
        table.doom(token(&s3));
        assert!(matches!(
            table.check(&s3, 1, NONE),
            Err(Refusal::ClosedInBatch(..))
        ));
        table.end_batch();
        assert!(table.check(&s3, 1, NONE).is_ok());
    }

    #[test]
    fn closing_releases_the_pins_a_token_owns() {
        let mut table = table();
        let h = table.register(0x10, 1, NONE, NONE).unwrap();
        let child = table.register(0x20, 1, NONE, token(&h)).unwrap();
        let a = table.pinned.pin(100, 0).unwrap();
        let b = table.pinned.pin(100, 0).unwrap();
        table.own_pin(token(&h), a);
        table.own_pin(token(&child), b);
        assert_eq!(table.pinned.used(), 224);
        table.close(token(&h), 0);
        assert_eq!(table.pinned.used(), 0);
    }

    #[test]
    fn rules_are_checked() {
        let mut kinds = Kinds::default();
        kinds.set_rule("stmt", Some("finalize"), None).unwrap();
        kinds.set_rule("stmt", Some("finalize"), None).unwrap();
        assert!(kinds.set_rule("stmt", Some("reset"), None).is_err());
        assert!(kinds.set_rule("no such", None, None).is_err());
        let sig: Signature = "finalize(i32) -> i32".parse().unwrap();
        assert!(FnHandles::derive(&sig, &mut kinds, 0).is_err());
        let sig: Signature = "finalize(handle<stmt>) -> i32".parse().unwrap();
        let f = FnHandles::derive(&sig, &mut kinds, 0).unwrap();
        assert_eq!(f.closes, Some(0));
        let sig: Signature = "bind(handle<stmt>, i32, cstr) -> i32".parse().unwrap();
        assert!(FnHandles::derive(&sig, &mut kinds, 1 << 2)
            .unwrap()
            .is_retained(2));
        assert!(FnHandles::derive(&sig, &mut kinds, 1 << 1).is_err());
        assert!(FnHandles::derive(&sig, &mut kinds, 1 << 3).is_err());
    }
}
