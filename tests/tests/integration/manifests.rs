//! Extension manifests end to end: the shipped manifests parse and their
//! policies load; `ffb describe` shows what a manifest declares and what is
//! enforced; `ffb call` and `ffb session` call real libsqlite3 functions by
//! name, with typed handles that go stale when closed; and every kind of
//! manifest mistake is one `ffb: FILE:LINE:COL: ...` line, exit 2, with
//! nothing spawned.

use std::ffi::{c_char, CStr};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::slice::from_ref;
use std::sync::mpsc;
use std::thread;

use ffb_loader::{Bridge, ErrorKind, SandboxPolicy, Value};
use ffb_policy::grants::Grants;
use ffb_policy::manifest::{Manifest, ManifestPolicy};
use ffb_tests::bridge_builder;
use ffb_tests::cli::{
    ffb, ffb_run, path_str, refused, single_json_object, wait_with_deadline, Scratch, DEADLINE,
};
use ffb_tests::in_process::InProcess;
use serde_json::{json, Value as Json};

/// `manifests/NAME` in the repository.
fn shipped(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    dir.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .join(name)
}

const SHIPPED: [&str; 3] = ["sqlite3.toml", "libpq.toml", "odbc.toml"];

/// The SQLite version of the library loaded into this process.
fn in_process_sqlite_version() -> String {
    let lib = InProcess::open("libsqlite3.so.0");
    // SAFETY: sqlite3_libversion is `const char *sqlite3_libversion(void)`.
    let f = unsafe { lib.sym::<unsafe extern "C" fn() -> *const c_char>("sqlite3_libversion") };
    // SAFETY: it takes nothing and returns a pointer to a static string.
    let p = unsafe { f() };
    assert!(!p.is_null());
    // SAFETY: the string is static, NUL-terminated and outlives this read.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------
// the shipped manifests
// ---------------------------------------------------------------------------

#[test]
fn every_shipped_manifest_parses_and_its_policy_loads_and_compiles() {
    for name in SHIPPED {
        let m = Manifest::load(shipped(name)).unwrap_or_else(|e| panic!("{e}"));
        let ManifestPolicy::File(file) = &m.policy else {
            panic!("{name}: the shipped manifests name their own policy file");
        };
        assert!(
            file.exists(),
            "{name}: its policy {} is missing (helper D writes manifests/*.policy.toml)",
            file.display()
        );
        let policy = m.load_policy().unwrap_or_else(|e| panic!("{name}: {e}"));
        policy
            .compile()
            .unwrap_or_else(|e| panic!("{name}: its policy does not compile: {e}"));
        // Every handle kind a function hands out has a closer in the manifest.
        for f in &m.functions {
            for slot in f.handle_slots().iter().filter(|s| s.out) {
                let kind = slot
                    .kind
                    .unwrap_or_else(|| panic!("{name}: {} hands out an untyped handle", f.name()));
                assert!(m.handle(kind).is_some(), "{name}: {kind}");
            }
        }
    }
    let libs: Vec<String> = SHIPPED
        .iter()
        .map(|n| Manifest::load(shipped(n)).unwrap().library)
        .collect();
    assert_eq!(libs, ["libsqlite3.so.0", "libpq.so.5", "libodbc.so.2"]);
}

// ---------------------------------------------------------------------------
// the loader API
// ---------------------------------------------------------------------------

#[test]
fn builder_manifest_declares_functions_handle_rules_and_retained_buffers() {
    let m = Manifest::load(shipped("sqlite3.toml")).unwrap();
    let mut b = bridge_builder("libsqlite3.so.0", &[])
        .policy(SandboxPolicy::preset("fs-read").unwrap())
        .manifest(&m)
        .unwrap()
        .load()
        .unwrap();
    for f in &m.functions {
        let id = b
            .function(f.name())
            .unwrap_or_else(|| panic!("{} not declared", f.name()));
        assert_eq!(b.signature(id), Some(&f.signature));
    }
    let open = b
        .call_by_name(
            "sqlite3_open_v2",
            &[
                Value::str(":memory:"),
                Value::Null,
                Value::I32(6),
                Value::U64(0),
            ],
        )
        .unwrap();
    let db = open.out[1].clone().unwrap();
    let prep = b
        .call_by_name(
            "sqlite3_prepare_v2",
            &[
                db.clone(),
                Value::str("select ?"),
                Value::I32(-1),
                Value::Null,
                Value::U64(0),
            ],
        )
        .unwrap();
    let stmt = prep.out[3].clone().unwrap();
    // The manifest's retained = [2]: the bound text (and its NUL) is pinned
    // until the statement closes.
    assert_eq!(b.pinned_bytes(), 0);
    b.call_by_name(
        "sqlite3_bind_text",
        &[
            stmt.clone(),
            Value::I32(1),
            Value::str("pinned"),
            Value::I32(-1),
            Value::Isize(0),
        ],
    )
    .unwrap();
    assert!(b.pinned_bytes() > "pinned".len(), "{}", b.pinned_bytes());
    // The handle rules: the statement is a sqlite3_stmt and dies with its connection.
    let e = b.call_by_name("sqlite3_step", from_ref(&db)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert_eq!(
        b.call_by_name("sqlite3_step", from_ref(&stmt)).unwrap().ret,
        Value::I32(100)
    );
    b.call_by_name("sqlite3_close_v2", &[db]).unwrap();
    let e = b.call_by_name("sqlite3_step", &[stmt]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert_eq!(
        b.pinned_bytes(),
        0,
        "closing the parent releases the child's pins"
    );
}

#[test]
fn bridge_from_manifest_takes_the_manifests_library_and_policy() {
    let m = Manifest::load(shipped("sqlite3.toml")).unwrap();
    let b = Bridge::from_manifest(&m).unwrap_or_else(|e| panic!("{e}"));
    let mut b = b
        .bridge_mode(ffb_loader::BridgeMode::Enabled)
        .shim(ffb_tests::shim_bin())
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.library(), "libsqlite3.so.0");
    assert_eq!(b.policy().name, m.policy_spec());
    let v = b.call_by_name("sqlite3_libversion", &[]).unwrap().ret;
    assert_eq!(v, Value::str(in_process_sqlite_version()));
    // A manifest whose policy is missing is a load_failed error naming the manifest.
    let bad = Manifest::parse(
        "[library]\nname = \"x\"\npolicy = \"missing.policy.toml\"\n",
        "/nowhere/m.toml",
    )
    .unwrap();
    let e = Bridge::from_manifest(&bad).unwrap_err();
    assert_eq!(e.kind, ErrorKind::LoadFailed);
    assert!(
        e.message
            .starts_with("/nowhere/m.toml:3:10: policy '/nowhere/missing.policy.toml'"),
        "{e}"
    );
}

/// `name(args)` on `b`, which must succeed; its return value.
fn ret(b: &mut Bridge, name: &str, args: &[Value]) -> Value {
    b.call_by_name(name, args)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .ret
}

#[test]
fn libpq_manifest_drives_a_real_postgresql() {
    let server = ffb_tests::postgres::server();
    let m = Manifest::load(shipped("libpq.toml")).unwrap();
    let socket = server.socket_dir.join(format!(".s.PGSQL.{}", server.port));
    let policy = m
        .load_policy()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_grants(&Grants {
            connect_unix: vec![socket],
            ..Grants::default()
        })
        .unwrap();
    let mut b = bridge_builder(&m.library, &[])
        .policy(policy)
        .manifest(&m)
        .unwrap()
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let conninfo = server.socket_conninfo();
    let conn = ret(&mut b, "PQconnectdb", &[Value::str(&conninfo)]);
    assert_eq!(
        ret(&mut b, "PQstatus", from_ref(&conn)),
        Value::I32(0),
        "CONNECTION_OK"
    );

    // The same query through the bridge and in process.
    let sql = "select n, n * 1.5 as half, 'row ' || n as label, \
               case when n % 2 = 0 then null else n end as odd \
               from generate_series(1, 5) as n";
    let expected = ffb_tests::postgres::Libpq::get()
        .connect(&conninfo)
        .unwrap()
        .query(sql)
        .unwrap();
    let res = ret(&mut b, "PQexec", &[conn.clone(), Value::str(sql)]);
    assert_eq!(
        ret(&mut b, "PQresultStatus", from_ref(&res)),
        Value::I32(2),
        "PGRES_TUPLES_OK"
    );
    let rows = ret(&mut b, "PQntuples", from_ref(&res));
    let cols = ret(&mut b, "PQnfields", from_ref(&res));
    assert_eq!((rows, cols), (Value::I32(5), Value::I32(4)));
    assert_eq!(
        ret(&mut b, "PQfname", &[res.clone(), Value::I32(2)]),
        Value::str("label")
    );
    let mut got = Vec::new();
    for r in 0..5 {
        let mut row = Vec::new();
        for c in 0..4 {
            let at = [res.clone(), Value::I32(r), Value::I32(c)];
            row.push(match ret(&mut b, "PQgetisnull", &at) {
                Value::I32(1) => None,
                _ => match ret(&mut b, "PQgetvalue", &at) {
                    Value::Str(bytes) => Some(String::from_utf8(bytes).unwrap()),
                    other => panic!("{other:?}"),
                },
            });
        }
        got.push(row);
    }
    assert_eq!(got, expected);

    // The server's own error, with its SQLSTATE.
    let bad = ret(
        &mut b,
        "PQexec",
        &[conn.clone(), Value::str("select * from no_such_table")],
    );
    assert_eq!(
        ret(&mut b, "PQresultStatus", from_ref(&bad)),
        Value::I32(7),
        "PGRES_FATAL_ERROR"
    );
    assert_eq!(
        ret(
            &mut b,
            "PQresultErrorField",
            &[bad.clone(), Value::I32(i32::from(b'C'))]
        ),
        Value::str("42P01")
    );

    // Closed results and connections are stale, never dangling.
    ret(&mut b, "PQclear", from_ref(&res));
    let e = b.call_by_name("PQntuples", &[res]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    let e = b.call_by_name("PQstatus", &[bad]).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::BadArgument,
        "a pgresult is not a pgconn: {e}"
    );
    ret(&mut b, "PQfinish", from_ref(&conn));
    let e = b.call_by_name("PQstatus", &[conn]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
}

/// The `out` value at `i` of a call that must succeed, beside its return.
fn out(b: &mut Bridge, name: &str, args: &[Value], i: usize) -> (Value, Value) {
    let o = b
        .call_by_name(name, args)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let v = o.out[i]
        .clone()
        .unwrap_or_else(|| panic!("{name}: no out[{i}]"));
    (o.ret, v)
}

/// The text in an `out[N]` buffer, up to its first NUL.
fn text_of(v: &Value) -> String {
    let Value::Bytes(bytes) = v else {
        panic!("{v:?}")
    };
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[test]
fn odbc_manifest_drives_unixodbc_with_the_sqlite_driver() {
    let env = ffb_tests::odbc::env();
    let dir = Scratch::new("odbc-manifest");
    let db = dir.file("t.db", "");
    let m = Manifest::load(shipped("odbc.toml")).unwrap();
    let policy = m
        .load_policy()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_grants(&Grants {
            read: vec![env.sysini.join("odbcinst.ini"), env.ini.clone()],
            write: vec![dir.path("")],
            ..Grants::default()
        })
        .unwrap();
    let mut b = bridge_builder(&m.library, &[])
        .policy(policy)
        .env("ODBCSYSINI", path_str(&env.sysini))
        .env("ODBCINI", path_str(&env.ini))
        .manifest(&m)
        .unwrap()
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    const OK: Value = Value::I16(0);
    let (r, henv) = out(&mut b, "SQLAllocEnv", &[Value::Null], 0);
    assert_eq!(r, OK);
    // SQL_ATTR_ODBC_VERSION = 200, SQL_OV_ODBC3 = 3.
    let set = [henv.clone(), Value::I32(200), Value::U64(3), Value::I32(0)];
    assert_eq!(ret(&mut b, "SQLSetEnvAttr", &set), OK);
    let (r, dbc) = out(&mut b, "SQLAllocConnect", &[henv.clone(), Value::Null], 1);
    assert_eq!(r, OK);
    let connect = [
        dbc.clone(),
        Value::U64(0),
        Value::str(ffb_tests::odbc::OdbcEnv::sqlite_connection_string(&db)),
        Value::I16(-3),
        Value::I16(1024),
        Value::I16(0),
        Value::U16(0),
    ];
    let r = ret(&mut b, "SQLDriverConnect", &connect);
    assert!(matches!(r, Value::I16(0 | 1)), "SQLDriverConnect: {r:?}");
    // SQL_HANDLE_STMT = 3.
    let alloc = [Value::I16(3), dbc.clone(), Value::Null];
    let (r, stmt) = out(&mut b, "SQLAllocHandle", &alloc, 2);
    assert_eq!(r, OK);
    let exec = [
        stmt.clone(),
        Value::str("select 6 * 7, 'h\u{e9}'"),
        Value::I32(-3),
    ];
    assert_eq!(ret(&mut b, "SQLExecDirect", &exec), OK);
    let (_, n) = out(
        &mut b,
        "SQLNumResultCols",
        &[stmt.clone(), Value::I16(0)],
        1,
    );
    assert_eq!(n, Value::I16(2));
    assert_eq!(ret(&mut b, "SQLFetch", from_ref(&stmt)), OK);
    let mut row = Vec::new();
    for col in 1..=2u16 {
        // SQL_C_CHAR = 1, into the 4096-byte out buffer.
        let get = [
            stmt.clone(),
            Value::U16(col),
            Value::I16(1),
            Value::I64(4096),
            Value::I64(0),
        ];
        let (r, buf) = out(&mut b, "SQLGetData", &get, 3);
        assert_eq!(r, OK);
        row.push(text_of(&buf));
    }
    assert_eq!(row, ["42", "h\u{e9}"]);
    assert_eq!(
        ret(&mut b, "SQLFetch", from_ref(&stmt)),
        Value::I16(100),
        "SQL_NO_DATA"
    );

    // The driver's own error, read through an untyped handle parameter.
    let bad = [
        stmt.clone(),
        Value::str("select * from no_such_table"),
        Value::I32(-3),
    ];
    assert_eq!(ret(&mut b, "SQLExecDirect", &bad), Value::I16(-1));
    let diag = [
        Value::I16(3),
        stmt.clone(),
        Value::I16(1),
        Value::I32(0),
        Value::I16(1024),
        Value::I16(0),
    ];
    let (r, message) = out(&mut b, "SQLGetDiagRec", &diag, 5);
    assert_eq!(r, OK);
    let message = text_of(&message);
    assert!(message.contains("no such table"), "{message}");

    // Kinds are checked; closed handles are stale.
    let e = b.call_by_name("SQLFetch", from_ref(&dbc)).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::BadArgument,
        "a connection is not a statement: {e}"
    );
    assert_eq!(
        ret(&mut b, "SQLFreeHandle", &[Value::I16(3), stmt.clone()]),
        OK
    );
    let e = b.call_by_name("SQLFetch", &[stmt]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert_eq!(ret(&mut b, "SQLDisconnect", from_ref(&dbc)), OK);
    assert_eq!(ret(&mut b, "SQLFreeConnect", from_ref(&dbc)), OK);
    assert_eq!(ret(&mut b, "SQLFreeEnv", &[henv]), OK);
    let e = b.call_by_name("SQLDisconnect", &[dbc]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
}

// ---------------------------------------------------------------------------
// ffb describe
// ---------------------------------------------------------------------------

#[test]
fn describe_text_shows_ownership_closers_and_both_effect_sets() {
    let m = path_str(&shipped("sqlite3.toml")).to_string();
    let r = ffb_run(&["describe", "--manifest", &m]);
    r.expect_code(0);
    assert_eq!(r.stderr, "", "{r:#?}");
    let text = &r.stdout;
    for needle in [
        "library:  libsqlite3.so.0\n",
        "sqlite3.policy.toml (file)\n",
        "  sqlite3_stmt  closed by sqlite3_finalize; closing its sqlite3 closes it too\n",
        "  sqlite3_prepare_v2(handle<sqlite3>, cstr, i32, *handle<sqlite3_stmt>, u64) -> i32\n",
        "    arg3 *handle<sqlite3_stmt>: borrowed; hands out a sqlite3_stmt handle, closed by sqlite3_finalize or with its sqlite3\n",
        "    arg2 cstr: retained: pinned in the arena until its sqlite3_stmt handle is closed\n",
        "    arg0 handle<sqlite3>: takes a sqlite3 handle and closes it, with its sqlite3_stmt handles\n",
        "    declared: alloc + mutates(args=[0, 3])\n",
        "    enforced: io + nondet + mutates(all) + throws(any)\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // One entry per declared function, each with both effect sets.
    let manifest = Manifest::load(shipped("sqlite3.toml")).unwrap();
    assert_eq!(
        text.matches("    declared: ").count(),
        manifest.functions.len()
    );
    assert_eq!(
        text.matches("    enforced: ").count(),
        manifest.functions.len()
    );
}

#[test]
fn describe_json_lists_every_function_with_declared_and_enforced_effects() {
    let m = path_str(&shipped("sqlite3.toml")).to_string();
    let r = ffb_run(&["describe", "--manifest", &m, "--json"]);
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["library"], "libsqlite3.so.0");
    assert!(
        j["policy"]["file"]
            .as_str()
            .unwrap()
            .ends_with("manifests/sqlite3.policy.toml"),
        "{j}"
    );
    assert_eq!(
        j["handles"],
        json!([
            {"kind": "sqlite3", "close": "sqlite3_close_v2", "parent": null},
            {"kind": "sqlite3_stmt", "close": "sqlite3_finalize", "parent": "sqlite3"},
        ])
    );
    let functions = j["functions"].as_array().unwrap();
    let manifest = Manifest::load(shipped("sqlite3.toml")).unwrap();
    assert_eq!(functions.len(), manifest.functions.len());
    for (f, decl) in functions.iter().zip(&manifest.functions) {
        assert_eq!(f["name"], decl.name());
        assert_eq!(f["signature"], decl.signature.to_string());
        assert_eq!(f["declared_effects"], decl.declared_effects.to_string());
        assert_eq!(
            f["enforced_effects"],
            "io + nondet + mutates(all) + throws(any)"
        );
    }
    let open = &functions[0];
    assert_eq!(open["name"], "sqlite3_open_v2");
    assert_eq!(
        open["args"][1],
        json!({"position": 1, "type": "*handle<sqlite3>", "ownership": "borrowed",
               "handle": {"kind": "sqlite3", "direction": "out",
                          "closed_by": "sqlite3_close_v2", "parent": null}})
    );
    assert_eq!(open["args"][2]["ownership"], Json::Null);
    let bind = functions
        .iter()
        .find(|f| f["name"] == "sqlite3_bind_text")
        .unwrap();
    assert_eq!(bind["args"][2]["ownership"], "retained");
    let libpq = ffb_run(&[
        "describe",
        "--json",
        "--manifest",
        path_str(&shipped("libpq.toml")),
    ]);
    libpq.expect_code(0);
    let exec = libpq.json()["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "PQexec")
        .cloned()
        .unwrap();
    assert_eq!(
        exec["returns"],
        json!({"type": "handle<pgresult>", "handle": {"kind": "pgresult", "direction": "out",
               "closed_by": "PQclear", "parent": null}})
    );
}

// ---------------------------------------------------------------------------
// ffb call and ffb session by name
// ---------------------------------------------------------------------------

/// A copy of the shipped sqlite3 manifest in `dir` whose policy is `policy`.
fn sqlite_manifest_with_policy(dir: &Scratch, policy: &str) -> PathBuf {
    let text = std::fs::read_to_string(shipped("sqlite3.toml")).unwrap();
    let text = text.replace(
        "policy = \"sqlite3.policy.toml\"",
        &format!("policy = \"{policy}\""),
    );
    assert!(text.contains(&format!("policy = \"{policy}\"")));
    dir.file("sqlite3.toml", text)
}

#[test]
fn call_by_name_prints_the_real_sqlite_version() {
    let version = in_process_sqlite_version();
    let m = path_str(&shipped("sqlite3.toml")).to_string();
    let r = ffb_run(&[
        "call",
        "--bridge-mode",
        "--manifest",
        &m,
        "sqlite3_libversion",
    ]);
    r.expect_code(0);
    assert_eq!(
        r.one_stdout_line(),
        format!("sqlite3_libversion = \"{version}\"")
    );
    let r = ffb_run(&[
        "call",
        "--bridge-mode",
        "--json",
        "--manifest",
        &m,
        "sqlite3_libversion",
    ]);
    r.expect_code(0);
    assert_eq!(r.json()["ret"], version);
}

#[test]
fn call_by_name_refuses_unknown_functions_and_wrong_counts_before_spawning() {
    let m = path_str(&shipped("sqlite3.toml")).to_string();
    let r = refused(
        "unknown function",
        &[
            "call",
            "--bridge-mode",
            "--manifest",
            &m,
            "sqlite3_libversoin",
        ],
        None,
    );
    assert_eq!(
        r.one_stderr_line(),
        format!("ffb: bad_argument: 'sqlite3_libversoin' is not declared in {m} (did you mean 'sqlite3_libversion'?)")
    );
    let r = refused(
        "wrong count",
        &[
            "call",
            "--bridge-mode",
            "--manifest",
            &m,
            "sqlite3_libversion",
            "1",
        ],
        None,
    );
    assert!(r.one_stderr_line().contains("takes 0 arguments"), "{r:#?}");
    let r = refused(
        "no function",
        &["call", "--bridge-mode", "--manifest", &m],
        None,
    );
    assert!(
        r.one_stderr_line()
            .contains("give the function's name first"),
        "{r:#?}"
    );
    let r = ffb_run(&[
        "call",
        "--bridge-mode",
        "--manifest",
        &m,
        "--sig",
        "f()",
        "f",
    ]);
    r.expect_code(2);
}

/// A running `ffb session`, fed and read one line at a time.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Session {
    fn start(args: &[&str]) -> Session {
        let mut cmd = ffb();
        cmd.arg("session")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("starting ffb session");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            stdin: child.stdin.take(),
            lines,
            child,
        }
    }

    /// Sends one request and returns its one JSON reply.
    fn send(&mut self, request: Json) -> Json {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{request}").expect("writing to the session");
        stdin.flush().expect("flushing");
        let reply = self
            .lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("no reply to {request}: {e}"));
        let j = single_json_object(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
        assert_eq!(j["id"], request["id"], "{j}");
        j
    }

    /// `{"fn": name, "args": args}`, which must succeed; returns the reply.
    fn ok(&mut self, name: &str, args: Json) -> Json {
        let j = self.send(json!({"id": name, "fn": name, "args": args}));
        assert_eq!(j["ok"], true, "{name}: {j}");
        j
    }

    /// `{"fn": name, "args": args}`, which must fail; returns the error.
    fn err(&mut self, name: &str, args: Json) -> Json {
        let j = self.send(json!({"id": name, "fn": name, "args": args}));
        assert_eq!(j["ok"], false, "{name}: {j}");
        j["error"].clone()
    }

    fn finish(mut self) -> i32 {
        drop(self.stdin.take());
        let status = wait_with_deadline(&mut self.child, "ffb session after EOF");
        status.code().expect("exited")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn session_by_name_opens_prepares_steps_and_refuses_closed_and_mistyped_handles() {
    let m = path_str(&shipped("sqlite3.toml")).to_string();
    let mut s = Session::start(&["--bridge-mode", "--manifest", &m]);
    const READWRITE_CREATE: i32 = 0x2 | 0x4;
    let open = s.ok(
        "sqlite3_open_v2",
        json!([":memory:", null, READWRITE_CREATE, 0]),
    );
    assert_eq!(open["ret"], 0, "{open}");
    let db = open["out"][1].clone();
    assert!(db.is_string(), "{open}");

    let sql = "select 40 + 2, 'h\u{e9}llo', 2.5, null";
    let prep = s.ok("sqlite3_prepare_v2", json!([db, sql, -1, null, 0]));
    assert_eq!(prep["ret"], 0, "{prep}");
    let stmt = prep["out"][3].clone();
    assert_eq!(s.ok("sqlite3_column_count", json!([stmt]))["ret"], 4);
    assert_eq!(
        s.ok("sqlite3_step", json!([stmt]))["ret"],
        100,
        "SQLITE_ROW"
    );
    assert_eq!(s.ok("sqlite3_column_int64", json!([stmt, 0]))["ret"], 42);
    assert_eq!(
        s.ok("sqlite3_column_text", json!([stmt, 1]))["ret"],
        "h\u{e9}llo"
    );
    assert_eq!(s.ok("sqlite3_column_double", json!([stmt, 2]))["ret"], 2.5);
    assert_eq!(
        s.ok("sqlite3_column_type", json!([stmt, 3]))["ret"],
        5,
        "SQLITE_NULL"
    );
    assert_eq!(
        s.ok("sqlite3_step", json!([stmt]))["ret"],
        101,
        "SQLITE_DONE"
    );

    // A connection where a statement is declared: bad_argument, nothing called.
    let e = s.err("sqlite3_step", json!([db]));
    assert_eq!(e["kind"], "bad_argument", "{e}");
    // A closed statement: stale_handle, not a use-after-free.
    assert_eq!(s.ok("sqlite3_finalize", json!([stmt]))["ret"], 0);
    let e = s.err("sqlite3_step", json!([stmt]));
    assert_eq!(e["kind"], "stale_handle", "{e}");

    // Bound text that SQLite keeps (SQLITE_STATIC = 0): retained, so pinned.
    let stmt2 = s.ok(
        "sqlite3_prepare_v2",
        json!([db, "select ?1 || '!'", -1, null, 0]),
    )["out"][3]
        .clone();
    assert_eq!(
        s.ok("sqlite3_bind_text", json!([stmt2, 1, "kept", -1, 0]))["ret"],
        0
    );
    // Another call's buffers must not overwrite the pinned text.
    s.ok("sqlite3_errmsg", json!([db]));
    assert_eq!(s.ok("sqlite3_step", json!([stmt2]))["ret"], 100);
    assert_eq!(
        s.ok("sqlite3_column_text", json!([stmt2, 0]))["ret"],
        "kept!"
    );

    // "sig" requests still work beside "fn" ones.
    let j = s.send(json!({"id": "sig", "sig": "sqlite3_libversion() -> cstr", "args": []}));
    assert_eq!(j["ret"], in_process_sqlite_version(), "{j}");
    // ... and "fn" names only what the manifest declares.
    let e = s.err("sqlite3_open", json!([]));
    assert!(
        e["message"].as_str().unwrap().contains("did you mean"),
        "{e}"
    );

    // Closing the connection closes its statements.
    assert_eq!(s.ok("sqlite3_close_v2", json!([db]))["ret"], 0);
    let e = s.err("sqlite3_step", json!([stmt2]));
    assert_eq!(e["kind"], "stale_handle", "{e}");
    let e = s.err("sqlite3_errmsg", json!([db]));
    assert_eq!(e["kind"], "stale_handle", "{e}");
    assert_eq!(s.finish(), 0);
}

#[test]
fn fn_requests_need_a_manifest() {
    let mut s = Session::start(&["--bridge-mode", "--lib", "libsqlite3.so.0"]);
    let e = s.err("sqlite3_libversion", json!([]));
    assert_eq!(e["kind"], "bad_argument");
    assert!(e["message"].as_str().unwrap().contains("--manifest"), "{e}");
    let j = s.send(json!({"id": 1, "fn": "f", "sig": "f()", "args": []}));
    assert!(
        j["error"]["message"].as_str().unwrap().contains("not both"),
        "{j}"
    );
    assert_eq!(s.finish(), 0);
}

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

const HEAD: &str = "[library]\nname = \"libsqlite3.so.0\"\npolicy = \"pure\"\n";

/// Every kind of mistake, as (what, the manifest's text, LINE:COL: message).
fn mistakes() -> Vec<(&'static str, String, &'static str)> {
    let f = |rest: &str| format!("{HEAD}{rest}");
    let close = "[functions.c]\nsig = \"c(handle<db>) -> i32\"\n";
    vec![
        ("empty", "\n".into(), "1:1: empty manifest"),
        ("toml syntax", "[library\n".into(), "1:9: "),
        ("no library", "[functions.f]\nsig = \"f()\"\n".into(), "1:1: missing field `library`"),
        ("unknown key", f("nmae = \"x\"\n"), "4:1: unknown key 'nmae' (did you mean 'name'?)"),
        ("unknown table", f("[function.f]\nsig = \"f()\"\n"), "4:2: unknown key 'function' (did you mean 'functions'?)"),
        ("wrong type", f("[functions.f]\nsig = 1\n"), "5:7: "),
        ("bad signature", f("[functions.f]\nsig = \"f(int)\"\n"), "5:10: sig: "),
        ("name mismatch", f("[functions.f]\nsig = \"g()\"\n"), "5:7: sig declares 'g' but the table is [functions.f]"),
        ("bad effects", f("[functions.f]\nsig = \"f()\"\neffects = \"io + pure\"\n"), "6:17: effects: 'pure' must stand alone"),
        ("mutates out of range", f("[functions.f]\nsig = \"f()\"\neffects = \"mutates(args=[0])\"\n"), "6:11: effects: mutates argument 0"),
        ("retained out of range", f("[functions.f]\nsig = \"f(cstr)\"\nretained = [1]\n"), "6:13: retained position 1 is out of range"),
        ("retained not a buffer", f("[functions.f]\nsig = \"f(i32)\"\nretained = [0]\n"), "6:13: retained position 0 is i32"),
        ("undeclared kind", f(close), "5:17: unknown handle kind 'db' (declare it in [handles.NAME])"),
        ("unknown closer", f(&format!("{close}[handles.db]\nclose = \"cc\"\n")), "7:9: unknown function 'cc' (did you mean 'c'?)"),
        ("closer without the kind", f("[functions.c]\nsig = \"c(handle<db>)\"\n[functions.d]\nsig = \"d()\"\n[handles.db]\nclose = \"d\"\n"), "9:9: close function 'd' takes no handle<db> argument"),
        ("unknown parent", f(&format!("{close}[handles.db]\nclose = \"c\"\nparent = \"conn\"\n")), "8:10: unknown handle kind 'conn'"),
        ("own parent", f(&format!("{close}[handles.db]\nclose = \"c\"\nparent = \"db\"\n")), "8:10: handle kind 'db' cannot be its own parent"),
        ("parent cycle", f("[functions.c]\nsig = \"c(handle<a>, handle<b>)\"\n[handles.a]\nclose = \"c\"\nparent = \"b\"\n[handles.b]\nclose = \"c\"\nparent = \"a\"\n"), "11:10: handle parents form a cycle: a -> b -> a"),
        ("missing policy file", "[library]\nname = \"x\"\npolicy = \"nope.policy.toml\"\n[functions.f]\nsig = \"f()\"\n".to_string(), "3:10: policy '"),
    ]
}

#[test]
fn every_manifest_mistake_is_one_located_line_exit_2_and_spawns_nothing() {
    let dir = Scratch::new("manifests");
    for (what, text, expected) in mistakes() {
        let path = dir.file(&format!("{}.toml", what.replace(' ', "-")), &text);
        let p = path_str(&path).to_string();
        let prefix = format!("ffb: {p}:{expected}");
        for args in [
            vec!["call", "--bridge-mode", "--manifest", &p, "f"],
            vec!["session", "--bridge-mode", "--manifest", &p],
            vec!["describe", "--manifest", &p],
            vec!["describe", "--json", "--manifest", &p],
            vec!["call", "--bridge-mode", "--json", "--manifest", &p, "f"],
        ] {
            let case = format!("{what}: ffb {}", args.join(" "));
            let r = refused(&case, &args, Some(b"{\"id\":1,\"fn\":\"f\"}\n"));
            if args[0] == "session" || args.contains(&"--json") {
                // JSON output (a session's always) reports on stdout, as for
                // a bad policy: one load_failed object.
                let j = r.json_for(&case);
                assert_eq!(j["error"]["kind"], "load_failed", "{case}: {j}");
                let message = j["error"]["message"].as_str().unwrap().to_string();
                assert!(
                    format!("ffb: {message}").starts_with(&prefix),
                    "{case}: {message:?} should start with {prefix:?}"
                );
            } else {
                let line = r.one_stderr_line_for(&case);
                assert!(
                    line.starts_with(&prefix),
                    "{case}: {line:?} should start with {prefix:?}"
                );
                assert_eq!(r.stdout, "", "{case}");
            }
        }
    }
    // A manifest that does not exist names itself, whole-file.
    let missing = path_str(&dir.path("missing.toml")).to_string();
    let r = refused("missing", &["describe", "--manifest", &missing], None);
    assert_eq!(
        r.one_stderr_line(),
        format!(
            "ffb: {missing}: cannot read the manifest: No such file or directory"
        )
    );
}

#[test]
fn a_policy_file_error_names_the_policy_file() {
    let dir = Scratch::new("manifest-policy");
    dir.file("bad.policy.toml", "[seccomp]\nallow = [\"getpdi\"]\n");
    let m = sqlite_manifest_with_policy(&dir, "bad.policy.toml");
    let p = path_str(&m).to_string();
    let policy = path_str(&dir.path("bad.policy.toml")).to_string();
    for args in [
        vec!["describe", "--manifest", &p],
        vec![
            "call",
            "--bridge-mode",
            "--manifest",
            &p,
            "sqlite3_libversion",
        ],
    ] {
        let r = refused("bad policy", &args, None);
        assert_eq!(
            r.one_stderr_line(),
            format!("ffb: {policy}:2:10: unknown syscall 'getpdi' (did you mean 'getpid'?)")
        );
    }
}
