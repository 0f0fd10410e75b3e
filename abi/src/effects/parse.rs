//! The parser of the textual form, `term + term + ...`.
//!
//! A term is a flag (`pure`, `alloc`, `io`, `nondet`) or a list term,
//! `mutates(...)` or `throws(...)`, which takes either a keyword (`all`,
//! `any`) or a keyed list (`args=[...]`, `types=[...]`). Both list terms are
//! read by one routine over their [`ListTerm`] spelling, so they fail alike.

use super::list::{ListEffect, ListTerm};
use super::{EffectParseError, EffectSet, Mutates, Throws, PURE};
use crate::cursor::{is_ident_start, is_word_char, ColumnError, Cursor};

/// Every spelling a term may take, used in error messages.
const VALID_TERMS: &str = "pure, alloc, io, nondet, mutates(all), mutates(args=[...]), \
                           throws(any), throws(types=[...])";

impl ColumnError for EffectParseError {
    fn at(column: usize, message: String) -> Self {
        EffectParseError { column, message }
    }
}

/// The cursor, and the parser's methods on it.
pub(super) type Parser = Cursor<EffectParseError>;

type Res<T> = Result<T, EffectParseError>;

/// A term's name and the 1-based column where it starts.
struct Word {
    text: String,
    column: usize,
}

impl Parser {
    /// Reads an identifier after any whitespace; `dotted` also accepts `.`
    /// so that qualified exception names like `socket.timeout` lex as one
    /// word.
    fn term_word(&mut self, dotted: bool) -> Word {
        self.skip_ws();
        let column = self.column();
        let text = self.take_while(|c| is_word_char(c) || (dotted && c == '.'));
        Word { text, column }
    }

    pub(super) fn parse_set(&mut self) -> Res<EffectSet> {
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
                let what = if terms == 0 {
                    "expected an effect"
                } else {
                    "expected an effect after '+'"
                };
                return self.err_found(|found| {
                    format!("{what}, found {found}; valid effects: {VALID_TERMS}")
                });
            }
            let w = self.term_word(false);
            terms += 1;
            match self.parse_term(&w)? {
                None => pure_at = Some(pure_at.unwrap_or(w.column)),
                Some(t) => set = set.union(&t),
            }
            match self.peek() {
                None => break,
                Some('+') => self.bump(),
                Some(_) => {
                    return self
                        .err_found(|found| format!("expected '+' between effects, found {found}"));
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
    fn parse_term(&mut self, w: &Word) -> Res<Option<EffectSet>> {
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
            "mutates" => {
                let m = self.list_term::<Mutates>(w, Self::index)?;
                return Ok(Some(EffectSet {
                    mutates: Some(m),
                    ..PURE
                }));
            }
            "throws" => {
                let t = self.list_term::<Throws>(w, Self::type_name)?;
                return Ok(Some(EffectSet {
                    throws: Some(t),
                    ..PURE
                }));
            }
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

    /// Parses `(keyword)` or `(key=[item, ...])` after the list term `w`,
    /// with the items sorted and deduplicated.
    fn list_term<L: ListEffect>(
        &mut self,
        w: &Word,
        item: fn(&mut Self) -> Res<L::Item>,
    ) -> Res<L> {
        let ListTerm {
            name,
            keyword,
            key,
            example,
            list,
        } = L::TERM;
        if self.peek() != Some('(') {
            return self.err(
                w.column,
                format!(
                    "'{name}' needs an argument: write {name}({keyword}) or {name}({key}=[{example}])"
                ),
            );
        }
        self.bump();
        let inner = self.term_word(false);
        let items = if inner.text == keyword {
            None
        } else if inner.text == key {
            self.expect('=', &format!("after '{key}'"))?;
            self.expect('[', &format!("to open the {list}"))?;
            let mut v = Vec::new();
            if self.peek() != Some(']') {
                loop {
                    v.push(item(self)?);
                    if self.peek() == Some(',') {
                        self.bump();
                    } else {
                        break;
                    }
                }
            }
            self.expect(']', &format!("to close the {list}"))?;
            v.sort_unstable();
            v.dedup();
            Some(v)
        } else {
            let col = inner.column;
            let found = if inner.text.is_empty() {
                self.found()
            } else {
                format!("'{}'", inner.text)
            };
            return self.err(
                col,
                format!("expected '{keyword}' or '{key}=[...]' inside {name}(...), found {found}"),
            );
        };
        self.expect(')', &format!("to close {name}(...)"))?;
        Ok(L::from_items(items))
    }

    fn index(&mut self) -> Res<usize> {
        self.skip_ws();
        let col = self.column();
        let digits = self.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            let found = self.found();
            return self.err(
                col,
                format!("expected an argument index (a non-negative integer), found {found}"),
            );
        }
        digits
            .parse()
            .or_else(|_| self.err(col, format!("argument index {digits} is too large")))
    }

    fn type_name(&mut self) -> Res<String> {
        self.skip_ws();
        if !self.current().is_some_and(is_ident_start) {
            return self
                .err_found(|found| format!("expected an exception type name, found {found}"));
        }
        let w = self.term_word(true);
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
