//! The public `ffb_loader::sql` API as a program uses it (issue 10 §3):
//! `Connection`, `Statement` and `Rows` over the bridged libsqlite3, and
//! the same contract over libpq and unixODBC against the private test
//! server and DSNs (those fail, naming what is missing, without them).
//!
//! Values the drivers decode are compared with corpora elsewhere
//! (`differential`, `sql_postgres`, `sql_odbc`); here: how statements run
//! and bind, that parameters come back bit for bit, that rows stream (an
//! endless result can be read from and left), what errors are, and that a
//! helper that dies is a typed error after which the next connection works.

use std::time::Duration;

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::{Error, ErrorKind};
use ffb_tests::bridge::HANG_TIMEOUT;
use ffb_tests::cli::Scratch;
use ffb_tests::odbc::{self, OdbcEnv};
use ffb_tests::postgres::server;
use ffb_tests::sql::{all, bridged, open};

fn memory() -> Connection {
    open(Config::sqlite_memory())
}

/// `e` is `driver`'s own error: its code.
fn foreign_code<'e>(e: &'e Error, driver: &str) -> &'e str {
    match &e.kind {
        ErrorKind::Foreign { driver: d, code } if d == driver => code,
        other => panic!("expected a foreign error from {driver}, got {other:?}: {e}"),
    }
}

/// How a driver spells what the shared checks need.
struct Dialect {
    /// The `n`th parameter.
    param: fn(usize) -> String,
    /// A query of the integers 1..=n in order, one column.
    series: fn(u64) -> String,
}

const SQLITE: Dialect = Dialect {
    param: |n| format!("?{n}"),
    series: |n| {
        format!(
            "with recursive c(x) as (select 1 union all select x + 1 from c where x < {n}) \
             select x from c"
        )
    },
};

const POSTGRES: Dialect = Dialect {
    param: |n| format!("${n}::int8"),
    series: |n| format!("select x from generate_series(1, {n}) x"),
};

/// ODBC takes `?` whatever the database behind it.
const ODBC_POSTGRES: Dialect = Dialect {
    param: |_| "?".to_string(),
    series: |n| format!("select x from generate_series(1, {n}) x"),
};

const ODBC_SQLITE: Dialect = Dialect {
    param: |_| "?".to_string(),
    series: SQLITE.series,
};

/// The contract every driver keeps through [`Connection`]: statements run
/// in order with parameters bound to the last, a parameter of an earlier
/// statement is `bad_argument` naming it, text without a statement is no
/// result, and a prepared statement runs again after its rows were left.
fn statements_and_parameters(db: &mut Connection, d: &Dialect, table: &str) {
    let p1 = (d.param)(1);
    let changed = db
        .execute(
            &format!(
                "create table {table} (a integer); \
                 insert into {table} values (1); insert into {table} values (2); \
                 insert into {table} values (3); update {table} set a = a * 10 where a >= {p1}"
            ),
            &[Value::Int(2)],
        )
        .unwrap_or_else(|e| panic!("{}: {e}", db.driver_name()));
    assert_eq!(
        changed,
        2,
        "{}: the last statement's changes",
        db.driver_name()
    );
    assert_eq!(
        all(
            db,
            &format!("select a from {table} where a > {p1} order by a"),
            &[Value::Int(1)]
        ),
        [[Value::Int(20)], [Value::Int(30)]]
    );

    let e = db
        .execute(&format!("select {p1}; select 1"), &[Value::Int(5)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert!(
        e.message.contains("statement 1") && e.message.contains("last statement"),
        "{e}"
    );
    let e = db.execute(&format!("select {p1}"), &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "a missing parameter: {e}");

    let mut none = db.query(" ; -- nothing here\n", &[]).unwrap();
    assert!(none.columns().is_empty());
    assert!(none.next().is_none());
    drop(none);
    assert_eq!(db.execute(";", &[]).unwrap(), 0);
    for text in ["select 1; select 2", "  ;  "] {
        let e = db.prepare(text).map(drop).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadArgument, "prepare {text:?}: {e}");
    }

    // A prepared statement, its rows left part-way, runs again.
    let mut insert = db
        .prepare(&format!("insert into {table} values ({p1})"))
        .unwrap();
    for i in 100..110 {
        assert_eq!(insert.execute(&[Value::Int(i)]).unwrap(), 1);
    }
    drop(insert);
    let mut select = db
        .prepare(&format!("select a from {table} where a >= {p1} order by a"))
        .unwrap();
    {
        let mut rows = select.query(&[Value::Int(100)]).unwrap();
        assert_eq!(rows.columns().len(), 1);
        assert_eq!(rows.next().unwrap().unwrap()[0], Value::Int(100));
    }
    let again: Vec<Value> = select
        .query(&[Value::Int(108)])
        .unwrap()
        .map(|r| r.unwrap()[0].clone())
        .collect();
    assert_eq!(again, [Value::Int(108), Value::Int(109)]);
    drop(select);
    db.execute(&format!("drop table {table}"), &[]).unwrap();
}

/// A long result is read a page at a time: the rows waiting on the host
/// never exceed a page, every row comes in order, and leaving the result
/// part-way leaves the connection ready for the next query.
fn rows_page_through(db: &mut Connection, d: &Dialect) {
    const N: u64 = 100_000;
    const PAGE: usize = 777;
    let mut rows = db.query(&(d.series)(N), &[]).unwrap();
    rows.set_page_rows(PAGE);
    let mut n = 0u64;
    let mut most_buffered = 0;
    while let Some(row) = rows.next() {
        most_buffered = most_buffered.max(rows.buffered_rows());
        n += 1;
        assert_eq!(
            row.unwrap().into_values(),
            [Value::Int(n as i64)],
            "row {n}"
        );
    }
    assert_eq!(n, N);
    assert!(
        most_buffered < PAGE,
        "{most_buffered} rows waited on the host with pages of {PAGE}"
    );
    drop(rows);

    let mut left = db.query(&(d.series)(N), &[]).unwrap();
    left.set_page_rows(64);
    let first: Vec<_> = left
        .by_ref()
        .take(100)
        .map(|r| r.unwrap()[0].clone())
        .collect();
    assert_eq!(first.last(), Some(&Value::Int(100)));
    drop(left);
    assert_eq!(all(db, "select 42", &[]), [[Value::Int(42)]]);
}

// ---- SQLite ----

#[test]
fn sqlite_statements_run_in_order_and_parameters_bind_to_the_last() {
    let mut db = memory();
    statements_and_parameters(&mut db, &SQLITE, "api_t");
    // Statements before the failing one have run.
    let e = db
        .execute("create table made(a); select ?; select 1", &[Value::Int(1)])
        .unwrap_err();
    assert!(e.message.contains("statement 2"), "{e}");
    assert_eq!(
        all(&mut db, "select count(*) from made", &[]),
        [[Value::Int(0)]]
    );
}

#[test]
fn sqlite_rows_page_through() {
    rows_page_through(&mut memory(), &SQLITE);
}

/// Rows stream: an endless result gives its first rows, and can be left.
/// Nothing could hold it all, neither the helper nor the host.
#[test]
fn sqlite_an_endless_result_streams_and_can_be_left() {
    let mut db = memory();
    let endless = "with recursive c(x) as (select 1 union all select x + 1 from c) select x from c";
    for page in [1, 1000] {
        let mut rows = db.query(endless, &[]).unwrap();
        rows.set_page_rows(page);
        let got: Vec<Value> = rows
            .by_ref()
            .take(5000)
            .map(|r| r.unwrap()[0].clone())
            .collect();
        assert_eq!(got.len(), 5000);
        assert_eq!(got[4999], Value::Int(5000));
        drop(rows);
    }
    assert_eq!(
        all(&mut db, "select 'after'", &[]),
        [[Value::from("after")]]
    );
}

/// Every kind of parameter comes back exactly as given, bound directly and
/// through a table: integers at the edges, floats bit for bit (−0.0,
/// subnormals, infinities; NaN is NULL in SQLite, which has none), text with
/// NUL, quotes and newlines, blobs (empty too) and NULL, each with its type.
#[test]
fn sqlite_every_parameter_kind_round_trips_exactly() {
    let mut db = memory();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let values = vec![
        (Value::Int(i64::MIN), "integer"),
        (Value::Int(i64::MAX), "integer"),
        (Value::Int(0), "integer"),
        (Value::Int(-1), "integer"),
        (Value::Float(-0.0), "real"),
        (Value::Float(f64::from_bits(1)), "real"),
        (Value::Float(f64::MIN_POSITIVE), "real"),
        (Value::Float(f64::MAX), "real"),
        (Value::Float(f64::INFINITY), "real"),
        (Value::Float(f64::NEG_INFINITY), "real"),
        (Value::Float(1.0), "real"),
        (Value::Text(String::new()), "text"),
        (Value::Text("a\0b".into()), "text"),
        (
            Value::Text("it's \"quoted\", ; -- not a comment\r\nnew line 🦀".into()),
            "text",
        ),
        (Value::Blob(Vec::new()), "blob"),
        (Value::Blob(vec![0, 0xff, 0, b'\n']), "blob"),
        (Value::Blob(big), "blob"),
        (Value::Null, "null"),
    ];
    db.execute("create table v(x)", &[]).unwrap();
    for (v, ty) in &values {
        let got = all(&mut db, "select ?1, typeof(?1)", std::slice::from_ref(v));
        assert_exact(&got[0][0], v);
        assert_eq!(got[0][1], Value::from(*ty), "{v:?}");
        db.execute("insert into v values (?)", std::slice::from_ref(v))
            .unwrap();
    }
    let stored = all(&mut db, "select x from v order by rowid", &[]);
    assert_eq!(stored.len(), values.len());
    for (row, (v, _)) in stored.iter().zip(&values) {
        assert_exact(&row[0], v);
    }
    let nan = all(&mut db, "select ?1, typeof(?1)", &[Value::Float(f64::NAN)]);
    assert_eq!(nan, [[Value::Null, Value::from("null")]]);
}

/// Equal values, and for floats the same bits.
fn assert_exact(got: &Value, want: &Value) {
    match (got, want) {
        (Value::Float(g), Value::Float(w)) => {
            assert_eq!(g.to_bits(), w.to_bits(), "{g:e} for {w:e}")
        }
        _ => assert_eq!(got, want),
    }
}

/// The driver's own errors are `foreign` with SQLite's extended code and
/// message, at prepare and at the step of a statement without rows. The
/// connection carries on after each.
#[test]
fn sqlite_errors_are_foreign_with_sqlites_code_and_message() {
    let mut db = memory();
    let cases: &[(&str, &str, &str)] = &[
        ("selec 1", "1", "near \"selec\": syntax error"),
        ("select * from missing", "1", "no such table: missing"),
        (
            "create table u(x unique); insert into u values (1); insert into u values (1)",
            "2067",
            "UNIQUE constraint failed: u.x",
        ),
        (
            "create table n(x not null); insert into n values (null)",
            "1299",
            "NOT NULL constraint failed: n.x",
        ),
        (
            "create table k(x check (x > 0)); insert into k values (0)",
            "275",
            "CHECK constraint failed: x > 0",
        ),
    ];
    for (sql, code, message) in cases {
        let e = db.execute(sql, &[]).unwrap_err();
        assert_eq!(foreign_code(&e, "sqlite"), *code, "{sql}: {e}");
        assert_eq!(e.message, *message, "{sql}");
        assert_eq!(
            all(&mut db, "select 1", &[]),
            [[Value::Int(1)]],
            "after {sql}"
        );
    }
}

/// An error in the middle of a result, after 2999 rows: every one of those
/// rows first (also those that share a page with the failing step), then
/// the error, then the end; the connection carries on.
#[test]
fn sqlite_every_row_before_an_error_mid_result_is_delivered() {
    let mut db = memory();
    let mut rows = db
        .query(
            "with recursive c(x) as (select 1 union all select x + 1 from c where x < 5000) \
             select case when x < 3000 then x else abs(-9223372036854775807 - 1) end from c",
            &[],
        )
        .unwrap();
    rows.set_page_rows(100);
    let mut seen = 0;
    let e = loop {
        match rows.next() {
            Some(Ok(_)) => seen += 1,
            Some(Err(e)) => break e,
            None => panic!("the overflow was not reported"),
        }
    };
    assert_eq!(seen, 2999);
    assert_eq!(foreign_code(&e, "sqlite"), "1", "{e}");
    assert_eq!(e.message, "integer overflow");
    assert!(rows.next().is_none(), "rows after the error");
    drop(rows);
    assert_eq!(all(&mut db, "select 2", &[]), [[Value::Int(2)]]);
}

/// A helper that dies (killed at a timeout, or crashed) is a typed error,
/// never a hang or a panic; the dead connection's next call is a typed
/// error too, and a new connection works.
#[test]
fn sqlite_a_dead_helper_is_a_typed_error_and_the_next_connection_works() {
    let config = bridged(Config::sqlite_memory()).timeout(Duration::from_secs(2));
    let mut db = Connection::open(config).unwrap();
    db.execute("create table t(a); insert into t values (1)", &[])
        .unwrap();
    let e = db
        .query(
            "select count(*) from (with recursive c(x) as \
             (select 1 union all select x + 1 from c) select x from c)",
            &[],
        )
        .and_then(|mut rows| rows.next().transpose())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    let after = db.execute("select a from t", &[]).unwrap_err();
    assert!(
        matches!(after.kind, ErrorKind::StaleHandle),
        "the dead connection's next call: {after}"
    );
    drop(db);
    let mut fresh = memory();
    assert_eq!(all(&mut fresh, "select 7", &[]), [[Value::Int(7)]]);

    // A crash in the library: the compromised build raises SIGSEGV.
    let crashing = bridged(Config::sqlite_memory()).library(env!("FFB_FAKE_CLIENT_LIB"));
    let mut db = Connection::open(crashing).unwrap();
    let e = db.execute("ATTACK crash:11", &[]).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Crashed {
            signal: "SIGSEGV".into()
        },
        "{e}"
    );
    drop(db);
    let mut fresh = memory();
    assert_eq!(all(&mut fresh, "select 8", &[]), [[Value::Int(8)]]);
}

/// Audit lines the disk refuses are counted, not dropped without a word:
/// a crash logged to a full disk (`/dev/full`) shows in `audit_losses`
/// with the disk's error; logged to a file, it is written and nothing is
/// lost.
#[test]
fn sqlite_audit_lines_a_full_disk_refuses_are_counted() {
    let scratch = Scratch::new("api-audit-losses");
    let written = scratch.path("audit.jsonl");
    for (log, full) in [
        (std::path::PathBuf::from("/dev/full"), true),
        (written.clone(), false),
    ] {
        let crashing = bridged(Config::sqlite_memory())
            .library(env!("FFB_FAKE_CLIENT_LIB"))
            .audit_log(&log);
        let mut db = Connection::open(crashing).unwrap();
        assert_eq!(
            db.audit_losses(),
            None,
            "{}: before any event",
            log.display()
        );
        let e = db.execute("ATTACK crash:11", &[]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Crashed {
                signal: "SIGSEGV".into()
            },
            "{e}"
        );
        if full {
            let (lost, why) = db.audit_losses().expect("the crash line was lost");
            assert!(lost >= 1, "{lost}");
            assert_eq!(
                why,
                std::io::Error::from_raw_os_error(libc::ENOSPC).to_string()
            );
        } else {
            assert_eq!(db.audit_losses(), None);
            let lines = std::fs::read_to_string(&written).unwrap();
            assert!(lines.contains("\"event\":\"crash\""), "{lines}");
        }
    }
}

/// A helper killed in the middle of a write transaction leaves a hot
/// journal; the next connection rolls it back and sees the data as it was
/// before the transaction.
#[test]
fn sqlite_a_helper_killed_mid_transaction_leaves_a_database_the_next_connection_opens() {
    let scratch = Scratch::new("api-hot-journal");
    let path = scratch.path("data.db");
    let mut db = open(Config::sqlite(&path));
    db.execute("create table t(a); insert into t values (1)", &[])
        .unwrap();
    drop(db);
    let config = bridged(Config::sqlite(&path)).timeout(Duration::from_secs(2));
    let mut db = Connection::open(config).unwrap();
    // Small cache: the transaction's pages spill, so the journal is written.
    db.execute(
        "pragma cache_size = 2; begin; insert into t select randomblob(500) from \
         (with recursive c(x) as (select 1 union all select x + 1 from c where x < 5000) select x from c)",
        &[],
    )
    .unwrap();
    let e = db
        .query(
            "select count(*) from (with recursive c(x) as \
             (select 1 union all select x + 1 from c) select x from c)",
            &[],
        )
        .and_then(|mut rows| rows.next().transpose())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    drop(db);
    let journal = scratch.path("data.db-journal");
    assert!(
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "no hot journal was left, so this test tests nothing"
    );
    let mut db = open(Config::sqlite(&path));
    assert_eq!(
        all(&mut db, "select count(*), sum(a) from t", &[]),
        [[Value::Int(1), Value::Int(1)]]
    );
}

// ---- PostgreSQL ----

fn postgres() -> Connection {
    open(Config::postgres(server().socket_conninfo()))
}

fn unique(tag: &str) -> String {
    ffb_tests::sql_corpus::table_name(tag)
}

#[test]
fn postgres_statements_run_in_order_and_parameters_bind_to_the_last() {
    statements_and_parameters(&mut postgres(), &POSTGRES, &unique("api_pg"));
}

#[test]
fn postgres_rows_page_through() {
    rows_page_through(&mut postgres(), &POSTGRES);
}

/// A result far too big to read, left after its first rows: leaving it
/// returns (the rest is not read first) and the connection is ready for
/// the next query. The server's `statement_timeout` ends the query at
/// last, so that a broken drop cannot hang the test binary for good; the
/// drop must return well before it.
#[test]
fn postgres_a_huge_result_can_be_left_after_its_first_rows() {
    let (dropped, on_drop) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut db = postgres();
        let limit = 3 * HANG_TIMEOUT.as_secs();
        db.execute(&format!("set statement_timeout = '{limit}s'"), &[])
            .unwrap();
        let mut rows = db
            // In the select list the server streams it (in FROM, it would
            // materialise the function's result first).
            .query("select generate_series(1, 9000000000000) as x", &[])
            .unwrap();
        rows.set_page_rows(100);
        assert_eq!(rows.next().unwrap().unwrap()[0], Value::Int(1));
        drop(rows);
        let _ = dropped.send(());
        all(&mut db, "select 42", &[])
    });
    if on_drop.recv_timeout(HANG_TIMEOUT).is_err() {
        panic!(
            "dropping the Rows did not return within {HANG_TIMEOUT:?}: it reads the whole result"
        );
    }
    assert_eq!(worker.join().unwrap(), [[Value::Int(42)]]);
}

/// A call that outlives its timeout kills the helper: a typed error, and
/// a new connection works.
#[test]
fn postgres_a_timed_out_helper_is_a_typed_error_and_the_next_connection_works() {
    let config =
        bridged(Config::postgres(server().socket_conninfo())).timeout(Duration::from_secs(2));
    let mut db = Connection::open(config).unwrap();
    let e = db.execute("select pg_sleep(30)", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        db.execute("select 1", &[]).is_err(),
        "the dead connection answered"
    );
    drop(db);
    assert_eq!(all(&mut postgres(), "select 7", &[]), [[Value::Int(7)]]);
}

#[test]
fn postgres_errors_keep_the_drivers_sqlstate_through_the_api() {
    let mut db = postgres();
    let e = db.execute("select 1; selec 2", &[]).unwrap_err();
    assert_eq!(foreign_code(&e, "postgres"), "42601", "{e}");
    assert_eq!(all(&mut db, "select 1", &[]), [[Value::Int(1)]]);
}

// ---- ODBC ----

fn odbc_pg() -> Connection {
    open(Config::odbc(odbc::env().pg_dsn))
}

fn odbc_sqlite(scratch: &Scratch) -> Connection {
    odbc::env();
    open(Config::odbc(OdbcEnv::sqlite_connection_string(
        &scratch.path("api.db"),
    )))
}

#[test]
fn odbc_statements_run_in_order_and_parameters_bind_to_the_last() {
    statements_and_parameters(&mut odbc_pg(), &ODBC_POSTGRES, &unique("api_odbc"));
    let scratch = Scratch::new("api-odbc-sqlite");
    statements_and_parameters(&mut odbc_sqlite(&scratch), &ODBC_SQLITE, "api_t");
}

#[test]
fn odbc_rows_page_through() {
    rows_page_through(&mut odbc_pg(), &ODBC_POSTGRES);
    let scratch = Scratch::new("api-odbc-rows");
    rows_page_through(&mut odbc_sqlite(&scratch), &ODBC_SQLITE);
}

#[test]
fn odbc_a_timed_out_helper_is_a_typed_error_and_the_next_connection_works() {
    let config = bridged(Config::odbc(odbc::env().pg_dsn)).timeout(Duration::from_secs(2));
    let mut db = Connection::open(config).unwrap();
    let e = db.execute("select pg_sleep(30)", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    drop(db);
    assert_eq!(all(&mut odbc_pg(), "select 7", &[]), [[Value::Int(7)]]);
}
