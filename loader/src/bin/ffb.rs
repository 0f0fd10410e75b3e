//! `ffb`: call functions of legacy native libraries through a sandboxed helper.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use ffb_loader::{
    arg_from_json, arg_from_text, check_arity, Bridge, BridgeMode, CallOutput, Error, ErrorKind,
    SandboxPolicy, Signature, Value,
};
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
}

#[derive(Args)]
struct LoadArgs {
    /// Allow loading native code (or set FFB_BRIDGE_MODE=1).
    #[arg(long)]
    bridge_mode: bool,
    /// The library: a path, or a soname such as libz.so.1.
    #[arg(long, value_name = "PATH_OR_SONAME")]
    lib: String,
    /// Sandbox policy: a preset name (pure).
    #[arg(long, value_name = "FILE_OR_PRESET", default_value = "pure")]
    policy: String,
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
        "a command is required: call or session".to_string()
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

fn policy(spec: &str) -> Result<SandboxPolicy, Error> {
    SandboxPolicy::preset(spec)
        .map_err(|e| Error::new(ErrorKind::LoadFailed, format!("--policy {spec}: {e}")))
}

fn builder(load: &LoadArgs) -> Result<ffb_loader::BridgeBuilder, Error> {
    let mut b = Bridge::builder(load.lib.clone())
        .bridge_mode(bridge_mode(load.bridge_mode))
        .policy(policy(&load.policy)?);
    if let Some(ms) = load.timeout_ms {
        b = b.timeout(Duration::from_millis(ms));
    }
    if let Some(path) = &load.extension_output {
        b = b.extension_output(path.clone());
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
    let builder = match builder(&args.load) {
        Ok(b) => b,
        Err(e) => return report(&e, json_output, true),
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
    let builder = match builder(&args.load) {
        Ok(b) => b,
        Err(e) => return report(&e, true, true),
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
    let f = bridge.declare(sig_text)?;
    bridge.call(f, &values)
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
