//! The ODBC driver: unixODBC's driver manager (`libodbc.so.2`) in a helper,
//! which loads the driver its DSN names and reaches that driver's endpoint
//! and nothing else.
//!
//! This module opens the connection and runs the [`Driver`] steps; its
//! parts: [`ini`] (what a DSN reaches), [`policy`] (the helper's policy
//! from it), [`params`] (binding parameters), [`cursor`] (a result's
//! columns described and its rows paged), [`columns`] (how each column is
//! read), [`program`] (the fetch program) and [`diag`] (what a failed
//! call becomes).
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
//! How a driver fetches is its DSN's business, and the bridged driver
//! sends the DSN or connection string as given, so that it behaves as the
//! same driver does in-process. psqlODBC, by default, reads a whole result
//! into the helper's memory at `SQLExecute` (an endless one ends at the
//! call's timeout or the helper's memory limit); with `UseDeclareFetch = 1`
//! it reads through a cursor, `Fetch` rows a round trip, and its rows
//! stream (the test DSNs of `scripts/odbc.sh` set both). The cursor's cost
//! is psqlODBC's: PostgreSQL declares none over a data-modifying `WITH`
//! (`0A000`), and parameters are typed differently.
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
//! `manifests/odbc.policy.toml`, plus ([`ini`]): `[filesystem] read` on
//! the ini files and the driver library; for psqlODBC, `[network]
//! connect_tcp` on the DSN's port or `connect_unix` on its socket; for the
//! SQLite ODBC drivers, `[filesystem] write` on the database's directory
//! (its journal is created beside it).

mod columns;
mod cursor;
mod diag;
mod ini;
mod params;
mod policy;
mod program;

use super::calls::{declare_all, declared, functions, int, out};
use super::lifecycle::{free_at_close, free_quietly, helper_alive};
use super::page::Deferred;
use super::statements::Statements;
use super::{Config, Driver, StatementId, Value};
use crate::bridge::{Bridge, FunctionId};
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value as Raw;
use cursor::Cursor;

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
const SQL_NULL_DATA: i64 = -1;
const SQL_NO_TOTAL: i64 = -4;
const SQL_C_SBIGINT: i16 = -25;
const SQL_C_DOUBLE: i16 = 8;
const SQL_C_BINARY: i16 = -2;
/// The most columns a result may have here.
const MAX_COLUMNS: usize = 4096;

functions! {
    /// The declared functions, by name.
    struct Functions {
        alloc: "SQLAllocHandle",
        free: "SQLFreeHandle",
        disconnect: "SQLDisconnect",
        prepare: "SQLPrepare",
        num_params: "SQLNumParams",
        bind: "SQLBindParameter",
        execute: "SQLExecute",
        num_cols: "SQLNumResultCols",
        describe: "SQLDescribeCol",
        row_count: "SQLRowCount",
        fetch: "SQLFetch",
        get_data: "SQLGetData",
        free_stmt: "SQLFreeStmt",
        diag: "SQLGetDiagRec",
    }
}

/// One prepared statement.
struct Prepared {
    stmt: Raw,
    params: usize,
    cursor: Option<Cursor>,
    changes: u64,
    /// An error that ended the rows after some were delivered with it.
    failed: Deferred,
}

/// An open connection in a helper.
struct Odbc {
    bridge: Bridge,
    fns: Functions,
    env: Raw,
    dbc: Raw,
    connected: bool,
    statements: Statements<Prepared>,
}

/// The connection string for `config`'s target: a DSN name is sent as
/// `DSN=name;`.
fn connection_string(config: &Config) -> Result<String> {
    let target = config.required_target("a DSN or a connection string (--db DSN)")?;
    Ok(if target.contains('=') {
        target.to_string()
    } else {
        format!("DSN={target};")
    })
}

/// Whether a return code is `SQL_SUCCESS` or `SQL_SUCCESS_WITH_INFO`.
fn ok(rc: i64) -> bool {
    rc == 0 || rc == 1
}

/// Opens the connection `config` names.
pub(crate) fn open(config: &Config) -> Result<Box<dyn Driver>> {
    let connect = connection_string(config)?;
    let policy = policy::policy(config)?;
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
    let bridge = declare_all(builder, DECLARATIONS.iter().copied()).load()?;
    let fns = Functions::of(&bridge);
    let mut db = Odbc {
        bridge,
        fns,
        env: Raw::Null,
        dbc: Raw::Null,
        connected: false,
        statements: Statements::default(),
    };
    db.env = db.alloc(SQL_HANDLE_ENV, Raw::Null)?;
    let set = declared(&db.bridge, "SQLSetEnvAttr");
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
    let driver_connect = declared(&db.bridge, "SQLDriverConnect");
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
    fn close(&mut self, stmt: StatementId) -> Result<()> {
        let Ok(p) = self.statements.get_mut(stmt) else {
            return Ok(());
        };
        if p.cursor.take().is_some() {
            let stmt = p.stmt.clone();
            self.bridge
                .call(self.fns.free_stmt, &[stmt, Raw::U16(SQL_CLOSE)])?;
        }
        Ok(())
    }
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
                let args = [Raw::I16(SQL_HANDLE_STMT), stmt];
                free_quietly(&mut self.bridge, self.fns.free, &args);
                return Err(e);
            }
        };
        let id = self.statements.insert(Prepared {
            stmt,
            params,
            cursor: None,
            changes: 0,
            failed: Deferred::default(),
        });
        Ok(Some((id, end)))
    }

    fn execute(&mut self, stmt: StatementId, params: &[Value]) -> Result<Vec<String>> {
        self.close(stmt)?;
        let p = self.statements.get_mut(stmt)?;
        let (h, wanted) = (p.stmt.clone(), p.params);
        p.failed.clear();
        if wanted != params.len() {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "the statement takes {wanted} parameters, {} given",
                    params.len()
                ),
            );
        }
        self.bind(&h, params)?;
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
            self.statements.get_mut(stmt)?.changes = int(&out(&o, 1)).max(0) as u64;
            return Ok(Vec::new());
        }
        let (names, cursor) = self.describe(&h, n)?;
        let p = self.statements.get_mut(stmt)?;
        p.cursor = Some(cursor);
        p.changes = 0;
        Ok(names)
    }

    fn fetch(&mut self, stmt: StatementId, max_rows: usize, out: &mut Vec<Value>) -> Result<bool> {
        self.fetch_rows(stmt, max_rows, out)
    }

    fn changes(&mut self, stmt: StatementId) -> Result<u64> {
        Ok(self.statements.get(stmt)?.changes)
    }

    fn reset(&mut self, stmt: StatementId) -> Result<()> {
        self.close(stmt)?;
        let p = self.statements.get_mut(stmt)?;
        p.changes = 0;
        p.failed.clear();
        Ok(())
    }

    fn finalize(&mut self, stmt: StatementId) {
        if let Some(p) = self.statements.remove(stmt) {
            let args = [Raw::I16(SQL_HANDLE_STMT), p.stmt];
            free_at_close(&mut self.bridge, self.fns.free, &args);
        }
    }

    fn audit_losses(&self) -> Option<(u64, String)> {
        self.bridge.audit_losses()
    }
}

impl Drop for Odbc {
    fn drop(&mut self) {
        if !helper_alive(&self.bridge) {
            return;
        }
        for stmt in self.statements.ids() {
            self.finalize(stmt);
        }
        let (free, dbc, env) = (self.fns.free, self.dbc.clone(), self.env.clone());
        if self.connected {
            free_quietly(
                &mut self.bridge,
                self.fns.disconnect,
                std::slice::from_ref(&dbc),
            );
        }
        if dbc != Raw::Null {
            free_quietly(&mut self.bridge, free, &[Raw::I16(SQL_HANDLE_DBC), dbc]);
        }
        if env != Raw::Null {
            free_quietly(&mut self.bridge, free, &[Raw::I16(SQL_HANDLE_ENV), env]);
        }
    }
}
