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
//! `-shm` files (empty) before the helper starts, grants exactly those four
//! (on top of `manifests/sqlite3.policy.toml`), and switches the default
//! `DELETE` journal mode to `TRUNCATE`, which empties the journal instead of
//! removing it (SQLite takes an empty `-wal` for a missing one, so a
//! rollback database stays one). The driver then never needs to create or
//! remove a file; `ATTACH`, `VACUUM INTO` or a temp file anywhere else fails
//! with SQLite's own error and creates nothing. Temp tables and sorts stay
//! in memory (`PRAGMA temp_store = MEMORY`). When the connection closes, the
//! files the host created and SQLite left empty are removed again.
//!
//! A hot journal (a writer killed mid-transaction, or a switch to the
//! `DELETE` or `WAL` journal mode, which fails at its first commit because
//! the journal cannot be removed) is rolled back when the database is first
//! read, and SQLite removes it then unless the connection is in exclusive
//! locking mode. So the first read happens in exclusive mode, and a second
//! one in normal mode gives the lock back (`Sqlite::settle_journal`); a
//! database in WAL mode without a hot journal is left as it is. See
//! docs/policy.md, "What the sqlite driver does".

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::calls::{self, functions, int};
use super::lifecycle::{free_at_close, free_quietly};
use super::page::Deferred;
use super::statements::Statements;
use super::{shipped_policy, Config, Driver, StatementId, Value};
use crate::bridge::{Bridge, Cell, Cmp, FetchEnd, FetchProgram, FetchState, FunctionId, Operand};
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value as Raw;
use ffb_policy::grants::Grants;
use ffb_policy::manifest::Manifest;
use ffb_policy::sandbox::{Action, ArgCondition, CmpOp, SandboxPolicy, SyscallRule};

/// The shipped manifest, compiled in so the driver works from any directory.
const MANIFEST: &str = include_str!("../../../manifests/sqlite3.toml");
const MANIFEST_NAME: &str = "manifests/sqlite3.toml";
/// The shipped policy for libsqlite3: `pure`, `/dev/urandom`, and `fchown`
/// and `fchmod` refused softly (see the file). The database's files are
/// granted at run time.
const BASE_POLICY: &str = include_str!("../../../manifests/sqlite3.policy.toml");
const BASE_POLICY_PATH: &str = "manifests/sqlite3.policy.toml";

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

functions! {
    /// The declared functions, by name.
    struct Functions {
        close: "sqlite3_close_v2",
        errcode: "sqlite3_extended_errcode",
        errmsg: "sqlite3_errmsg",
        prepare: "sqlite3_prepare_v2",
        finalize: "sqlite3_finalize",
        reset: "sqlite3_reset",
        clear_bindings: "sqlite3_clear_bindings",
        parameter_count: "sqlite3_bind_parameter_count",
        bind_null: "sqlite3_bind_null",
        bind_int64: "sqlite3_bind_int64",
        bind_double: "sqlite3_bind_double",
        bind_text: "sqlite3_bind_text",
        bind_blob: "sqlite3_bind_blob",
        column_count: "sqlite3_column_count",
        column_name: "sqlite3_column_name",
        changes: "sqlite3_changes",
        step: "sqlite3_step",
        column_type: "sqlite3_column_type",
        column_int64: "sqlite3_column_int64",
        column_double: "sqlite3_column_double",
        column_text: "sqlite3_column_text",
        column_blob: "sqlite3_column_blob",
        column_bytes: "sqlite3_column_bytes",
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
    /// An error that ended the result after rows that were delivered with
    /// it: reported by the next fetch.
    failed: Deferred,
}

/// An open database in a helper.
struct Sqlite {
    bridge: Bridge,
    fns: Functions,
    db: Raw,
    /// The helper's address of the first byte of the SQL text in every
    /// `sqlite3_prepare_v2` call.
    text_base: u64,
    statements: Statements<Prepared>,
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

/// Whether the rollback journal at `journal` may be hot: it is not empty
/// and its header is not zeroed (SQLite's own test, less the lock it also
/// checks, which only makes SQLite decide it is not hot after all). The
/// host reads its own file.
fn is_hot(journal: &Path) -> bool {
    use std::io::Read;
    let mut first = [0u8; 1];
    std::fs::File::open(journal)
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok_and(|()| first[0] != 0)
}

/// Removes each of `files` that is (still) empty.
fn remove_if_empty(files: &[PathBuf]) {
    for f in files {
        if std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The helper's policy: the shipped `manifests/sqlite3.policy.toml` plus,
/// for a file, write grants on exactly its four files. Any other open for
/// writing fails with `EACCES`, which SQLite reports in its own words.
fn policy(db: Option<&Path>) -> Result<SandboxPolicy> {
    let mut grants = Grants::default();
    if let Some(db) = db {
        grants.write = database_files(db).to_vec();
    }
    let base = shipped_policy::parse(BASE_POLICY, BASE_POLICY_PATH)?;
    let mut p = shipped_policy::with_grants(base, &grants, "sqlite")?;
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
    let mut builder = calls::declare_all(
        config.bridge_builder(&library, policy(db_path)?),
        sigs.iter().cloned(),
    );
    for (kind, close, parent) in kinds {
        builder = builder.handle_kind(kind, Some(close), parent.as_deref());
    }
    let mut bridge = builder.load()?;
    let fns = Functions::of(&bridge);
    let name = db_path.map_or(":memory:".to_string(), |p| p.to_string_lossy().into_owned());
    let open = calls::declared(&bridge, "sqlite3_open_v2");
    let flags = OPEN_READ_WRITE_CREATE | OPEN_NOMUTEX;
    let out = bridge.call(
        open,
        &[Raw::str(name), Raw::Null, Raw::I32(flags), Raw::U64(0)],
    )?;
    let db = calls::out(&out, 1);
    let mut driver = Box::new(Sqlite {
        bridge,
        fns,
        db,
        text_base: 0,
        statements: Statements::default(),
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
    let extended = calls::declared(&driver.bridge, "sqlite3_extended_result_codes");
    let db = driver.db.clone();
    driver.bridge.call(extended, &[db, Raw::I32(1)])?;
    driver.calibrate()?;
    driver.run_quietly("PRAGMA temp_store = MEMORY")?;
    if let Some(path) = db_path {
        driver.settle_journal(path)?;
    }
    Ok(driver)
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

    /// Makes the database at `db` usable without removing a file: rolls
    /// back a hot journal (a writer that died mid-transaction, or a
    /// journal-mode switch that could not remove the journal) and sets the
    /// `TRUNCATE` journal mode, unless the database is in WAL mode.
    ///
    /// SQLite removes the journal when it rolls a hot one back, unless its
    /// connection is in exclusive locking mode (it zeroes the header then);
    /// and the journal cannot be removed here, so without this the journal
    /// would stay hot and every later open fail with `SQLITE_IOERR_DELETE`.
    /// So the first read happens in exclusive mode, and the lock it takes is
    /// given back by a second read in normal mode. A WAL database without a
    /// hot journal is left as it is: its first read in exclusive mode would
    /// keep the connection exclusive for good (the WAL index in its own
    /// memory). A refused switch to WAL leaves a WAL header *and* a hot
    /// journal, whose rollback brings the rollback header back, so the
    /// header is read again after it.
    fn settle_journal(&mut self, db: &Path) -> Result<()> {
        let journal = &database_files(db)[1];
        if is_wal(db) && !is_hot(journal) {
            return Ok(());
        }
        self.run_quietly("PRAGMA locking_mode = EXCLUSIVE")?;
        self.run_quietly("SELECT count(*) FROM sqlite_schema")?;
        if is_wal(db) {
            // The rollback left a WAL database (a switch away from WAL that
            // died): it stays WAL, in exclusive locking mode.
            return Ok(());
        }
        // DELETE (the default) would remove the journal after each commit;
        // TRUNCATE empties it.
        self.run_quietly("PRAGMA journal_mode = TRUNCATE")?;
        self.run_quietly("PRAGMA locking_mode = NORMAL")?;
        self.run_quietly("SELECT count(*) FROM sqlite_schema")
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
        match calls::batch(
            &mut self.bridge,
            &[(self.fns.errcode, &db), (self.fns.errmsg, &db)],
        ) {
            Ok(outs) => {
                let code = int(&outs[0].ret);
                let code = if code == 0 { rc } else { code };
                let message = match &outs[1].ret {
                    Raw::Str(m) => String::from_utf8_lossy(m).into_owned(),
                    _ => "unknown error".to_string(),
                };
                Error::foreign("sqlite", code, message)
            }
            Err(e) => e,
        }
    }

    /// The result's column names, in one round trip.
    fn column_names(&mut self, h: &Raw, columns: usize) -> Result<Vec<String>> {
        if columns == 0 {
            return Ok(Vec::new());
        }
        let args: Vec<[Raw; 2]> = (0..columns)
            .map(|i| [h.clone(), Raw::I32(i as i32)])
            .collect();
        let outs = calls::batch_each(&mut self.bridge, self.fns.column_name, &args)?;
        Ok(outs.iter().map(|o| calls::text(&o.ret)).collect())
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
                    free_quietly(&mut self.bridge, self.fns.finalize, &[handle]);
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
            let id = self.statements.insert(Prepared {
                handle,
                fetch: None,
                done: false,
                failed: Deferred::default(),
            });
            return Ok(Some((id, consumed + offset.max(1))));
        }
    }

    fn execute(&mut self, stmt: StatementId, params: &[Value]) -> Result<Vec<String>> {
        let h = self.statements.get(stmt)?.handle.clone();
        let mut calls = vec![
            (self.fns.parameter_count, vec![h.clone()]),
            (self.fns.column_count, vec![h.clone()]),
        ];
        for (i, p) in params.iter().enumerate() {
            calls.push(bind_call(&self.fns, &h, i + 1, p)?);
        }
        let outs = calls::batch_owned(&mut self.bridge, &calls)?;
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
            let p = self.statements.get_mut(stmt)?;
            p.done = true;
            return Ok(names);
        }
        let program = self.program(columns as usize)?;
        let state = self.bridge.fetch_state(std::slice::from_ref(&h))?;
        let p = self.statements.get_mut(stmt)?;
        p.fetch = Some((program, state));
        p.done = false;
        Ok(names)
    }

    fn fetch(&mut self, stmt: StatementId, max_rows: usize, out: &mut Vec<Value>) -> Result<bool> {
        let p = self.statements.get_mut(stmt)?;
        p.failed.take()?;
        if p.done {
            return Ok(false);
        }
        let Some((program, state)) = p.fetch.as_mut() else {
            return err(
                ErrorKind::BadArgument,
                "the statement has not been executed",
            );
        };
        let start = out.len();
        let mut rows = 0u64;
        let end = self.bridge.fetch(program, state, max_rows, |row| {
            out.extend(row.iter().map(value_of));
            rows += 1;
            ControlFlow::Continue(())
        });
        if !matches!(end, Ok(FetchEnd::More)) {
            p.done = true;
        }
        match end {
            Ok(FetchEnd::More) => Ok(true),
            Ok(FetchEnd::Ended {
                reason: SQLITE_DONE,
            }) => Ok(false),
            Ok(FetchEnd::Ended { reason }) => {
                // The step that failed came after the page's rows: they go
                // out now, and the error with the next fetch.
                let e = self.error(reason);
                self.statements.get_mut(stmt)?.failed.after(rows, e)
            }
            Err(e) => {
                // The helper failed mid-page: nothing of the page is kept.
                out.truncate(start);
                Err(e)
            }
        }
    }

    fn changes(&mut self, _stmt: StatementId) -> Result<u64> {
        let db = self.db.clone();
        Ok(self.call_int(self.fns.changes, &[db])?.max(0) as u64)
    }

    fn reset(&mut self, stmt: StatementId) -> Result<()> {
        let h = self.statements.get(stmt)?.handle.clone();
        let args = [h];
        // sqlite3_reset answers the last step's error, already reported.
        calls::batch(
            &mut self.bridge,
            &[(self.fns.reset, &args), (self.fns.clear_bindings, &args)],
        )?;
        if let Ok(p) = self.statements.get_mut(stmt) {
            p.fetch = None;
            p.done = false;
            p.failed.clear();
        }
        Ok(())
    }

    fn finalize(&mut self, stmt: StatementId) {
        // Its answer is the last step's error, already reported; with its
        // helper gone the statement is gone too (free_at_close).
        if let Some(p) = self.statements.remove(stmt) {
            free_at_close(&mut self.bridge, self.fns.finalize, &[p.handle]);
        }
    }

    fn audit_losses(&self) -> Option<(u64, String)> {
        self.bridge.audit_losses()
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        for id in self.statements.ids() {
            self.finalize(id);
        }
        let db = self.db.clone();
        free_at_close(&mut self.bridge, self.fns.close, &[db]);
        remove_if_empty(&self.created);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_is_hot_unless_missing_empty_or_zeroed() {
        let dir = std::env::temp_dir().join(format!("ffb-sqlite-hot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let journal = dir.join("j.db-journal");
        assert!(!is_hot(&journal), "missing");
        for (bytes, hot) in [
            (&b""[..], false),
            (&[0u8; 28][..], false),
            (&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7][..], true),
        ] {
            std::fs::write(&journal, bytes).unwrap();
            assert_eq!(is_hot(&journal), hot, "{bytes:02x?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
