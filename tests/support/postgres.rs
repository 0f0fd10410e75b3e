//! The private PostgreSQL server the tests run against, and libpq loaded
//! into the test process to talk to it directly.
//!
//! `scripts/test.sh` starts the server with `scripts/postgres.sh start`
//! before `cargo test` and exports where it is (the `FFB_TEST_PG_*`
//! variables). [`server`] reads them. Without them it panics, naming the
//! missing variable: a PostgreSQL test must fail, not pass silently, when
//! there is no server. To run a few tests by hand:
//!
//! ```sh
//! eval "$(scripts/postgres.sh start)"
//! cargo test -p ffb-tests --test integration servers::
//! scripts/postgres.sh stop
//! ```
//!
//! The server trusts every role on its unix socket, and asks for a
//! scram-sha-256 password over TCP, so a test can check that a wrong
//! password is refused.
//!
//! [`Libpq`] is the in-process side of differential tests and of the
//! environment checks: the real `libpq.so.5`, `dlopen`ed into the test
//! process, with just enough of its API to connect and run a query. The
//! values come back in libpq's text format.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// How to reach the private test server.
#[derive(Clone, Debug)]
pub struct PgServer {
    /// The directory holding the server's unix socket
    /// (`FFB_TEST_PG_SOCKET_DIR`); libpq takes it as `host=`.
    pub socket_dir: PathBuf,
    /// The loopback address it listens on for TCP (`FFB_TEST_PG_HOST`).
    pub host: String,
    /// Its port, for both the socket and TCP (`FFB_TEST_PG_PORT`).
    pub port: u16,
    /// The test role (`FFB_TEST_PG_USER`), which owns [`PgServer::db`].
    pub user: String,
    /// The bootstrap superuser (`FFB_TEST_PG_SUPERUSER`, `postgres`). It
    /// has no password, so it can only come in over the socket.
    pub superuser: String,
    /// The test role's password (`FFB_TEST_PG_PASSWORD`), needed over TCP.
    pub password: String,
    /// The test database (`FFB_TEST_PG_DB`).
    pub db: String,
}

impl PgServer {
    /// Connection info for the unix socket, where the server trusts the
    /// role without a password.
    pub fn socket_conninfo(&self) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.socket_dir.display(),
            self.port,
            self.user,
            self.db
        )
    }

    /// Connection info for the superuser on the unix socket, for checks
    /// and set-up the test role may not do.
    pub fn superuser_conninfo(&self) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.socket_dir.display(),
            self.port,
            self.superuser,
            self.db
        )
    }

    /// Connection info for TCP with `password`: [`PgServer::password`] to
    /// get in, anything else to be refused.
    pub fn tcp_conninfo(&self, password: &str) -> String {
        format!(
            "host={} port={} user={} password={} dbname={} sslmode=disable",
            self.host, self.port, self.user, password, self.db
        )
    }
}

impl PgServer {
    /// A new, empty database owned by the test role, named
    /// `ffb_test_TAG_N` (unique in this process and across processes), so
    /// a test can create tables without meeting another test's. The same
    /// server with [`PgServer::db`] set to it is returned; the database is
    /// left for `scripts/postgres.sh stop` to throw away with the server.
    ///
    /// # Panics
    /// If the server refuses (the message says why). `tag` must be a
    /// lowercase SQL identifier fragment (letters, digits, `_`).
    pub fn fresh_database(&self, tag: &str) -> PgServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "fresh_database: tag {tag:?} is not a lowercase identifier"
        );
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ffb_test_{tag}_{}_{n}", std::process::id());
        let mut admin = Libpq::get()
            .connect(&self.superuser_conninfo())
            .unwrap_or_else(|e| panic!("fresh_database: superuser connect: {e}"));
        admin
            .query(&format!("create database {name} owner {}", self.user))
            .unwrap_or_else(|e| panic!("fresh_database: create database {name}: {e:?}"));
        PgServer {
            db: name,
            ..self.clone()
        }
    }
}

/// Reads one of the variables `scripts/postgres.sh start` exports.
///
/// # Panics
/// If it is unset, naming it and how to start the server.
fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "PostgreSQL test server not running: {name} unset; run the tests through \
             scripts/test.sh, which starts it with scripts/postgres.sh \
             (or eval \"$(scripts/postgres.sh start)\" first)"
        ),
    }
}

/// The private test server, from the environment.
///
/// # Panics
/// If a variable is missing or malformed, or the socket directory is gone
/// (the server was stopped), naming what is wrong.
pub fn server() -> PgServer {
    let socket_dir = PathBuf::from(var("FFB_TEST_PG_SOCKET_DIR"));
    let port = var("FFB_TEST_PG_PORT");
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("FFB_TEST_PG_PORT={port:?} is not a port number"));
    assert!(
        socket_dir.is_dir(),
        "PostgreSQL test server not running: its socket directory {} (FFB_TEST_PG_SOCKET_DIR) \
         is gone; start it again with scripts/postgres.sh start",
        socket_dir.display()
    );
    PgServer {
        socket_dir,
        host: var("FFB_TEST_PG_HOST"),
        port,
        user: var("FFB_TEST_PG_USER"),
        superuser: var("FFB_TEST_PG_SUPERUSER"),
        password: var("FFB_TEST_PG_PASSWORD"),
        db: var("FFB_TEST_PG_DB"),
    }
}

/// libpq's soname, as the bridge loads it too.
pub const LIBPQ: &str = "libpq.so.5";

/// `ConnStatusType::CONNECTION_OK`.
const CONNECTION_OK: c_int = 0;
/// `ExecStatusType::PGRES_COMMAND_OK`.
const PGRES_COMMAND_OK: c_int = 1;
/// `ExecStatusType::PGRES_TUPLES_OK`.
const PGRES_TUPLES_OK: c_int = 2;
/// `PG_DIAG_SQLSTATE`, the field code of `PQresultErrorField`.
const PG_DIAG_SQLSTATE: c_int = b'C' as c_int;

/// The part of libpq's API the tests use, looked up once in the real
/// `libpq.so.5` loaded into the test process.
pub struct Libpq {
    connectdb: unsafe extern "C" fn(*const c_char) -> *mut c_void,
    status: unsafe extern "C" fn(*const c_void) -> c_int,
    error_message: unsafe extern "C" fn(*const c_void) -> *const c_char,
    finish: unsafe extern "C" fn(*mut c_void),
    exec: unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void,
    result_status: unsafe extern "C" fn(*const c_void) -> c_int,
    result_error_message: unsafe extern "C" fn(*const c_void) -> *const c_char,
    result_error_field: unsafe extern "C" fn(*const c_void, c_int) -> *const c_char,
    ntuples: unsafe extern "C" fn(*const c_void) -> c_int,
    nfields: unsafe extern "C" fn(*const c_void) -> c_int,
    getisnull: unsafe extern "C" fn(*const c_void, c_int, c_int) -> c_int,
    getvalue: unsafe extern "C" fn(*const c_void, c_int, c_int) -> *const c_char,
    clear: unsafe extern "C" fn(*mut c_void),
}

/// Copies a C string libpq returned (null reads as empty).
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that stays valid for
/// the call.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller promises `p` is a valid C string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// `dlopen`s a system library into the test process for good: it is never
/// unloaded, so the function pointers taken from it stay valid.
///
/// # Panics
/// If it cannot be loaded, naming the Debian package that ships it.
fn load_static(soname: &str, package: &str) -> &'static libloading::Library {
    // SAFETY: libpq's initialisers only set up its own state.
    let lib = unsafe { libloading::Library::new(soname) }.unwrap_or_else(|e| {
        panic!("cannot load {soname} (package {package}; run scripts/setup.sh): {e}")
    });
    Box::leak(Box::new(lib))
}

/// Looks up `name` in `lib` as a function pointer of type `T`.
///
/// # Safety
/// `T` must be the function's exact C type.
unsafe fn lookup<T: Copy>(lib: &'static libloading::Library, name: &str, soname: &str) -> T {
    // SAFETY: the caller promises `T` matches the symbol; the library is
    // never unloaded (it lives in a static), so the pointer stays valid.
    let sym = unsafe { lib.get::<T>(name.as_bytes()) };
    *sym.unwrap_or_else(|e| panic!("{soname} has no {name}: {e}"))
}

impl Libpq {
    /// libpq, loaded into the test process once.
    ///
    /// # Panics
    /// If `libpq.so.5` cannot be loaded, naming its package (`libpq5`).
    pub fn get() -> &'static Libpq {
        static LIBPQ_FNS: OnceLock<Libpq> = OnceLock::new();
        LIBPQ_FNS.get_or_init(|| {
            let lib = load_static(LIBPQ, "libpq5");
            macro_rules! sym {
                ($name:literal) => {
                    // SAFETY: each field's type is the function's C
                    // prototype from libpq-fe.h, with `PGconn *` and
                    // `PGresult *` as opaque pointers.
                    unsafe { lookup(lib, $name, LIBPQ) }
                };
            }
            Libpq {
                connectdb: sym!("PQconnectdb"),
                status: sym!("PQstatus"),
                error_message: sym!("PQerrorMessage"),
                finish: sym!("PQfinish"),
                exec: sym!("PQexec"),
                result_status: sym!("PQresultStatus"),
                result_error_message: sym!("PQresultErrorMessage"),
                result_error_field: sym!("PQresultErrorField"),
                ntuples: sym!("PQntuples"),
                nfields: sym!("PQnfields"),
                getisnull: sym!("PQgetisnull"),
                getvalue: sym!("PQgetvalue"),
                clear: sym!("PQclear"),
            }
        })
    }

    /// Connects with `conninfo`; on failure, libpq's message.
    pub fn connect(&'static self, conninfo: &str) -> Result<PgConn, String> {
        let c = CString::new(conninfo).map_err(|e| e.to_string())?;
        // SAFETY: `c` is a valid C string for the call; PQconnectdb copies it.
        let raw = unsafe { (self.connectdb)(c.as_ptr()) };
        if raw.is_null() {
            return Err("PQconnectdb returned NULL (out of memory)".into());
        }
        // From here the connection is owned, and PQfinish'ed on drop.
        let conn = PgConn { pq: self, raw };
        // SAFETY: `raw` is a live connection.
        if unsafe { (self.status)(conn.raw) } != CONNECTION_OK {
            return Err(conn.error_message());
        }
        Ok(conn)
    }
}

/// A live libpq connection, closed (`PQfinish`) on drop.
pub struct PgConn {
    pq: &'static Libpq,
    raw: *mut c_void,
}

/// A failed query: libpq's message and the SQLSTATE.
#[derive(Debug)]
pub struct PgError {
    /// `PQresultErrorMessage`.
    pub message: String,
    /// The five-character SQLSTATE, e.g. `42P01` (undefined table).
    pub sqlstate: String,
}

impl PgConn {
    fn error_message(&self) -> String {
        // SAFETY: `raw` is live; the message stays valid until the next
        // call on the connection, and is copied at once.
        let p = unsafe { (self.pq.error_message)(self.raw) };
        // SAFETY: libpq returns a valid C string.
        unsafe { text(p) }.trim_end().to_string()
    }

    /// Runs `sql` (one or more statements) and returns the last one's rows,
    /// each value in libpq's text format, NULL as `None`.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
        let pq = self.pq;
        let c = CString::new(sql).map_err(|e| PgError {
            message: e.to_string(),
            sqlstate: String::new(),
        })?;
        // SAFETY: `raw` is a live connection and `c` a valid C string.
        let res = unsafe { (pq.exec)(self.raw, c.as_ptr()) };
        if res.is_null() {
            return Err(PgError {
                message: self.error_message(),
                sqlstate: String::new(),
            });
        }
        let res = PgResult { pq, raw: res };
        // SAFETY: `res.raw` is a live result.
        let status = unsafe { (pq.result_status)(res.raw) };
        if status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK {
            // SAFETY: `res.raw` is live; the strings live as long as it.
            let message = unsafe { (pq.result_error_message)(res.raw) };
            // SAFETY: as above.
            let sqlstate = unsafe { (pq.result_error_field)(res.raw, PG_DIAG_SQLSTATE) };
            // SAFETY: libpq returns a valid C string.
            let message = unsafe { text(message) }.trim_end().to_string();
            // SAFETY: libpq returns a valid C string, or null.
            let sqlstate = unsafe { text(sqlstate) };
            return Err(PgError { message, sqlstate });
        }
        // SAFETY: `res.raw` is live.
        let rows = unsafe { (pq.ntuples)(res.raw) };
        // SAFETY: `res.raw` is live.
        let cols = unsafe { (pq.nfields)(res.raw) };
        let mut out = Vec::with_capacity(rows.max(0) as usize);
        for r in 0..rows {
            let mut row = Vec::with_capacity(cols.max(0) as usize);
            for c in 0..cols {
                // SAFETY: `r` and `c` are within the result's bounds.
                let null = unsafe { (pq.getisnull)(res.raw, r, c) } != 0;
                row.push(if null {
                    None
                } else {
                    // SAFETY: as above; the value lives as long as `res`.
                    let v = unsafe { (pq.getvalue)(res.raw, r, c) };
                    // SAFETY: PQgetvalue returns a NUL-terminated string.
                    Some(unsafe { text(v) })
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // SAFETY: `raw` is live and finished exactly once, here.
        unsafe { (self.pq.finish)(self.raw) };
    }
}

/// A `PGresult`, cleared on drop.
struct PgResult {
    pq: &'static Libpq,
    raw: *mut c_void,
}

impl Drop for PgResult {
    fn drop(&mut self) {
        // SAFETY: `raw` is live and cleared exactly once, here.
        unsafe { (self.pq.clear)(self.raw) };
    }
}
