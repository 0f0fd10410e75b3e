//! The odbc driver (`ffb_loader::sql` over a bridged unixODBC) with both
//! test DSNs ([`ffb_tests::odbc`]): psqlODBC to the private PostgreSQL
//! server, and the SQLite ODBC driver on a database file. Values by type,
//! parameters, paging, and the drivers' errors as `foreign`.

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::{BridgeMode, ErrorKind};
use ffb_tests::odbc::{self, OdbcEnv};
use ffb_tests::sql_corpus::table_name;
use ffb_tests::{cli, shim_bin};
use ffb_tests::sql::all;

fn open(target: &str) -> Connection {
    ffb_tests::sql::open(Config::odbc(target))
}

fn sqlstate(e: &ffb_loader::Error) -> &str {
    match &e.kind {
        ErrorKind::Foreign { driver, code } => {
            assert_eq!(driver, "odbc", "{e}");
            code
        }
        other => panic!("expected a foreign error, got {other:?}: {e}"),
    }
}

/// Both DSNs work through the same code: a table of every type, written
/// with bound parameters and read back.
fn round_trip(target: &str, create: &str) {
    let mut db = open(target);
    assert_eq!(db.driver_name(), "odbc");
    let t = table_name("odbc_rt");
    db.execute(&format!("create table {t} {create}"), &[])
        .unwrap();
    let rows = [
        [
            Value::Int(1),
            Value::Int(i64::MIN),
            Value::Float(0.5),
            Value::from("it's, \"q\"\n🦀"),
            Value::Blob(b"a\0b".to_vec()),
        ],
        [
            Value::Int(2),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ],
        [
            Value::Int(3),
            Value::Int(i64::MAX),
            Value::Float(-2.25),
            Value::from(""),
            Value::Blob(vec![]),
        ],
    ];
    for r in &rows {
        let n = db
            .execute(
                &format!("insert into {t} (id, i, f, t, b) values (?, ?, ?, ?, ?)"),
                r,
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let got = all(
        &mut db,
        &format!("select id, i, f, t, b from {t} order by id"),
        &[],
    );
    assert_eq!(got, rows.map(|r| r.to_vec()));
    let got = all(
        &mut db,
        &format!("select t from {t} where id = ?"),
        &[Value::Int(1)],
    );
    assert_eq!(got, [vec![Value::from("it's, \"q\"\n🦀")]]);
    // Wrong parameter counts are the caller's mistake.
    let e = db
        .execute(&format!("select t from {t} where id = ?"), &[])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    db.execute(&format!("drop table {t}"), &[]).unwrap();
}

#[test]
fn postgres_dsn_round_trips_every_type() {
    let env = odbc::env();
    round_trip(
        &env.pg_dsn,
        "(id bigint primary key, i bigint, f double precision, t text, b bytea)",
    );
}

#[test]
fn postgres_socket_dsn_connects() {
    let env = odbc::env();
    let mut db = open(&env.pg_socket_dsn);
    assert_eq!(all(&mut db, "select 40 + 2", &[]), [vec![Value::Int(42)]]);
}

#[test]
fn sqlite_dsn_round_trips_every_type() {
    let env = odbc::env();
    round_trip(
        &env.sqlite_dsn,
        "(id integer primary key, i integer, f real, t text, b blob)",
    );
}

#[test]
fn a_connection_string_names_the_driver_directly() {
    let dir = cli::Scratch::new("odbc-conn-string");
    let db_path = dir.path("own.db");
    let mut db = open(&OdbcEnv::sqlite_connection_string(&db_path));
    db.execute("create table t (x integer); insert into t values (7)", &[])
        .unwrap();
    assert_eq!(all(&mut db, "select x from t", &[]), [vec![Value::Int(7)]]);
    drop(db);
    assert!(db_path.is_file());
}

#[test]
fn many_rows_page_through() {
    let env = odbc::env();
    let mut db = open(&env.pg_dsn);
    let mut n = 0i64;
    for r in db
        .query(
            "select x, md5(x::text) from generate_series(1, 20000) x",
            &[],
        )
        .unwrap()
    {
        let r = r.unwrap();
        n += 1;
        assert_eq!(r[0], Value::Int(n));
    }
    assert_eq!(n, 20000);
    // Left early, the cursor is closed for the next statement.
    {
        let mut rows = db
            .query("select x from generate_series(1, 50000) x", &[])
            .unwrap();
        assert_eq!(rows.next().unwrap().unwrap()[0], Value::Int(1));
    }
    assert_eq!(all(&mut db, "select 1", &[]), [vec![Value::Int(1)]]);
}

#[test]
fn driver_errors_are_foreign() {
    let env = odbc::env();
    let mut pg = open(&env.pg_dsn);
    let e = pg
        .execute("select * from no_such_table_odbc", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01", "{e}");
    assert!(e.message.contains("no_such_table_odbc"), "{e}");
    let mut lite = open(&env.sqlite_dsn);
    let e = lite
        .execute("select * from no_such_table_odbc", &[])
        .unwrap_err();
    assert!(e.message.contains("no such table"), "{e}");
    sqlstate(&e);
    // Both connections carry on.
    assert_eq!(all(&mut pg, "select 1", &[]), [vec![Value::Int(1)]]);
    assert_eq!(all(&mut lite, "select 1", &[]), [vec![Value::Int(1)]]);
}

#[test]
fn an_unknown_dsn_is_foreign() {
    odbc::env();
    let config = Config::odbc("ffb_no_such_dsn")
        .bridge_mode(BridgeMode::Enabled)
        .shim(shim_bin());
    let e = Connection::open(config).unwrap_err();
    assert_eq!(sqlstate(&e), "IM002", "{e}");
}

#[test]
fn ffb_sql_over_odbc_prints_csv() {
    let env = odbc::env();
    let r = cli::ffb_run(&[
        "sql",
        "--bridge-mode",
        "--driver",
        "odbc",
        "--db",
        &env.pg_dsn,
        "--csv",
        "select 1 as a, 'x,y' as b",
    ]);
    r.expect_code(0);
    assert_eq!(r.stdout.replace("\r\n", "\n"), "a,b\n1,\"x,y\"\n");
}
