//! Reading a manifest: TOML into spanned raw tables, then every check, each
//! reported at the key or value it is about.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use ffb_abi::effects::{EffectSet, Mutates, WORST_CASE};
use ffb_abi::signature::{ArgType, Signature};
use serde::Deserialize;
use toml::Spanned;

use super::kinds::handle_slots;
use super::{is_preset, FunctionDecl, HandleDecl, Manifest, ManifestPolicy};
use crate::diagnostics::PolicyFileError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    library: RawLibrary,
    #[serde(default)]
    handles: BTreeMap<Spanned<String>, RawHandle>,
    #[serde(default)]
    functions: BTreeMap<Spanned<String>, RawFunction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLibrary {
    name: Spanned<String>,
    policy: Spanned<String>,
    description: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandle {
    close: Spanned<String>,
    parent: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    sig: Spanned<String>,
    effects: Option<Spanned<String>>,
    #[serde(default)]
    retained: Vec<Spanned<i64>>,
}

/// An error: where (a byte range of the text) and what.
type Fail = (Range<usize>, String);

pub(super) fn parse(text: &str, origin: &str) -> Result<Manifest, PolicyFileError> {
    if text.trim().is_empty() {
        return Err(PolicyFileError::at(origin, text, 0, "empty manifest"));
    }
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        PolicyFileError::at(origin, text, offset, with_suggestion(e.message()))
    })?;
    convert(raw, text, origin)
}

fn convert(raw: RawManifest, text: &str, origin: &str) -> Result<Manifest, PolicyFileError> {
    let at = |(span, message): Fail| PolicyFileError::at(origin, text, span.start, message);
    let lib = raw.library;
    let name = lib.name.get_ref().trim();
    if name.is_empty() {
        return Err(at((lib.name.span(), "library name is empty".into())));
    }
    let spec = lib.policy.get_ref();
    let policy = if is_preset(spec) {
        ManifestPolicy::Preset(spec.clone())
    } else if spec.trim().is_empty() {
        return Err(at((
            lib.policy.span(),
            "policy is empty: give a preset (pure, fs-read, db-client) or a policy file".into(),
        )));
    } else {
        let dir = Path::new(origin).parent().unwrap_or(Path::new(""));
        ManifestPolicy::File(dir.join(spec))
    };
    let policy_at = line_column(text, lib.policy.span().start);

    // Functions first, in file order (so the first mistake in the file is
    // the one reported): handle kinds are checked against them.
    let mut raw_functions: Vec<(&Spanned<String>, &RawFunction)> = raw.functions.iter().collect();
    raw_functions.sort_by_key(|(key, _)| key.span().start);
    let mut functions: Vec<(FunctionDecl, &RawFunction)> = Vec::new();
    for (key, f) in raw_functions {
        functions.push((function(key, f, text).map_err(at)?, f));
    }

    let mut kinds: Vec<(&Spanned<String>, &RawHandle)> = raw.handles.iter().collect();
    kinds.sort_by_key(|(key, _)| key.span().start);
    let kind_names: Vec<&str> = kinds.iter().map(|(k, _)| k.get_ref().as_str()).collect();

    // Every kind a signature uses is declared.
    for (decl, f) in &functions {
        for slot in handle_slots(&decl.signature) {
            if let Some(kind) = slot.kind {
                if !kind_names.contains(&kind) {
                    let span = find_in(&f.sig, text, &format!("<{kind}>"), 1);
                    return Err(at((
                        span,
                        unknown_name("handle kind", kind, &kind_names, "[handles.NAME]"),
                    )));
                }
            }
        }
    }

    let mut handles = Vec::new();
    for (key, h) in &kinds {
        let kind = key.get_ref();
        check_identifier(key, "handle kind").map_err(at)?;
        let close = h.close.get_ref();
        let Some((closer, _)) = functions.iter().find(|(d, _)| d.name() == close) else {
            let names: Vec<&str> = functions.iter().map(|(d, _)| d.name()).collect();
            return Err(at((
                h.close.span(),
                unknown_name("function", close, &names, "[functions.NAME]"),
            )));
        };
        if !handle_slots(&closer.signature)
            .iter()
            .any(|s| !s.out && s.kind == Some(kind.as_str()))
        {
            return Err(at((
                h.close.span(),
                format!(
                    "close function '{close}' takes no handle<{kind}> argument (it is '{}')",
                    closer.signature
                ),
            )));
        }
        if let Some(parent) = &h.parent {
            let p = parent.get_ref();
            if p == kind {
                return Err(at((
                    parent.span(),
                    format!("handle kind '{kind}' cannot be its own parent"),
                )));
            }
            if !kind_names.contains(&p.as_str()) {
                return Err(at((
                    parent.span(),
                    unknown_name("handle kind", p, &kind_names, "[handles.NAME]"),
                )));
            }
        }
        handles.push(HandleDecl {
            name: kind.clone(),
            close: close.clone(),
            parent: h.parent.as_ref().map(|p| p.get_ref().clone()),
        });
    }
    check_no_cycles(&kinds).map_err(at)?;

    Ok(Manifest {
        origin: origin.to_string(),
        library: name.to_string(),
        policy,
        description: lib.description.map(Spanned::into_inner),
        handles,
        functions: functions.into_iter().map(|(d, _)| d).collect(),
        policy_at,
    })
}

/// One `[functions.NAME]` table, checked on its own.
fn function(key: &Spanned<String>, f: &RawFunction, text: &str) -> Result<FunctionDecl, Fail> {
    let sig_text = f.sig.get_ref();
    let signature = Signature::parse(sig_text).map_err(|e| {
        (
            column_in(&f.sig, text, e.column),
            format!("sig: {}", e.message),
        )
    })?;
    if signature.name != *key.get_ref() {
        return Err((
            f.sig.span(),
            format!(
                "sig declares '{}' but the table is [functions.{}]: they must be the same",
                signature.name,
                key.get_ref()
            ),
        ));
    }
    let declared_effects = match &f.effects {
        None => WORST_CASE,
        Some(e) => {
            let set: EffectSet =
                e.get_ref()
                    .parse()
                    .map_err(|err: ffb_abi::effects::EffectParseError| {
                        (
                            column_in(e, text, err.column),
                            format!("effects: {}", err.message),
                        )
                    })?;
            if let Some(Mutates::Args(args)) = &set.mutates {
                if let Some(&bad) = args.iter().find(|&&i| i >= signature.args.len()) {
                    return Err((
                        e.span(),
                        format!(
                            "effects: mutates argument {bad}, but '{}' has {} argument{} (positions count from 0)",
                            signature.name,
                            signature.args.len(),
                            if signature.args.len() == 1 { "" } else { "s" }
                        ),
                    ));
                }
            }
            set
        }
    };
    let mut retained = Vec::new();
    for pos in &f.retained {
        let p = *pos.get_ref();
        let ty = usize::try_from(p)
            .ok()
            .and_then(|i| signature.args.get(i).map(|t| (i, t)));
        let Some((i, ty)) = ty else {
            return Err((
                pos.span(),
                format!(
                    "retained position {p} is out of range: '{}' has {} argument{} (positions count from 0)",
                    signature.name,
                    signature.args.len(),
                    if signature.args.len() == 1 { "" } else { "s" }
                ),
            ));
        };
        if !matches!(ty, ArgType::CStr | ArgType::Bytes) {
            return Err((
                pos.span(),
                format!(
                    "retained position {i} is {}, not a buffer the caller fills \
                     (only cstr and bytes arguments can be retained)",
                    signature.arg_text(i)
                ),
            ));
        }
        if retained.contains(&i) {
            return Err((pos.span(), format!("retained position {i} is listed twice")));
        }
        retained.push(i);
    }
    retained.sort_unstable();
    Ok(FunctionDecl {
        signature,
        declared_effects,
        retained,
    })
}

/// Fails unless no chain of `parent`s comes back to where it started.
fn check_no_cycles(kinds: &[(&Spanned<String>, &RawHandle)]) -> Result<(), Fail> {
    let parent_of = |name: &str| {
        kinds
            .iter()
            .find(|(k, _)| k.get_ref() == name)
            .and_then(|(_, h)| h.parent.as_ref())
    };
    for (key, _) in kinds {
        let start = key.get_ref().as_str();
        let mut chain = vec![start];
        let mut at = start;
        while let Some(parent) = parent_of(at) {
            let p = parent.get_ref().as_str();
            if p == start {
                chain.push(p);
                return Err((
                    parent.span(),
                    format!("handle parents form a cycle: {}", chain.join(" -> ")),
                ));
            }
            if chain.contains(&p) {
                break; // a cycle not through `start`: reported from one of its own kinds
            }
            chain.push(p);
            at = p;
        }
    }
    Ok(())
}

/// A handle kind's name must be usable in `handle<NAME>`.
fn check_identifier(key: &Spanned<String>, what: &str) -> Result<(), Fail> {
    let name = key.get_ref();
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err((
            key.span(),
            format!("{what} '{name}' is not an identifier (letters, digits and _)"),
        ))
    }
}

/// "unknown KIND 'x'", with the closest declared name, or how to declare one.
fn unknown_name(what: &str, name: &str, known: &[&str], declare: &str) -> String {
    match closest(name, known) {
        Some(close) => format!("unknown {what} '{name}' (did you mean '{close}'?)"),
        None => format!("unknown {what} '{name}' (declare it in {declare})"),
    }
}

/// The candidate closest to `name`, if it is close enough to be a typo.
pub(super) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (strsim::osa_distance(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// serde's "unknown field `x`, expected one of `a`, `b`" as
/// "unknown key 'x' (did you mean 'a'?)"; other messages unchanged.
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((name, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match closest(name, &known) {
        Some(close) => format!("unknown key '{name}' (did you mean '{close}'?)"),
        None if known.is_empty() => format!("unknown key '{name}'"),
        None => format!(
            "unknown key '{name}' (expected {})",
            known
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The byte range of a string value's `column`th character (1-based, as
/// the signature and effect parsers count), inside its quotes. Exact for
/// strings without escapes, which is what signatures are.
fn column_in(value: &Spanned<String>, text: &str, column: usize) -> Range<usize> {
    let span = value.span();
    let raw = &text[span.clone()];
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else {
        1
    };
    let inner = &raw[quote.min(raw.len())..];
    let byte = inner
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(inner.len(), |(i, _)| i);
    let start = span.start + quote + byte;
    start..start + 1
}

/// The range of `needle` inside a string value, skipping `skip` leading
/// characters of the needle (to point past a `<`); the value itself when
/// the needle is not there as written.
fn find_in(value: &Spanned<String>, text: &str, needle: &str, skip: usize) -> Range<usize> {
    let span = value.span();
    match text[span.clone()].find(needle) {
        Some(i) => {
            let start = span.start + i + skip;
            start..start + 1
        }
        None => span,
    }
}

/// The 1-based line and column of byte `offset`, as errors give them.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let e = PolicyFileError::at("", text, offset, "");
    (e.line, e.column)
}
