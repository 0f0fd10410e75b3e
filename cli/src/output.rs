//! What the commands print: a call's result as a line or a JSON object, an
//! error on stderr or as JSON, and an invalid policy as `FILE:LINE:COL:`.
//!
//! Each reporter returns the exit status that goes with what it printed,
//! so a command's message and its status cannot drift apart.

use std::process::ExitCode;

use ffb_loader::{CallOutput, Error, ErrorKind, SandboxPolicy, Signature, Value};
use ffb_policy::diagnostics::PolicyFileError;
use serde_json::{json, Map, Value as Json};

use crate::exit;

/// Reports an error in the chosen format and returns the exit code for it.
pub fn report(error: &Error, json_output: bool, usage: bool) -> ExitCode {
    if json_output {
        println!("{}", json!({"ok": false, "error": error.to_json()}));
    } else {
        eprintln!("ffb: {error}");
    }
    ExitCode::from(if usage {
        exit::USAGE
    } else {
        exit::CALL_FAILED
    })
}

/// Reports an invalid policy: `FILE:LINE:COL: what is wrong` on stderr, or a
/// `load_failed` object with that message on stdout; exit status 2.
pub fn report_policy(error: &PolicyFileError, json_output: bool) -> ExitCode {
    if json_output {
        let e = Error::new(ErrorKind::LoadFailed, error.to_string());
        println!("{}", json!({"ok": false, "error": e.to_json()}));
    } else {
        eprintln!("{error}");
    }
    ExitCode::from(exit::USAGE)
}

/// Prints a policy's warnings (from an imported profile), one line each.
pub fn print_warnings(policy: &SandboxPolicy) {
    for warning in &policy.warnings {
        eprintln!("ffb: warning: {}: {warning}", policy.name);
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
