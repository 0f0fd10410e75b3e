//! `ffb sql`: run SQL through a bridged database driver and print the last
//! statement's rows as they arrive.
//!
//! Everything typed is checked before a helper starts (bridge mode, the
//! driver's target, every parameter). Then one connection runs the
//! statements; rows stream to stdout a page at a time, with the output
//! flushed whenever the next row must come from the helper. Ctrl-C (or
//! SIGTERM) stops at the next row, ends the result cleanly and exits 130; a
//! call that does not come back within half a second of it ends with its
//! helper. A closed stdout (`| head -1`) ends the run quietly.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ffb_abi::signature::{ArgType, ScalarType};
use ffb_loader::sql::{Config, Connection, DriverKind, Value};
use ffb_loader::{BridgeMode, Error, ErrorKind};

use crate::args::arg_from_text;
use crate::load::{bridge_disabled, bridge_mode};
use crate::output::{report, stderr_line, stdout_failed};
use crate::sql_output::{writer, Format};

/// The exit status after Ctrl-C: 128 + SIGINT, as shells report it.
const INTERRUPTED: u8 = 130;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DriverArg {
    Sqlite,
    Postgres,
    Odbc,
}

impl From<DriverArg> for DriverKind {
    fn from(d: DriverArg) -> Self {
        match d {
            DriverArg::Sqlite => DriverKind::Sqlite,
            DriverArg::Postgres => DriverKind::Postgres,
            DriverArg::Odbc => DriverKind::Odbc,
        }
    }
}

#[derive(Args)]
pub struct SqlArgs {
    /// Allow loading native code (or set FFB_BRIDGE_MODE=1).
    #[arg(long)]
    bridge_mode: bool,
    /// The database client library to bridge.
    #[arg(long, value_enum, default_value_t = DriverArg::Sqlite)]
    driver: DriverArg,
    /// sqlite: the database file (default: an in-memory database); postgres:
    /// a libpq connection string; odbc: a DSN or an ODBC connection string.
    #[arg(long, value_name = "PATH_OR_CONNINFO_OR_DSN")]
    db: Option<String>,
    /// Print {"columns":[...],"rows":[[...],...]}.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print RFC 4180 CSV with a header line.
    #[arg(long)]
    csv: bool,
    /// Load this library instead of the driver's default soname.
    #[arg(long, value_name = "PATH_OR_SONAME")]
    lib: Option<String>,
    /// Timeout for each call and each page of rows, in milliseconds [default: 30000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// Append one JSON line per violation, crash, timeout and respawn to this file.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// One or more statements separated by `;`.
    #[arg(value_name = "SQL")]
    sql: String,
    /// Parameters of the last statement, in order.
    #[arg(value_name = "PARAM", value_parser = crate::args::unmarked)]
    params: Vec<String>,
}

/// How a run ended, other than with every row printed.
enum Stop {
    /// The driver or the bridge failed.
    Failed(Error),
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// stdout was closed by its reader.
    Closed,
    /// stdout failed otherwise.
    Output(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Stop::Closed
        } else {
            Stop::Output(e)
        }
    }
}

pub fn run(args: SqlArgs) -> ExitCode {
    if bridge_mode(args.bridge_mode) != BridgeMode::Enabled {
        return report(&bridge_disabled(), false, true);
    }
    let kind = DriverKind::from(args.driver);
    if kind != DriverKind::Sqlite && args.db.is_none() {
        let e = Error::new(
            ErrorKind::BadArgument,
            format!(
                "--driver {} needs --db (a {})",
                kind.name(),
                if kind == DriverKind::Postgres {
                    "libpq connection string"
                } else {
                    "DSN or connection string"
                }
            ),
        );
        return report(&e, false, true);
    }
    let params = match parse_params(&args.params) {
        Ok(p) => p,
        Err(e) => return report(&e, false, true),
    };
    let format = if args.json {
        Format::Json
    } else if args.csv {
        Format::Csv
    } else {
        Format::Table
    };
    let mut config = Config::new(kind, args.db).bridge_mode(BridgeMode::Enabled);
    if let Some(ms) = args.timeout_ms {
        config = config.timeout(Duration::from_millis(ms));
    }
    if let Some(lib) = args.lib {
        config = config.library(lib);
    }
    if let Some(log) = args.audit_log {
        config = config.audit_log(log);
    }
    let interrupted = watch_interrupts();
    let stop = stream(config, &args.sql, &params, format, &interrupted);
    let stop = match stop {
        Err(_) if interrupted.load(Relaxed) => Err(Stop::Interrupted),
        other => other,
    };
    match stop {
        Ok(()) | Err(Stop::Closed) => ExitCode::SUCCESS,
        Err(Stop::Interrupted) => {
            stderr_line("interrupted");
            ExitCode::from(INTERRUPTED)
        }
        Err(Stop::Failed(e)) => report(&e, false, e.kind == ErrorKind::BadArgument),
        Err(Stop::Output(e)) => stdout_failed(&e),
    }
}

/// Opens the connection, runs `sql` and writes the last statement's rows.
fn stream(
    config: Config,
    sql: &str,
    params: &[Value],
    format: Format,
    interrupted: &AtomicBool,
) -> Result<(), Stop> {
    let mut conn = Connection::open(config).map_err(Stop::Failed)?;
    let mut rows = conn.query(sql, params).map_err(Stop::Failed)?;
    let stdout = io::stdout();
    let mut out = writer(format, stdout.lock());
    out.begin(rows.columns())?;
    loop {
        if interrupted.load(Relaxed) {
            // End the document, so what was printed stays well-formed.
            out.finish()?;
            return Err(Stop::Interrupted);
        }
        if rows.buffered_rows() == 0 {
            // The next row comes from the helper: show what we have.
            out.flush()?;
        }
        match rows.next() {
            None => break,
            Some(Ok(row)) => out.row(row.values())?,
            Some(Err(e)) => {
                out.flush()?;
                return Err(Stop::Failed(e));
            }
        }
    }
    out.finish()?;
    io::stdout().flush()?;
    Ok(())
}

/// Sets the returned flag on SIGINT or SIGTERM. The main thread stops at its
/// next row; if it is stuck in a call, the fork servers (and with them every
/// helper) are stopped half a second later, which ends the call.
fn watch_interrupts() -> Arc<AtomicBool> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        let seen = Arc::clone(&flag);
        std::thread::spawn(move || {
            for _ in signals.forever() {
                seen.store(true, Relaxed);
                std::thread::sleep(Duration::from_millis(500));
                ffb_loader::shutdown_fork_servers();
            }
        });
    }
    flag
}

/// Whether `text` is written as an integer: decimal or `0x` hex, signed.
fn looks_like_int(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Whether `text` is written as a decimal float (`1.5`, `-2e10`, `.5`).
fn looks_like_float(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
}

/// One parameter as typed: `null`; `hex:...` or `@FILE` for a blob;
/// `text:...` for text that would otherwise read as something else; an
/// integer (decimal or `0x` hex, 64-bit); a decimal float; else text.
pub fn param_from_text(text: &str, position: usize) -> Result<Value, Error> {
    let renamed = |mut e: Error| {
        e.message = e.message.replacen("argument", "parameter", 1);
        e
    };
    if text == "null" || text == "NULL" {
        return Ok(Value::Null);
    }
    if let Some(t) = text.strip_prefix("text:") {
        return Ok(Value::Text(t.to_string()));
    }
    if text.starts_with("hex:") || text.starts_with('@') {
        return match arg_from_text(ArgType::Bytes, text, position).map_err(renamed)? {
            ffb_loader::Value::Bytes(b) => Ok(Value::Blob(b)),
            other => unreachable!("bytes parse to bytes, not {other:?}"),
        };
    }
    if looks_like_int(text) {
        let int = ArgType::Scalar(ScalarType::I64);
        return match arg_from_text(int, text, position).map_err(renamed)? {
            ffb_loader::Value::I64(i) => Ok(Value::Int(i)),
            other => unreachable!("i64 parses to i64, not {other:?}"),
        };
    }
    if looks_like_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Ok(Value::Float(f));
        }
    }
    Ok(Value::Text(text.to_string()))
}

fn parse_params(texts: &[String]) -> Result<Vec<Value>, Error> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| param_from_text(t, i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_as_typed() {
        let p = |t: &str| param_from_text(t, 1).unwrap();
        assert_eq!(p("null"), Value::Null);
        assert_eq!(p("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(p("0x10"), Value::Int(16));
        assert_eq!(p("1.5"), Value::Float(1.5));
        assert_eq!(p("-0.0"), Value::Float(-0.0));
        assert_eq!(p("1e300"), Value::Float(1e300));
        assert_eq!(p("hex:00ff"), Value::Blob(vec![0, 0xff]));
        assert_eq!(p("text:42"), Value::Text("42".into()));
        assert_eq!(p("text:null"), Value::Text("null".into()));
        assert_eq!(p("héllo"), Value::Text("héllo".into()));
        assert_eq!(p("inf"), Value::Text("inf".into()));
        assert_eq!(p("1-2"), Value::Text("1-2".into()));
        let e = param_from_text("9223372036854775808", 3).unwrap_err();
        assert!(e.message.starts_with("parameter 3: "), "{e}");
        assert!(param_from_text("hex:0", 1).is_err());
        assert!(param_from_text("@/no/such/file", 1).is_err());
    }
}
