//! From the flags `ffb call` and `ffb session` share (`--lib` or
//! `--manifest`, `--policy`, `--bridge-mode`, ...) to a bridge builder, with
//! every flag checked before anything is spawned.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ffb_loader::{Bridge, BridgeBuilder, BridgeMode, Error, ErrorKind, SandboxPolicy};
use ffb_policy::diagnostics::PolicyFileError;
use ffb_policy::kernel::running_kernel;
use ffb_policy::manifest::Manifest;
use ffb_policy::sandbox::PRESETS;
use ffb_policy::source::{load_policy, parse_policy_text};

use crate::files::{check_appendable, read_regular_text, Sink, MAX_MANIFEST, MAX_POLICY};
use crate::output::{print_warnings, quoted, report, report_policy, stderr_line};

#[derive(Args)]
pub struct LoadArgs {
    /// Allow loading native code (or set FFB_BRIDGE_MODE=1).
    #[arg(long)]
    pub bridge_mode: bool,
    /// The library: a path, or a soname such as libz.so.1. With --manifest it
    /// overrides the manifest's library (e.g. a build of it at a path).
    #[arg(
        long,
        value_name = "PATH_OR_SONAME",
        required_unless_present = "manifest"
    )]
    pub lib: Option<String>,
    /// An extension manifest (docs/manifests.md): the library, its functions,
    /// handles and policy. Functions are then called by name.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Sandbox policy: a preset (pure, fs-read, db-client, python) or a policy file (TOML,
    /// Docker/OCI or seccompiler JSON) [default: the manifest's, else pure].
    #[arg(long, value_name = "FILE_OR_PRESET")]
    pub policy: Option<String>,
    /// Append one JSON line per violation, crash, timeout, resource-limit hit and
    /// respawn to this file.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Per-call timeout in milliseconds [default: 30000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,
    /// Append the extension's stdout and stderr to this file (default: /dev/null).
    #[arg(long, value_name = "FILE")]
    pub extension_output: Option<PathBuf>,
    /// Cap on --extension-output for the whole run, in bytes (K, M, G suffixes
    /// are powers of 1024; 0: no cap) [default: 16M].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, requires = "extension_output")]
    pub extension_output_limit: Option<u64>,
}

/// Parses a byte count: digits, optionally followed by K, M or G (powers of
/// 1024, either case).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (&text[..text.len() - 1], 10),
        Some(b'M') => (&text[..text.len() - 1], 20),
        Some(b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a byte count such as 1048576, 512K or 16M".into());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| "the byte count is too large".into())
}

/// The bridge mode `--bridge-mode` asks for, else the environment's.
pub fn bridge_mode(flag: bool) -> BridgeMode {
    if flag {
        BridgeMode::Enabled
    } else {
        BridgeMode::from_env()
    }
}

/// The error for a command that would load native code with bridge mode off.
pub fn bridge_disabled() -> Error {
    Error::new(
        ErrorKind::BridgeDisabled,
        "bridge mode is off: pass --bridge-mode (or set FFB_BRIDGE_MODE=1) to load native code",
    )
}

/// Loads a policy (a preset or a file) and checks that it compiles. The error
/// is one line: `FILE:LINE:COL: what is wrong`. A file is read only if it is
/// a regular file of at most [`MAX_POLICY`] bytes.
pub fn load_checked(spec: &str) -> Result<SandboxPolicy, PolicyFileError> {
    if PRESETS.contains(&spec) {
        return compiles(load_policy(spec)?, spec);
    }
    let whole = |message: String| PolicyFileError {
        path: spec.to_string(),
        line: 0,
        column: 0,
        message,
    };
    let text = read_regular_text(Path::new(spec), MAX_POLICY).map_err(|why| {
        // A bare word that is no file was probably meant as a preset.
        let hint = if !Path::new(spec).exists() && !spec.contains(['/', '.']) {
            format!(" (and it is not a preset: {})", PRESETS.join(", "))
        } else {
            String::new()
        };
        whole(format!("cannot read the policy file: {why}{hint}"))
    })?;
    // JSON that is not an object would be read as TOML (`[...]` as a table
    // header) and reported as bad TOML. An object is left to the parser,
    // which reads it once.
    if !text.trim_start().starts_with('{') {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            let before = &text[..text.len() - text.trim_start().len()];
            let last_line = before.rsplit('\n').next().unwrap_or("");
            return Err(PolicyFileError {
                line: before.matches('\n').count() + 1,
                column: last_line.chars().count() + 1,
                ..whole(format!(
                    "the file is a JSON {}, not a policy: a JSON policy is an object, \
                     a Docker/OCI seccomp profile (with \"defaultAction\") or a seccompiler filter",
                    json_kind(&json)
                ))
            });
        }
    }
    compiles(parse_policy_text(&text, spec, running_kernel())?, spec)
}

/// A JSON value's kind, as a noun.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// `policy`, once it is known to compile; `spec` names it in the error.
fn compiles(policy: SandboxPolicy, spec: &str) -> Result<SandboxPolicy, PolicyFileError> {
    if let Err(e) = policy.compile() {
        return Err(PolicyFileError {
            path: spec.to_string(),
            line: 0,
            column: 0,
            message: format!("the policy does not compile: {e}"),
        });
    }
    Ok(policy)
}

/// Checks, before anything is spawned, that `path` can take what `flag`
/// writes there, as `sink` allows.
fn check_output_file(flag: &str, path: &Path, sink: Sink) -> Result<(), Error> {
    // load_failed, as the loader would report it, but before anything.
    check_appendable(path, sink).map_err(|why| {
        Error::new(
            ErrorKind::LoadFailed,
            format!("{flag} {}: {why}", quoted(&path.display().to_string())),
        )
    })
}

/// Checks `--extension-output` and `--audit-log` before the loader
/// creates either. The library's output may go to a terminal; the audit
/// log must be a file that keeps what is written.
pub fn check_outputs(
    extension_output: Option<&Path>,
    audit_log: Option<&Path>,
) -> Result<(), Error> {
    let outputs = [
        ("--extension-output", extension_output, Sink::FileOrDevice),
        ("--audit-log", audit_log, Sink::RegularFile),
    ];
    for (flag, path, sink) in outputs {
        if let Some(path) = path {
            check_output_file(flag, path, sink)?;
        }
    }
    Ok(())
}

/// `status`, unless the bridge could not write some audit lines (a full
/// disk): then that is one more line on stderr, and a success becomes exit
/// status 1, since the run's record is incomplete.
pub fn audit_checked(bridge: &Bridge, audit_log: Option<&Path>, status: ExitCode) -> ExitCode {
    let (Some((lost, why)), Some(path)) = (bridge.audit_losses(), audit_log) else {
        return status;
    };
    stderr_line(&format!(
        "--audit-log {}: {lost} audit line{} could not be written: {why}",
        quoted(&path.display().to_string()),
        if lost == 1 { "" } else { "s" }
    ));
    if status == ExitCode::SUCCESS {
        ExitCode::from(crate::exit::CALL_FAILED)
    } else {
        status
    }
}

/// The longest library name ffb hands the helper: a path is at most
/// PATH_MAX (4096) bytes with its NUL.
const MAX_LIBRARY_NAME: usize = 4095;

/// Checks a library name before anything is spawned: an empty one would
/// make `dlopen` hand back the helper's own global scope (libc and all),
/// and one longer than a path can be is refused here rather than failing
/// obscurely in the helper.
pub fn check_library(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            "--lib '': the library name is empty (give a path or a soname such as libz.so.1)",
        ));
    }
    if name.len() > MAX_LIBRARY_NAME {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!(
                "--lib '{}': the name is {} bytes, longer than a path can be ({MAX_LIBRARY_NAME} bytes)",
                quoted(name),
                name.len()
            ),
        ));
    }
    Ok(())
}

/// Reads and checks an extension manifest (nothing is loaded). The file
/// must be a regular file of at most [`MAX_MANIFEST`] bytes.
pub fn load_manifest(path: &Path) -> Result<Manifest, PolicyFileError> {
    let origin = path.display().to_string();
    let text = read_regular_text(path, MAX_MANIFEST).map_err(|why| PolicyFileError {
        path: origin.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read the manifest: {why}"),
    })?;
    Manifest::parse(&text, &origin)
}

pub use crate::output::report_manifest;

/// A manifest's policy, loaded and known to compile.
pub fn manifest_policy(m: &Manifest) -> Result<SandboxPolicy, PolicyFileError> {
    compiles(m.load_policy()?, &m.policy_spec())
}

/// The manifest `--manifest` names, read and checked; `None` without the
/// flag. A bad manifest has already been reported and its exit code is returned.
pub fn manifest(load: &LoadArgs, json_output: bool) -> Result<Option<Manifest>, ExitCode> {
    match &load.manifest {
        None => Ok(None),
        Some(path) => load_manifest(path)
            .map(Some)
            .map_err(|e| report_manifest(&e, json_output)),
    }
}

/// The builder for `--lib` or `--manifest`, `--policy` and the other load
/// options. Every option is checked here, before anything is spawned; a
/// failure has already been reported and its exit code is returned.
pub fn builder(
    load: &LoadArgs,
    manifest: Option<&Manifest>,
    json_output: bool,
) -> Result<BridgeBuilder, ExitCode> {
    let policy = match (&load.policy, manifest) {
        (Some(spec), _) => load_checked(spec).map_err(|e| report_policy(&e, json_output))?,
        (None, Some(m)) => manifest_policy(m).map_err(|e| report_manifest(&e, json_output))?,
        (None, None) => load_checked("pure").map_err(|e| report_policy(&e, json_output))?,
    };
    let library = match (&load.lib, manifest) {
        (Some(lib), _) => lib.clone(),
        (None, Some(m)) => m.library.clone(),
        (None, None) => {
            let e = Error::new(ErrorKind::BadArgument, "give --lib or --manifest");
            return Err(report(&e, json_output, true));
        }
    };
    check_library(&library).map_err(|e| report(&e, json_output, true))?;
    // Every path is checked before the loader creates any of them.
    check_outputs(load.extension_output.as_deref(), load.audit_log.as_deref())
        .map_err(|e| report(&e, json_output, true))?;
    print_warnings(&policy);
    let mut b = Bridge::builder(library)
        .bridge_mode(bridge_mode(load.bridge_mode))
        .policy(policy);
    if let Some(m) = manifest {
        b = b.manifest(m).map_err(|e| report(&e, json_output, true))?;
    }
    let mut b = with_run_options(
        b,
        load.timeout_ms,
        load.extension_output.as_deref(),
        load.extension_output_limit,
    );
    if let Some(path) = &load.audit_log {
        b = b.audit_log(path.clone());
    }
    Ok(b)
}

/// Applies `--timeout-ms`, `--extension-output` and
/// `--extension-output-limit`, which `policy learn` takes too.
pub fn with_run_options(
    mut b: BridgeBuilder,
    timeout_ms: Option<u64>,
    extension_output: Option<&Path>,
    extension_output_limit: Option<u64>,
) -> BridgeBuilder {
    if let Some(ms) = timeout_ms {
        b = b.timeout(Duration::from_millis(ms));
    }
    if let Some(path) = extension_output {
        b = b.extension_output(path.to_path_buf());
    }
    if let Some(bytes) = extension_output_limit {
        b = b.extension_output_limit(bytes);
    }
    b
}
