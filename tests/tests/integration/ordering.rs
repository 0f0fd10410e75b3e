//! Calls run strictly in the order they are made, and the library's state
//! lives as long as its helper.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ffb_loader::{Bridge, Value};
use ffb_tests::fixture_bridge;

/// `ffb_recorded`'s out buffer: room for 10,000 values.
const RECORD_BYTES: usize = 80_000;

const DECLS: &[&str] = &[
    "ffb_record(i64) -> i64",
    "ffb_recorded(out[80000], usize) -> i64",
    "ffb_reset() -> void",
    "ffb_calls() -> i64",
];

/// The recorded values, decoded from `ffb_recorded`'s out buffer.
fn recorded(b: &mut Bridge) -> Vec<i64> {
    ffb_tests::bridge::recorded(b, RECORD_BYTES)
}

#[test]
fn ten_thousand_calls_arrive_in_order() {
    let mut b = fixture_bridge(DECLS);
    let record = b.function("ffb_record").unwrap();
    // Values that are not simply 0..n, so a reordering or a lost call shows.
    let values: Vec<i64> = (0..10_000i64)
        .map(|i| i.wrapping_mul(0x9e37_79b9) ^ (i << 40))
        .collect();
    for (i, v) in values.iter().enumerate() {
        let out = b.call(record, &[Value::I64(*v)]).unwrap();
        assert_eq!(out.ret, Value::I64(i as i64 + 1), "count after call {i}");
    }
    let got = recorded(&mut b);
    assert_eq!(got.len(), 10_000);
    assert_eq!(got, values);
    // The rest of the out buffer is zeroed past the count.
    b.call_by_name("ffb_reset", &[]).unwrap();
    assert_eq!(recorded(&mut b), Vec::<i64>::new());
    let out = b
        .call_by_name("ffb_recorded", &[Value::Usize(RECORD_BYTES)])
        .unwrap();
    assert_eq!(out.out[0], Some(Value::Bytes(vec![0; RECORD_BYTES])));
}

#[test]
fn state_persists_between_calls_and_dies_with_the_helper() {
    let mut b = fixture_bridge(DECLS);
    for want in 1..=50 {
        assert_eq!(
            b.call_by_name("ffb_calls", &[]).unwrap().ret,
            Value::I64(want)
        );
    }
    b.call_by_name("ffb_record", &[Value::I64(-5)]).unwrap();
    b.call_by_name("ffb_record", &[Value::I64(6)]).unwrap();
    assert_eq!(recorded(&mut b), vec![-5, 6]);
    // ffb_reset clears the record but not the call counter.
    b.call_by_name("ffb_reset", &[]).unwrap();
    assert_eq!(
        b.call_by_name("ffb_calls", &[]).unwrap().ret,
        Value::I64(51)
    );
    // A new helper starts from scratch.
    b.call_by_name("ffb_record", &[Value::I64(1)]).unwrap();
    b.respawn().unwrap();
    assert_eq!(b.call_by_name("ffb_calls", &[]).unwrap().ret, Value::I64(1));
    assert_eq!(recorded(&mut b), Vec::<i64>::new());
}

#[test]
fn a_shared_bridge_serialises_calls_from_many_threads() {
    const THREADS: i64 = 4;
    const PER_THREAD: i64 = 1_000;
    let b = Arc::new(Mutex::new(fixture_bridge(DECLS)));
    let record = b.lock().unwrap().function("ffb_record").unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                let mut counts = Vec::with_capacity(PER_THREAD as usize);
                for k in 0..PER_THREAD {
                    let v = t * 1_000_000 + k;
                    let out = b.lock().unwrap().call(record, &[Value::I64(v)]).unwrap();
                    let Value::I64(count) = out.ret else {
                        panic!("{:?}", out.ret)
                    };
                    counts.push(count);
                }
                counts
            })
        })
        .collect();
    let mut all_counts: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("a recording thread panicked"))
        .collect();
    // Every call saw a distinct count: no two calls overlapped.
    all_counts.sort();
    assert_eq!(all_counts, (1..=THREADS * PER_THREAD).collect::<Vec<_>>());

    let got = recorded(&mut b.lock().unwrap());
    assert_eq!(got.len(), (THREADS * PER_THREAD) as usize);
    let mut seen = BTreeMap::new();
    for v in &got {
        *seen.entry(*v).or_insert(0) += 1;
    }
    for t in 0..THREADS {
        for k in 0..PER_THREAD {
            let v = t * 1_000_000 + k;
            assert_eq!(seen.get(&v), Some(&1), "value {v}");
        }
    }
    assert_eq!(seen.len(), got.len());
    // Each thread's own values arrive in the order it made the calls.
    for t in 0..THREADS {
        let mine: Vec<i64> = got.iter().copied().filter(|v| v / 1_000_000 == t).collect();
        assert_eq!(
            mine,
            (0..PER_THREAD)
                .map(|k| t * 1_000_000 + k)
                .collect::<Vec<_>>()
        );
    }
}
