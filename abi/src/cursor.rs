//! The character cursor both notations are read with.
//!
//! Signatures and effect sets are short strings a person types, and their
//! errors point at a 1-based *character* column (not a byte offset), so both
//! parsers walk a `Vec<char>`. The cursor owns that walk and the wording of
//! "found ..." in messages, so the two notations describe a mistake alike.

use std::marker::PhantomData;

/// An error at a 1-based character column, built by the cursor's [`Cursor::err`].
pub(crate) trait ColumnError {
    /// The error for `message` at `column`.
    fn at(column: usize, message: String) -> Self;
}

/// A position in a string of characters, whose errors are `E`s.
///
/// Whitespace is insignificant between tokens: [`Cursor::peek`] skips it,
/// while [`Cursor::current`] and [`Cursor::take_while`] do not, so a word is
/// never split by a space.
pub(crate) struct Cursor<E> {
    chars: Vec<char>,
    pos: usize,
    error: PhantomData<fn() -> E>,
}

/// True for a character that may start an identifier.
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// True for a character that may continue an identifier.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<E: ColumnError> Cursor<E> {
    /// A cursor at the first character of `s`.
    pub(crate) fn new(s: &str) -> Self {
        Cursor {
            chars: s.chars().collect(),
            pos: 0,
            error: PhantomData,
        }
    }

    /// The error for `message` at `column`.
    pub(crate) fn err<T>(&self, column: usize, message: impl Into<String>) -> Result<T, E> {
        Err(E::at(column, message.into()))
    }

    /// The error at the cursor for `message`, which is given what is found
    /// there (see [`Cursor::found`]).
    pub(crate) fn err_found<T>(&mut self, message: impl FnOnce(String) -> String) -> Result<T, E> {
        let col = self.column();
        let found = self.found();
        self.err(col, message(found))
    }

    /// The 1-based column of the cursor.
    pub(crate) fn column(&self) -> usize {
        self.pos + 1
    }

    /// Moves the cursor back (or on) to the 1-based `column`.
    pub(crate) fn seek(&mut self, column: usize) {
        self.pos = column - 1;
    }

    /// Steps over one character.
    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    /// Steps over `n` characters.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    /// The character at the cursor, whitespace included.
    pub(crate) fn current(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.current().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// The next non-whitespace character, without consuming it.
    pub(crate) fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.current()
    }

    /// True if the input at the cursor starts with `s`.
    pub(crate) fn at(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    /// True if the next non-whitespace character is `c`; does not consume.
    pub(crate) fn followed_by(&mut self, c: char) -> bool {
        let save = self.pos;
        let hit = self.peek() == Some(c);
        self.pos = save;
        hit
    }

    /// Reads the run of characters matching `pred` at the cursor (no
    /// whitespace skipping); empty if there is none.
    pub(crate) fn take_while(&mut self, pred: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.current().is_some_and(&pred) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// Reads `[A-Za-z0-9_]*` at the cursor (no whitespace skipping).
    pub(crate) fn word(&mut self) -> String {
        self.take_while(is_word_char)
    }

    /// Describes what sits at the cursor, for "found ..." in messages: the
    /// whole word if one starts there, else the one character.
    pub(crate) fn found(&mut self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some(c) if is_ident_start(c) => {
                let save = self.pos;
                let w = self.word();
                self.pos = save;
                format!("'{w}'")
            }
            Some(c) => format!("'{}'", c.escape_debug()),
        }
    }

    /// Consumes `want` (after whitespace), or reports `expected 'want'
    /// {context}, found ...` at the cursor.
    pub(crate) fn expect(&mut self, want: char, context: &str) -> Result<(), E> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            self.err_found(|found| format!("expected '{want}' {context}, found {found}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct E(usize, String);

    impl ColumnError for E {
        fn at(column: usize, message: String) -> Self {
            E(column, message)
        }
    }

    #[test]
    fn columns_count_characters_and_found_names_words() {
        let mut c = Cursor::<E>::new("é  ab_1+");
        assert_eq!(c.found(), "'é'");
        c.bump();
        assert_eq!(c.peek(), Some('a'));
        assert_eq!(c.column(), 4);
        assert_eq!(c.found(), "'ab_1'");
        assert_eq!(c.word(), "ab_1");
        assert_eq!(
            c.expect('-', "here"),
            Err(E(8, "expected '-' here, found '+'".into()))
        );
        assert!(c.at("+") && !c.followed_by('x'));
        c.bump();
        assert_eq!(c.found(), "end of input");
    }
}
