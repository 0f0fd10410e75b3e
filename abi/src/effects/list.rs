//! What `mutates` and `throws` have in common: each is either everything
//! (`all`, `any`) or a listed few, and an empty list names nothing. Their
//! lattice (union, covering), their spelling and their parser are written
//! once, here and in [`parse`](super::parse), over this shape.

use std::fmt;

use super::{Mutates, Throws};

/// How a list effect is spelled: `name(keyword)` or `name(key=[example])`.
pub(super) struct ListTerm {
    pub(super) name: &'static str,
    /// The spelling of "everything".
    pub(super) keyword: &'static str,
    /// The key of the list.
    pub(super) key: &'static str,
    /// A list to show in "write ..." hints.
    pub(super) example: &'static str,
    /// What the list holds, for "to open the ..." in messages.
    pub(super) list: &'static str,
}

/// An effect that is everything or a list of items.
pub(super) trait ListEffect: Sized {
    /// What is listed: argument positions, exception type names.
    type Item: Ord + Clone + fmt::Display;
    /// Its spelling.
    const TERM: ListTerm;
    /// `None` for everything, else the listed items.
    fn items(&self) -> Option<&[Self::Item]>;
    /// The effect with these items, `None` meaning everything.
    fn from_items(items: Option<Vec<Self::Item>>) -> Self;
}

impl ListEffect for Mutates {
    type Item = usize;
    const TERM: ListTerm = ListTerm {
        name: "mutates",
        keyword: "all",
        key: "args",
        example: "0, 2",
        list: "argument index list",
    };

    fn items(&self) -> Option<&[usize]> {
        match self {
            Mutates::All => None,
            Mutates::Args(v) => Some(v),
        }
    }

    fn from_items(items: Option<Vec<usize>>) -> Self {
        items.map_or(Mutates::All, Mutates::Args)
    }
}

impl ListEffect for Throws {
    type Item = String;
    const TERM: ListTerm = ListTerm {
        name: "throws",
        keyword: "any",
        key: "types",
        example: "ValueError",
        list: "exception type list",
    };

    fn items(&self) -> Option<&[String]> {
        match self {
            Throws::Any => None,
            Throws::Types(v) => Some(v),
        }
    }

    fn from_items(items: Option<Vec<String>>) -> Self {
        items.map_or(Throws::Any, Throws::Types)
    }
}

/// The effect as it counts: an empty list is read as none.
pub(super) fn effective<L: ListEffect>(effect: &Option<L>) -> Option<&L> {
    match effect {
        Some(l) if l.items().is_some_and(<[L::Item]>::is_empty) => None,
        l => l.as_ref(),
    }
}

/// The least upper bound: everything absorbs lists, lists are unioned,
/// sorted and deduplicated.
pub(super) fn union<L: ListEffect>(a: Option<&L>, b: Option<&L>) -> Option<L> {
    if a.is_none() && b.is_none() {
        return None;
    }
    let mut all = Vec::new();
    for effect in [a, b].into_iter().flatten() {
        match effect.items() {
            None => return Some(L::from_items(None)),
            Some(items) => all.extend_from_slice(items),
        }
    }
    all.sort_unstable();
    all.dedup();
    Some(L::from_items(Some(all)))
}

/// True if `mine` allows everything `theirs` does.
pub(super) fn covers<L: ListEffect>(mine: Option<&L>, theirs: Option<&L>) -> bool {
    match (mine.map(L::items), theirs.map(L::items)) {
        (_, None) | (Some(None), _) => true,
        (None, Some(_)) | (Some(Some(_)), Some(None)) => false,
        (Some(Some(mine)), Some(Some(theirs))) => theirs.iter().all(|i| mine.contains(i)),
    }
}

/// Writes `name(keyword)` or `name(key=[a, b])`.
pub(super) fn write<L: ListEffect>(effect: &L, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ListTerm {
        name, keyword, key, ..
    } = L::TERM;
    let Some(items) = effect.items() else {
        return write!(f, "{name}({keyword})");
    };
    write!(f, "{name}({key}=[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str("])")
}
