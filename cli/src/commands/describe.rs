//! `ffb describe --manifest M [--json]`: what an extension manifest declares
//! and what bridge mode enforces instead, without loading anything.
//!
//! For each function it shows the signature, who owns each pointer
//! argument's buffer (borrowed for the call, or retained by the library),
//! the handles it takes and hands out with the function that frees each,
//! and two effect sets: the ones the manifest declares, and the ones every
//! bridged call is fenced with (the worst case), which are what a caller
//! may rely on.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use ffb_loader::call_effects;
use ffb_policy::manifest::{FunctionDecl, HandleSlot, Manifest, ManifestPolicy, Ownership};
use serde_json::{json, Value as Json};

use crate::load::{load_manifest, manifest_policy, report_manifest};
use crate::output::{stdout_line, stdout_text};

#[derive(Args)]
pub struct DescribeArgs {
    /// The extension manifest (see docs/manifests.md).
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DescribeArgs) -> ExitCode {
    let manifest = match load_manifest(&args.manifest) {
        Ok(m) => m,
        Err(e) => return report_manifest(&e, args.json),
    };
    // The policy is loaded and compiled too, so describe vouches for the
    // whole manifest.
    let policy = match manifest_policy(&manifest) {
        Ok(p) => p,
        Err(e) => return report_manifest(&e, args.json),
    };
    if args.json {
        stdout_line(
            &to_json(&manifest, &policy.name).to_string(),
            ExitCode::SUCCESS,
        )
    } else {
        stdout_text(&to_text(&manifest), ExitCode::SUCCESS)
    }
}

/// What a handle slot is, in words: for a handle handed out, the kind and
/// what closes it; for one taken, the kind, and what the call does to it
/// when it is that kind's closer.
fn handle_words(m: &Manifest, f: &FunctionDecl, slot: &HandleSlot<'_>) -> String {
    let Some(h) = slot.kind.and_then(|k| m.handle(k)) else {
        return if slot.out {
            "hands out an untyped handle (nothing closes it)".to_string()
        } else {
            "takes a handle of any kind".to_string()
        };
    };
    if slot.out {
        let mut s = format!(
            "hands out {} {} handle, closed by {}",
            article(&h.name),
            h.name,
            h.close
        );
        if let Some(p) = &h.parent {
            s.push_str(&format!(" or with its {p}"));
        }
        return s;
    }
    if h.close != f.name() {
        return format!("takes {} {} handle", article(&h.name), h.name);
    }
    let children: Vec<&str> = m
        .handles
        .iter()
        .filter(|c| c.parent.as_deref() == Some(h.name.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    if children.is_empty() {
        format!("takes {} {} handle and closes it", article(&h.name), h.name)
    } else {
        format!(
            "takes {} {} handle and closes it, with its {} handles",
            article(&h.name),
            h.name,
            children.join(", ")
        )
    }
}

/// "a" or "an", as the kind's name is read.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// How long a retained buffer stays pinned: until the handle the call
/// takes first is closed (a bound text lives as long as its statement).
fn retained_words(slots: &[HandleSlot<'_>]) -> String {
    match slots.iter().find(|s| !s.out && s.position.is_some()) {
        Some(HandleSlot {
            kind: Some(kind), ..
        }) => {
            format!("retained: pinned in the arena until its {kind} handle is closed")
        }
        Some(_) => "retained: pinned in the arena until its handle is closed".to_string(),
        None => "retained: pinned in the arena until the helper ends".to_string(),
    }
}

/// The slot at `position` (an argument, or `None` for the return), if any.
fn slot_at<'a>(slots: &'a [HandleSlot<'a>], position: Option<usize>) -> Option<&'a HandleSlot<'a>> {
    slots.iter().find(|s| s.position == position)
}

fn policy_words(m: &Manifest) -> String {
    match &m.policy {
        ManifestPolicy::Preset(name) => format!("{name} (preset)"),
        ManifestPolicy::File(path) => format!("{} (file)", path.display()),
    }
}

fn to_text(m: &Manifest) -> String {
    let mut out = String::new();
    out.push_str(&format!("manifest: {}\n", m.origin));
    out.push_str(&format!("library:  {}\n", m.library));
    out.push_str(&format!("policy:   {}\n", policy_words(m)));
    if let Some(d) = &m.description {
        out.push_str(&format!("about:    {d}\n"));
    }
    out.push_str(&format!(
        "enforced: every call is fenced as {} (declared effects are not trusted)\n",
        call_effects()
    ));
    if !m.handles.is_empty() {
        out.push_str("\nhandles:\n");
        let width = m.handles.iter().map(|h| h.name.len()).max().unwrap_or(0);
        for h in &m.handles {
            out.push_str(&format!("  {:width$}  closed by {}", h.name, h.close));
            if let Some(p) = &h.parent {
                out.push_str(&format!("; closing its {p} closes it too"));
            }
            out.push('\n');
        }
    }
    out.push_str("\nfunctions:\n");
    for f in &m.functions {
        out.push_str(&function_text(m, f));
    }
    out
}

fn function_text(m: &Manifest, f: &FunctionDecl) -> String {
    let sig = &f.signature;
    let slots = f.handle_slots();
    let mut out = format!("  {sig}\n");
    let ownership = f.pointer_args();
    for i in 0..sig.args.len() {
        let ty = sig.arg_text(i);
        let what = if let Some((_, own)) = ownership.iter().find(|(p, _)| *p == i) {
            match slot_at(&slots, Some(i)) {
                Some(slot) => format!("{}; {}", own.name(), handle_words(m, f, slot)),
                None if *own == Ownership::Retained => retained_words(&slots),
                None => own.name().to_string(),
            }
        } else if let Some(slot) = slot_at(&slots, Some(i)) {
            handle_words(m, f, slot)
        } else {
            continue;
        };
        out.push_str(&format!("    arg{i} {ty}: {what}\n"));
    }
    if let Some(slot) = slot_at(&slots, None) {
        out.push_str(&format!("    returns: {}\n", handle_words(m, f, slot)));
    }
    out.push_str(&format!("    declared: {}\n", f.declared_effects));
    out.push_str(&format!("    enforced: {}\n", call_effects()));
    out
}

fn handle_json(m: &Manifest, slot: &HandleSlot<'_>) -> Json {
    let decl = slot.kind.and_then(|k| m.handle(k));
    json!({
        "kind": slot.kind,
        "direction": if slot.out { "out" } else { "in" },
        "closed_by": decl.map(|h| h.close.clone()),
        "parent": decl.and_then(|h| h.parent.clone()),
    })
}

fn to_json(m: &Manifest, policy_name: &str) -> Json {
    let policy = match &m.policy {
        ManifestPolicy::Preset(name) => json!({"preset": name, "name": policy_name}),
        ManifestPolicy::File(path) => {
            json!({"file": path.display().to_string(), "name": policy_name})
        }
    };
    let handles: Vec<Json> = m
        .handles
        .iter()
        .map(|h| json!({"kind": h.name, "close": h.close, "parent": h.parent}))
        .collect();
    let functions: Vec<Json> = m
        .functions
        .iter()
        .map(|f| {
            let slots = f.handle_slots();
            let ownership = f.pointer_args();
            let args: Vec<Json> = f
                .signature
                .args
                .iter()
                .enumerate()
                .map(|(i, _)| {
                    let own = ownership
                        .iter()
                        .find(|(p, _)| *p == i)
                        .map(|(_, o)| o.name());
                    json!({
                        "position": i,
                        "type": f.signature.arg_text(i),
                        "ownership": own,
                        "handle": slot_at(&slots, Some(i)).map(|s| handle_json(m, s)),
                    })
                })
                .collect();
            json!({
                "name": f.name(),
                "signature": f.signature.to_string(),
                "args": args,
                "returns": {
                    "type": match f.signature.ret_kind() {
                        Some(kind) => format!("{}<{kind}>", f.signature.ret),
                        None => f.signature.ret.to_string(),
                    },
                    "handle": slot_at(&slots, None).map(|s| handle_json(m, s)),
                },
                "declared_effects": f.declared_effects.to_string(),
                "enforced_effects": call_effects().to_string(),
            })
        })
        .collect();
    json!({
        "manifest": m.origin,
        "library": m.library,
        "policy": policy,
        "description": m.description,
        "handles": handles,
        "functions": functions,
    })
}
