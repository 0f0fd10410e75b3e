//! From the flags `ffb call` and `ffb session` share (`--lib` or
//! `--manifest`, `--policy`, `--bridge-mode`, ...) to a bridge builder, with
//! every flag checked before anything is spawned.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ffb_loader::{Bridge, BridgeBuilder, BridgeMode, Error, ErrorKind, SandboxPolicy};
use ffb_policy::diagnostics::PolicyFileError;
use ffb_policy::manifest::Manifest;
use ffb_policy::source::load_policy;
use serde_json::json;

use crate::output::{print_warnings, report, report_policy};

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
    /// Sandbox policy: a preset (pure, fs-read, db-client) or a policy file (TOML,
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
/// is one line: `FILE:LINE:COL: what is wrong`.
pub fn load_checked(spec: &str) -> Result<SandboxPolicy, PolicyFileError> {
    compiles(load_policy(spec)?, spec)
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

/// Opens (creating) the audit log once, so a path that cannot be written is
/// bad input, reported before anything is spawned.
fn check_audit_log(path: &Path) -> Result<(), Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| {
            Error::new(
                ErrorKind::LoadFailed,
                format!(
                    "--audit-log {}: cannot open it for appending: {e}",
                    path.display()
                ),
            )
        })
}

/// Reads and checks an extension manifest (nothing is loaded).
pub fn load_manifest(path: &Path) -> Result<Manifest, PolicyFileError> {
    Manifest::load(path)
}

/// Reports an invalid manifest (or its invalid policy): `ffb: FILE:LINE:COL:
/// what is wrong` on stderr, or a `load_failed` object on stdout; exit status 2.
pub fn report_manifest(error: &PolicyFileError, json_output: bool) -> ExitCode {
    if json_output {
        let e = Error::new(ErrorKind::LoadFailed, error.to_string());
        println!("{}", json!({"ok": false, "error": e.to_json()}));
    } else {
        eprintln!("ffb: {error}");
    }
    ExitCode::from(crate::exit::USAGE)
}

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
    print_warnings(&policy);
    let library = match (&load.lib, manifest) {
        (Some(lib), _) => lib.clone(),
        (None, Some(m)) => m.library.clone(),
        (None, None) => {
            let e = Error::new(ErrorKind::BadArgument, "give --lib or --manifest");
            return Err(report(&e, json_output, true));
        }
    };
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
        check_audit_log(path).map_err(|e| report(&e, json_output, true))?;
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
