//! Each SQL driver reaches its own database and nothing else (issue 10 §4),
//! tried from the attacker's side and checked from outside the helper.
//!
//! Two attackers:
//! * SQL itself, through the real library: `ATTACH` and `VACUUM INTO` for
//!   SQLite (the driver and an SQLite ODBC DSN), connection strings that
//!   try to steer libpq elsewhere;
//! * a compromised build of the library (`fixtures/ffb_fake_client.c`),
//!   loaded with [`Config::library`] in place of libsqlite3, libpq or
//!   libodbc, so it runs under exactly the policy the driver derives from
//!   its target. It reads, writes, unlinks and connects where it is told,
//!   and reports what the kernel answered in its error message.
//!
//! Every attack has a control beside it (the same code reaching a granted
//! resource works), so a refusal is the policy's and not the fixture's. The
//! files, and listeners that must never accept, are looked at by the test
//! process. The connect broker's own races are in [`broker`] below.

use std::fs;
use std::io::ErrorKind as IoErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::{Error, ErrorKind};
use ffb_tests::bridge::violation;
use ffb_tests::cli::{path_str, Scratch};
use ffb_tests::odbc::{self, OdbcEnv};
use ffb_tests::postgres::server;
use ffb_tests::sql::{bridged, open};


fn sqlite(db: &Path) -> Connection {
    open(Config::sqlite(db))
}

fn rows(db: &mut Connection, sql: &str) -> Vec<Vec<Value>> {
    db.query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.map(|r| r.into_values()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `e` is `driver`'s own error; its message.
fn foreign<'e>(e: &'e Error, driver: &str) -> &'e str {
    match &e.kind {
        ErrorKind::Foreign { driver: d, .. } if d == driver => &e.message,
        other => panic!("expected a foreign error from {driver}, got {other:?}: {e}"),
    }
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A directory `name` in `scratch`, which a helper's own uid may enter (a
/// refusal must be the policy's, not the file mode's).
fn dir(scratch: &Scratch, name: &str) -> PathBuf {
    let d = scratch.path(name);
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A world-readable file holding `text`, outside every grant.
fn secret(dir: &Path, text: &str) -> PathBuf {
    let f = dir.join("secret.txt");
    fs::write(&f, text).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    f
}

/// A unix listener anyone may connect to, which must never accept.
fn decoy_unix(path: &Path) -> UnixListener {
    let l = UnixListener::bind(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// A loopback TCP listener that must never accept, and its port.
fn decoy_tcp() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn assert_unix_untouched(l: &UnixListener, what: &str) {
    match l.accept() {
        Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
        other => panic!("{what}: the decoy unix socket accepted: {other:?}"),
    }
}

fn assert_tcp_untouched(l: &TcpListener, what: &str) {
    match l.accept() {
        Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
        other => panic!("{what}: the decoy port accepted: {other:?}"),
    }
}

// ---- SQLite, through the real libsqlite3 ----

/// ATTACH and VACUUM INTO of any other path, beside the database or
/// elsewhere, fail with SQLite's own error and create nothing; the database
/// itself keeps working, and once closed, nothing but it is left.
#[test]
fn sqlite_attaches_no_other_path_and_creates_nothing() {
    let scratch = Scratch::new("confine-sqlite-attach");
    let home = dir(&scratch, "db");
    let elsewhere = dir(&scratch, "elsewhere");
    let db = home.join("app.db");
    let mut c = sqlite(&db);
    c.execute("create table t(a); insert into t values (1), (2)", &[])
        .unwrap();
    let targets = [
        home.join("beside.db"),
        elsewhere.join("other.db"),
        home.join("app.db-other"),
    ];
    for other in &targets {
        let e = c
            .execute(&format!("attach '{}' as o", other.display()), &[])
            .expect_err("ATTACH of another path");
        assert!(
            foreign(&e, "sqlite").contains("unable to open database"),
            "{e}"
        );
        assert!(!other.exists(), "{} was created", other.display());
        let e = c
            .execute(&format!("vacuum into '{}'", other.display()), &[])
            .expect_err("VACUUM INTO another path");
        foreign(&e, "sqlite");
        assert!(!other.exists(), "{} was created", other.display());
    }
    // A temp database is in memory: a big sort spills nowhere.
    assert_eq!(
        rows(
            &mut c,
            "with recursive n(x) as (select 1 union all select x + 1 from n where x < 20000) \
             select count(*) from (select x from n order by random())"
        ),
        [[Value::Int(20000)]]
    );
    assert_eq!(
        rows(&mut c, "select sum(a) from t"),
        [[Value::Int(3)]],
        "the database still works"
    );
    drop(c);
    assert_eq!(names_in(&home), ["app.db"]);
    assert!(names_in(&elsewhere).is_empty());
}

/// Another database with secret rows, in another directory: ATTACH fails
/// (also as a `file:` URI), its rows are out of reach, `load_extension` is
/// refused, and the database's file is byte for byte what it was.
#[test]
fn sqlite_cannot_attach_an_existing_database_elsewhere() {
    let scratch = Scratch::new("confine-sqlite-secret");
    let vault = dir(&scratch, "vault");
    let secret_db = vault.join("secret.db");
    let mut s = sqlite(&secret_db);
    s.execute(
        "create table t(x); insert into t values ('the secret')",
        &[],
    )
    .unwrap();
    drop(s);
    fs::set_permissions(&secret_db, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::read(&secret_db).unwrap();
    assert_eq!(names_in(&vault), ["secret.db"]);

    let home = dir(&scratch, "home");
    let mut c = sqlite(&home.join("app.db"));
    for name in [
        secret_db.display().to_string(),
        format!("file:{}?mode=ro", secret_db.display()),
    ] {
        let e = c
            .execute(&format!("attach '{name}' as s"), &[])
            .expect_err("ATTACH of another database");
        let m = foreign(&e, "sqlite");
        assert!(m.contains("unable to open database"), "{name}: {e}");
        assert!(!m.contains("the secret"), "{e}");
    }
    let e = c.query("select x from s.t", &[]).map(drop).unwrap_err();
    assert!(foreign(&e, "sqlite").contains("no such table: s.t"), "{e}");
    // Nor can SQL load code: extension loading stays off.
    let e = c
        .query(
            &format!("select load_extension('{}')", env!("FFB_FAKE_CLIENT_LIB")),
            &[],
        )
        .and_then(|mut r| r.next().transpose())
        .unwrap_err();
    assert!(foreign(&e, "sqlite").contains("not authorized"), "{e}");
    drop(c);
    assert_eq!(
        fs::read(&secret_db).unwrap(),
        before,
        "the secret database changed"
    );
    assert_eq!(names_in(&vault), ["secret.db"]);
}

/// The database's own side files, and nothing else, beside it.
fn assert_only_database_files(dir: &Path, db: &str) {
    let allowed = ["", "-journal", "-wal", "-shm"].map(|s| format!("{db}{s}"));
    let left = names_in(dir);
    assert!(left.iter().all(|n| allowed.contains(n)), "{left:?}");
}

/// The journal modes the driver's files allow (sqlite.rs, "Files"): the
/// driver grants the database and its `-journal`, `-wal` and `-shm` files
/// one by one, so nothing can be created or removed. TRUNCATE, the
/// driver's default, empties its journal and rolls back; a database
/// already in WAL mode stays in WAL mode and works.
#[test]
fn sqlite_truncate_and_wal_journal_modes_work_on_the_granted_files() {
    let scratch = Scratch::new("confine-sqlite-journal");
    let home = dir(&scratch, "db");
    let db = home.join("j.db");
    let mut c = sqlite(&db);
    assert_eq!(
        rows(&mut c, "pragma journal_mode"),
        [[Value::from("truncate")]]
    );
    c.execute(
        "create table t(a); begin; insert into t values (1); insert into t values (2); commit",
        &[],
    )
    .unwrap();
    c.execute("begin; insert into t values (3); rollback", &[])
        .unwrap();
    assert_eq!(rows(&mut c, "select sum(a) from t"), [[Value::Int(3)]]);
    drop(c);
    assert_eq!(names_in(&home), ["j.db"]);

    // A database made in WAL mode elsewhere works in WAL mode.
    let walled = dir(&scratch, "wal");
    let wdb = walled.join("w.db");
    let made = std::process::Command::new("sqlite3")
        .arg(&wdb)
        .arg("pragma journal_mode = wal; create table t(a); insert into t values (7)")
        .output()
        .expect("running sqlite3 (Debian package sqlite3; scripts/setup.sh installs it)");
    assert!(made.status.success(), "sqlite3: {made:?}");
    let mut c = sqlite(&wdb);
    assert_eq!(rows(&mut c, "pragma journal_mode"), [[Value::from("wal")]]);
    c.execute("insert into t values (8)", &[]).unwrap();
    let e = c
        .execute(
            &format!("attach '{}' as o", walled.join("x.db").display()),
            &[],
        )
        .expect_err("ATTACH beside a WAL database");
    assert!(
        foreign(&e, "sqlite").contains("unable to open database"),
        "{e}"
    );
    drop(c);
    let mut c = sqlite(&wdb);
    assert_eq!(rows(&mut c, "select sum(a) from t"), [[Value::Int(15)]]);
    drop(c);
    assert_only_database_files(&walled, "w.db");
}

/// Switching to WAL or to DELETE needs the journal removed, which nothing
/// grants: SQLite reports its own I/O error, nothing is created or
/// removed, and the next connection rolls the half-done switch back and
/// works.
#[test]
fn sqlite_a_refused_journal_switch_leaves_a_usable_database() {
    let scratch = Scratch::new("confine-sqlite-switch");
    let home = dir(&scratch, "db");
    let db = home.join("j.db");
    let mut c = sqlite(&db);
    c.execute("create table t(a); insert into t values (1), (2)", &[])
        .unwrap();
    for mode in ["wal", "delete"] {
        let e = c
            .execute(
                &format!("pragma journal_mode = {mode}; insert into t values (10)"),
                &[],
            )
            .expect_err("a journal mode that removes the journal");
        assert!(
            foreign(&e, "sqlite").contains("disk I/O error"),
            "{mode}: {e}"
        );
        assert!(
            Path::new(&format!("{}-journal", db.display())).exists(),
            "{mode}: the journal was removed"
        );
        assert_only_database_files(&home, "j.db");
        drop(c);
        c = sqlite(&db);
        assert_eq!(
            rows(&mut c, "select sum(a) from t"),
            [[Value::Int(3)]],
            "{mode}: the data after the refused switch"
        );
    }
    drop(c);
    assert_only_database_files(&home, "j.db");
}

/// An in-memory database touches no file: ATTACH of a path fails and
/// creates nothing, while another in-memory database attaches fine.
#[test]
fn sqlite_in_memory_reaches_no_file() {
    let scratch = Scratch::new("confine-sqlite-memory");
    let home = dir(&scratch, "d");
    let mut c = open(Config::sqlite_memory());
    for path in [home.join("x.db"), scratch.path("y.db")] {
        let e = c
            .execute(&format!("attach '{}' as o", path.display()), &[])
            .expect_err("ATTACH of a file");
        assert!(
            foreign(&e, "sqlite").contains("unable to open database"),
            "{e}"
        );
        assert!(!path.exists(), "{} was created", path.display());
    }
    c.execute(
        "attach ':memory:' as m; create table m.t(a); insert into m.t values (9)",
        &[],
    )
    .unwrap();
    assert_eq!(rows(&mut c, "select a from m.t"), [[Value::Int(9)]]);
    assert!(names_in(&home).is_empty());
}

// ---- A compromised library under each driver's own policy ----

/// `fixtures/ffb_fake_client.c`, built by `tests/build.rs`.
fn fake_client() -> &'static str {
    env!("FFB_FAKE_CLIENT_LIB")
}

/// `config` with the compromised library in the driver's place.
fn compromised(config: Config) -> Config {
    bridged(config).library(fake_client())
}

/// What the compromised library's attacks got: its error message, or the
/// error that ended its helper.
fn attacked(config: Config) -> Result<String, Error> {
    let driver = config.kind().name();
    match Connection::open(compromised(config)) {
        Ok(_) => panic!("the compromised {driver} library connected"),
        Err(e) => match &e.kind {
            ErrorKind::Foreign { driver: d, .. } if d == driver => {
                assert!(e.message.starts_with("ffb-fake: "), "{e}");
                Ok(e.message.clone())
            }
            _ => Err(e),
        },
    }
}

/// The attack `spec` got `result` (`0`, a byte count, or `-errno`).
fn assert_got(message: &str, spec: &str, result: &str) {
    let want = format!("{spec} = {result}");
    let got = message
        .split("; ")
        .find(|part| {
            part.trim_start_matches("ffb-fake: ")
                .starts_with(&format!("{spec} = "))
        })
        .unwrap_or_else(|| panic!("no result for {spec} in {message:?}"));
    assert!(
        got.trim_start_matches("ffb-fake: ").starts_with(&want),
        "{spec}: expected {want}, got {got:?} (all: {message:?})"
    );
}

const EACCES: &str = "-13";

/// `attacked`, which must have ended the helper with a violation of
/// `syscall`.
fn assert_violation(outcome: Result<String, Error>, syscall: &str, nr: i64, what: &str) {
    match outcome {
        Err(e) => assert_eq!(e.kind, violation(syscall, nr), "{what}: {e}"),
        Ok(m) => panic!("{what}: the attack ran: {m}"),
    }
}

/// A compromised libsqlite3 under the driver's policy for a database file:
/// it may read and write the database, and nothing else: no file beside it,
/// no file elsewhere, no removal, no socket.
#[test]
fn a_compromised_libsqlite3_reaches_only_its_database_file() {
    let scratch = Scratch::new("confine-fake-sqlite");
    let home = dir(&scratch, "db");
    let vault = dir(&scratch, "vault");
    let secret = secret(&vault, "sqlite secret");
    let db = home.join("app.db");
    let evil = home.join("evil");
    let outside = vault.join("planted");
    let mut c = Connection::open(compromised(Config::sqlite(&db)))
        .expect("the database opens through the compromised library");
    let attack = |c: &mut Connection, specs: &str| -> Result<String, Error> {
        match c.execute(&format!("ATTACK {specs}"), &[]) {
            Ok(n) => panic!("the attack statement succeeded ({n})"),
            Err(e) if e.kind_name() == "foreign" => Ok(foreign(&e, "sqlite").to_string()),
            Err(e) => Err(e),
        }
    };
    let [db_s, evil_s, outside_s, secret_s] =
        [&db, &evil, &outside, &secret].map(|p| path_str(p).to_string());
    let m = attack(
        &mut c,
        &format!(
            "write:{db_s},read:{db_s},write:{evil_s},write:{outside_s},read:{secret_s},\
             read:/etc/passwd,unlink:{db_s}"
        ),
    )
    .unwrap();
    assert_got(&m, &format!("write:{db_s}"), "5");
    assert_got(&m, &format!("read:{db_s}"), "5: pwned");
    for spec in [
        format!("write:{evil_s}"),
        format!("write:{outside_s}"),
        format!("read:{secret_s}"),
        "read:/etc/passwd".to_string(),
        format!("unlink:{db_s}"),
    ] {
        assert_got(&m, &spec, EACCES);
    }
    assert!(!evil.exists() && !outside.exists(), "{m}");
    assert!(db.exists(), "the database was removed");
    assert!(!m.contains("sqlite secret"), "{m}");
    drop(c);

    let (tcp, port) = decoy_tcp();
    let sock = scratch.path("decoy.sock");
    let unix = decoy_unix(&sock);
    for spec in [format!("tcp:{port}"), format!("unix:{}", sock.display())] {
        let mut c = Connection::open(compromised(Config::sqlite(&db))).unwrap();
        assert_violation(attack(&mut c, &spec), "socket", 41, &spec);
    }
    assert_tcp_untouched(&tcp, "sqlite");
    assert_unix_untouched(&unix, "sqlite");

    // In memory, nothing at all.
    let mut c = Connection::open(compromised(Config::sqlite_memory())).unwrap();
    let m = attack(&mut c, &format!("write:{evil_s},read:{secret_s}")).unwrap();
    assert_got(&m, &format!("write:{evil_s}"), EACCES);
    assert_got(&m, &format!("read:{secret_s}"), EACCES);
    assert!(!evil.exists());
}

/// A compromised libpq under the driver's policy for a connection string
/// reaches the server the string names, over the way it names, and the
/// files it names, and nothing else: not another unix socket, not another
/// port, not another file.
#[test]
fn a_compromised_libpq_reaches_only_the_server_in_its_connection_string() {
    let srv = server();
    let scratch = Scratch::new("confine-fake-pq");
    let vault = dir(&scratch, "vault");
    let secret = secret(&vault, "pq secret");
    let secret_s = path_str(&secret);
    let decoy_sock = scratch.path("decoy.sock");
    let unix = decoy_unix(&decoy_sock);
    let (tcp, decoy_port) = decoy_tcp();
    let real_sock = srv.socket_dir.join(format!(".s.PGSQL.{}", srv.port));
    let with = |conninfo: String, specs: &str| {
        Config::postgres(format!("{conninfo} application_name={specs}"))
    };

    // Over the socket.
    let specs = format!(
        "unix:{},unix:{},read:{secret_s},read:/etc/passwd",
        real_sock.display(),
        decoy_sock.display()
    );
    let m = attacked(with(srv.socket_conninfo(), &specs)).unwrap();
    assert_got(&m, &format!("unix:{}", real_sock.display()), "0");
    assert_got(&m, &format!("unix:{}", decoy_sock.display()), EACCES);
    assert_got(&m, &format!("read:{secret_s}"), EACCES);
    assert_got(&m, "read:/etc/passwd", EACCES);
    assert_violation(
        attacked(with(srv.socket_conninfo(), &format!("tcp:{decoy_port}"))),
        "socket",
        41,
        "TCP under a socket connection",
    );
    let planted = vault.join("planted");
    assert_violation(
        attacked(with(
            srv.socket_conninfo(),
            &format!("write:{}", planted.display()),
        )),
        "openat",
        257,
        "a write under a socket connection",
    );
    assert!(!planted.exists());

    // Over TCP.
    let tcp_conninfo = srv.tcp_conninfo(&srv.password);
    let specs = format!("tcp:{},tcp:{decoy_port},read:{secret_s}", srv.port);
    let m = attacked(with(tcp_conninfo.clone(), &specs)).unwrap();
    assert_got(&m, &format!("tcp:{}", srv.port), "0");
    assert_got(&m, &format!("tcp:{decoy_port}"), EACCES);
    assert_got(&m, &format!("read:{secret_s}"), EACCES);
    assert_violation(
        attacked(with(
            tcp_conninfo,
            &format!("unix:{}", decoy_sock.display()),
        )),
        "socket",
        41,
        "a unix socket under a TCP connection",
    );

    // A file the string names (a CA certificate) is readable; the file
    // beside it is not.
    let ca = vault.join("root.crt");
    fs::write(&ca, "a certificate").unwrap();
    fs::set_permissions(&ca, fs::Permissions::from_mode(0o644)).unwrap();
    let named = format!("{} sslrootcert={}", srv.socket_conninfo(), ca.display());
    let m = attacked(with(
        named,
        &format!("read:{},read:{secret_s}", ca.display()),
    ))
    .unwrap();
    assert_got(&m, &format!("read:{}", ca.display()), "13: a certificate");
    assert_got(&m, &format!("read:{secret_s}"), EACCES);

    assert_tcp_untouched(&tcp, "libpq");
    assert_unix_untouched(&unix, "libpq");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "pq secret");
}

/// A compromised driver manager under the odbc driver's policy: it reads
/// its ini files, reaches its DSN's endpoint (the PostgreSQL port, or the
/// SQLite database's directory), and nothing else.
#[test]
fn a_compromised_driver_manager_reaches_only_its_dsns_endpoint() {
    let env = odbc::env();
    let srv = server();
    let scratch = Scratch::new("confine-fake-odbc");
    let vault = dir(&scratch, "vault");
    let secret = secret(&vault, "odbc secret");
    let secret_s = path_str(&secret);
    let (tcp, decoy_port) = decoy_tcp();
    let with = |target: String, specs: &str| Config::odbc(format!("{target}FFBATTACK={specs};"));

    let pg = OdbcEnv::connection_string(&env.pg_dsn);
    let ini = path_str(&env.ini);
    let specs = format!(
        "read:{ini},tcp:{},tcp:{decoy_port},read:{secret_s},read:/etc/passwd",
        srv.port
    );
    let m = attacked(with(pg.clone(), &specs)).unwrap();
    assert!(
        m.contains(&format!("read:{ini} = ")) && !m.contains(&format!("read:{ini} = -")),
        "the DSN's ini file: {m}"
    );
    assert_got(&m, &format!("tcp:{}", srv.port), "0");
    assert_got(&m, &format!("tcp:{decoy_port}"), EACCES);
    assert_got(&m, &format!("read:{secret_s}"), EACCES);
    assert_got(&m, "read:/etc/passwd", EACCES);
    assert_violation(
        attacked(with(
            pg,
            &format!("write:{}", vault.join("planted").display()),
        )),
        "openat",
        257,
        "a write under a PostgreSQL DSN",
    );
    assert_tcp_untouched(&tcp, "odbc");

    // The SQLite driver's database directory, and nowhere else.
    let home = dir(&scratch, "home");
    let lite = OdbcEnv::sqlite_connection_string(&home.join("own.db"));
    let inside = home.join("journal");
    let outside = vault.join("planted");
    let specs = format!(
        "write:{},write:{},read:{secret_s}",
        inside.display(),
        outside.display()
    );
    let m = attacked(with(lite.clone(), &specs)).unwrap();
    assert_got(&m, &format!("write:{}", inside.display()), "5");
    assert_got(&m, &format!("write:{}", outside.display()), EACCES);
    assert_got(&m, &format!("read:{secret_s}"), EACCES);
    assert!(!outside.exists());
    assert_violation(
        attacked(with(lite, &format!("tcp:{decoy_port}"))),
        "socket",
        41,
        "TCP under an SQLite DSN",
    );
    assert_tcp_untouched(&tcp, "odbc sqlite");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "odbc secret");
}

// ---- libpq steered in-band ----

/// Connection strings that try to make the real libpq connect somewhere
/// the host did not grant. The host reads the string as libpq does, so
/// either it grants what libpq reaches (and the connection works), or libpq
/// is refused; a decoy never sees a connection.
#[test]
fn libpq_cannot_be_steered_past_its_connection_string() {
    let srv = server();
    let scratch = Scratch::new("confine-pq-steer");
    let (tcp, decoy_port) = decoy_tcp();
    let decoy_sock_dir = dir(&scratch, "decoy");
    let decoy_sock = decoy_sock_dir.join(format!(".s.PGSQL.{decoy_port}"));
    let unix = decoy_unix(&decoy_sock);
    let socket_dir = path_str(&srv.socket_dir);

    // A URI's query parameters override its authority, as in libpq.
    let uri = format!(
        "postgresql://{}@127.0.0.1:{decoy_port}/{}?host={}&port={}",
        srv.user,
        srv.db,
        socket_dir.replace('/', "%2F"),
        srv.port
    );
    let mut c = open(Config::postgres(uri));
    assert_eq!(
        rows(&mut c, "select current_user::text"),
        [[Value::Text(srv.user.clone())]]
    );
    drop(c);

    // A dbname that reads like a connection string is only a name: libpq
    // asks the real server for that database.
    let nested = format!(
        "host={socket_dir} port={} user={} dbname='host=127.0.0.1 port={decoy_port}'",
        srv.port, srv.user
    );
    let e = Connection::open(bridged(Config::postgres(nested))).unwrap_err();
    assert!(foreign(&e, "postgres").contains("does not exist"), "{e}");

    // The last of repeated keys wins, for the host as for libpq.
    let repeated = format!(
        "host=127.0.0.1 port={decoy_port} host={socket_dir} port={} user={} dbname={}",
        srv.port, srv.user, srv.db
    );
    let mut c = open(Config::postgres(repeated));
    assert_eq!(rows(&mut c, "select 1"), [[Value::Int(1)]]);
    drop(c);

    assert_tcp_untouched(&tcp, "steered libpq");
    assert_unix_untouched(&unix, "steered libpq");
}

// ---- An SQLite ODBC DSN, through the real driver ----

/// The SQLite ODBC driver reaches its database's directory: ATTACH of a
/// database elsewhere fails with the driver's error, leaks nothing and
/// creates nothing.
#[test]
fn an_sqlite_odbc_dsn_attaches_nothing_outside_its_directory() {
    odbc::env();
    let scratch = Scratch::new("confine-odbc-sqlite");
    let vault = dir(&scratch, "vault");
    let secret_db = vault.join("secret.db");
    let mut s = sqlite(&secret_db);
    s.execute(
        "create table t(x); insert into t values ('the odbc secret')",
        &[],
    )
    .unwrap();
    drop(s);
    fs::set_permissions(&secret_db, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::read(&secret_db).unwrap();
    let home = dir(&scratch, "home");
    let mut c = open(Config::odbc(OdbcEnv::sqlite_connection_string(
        &home.join("own.db"),
    )));
    c.execute("create table t(a); insert into t values (1)", &[])
        .unwrap();
    let fresh = vault.join("fresh.db");
    for target in [&secret_db, &fresh] {
        let e = c
            .execute(&format!("attach '{}' as o", target.display()), &[])
            .expect_err("ATTACH outside the DSN's directory");
        let m = foreign(&e, "odbc");
        assert!(m.contains("unable to open database"), "{e}");
        assert!(!m.contains("the odbc secret"), "{e}");
    }
    assert!(!fresh.exists(), "ATTACH created {}", fresh.display());
    assert_eq!(rows(&mut c, "select a from t"), [[Value::Int(1)]]);
    drop(c);
    assert_eq!(fs::read(&secret_db).unwrap(), before);
    assert_eq!(names_in(&vault), ["secret.db"]);
}

/// The connect broker (`loader/src/helper/broker.rs`), raced from inside
/// the helper (`fixtures/ffb_attack_connect.c`).
mod broker {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixListener;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    use ffb_loader::{Bridge, Value};
    use ffb_policy::source::parse_toml_policy;
    use ffb_tests::bridge_builder;
    use ffb_tests::cli::{path_str, Scratch};

    const DECLS: &[&str] = &[
        "ffb_connect_race(cstr, cstr, i32, i32, *i32, *i32) -> i32",
        "ffb_connect_unix_once(cstr) -> i32",
    ];

    /// Connects per race: enough for the swapper to be seen both ways.
    const ROUNDS: i32 = 4000;

    fn connect_lib() -> &'static str {
        env!("FFB_ATTACK_CONNECT_LIB")
    }

    fn load(granted: &Path, audit: Option<&Path>) -> Bridge {
        // dup2: the fd swap needs it (db-client grants dup too).
        let text = format!(
            "[seccomp]\nallow = [\"dup2\"]\n[network]\nconnect_unix = [\"{}\"]\n",
            granted.display()
        );
        let policy = parse_toml_policy(&text, "broker.toml").unwrap();
        assert!(policy.supervises_connect());
        let mut b = bridge_builder(connect_lib(), DECLS).policy(policy);
        if let Some(log) = audit {
            b = b.audit_log(log);
        }
        b.load().expect("loading the connect corpus")
    }

    fn i32_of(v: &Option<Value>) -> i32 {
        match v {
            Some(Value::I32(i)) => *i,
            other => panic!("expected an i32, got {other:?}"),
        }
    }

    /// A listener anyone may connect to, polled without blocking.
    fn listener(path: &Path) -> UnixListener {
        let l = UnixListener::bind(path).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
        l.set_nonblocking(true).unwrap();
        l
    }

    /// Accepts (and drops) every connection to `granted` and `other` until
    /// `stop`, then what is still queued; how many each got.
    fn count_accepts(
        granted: UnixListener,
        other: UnixListener,
        stop: Arc<AtomicBool>,
    ) -> thread::JoinHandle<(usize, usize)> {
        thread::spawn(move || {
            let (mut good, mut bad) = (0, 0);
            loop {
                let stopping = stop.load(Ordering::SeqCst);
                let mut idle = true;
                while granted.accept().is_ok() {
                    good += 1;
                    idle = false;
                }
                while other.accept().is_ok() {
                    bad += 1;
                    idle = false;
                }
                if stopping {
                    return (good, bad);
                }
                if idle {
                    thread::sleep(Duration::from_micros(200));
                }
            }
        })
    }

    /// One race of `mode` (1: rewrite the address, 2: swap the fd, 3: both):
    /// the ungranted listener never accepts, and the granted one accepts
    /// exactly the connects the helper saw succeed.
    fn race(mode: i32) {
        let scratch = Scratch::new("broker-race");
        // One byte apart, so the helper can flip between whole paths.
        let granted = scratch.path("socket-0");
        let other = scratch.path("socket-1");
        let stop = Arc::new(AtomicBool::new(false));
        let counts = count_accepts(listener(&granted), listener(&other), stop.clone());
        let mut b = load(&granted, None);
        let pid = b.helper_pid();
        let out = b
            .call_by_name(
                "ffb_connect_race",
                &[
                    Value::str(path_str(&granted)),
                    Value::str(path_str(&other)),
                    Value::I32(mode),
                    Value::I32(ROUNDS),
                    Value::I32(0),
                    Value::I32(0),
                ],
            )
            .unwrap_or_else(|e| panic!("mode {mode}: {e}"));
        let connected = match out.ret {
            Value::I32(n) => n,
            ref other => panic!("mode {mode}: {other:?}"),
        };
        let refused = i32_of(&out.out[4]);
        let failed = i32_of(&out.out[5]);
        assert_eq!(b.helper_pid(), pid, "mode {mode}: the helper was replaced");
        drop(b);
        thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::SeqCst);
        let (good, bad) = counts.join().unwrap();
        let what = format!(
            "mode {mode}: {connected} connected, {refused} refused, {failed} failed; \
             the listeners accepted {good} granted, {bad} ungranted"
        );
        assert!(connected >= 0, "{what}");
        assert_eq!(bad, 0, "{what}");
        assert!(connected > 0, "no granted connect worked: {what}");
        assert_eq!(good, connected as usize, "{what}");
        assert_eq!(connected + refused + failed, ROUNDS, "{what}");
        if mode & 1 != 0 {
            assert!(
                refused > 0,
                "the host never read the rewritten address, so the race did not run: {what}"
            );
        }
    }

    #[test]
    fn rewriting_the_address_mid_connect_never_reaches_another_socket() {
        race(1);
    }

    #[test]
    fn swapping_the_socket_mid_connect_never_reaches_another_socket() {
        race(2);
    }

    #[test]
    fn rewriting_and_swapping_together_never_reach_another_socket() {
        race(3);
    }

    /// Under a policy that supervises connect, an ungranted path (and an
    /// unnamed or abstract address) is refused with the policy's `EACCES`
    /// and audited; the granted path still connects.
    #[test]
    fn an_ungranted_path_is_refused_and_audited() {
        let scratch = Scratch::new("broker-refused");
        let granted = scratch.path("granted.sock");
        let other = scratch.path("other.sock");
        let good = listener(&granted);
        let bad = listener(&other);
        let audit = scratch.path("audit.jsonl");
        let mut b = load(&granted, Some(&audit));
        let once = |b: &mut Bridge, path: &str| match b
            .call_by_name("ffb_connect_unix_once", &[Value::str(path)])
            .map(|o| o.ret)
        {
            Ok(Value::I32(r)) => r,
            other => panic!("connect {path:?}: {other:?}"),
        };
        assert_eq!(once(&mut b, path_str(&other)), -libc::EACCES);
        assert_eq!(once(&mut b, ""), -libc::EACCES, "the unnamed address");
        assert_eq!(once(&mut b, path_str(&granted)), 0);
        drop(b);
        thread::sleep(Duration::from_millis(20));
        assert!(good.accept().is_ok(), "the granted connect did not arrive");
        assert!(bad.accept().is_err(), "the ungranted socket accepted");
        let log = fs::read_to_string(&audit).unwrap_or_default();
        let refusals: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .filter(|j: &serde_json::Value| j["syscall"] == "connect")
            .collect();
        assert_eq!(refusals.len(), 2, "audit log: {log}");
        for r in &refusals {
            assert_eq!(r["action"], "errno:EACCES", "{r}");
            assert_eq!(r["event"], "violation", "{r}");
        }
    }
}
