//! The in-process reference sides: libsqlite3, libpq and unixODBC loaded
//! into the test process with libloading and driven directly, with their
//! own mapping from the database's types to [`SqlValue`].
//!
//! The mapping the bridged drivers must agree with:
//! * SQLite: the storage class of each cell (`sqlite3_column_type`).
//! * PostgreSQL: by the column's type OID: `int2`, `int4`, `int8` (and
//!   `oid`) are integers, `float4`, `float8` floats (`NaN`, `Infinity`,
//!   `-Infinity` included), `bytea` a blob (its `\x` hex text decoded),
//!   `bool` the integers 1 and 0; everything else is its text.
//! * ODBC: by the column's SQL type from `SQLDescribeCol`: the integer
//!   types (`SQL_BIT` included) are read as `SQL_C_SBIGINT`, `SQL_REAL`,
//!   `SQL_FLOAT`, `SQL_DOUBLE` as `SQL_C_DOUBLE`, the binary types as
//!   `SQL_C_BINARY` blobs, everything else as `SQL_C_BINARY` bytes taken as
//!   text (no locale conversion on the way).
//!
//! Whatever these libraries do happens to the test process: they are only
//! used with the tests' own private server, DSNs and database files.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

use super::{Rows, SqlValue};
use crate::in_process::InProcess;

/// Decodes one PostgreSQL text-format value of type `oid`.
pub fn pg_decode(oid: u32, text: &[u8]) -> Result<SqlValue, String> {
    let s = || String::from_utf8(text.to_vec()).map_err(|e| format!("text not UTF-8: {e}"));
    match oid {
        20 | 21 | 23 | 26 => s()?
            .parse::<i64>()
            .map(SqlValue::Int)
            .map_err(|e| format!("integer {text:?}: {e}")),
        700 | 701 => {
            let t = s()?;
            let f = match t.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                other => other
                    .parse::<f64>()
                    .map_err(|e| format!("float {other:?}: {e}"))?,
            };
            Ok(SqlValue::Float(f))
        }
        16 => match text {
            b"t" => Ok(SqlValue::Int(1)),
            b"f" => Ok(SqlValue::Int(0)),
            _ => Err(format!("bool {text:?}")),
        },
        17 => {
            let hex_text = text
                .strip_prefix(b"\\x")
                .ok_or_else(|| format!("bytea without \\x: {text:?}"))?;
            hex::decode(hex_text)
                .map(SqlValue::Blob)
                .map_err(|e| format!("bytea hex: {e}"))
        }
        _ => Ok(SqlValue::Text(s()?)),
    }
}

// ---------------------------------------------------------------- SQLite

type Sqlite3Open =
    unsafe extern "C" fn(*const c_char, *mut *mut c_void, c_int, *const c_char) -> c_int;
type Sqlite3Prepare = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    c_int,
    *mut *mut c_void,
    *mut *const c_char,
) -> c_int;
type Sqlite3Stmt = unsafe extern "C" fn(*mut c_void) -> c_int;
type Sqlite3Col = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
type Sqlite3ColI64 = unsafe extern "C" fn(*mut c_void, c_int) -> i64;
type Sqlite3ColF64 = unsafe extern "C" fn(*mut c_void, c_int) -> f64;
type Sqlite3ColPtr = unsafe extern "C" fn(*mut c_void, c_int) -> *const c_void;
type Sqlite3BindI64 = unsafe extern "C" fn(*mut c_void, c_int, i64) -> c_int;
type Sqlite3BindF64 = unsafe extern "C" fn(*mut c_void, c_int, f64) -> c_int;
type Sqlite3BindNull = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
type Sqlite3BindBuf =
    unsafe extern "C" fn(*mut c_void, c_int, *const c_void, c_int, isize) -> c_int;
type Sqlite3Errmsg = unsafe extern "C" fn(*mut c_void) -> *const c_char;

/// `SQLITE_TRANSIENT`: SQLite copies the bound buffer at once.
const SQLITE_TRANSIENT: isize = -1;

/// libsqlite3 in the test process, on one database.
pub struct Sqlite {
    lib: InProcess,
    db: *mut c_void,
}

impl Sqlite {
    /// Opens `path` (`:memory:` for an in-memory database) read-write,
    /// creating it.
    pub fn open(path: &str) -> Sqlite {
        let lib = InProcess::open("libsqlite3.so.0");
        let c = CString::new(path).expect("a path without NUL");
        let mut db = ptr::null_mut();
        // SAFETY: sqlite3_open_v2 is `int (const char*, sqlite3**, int, const char*)`.
        let open = unsafe { lib.sym::<Sqlite3Open>("sqlite3_open_v2") };
        // SAFETY: a NUL-terminated path, a valid out-pointer, READWRITE|CREATE
        // (0x6), the default VFS.
        let rc = unsafe { open(c.as_ptr(), &mut db, 0x6, ptr::null()) };
        assert_eq!(rc, 0, "in-process sqlite3_open_v2({path}) = {rc}");
        // SAFETY: sqlite3_busy_timeout is `int (sqlite3*, int)`.
        let busy = unsafe {
            lib.sym::<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>("sqlite3_busy_timeout")
        };
        // SAFETY: an open connection. Other tests share the ODBC DSN's
        // database file: wait for their locks rather than fail.
        unsafe { busy(db, 20_000) };
        Sqlite { lib, db }
    }

    fn errmsg(&self) -> String {
        // SAFETY: sqlite3_errmsg is `const char *(sqlite3*)`.
        let f = unsafe { self.lib.sym::<Sqlite3Errmsg>("sqlite3_errmsg") };
        // SAFETY: self.db is an open connection.
        let p = unsafe { f(self.db) };
        // SAFETY: sqlite3_errmsg returns a NUL-terminated string that lives
        // until the next call on the connection; it is copied at once.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// Runs every statement of `sql` in turn, binding `params` to each
    /// statement that has parameters, and returns the last statement's
    /// rows.
    pub fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Rows, String> {
        let c = CString::new(sql).map_err(|e| e.to_string())?;
        // SAFETY: the signatures are SQLite's (sqlite3.h), spelled as the
        // type aliases above.
        let prepare = unsafe { self.lib.sym::<Sqlite3Prepare>("sqlite3_prepare_v2") };
        let mut tail: *const c_char = c.as_ptr();
        let mut last = Rows::default();
        // SAFETY: `tail` points into `c`, which is NUL-terminated.
        while !unsafe { CStr::from_ptr(tail) }
            .to_bytes()
            .trim_ascii()
            .is_empty()
        {
            let mut stmt = ptr::null_mut();
            let mut next: *const c_char = ptr::null();
            // SAFETY: a NUL-terminated statement (-1: read to the NUL), valid
            // out-pointers.
            let rc = unsafe { prepare(self.db, tail, -1, &mut stmt, &mut next) };
            if rc != 0 {
                return Err(self.errmsg());
            }
            tail = next;
            if stmt.is_null() {
                continue;
            }
            let result = self.run(stmt, params);
            // SAFETY: sqlite3_finalize is `int (sqlite3_stmt*)`.
            let finalize = unsafe { self.lib.sym::<Sqlite3Stmt>("sqlite3_finalize") };
            // SAFETY: stmt came from prepare and is finalized once.
            unsafe { finalize(stmt) };
            last = result?;
        }
        Ok(last)
    }

    fn run(&self, stmt: *mut c_void, params: &[SqlValue]) -> Result<Rows, String> {
        let lib = &self.lib;
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let count = unsafe { lib.sym::<Sqlite3Stmt>("sqlite3_column_count") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let bind_count = unsafe { lib.sym::<Sqlite3Stmt>("sqlite3_bind_parameter_count") };
        // SAFETY: stmt is a live prepared statement.
        let wanted = unsafe { bind_count(stmt) } as usize;
        if wanted > 0 {
            if wanted != params.len() {
                return Err(format!(
                    "{wanted} parameters wanted, {} given",
                    params.len()
                ));
            }
            for (i, p) in params.iter().enumerate() {
                self.bind(stmt, i as c_int + 1, p)?;
            }
        }
        // SAFETY: stmt is live.
        let ncols = unsafe { count(stmt) };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let name = unsafe {
            lib.sym::<unsafe extern "C" fn(*mut c_void, c_int) -> *const c_char>(
                "sqlite3_column_name",
            )
        };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let step = unsafe { lib.sym::<Sqlite3Stmt>("sqlite3_step") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let ctype = unsafe { lib.sym::<Sqlite3Col>("sqlite3_column_type") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let ci64 = unsafe { lib.sym::<Sqlite3ColI64>("sqlite3_column_int64") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let cf64 = unsafe { lib.sym::<Sqlite3ColF64>("sqlite3_column_double") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let ctext = unsafe { lib.sym::<Sqlite3ColPtr>("sqlite3_column_text") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let cblob = unsafe { lib.sym::<Sqlite3ColPtr>("sqlite3_column_blob") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let cbytes = unsafe { lib.sym::<Sqlite3Col>("sqlite3_column_bytes") };
        let columns = (0..ncols)
            .map(|i| {
                // SAFETY: i < column count.
                let p = unsafe { name(stmt, i) };
                // SAFETY: a NUL-terminated name owned by the statement.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            })
            .collect();
        let mut rows = Vec::new();
        loop {
            // SAFETY: stmt is live.
            let rc = unsafe { step(stmt) };
            match rc {
                100 => {}
                101 => break,
                _ => return Err(self.errmsg()),
            }
            let mut row = Vec::with_capacity(ncols as usize);
            for i in 0..ncols {
                // SAFETY: a row is current and i < column count (for this
                // and every column read below).
                let v = match unsafe { ctype(stmt, i) } {
                    // SAFETY: as above.
                    1 => SqlValue::Int(unsafe { ci64(stmt, i) }),
                    // SAFETY: as above.
                    2 => SqlValue::Float(unsafe { cf64(stmt, i) }),
                    3 => {
                        // SAFETY: as above; text first, then its length.
                        let p = unsafe { ctext(stmt, i) } as *const u8;
                        // SAFETY: as above.
                        let n = unsafe { cbytes(stmt, i) } as usize;
                        let bytes = if p.is_null() || n == 0 {
                            Vec::new()
                        } else {
                            // SAFETY: SQLite guarantees n bytes at p until
                            // the next step.
                            unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
                        };
                        SqlValue::Text(String::from_utf8(bytes).map_err(|e| e.to_string())?)
                    }
                    4 => {
                        // SAFETY: as above.
                        let p = unsafe { cblob(stmt, i) } as *const u8;
                        // SAFETY: as above.
                        let n = unsafe { cbytes(stmt, i) } as usize;
                        SqlValue::Blob(if p.is_null() || n == 0 {
                            Vec::new()
                        } else {
                            // SAFETY: n bytes at p until the next step.
                            unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
                        })
                    }
                    _ => SqlValue::Null,
                };
                row.push(v);
            }
            rows.push(row);
        }
        Ok(Rows { columns, rows })
    }

    fn bind(&self, stmt: *mut c_void, i: c_int, p: &SqlValue) -> Result<(), String> {
        let lib = &self.lib;
        let rc = match p {
            SqlValue::Null => {
                // SAFETY: sqlite3_bind_null is `int (sqlite3_stmt*, int)`.
                let f = unsafe { lib.sym::<Sqlite3BindNull>("sqlite3_bind_null") };
                // SAFETY: a live statement, a parameter index in range.
                unsafe { f(stmt, i) }
            }
            SqlValue::Int(v) => {
                // SAFETY: `int (sqlite3_stmt*, int, sqlite3_int64)`.
                let f = unsafe { lib.sym::<Sqlite3BindI64>("sqlite3_bind_int64") };
                // SAFETY: as above.
                unsafe { f(stmt, i, *v) }
            }
            SqlValue::Float(v) => {
                // SAFETY: `int (sqlite3_stmt*, int, double)`.
                let f = unsafe { lib.sym::<Sqlite3BindF64>("sqlite3_bind_double") };
                // SAFETY: as above.
                unsafe { f(stmt, i, *v) }
            }
            SqlValue::Text(s) => {
                // SAFETY: `int (sqlite3_stmt*, int, const char*, int, void(*)(void*))`.
                let f = unsafe { lib.sym::<Sqlite3BindBuf>("sqlite3_bind_text") };
                // SAFETY: s.len() bytes at s; SQLITE_TRANSIENT copies them.
                unsafe {
                    f(
                        stmt,
                        i,
                        s.as_ptr().cast(),
                        s.len() as c_int,
                        SQLITE_TRANSIENT,
                    )
                }
            }
            SqlValue::Blob(b) => {
                // SAFETY: `int (sqlite3_stmt*, int, const void*, int, void(*)(void*))`.
                let f = unsafe { lib.sym::<Sqlite3BindBuf>("sqlite3_bind_blob") };
                // SAFETY: b.len() bytes at b (a dangling but aligned pointer
                // for an empty blob, which SQLite never reads); copied.
                unsafe {
                    f(
                        stmt,
                        i,
                        b.as_ptr().cast(),
                        b.len() as c_int,
                        SQLITE_TRANSIENT,
                    )
                }
            }
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(self.errmsg())
        }
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        // SAFETY: sqlite3_close_v2 is `int (sqlite3*)`.
        let close = unsafe { self.lib.sym::<Sqlite3Stmt>("sqlite3_close_v2") };
        // SAFETY: the connection is closed once; every statement was
        // finalized in `query`.
        unsafe { close(self.db) };
    }
}

// ------------------------------------------------------------- PostgreSQL

type PqPtr = unsafe extern "C" fn(*const c_void) -> *mut c_void;
type PqInt = unsafe extern "C" fn(*const c_void) -> c_int;
type PqStr = unsafe extern "C" fn(*const c_void) -> *const c_char;
type PqCell = unsafe extern "C" fn(*const c_void, c_int, c_int) -> c_int;
type PqValue = unsafe extern "C" fn(*const c_void, c_int, c_int) -> *const c_char;
type PqField = unsafe extern "C" fn(*const c_void, c_int) -> *const c_char;
type PqFtype = unsafe extern "C" fn(*const c_void, c_int) -> u32;
type PqExecParams = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    c_int,
    *const u32,
    *const *const c_char,
    *const c_int,
    *const c_int,
    c_int,
) -> *mut c_void;

/// libpq in the test process, on one connection.
pub struct Postgres {
    lib: InProcess,
    conn: *mut c_void,
}

impl Postgres {
    /// `PQconnectdb(conninfo)`; a failed connection is an error with
    /// libpq's message.
    pub fn connect(conninfo: &str) -> Result<Postgres, String> {
        let lib = InProcess::open("libpq.so.5");
        let c = CString::new(conninfo).map_err(|e| e.to_string())?;
        // SAFETY: PQconnectdb is `PGconn *(const char *)`.
        let connect = unsafe { lib.sym::<PqPtr>("PQconnectdb") };
        // SAFETY: a NUL-terminated conninfo.
        let conn = unsafe { connect(c.as_ptr().cast()) };
        let pg = Postgres { lib, conn };
        // SAFETY: PQstatus is `ConnStatusType (const PGconn *)`.
        let status = unsafe { pg.lib.sym::<PqInt>("PQstatus") };
        // SAFETY: conn is what PQconnectdb returned (NULL is allowed).
        if unsafe { status(pg.conn) } != 0 {
            return Err(pg.error());
        }
        Ok(pg)
    }

    fn error(&self) -> String {
        // SAFETY: PQerrorMessage is `char *(const PGconn *)`.
        let f = unsafe { self.lib.sym::<PqStr>("PQerrorMessage") };
        // SAFETY: a connection from PQconnectdb.
        let p = unsafe { f(self.conn) };
        // SAFETY: a NUL-terminated string owned by the connection; copied.
        unsafe { CStr::from_ptr(p) }
            .to_string_lossy()
            .trim_end()
            .to_string()
    }

    /// `PQexecParams` with every parameter in text format and type
    /// unspecified, except blobs: binary, typed `bytea`. NULL is a null
    /// pointer. Returns the rows decoded by [`pg_decode`].
    pub fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Rows, String> {
        let c = CString::new(sql).map_err(|e| e.to_string())?;
        let mut texts: Vec<Vec<u8>> = Vec::new();
        let mut types = Vec::new();
        let mut formats = Vec::new();
        for p in params {
            let (t, oid, fmt) = match p {
                SqlValue::Null => (None, 0, 0),
                SqlValue::Int(v) => (Some(v.to_string().into_bytes()), 0, 0),
                SqlValue::Float(v) => (Some(pg_float_text(*v).into_bytes()), 0, 0),
                SqlValue::Text(s) => (Some(s.clone().into_bytes()), 0, 0),
                SqlValue::Blob(b) => (Some(b.clone()), 17, 1),
            };
            texts.push(
                t.map(|mut v| {
                    v.push(0);
                    v
                })
                .unwrap_or_default(),
            );
            types.push(oid);
            formats.push(fmt);
        }
        let values: Vec<*const c_char> = params
            .iter()
            .zip(&texts)
            .map(|(p, t)| match p {
                SqlValue::Null => ptr::null(),
                _ => t.as_ptr().cast(),
            })
            .collect();
        let lengths: Vec<c_int> = texts
            .iter()
            .map(|t| t.len().saturating_sub(1) as c_int)
            .collect();
        // SAFETY: PQexecParams's prototype, spelled as PqExecParams.
        let exec = unsafe { self.lib.sym::<PqExecParams>("PQexecParams") };
        // SAFETY: every array has params.len() entries and lives until the
        // call returns; text values are NUL-terminated, binary ones have
        // their length in `lengths`.
        let res = unsafe {
            exec(
                self.conn,
                c.as_ptr(),
                params.len() as c_int,
                types.as_ptr(),
                values.as_ptr(),
                lengths.as_ptr(),
                formats.as_ptr(),
                0,
            )
        };
        let out = self.read(res);
        // SAFETY: PQclear is `void (PGresult *)`; it accepts NULL.
        let clear = unsafe { self.lib.sym::<unsafe extern "C" fn(*mut c_void)>("PQclear") };
        // SAFETY: res is cleared once, after `read` is done with it.
        unsafe { clear(res) };
        out
    }

    fn read(&self, res: *mut c_void) -> Result<Rows, String> {
        let lib = &self.lib;
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let status = unsafe { lib.sym::<PqInt>("PQresultStatus") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let ntuples = unsafe { lib.sym::<PqInt>("PQntuples") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let nfields = unsafe { lib.sym::<PqInt>("PQnfields") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let fname = unsafe { lib.sym::<PqField>("PQfname") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let ftype = unsafe { lib.sym::<PqFtype>("PQftype") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let isnull = unsafe { lib.sym::<PqCell>("PQgetisnull") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let value = unsafe { lib.sym::<PqValue>("PQgetvalue") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let length = unsafe { lib.sym::<PqCell>("PQgetlength") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let rerr = unsafe { lib.sym::<PqStr>("PQresultErrorMessage") };
        if res.is_null() {
            return Err(self.error());
        }
        // SAFETY: res is a live result (here and below).
        match unsafe { status(res) } {
            // PGRES_COMMAND_OK, PGRES_TUPLES_OK
            1 => return Ok(Rows::default()),
            2 => {}
            _ => {
                // SAFETY: as above; a NUL-terminated message owned by res.
                let p = unsafe { rerr(res) };
                // SAFETY: as above.
                return Err(unsafe { CStr::from_ptr(p) }
                    .to_string_lossy()
                    .trim_end()
                    .to_string());
            }
        }
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let n = unsafe { ntuples(res) };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let m = unsafe { nfields(res) };
        let mut columns = Vec::new();
        let mut oids = Vec::new();
        for j in 0..m {
            // SAFETY: j < nfields; the name is NUL-terminated, owned by res.
            let p = unsafe { fname(res, j) };
            // SAFETY: a NUL-terminated name owned by res.
            let name = unsafe { CStr::from_ptr(p) };
            columns.push(name.to_string_lossy().into_owned());
            // SAFETY: j < nfields.
            oids.push(unsafe { ftype(res, j) });
        }
        let mut rows = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut row = Vec::with_capacity(m as usize);
            for (j, &oid) in oids.iter().enumerate() {
                let j = j as c_int;
                // SAFETY: i < ntuples, j < nfields.
                if unsafe { isnull(res, i, j) } == 1 {
                    row.push(SqlValue::Null);
                    continue;
                }
                // SAFETY: as above.
                let p = unsafe { value(res, i, j) } as *const u8;
                // SAFETY: as above.
                let len = unsafe { length(res, i, j) } as usize;
                // SAFETY: libpq keeps `len` bytes at p for the result's life.
                let bytes = unsafe { std::slice::from_raw_parts(p, len) };
                row.push(pg_decode(oid, bytes)?);
            }
            rows.push(row);
        }
        Ok(Rows { columns, rows })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SAFETY: PQfinish is `void (PGconn *)`.
        let finish = unsafe {
            self.lib
                .sym::<unsafe extern "C" fn(*mut c_void)>("PQfinish")
        };
        // SAFETY: the connection is finished once.
        unsafe { finish(self.conn) };
    }
}

/// A float as PostgreSQL's text input reads it back exactly: the shortest
/// round-trip digits, and its spellings of NaN and the infinities.
pub fn pg_float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "Infinity".into()
    } else if v == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        format!("{v:e}")
    }
}

// -------------------------------------------------------------------- ODBC

type SqlAlloc = unsafe extern "C" fn(i16, *mut c_void, *mut *mut c_void) -> i16;
type SqlFree = unsafe extern "C" fn(i16, *mut c_void) -> i16;
type SqlSetEnvAttr = unsafe extern "C" fn(*mut c_void, i32, *mut c_void, i32) -> i16;
type SqlDriverConnect = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *const u8,
    i16,
    *mut u8,
    i16,
    *mut i16,
    u16,
) -> i16;
type SqlPrepare = unsafe extern "C" fn(*mut c_void, *const u8, i32) -> i16;
type SqlExecute = unsafe extern "C" fn(*mut c_void) -> i16;
type SqlNumResultCols = unsafe extern "C" fn(*mut c_void, *mut i16) -> i16;
type SqlDescribeCol = unsafe extern "C" fn(
    *mut c_void,
    u16,
    *mut u8,
    i16,
    *mut i16,
    *mut i16,
    *mut u64,
    *mut i16,
    *mut i16,
) -> i16;
type SqlFetch = unsafe extern "C" fn(*mut c_void) -> i16;
type SqlGetData = unsafe extern "C" fn(*mut c_void, u16, i16, *mut c_void, i64, *mut i64) -> i16;
type SqlGetDiagRec =
    unsafe extern "C" fn(i16, *mut c_void, i16, *mut u8, *mut i32, *mut u8, i16, *mut i16) -> i16;
type SqlBindParameter = unsafe extern "C" fn(
    *mut c_void,
    u16,
    i16,
    i16,
    i16,
    u64,
    i16,
    *mut c_void,
    i64,
    *mut i64,
) -> i16;
type SqlHandle1 = unsafe extern "C" fn(*mut c_void) -> i16;

/// ODBC handle types.
const SQL_HANDLE_ENV: i16 = 1;
const SQL_HANDLE_DBC: i16 = 2;
const SQL_HANDLE_STMT: i16 = 3;
const SQL_NULL_DATA: i64 = -1;
const SQL_C_SBIGINT: i16 = -25;
const SQL_C_DOUBLE: i16 = 8;
const SQL_C_BINARY: i16 = -2;
const SQL_C_CHAR: i16 = 1;

/// How the ODBC side reads a column of SQL type `t` (from `SQLDescribeCol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OdbcRead {
    /// `SQL_C_SBIGINT`.
    Int,
    /// `SQL_C_DOUBLE`.
    Float,
    /// `SQL_C_BINARY`, a blob.
    Blob,
    /// `SQL_C_BINARY`, taken as text.
    Text,
}

/// The mapping of SQL types to how they are read (module docs).
pub fn odbc_read(sql_type: i16) -> OdbcRead {
    match sql_type {
        // SQL_INTEGER, SQL_SMALLINT, SQL_BIGINT, SQL_TINYINT, SQL_BIT
        4 | 5 | -5 | -6 | -7 => OdbcRead::Int,
        // SQL_FLOAT, SQL_REAL, SQL_DOUBLE
        6..=8 => OdbcRead::Float,
        // SQL_BINARY, SQL_VARBINARY, SQL_LONGVARBINARY
        -4..=-2 => OdbcRead::Blob,
        _ => OdbcRead::Text,
    }
}

/// unixODBC's driver manager in the test process, on one connection.
pub struct Odbc {
    lib: InProcess,
    env: *mut c_void,
    dbc: *mut c_void,
}

impl Odbc {
    /// Allocates an environment (ODBC 3) and a connection, and connects
    /// with `SQLDriverConnect(connection_string)`. unixODBC reads its ini
    /// files from this process's `ODBCSYSINI`/`ODBCINI`.
    pub fn connect(connection_string: &str) -> Result<Odbc, String> {
        let lib = InProcess::open("libodbc.so.2");
        // SAFETY: SQLAllocHandle is `SQLRETURN (SQLSMALLINT, SQLHANDLE, SQLHANDLE*)`.
        let alloc = *unsafe { lib.sym::<SqlAlloc>("SQLAllocHandle") };
        let mut env = ptr::null_mut();
        // SAFETY: a valid out-pointer; no parent for an environment.
        let rc = unsafe { alloc(SQL_HANDLE_ENV, ptr::null_mut(), &mut env) };
        if rc != 0 {
            return Err(format!("SQLAllocHandle(ENV) = {rc}"));
        }
        let mut odbc = Odbc {
            lib,
            env,
            dbc: ptr::null_mut(),
        };
        // SAFETY: SQLSetEnvAttr is `SQLRETURN (SQLHENV, SQLINTEGER, SQLPOINTER, SQLINTEGER)`.
        let set = unsafe { odbc.lib.sym::<SqlSetEnvAttr>("SQLSetEnvAttr") };
        // SAFETY: SQL_ATTR_ODBC_VERSION (200) takes the integer SQL_OV_ODBC3
        // (3) in the pointer argument.
        let rc = unsafe { set(odbc.env, 200, 3usize as *mut c_void, 0) };
        if rc != 0 {
            return Err(odbc.diag(SQL_HANDLE_ENV, odbc.env));
        }
        let mut dbc = ptr::null_mut();
        // SAFETY: a live environment, a valid out-pointer.
        let rc = unsafe { alloc(SQL_HANDLE_DBC, odbc.env, &mut dbc) };
        if rc != 0 {
            return Err(odbc.diag(SQL_HANDLE_ENV, odbc.env));
        }
        odbc.dbc = dbc;
        // SAFETY: SQLDriverConnect's prototype, spelled as SqlDriverConnect.
        let connect = unsafe { odbc.lib.sym::<SqlDriverConnect>("SQLDriverConnect") };
        // SAFETY: no window, the string with its length, no output buffer,
        // SQL_DRIVER_NOPROMPT (0).
        let rc = unsafe {
            connect(
                dbc,
                ptr::null_mut(),
                connection_string.as_ptr(),
                connection_string.len() as i16,
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                0,
            )
        };
        if rc != 0 && rc != 1 {
            let msg = odbc.diag(SQL_HANDLE_DBC, dbc);
            // Not connected: Drop must not disconnect.
            // SAFETY: SQLFreeHandle is `SQLRETURN (SQLSMALLINT, SQLHANDLE)`.
            let free = unsafe { odbc.lib.sym::<SqlFree>("SQLFreeHandle") };
            // SAFETY: the connection handle is freed once.
            unsafe { free(SQL_HANDLE_DBC, dbc) };
            odbc.dbc = ptr::null_mut();
            return Err(msg);
        }
        Ok(odbc)
    }

    /// The first diagnostic record of `handle`: `SQLSTATE: message`.
    fn diag(&self, kind: i16, handle: *mut c_void) -> String {
        // SAFETY: SQLGetDiagRec's prototype, spelled as SqlGetDiagRec.
        let f = unsafe { self.lib.sym::<SqlGetDiagRec>("SQLGetDiagRec") };
        let mut state = [0u8; 6];
        let mut native = 0i32;
        let mut msg = [0u8; 1024];
        let mut len = 0i16;
        // SAFETY: buffers of the sizes given, valid out-pointers.
        let rc = unsafe {
            f(
                kind,
                handle,
                1,
                state.as_mut_ptr(),
                &mut native,
                msg.as_mut_ptr(),
                msg.len() as i16,
                &mut len,
            )
        };
        if rc != 0 && rc != 1 {
            return format!("no diagnostic record (SQLGetDiagRec = {rc})");
        }
        let n = (len.max(0) as usize).min(msg.len() - 1);
        format!(
            "{}: {}",
            String::from_utf8_lossy(&state[..5]),
            String::from_utf8_lossy(&msg[..n])
        )
    }

    /// `SQLPrepare(sql)` and `SQLExecute` with `params` bound (`SQL_C_SBIGINT`,
    /// `SQL_C_DOUBLE`, `SQL_C_CHAR`, `SQL_C_BINARY`, or a NULL indicator),
    /// then every row read per [`odbc_read`].
    pub fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Rows, String> {
        let lib = &self.lib;
        // SAFETY: as in `connect`.
        let alloc = unsafe { lib.sym::<SqlAlloc>("SQLAllocHandle") };
        let mut stmt = ptr::null_mut();
        // SAFETY: a connected dbc, a valid out-pointer.
        let rc = unsafe { alloc(SQL_HANDLE_STMT, self.dbc, &mut stmt) };
        if rc != 0 {
            return Err(self.diag(SQL_HANDLE_DBC, self.dbc));
        }
        let out = self.run(stmt, sql, params);
        // SAFETY: as in `connect`.
        let free = unsafe { lib.sym::<SqlFree>("SQLFreeHandle") };
        // SAFETY: the statement is freed once.
        unsafe { free(SQL_HANDLE_STMT, stmt) };
        out
    }

    fn run(&self, stmt: *mut c_void, sql: &str, params: &[SqlValue]) -> Result<Rows, String> {
        let lib = &self.lib;
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let prepare = unsafe { lib.sym::<SqlPrepare>("SQLPrepare") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let bind = unsafe { lib.sym::<SqlBindParameter>("SQLBindParameter") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let exec = unsafe { lib.sym::<SqlExecute>("SQLExecute") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let ncols = unsafe { lib.sym::<SqlNumResultCols>("SQLNumResultCols") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let describe = unsafe { lib.sym::<SqlDescribeCol>("SQLDescribeCol") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let fetch = unsafe { lib.sym::<SqlFetch>("SQLFetch") };
        // SAFETY: the type is the C prototype of the symbol (see the alias).
        let getdata = unsafe { *lib.sym::<SqlGetData>("SQLGetData") };
        // SAFETY: the statement text with its length.
        let rc = unsafe { prepare(stmt, sql.as_ptr(), sql.len() as i32) };
        if rc != 0 && rc != 1 {
            return Err(self.diag(SQL_HANDLE_STMT, stmt));
        }
        // The bound buffers must outlive SQLExecute.
        let mut bufs: Vec<Vec<u8>> = Vec::new();
        let mut inds: Vec<i64> = vec![0; params.len()];
        for p in params {
            bufs.push(match p {
                SqlValue::Null => vec![0; 8],
                SqlValue::Int(v) => v.to_ne_bytes().to_vec(),
                SqlValue::Float(v) => v.to_ne_bytes().to_vec(),
                SqlValue::Text(s) => s.as_bytes().to_vec(),
                SqlValue::Blob(b) => b.clone(),
            });
        }
        for (i, p) in params.iter().enumerate() {
            // (C type, SQL type): SQL_BIGINT -5, SQL_DOUBLE 8, SQL_VARCHAR 12,
            // SQL_VARBINARY -3.
            let (ctype, stype, ind) = match p {
                SqlValue::Null => (SQL_C_CHAR, 12, SQL_NULL_DATA),
                SqlValue::Int(_) => (SQL_C_SBIGINT, -5, 8),
                SqlValue::Float(_) => (SQL_C_DOUBLE, 8, 8),
                SqlValue::Text(_) => (SQL_C_CHAR, 12, bufs[i].len() as i64),
                SqlValue::Blob(_) => (SQL_C_BINARY, -3, bufs[i].len() as i64),
            };
            inds[i] = ind;
            let size = bufs[i].len().max(1) as u64;
            // SAFETY: bufs[i] and inds[i] stay put (neither vector grows
            // again) until the statement is executed below.
            let rc = unsafe {
                bind(
                    stmt,
                    i as u16 + 1,
                    1,
                    ctype,
                    stype,
                    size,
                    0,
                    bufs[i].as_mut_ptr().cast(),
                    bufs[i].len() as i64,
                    &mut inds[i],
                )
            };
            if rc != 0 && rc != 1 {
                return Err(self.diag(SQL_HANDLE_STMT, stmt));
            }
        }
        // SAFETY: a prepared statement whose bound buffers are alive.
        let rc = unsafe { exec(stmt) };
        // SQL_SUCCESS, SQL_SUCCESS_WITH_INFO, SQL_NO_DATA (an update of no row).
        if rc != 0 && rc != 1 && rc != 100 {
            return Err(self.diag(SQL_HANDLE_STMT, stmt));
        }
        let mut n = 0i16;
        // SAFETY: a valid out-pointer.
        if unsafe { ncols(stmt, &mut n) } != 0 {
            return Err(self.diag(SQL_HANDLE_STMT, stmt));
        }
        let mut columns = Vec::new();
        let mut reads = Vec::new();
        for c in 1..=n as u16 {
            let mut name = [0u8; 256];
            let (mut len, mut t, mut dec, mut nullable) = (0i16, 0i16, 0i16, 0i16);
            let mut size = 0u64;
            // SAFETY: a 256-byte name buffer and valid out-pointers.
            let rc = unsafe {
                describe(
                    stmt,
                    c,
                    name.as_mut_ptr(),
                    name.len() as i16,
                    &mut len,
                    &mut t,
                    &mut size,
                    &mut dec,
                    &mut nullable,
                )
            };
            if rc != 0 && rc != 1 {
                return Err(self.diag(SQL_HANDLE_STMT, stmt));
            }
            let len = (len.max(0) as usize).min(name.len() - 1);
            columns.push(String::from_utf8_lossy(&name[..len]).into_owned());
            reads.push(odbc_read(t));
        }
        let mut rows = Vec::new();
        if n == 0 {
            return Ok(Rows { columns, rows });
        }
        loop {
            // SAFETY: an executed statement with a result set.
            let rc = unsafe { fetch(stmt) };
            if rc == 100 {
                break;
            }
            if rc != 0 && rc != 1 {
                return Err(self.diag(SQL_HANDLE_STMT, stmt));
            }
            let mut row = Vec::new();
            for (c, read) in reads.iter().enumerate() {
                let col = c as u16 + 1;
                let mut ind = 0i64;
                let v = match read {
                    OdbcRead::Int => {
                        let mut v = 0i64;
                        // SAFETY: an 8-byte target for SQL_C_SBIGINT.
                        let rc = unsafe {
                            getdata(
                                stmt,
                                col,
                                SQL_C_SBIGINT,
                                (&mut v as *mut i64).cast(),
                                8,
                                &mut ind,
                            )
                        };
                        self.check(rc, stmt)?;
                        SqlValue::Int(v)
                    }
                    OdbcRead::Float => {
                        let mut v = 0f64;
                        // SAFETY: an 8-byte target for SQL_C_DOUBLE.
                        let rc = unsafe {
                            getdata(
                                stmt,
                                col,
                                SQL_C_DOUBLE,
                                (&mut v as *mut f64).cast(),
                                8,
                                &mut ind,
                            )
                        };
                        self.check(rc, stmt)?;
                        SqlValue::Float(v)
                    }
                    OdbcRead::Blob | OdbcRead::Text => {
                        let bytes = self.get_bytes(getdata, stmt, col, &mut ind)?;
                        if *read == OdbcRead::Blob {
                            SqlValue::Blob(bytes)
                        } else {
                            SqlValue::Text(String::from_utf8(bytes).map_err(|e| e.to_string())?)
                        }
                    }
                };
                row.push(if ind == SQL_NULL_DATA {
                    SqlValue::Null
                } else {
                    v
                });
            }
            rows.push(row);
        }
        Ok(Rows { columns, rows })
    }

    /// A variable-length value, read in pieces until `SQL_NO_DATA` or a
    /// piece that fitted.
    fn get_bytes(
        &self,
        getdata: SqlGetData,
        stmt: *mut c_void,
        col: u16,
        ind: &mut i64,
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: a buffer of the length given, a valid indicator.
            let rc = unsafe {
                getdata(
                    stmt,
                    col,
                    SQL_C_BINARY,
                    buf.as_mut_ptr().cast(),
                    buf.len() as i64,
                    ind,
                )
            };
            match rc {
                100 => return Ok(out),
                0 => {
                    if *ind == SQL_NULL_DATA {
                        return Ok(out);
                    }
                    let n = (*ind).clamp(0, buf.len() as i64) as usize;
                    out.extend_from_slice(&buf[..n]);
                    return Ok(out);
                }
                // SQL_SUCCESS_WITH_INFO: truncated, the buffer is full.
                1 => out.extend_from_slice(&buf),
                _ => return Err(self.diag(SQL_HANDLE_STMT, stmt)),
            }
        }
    }

    fn check(&self, rc: i16, stmt: *mut c_void) -> Result<(), String> {
        if rc == 0 || rc == 1 {
            Ok(())
        } else {
            Err(self.diag(SQL_HANDLE_STMT, stmt))
        }
    }
}

impl Drop for Odbc {
    fn drop(&mut self) {
        // SAFETY: as in `connect`.
        let free = unsafe { self.lib.sym::<SqlFree>("SQLFreeHandle") };
        if !self.dbc.is_null() {
            // SAFETY: SQLDisconnect is `SQLRETURN (SQLHDBC)`.
            let disconnect = unsafe { self.lib.sym::<SqlHandle1>("SQLDisconnect") };
            // SAFETY: a connected dbc, disconnected once.
            unsafe { disconnect(self.dbc) };
            // SAFETY: freed once, after its statements (freed in `query`).
            unsafe { free(SQL_HANDLE_DBC, self.dbc) };
        }
        // SAFETY: freed once, after its connection.
        unsafe { free(SQL_HANDLE_ENV, self.env) };
    }
}
