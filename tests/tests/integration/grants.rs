//! Grants bring in the syscalls they need (issue 10), from the attacker's
//! side: a write path, a TCP port and a unix socket each work where they are
//! granted, and nowhere else. Side effects are checked from the test
//! process: the files themselves, and listeners that must (or must never)
//! accept. The calls are in `fixtures/ffb_attack_routes.c` (`ffb_grants_*`).

use std::fs;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ffb_loader::{Bridge, SandboxPolicy, Value};
use ffb_policy::grants::Grants;
use ffb_policy::source::parse_toml_policy;
use ffb_tests::bridge::violation;
use ffb_tests::bridge_builder;
use ffb_tests::cli::{ffb_run, path_str, Run, Scratch};
use ffb_tests::procfs::has_ended;

const DECLS: &[&str] = &[
    "ffb_grants_write(cstr, cstr) -> i32",
    "ffb_grants_append(cstr, cstr) -> i32",
    "ffb_grants_truncate(cstr, i64) -> i32",
    "ffb_grants_rename(cstr, cstr) -> i32",
    "ffb_grants_unlink(cstr) -> i32",
    "ffb_grants_mkdir(cstr) -> i32",
    "ffb_grants_posix_lock(cstr, i32, i32) -> i32",
    "ffb_grants_flock(cstr) -> i32",
    "ffb_grants_connect_tcp(u16, i32, cstr) -> i32",
    "ffb_grants_connect_unix(cstr, cstr) -> i32",
    "ffb_grants_udp(u16) -> i32",
    "ffb_routes_mptcp_connect(u16) -> i32",
    "ffb_routes_fastopen(u16, i32) -> i32",
];

const EACCES: i32 = -libc::EACCES;

fn load(policy: SandboxPolicy) -> Bridge {
    bridge_builder(Path::new(env!("FFB_ATTACK_ROUTES_LIB")), DECLS)
        .policy(policy)
        .load()
        .expect("loading the routes corpus")
}

fn toml(text: &str) -> SandboxPolicy {
    parse_toml_policy(text, "grants.toml").unwrap_or_else(|e| panic!("{text}\n{e}"))
}

fn text(s: &str) -> Value {
    Value::Str(s.as_bytes().to_vec())
}

fn path(p: &Path) -> Value {
    text(path_str(p))
}

/// Calls `name`, which must return (the helper lives), and gives its i32.
fn ret(b: &mut Bridge, name: &str, args: &[Value]) -> i32 {
    match b.call_by_name(name, args).map(|out| out.ret) {
        Ok(Value::I32(i)) => i,
        other => panic!("{name}{args:?}: expected an i32, got {other:?}"),
    }
}

/// Calls `name`, which must get the helper killed for `syscall`.
fn expect_violation(b: &mut Bridge, name: &str, args: &[Value], syscall: &str, nr: i64) {
    let pid = b.helper_pid().expect("a live helper");
    match b.call_by_name(name, args) {
        Err(e) => assert_eq!(e.kind, violation(syscall, nr), "{name}: {e}"),
        Ok(v) => panic!(
            "{name}{args:?} ran and returned {:?}: the route is open",
            v.ret
        ),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(has_ended(pid), "{name}: the helper outlived its violation");
}

/// `inside` (granted) and `outside` (not), with a file in each.
struct Dirs {
    _scratch: Scratch,
    inside: PathBuf,
    outside: PathBuf,
}

fn dirs(tag: &str) -> Dirs {
    let scratch = Scratch::new(tag);
    let inside = scratch.path("in");
    let outside = scratch.path("out");
    fs::create_dir(&inside).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(inside.join("kept.txt"), "inside").unwrap();
    fs::write(outside.join("kept.txt"), "original").unwrap();
    Dirs {
        _scratch: scratch,
        inside,
        outside,
    }
}

/// Everything a write grant brings in, inside it; and the same outside it,
/// refused by Landlock with `EACCES` and the file untouched.
fn write_inside_only(policy: SandboxPolicy, d: &Dirs) {
    let mut b = load(policy);
    let pid = b.helper_pid();
    let (inside, outside) = (&d.inside, &d.outside);

    let a = inside.join("a.txt");
    assert_eq!(
        ret(&mut b, "ffb_grants_write", &[path(&a), text("hello")]),
        5
    );
    assert_eq!(
        fs::read_to_string(&a).unwrap(),
        "hello",
        "seen from outside"
    );
    assert_eq!(
        ret(&mut b, "ffb_grants_append", &[path(&a), text(" you")]),
        4
    );
    assert_eq!(fs::read_to_string(&a).unwrap(), "hello you");
    assert_eq!(
        ret(&mut b, "ffb_grants_truncate", &[path(&a), Value::I64(4)]),
        0
    );
    assert_eq!(fs::read_to_string(&a).unwrap(), "hell");
    let renamed = inside.join("b.txt");
    assert_eq!(
        ret(&mut b, "ffb_grants_rename", &[path(&a), path(&renamed)]),
        0
    );
    assert!(!a.exists() && renamed.exists());
    let sub = inside.join("sub");
    assert_eq!(ret(&mut b, "ffb_grants_mkdir", &[path(&sub)]), 0);
    assert!(sub.is_dir());
    let lock = [
        path(&renamed),
        Value::I32(libc::O_RDWR),
        Value::I32(libc::F_WRLCK),
    ];
    assert_eq!(
        ret(&mut b, "ffb_grants_posix_lock", &lock),
        0,
        "a write lock in the grant"
    );
    assert_eq!(ret(&mut b, "ffb_grants_unlink", &[path(&renamed)]), 0);
    assert!(!renamed.exists());

    let kept = outside.join("kept.txt");
    let new = outside.join("new.txt");
    assert_eq!(
        ret(&mut b, "ffb_grants_write", &[path(&new), text("x")]),
        EACCES
    );
    assert!(!new.exists(), "no file created outside the grant");
    assert_eq!(
        ret(&mut b, "ffb_grants_write", &[path(&kept), text("x")]),
        EACCES
    );
    assert_eq!(
        ret(&mut b, "ffb_grants_append", &[path(&kept), text("x")]),
        EACCES
    );
    assert_eq!(
        ret(&mut b, "ffb_grants_truncate", &[path(&kept), Value::I64(0)]),
        EACCES
    );
    assert_eq!(ret(&mut b, "ffb_grants_unlink", &[path(&kept)]), EACCES);
    assert_eq!(
        ret(&mut b, "ffb_grants_mkdir", &[path(&outside.join("d"))]),
        EACCES
    );
    assert_eq!(fs::read_to_string(&kept).unwrap(), "original", "untouched");
    assert!(!outside.join("d").exists());
    // Out of the grant and into it: Landlock refuses both ways.
    let moved = outside.join("moved.txt");
    let from_inside = inside.join("kept.txt");
    let r = ret(
        &mut b,
        "ffb_grants_rename",
        &[path(&from_inside), path(&moved)],
    );
    assert!(r == EACCES || r == -libc::EXDEV, "rename out: {r}");
    let r = ret(
        &mut b,
        "ffb_grants_rename",
        &[path(&kept), path(&inside.join("stolen.txt"))],
    );
    assert!(r == EACCES || r == -libc::EXDEV, "rename in: {r}");
    assert!(from_inside.exists() && !moved.exists() && kept.exists());
    assert!(!inside.join("stolen.txt").exists());
    assert_eq!(
        b.helper_pid(),
        pid,
        "Landlock's refusals are errors, not violations"
    );

    // No grant brings in flock: it locks any file the helper can read.
    expect_violation(
        &mut b,
        "ffb_grants_flock",
        &[path(&from_inside)],
        "flock",
        73,
    );
}

#[test]
fn fs_read_with_a_write_dir_writes_creates_renames_and_removes_only_inside() {
    let d = dirs("grants-write");
    let policy = toml(&format!(
        "extends = \"fs-read\"\n[filesystem]\nwrite = [\"{}\"]\n",
        d.inside.display()
    ));
    write_inside_only(policy, &d);
}

#[test]
fn a_write_dir_granted_at_run_time_works_the_same_on_pure() {
    let d = dirs("grants-runtime");
    let grants = Grants {
        write: vec![d.inside.clone()],
        ..Grants::default()
    };
    let runtime = SandboxPolicy::pure().with_grants(&grants).unwrap();
    let mut file = toml(&format!(
        "[filesystem]\nwrite = [\"{}\"]\n",
        d.inside.display()
    ));
    file.name = runtime.name.clone();
    assert_eq!(runtime, file, "exactly what the TOML gives");
    write_inside_only(runtime, &d);
}

#[test]
fn a_write_grant_on_one_file_writes_that_file_and_creates_nothing() {
    let d = dirs("grants-file");
    let db = d.inside.join("kept.txt");
    let mut b = load(toml(&format!(
        "[filesystem]\nwrite = [\"{}\"]\n",
        db.display()
    )));
    assert_eq!(
        ret(&mut b, "ffb_grants_write", &[path(&db), text("rewritten")]),
        9
    );
    assert_eq!(fs::read_to_string(&db).unwrap(), "rewritten");
    let lock = [
        path(&db),
        Value::I32(libc::O_RDWR),
        Value::I32(libc::F_WRLCK),
    ];
    assert_eq!(ret(&mut b, "ffb_grants_posix_lock", &lock), 0);
    // A sibling (a journal, say) cannot be created, nor the file removed.
    let journal = d.inside.join("kept.txt-journal");
    assert_eq!(
        ret(&mut b, "ffb_grants_write", &[path(&journal), text("j")]),
        EACCES
    );
    assert!(!journal.exists());
    assert_eq!(ret(&mut b, "ffb_grants_unlink", &[path(&db)]), EACCES);
    assert!(db.exists());
}

/// A listener on loopback whose next connection is read on a thread: the
/// text it got, after answering one byte.
fn answering_listener() -> (u16, JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = [0u8; 64];
        let n = s.read(&mut got).unwrap();
        s.write_all(b"!").unwrap();
        String::from_utf8_lossy(&got[..n]).into_owned()
    });
    (port, t)
}

fn silent_listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn assert_never_accepted(l: &TcpListener, what: &str) {
    match l.accept() {
        Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
        other => panic!("{what}: the unlisted listener accepted: {other:?}"),
    }
}

#[test]
fn a_port_on_pure_connects_there_and_nowhere_else() {
    let (port, answered) = answering_listener();
    let (unlisted, other) = silent_listener();
    let policy = || toml(&format!("[network]\nconnect_tcp = [{port}]\n"));
    let mut b = load(policy());
    let tcp = |p: u16, s: &str| [Value::U16(p), Value::I32(0), text(s)];
    assert_eq!(
        ret(&mut b, "ffb_grants_connect_tcp", &tcp(port, "granted")),
        0
    );
    assert_eq!(answered.join().unwrap(), "granted", "the listener got it");
    assert_eq!(
        ret(&mut b, "ffb_grants_connect_tcp", &tcp(other, "stray")),
        EACCES,
        "Landlock refuses the unlisted port"
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_never_accepted(&unlisted, "plain connect");

    // The ways to TCP without connect(), and UDP, stay violations.
    let attacks: [(&str, Vec<Value>, &str, i64); 4] = [
        (
            "ffb_routes_mptcp_connect",
            vec![Value::U16(other)],
            "socket",
            41,
        ),
        (
            "ffb_routes_fastopen",
            vec![Value::U16(other), Value::I32(0)],
            "sendto",
            44,
        ),
        (
            "ffb_routes_fastopen",
            vec![Value::U16(other), Value::I32(1)],
            "sendmsg",
            46,
        ),
        ("ffb_grants_udp", vec![Value::U16(other)], "socket", 41),
    ];
    for (name, args, syscall, nr) in attacks {
        let mut b = load(policy());
        expect_violation(&mut b, name, &args, syscall, nr);
        std::thread::sleep(Duration::from_millis(20));
        assert_never_accepted(&unlisted, name);
    }
    // And a unix socket: a port grants no unix socket.
    let mut b = load(policy());
    let unix = [text("/run/nothing.sock"), text("x")];
    expect_violation(&mut b, "ffb_grants_connect_unix", &unix, "socket", 41);
    // No file access came with the port.
    let mut b = load(policy());
    expect_violation(
        &mut b,
        "ffb_grants_write",
        &[text("/tmp/x"), text("x")],
        "openat",
        257,
    );
}

/// A unix listener at `path`, world-writable as PostgreSQL's socket is (a
/// root host's helper runs as a uid of its own), whose next connection is
/// read on a thread.
fn answering_unix_listener(path: &Path) -> JoinHandle<String> {
    use std::os::unix::fs::PermissionsExt;
    let l = UnixListener::bind(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = [0u8; 64];
        let n = s.read(&mut got).unwrap();
        s.write_all(b"!").unwrap();
        String::from_utf8_lossy(&got[..n]).into_owned()
    })
}

/// Landlock cannot bound a unix connect by path, so with a unix socket
/// granted the host makes every `connect` itself, to granted addresses only.
#[test]
fn a_unix_socket_grant_connects_there_and_nowhere_else() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("grants-unix");
    let sock = scratch.path("pg.sock");
    let answered = answering_unix_listener(&sock);
    let other = scratch.path("other.sock");
    let unlisted = UnixListener::bind(&other).unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o777)).unwrap();
    unlisted.set_nonblocking(true).unwrap();
    let (tcp_listener, port) = silent_listener();
    let policy = |tcp: bool| {
        let ports = if tcp {
            format!("connect_tcp = [{port}]\n")
        } else {
            String::new()
        };
        toml(&format!(
            "[network]\nconnect_unix = [\"{}\"]\n{ports}",
            sock.display()
        ))
    };
    let mut b = load(policy(false));
    assert_eq!(
        ret(
            &mut b,
            "ffb_grants_connect_unix",
            &[path(&sock), text("over unix")]
        ),
        0
    );
    assert_eq!(answered.join().unwrap(), "over unix", "the listener got it");
    assert_eq!(
        ret(
            &mut b,
            "ffb_grants_connect_unix",
            &[path(&other), text("stray")]
        ),
        EACCES,
        "another unix socket"
    );
    std::thread::sleep(Duration::from_millis(20));
    match unlisted.accept() {
        Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
        other => panic!("the unlisted unix socket accepted: {other:?}"),
    }
    // No TCP, no UDP with it.
    let tcp = [Value::U16(port), Value::I32(0), text("x")];
    expect_violation(&mut b, "ffb_grants_connect_tcp", &tcp, "socket", 41);
    let mut b = load(policy(false));
    expect_violation(&mut b, "ffb_grants_udp", &[Value::U16(port)], "socket", 41);
    // With a port too, the host connects TCP for the helper, to that port only.
    let (granted_port, answered) = answering_listener();
    let mut both = policy(true);
    both = both
        .with_grants(&Grants {
            connect_tcp: vec![granted_port],
            ..Grants::default()
        })
        .unwrap();
    let mut b = load(both);
    let to = |p: u16| [Value::U16(p), Value::I32(0), text("tcp too")];
    assert_eq!(ret(&mut b, "ffb_grants_connect_tcp", &to(granted_port)), 0);
    assert_eq!(answered.join().unwrap(), "tcp too");
    let (_, unlisted_port) = silent_listener();
    assert_eq!(
        ret(&mut b, "ffb_grants_connect_tcp", &to(unlisted_port)),
        EACCES
    );
    assert_never_accepted(&tcp_listener, "tcp under a unix grant");
}

fn policy_ok(args: &[&str]) -> Run {
    let r = ffb_run(&[&["policy"], args].concat());
    r.expect_code_for(0, &format!("policy {}", args.join(" ")));
    r
}

#[test]
fn explain_names_the_grant_behind_each_derived_rule() {
    let scratch = Scratch::new("grants-explain");
    let file = scratch.file(
        "p.toml",
        "extends = \"fs-read\"\n[filesystem]\nwrite = [\"/var/tmp\"]\n[network]\nconnect_tcp = [5432]\n",
    );
    let r = policy_ok(&["explain", path_str(&file)]);
    let line = |syscall: &str, tail: &str| {
        r.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{syscall} ")) && l.ends_with(tail))
            .unwrap_or_else(|| panic!("no {syscall} line ending {tail:?}:\n{}", r.stdout))
            .to_string()
    };
    let openat = line("openat", "<- [filesystem] write \"/var/tmp\"");
    assert!(
        openat.contains("allow") && openat.contains("any arguments"),
        "{openat}"
    );
    for syscall in ["ftruncate", "fsync", "renameat2", "unlinkat"] {
        line(syscall, "<- [filesystem] write \"/var/tmp\"");
    }
    let socket = line("socket", "<- [network] connect_tcp 5432");
    assert!(socket.contains("arg0 == 2"), "{socket}");
    line("connect", "<- [network] connect_tcp 5432");
    // fs-read's own read-only openat is the preset's.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("openat") && l.contains("0x643") && !l.contains("<-")),
        "{}",
        r.stdout
    );
    let r = policy_ok(&["explain", "--json", path_str(&file)]);
    let j = r.json_for("explain --json");
    let rules = j["rules"].as_array().unwrap();
    let fsync = rules.iter().find(|r| r["syscall"] == "fsync").unwrap();
    assert_eq!(fsync["granted_by"]["section"], "[filesystem] write");
    assert_eq!(fsync["granted_by"]["values"][0], "/var/tmp");
    assert!(rules[0]["granted_by"].is_null(), "{}", rules[0]);
}

#[test]
fn lint_flags_grants_that_cannot_be_used_and_write_opens_without_a_write_path() {
    let scratch = Scratch::new("grants-lint");
    let refused = scratch.file(
        "refused.toml",
        "[[seccomp.rule]]\nsyscall = \"openat\"\naction = \"errno:EACCES\"\n\
         [filesystem]\nwrite = [\"/var/tmp\"]\n[network]\nbind_tcp = [8080]\n",
    );
    let r = policy_ok(&["lint", path_str(&refused)]);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("warning[grant-unused]"))
        .unwrap_or_else(|| panic!("no grant-unused\n{r:#?}"));
    for words in [
        "[filesystem] write, [network] bind_tcp can never be used",
        "an earlier rule refuses openat with write flags",
        "no TCP socket",
    ] {
        assert!(line.contains(words), "lacks {words:?}: {line}");
    }
    let write_open = scratch.file(
        "write-open.toml",
        "extends = \"fs-read\"\n[seccomp]\nallow = [\"openat\"]\n[filesystem]\nread = [\"/etc/hosts\"]\n",
    );
    let r = policy_ok(&["lint", path_str(&write_open)]);
    assert!(
        r.stdout
            .contains("warning[write-open-without-write-paths]: openat allowed with write flags"),
        "{r:#?}"
    );
    // A write path or a port alone needs nothing else.
    let clean = scratch.file(
        "clean.toml",
        "extends = \"fs-read\"\n[filesystem]\nwrite = [\"/var/tmp\"]\n[network]\nconnect_tcp = [5432]\n",
    );
    let r = policy_ok(&["lint", path_str(&clean)]);
    assert!(r.stdout.ends_with("no findings\n"), "{r:#?}");
}

#[test]
fn the_shipped_driver_policies_check_and_lint_clean() {
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    for name in [
        "sqlite3.policy.toml",
        "libpq.policy.toml",
        "odbc.policy.toml",
    ] {
        let file = manifests.join(name);
        policy_ok(&["check", path_str(&file)]);
        let r = policy_ok(&["lint", path_str(&file)]);
        assert!(r.stdout.ends_with("no findings\n"), "{name}: {r:#?}");
    }
}

const SQLITE_DECLS: &[&str] = &[
    "sqlite3_open_v2(cstr, *handle<sqlite3>, i32, u64) -> i32",
    "sqlite3_close_v2(handle<sqlite3>) -> i32",
    "sqlite3_exec(handle<sqlite3>, cstr, u64, u64, u64) -> i32",
    "sqlite3_errmsg(handle<sqlite3>) -> cstr",
    "sqlite3_prepare_v2(handle<sqlite3>, cstr, i32, *handle<stmt>, u64) -> i32",
    "sqlite3_step(handle<stmt>) -> i32",
    "sqlite3_column_text(handle<stmt>, i32) -> cstr",
    "sqlite3_finalize(handle<stmt>) -> i32",
];

/// libsqlite3 under `manifests/sqlite3.policy.toml` with `grants`.
struct Sqlite {
    b: Bridge,
    db: Value,
}

impl Sqlite {
    fn open(db: &Path, grants: &Grants) -> Sqlite {
        let policy_file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/sqlite3.policy.toml");
        let policy = ffb_policy::source::load_policy(path_str(&policy_file))
            .unwrap()
            .with_grants(grants)
            .unwrap();
        let mut b = bridge_builder("libsqlite3.so.0", SQLITE_DECLS)
            .handle_kind("sqlite3", Some("sqlite3_close_v2"), None)
            .handle_kind("stmt", Some("sqlite3_finalize"), Some("sqlite3"))
            .policy(policy)
            .load()
            .expect("loading libsqlite3.so.0 (package libsqlite3-0)");
        let out = b
            .call_by_name(
                "sqlite3_open_v2",
                &[path(db), Value::Null, Value::I32(0x2 | 0x4), Value::U64(0)],
            )
            .expect("sqlite3_open_v2");
        assert_eq!(out.ret, Value::I32(0), "sqlite3_open_v2");
        let db = out.out[1].clone().expect("the *handle out-value");
        let mut s = Sqlite { b, db };
        // The recipe for the tight grant, before the first read: in exclusive
        // locking mode SQLite never deletes its rollback journal (it zeroes
        // its header), so no journal mode, and no rollback of a hot journal,
        // needs to remove a file.
        s.exec("pragma locking_mode = exclusive").unwrap();
        s
    }

    /// Runs `sql`: Ok, or SQLite's own error message.
    fn exec(&mut self, sql: &str) -> Result<(), String> {
        let args = [
            self.db.clone(),
            text(sql),
            Value::U64(0),
            Value::U64(0),
            Value::U64(0),
        ];
        match self.b.call_by_name("sqlite3_exec", &args).map(|o| o.ret) {
            Ok(Value::I32(0)) => Ok(()),
            Ok(Value::I32(_)) => match self.b.call_by_name("sqlite3_errmsg", &[self.db.clone()]) {
                Ok(out) => match out.ret {
                    Value::Str(m) => Err(String::from_utf8_lossy(&m).into_owned()),
                    other => panic!("sqlite3_errmsg returned {other:?}"),
                },
                Err(e) => panic!("sqlite3_errmsg: {e}"),
            },
            other => panic!("sqlite3_exec({sql}): the helper did not answer: {other:?}"),
        }
    }

    /// The first column of the first row of `sql`.
    fn one(&mut self, sql: &str) -> String {
        let out = self
            .b
            .call_by_name(
                "sqlite3_prepare_v2",
                &[
                    self.db.clone(),
                    text(sql),
                    Value::I32(-1),
                    Value::Null,
                    Value::U64(0),
                ],
            )
            .expect("sqlite3_prepare_v2");
        assert_eq!(out.ret, Value::I32(0), "prepare {sql}");
        let stmt = out.out[3].clone().expect("the statement");
        let step = self
            .b
            .call_by_name("sqlite3_step", &[stmt.clone()])
            .unwrap()
            .ret;
        assert_eq!(step, Value::I32(100), "{sql}: SQLITE_ROW");
        let v = match self
            .b
            .call_by_name("sqlite3_column_text", &[stmt.clone(), Value::I32(0)])
            .unwrap()
            .ret
        {
            Value::Str(v) => String::from_utf8_lossy(&v).into_owned(),
            other => panic!("{sql}: {other:?}"),
        };
        self.b.call_by_name("sqlite3_finalize", &[stmt]).unwrap();
        v
    }
}

/// The database's files, as the tightest option grants them (docs/policy.md,
/// "SQLite databases"), created empty first where missing: the file and its
/// rollback journal always, and its `-wal` and `-shm` only for a database in
/// WAL mode (header bytes 18 and 19 are 2). An empty `-wal` beside a
/// rollback database would switch it to WAL, and beside an empty one SQLite
/// deletes it.
fn database_files(db: &Path) -> Vec<PathBuf> {
    let with = |s: &str| PathBuf::from(format!("{}{s}", db.display()));
    let header = fs::read(db).unwrap_or_default();
    let wal = header.len() >= 20 && header[18] == 2 && header[19] == 2;
    let mut files = vec![db.to_path_buf(), with("-journal")];
    if wal {
        files.extend([with("-wal"), with("-shm")]);
    }
    for f in &files {
        if !f.exists() {
            fs::write(f, "").unwrap();
        }
    }
    files
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The tightest option for SQLite: only the database's own files are
/// granted, one by one, and the connection is in exclusive locking mode.
/// SQLite works in its default journal mode (and, for a database in WAL
/// mode, in WAL mode); ATTACH of any other path fails with SQLite's own
/// error and creates nothing; switching a rollback database to WAL fails
/// with SQLite's own error too, and the next connection rolls it back.
#[test]
fn the_sqlite_policy_reaches_only_its_database_files_and_creates_nothing() {
    let scratch = Scratch::new("grants-sqlite");
    let dir = scratch.path("db");
    fs::create_dir(&dir).unwrap();
    let db = dir.join("app.db");
    let grants = |db: &Path| Grants {
        write: database_files(db),
        ..Grants::default()
    };
    let mut s = Sqlite::open(&db, &grants(&db));
    let pid = s.b.helper_pid();
    // SQLite's default journal mode, DELETE: in exclusive mode nothing is deleted.
    s.exec("create table t(a); insert into t values (1), (2)")
        .unwrap();
    s.exec("begin; insert into t select a + 2 from t; commit")
        .unwrap();
    assert_eq!(s.one("select count(*) from t"), "4");
    assert_ne!(s.one("select random()"), "");

    let elsewhere = scratch.path("other.db");
    let beside = dir.join("beside.db");
    for other in [&elsewhere, &beside] {
        let e = s
            .exec(&format!("attach '{}' as o", other.display()))
            .expect_err("ATTACH of another path");
        assert!(e.contains("unable to open database"), "{e}");
        assert!(!other.exists(), "{} was created", other.display());
    }
    // WAL needs files that do not exist: SQLite says so, and nothing is created.
    let wal = s.exec("pragma journal_mode = wal; insert into t values (5)");
    assert!(wal.is_err(), "WAL without its files: {wal:?}");
    assert_eq!(s.b.helper_pid(), pid, "no violation on the way");
    drop(s);
    assert_eq!(names_in(&dir), ["app.db", "app.db-journal"]);
    // The refused switch left a hot journal (and a header saying WAL): the
    // next connection rolls it back, without removing a file.

    // A database in WAL mode (made under a grant of its directory) gets its
    // four files, and works in WAL mode under the tight grant.
    let walled = scratch.path("wal");
    fs::create_dir(&walled).unwrap();
    let wdb = walled.join("w.db");
    let dir_grant = Grants {
        write: vec![walled.clone()],
        ..Grants::default()
    };
    let mut s = Sqlite::open(&wdb, &dir_grant);
    s.exec("pragma journal_mode = wal; create table t(a); insert into t values (7)")
        .unwrap();
    drop(s);
    let mut s = Sqlite::open(&wdb, &grants(&wdb));
    assert_eq!(s.one("pragma journal_mode"), "wal");
    s.exec("insert into t values (8)").unwrap();
    assert_eq!(s.one("select sum(a) from t"), "15");
    let e = s
        .exec(&format!("attach '{}' as o", walled.join("x.db").display()))
        .expect_err("ATTACH beside a WAL database");
    assert!(e.contains("unable to open database"), "{e}");
    drop(s);
    assert_eq!(
        names_in(&walled),
        ["w.db", "w.db-journal", "w.db-shm", "w.db-wal"]
    );
    // Seen again by a fresh helper: the rows are there.
    let mut again = Sqlite::open(&db, &grants(&db));
    assert_eq!(again.one("select sum(a) from t"), "10");
}

fn driver_policy(name: &str, grants: &Grants) -> SandboxPolicy {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests")
        .join(name);
    ffb_policy::source::load_policy(path_str(&file))
        .unwrap_or_else(|e| panic!("{e}"))
        .with_grants(grants)
        .unwrap()
}

/// `PQconnectdb(conninfo)` under `libpq.policy.toml` with `grants`: the
/// status (0 is CONNECTION_OK) and libpq's error message, or the error that
/// ended the helper.
fn pq_connect(grants: &Grants, conninfo: &str) -> Result<(i32, String), ffb_loader::Error> {
    let decls = [
        "PQconnectdb(cstr) -> handle<pgconn>",
        "PQstatus(handle<pgconn>) -> i32",
        "PQerrorMessage(handle<pgconn>) -> cstr",
        "PQfinish(handle<pgconn>) -> void",
    ];
    let mut b = bridge_builder("libpq.so.5", &decls)
        .handle_kind("pgconn", Some("PQfinish"), None)
        .policy(driver_policy("libpq.policy.toml", grants))
        .load()
        .expect("loading libpq.so.5 (package libpq5)");
    let conn = b.call_by_name("PQconnectdb", &[text(conninfo)])?.ret;
    let status = match b.call_by_name("PQstatus", &[conn.clone()]).unwrap().ret {
        Value::I32(s) => s,
        other => panic!("PQstatus: {other:?}"),
    };
    let message = match b.call_by_name("PQerrorMessage", &[conn]).unwrap().ret {
        Value::Str(m) => String::from_utf8_lossy(&m).into_owned(),
        other => panic!("PQerrorMessage: {other:?}"),
    };
    Ok((status, message))
}

/// libpq under its policy reaches the server through the endpoint granted
/// at run time, and through nothing else: another port, or the socket when
/// only the port is granted, is refused before any byte reaches a server.
#[test]
fn the_libpq_policy_connects_only_where_the_grant_says() {
    let pg = ffb_tests::postgres::server();
    let socket = pg.socket_dir.join(format!(".s.PGSQL.{}", pg.port));
    let unix = Grants {
        connect_unix: vec![socket.clone()],
        ..Grants::default()
    };
    let (status, message) = pq_connect(&unix, &pg.socket_conninfo()).unwrap();
    assert_eq!(status, 0, "over the granted socket: {message}");
    let tcp = Grants {
        connect_tcp: vec![pg.port],
        ..Grants::default()
    };
    let (status, message) = pq_connect(&tcp, &pg.tcp_conninfo(&pg.password)).unwrap();
    assert_eq!(status, 0, "over the granted port: {message}");

    // Another port: Landlock refuses the connect, which libpq reports.
    let (_silent, other_port) = silent_listener();
    let other = Grants {
        connect_tcp: vec![other_port],
        ..Grants::default()
    };
    let (status, message) = pq_connect(&other, &pg.tcp_conninfo(&pg.password)).unwrap();
    assert_eq!(status, 1, "an unlisted port: CONNECTION_BAD expected: {message}");
    assert!(message.contains("Permission denied"), "{message}");
    // The socket under a port grant, the port under a socket grant: no such
    // socket can even be made (a violation, naming socket).
    for (grants, conninfo, what) in [
        (&tcp, pg.socket_conninfo(), "the socket under a port grant"),
        (&unix, pg.tcp_conninfo(&pg.password), "the port under a socket grant"),
    ] {
        match pq_connect(grants, &conninfo) {
            Err(e) => assert_eq!(e.kind, violation("socket", 41), "{what}: {e}"),
            Ok(r) => panic!("{what}: libpq answered {r:?}"),
        }
    }
}
