//! The postgres driver (`ffb_loader::sql` over a bridged libpq) against the
//! private test server (`scripts/postgres.sh`, [`ffb_tests::postgres`]):
//! values by type, parameters, streaming, the server's errors as
//! `foreign`, and the policy it derives from the connection string.

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::{BridgeMode, ErrorKind};
use ffb_tests::postgres::server;
use ffb_tests::sql_corpus::table_name;
use ffb_tests::{cli, shim_bin};

fn config(conninfo: String) -> Config {
    Config::postgres(conninfo)
        .bridge_mode(BridgeMode::Enabled)
        .shim(shim_bin())
        .timeout(ffb_tests::bridge::HANG_TIMEOUT)
}

fn socket() -> Connection {
    Connection::open(config(server().socket_conninfo())).expect("connecting over the socket")
}

fn all(db: &mut Connection, sql: &str, params: &[Value]) -> Vec<Vec<Value>> {
    db.query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.map(|r| r.into_values()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn code(e: &ffb_loader::Error) -> &str {
    match &e.kind {
        ErrorKind::Foreign { driver, code } => {
            assert_eq!(driver, "postgres", "{e}");
            code
        }
        other => panic!("expected a foreign error, got {other:?}: {e}"),
    }
}

#[test]
fn types_map_to_values() {
    let mut db = socket();
    assert_eq!(db.driver_name(), "postgres");
    let rows = all(
        &mut db,
        "select 1::int2, 2::int4, (-9223372036854775808)::int8, 1.5::float4, 'NaN'::float8, \
         '-Infinity'::float8, '-0'::float8, true, false, '\\x00ff'::bytea, ''::bytea, 1.50::numeric, \
         'héllo'::text, null::int, null::bytea, ''::text",
        &[],
    );
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r[0], Value::Int(1));
    assert_eq!(r[1], Value::Int(2));
    assert_eq!(r[2], Value::Int(i64::MIN));
    assert_eq!(r[3], Value::Float(1.5));
    assert!(matches!(r[4], Value::Float(f) if f.is_nan()), "{:?}", r[4]);
    assert_eq!(r[5], Value::Float(f64::NEG_INFINITY));
    assert!(
        matches!(r[6], Value::Float(f) if f == 0.0 && f.is_sign_negative()),
        "{:?}",
        r[6]
    );
    assert_eq!(r[7], Value::Int(1));
    assert_eq!(r[8], Value::Int(0));
    assert_eq!(r[9], Value::Blob(vec![0, 255]));
    assert_eq!(r[10], Value::Blob(vec![]));
    assert_eq!(r[11], Value::Text("1.50".into()));
    assert_eq!(r[12], Value::Text("héllo".into()));
    assert_eq!(r[13], Value::Null);
    assert_eq!(r[14], Value::Null);
    assert_eq!(r[15], Value::Text(String::new()));
}

#[test]
fn parameters_of_every_kind_bind() {
    let mut db = socket();
    let blob = b"nul\0inside\xff".to_vec();
    let rows = all(
        &mut db,
        "select $1::int8, $2::float8, $3::text, $4::bytea, $5::text, $6, length($4)",
        &[
            Value::Int(i64::MAX),
            Value::Float(f64::from_bits(1)),
            Value::Text("it's, \"quoted\"\nand 🦀".into()),
            Value::Blob(blob.clone()),
            Value::Null,
            Value::Text("untyped".into()),
        ],
    );
    assert_eq!(
        rows,
        [vec![
            Value::Int(i64::MAX),
            Value::Float(f64::from_bits(1)),
            Value::Text("it's, \"quoted\"\nand 🦀".into()),
            Value::Blob(blob.clone()),
            Value::Null,
            Value::Text("untyped".into()),
            Value::Int(blob.len() as i64),
        ]]
    );
    // An untyped blob parameter is bytea, as PQexecParams with its OID.
    assert_eq!(
        all(&mut db, "select $1", &[Value::Blob(vec![1, 2])]),
        [vec![Value::Blob(vec![1, 2])]]
    );
    // NaN and infinities as parameters.
    let rows = all(
        &mut db,
        "select $1::float8, $2::float8",
        &[Value::Float(f64::NAN), Value::Float(f64::INFINITY)],
    );
    assert!(matches!(rows[0][0], Value::Float(f) if f.is_nan()));
    assert_eq!(rows[0][1], Value::Float(f64::INFINITY));
}

#[test]
fn statements_run_in_order_and_report_changes() {
    let mut db = socket();
    let t = table_name("pg_changes");
    let n = db
        .execute(
            &format!(
                "create table {t} (id int primary key, name text); \
                 insert into {t} values (1, 'one'), (2, 'two'); \
                 update {t} set name = upper(name) where id >= $1"
            ),
            &[Value::Int(1)],
        )
        .unwrap();
    assert_eq!(n, 2);
    let rows = all(
        &mut db,
        &format!("select id, name from {t} order by id"),
        &[],
    );
    assert_eq!(
        rows,
        [
            vec![Value::Int(1), Value::from("ONE")],
            vec![Value::Int(2), Value::from("TWO")]
        ]
    );
    // A prepared statement runs again with other parameters.
    {
        let mut stmt = db
            .prepare(&format!("insert into {t} values ($1, $2)"))
            .unwrap();
        for i in 3..6 {
            assert_eq!(
                stmt.execute(&[Value::Int(i), Value::Text(format!("n{i}"))])
                    .unwrap(),
                1
            );
        }
    }
    assert_eq!(
        all(&mut db, &format!("select count(*) from {t}"), &[]),
        [vec![Value::Int(5)]]
    );
    db.execute(&format!("drop table {t}"), &[]).unwrap();
}

#[test]
fn server_errors_are_foreign_with_their_sqlstate() {
    let mut db = socket();
    let e = db.execute("selec 1", &[]).unwrap_err();
    assert_eq!(code(&e), "42601", "{e}");
    assert!(e.message.contains("syntax error"), "{e}");
    let e = db
        .query("select * from no_such_table_here", &[])
        .map(|_| ())
        .unwrap_err();
    assert_eq!(code(&e), "42P01", "{e}");
    assert!(
        e.message.contains("\"no_such_table_here\" does not exist"),
        "{e}"
    );

    let t = table_name("pg_unique");
    db.execute(&format!("create table {t} (id int primary key)"), &[])
        .unwrap();
    db.execute(&format!("insert into {t} values (1)"), &[])
        .unwrap();
    let e = db
        .execute(&format!("insert into {t} values (1)"), &[])
        .unwrap_err();
    assert_eq!(code(&e), "23505", "{e}");
    assert!(
        e.message.contains("DETAIL:  Key (id)=(1) already exists."),
        "{e}"
    );

    // An error in the middle of a result, after rows have streamed.
    let mut rows = db
        .query("select 1 / (3000 - x) from generate_series(1, 5000) x", &[])
        .unwrap();
    let mut seen = 0;
    let e = loop {
        match rows.next() {
            Some(Ok(_)) => seen += 1,
            Some(Err(e)) => break e,
            None => panic!("the division by zero was not reported"),
        }
    };
    drop(rows);
    assert_eq!(seen, 2999);
    assert_eq!(code(&e), "22012", "{e}");
    assert_eq!(e.message, "division by zero");

    // The wrong number of parameters is the caller's mistake.
    let e = db.execute("select $1::int", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    let e = db
        .execute("select $1::int", &[Value::Int(1), Value::Int(2)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    let e = db
        .execute("select $1", &[Value::Text("a\0b".into())])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");

    // The connection still works after all of that.
    assert_eq!(all(&mut db, "select 42", &[]), [vec![Value::Int(42)]]);
    db.execute(&format!("drop table {t}"), &[]).unwrap();
}

#[test]
fn a_big_result_streams_and_can_be_left_early() {
    let mut db = socket();
    let mut rows = db
        .query(
            "select x, md5(x::text) from generate_series(1, 200000) x",
            &[],
        )
        .unwrap();
    rows.set_page_rows(500);
    let first: Vec<_> = rows
        .by_ref()
        .take(1234)
        .map(|r| r.unwrap().into_values())
        .collect();
    assert_eq!(first[1233][0], Value::Int(1234));
    // Left with most of its rows unread: the connection is drained for the
    // next statement.
    drop(rows);
    let n = db
        .query(
            "select count(*), sum(x) from generate_series(1, 100000) x",
            &[],
        )
        .unwrap()
        .map(|r| r.unwrap().into_values())
        .collect::<Vec<_>>();
    assert_eq!(n, [vec![Value::Int(100000), Value::Int(5000050000)]]);
    let mut count = 0u64;
    for (i, r) in db
        .query("select x from generate_series(1, 100000) x", &[])
        .unwrap()
        .enumerate()
    {
        assert_eq!(r.unwrap()[0], Value::Int(i as i64 + 1));
        count += 1;
    }
    assert_eq!(count, 100000);
}

#[test]
fn tcp_with_the_password_works_and_a_wrong_one_is_foreign() {
    let srv = server();
    let mut db =
        Connection::open(config(srv.tcp_conninfo(&srv.password))).expect("TCP with the password");
    assert_eq!(
        all(&mut db, "select current_user", &[]),
        [vec![Value::Text(srv.user.clone())]]
    );
    let e = Connection::open(config(srv.tcp_conninfo("wrong-password"))).unwrap_err();
    assert_eq!(code(&e), "28P01", "{e}");
    assert!(e.message.contains("password authentication failed"), "{e}");
}

#[test]
fn a_malformed_connection_string_is_bad_input() {
    let e = Connection::open(config("host=/tmp port=notaport".into())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    let e = Connection::open(config("service=prod".into())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
}

#[test]
fn ffb_sql_over_postgres_prints_and_fails_with_exit_1() {
    let srv = server();
    let conninfo = srv.socket_conninfo();
    let r = cli::ffb_run(&[
        "sql",
        "--bridge-mode",
        "--driver",
        "postgres",
        "--db",
        &conninfo,
        "--json",
        "select $1::int8 as a, $2 as b, null as c",
        "7",
        "x,y",
    ]);
    r.expect_code(0);
    assert_eq!(
        r.json(),
        serde_json::json!({"columns": ["a", "b", "c"], "rows": [[7, "x,y", null]]})
    );
    let tcp = srv.tcp_conninfo("wrong-password");
    let r = cli::ffb_run(&[
        "sql",
        "--bridge-mode",
        "--driver",
        "postgres",
        "--db",
        &tcp,
        "select 1",
    ]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("password authentication failed"),
        "{}",
        r.stderr
    );
}

/// The policy the driver derives for a TCP connection string, built the same
/// way from the public pieces (the shipped `manifests/libpq.policy.toml` and
/// a `connect_tcp` grant of the string's port), then libpq itself, in that
/// helper, asked to connect elsewhere: the attacker is a compromised libpq
/// using its own code. The granted port works; an unlisted port on the same
/// host is refused (Landlock) and its listener never sees a connection.
#[test]
fn a_helper_granted_one_port_cannot_reach_another() {
    use ffb_policy::grants::Grants;
    use std::net::TcpListener;

    let srv = server();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/libpq.policy.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let policy = ffb_policy::source::parse_toml_policy(&text, path)
        .unwrap()
        .with_grants(&Grants {
            connect_tcp: vec![srv.port],
            ..Grants::default()
        })
        .unwrap();
    let mut pq = ffb_tests::bridge_builder(
        "libpq.so.5",
        &[
            "PQconnectdb(cstr) -> handle<pgconn>",
            "PQstatus(handle<pgconn>) -> i32",
            "PQerrorMessage(handle<pgconn>) -> cstr",
            "PQfinish(handle<pgconn>) -> void",
        ],
    )
    .policy(policy)
    .load()
    .unwrap();
    let mut connect = |conninfo: &str| -> (i64, String) {
        let conn = pq
            .call_by_name("PQconnectdb", &[ffb_loader::Value::str(conninfo)])
            .unwrap()
            .ret;
        let status = pq
            .call_by_name("PQstatus", std::slice::from_ref(&conn))
            .unwrap()
            .ret;
        let msg = pq
            .call_by_name("PQerrorMessage", std::slice::from_ref(&conn))
            .unwrap()
            .ret;
        pq.call_by_name("PQfinish", &[conn]).unwrap();
        let msg = match msg {
            ffb_loader::Value::Str(b) => String::from_utf8_lossy(&b).into_owned(),
            other => format!("{other:?}"),
        };
        (status.as_i128().unwrap() as i64, msg)
    };
    let (status, msg) = connect(&srv.tcp_conninfo(&srv.password));
    assert_eq!(status, 0, "the granted port: {msg}");

    let decoy = TcpListener::bind("127.0.0.1:0").unwrap();
    decoy.set_nonblocking(true).unwrap();
    let port = decoy.local_addr().unwrap().port();
    let (status, msg) = connect(&format!(
        "host=127.0.0.1 port={port} user=ffb password=x dbname=ffb_test sslmode=disable connect_timeout=5"
    ));
    assert_ne!(status, 0, "an unlisted port connected: {msg}");
    assert!(msg.contains("Permission denied"), "{msg}");
    assert!(
        decoy.accept().is_err(),
        "the unlisted port's listener saw a connection"
    );
}

/// The name `id -un` gives: the host's effective user.
fn host_user_name() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("running id -un");
    assert!(out.status.success(), "id -un: {out:?}");
    String::from_utf8(out.stdout)
        .expect("a UTF-8 user name")
        .trim_end()
        .to_string()
}

/// A connection string with no `user`: libpq would take `PGUSER`, else the
/// effective user's name, and can do neither in the helper (an empty
/// environment; a sandbox uid with no passwd entry: "could not look up
/// local user ID"). The host names that user for it.
#[test]
fn a_connection_string_without_a_user_connects_as_the_host_user() {
    let srv = server();
    let expected = std::env::var("PGUSER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(host_user_name);
    // The role may not exist yet on the test server (which trusts every
    // role on its socket); other runs may be making it at the same time.
    let mut admin = Connection::open(config(srv.superuser_conninfo())).expect("the superuser");
    let role = expected.replace('"', "\"\"");
    admin
        .execute(
            &format!(
                "do $$ begin create role \"{role}\" login; \
                 exception when duplicate_object or unique_violation then null; end $$"
            ),
            &[],
        )
        .expect("making the host user's role");
    let no_user = format!(
        "host={} port={} dbname={}",
        srv.socket_dir.display(),
        srv.port,
        srv.db
    );
    let mut db = Connection::open(config(no_user.clone())).expect("connecting without user=");
    assert_eq!(
        all(&mut db, "select current_user::text", &[]),
        [[Value::Text(expected)]]
    );

    // `PGUSER` in the host's environment wins, as it does for libpq.
    let mut cmd = cli::ffb();
    cmd.env("PGUSER", &srv.user).args([
        "sql",
        "--bridge-mode",
        "--driver",
        "postgres",
        "--db",
        &no_user,
        "--json",
        "select current_user::text as u",
    ]);
    let r = cli::run(cmd, None);
    r.expect_code(0);
    assert_eq!(
        r.json(),
        serde_json::json!({"columns": ["u"], "rows": [[srv.user]]})
    );
}
