//! What the commands print: a call's result as a line or a JSON object, an
//! error on stderr or as JSON, and an invalid policy as `FILE:LINE:COL:`.
//!
//! Each reporter returns the exit status that goes with what it printed,
//! so a command's message and its status cannot drift apart.
//!
//! Everything goes through [`stdout_text`] and [`stderr_line`]: a closed
//! stdout (`ffb ... | head -1`) ends the command quietly, as Unix tools do,
//! and any other failure to write it (a full disk) is one line on stderr and
//! exit status 1, never a panic. Text on stderr is made [`printable`]
//! first, since much of it echoes what the user typed.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use ffb_loader::{CallOutput, Error, ErrorKind, SandboxPolicy, Signature, Value};
use ffb_policy::diagnostics::PolicyFileError;
use serde_json::{json, Map, Value as Json};

use crate::exit;

/// Longest line ffb prints about an error, in characters; a longer one keeps
/// its start and its end (where the reason usually is).
const MAX_LINE: usize = 2000;

/// Longest echo of one piece of user text inside a message, in characters.
const MAX_ECHO: usize = 120;

/// `text` safe to show on a terminal and on one line: control characters
/// (newlines, escapes, C1 codes) are written as `\n`, `\x1b`, `\u{9b}`...,
/// and a text longer than [`MAX_LINE`] keeps its start and end around `...`.
pub fn printable(text: &str) -> String {
    capped(&escaped(text), MAX_LINE)
}

/// A piece of user text (a signature, a path, an argument) to quote in a
/// message: escaped as [`printable`] does and cut to [`MAX_ECHO`] characters.
pub fn quoted(text: &str) -> String {
    capped(&escaped(text), MAX_ECHO)
}

fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Bidirectional overrides reorder what the terminal shows.
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                if (c as u32) < 0x80 {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                } else {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn capped(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let tail = max / 4;
    let head = max - tail - 3;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    format!("{start}...{end}")
}

/// Writes `text` to stdout and flushes it. `status` is returned when that
/// works, and also when stdout was closed by its reader (nothing more can
/// be said there, and the command's own outcome stands); any other failure
/// is reported by [`stdout_failed`].
pub fn stdout_text(text: &str, status: ExitCode) -> ExitCode {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => status,
        Err(e) => stdout_failed(&e),
    }
}

/// [`stdout_text`] with a final newline.
pub fn stdout_line(line: &str, status: ExitCode) -> ExitCode {
    stdout_text(&format!("{line}\n"), status)
}

/// The exit status after writing stdout failed with `e`: success for a
/// closed pipe (the reader has what it wanted), else one line on stderr
/// and [`exit::CALL_FAILED`].
pub fn stdout_failed(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    stderr_line(&format!(
        "writing the output: {}",
        crate::files::os_error(e)
    ));
    ExitCode::from(exit::CALL_FAILED)
}

/// `ffb: LINE` on stderr, made [`printable`].
pub fn stderr_line(line: &str) {
    stderr_raw(&format!("ffb: {line}"));
}

/// `line` on stderr as it is, but made [`printable`]. A stderr that cannot
/// be written is ignored: there is nowhere left to say so.
fn stderr_raw(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{}", printable(line));
}

/// Reports an error in the chosen format and returns the exit code for it.
pub fn report(error: &Error, json_output: bool, usage: bool) -> ExitCode {
    let status = ExitCode::from(if usage {
        exit::USAGE
    } else {
        exit::CALL_FAILED
    });
    if json_output {
        let mut shown = error.clone();
        shown.message = printable(&error.message);
        stdout_line(
            &json!({"ok": false, "error": shown.to_json()}).to_string(),
            status,
        )
    } else {
        stderr_line(&error.to_string());
        status
    }
}

/// An invalid policy as one line: `FILE:LINE:COL: what is wrong`, or
/// `FILE: what is wrong` when it concerns the file as a whole (it is
/// missing, too large, not a regular file).
pub fn policy_error_line(error: &PolicyFileError) -> String {
    if error.line == 0 {
        format!("{}: {}", error.path, error.message)
    } else {
        error.to_string()
    }
}

/// Reports an invalid policy: `FILE:LINE:COL: what is wrong` on stderr
/// (as compilers write it, for editors), or a `load_failed` object with
/// that message on stdout; exit status 2.
pub fn report_policy(error: &PolicyFileError, json_output: bool) -> ExitCode {
    report_file_error(&policy_error_line(error), json_output)
}

/// Reports an invalid manifest (or its invalid policy) as
/// [`report_policy`] does, with `ffb: ` before it on stderr.
pub fn report_manifest(error: &PolicyFileError, json_output: bool) -> ExitCode {
    report_file_error(&format!("ffb: {}", policy_error_line(error)), json_output)
}

fn report_file_error(line: &str, json_output: bool) -> ExitCode {
    let status = ExitCode::from(exit::USAGE);
    if json_output {
        let message = printable(line.strip_prefix("ffb: ").unwrap_or(line));
        let e = Error::new(ErrorKind::LoadFailed, message);
        stdout_line(
            &json!({"ok": false, "error": e.to_json()}).to_string(),
            status,
        )
    } else {
        stderr_raw(line);
        status
    }
}

/// Prints a policy's warnings (from an imported profile), one line each.
pub fn print_warnings(policy: &SandboxPolicy) {
    for warning in &policy.warnings {
        stderr_line(&format!("warning: {}: {warning}", policy.name));
    }
}

/// A successful call as JSON: `ok`, `ret`, `out` (one entry per argument,
/// null where it writes nothing back) and `effects`.
pub fn success_json(out: &CallOutput) -> Map<String, Json> {
    let mut obj = Map::new();
    obj.insert("ok".into(), json!(true));
    obj.insert("ret".into(), out.ret.to_json());
    obj.insert(
        "out".into(),
        Json::Array(
            out.out
                .iter()
                .map(|v| v.as_ref().map_or(Json::Null, Value::to_json))
                .collect(),
        ),
    );
    obj.insert("effects".into(), json!(out.effects.to_string()));
    obj
}

/// A successful call as one line: `name = ret`, then each value written back.
pub fn success_line(sig: &Signature, out: &CallOutput) -> String {
    let mut line = format!("{} = {}", sig.name, out.ret);
    for (i, v) in out.out.iter().enumerate() {
        if let Some(v) = v {
            line.push_str(&format!("  arg{}: {v}", i + 1));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_and_capped() {
        assert_eq!(printable("a\nb\x1b[31mc\u{9b}"), "a\\nb\\x1b[31mc\\u{9b}");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        let long = "a".repeat(5000) + "END";
        let shown = printable(&long);
        assert_eq!(shown.chars().count(), MAX_LINE);
        assert!(shown.ends_with("aEND") && shown.contains("..."), "{shown}");
        assert_eq!(quoted(&"b".repeat(500)).chars().count(), MAX_ECHO);
        assert_eq!(quoted("short"), "short");
    }
}
