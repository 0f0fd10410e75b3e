//! The PostgreSQL driver: libpq (`libpq.so.5`) in a helper whose policy
//! reaches the server named in the connection string and nothing else.
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
//! program has moved past it. A statement left before its end is drained
//! (the rest of its rows read and dropped in the helper, one handoff) so the
//! connection is ready for the next.
//!
//! Because a fetch program may not call a close function, the driver
//! declares the `pgresult` handle kind without one: it frees each result
//! token it holds exactly once itself (libpq's own `PQclear` rule), while
//! connections (`pgconn`, closed by `PQfinish`) keep the bridge's check.
//!
//! # Errors
//!
//! A failed statement is [`ErrorKind::Foreign`] with the SQLSTATE and the
//! server's message (with its `DETAIL` and `HINT`); a failed connection too,
//! with libpq's message and SQLSTATE `28P01` for a refused password,
//! `08001` otherwise. A parameter count the server rejects is
//! `bad_argument`. `COPY ... FROM STDIN` / `TO STDOUT` is not supported.
//!
//! # Policy
//!
//! [`policy`]: `pure`, plus the grants the connection string implies
//! (`conninfo.rs`): `[network] connect_unix` for each socket
//! (`DIR/.s.PGSQL.PORT`, the default directory `/var/run/postgresql`),
//! `[network] connect_tcp` for each TCP port, `[filesystem] read` for the
//! files it names (certificates, keys, a password file) and, for a TCP
//! connection, the resolver's files when a host is a name and OpenSSL's
//! configuration (libpq tries TLS first). Landlock bounds TCP by port, not
//! by address.

mod conninfo;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use super::{Config, Driver, StatementId, Value};
use crate::bridge::{Bridge, FunctionId};
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value as Raw;
use crate::{Cell, Cmp, FetchEnd, FetchProgram, FetchState, Operand, Section};
use ffb_policy::grants::Grants;
use ffb_policy::sandbox::SandboxPolicy;

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
const DIAG_SQLSTATE: i32 = b'C' as i32;
const DIAG_MESSAGE: i32 = b'M' as i32;
const DIAG_DETAIL: i32 = b'D' as i32;
const DIAG_HINT: i32 = b'H' as i32;
/// `sizeof(PGresAttDesc)`: name pointer, then six 4-byte fields.
const ATT_DESC_SIZE: usize = 32;
/// A bound on the results read while draining one statement: more than a
/// statement can produce, so only a lying helper reaches it.
const DRAIN_LIMIT: usize = 64;

/// How a column's text is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Bool,
    Bytea,
    Text,
}

impl Kind {
    fn of(oid: u32) -> Kind {
        match oid {
            20 | 21 | 23 | 26 => Kind::Int,
            700 | 701 => Kind::Float,
            16 => Kind::Bool,
            17 => Kind::Bytea,
            _ => Kind::Text,
        }
    }
}

/// The declared functions, by name.
struct Functions {
    finish: FunctionId,
    status: FunctionId,
    error_message: FunctionId,
    set_verbosity: FunctionId,
    set_encoding: FunctionId,
    send_query: FunctionId,
    single_row: FunctionId,
    get_result: FunctionId,
    result_status: FunctionId,
    error_field: FunctionId,
    clear: FunctionId,
    nfields: FunctionId,
    fname: FunctionId,
    ftype: FunctionId,
    cmd_tuples: FunctionId,
    getisnull: FunctionId,
    getvalue: FunctionId,
    getlength: FunctionId,
    make_empty: FunctionId,
    set_attrs: FunctionId,
    set_value: FunctionId,
    put_copy_end: FunctionId,
}

impl Functions {
    fn of(bridge: &Bridge) -> Functions {
        let f = |name: &str| bridge.function(name).expect("declared at load");
        Functions {
            finish: f("PQfinish"),
            status: f("PQstatus"),
            error_message: f("PQerrorMessage"),
            set_verbosity: f("PQsetErrorVerbosity"),
            set_encoding: f("PQsetClientEncoding"),
            send_query: f("PQsendQueryParams"),
            single_row: f("PQsetSingleRowMode"),
            get_result: f("PQgetResult"),
            result_status: f("PQresultStatus"),
            error_field: f("PQresultErrorField"),
            clear: f("PQclear"),
            nfields: f("PQnfields"),
            fname: f("PQfname"),
            ftype: f("PQftype"),
            cmd_tuples: f("PQcmdTuples"),
            getisnull: f("PQgetisnull"),
            getvalue: f("PQgetvalue"),
            getlength: f("PQgetlength"),
            make_empty: f("PQmakeEmptyPGresult"),
            set_attrs: f("PQsetResultAttrs"),
            set_value: f("PQsetvalue"),
            put_copy_end: f("PQputCopyEnd"),
        }
    }
}

// The fetch program's registers.
/// The current row's `PGresult`.
const R_RESULT: u8 = 0;
/// Its status.
const R_STATUS: u8 = 1;
/// Scratch registers.
const R_T0: u8 = 2;
const R_PTR: u8 = 3;
const R_LEN: u8 = 4;
/// The connection.
const R_CONN: u8 = 5;
/// 1 while the first row (already received by the host) is still unread.
const R_PENDING: u8 = 6;
/// 1 while `R_RESULT` is the host's own handle, which the program must not
/// free.
const R_HOSTS: u8 = 7;

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
    failed: Option<Error>,
}

/// An open connection in a helper.
struct Postgres {
    bridge: Bridge,
    fns: Functions,
    conn: Raw,
    statements: HashMap<u64, Prepared>,
    next_statement: u64,
    /// Fetch programs by column count (READ is the same for every type).
    programs: HashMap<usize, FetchProgram>,
    /// Reads and drops the rest of a result.
    drain: Option<FetchProgram>,
    /// Why the connection can no longer be used, if it cannot.
    broken: Option<String>,
}

/// The shipped policy for libpq: `pure`, the resolver's files, and nscd's
/// socket refused softly (see the file). The connection's own grants are
/// added to it at run time.
const BASE_POLICY: &str = include_str!("../../../manifests/libpq.policy.toml");
const BASE_POLICY_PATH: &str = "manifests/libpq.policy.toml";
/// OpenSSL's configuration, which libpq's TLS attempt reads over TCP
/// (`/usr/lib/ssl/openssl.cnf` is a link to it, and only the target counts
/// for Landlock).
const TLS_CONFIG: &[&str] = &["/etc/ssl/openssl.cnf"];

/// The policy for a connection string: see the module docs.
pub(crate) fn policy(config: &Config) -> Result<SandboxPolicy> {
    let conninfo = target(config)?;
    let reach = conninfo::reach(conninfo)
        .map_err(|m| Error::new(ErrorKind::BadArgument, format!("connection string: {m}")))?;
    policy_for(&reach)
}

fn policy_for(reach: &conninfo::Reach) -> Result<SandboxPolicy> {
    let mut read: Vec<PathBuf> = Vec::new();
    if !reach.tcp_ports.is_empty() {
        read.extend(TLS_CONFIG.iter().map(PathBuf::from).filter(|p| p.exists()));
    }
    for f in &reach.files {
        let f = std::path::absolute(f).unwrap_or_else(|_| f.clone());
        // Landlock cannot grant a path that does not exist; libpq then
        // reports the missing file itself.
        if f.exists() && !read.contains(&f) {
            read.push(f);
        }
    }
    let grants = Grants {
        read,
        write: Vec::new(),
        connect_tcp: reach.tcp_ports.clone(),
        connect_unix: reach.unix_sockets.clone(),
    };
    let base = ffb_policy::source::parse_toml_policy(BASE_POLICY, BASE_POLICY_PATH)
        .map_err(|e| Error::new(ErrorKind::BadArgument, format!("{BASE_POLICY_PATH}: {e}")))?;
    let mut base = base;
    // nsswitch.conf makes getpwuid (which libpq calls to find ~/.pgpass)
    // dlopen libnss_systemd, a PROT_EXEC mapping the policy refuses once
    // loaded; without it glibc uses its built-in files and dns lookups.
    base.filesystem
        .read
        .retain(|p| p != std::path::Path::new("/etc/nsswitch.conf"));
    let mut p = base
        .with_grants(&grants)
        .map_err(|e| Error::new(ErrorKind::BadArgument, format!("postgres policy: {e}")))?;
    p.name = "postgres".to_string();
    Ok(p)
}

fn target(config: &Config) -> Result<&str> {
    config.target().ok_or_else(|| {
        Error::new(
            ErrorKind::BadArgument,
            "the postgres driver needs a connection string (--db 'host=... dbname=...')",
        )
    })
}

/// Opens the connection `config` names.
pub(crate) fn open(config: &Config) -> Result<Box<dyn Driver>> {
    let conninfo = target(config)?.to_string();
    let policy = policy(config)?;
    let mut builder = config
        .bridge_builder(LIBRARY, policy)
        .handle_kind("pgconn", Some("PQfinish"), None)
        // No close function for results: the fetch program frees each row's
        // result itself (a close function cannot run in a fetch), and the
        // driver frees each result it holds a token for exactly once.
        .handle_kind("pgresult", None, None);
    for d in DECLARATIONS {
        builder = builder.declare(*d);
    }
    let mut bridge = builder.load()?;
    let fns = Functions::of(&bridge);
    let connect = bridge.function("PQconnectdb").expect("declared");
    let conn = bridge.call(connect, &[Raw::str(&conninfo)])?.ret;
    if conn == Raw::Null {
        return Err(Error::foreign(
            "postgres",
            "08001",
            "PQconnectdb: out of memory",
        ));
    }
    let outs = bridge
        .call_batch(&[
            (fns.status, std::slice::from_ref(&conn)),
            (fns.error_message, std::slice::from_ref(&conn)),
        ])
        .map_err(|f| f.error)?;
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
        let _ = bridge.call(fns.finish, &[conn]);
        return Err(Error::foreign("postgres", code, message));
    }
    let outs = bridge
        .call_batch(&[
            (
                fns.set_verbosity,
                &[conn.clone(), Raw::I32(PQERRORS_VERBOSE)][..],
            ),
            (fns.set_encoding, &[conn.clone(), Raw::str("UTF8")][..]),
        ])
        .map_err(|f| f.error)?;
    if int(&outs[1].ret) != 0 {
        let _ = bridge.call(fns.finish, &[conn]);
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
        statements: HashMap::new(),
        next_statement: 1,
        programs: HashMap::new(),
        drain: None,
        broken: None,
    }))
}

/// An integer return value as i64 (every declared integer fits).
fn int(v: &Raw) -> i64 {
    v.as_i128().unwrap_or_default() as i64
}

/// A returned string, lossily (an absent one is empty).
fn text(v: &Raw) -> String {
    match v {
        Raw::Str(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// A float as PostgreSQL's input reads it back to the same bits.
fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "Infinity".into()
    } else if v == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        // Shortest round-trip digits; an exponent where it is shorter.
        format!("{v:e}")
    }
}

/// Decodes one cell of a column of kind `kind`.
fn decode(kind: Kind, cell: &Cell<'_>) -> std::result::Result<Value, String> {
    let bytes = match cell {
        Cell::Null => return Ok(Value::Null),
        Cell::Text(b) | Cell::Blob(b) => *b,
        other => return Err(format!("a {other:?} cell where libpq gives text")),
    };
    let utf8 = || std::str::from_utf8(bytes).map_err(|_| "a number that is not UTF-8".to_string());
    Ok(match kind {
        Kind::Text => Value::text_from_bytes(bytes),
        Kind::Int => Value::Int(
            utf8()?
                .parse()
                .map_err(|e| format!("integer {bytes:?}: {e}"))?,
        ),
        Kind::Float => Value::Float(match utf8()? {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            t => t.parse().map_err(|e| format!("float {t:?}: {e}"))?,
        }),
        Kind::Bool => match bytes {
            b"t" => Value::Int(1),
            b"f" => Value::Int(0),
            _ => return Err(format!("bool {bytes:?}")),
        },
        Kind::Bytea => Value::Blob(bytea(bytes)?),
    })
}

/// `bytea` text: `\x` and hex (the default output), or the escape format
/// (`\\`, `\ooo` octal, other bytes as they are).
fn bytea(b: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if let Some(hex) = b.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err("bytea hex of odd length".into());
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        return hex
            .chunks_exact(2)
            .map(|p| match (digit(p[0]), digit(p[1])) {
                (Some(h), Some(l)) => Ok(h << 4 | l),
                _ => Err("bytea hex with a non-hex digit".to_string()),
            })
            .collect();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let oct = b
                .get(i + 1..i + 4)
                .and_then(|o| std::str::from_utf8(o).ok())
                .and_then(|o| u8::from_str_radix(o, 8).ok())
                .ok_or("bytea escape that is not octal")?;
            out.push(oct);
            i += 4;
        }
    }
    Ok(out)
}

/// Splits a libpq connection-level message (verbose) into its SQLSTATE and
/// text: `ERROR:  22012: division by zero\nLOCATION:  ...` gives `22012`
/// and `division by zero`.
fn split_message(message: &str) -> (String, String) {
    let mut code = String::new();
    let mut lines = Vec::new();
    for (i, line) in message.lines().enumerate() {
        if line.starts_with("LOCATION:") {
            continue;
        }
        if i == 0 {
            let rest = line.split_once(":  ").map(|(_, r)| r).unwrap_or(line);
            if let Some((c, text)) = rest.split_once(": ") {
                if c.len() == 5 && c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    code = c.to_string();
                    lines.push(text.to_string());
                    continue;
                }
            }
            lines.push(rest.to_string());
        } else {
            lines.push(line.to_string());
        }
    }
    if code.is_empty() {
        code = "XX000".into();
    }
    (code, lines.join("\n").trim_end().to_string())
}

/// A server error that is about the parameters given, not the statement:
/// the caller's mistake, `bad_argument`. Too few parameters is `42P02`
/// ("there is no parameter $N"); too many is `42P18` for the first one the
/// statement never uses ("could not determine data type of parameter $N",
/// also what a parameter whose type nothing determines gives: a cast in the
/// statement fixes both) or `08P01` ("bind message supplies N parameters").
fn parameter_error(code: &str, message: &str) -> bool {
    code == "42P02"
        || (code == "42P18" && message.contains("parameter $"))
        || (code == "08P01" && message.contains("bind message supplies"))
}

impl Postgres {
    fn fail_if_broken(&self) -> Result<()> {
        match &self.broken {
            Some(why) => err(
                ErrorKind::Foreign {
                    driver: "postgres".into(),
                    code: "08006".into(),
                },
                why.clone(),
            ),
            None => Ok(()),
        }
    }

    fn statement(&mut self, stmt: StatementId) -> Result<&mut Prepared> {
        self.statements.get_mut(&stmt.0).ok_or_else(|| {
            Error::new(
                ErrorKind::StaleHandle,
                format!("statement {} is not open", stmt.0),
            )
        })
    }

    /// The connection's last error (verbose), as a foreign error.
    fn connection_error(&mut self) -> Error {
        match self
            .bridge
            .call(self.fns.error_message, std::slice::from_ref(&self.conn))
        {
            Ok(out) => {
                let (code, message) = split_message(&text(&out.ret));
                Error::foreign("postgres", code, message)
            }
            Err(e) => e,
        }
    }

    /// The error a failed result carries: its SQLSTATE, message, detail and
    /// hint.
    fn result_error(&mut self, res: &Raw) -> Error {
        let args: Vec<[Raw; 2]> = [DIAG_SQLSTATE, DIAG_MESSAGE, DIAG_DETAIL, DIAG_HINT]
            .iter()
            .map(|&f| [res.clone(), Raw::I32(f)])
            .collect();
        let calls: Vec<(FunctionId, &[Raw])> = args
            .iter()
            .map(|a| (self.fns.error_field, &a[..]))
            .collect();
        let outs = match self.bridge.call_batch(&calls) {
            Ok(o) => o,
            Err(f) => return f.error,
        };
        let field = |i: usize| text(&outs[i].ret);
        let (code, mut message) = (field(0), field(1));
        if message.is_empty() {
            return self.connection_error();
        }
        for (label, i) in [("DETAIL", 2), ("HINT", 3)] {
            let v = field(i);
            if !v.is_empty() {
                message.push_str(&format!("\n{label}:  {v}"));
            }
        }
        if parameter_error(&code, &message) {
            return Error::new(ErrorKind::BadArgument, message);
        }
        let code = if code.is_empty() {
            "XX000".to_string()
        } else {
            code
        };
        Error::foreign("postgres", code, message)
    }

    /// Reads the connection's remaining results (there should be none or
    /// one) until `PQgetResult` says there are no more, freeing each.
    fn drain_results(&mut self) -> Result<()> {
        let conn = [self.conn.clone()];
        for _ in 0..DRAIN_LIMIT {
            let res = self.bridge.call(self.fns.get_result, &conn)?.ret;
            if res == Raw::Null {
                return Ok(());
            }
            let status = int(&self
                .bridge
                .call(self.fns.result_status, std::slice::from_ref(&res))?
                .ret);
            self.bridge.call(self.fns.clear, &[res])?;
            if matches!(status, PGRES_COPY_OUT | PGRES_COPY_BOTH) {
                self.broken = Some(
                    "the connection is in COPY mode, which the bridged driver does not support"
                        .into(),
                );
                return Ok(());
            }
        }
        self.broken = Some("libpq kept answering results after its statement ended".into());
        err(
            ErrorKind::Protocol,
            "libpq kept answering results after its statement ended",
        )
    }

    /// Copies the non-NULL parameter values into a scratch result and
    /// returns their addresses in the helper (0 for NULL), and the scratch
    /// result, to be freed once the statement is sent.
    fn stage(&mut self, payloads: &[Option<Vec<u8>>]) -> Result<(Vec<u64>, Option<Raw>)> {
        let mut addresses = vec![0u64; payloads.len()];
        if payloads.iter().all(Option::is_none) {
            return Ok((addresses, None));
        }
        let n = i32::try_from(payloads.len())
            .map_err(|_| Error::new(ErrorKind::BadArgument, "too many parameters"))?;
        let scratch = self
            .bridge
            .call(
                self.fns.make_empty,
                &[self.conn.clone(), Raw::I32(PGRES_TUPLES_OK as i32)],
            )?
            .ret;
        if scratch == Raw::Null {
            return Err(Error::foreign(
                "postgres",
                "53200",
                "PQmakeEmptyPGresult: out of memory",
            ));
        }
        let mut calls: Vec<(FunctionId, Vec<Raw>)> = vec![(
            self.fns.set_attrs,
            vec![
                scratch.clone(),
                Raw::I32(n),
                Raw::Bytes(vec![0; ATT_DESC_SIZE * payloads.len()]),
            ],
        )];
        let mut reads = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            if let Some(p) = p {
                let len = i32::try_from(p.len()).map_err(|_| {
                    Error::new(
                        ErrorKind::BadArgument,
                        format!("parameter {} is larger than 2 GiB", i + 1),
                    )
                })?;
                calls.push((
                    self.fns.set_value,
                    vec![
                        scratch.clone(),
                        Raw::I32(0),
                        Raw::I32(i as i32),
                        Raw::Bytes(p.clone()),
                        Raw::I32(len),
                    ],
                ));
                reads.push(i);
            }
        }
        for &i in &reads {
            calls.push((
                self.fns.getvalue,
                vec![scratch.clone(), Raw::I32(0), Raw::I32(i as i32)],
            ));
        }
        let batch: Vec<(FunctionId, &[Raw])> =
            calls.iter().map(|(f, a)| (*f, a.as_slice())).collect();
        let outs = match self.bridge.call_batch(&batch) {
            Ok(o) => o,
            Err(f) => {
                let _ = self.bridge.call(self.fns.clear, &[scratch]);
                return Err(f.error);
            }
        };
        let set = &outs[..1 + reads.len()];
        if set.iter().any(|o| int(&o.ret) != 1) {
            let _ = self.bridge.call(self.fns.clear, &[scratch]);
            return Err(Error::foreign(
                "postgres",
                "53200",
                "libpq could not copy the parameters (out of memory)",
            ));
        }
        for (&i, out) in reads.iter().zip(&outs[1 + reads.len()..]) {
            match out.ret {
                Raw::U64(a) if a != 0 => addresses[i] = a,
                _ => {
                    let _ = self.bridge.call(self.fns.clear, &[scratch]);
                    return err(
                        ErrorKind::Protocol,
                        "PQgetvalue gave no address for a parameter copy",
                    );
                }
            }
        }
        Ok((addresses, Some(scratch)))
    }

    /// The fetch program for `columns` columns.
    fn program(&mut self, columns: usize) -> Result<()> {
        if self.programs.contains_key(&columns) {
            return Ok(());
        }
        let f = &self.fns;
        let (clear, get_result, status) = (f.clear, f.get_result, f.result_status);
        let (getlength, getisnull, getvalue) = (f.getlength, f.getisnull, f.getvalue);
        let program = FetchProgram::builder(columns)
            .advance(|p| advance(p, clear, get_result, status))
            .read(|p| {
                for j in 0..columns as u64 {
                    let cell = [Operand::Reg(R_RESULT), Operand::Const(0), Operand::Const(j)];
                    p.call(getlength, &cell, R_LEN);
                    p.if_else(
                        R_LEN,
                        Cmp::Eq,
                        Operand::Const(0),
                        |t| {
                            t.call(getisnull, &cell, R_T0);
                            t.if_else(
                                R_T0,
                                Cmp::Ne,
                                Operand::Const(0),
                                |n| {
                                    n.emit_null();
                                },
                                |v| {
                                    v.call(getvalue, &cell, R_PTR).emit_text(R_PTR, R_LEN);
                                },
                            );
                        },
                        |e| {
                            e.call(getvalue, &cell, R_PTR).emit_text(R_PTR, R_LEN);
                        },
                    );
                }
            })
            .build()?;
        self.programs.insert(columns, program);
        Ok(())
    }

    /// Reads and drops the rest of a statement's rows, in the helper, and
    /// frees the first row's result.
    fn abandon(&mut self, id: u64) -> Result<()> {
        let Some(mut stream) = self.statements.get_mut(&id).and_then(|p| p.stream.take()) else {
            return Ok(());
        };
        if self.drain.is_none() {
            let f = &self.fns;
            let (clear, get_result, status) = (f.clear, f.get_result, f.result_status);
            self.drain = Some(
                FetchProgram::builder(1)
                    .advance(|p| advance(p, clear, get_result, status))
                    .read(|p| {
                        p.emit_null();
                    })
                    .build()?,
            );
        }
        stream.state.set_page_rows(1 << 20);
        let program = self.drain.as_ref().expect("built above");
        let end = self
            .bridge
            .fetch(program, &mut stream.state, usize::MAX, |_| {
                ControlFlow::Continue(())
            });
        if let Some(first) = stream.first.take() {
            self.bridge.call(self.fns.clear, &[first])?;
        }
        end?;
        self.drain_results()
    }

    /// Abandons whichever statement is still streaming: libpq runs one at a
    /// time.
    fn abandon_all(&mut self) -> Result<()> {
        let streaming: Vec<u64> = self
            .statements
            .iter()
            .filter(|(_, p)| p.stream.is_some())
            .map(|(&id, _)| id)
            .collect();
        for id in streaming {
            self.abandon(id)?;
        }
        Ok(())
    }

    /// Handles the statement's first result: column names and a stream for
    /// rows, or its changes, or its error.
    fn first_result(&mut self, id: u64, res: Raw) -> Result<Vec<String>> {
        let one = std::slice::from_ref(&res);
        let outs = self
            .bridge
            .call_batch(&[
                (self.fns.result_status, one),
                (self.fns.nfields, one),
                (self.fns.cmd_tuples, one),
            ])
            .map_err(|f| f.error)?;
        let (status, nfields) = (int(&outs[0].ret), int(&outs[1].ret));
        let changes = text(&outs[2].ret).parse::<u64>().unwrap_or(0);
        match status {
            PGRES_SINGLE_TUPLE | PGRES_TUPLES_OK => {
                let n = usize::try_from(nfields)
                    .ok()
                    .filter(|&n| n <= 1664)
                    .ok_or_else(|| {
                        Error::new(ErrorKind::Protocol, format!("PQnfields answered {nfields}"))
                    })?;
                let args: Vec<[Raw; 2]> =
                    (0..n).map(|j| [res.clone(), Raw::I32(j as i32)]).collect();
                let mut calls: Vec<(FunctionId, &[Raw])> =
                    args.iter().map(|a| (self.fns.fname, &a[..])).collect();
                calls.extend(args.iter().map(|a| (self.fns.ftype, &a[..])));
                let outs = self.bridge.call_batch(&calls).map_err(|f| f.error)?;
                let names: Vec<String> = outs[..n].iter().map(|o| text(&o.ret)).collect();
                let kinds: Vec<Kind> = outs[n..]
                    .iter()
                    .map(|o| Kind::of(int(&o.ret) as u32))
                    .collect();
                let p = self.statement(StatementId(id))?;
                p.kinds = kinds;
                if status == PGRES_TUPLES_OK || n == 0 {
                    p.changes = changes;
                    self.bridge.call(self.fns.clear, &[res])?;
                    self.drain_results()?;
                    return Ok(if n == 0 { Vec::new() } else { names });
                }
                self.program(n)?;
                let init = [
                    res.clone(),
                    Raw::U64(0),
                    Raw::U64(0),
                    Raw::U64(0),
                    Raw::U64(0),
                    self.conn.clone(),
                    Raw::U64(1),
                    Raw::U64(1),
                ];
                let state = match self.bridge.fetch_state(&init) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = self.bridge.call(self.fns.clear, &[res]);
                        return Err(e);
                    }
                };
                let p = self.statement(StatementId(id))?;
                p.stream = Some(Stream {
                    state,
                    first: Some(res),
                    delivered: 0,
                });
                Ok(names)
            }
            PGRES_COMMAND_OK | PGRES_EMPTY_QUERY => {
                self.statement(StatementId(id))?.changes = changes;
                self.bridge.call(self.fns.clear, &[res])?;
                self.drain_results()?;
                Ok(Vec::new())
            }
            PGRES_COPY_IN | PGRES_COPY_OUT | PGRES_COPY_BOTH => {
                self.bridge.call(self.fns.clear, &[res])?;
                if status == PGRES_COPY_IN {
                    let args = [
                        self.conn.clone(),
                        Raw::str("COPY FROM STDIN is not supported by ffb"),
                    ];
                    self.bridge.call(self.fns.put_copy_end, &args)?;
                    self.drain_results()?;
                } else {
                    self.broken = Some(
                        "the connection is in COPY mode, which the bridged driver does not support"
                            .into(),
                    );
                }
                err(
                    ErrorKind::BadArgument,
                    "COPY ... FROM STDIN and COPY ... TO STDOUT are not supported by the bridged postgres driver",
                )
            }
            _ => {
                let e = self.result_error(&res);
                self.bridge.call(self.fns.clear, &[res])?;
                self.drain_results()?;
                Err(e)
            }
        }
    }
}

/// ADVANCE: skip once for the row the host already received; otherwise free
/// the last row's result (unless it is the host's), take the next, and end
/// on any status but `PGRES_SINGLE_TUPLE` (freeing that result too).
fn advance(p: &mut Section, clear: FunctionId, get_result: FunctionId, status: FunctionId) {
    p.if_else(
        R_PENDING,
        Cmp::Ne,
        Operand::Const(0),
        |t| {
            t.set(R_PENDING, Operand::Const(0));
        },
        |e| {
            e.when(R_HOSTS, Cmp::Eq, Operand::Const(0), |c| {
                c.call(clear, &[Operand::Reg(R_RESULT)], R_T0);
            });
            e.set(R_HOSTS, Operand::Const(0));
            e.call(get_result, &[Operand::Reg(R_CONN)], R_RESULT);
            e.call(status, &[Operand::Reg(R_RESULT)], R_STATUS);
            e.when(
                R_STATUS,
                Cmp::Ne,
                Operand::Const(PGRES_SINGLE_TUPLE as u64),
                |c| {
                    c.call(clear, &[Operand::Reg(R_RESULT)], R_T0);
                    c.set(R_RESULT, Operand::Const(0));
                },
            );
            e.end_unless(R_STATUS, Cmp::Eq, Operand::Const(PGRES_SINGLE_TUPLE as u64));
        },
    );
}

impl Driver for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn prepare(&mut self, sql: &str) -> Result<Option<(StatementId, usize)>> {
        let Some(end) = super::split::statement_end(sql, super::split::Dialect::Postgres) else {
            return Ok(None);
        };
        let id = self.next_statement;
        self.next_statement += 1;
        self.statements.insert(
            id,
            Prepared {
                sql: sql[..end].to_string(),
                kinds: Vec::new(),
                stream: None,
                changes: 0,
                failed: None,
            },
        );
        Ok(Some((StatementId(id), end)))
    }

    fn execute(&mut self, stmt: StatementId, params: &[Value]) -> Result<Vec<String>> {
        self.fail_if_broken()?;
        self.abandon_all()?;
        let sql = self.statement(stmt)?.sql.clone();
        let n = params.len();
        let mut types = Vec::with_capacity(4 * n);
        let mut lengths = Vec::with_capacity(4 * n);
        let mut formats = Vec::with_capacity(4 * n);
        let mut payloads = Vec::with_capacity(n);
        for (i, p) in params.iter().enumerate() {
            let (oid, format, payload): (u32, i32, Option<Vec<u8>>) = match p {
                Value::Null => (0, 0, None),
                Value::Int(v) => (0, 0, Some(v.to_string().into_bytes())),
                Value::Float(v) => (0, 0, Some(float_text(*v).into_bytes())),
                Value::Text(s) => {
                    if s.contains('\0') {
                        return err(
                            ErrorKind::BadArgument,
                            format!(
                                "parameter {}: PostgreSQL text cannot hold a NUL character",
                                i + 1
                            ),
                        );
                    }
                    (0, 0, Some(s.clone().into_bytes()))
                }
                Value::Blob(b) => (17, 1, Some(b.clone())),
            };
            let len = payload.as_ref().map_or(0, Vec::len) as i32;
            types.extend_from_slice(&oid.to_ne_bytes());
            lengths.extend_from_slice(&len.to_ne_bytes());
            formats.extend_from_slice(&format.to_ne_bytes());
            payloads.push(payload);
        }
        let (addresses, scratch) = self.stage(&payloads)?;
        let values: Vec<u8> = addresses.iter().flat_map(|a| a.to_ne_bytes()).collect();
        let conn = self.conn.clone();
        let send = [
            conn.clone(),
            Raw::str(&sql),
            Raw::I32(n as i32),
            Raw::Bytes(types),
            Raw::Bytes(values),
            Raw::Bytes(lengths),
            Raw::Bytes(formats),
            Raw::I32(0),
        ];
        let one = [conn];
        let scratch_args: Vec<Raw> = scratch.into_iter().collect();
        let mut calls: Vec<(FunctionId, &[Raw])> =
            vec![(self.fns.send_query, &send), (self.fns.single_row, &one)];
        if !scratch_args.is_empty() {
            calls.push((self.fns.clear, &scratch_args));
        }
        calls.push((self.fns.get_result, &one));
        let outs = self.bridge.call_batch(&calls).map_err(|f| f.error)?;
        let res = outs.last().map(|o| o.ret.clone()).unwrap_or(Raw::Null);
        if int(&outs[0].ret) != 1 {
            if res != Raw::Null {
                let _ = self.bridge.call(self.fns.clear, &[res]);
            }
            return Err(self.connection_error());
        }
        if res == Raw::Null {
            return Err(self.connection_error());
        }
        self.first_result(stmt.0, res)
    }

    fn fetch(&mut self, stmt: StatementId, max_rows: usize, out: &mut Vec<Value>) -> Result<bool> {
        let p = self.statement(stmt)?;
        if let Some(e) = p.failed.take() {
            return Err(e);
        }
        let Some(mut stream) = p.stream.take() else {
            return Ok(false);
        };
        let kinds = p.kinds.clone();
        let columns = kinds.len();
        let start = out.len();
        let mut bad: Option<String> = None;
        let mut rows = 0u64;
        let program = self.programs.get(&columns).expect("built with the stream");
        let end = self
            .bridge
            .fetch(program, &mut stream.state, max_rows, |row| {
                for (cell, &kind) in row.iter().zip(&kinds) {
                    match decode(kind, cell) {
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
        stream.delivered += rows;
        let end = match (end, bad) {
            (Err(e), _) => {
                out.truncate(start);
                return Err(e);
            }
            (Ok(_), Some(why)) => {
                out.truncate(start);
                // The helper's rows are not what libpq's types say: it is
                // not to be trusted with another page.
                let e = Error::new(
                    ErrorKind::Protocol,
                    format!("a postgres cell does not decode: {why}"),
                );
                return Err(e);
            }
            (Ok(end), None) => end,
        };
        let past_first = stream.delivered >= 2 || matches!(end, FetchEnd::Ended { .. });
        if past_first {
            if let Some(first) = stream.first.take() {
                self.bridge.call(self.fns.clear, &[first])?;
            }
        }
        match end {
            FetchEnd::More => {
                self.statement(stmt)?.stream = Some(stream);
                Ok(true)
            }
            FetchEnd::Ended { reason } if reason == PGRES_TUPLES_OK => {
                self.statement(stmt)?.changes = stream.delivered;
                self.drain_results()?;
                Ok(false)
            }
            FetchEnd::Ended { .. } => {
                let e = self.connection_error();
                self.drain_results()?;
                if rows == 0 {
                    return Err(e);
                }
                // The rows before the error count; the error comes next.
                self.statement(stmt)?.failed = Some(e);
                Ok(true)
            }
        }
    }

    fn changes(&mut self, stmt: StatementId) -> Result<u64> {
        Ok(self.statement(stmt)?.changes)
    }

    fn reset(&mut self, stmt: StatementId) -> Result<()> {
        self.abandon(stmt.0)?;
        let p = self.statement(stmt)?;
        p.changes = 0;
        p.kinds.clear();
        p.failed = None;
        Ok(())
    }

    fn finalize(&mut self, stmt: StatementId) {
        if self.bridge.helper_pid().is_some() {
            let _ = self.abandon(stmt.0);
        }
        self.statements.remove(&stmt.0);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.bridge.helper_pid().is_some() {
            let _ = self.abandon_all();
            let _ = self
                .bridge
                .call(self.fns.finish, std::slice::from_ref(&self.conn));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Whether `path` is one of the files the policy lets libpq read.
    fn reads(p: &SandboxPolicy, path: &Path) -> bool {
        p.filesystem.read.iter().any(|r| r == path)
    }

    #[test]
    fn values_decode_by_type() {
        let t = |b: &'static [u8]| Cell::Text(b);
        assert_eq!(
            decode(Kind::Int, &t(b"-9223372036854775808")),
            Ok(Value::Int(i64::MIN))
        );
        assert_eq!(
            decode(Kind::Float, &t(b"-Infinity")),
            Ok(Value::Float(f64::NEG_INFINITY))
        );
        assert!(matches!(decode(Kind::Float, &t(b"NaN")), Ok(Value::Float(f)) if f.is_nan()));
        assert_eq!(
            decode(Kind::Float, &t(b"-0")).map(|v| format!("{v:?}")),
            Ok("Float(-0.0)".into())
        );
        assert_eq!(
            decode(Kind::Float, &t(b"5e-324")),
            Ok(Value::Float(f64::from_bits(1)))
        );
        assert_eq!(decode(Kind::Bool, &t(b"t")), Ok(Value::Int(1)));
        assert_eq!(
            decode(Kind::Bytea, &t(b"\\x00ff")),
            Ok(Value::Blob(vec![0, 255]))
        );
        assert_eq!(
            decode(Kind::Bytea, &t(b"a\\\\\\000")),
            Ok(Value::Blob(vec![b'a', b'\\', 0]))
        );
        assert_eq!(
            decode(Kind::Text, &t(b"1.50")),
            Ok(Value::Text("1.50".into()))
        );
        assert_eq!(decode(Kind::Int, &Cell::Null), Ok(Value::Null));
        assert!(decode(Kind::Int, &t(b"12x")).is_err());
        assert!(decode(Kind::Bytea, &t(b"\\x0")).is_err());
        assert!(decode(Kind::Bool, &t(b"yes")).is_err());
    }

    #[test]
    fn floats_round_trip_through_their_text() {
        for v in [
            0.0,
            -0.0,
            0.1,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
            1e22,
            -1.5e-300,
        ] {
            let back: f64 = float_text(v).parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:?}");
        }
        assert_eq!(float_text(f64::NAN), "NaN");
        assert_eq!(float_text(f64::INFINITY), "Infinity");
    }

    #[test]
    fn verbose_messages_split() {
        let (c, m) =
            split_message("ERROR:  22012: division by zero\nLOCATION:  int4div, int.c:869\n");
        assert_eq!((c.as_str(), m.as_str()), ("22012", "division by zero"));
        let (c, m) = split_message("ERROR:  42P01: relation \"x\" does not exist\nLINE 1: select * from x\n                      ^\nLOCATION:  parserOpenTable\n");
        assert_eq!(c, "42P01");
        assert!(
            m.starts_with("relation \"x\" does not exist\nLINE 1:"),
            "{m}"
        );
        let (c, m) = split_message("server closed the connection unexpectedly\n");
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("XX000", "server closed the connection unexpectedly")
        );
    }

    #[test]
    fn the_policy_grants_what_the_string_names() {
        let p = policy_for(&conninfo::reach("host=/tmp port=5999 user=u").unwrap()).unwrap();
        assert_eq!(p.connect_unix, [PathBuf::from("/tmp/.s.PGSQL.5999")]);
        assert!(p.network.connect_tcp.is_empty());
        assert!(!reads(&p, Path::new("/etc/ssl/openssl.cnf")));
        let p = policy_for(&conninfo::reach("host=localhost port=6001 user=u").unwrap()).unwrap();
        assert_eq!(p.network.connect_tcp, [6001]);
        assert!(p.connect_unix.is_empty());
        let here = std::env::current_dir().unwrap().join("Cargo.toml");
        let p = policy_for(
            &conninfo::reach(&format!("host=h port=1 sslrootcert={}", here.display())).unwrap(),
        )
        .unwrap();
        assert!(reads(&p, &here));
        let p = policy_for(&conninfo::reach("host=h port=1 sslrootcert=/no/such/ca.pem").unwrap())
            .unwrap();
        assert!(!reads(&p, Path::new("/no/such/ca.pem")));
    }
}
