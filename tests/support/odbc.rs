//! The private unixODBC configuration the tests run against, and the
//! driver manager loaded into the test process to use it directly.
//!
//! `scripts/test.sh` writes an `odbcinst.ini` and an `odbc.ini` into a
//! temporary directory with `scripts/odbc.sh start` (after starting the
//! PostgreSQL server, see [`crate::postgres`]) and exports `ODBCSYSINI`,
//! `ODBCINI` and the `FFB_TEST_ODBC_*` variables. [`env()`] reads them.
//! Without them, or without the packages, it panics, naming what is
//! missing: an ODBC test must fail, not pass silently. To run a few tests by
//! hand:
//!
//! ```sh
//! scripts/setup.sh                       # unixodbc, odbc-postgresql, libsqliteodbc
//! eval "$(scripts/postgres.sh start)"
//! eval "$(scripts/odbc.sh start)"
//! cargo test -p ffb-tests --test integration servers::
//! scripts/odbc.sh stop; scripts/postgres.sh stop
//! ```
//!
//! The DSNs: [`OdbcEnv::pg_dsn`] is psqlODBC over TCP with the test role's
//! password, [`OdbcEnv::pg_socket_dsn`] the same over the unix socket, and
//! [`OdbcEnv::sqlite_dsn`] the SQLite ODBC driver on an empty database file.
//!
//! A helper is spawned with an empty environment: a bridged `libodbc.so.2`
//! finds these files only if the test passes `ODBCSYSINI` and `ODBCINI` on.
//!
//! [`Odbc`] is the in-process side: the real `libodbc.so.2`, `dlopen`ed
//! into the test process, with just enough of the ODBC API to connect and
//! run a query. It reads every value as text (`SQL_C_CHAR`).

use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;

/// The unixODBC driver manager's soname, as the bridge loads it too.
pub const LIBODBC: &str = "libodbc.so.2";

/// The SQLite ODBC driver's name in the private `odbcinst.ini`
/// (`scripts/odbc.sh`).
pub const SQLITE_DRIVER_NAME: &str = "SQLite3";

/// The psqlODBC (Unicode) driver's name in the private `odbcinst.ini`.
pub const PG_DRIVER_NAME: &str = "PostgreSQL Unicode";

/// The private ODBC configuration.
#[derive(Clone, Debug)]
pub struct OdbcEnv {
    /// `ODBCSYSINI`: the directory holding `odbcinst.ini` (the drivers).
    pub sysini: PathBuf,
    /// `ODBCINI`: the `odbc.ini` holding the DSNs.
    pub ini: PathBuf,
    /// `FFB_TEST_ODBC_PG_DSN`: psqlODBC to the test server over TCP, with
    /// the test role's user name and password in `odbc.ini`.
    pub pg_dsn: String,
    /// `FFB_TEST_ODBC_PG_SOCKET_DSN`: the same over the unix socket.
    pub pg_socket_dsn: String,
    /// `FFB_TEST_ODBC_SQLITE_DSN`: the SQLite ODBC driver on
    /// [`OdbcEnv::sqlite_db`].
    pub sqlite_dsn: String,
    /// `FFB_TEST_ODBC_SQLITE_DB`: the SQLite DSN's database file (empty
    /// at first, in a directory of its own that anyone may write to).
    pub sqlite_db: PathBuf,
    /// `FFB_TEST_ODBC_PG_DRIVER`: the psqlODBC driver library.
    pub pg_driver: PathBuf,
    /// `FFB_TEST_ODBC_SQLITE_DRIVER`: the SQLite ODBC driver library.
    pub sqlite_driver: PathBuf,
}

impl OdbcEnv {
    /// The `SQLDriverConnect` connection string for a DSN: `DSN=NAME;`.
    pub fn connection_string(dsn: &str) -> String {
        format!("DSN={dsn};")
    }

    /// A DSN-less connection string for the SQLite ODBC driver on another
    /// database file (`Driver=SQLite3;Database=PATH;`, the driver named in
    /// the private `odbcinst.ini`), for a test that wants a database of
    /// its own.
    pub fn sqlite_connection_string(db: &Path) -> String {
        format!("Driver={SQLITE_DRIVER_NAME};Database={};", db.display())
    }
}

/// Reads one of the variables `scripts/odbc.sh start` exports.
///
/// # Panics
/// If it is unset, naming it and how to set it up.
fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "ODBC test configuration missing: {name} unset; run the tests through \
             scripts/test.sh, which writes it with scripts/odbc.sh \
             (or eval \"$(scripts/odbc.sh start)\" after scripts/postgres.sh start)"
        ),
    }
}

/// Checks that `path` is a file, else panics naming the package (or the
/// script) that provides it.
fn require_file(path: &Path, what: &str, from: &str) {
    assert!(path.is_file(), "{what} {} missing ({from})", path.display());
}

/// The private ODBC configuration, from the environment.
///
/// # Panics
/// If a variable is missing, an ini file is gone (the configuration was
/// removed), or a driver is not installed, naming what is missing.
pub fn env() -> OdbcEnv {
    let e = OdbcEnv {
        sysini: PathBuf::from(var("ODBCSYSINI")),
        ini: PathBuf::from(var("ODBCINI")),
        pg_dsn: var("FFB_TEST_ODBC_PG_DSN"),
        pg_socket_dsn: var("FFB_TEST_ODBC_PG_SOCKET_DSN"),
        sqlite_dsn: var("FFB_TEST_ODBC_SQLITE_DSN"),
        sqlite_db: PathBuf::from(var("FFB_TEST_ODBC_SQLITE_DB")),
        pg_driver: PathBuf::from(var("FFB_TEST_ODBC_PG_DRIVER")),
        sqlite_driver: PathBuf::from(var("FFB_TEST_ODBC_SQLITE_DRIVER")),
    };
    let script = "written by scripts/odbc.sh start; was it stopped?";
    require_file(&e.sysini.join("odbcinst.ini"), "ODBC driver list", script);
    require_file(&e.ini, "ODBC DSN list", script);
    require_file(
        &e.pg_driver,
        "psqlODBC driver",
        "package odbc-postgresql; run scripts/setup.sh",
    );
    require_file(
        &e.sqlite_driver,
        "SQLite ODBC driver",
        "package libsqliteodbc; run scripts/setup.sh",
    );
    e
}

// The ODBC constants the tests use (sql.h, sqlext.h).
/// `SQLRETURN`.
type SqlReturn = i16;
/// `SQLHANDLE`.
type Handle = *mut c_void;
const SQL_SUCCESS: SqlReturn = 0;
const SQL_SUCCESS_WITH_INFO: SqlReturn = 1;
const SQL_NO_DATA: SqlReturn = 100;
const SQL_HANDLE_ENV: i16 = 1;
const SQL_HANDLE_DBC: i16 = 2;
const SQL_HANDLE_STMT: i16 = 3;
const SQL_ATTR_ODBC_VERSION: i32 = 200;
const SQL_OV_ODBC3: usize = 3;
const SQL_NTS: i16 = -3;
const SQL_NTS_LONG: i32 = -3;
const SQL_DRIVER_NOPROMPT: u16 = 0;
const SQL_C_CHAR: i16 = 1;
const SQL_NULL_DATA: isize = -1;
const SQL_NO_TOTAL: isize = -4;

fn ok(rc: SqlReturn) -> bool {
    rc == SQL_SUCCESS || rc == SQL_SUCCESS_WITH_INFO
}

/// The part of the ODBC API the tests use, looked up once in the real
/// `libodbc.so.2` loaded into the test process (the narrow-character
/// entry points; unixODBC maps them onto a Unicode driver).
pub struct Odbc {
    alloc_handle: unsafe extern "C" fn(i16, Handle, *mut Handle) -> SqlReturn,
    free_handle: unsafe extern "C" fn(i16, Handle) -> SqlReturn,
    set_env_attr: unsafe extern "C" fn(Handle, i32, *mut c_void, i32) -> SqlReturn,
    #[allow(clippy::type_complexity)]
    driver_connect: unsafe extern "C" fn(
        Handle,
        *mut c_void,
        *const u8,
        i16,
        *mut u8,
        i16,
        *mut i16,
        u16,
    ) -> SqlReturn,
    disconnect: unsafe extern "C" fn(Handle) -> SqlReturn,
    exec_direct: unsafe extern "C" fn(Handle, *const u8, i32) -> SqlReturn,
    num_result_cols: unsafe extern "C" fn(Handle, *mut i16) -> SqlReturn,
    fetch: unsafe extern "C" fn(Handle) -> SqlReturn,
    get_data: unsafe extern "C" fn(Handle, u16, i16, *mut c_void, isize, *mut isize) -> SqlReturn,
    #[allow(clippy::type_complexity)]
    get_diag_rec: unsafe extern "C" fn(
        i16,
        Handle,
        i16,
        *mut u8,
        *mut i32,
        *mut u8,
        i16,
        *mut i16,
    ) -> SqlReturn,
}

/// `dlopen`s a system library into the test process for good: it is never
/// unloaded, so the function pointers taken from it stay valid.
///
/// # Panics
/// If it cannot be loaded, naming the Debian package that ships it.
fn load_static(soname: &str, package: &str) -> &'static libloading::Library {
    // SAFETY: the driver manager's initialisers only set up its own state.
    let lib = unsafe { libloading::Library::new(soname) }.unwrap_or_else(|e| {
        panic!("cannot load {soname} (package {package}; run scripts/setup.sh): {e}")
    });
    Box::leak(Box::new(lib))
}

/// Looks up `name` in `lib` as a function pointer of type `T`.
///
/// # Safety
/// `T` must be the function's exact C type.
unsafe fn lookup<T: Copy>(lib: &'static libloading::Library, name: &str) -> T {
    // SAFETY: the caller promises `T` matches the symbol; the library is
    // never unloaded, so the pointer stays valid.
    let sym = unsafe { lib.get::<T>(name.as_bytes()) };
    *sym.unwrap_or_else(|e| panic!("{LIBODBC} has no {name}: {e}"))
}

/// The driver manager's diagnostics for a handle, one `SQLSTATE: message`
/// per record, joined with `; `.
fn diagnostics(odbc: &Odbc, kind: i16, handle: Handle) -> String {
    let mut out = Vec::new();
    for rec in 1..=8 {
        let mut state = [0u8; 6];
        let mut native = 0i32;
        let mut msg = [0u8; 1024];
        let mut len = 0i16;
        // SAFETY: every out-pointer is valid for the size passed (the
        // message buffer's length is given; the state buffer holds 5
        // characters and a NUL, as the API requires).
        let rc = unsafe {
            (odbc.get_diag_rec)(
                kind,
                handle,
                rec,
                state.as_mut_ptr(),
                &mut native,
                msg.as_mut_ptr(),
                msg.len() as i16,
                &mut len,
            )
        };
        if !ok(rc) {
            break;
        }
        let len = (len.max(0) as usize).min(msg.len() - 1);
        out.push(format!(
            "{}: {}",
            String::from_utf8_lossy(&state[..5]),
            String::from_utf8_lossy(&msg[..len])
        ));
    }
    if out.is_empty() {
        "no diagnostic record".to_string()
    } else {
        out.join("; ")
    }
}

impl Odbc {
    /// The driver manager, loaded into the test process once.
    ///
    /// # Panics
    /// If `libodbc.so.2` cannot be loaded, naming its package (`unixodbc`).
    pub fn get() -> &'static Odbc {
        static ODBC_FNS: OnceLock<Odbc> = OnceLock::new();
        ODBC_FNS.get_or_init(|| {
            let lib = load_static(LIBODBC, "unixodbc");
            macro_rules! sym {
                ($name:literal) => {
                    // SAFETY: each field's type is the function's prototype
                    // from sql.h/sqlext.h for 64-bit unixODBC (SQLLEN is
                    // 64-bit, SQLHANDLE an opaque pointer).
                    unsafe { lookup(lib, $name) }
                };
            }
            Odbc {
                alloc_handle: sym!("SQLAllocHandle"),
                free_handle: sym!("SQLFreeHandle"),
                set_env_attr: sym!("SQLSetEnvAttr"),
                driver_connect: sym!("SQLDriverConnect"),
                disconnect: sym!("SQLDisconnect"),
                exec_direct: sym!("SQLExecDirect"),
                num_result_cols: sym!("SQLNumResultCols"),
                fetch: sym!("SQLFetch"),
                get_data: sym!("SQLGetData"),
                get_diag_rec: sym!("SQLGetDiagRec"),
            }
        })
    }

    /// Allocates a handle of `kind` under `parent`.
    fn alloc(&'static self, kind: i16, parent: Handle) -> Result<OwnedHandle, String> {
        let mut h: Handle = ptr::null_mut();
        // SAFETY: `parent` is null (for an environment) or a live handle of
        // the right parent kind; `h` is a valid out-pointer.
        let rc = unsafe { (self.alloc_handle)(kind, parent, &mut h) };
        if !ok(rc) || h.is_null() {
            return Err(format!("SQLAllocHandle({kind}) failed with {rc}"));
        }
        Ok(OwnedHandle {
            odbc: self,
            kind,
            raw: h,
        })
    }

    /// Connects with `SQLDriverConnect(connection_string)`, e.g.
    /// `DSN=ffb_pg;` ([`OdbcEnv::connection_string`]); on failure, the
    /// driver manager's and the driver's diagnostics.
    pub fn connect(&'static self, connection_string: &str) -> Result<OdbcConn, String> {
        let env = self.alloc(SQL_HANDLE_ENV, ptr::null_mut())?;
        // SAFETY: `env` is live; SQL_ATTR_ODBC_VERSION takes its value in
        // the pointer argument itself.
        let rc = unsafe {
            (self.set_env_attr)(
                env.raw,
                SQL_ATTR_ODBC_VERSION,
                SQL_OV_ODBC3 as *mut c_void,
                0,
            )
        };
        if !ok(rc) {
            return Err(format!(
                "SQLSetEnvAttr(ODBC 3): {}",
                diagnostics(self, SQL_HANDLE_ENV, env.raw)
            ));
        }
        let dbc = self.alloc(SQL_HANDLE_DBC, env.raw)?;
        let c = CString::new(connection_string).map_err(|e| e.to_string())?;
        let mut out_len = 0i16;
        // SAFETY: `dbc` is live; the connection string is NUL-terminated
        // (SQL_NTS); no output buffer is asked for (null, length 0), and
        // `out_len` is a valid out-pointer.
        let rc = unsafe {
            (self.driver_connect)(
                dbc.raw,
                ptr::null_mut(),
                c.as_ptr().cast(),
                SQL_NTS,
                ptr::null_mut(),
                0,
                &mut out_len,
                SQL_DRIVER_NOPROMPT,
            )
        };
        if !ok(rc) {
            return Err(diagnostics(self, SQL_HANDLE_DBC, dbc.raw));
        }
        Ok(OdbcConn {
            odbc: self,
            dbc,
            _env: env,
        })
    }
}

/// An ODBC handle, freed on drop.
struct OwnedHandle {
    odbc: &'static Odbc,
    kind: i16,
    raw: Handle,
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: `raw` is a live handle of `kind`, freed exactly once,
        // here, after its children (fields drop in declaration order, and
        // every child is declared before its parent).
        unsafe { (self.odbc.free_handle)(self.kind, self.raw) };
    }
}

/// A live ODBC connection, disconnected and freed on drop.
pub struct OdbcConn {
    odbc: &'static Odbc,
    dbc: OwnedHandle,
    _env: OwnedHandle,
}

impl OdbcConn {
    /// Runs `sql` with `SQLExecDirect` and returns its rows, every value
    /// read as text (`SQL_C_CHAR`), NULL as `None`; on failure, the
    /// diagnostics.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        let odbc = self.odbc;
        let stmt = odbc.alloc(SQL_HANDLE_STMT, self.dbc.raw)?;
        let c = CString::new(sql).map_err(|e| e.to_string())?;
        // SAFETY: `stmt` is live; `c` is NUL-terminated (SQL_NTS).
        let rc = unsafe { (odbc.exec_direct)(stmt.raw, c.as_ptr().cast(), SQL_NTS_LONG) };
        if !ok(rc) && rc != SQL_NO_DATA {
            return Err(diagnostics(odbc, SQL_HANDLE_STMT, stmt.raw));
        }
        let mut cols = 0i16;
        // SAFETY: `stmt` is live; `cols` is a valid out-pointer.
        let rc = unsafe { (odbc.num_result_cols)(stmt.raw, &mut cols) };
        if !ok(rc) {
            return Err(diagnostics(odbc, SQL_HANDLE_STMT, stmt.raw));
        }
        let mut rows = Vec::new();
        if cols <= 0 {
            return Ok(rows);
        }
        loop {
            // SAFETY: `stmt` is live and has a result set.
            let rc = unsafe { (odbc.fetch)(stmt.raw) };
            if rc == SQL_NO_DATA {
                return Ok(rows);
            }
            if !ok(rc) {
                return Err(diagnostics(odbc, SQL_HANDLE_STMT, stmt.raw));
            }
            let mut row = Vec::with_capacity(cols as usize);
            for col in 1..=cols as u16 {
                row.push(self.get_text(&stmt, col)?);
            }
            rows.push(row);
        }
    }

    /// Reads column `col` of the current row as text, in as many
    /// `SQLGetData` calls as its length needs.
    fn get_text(&self, stmt: &OwnedHandle, col: u16) -> Result<Option<String>, String> {
        let odbc = self.odbc;
        let mut value = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let mut ind: isize = 0;
            // SAFETY: `stmt` is live and on a row; `buf` is writable for
            // its whole length, which is passed; `ind` is a valid
            // out-pointer.
            let rc = unsafe {
                (odbc.get_data)(
                    stmt.raw,
                    col,
                    SQL_C_CHAR,
                    buf.as_mut_ptr().cast(),
                    buf.len() as isize,
                    &mut ind,
                )
            };
            if rc == SQL_NO_DATA {
                break;
            }
            if !ok(rc) {
                return Err(diagnostics(odbc, SQL_HANDLE_STMT, stmt.raw));
            }
            if ind == SQL_NULL_DATA {
                return Ok(None);
            }
            // What this call wrote: all of it, or the buffer less its NUL
            // when truncated (the length is unknown or larger).
            let room = buf.len() - 1;
            let n = if ind == SQL_NO_TOTAL || ind < 0 {
                room
            } else {
                (ind as usize).min(room)
            };
            value.extend_from_slice(&buf[..n]);
            if rc == SQL_SUCCESS {
                break;
            }
        }
        Ok(Some(String::from_utf8_lossy(&value).into_owned()))
    }
}

impl Drop for OdbcConn {
    fn drop(&mut self) {
        // SAFETY: `dbc` is a live, connected handle; the handles themselves
        // are freed after this, as the fields drop.
        unsafe { (self.odbc.disconnect)(self.dbc.raw) };
    }
}
