//! `ffb`: call functions of legacy native libraries through a sandboxed helper.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use ffb_loader::{
    Bridge, BridgeMode, CallOutput, Error, ErrorKind, Learned, SandboxPolicy, Signature, Value,
};

use crate::args::{arg_from_json, arg_from_text};

mod args;

/// Checks that `given` values were supplied for `sig`'s parameters.
fn check_arity(sig: &Signature, given: usize) -> Result<(), Error> {
    match sig.arity_mismatch(given) {
        None => Ok(()),
        Some(message) => Err(Error::new(ErrorKind::BadArgument, message)),
    }
}
use ffb_policy::explain::{explain_json, explain_text};
use ffb_policy::file::{load_policy, parse_toml_policy, PolicyFileError};
use ffb_policy::lint::lint;
use ffb_policy::sandbox::{Action, FLOOR, PRESETS, SUPERVISED_SIGNALS};
use serde_json::{json, Map, Value as Json};

/// Exit status for a call that failed with one of ffb's error kinds.
const EXIT_CALL_FAILED: u8 = 1;
/// Exit status for bad usage or bad input.
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "ffb",
    version,
    about = "Call legacy native libraries through a sandboxed helper process",
    long_about = "ffb loads an opaque C-ABI .so only inside a helper process locked down with \
seccomp-BPF, no capabilities and rlimits, and calls its functions through shared memory. \
Nothing is loaded unless bridge mode is on (--bridge-mode or FFB_BRIDGE_MODE=1).\n\n\
Signatures: name(type, ...) -> ret. Argument types: i8 i16 i32 i64 u8 u16 u32 u64 isize usize \
f32 f64, cstr, bytes, out[N], *T (T a scalar or handle), handle. Return types: a scalar, void, \
cstr, handle.",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make one call (or --repeat N calls) and print the result.
    #[command(
        long_about = "Make one call and print the result.\n\n\
Give one ARG per parameter, in order; out[N] takes none. Integers are decimal or 0x hex, floats \
decimal. cstr and bytes take text, hex:0a1b..., or @PATH to read a file. *T takes its initial \
value; handle takes a token or null.\n\n\
Put -- before the arguments when one starts with a dash (negative numbers work without it).\n\n\
Exit status: 0 on success, 1 when the call failed with one of ffb's error kinds, 2 for bad usage \
or bad input (malformed signature, unparsable argument, wrong argument count, bridge mode off).",
        allow_negative_numbers = true
    )]
    Call(CallArgs),
    /// Serve calls as JSON lines on stdin and stdout, with one long-lived helper.
    #[command(
        long_about = "Serve calls as JSON lines on stdin/stdout. The helper, with its state \
and handles, lives until EOF on stdin.\n\n\
Request:  {\"id\": ANY, \"sig\": \"name(types) -> ret\", \"args\": [...]}\n\
Response: the same shape as `ffb call --json`, plus the request's \"id\".\n\
Arguments are JSON numbers, strings (cstr, bytes), {\"hex\": \"...\"}, handle tokens or null. \
A malformed line gets an error object and the session goes on."
    )]
    Session(SessionArgs),
    /// Check, explain, lint or learn sandbox policies.
    #[command(
        subcommand,
        long_about = "Work with sandbox policies: a preset (pure, fs-read, db-client) or a policy \
file (TOML, a Docker/OCI seccomp profile, or a seccompiler JSON filter, told apart by content). \
See docs/policy.md.\n\n\
An invalid policy is one line on stderr, FILE:LINE:COL: what is wrong, and exit status 2. \
Warnings about imported profiles are lines starting with 'ffb: warning:' on stderr."
    )]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Check a policy: exit 0 if it is valid, else 2 with FILE:LINE:COL: what is wrong.
    Check(PolicyFileArg),
    /// Print the effective policy after presets, merges and the floor.
    Explain(ExplainArgs),
    /// Warn about risky grants in a valid policy, with the reason for each (exit 0).
    Lint(PolicyFileArg),
    /// Run a script of calls in learn mode and print the smallest policy (TOML) that lets it pass.
    #[command(
        long_about = "Run a script of calls on the library in learn mode and print, on \
stdout, the smallest TOML policy that lets the same script pass: `extends` the preset, the \
syscalls the preset does not allow, the paths opened and the TCP ports connected or bound.\n\n\
The script holds one request per line, as for `ffb session`: {\"id\": ANY, \"sig\": \"name(types) -> \
ret\", \"args\": [...]}. Each line's result is reported on stderr. Learn mode lets every syscall \
through except the floor and signals to other processes, and applies no Landlock rules, so run \
only a trusted script on a library you trust for the run, and review the policy before use.\n\n\
Exit status: 0 with the policy on stdout; 1 when a line fails (a crash, a timeout, a floor \
syscall, ...), naming the line; 2 for bad usage or bad input (nothing is spawned)."
    )]
    Learn(LearnArgs),
}

#[derive(Args)]
struct PolicyFileArg {
    /// A policy file (TOML, Docker/OCI or seccompiler JSON) or a preset name.
    #[arg(value_name = "FILE_OR_PRESET")]
    policy: String,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    file: PolicyFileArg,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LearnArgs {
    /// Allow loading native code (or set FFB_BRIDGE_MODE=1).
    #[arg(long)]
    bridge_mode: bool,
    /// The library: a path, or a soname such as libz.so.1.
    #[arg(long, value_name = "PATH_OR_SONAME")]
    lib: String,
    /// The calls to make: JSON lines, as for `ffb session`.
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
}

#[derive(Args)]
struct LoadArgs {
    /// Allow loading native code (or set FFB_BRIDGE_MODE=1).
    #[arg(long)]
    bridge_mode: bool,
    /// The library: a path, or a soname such as libz.so.1.
    #[arg(long, value_name = "PATH_OR_SONAME")]
    lib: String,
    /// Sandbox policy: a preset (pure, fs-read, db-client) or a policy file (TOML,
    /// Docker/OCI or seccompiler JSON).
    #[arg(long, value_name = "FILE_OR_PRESET", default_value = "pure")]
    policy: String,
    /// Append one JSON line per violation, crash, timeout, resource-limit hit and
    /// respawn to this file.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Per-call timeout in milliseconds [default: 30000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Append the extension's stdout and stderr to this file (default: /dev/null).
    #[arg(long, value_name = "FILE")]
    extension_output: Option<PathBuf>,
}

#[derive(Args)]
struct CallArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The function's signature, e.g. 'crc32(u64, bytes, u32) -> u64'.
    #[arg(long, value_name = "SIG")]
    sig: String,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Call N times on one helper and report timings.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// One argument per parameter that takes one.
    #[arg(value_name = "ARG")]
    args: Vec<String>,
}

#[derive(Args)]
struct SessionArgs {
    #[command(flatten)]
    load: LoadArgs,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let code = match cli.command {
        Command::Call(args) => run_call(args),
        Command::Session(args) => run_session(args),
        Command::Policy(command) => run_policy(command),
    };
    ffb_loader::shutdown_fork_servers();
    code
}

/// clap's errors in one line; help and version print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let message = if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
        if std::env::args_os().nth(1).is_some_and(|a| a == "policy") {
            "a policy command is required: check, explain, lint or learn".to_string()
        } else {
            "a command is required: call, session or policy".to_string()
        }
    } else {
        one_line(&e.render().to_string())
    };
    eprintln!("ffb: {message} (see ffb --help)");
    ExitCode::from(EXIT_USAGE)
}

/// clap's message without its usage block and tips, folded onto one line.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .map(|l| l.trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reports an error in the chosen format and returns the exit code for it.
fn report(error: &Error, json_output: bool, usage: bool) -> ExitCode {
    if json_output {
        println!("{}", json!({"ok": false, "error": error.to_json()}));
    } else {
        eprintln!("ffb: {error}");
    }
    ExitCode::from(if usage { EXIT_USAGE } else { EXIT_CALL_FAILED })
}

fn bridge_mode(flag: bool) -> BridgeMode {
    if flag {
        BridgeMode::Enabled
    } else {
        BridgeMode::from_env()
    }
}

/// Loads a policy (a preset or a file) and checks that it compiles. The error
/// is one line: `FILE:LINE:COL: what is wrong`.
fn load_checked(spec: &str) -> Result<SandboxPolicy, PolicyFileError> {
    let policy = load_policy(spec)?;
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

/// Prints a policy's warnings (from an imported profile), one line each.
fn print_warnings(policy: &SandboxPolicy) {
    for warning in &policy.warnings {
        eprintln!("ffb: warning: {}: {warning}", policy.name);
    }
}

/// Reports an invalid policy: `FILE:LINE:COL: what is wrong` on stderr, or a
/// `load_failed` object with that message on stdout; exit status 2.
fn report_policy(error: &PolicyFileError, json_output: bool) -> ExitCode {
    if json_output {
        let e = Error::new(ErrorKind::LoadFailed, error.to_string());
        println!("{}", json!({"ok": false, "error": e.to_json()}));
    } else {
        eprintln!("{error}");
    }
    ExitCode::from(EXIT_USAGE)
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

/// The builder for `--lib`, `--policy` and the other load options. Every
/// option is checked here, before anything is spawned; a failure has already
/// been reported and its exit code is returned.
fn builder(load: &LoadArgs, json_output: bool) -> Result<ffb_loader::BridgeBuilder, ExitCode> {
    let policy = load_checked(&load.policy).map_err(|e| report_policy(&e, json_output))?;
    print_warnings(&policy);
    let mut b = Bridge::builder(load.lib.clone())
        .bridge_mode(bridge_mode(load.bridge_mode))
        .policy(policy);
    if let Some(ms) = load.timeout_ms {
        b = b.timeout(Duration::from_millis(ms));
    }
    if let Some(path) = &load.extension_output {
        b = b.extension_output(path.clone());
    }
    if let Some(path) = &load.audit_log {
        check_audit_log(path).map_err(|e| report(&e, json_output, true))?;
        b = b.audit_log(path.clone());
    }
    Ok(b)
}

fn bridge_disabled() -> Error {
    Error::new(
        ErrorKind::BridgeDisabled,
        "bridge mode is off: pass --bridge-mode (or set FFB_BRIDGE_MODE=1) to load native code",
    )
}

fn run_call(args: CallArgs) -> ExitCode {
    let json_output = args.json;
    // Everything the user typed is checked before anything is spawned.
    if bridge_mode(args.load.bridge_mode) != BridgeMode::Enabled {
        return report(&bridge_disabled(), json_output, true);
    }
    let sig = match Signature::parse(&args.sig) {
        Ok(sig) => sig,
        Err(e) => {
            let e = Error::new(
                ErrorKind::BadSignature,
                format!("--sig '{}': {e}", args.sig),
            );
            return report(&e, json_output, true);
        }
    };
    let values = match parse_cli_args(&sig, &args.args) {
        Ok(v) => v,
        Err(e) => return report(&e, json_output, true),
    };
    let builder = match builder(&args.load, json_output) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let started = Instant::now();
    let mut bridge = match builder.declare(sig.to_string()).load() {
        Ok(b) => b,
        Err(e) => return report(&e, json_output, false),
    };
    let spawn_ns = started.elapsed().as_nanos() as u64;
    let f = bridge.function(&sig.name).expect("declared at load");
    let mut samples = Vec::with_capacity(args.repeat as usize);
    let mut last = None;
    for _ in 0..args.repeat {
        let t = Instant::now();
        let result = bridge.call(f, &values);
        samples.push(t.elapsed().as_nanos() as u64);
        match result {
            Ok(out) => last = Some(out),
            Err(e) => return report(&e, json_output, e.kind == ErrorKind::BadArgument),
        }
    }
    let out = last.expect("repeat >= 1");
    let timing = (args.repeat > 1).then(|| Timing::of(&mut samples, spawn_ns));
    if json_output {
        let mut obj = success_json(&out);
        if let Some(t) = &timing {
            obj.insert("timing".into(), t.to_json());
        }
        println!("{}", Json::Object(obj));
    } else {
        println!("{}", success_line(&sig, &out));
        if let Some(t) = &timing {
            println!("{}", t.line());
        }
    }
    ExitCode::SUCCESS
}

fn parse_cli_args(sig: &Signature, texts: &[String]) -> Result<Vec<Value>, Error> {
    check_arity(sig, texts.len())?;
    let wanted = sig.value_arity();
    let mut texts = texts.iter();
    let mut values = Vec::with_capacity(wanted);
    for (i, ty) in sig.args.iter().enumerate() {
        if ty.takes_value() {
            values.push(arg_from_text(
                *ty,
                texts.next().expect("count checked"),
                i + 1,
            )?);
        }
    }
    Ok(values)
}

fn success_json(out: &CallOutput) -> Map<String, Json> {
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

fn success_line(sig: &Signature, out: &CallOutput) -> String {
    let mut line = format!("{} = {}", sig.name, out.ret);
    for (i, v) in out.out.iter().enumerate() {
        if let Some(v) = v {
            line.push_str(&format!("  arg{}: {v}", i + 1));
        }
    }
    line
}

struct Timing {
    calls: usize,
    min: u64,
    median: u64,
    p99: u64,
    spawn: u64,
}

impl Timing {
    fn of(samples: &mut [u64], spawn: u64) -> Timing {
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Timing {
            calls: samples.len(),
            min: samples[0],
            median: at(0.5),
            p99: at(0.99),
            spawn,
        }
    }

    fn to_json(&self) -> Json {
        json!({"calls": self.calls, "min_ns": self.min, "median_ns": self.median,
               "p99_ns": self.p99, "spawn_ns": self.spawn})
    }

    fn line(&self) -> String {
        format!(
            "timing: {} calls, min {} ns, median {} ns, p99 {} ns; helper start {} ns",
            self.calls, self.min, self.median, self.p99, self.spawn
        )
    }
}

fn run_session(args: SessionArgs) -> ExitCode {
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
    let body = match call_request(bridge, &request) {
        Ok(out) => success_json(&out),
        Err(e) => failure(&e),
    };
    with_id(id, body)
}

fn call_request(bridge: &mut Bridge, request: &Json) -> Result<CallOutput, Error> {
    let request = parse_request(request)?;
    request.call(bridge)
}

/// One checked request: its signature and argument values.
struct Request {
    sig_text: String,
    sig: Signature,
    values: Vec<Value>,
}

impl Request {
    fn call(&self, bridge: &mut Bridge) -> Result<CallOutput, Error> {
        let f = bridge.declare(&self.sig_text)?;
        bridge.call(f, &self.values)
    }
}

/// Checks a request (`{"id", "sig", "args"}`) without calling anything.
fn parse_request(request: &Json) -> Result<Request, Error> {
    let Some(obj) = request.as_object() else {
        return Err(Error::new(
            ErrorKind::BadArgument,
            "a request must be a JSON object",
        ));
    };
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "id" | "sig" | "args"))
    {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("unknown key '{key}' (a request has id, sig and args)"),
        ));
    }
    let sig_text = obj
        .get("sig")
        .and_then(Json::as_str)
        .ok_or_else(|| Error::new(ErrorKind::BadSignature, "missing \"sig\" string"))?;
    let sig = Signature::parse(sig_text)
        .map_err(|e| Error::new(ErrorKind::BadSignature, format!("'{sig_text}': {e}")))?;
    let empty = Vec::new();
    let args = match obj.get("args") {
        None => &empty,
        Some(Json::Array(a)) => a,
        Some(_) => {
            return Err(Error::new(
                ErrorKind::BadArgument,
                "\"args\" must be an array",
            ))
        }
    };
    check_arity(&sig, args.len())?;
    let wanted = sig.value_arity();
    let mut values = Vec::with_capacity(wanted);
    let mut given = args.iter();
    for (i, ty) in sig.args.iter().enumerate() {
        if ty.takes_value() {
            values.push(arg_from_json(
                *ty,
                given.next().expect("count checked"),
                i + 1,
            )?);
        }
    }
    Ok(Request {
        sig_text: sig_text.to_string(),
        sig,
        values,
    })
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

fn run_policy(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Check(args) => policy_check(&args.policy),
        PolicyCommand::Explain(args) => policy_explain(&args.file.policy, args.json),
        PolicyCommand::Lint(args) => policy_lint(&args.policy),
        PolicyCommand::Learn(args) => policy_learn(args),
    }
}

/// `ffb policy check`: warnings on stderr, one summary line on stdout.
fn policy_check(spec: &str) -> ExitCode {
    let policy = match load_checked(spec) {
        Ok(p) => p,
        Err(e) => return report_policy(&e, false),
    };
    print_warnings(&policy);
    let rules = policy.rules.len();
    println!(
        "{spec}: ok ({rules} rule{}, default {}, hash {}{})",
        if rules == 1 { "" } else { "s" },
        ffb_policy::explain::action_label(policy.default_action),
        ffb_policy::file::policy_hash(&policy),
        match policy.warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        }
    );
    ExitCode::SUCCESS
}

/// `ffb policy explain`: the table, or one JSON object.
fn policy_explain(spec: &str, json_output: bool) -> ExitCode {
    let policy = match load_checked(spec) {
        Ok(p) => p,
        Err(e) => return report_policy(&e, false),
    };
    if json_output {
        println!("{}", explain_json(&policy));
    } else {
        print!("{}", explain_text(&policy));
    }
    ExitCode::SUCCESS
}

/// `ffb policy lint`: one line per finding on stdout (`FILE: warning[RULE]:
/// what and why`), exit 0 whatever it finds.
fn policy_lint(spec: &str) -> ExitCode {
    let policy = match load_checked(spec) {
        Ok(p) => p,
        Err(e) => return report_policy(&e, false),
    };
    print_warnings(&policy);
    let findings = lint(&policy);
    for w in &findings {
        println!("{spec}: warning[{}]: {}", w.rule, w.message);
    }
    if findings.is_empty() {
        println!("{spec}: no findings");
    }
    ExitCode::SUCCESS
}

/// A bad-input error for `policy learn`: one line, exit 2.
fn learn_usage(message: String) -> ExitCode {
    eprintln!("ffb: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// `ffb policy learn`: runs the script in learn mode, then prints the policy.
fn policy_learn(args: LearnArgs) -> ExitCode {
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
    let script = args.script.display().to_string();
    let text = match std::fs::read_to_string(&args.script) {
        Ok(t) => t,
        Err(e) => return learn_usage(format!("--script {script}: cannot read it: {e}")),
    };
    let mut requests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Json>(line)
            .map_err(|e| Error::new(ErrorKind::BadArgument, format!("not JSON: {e}")))
            .and_then(|j| parse_request(&j));
        match parsed {
            Ok(r) => requests.push((i + 1, r)),
            Err(e) => return learn_usage(format!("{script}:{}: {e}", i + 1)),
        }
    }
    if requests.is_empty() {
        return learn_usage(format!("--script {script}: no calls in it"));
    }

    let mut b = Bridge::builder(args.lib.clone())
        .bridge_mode(BridgeMode::Enabled)
        .policy(learning_policy(&preset))
        .learn(true);
    if let Some(ms) = args.timeout_ms {
        b = b.timeout(Duration::from_millis(ms));
    }
    if let Some(path) = &args.extension_output {
        b = b.extension_output(path.clone());
    }
    let mut bridge = match b.load() {
        Ok(b) => b,
        Err(e) => return report(&e, false, false),
    };
    for (line, request) in &requests {
        match request.call(&mut bridge) {
            Ok(out) => eprintln!(
                "ffb: learn: {script}:{line}: {}",
                success_line(&request.sig, &out)
            ),
            Err(e) => {
                eprintln!("ffb: {script}:{line}: {e}{}", never_learned(&e));
                return ExitCode::from(EXIT_CALL_FAILED);
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
            eprintln!(
                "ffb: {script}:{line}: the library sent a signal to another process ({signal}); \
                 signals to other processes can never be learned"
            );
            return ExitCode::from(EXIT_CALL_FAILED);
        }
    }
    let learned = bridge.learned().expect("built with learn(true)");
    let toml = learned_toml(&preset, &learned, &script, &args.lib, requests.len());
    // What is printed must load as it is; anything else is a bug here.
    if let Err(e) = parse_toml_policy(&toml, "the learned policy").and_then(|p| {
        p.compile().map(drop).map_err(|e| PolicyFileError {
            path: "the learned policy".into(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })
    }) {
        eprintln!("ffb: cannot write a valid policy for what was learned: {e}");
        return ExitCode::from(EXIT_CALL_FAILED);
    }
    print!("{toml}");
    ExitCode::SUCCESS
}

/// Why a violation during learning could not be learned.
fn never_learned(e: &Error) -> String {
    let ErrorKind::PolicyViolation { syscall, .. } = &e.kind else {
        return String::new();
    };
    if let Some(entry) = FLOOR.iter().find(|f| f.syscall == syscall) {
        format!(
            " ({syscall} is on ffb's floor and can never be learned: {})",
            entry.reason
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
            eprintln!(
                "ffb: warning: the library made {name}, which has no x86_64 name and cannot be allowed by a policy file"
            );
        } else if !preset_allows(preset, name, learned) {
            allow.push(toml_string(name));
        }
    }
    let paths = |set: &mut dyn Iterator<Item = &PathBuf>| -> Vec<String> {
        set.filter_map(|p| match p.to_str() {
            Some(text) => Some(toml_string(text)),
            None => {
                eprintln!(
                    "ffb: warning: the library opened {}, a path that is not UTF-8 and cannot be written in a policy file",
                    p.display()
                );
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
    let list = |items: &[String]| format!("[{}]", items.join(", "));
    if !allow.is_empty() {
        out.push_str(&format!("\n[seccomp]\nallow = {}\n", list(&allow)));
    }
    if !read.is_empty() || !write.is_empty() {
        out.push_str("\n[filesystem]\n");
        if !read.is_empty() {
            out.push_str(&format!("read = {}\n", list(&read)));
        }
        if !write.is_empty() {
            out.push_str(&format!("write = {}\n", list(&write)));
        }
    }
    if !connect.is_empty() || !bind.is_empty() {
        out.push_str("\n[network]\n");
        if !connect.is_empty() {
            out.push_str(&format!("connect_tcp = {}\n", list(&connect)));
        }
        if !bind.is_empty() {
            out.push_str(&format!("bind_tcp = {}\n", list(&bind)));
        }
    }
    out
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
