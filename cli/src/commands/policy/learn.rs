//! `ffb policy learn`: run a script of calls in learn mode, then print the
//! smallest TOML policy that lets the same script pass.
//!
//! Learn mode lets every syscall through except the floor and signals to
//! other processes, and records what the library did; the policy written
//! from it `extends` the preset and adds only what the preset lacks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ffb_loader::{Bridge, BridgeMode, Error, ErrorKind, Learned, SandboxPolicy};
use ffb_policy::diagnostics::PolicyFileError;
use ffb_policy::sandbox::{Action, FLOOR, PRESETS, SUPERVISED_SIGNALS};
use ffb_policy::source::parse_toml_policy;

use crate::exit;
use crate::files::{read_regular_text, MAX_SCRIPT};
use crate::load::{
    bridge_disabled, bridge_mode, check_library, check_outputs, parse_bytes, with_run_options,
};
use crate::output::{quoted, report, stderr_line, stdout_text, success_line};
use crate::request::Request;

#[derive(Args)]
pub struct LearnArgs {
    /// Allow loading native code (or set FFB_BRIDGE_MODE=1).
    #[arg(long)]
    bridge_mode: bool,
    /// The library: a path, or a soname such as libz.so.1.
    #[arg(long, value_name = "PATH_OR_SONAME")]
    lib: String,
    /// The calls to make: JSON lines, as for `ffb session` (a regular file
    /// of at most 16 MiB).
    #[arg(long, value_name = "CALLS.jsonl")]
    script: PathBuf,
    /// The preset the learned policy extends: pure, fs-read or db-client.
    #[arg(long, value_name = "PRESET", default_value = "pure")]
    extends: String,
    /// Per-call timeout in milliseconds [default: 30000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Append the extension's stdout and stderr to this file (default: /dev/null).
    #[arg(long, value_name = "FILE")]
    extension_output: Option<PathBuf>,
    /// Cap on --extension-output for the whole run, in bytes (K, M, G suffixes
    /// are powers of 1024; 0: no cap) [default: 16M].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, requires = "extension_output")]
    extension_output_limit: Option<u64>,
}

/// A bad-input error for `policy learn`: one line, exit 2.
fn learn_usage(message: String) -> ExitCode {
    stderr_line(&message);
    ExitCode::from(exit::USAGE)
}

/// Runs the script in learn mode, then prints the policy.
pub fn run(args: LearnArgs) -> ExitCode {
    // Everything is checked before anything is spawned.
    if bridge_mode(args.bridge_mode) != BridgeMode::Enabled {
        return report(&bridge_disabled(), false, true);
    }
    let preset = match SandboxPolicy::preset(&args.extends) {
        Ok(p) => p,
        Err(_) => {
            return learn_usage(format!(
                "--extends {}: not a preset (presets: {})",
                args.extends,
                PRESETS.join(", ")
            ))
        }
    };
    let checked = check_library(&args.lib)
        .and_then(|()| check_outputs(args.extension_output.as_deref(), None));
    if let Err(e) = checked {
        return report(&e, false, true);
    }
    let script = quoted(&args.script.display().to_string());
    let requests = match read_script(&args.script, &script) {
        Ok(r) => r,
        Err(message) => return learn_usage(message),
    };

    let b = Bridge::builder(args.lib.clone())
        .bridge_mode(BridgeMode::Enabled)
        .policy(learning_policy(&preset))
        .learn(true);
    let b = with_run_options(
        b,
        args.timeout_ms,
        args.extension_output.as_deref(),
        args.extension_output_limit,
    );
    let mut bridge = match b.load() {
        Ok(b) => b,
        Err(e) => return report(&e, false, false),
    };
    for (line, request) in &requests {
        match request.call(&mut bridge) {
            Ok(out) => stderr_line(&format!(
                "learn: {script}:{line}: {}",
                success_line(&request.sig, &out)
            )),
            Err(e) => {
                stderr_line(&format!("{script}:{line}: {e}{}", never_learned(&e)));
                return ExitCode::from(exit::CALL_FAILED);
            }
        }
        // A signal to another process is never allowed, so it must not be
        // learned either.
        let learned = bridge.learned().expect("built with learn(true)");
        if let Some(signal) = learned
            .syscalls
            .iter()
            .find(|s| SUPERVISED_SIGNALS.contains(&s.as_str()))
        {
            stderr_line(&format!(
                "{script}:{line}: the library sent a signal to another process ({signal}); \
                 signals to other processes can never be learned"
            ));
            return ExitCode::from(exit::CALL_FAILED);
        }
    }
    let learned = bridge.learned().expect("built with learn(true)");
    let toml = learned_toml(&preset, &learned, &script, &args.lib, requests.len());
    // What is printed must load as it is; anything else is a bug here.
    if let Err(e) = check_learned(&toml) {
        stderr_line(&format!(
            "cannot write a valid policy for what was learned: {e}"
        ));
        return ExitCode::from(exit::CALL_FAILED);
    }
    stdout_text(&toml, ExitCode::SUCCESS)
}

/// The script's requests with their 1-based line numbers, all checked;
/// else the one-line message for bad input.
fn read_script(path: &Path, script: &str) -> Result<Vec<(usize, Request)>, String> {
    let text = read_regular_text(path, MAX_SCRIPT).map_err(|why| {
        let why = if why.starts_with("it is") || why.starts_with("cannot") {
            why
        } else {
            format!("cannot read it: {why}")
        };
        format!("--script {script}: {why}")
    })?;
    let mut requests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let request = Request::from_line(line).map_err(|e| format!("{script}:{}: {e}", i + 1))?;
        requests.push((i + 1, request));
    }
    if requests.is_empty() {
        return Err(format!("--script {script}: no calls in it"));
    }
    Ok(requests)
}

/// Checks that the learned policy loads and compiles as printed.
fn check_learned(toml: &str) -> Result<(), PolicyFileError> {
    let policy = parse_toml_policy(toml, "the learned policy")?;
    policy.compile().map(drop).map_err(|e| PolicyFileError {
        path: "the learned policy".into(),
        line: 0,
        column: 0,
        message: e.to_string(),
    })
}

/// Why a violation during learning could not be learned.
fn never_learned(e: &Error) -> String {
    let ErrorKind::PolicyViolation { syscall, .. } = &e.kind else {
        return String::new();
    };
    // Several floor entries can name one syscall, each for some of its
    // arguments (ioctl's TIOCSTI and TIOCLINUX); the error names only the
    // syscall, so every reason that may apply is given.
    let mut reasons: Vec<&str> = FLOOR
        .iter()
        .filter(|f| f.syscall == syscall)
        .map(|f| f.reason)
        .collect();
    reasons.dedup();
    if !reasons.is_empty() {
        format!(
            " ({syscall} is on ffb's floor and can never be learned: {})",
            reasons.join("; ")
        )
    } else if SUPERVISED_SIGNALS.contains(&syscall.as_str()) {
        format!(" ({syscall} aimed at another process can never be learned)")
    } else {
        String::new()
    }
}

/// Syscalls whose arguments learn mode reads (paths, socket addresses).
const RECORDED_ARGS: &[&str] = &["open", "openat", "connect", "bind"];

/// The policy to learn under: the preset without its rules on the syscalls
/// whose paths and ports are learned, so that those calls reach the host's
/// listener (which lets them through and records them) instead of being
/// allowed by the filter unseen.
fn learning_policy(preset: &SandboxPolicy) -> SandboxPolicy {
    let mut p = preset.clone();
    p.rules
        .retain(|r| !RECORDED_ARGS.contains(&r.syscall.as_str()));
    p
}

/// Whether `name` is an open that the learned read paths bring in: only
/// read-only opens were seen, and there are paths to grant.
fn read_grant_opens(name: &str, learned: &Learned) -> bool {
    matches!(name, "open" | "openat")
        && learned.write_paths.is_empty()
        && !learned.read_paths.is_empty()
}

/// Whether the preset already allows what was learned of `name`.
fn preset_allows(preset: &SandboxPolicy, name: &str, learned: &Learned) -> bool {
    let mut rules = preset.rules.iter().filter(|r| r.syscall == name).peekable();
    if rules.peek().is_none() {
        return false;
    }
    // The first rule that matches decides: an unconditional allow before any
    // other action on the same syscall covers every call.
    for r in rules {
        match r.action {
            Action::Allow if r.conditions.is_empty() => return true,
            Action::Allow => {
                // The presets' only conditional opens are the read-only ones,
                // whose condition is exactly what learn mode calls a read.
                if matches!(name, "open" | "openat") && learned.write_paths.is_empty() {
                    return true;
                }
            }
            _ => return false,
        }
    }
    false
}

/// The smallest policy file that lets the learned run pass: the preset, the
/// syscalls it does not allow, the paths and the ports.
fn learned_toml(
    preset: &SandboxPolicy,
    learned: &Learned,
    script: &str,
    lib: &str,
    calls: usize,
) -> String {
    let mut allow = Vec::new();
    for name in &learned.syscalls {
        if ffb_policy::syscalls::number_of(name).is_none() {
            stderr_line(&format!(
                "warning: the library made {name}, which has no x86_64 name and cannot be allowed by a policy file"
            ));
        } else if read_grant_opens(name, learned) {
            // A `[filesystem] read` path brings in the read-only opens by
            // itself; allowing them outright would open for writing too.
        } else if !preset_allows(preset, name, learned) {
            allow.push(toml_string(name));
        }
    }
    let paths = |set: &mut dyn Iterator<Item = &PathBuf>| -> Vec<String> {
        set.filter_map(|p| match p.to_str() {
            Some(text) => Some(toml_string(text)),
            None => {
                stderr_line(&format!(
                    "warning: the library opened {}, a path that is not UTF-8 and cannot be written in a policy file",
                    p.display()
                ));
                None
            }
        })
        .collect()
    };
    // A writable path is readable too.
    let read = paths(
        &mut learned
            .read_paths
            .iter()
            .filter(|p| !learned.write_paths.contains(*p)),
    );
    let write = paths(&mut learned.write_paths.iter());
    let ports = |set: &BTreeSet<u16>| set.iter().map(u16::to_string).collect::<Vec<_>>();
    let (connect, bind) = (ports(&learned.connect_tcp), ports(&learned.bind_tcp));

    let mut out = format!(
        "# Learned by `ffb policy learn` from {} ({calls} call{}) on {}.\n\
         # It allows what that run needed: review it before use.\n\
         extends = {}\n",
        one_line_comment(script),
        if calls == 1 { "" } else { "s" },
        one_line_comment(lib),
        toml_string(&preset.name)
    );
    section(&mut out, "seccomp", &[("allow", &allow)]);
    section(
        &mut out,
        "filesystem",
        &[("read", &read), ("write", &write)],
    );
    section(
        &mut out,
        "network",
        &[("connect_tcp", &connect), ("bind_tcp", &bind)],
    );
    out
}

/// Appends the table `[name]` with its non-empty keys, each a list of TOML
/// values; nothing when every key is empty.
fn section(out: &mut String, name: &str, keys: &[(&str, &Vec<String>)]) {
    if keys.iter().all(|(_, items)| items.is_empty()) {
        return;
    }
    out.push_str(&format!("\n[{name}]\n"));
    for (key, items) in keys {
        if !items.is_empty() {
            out.push_str(&format!("{key} = [{}]\n", items.join(", ")));
        }
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a comment line: control characters replaced.
fn one_line_comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
