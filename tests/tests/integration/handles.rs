//! Handles that cannot be forged or outlive their object, driven through the
//! real `libsqlite3.so.0` (and libc's allocator), through the Rust API and
//! through `ffb session`.
//!
//! * A closed token (by its close function, or with its parent) is
//!   `stale_handle` before anything is sent: `prepare`, `finalize`, `step`
//!   on the same token no longer reaches freed memory.
//! * A token of one kind where another is declared is `bad_argument`.
//! * A close function earlier in a batch makes later uses stale before the
//!   batch is sent.
//! * A retained buffer survives later calls that overwrite the scratch area,
//!   and is released when its handle closes.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;

use ffb_loader::{Bridge, ErrorKind, Value};
use ffb_tests::bridge::handle_of;
use ffb_tests::bridge_builder;
use ffb_tests::cli::{ffb, path_str, read_all, wait_with_deadline, Scratch, DEADLINE};
use serde_json::{json, Value as Json};

const SQLITE: &str = "libsqlite3.so.0";
const SQLITE_ROW: i32 = 100;
const SQLITE_DONE: i32 = 101;
/// SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE.
const OPEN_RW_CREATE: i32 = 0x2 | 0x4;

const DECLS: &[&str] = &[
    "sqlite3_open_v2(cstr, *handle<sqlite3>, i32, u64) -> i32",
    "sqlite3_close_v2(handle<sqlite3>) -> i32",
    "sqlite3_errmsg(handle<sqlite3>) -> cstr",
    "sqlite3_prepare_v2(handle<sqlite3>, cstr, i32, *handle<stmt>, u64) -> i32",
    "sqlite3_step(handle<stmt>) -> i32",
    "sqlite3_reset(handle<stmt>) -> i32",
    "sqlite3_finalize(handle<stmt>) -> i32",
    "sqlite3_bind_text(handle<stmt>, i32, cstr, i32, isize) -> i32",
    "sqlite3_column_text(handle<stmt>, i32) -> cstr",
    "sqlite3_sql(handle<stmt>) -> cstr",
];

/// A bridge to libsqlite3 with the close and parent rules of its handles.
fn sqlite() -> Bridge {
    sqlite_with(|b| b)
}

/// [`sqlite`], with more configuration.
fn sqlite_with(
    more: impl FnOnce(ffb_loader::BridgeBuilder) -> ffb_loader::BridgeBuilder,
) -> Bridge {
    more(
        bridge_builder(SQLITE, DECLS)
            .handle_kind("sqlite3", Some("sqlite3_close_v2"), None)
            .handle_kind("stmt", Some("sqlite3_finalize"), Some("sqlite3")),
    )
    .load()
    .unwrap_or_else(|e| panic!("loading {SQLITE}: {e}"))
}

fn i32_of(v: &Value) -> i32 {
    match v {
        Value::I32(i) => *i,
        other => panic!("expected an i32, got {other:?}"),
    }
}

/// Opens an in-memory database; its token.
fn open(b: &mut Bridge) -> Value {
    let out = b
        .call_by_name(
            "sqlite3_open_v2",
            &[
                Value::str(":memory:"),
                Value::Null,
                Value::I32(OPEN_RW_CREATE),
                Value::U64(0),
            ],
        )
        .expect("sqlite3_open_v2");
    assert_eq!(i32_of(&out.ret), 0, "sqlite3_open_v2: {out:?}");
    let db = out.out[1].clone().expect("the *handle out-value");
    handle_of(&db);
    db
}

/// Prepares `sql` on `db`; the statement's token.
fn prepare(b: &mut Bridge, db: &Value, sql: &str) -> Value {
    let out = b
        .call_by_name(
            "sqlite3_prepare_v2",
            &[
                db.clone(),
                Value::str(sql),
                Value::I32(-1),
                Value::Null,
                Value::U64(0),
            ],
        )
        .expect("sqlite3_prepare_v2");
    assert_eq!(i32_of(&out.ret), 0, "prepare {sql:?}: {out:?}");
    let stmt = out.out[3].clone().expect("the *handle out-value");
    handle_of(&stmt);
    stmt
}

fn call_i32(b: &mut Bridge, name: &str, args: &[Value]) -> i32 {
    i32_of(
        &b.call_by_name(name, args)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .ret,
    )
}

#[test]
fn a_finalized_statement_is_stale_not_a_use_after_free() {
    let mut b = sqlite();
    let db = open(&mut b);
    let stmt = prepare(&mut b, &db, "select 1");
    assert_eq!(call_i32(&mut b, "sqlite3_finalize", &[stmt.clone()]), 0);
    let pid = b.helper_pid();
    for f in ["sqlite3_step", "sqlite3_finalize", "sqlite3_reset"] {
        let e = b.call_by_name(f, &[stmt.clone()]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::StaleHandle, "{f}: {e}");
        assert!(
            e.message.contains("argument 1:")
                && e.message.contains("(stmt) was closed by sqlite3_finalize"),
            "{f}: {e}"
        );
    }
    // Nothing was sent: the same helper serves on, the connection is fine.
    assert_eq!(b.helper_pid(), pid);
    assert_eq!(b.respawns(), 0);
    let again = prepare(&mut b, &db, "select 2");
    assert_ne!(again, stmt, "a new statement gets a new token");
    assert_eq!(
        call_i32(&mut b, "sqlite3_step", &[again.clone()]),
        SQLITE_ROW
    );
    assert_eq!(
        b.call_by_name("sqlite3_column_text", &[again, Value::I32(0)])
            .unwrap()
            .ret,
        Value::str("2")
    );
}

#[test]
fn a_statement_is_not_a_connection() {
    let mut b = sqlite();
    let db = open(&mut b);
    let stmt = prepare(&mut b, &db, "select 1");
    let pid = b.helper_pid();
    // sqlite3_errmsg(stmt) would read a statement as a connection.
    let e = b
        .call_by_name("sqlite3_errmsg", &[stmt.clone()])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert_eq!(
        e.message,
        format!("argument 1: {stmt} is a stmt handle, but handle<sqlite3> is declared")
    );
    // And the other way round, at another position.
    let e = b
        .call_by_name(
            "sqlite3_prepare_v2",
            &[
                stmt.clone(),
                Value::str("select 1"),
                Value::I32(-1),
                Value::Null,
                Value::U64(0),
            ],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert!(
        e.message.starts_with("argument 1:") && e.message.contains("handle<sqlite3>"),
        "{e}"
    );
    let e = b
        .call_by_name(
            "sqlite3_bind_text",
            &[
                db.clone(),
                Value::I32(1),
                Value::str("x"),
                Value::I32(-1),
                Value::Isize(-1),
            ],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert!(
        e.message
            .contains("is a sqlite3 handle, but handle<stmt> is declared"),
        "{e}"
    );
    // A handle token given for a handle<stmt> *out* slot is checked too.
    let e = b
        .call_by_name(
            "sqlite3_prepare_v2",
            &[
                db.clone(),
                Value::str("select 1"),
                Value::I32(-1),
                db.clone(),
                Value::U64(0),
            ],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert!(e.message.starts_with("argument 4:"), "{e}");
    // Nothing was sent, and both still work as what they are.
    assert_eq!(b.helper_pid(), pid);
    assert_eq!(call_i32(&mut b, "sqlite3_step", &[stmt]), SQLITE_ROW);
    assert_eq!(
        b.call_by_name("sqlite3_errmsg", &[db]).unwrap().ret,
        Value::str("another row available")
    );
}

#[test]
fn closing_a_connection_closes_its_statements() {
    let mut b = sqlite();
    let db = open(&mut b);
    let other = open(&mut b);
    let s1 = prepare(&mut b, &db, "select 1");
    let s2 = prepare(&mut b, &db, "select 2");
    let elsewhere = prepare(&mut b, &other, "select 3");
    assert_eq!(call_i32(&mut b, "sqlite3_finalize", &[s1.clone()]), 0);
    // close_v2 with a statement still open makes a zombie connection; the
    // statement dies with it all the same.
    assert_eq!(call_i32(&mut b, "sqlite3_close_v2", &[db.clone()]), 0);
    let e = b.call_by_name("sqlite3_step", &[s2.clone()]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert_eq!(
        e.message,
        format!("argument 1: {s2} (stmt) was closed with its parent {db}")
    );
    let e = b.call_by_name("sqlite3_step", &[s1]).unwrap_err();
    assert!(e.message.contains("was closed by sqlite3_finalize"), "{e}");
    let e = b.call_by_name("sqlite3_errmsg", &[db.clone()]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert!(
        e.message
            .contains("(sqlite3) was closed by sqlite3_close_v2"),
        "{e}"
    );
    // The other connection and its statement are untouched.
    assert_eq!(
        call_i32(&mut b, "sqlite3_step", &[elsewhere.clone()]),
        SQLITE_ROW
    );
    assert_eq!(call_i32(&mut b, "sqlite3_finalize", &[elsewhere]), 0);
    assert_eq!(call_i32(&mut b, "sqlite3_close_v2", &[other]), 0);
    assert_eq!(b.respawns(), 0);
}

#[test]
fn a_new_object_at_a_freed_address_gets_a_new_token() {
    // glibc hands a freed chunk straight back to the next malloc of its
    // size, so the second buffer sits where the first was.
    let mut c = bridge_builder(
        "libc.so.6",
        &[
            "malloc(usize) -> handle<buf>",
            "free(handle<buf>)",
            "memset(handle<buf>, i32, usize) -> handle",
        ],
    )
    .handle_kind("buf", Some("free"), None)
    .load()
    .expect("libc");
    let first = c.call_by_name("malloc", &[Value::Usize(48)]).unwrap().ret;
    c.call_by_name("free", &[first.clone()]).unwrap();
    let second = c.call_by_name("malloc", &[Value::Usize(48)]).unwrap().ret;
    // memset returns its argument: the same pointer maps to the same token,
    // so this shows the two buffers' addresses are equal or not.
    let back = c
        .call_by_name("memset", &[second.clone(), Value::I32(0), Value::Usize(48)])
        .unwrap()
        .ret;
    assert_eq!(back, second, "the live buffer keeps its token");
    assert_ne!(
        first, second,
        "a reused address must not revive the freed token"
    );
    let e = c
        .call_by_name("memset", &[first.clone(), Value::I32(0), Value::Usize(48)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    // A double free never reaches the allocator (which would abort).
    let e = c.call_by_name("free", &[first]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    c.call_by_name("free", &[second]).unwrap();
    assert_eq!(c.respawns(), 0);
}

#[test]
fn a_close_earlier_in_a_batch_makes_later_uses_stale_before_sending() {
    let mut b = sqlite();
    let db = open(&mut b);
    let stmt = prepare(&mut b, &db, "select 1");
    let finalize = b.function("sqlite3_finalize").unwrap();
    let step = b.function("sqlite3_step").unwrap();
    let close = b.function("sqlite3_close_v2").unwrap();
    let one = [stmt.clone()];
    let failure = b.call_batch(&[(finalize, &one), (step, &one)]).unwrap_err();
    assert_eq!(
        (failure.index, failure.completed.len()),
        (1, 0),
        "{failure}"
    );
    assert_eq!(failure.error.kind, ErrorKind::StaleHandle, "{failure}");
    assert!(
        failure
            .error
            .message
            .contains("is closed by a call earlier in this batch"),
        "{failure}"
    );
    // Closing the parent earlier in the batch dooms the child too.
    let conn = [db.clone()];
    let failure = b.call_batch(&[(close, &conn), (step, &one)]).unwrap_err();
    assert_eq!(
        (failure.index, failure.error.kind.clone()),
        (1, ErrorKind::StaleHandle)
    );
    // Nothing of either batch ran: the statement and connection still work.
    assert_eq!(
        call_i32(&mut b, "sqlite3_step", &[stmt.clone()]),
        SQLITE_ROW
    );
    // A batch that only closes at its end runs, and closes for real.
    let outs = b.call_batch(&[(step, &one), (finalize, &one)]).unwrap();
    assert_eq!(outs[0].ret, Value::I32(SQLITE_DONE));
    let e = b.call_by_name("sqlite3_step", &[stmt]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert_eq!(call_i32(&mut b, "sqlite3_close_v2", &[db]), 0);
}

/// Binds `text` with SQLITE_STATIC to `select ?1`, overwrites the scratch
/// area with a large, different argument, and returns what the statement
/// then reads back.
fn bind_static_then_overwrite(b: &mut Bridge, db: &Value, stmt: &Value, text: &str) -> Value {
    let rc = call_i32(
        b,
        "sqlite3_bind_text",
        &[
            stmt.clone(),
            Value::I32(1),
            Value::str(text),
            Value::I32(-1),
            Value::Isize(0),
        ],
    );
    assert_eq!(rc, 0, "sqlite3_bind_text");
    // The next calls lay their own (larger) buffers over the scratch area.
    let big = format!("select '{}'", "Z".repeat(8 * text.len()));
    let other = prepare(b, db, &big);
    assert_eq!(call_i32(b, "sqlite3_finalize", &[other]), 0);
    assert_eq!(call_i32(b, "sqlite3_step", &[stmt.clone()]), SQLITE_ROW);
    b.call_by_name("sqlite3_column_text", &[stmt.clone(), Value::I32(0)])
        .unwrap()
        .ret
}

#[test]
fn a_retained_buffer_outlives_the_call_until_its_handle_closes() {
    let text = "the text SQLite keeps a pointer to, bound with SQLITE_STATIC";
    let mut b = sqlite_with(|b| b.retain("sqlite3_bind_text", 2));
    let db = open(&mut b);
    let stmt = prepare(&mut b, &db, "select ?1");
    assert_eq!(b.pinned_bytes(), 0);
    let read = bind_static_then_overwrite(&mut b, &db, &stmt, text);
    assert_eq!(read, Value::str(text));
    let pinned = b.pinned_bytes();
    assert!(pinned > text.len(), "{pinned} bytes pinned");
    // A reset keeps the binding (and so the pin); only finalize lets go.
    assert_eq!(call_i32(&mut b, "sqlite3_reset", &[stmt.clone()]), 0);
    assert_eq!(b.pinned_bytes(), pinned);
    assert_eq!(call_i32(&mut b, "sqlite3_finalize", &[stmt]), 0);
    assert_eq!(b.pinned_bytes(), 0);

    // Bound with SQLITE_TRANSIENT, SQLite copies the text: the caller may
    // release the pin at once, and the statement still reads its copy.
    let stmt = prepare(&mut b, &db, "select ?1");
    let rc = call_i32(
        &mut b,
        "sqlite3_bind_text",
        &[
            stmt.clone(),
            Value::I32(1),
            Value::str(text),
            Value::I32(-1),
            Value::Isize(-1),
        ],
    );
    assert_eq!(rc, 0);
    assert_eq!(b.release_pins(&stmt).unwrap(), pinned);
    assert_eq!(b.pinned_bytes(), 0);
    assert_eq!(
        call_i32(&mut b, "sqlite3_step", &[stmt.clone()]),
        SQLITE_ROW
    );
    assert_eq!(
        b.call_by_name("sqlite3_column_text", &[stmt.clone(), Value::I32(0)])
            .unwrap()
            .ret,
        Value::str(text)
    );
    assert_eq!(call_i32(&mut b, "sqlite3_finalize", &[stmt.clone()]), 0);
    assert_eq!(
        b.release_pins(&stmt).unwrap_err().kind,
        ErrorKind::StaleHandle
    );

    // Without the retain mark the same sequence reads what the later call
    // left in the scratch area: the pin is what keeps the text.
    let mut plain = sqlite();
    let db = open(&mut plain);
    let stmt = prepare(&mut plain, &db, "select ?1");
    let read = bind_static_then_overwrite(&mut plain, &db, &stmt, text);
    assert_ne!(
        read,
        Value::str(text),
        "control: the scratch area was overwritten"
    );
    assert_eq!(plain.pinned_bytes(), 0);
}

#[test]
fn pins_are_bounded_and_released_with_their_connection() {
    let mut b = sqlite_with(|b| b.retain("sqlite3_bind_text", 2).pinned_limit(4096));
    let db = open(&mut b);
    let s1 = prepare(&mut b, &db, "select ?1");
    let s2 = prepare(&mut b, &db, "select ?1");
    let bind = |b: &mut Bridge, stmt: &Value, len: usize| {
        b.call_by_name(
            "sqlite3_bind_text",
            &[
                stmt.clone(),
                Value::I32(1),
                Value::str("p".repeat(len)),
                Value::I32(-1),
                Value::Isize(0),
            ],
        )
    };
    assert_eq!(bind(&mut b, &s1, 3000).unwrap().ret, Value::I32(0));
    let pinned = b.pinned_bytes();
    let pid = b.helper_pid();
    let e = bind(&mut b, &s2, 3000).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceLimit, "{e}");
    assert!(
        e.message.contains("argument 3:") && e.message.contains("pinned_limit"),
        "{e}"
    );
    // Refused before sending: same helper, nothing more pinned.
    assert_eq!((b.helper_pid(), b.pinned_bytes()), (pid, pinned));
    // The statements' pins go when their connection is closed.
    assert_eq!(bind(&mut b, &s2, 500).unwrap().ret, Value::I32(0));
    assert!(b.pinned_bytes() > pinned);
    assert_eq!(call_i32(&mut b, "sqlite3_close_v2", &[db]), 0);
    assert_eq!(b.pinned_bytes(), 0);
    let e = bind(&mut b, &s1, 1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
}

#[test]
fn rules_that_cannot_apply_are_refused_at_load() {
    let e = bridge_builder(SQLITE, DECLS)
        .handle_kind("stmt", Some("sqlite3_errmsg"), None)
        .load()
        .unwrap_err();
    // errmsg takes a handle<sqlite3>, not one it could close as a stmt...
    // ...but it has no untyped handle either.
    assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
    let e = bridge_builder(SQLITE, DECLS)
        .retain("sqlite3_bind_text", 1)
        .load()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
    assert!(e.message.contains("only cstr and bytes"), "{e}");
    let e = bridge_builder(SQLITE, DECLS)
        .retain("sqlite3_nonesuch", 0)
        .load()
        .unwrap_err();
    assert!(e.message.contains("not declared"), "{e}");
    // At run time, on a live bridge, a rule takes effect for what follows.
    let mut b = bridge_builder(SQLITE, DECLS).load().unwrap();
    let db = open(&mut b);
    let stmt = prepare(&mut b, &db, "select 1");
    b.handle_kind("stmt", Some("sqlite3_finalize"), Some("sqlite3"))
        .unwrap();
    assert!(b.handle_kind("stmt", Some("sqlite3_reset"), None).is_err());
    assert_eq!(call_i32(&mut b, "sqlite3_finalize", &[stmt.clone()]), 0);
    assert_eq!(
        b.call_by_name("sqlite3_step", &[stmt]).unwrap_err().kind,
        ErrorKind::StaleHandle
    );
}

/// The session repro from the issue, as a user types it: prepare,
/// finalize, step on the same token gives `stale_handle`, not SIGSEGV; and
/// a statement where a connection is declared is `bad_argument`.
#[test]
fn session_gives_stale_handle_and_bad_argument_not_a_crash() {
    let dir = Scratch::new("handles-session");
    let mut manifest = String::from(
        "[library]\nname = \"libsqlite3.so.0\"\npolicy = \"pure\"\n\n\
         [handles.sqlite3]\nclose = \"sqlite3_close_v2\"\n\n\
         [handles.stmt]\nclose = \"sqlite3_finalize\"\nparent = \"sqlite3\"\n",
    );
    for sig in DECLS {
        let name = &sig[..sig.find('(').unwrap()];
        manifest.push_str(&format!("\n[functions.{name}]\nsig = \"{sig}\"\n"));
    }
    let manifest = dir.file("sqlite.toml", manifest);
    let mut cmd = ffb();
    cmd.args([
        "session",
        "--bridge-mode",
        "--manifest",
        path_str(&manifest),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting ffb session");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut ask = |id: i64, f: &str, args: Json| -> Json {
        let line = json!({"id": id, "fn": f, "args": args}).to_string();
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .expect("writing to the session");
        let reply = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("no reply to {line}: {e}"));
        let j: Json = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{reply}: {e}"));
        assert_eq!(j["id"], json!(id), "{reply}");
        j
    };
    let open = ask(
        1,
        "sqlite3_open_v2",
        json!([":memory:", null, OPEN_RW_CREATE, 0]),
    );
    assert_eq!(open["ok"], json!(true), "{open}");
    let db = open["out"][1].clone();
    assert!(
        db.as_str().is_some_and(|t| t.starts_with("handle:")),
        "{open}"
    );
    let prep = ask(
        2,
        "sqlite3_prepare_v2",
        json!([db, "select 42", -1, null, 0]),
    );
    assert_eq!(
        (prep["ok"].clone(), prep["ret"].clone()),
        (json!(true), json!(0)),
        "{prep}"
    );
    let stmt = prep["out"][3].clone();
    let step = ask(3, "sqlite3_step", json!([stmt]));
    assert_eq!(step["ret"], json!(SQLITE_ROW), "{step}");
    let fin = ask(4, "sqlite3_finalize", json!([stmt]));
    assert_eq!(fin["ret"], json!(0), "{fin}");
    let step = ask(5, "sqlite3_step", json!([stmt]));
    assert_eq!(step["ok"], json!(false), "{step}");
    assert_eq!(step["error"]["kind"], json!("stale_handle"), "{step}");
    // A statement where a connection is declared.
    let stmt2 = ask(
        6,
        "sqlite3_prepare_v2",
        json!([db, "select 1", -1, null, 0]),
    )["out"][3]
        .clone();
    let confused = ask(7, "sqlite3_errmsg", json!([stmt2]));
    assert_eq!(
        confused["error"]["kind"],
        json!("bad_argument"),
        "{confused}"
    );
    // The same helper serves on: nothing crashed.
    let errmsg = ask(8, "sqlite3_errmsg", json!([db]));
    assert_eq!(errmsg["ok"], json!(true), "{errmsg}");
    drop(stdin);
    let status = wait_with_deadline(&mut child, "ffb session after EOF");
    let stderr = stderr.join().expect("stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("crashed") && !stderr.contains("SIGSEGV"),
        "{stderr}"
    );
}
