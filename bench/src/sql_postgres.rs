//! A 100k-row × 4-column SELECT (integer, float, text, bytea) from a real
//! PostgreSQL over its unix socket, three ways, interleaved: the bridged
//! postgres driver (`ffb_loader::sql`, single-row mode, a page of rows per
//! handoff), libpq loaded in this process with libloading (`PQexec`, then
//! every cell read and decoded the same way: integers and floats parsed,
//! bytea hex decoded), and the `ffb sql --csv` command beside `psql -A` on
//! the same query (whole processes, output to a pipe that is drained).
//!
//! The server is the one `scripts/postgres.sh start` describes in
//! `FFB_TEST_PG_SOCKET_CONNINFO` (or `FFB_BENCH_PG_CONNINFO`); without it
//! the step says so on stderr and records nothing. Every way's sum of what
//! it read must agree before anything is timed.

use std::ffi::{c_char, c_int, c_void, CString};
use std::process::Command;
use std::time::Instant;

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::BridgeMode;

use crate::command::{self, at_least_lines};
use crate::measure::ns_since;
use crate::plan::Plan;
use crate::progress;
use crate::report::Report;

/// The query: 100k rows computed by the server.
pub const QUERY: &str = "SELECT x::int8 * 7919 - 4000000000 AS i, x * 1.5e-3::float8 AS f, \
     'row ' || x || ', \"q\"' AS t, decode(md5(x::text), 'hex') AS b \
     FROM generate_series(1, 100000) AS x";
const ROWS: u64 = 100_000;

/// What a scan saw.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sum {
    rows: u64,
    ints: i64,
    floats: u64,
    bytes: u64,
}

impl Sum {
    fn add(&mut self, v: &Value) {
        match v {
            Value::Int(i) => self.ints = self.ints.wrapping_add(*i),
            Value::Float(f) => self.floats = self.floats.wrapping_add(f.to_bits()),
            Value::Text(s) => self.bytes = self.bytes.wrapping_add(s.len() as u64),
            Value::Blob(b) => {
                self.bytes = self
                    .bytes
                    .wrapping_add(b.iter().map(|&x| u64::from(x)).sum::<u64>())
            }
            Value::Null => {}
        }
    }
}

type PqConnect = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type PqExec = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;
type PqInt = unsafe extern "C" fn(*const c_void) -> c_int;
type PqCell = unsafe extern "C" fn(*const c_void, c_int, c_int) -> c_int;
type PqValue = unsafe extern "C" fn(*const c_void, c_int, c_int) -> *const c_char;
type PqFree = unsafe extern "C" fn(*mut c_void);

/// libpq in this process, connected.
struct Local {
    _lib: libloading::Library,
    conn: *mut c_void,
    exec: PqExec,
    ntuples: PqInt,
    isnull: PqCell,
    value: PqValue,
    length: PqCell,
    clear: PqFree,
    finish: PqFree,
}

impl Local {
    fn connect(conninfo: &str) -> Result<Local, String> {
        // SAFETY: libpq's initialisers only set up its own state.
        let lib = unsafe { libloading::Library::new("libpq.so.5") }.map_err(|e| e.to_string())?;
        // SAFETY: each type matches libpq-fe.h; the pointers are copied out
        // of the symbols while `lib` stays loaded in the struct.
        let sym = |name: &str| -> Result<*const c_void, String> {
            // SAFETY: as above.
            unsafe { lib.get::<*const c_void>(name.as_bytes()) }
                .map(|s| *s)
                .map_err(|e| e.to_string())
        };
        let (connect, exec, status, ntuples, isnull, value, length, clear, finish) = (
            sym("PQconnectdb")?,
            sym("PQexec")?,
            sym("PQstatus")?,
            sym("PQntuples")?,
            sym("PQgetisnull")?,
            sym("PQgetvalue")?,
            sym("PQgetlength")?,
            sym("PQclear")?,
            sym("PQfinish")?,
        );
        // SAFETY: `PQconnectdb` is `PGconn *(const char *)`.
        let connect: PqConnect =
            unsafe { std::mem::transmute::<*const c_void, PqConnect>(connect) };
        // SAFETY: `PQstatus` is `ConnStatusType (const PGconn *)`.
        let status: PqInt = unsafe { std::mem::transmute::<*const c_void, PqInt>(status) };
        let c = CString::new(conninfo).map_err(|e| e.to_string())?;
        // SAFETY: a NUL-terminated conninfo.
        let conn = unsafe { connect(c.as_ptr()) };
        // SAFETY: PQstatus accepts what PQconnectdb returned.
        if unsafe { status(conn) } != 0 {
            return Err(format!("in-process libpq cannot connect with {conninfo}"));
        }
        Ok(Local {
            // SAFETY: the signatures of libpq-fe.h, one each.
            exec: unsafe { std::mem::transmute::<*const c_void, PqExec>(exec) },
            // SAFETY: as above.
            ntuples: unsafe { std::mem::transmute::<*const c_void, PqInt>(ntuples) },
            // SAFETY: as above.
            isnull: unsafe { std::mem::transmute::<*const c_void, PqCell>(isnull) },
            // SAFETY: as above.
            value: unsafe { std::mem::transmute::<*const c_void, PqValue>(value) },
            // SAFETY: as above.
            length: unsafe { std::mem::transmute::<*const c_void, PqCell>(length) },
            // SAFETY: as above.
            clear: unsafe { std::mem::transmute::<*const c_void, PqFree>(clear) },
            // SAFETY: as above.
            finish: unsafe { std::mem::transmute::<*const c_void, PqFree>(finish) },
            _lib: lib,
            conn,
        })
    }

    /// The query, every cell read and decoded as the driver decodes it.
    fn scan(&self) -> Sum {
        let q = CString::new(QUERY).expect("no NUL");
        // SAFETY: a live connection and a NUL-terminated query.
        let res = unsafe { (self.exec)(self.conn, q.as_ptr()) };
        let mut sum = Sum::default();
        // SAFETY: res is a live result (NULL gives 0 rows).
        let n = unsafe { (self.ntuples)(res) };
        for i in 0..n {
            for j in 0..4 {
                // SAFETY: i < ntuples, j < 4 columns (and below).
                if unsafe { (self.isnull)(res, i, j) } != 0 {
                    continue;
                }
                // SAFETY: as above.
                let p = unsafe { (self.value)(res, i, j) };
                // SAFETY: as above.
                let len = unsafe { (self.length)(res, i, j) } as usize;
                // SAFETY: libpq keeps `len` bytes at p while res lives.
                let text = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
                sum.add(&decode(j, text));
            }
            sum.rows += 1;
        }
        // SAFETY: cleared once.
        unsafe { (self.clear)(res) };
        sum
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // SAFETY: finished once.
        unsafe { (self.finish)(self.conn) };
    }
}

/// Column `j` of the query from its text, as the driver decodes it.
fn decode(j: c_int, text: &[u8]) -> Value {
    let s = std::str::from_utf8(text).unwrap_or_default();
    match j {
        0 => Value::Int(s.parse().unwrap_or_default()),
        1 => Value::Float(s.parse().unwrap_or_default()),
        2 => Value::Text(s.to_string()),
        _ => Value::Blob(
            text.get(2..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|p| {
                    u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0)
                })
                .collect(),
        ),
    }
}

fn bridged_scan(db: &mut Connection) -> Sum {
    let mut sum = Sum::default();
    for row in db.query(QUERY, &[]).expect("bridged query") {
        for v in row.expect("bridged row").values() {
            sum.add(v);
        }
        sum.rows += 1;
    }
    sum
}

/// The step: see the module docs.
pub fn measure(r: &mut Report, plan: &Plan) -> Result<(), String> {
    let Some(conninfo) = std::env::var("FFB_BENCH_PG_CONNINFO")
        .or_else(|_| std::env::var("FFB_TEST_PG_SOCKET_CONNINFO"))
        .ok()
        .filter(|c| !c.is_empty())
    else {
        eprintln!(
            "ffb-bench: postgres rows skipped: no server (eval \"$(scripts/postgres.sh start)\" first, or set FFB_BENCH_PG_CONNINFO)"
        );
        return Ok(());
    };
    progress::step("postgres 100k rows");
    let local = Local::connect(&conninfo)?;
    let config = Config::postgres(conninfo.clone()).bridge_mode(BridgeMode::Enabled);
    let mut db = Connection::open(config).map_err(|e| format!("bridged postgres: {e}"))?;
    let expected = local.scan();
    if expected.rows != ROWS || bridged_scan(&mut db) != expected {
        return Err(format!(
            "the bridged postgres scan disagrees with in-process libpq ({expected:?})"
        ));
    }
    let rounds = if plan.quick { 5 } else { 15 };
    let (mut bridged, mut inproc) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let got = bridged_scan(&mut db);
        bridged.push(ns_since(t));
        assert_eq!(got, expected, "bridged scan");
        let t = Instant::now();
        let got = local.scan();
        inproc.push(ns_since(t));
        assert_eq!(got, expected, "in-process scan");
    }
    drop(db);
    const METHOD: &str =
        "one whole query (100k rows, every cell decoded), medians of interleaved rounds";
    r.timed(
        "pg_bridged_100k",
        "pg_100k",
        None,
        METHOD,
        "PostgreSQL SELECT of 100k rows x (int8, float8, text, bytea) over the unix socket, bridged postgres driver",
        bridged,
    );
    r.timed(
        "pg_inproc_100k",
        "pg_100k",
        Some("in-process"),
        METHOD,
        "the same SELECT through libpq loaded in this process (PQexec, every cell read and decoded)",
        inproc,
    );

    // Whole commands: `ffb sql --csv` beside `psql -A`.
    progress::step("ffb sql vs psql -A");
    let ffb = command::ffb()?;
    let ffb_cmd = || {
        let mut c = Command::new(&ffb);
        c.args([
            "sql",
            "--bridge-mode",
            "--driver",
            "postgres",
            "--db",
            &conninfo,
            "--csv",
            QUERY,
        ]);
        c
    };
    let psql_cmd = || {
        let mut c = Command::new("psql");
        c.args(["-X", "-A", "-q", "-d", &conninfo, "-c", QUERY]);
        c
    };
    let (mut ffb_ns, mut psql_ns) = (Vec::new(), Vec::new());
    for _ in 0..(if plan.quick { 3 } else { 9 }) {
        ffb_ns.push(command::timed(&mut ffb_cmd(), at_least_lines(ROWS))?);
        psql_ns.push(command::timed(&mut psql_cmd(), at_least_lines(ROWS))?);
    }
    const CMD: &str = "whole process, stdout to a drained pipe, medians of interleaved runs";
    r.timed(
        "pg_ffb_sql_100k",
        "pg_cli_100k",
        None,
        CMD,
        &format!("ffb sql --bridge-mode --driver postgres --db CONNINFO --csv '{QUERY}'"),
        ffb_ns,
    );
    r.timed(
        "pg_psql_100k",
        "pg_cli_100k",
        Some("psql -A"),
        CMD,
        &format!("psql -X -A -q -d CONNINFO -c '{QUERY}'"),
        psql_ns,
    );
    Ok(())
}
