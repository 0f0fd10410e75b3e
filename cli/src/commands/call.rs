//! `ffb call`: one call (or `--repeat N`) on a fresh helper, its result on
//! stdout as a line or one JSON object. The function is given by `--sig`,
//! or with `--manifest` by its name (the first argument).

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use ffb_loader::{Bridge, BridgeMode, Error, ErrorKind, Manifest, Signature, Value};
use serde_json::{json, Value as Json};

use crate::args::{arg_from_text, check_fits, unmarked, values_for};
use crate::load::{audit_checked, bridge_disabled, bridge_mode, builder, manifest, LoadArgs};
use crate::output::{quoted, report, stdout_text, success_json, success_line};

/// Most calls `--repeat` makes: their timings are kept to sort, 8 bytes
/// each.
const MAX_REPEAT: u64 = 1_000_000;

#[derive(Args)]
pub struct CallArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The function's signature, e.g. 'crc32(u64, bytes, u32) -> u64'. With
    /// --manifest, give the function's name as the first argument instead.
    #[arg(
        long,
        value_name = "SIG",
        required_unless_present = "manifest",
        conflicts_with = "manifest"
    )]
    sig: Option<String>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Call N times on one helper and report timings (N at most 1000000).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=MAX_REPEAT))]
    repeat: u64,
    /// One argument per parameter that takes one (with --manifest: FUNC first).
    #[arg(value_name = "ARG", value_parser = unmarked)]
    args: Vec<String>,
}

pub fn run(args: CallArgs) -> ExitCode {
    let json_output = args.json;
    // Everything the user typed is checked before anything is spawned.
    if bridge_mode(args.load.bridge_mode) != BridgeMode::Enabled {
        return report(&bridge_disabled(), json_output, true);
    }
    let manifest = match manifest(&args.load, json_output) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let (sig, given) = match function(manifest.as_ref(), args.sig.as_deref(), &args.args) {
        Ok(found) => found,
        Err(e) => return report(&e, json_output, true),
    };
    let values = match values_for(&sig, given, |ty, text, i| arg_from_text(ty, text, i))
        .and_then(|v| check_fits(&sig, &v).map(|()| v))
    {
        Ok(v) => v,
        Err(e) => return report(&e, json_output, true),
    };
    let builder = match builder(&args.load, manifest.as_ref(), json_output) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let builder = if manifest.is_some() {
        builder
    } else {
        builder.declare(sig.to_string())
    };
    let started = Instant::now();
    let mut bridge = match builder.load() {
        Ok(b) => b,
        Err(e) => return report(&e, json_output, false),
    };
    let spawn_ns = started.elapsed().as_nanos() as u64;
    let status = calls(&mut bridge, &sig, &values, &args, spawn_ns);
    audit_checked(&bridge, args.load.audit_log.as_deref(), status)
}

/// Makes the call (`--repeat` times) on `bridge` and prints the outcome.
fn calls(
    bridge: &mut Bridge,
    sig: &Signature,
    values: &[Value],
    args: &CallArgs,
    spawn_ns: u64,
) -> ExitCode {
    let json_output = args.json;
    let f = bridge.function(&sig.name).expect("declared at load");
    let mut samples = Vec::with_capacity(args.repeat as usize);
    let mut last = None;
    for _ in 0..args.repeat {
        let t = Instant::now();
        let result = bridge.call(f, values);
        samples.push(t.elapsed().as_nanos() as u64);
        match result {
            Ok(out) => last = Some(out),
            Err(e) => return report(&e, json_output, e.kind == ErrorKind::BadArgument),
        }
    }
    let out = last.expect("repeat >= 1");
    let timing = (args.repeat > 1).then(|| Timing::of(&mut samples, spawn_ns));
    let text = if json_output {
        let mut obj = success_json(&out);
        if let Some(t) = &timing {
            obj.insert("timing".into(), t.to_json());
        }
        format!("{}\n", Json::Object(obj))
    } else {
        let mut text = format!("{}\n", success_line(sig, &out));
        if let Some(t) = &timing {
            text.push_str(&format!("{}\n", t.line()));
        }
        text
    };
    stdout_text(&text, ExitCode::SUCCESS)
}

/// The function to call and the arguments for it: `--sig` and every
/// argument, or with a manifest the function named by the first argument
/// and the rest.
fn function<'a>(
    manifest: Option<&Manifest>,
    sig: Option<&str>,
    args: &'a [String],
) -> Result<(Signature, &'a [String]), Error> {
    let Some(m) = manifest else {
        let text =
            sig.ok_or_else(|| Error::new(ErrorKind::BadArgument, "give --sig or --manifest"))?;
        let sig = Signature::parse(text).map_err(|e| {
            Error::new(
                ErrorKind::BadSignature,
                format!("--sig '{}': {e}", quoted(text)),
            )
        })?;
        return Ok((sig, args));
    };
    let Some((name, rest)) = args.split_first() else {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!(
                "with --manifest, give the function's name first \
                 (ffb describe --manifest {} lists them)",
                m.origin
            ),
        ));
    };
    let f = m
        .function(name)
        .ok_or_else(|| Error::new(ErrorKind::BadArgument, m.unknown_function(name)))?;
    Ok((f.signature.clone(), rest))
}

/// What `--repeat N` reports: the spread of N call times, in nanoseconds,
/// and the helper's start-up.
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
