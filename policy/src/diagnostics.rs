//! What a policy file's reader is told when it is wrong: one line naming the
//! file, line and column of the offending value, and a suggestion when a
//! syscall name is a typo away from a real one.
//!
//! Every format (TOML, Docker/OCI JSON, seccompiler JSON) reports through
//! [`PolicyFileError`], so a deploy script can point an editor at any of them.
//!
//! ```
//! use ffb_policy::source::parse_toml_policy;
//! let e = parse_toml_policy("[seccomp]\nallow = [\"getpdi\"]", "p.toml").unwrap_err();
//! assert_eq!((e.line, e.column), (2, 10));
//! assert_eq!(e.to_string(), "p.toml:2:10: unknown syscall 'getpdi' (did you mean 'getpid'?)");
//! ```

use std::fmt;

use crate::syscalls::all_names;

/// An error in a policy file, with the position of the offending value.
///
/// Displays as one line: `PATH:LINE:COL: message`. Lines and columns count
/// from 1; both are 0 when the error concerns the file as a whole (it is
/// missing or unreadable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFileError {
    /// The file's path, as given.
    pub path: String,
    /// The line, from 1 (0: the whole file).
    pub line: usize,
    /// The column in characters, from 1 (0: the whole file).
    pub column: usize,
    /// What is wrong, on one line.
    pub message: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for PolicyFileError {}

impl PolicyFileError {
    /// An error at byte `offset` of `text`.
    pub(crate) fn at(path: &str, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, offset);
        Self::new(path, line, column, message)
    }

    /// An error about the file as a whole.
    pub(crate) fn whole(path: &str, message: impl Into<String>) -> Self {
        Self::new(path, 0, 0, message)
    }

    /// A file that is not JSON, at the parser's position.
    pub(crate) fn json(path: &str, e: &serde_json::Error) -> Self {
        Self::new(path, e.line(), e.column(), format!("not valid JSON: {e}"))
    }

    fn new(path: &str, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            line,
            column,
            message: one_line(&message.into()),
        }
    }
}

/// The message with every run of whitespace (newlines included) as one space:
/// the error must stay one line, whatever a parser put in it.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// "unknown syscall 'x'", with "did you mean 'y'?" when a close name exists.
pub(crate) fn unknown_syscall_message(name: &str) -> String {
    match did_you_mean(name) {
        Some(close) => format!("unknown syscall '{name}' (did you mean '{close}'?)"),
        None => format!("unknown syscall '{name}' (not an x86_64 syscall)"),
    }
}

/// The known syscall name closest to `name`, if it is close enough.
fn did_you_mean(name: &str) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    all_names()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters, with one row of the table.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("opnat"), Some("openat"));
        assert_eq!(did_you_mean("zzzzzzzz"), None);
        assert_eq!(
            unknown_syscall_message("frobnicate_all"),
            "unknown syscall 'frobnicate_all' (not an x86_64 syscall)"
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn positions_count_characters_from_one() {
        let text = "a = 1\nb = \"é\" x";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, text.len()), (2, 10));
        // Inside a multi-byte character: the character's own column.
        assert_eq!(line_column(text, 12), (2, 6));
        let e = PolicyFileError::at("p", text, 6, "two\n  lines");
        assert_eq!(e.to_string(), "p:2:1: two lines");
        assert_eq!(
            PolicyFileError::whole("p", "gone").to_string(),
            "p:0:0: gone"
        );
    }
}
