//! Batches (many fenced calls in one round trip) and zero-copy shared buffers.

use ffb_loader::{ErrorKind, Value};
use ffb_tests::bridge::crashed;
use ffb_tests::{bridge_builder, fixture_bridge, fixture_lib, hostile_bridge};

#[test]
fn a_batch_runs_every_call_in_order_and_returns_each_result() {
    let mut b = fixture_bridge(&[
        "ffb_add_i64(i64, i64) -> i64",
        "ffb_record(i64) -> i64",
        "ffb_recorded(out[8000], usize) -> i64",
        "ffb_reset() -> void",
    ]);
    let add = b.function("ffb_add_i64").unwrap();
    let record = b.function("ffb_record").unwrap();
    let recorded = b.function("ffb_recorded").unwrap();
    b.call_by_name("ffb_reset", &[]).unwrap();

    let adds: Vec<[Value; 2]> = (0..500)
        .map(|i| [Value::I64(i), Value::I64(1000 * i)])
        .collect();
    let calls: Vec<_> = adds.iter().map(|a| (add, &a[..])).collect();
    let outs = b.call_batch(&calls).expect("batch");
    assert_eq!(outs.len(), 500);
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.ret, Value::I64(1001 * i as i64));
        assert!(out.effects.is_worst_case());
    }

    let values: Vec<[Value; 1]> = (0..1000).map(|i| [Value::I64(i * 7)]).collect();
    let calls: Vec<_> = values.iter().map(|v| (record, &v[..])).collect();
    let outs = b.call_batch(&calls).expect("batch");
    assert_eq!(outs.last().unwrap().ret, Value::I64(1000));
    let out = b.call(recorded, &[Value::Usize(8000)]).unwrap();
    assert_eq!(out.ret, Value::I64(1000));
    let Some(Value::Bytes(bytes)) = &out.out[0] else {
        panic!("{:?}", out.out)
    };
    let got: Vec<i64> = bytes
        .chunks(8)
        .map(|c| i64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..1000).map(|i| i * 7).collect::<Vec<_>>());
}

#[test]
fn batched_pointer_arguments_come_back_per_call() {
    let mut b = fixture_bridge(&["ffb_divmod(i64, i64, *i64, *i64) -> i32"]);
    let f = b.function("ffb_divmod").unwrap();
    let args: Vec<[Value; 4]> = (1..=50)
        .map(|d| {
            [
                Value::I64(1000),
                Value::I64(d),
                Value::I64(0),
                Value::I64(0),
            ]
        })
        .collect();
    let calls: Vec<_> = args.iter().map(|a| (f, &a[..])).collect();
    let outs = b.call_batch(&calls).unwrap();
    for (d, out) in (1..=50i64).zip(&outs) {
        assert_eq!(out.ret, Value::I32(0));
        assert_eq!(out.out[2], Some(Value::I64(1000 / d)), "quotient for {d}");
        assert_eq!(out.out[3], Some(Value::I64(1000 % d)), "remainder for {d}");
    }
}

#[test]
fn a_batch_stops_at_the_first_failure() {
    let mut b = hostile_bridge(&["ffb_thread_sum(i32) -> i64", "ffb_segv() -> void"]);
    let sum = b.function("ffb_thread_sum").unwrap();
    let segv = b.function("ffb_segv").unwrap();
    let one = [Value::I32(1)];
    let calls = [
        (sum, &one[..]),
        (sum, &one[..]),
        (segv, &[][..]),
        (sum, &one[..]),
    ];
    let failure = b.call_batch(&calls).unwrap_err();
    assert_eq!(failure.index, 2);
    assert_eq!(failure.completed.len(), 2);
    assert_eq!(failure.completed[0].ret, Value::I64(500500));
    assert_eq!(failure.error.kind, crashed("SIGSEGV"));
    // The bridge goes on with a fresh helper.
    assert_eq!(b.call(sum, &one).unwrap().ret, Value::I64(500500));
}

#[test]
fn a_bad_argument_anywhere_in_a_batch_sends_nothing() {
    let mut b = fixture_bridge(&["ffb_calls() -> i64", "ffb_id_i8(i8) -> i8"]);
    let calls_fn = b.function("ffb_calls").unwrap();
    let id = b.function("ffb_id_i8").unwrap();
    let before = b.call(calls_fn, &[]).unwrap().ret;
    let ok = [Value::I8(1)];
    let bad = [Value::I64(1000)];
    let failure = b
        .call_batch(&[(calls_fn, &[][..]), (id, &ok[..]), (id, &bad[..])])
        .unwrap_err();
    assert_eq!(failure.index, 2);
    assert_eq!(failure.error.kind, ErrorKind::BadArgument);
    assert!(failure.completed.is_empty());
    let Value::I64(before) = before else { panic!() };
    // ffb_calls counts its own calls: the batch's first call never ran.
    assert_eq!(b.call(calls_fn, &[]).unwrap().ret, Value::I64(before + 1));
}

#[test]
fn shared_buffers_pass_data_without_copies_and_go_stale_with_their_helper() {
    let mut b = bridge_builder(
        fixture_lib(),
        &[
            "ffb_sum_bytes(bytes, usize) -> u32",
            "ffb_reverse_bytes(bytes, usize) -> void",
        ],
    )
    .arena_size(8 << 20)
    .load()
    .unwrap();
    let data: Vec<u8> = (0..(1 << 20)).map(|i| (i * 31 % 251) as u8).collect();
    let expected: u32 = data.iter().map(|&x| u32::from(x)).sum();
    b.shared_buffer(data.len()).unwrap().write(&data);
    let sum = b.function("ffb_sum_bytes").unwrap();
    let out = b
        .call(sum, &[Value::Shared(data.len()), Value::Usize(data.len())])
        .unwrap();
    assert_eq!(out.ret, Value::U32(expected));
    assert_eq!(out.out[0], None, "shared buffers are not copied back");

    let reverse = b.function("ffb_reverse_bytes").unwrap();
    b.call(
        reverse,
        &[Value::Shared(data.len()), Value::Usize(data.len())],
    )
    .unwrap();
    let mut back = vec![0u8; data.len()];
    b.shared_buffer(data.len()).unwrap().read(&mut back);
    back.reverse();
    assert_eq!(back, data);

    // Ordinary buffers still work beside the shared one.
    let out = b
        .call(sum, &[Value::bytes([1u8, 2, 3]), Value::Usize(3)])
        .unwrap();
    assert_eq!(out.ret, Value::U32(6));

    assert!(b.shared_buffer(64 << 20).is_err(), "larger than the arena");
    b.respawn().unwrap();
    let err = b
        .call(sum, &[Value::Shared(16), Value::Usize(16)])
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::StaleHandle);
}

#[test]
fn a_string_from_a_helper_that_died_later_in_the_batch_is_reported_lost() {
    // ffb_sum_bytes declared with a plain address reads through it: a crash on demand.
    let mut b = fixture_bridge(&["ffb_greet() -> cstr", "ffb_sum_bytes(usize, usize) -> u32"]);
    let greet = b.function("ffb_greet").unwrap();
    let crash = b.function("ffb_sum_bytes").unwrap();
    let bad_address = [Value::Usize(16), Value::Usize(8)];
    let failure = b
        .call_batch(&[(greet, &[][..]), (crash, &bad_address[..])])
        .unwrap_err();
    assert_eq!(
        failure.error.kind,
        crashed("SIGSEGV"),
        "the real failure is reported, not an unreadable string"
    );
    assert_eq!(failure.index, 0);
    assert!(failure.completed.is_empty());
    assert!(
        failure.error.message.contains("lost with the helper"),
        "{}",
        failure.error
    );
}
