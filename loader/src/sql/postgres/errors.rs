//! What libpq's errors become: a failed result's SQLSTATE, message, detail
//! and hint, or the connection's verbose message split into its SQLSTATE
//! and text; a server error about the parameters given is `bad_argument`.

use super::Postgres;
use crate::error::{err, Error, ErrorKind, Result};
use crate::sql::calls::{batch_each, text};
use crate::value::Value as Raw;

const DIAG_SQLSTATE: i32 = b'C' as i32;
const DIAG_MESSAGE: i32 = b'M' as i32;
const DIAG_DETAIL: i32 = b'D' as i32;
const DIAG_HINT: i32 = b'H' as i32;

/// Splits a libpq connection-level message (verbose) into its SQLSTATE and
/// text: `ERROR:  22012: division by zero\nLOCATION:  ...` gives `22012`
/// and `division by zero`.
fn split_message(message: &str) -> (String, String) {
    let mut code = String::new();
    let mut lines = Vec::new();
    for (i, line) in message.lines().enumerate() {
        if line.starts_with("LOCATION:") {
            continue;
        }
        if i == 0 {
            let rest = line.split_once(":  ").map(|(_, r)| r).unwrap_or(line);
            if let Some((c, text)) = rest.split_once(": ") {
                if c.len() == 5 && c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    code = c.to_string();
                    lines.push(text.to_string());
                    continue;
                }
            }
            lines.push(rest.to_string());
        } else {
            lines.push(line.to_string());
        }
    }
    if code.is_empty() {
        code = "XX000".into();
    }
    (code, lines.join("\n").trim_end().to_string())
}

/// A server error that is about the parameters given, not the statement:
/// the caller's mistake, `bad_argument`. Too few parameters is `42P02`
/// ("there is no parameter $N"); too many is `42P18` for the first one the
/// statement never uses ("could not determine data type of parameter $N",
/// also what a parameter whose type nothing determines gives: a cast in the
/// statement fixes both) or `08P01` ("bind message supplies N parameters").
fn parameter_error(code: &str, message: &str) -> bool {
    code == "42P02"
        || (code == "42P18" && message.contains("parameter $"))
        || (code == "08P01" && message.contains("bind message supplies"))
}

impl Postgres {
    /// The error for any use of a connection left in a state the driver
    /// cannot use (COPY mode, a libpq that would not stop answering).
    pub(super) fn fail_if_broken(&self) -> Result<()> {
        match &self.broken {
            Some(why) => err(
                ErrorKind::Foreign {
                    driver: "postgres".into(),
                    code: "08006".into(),
                },
                why.clone(),
            ),
            None => Ok(()),
        }
    }

    /// The connection's last error (verbose), as a foreign error.
    pub(super) fn connection_error(&mut self) -> Error {
        match self
            .bridge
            .call(self.fns.error_message, std::slice::from_ref(&self.conn))
        {
            Ok(out) => {
                let (code, message) = split_message(&text(&out.ret));
                Error::foreign("postgres", code, message)
            }
            Err(e) => e,
        }
    }

    /// The error a failed result carries: its SQLSTATE, message, detail and
    /// hint.
    pub(super) fn result_error(&mut self, res: &Raw) -> Error {
        let args: Vec<[Raw; 2]> = [DIAG_SQLSTATE, DIAG_MESSAGE, DIAG_DETAIL, DIAG_HINT]
            .iter()
            .map(|&f| [res.clone(), Raw::I32(f)])
            .collect();
        let outs = match batch_each(&mut self.bridge, self.fns.error_field, &args) {
            Ok(o) => o,
            Err(e) => return e,
        };
        let field = |i: usize| text(&outs[i].ret);
        let (code, mut message) = (field(0), field(1));
        if message.is_empty() {
            return self.connection_error();
        }
        for (label, i) in [("DETAIL", 2), ("HINT", 3)] {
            let v = field(i);
            if !v.is_empty() {
                message.push_str(&format!("\n{label}:  {v}"));
            }
        }
        if parameter_error(&code, &message) {
            return Error::new(ErrorKind::BadArgument, message);
        }
        let code = if code.is_empty() {
            "XX000".to_string()
        } else {
            code
        };
        Error::foreign("postgres", code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_messages_split() {
        let (c, m) =
            split_message("ERROR:  22012: division by zero\nLOCATION:  int4div, int.c:869\n");
        assert_eq!((c.as_str(), m.as_str()), ("22012", "division by zero"));
        let (c, m) = split_message("ERROR:  42P01: relation \"x\" does not exist\nLINE 1: select * from x\n                      ^\nLOCATION:  parserOpenTable\n");
        assert_eq!(c, "42P01");
        assert!(
            m.starts_with("relation \"x\" does not exist\nLINE 1:"),
            "{m}"
        );
        let (c, m) = split_message("server closed the connection unexpectedly\n");
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("XX000", "server closed the connection unexpectedly")
        );
    }
}
