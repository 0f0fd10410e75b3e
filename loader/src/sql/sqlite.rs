//! The SQLite driver: libsqlite3 in a helper whose policy reaches the
//! database file and its journal, WAL and shm files, and nothing else (no
//! file at all for an in-memory database).
//!
//! The functions, their handle kinds (`sqlite3`, closed by
//! `sqlite3_close_v2`; `sqlite3_stmt`, closed by `sqlite3_finalize` and with
//! its connection) come from the shipped manifest, `manifests/sqlite3.toml`.
//! Its `retained` marks on `sqlite3_bind_text`/`_blob` are for callers that
//! pass `SQLITE_STATIC`; this driver always passes `SQLITE_TRANSIENT`, so
//! SQLite copies the value during the call and nothing is pinned.
//!
//! Rows come through a fetch program ([`FetchProgram`]): the helper steps
//! the statement and copies each cell into a page of the arena until the
//! page is full, so a page of rows costs one round trip.
//!
//! Statements are split by SQLite itself: `sqlite3_prepare_v2` returns in
//! `*pzTail` where the first statement ended. That is an address in the
//! helper, which the host cannot use as such; but the SQL text is always the
//! call's first buffer, at the same place in the arena, so the address of its
//! first byte is learnt once per helper (preparing `;`, whose tail is one
//! byte in) and every later tail becomes an offset, checked to fall inside
//! the text on a character boundary. A lying helper can only mis-split its
//! own work.
//!
//! # Files
//!
//! Landlock rules are per file, and creating or removing a file needs a
//! right on its directory, which would let the driver create any file
//! there. So the host creates the database and its `-journal`, `-wal` and
//! `-shm` files (empty) before the helper starts, grants exactly those four,
//! and switches the default `DELETE` journal mode to `TRUNCATE`, which
//! empties the journal instead of removing it. The driver then never needs
//! to create or remove a file; `ATTACH`, `VACUUM INTO` or a temp file
//! anywhere else fails with SQLite's own error and creates nothing. Temp
//! tables and sorts stay in memory (`PRAGMA temp_store = MEMORY`). When the
//! connection closes, the files the host created and SQLite left empty are
//! removed again. A `PRAGMA journal_mode = DELETE` a user sets fails at its
//! first commit.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::{Config, Driver, StatementId, Value};
use crate::bridge::{Bridge, Cell, Cmp, FetchEnd, FetchProgram, FetchState, FunctionId, Operand};
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value as Raw;
use ffb_policy::grants::Grants;
use ffb_policy::manifest::Manifest;
use ffb_policy::sandbox::{Action, ArgCondition, CmpOp, SandboxPolicy, SyscallRule};

/// The shipped manifest, compiled in so the driver works from any directory.
const MANIFEST: &str = include_str!("../../../manifests/sqlite3.toml");
const MANIFEST_NAME: &str = "manifests/sqlite3.toml";

/// Signatures this driver needs in a form the shipped manifest does not have
/// yet (requested): the tail of `sqlite3_prepare_v2` as an out-pointer and
/// the text as `bytes`, text bound as `bytes`, and extended result codes.
const OVERRIDES: &[&str] = &[
    "sqlite3_prepare_v2(handle<sqlite3>, bytes, i32, *handle<sqlite3_stmt>, *u64) -> i32",
    "sqlite3_bind_text(handle<sqlite3_stmt>, i32, bytes, i32, isize) -> i32",
    "sqlite3_extended_result_codes(handle<sqlite3>, i32) -> i32",
];

/// The manifest's functions this driver calls.
const USED: &[&str] = &[
    "sqlite3_open_v2",
    "sqlite3_close_v2",
    "sqlite3_extended_result_codes",
    "sqlite3_extended_errcode",
    "sqlite3_errmsg",
    "sqlite3_prepare_v2",
    "sqlite3_finalize",
    "sqlite3_reset",
    "sqlite3_clear_bindings",
    "sqlite3_bind_parameter_count",
    "sqlite3_bind_null",
    "sqlite3_bind_int64",
    "sqlite3_bind_double",
    "sqlite3_bind_text",
    "sqlite3_bind_blob",
    "sqlite3_column_count",
    "sqlite3_column_name",
    "sqlite3_changes",
    "sqlite3_step",
    "sqlite3_column_type",
    "sqlite3_column_int64",
    "sqlite3_column_double",
    "sqlite3_column_text",
    "sqlite3_column_blob",
    "sqlite3_column_bytes",
];

const SQLITE_OK: i64 = 0;
const SQLITE_ROW: i64 = 100;
const SQLITE_DONE: i64 = 101;
/// `SQLITE_CANTOPEN`, for a database file the host cannot prepare.
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_INTEGER: u64 = 1;
const SQLITE_FLOAT: u64 = 2;
const SQLITE_TEXT: u64 = 3;
const SQLITE_BLOB: u64 = 4;
/// `SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE`.
const OPEN_READ_WRITE_CREATE: i32 = 0x2 | 0x4;
/// `SQLITE_OPEN_NOMUTEX`: one thread uses the connection (the bridge is `&mut`).
const OPEN_NOMUTEX: i32 = 0x8000;
/// `SQLITE_TRANSIENT`: SQLite copies bound text and blobs during the call.
const SQLITE_TRANSIENT: i64 = -1;
/// The most columns a result may have (SQLite's own hard limit).
const MAX_COLUMNS: i64 = 32767;

/// The declared functions, by name.
struct Functions {
    close: FunctionId,
    errcode: FunctionId,
    errmsg: FunctionId,
    prepare: FunctionId,
    finalize: FunctionId,
    reset: FunctionId,
    clear_bindings: FunctionId,
    parameter_count: FunctionId,
    bind_null: FunctionId,
    bind_int64: FunctionId,
    bind_double: FunctionId,
    bind_text: FunctionId,
    bind_blob: FunctionId,
    column_count: FunctionId,
    column_name: FunctionId,
    changes: FunctionId,
    step: FunctionId,
    column_type: FunctionId,
    column_int64: FunctionId,
    column_double: FunctionId,
    column_text: FunctionId,
    column_blob: FunctionId,
    column_bytes: FunctionId,
}

impl Functions {
    fn of(bridge: &Bridge) -> Functions {
        let f = |name: &str| bridge.function(name).expect("declared at load");
        Functions {
            close: f("sqlite3_close_v2"),
            errcode: f("sqlite3_extended_errcode"),
            errmsg: f("sqlite3_errmsg"),
            prepare: f("sqlite3_prepare_v2"),
            finalize: f("sqlite3_finalize"),
            reset: f("sqlite3_reset"),
            clear_bindings: f("sqlite3_clear_bindings"),
            parameter_count: f("sqlite3_bind_parameter_count"),
            bind_null: f("sqlite3_bind_null"),
            bind_int64: f("sqlite3_bind_int64"),
            bind_double: f("sqlite3_bind_double"),
            bind_text: f("sqlite3_bind_text"),
            bind_blob: f("sqlite3_bind_blob"),
            column_count: f("sqlite3_column_count"),
            column_name: f("sqlite3_column_name"),
            changes: f("sqlite3_changes"),
            step: f("sqlite3_step"),
            column_type: f("sqlite3_column_type"),
            column_int64: f("sqlite3_column_int64"),
            column_double: f("sqlite3_column_double"),
            column_text: f("sqlite3_column_text"),
            column_blob: f("sqlite3_column_blob"),
            column_bytes: f("sqlite3_column_bytes"),
        }
    }
}

/// One prepared statement.
struct Prepared {
    /// The statement's handle token.
    handle: Raw,
    /// Its fetch program and where the fetch is, once it has run.
    fetch: Option<(FetchProgram, FetchState)>,
    /// Whether the statement has run to its end.
    done: bool,
}

/// An open database in a helper.
struct Sqlite {
    bridge: Bridge,
    fns: Functions,
    db: Raw,
    /// The helper's address of the first byte of the SQL text in every
    /// `sqlite3_prepare_v2` call.
    text_base: u64,
    statements: HashMap<u64, Prepared>,
    next_statement: u64,
    /// Files the host created for the database, removed at close if empty.
    created: Vec<PathBuf>,
}

/// The manifest's declarations of the functions this driver uses, and its
/// handle kinds (name, closer, parent).
#[allow(clippy::type_complexity)]
fn declarations() -> Result<(Vec<String>, Vec<(String, String, Option<String>)>)> {
    let manifest = Manifest::parse(MANIFEST, MANIFEST_NAME)
        .map_err(|e| Error::new(ErrorKind::LoadFailed, e.to_string()))?;
    let mut sigs = Vec::new();
    for name in USED {
        let over = OVERRIDES
            .iter()
            .find(|o| o.split('(').next() == Some(*name));
        match (over, manifest.function(name)) {
            (Some(o), _) => sigs.push(o.to_string()),
            (None, Some(f)) => sigs.push(f.signature.to_string()),
            (None, None) => {
                return err(
                    ErrorKind::LoadFailed,
                    format!("{MANIFEST_NAME} does not declare {name}"),
                )
            }
        }
    }
    let kinds = manifest
        .handles
        .iter()
        .map(|h| (h.name.clone(), h.close.clone(), h.parent.clone()))
        .collect();
    Ok((sigs, kinds))
}

/// The four files of a database at `db`: itself, `-journal`, `-wal`, `-shm`.
fn database_files(db: &Path) -> [PathBuf; 4] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [
        db.to_path_buf(),
        with("-journal"),
        with("-wal"),
        with("-shm"),
    ]
}

/// The error for a database file the host cannot prepare, in SQLite's words.
fn cannot_open(path: &Path, e: &std::io::Error) -> Error {
    Error::foreign(
        "sqlite",
        SQLITE_CANTOPEN,
        format!("unable to open database file: {}: {e}", path.display()),
    )
}

/// Makes sure the database and its three side files exist (Landlock can
/// only grant files that do), creating the missing ones empty. Returns the
/// database's canonical path (SQLite names its side files after the real
/// file, not a symlink to it) and the files created here.
fn prepare_files(given: &str) -> Result<(PathBuf, Vec<PathBuf>)> {
    let path = std::path::absolute(given).map_err(|e| cannot_open(Path::new(given), &e))?;
    let mut created = Vec::new();
    let create = |p: &Path, created: &mut Vec<PathBuf>| -> Result<()> {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
        {
            Ok(_) => {
                created.push(p.to_path_buf());
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(cannot_open(p, &e)),
        }
    };
    create(&path, &mut created)?;
    let db = std::fs::canonicalize(&path).map_err(|e| cannot_open(&path, &e))?;
    if !db.is_file() {
        return Err(cannot_open(
            &db,
            &std::io::Error::other("not a regular file"),
        ));
    }
    for side in &database_files(&db)[1..] {
        if let Err(e) = create(side, &mut created) {
            remove_if_empty(&created);
            return Err(e);
        }
    }
    Ok((db, created))
}

/// Whether the database file's header says WAL mode (its read and write
/// format versions, bytes 18 and 19, are 2). The host reads its own file:
/// nothing here comes from the helper.
fn is_wal(db: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(db)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2 && header[19] == 2)
}

/// Removes each of `files` that is (still) empty.
fn remove_if_empty(files: &[PathBuf]) {
    for f in files {
        if std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The helper's policy: the fs-read preset (read-only opens of what the
/// dynamic loader needs) plus, for a file, write grants on exactly its four
/// files. Any other open for writing fails with `EACCES`, which SQLite
/// reports in its own words.
fn policy(db: Option<&Path>) -> Result<SandboxPolicy> {
    let mut grants = Grants::default();
    if let Some(db) = db {
        grants.write = database_files(db).to_vec();
    }
    let mut p = SandboxPolicy::fs_read()
        .with_grants(&grants)
        .map_err(|e| Error::new(ErrorKind::LoadFailed, format!("the sqlite policy: {e}")))?;
    let write_bits = [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_CREAT,
        libc::O_TRUNC,
        libc::O_APPEND,
    ];
    for (name, flags_arg) in [("open", 1), ("openat", 2)] {
        for bit in write_bits {
            let bit = bit as u64;
            let when = vec![ArgCondition::new(flags_arg, CmpOp::MaskedEq(bit), bit)];
            let rule = SyscallRule::new(name, Action::Errno(libc::EACCES as u32), when)
                .expect("real syscalls");
            p.rules.push(rule);
        }
    }
    p.name = match db {
        Some(db) => format!("sqlite ({})", db.display()),
        None => "sqlite (in-memory)".to_string(),
    };
    Ok(p)
}

/// Opens the database `config` names.
pub(crate) fn open(config: &Config) -> Result<Box<dyn Driver>> {
    let (sigs, kinds) = declarations()?;
    let (db_path, created) = match config.target() {
        Some(path) => {
            let (db, created) = prepare_files(path)?;
            (Some(db), created)
        }
        None => (None, Vec::new()),
    };
    let opened = open_in_helper(config, db_path.as_deref(), &sigs, &kinds);
    match opened {
        Ok(mut driver) => {
            driver.created = created;
            Ok(driver)
        }
        Err(e) => {
            remove_if_empty(&created);
            Err(e)
        }
    }
}

/// Spawns the helper, opens the database in it and sets it up.
fn open_in_helper(
    config: &Config,
    db_path: Option<&Path>,
    sigs: &[String],
    kinds: &[(String, String, Option<String>)],
) -> Result<Box<Sqlite>> {
    let library = Manifest::parse(MANIFEST, MANIFEST_NAME)
        .map(|m| m.library)
        .unwrap_or_else(|_| "libsqlite3.so.0".to_string());
    let mut builder = config.bridge_builder(&library, policy(db_path)?);
    for sig in sigs {
        builder = builder.declare(sig.clone());
    }
    for (kind, close, parent) in kinds {
        builder = builder.handle_kind(kind, Some(close), parent.as_deref());
    }
    let mut bridge = builder.load()?;
    let fns = Functions::of(&bridge);
    let name = db_path.map_or(":memory:".to_string(), |p| p.to_string_lossy().into_owned());
    let open = bridge.function("sqlite3_open_v2").expect("declared");
    let flags = OPEN_READ_WRITE_CREATE | OPEN_NOMUTEX;
    let out = bridge.call(
        open,
        &[Raw::str(name), Raw::Null, Raw::I32(flags), Raw::U64(0)],
    )?;
    let db = out.out.get(1).cloned().flatten().unwrap_or(Raw::Null);
    let mut driver = Box::new(Sqlite {
        bridge,
        fns,
        db,
        text_base: 0,
        statements: HashMap::new(),
        next_statement: 1,
        created: Vec::new(),
    });
    let rc = int(&out.ret);
    if rc != SQLITE_OK {
        return Err(if driver.db == Raw::Null {
            Error::foreign("sqlite", rc, "cannot open the database (out of memory)")
        } else {
            driver.error(rc)
        });
    }
    // Extended codes: a constraint violation says which (2067 for UNIQUE).
    let extended = driver
        .bridge
        .function("sqlite3_extended_result_codes")
        .expect("declared");
    let db = driver.db.clone();
    driver.bridge.call(extended, &[db, Raw::I32(1)])?;
    driver.calibrate()?;
    driver.run_quietly("PRAGMA temp_store = MEMORY")?;
    if let Some(path) = db_path {
        // DELETE would remove the journal after each commit (and when it
        // rolls a hot journal back); TRUNCATE empties it. Set before the
        // database is first read. A WAL database stays WAL (its files are
        // granted): leaving WAL would remove its -wal file.
        if !is_wal(path) {
            driver.run_quietly("PRAGMA journal_mode = TRUNCATE")?;
        }
    }
    Ok(driver)
}

/// An integer return value as i64 (every declared integer fits).
fn int(v: &Raw) -> i64 {
    v.as_i128().unwrap_or_default() as i64
}

impl Sqlite {
    /// Calls `f` and returns its integer result.
    fn call_int(&mut self, f: FunctionId, args: &[Raw]) -> Result<i64> {
        Ok(int(&self.bridge.call(f, args)?.ret))
    }

    /// Learns where the SQL text of a `sqlite3_prepare_v2` call sits in the
    /// helper: `;` holds no statement, and its tail is one byte in.
    fn calibrate(&mut self) -> Result<()> {
        let args = [
            self.db.clone(),
            Raw::bytes(";"),
            Raw::I32(1),
            Raw::Null,
            Raw::U64(0),
        ];
        let out = self.bridge.call(self.fns.prepare, &args)?;
        let rc = int(&out.ret);
        if rc != SQLITE_OK {
            return Err(self.error(rc));
        }
        match (&out.out[3], &out.out[4]) {
            (Some(Raw::Null), Some(Raw::U64(tail))) if *tail > 0 => {
                self.text_base = tail - 1;
                Ok(())
            }
            other => err(
                ErrorKind::Protocol,
                format!("sqlite3_prepare_v2(\";\") answered {other:?}"),
            ),
        }
    }

    /// Runs one statement of the driver's own to its end.
    fn run_quietly(&mut self, sql: &str) -> Result<()> {
        self.query_text(sql).map(drop)
    }

    /// Runs one statement of the driver's own and returns the first column
    /// of its first row as text.
    fn query_text(&mut self, sql: &str) -> Result<Option<String>> {
        let Some((stmt, _)) = self.prepare(sql)? else {
            return Ok(None);
        };
        let result = self.first_text(stmt);
        self.finalize(stmt);
        result
    }

    fn first_text(&mut self, stmt: StatementId) -> Result<Option<String>> {
        let columns = self.execute(stmt, &[])?;
        let mut rows = Vec::new();
        while self.fetch(stmt, 16, &mut rows)? {}
        Ok(match rows.first() {
            Some(Value::Text(t)) if !columns.is_empty() => Some(t.clone()),
            _ => None,
        })
    }

    /// The database's error for a failed call that returned `rc`: SQLite's
    /// own extended code and message.
    fn error(&mut self, rc: i64) -> Error {
        let db = [self.db.clone()];
        match self
            .bridge
            .call_batch(&[(self.fns.errcode, &db), (self.fns.errmsg, &db)])
        {
            Ok(outs) => {
                let code = int(&outs[0].ret);
                let code = if code == 0 { rc } else { code };
                let message = match &outs[1].ret {
                    Raw::Str(m) => String::from_utf8_lossy(m).into_owned(),
                    _ => "unknown error".to_string(),
                };
                Error::foreign("sqlite", code, message)
            }
            Err(f) => f.error,
        }
    }

    fn statement(&self, stmt: StatementId) -> Result<&Prepared> {
        self.statements.get(&stmt.0).ok_or_else(|| {
            Error::new(
                ErrorKind::StaleHandle,
                format!("statement {} is not open", stmt.0),
            )
        })
    }

    /// The result's column names, in one round trip.
    fn column_names(&mut self, h: &Raw, columns: usize) -> Result<Vec<String>> {
        if columns == 0 {
            return Ok(Vec::new());
        }
        let args: Vec<[Raw; 2]> = (0..columns)
            .map(|i| [h.clone(), Raw::I32(i as i32)])
            .collect();
        let calls: Vec<(FunctionId, &[Raw])> = args
            .iter()
            .map(|a| (self.fns.column_name, &a[..]))
            .collect();
        let outs = self.bridge.call_batch(&calls).map_err(|f| f.error)?;
        Ok(outs
            .iter()
            .map(|o| match &o.ret {
                Raw::Str(name) => String::from_utf8_lossy(name).into_owned(),
                _ => String::new(),
            })
            .collect())
    }

    /// The fetch program for a result of `columns` columns, with the
    /// statement in r0: ADVANCE steps (ending unless `SQLITE_ROW`), READ
    /// emits each cell by its type.
    fn program(&self, columns: usize) -> Result<FetchProgram> {
        let f = &self.fns;
        FetchProgram::builder(columns)
            .advance(|p| {
                p.call(f.step, &[Operand::Reg(0)], 1).end_unless(
                    1,
                    Cmp::Eq,
                    Operand::Const(SQLITE_ROW as u64),
                );
            })
            .read(|p| {
                for i in 0..columns as u64 {
                    let cell = [Operand::Reg(0), Operand::Const(i)];
                    p.call(f.column_type, &cell, 2).if_else(
                        2,
                        Cmp::Eq,
                        Operand::Const(SQLITE_INTEGER),
                        |t| {
                            t.call(f.column_int64, &cell, 3).emit_int(3);
                        },
                        |e| {
                            e.if_else(
                                2,
                                Cmp::Eq,
                                Operand::Const(SQLITE_FLOAT),
                                |t| {
                                    t.call(f.column_double, &cell, 3).emit_float(3);
                                },
                                |e| {
                                    e.if_else(
                                        2,
                                        Cmp::Eq,
                                        Operand::Const(SQLITE_TEXT),
                                        |t| {
                                            // Text first, then its length (SQLite's order).
                                            t.call(f.column_text, &cell, 3)
                                                .call(f.column_bytes, &cell, 4)
                                                .emit_text(3, 4);
                                        },
                                        |e| {
                                            e.if_else(
                                                2,
                                                Cmp::Eq,
                                                Operand::Const(SQLITE_BLOB),
                                                |t| {
                                                    t.call(f.column_blob, &cell, 3)
                                                        .call(f.column_bytes, &cell, 4)
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
    }
}

/// Why a statement's text cannot be sent.
fn too_long(what: &str) -> Error {
    Error::new(
        ErrorKind::BadArgument,
        format!("{what} is longer than SQLite takes (2 GiB)"),
    )
}

/// The bind call for parameter `position` (1-based) of statement `h`.
fn bind_call(
    fns: &Functions,
    h: &Raw,
    position: usize,
    v: &Value,
) -> Result<(FunctionId, Vec<Raw>)> {
    let at = Raw::I32(i32::try_from(position).map_err(|_| too_long("the parameter list"))?);
    let buffer = |f: FunctionId, bytes: &[u8]| -> Result<(FunctionId, Vec<Raw>)> {
        let len = i32::try_from(bytes.len()).map_err(|_| too_long("a parameter"))?;
        Ok((
            f,
            vec![
                h.clone(),
                at.clone(),
                Raw::bytes(bytes),
                Raw::I32(len),
                Raw::I64(SQLITE_TRANSIENT),
            ],
        ))
    };
    Ok(match v {
        Value::Null => (fns.bind_null, vec![h.clone(), at]),
        Value::Int(i) => (fns.bind_int64, vec![h.clone(), at, Raw::I64(*i)]),
        Value::Float(f) => (fns.bind_double, vec![h.clone(), at, Raw::F64(*f)]),
        Value::Text(t) => buffer(fns.bind_text, t.as_bytes())?,
        Value::Blob(b) => buffer(fns.bind_blob, b)?,
    })
}

/// A fetched cell as a value (text that is not UTF-8 is converted lossily).
fn value_of(cell: &Cell<'_>) -> Value {
    match *cell {
        Cell::Int(i) => Value::Int(i),
        Cell::Float(f) => Value::Float(f),
        Cell::Text(t) => Value::text_from_bytes(t),
        Cell::Blob(b) => Value::Blob(b.to_vec()),
        Cell::Null => Value::Null,
    }
}

impl Driver for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn prepare(&mut self, sql: &str) -> Result<Option<(StatementId, usize)>> {
        let mut consumed = 0;
        loop {
            let rest = &sql[consumed..];
            if rest.is_empty() {
                return Ok(None);
            }
            let n = i32::try_from(rest.len()).map_err(|_| too_long("the SQL text"))?;
            let args = [
                self.db.clone(),
                Raw::bytes(rest),
                Raw::I32(n),
                Raw::Null,
                Raw::U64(0),
            ];
            let out = self.bridge.call(self.fns.prepare, &args)?;
            let rc = int(&out.ret);
            if rc != SQLITE_OK {
                return Err(self.error(rc));
            }
            let handle = out.out[3].clone().unwrap_or(Raw::Null);
            let tail = match &out.out[4] {
                Some(Raw::U64(t)) => *t,
                _ => 0,
            };
            // Read once; an offset outside the text (or inside a character)
            // is a lie, and nothing is sliced with it.
            let offset = tail.wrapping_sub(self.text_base);
            let inside = usize::try_from(offset)
                .ok()
                .filter(|&o| o <= rest.len() && rest.is_char_boundary(o));
            let Some(offset) = inside else {
                if handle != Raw::Null {
                    let _ = self.bridge.call(self.fns.finalize, &[handle]);
                }
                return err(
                    ErrorKind::Protocol,
                    format!(
                        "sqlite3_prepare_v2 ended a statement {offset:#x} bytes into a {}-byte text",
                        rest.len()
                    ),
                );
            };
            if handle == Raw::Null {
                // Only `;`, whitespace or comments before `offset`.
                if offset == 0 || offset == rest.len() {
                    return Ok(None);
                }
                consumed += offset;
                continue;
            }
            let id = self.next_statement;
            self.next_statement += 1;
            self.statements.insert(
                id,
                Prepared {
                    handle,
                    fetch: None,
                    done: false,
                },
            );
            return Ok(Some((StatementId(id), consumed + offset.max(1))));
        }
    }

    fn execute(&mut self, stmt: StatementId, params: &[Value]) -> Result<Vec<String>> {
        let h = self.statement(stmt)?.handle.clone();
        let mut calls = vec![
            (self.fns.parameter_count, vec![h.clone()]),
            (self.fns.column_count, vec![h.clone()]),
        ];
        for (i, p) in params.iter().enumerate() {
            calls.push(bind_call(&self.fns, &h, i + 1, p)?);
        }
        let batch: Vec<(FunctionId, &[Raw])> =
            calls.iter().map(|(f, a)| (*f, a.as_slice())).collect();
        let outs = self.bridge.call_batch(&batch).map_err(|f| f.error)?;
        let expected = int(&outs[0].ret);
        if expected != params.len() as i64 {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "the statement takes {expected} parameters, {} given",
                    params.len()
                ),
            );
        }
        if let Some(rc) = outs[2..]
            .iter()
            .map(|o| int(&o.ret))
            .find(|&rc| rc != SQLITE_OK)
        {
            return Err(self.error(rc));
        }
        let columns = int(&outs[1].ret);
        if !(0..=MAX_COLUMNS).contains(&columns) {
            return err(
                ErrorKind::Protocol,
                format!("sqlite3_column_count answered {columns}"),
            );
        }
        let names = self.column_names(&h, columns as usize)?;
        if columns == 0 {
            // No rows to stream: run it now, so its errors show here.
            loop {
                match self.call_int(self.fns.step, std::slice::from_ref(&h))? {
                    SQLITE_DONE => break,
                    SQLITE_ROW => continue,
                    rc => return Err(self.error(rc)),
                }
            }
            let p = self.statements.get_mut(&stmt.0).expect("looked up above");
            p.done = true;
            return Ok(names);
        }
        let program = self.program(columns as usize)?;
        let state = self.bridge.fetch_state(std::slice::from_ref(&h))?;
        let p = self.statements.get_mut(&stmt.0).expect("looked up above");
        p.fetch = Some((program, state));
        p.done = false;
        Ok(names)
    }

    fn fetch(&mut self, stmt: StatementId, max_rows: usize, out: &mut Vec<Value>) -> Result<bool> {
        let Some(p) = self.statements.get_mut(&stmt.0) else {
            return Err(Error::new(
                ErrorKind::StaleHandle,
                format!("statement {} is not open", stmt.0),
            ));
        };
        if p.done {
            return Ok(false);
        }
        let Some((program, state)) = p.fetch.as_mut() else {
            return err(
                ErrorKind::BadArgument,
                "the statement has not been executed",
            );
        };
        let end = self.bridge.fetch(program, state, max_rows, |row| {
            out.extend(row.iter().map(value_of));
            ControlFlow::Continue(())
        });
        match end {
            Ok(FetchEnd::More) => Ok(true),
            Ok(FetchEnd::Ended { reason }) => {
                p.done = true;
                match reason {
                    SQLITE_DONE => Ok(false),
                    rc => Err(self.error(rc)),
                }
            }
            Err(e) => {
                p.done = true;
                Err(e)
            }
        }
    }

    fn changes(&mut self, _stmt: StatementId) -> Result<u64> {
        let db = self.db.clone();
        Ok(self.call_int(self.fns.changes, &[db])?.max(0) as u64)
    }

    fn reset(&mut self, stmt: StatementId) -> Result<()> {
        let h = self.statement(stmt)?.handle.clone();
        let args = [h];
        // sqlite3_reset answers the last step's error, already reported.
        self.bridge
            .call_batch(&[(self.fns.reset, &args), (self.fns.clear_bindings, &args)])
            .map_err(|f| f.error)?;
        if let Some(p) = self.statements.get_mut(&stmt.0) {
            p.fetch = None;
            p.done = false;
        }
        Ok(())
    }

    fn finalize(&mut self, stmt: StatementId) {
        // With its helper gone the statement is gone too; calling would only
        // start a new helper to be told the handle is stale.
        let alive = self.bridge.helper_pid().is_some();
        if let Some(p) = self.statements.remove(&stmt.0).filter(|_| alive) {
            // Its answer is the last step's error, already reported.
            let _ = self.bridge.call(self.fns.finalize, &[p.handle]);
        }
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let statements: Vec<u64> = self.statements.keys().copied().collect();
        for id in statements {
            self.finalize(StatementId(id));
        }
        if self.bridge.helper_pid().is_some() {
            let db = self.db.clone();
            let _ = self.bridge.call(self.fns.close, &[db]);
        }
        remove_if_empty(&self.created);
    }
}
