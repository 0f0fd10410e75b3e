//! Where one SQL statement ends and the next begins, for drivers whose
//! library does not say (SQLite does: its driver splits with
//! `sqlite3_prepare_v2`'s tail, which is SQLite's own rule).
//!
//! The scanner knows just enough of the lexical rules to never see a `;`
//! inside a literal, a quoted identifier or a comment: `'...'` with `''`,
//! `"..."` with `""`, `--` to the end of the line, `/* ... */` (nested, as
//! PostgreSQL nests them), and for PostgreSQL also `E'...'` with backslash
//! escapes and `$tag$ ... $tag$` dollar quoting.

/// Whose lexical rules to split by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// ISO SQL quoting and comments (what ODBC drivers take).
    Standard,
    /// PostgreSQL: [`Dialect::Standard`] plus nested comments, `E'...'`
    /// strings and dollar quoting.
    Postgres,
}

/// Whether `sql` holds no statement: only whitespace, comments and `;`.
///
/// ```
/// use ffb_loader::sql::split::is_blank;
/// assert!(is_blank(" ;; -- nothing\n /* here */ "));
/// assert!(!is_blank("-- x\n select 1"));
/// ```
pub fn is_blank(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() || c == b';' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => i = comment_end(b, i, false),
            _ => return false,
        }
    }
    true
}

/// The end of the first statement of `sql`, just past its `;` (or the end of
/// the text when the last statement has none), or `None` when `sql` is
/// [blank](is_blank). An unterminated literal or comment runs to the end of
/// the text; the server then reports it.
///
/// ```
/// use ffb_loader::sql::split::{statement_end, Dialect};
/// let sql = "select 'a;b' ; select 2";
/// assert_eq!(statement_end(sql, Dialect::Standard), Some(14));
/// assert_eq!(statement_end("select $x$;$x$", Dialect::Postgres), Some(14));
/// assert_eq!(statement_end(" -- only a comment", Dialect::Standard), None);
/// ```
pub fn statement_end(sql: &str, dialect: Dialect) -> Option<usize> {
    if is_blank(sql) {
        return None;
    }
    let b = sql.as_bytes();
    let pg = dialect == Dialect::Postgres;
    let mut i = 0;
    while i < b.len() {
        i = match b[i] {
            b';' => return Some(i + 1),
            b'\'' => {
                // E'...' (PostgreSQL): backslash escapes.
                let escapes =
                    pg && i > 0 && matches!(b[i - 1], b'e' | b'E') && !ident_before(b, i - 1);
                quoted_end(b, i, b'\'', escapes)
            }
            b'"' => quoted_end(b, i, b'"', false),
            b'-' if b.get(i + 1) == Some(&b'-') => line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => comment_end(b, i, pg),
            b'$' if pg && !ident_before(b, i) => dollar_end(b, i),
            _ => i + 1,
        };
    }
    Some(b.len())
}

/// Whether the byte before `i` continues an identifier (so `i` does not
/// start a token of its own).
fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0
        && (b[i - 1].is_ascii_alphanumeric()
            || b[i - 1] == b'_'
            || b[i - 1] == b'$'
            || b[i - 1] >= 0x80)
}

/// Past the newline that ends a `--` comment starting at `i`.
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| i + n + 1)
}

/// Past the `*/` that closes the comment starting at `i`, counting nested
/// ones when `nested`.
fn comment_end(b: &[u8], mut i: usize, nested: bool) -> usize {
    let mut depth = 0usize;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' && (nested || depth == 0) {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Past the closing `quote` of the literal opening at `i` (a doubled quote
/// stays inside; with `escapes`, so does a backslash-escaped byte).
fn quoted_end(b: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    i += 1;
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Past a `$tag$ ... $tag$` string opening at `i`; a `$` that opens no tag
/// (a positional parameter such as `$1`) is one byte.
fn dollar_end(b: &[u8], i: usize) -> usize {
    let tag_len = b[i + 1..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80));
    let Some(n) = tag_len else { return i + 1 };
    let close = i + 1 + n;
    if b[close] != b'$' || b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return i + 1;
    }
    let tag = &b[i..=close];
    let body = close + 1;
    b[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(b.len(), |p| body + p + tag.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mut sql: &str, d: Dialect) -> Vec<&str> {
        let mut out = Vec::new();
        while let Some(end) = statement_end(sql, d) {
            out.push(sql[..end].trim());
            sql = &sql[end..];
        }
        out
    }

    #[test]
    fn semicolons_in_literals_comments_and_quotes_do_not_split() {
        let sql = "select 'a;''b'; select \"x;\" from t -- c;\n; /* ; */ select 3";
        assert_eq!(
            split(sql, Dialect::Standard),
            [
                "select 'a;''b';",
                "select \"x;\" from t -- c;\n;",
                "/* ; */ select 3"
            ]
        );
        assert_eq!(split("select 1;;  ", Dialect::Standard), ["select 1;"]);
    }

    #[test]
    fn postgres_rules() {
        let d = Dialect::Postgres;
        assert_eq!(
            split("select E'a\\';b'; select 2", d),
            ["select E'a\\';b';", "select 2"]
        );
        // Without E, a backslash is an ordinary character.
        assert_eq!(
            split("select 'a\\'; select 2", d),
            ["select 'a\\';", "select 2"]
        );
        assert_eq!(
            split("do $body$ begin; end $body$; select $1", d),
            ["do $body$ begin; end $body$;", "select $1"]
        );
        assert_eq!(
            split("/* a /* b; */ c; */ select 1; x", d),
            ["/* a /* b; */ c; */ select 1;", "x"]
        );
        assert_eq!(split("select $$;$$", d), ["select $$;$$"]);
        assert_eq!(split("select 'unterminated;", d), ["select 'unterminated;"]);
    }

    #[test]
    fn blank_text() {
        assert!(is_blank(""));
        assert!(is_blank("/* unterminated"));
        assert!(!is_blank("x"));
        assert!(!is_blank("- 1"));
    }
}
