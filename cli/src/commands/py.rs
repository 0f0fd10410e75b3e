//! `ffb py`: call `MODULE:FUNCTION` in a sandboxed Python helper and print
//! the result; `ffb py session` serves such calls, and method calls on the
//! handles they return, as JSON lines.
//!
//! Everything typed is checked before the helper starts: bridge mode, the
//! interpreter (`--python`), every module (`--allow-module`) and module path,
//! the policy, the target and every argument.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use ffb_loader::python::{escape_controls, PyBridge, PyHandle, PyValue};
use ffb_loader::{BridgeMode, Error, ErrorKind};
use serde_json::{json, Map, Value as Json};

use crate::exit;
use crate::lines::{Line, Lines};
use crate::load::{bridge_disabled, bridge_mode, load_checked};
use crate::output::{report, report_policy, stderr_line, stdout_failed, stdout_line};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PyArgs {
    #[command(subcommand)]
    session: Option<PySubcommand>,
    #[command(flatten)]
    common: PyOptions,
    /// Print {"ok": true, "result": ...} (values in ffb's JSON form).
    #[arg(long)]
    json: bool,
    /// A keyword argument, NAME=JSON (repeatable).
    #[arg(long = "kw", value_name = "NAME=JSON")]
    kwargs: Vec<String>,
    /// What to call: MODULE:FUNCTION (zlib:crc32, os.path:join).
    #[arg(value_name = "MODULE:FUNCTION")]
    target: Option<String>,
    /// Positional arguments, each a JSON value ({"hex": "..."} for bytes,
    /// {"tuple": [...]}, {"int": "digits"} for big ints).
    #[arg(value_name = "JSON_ARG", allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
enum PySubcommand {
    /// Serve calls as JSON lines on stdin and stdout, with one helper.
    Session(SessionArgs),
}

#[derive(Args)]
struct SessionArgs {
    #[command(flatten)]
    common: PyOptions,
}

/// What both forms take.
#[derive(Args, Clone)]
struct PyOptions {
    /// Allow loading native code (or set FFB_BRIDGE_MODE=1).
    #[arg(long)]
    bridge_mode: bool,
    /// The interpreter to embed (a virtual environment's bin/python, say)
    /// [default: /usr/bin/python3.11].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Allow importing this top-level module and what its distribution
    /// requires (repeatable); the standard library is always allowed.
    #[arg(long = "allow-module", value_name = "MODULE")]
    allow_module: Vec<String>,
    /// A directory of your own modules, read-only in the helper (repeatable).
    #[arg(long = "module-path", value_name = "DIR")]
    module_path: Vec<PathBuf>,
    /// A preset or a policy file [default: python].
    #[arg(long, value_name = "PRESET_OR_FILE")]
    policy: Option<String>,
    /// Timeout for each call, in milliseconds [default: 30000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Append one JSON line per violation, crash, timeout and respawn to this file.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Append the interpreter's stdout and stderr to this file.
    #[arg(long, value_name = "FILE")]
    extension_output: Option<PathBuf>,
}

pub fn run(args: PyArgs) -> ExitCode {
    if let Some(PySubcommand::Session(session)) = args.session {
        return run_session(session.common);
    }
    let json_output = args.json;
    if bridge_mode(args.common.bridge_mode) != BridgeMode::Enabled {
        return report(&bridge_disabled(), json_output, true);
    }
    let usage = |message: String| {
        report(
            &Error::new(ErrorKind::BadArgument, message),
            json_output,
            true,
        )
    };
    let Some(target) = args.target else {
        return usage("give MODULE:FUNCTION to call (or `ffb py session`)".into());
    };
    let mut values = Vec::with_capacity(args.args.len());
    for (i, text) in args.args.iter().enumerate() {
        match parse_value(text) {
            Ok(v) => values.push(v),
            Err(why) => return usage(format!("argument {}: {why}", i + 1)),
        }
    }
    let mut kwargs = Vec::with_capacity(args.kwargs.len());
    for text in &args.kwargs {
        let Some((name, value)) = text.split_once('=') else {
            return usage(format!("--kw {text:?}: give NAME=JSON"));
        };
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return usage(format!("--kw {text:?}: {name:?} is not a keyword name"));
        }
        match parse_value(value) {
            Ok(v) => kwargs.push((name, v)),
            Err(why) => return usage(format!("--kw {name}: {why}")),
        }
    }
    if let Err(e) = ffb_loader::python::check_target(&target) {
        return report(&e, json_output, true);
    }
    let mut py = match start(&args.common, json_output) {
        Ok(py) => py,
        Err(code) => return code,
    };
    match py.call(&target, &values, &kwargs) {
        Ok(value) if json_output => stdout_line(
            &json!({"ok": true, "result": value.to_json()}).to_string(),
            ExitCode::SUCCESS,
        ),
        Ok(value) => stdout_line(&value.to_string(), ExitCode::SUCCESS),
        Err(e) => report_python(&e, json_output),
    }
}

/// A JSON argument: any JSON value, in ffb's JSON form.
fn parse_value(text: &str) -> Result<PyValue, String> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| format!("{text:?} is not JSON ({e}); a string is written \"...\""))?;
    PyValue::from_json(&json)
}

/// Builds the bridge from the flags, reporting a failure (exit 2 for what
/// was typed wrong, 1 for a helper that would not start).
fn start(options: &PyOptions, json_output: bool) -> Result<PyBridge, ExitCode> {
    let mut builder = PyBridge::builder().bridge_mode(BridgeMode::Enabled);
    if let Some(p) = &options.python {
        builder = builder.python(p);
    }
    for m in &options.allow_module {
        builder = builder.allow_module(m);
    }
    for d in &options.module_path {
        builder = builder.module_path(d);
    }
    if let Some(spec) = &options.policy {
        match load_checked(spec) {
            Ok(policy) => builder = builder.policy(policy),
            Err(e) => return Err(report_policy(&e, json_output)),
        }
    }
    if let Some(ms) = options.timeout_ms {
        builder = builder.timeout(Duration::from_millis(ms));
    }
    if let Some(log) = &options.audit_log {
        builder = builder.audit_log(log);
    }
    if let Some(out) = &options.extension_output {
        builder = builder.extension_output(out);
    }
    builder.build().map_err(|e| {
        let usage = matches!(e.kind, ErrorKind::BadArgument | ErrorKind::BridgeDisabled);
        report_python(&e, json_output).max_with(usage)
    })
}

/// Reports an error; a Python exception's traceback follows on stderr,
/// every line marked as the helper's.
fn report_python(e: &Error, json_output: bool) -> ExitCode {
    let code = report(e, json_output, matches!(e.kind, ErrorKind::BadArgument));
    if let (false, ErrorKind::PythonException { traceback, .. }) = (json_output, &e.kind) {
        let mut err = std::io::stderr().lock();
        for line in traceback.lines().take(200) {
            let _ = writeln!(err, "  | {}", escape_controls(line));
        }
    }
    code
}

/// An exit code raised to 2 when the failure was bad input.
trait UsageCode {
    fn max_with(self, usage: bool) -> ExitCode;
}

impl UsageCode for ExitCode {
    fn max_with(self, usage: bool) -> ExitCode {
        if usage {
            ExitCode::from(exit::USAGE)
        } else {
            self
        }
    }
}

fn run_session(options: PyOptions) -> ExitCode {
    if bridge_mode(options.bridge_mode) != BridgeMode::Enabled {
        return report(&bridge_disabled(), true, true);
    }
    let mut py = match start(&options, true) {
        Ok(py) => py,
        Err(code) => return code,
    };
    let mut session = Session {
        handles: Vec::new(),
    };
    let mut lines = Lines::new(std::io::stdin().lock());
    let mut stdout = std::io::stdout().lock();
    loop {
        let response = match lines.next_line() {
            Ok(None) => break,
            Ok(Some(Line::Text(text))) if text.trim().is_empty() => continue,
            Ok(Some(Line::Text(text))) => session.serve_line(&mut py, &text),
            Ok(Some(Line::Refused { id, why })) => with_id(
                id,
                failure(&Error::new(
                    ErrorKind::BadArgument,
                    format!("line {}: {why}", lines.number()),
                )),
            ),
            Err(e) => {
                stderr_line(&format!("reading stdin: {e}"));
                return ExitCode::from(exit::CALL_FAILED);
            }
        };
        if let Err(e) = writeln!(stdout, "{response}").and_then(|_| stdout.flush()) {
            return stdout_failed(&e);
        }
    }
    ExitCode::SUCCESS
}

/// A session's handles: every one a result has shown, by token, until it
/// is released.
struct Session {
    handles: Vec<PyHandle>,
}

impl Session {
    fn serve_line(&mut self, py: &mut PyBridge, line: &str) -> Json {
        let request: Json = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return with_id(Json::Null, failure(&bad(format!("not JSON: {e}")))),
        };
        let id = request.get("id").cloned().unwrap_or(Json::Null);
        let body = match self.serve(py, &request) {
            Ok(value) => {
                self.remember(&value);
                let mut obj = Map::new();
                obj.insert("ok".into(), json!(true));
                obj.insert("result".into(), value.to_json());
                obj
            }
            Err(e) => failure(&e),
        };
        with_id(id, body)
    }

    fn serve(&mut self, py: &mut PyBridge, request: &Json) -> Result<PyValue, Error> {
        let obj = request
            .as_object()
            .ok_or_else(|| bad("a request must be a JSON object".into()))?;
        const KEYS: &[&str] = &[
            "id", "call", "method", "getattr", "release", "handle", "args", "kwargs",
        ];
        if let Some(key) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown key '{key}' (a request has id and one of call, method + handle, getattr + handle, release; args and kwargs)"
            )));
        }
        let resolve = |token: u64| self.handles.iter().find(|h| h.token() == token).cloned();
        let args = match obj.get("args") {
            None => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .map(|j| PyValue::from_json_with(j, &resolve))
                .collect::<Result<_, _>>()
                .map_err(|why| bad(format!("\"args\": {why}")))?,
            Some(_) => return Err(bad("\"args\" must be an array".into())),
        };
        let kwargs_owned: Vec<(String, PyValue)> = match obj.get("kwargs") {
            None => Vec::new(),
            Some(Json::Object(map)) => map
                .iter()
                .map(|(k, j)| Ok((k.clone(), PyValue::from_json_with(j, &resolve)?)))
                .collect::<Result<_, String>>()
                .map_err(|why| bad(format!("\"kwargs\": {why}")))?,
            Some(_) => return Err(bad("\"kwargs\" must be an object".into())),
        };
        let kwargs: Vec<(&str, PyValue)> = kwargs_owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let handle = || -> Result<PyHandle, Error> {
            let token = obj.get("handle").and_then(Json::as_u64).ok_or_else(|| {
                bad("this request needs \"handle\": a token a result showed".into())
            })?;
            resolve(token).ok_or_else(|| {
                Error::new(
                    ErrorKind::StaleHandle,
                    format!(
                        "handle {token} is not one of this session's (released, or never shown)"
                    ),
                )
            })
        };
        let text = |key: &str| obj.get(key).and_then(Json::as_str);
        match (
            text("call"),
            text("method"),
            text("getattr"),
            obj.get("release"),
        ) {
            (Some(target), None, None, None) => py.call(target, &args, &kwargs),
            (None, Some(method), None, None) => py.call_method(&handle()?, method, &args, &kwargs),
            (None, None, Some(name), None) => py.getattr(&handle()?, name),
            (None, None, None, Some(token)) => {
                let token = token
                    .as_u64()
                    .ok_or_else(|| bad("\"release\" takes a handle's token".into()))?;
                let h = resolve(token).ok_or_else(|| {
                    Error::new(
                        ErrorKind::StaleHandle,
                        format!("handle {token} is not one of this session's"),
                    )
                })?;
                self.handles.retain(|k| k.token() != token);
                py.release(&h)?;
                Ok(PyValue::None)
            }
            _ => Err(bad(
                "a request has exactly one of \"call\", \"method\", \"getattr\" or \"release\""
                    .into(),
            )),
        }
    }

    /// Keeps every handle in `value`, so that later lines can name it.
    fn remember(&mut self, value: &PyValue) {
        match value {
            PyValue::Handle(h) => self.handles.push(h.clone()),
            PyValue::List(items) | PyValue::Tuple(items) => {
                items.iter().for_each(|v| self.remember(v))
            }
            PyValue::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
                self.remember(k);
                self.remember(v);
            }),
            _ => {}
        }
    }
}

fn bad(message: String) -> Error {
    Error::new(ErrorKind::BadArgument, message)
}

fn failure(e: &Error) -> Map<String, Json> {
    let mut obj = Map::new();
    obj.insert("ok".into(), json!(false));
    obj.insert("error".into(), e.to_json());
    obj
}

fn with_id(id: Json, body: Map<String, Json>) -> Json {
    let mut obj = Map::new();
    obj.insert("id".into(), id);
    obj.extend(body);
    Json::Object(obj)
}
