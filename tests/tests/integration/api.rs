//! API contracts that protect callers from their own mistakes.

use ffb_loader::{ErrorKind, Value};
use ffb_tests::{fixture_bridge, hostile_bridge};

#[test]
fn a_function_id_from_an_unrelated_bridge_is_refused() {
    let mut a = fixture_bridge(&["ffb_add_i64(i64, i64) -> i64"]);
    let mut b = fixture_bridge(&["ffb_calls() -> i64"]);
    let add = a.function("ffb_add_i64").unwrap();
    assert!(b.signature(add).is_none());
    let e = b.call(add, &[Value::I64(1), Value::I64(2)]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert_eq!(
        a.call(add, &[Value::I64(1), Value::I64(2)]).unwrap().ret,
        Value::I64(3)
    );
}

#[test]
fn a_missing_symbol_declared_after_a_crash_does_not_poison_respawns() {
    let mut b = hostile_bridge(&["ffb_segv() -> void", "ffb_thread_sum(i32) -> i64"]);
    assert!(b.call_by_name("ffb_segv", &[]).is_err());
    assert_eq!(b.helper_pid(), None, "the crash ended the helper");
    let e = b.declare("no_such_symbol() -> void").unwrap_err();
    assert_eq!(e.kind, ErrorKind::SymbolNotFound);
    // The failed declaration was not recorded: later helpers still start.
    let out = b.call_by_name("ffb_thread_sum", &[Value::I32(2)]).unwrap();
    assert_eq!(out.ret, Value::I64(500500 * 3));
    assert!(b.function("no_such_symbol").is_none());
}
