//! A 100k-row × 4-column SELECT (integer, real, text, blob) through real
//! libsqlite3, three ways on the same table, interleaved: a fetch program
//! through the bridge (a page of rows per handoff, [`Bridge::fetch`]), the
//! same reads in this process through libloading, and the bridge with one
//! call per cell (step, then type and value per column: about eleven round
//! trips a row).
//!
//! Every way reads every cell and folds it into the same [`Sum`] (integers,
//! float bits, every byte of text and blobs, NULLs), and the sums must agree:
//! a fetch that dropped or garbled a cell ends the run instead of being
//! timed. Each sample is one whole scan: `sqlite3_reset`, then every row.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use ffb_loader::{
    Bridge, BridgeMode, CallOutput, Cell, Cmp, FetchProgram, FunctionId, Operand, SandboxPolicy,
    Value,
};

use crate::measure::ns_since;
use crate::plan::Plan;
use crate::progress;
use crate::report::Report;

use Operand::{Const, Reg};

const SQLITE: &str = "libsqlite3.so.0";
/// Rows in the table.
pub const ROWS: u64 = 100_000;
/// The longest blob in the table (the one-call-per-cell path copies blobs
/// out through a fixed `out[N]`).
const MAX_BLOB: usize = 64;

/// The table, built the same way on both sides; temp storage in memory, so
/// the helper opens no files.
fn setup() -> String {
    format!(
        "PRAGMA temp_store = MEMORY;
         CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB);
         WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {ROWS})
         INSERT INTO t SELECT x * 7919 - 4000000000, x * 1.5e-3, 'row ' || x || ', \"q\"',
             CASE WHEN x % 10 = 0 THEN NULL ELSE CAST(zeroblob(x % 5) || x AS BLOB) END FROM g;"
    )
}

pub const SELECT: &str = "SELECT i, r, s, b FROM t";

const DECLS: &[&str] = &[
    "sqlite3_open_v2(cstr, *handle, i32, u64) -> i32",
    "sqlite3_exec(handle, cstr, u64, u64, u64) -> i32",
    "sqlite3_prepare_v2(handle, cstr, i32, *handle, u64) -> i32",
    "sqlite3_reset(handle) -> i32",
    "sqlite3_step(handle) -> i32",
    "sqlite3_column_type(handle, i32) -> i32",
    "sqlite3_column_int64(handle, i32) -> i64",
    "sqlite3_column_double(handle, i32) -> f64",
    "sqlite3_column_text(handle, i32) -> cstr",
    "sqlite3_column_blob(handle, i32) -> u64",
    "sqlite3_column_bytes(handle, i32) -> i32",
    "memcpy(out[64], u64, usize) -> u64",
];

/// What a scan saw: every way must see the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sum {
    rows: u64,
    ints: i64,
    floats: u64,
    texts: u64,
    blobs: u64,
    nulls: u64,
}

impl Sum {
    fn bytes(bytes: &[u8]) -> u64 {
        bytes.iter().fold(bytes.len() as u64, |s, &b| {
            s.wrapping_mul(31).wrapping_add(b.into())
        })
    }

    fn cell(&mut self, c: Cell<'_>) {
        match c {
            Cell::Int(v) => self.ints = self.ints.wrapping_add(v),
            Cell::Float(v) => self.floats ^= v.to_bits(),
            Cell::Text(t) => self.texts = self.texts.wrapping_add(Sum::bytes(t)),
            Cell::Blob(b) => self.blobs = self.blobs.wrapping_add(Sum::bytes(b)),
            Cell::Null => self.nulls += 1,
        }
    }
}

/// The statement in the helper, and what reading it needs.
struct Bridged {
    bridge: Bridge,
    stmt: Value,
    reset: FunctionId,
    fns: Fns,
    program: FetchProgram,
    out: CallOutput,
}

#[derive(Clone, Copy)]
struct Fns {
    step: FunctionId,
    column_type: FunctionId,
    int64: FunctionId,
    double: FunctionId,
    text: FunctionId,
    blob: FunctionId,
    bytes: FunctionId,
    memcpy: FunctionId,
}

/// ADVANCE: step, end unless SQLITE_ROW; READ: per column, dispatch on its
/// storage class.
fn program(f: &Fns, columns: u64) -> Result<FetchProgram, String> {
    FetchProgram::builder(columns as usize)
        .advance(|p| {
            p.call(f.step, &[Reg(0)], 1)
                .end_unless(1, Cmp::Eq, Const(100));
        })
        .read(|p| {
            for i in 0..columns {
                let at = [Reg(0), Const(i)];
                p.call(f.column_type, &at, 2);
                p.if_else(
                    2,
                    Cmp::Eq,
                    Const(1),
                    |t| {
                        t.call(f.int64, &at, 3).emit_int(3);
                    },
                    |e| {
                        e.if_else(
                            2,
                            Cmp::Eq,
                            Const(2),
                            |t| {
                                t.call(f.double, &at, 3).emit_float(3);
                            },
                            |e| {
                                e.if_else(
                                    2,
                                    Cmp::Eq,
                                    Const(3),
                                    |t| {
                                        t.call(f.text, &at, 3)
                                            .call(f.bytes, &at, 4)
                                            .emit_text(3, 4);
                                    },
                                    |e| {
                                        e.if_else(
                                            2,
                                            Cmp::Eq,
                                            Const(4),
                                            |t| {
                                                t.call(f.blob, &at, 3)
                                                    .call(f.bytes, &at, 4)
                                                    .emit_blob(3, 4);
                                            },
                                            |e| {
                                                e.emit_null();
                                            },
                                        );
                                    },
                                );
                            },
                        );
                    },
                );
            }
        })
        .build()
        .map_err(|e| e.to_string())
}

impl Bridged {
    fn open() -> Result<Bridged, String> {
        let fail = |what: &str, e: ffb_loader::Error| format!("bridged sqlite: {what}: {e}");
        let mut bridge = DECLS
            .iter()
            .fold(
                Bridge::builder(SQLITE)
                    .bridge_mode(BridgeMode::Enabled)
                    .policy(SandboxPolicy::preset("fs-read").map_err(|e| e.to_string())?),
                |b, d| b.declare(*d),
            )
            .load()
            .map_err(|e| fail("loading", e))?;
        let call = |b: &mut Bridge, name: &str, args: &[Value]| {
            b.call_by_name(name, args).map_err(|e| fail(name, e))
        };
        let open = call(
            &mut bridge,
            "sqlite3_open_v2",
            &[
                Value::str(":memory:"),
                Value::Null,
                Value::I32(6),
                Value::U64(0),
            ],
        )?;
        let db = open.out[1].clone().ok_or("no database handle")?;
        let rc = call(
            &mut bridge,
            "sqlite3_exec",
            &[
                db.clone(),
                Value::str(setup()),
                Value::U64(0),
                Value::U64(0),
                Value::U64(0),
            ],
        )?;
        if rc.ret != Value::I32(0) {
            return Err(format!("bridged sqlite: building the table: {:?}", rc.ret));
        }
        let prep = call(
            &mut bridge,
            "sqlite3_prepare_v2",
            &[
                db,
                Value::str(SELECT),
                Value::I32(-1),
                Value::Null,
                Value::U64(0),
            ],
        )?;
        let stmt = prep.out[3].clone().ok_or("no statement handle")?;
        let f = |name: &str| bridge.function(name).expect("declared");
        let fns = Fns {
            step: f("sqlite3_step"),
            column_type: f("sqlite3_column_type"),
            int64: f("sqlite3_column_int64"),
            double: f("sqlite3_column_double"),
            text: f("sqlite3_column_text"),
            blob: f("sqlite3_column_blob"),
            bytes: f("sqlite3_column_bytes"),
            memcpy: f("memcpy"),
        };
        Ok(Bridged {
            reset: f("sqlite3_reset"),
            program: program(&fns, 4)?,
            fns,
            bridge,
            stmt,
            out: CallOutput::default(),
        })
    }

    fn call(&mut self, f: FunctionId, args: &[Value]) -> &Value {
        if let Err(e) = self.bridge.call_into(f, args, &mut self.out) {
            panic!("a bridged sqlite call failed during the benchmark: {e}");
        }
        &self.out.ret
    }

    /// One scan with the fetch program.
    fn fetch(&mut self) -> Sum {
        let stmt = [self.stmt.clone()];
        self.call(self.reset, &stmt);
        let mut sum = Sum::default();
        let mut state = self
            .bridge
            .fetch_state(&stmt)
            .unwrap_or_else(|e| panic!("fetch_state: {e}"));
        self.bridge
            .fetch(&self.program, &mut state, usize::MAX, |row| {
                sum.rows += 1;
                for c in row {
                    sum.cell(*c);
                }
                ControlFlow::Continue(())
            })
            .unwrap_or_else(|e| panic!("fetch: {e}"));
        sum
    }

    /// One scan, one bridged call per step and per cell read.
    fn per_cell(&mut self) -> Sum {
        let stmt = self.stmt.clone();
        self.call(self.reset, std::slice::from_ref(&stmt));
        let mut sum = Sum::default();
        let f = self.fns;
        while *self.call(f.step, std::slice::from_ref(&stmt)) == Value::I32(100) {
            sum.rows += 1;
            for i in 0..4 {
                let at = [stmt.clone(), Value::I32(i)];
                let kind = self.call(f.column_type, &at).clone();
                let cell = match kind {
                    Value::I32(1) => match *self.call(f.int64, &at) {
                        Value::I64(v) => Cell::Int(v),
                        ref other => panic!("column_int64: {other:?}"),
                    },
                    Value::I32(2) => match *self.call(f.double, &at) {
                        Value::F64(v) => Cell::Float(v),
                        ref other => panic!("column_double: {other:?}"),
                    },
                    Value::I32(3) => {
                        let text = match self.call(f.text, &at) {
                            Value::Str(s) => s.clone(),
                            other => panic!("column_text: {other:?}"),
                        };
                        sum.cell(Cell::Text(&text));
                        continue;
                    }
                    Value::I32(4) => {
                        let ptr = self.call(f.blob, &at).clone();
                        let Value::I32(n) = *self.call(f.bytes, &at) else {
                            panic!("column_bytes")
                        };
                        let n = n as usize;
                        assert!(n <= MAX_BLOB, "a {n}-byte blob");
                        self.call(f.memcpy, &[ptr, Value::Usize(n)]);
                        let Some(Some(Value::Bytes(b))) = self.out.out.first() else {
                            panic!("memcpy's out buffer")
                        };
                        sum.blobs = sum.blobs.wrapping_add(Sum::bytes(&b[..n]));
                        continue;
                    }
                    _ => Cell::Null,
                };
                sum.cell(cell);
            }
        }
        sum
    }
}

type Open = unsafe extern "C" fn(*const c_char, *mut *mut c_void, c_int, *const c_char) -> c_int;
type Exec = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_void,
    *mut c_void,
    *mut c_void,
) -> c_int;
type Prepare = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    c_int,
    *mut *mut c_void,
    *mut *const c_char,
) -> c_int;
type Stmt = unsafe extern "C" fn(*mut c_void) -> c_int;
type Col = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
type ColI64 = unsafe extern "C" fn(*mut c_void, c_int) -> i64;
type ColF64 = unsafe extern "C" fn(*mut c_void, c_int) -> f64;
type ColPtr = unsafe extern "C" fn(*mut c_void, c_int) -> *const u8;

/// The same library in this process.
struct InProcess {
    _lib: libloading::Library,
    stmt: *mut c_void,
    reset: Stmt,
    step: Stmt,
    column_type: Col,
    int64: ColI64,
    double: ColF64,
    text: ColPtr,
    blob: ColPtr,
    bytes: Col,
}

/// Looks up `$name` in `$lib` as `$ty`, the function's C type in sqlite3.h.
macro_rules! sym {
    ($lib:expr, $ty:ty, $name:literal) => {{
        // SAFETY: each alias above is the function's C type in sqlite3.h.
        let s = unsafe { $lib.get::<$ty>(concat!($name, "\0").as_bytes()) };
        *s.map_err(|e| format!("{}: {e}", $name))?
    }};
}

/// libsqlite3 in this process, and a connection to `path` (`:memory:` or a
/// file, created) holding the table.
fn open_with_table(path: &str) -> Result<(libloading::Library, *mut c_void), String> {
    // SAFETY: libsqlite3's initialisers have no effect on this process
    // beyond the library's own state.
    let lib = unsafe { libloading::Library::new(SQLITE) }
        .map_err(|e| format!("in-process {SQLITE}: {e}"))?;
    let open = sym!(lib, Open, "sqlite3_open_v2");
    let exec = sym!(lib, Exec, "sqlite3_exec");
    let name = CString::new(path).map_err(|_| format!("{path:?} contains NUL"))?;
    let mut db = std::ptr::null_mut();
    // SAFETY: a NUL-terminated name, a valid out-pointer, READWRITE |
    // CREATE, the default VFS.
    let rc = unsafe { open(name.as_ptr(), &mut db, 6, std::ptr::null()) };
    if rc != 0 {
        return Err(format!("in-process sqlite3_open_v2({path}): {rc}"));
    }
    let sql = CString::new(setup()).expect("no NUL");
    let no = std::ptr::null_mut();
    // SAFETY: an open connection, NUL-terminated SQL, no callback.
    let rc = unsafe { exec(db, sql.as_ptr(), std::ptr::null(), no, no) };
    if rc != 0 {
        return Err(format!("in-process table in {path}: {rc}"));
    }
    Ok((lib, db))
}

/// Writes the table to a new database file at `path` (any old one is
/// removed first), for the commands to read.
pub fn write_table(path: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let text = path.to_str().ok_or("a database path that is not UTF-8")?;
    let (lib, db) = open_with_table(text)?;
    let close = sym!(lib, Stmt, "sqlite3_close_v2");
    // SAFETY: an open connection with no statements, closed once.
    let rc = unsafe { close(db) };
    if rc != 0 {
        return Err(format!("closing {text}: {rc}"));
    }
    Ok(())
}

impl InProcess {
    fn open() -> Result<InProcess, String> {
        let (lib, db) = open_with_table(":memory:")?;
        let prepare = sym!(lib, Prepare, "sqlite3_prepare_v2");
        let query = CString::new(SELECT).expect("no NUL");
        let mut stmt = std::ptr::null_mut();
        // SAFETY: NUL-terminated SQL (-1), valid out-pointers.
        let rc = unsafe { prepare(db, query.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(format!("in-process prepare: {rc}"));
        }
        Ok(InProcess {
            stmt,
            reset: sym!(lib, Stmt, "sqlite3_reset"),
            step: sym!(lib, Stmt, "sqlite3_step"),
            column_type: sym!(lib, Col, "sqlite3_column_type"),
            int64: sym!(lib, ColI64, "sqlite3_column_int64"),
            double: sym!(lib, ColF64, "sqlite3_column_double"),
            text: sym!(lib, ColPtr, "sqlite3_column_text"),
            blob: sym!(lib, ColPtr, "sqlite3_column_blob"),
            bytes: sym!(lib, Col, "sqlite3_column_bytes"),
            _lib: lib,
        })
    }

    /// `n` bytes at `p`, which SQLite keeps valid until the next step.
    fn slice<'a>(p: *const u8, n: c_int) -> &'a [u8] {
        if p.is_null() || n <= 0 {
            return &[];
        }
        // SAFETY: SQLite returned `p` for a value of `n` bytes, valid until
        // the statement moves on; the slice is dropped before that.
        unsafe { std::slice::from_raw_parts(p, n as usize) }
    }

    /// One scan: the same calls the fetch program makes, made directly.
    fn scan(&mut self) -> Sum {
        let s = self.stmt;
        let mut sum = Sum::default();
        // Every call below: `s` is a live prepared statement, a row is
        // current after a step returned SQLITE_ROW, and i < 4 columns.
        // SAFETY: `s` is a live prepared statement.
        unsafe { (self.reset)(s) };
        // SAFETY: as above.
        while unsafe { (self.step)(s) } == 100 {
            sum.rows += 1;
            for i in 0..4 {
                // SAFETY: as above.
                let cell = match unsafe { (self.column_type)(s, i) } {
                    // SAFETY: as above.
                    1 => Cell::Int(unsafe { (self.int64)(s, i) }),
                    // SAFETY: as above.
                    2 => Cell::Float(unsafe { (self.double)(s, i) }),
                    3 => {
                        // SAFETY: as above; text first, then its length.
                        let p = unsafe { (self.text)(s, i) };
                        // SAFETY: as above.
                        Cell::Text(Self::slice(p, unsafe { (self.bytes)(s, i) }))
                    }
                    4 => {
                        // SAFETY: as above.
                        let p = unsafe { (self.blob)(s, i) };
                        // SAFETY: as above.
                        Cell::Blob(Self::slice(p, unsafe { (self.bytes)(s, i) }))
                    }
                    _ => Cell::Null,
                };
                sum.cell(cell);
            }
        }
        sum
    }
}

/// Times each way over the same table, interleaved, and checks they agree.
pub fn measure(r: &mut Report, plan: &Plan) -> Result<(), String> {
    progress::step("sqlite 100k-row fetch");
    let mut bridged = Bridged::open()?;
    let mut local = InProcess::open()?;
    let expected = local.scan();
    if expected.rows != ROWS {
        return Err(format!(
            "in-process scan: {} rows, not {ROWS}",
            expected.rows
        ));
    }
    let check = |way: &str, got: Sum| {
        if got != expected {
            panic!("{way} scan disagrees with in-process: {got:?} vs {expected:?}");
        }
    };
    check("fetch", bridged.fetch());
    let rounds = if plan.quick { 5 } else { 15 };
    let (mut fetch, mut inproc) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let got = bridged.fetch();
        fetch.push(ns_since(t));
        check("fetch", got);
        let t = Instant::now();
        let got = local.scan();
        inproc.push(ns_since(t));
        check("in-process", got);
    }
    progress::step("sqlite 100k rows, one call per cell");
    let mut per_cell = Vec::new();
    for _ in 0..(if plan.quick { 1 } else { 3 }) {
        let t = Instant::now();
        let got = bridged.per_cell();
        per_cell.push(ns_since(t));
        check("one call per cell", got);
    }
    const METHOD: &str = "one whole scan (reset + 100k rows), medians of interleaved rounds";
    r.timed(
        "sqlite_fetch_100k",
        "sqlite_100k",
        None,
        METHOD,
        "SELECT of 100k rows x (int, real, text, blob) through a fetch program, 1,024 rows a handoff",
        fetch,
    );
    r.timed(
        "sqlite_inproc_100k",
        "sqlite_100k",
        Some("in-process"),
        METHOD,
        "the same SELECT, the same calls, libsqlite3 loaded in this process",
        inproc,
    );
    r.timed(
        "sqlite_per_cell_100k",
        "sqlite_100k",
        None,
        "one whole scan (reset + 100k rows), median",
        "the same SELECT through the bridge, one call per step and per cell read",
        per_cell,
    );
    Ok(())
}
