//! `ffb session`: calls as JSON lines on stdin and stdout, served by one
//! long-lived helper until EOF.
//!
//! A bad line gets an error object, with the request's `id` when it has
//! one, and the session goes on. With `--manifest`, a request may name a
//! declared function (`"fn": "name"`) instead of giving its `"sig"`.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use ffb_loader::{Bridge, BridgeMode, CallOutput, Error, ErrorKind, Manifest};
use serde_json::{json, Map, Value as Json};

use crate::args::{arg_from_json, values_for};
use crate::exit;
use crate::lines::{Line, Lines};
use crate::load::{audit_checked, bridge_disabled, bridge_mode, builder, manifest, LoadArgs};
use crate::output::{report, stderr_line, stdout_failed, success_json};
use crate::request::Request;

#[derive(Args)]
pub struct SessionArgs {
    #[command(flatten)]
    load: LoadArgs,
}

pub fn run(args: SessionArgs) -> ExitCode {
    if bridge_mode(args.load.bridge_mode) != BridgeMode::Enabled {
        return report(&bridge_disabled(), true, true);
    }
    let manifest = match manifest(&args.load, true) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let builder = match builder(&args.load, manifest.as_ref(), true) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut bridge = match builder.load() {
        Ok(b) => b,
        Err(e) => return report(&e, true, false),
    };
    let status = serve(&mut bridge, manifest.as_ref());
    audit_checked(&bridge, args.load.audit_log.as_deref(), status)
}

/// Answers every line of stdin until its end.
fn serve(bridge: &mut Bridge, manifest: Option<&Manifest>) -> ExitCode {
    let mut lines = Lines::new(std::io::stdin().lock());
    let mut stdout = std::io::stdout().lock();
    loop {
        let response = match lines.next_line() {
            Ok(None) => break,
            Ok(Some(Line::Text(text))) if text.trim().is_empty() => continue,
            Ok(Some(Line::Text(text))) => serve_line(bridge, manifest, &text),
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

/// The response to one line: the result, or the error, with the request's id.
fn serve_line(bridge: &mut Bridge, manifest: Option<&Manifest>, line: &str) -> Json {
    let request: Json = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return with_id(
                Json::Null,
                failure(&Error::new(
                    ErrorKind::BadArgument,
                    format!("not JSON: {e}"),
                )),
            )
        }
    };
    let id = request.get("id").cloned().unwrap_or(Json::Null);
    let result = if request.get("fn").is_some() {
        call_by_name(bridge, manifest, &request)
    } else {
        Request::parse(&request).and_then(|r| r.call(bridge))
    };
    let body = match result {
        Ok(out) => success_json(&out),
        Err(e) => failure(&e),
    };
    with_id(id, body)
}

/// A `{"id", "fn", "args"}` request: a function the manifest declares, by name.
fn call_by_name(
    bridge: &mut Bridge,
    manifest: Option<&Manifest>,
    request: &Json,
) -> Result<CallOutput, Error> {
    let bad = |message: String| Error::new(ErrorKind::BadArgument, message);
    let obj = request
        .as_object()
        .ok_or_else(|| bad("a request must be a JSON object".into()))?;
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "id" | "fn" | "args"))
    {
        let also = if key == "sig" {
            " (give fn or sig, not both)"
        } else {
            ""
        };
        return Err(bad(format!(
            "unknown key '{key}' (a request by name has id, fn and args){also}"
        )));
    }
    let Some(manifest) = manifest else {
        return Err(bad(
            "\"fn\" names a function of a manifest: start the session with --manifest FILE, or give \"sig\"".into(),
        ));
    };
    let name = obj
        .get("fn")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("\"fn\" must be a string".into()))?;
    let decl = manifest
        .function(name)
        .ok_or_else(|| bad(manifest.unknown_function(name)))?;
    let args = match obj.get("args") {
        None => &[][..],
        Some(Json::Array(a)) => a.as_slice(),
        Some(_) => return Err(bad("\"args\" must be an array".into())),
    };
    let values = values_for(&decl.signature, args, arg_from_json)?;
    let f = bridge.function(name).ok_or_else(|| {
        Error::new(
            ErrorKind::BadSignature,
            format!("'{name}' was not declared on the bridge"),
        )
    })?;
    bridge.call(f, &values)
}

fn failure(e: &Error) -> Map<String, Json> {
    let mut obj = Map::new();
    obj.insert("ok".into(), json!(false));
    obj.insert("error".into(), e.to_json());
    obj
}

/// `body` with the request's `"id"` added.
fn with_id(id: Json, body: Map<String, Json>) -> Json {
    let mut obj = Map::new();
    obj.insert("id".into(), id);
    obj.extend(body);
    Json::Object(obj)
}
