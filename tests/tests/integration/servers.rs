//! The real servers and drivers the database tests stand on, checked
//! directly: libpq (`libpq.so.5`) and the unixODBC driver manager
//! (`libodbc.so.2`) loaded into this process with libloading, not through
//! the bridge. If one of these fails, the environment is broken (see
//! `scripts/postgres.sh`, `scripts/odbc.sh`, `scripts/setup.sh`), not ffb.
//!
//! Without the environment that `scripts/test.sh` sets up, each test fails
//! with a message naming what is missing; none is skipped.

use ffb_tests::odbc::{self, Odbc, OdbcEnv};
use ffb_tests::postgres::{self, Libpq};

fn one_row(rows: Vec<Vec<Option<String>>>) -> Vec<Option<String>> {
    assert_eq!(rows.len(), 1, "expected one row, got {rows:?}");
    rows.into_iter().next().unwrap_or_default()
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

#[test]
fn postgres_trusts_the_unix_socket() {
    let srv = postgres::server();
    let mut conn = Libpq::get()
        .connect(&srv.socket_conninfo())
        .unwrap_or_else(|e| panic!("socket connect to {}: {e}", srv.socket_conninfo()));
    let row = one_row(
        conn.query("select 1, current_user, current_database(), inet_server_addr() is null")
            .expect("select over the socket"),
    );
    // A null server address means a unix-socket connection.
    assert_eq!(row, some(&["1", &srv.user, &srv.db, "t"]));
}

#[test]
fn postgres_takes_the_password_over_tcp() {
    let srv = postgres::server();
    let info = srv.tcp_conninfo(&srv.password);
    let mut conn = Libpq::get()
        .connect(&info)
        .unwrap_or_else(|e| panic!("TCP connect with the right password: {e}"));
    let row = one_row(
        conn.query("select 1, current_user, host(inet_server_addr()), inet_server_port()")
            .expect("select over TCP"),
    );
    assert_eq!(
        row,
        some(&["1", &srv.user, &srv.host, &srv.port.to_string()])
    );
}

#[test]
fn postgres_asks_for_scram_over_tcp_and_trusts_the_socket() {
    let srv = postgres::server();
    let mut conn = Libpq::get()
        .connect(&srv.superuser_conninfo())
        .unwrap_or_else(|e| panic!("superuser socket connect: {e}"));
    let rules = conn
        .query("select type, auth_method from pg_hba_file_rules order by line_number")
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        rules,
        vec![
            some(&["local", "trust"]),
            some(&["host", "scram-sha-256"]),
            some(&["host", "scram-sha-256"]),
        ]
    );
    let verifier = one_row(
        conn.query(&format!(
            "select left(rolpassword, 14) from pg_authid where rolname = '{}'",
            srv.user
        ))
        .unwrap_or_else(|e| panic!("{e:?}")),
    );
    assert_eq!(verifier, some(&["SCRAM-SHA-256$"]));
}

#[test]
fn postgres_refuses_a_wrong_password_over_tcp() {
    let srv = postgres::server();
    let wrong = format!("{}-wrong", srv.password);
    let err = match Libpq::get().connect(&srv.tcp_conninfo(&wrong)) {
        Ok(_) => panic!("TCP connect with a wrong password succeeded"),
        Err(e) => e,
    };
    assert!(
        err.contains(&format!(
            "password authentication failed for user \"{}\"",
            srv.user
        )),
        "not an authentication error: {err}"
    );
}

#[test]
fn postgres_reports_sql_errors_with_their_sqlstate() {
    let srv = postgres::server();
    let mut conn = Libpq::get()
        .connect(&srv.socket_conninfo())
        .unwrap_or_else(|e| panic!("socket connect: {e}"));
    let err = conn
        .query("select * from ffb_servers_no_such_table")
        .expect_err("a missing table");
    assert_eq!(err.sqlstate, "42P01", "{err:?}");
    assert!(err.message.contains("ffb_servers_no_such_table"), "{err:?}");
}

#[test]
fn odbc_reaches_postgres_over_tcp_and_the_socket() {
    let env = odbc::env();
    let srv = postgres::server();
    for (dsn, tcp) in [(&env.pg_dsn, true), (&env.pg_socket_dsn, false)] {
        let mut conn = Odbc::get()
            .connect(&OdbcEnv::connection_string(dsn))
            .unwrap_or_else(|e| panic!("ODBC connect to {dsn}: {e}"));
        let row = one_row(
            conn.query("select 1, current_user, inet_server_addr() is null, NULL")
                .unwrap_or_else(|e| panic!("{dsn}: {e}")),
        );
        // psqlODBC shows booleans as 1/0 by default.
        let socket = if tcp { "0" } else { "1" };
        assert_eq!(
            row,
            vec![
                Some("1".into()),
                Some(srv.user.clone()),
                Some(socket.into()),
                None
            ],
            "{dsn}"
        );
    }
}

#[test]
fn odbc_reaches_sqlite() {
    let env = odbc::env();
    let mut conn = Odbc::get()
        .connect(&OdbcEnv::connection_string(&env.sqlite_dsn))
        .unwrap_or_else(|e| panic!("ODBC connect to {}: {e}", env.sqlite_dsn));
    let row = one_row(
        conn.query("select 1, 'a,b', NULL, length(sqlite_version()) > 0")
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(
        row,
        vec![Some("1".into()), Some("a,b".into()), None, Some("1".into())]
    );
    // The DSN is the database file itself: what the driver reads back
    // through its own catalog is the file the environment names.
    let row = one_row(
        conn.query("select file from pragma_database_list where name = 'main'")
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(row, vec![Some(env.sqlite_db.display().to_string())]);
}

#[test]
fn odbc_reports_a_missing_table() {
    let env = odbc::env();
    let mut conn = Odbc::get()
        .connect(&OdbcEnv::connection_string(&env.sqlite_dsn))
        .unwrap_or_else(|e| panic!("ODBC connect: {e}"));
    let err = conn
        .query("select * from ffb_servers_no_such_table")
        .expect_err("a missing table");
    assert!(err.contains("no such table"), "{err}");
}

#[test]
fn odbc_refuses_an_unknown_dsn() {
    // Needs the configuration: otherwise unixODBC would read the machine's
    // own ini files, and the test would say nothing about ours.
    let _env = odbc::env();
    let err = match Odbc::get().connect("DSN=ffb_servers_no_such_dsn;") {
        Ok(_) => panic!("an unknown DSN connected"),
        Err(e) => e,
    };
    assert!(
        err.starts_with("IM002"),
        "not 'data source not found': {err}"
    );
}

#[test]
fn postgres_fresh_databases_are_separate() {
    let srv = postgres::server();
    let a = srv.fresh_database("servers");
    let b = srv.fresh_database("servers");
    assert_ne!(a.db, b.db);
    let mut conn = Libpq::get()
        .connect(&a.socket_conninfo())
        .unwrap_or_else(|e| panic!("connect to {}: {e}", a.db));
    conn.query("create table t (x int); insert into t values (7)")
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(conn.query("select x from t").ok(), Some(vec![some(&["7"])]));
    let mut other = Libpq::get()
        .connect(&b.tcp_conninfo(&b.password))
        .unwrap_or_else(|e| panic!("connect to {}: {e}", b.db));
    let err = other
        .query("select x from t")
        .expect_err("t is in the other database");
    assert_eq!(err.sqlstate, "42P01", "{err:?}");
}

#[test]
fn odbc_opens_a_sqlite_file_of_its_own() {
    let _env = odbc::env();
    let dir = std::env::temp_dir().join(format!("ffb-servers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let db = dir.join("own.db");
    let mut conn = Odbc::get()
        .connect(&OdbcEnv::sqlite_connection_string(&db))
        .unwrap_or_else(|e| panic!("ODBC connect to {}: {e}", db.display()));
    conn.query("create table t (x text)")
        .unwrap_or_else(|e| panic!("{e}"));
    conn.query("insert into t values ('own')")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        conn.query("select x from t").ok(),
        Some(vec![some(&["own"])])
    );
    drop(conn);
    let created = db.is_file();
    std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(created, "the driver did not create {}", db.display());
}
