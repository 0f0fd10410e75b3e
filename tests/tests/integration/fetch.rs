//! Fetch programs ([`Bridge::fetch`]): whole pages of rows in one handoff.
//!
//! * Real libsqlite3: a 10k-row table of every storage class (edge integers
//!   and floats, unicode text with quotes and newlines, blobs with NUL bytes,
//!   NULLs, a column whose type changes per row, and one blob of 150 KB)
//!   read through small pages (7 rows each) and through pages filled by
//!   bytes in a 256 KiB arena (so every page ends in a row that did not fit
//!   and is resumed), compared cell by cell with the same query run in this
//!   process ([`ffb_tests::sql_corpus::reference::Sqlite`]).
//! * A row bigger than a whole page: `resource_limit`, naming the arena.
//! * The hostile corpus's `ffb_fetch_attack`, run inside a fetch program:
//!   a scribbled page and forged answers all end in `protocol` (the helper
//!   killed), never in a panic, a wrong row count or a read out of bounds.

use std::ops::ControlFlow;

use ffb_loader::{
    Bridge, Cell, Cmp, ErrorKind, FetchEnd, FetchProgram, FetchState, FunctionId, Operand,
    SandboxPolicy, Value,
};
use ffb_tests::bridge::handle_of;
use ffb_tests::sql_corpus::reference::Sqlite;
use ffb_tests::sql_corpus::{assert_same_rows, Rows, SqlValue};
use ffb_tests::{bridge_builder, hostile_bridge, load_bridge};

use Operand::{Const, Reg, Scratch};

const SQLITE: &str = "libsqlite3.so.0";

const SQLITE_DECLS: &[&str] = &[
    "sqlite3_open_v2(cstr, *handle, i32, u64) -> i32",
    "sqlite3_exec(handle, cstr, u64, u64, u64) -> i32",
    "sqlite3_prepare_v2(handle, cstr, i32, *handle, u64) -> i32",
    "sqlite3_errmsg(handle) -> cstr",
    "sqlite3_step(handle) -> i32",
    "sqlite3_column_type(handle, i32) -> i32",
    "sqlite3_column_int64(handle, i32) -> i64",
    "sqlite3_column_double(handle, i32) -> f64",
    "sqlite3_column_text(handle, i32) -> u64",
    "sqlite3_column_blob(handle, i32) -> u64",
    "sqlite3_column_bytes(handle, i32) -> i32",
];

/// The table: 10k generated rows, the edge cases, and one 150 KB blob in
/// the middle (rowid 5000). Temporary tables in memory: the helper opens no
/// files (`CREATE TABLE` reads `/dev/urandom`, which Landlock refuses under
/// `fs-read`; SQLite carries on without it).
const SETUP: &str = "
PRAGMA temp_store = MEMORY;
CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, d);
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 10000)
INSERT INTO t SELECT
    x * 7919 - 40000000,
    x / 7.0 - 500.0,
    'row ' || x || ', \"q'' ' || char(10) || char(9786 + x % 50) || char(0) || 'z',
    CASE WHEN x % 11 = 0 THEN NULL ELSE CAST(x'00' || zeroblob(x % 7) || hex(x) || x'00ff' AS BLOB) END,
    CASE x % 5 WHEN 0 THEN NULL WHEN 1 THEN x WHEN 2 THEN x * 0.25 WHEN 3 THEN 'd' || x ELSE x'0102' END
FROM g;
UPDATE t SET b = CAST(zeroblob(150000) || x'01' AS BLOB) WHERE rowid = 5000;
INSERT INTO t VALUES (9223372036854775807, -0.0, '', x'', NULL);
INSERT INTO t VALUES (-9223372036854775808, 1.7976931348623157e308, 'a,b\"c', x'000000', 0);
INSERT INTO t VALUES (0, 4.9e-324, 'é€😀', x'ff', -1);
INSERT INTO t VALUES (NULL, NULL, NULL, NULL, NULL);
";

const SELECT: &str = "SELECT i, r, s, b, d FROM t ORDER BY rowid";

/// libsqlite3 in a helper under `fs-read`, with an arena of `arena` bytes.
fn sqlite_bridge(arena: usize) -> Bridge {
    bridge_builder(SQLITE, SQLITE_DECLS)
        .policy(SandboxPolicy::preset("fs-read").expect("the fs-read preset"))
        .arena_size(arena)
        .load()
        .expect("loading libsqlite3")
}

/// The sqlite functions a fetch program calls.
struct Fns {
    step: FunctionId,
    column_type: FunctionId,
    int64: FunctionId,
    double: FunctionId,
    text: FunctionId,
    blob: FunctionId,
    bytes: FunctionId,
}

impl Fns {
    fn of(b: &Bridge) -> Fns {
        let f = |name: &str| {
            b.function(name)
                .unwrap_or_else(|| panic!("{name} not declared"))
        };
        Fns {
            step: f("sqlite3_step"),
            column_type: f("sqlite3_column_type"),
            int64: f("sqlite3_column_int64"),
            double: f("sqlite3_column_double"),
            text: f("sqlite3_column_text"),
            blob: f("sqlite3_column_blob"),
            bytes: f("sqlite3_column_bytes"),
        }
    }
}

/// ADVANCE: r1 = sqlite3_step(r0), end unless SQLITE_ROW. READ, per column:
/// dispatch on sqlite3_column_type to the reader of that storage class.
fn sqlite_program(f: &Fns, columns: usize) -> FetchProgram {
    FetchProgram::builder(columns)
        .advance(|p| {
            p.call(f.step, &[Reg(0)], 1)
                .end_unless(1, Cmp::Eq, Const(100));
        })
        .read(|p| {
            for i in 0..columns as u64 {
                let at = [Reg(0), Const(i)];
                p.call(f.column_type, &at, 2);
                p.if_else(
                    2,
                    Cmp::Eq,
                    Const(1),
                    |t| {
                        t.call(f.int64, &at, 3).emit_int(3);
                    },
                    |e| {
                        e.if_else(
                            2,
                            Cmp::Eq,
                            Const(2),
                            |t| {
                                t.call(f.double, &at, 3).emit_float(3);
                            },
                            |e| {
                                e.if_else(
                                    2,
                                    Cmp::Eq,
                                    Const(3),
                                    |t| {
                                        t.call(f.text, &at, 3)
                                            .call(f.bytes, &at, 4)
                                            .emit_text(3, 4);
                                    },
                                    |e| {
                                        e.if_else(
                                            2,
                                            Cmp::Eq,
                                            Const(4),
                                            |t| {
                                                t.call(f.blob, &at, 3)
                                                    .call(f.bytes, &at, 4)
                                                    .emit_blob(3, 4);
                                            },
                                            |e| {
                                                e.emit_null();
                                            },
                                        );
                                    },
                                );
                            },
                        );
                    },
                );
            }
        })
        .build()
        .expect("the sqlite program builds")
}

/// Opens an in-memory database in the helper, runs `setup`, and prepares
/// `query`: the statement's handle.
fn open_and_prepare(b: &mut Bridge, setup: &str, query: &str) -> Value {
    let out = b
        .call_by_name(
            "sqlite3_open_v2",
            &[
                Value::str(":memory:"),
                Value::Null,
                Value::I32(6),
                Value::U64(0),
            ],
        )
        .expect("sqlite3_open_v2");
    assert_eq!(out.ret, Value::I32(0));
    let db = Value::Handle(handle_of(out.out[1].as_ref().expect("the db handle")));
    let rc = b
        .call_by_name(
            "sqlite3_exec",
            &[
                db.clone(),
                Value::str(setup),
                Value::U64(0),
                Value::U64(0),
                Value::U64(0),
            ],
        )
        .expect("sqlite3_exec")
        .ret;
    if rc != Value::I32(0) {
        let msg = b
            .call_by_name("sqlite3_errmsg", &[db.clone()])
            .expect("errmsg")
            .ret;
        panic!("setup failed: {rc:?} {msg:?}");
    }
    let out = b
        .call_by_name(
            "sqlite3_prepare_v2",
            &[
                db,
                Value::str(query),
                Value::I32(-1),
                Value::Null,
                Value::U64(0),
            ],
        )
        .expect("sqlite3_prepare_v2");
    assert_eq!(out.ret, Value::I32(0), "prepare {query}");
    Value::Handle(handle_of(
        out.out[3].as_ref().expect("the statement handle"),
    ))
}

fn owned(cell: &Cell<'_>) -> SqlValue {
    match *cell {
        Cell::Int(v) => SqlValue::Int(v),
        Cell::Float(v) => SqlValue::Float(v),
        Cell::Text(t) => SqlValue::Text(String::from_utf8(t.to_vec()).expect("UTF-8 text")),
        Cell::Blob(b) => SqlValue::Blob(b.to_vec()),
        Cell::Null => SqlValue::Null,
    }
}

/// Fetches every row through `state`, `page_rows` rows a page: the rows and
/// how the fetch ended.
fn fetch_all(
    b: &mut Bridge,
    program: &FetchProgram,
    state: &mut FetchState,
    page_rows: usize,
) -> (Vec<Vec<SqlValue>>, FetchEnd) {
    state.set_page_rows(page_rows);
    let mut rows = Vec::new();
    let end = b
        .fetch(program, state, usize::MAX, |row| {
            rows.push(row.iter().map(owned).collect());
            ControlFlow::Continue(())
        })
        .unwrap_or_else(|e| panic!("fetch: {e}"));
    (rows, end)
}

fn reference() -> Rows {
    let mut r = Sqlite::open(":memory:")
        .query(&format!("{SETUP}; {SELECT}"), &[])
        .expect("the in-process query");
    r.columns.clear();
    r
}

#[test]
fn sqlite_rows_match_in_process_through_small_and_byte_filled_pages() {
    let expected = reference();
    assert_eq!(expected.rows.len(), 10_004);
    assert!(
        matches!(&expected.rows[4999][3], SqlValue::Blob(b) if b.len() == 150_001),
        "the big blob is row 5000"
    );
    let mut b = sqlite_bridge(256 * 1024);
    let f = Fns::of(&b);
    let program = sqlite_program(&f, 5);
    for page_rows in [7, usize::MAX] {
        let stmt = open_and_prepare(&mut b, SETUP, SELECT);
        let mut state = b.fetch_state(&[stmt]).expect("a fetch state");
        let (rows, end) = fetch_all(&mut b, &program, &mut state, page_rows);
        // SQLITE_DONE, and asking again does not step a finished statement.
        assert_eq!(end, FetchEnd::Ended { reason: 101 });
        assert_eq!(
            b.fetch(&program, &mut state, 10, |_| panic!("no more rows"))
                .unwrap(),
            FetchEnd::Ended { reason: 101 }
        );
        let got = Rows {
            columns: Vec::new(),
            rows,
        };
        assert_same_rows(&format!("{page_rows} rows a page"), &got, &expected);
    }
    assert_eq!(b.respawns(), 0, "no helper died on the way");
}

#[test]
fn max_rows_and_a_break_stop_where_they_say() {
    let mut b = load_bridge(SQLITE, SQLITE_DECLS);
    let f = Fns::of(&b);
    let program = sqlite_program(&f, 1);
    let stmt = open_and_prepare(
        &mut b,
        "SELECT 1",
        "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 100) SELECT x FROM g",
    );
    let mut state = b.fetch_state(&[stmt]).unwrap();
    state.set_page_rows(10);
    let mut seen = Vec::new();
    let mut take = |b: &mut Bridge, state: &mut FetchState, max: usize, stop_at: i64| {
        b.fetch(&program, state, max, |row| {
            let Cell::Int(x) = row[0] else {
                panic!("{row:?}")
            };
            seen.push(x);
            if x == stop_at {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap()
    };
    // 25 rows: three pages of 10, 10 and 5 (the limit, not the page, ends the last).
    assert_eq!(take(&mut b, &mut state, 25, 0), FetchEnd::More);
    // A break at 33: rows 34..=35 of that page are dropped, the next page starts at 36.
    assert_eq!(take(&mut b, &mut state, 1000, 33), FetchEnd::More);
    assert_eq!(
        take(&mut b, &mut state, usize::MAX, 0),
        FetchEnd::Ended { reason: 101 }
    );
    let want: Vec<i64> = (1..=33).chain(36..=100).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_row_bigger_than_a_page_is_a_resource_limit_naming_the_arena() {
    let mut b = sqlite_bridge(64 * 1024);
    let f = Fns::of(&b);
    let program = sqlite_program(&f, 1);
    let stmt = open_and_prepare(
        &mut b,
        "SELECT 1",
        "SELECT 1 UNION ALL SELECT zeroblob(100000)",
    );
    let mut state = b.fetch_state(&[stmt]).unwrap();
    let mut rows = 0;
    let e = b
        .fetch(&program, &mut state, usize::MAX, |_| {
            rows += 1;
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert_eq!(rows, 1, "the first row came through");
    assert_eq!(e.kind, ErrorKind::ResourceLimit, "{e}");
    assert!(e.message.contains("100005 bytes"), "{e}");
    assert!(e.message.contains("65536-byte arena"), "{e}");
    assert!(e.message.contains("BridgeBuilder::arena_size"), "{e}");
    // The helper is still there, and the statement is still on that row.
    assert_eq!(b.respawns(), 0);
    let again = b.fetch(&program, &mut state, usize::MAX, |_| {
        ControlFlow::Continue(())
    });
    assert_eq!(again.unwrap_err().kind, ErrorKind::ResourceLimit);
}

#[test]
fn an_error_mid_query_ends_the_fetch_with_its_code() {
    let mut b = load_bridge(SQLITE, SQLITE_DECLS);
    let f = Fns::of(&b);
    let program = sqlite_program(&f, 1);
    // abs() of the smallest integer overflows at the third row: SQLITE_ERROR.
    let stmt = open_and_prepare(
        &mut b,
        "SELECT 1",
        "SELECT abs(x) FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT -9223372036854775808)",
    );
    let mut state = b.fetch_state(&[stmt]).unwrap();
    let (rows, end) = fetch_all(&mut b, &program, &mut state, 100);
    assert_eq!(rows, [[SqlValue::Int(1)], [SqlValue::Int(2)]]);
    assert_eq!(end, FetchEnd::Ended { reason: 1 });
}

#[test]
fn programs_that_do_not_fit_the_declarations_are_refused_before_sending() {
    let mut b = load_bridge(SQLITE, SQLITE_DECLS);
    let f = Fns::of(&b);
    let stmt = open_and_prepare(&mut b, "SELECT 1", "SELECT 1");
    let mut state = b.fetch_state(&[stmt]).unwrap();
    let refused = |b: &mut Bridge, state: &mut FetchState, program: FetchProgram| {
        let e = b
            .fetch(&program, state, 10, |_| panic!("nothing runs"))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
        e.message
    };
    let wrong_arity = FetchProgram::builder(1)
        .read(|p| {
            p.call(f.column_type, &[Reg(0)], 1).emit_int(1);
        })
        .build()
        .unwrap();
    assert!(refused(&mut b, &mut state, wrong_arity).contains("takes 2 arguments, given 1"));
    let handle_as_scratch = FetchProgram::builder(1)
        .scratch(8)
        .read(|p| {
            p.call(f.step, &[Scratch(0)], 1).emit_int(1);
        })
        .build()
        .unwrap();
    assert!(refused(&mut b, &mut state, handle_as_scratch).contains("a register (or Const(0))"));
    let other = load_bridge(SQLITE, SQLITE_DECLS);
    let foreign = sqlite_program(&Fns::of(&other), 1);
    assert!(refused(&mut b, &mut state, foreign).contains("is not declared here"));
    // The statement is untouched: its one row is still there.
    let program = sqlite_program(&f, 1);
    let (rows, end) = fetch_all(&mut b, &program, &mut state, 10);
    assert_eq!(
        (rows, end),
        (
            vec![vec![SqlValue::Int(1)]],
            FetchEnd::Ended { reason: 101 }
        )
    );
}

#[test]
fn a_state_from_a_helper_that_is_gone_is_stale() {
    let mut b = load_bridge(SQLITE, SQLITE_DECLS);
    let f = Fns::of(&b);
    let program = sqlite_program(&f, 1);
    let stmt = open_and_prepare(&mut b, "SELECT 1", "SELECT 1");
    let mut state = b.fetch_state(&[stmt.clone()]).unwrap();
    b.respawn().unwrap();
    let e = b
        .fetch(&program, &mut state, 10, |_| panic!("nothing runs"))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert_eq!(
        b.fetch_state(&[stmt]).unwrap_err().kind,
        ErrorKind::StaleHandle
    );
}

const ATTACK: &[&str] = &["ffb_fetch_attack(bytes, i32) -> i64"];

/// A program of one cell per row whose READ emits `first` and then runs
/// ffb_fetch_attack in `mode`; rows are counted in r0 up to 100.
fn attack_program(b: &Bridge, mode: u64, text_cell: bool) -> FetchProgram {
    let attack = b.function("ffb_fetch_attack").unwrap();
    FetchProgram::builder(1)
        .scratch(16)
        .advance(|p| {
            p.add(0, 1).end_unless(0, Cmp::Lt, Const(100));
        })
        .read(|p| {
            if text_cell {
                p.emit_text(5, 6); // r5 = NULL, r6 = 0: an empty text cell
            } else {
                p.emit_int(0);
            }
            p.call(attack, &[Scratch(0), Const(mode)], 7);
        })
        .build()
        .unwrap()
}

fn attacked(mode: u64, text_cell: bool) -> (Bridge, ffb_loader::Error) {
    let mut b = hostile_bridge(ATTACK);
    let program = attack_program(&b, mode, text_cell);
    let mut state = b.fetch_state(&[]).unwrap();
    let pid = b.helper_pid();
    let mut rows = 0;
    let e = b
        .fetch(&program, &mut state, usize::MAX, |_| {
            rows += 1;
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert_eq!(
        rows, 0,
        "mode {mode}: no row of a bad page reaches the caller"
    );
    assert_eq!(e.kind, ErrorKind::Protocol, "mode {mode}: {e}");
    assert!(
        pid.is_some() && b.helper_pid().is_none(),
        "mode {mode}: the helper was killed"
    );
    (b, e)
}

#[test]
fn a_scribbled_page_is_a_protocol_error() {
    let (mut b, e) = attacked(1, false);
    assert!(e.message.contains("unknown cell tag 238"), "{e}");
    let (_, e) = attacked(2, true);
    assert!(e.message.contains("runs past the page"), "{e}");
    // The bridge goes on with a new helper; the old state is stale.
    let program = attack_program(&b, 99, false); // an unknown mode returns -1
    let mut state = b.fetch_state(&[Value::I64(96)]).unwrap(); // r0 = 96: rows 97 to 99
    let mut seen = Vec::new();
    let end = b
        .fetch(&program, &mut state, usize::MAX, |row| {
            seen.push(owned(&row[0]));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(end, FetchEnd::Ended { reason: 100 });
    assert_eq!(
        seen,
        [SqlValue::Int(97), SqlValue::Int(98), SqlValue::Int(99)]
    );
}

#[test]
fn forged_answers_are_protocol_errors() {
    let cases = [
        (10, "rows where at most"),
        (11, "bytes in a"),
        (12, "outcome 9"),
        (13, "runs past the page"),
        (14, "3 bytes past the last row"),
        (15, "a full page with no rows"),
    ];
    for (mode, says) in cases {
        let (_, e) = attacked(mode, false);
        assert!(e.message.contains(says), "mode {mode}: {e}");
    }
}

#[test]
fn a_consistent_forgery_is_only_data() {
    // The host cannot tell a well-formed forged page from the truth; it
    // must decode it within its bounds like any other.
    let mut b = hostile_bridge(ATTACK);
    let program = attack_program(&b, 16, false);
    let mut state = b.fetch_state(&[]).unwrap();
    let mut seen = Vec::new();
    let end = b
        .fetch(&program, &mut state, 1, |row| {
            seen.push(owned(&row[0]));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(end, FetchEnd::More);
    assert_eq!(seen, [SqlValue::Int(4242)]);
}
