//! The effect model of Molt's Foreign Function Boundary spec.
//!
//! Every foreign function carries a set of effects drawn from `pure`,
//! `alloc`, `io`, `mutates(...)`, `throws(...)` and `nondet`. A function
//! whose effects are unknown gets [`WORST_CASE`]. The textual form is what
//! users write in declarations and what the bridge prints back, so parsing
//! and printing round-trip.
//!
//! ```
//! use ffb_abi::effects::{EffectSet, WORST_CASE};
//!
//! let e: EffectSet = "throws(types=[OSError]) + io + mutates(args=[2, 0])".parse().unwrap();
//! assert_eq!(e.to_string(), "io + mutates(args=[0, 2]) + throws(types=[OSError])");
//! assert!(!e.may_reorder());
//! assert!(WORST_CASE.covers(&e));
//!
//! let err = "pure + io".parse::<EffectSet>().unwrap_err();
//! assert_eq!(err.column, 1);
//! ```

use std::fmt;
use std::str::FromStr;

mod list;
mod parse;
#[cfg(test)]
mod tests;

/// Which arguments a call may write through.
///
/// Displayed as `mutates(all)` or `mutates(args=[0, 2])`; indices are
/// 0-based positions in the declared argument list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mutates {
    /// Any argument, and anything reachable from it, may be written.
    All,
    /// Only the listed argument positions may be written.
    Args(Vec<usize>),
}

/// Which exceptions a call may raise.
///
/// Displayed as `throws(any)` or `throws(types=[ValueError, OSError])`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Throws {
    /// Any exception type.
    Any,
    /// Only the listed exception types (possibly dotted, e.g. `os.error`).
    Types(Vec<String>),
}

/// A set of effects a foreign call may have.
///
/// The default value is [`PURE`]. An empty `Mutates::Args` or
/// `Throws::Types` list is treated everywhere as the absence of that effect,
/// because it names nothing that could be mutated or thrown.
///
/// ```
/// use ffb_abi::effects::{EffectSet, Mutates};
///
/// let e = EffectSet { alloc: true, mutates: Some(Mutates::Args(vec![1])), ..EffectSet::default() };
/// assert_eq!(e.to_string(), "alloc + mutates(args=[1])");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct EffectSet {
    /// The call may allocate memory that outlives it.
    pub alloc: bool,
    /// The call may perform I/O or otherwise touch the outside world.
    pub io: bool,
    /// The call may return different results for the same inputs.
    pub nondet: bool,
    /// The arguments the call may write through, if any.
    pub mutates: Option<Mutates>,
    /// The exceptions the call may raise, if any.
    pub throws: Option<Throws>,
}

/// The empty effect set: the call is a mathematical function of its inputs.
pub const PURE: EffectSet = EffectSet {
    alloc: false,
    io: false,
    nondet: false,
    mutates: None,
    throws: None,
};

/// The assumption for a call whose effects are unknown:
/// `io + nondet + mutates(all) + throws(any)`.
///
/// `alloc` is not listed because [`EffectSet::covers`] treats `io` as
/// including it, so this set still covers every other set.
pub const WORST_CASE: EffectSet = EffectSet {
    alloc: false,
    io: true,
    nondet: true,
    mutates: Some(Mutates::All),
    throws: Some(Throws::Any),
};

impl EffectSet {
    /// True if the set has no effects at all.
    ///
    /// ```
    /// use ffb_abi::effects::{EffectSet, PURE};
    /// assert!(PURE.is_pure());
    /// assert!(!"alloc".parse::<EffectSet>().unwrap().is_pure());
    /// ```
    pub fn is_pure(&self) -> bool {
        !self.alloc
            && !self.io
            && !self.nondet
            && self.mutation().is_none()
            && self.throwing().is_none()
    }

    /// True if the set has every effect of [`WORST_CASE`] (whether or not
    /// `alloc` is also present, since `io` already implies it).
    ///
    /// ```
    /// use ffb_abi::effects::WORST_CASE;
    /// assert!(WORST_CASE.is_worst_case());
    /// ```
    pub fn is_worst_case(&self) -> bool {
        self.io
            && self.nondet
            && matches!(self.mutates, Some(Mutates::All))
            && matches!(self.throws, Some(Throws::Any))
    }

    /// The least upper bound of two sets: flags are OR'd, `mutates(all)` and
    /// `throws(any)` absorb lists, and lists are unioned, sorted and
    /// deduplicated. Empty lists disappear.
    ///
    /// ```
    /// use ffb_abi::effects::EffectSet;
    /// let a: EffectSet = "mutates(args=[2]) + throws(types=[B])".parse().unwrap();
    /// let b: EffectSet = "io + mutates(args=[0, 2]) + throws(any)".parse().unwrap();
    /// assert_eq!(a.union(&b).to_string(), "io + mutates(args=[0, 2]) + throws(any)");
    /// ```
    pub fn union(&self, other: &EffectSet) -> EffectSet {
        let mutates = list::union(self.mutation(), other.mutation());
        let throws = list::union(self.throwing(), other.throwing());
        EffectSet {
            alloc: self.alloc || other.alloc,
            io: self.io || other.io,
            nondet: self.nondet || other.nondet,
            mutates,
            throws,
        }
    }

    /// True if `self` allows everything `other` does (`other ⊑ self`), e.g.
    /// whether a declared effect set admits an observed one.
    ///
    /// `io` is taken to include `alloc`: a call that can reach the outside
    /// world can certainly allocate, and without this [`WORST_CASE`] would
    /// fail to cover a merely allocating call.
    ///
    /// ```
    /// use ffb_abi::effects::{EffectSet, WORST_CASE};
    /// let declared: EffectSet = "mutates(args=[0, 1])".parse().unwrap();
    /// assert!(declared.covers(&"mutates(args=[1])".parse().unwrap()));
    /// assert!(!declared.covers(&"mutates(all)".parse().unwrap()));
    /// assert!(WORST_CASE.covers(&"alloc".parse().unwrap()));
    /// ```
    pub fn covers(&self, other: &EffectSet) -> bool {
        let flags = (!other.alloc || self.alloc || self.io)
            && (!other.io || self.io)
            && (!other.nondet || self.nondet);
        let mutates = list::covers(self.mutation(), other.mutation());
        let throws = list::covers(self.throwing(), other.throwing());
        flags && mutates && throws
    }

    /// True if a compiler may move the call relative to other code: it has
    /// no `io`, `nondet`, `mutates` or `throws` (allocation is invisible to
    /// ordering).
    ///
    /// ```
    /// use ffb_abi::effects::EffectSet;
    /// assert!("alloc".parse::<EffectSet>().unwrap().may_reorder());
    /// assert!(!"throws(any)".parse::<EffectSet>().unwrap().may_reorder());
    /// ```
    pub fn may_reorder(&self) -> bool {
        self.at_most_alloc()
    }

    /// True if a compiler may reuse an earlier result for the same inputs:
    /// only for `pure` or `alloc`-only calls.
    ///
    /// ```
    /// use ffb_abi::effects::EffectSet;
    /// assert!("pure".parse::<EffectSet>().unwrap().may_cache());
    /// assert!(!"nondet".parse::<EffectSet>().unwrap().may_cache());
    /// ```
    pub fn may_cache(&self) -> bool {
        self.at_most_alloc()
    }

    /// True if a compiler may drop the call when its result is unused: only
    /// for `pure` or `alloc`-only calls.
    ///
    /// ```
    /// use ffb_abi::effects::EffectSet;
    /// assert!("alloc".parse::<EffectSet>().unwrap().may_eliminate());
    /// assert!(!"io".parse::<EffectSet>().unwrap().may_eliminate());
    /// ```
    pub fn may_eliminate(&self) -> bool {
        self.at_most_alloc()
    }

    fn at_most_alloc(&self) -> bool {
        !self.io && !self.nondet && self.mutation().is_none() && self.throwing().is_none()
    }

    /// The mutation effect, with an empty argument list read as none.
    fn mutation(&self) -> Option<&Mutates> {
        list::effective(&self.mutates)
    }

    /// The throw effect, with an empty type list read as none.
    fn throwing(&self) -> Option<&Throws> {
        list::effective(&self.throws)
    }
}

impl fmt::Display for Mutates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        list::write(self, f)
    }
}

impl fmt::Display for Throws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        list::write(self, f)
    }
}

impl fmt::Display for EffectSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut terms: Vec<String> = Vec::new();
        for (on, name) in [
            (self.alloc, "alloc"),
            (self.io, "io"),
            (self.nondet, "nondet"),
        ] {
            if on {
                terms.push(name.to_string());
            }
        }
        if let Some(m) = self.mutation() {
            terms.push(m.to_string());
        }
        if let Some(t) = self.throwing() {
            terms.push(t.to_string());
        }
        if terms.is_empty() {
            f.write_str("pure")
        } else {
            f.write_str(&terms.join(" + "))
        }
    }
}

/// Why an effect string could not be parsed.
///
/// ```
/// use ffb_abi::effects::EffectSet;
/// let err = "io + mutates".parse::<EffectSet>().unwrap_err();
/// assert_eq!(err.column, 6);
/// assert!(err.to_string().contains("mutates(all)"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct EffectParseError {
    /// 1-based character column in the input where parsing went wrong.
    pub column: usize,
    /// A one-line explanation, usually with the fix.
    pub message: String,
}

impl FromStr for EffectSet {
    type Err = EffectParseError;

    /// Parses the textual form, e.g. `io + mutates(args=[0]) + throws(any)`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse::Parser::new(s).parse_set()
    }
}

impl serde::Serialize for EffectSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EffectSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
