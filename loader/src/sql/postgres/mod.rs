//! The PostgreSQL driver: libpq (`libpq.so.5`) in a helper whose policy
//! reaches the server named in the connection string and nothing else.
//!
//! This module opens the connection and runs the [`Driver`] steps; its
//! parts: [`conninfo`] (what a connection string reaches), [`policy`] (the
//! helper's policy from it), [`host_user`] (libpq's default user, named by
//! the host), [`params`] (parameters staged in the helper),
//! [`results`] (a statement's results, streamed and drained),
//! [`program`] (the fetch programs), [`values`] (libpq's text format) and
//! [`errors`] (what libpq's errors become).
//!
//! # Values
//!
//! Results come in libpq's text format and are decoded on the host by the
//! column's type OID: `int2`, `int4`, `int8` and `oid` are
//! [`Value::Int`]; `float4` and `float8` are [`Value::Float`] (`NaN`,
//! `Infinity` and `-Infinity` included); `bytea` is [`Value::Blob`] (its
//! `\x` hex text decoded); `bool` is the integer 1 or 0; everything else
//! (`numeric`, dates, `json`, arrays, ...) is PostgreSQL's own text for it.
//! Text that does not decode as its type says is a `protocol` error: the
//! server's text is what libpq, in the helper, claims it is.
//!
//! Parameters go as `PQexecParams` does it: integers, floats and text in
//! text format with the type left to the server; blobs in binary format,
//! typed `bytea`; NULL as a null pointer. Text holding NUL is a
//! `bad_argument` (PostgreSQL text cannot hold it).
//!
//! # Parameters without an array type
//!
//! `PQsendQueryParams` takes `const char *const *paramValues`: pointers, in
//! the helper, to each value. The bridge has no array of pointers, and the
//! host cannot know where in the helper a buffer lands. So the values are
//! first copied into a scratch `PGresult` (`PQmakeEmptyPGresult`,
//! `PQsetResultAttrs` with nameless columns, one `PQsetvalue` per value),
//! and `PQgetvalue` answers each copy's address; `paramValues` is then a
//! plain `bytes` buffer of those addresses. The addresses are the helper's
//! claim: a helper that lies only makes its own libpq read the wrong
//! memory. The other three arrays (types, lengths, formats) are plain
//! integers.
//!
//! # Rows stream
//!
//! Each statement is sent with `PQsendQueryParams` in single-row mode
//! (`PQsetSingleRowMode`), so neither the helper nor the host ever holds
//! more than a page of a big result. A page of rows crosses in one handoff:
//! a [fetch program](crate::FetchProgram) whose ADVANCE is `PQclear` of the
//! last row's result, `PQgetResult` and `PQresultStatus`, and whose READ is
//! `PQgetlength`, `PQgetvalue` (and `PQgetisnull` for an empty value) per
//! column. The first row's result is the host's own handle (it gave the
//! column names), so the program never frees it; the host does, once the
//! program has moved past it.
//!
//! # Leaving a result
//!
//! A statement left before its end (its `Rows` dropped) must be finished
//! before the connection can run the next. Up to 10 000 more of its rows
//! are read and dropped in the helper, in one handoff; a result with more
//! is cancelled (`PQcancel`, which connects to the same server again: the
//! socket or port the policy already grants), and the little the server
//! sent before it stopped is dropped too. So leaving an endless result
//! costs about what leaving a short one does. The price of a cancel: inside
//! a transaction block the cancelled statement aborts the transaction, as
//! any failed statement does (what follows fails with `25P02` until
//! `ROLLBACK`). A short remainder costs no cancel and leaves the
//! transaction as it was. If the cancel cannot be sent, the connection is
//! marked broken (its next statement fails, saying why) rather than read
//! without end.
//!
//! Because a fetch program may not call a close function, the driver
//! declares the `pgresult` handle kind without one: it frees each result
//! token it holds exactly once itself (libpq's own `PQclear` rule), while
//! connections (`pgconn`, closed by `PQfinish`) keep the bridge's check.
//!
//! # Errors
//!
//! A failed statement is [`ErrorKind::Foreign`](crate::ErrorKind::Foreign)
//! with the SQLSTATE and the server's message (with its `DETAIL` and
//! `HINT`); a failed connection too, with libpq's message and SQLSTATE
//! `28P01` for a refused password, `08001` otherwise ([`errors`]). A
//! parameter count the server rejects is `bad_argument`. `COPY ... FROM
//! STDIN` / `TO STDOUT` is not supported.
//!
//! # Policy
//!
//! [`policy`]: `pure`, plus the grants the connection string implies
//! ([`conninfo`]): `[network] connect_unix` for each socket
//! (`DIR/.s.PGSQL.PORT`, the default directory `/var/run/postgresql`),
//! `[network] connect_tcp` for each TCP port, `[filesystem] read` for the
//! files it names (certificates, keys, a password file) and, for a TCP
//! connection, the resolver's files when a host is a name and OpenSSL's
//! configuration (libpq tries TLS first). Landlock bounds TCP by port, not
//! by address.

mod conninfo;
mod errors;
mod host_user;
mod params;
mod policy;
mod program;
mod results;
mod values;

use std::collections::HashMap;

use super::calls::{batch, declare_all, declared, functions, int, text};
use super::lifecycle::{free_quietly, helper_alive};
use super::page::Deferred;
use super::statements::Statements;
use super::{Config, Driver, StatementId, Value};
use crate::bridge::{Bridge, FunctionId};
use crate::error::{Error, Result};
use crate::value::Value as Raw;
use crate::{FetchProgram, FetchState};
use values::Kind;

/// The soname loaded unless the config names another library.
const LIBRARY: &str = "libpq.so.5";

/// The functions the driver calls (the same signatures as
/// `manifests/libpq.toml`).
const DECLARATIONS: &[&str] = &[
    "PQconnectdb(cstr) -> handle<pgconn>",
    "PQfinish(handle<pgconn>) -> void",
    "PQstatus(handle<pgconn>) -> i32",
    "PQerrorMessage(handle<pgconn>) -> cstr",
    "PQsetErrorVerbosity(handle<pgconn>, i32) -> i32",
    "PQsetClientEncoding(handle<pgconn>, cstr) -> i32",
    "PQsendQueryParams(handle<pgconn>, cstr, i32, bytes, bytes, bytes, bytes, i32) -> i32",
    "PQsetSingleRowMode(handle<pgconn>) -> i32",
    "PQgetResult(handle<pgconn>) -> handle<pgresult>",
    "PQresultStatus(handle<pgresult>) -> i32",
    "PQresultErrorField(handle<pgresult>, i32) -> cstr",
    "PQclear(handle<pgresult>) -> void",
    "PQnfields(handle<pgresult>) -> i32",
    "PQfname(handle<pgresult>, i32) -> cstr",
    "PQftype(handle<pgresult>, i32) -> u32",
    "PQcmdTuples(handle<pgresult>) -> cstr",
    "PQgetisnull(handle<pgresult>, i32, i32) -> i32",
    "PQgetvalue(handle<pgresult>, i32, i32) -> u64",
    "PQgetlength(handle<pgresult>, i32, i32) -> i32",
    "PQmakeEmptyPGresult(handle<pgconn>, i32) -> handle<pgresult>",
    "PQsetResultAttrs(handle<pgresult>, i32, bytes) -> i32",
    "PQsetvalue(handle<pgresult>, i32, i32, bytes, i32) -> i32",
    "PQputCopyEnd(handle<pgconn>, cstr) -> i32",
    "PQgetCancel(handle<pgconn>) -> handle<pgcancel>",
    "PQfreeCancel(handle<pgcancel>) -> void",
    "PQcancel(handle<pgcancel>, out[256], i32) -> i32",
];

const CONNECTION_OK: i64 = 0;
const PGRES_EMPTY_QUERY: i64 = 0;
const PGRES_COMMAND_OK: i64 = 1;
const PGRES_TUPLES_OK: i64 = 2;
const PGRES_COPY_OUT: i64 = 3;
const PGRES_COPY_IN: i64 = 4;
const PGRES_COPY_BOTH: i64 = 8;
const PGRES_SINGLE_TUPLE: i64 = 9;
/// `PQERRORS_VERBOSE`: connection-level messages carry the SQLSTATE.
const PQERRORS_VERBOSE: i32 = 2;

functions! {
    /// The declared functions, by name.
    struct Functions {
        finish: "PQfinish",
        status: "PQstatus",
        error_message: "PQerrorMessage",
        set_verbosity: "PQsetErrorVerbosity",
        set_encoding: "PQsetClientEncoding",
        send_query: "PQsendQueryParams",
        single_row: "PQsetSingleRowMode",
        get_result: "PQgetResult",
        result_status: "PQresultStatus",
        error_field: "PQresultErrorField",
        clear: "PQclear",
        nfields: "PQnfields",
        fname: "PQfname",
        ftype: "PQftype",
        cmd_tuples: "PQcmdTuples",
        getisnull: "PQgetisnull",
        getvalue: "PQgetvalue",
        getlength: "PQgetlength",
        make_empty: "PQmakeEmptyPGresult",
        set_attrs: "PQsetResultAttrs",
        set_value: "PQsetvalue",
        put_copy_end: "PQputCopyEnd",
        get_cancel: "PQgetCancel",
        free_cancel: "PQfreeCancel",
        cancel: "PQcancel",
    }
}

/// A statement's result being read.
struct Stream {
    state: FetchState,
    /// The first row's result, the host's handle; freed once the program
    /// has moved past it.
    first: Option<Raw>,
    delivered: u64,
}

/// One prepared statement: its text (sent when it runs) and its result.
struct Prepared {
    sql: String,
    kinds: Vec<Kind>,
    stream: Option<Stream>,
    changes: u64,
    /// An error that ended the result after rows that were delivered with
    /// it: reported by the next fetch.
    failed: Deferred,
}

/// An open connection in a helper.
struct Postgres {
    bridge: Bridge,
    fns: Functions,
    conn: Raw,
    statements: Statements<Prepared>,
    /// Fetch programs by column count (READ is the same for every type).
    programs: HashMap<usize, FetchProgram>,
    /// Reads and drops the rest of a result.
    drain: Option<FetchProgram>,
    /// Why the connection can no longer be used, if it cannot.
    broken: Option<String>,
    /// What `PQcancel` needs to cancel the running statement (`PQgetCancel`
    /// of the connection), or null if libpq gave none.
    cancel: Raw,
}

/// The connection string `config` names.
fn target(config: &Config) -> Result<&str> {
    config.required_target("a connection string (--db 'host=... dbname=...')")
}

/// Opens the connection `config` names.
pub(crate) fn open(config: &Config) -> Result<Box<dyn Driver>> {
    let conninfo = host_user::with_default_user(target(config)?);
    let policy = policy::policy(config)?;
    let builder = config
        .bridge_builder(LIBRARY, policy)
        .handle_kind("pgconn", Some("PQfinish"), None)
        // No close function for results: the fetch program frees each row's
        // result itself (a close function cannot run in a fetch), and the
        // driver frees each result it holds a token for exactly once.
        .handle_kind("pgresult", None, None)
        .handle_kind("pgcancel", Some("PQfreeCancel"), None);
    let mut bridge = declare_all(builder, DECLARATIONS.iter().copied()).load()?;
    let fns = Functions::of(&bridge);
    let connect = declared(&bridge, "PQconnectdb");
    let conn = bridge.call(connect, &[Raw::str(&conninfo)])?.ret;
    if conn == Raw::Null {
        return Err(Error::foreign(
            "postgres",
            "08001",
            "PQconnectdb: out of memory",
        ));
    }
    let outs = batch(
        &mut bridge,
        &[
            (fns.status, std::slice::from_ref(&conn)),
            (fns.error_message, std::slice::from_ref(&conn)),
        ],
    )?;
    if int(&outs[0].ret) != CONNECTION_OK {
        let message = text(&outs[1].ret);
        let message = message.trim_end().to_string();
        let code = if message.contains("password authentication failed") {
            "28P01"
        } else if message.contains("no pg_hba.conf entry") {
            "28000"
        } else {
            "08001"
        };
        free_quietly(&mut bridge, fns.finish, &[conn]);
        return Err(Error::foreign("postgres", code, message));
    }
    let outs = batch(
        &mut bridge,
        &[
            (
                fns.set_verbosity,
                &[conn.clone(), Raw::I32(PQERRORS_VERBOSE)][..],
            ),
            (fns.set_encoding, &[conn.clone(), Raw::str("UTF8")][..]),
            (fns.get_cancel, std::slice::from_ref(&conn)),
        ],
    )?;
    let cancel = outs[2].ret.clone();
    if int(&outs[1].ret) != 0 {
        if cancel != Raw::Null {
            free_quietly(&mut bridge, fns.free_cancel, &[cancel]);
        }
        free_quietly(&mut bridge, fns.finish, &[conn]);
        return Err(Error::foreign(
            "postgres",
            "22023",
            "the server refused client_encoding UTF8",
        ));
    }
    Ok(Box::new(Postgres {
        bridge,
        fns,
        conn,
        statements: Statements::default(),
        programs: HashMap::new(),
        drain: None,
        broken: None,
        cancel,
    }))
}

impl Driver for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn prepare(&mut self, sql: &str) -> Result<Option<(StatementId, usize)>> {
        let Some(end) = super::split::statement_end(sql, super::split::Dialect::Postgres) else {
            return Ok(None);
        };
        let stmt = self.statements.insert(Prepared {
            sql: sql[..end].to_string(),
            kinds: Vec::new(),
            stream: None,
            changes: 0,
            failed: Deferred::default(),
        });
        Ok(Some((stmt, end)))
    }

    fn execute(&mut self, stmt: StatementId, params: &[Value]) -> Result<Vec<String>> {
        self.fail_if_broken()?;
        self.abandon_all()?;
        let sql = self.statements.get(stmt)?.sql.clone();
        let bound = self.bind(params)?;
        let conn = self.conn.clone();
        let send = [
            conn.clone(),
            Raw::str(&sql),
            Raw::I32(params.len() as i32),
            Raw::Bytes(bound.types),
            Raw::Bytes(bound.values),
            Raw::Bytes(bound.lengths),
            Raw::Bytes(bound.formats),
            Raw::I32(0),
        ];
        let one = [conn];
        let scratch_args: Vec<Raw> = bound.scratch.into_iter().collect();
        let mut calls: Vec<(FunctionId, &[Raw])> =
            vec![(self.fns.send_query, &send), (self.fns.single_row, &one)];
        if !scratch_args.is_empty() {
            calls.push((self.fns.clear, &scratch_args));
        }
        calls.push((self.fns.get_result, &one));
        let outs = batch(&mut self.bridge, &calls)?;
        let res = outs.last().map(|o| o.ret.clone()).unwrap_or(Raw::Null);
        if int(&outs[0].ret) != 1 {
            if res != Raw::Null {
                free_quietly(&mut self.bridge, self.fns.clear, &[res]);
            }
            return Err(self.connection_error());
        }
        if res == Raw::Null {
            return Err(self.connection_error());
        }
        self.first_result(stmt, res)
    }

    fn fetch(&mut self, stmt: StatementId, max_rows: usize, out: &mut Vec<Value>) -> Result<bool> {
        self.fetch_rows(stmt, max_rows, out)
    }

    fn changes(&mut self, stmt: StatementId) -> Result<u64> {
        Ok(self.statements.get(stmt)?.changes)
    }

    fn reset(&mut self, stmt: StatementId) -> Result<()> {
        self.abandon(stmt)?;
        let p = self.statements.get_mut(stmt)?;
        p.changes = 0;
        p.kinds.clear();
        p.failed.clear();
        Ok(())
    }

    fn finalize(&mut self, stmt: StatementId) {
        if helper_alive(&self.bridge) {
            let _ = self.abandon(stmt);
        }
        self.statements.remove(stmt);
    }

    fn audit_losses(&self) -> Option<(u64, String)> {
        self.bridge.audit_losses()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if helper_alive(&self.bridge) {
            let _ = self.abandon_all();
            if self.cancel != Raw::Null {
                free_quietly(
                    &mut self.bridge,
                    self.fns.free_cancel,
                    std::slice::from_ref(&self.cancel),
                );
            }
            free_quietly(
                &mut self.bridge,
                self.fns.finish,
                std::slice::from_ref(&self.conn),
            );
        }
    }
}
