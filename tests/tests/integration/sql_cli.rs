//! `ffb sql` as a user runs it: the three output formats on a corpus of
//! awkward values, every kind of parameter, several statements, the
//! driver's errors, bad usage, a large streamed result, Ctrl-C and a closed
//! stdout. Everything runs the real `ffb` binary against the real
//! libsqlite3 through a helper.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ffb_tests::cli::{ffb, ffb_run, path_str, read_all, refused, run, wait_with_deadline, Scratch};
use ffb_tests::procfs::{proc_stat, processes};
use serde_json::{json, Value as Json};

/// `ffb sql --bridge-mode ARGS...`.
fn sql(args: &[&str]) -> ffb_tests::cli::Run {
    let mut all = vec!["sql", "--bridge-mode"];
    all.extend_from_slice(args);
    ffb_run(&all)
}

/// The version the library itself reports, read in-process through libloading.
fn library_version() -> String {
    // SAFETY: loading the system libsqlite3, whose constructors are trusted
    // here (the test's reference, not the code under test).
    let lib = unsafe { libloading::Library::new("libsqlite3.so.0") }
        .expect("libsqlite3.so.0 is needed (Debian package libsqlite3-0)");
    // SAFETY: sqlite3_libversion has this signature and returns a static string.
    let f: libloading::Symbol<unsafe extern "C" fn() -> *const libc::c_char> =
        unsafe { lib.get(b"sqlite3_libversion") }.expect("sqlite3_libversion");
    // SAFETY: the call takes nothing and returns a NUL-terminated static string.
    let p = unsafe { f() };
    // SAFETY: p is a valid NUL-terminated string that lives as long as the library.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn sqlite_version_works_with_no_database() {
    let r = sql(&["select sqlite_version()"]);
    r.expect_code(0);
    let v = library_version();
    let rule = "-".repeat("sqlite_version()".len());
    assert_eq!(r.stdout, format!("sqlite_version()\n{rule}\n{v}\n(1 row)\n"));
    assert_eq!(r.stderr, "");
    let r = sql(&["--json", "select sqlite_version() as v"]);
    r.expect_code(0);
    assert_eq!(r.json(), json!({"columns": ["v"], "rows": [[v]]}));
}

/// The corpus, bound as parameters so that the values are exactly what the
/// test wrote (SQLite's own parsing of literals is not what is tested):
/// `(id, number, text or blob)` per row.
const CORPUS: &[[&str; 3]] = &[
    ["1", "-9223372036854775808", "plain"],
    ["2", "9223372036854775807", "comma, \"quote\""],
    ["3", "0.0", "new\nline"],
    ["4", "-0.0", "ünïcødé 日本 🎉"],
    ["5", "4.9406564584124654e-324", ""],
    ["6", "2.2250738585072014e-308", "null"],
    ["7", "1.7976931348623157e308", "hex:00ff0061"],
    ["8", "9e999", "hex:"],
    ["9", "-9e999", "tab\tcr\r"],
    ["10", "1e300", "'single'"],
    ["11", "-1.5", "text:42"],
];

fn corpus_run(format: &[&str]) -> ffb_tests::cli::Run {
    let rows: Vec<&str> = CORPUS.iter().map(|_| "(?, ?, ?)").collect();
    let query = format!("select * from (values {})", rows.join(", "));
    let mut args = vec!["sql", "--bridge-mode"];
    args.extend_from_slice(format);
    args.push(&query);
    for row in CORPUS {
        args.extend_from_slice(row);
    }
    let r = ffb_run(&args);
    r.expect_code(0);
    assert_eq!(r.stderr, "", "{r:#?}");
    r
}

#[test]
fn json_output_of_the_corpus_is_exact() {
    let r = corpus_run(&["--json"]);
    let expected = concat!(
        r#"{"columns":["column1","column2","column3"],"rows":["#,
        r#"[1,-9223372036854775808,"plain"],"#,
        r#"[2,9223372036854775807,"comma, \"quote\""],"#,
        r#"[3,0.0,"new\nline"],"#,
        r#"[4,-0.0,"ünïcødé 日本 🎉"],"#,
        r#"[5,5e-324,""],"#,
        r#"[6,2.2250738585072014e-308,null],"#,
        r#"[7,1.7976931348623157e308,{"hex":"00ff0061"}],"#,
        r#"[8,"inf",{"hex":""}],"#,
        r#"[9,"-inf","tab\tcr\r"],"#,
        r#"[10,1e300,"'single'"],"#,
        r#"[11,-1.5,"42"]]}"#,
        "\n"
    );
    assert_eq!(r.stdout, expected);
    // And it is JSON, whose numbers read back to the same values.
    let v: Json = serde_json::from_str(&r.stdout).expect("valid JSON");
    assert_eq!(v["rows"][0][1], json!(i64::MIN));
    assert_eq!(v["rows"][4][1].as_f64(), Some(5e-324));
    assert!(v["rows"][3][1].as_f64().unwrap().is_sign_negative());
}

#[test]
fn csv_output_of_the_corpus_is_exact() {
    let r = corpus_run(&["--csv"]);
    let expected = concat!(
        "column1,column2,column3\n",
        "1,-9223372036854775808,plain\n",
        "2,9223372036854775807,\"comma, \"\"quote\"\"\"\n",
        "3,0.0,\"new\nline\"\n",
        "4,-0.0,ünïcødé 日本 🎉\n",
        "5,5e-324,\n",
        "6,2.2250738585072014e-308,\n",
        "7,1.7976931348623157e308,x'00ff0061'\n",
        "8,inf,x''\n",
        "9,-inf,\"tab\tcr\r\"\n",
        "10,1e300,'single'\n",
        "11,-1.5,42\n",
    );
    assert_eq!(r.stdout, expected);
}

#[test]
fn table_output_of_the_corpus_is_exact() {
    let r = corpus_run(&[]);
    let expected = concat!(
        "column1 | column2                 | column3\n",
        "--------+-------------------------+----------------\n",
        "      1 |    -9223372036854775808 | plain\n",
        "      2 |     9223372036854775807 | comma, \"quote\"\n",
        "      3 |                     0.0 | new\\nline\n",
        "      4 |                    -0.0 | ünïcødé 日本 🎉\n",
        "      5 |                  5e-324 | \n",
        "      6 | 2.2250738585072014e-308 | NULL\n",
        "      7 |  1.7976931348623157e308 | x'00ff0061'\n",
        "      8 |                     inf | x''\n",
        "      9 |                    -inf | tab\\tcr\\r\n",
        "     10 |                   1e300 | 'single'\n",
        "     11 |                    -1.5 | 42\n",
        "(11 rows)\n",
    );
    assert_eq!(r.stdout, expected);
}

#[test]
fn each_parameter_kind_binds_as_its_type() {
    let scratch = Scratch::new("sql-param");
    let file = scratch.file("blob.bin", b"a\0b\xff");
    let at_file = format!("@{}", path_str(&file));
    let cases: &[(&str, &str, Json)] = &[
        ("42", "integer", json!(42)),
        ("-0x10", "integer", json!(-16)),
        ("2.5", "real", json!(2.5)),
        ("-1e-3", "real", json!(-0.001)),
        ("null", "null", Json::Null),
        ("hex:00ff", "blob", json!({"hex": "00ff"})),
        (&at_file, "blob", json!({"hex": "610062ff"})),
        ("hello", "text", json!("hello")),
        ("text:12", "text", json!("12")),
        ("", "text", json!("")),
    ];
    for (param, ty, value) in cases {
        let r = sql(&["--json", "select typeof(?1), ?1", param]);
        r.expect_code_for(0, param);
        assert_eq!(
            r.json_for(param),
            json!({"columns": ["typeof(?1)", "?1"], "rows": [[ty, value]]}),
            "parameter {param:?}"
        );
    }
}

#[test]
fn several_statements_run_in_order_and_parameters_bind_to_the_last() {
    let r = sql(&[
        "--csv",
        "create table t(id integer primary key, s text);\
         create trigger tr after insert on t begin insert into t(s) select 'copy;' where new.s = 'a'; end;\
         insert into t(s) values ('a'); -- a comment; with a semicolon\n\
         /* another; */ select id, s from t where id >= ? order by id;;",
        "1",
    ]);
    r.expect_code(0);
    assert_eq!(r.stdout, "id,s\n1,a\n2,copy;\n");
    // A statement before the last does not take the parameters.
    let r = sql(&["select ?; select 1", "5"]);
    r.expect_code(2);
    let line = r.one_stderr_line();
    assert!(
        line.contains("statement 1") && line.contains("last statement"),
        "{line}"
    );
    // Text with no statement at all prints nothing and succeeds.
    let r = sql(&[" ; -- nothing\n"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "");
}

#[test]
fn driver_errors_are_foreign_with_the_drivers_message() {
    let cases: &[(&str, &str)] = &[
        ("selec 1", "ffb: foreign (sqlite 1): near \"selec\": syntax error"),
        ("select * from missing", "ffb: foreign (sqlite 1): no such table: missing"),
        (
            "create table t(x unique); insert into t values (1); insert into t values (1)",
            "ffb: foreign (sqlite 2067): UNIQUE constraint failed: t.x",
        ),
        (
            "select 1; select 1 / nosuchcolumn",
            "ffb: foreign (sqlite 1): no such column: nosuchcolumn",
        ),
    ];
    for (query, message) in cases {
        for format in [&[][..], &["--json"][..]] {
            let mut args = format.to_vec();
            args.push(query);
            let r = sql(&args);
            r.expect_code_for(1, query);
            assert_eq!(r.one_stderr_line_for(query), *message, "{r:#?}");
        }
    }
    // A wrong parameter count is the user's input: exit 2.
    let r = sql(&["select ?, ?", "1"]);
    r.expect_code(2);
    assert!(r.one_stderr_line().contains("takes 2 parameters, 1 given"), "{r:#?}");
}

#[test]
fn bad_usage_is_one_line_exit_2_and_spawns_nothing() {
    let scratch = Scratch::new("sql-usage");
    let missing = scratch.path("missing.bin");
    let at_missing = format!("@{}", path_str(&missing));
    let cases: &[(&str, &[&str])] = &[
        ("bridge mode off", &["sql", "select 1"]),
        ("bad hex", &["sql", "--bridge-mode", "select ?", "hex:0"]),
        ("unreadable file", &["sql", "--bridge-mode", "select ?", &at_missing]),
        ("integer out of range", &["sql", "--bridge-mode", "select ?", "9223372036854775808"]),
        ("postgres without --db", &["sql", "--bridge-mode", "--driver", "postgres", "select 1"]),
        ("odbc without --db", &["sql", "--bridge-mode", "--driver", "odbc", "select 1"]),
        ("unknown driver", &["sql", "--bridge-mode", "--driver", "mysql", "select 1"]),
        ("two formats", &["sql", "--bridge-mode", "--json", "--csv", "select 1"]),
        ("no SQL", &["sql", "--bridge-mode"]),
    ];
    for (case, args) in cases {
        let r = refused(case, args, None);
        let line = r.one_stderr_line_for(case);
        assert!(line.starts_with("ffb: "), "{case}: {line}");
        assert_eq!(r.stdout, "", "{case}");
    }
}

/// A recursive query with `n` rows of four columns (integer, real, text, blob).
fn counting(n: u64) -> String {
    format!(
        "with recursive c(x) as (select 1 union all select x + 1 from c where x < {n}) \
         select x, x * 0.5, 'row ' || x, zeroblob(x % 3) from c"
    )
}

#[test]
fn a_hundred_thousand_rows_stream_in_order() {
    let r = sql(&["--csv", &counting(100_000)]);
    r.expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 100_001);
    assert_eq!(lines[0], "x,x * 0.5,'row ' || x,zeroblob(x % 3)");
    assert_eq!(lines[1], "1,0.5,row 1,x'00'");
    assert_eq!(lines[100_000], "100000,50000.0,row 100000,x'00'");
    for (i, line) in lines[1..].iter().enumerate() {
        let n = i as u64 + 1;
        assert!(line.starts_with(&format!("{n},")), "line {n}: {line}");
    }
    let r = sql(&["--json", &counting(100_000)]);
    r.expect_code(0);
    let v: Json = serde_json::from_str(&r.stdout).expect("one JSON document");
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 100_000);
    assert_eq!(rows[99_999], json!([100000, 50000.0, "row 100000", {"hex": "00"}]));
}

/// An endless result: nothing could hold it, so rows that reach the reader
/// prove the output streams.
const ENDLESS: &str = "with recursive c(x) as (select 1 union all select x + 1 from c) select x from c";

/// Starts `ffb sql --bridge-mode ARGS...` with stdout and stderr piped.
fn start(args: &[&str]) -> Child {
    let mut cmd = ffb();
    cmd.args(["sql", "--bridge-mode"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("starting ffb")
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    for format in ["--csv", "--json", "--table"] {
        let format_args: &[&str] = if format == "--table" { &[] } else { &[format] };
        let mut args = format_args.to_vec();
        args.push(ENDLESS);
        let mut child = start(&args);
        let stderr = read_all(child.stderr.take().expect("stderr"));
        // Some output, not a line: a JSON document is one line until it ends.
        let mut out = child.stdout.take().expect("stdout");
        let mut first = [0u8; 64];
        let n = out.read(&mut first).expect("reading stdout");
        assert!(n > 0, "{format}: no output");
        drop(out); // `| head -c 64`
        let status = wait_with_deadline(&mut child, "ffb sql with a closed stdout");
        let stderr = stderr.join().expect("stderr reader");
        assert_eq!(status.code(), Some(0), "{format}: {status:?} {stderr}");
        assert_eq!(stderr, "", "{format}: a closed stdout is not an error");
    }
}

/// The pids below `root` with their start times (to tell pid reuse apart).
fn descendants(root: i32) -> HashMap<i32, (String, u64)> {
    let all = processes();
    let mut found = HashMap::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for (pid, stat) in all.iter().filter(|(_, s)| s.ppid == p) {
            if found.insert(*pid, (stat.comm.clone(), stat.start_time)).is_none() {
                todo.push(*pid);
            }
        }
    }
    found
}

/// Which of `watched` still run (not gone, not a zombie), after a grace
/// period for the parent-death signals to land.
fn survivors(watched: &HashMap<i32, (String, u64)>) -> Vec<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<(i32, String)> = watched
            .iter()
            .filter(|(pid, (_, start))| {
                proc_stat(**pid).is_some_and(|s| s.start_time == *start && !s.is_dead())
            })
            .map(|(pid, (comm, _))| (*pid, comm.clone()))
            .collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `args`, waits until its helper is up (and, with `wait_for`, until
/// that text was printed), sends SIGINT to ffb alone, and checks it stops
/// with 130, says so, and leaves no ffb-shim process behind. Returns stdout.
fn interrupt(args: &[&str], wait_for: Option<&str>) -> String {
    let mut child = start(args);
    let pid = child.id() as i32;
    let stderr = read_all(child.stderr.take().expect("stderr"));
    let mut out = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    if let Some(text) = wait_for {
        let mut byte = [0u8; 1];
        while !seen.ends_with(text.as_bytes()) {
            let n = out.read(&mut byte).expect("reading stdout");
            assert_eq!(n, 1, "ffb ended before it printed {text:?}");
            seen.push(byte[0]);
        }
    }
    // The fork server and the helper, both named ffb-shim.
    let deadline = Instant::now() + Duration::from_secs(30);
    let watched = loop {
        let d = descendants(pid);
        if d.values().filter(|(comm, _)| comm == "ffb-shim").count() >= 2 {
            break d;
        }
        assert!(Instant::now() < deadline, "no helper appeared: {d:?}");
        thread::sleep(Duration::from_millis(10));
    };
    // Drain stdout meanwhile, as a terminal would.
    let rest = read_all(out);
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let status = wait_with_deadline(&mut child, "ffb sql after SIGINT");
    let stderr = stderr.join().expect("stderr reader");
    assert_eq!(status.code(), Some(130), "{status:?} {stderr}");
    assert_eq!(stderr, "ffb: interrupted\n");
    let left = survivors(&watched);
    assert!(left.is_empty(), "still running after ffb exited: {left:?}");
    let mut stdout = String::from_utf8(seen).expect("UTF-8");
    stdout.push_str(&rest.join().expect("stdout reader"));
    stdout
}

#[test]
fn ctrl_c_stops_a_streaming_query_cleanly() {
    let stdout = interrupt(&["--json", ENDLESS], Some("[1],"));
    // The document was ended, so what was printed stays valid JSON.
    let v: Json = serde_json::from_str(&stdout).expect("a complete JSON document");
    let rows = v["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    assert_eq!(rows[0], json!([1]));
}

#[test]
fn ctrl_c_stops_a_query_stuck_in_one_call() {
    // No row ever comes: the helper is inside one sqlite3_step.
    let stuck = format!("select count(*) from ({ENDLESS})");
    let stdout = interrupt(&["--csv", &stuck], None);
    assert_eq!(stdout, "count(*)\n");
}

#[test]
fn a_database_file_round_trips_and_keeps_nothing_else() {
    let scratch = Scratch::new("sql-file");
    let db = scratch.path("data.db");
    let db_arg = path_str(&db);
    let r = sql(&[
        "--db",
        db_arg,
        "create table t(id integer, v); insert into t values (1, 'one'), (2, x'00')",
    ]);
    r.expect_code(0);
    assert_eq!(r.stdout, "");
    let r = sql(&["--db", db_arg, "--csv", "select * from t order by id"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "id,v\n1,one\n2,x'00'\n");
    // The side files the host made for the helper are gone again.
    let mut names: Vec<String> = std::fs::read_dir(scratch.path(""))
        .expect("scratch dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["data.db"]);
    // A database that cannot be created is SQLite's CANTOPEN.
    let nowhere = scratch.path("no/such/dir.db");
    let r = sql(&["--db", path_str(&nowhere), "select 1"]);
    r.expect_code(1);
    assert!(
        r.one_stderr_line().starts_with("ffb: foreign (sqlite 14): unable to open database file"),
        "{r:#?}"
    );
}

#[test]
fn the_help_names_the_formats_and_exit_statuses() {
    let mut cmd = ffb();
    cmd.args(["sql", "--help"]);
    let r = run(cmd, None);
    r.expect_code(0);
    for needle in ["--json", "--csv", "--db", "--driver", "130", "hex:"] {
        assert!(r.stdout.contains(needle), "{needle} missing from\n{}", r.stdout);
    }
}
