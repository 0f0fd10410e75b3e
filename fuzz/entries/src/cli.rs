//! The parsers of what a person types: signatures (and effect lists), the
//! CLI's arguments in their text and JSON forms, and `ffb session` lines.

use ffb_abi::effects::EffectSet;
use ffb_abi::signature::Signature;
use serde_json::Value as Json;

use crate::args::{arg_from_json, arg_from_text, values_for};
use crate::lines::{Line, Lines};
use crate::request::Request;

/// A signature that parses prints as text that parses back to itself.
fn check_round_trip(sig: &Signature) {
    let shown = sig.to_string();
    let back = Signature::parse(&shown)
        .unwrap_or_else(|e| panic!("'{shown}' (printed from a parsed signature) fails: {e}"));
    assert_eq!(&back, sig, "'{shown}' parses to another signature");
    assert!(sig.value_arity() <= sig.args.len());
    assert!(sig.arity_mismatch(sig.value_arity()).is_none());
}

/// A signature, and the same text as an effect list.
pub fn signature(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Signature::parse(text) {
        Ok(sig) => check_round_trip(&sig),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(effects) = text.parse::<EffectSet>() {
        let shown = effects.to_string();
        let back: EffectSet = shown
            .parse()
            .unwrap_or_else(|e| panic!("'{shown}' (printed from parsed effects) fails: {e}"));
        assert_eq!(back, effects, "'{shown}' parses to other effects");
    }
}

/// A signature on the first line; then either one text argument per line
/// (as `ffb call` reads its ARGs) or, when the rest is a JSON array, the
/// arguments of a session request. `@PATH` arguments are left out: they
/// read files, which would make a run depend on the machine.
pub fn arguments(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sig_text, rest) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(sig) = Signature::parse(sig_text) else {
        return;
    };
    match serde_json::from_str::<Json>(rest) {
        Ok(Json::Array(given)) => {
            if let Ok(values) = values_for(&sig, &given, arg_from_json) {
                assert_eq!(values.len(), sig.value_arity());
            }
        }
        _ => {
            let given: Vec<&str> = if rest.is_empty() {
                Vec::new()
            } else {
                rest.split('\n').collect()
            };
            if given.iter().any(|a| a.starts_with('@')) {
                return;
            }
            match values_for(&sig, &given, |ty, text: &&str, at| {
                arg_from_text(ty, text, at)
            }) {
                Ok(values) => assert_eq!(values.len(), sig.value_arity()),
                Err(e) => assert!(!e.message.is_empty()),
            }
        }
    }
}

/// Session input as `ffb session` reads it: every line read by the CLI's
/// own line reader (`Lines`), exactly once, numbered in order, and each
/// either refused with a reason (not UTF-8, too long) or parsed as a request
/// the way the session does before it calls anything.
pub fn session_line(data: &[u8]) {
    let mut lines = Lines::new(std::io::Cursor::new(data));
    let mut read = 0;
    while let Some(line) = lines.next_line().expect("reading from memory cannot fail") {
        read += 1;
        assert_eq!(lines.number(), read, "line numbers skip");
        match line {
            Line::Text(text) if text.trim().is_empty() => {}
            Line::Text(text) => match Request::from_line(&text) {
                Ok(request) => check_round_trip(&request.sig),
                Err(e) => assert!(!e.message.is_empty()),
            },
            Line::Refused { why, .. } => assert!(!why.is_empty()),
        }
    }
    // One answer per line: a last line without its newline counts too.
    let segments = data.split(|&b| b == b'\n').count();
    let lines_in = segments - usize::from(data.is_empty() || data.ends_with(b"\n"));
    assert_eq!(read, lines_in, "{lines_in} lines in, {read} read");
}
