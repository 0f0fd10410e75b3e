//! SQL through the bridge: a database client library (libsqlite3, libpq, an
//! ODBC driver manager) runs in a sandboxed helper, and a program talks to
//! it through a [`Connection`].
//!
//! The driver's memory bugs, or a compromised build of it, stay in the
//! helper: the host only ever sees handle tokens, values it decoded itself
//! from a bounds-checked page of rows, and the driver's own error messages
//! ([`ErrorKind::Foreign`]).
//!
//! ```
//! use ffb_loader::sql::{Config, Connection, Value};
//! use ffb_loader::BridgeMode;
//!
//! // No path: an in-memory SQLite database, through the bridged libsqlite3.
//! let config = Config::sqlite_memory()
//! #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
//!     .bridge_mode(BridgeMode::Enabled);
//! let mut db = Connection::open(config)?;
//! db.execute("create table t(id integer, name text); insert into t values (1, 'one')", &[])?;
//! let changed = db.execute("insert into t values (?, ?)", &[Value::Int(2), Value::from("two")])?;
//! assert_eq!(changed, 1);
//!
//! let mut rows = db.query("select id, name from t where id >= ? order by id", &[Value::Int(1)])?;
//! assert_eq!(rows.columns(), ["id", "name"]);
//! let first = rows.next().unwrap()?;
//! assert_eq!(first.values(), [Value::Int(1), Value::from("one")]);
//! let rest: Vec<_> = rows.collect::<Result<_, _>>()?;
//! assert_eq!(rest.len(), 1);
//!
//! // The driver's own errors are `foreign`, with its message.
//! let e = db.execute("select * from missing", &[]).unwrap_err();
//! assert_eq!(e.kind_name(), "foreign");
//! assert!(e.message.contains("no such table: missing"), "{e}");
//! # Ok::<(), ffb_loader::Error>(())
//! ```
//!
//! # Statements and parameters
//!
//! [`Connection::execute`] and [`Connection::query`] take one or more
//! statements separated by `;`, split by the driver's own rules (SQLite's
//! `sqlite3_prepare_v2` tail; [`split`] for the others). Each statement is
//! prepared only when the ones before it have run, so a later statement may
//! use a table an earlier one creates. Parameters bind to the **last**
//! statement; an earlier statement that takes parameters is a
//! `bad_argument`. Rows of earlier statements are read and dropped.
//!
//! # Drivers
//!
//! Each library is a [`Driver`]: prepare, execute, fetch a page of rows,
//! finalize. [`Connection`] holds one and does the rest (splitting, binding
//! to the last statement, paging, finalizing on drop).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::bridge::{BridgeBuilder, BridgeMode};
use crate::error::{err, Error, ErrorKind, Result};
use crate::Bridge;
use ffb_policy::sandbox::SandboxPolicy;

mod calls;
mod lifecycle;
mod odbc;
mod page;
mod pg_socket;
mod postgres;
mod shipped_policy;
pub mod split;
mod sqlite;
mod statements;
mod value;

pub use value::{Row, Value};

/// Rows a [`Rows`] asks its driver for at a time, unless told otherwise.
pub const DEFAULT_PAGE_ROWS: usize = 1024;

/// Which database client library to bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// libsqlite3 (`libsqlite3.so.0`): the target is a database file, or
    /// none for an in-memory database.
    Sqlite,
    /// libpq (`libpq.so.5`): the target is a connection string.
    Postgres,
    /// unixODBC (`libodbc.so.2`): the target is a DSN or a connection string.
    Odbc,
}

impl DriverKind {
    /// The name `--driver` takes and [`ErrorKind::Foreign`] carries.
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Sqlite => "sqlite",
            DriverKind::Postgres => "postgres",
            DriverKind::Odbc => "odbc",
        }
    }
}

impl FromStr for DriverKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sqlite" => Ok(DriverKind::Sqlite),
            "postgres" => Ok(DriverKind::Postgres),
            "odbc" => Ok(DriverKind::Odbc),
            other => err(
                ErrorKind::BadArgument,
                format!("unknown driver '{other}' (drivers: sqlite, postgres, odbc)"),
            ),
        }
    }
}

/// What to open: a driver, its target, and how to run its helper.
#[derive(Clone, Debug)]
pub struct Config {
    kind: DriverKind,
    target: Option<String>,
    mode: BridgeMode,
    shim: Option<PathBuf>,
    timeout: Option<Duration>,
    library: Option<String>,
    audit_log: Option<PathBuf>,
}

impl Config {
    /// A driver and its target (a path, connection string or DSN; `None`
    /// only for an in-memory SQLite database). Bridge mode starts off, as
    /// for [`Bridge::builder`].
    pub fn new(kind: DriverKind, target: Option<String>) -> Config {
        Config {
            kind,
            target,
            mode: BridgeMode::Disabled,
            shim: None,
            timeout: None,
            library: None,
            audit_log: None,
        }
    }

    /// An SQLite database file (created if missing).
    pub fn sqlite(path: impl Into<PathBuf>) -> Config {
        let path: PathBuf = path.into();
        Config::new(
            DriverKind::Sqlite,
            Some(path.to_string_lossy().into_owned()),
        )
    }

    /// An in-memory SQLite database: its helper may touch no file at all.
    pub fn sqlite_memory() -> Config {
        Config::new(DriverKind::Sqlite, None)
    }

    /// A PostgreSQL server, by libpq connection string.
    pub fn postgres(conninfo: impl Into<String>) -> Config {
        Config::new(DriverKind::Postgres, Some(conninfo.into()))
    }

    /// An ODBC data source: a DSN name or a connection string.
    pub fn odbc(dsn: impl Into<String>) -> Config {
        Config::new(DriverKind::Odbc, Some(dsn.into()))
    }

    /// Sets bridge mode (nothing is spawned unless it is enabled).
    pub fn bridge_mode(mut self, mode: BridgeMode) -> Config {
        self.mode = mode;
        self
    }

    /// The `ffb-shim` executable (see [`BridgeBuilder::shim`]).
    pub fn shim(mut self, path: impl Into<PathBuf>) -> Config {
        self.shim = Some(path.into());
        self
    }

    /// The timeout for each call and each page of rows.
    pub fn timeout(mut self, timeout: Duration) -> Config {
        self.timeout = Some(timeout);
        self
    }

    /// Loads this library instead of the driver's default soname.
    pub fn library(mut self, library: impl Into<String>) -> Config {
        self.library = Some(library.into());
        self
    }

    /// Appends the helper's violations, crashes and respawns to this file
    /// (see [`BridgeBuilder::audit_log`]).
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Config {
        self.audit_log = Some(path.into());
        self
    }

    /// The driver.
    pub fn kind(&self) -> DriverKind {
        self.kind
    }

    /// The target: a path, connection string or DSN.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The target, for a driver that cannot do without one: else
    /// `bad_argument`, saying the driver `needs` it.
    pub(crate) fn required_target(&self, needs: &str) -> Result<&str> {
        self.target().ok_or_else(|| {
            Error::new(
                ErrorKind::BadArgument,
                format!("the {} driver needs {needs}", self.kind.name()),
            )
        })
    }

    /// The builder a driver loads its library with: its default library
    /// (unless overridden) under `policy`, with this config's bridge mode,
    /// shim, timeout and audit log.
    pub(crate) fn bridge_builder(
        &self,
        default_library: &str,
        policy: SandboxPolicy,
    ) -> BridgeBuilder {
        let library = self.library.as_deref().unwrap_or(default_library);
        let mut b = Bridge::builder(library)
            .bridge_mode(self.mode)
            .policy(policy);
        if let Some(shim) = &self.shim {
            b = b.shim(shim.clone());
        }
        if let Some(t) = self.timeout {
            b = b.timeout(t);
        }
        if let Some(log) = &self.audit_log {
            b = b.audit_log(log.clone());
        }
        b
    }
}

/// A statement the driver prepared: the number is the driver's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatementId(pub u64);

/// One database client library behind the bridge, seen step by step.
/// [`Connection`] drives it; each driver keeps its bridge and its
/// statements' state.
pub trait Driver: Send {
    /// `sqlite`, `postgres` or `odbc`: the name [`ErrorKind::Foreign`] carries.
    fn name(&self) -> &'static str;

    /// Prepares the first statement of `sql`: `None` when `sql` holds none
    /// (only whitespace, comments and `;`), else the statement and how many
    /// bytes of `sql` it took (more than 0, on a character boundary, its
    /// `;` included).
    fn prepare(&mut self, sql: &str) -> Result<Option<(StatementId, usize)>>;

    /// Binds `params` (positions 1, 2, ...) and runs the statement. Returns
    /// the result's column names, empty for a statement without rows. A
    /// parameter count that does not match is `bad_argument`.
    fn execute(&mut self, stmt: StatementId, params: &[Value]) -> Result<Vec<String>>;

    /// Appends up to `max_rows` rows (each one value per column, row after
    /// row) to `out`. `Ok(false)` once the result has no more rows.
    fn fetch(&mut self, stmt: StatementId, max_rows: usize, out: &mut Vec<Value>) -> Result<bool>;

    /// Rows the statement changed, once it has run to completion.
    fn changes(&mut self, stmt: StatementId) -> Result<u64>;

    /// Makes the statement ready to execute again.
    fn reset(&mut self, stmt: StatementId) -> Result<()>;

    /// Frees the statement. Called once per prepared statement, also after
    /// a failure.
    fn finalize(&mut self, stmt: StatementId);

    /// Audit lines its bridge could not write: see [`Bridge::audit_losses`].
    fn audit_losses(&self) -> Option<(u64, String)>;
}

/// Opens the driver `config` names.
fn open_driver(config: &Config) -> Result<Box<dyn Driver>> {
    match config.kind {
        DriverKind::Sqlite => sqlite::open(config),
        DriverKind::Postgres => postgres::open(config),
        DriverKind::Odbc => odbc::open(config),
    }
}

/// An open database, through its driver's helper. Dropping it closes the
/// database and ends the helper.
pub struct Connection {
    driver: Box<dyn Driver>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("driver", &self.driver.name())
            .finish()
    }
}

/// The part of `sql` after a statement that took `used` bytes, checked: a
/// driver (and the helper behind it) cannot make the host slice wrongly.
fn after(sql: &str, used: usize) -> Result<&str> {
    if used == 0 || !sql.is_char_boundary(used) {
        return err(
            ErrorKind::Protocol,
            format!(
                "the driver consumed {used} bytes of a {}-byte statement text",
                sql.len()
            ),
        );
    }
    Ok(&sql[used..])
}

impl Connection {
    /// Opens the database `config` names: spawns the driver's helper, loads
    /// the library under the driver's policy and connects.
    pub fn open(config: Config) -> Result<Connection> {
        if config.mode != BridgeMode::Enabled {
            return err(
                ErrorKind::BridgeDisabled,
                "bridge mode is off: pass --bridge-mode, set FFB_BRIDGE_MODE=1, or use BridgeMode::Enabled",
            );
        }
        Ok(Connection {
            driver: open_driver(&config)?,
        })
    }

    /// The driver's name: `sqlite`, `postgres` or `odbc`.
    pub fn driver_name(&self) -> &'static str {
        self.driver.name()
    }

    /// Audit lines that could not be written to the audit log
    /// ([`Config::audit_log`]): how many, and the first error. `None` when
    /// every line was written, or without an audit log.
    pub fn audit_losses(&self) -> Option<(u64, String)> {
        self.driver.audit_losses()
    }

    /// Runs every statement of `sql`, `params` bound to the last, and
    /// returns how many rows the last one changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut rows = self.query(sql, params)?;
        rows.drain()?;
        rows.changes()
    }

    /// Runs every statement of `sql` but the last to completion, then runs
    /// the last with `params` and returns its rows, which stream: they are
    /// fetched a page at a time as the iterator reaches them.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows<'_>> {
        let mut rest = sql;
        let mut index = 0usize;
        loop {
            index += 1;
            let Some((stmt, used)) = self.driver.prepare(rest)? else {
                return Ok(Rows::empty(&mut *self.driver));
            };
            let tail = match after(rest, used) {
                Ok(t) => t,
                Err(e) => {
                    self.driver.finalize(stmt);
                    return Err(e);
                }
            };
            let last = split::is_blank(tail);
            let bound: &[Value] = if last { params } else { &[] };
            let columns = match self.driver.execute(stmt, bound) {
                Ok(c) => c,
                Err(mut e) => {
                    self.driver.finalize(stmt);
                    if !last && e.kind == ErrorKind::BadArgument {
                        e.message = format!(
                            "statement {index}: {} (parameters bind to the last statement only)",
                            e.message
                        );
                    }
                    return Err(e);
                }
            };
            if last {
                return Ok(Rows::new(&mut *self.driver, stmt, columns, true));
            }
            let drained = drain(&mut *self.driver, stmt, columns.len());
            self.driver.finalize(stmt);
            drained?;
            rest = tail;
        }
    }

    /// Prepares exactly one statement, to run many times.
    pub fn prepare(&mut self, sql: &str) -> Result<Statement<'_>> {
        let Some((stmt, used)) = self.driver.prepare(sql)? else {
            return err(ErrorKind::BadArgument, "the SQL text holds no statement");
        };
        let extra = after(sql, used).map(|t| !split::is_blank(t));
        if extra != Ok(false) {
            self.driver.finalize(stmt);
            extra?;
            return err(
                ErrorKind::BadArgument,
                "prepare takes exactly one statement (use execute or query for several)",
            );
        }
        Ok(Statement {
            driver: &mut *self.driver,
            stmt,
        })
    }
}

/// Reads and drops every row of `stmt`, a page at a time.
fn drain(driver: &mut dyn Driver, stmt: StatementId, columns: usize) -> Result<()> {
    let mut page = Vec::new();
    let mut more = columns > 0;
    while more {
        page.clear();
        more = driver.fetch(stmt, DEFAULT_PAGE_ROWS, &mut page)?;
    }
    Ok(())
}

/// One prepared statement, to run many times with different parameters.
/// Dropping it frees it.
pub struct Statement<'c> {
    driver: &'c mut dyn Driver,
    stmt: StatementId,
}

impl Statement<'_> {
    /// Runs the statement with `params` and streams its rows.
    pub fn query(&mut self, params: &[Value]) -> Result<Rows<'_>> {
        self.driver.reset(self.stmt)?;
        let columns = self.driver.execute(self.stmt, params)?;
        Ok(Rows::new(&mut *self.driver, self.stmt, columns, false))
    }

    /// Runs the statement with `params` to completion; returns the rows it changed.
    pub fn execute(&mut self, params: &[Value]) -> Result<u64> {
        let mut rows = self.query(params)?;
        rows.drain()?;
        rows.changes()
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        self.driver.finalize(self.stmt);
    }
}

/// The rows of a statement, as an iterator. Rows are fetched from the
/// helper a page at a time ([`Rows::set_page_rows`]), so a large result
/// never waits in memory. A failure ends the iteration after it is returned.
pub struct Rows<'c> {
    driver: &'c mut dyn Driver,
    stmt: Option<StatementId>,
    columns: Vec<String>,
    /// The current page, row after row; taken values are left `Null`.
    page: Vec<Value>,
    /// The next value of `page` to hand out.
    at: usize,
    /// Whether the driver may have more rows.
    more: bool,
    page_rows: usize,
    /// Finalize the statement on drop (else reset it, for a [`Statement`]).
    owns_statement: bool,
}

impl<'c> Rows<'c> {
    fn new(
        driver: &'c mut dyn Driver,
        stmt: StatementId,
        columns: Vec<String>,
        owns: bool,
    ) -> Self {
        Rows {
            driver,
            stmt: Some(stmt),
            more: !columns.is_empty(),
            columns,
            page: Vec::new(),
            at: 0,
            page_rows: DEFAULT_PAGE_ROWS,
            owns_statement: owns,
        }
    }

    fn empty(driver: &'c mut dyn Driver) -> Self {
        Rows {
            driver,
            stmt: None,
            columns: Vec::new(),
            page: Vec::new(),
            at: 0,
            more: false,
            page_rows: DEFAULT_PAGE_ROWS,
            owns_statement: false,
        }
    }

    /// The result's column names (empty for a statement without rows).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// How many rows are already here, fetched with the current page: the
    /// next that many calls to `next` do not wait for the helper. A writer
    /// flushes its output when this is 0.
    pub fn buffered_rows(&self) -> usize {
        match self.columns.len() {
            0 => 0,
            n => (self.page.len() - self.at) / n,
        }
    }

    /// How many rows each round trip to the helper may bring (at least 1).
    pub fn set_page_rows(&mut self, rows: usize) {
        self.page_rows = rows.max(1);
    }

    /// The rows the statement changed; complete once every row was read.
    pub fn changes(&mut self) -> Result<u64> {
        match self.stmt {
            Some(stmt) => self.driver.changes(stmt),
            None => Ok(0),
        }
    }

    /// Reads and drops every remaining row.
    fn drain(&mut self) -> Result<()> {
        for row in self.by_ref() {
            row?;
        }
        Ok(())
    }

    /// Fetches the next page; false when there is none.
    fn refill(&mut self) -> Result<bool> {
        let n = self.columns.len();
        let Some(stmt) = self.stmt.filter(|_| n > 0) else {
            return Ok(false);
        };
        self.page.clear();
        self.at = 0;
        while self.more && self.page.is_empty() {
            match self.driver.fetch(stmt, self.page_rows, &mut self.page) {
                Ok(more) => self.more = more,
                Err(e) => {
                    // What a failed fetch left in the page is not rows: the
                    // error ends the result, and nothing after it is read.
                    self.page.clear();
                    self.more = false;
                    return Err(e);
                }
            }
        }
        if !self.page.len().is_multiple_of(n) || self.page.len() / n > self.page_rows {
            self.page.clear();
            self.more = false;
            return err(
                ErrorKind::Protocol,
                format!(
                    "the driver returned {} values for rows of {n} columns",
                    self.page.len()
                ),
            );
        }
        Ok(!self.page.is_empty())
    }
}

impl Iterator for Rows<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        if self.at >= self.page.len() {
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    self.more = false;
                    return Some(Err(e));
                }
            }
        }
        let n = self.columns.len();
        let values = self.page[self.at..self.at + n]
            .iter_mut()
            .map(|v| std::mem::replace(v, Value::Null))
            .collect();
        self.at += n;
        Some(Ok(Row::new(values)))
    }
}

impl Drop for Rows<'_> {
    fn drop(&mut self) {
        let Some(stmt) = self.stmt else { return };
        if self.owns_statement {
            self.driver.finalize(stmt);
        } else {
            // A failed reset shows again at the statement's next run.
            let _ = self.driver.reset(stmt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver whose one statement has two columns and whose fetch leaves
    /// `left` values in the page, then fails (or, with `fail` false, claims
    /// success with them).
    struct Broken {
        left: usize,
        fail: bool,
    }

    impl Driver for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn prepare(&mut self, _: &str) -> Result<Option<(StatementId, usize)>> {
            unreachable!()
        }
        fn execute(&mut self, _: StatementId, _: &[Value]) -> Result<Vec<String>> {
            unreachable!()
        }
        fn fetch(&mut self, _: StatementId, _: usize, out: &mut Vec<Value>) -> Result<bool> {
            out.extend((0..self.left).map(|i| Value::Int(i as i64)));
            if self.fail {
                return err(ErrorKind::Protocol, "the page did not decode");
            }
            Ok(true)
        }
        fn changes(&mut self, _: StatementId) -> Result<u64> {
            Ok(0)
        }
        fn reset(&mut self, _: StatementId) -> Result<()> {
            Ok(())
        }
        fn finalize(&mut self, _: StatementId) {}
        fn audit_losses(&self) -> Option<(u64, String)> {
            None
        }
    }

    fn outcomes(driver: &mut Broken) -> Vec<std::result::Result<Vec<Value>, ErrorKind>> {
        let columns = vec!["a".to_string(), "b".to_string()];
        Rows::new(driver, StatementId(1), columns, true)
            .take(5)
            .map(|r| r.map(|row| row.values().to_vec()).map_err(|e| e.kind))
            .collect()
    }

    #[test]
    fn a_failed_fetch_ends_the_rows_and_hands_out_nothing_it_left() {
        for left in [0, 1, 2, 3, 4] {
            let got = outcomes(&mut Broken { left, fail: true });
            assert_eq!(got, [Err(ErrorKind::Protocol)], "{left} values left");
        }
    }

    #[test]
    fn a_page_of_partial_rows_is_a_protocol_error_not_a_panic() {
        let got = outcomes(&mut Broken {
            left: 3,
            fail: false,
        });
        assert_eq!(got, [Err(ErrorKind::Protocol)]);
    }
}
