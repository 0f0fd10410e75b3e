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

/// Every spelling a term may take, used in error messages.
const VALID_TERMS: &str = "pure, alloc, io, nondet, mutates(all), mutates(args=[...]), \
                           throws(any), throws(types=[...])";

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
        let mutates = match (self.mutation(), other.mutation()) {
            (None, None) => None,
            (Some(Mutates::All), _) | (_, Some(Mutates::All)) => Some(Mutates::All),
            (a, b) => {
                let mut v: Vec<usize> = [a, b]
                    .into_iter()
                    .flatten()
                    .flat_map(|m| match m {
                        Mutates::Args(v) => v.iter().copied(),
                        Mutates::All => unreachable!("All handled above"),
                    })
                    .collect();
                v.sort_unstable();
                v.dedup();
                Some(Mutates::Args(v))
            }
        };
        let throws = match (self.throwing(), other.throwing()) {
            (None, None) => None,
            (Some(Throws::Any), _) | (_, Some(Throws::Any)) => Some(Throws::Any),
            (a, b) => {
                let mut v: Vec<String> = [a, b]
                    .into_iter()
                    .flatten()
                    .flat_map(|t| match t {
                        Throws::Types(v) => v.iter().cloned(),
                        Throws::Any => unreachable!("Any handled above"),
                    })
                    .collect();
                v.sort();
                v.dedup();
                Some(Throws::Types(v))
            }
        };
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
        let mutates = match (self.mutation(), other.mutation()) {
            (_, None) | (Some(Mutates::All), _) => true,
            (None, Some(_)) | (Some(Mutates::Args(_)), Some(Mutates::All)) => false,
            (Some(Mutates::Args(mine)), Some(Mutates::Args(theirs))) => {
                theirs.iter().all(|i| mine.contains(i))
            }
        };
        let throws = match (self.throwing(), other.throwing()) {
            (_, None) | (Some(Throws::Any), _) => true,
            (None, Some(_)) | (Some(Throws::Types(_)), Some(Throws::Any)) => false,
            (Some(Throws::Types(mine)), Some(Throws::Types(theirs))) => {
                theirs.iter().all(|t| mine.contains(t))
            }
        };
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
        match &self.mutates {
            Some(Mutates::Args(v)) if v.is_empty() => None,
            m => m.as_ref(),
        }
    }

    /// The throw effect, with an empty type list read as none.
    fn throwing(&self) -> Option<&Throws> {
        match &self.throws {
            Some(Throws::Types(v)) if v.is_empty() => None,
            t => t.as_ref(),
        }
    }
}

impl fmt::Display for Mutates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutates::All => f.write_str("mutates(all)"),
            Mutates::Args(v) => {
                f.write_str("mutates(args=[")?;
                for (i, a) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str("])")
            }
        }
    }
}

impl fmt::Display for Throws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Throws::Any => f.write_str("throws(any)"),
            Throws::Types(v) => write!(f, "throws(types=[{}])", v.join(", ")),
        }
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
        Parser {
            chars: s.chars().collect(),
            pos: 0,
        }
        .parse_set()
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

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

/// A term's name and the 1-based column where it starts.
struct Word {
    text: String,
    column: usize,
}

impl Parser {
    fn err<T>(&self, column: usize, message: impl Into<String>) -> Result<T, EffectParseError> {
        Err(EffectParseError {
            column,
            message: message.into(),
        })
    }

    fn column(&self) -> usize {
        self.pos + 1
    }

    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    /// The next non-whitespace character, without consuming it.
    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    /// Describes what sits at the cursor, for "found ..." in messages.
    fn found(&mut self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(c) if is_ident_start(c) => {
                let save = self.pos;
                let w = self.word(false);
                self.pos = save;
                format!("'{}'", w.text)
            }
            Some(c) => format!("'{}'", c.escape_debug()),
        }
    }

    fn expect(&mut self, want: char, context: &str) -> Result<(), EffectParseError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            let col = self.column();
            let found = self.found();
            self.err(col, format!("expected '{want}' {context}, found {found}"))
        }
    }

    /// Reads an identifier; `dotted` also accepts `.` so that qualified
    /// exception names like `socket.timeout` lex as one word.
    fn word(&mut self, dotted: bool) -> Word {
        self.skip_ws();
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '_' || (dotted && c == '.'))
        {
            self.pos += 1;
        }
        Word {
            text: self.chars[start..self.pos].iter().collect(),
            column: start + 1,
        }
    }

    fn parse_set(&mut self) -> Result<EffectSet, EffectParseError> {
        if self.peek().is_none() {
            return self.err(
                1,
                "empty effect set; write 'pure' for a call with no effects",
            );
        }
        let mut set = PURE;
        let mut pure_at: Option<usize> = None;
        let mut terms = 0;
        loop {
            if !self.peek().is_some_and(is_ident_start) {
                let col = self.column();
                let found = self.found();
                let what = if terms == 0 {
                    "expected an effect"
                } else {
                    "expected an effect after '+'"
                };
                return self.err(
                    col,
                    format!("{what}, found {found}; valid effects: {VALID_TERMS}"),
                );
            }
            let w = self.word(false);
            terms += 1;
            match self.parse_term(&w)? {
                None => pure_at = Some(pure_at.unwrap_or(w.column)),
                Some(t) => set = set.union(&t),
            }
            match self.peek() {
                None => break,
                Some('+') => self.pos += 1,
                Some(_) => {
                    let col = self.column();
                    let found = self.found();
                    return self.err(col, format!("expected '+' between effects, found {found}"));
                }
            }
        }
        if let Some(col) = pure_at {
            if terms > 1 {
                return self.err(
                    col,
                    "'pure' must stand alone: it means no effects at all, so it cannot be combined with other effects",
                );
            }
        }
        Ok(set)
    }

    /// Parses the rest of the term named by `w`; `None` means `pure`.
    fn parse_term(&mut self, w: &Word) -> Result<Option<EffectSet>, EffectParseError> {
        let flag = |f: fn(&mut EffectSet)| {
            let mut e = PURE;
            f(&mut e);
            e
        };
        let simple = match w.text.as_str() {
            "pure" => None,
            "alloc" => Some(flag(|e| e.alloc = true)),
            "io" => Some(flag(|e| e.io = true)),
            "nondet" => Some(flag(|e| e.nondet = true)),
            "mutates" => return self.parse_mutates(w).map(Some),
            "throws" => return self.parse_throws(w).map(Some),
            other => {
                return self.err(
                    w.column,
                    format!("unknown effect '{other}'; expected one of {VALID_TERMS}"),
                )
            }
        };
        if self.peek() == Some('(') {
            let col = self.column();
            return self.err(col, format!("'{}' takes no arguments", w.text));
        }
        Ok(simple)
    }

    fn parse_mutates(&mut self, w: &Word) -> Result<EffectSet, EffectParseError> {
        if self.peek() != Some('(') {
            return self.err(
                w.column,
                "'mutates' needs an argument: write mutates(all) or mutates(args=[0, 2])",
            );
        }
        self.pos += 1;
        let inner = self.word(false);
        let m = match inner.text.as_str() {
            "all" => Mutates::All,
            "args" => {
                self.expect('=', "after 'args'")?;
                self.expect('[', "to open the argument index list")?;
                let mut v = Vec::new();
                if self.peek() != Some(']') {
                    loop {
                        v.push(self.index()?);
                        if self.peek() == Some(',') {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(']', "to close the argument index list")?;
                v.sort_unstable();
                v.dedup();
                Mutates::Args(v)
            }
            _ => {
                let col = inner.column;
                let found = if inner.text.is_empty() {
                    self.found()
                } else {
                    format!("'{}'", inner.text)
                };
                return self.err(
                    col,
                    format!("expected 'all' or 'args=[...]' inside mutates(...), found {found}"),
                );
            }
        };
        self.expect(')', "to close mutates(...)")?;
        Ok(EffectSet {
            mutates: Some(m),
            ..PURE
        })
    }

    fn index(&mut self) -> Result<usize, EffectParseError> {
        self.skip_ws();
        let col = self.column();
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            let found = self.found();
            return self.err(
                col,
                format!("expected an argument index (a non-negative integer), found {found}"),
            );
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        digits
            .parse()
            .or_else(|_| self.err(col, format!("argument index {digits} is too large")))
    }

    fn parse_throws(&mut self, w: &Word) -> Result<EffectSet, EffectParseError> {
        if self.peek() != Some('(') {
            return self.err(
                w.column,
                "'throws' needs an argument: write throws(any) or throws(types=[ValueError])",
            );
        }
        self.pos += 1;
        let inner = self.word(false);
        let t = match inner.text.as_str() {
            "any" => Throws::Any,
            "types" => {
                self.expect('=', "after 'types'")?;
                self.expect('[', "to open the exception type list")?;
                let mut v = Vec::new();
                if self.peek() != Some(']') {
                    loop {
                        v.push(self.type_name()?);
                        if self.peek() == Some(',') {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(']', "to close the exception type list")?;
                v.sort();
                v.dedup();
                Throws::Types(v)
            }
            _ => {
                let col = inner.column;
                let found = if inner.text.is_empty() {
                    self.found()
                } else {
                    format!("'{}'", inner.text)
                };
                return self.err(
                    col,
                    format!("expected 'any' or 'types=[...]' inside throws(...), found {found}"),
                );
            }
        };
        self.expect(')', "to close throws(...)")?;
        Ok(EffectSet {
            throws: Some(t),
            ..PURE
        })
    }

    fn type_name(&mut self) -> Result<String, EffectParseError> {
        self.skip_ws();
        if !self.chars.get(self.pos).is_some_and(|&c| is_ident_start(c)) {
            let col = self.column();
            let found = self.found();
            return self.err(
                col,
                format!("expected an exception type name, found {found}"),
            );
        }
        let w = self.word(true);
        let valid = w
            .text
            .split('.')
            .all(|seg| seg.chars().next().is_some_and(is_ident_start));
        if !valid {
            return self.err(
                w.column,
                format!(
                    "invalid exception type name '{}': expected identifiers joined by '.'",
                    w.text
                ),
            );
        }
        Ok(w.text)
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> EffectSet {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn perr(s: &str) -> EffectParseError {
        match s.parse::<EffectSet>() {
            Ok(e) => panic!("{s:?} should not parse, got {e}"),
            Err(e) => e,
        }
    }

    /// Sorted, deduplicated lists with empty lists dropped: the form the
    /// parser and `union` produce.
    fn normalize(e: &EffectSet) -> EffectSet {
        e.union(&PURE)
    }

    fn mutates_options() -> Vec<Option<Mutates>> {
        vec![
            None,
            Some(Mutates::All),
            Some(Mutates::Args(vec![])),
            Some(Mutates::Args(vec![0])),
            Some(Mutates::Args(vec![2, 0, 2])),
            Some(Mutates::Args(vec![0, 1, 5, 63])),
        ]
    }

    fn throws_options() -> Vec<Option<Throws>> {
        let t = |v: &[&str]| Some(Throws::Types(v.iter().map(|s| s.to_string()).collect()));
        vec![
            None,
            Some(Throws::Any),
            t(&[]),
            t(&["ValueError"]),
            t(&["ValueError", "OSError", "ValueError"]),
            t(&["socket.timeout", "_Private", "a.b_C.D9"]),
        ]
    }

    fn all_sets() -> Vec<EffectSet> {
        let mut out = Vec::new();
        for bits in 0..8u8 {
            for m in mutates_options() {
                for t in throws_options() {
                    out.push(EffectSet {
                        alloc: bits & 1 != 0,
                        io: bits & 2 != 0,
                        nondet: bits & 4 != 0,
                        mutates: m.clone(),
                        throws: t,
                    });
                }
            }
        }
        out
    }

    #[test]
    fn constants_print_exactly() {
        assert_eq!(PURE.to_string(), "pure");
        assert_eq!(
            WORST_CASE.to_string(),
            "io + nondet + mutates(all) + throws(any)"
        );
        assert_eq!(p("io + nondet + mutates(all) + throws(any)"), WORST_CASE);
        assert_eq!(p("pure"), PURE);
        assert_eq!(EffectSet::default(), PURE);
        assert!(PURE.is_pure() && !PURE.is_worst_case());
        assert!(WORST_CASE.is_worst_case() && !WORST_CASE.is_pure());
        assert!(WORST_CASE.union(&p("alloc")).is_worst_case());
    }

    #[test]
    fn display_canonical_order() {
        let e =
            p("throws(types=[ValueError, OSError]) + mutates(args=[2,0]) + nondet + io + alloc");
        assert_eq!(
            e.to_string(),
            "alloc + io + nondet + mutates(args=[0, 2]) + throws(types=[OSError, ValueError])"
        );
        let raw = EffectSet {
            throws: Some(Throws::Types(vec!["ValueError".into(), "OSError".into()])),
            ..PURE
        };
        assert_eq!(raw.to_string(), "throws(types=[ValueError, OSError])");
    }

    #[test]
    fn parse_is_whitespace_insensitive_and_merges_repeats() {
        let a = p("  mutates ( args = [ 2 , 0 ] )+io+ mutates(args=[1,2])\t+ io ");
        assert_eq!(a.mutates, Some(Mutates::Args(vec![0, 1, 2])));
        assert!(a.io);
        assert_eq!(
            p("mutates(args=[1]) + mutates(all)").mutates,
            Some(Mutates::All)
        );
        assert_eq!(
            p("throws(types=[B]) + throws(any)").throws,
            Some(Throws::Any)
        );
        assert_eq!(
            p("throws(types=[B, a.C]) + throws(types=[B])").throws,
            Some(Throws::Types(vec!["B".into(), "a.C".into()]))
        );
    }

    #[test]
    fn empty_lists_mean_nothing() {
        let e = p("mutates(args=[]) + throws(types=[ ])");
        assert!(e.is_pure());
        assert_eq!(e, PURE);
        assert_eq!(e.to_string(), "pure");
        let raw = EffectSet {
            mutates: Some(Mutates::Args(vec![])),
            throws: Some(Throws::Types(vec![])),
            ..PURE
        };
        assert!(raw.is_pure() && raw.may_reorder());
        assert_eq!(raw.to_string(), "pure");
        assert!(PURE.covers(&raw) && raw.covers(&PURE));
    }

    #[test]
    fn round_trip_over_enumeration() {
        for e in all_sets() {
            let text = e.to_string();
            let back = p(&text);
            assert_eq!(back, normalize(&e), "via {text:?}");
            assert_eq!(back.to_string(), normalize(&e).to_string());
            assert_eq!(p(&back.to_string()), back);
        }
    }

    #[test]
    fn union_and_covers_laws() {
        let sets: Vec<EffectSet> = all_sets().iter().map(normalize).collect();
        for a in &sets {
            assert_eq!(a.union(a), *a);
            assert_eq!(a.union(&PURE), *a);
            assert!(a.covers(a));
            assert!(a.covers(&PURE));
            assert!(WORST_CASE.covers(a), "worst case must cover {a}");
            for b in &sets {
                let u = a.union(b);
                assert_eq!(u, b.union(a));
                assert!(u.covers(a) && u.covers(b), "{u} must cover {a} and {b}");
                if a.covers(b) && b.covers(a) && a.alloc == b.alloc {
                    assert_eq!(a, b);
                }
            }
        }
        for a in sets.iter().step_by(7) {
            for b in sets.iter().step_by(5) {
                for c in sets.iter().step_by(11) {
                    assert_eq!(a.union(b).union(c), a.union(&b.union(c)));
                }
            }
        }
    }

    #[test]
    fn covers_specifics() {
        assert!(p("mutates(all)").covers(&p("mutates(args=[3])")));
        assert!(!p("mutates(args=[3])").covers(&p("mutates(all)")));
        assert!(!p("mutates(args=[0])").covers(&p("mutates(args=[0, 1])")));
        assert!(p("throws(types=[A, B])").covers(&p("throws(types=[B])")));
        assert!(!p("throws(types=[A])").covers(&p("throws(any)")));
        assert!(p("io").covers(&p("alloc")));
        assert!(!p("alloc").covers(&p("io")));
        assert!(!p("io").covers(&p("nondet")));
    }

    #[test]
    fn optimisation_permissions() {
        for (s, ok) in [
            ("pure", true),
            ("alloc", true),
            ("io", false),
            ("nondet", false),
            ("mutates(args=[0])", false),
            ("throws(types=[E])", false),
            ("alloc + throws(any)", false),
        ] {
            let e = p(s);
            assert_eq!(e.may_reorder(), ok, "{s}");
            assert_eq!(e.may_cache(), ok, "{s}");
            assert_eq!(e.may_eliminate(), ok, "{s}");
        }
        assert!(!WORST_CASE.may_reorder());
    }

    #[test]
    fn serde_uses_the_display_string() {
        let e = p("alloc + throws(types=[E])");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, "\"alloc + throws(types=[E])\"");
        let back: EffectSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let bad = serde_json::from_str::<EffectSet>("\"pure + io\"").unwrap_err();
        assert!(bad.to_string().contains("column 1"), "{bad}");
        assert!(serde_json::from_str::<EffectSet>("3").is_err());
    }

    #[test]
    fn errors_with_columns() {
        // (input, column, a word the message must contain)
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty"),
            ("   ", 1, "empty"),
            ("pure + io", 1, "stand alone"),
            ("io + pure", 6, "stand alone"),
            ("pure + pure", 1, "stand alone"),
            ("mutates", 1, "mutates(all)"),
            ("io + mutates + nondet", 6, "mutates(all)"),
            ("throws", 1, "throws(any)"),
            ("frobs", 1, "unknown effect 'frobs'"),
            ("io + IO", 6, "throws(types=[...])"),
            ("io +", 5, "after '+'"),
            ("+ io", 1, "expected an effect"),
            ("io + + nondet", 6, "after '+'"),
            ("io nondet", 4, "expected '+'"),
            ("io, nondet", 3, "expected '+'"),
            ("alloc()", 6, "takes no arguments"),
            ("pure (x)", 6, "takes no arguments"),
            ("mutates()", 9, "'all' or 'args=[...]'"),
            ("mutates(some)", 9, "found 'some'"),
            ("mutates(all", 12, "expected ')'"),
            ("mutates(all]", 12, "expected ')'"),
            ("mutates(args)", 13, "expected '='"),
            ("mutates(args=0)", 14, "expected '['"),
            ("mutates(args=[a])", 15, "non-negative"),
            ("mutates(args=[-1])", 15, "non-negative"),
            ("mutates(args=[0,])", 17, "non-negative"),
            ("mutates(args=[0 1])", 17, "expected ']'"),
            (
                "mutates(args=[0, 99999999999999999999999])",
                18,
                "too large",
            ),
            ("mutates(args=[0]", 17, "expected ')'"),
            ("throws()", 8, "'any' or 'types=[...]'"),
            ("throws(all)", 8, "found 'all'"),
            ("throws(types=[1E])", 15, "exception type name"),
            (
                "throws(types=[a..b])",
                15,
                "invalid exception type name 'a..b'",
            ),
            ("throws(types=[a.])", 15, "invalid exception type name"),
            ("throws(types=[A,])", 17, "exception type name"),
            ("throws(types=[A B])", 17, "expected ']'"),
            ("throws(any) x", 13, "expected '+'"),
            ("io\n+ é", 6, "'é'"),
        ];
        for &(input, column, needle) in cases {
            let e = perr(input);
            assert_eq!(e.column, column, "{input:?}: {e}");
            assert!(e.message.contains(needle), "{input:?}: {e}");
            assert!(!e.message.contains('\n'), "{input:?}: {e}");
            assert_eq!(e.to_string(), format!("column {column}: {}", e.message));
        }
    }

    #[test]
    fn unknown_lists_valid_terms() {
        let m = perr("bogus").message;
        for t in [
            "pure",
            "alloc",
            "io",
            "nondet",
            "mutates(all)",
            "throws(any)",
        ] {
            assert!(m.contains(t), "{m}");
        }
    }
}
