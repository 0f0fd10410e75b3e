//! What a connection finds left behind, and leaves for the next.
//!
//! A result left before its end (its `Rows` dropped), over libpq and over
//! psqlODBC: leaving an endless result returns at once and the connection
//! carries on; over libpq a short remainder is read, so an open
//! transaction is untouched, and a long one is cancelled, which aborts an
//! open transaction block, as PostgreSQL aborts it for any failed
//! statement. (`sql_api` has the endless one over libpq's unix socket.)
//!
//! A hot SQLite journal: the connection that rolls it back (in exclusive
//! locking mode, so the journal is zeroed, not removed) gives the lock back
//! afterwards, so another process can write while it is open.
//! (`sql_api` and `sql_confinement` check the data after the rollback.)

use std::sync::mpsc;

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::{Error, ErrorKind};
use ffb_tests::bridge::HANG_TIMEOUT;
use ffb_tests::cli::Scratch;
use ffb_tests::odbc;
use ffb_tests::postgres::server;
use ffb_tests::sql::open;

fn all(db: &mut Connection, sql: &str) -> Vec<Vec<Value>> {
    ffb_tests::sql::all(db, sql, &[])
}

fn code(e: &Error) -> &str {
    match &e.kind {
        ErrorKind::Foreign { code, .. } => code,
        other => panic!("expected a foreign error, got {other:?}: {e}"),
    }
}

/// An endless result in the select list (the server streams it), read for
/// its first row and left; `then` runs on the connection after. Panics if
/// leaving it does not return within [`HANG_TIMEOUT`]. The server's
/// `statement_timeout` ends the query at last (`set_limit`), so that a
/// broken drop cannot hang the test binary for good.
fn leave_an_endless_result<T: Send + 'static>(
    config: Config,
    set_limit: &'static str,
    then: fn(&mut Connection) -> T,
) -> T {
    let (left, on_leave) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut db = open(config);
        db.execute(set_limit, &[]).unwrap();
        let mut rows = db
            .query("select generate_series(1, 9000000000000) as x", &[])
            .unwrap();
        rows.set_page_rows(100);
        assert_eq!(rows.next().unwrap().unwrap()[0], Value::Int(1));
        drop(rows);
        let _ = left.send(());
        then(&mut db)
    });
    if on_leave.recv_timeout(HANG_TIMEOUT).is_err() {
        panic!("leaving the result did not return within {HANG_TIMEOUT:?}");
    }
    worker.join().unwrap()
}

#[test]
fn postgres_over_tcp_an_endless_result_can_be_left() {
    let s = server();
    let config = Config::postgres(s.tcp_conninfo(&s.password));
    let after = leave_an_endless_result(config, "set statement_timeout = '60s'", |db| {
        all(db, "select 42")
    });
    assert_eq!(after, [[Value::Int(42)]]);
}

/// A remainder the server is still producing when the rows are left (a
/// millisecond a row), but short: it is read to its end, not cancelled, so
/// the transaction it ran in carries on and commits.
#[test]
fn postgres_a_short_remainder_is_read_and_the_transaction_carries_on() {
    let mut db = open(Config::postgres(server().socket_conninfo()));
    db.execute(
        "begin; create temp table kept(a int); insert into kept values (1)",
        &[],
    )
    .unwrap();
    let mut rows = db
        .query(
            "select x, pg_sleep(0.001)::text from generate_series(1, 1500) x",
            &[],
        )
        .unwrap();
    rows.set_page_rows(10);
    assert_eq!(rows.next().unwrap().unwrap()[0], Value::Int(1));
    drop(rows);
    db.execute("insert into kept values (2); commit", &[])
        .unwrap_or_else(|e| panic!("the transaction after a short remainder: {e}"));
    assert_eq!(all(&mut db, "select count(*) from kept"), [[Value::Int(2)]]);
}

/// A long remainder is cancelled: inside a transaction block that aborts
/// the transaction (SQLSTATE 25P02 for what follows, until the rollback),
/// and the connection carries on after it.
#[test]
fn postgres_an_endless_result_left_in_a_transaction_aborts_it() {
    let config = Config::postgres(server().socket_conninfo());
    let after = leave_an_endless_result(config, "set statement_timeout = '60s'; begin", |db| {
        let e = db.execute("select 1", &[]).unwrap_err();
        let code = code(&e).to_string();
        db.execute("rollback", &[]).unwrap();
        (code, all(db, "select 7"))
    });
    assert_eq!(after, ("25P02".to_string(), vec![vec![Value::Int(7)]]));
}

/// psqlODBC reads a whole result at `SQLExecute` unless it uses a cursor
/// (`UseDeclareFetch = 1`, which both test DSNs of `scripts/odbc.sh` set):
/// then an endless result streams and can be left.
#[test]
fn odbc_postgres_an_endless_result_streams_and_can_be_left() {
    let env = odbc::env();
    for dsn in [env.pg_dsn, env.pg_socket_dsn] {
        let after = leave_an_endless_result(
            Config::odbc(dsn.clone()),
            "set statement_timeout = '60s'",
            |db| all(db, "select 42"),
        );
        assert_eq!(after, [[Value::Int(42)]], "{dsn}");
    }
}

/// The bridged driver sends the connection string as it is: a string that
/// turns psqlODBC's cursor off gets psqlODBC without one (which runs a
/// data-modifying `WITH`, over which PostgreSQL declares no cursor).
#[test]
fn odbc_postgres_the_connection_string_decides_the_cursor() {
    let env = odbc::env();
    let sql = "create temp table w(a int); \
               with i as (insert into w values (1), (2) returning a) select sum(a) from i";
    let e = open(Config::odbc(env.pg_dsn.clone()))
        .execute(sql, &[])
        .unwrap_err();
    assert_eq!(code(&e), "0A000", "through the DSN's cursor: {e}");
    let mut db = open(Config::odbc(format!(
        "DSN={};UseDeclareFetch=0",
        env.pg_dsn
    )));
    let got = db
        .query(sql, &[])
        .unwrap()
        .map(|r| r.unwrap().into_values())
        .collect::<Vec<_>>();
    assert_eq!(got, [[Value::Int(3)]]);
}

/// The first byte of `path`, if it has one.
fn first_byte(path: &std::path::Path) -> Option<u8> {
    std::fs::read(path).ok()?.first().copied()
}

#[test]
fn sqlite_a_connection_that_rolled_a_hot_journal_back_shares_the_database() {
    let scratch = Scratch::new("recovery-hot-journal");
    let db = scratch.path("h.db");
    let journal = scratch.path("h.db-journal");
    let mut c = open(Config::sqlite(&db));
    c.execute("create table t(a); insert into t values (1)", &[])
        .unwrap();
    // DELETE mode cannot remove the journal at commit: it stays hot.
    c.execute(
        "pragma journal_mode = delete; insert into t values (2)",
        &[],
    )
    .expect_err("a commit that must remove the journal");
    drop(c);
    assert!(
        first_byte(&journal).is_some_and(|b| b != 0),
        "no hot journal was left, so this tests nothing"
    );

    let mut c = open(Config::sqlite(&db));
    assert_eq!(
        first_byte(&journal),
        Some(0),
        "the journal is zeroed, and kept"
    );
    // While the connection is open, before it ran anything, another process
    // writes.
    let other = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(".timeout 0")
        .arg("insert into t values (40)")
        .output()
        .expect("running sqlite3 (Debian package sqlite3; scripts/setup.sh installs it)");
    assert!(
        other.status.success(),
        "another process could not write beside the open connection: {}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert_eq!(all(&mut c, "select sum(a) from t"), [[Value::Int(41)]]);
}
