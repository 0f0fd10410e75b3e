//! The ODBC driver: unixODBC's driver manager (`libodbc.so.2`) in a helper,
//! which loads the driver its DSN names and reaches that driver's endpoint
//! and nothing else.
//!
//! The target is a DSN name (`ffb_pg`, sent as `DSN=ffb_pg;`) or a whole
//! connection string (anything with `=`). The helper's environment is
//! cleared, so the driver manager gets the host's `ODBCSYSINI` and
//! `ODBCINI`, and nothing else.
//!
//! # Values
//!
//! By each column's SQL type from `SQLDescribeCol`: the integer types
//! (`SQL_BIT` included) are read as `SQL_C_SBIGINT`, [`Value::Int`];
//! `SQL_REAL`, `SQL_FLOAT`, `SQL_DOUBLE` as `SQL_C_DOUBLE`,
//! [`Value::Float`]; the binary types as `SQL_C_BINARY`, [`Value::Blob`];
//! everything else as `SQL_C_BINARY` bytes taken as text, so the driver's
//! bytes arrive without a locale conversion. What the driver itself does to
//! a value (the SQLite ODBC driver prints doubles with 15 digits) is the
//! driver's. Parameters are bound with `SQLBindParameter`: integers as
//! `SQL_C_SBIGINT`/`SQL_BIGINT`, floats as `SQL_C_DOUBLE`/`SQL_DOUBLE`,
//! text as `SQL_C_CHAR`/`SQL_VARCHAR`, blobs as
//! `SQL_C_BINARY`/`SQL_VARBINARY`, NULL by its indicator. The bound
//! buffers are [retained](crate::BridgeBuilder::retain): the driver reads
//! them at `SQLExecute`, so they stay pinned until the statement is bound
//! again or freed.
//!
//! # Rows
//!
//! A page of rows crosses in one handoff: a [fetch
//! program](crate::FetchProgram) whose ADVANCE is `SQLFetch` and one
//! `SQLGetData` per column into the program's scratch (each value's own
//! slot and its length indicator), and whose READ emits the cells from the
//! scratch. `SQLGetData` consumes the value, so it must not run twice for a
//! row: pages are sized so that a row never has to be read again (at most
//! the rows whose largest possible size fits the arena). A value longer
//! than its slot (64 KiB, or the column's declared size up to 1 MiB) is a
//! `resource_limit` error.
//!
//! # Errors
//!
//! A failed call is [`ErrorKind::Foreign`] with the first diagnostic
//! record's SQLSTATE and message (`SQLGetDiagRec`). A parameter count that
//! does not match `SQLNumParams` is `bad_argument`.
//!
//! # Policy
//!
//! `manifests/odbc.policy.toml`, plus (`ini.rs`): `[filesystem] read` on
//! the ini files and the driver library; for psqlODBC, `[network]
//! connect_tcp` on the DSN's port or `connect_unix` on its socket; for the
//! SQLite ODBC drivers, `[filesystem] write` on the database's directory
//! (its journal is created beside it).

mod ini;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use super::{Config, Driver, StatementId, Value};
use crate::bridge::{Bridge, FunctionId};
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value as Raw;
use crate::{Cell, Cmp, FetchEnd, FetchProgram, FetchState, Operand, DEFAULT_ARENA};
use ffb_policy::grants::Grants;
use ffb_policy::sandbox::{Action, SandboxPolicy, SyscallRule};

/// `EPERM`.
const EPERM: u32 = 1;

/// The soname loaded unless the config names another library.
const LIBRARY: &str = "libodbc.so.2";

/// The functions the driver calls. SQLLEN and SQLULEN are 64-bit; every
/// handle is of the one kind `odbc` (`SQLAllocHandle` makes all three).
const DECLARATIONS: &[&str] = &[
    "SQLAllocHandle(i16, handle, *handle<odbc>) -> i16",
    "SQLFreeHandle(i16, handle<odbc>) -> i16",
    "SQLSetEnvAttr(handle<odbc>, i32, u64, i32) -> i16",
    "SQLDriverConnect(handle<odbc>, u64, bytes, i16, u64, i16, u64, u16) -> i16",
    "SQLDisconnect(handle<odbc>) -> i16",
    "SQLPrepare(handle<odbc>, bytes, i32) -> i16",
    "SQLNumParams(handle<odbc>, *i16) -> i16",
    "SQLBindParameter(handle<odbc>, u16, i16, i16, i16, u64, i16, bytes, i64, bytes) -> i16",
    "SQLExecute(handle<odbc>) -> i16",
    "SQLNumResultCols(handle<odbc>, *i16) -> i16",
    "SQLDescribeCol(handle<odbc>, u16, out[256], i16, *i16, *i16, *u64, *i16, *i16) -> i16",
    "SQLRowCount(handle<odbc>, *i64) -> i16",
    "SQLFetch(handle<odbc>) -> i16",
    "SQLGetData(handle<odbc>, u16, i16, bytes, i64, bytes) -> i16",
    "SQLFreeStmt(handle<odbc>, u16) -> i16",
    "SQLGetDiagRec(i16, handle<odbc>, i16, out[6], *i32, out[1024], i16, *i16) -> i16",
];

const SQL_HANDLE_ENV: i16 = 1;
const SQL_HANDLE_DBC: i16 = 2;
const SQL_HANDLE_STMT: i16 = 3;
const SQL_ATTR_ODBC_VERSION: i32 = 200;
const SQL_OV_ODBC3: u64 = 3;
const SQL_NO_DATA: i64 = 100;
const SQL_CLOSE: u16 = 0;
const SQL_RESET_PARAMS: u16 = 3;
const SQL_PARAM_INPUT: i16 = 1;
const SQL_NULL_DATA: i64 = -1;
const SQL_NO_TOTAL: i64 = -4;
const SQL_C_CHAR: i16 = 1;
const SQL_C_SBIGINT: i16 = -25;
const SQL_C_DOUBLE: i16 = 8;
const SQL_C_BINARY: i16 = -2;
const SQL_VARCHAR: i16 = 12;
const SQL_BIGINT: i16 = -5;
const SQL_DOUBLE: i16 = 8;
const SQL_VARBINARY: i16 = -3;
/// A value's slot in the scratch, unless the column declares more.
const DEFAULT_CAP: usize = 64 << 10;
/// The largest slot.
const MAX_CAP: usize = 1 << 20;
/// The most columns a result may have here.
const MAX_COLUMNS: usize = 4096;
/// Rows per page at most.
const PAGE_ROWS: usize = 1024;

/// How a column is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    Int,
    Float,
    Blob,
    Text,
}

impl Read {
    fn of(sql_type: i64) -> Read {
        match sql_type {
            // SQL_INTEGER, SQL_SMALLINT, SQL_BIGINT, SQL_TINYINT, SQL_BIT
            4 | 5 | -5 | -6 | -7 => Read::Int,
            // SQL_FLOAT, SQL_REAL, SQL_DOUBLE
            6..=8 => Read::Float,
            // SQL_BINARY, SQL_VARBINARY, SQL_LONGVARBINARY
            -4..=-2 => Read::Blob,
            _ => Read::Text,
        }
    }

    fn c_type(self) -> i16 {
        match self {
            Read::Int => SQL_C_SBIGINT,
            Read::Float => SQL_C_DOUBLE,
            Read::Blob | Read::Text => SQL_C_BINARY,
        }
    }

    fn fixed(self) -> bool {
        matches!(self, Read::Int | Read::Float)
    }
}

/// One column's place in the scratch.
#[derive(Clone, Copy, Debug)]
struct Slot {
    read: Read,
    /// The length indicator (8 bytes).
    indicator: usize,
    /// The value.
    data: usize,
    cap: usize,
}

/// The declared functions, by name.
struct Functions {
    alloc: FunctionId,
    free: FunctionId,
    disconnect: FunctionId,
    prepare: FunctionId,
    num_params: FunctionId,
    bind: FunctionId,
    execute: FunctionId,
    num_cols: FunctionId,
    describe: FunctionId,
    row_count: FunctionId,
    fetch: FunctionId,
    get_data: FunctionId,
    free_stmt: FunctionId,
    diag: FunctionId,
}

impl Functions {
    fn of(bridge: &Bridge) -> Functions {
        let f = |name: &str| bridge.function(name).expect("declared at load");
        Functions {
            alloc: f("SQLAllocHandle"),
            free: f("SQLFreeHandle"),
            disconnect: f("SQLDisconnect"),
            prepare: f("SQLPrepare"),
            num_params: f("SQLNumParams"),
            bind: f("SQLBindParameter"),
            execute: f("SQLExecute"),
            num_cols: f("SQLNumResultCols"),
            describe: f("SQLDescribeCol"),
            row_count: f("SQLRowCount"),
            fetch: f("SQLFetch"),
            get_data: f("SQLGetData"),
            free_stmt: f("SQLFreeStmt"),
            diag: f("SQLGetDiagRec"),
        }
    }
}

/// A result being read.
struct Cursor {
    program: FetchProgram,
    state: FetchState,
    slots: Vec<Slot>,
    delivered: u64,
}

/// One prepared statement.
struct Prepared {
    stmt: Raw,
    params: usize,
    cursor: Option<Cursor>,
    changes: u64,
    /// An error that ended the rows after some were delivered with it.
    failed: Option<Error>,
}

/// An open connection in a helper.
struct Odbc {
    bridge: Bridge,
    fns: Functions,
    env: Raw,
    dbc: Raw,
    connected: bool,
    statements: HashMap<u64, Prepared>,
    next_statement: u64,
}

/// The shipped policy for the driver manager (see the file).
const BASE_POLICY: &str = include_str!("../../../manifests/odbc.policy.toml");
const BASE_POLICY_PATH: &str = "manifests/odbc.policy.toml";
/// The resolver's files, for a psqlODBC server given by name.
const RESOLVER: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
];

fn connection_string(config: &Config) -> Result<String> {
    let target = config.target().ok_or_else(|| {
        Error::new(
            ErrorKind::BadArgument,
            "the odbc driver needs a DSN or a connection string (--db DSN)",
        )
    })?;
    Ok(if target.contains('=') {
        target.to_string()
    } else {
        format!("DSN={target};")
    })
}

/// The policy for a connection: see the module docs.
pub(crate) fn policy(config: &Config) -> Result<SandboxPolicy> {
    let files = ini::Files::from_env();
    policy_for(&ini::reach(&connection_string(config)?, &files), &files)
}

fn policy_for(reach: &ini::Reach, files: &ini::Files) -> Result<SandboxPolicy> {
    let mut read: Vec<PathBuf> = files
        .ini_files()
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    read.extend(reach.driver.iter().filter(|p| p.exists()).cloned());
    if reach.names {
        read.extend(RESOLVER.iter().map(PathBuf::from).filter(|p| p.exists()));
    }
    let write: Vec<PathBuf> = reach
        .databases
        .iter()
        .filter_map(|db| db.parent().map(|d| d.to_path_buf()))
        .filter(|d| d.exists())
        .collect();
    let grants = Grants {
        read,
        write,
        connect_tcp: reach.tcp_ports.clone(),
        connect_unix: reach.unix_sockets.clone(),
    };
    let base = ffb_policy::source::parse_toml_policy(BASE_POLICY, BASE_POLICY_PATH)
        .map_err(|e| Error::new(ErrorKind::BadArgument, format!("{BASE_POLICY_PATH}: {e}")))?;
    let bad = |e: ffb_policy::sandbox::PolicyError| {
        Error::new(ErrorKind::BadArgument, format!("odbc policy: {e}"))
    };
    let mut p = base.with_grants(&grants).map_err(bad)?;
    if !reach.databases.is_empty() {
        // As in sqlite3.policy.toml: SQLite sets a new journal's owner (as
        // root) and mode (when the umask made it differ from the
        // database's) and ignores the answer; refused softly, since
        // Landlock does not confine metadata.
        for syscall in ["fchown", "fchmod"] {
            let rule = SyscallRule::new(syscall, Action::Errno(EPERM), vec![]).map_err(bad)?;
            p = p.with_rule(rule).map_err(bad)?;
        }
    }
    p.name = "odbc".to_string();
    Ok(p)
}

/// An integer return value as i64.
fn int(v: &Raw) -> i64 {
    v.as_i128().unwrap_or_default() as i64
}

fn ok(rc: i64) -> bool {
    rc == 0 || rc == 1
}

/// The `i`th out-value of a call.
fn out(o: &crate::CallOutput, i: usize) -> Raw {
    o.out.get(i).cloned().flatten().unwrap_or(Raw::Null)
}

/// Opens the connection `config` names.
pub(crate) fn open(config: &Config) -> Result<Box<dyn Driver>> {
    let connect = connection_string(config)?;
    let policy = policy(config)?;
    let mut builder = config
        .bridge_builder(LIBRARY, policy)
        .handle_kind("odbc", Some("SQLFreeHandle"), None)
        .retain("SQLBindParameter", 7)
        .retain("SQLBindParameter", 9);
    for var in ["ODBCSYSINI", "ODBCINI"] {
        if let Ok(v) = std::env::var(var) {
            builder = builder.env(var, v);
        }
    }
    for d in DECLARATIONS {
        builder = builder.declare(*d);
    }
    let bridge = builder.load()?;
    let fns = Functions::of(&bridge);
    let mut db = Odbc {
        bridge,
        fns,
        env: Raw::Null,
        dbc: Raw::Null,
        connected: false,
        statements: HashMap::new(),
        next_statement: 1,
    };
    db.env = db.alloc(SQL_HANDLE_ENV, Raw::Null)?;
    let set = db.bridge.function("SQLSetEnvAttr").expect("declared");
    let args = [
        db.env.clone(),
        Raw::I32(SQL_ATTR_ODBC_VERSION),
        Raw::U64(SQL_OV_ODBC3),
        Raw::I32(0),
    ];
    let rc = int(&db.bridge.call(set, &args)?.ret);
    if !ok(rc) {
        return Err(db.diag(SQL_HANDLE_ENV, &db.env.clone(), rc));
    }
    db.dbc = db.alloc(SQL_HANDLE_DBC, db.env.clone())?;
    let len = i16::try_from(connect.len()).map_err(|_| {
        Error::new(
            ErrorKind::BadArgument,
            "the connection string is longer than 32767 bytes",
        )
    })?;
    let driver_connect = db.bridge.function("SQLDriverConnect").expect("declared");
    let args = [
        db.dbc.clone(),
        Raw::U64(0),
        Raw::bytes(connect.as_bytes()),
        Raw::I16(len),
        Raw::U64(0),
        Raw::I16(0),
        Raw::U64(0),
        Raw::U16(0),
    ];
    let rc = int(&db.bridge.call(driver_connect, &args)?.ret);
    if !ok(rc) {
        return Err(db.diag(SQL_HANDLE_DBC, &db.dbc.clone(), rc));
    }
    db.connected = true;
    Ok(Box::new(db))
}

impl Odbc {
    /// `SQLAllocHandle(kind, parent, &out)`.
    fn alloc(&mut self, kind: i16, parent: Raw) -> Result<Raw> {
        let o = self
            .bridge
            .call(self.fns.alloc, &[Raw::I16(kind), parent.clone(), Raw::Null])?;
        let rc = int(&o.ret);
        let h = out(&o, 2);
        if !ok(rc) || h == Raw::Null {
            return Err(match parent {
                Raw::Null => {
                    Error::foreign("odbc", "HY001", format!("SQLAllocHandle({kind}) = {rc}"))
                }
                p => self.diag(kind - 1, &p, rc),
            });
        }
        Ok(h)
    }

    /// The first diagnostic record of `handle` as a foreign error (or, for
    /// a handle with none, the return code).
    fn diag(&mut self, kind: i16, handle: &Raw, rc: i64) -> Error {
        // The two out[N] buffers take no value.
        let args = [
            Raw::I16(kind),
            handle.clone(),
            Raw::I16(1),
            Raw::I32(0),
            Raw::I16(1024),
            Raw::I16(0),
        ];
        let o = match self.bridge.call(self.fns.diag, &args) {
            Ok(o) => o,
            Err(e) => return e,
        };
        if !ok(int(&o.ret)) {
            return Error::foreign(
                "odbc",
                "HY000",
                format!("the call failed ({rc}) without a diagnostic record"),
            );
        }
        let state = match out(&o, 3) {
            Raw::Bytes(b) => String::from_utf8_lossy(&b[..5.min(b.len())]).into_owned(),
            _ => "HY000".into(),
        };
        let len = int(&out(&o, 7)).clamp(0, 1023) as usize;
        let message = match out(&o, 5) {
            Raw::Bytes(b) => String::from_utf8_lossy(&b[..len.min(b.len())]).into_owned(),
            _ => String::new(),
        };
        Error::foreign("odbc", state, message.trim_end().to_string())
    }

    fn statement(&mut self, stmt: StatementId) -> Result<&mut Prepared> {
        self.statements.get_mut(&stmt.0).ok_or_else(|| {
            Error::new(
                ErrorKind::StaleHandle,
                format!("statement {} is not open", stmt.0),
            )
        })
    }

    /// A statement call's result code; its diagnostic on failure.
    fn stmt_call(&mut self, f: FunctionId, args: &[Raw]) -> Result<crate::CallOutput> {
        let o = self.bridge.call(f, args)?;
        let rc = int(&o.ret);
        if !ok(rc) && rc != SQL_NO_DATA {
            return Err(self.diag(SQL_HANDLE_STMT, &args[0], rc));
        }
        Ok(o)
    }

    /// Closes the statement's open cursor, if any.
    fn close(&mut self, id: u64) -> Result<()> {
        let Some(p) = self.statements.get_mut(&id) else {
            return Ok(());
        };
        if p.cursor.take().is_some() {
            let stmt = p.stmt.clone();
            self.bridge
                .call(self.fns.free_stmt, &[stmt, Raw::U16(SQL_CLOSE)])?;
        }
        Ok(())
    }

    /// Binds parameter `i` (1-based).
    fn bind_call(&self, stmt: &Raw, i: usize, v: &Value) -> Result<Vec<Raw>> {
        let (c, sql, buf, ind): (i16, i16, Vec<u8>, i64) = match v {
            Value::Null => (SQL_C_CHAR, SQL_VARCHAR, vec![0; 8], SQL_NULL_DATA),
            Value::Int(x) => (SQL_C_SBIGINT, SQL_BIGINT, x.to_ne_bytes().to_vec(), 8),
            Value::Float(x) => (SQL_C_DOUBLE, SQL_DOUBLE, x.to_ne_bytes().to_vec(), 8),
            Value::Text(s) => (
                SQL_C_CHAR,
                SQL_VARCHAR,
                s.as_bytes().to_vec(),
                s.len() as i64,
            ),
            Value::Blob(b) => (SQL_C_BINARY, SQL_VARBINARY, b.clone(), b.len() as i64),
        };
        let at = u16::try_from(i)
            .map_err(|_| Error::new(ErrorKind::BadArgument, "too many parameters"))?;
        let size = buf.len().max(1) as u64;
        let len = buf.len() as i64;
        Ok(vec![
            stmt.clone(),
            Raw::U16(at),
            Raw::I16(SQL_PARAM_INPUT),
            Raw::I16(c),
            Raw::I16(sql),
            Raw::U64(size),
            Raw::I16(0),
            Raw::Bytes(buf),
            Raw::I64(len),
            Raw::Bytes(ind.to_ne_bytes().to_vec()),
        ])
    }

    /// The result's columns: names, and a fetch program for them.
    fn describe(&mut self, stmt: &Raw, n: usize) -> Result<(Vec<String>, Cursor)> {
        let args: Vec<Vec<Raw>> = (1..=n)
            .map(|c| {
                vec![
                    stmt.clone(),
                    Raw::U16(c as u16),
                    Raw::I16(256),
                    Raw::I16(0),
                    Raw::I16(0),
                    Raw::U64(0),
                    Raw::I16(0),
                    Raw::I16(0),
                ]
            })
            .collect();
        let calls: Vec<(FunctionId, &[Raw])> = args
            .iter()
            .map(|a| (self.fns.describe, a.as_slice()))
            .collect();
        let outs = self.bridge.call_batch(&calls).map_err(|f| f.error)?;
        let mut names = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        let mut at = 0usize;
        for o in &outs {
            let rc = int(&o.ret);
            if !ok(rc) {
                return Err(self.diag(SQL_HANDLE_STMT, stmt, rc));
            }
            let len = int(&out(o, 4)).clamp(0, 255) as usize;
            names.push(match out(o, 2) {
                Raw::Bytes(b) => String::from_utf8_lossy(&b[..len.min(b.len())]).into_owned(),
                _ => String::new(),
            });
            let read = Read::of(int(&out(o, 5)));
            let declared = match out(o, 6) {
                Raw::U64(s) => s as usize,
                _ => 0,
            };
            let cap = if read.fixed() {
                8
            } else {
                declared.saturating_add(1).clamp(DEFAULT_CAP, MAX_CAP)
            };
            slots.push(Slot {
                read,
                indicator: at,
                data: at + 16,
                cap,
            });
            at += 16 + cap.div_ceil(16) * 16;
        }
        let program = self.program(&slots, at)?;
        let init = [stmt.clone()];
        let mut state = self.bridge.fetch_state(&init)?;
        // A row's largest size: every slot full, with its tag and length.
        let row_max: usize = slots.iter().map(|s| s.cap + 5).sum();
        let room = DEFAULT_ARENA / 2;
        state.set_page_rows((room / row_max.max(1)).clamp(1, PAGE_ROWS));
        Ok((
            names,
            Cursor {
                program,
                state,
                slots,
                delivered: 0,
            },
        ))
    }

    /// ADVANCE: `SQLFetch`, then `SQLGetData` for every column into its
    /// slot, ending on a failure or a value too long for its slot. READ:
    /// the cells from the slots.
    fn program(&self, slots: &[Slot], scratch: usize) -> Result<FetchProgram> {
        let (fetch, get_data) = (self.fns.fetch, self.fns.get_data);
        FetchProgram::builder(slots.len())
            .scratch(scratch)
            .advance(|p| {
                p.call(fetch, &[Operand::Reg(0)], 1);
                p.end_unless(1, Cmp::Ge, Operand::Const(0));
                p.end_unless(1, Cmp::Le, Operand::Const(1));
                for (j, s) in slots.iter().enumerate() {
                    let args = [
                        Operand::Reg(0),
                        Operand::Const(j as u64 + 1),
                        Operand::Const(s.read.c_type() as i64 as u64),
                        Operand::Scratch(s.data),
                        Operand::Const(s.cap as u64),
                        Operand::Scratch(s.indicator),
                    ];
                    p.call(get_data, &args, 2);
                    // SQL_NO_DATA for a column is a driver that already
                    // gave it: end (100) rather than read a stale slot.
                    p.end_unless(2, Cmp::Ge, Operand::Const(0));
                    p.end_unless(2, Cmp::Le, Operand::Const(1));
                    p.load(3, s.indicator);
                    p.end_unless(3, Cmp::Ne, Operand::Const(SQL_NO_TOTAL as u64));
                    p.end_unless(3, Cmp::Le, Operand::Const(s.cap as u64));
                }
            })
            .read(|p| {
                for s in slots {
                    p.load(3, s.indicator);
                    let s = *s;
                    p.if_else(
                        3,
                        Cmp::Eq,
                        Operand::Const(SQL_NULL_DATA as u64),
                        |n| {
                            n.emit_null();
                        },
                        |v| {
                            match s.read {
                                Read::Int => v.load(4, s.data).emit_int(4),
                                Read::Float => v.load(4, s.data).emit_float(4),
                                Read::Text => v.emit_scratch_text(s.data, s.cap, 3),
                                Read::Blob => v.emit_scratch_blob(s.data, s.cap, 3),
                            };
                        },
                    );
                }
            })
            .build()
    }
}

/// Decodes one cell of a column read as `read`.
fn decode(read: Read, cell: &Cell<'_>) -> std::result::Result<Value, String> {
    Ok(match (read, cell) {
        (_, Cell::Null) => Value::Null,
        (Read::Int, Cell::Int(i)) => Value::Int(*i),
        (Read::Float, Cell::Float(f)) => Value::Float(*f),
        (Read::Text, Cell::Text(b)) => Value::text_from_bytes(b),
        (Read::Blob, Cell::Blob(b)) => Value::Blob(b.to_vec()),
        (r, c) => return Err(format!("a {c:?} cell in a column read as {r:?}")),
    })
}

impl Driver for Odbc {
    fn name(&self) -> &'static str {
        "odbc"
    }

    fn prepare(&mut self, sql: &str) -> Result<Option<(StatementId, usize)>> {
        let Some(end) = super::split::statement_end(sql, super::split::Dialect::Standard) else {
            return Ok(None);
        };
        // The driver gets the statement without its `;` (not every driver
        // takes one).
        let text = sql[..end].trim_end().trim_end_matches(';');
        let len = i32::try_from(text.len())
            .map_err(|_| Error::new(ErrorKind::BadArgument, "the SQL text is longer than 2 GiB"))?;
        let stmt = self.alloc(SQL_HANDLE_STMT, self.dbc.clone())?;
        let prepared = self
            .stmt_call(
                self.fns.prepare,
                &[stmt.clone(), Raw::bytes(text.as_bytes()), Raw::I32(len)],
            )
            .and_then(|_| self.stmt_call(self.fns.num_params, &[stmt.clone(), Raw::I16(0)]));
        let params = match prepared {
            Ok(o) => int(&out(&o, 1)).max(0) as usize,
            Err(e) => {
                let _ = self
                    .bridge
                    .call(self.fns.free, &[Raw::I16(SQL_HANDLE_STMT), stmt]);
                return Err(e);
            }
        };
        let id = self.next_statement;
        self.next_statement += 1;
        self.statements.insert(
            id,
            Prepared {
                stmt,
                params,
                cursor: None,
                changes: 0,
                failed: None,
            },
        );
        Ok(Some((StatementId(id), end)))
    }

    fn execute(&mut self, stmt: StatementId, params: &[Value]) -> Result<Vec<String>> {
        self.close(stmt.0)?;
        let p = self.statement(stmt)?;
        let (h, wanted) = (p.stmt.clone(), p.params);
        p.failed = None;
        if wanted != params.len() {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "the statement takes {wanted} parameters, {} given",
                    params.len()
                ),
            );
        }
        self.stmt_call(self.fns.free_stmt, &[h.clone(), Raw::U16(SQL_RESET_PARAMS)])?;
        self.bridge.release_pins(&h)?;
        if !params.is_empty() {
            let args = params
                .iter()
                .enumerate()
                .map(|(i, v)| self.bind_call(&h, i + 1, v))
                .collect::<Result<Vec<_>>>()?;
            let calls: Vec<(FunctionId, &[Raw])> =
                args.iter().map(|a| (self.fns.bind, a.as_slice())).collect();
            let outs = self.bridge.call_batch(&calls).map_err(|f| f.error)?;
            if let Some(rc) = outs.iter().map(|o| int(&o.ret)).find(|&rc| !ok(rc)) {
                return Err(self.diag(SQL_HANDLE_STMT, &h, rc));
            }
        }
        self.stmt_call(self.fns.execute, std::slice::from_ref(&h))?;
        let o = self.stmt_call(self.fns.num_cols, &[h.clone(), Raw::I16(0)])?;
        let n = int(&out(&o, 1));
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_COLUMNS)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("SQLNumResultCols answered {n}"),
                )
            })?;
        if n == 0 {
            let o = self.stmt_call(self.fns.row_count, &[h.clone(), Raw::I64(0)])?;
            self.statement(stmt)?.changes = int(&out(&o, 1)).max(0) as u64;
            return Ok(Vec::new());
        }
        let (names, cursor) = self.describe(&h, n)?;
        let p = self.statement(stmt)?;
        p.cursor = Some(cursor);
        p.changes = 0;
        Ok(names)
    }

    fn fetch(&mut self, stmt: StatementId, max_rows: usize, out: &mut Vec<Value>) -> Result<bool> {
        let p = self.statement(stmt)?;
        if let Some(e) = p.failed.take() {
            return Err(e);
        }
        let h = p.stmt.clone();
        let Some(mut cursor) = p.cursor.take() else {
            return Ok(false);
        };
        let start = out.len();
        let mut bad = None;
        let mut rows = 0u64;
        let reads: Vec<Read> = cursor.slots.iter().map(|s| s.read).collect();
        let end = self
            .bridge
            .fetch(&cursor.program, &mut cursor.state, max_rows, |row| {
                for (cell, &read) in row.iter().zip(&reads) {
                    match decode(read, cell) {
                        Ok(v) => out.push(v),
                        Err(e) => {
                            bad = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                }
                rows += 1;
                ControlFlow::Continue(())
            });
        cursor.delivered += rows;
        let end = match (end, bad) {
            (Err(e), _) => {
                out.truncate(start);
                return Err(e);
            }
            (Ok(_), Some(why)) => {
                out.truncate(start);
                return err(
                    ErrorKind::Protocol,
                    format!("an odbc cell does not decode: {why}"),
                );
            }
            (Ok(end), None) => end,
        };
        let reason = match end {
            FetchEnd::More => {
                self.statement(stmt)?.cursor = Some(cursor);
                return Ok(true);
            }
            FetchEnd::Ended { reason } => reason,
        };
        let delivered = cursor.delivered;
        let slots = cursor.slots.clone();
        // The cursor is done with (its state is dropped); close it.
        self.bridge
            .call(self.fns.free_stmt, &[h.clone(), Raw::U16(SQL_CLOSE)])?;
        let e = match reason {
            SQL_NO_DATA => {
                self.statement(stmt)?.changes = delivered;
                return Ok(false);
            }
            r if r < 0 && r != SQL_NO_TOTAL => self.diag(SQL_HANDLE_STMT, &h, r),
            r => {
                let cap = slots.iter().map(|s| s.cap).max().unwrap_or(0);
                Error::new(
                    ErrorKind::ResourceLimit,
                    format!(
                        "a value in row {} is longer than its fetch slot ({} bytes; at most {cap}): {}",
                        delivered + 1,
                        if r == SQL_NO_TOTAL { "of unknown length".to_string() } else { r.to_string() },
                        "the odbc driver reads values up to the column's declared size, at least 64 KiB and at most 1 MiB"
                    ),
                )
            }
        };
        if rows == 0 {
            return Err(e);
        }
        self.statement(stmt)?.failed = Some(e);
        Ok(true)
    }

    fn changes(&mut self, stmt: StatementId) -> Result<u64> {
        Ok(self.statement(stmt)?.changes)
    }

    fn reset(&mut self, stmt: StatementId) -> Result<()> {
        self.close(stmt.0)?;
        let p = self.statement(stmt)?;
        p.changes = 0;
        p.failed = None;
        Ok(())
    }

    fn finalize(&mut self, stmt: StatementId) {
        if let Some(p) = self.statements.remove(&stmt.0) {
            if self.bridge.helper_pid().is_some() {
                let _ = self
                    .bridge
                    .call(self.fns.free, &[Raw::I16(SQL_HANDLE_STMT), p.stmt]);
            }
        }
    }
}

impl Drop for Odbc {
    fn drop(&mut self) {
        if self.bridge.helper_pid().is_none() {
            return;
        }
        let ids: Vec<u64> = self.statements.keys().copied().collect();
        for id in ids {
            self.finalize(StatementId(id));
        }
        if self.connected {
            let _ = self
                .bridge
                .call(self.fns.disconnect, std::slice::from_ref(&self.dbc));
        }
        if self.dbc != Raw::Null {
            let _ = self
                .bridge
                .call(self.fns.free, &[Raw::I16(SQL_HANDLE_DBC), self.dbc.clone()]);
        }
        if self.env != Raw::Null {
            let _ = self
                .bridge
                .call(self.fns.free, &[Raw::I16(SQL_HANDLE_ENV), self.env.clone()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_pick_how_a_column_is_read() {
        assert_eq!(Read::of(4), Read::Int);
        assert_eq!(Read::of(-5), Read::Int);
        assert_eq!(Read::of(-7), Read::Int);
        assert_eq!(Read::of(8), Read::Float);
        assert_eq!(Read::of(-3), Read::Blob);
        assert_eq!(Read::of(12), Read::Text);
        assert_eq!(Read::of(-9), Read::Text);
        assert_eq!(Read::of(2), Read::Text, "numeric stays its text");
    }

    #[test]
    fn cells_must_match_their_column() {
        assert_eq!(decode(Read::Int, &Cell::Int(-3)), Ok(Value::Int(-3)));
        assert_eq!(
            decode(Read::Blob, &Cell::Blob(b"\0x")),
            Ok(Value::Blob(vec![0, b'x']))
        );
        assert_eq!(decode(Read::Text, &Cell::Null), Ok(Value::Null));
        assert!(decode(Read::Int, &Cell::Text(b"1")).is_err());
    }
}
