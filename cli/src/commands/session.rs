//! `ffb session`: calls as JSON lines on stdin and stdout, served by one
//! long-lived helper until EOF.
//!
//! A bad line gets an error object, with the request's `id` when it has
//! one, and the session goes on.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::Args;
use ffb_loader::{Bridge, BridgeMode, Error, ErrorKind};
use serde_json::{json, Map, Value as Json};

use crate::load::{bridge_disabled, bridge_mode, builder, LoadArgs};
use crate::output::{report, success_json};
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
    let builder = match builder(&args.load, true) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut bridge = match builder.load() {
        Ok(b) => b,
        Err(e) => return report(&e, true, false),
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let response = serve_line(&mut bridge, &line);
        if writeln!(stdout, "{response}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// The response to one line: the result, or the error, with the request's id.
fn serve_line(bridge: &mut Bridge, line: &str) -> Json {
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
    let body = match Request::parse(&request).and_then(|r| r.call(bridge)) {
        Ok(out) => success_json(&out),
        Err(e) => failure(&e),
    };
    with_id(id, body)
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
