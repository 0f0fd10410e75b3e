//! The same generated corpus through each bridged SQL driver and through
//! the same client library loaded into the test process
//! ([`ffb_tests::sql_corpus`]): the rows must be identical, cell for cell
//! (floats by their bits), and where the database keeps values exactly,
//! identical to the corpus itself.
//!
//! For each driver: the corpus written in process and read both ways; the
//! corpus written through the bridge (every value a bound parameter) and
//! read in process; edge values bound and selected straight back; and a
//! 100k-row result computed by the database. The ODBC driver runs with
//! both test DSNs (psqlODBC and the SQLite ODBC driver); the SQLite ODBC
//! driver passes doubles through 15-digit text, so there the corpus's
//! floats are compared bridged against in-process only, never against the
//! corpus.

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::ErrorKind;
use ffb_tests::cli::Scratch;
use ffb_tests::odbc::OdbcEnv;
use ffb_tests::sql_corpus::reference::{Odbc, Postgres, Sqlite};
use ffb_tests::sql_corpus::{
    assert_same_rows, corpus, edge_blobs, edge_floats, edge_ints, edge_texts, table_name, Dialect,
    Rows, SqlValue,
};
use ffb_tests::{odbc, postgres};

/// Rows in the generated random part of the corpus.
const RANDOM_ROWS: usize = 300;
const SEED: u64 = 0x0005_eed0_fffb;
/// The big result.
const BIG: u64 = 100_000;

fn bridged(config: Config) -> Connection {
    ffb_tests::sql::open(config)
}

/// A query through the bridged driver, as [`Rows`], or the driver's
/// message.
fn try_query(db: &mut Connection, sql: &str, params: &[SqlValue]) -> Result<Rows, String> {
    // As the references say it: `SQLSTATE: message` for a driver's error.
    let text = |e: ffb_loader::Error| match &e.kind {
        ErrorKind::Foreign { code, .. } => format!("{code}: {}", e.message),
        _ => e.to_string(),
    };
    let params: Vec<Value> = params.iter().map(SqlValue::to_sql).collect();
    let rows = db.query(sql, &params).map_err(text)?;
    let columns = rows.columns().to_vec();
    let rows = rows
        .map(|r| r.map(|r| r.into_values().into_iter().map(SqlValue::from_sql).collect()))
        .collect::<Result<Vec<Vec<SqlValue>>, _>>()
        .map_err(text)?;
    Ok(Rows { columns, rows })
}

/// [`try_query`], which must succeed.
fn query(db: &mut Connection, sql: &str, params: &[SqlValue]) -> Rows {
    try_query(db, sql, params).unwrap_or_else(|e| panic!("bridged {sql}: {e}"))
}

/// The bridged and the in-process outcome of the same query agree: the
/// same rows, or both an error with the same message (a driver may refuse
/// a value, as psqlODBC refuses a blob with NUL bytes for an untyped
/// `select ?`; then it must refuse it through the bridge too).
fn assert_same_outcome(what: &str, bridged: Result<Rows, String>, reference: Result<Rows, String>) {
    match (bridged, reference) {
        (Ok(a), Ok(b)) => assert_same_rows(what, &a, &b),
        (Err(a), Err(b)) => assert_eq!(a, b, "{what}: the errors differ (bridged, reference)"),
        (a, b) => panic!("{what}: bridged {a:?}, reference {b:?}"),
    }
}

/// The corpus as the database gives it back: `Rows` with its column names.
fn expected(rows: &[Vec<SqlValue>]) -> Rows {
    Rows {
        columns: ["id", "i", "f", "t", "b"].map(String::from).to_vec(),
        rows: rows.to_vec(),
    }
}

/// Edge values bound as parameters and selected straight back, one per
/// row: `(value)` through `select P`.
fn edge_params(dialect: Dialect) -> Vec<SqlValue> {
    let mut v: Vec<SqlValue> = edge_ints().into_iter().map(SqlValue::Int).collect();
    v.extend(edge_floats(dialect).into_iter().map(SqlValue::Float));
    // -0.0 outside a column survives in SQLite too.
    v.push(SqlValue::Float(-0.0));
    v.extend(edge_texts().into_iter().map(SqlValue::Text));
    v.extend(edge_blobs().into_iter().map(SqlValue::Blob));
    v.push(SqlValue::Null);
    v
}

// ------------------------------------------------------------------ SQLite

#[test]
fn sqlite_corpus_is_identical_bridged_and_in_process() {
    let dir = Scratch::new("diff-sqlite");
    let path = dir.path("corpus.db");
    let path_str = path.to_str().expect("UTF-8 temp path");
    let rows = corpus(Dialect::Sqlite, SEED, RANDOM_ROWS);
    let reference = Sqlite::open(path_str);
    let t = "corpus";
    reference
        .query(&Dialect::Sqlite.create_table(t), &[])
        .unwrap();
    for r in &rows {
        reference.query(&Dialect::Sqlite.insert(t), r).unwrap();
    }
    let mut db = bridged(Config::sqlite(&path));
    let select = Dialect::Sqlite.select(t);
    let got = query(&mut db, &select, &[]);
    let want = reference.query(&select, &[]).unwrap();
    assert_same_rows("sqlite corpus", &got, &want);
    assert_same_rows("sqlite corpus vs generated", &got, &expected(&rows));

    // Written through the bridge, every value bound; read in process.
    let t2 = "corpus_bound";
    db.execute(&Dialect::Sqlite.create_table(t2), &[]).unwrap();
    for r in &rows {
        let params: Vec<Value> = r.iter().map(SqlValue::to_sql).collect();
        db.execute(&Dialect::Sqlite.insert(t2), &params).unwrap();
    }
    let back = reference.query(&Dialect::Sqlite.select(t2), &[]).unwrap();
    assert_same_rows(
        "sqlite corpus bound through the bridge",
        &back,
        &expected(&rows),
    );

    for v in edge_params(Dialect::Sqlite) {
        let got = query(&mut db, "select ? as v", std::slice::from_ref(&v));
        let want = reference
            .query("select ? as v", std::slice::from_ref(&v))
            .unwrap();
        assert_same_rows(&format!("sqlite select {v:?}"), &got, &want);
    }
}

#[test]
fn sqlite_100k_rows_are_identical() {
    let reference = Sqlite::open(":memory:");
    let mut db = bridged(Config::sqlite_memory());
    let sql = Dialect::Sqlite.generated(BIG);
    let got = query(&mut db, &sql, &[]);
    assert_eq!(got.rows.len() as u64, BIG);
    assert_same_rows("sqlite 100k", &got, &reference.query(&sql, &[]).unwrap());
}

// -------------------------------------------------------------- PostgreSQL

#[test]
fn postgres_corpus_is_identical_bridged_and_in_process() {
    let conninfo = postgres::server().socket_conninfo();
    let reference = Postgres::connect(&conninfo).expect("in-process libpq");
    let mut db = bridged(Config::postgres(conninfo));
    let rows = corpus(Dialect::Postgres, SEED, RANDOM_ROWS);
    let t = table_name("diff_pg");
    let t2 = table_name("diff_pg_bound");
    reference
        .query(&Dialect::Postgres.create_table(&t), &[])
        .unwrap();
    reference
        .query(&Dialect::Postgres.create_table(&t2), &[])
        .unwrap();
    for r in &rows {
        reference.query(&Dialect::Postgres.insert(&t), r).unwrap();
    }
    let select = Dialect::Postgres.select(&t);
    let got = query(&mut db, &select, &[]);
    assert_same_rows(
        "postgres corpus",
        &got,
        &reference.query(&select, &[]).unwrap(),
    );
    assert_same_rows("postgres corpus vs generated", &got, &expected(&rows));

    for r in &rows {
        let params: Vec<Value> = r.iter().map(SqlValue::to_sql).collect();
        db.execute(&Dialect::Postgres.insert(&t2), &params).unwrap();
    }
    let back = reference
        .query(&Dialect::Postgres.select(&t2), &[])
        .unwrap();
    assert_same_rows(
        "postgres corpus bound through the bridge",
        &back,
        &expected(&rows),
    );

    for v in edge_params(Dialect::Postgres) {
        let got = query(&mut db, "select $1 as v", std::slice::from_ref(&v));
        let want = reference
            .query("select $1 as v", std::slice::from_ref(&v))
            .unwrap();
        assert_same_rows(&format!("postgres select {v:?}"), &got, &want);
    }
    reference.query(&format!("drop table {t}"), &[]).unwrap();
    reference.query(&format!("drop table {t2}"), &[]).unwrap();
}

#[test]
fn postgres_100k_rows_are_identical() {
    let conninfo = postgres::server().socket_conninfo();
    let reference = Postgres::connect(&conninfo).expect("in-process libpq");
    let mut db = bridged(Config::postgres(conninfo));
    let sql = Dialect::Postgres.generated(BIG);
    let got = query(&mut db, &sql, &[]);
    assert_eq!(got.rows.len() as u64, BIG);
    assert_same_rows("postgres 100k", &got, &reference.query(&sql, &[]).unwrap());
}

// -------------------------------------------------------------------- ODBC

/// Only the columns the database keeps exactly: every column but the
/// float one (`f`, column 2) when `floats` is false.
fn exact_columns(rows: &Rows, floats: bool) -> Rows {
    let keep = |r: &Vec<SqlValue>| {
        r.iter()
            .enumerate()
            .filter(|(i, _)| floats || *i != 2)
            .map(|(_, v)| v.clone())
            .collect()
    };
    Rows {
        columns: rows
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| floats || *i != 2)
            .map(|(_, c)| c.clone())
            .collect(),
        rows: rows.rows.iter().map(keep).collect(),
    }
}

#[test]
fn odbc_postgres_corpus_is_identical_bridged_and_in_process() {
    let env = odbc::env();
    let connect = OdbcEnv::connection_string(&env.pg_dsn);
    let pg = Postgres::connect(&postgres::server().socket_conninfo()).expect("in-process libpq");
    let reference = Odbc::connect(&connect).expect("in-process unixODBC");
    let mut db = bridged(Config::odbc(&env.pg_dsn));
    let rows = corpus(Dialect::Postgres, SEED, RANDOM_ROWS);
    let t = table_name("diff_odbc_pg");
    let t2 = table_name("diff_odbc_pg_bound");
    pg.query(&Dialect::Postgres.create_table(&t), &[]).unwrap();
    pg.query(&Dialect::Postgres.create_table(&t2), &[]).unwrap();
    for r in &rows {
        pg.query(&Dialect::Postgres.insert(&t), r).unwrap();
    }
    let select = Dialect::Postgres.select(&t);
    let got = query(&mut db, &select, &[]);
    assert_same_rows(
        "odbc pg corpus",
        &got,
        &reference.query(&select, &[]).unwrap(),
    );
    assert_same_rows("odbc pg corpus vs generated", &got, &expected(&rows));

    let insert = Dialect::Sqlite.insert(&t2);
    for r in &rows {
        let params: Vec<Value> = r.iter().map(SqlValue::to_sql).collect();
        db.execute(&insert, &params).unwrap();
    }
    let back = pg.query(&Dialect::Postgres.select(&t2), &[]).unwrap();
    assert_same_rows(
        "odbc pg corpus bound through the bridge",
        &back,
        &expected(&rows),
    );

    for v in edge_params(Dialect::Postgres) {
        let got = try_query(&mut db, "select ? as v", std::slice::from_ref(&v));
        let want = reference.query("select ? as v", std::slice::from_ref(&v));
        assert_same_outcome(&format!("odbc pg select {v:?}"), got, want);
    }
    pg.query(&format!("drop table {t}"), &[]).unwrap();
    pg.query(&format!("drop table {t2}"), &[]).unwrap();
}

#[test]
fn odbc_sqlite_corpus_is_identical_bridged_and_in_process() {
    let env = odbc::env();
    let connect = OdbcEnv::connection_string(&env.sqlite_dsn);
    let lite = Sqlite::open(env.sqlite_db.to_str().expect("UTF-8 path"));
    let reference = Odbc::connect(&connect).expect("in-process unixODBC");
    let mut db = bridged(Config::odbc(&env.sqlite_dsn));
    let rows = corpus(Dialect::Sqlite, SEED, RANDOM_ROWS);
    let (t, by_ref, by_bridge) = (
        table_name("diff_odbc_lite"),
        table_name("diff_odbc_lite_ref"),
        table_name("diff_odbc_lite_bridge"),
    );
    // One fsync less per insert: the file is the tests' own.
    lite.query("PRAGMA synchronous = OFF", &[]).unwrap();
    reference.query("PRAGMA synchronous = OFF", &[]).unwrap();
    db.execute("PRAGMA synchronous = OFF", &[]).unwrap();
    for name in [&t, &by_ref, &by_bridge] {
        lite.query(&Dialect::Sqlite.create_table(name), &[])
            .unwrap();
    }
    for r in &rows {
        lite.query(&Dialect::Sqlite.insert(&t), r).unwrap();
    }
    let select = Dialect::Sqlite.select(&t);
    let got = query(&mut db, &select, &[]);
    assert_same_rows(
        "odbc sqlite corpus",
        &got,
        &reference.query(&select, &[]).unwrap(),
    );
    assert_same_rows(
        "odbc sqlite corpus vs generated (all but floats)",
        &exact_columns(&got, false),
        &exact_columns(&expected(&rows), false),
    );

    // Bound through the bridge and in process, the same values land.
    for r in &rows {
        let params: Vec<Value> = r.iter().map(SqlValue::to_sql).collect();
        db.execute(&Dialect::Sqlite.insert(&by_bridge), &params)
            .unwrap();
        reference
            .query(&Dialect::Sqlite.insert(&by_ref), r)
            .unwrap();
    }
    let a = lite
        .query(&Dialect::Sqlite.select(&by_bridge), &[])
        .unwrap();
    let b = lite.query(&Dialect::Sqlite.select(&by_ref), &[]).unwrap();
    assert_same_rows("odbc sqlite corpus bound", &a, &b);
    assert_same_rows(
        "odbc sqlite corpus bound vs generated (all but floats)",
        &exact_columns(&a, false),
        &exact_columns(&expected(&rows), false),
    );

    for v in edge_params(Dialect::Sqlite) {
        let got = try_query(&mut db, "select ? as v", std::slice::from_ref(&v));
        let want = reference.query("select ? as v", std::slice::from_ref(&v));
        assert_same_outcome(&format!("odbc sqlite select {v:?}"), got, want);
    }
    for name in [&t, &by_ref, &by_bridge] {
        lite.query(&format!("drop table {name}"), &[]).unwrap();
    }
}

#[test]
fn odbc_100k_rows_are_identical_with_both_dsns() {
    let env = odbc::env();
    // The SQLite side on a database of its own, so that its long read never
    // holds a lock another test's writer waits for.
    let dir = Scratch::new("diff-odbc-100k");
    let own = OdbcEnv::sqlite_connection_string(&dir.path("big.db"));
    let pg = OdbcEnv::connection_string(&env.pg_dsn);
    for (dsn, dialect) in [(&pg, Dialect::Postgres), (&own, Dialect::Sqlite)] {
        let reference = Odbc::connect(dsn).expect("in-process unixODBC");
        let mut db = bridged(Config::odbc(dsn));
        let sql = dialect.generated(BIG);
        let got = query(&mut db, &sql, &[]);
        assert_eq!(got.rows.len() as u64, BIG, "{dsn}");
        assert_same_rows(
            &format!("odbc {dsn} 100k"),
            &got,
            &reference.query(&sql, &[]).unwrap(),
        );
    }
}
