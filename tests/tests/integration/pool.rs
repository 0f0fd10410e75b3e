//! Helper pools: many host threads calling one library, with handles that
//! stay on the helper that issued them, a bounded number of helpers, and idle
//! members reaped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ffb_loader::{BridgeBuilder, BridgeMode, ErrorKind, Handle, Pool, PoolConfig, Value};
use ffb_tests::bridge::{crashed, handle_of, i64_of};
use ffb_tests::{bridge_builder, fixture_lib};

const DECLS: &[&str] = &[
    "ffb_add_i64(i64, i64) -> i64",
    "ffb_counter_new(i64) -> handle",
    "ffb_counter_next(handle) -> i64",
    "ffb_counter_free(handle) -> void",
    "ffb_calls() -> i64",
    "ffb_sleep_ms(i64) -> i64",
    // Deliberately misdeclared: a counter's 8 bytes "reversed" as if they
    // were `n` long, so the helper that owns the handle faults on the spot.
    "ffb_reverse_bytes(handle, usize) -> void",
];

fn builder() -> BridgeBuilder {
    bridge_builder(fixture_lib(), DECLS)
}

fn pool(min: usize, max: usize, idle_timeout: Option<Duration>) -> Pool {
    Pool::new(
        builder(),
        PoolConfig {
            min_helpers: min,
            max_helpers: max,
            idle_timeout,
        },
    )
    .expect("starting the pool")
}

/// Crashes the member that issued `h`: the misdeclared `ffb_reverse_bytes`
/// runs there (the call carries the handle) and faults. Returns the error.
fn crash_member_of(pool: &Pool, h: Handle) -> ffb_loader::Error {
    pool.call("ffb_reverse_bytes", &[Value::Handle(h), Value::Usize(1 << 40)])
        .expect_err("reversing 2^40 bytes of a counter must fault")
}

/// Samples a pool's stats on a thread of its own until stopped, keeping the
/// most members and the most waiting callers it ever saw.
struct PeakMonitor {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(usize, usize)>,
}

impl PeakMonitor {
    fn start(pool: &Pool, every: Duration) -> PeakMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let (pool, done) = (pool.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let (mut members, mut waiting) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                let s = pool.stats();
                members = s.members.max(members);
                waiting = s.waiting.max(waiting);
                thread::sleep(every);
            }
            (members, waiting)
        });
        PeakMonitor { stop, thread }
    }

    /// Stops sampling: `(peak members, peak waiting callers)`.
    fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the monitor panicked")
    }
}

/// Polls `cond` every few milliseconds for up to `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn pools_are_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Pool>();
}

#[test]
fn four_threads_share_two_helpers() {
    const THREADS: i64 = 4;
    const PER_THREAD: i64 = 2_000;
    let pool = pool(1, 2, None);
    let add = pool.function("ffb_add_i64").expect("declared");
    let monitor = PeakMonitor::start(&pool, Duration::from_millis(1));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let (a, b) = (t << 40 | i, -(i * 7919) - t);
                    let out = pool.call(add, &[Value::I64(a), Value::I64(b)]).unwrap();
                    assert_eq!(out.ret, Value::I64(a + b), "thread {t} call {i}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let (peak, _) = monitor.stop();
    let stats = pool.stats();
    assert!(stats.members <= 2, "{stats:?}");
    assert!(peak <= 2, "{stats:?}");
    assert!(stats.spawns <= 2, "{stats:?}");
    assert_eq!(stats.calls, (THREADS * PER_THREAD) as u64, "{stats:?}");
    assert_eq!(stats.respawns, 0, "{stats:?}");
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert_eq!(stats.idle, stats.members, "{stats:?}");
}

/// Creates one counter per member, on `n` distinct members: before each
/// counter is made, a thread occupies the member that made the previous one
/// with a long sleep, so the next counter must come from another member.
/// Returns the counters (started at `k * 1_000_000`) and the sleepers.
fn counters_on_distinct_members(
    pool: &Pool,
    n: usize,
) -> (Vec<Handle>, Vec<thread::JoinHandle<()>>) {
    let mut counters = Vec::new();
    let mut sleepers = Vec::new();
    for k in 0..n {
        let out = pool
            .call("ffb_counter_new", &[Value::I64(k as i64 * 1_000_000)])
            .unwrap();
        counters.push(handle_of(&out.ret));
        if k + 1 == n {
            break;
        }
        // The most recently returned member (the one that made this counter)
        // is the next one any call takes: keep it busy.
        let p = pool.clone();
        sleepers.push(thread::spawn(move || {
            let out = p.call("ffb_sleep_ms", &[Value::I64(1_500)]).unwrap();
            assert_eq!(out.ret, Value::I64(1_500));
        }));
        assert!(
            eventually(Duration::from_secs(10), || {
                let s = pool.stats();
                s.members - s.idle > k
            }),
            "the sleeper never started: {:?}",
            pool.stats()
        );
    }
    (counters, sleepers)
}

#[test]
fn handles_stay_on_the_member_that_issued_them() {
    const COUNTERS: usize = 3;
    const THREADS: usize = 4;
    const PER_COUNTER_PER_THREAD: usize = 200;
    let pool = pool(1, COUNTERS + 1, None);
    let (counters, sleepers) = counters_on_distinct_members(&pool, COUNTERS);
    let generations: BTreeSet<u64> = counters.iter().map(|h| h.generation()).collect();
    assert_eq!(generations.len(), COUNTERS, "{counters:?}");

    // Several threads advance every counter, in different orders, while some
    // of their members are still busy sleeping (those calls wait for them).
    let next = pool.function("ffb_counter_next").unwrap();
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (pool, counters, start) = (pool.clone(), counters.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut seen: Vec<Vec<i64>> = vec![Vec::new(); counters.len()];
                for i in 0..PER_COUNTER_PER_THREAD * counters.len() {
                    let k = (i + t) % counters.len();
                    let out = pool.call(next, &[Value::Handle(counters[k])]).unwrap();
                    seen[k].push(i64_of(&out.ret));
                }
                seen
            })
        })
        .collect();
    let mut all: Vec<Vec<i64>> = vec![Vec::new(); COUNTERS];
    for t in threads {
        for (k, values) in t.join().expect("a caller panicked").into_iter().enumerate() {
            // Calls on one member are ordered, so each thread sees its values rise.
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "counter {k}: {values:?}"
            );
            all[k].extend(values);
        }
    }
    for (k, mut values) in all.into_iter().enumerate() {
        values.sort();
        let base = k as i64 * 1_000_000;
        let want: Vec<i64> = (base..base + (THREADS * PER_COUNTER_PER_THREAD) as i64).collect();
        assert_eq!(values, want, "counter {k}");
    }
    for s in sleepers {
        s.join().expect("a sleeper panicked");
    }
    let stats = pool.stats();
    assert!(stats.members <= COUNTERS + 1, "{stats:?}");
    assert_eq!(stats.respawns, 0, "{stats:?}");
    for h in counters {
        pool.call("ffb_counter_free", &[Value::Handle(h)]).unwrap();
    }
}

#[test]
fn a_crash_makes_that_members_handles_stale_and_nothing_else() {
    let pool = pool(1, 3, None);
    let (counters, sleepers) = counters_on_distinct_members(&pool, 2);
    let (doomed, survivor) = (counters[0], counters[1]);
    assert_ne!(doomed.generation(), survivor.generation());
    let next = pool.function("ffb_counter_next").unwrap();
    assert_eq!(
        pool.call(next, &[Value::Handle(doomed)]).unwrap().ret,
        Value::I64(0)
    );
    let e = crash_member_of(&pool, doomed);
    assert_eq!(e.kind, crashed("SIGSEGV"), "{e}");
    let e = pool.call(next, &[Value::Handle(doomed)]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    // The other member's counter never noticed.
    assert_eq!(
        pool.call(next, &[Value::Handle(survivor)]).unwrap().ret,
        Value::I64(1_000_000)
    );
    for s in sleepers {
        s.join().unwrap();
    }
    // The crashed member serves again, with a fresh helper, once it is used.
    let members = pool.stats().members;
    let mut fresh = BTreeSet::new();
    for _ in 0..50 {
        let out = pool.call("ffb_counter_new", &[Value::I64(5)]).unwrap();
        let h = handle_of(&out.ret);
        assert_ne!(h.generation(), doomed.generation());
        assert_eq!(
            pool.call(next, &[Value::Handle(h)]).unwrap().ret,
            Value::I64(5)
        );
        fresh.insert(h.generation());
    }
    assert!(pool.call(next, &[Value::Handle(doomed)]).unwrap_err().kind == ErrorKind::StaleHandle);
    let stats = pool.stats();
    assert_eq!(stats.members, members, "{stats:?}");
    assert!(stats.respawns <= 1, "{stats:?}");
    assert!(!fresh.is_empty());
}

#[test]
fn batches_run_on_one_member_and_follow_their_handles() {
    let pool = pool(1, 3, None);
    let add = pool.function("ffb_add_i64").unwrap();
    let next = pool.function("ffb_counter_next").unwrap();
    let args: Vec<Vec<Value>> = (0..20)
        .map(|i| vec![Value::I64(i), Value::I64(100)])
        .collect();
    let calls: Vec<_> = args.iter().map(|a| (add, a.as_slice())).collect();
    let outs = pool.call_batch(&calls).unwrap();
    let rets: Vec<Value> = outs.into_iter().map(|o| o.ret).collect();
    assert_eq!(rets, (100..120).map(Value::I64).collect::<Vec<_>>());
    assert_eq!(pool.call_batch(&[]).unwrap(), vec![]);

    let (counters, sleepers) = counters_on_distinct_members(&pool, 2);
    let (a, b) = ([Value::Handle(counters[0])], [Value::Handle(counters[1])]);
    let one_and_two = [Value::I64(1), Value::I64(2)];
    // A batch with a handle runs where the handle lives, even when its first
    // call carries none.
    let outs = pool
        .call_batch(&[
            (add, &one_and_two),
            (next, &a),
            (next, &a),
            (add, &one_and_two),
        ])
        .unwrap();
    let rets: Vec<Value> = outs.into_iter().map(|o| o.ret).collect();
    assert_eq!(
        rets,
        [3, 0, 1, 3].into_iter().map(Value::I64).collect::<Vec<_>>()
    );
    // Handles from two members cannot share a batch: the call with the
    // second member's handle fails as stale, after the ones before it ran.
    let failure = pool
        .call_batch(&[(next, &a), (next, &b), (next, &a)])
        .unwrap_err();
    assert_eq!(failure.index, 1, "{failure}");
    assert_eq!(failure.error.kind, ErrorKind::StaleHandle, "{failure}");
    assert!(failure.completed.len() <= 1, "{failure:?}");
    let after = pool.call(next, &a).unwrap().ret;
    assert_eq!(after, Value::I64(2 + failure.completed.len() as i64));
    assert_eq!(pool.call(next, &b).unwrap().ret, Value::I64(1_000_000));
    for s in sleepers {
        s.join().unwrap();
    }
    // Shared buffers belong to one bridge; a pool has none to lend.
    let e = pool
        .call("ffb_add_i64", &[Value::Shared(8), Value::I64(1)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    let shared = [Value::Shared(8), Value::I64(1)];
    let failure = pool
        .call_batch(&[(add, &one_and_two), (add, &shared)])
        .unwrap_err();
    assert_eq!(
        (failure.index, failure.error.kind),
        (1, ErrorKind::BadArgument)
    );
    let stats = pool.stats();
    assert_eq!(stats.respawns, 0, "{stats:?}");
}

#[test]
fn handles_from_elsewhere_and_null_handles() {
    let pool = pool(1, 2, None);
    let mut bridge = builder().load().unwrap();
    let foreign = handle_of(
        &bridge
            .call_by_name("ffb_counter_new", &[Value::I64(1)])
            .unwrap()
            .ret,
    );
    let e = pool
        .call("ffb_counter_next", &[Value::Handle(foreign)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    let forged: Handle = "handle:0:0".parse().unwrap();
    let e = pool
        .call("ffb_counter_next", &[Value::Handle(forged)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    // A NULL handle is no handle: any member takes the call.
    assert_eq!(
        pool.call("ffb_counter_next", &[Value::Null]).unwrap().ret,
        Value::I64(i64::MIN)
    );
    // The foreign bridge's handle still works where it belongs.
    assert_eq!(
        bridge
            .call_by_name("ffb_counter_next", &[Value::Handle(foreign)])
            .unwrap()
            .ret,
        Value::I64(1)
    );
}

/// Runs `n` overlapping sleeps on the pool, so it needs `n` members.
fn overlapping_sleeps(pool: &Pool, n: usize, ms: i64) {
    let start = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (pool, start) = (pool.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let out = pool.call("ffb_sleep_ms", &[Value::I64(ms)]).unwrap();
                assert_eq!(out.ret, Value::I64(ms));
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a sleeper panicked");
    }
}

#[test]
fn idle_members_are_reaped_down_to_the_minimum() {
    for min in [0, 1] {
        let pool = pool(min, 4, Some(Duration::from_millis(200)));
        overlapping_sleeps(&pool, 4, 300);
        let grown = pool.stats();
        assert_eq!(grown.members, 4, "min {min}: {grown:?}");
        assert!(
            eventually(Duration::from_secs(3), || pool.stats().members == min),
            "min {min}: {:?}",
            pool.stats()
        );
        // Nothing goes below the minimum.
        thread::sleep(Duration::from_millis(500));
        let stats = pool.stats();
        assert_eq!(stats.members, min, "{stats:?}");
        assert_eq!(stats.reaped, 4 - min as u64, "{stats:?}");
        assert_eq!(stats.idle, min, "{stats:?}");
        // The pool grows again on demand.
        assert_eq!(
            pool.call("ffb_add_i64", &[Value::I64(2), Value::I64(3)])
                .unwrap()
                .ret,
            Value::I64(5)
        );
        assert_eq!(pool.stats().members, min.max(1));
    }
}

#[test]
fn members_holding_handles_are_not_reaped() {
    let pool = pool(0, 3, Some(Duration::from_millis(100)));
    let counter = handle_of(&pool.call("ffb_counter_new", &[Value::I64(7)]).unwrap().ret);
    overlapping_sleeps(&pool, 3, 200);
    assert_eq!(pool.stats().members, 3);
    assert!(
        eventually(Duration::from_secs(3), || pool.stats().members == 1),
        "{:?}",
        pool.stats()
    );
    thread::sleep(Duration::from_millis(400));
    let stats = pool.stats();
    assert_eq!(
        (stats.members, stats.pinned, stats.reaped),
        (1, 1, 2),
        "{stats:?}"
    );
    assert_eq!(
        pool.call("ffb_counter_next", &[Value::Handle(counter)])
            .unwrap()
            .ret,
        Value::I64(7)
    );
    // Once its helper is gone, so is the pin: the member is reaped like any other.
    let e = crash_member_of(&pool, counter);
    assert!(e.kind.ends_helper(), "{e}");
    assert_eq!(pool.stats().pinned, 0);
    assert!(
        eventually(Duration::from_secs(3), || pool.stats().members == 0),
        "{:?}",
        pool.stats()
    );
    let e = pool
        .call("ffb_counter_next", &[Value::Handle(counter)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
}

#[test]
fn eight_threads_never_get_more_than_max_helpers() {
    const MAX: usize = 3;
    let pool = pool(1, MAX, None);
    let add = pool.function("ffb_add_i64").unwrap();
    let sleep = pool.function("ffb_sleep_ms").unwrap();
    let monitor = PeakMonitor::start(&pool, Duration::from_micros(200));
    let threads: Vec<_> = (0..8i64)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                for i in 0..150i64 {
                    if i % 10 == 0 {
                        let out = pool.call(sleep, &[Value::I64(2)]).unwrap();
                        assert_eq!(out.ret, Value::I64(2));
                    } else {
                        let out = pool.call(add, &[Value::I64(t), Value::I64(i)]).unwrap();
                        assert_eq!(out.ret, Value::I64(t + i));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a caller panicked");
    }
    let (peak, peak_waiting) = monitor.stop();
    let stats = pool.stats();
    assert!(peak <= MAX, "{stats:?}");
    assert!(
        stats.members <= MAX && stats.spawns <= MAX as u64,
        "{stats:?}"
    );
    assert_eq!(stats.calls, 8 * 150, "{stats:?}");
    assert_eq!(stats.waiting, 0, "{stats:?}");
    eprintln!("peak members {peak}, peak waiting callers {peak_waiting}");
}

#[test]
fn names_ids_and_bad_configurations() {
    let pool = pool(2, 2, None);
    assert_eq!(pool.stats().members, 2);
    assert_eq!(pool.function("no_such_function"), None);
    let e = pool.call("no_such_function", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
    let e = pool.call("ffb_add_i64", &[Value::I64(1)]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    let name = String::from("ffb_add_i64");
    assert_eq!(
        pool.call(&name, &[Value::I64(1), Value::I64(2)])
            .unwrap()
            .ret,
        Value::I64(3)
    );
    let mut out = pool.call("ffb_calls", &[]).unwrap();
    pool.call_into("ffb_add_i64", &[Value::I64(4), Value::I64(5)], &mut out)
        .unwrap();
    assert_eq!(out.ret, Value::I64(9));
    assert_eq!(
        out.effects.to_string(),
        "io + nondet + mutates(all) + throws(any)"
    );

    for (min, max) in [(0, 0), (3, 2)] {
        let e = Pool::new(
            builder(),
            PoolConfig {
                min_helpers: min,
                max_helpers: max,
                idle_timeout: None,
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    }
    let e = Pool::new(
        builder().bridge_mode(BridgeMode::Disabled),
        PoolConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BridgeDisabled, "{e}");
    let e = Pool::new(
        builder().declare("no_such_symbol() -> void"),
        PoolConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::SymbolNotFound, "{e}");
    let defaults = PoolConfig::default();
    assert_eq!(defaults.min_helpers, 1);
    assert!(defaults.max_helpers >= 1);
    assert_eq!(defaults.idle_timeout, Some(Duration::from_secs(30)));
}

#[test]
fn each_member_keeps_its_own_library_state() {
    // Two members, each with its own copy of the library's globals: the
    // per-member call counts add up to the calls made, and every member's
    // sequence is 1, 2, 3, ... with no gaps or repeats.
    let pool = pool(2, 2, None);
    let calls = pool.function("ffb_calls").unwrap();
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, start) = (pool.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                (0..500)
                    .map(|_| i64_of(&pool.call(calls, &[]).unwrap().ret))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for t in threads {
        for v in t.join().unwrap() {
            *counts.entry(v).or_default() += 1;
        }
    }
    // Value v was returned once per member that made at least v calls.
    let total: usize = counts.values().sum();
    assert_eq!(total, 2_000);
    let mut last = usize::MAX;
    for (v, n) in &counts {
        assert!(
            *n <= 2 && *n <= last,
            "value {v} seen {n} times: {counts:?}"
        );
        last = *n;
    }
    assert_eq!(counts.keys().next(), Some(&1));
    assert_eq!(*counts.keys().last().unwrap() as usize, counts.len());
}

#[test]
fn dropping_the_pool_stops_its_reaper() {
    // Counted in a process of its own: other tests' pools have reapers too.
    // The test's name as libtest knows it: its module path without the crate.
    let (_, module) = module_path!().split_once("::").expect("a module");
    let child = format!("{module}::reaper_thread_child");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &child, "--ignored", "--test-threads=1"])
        .env("FFB_POOL_REAPER_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by dropping_the_pool_stops_its_reaper, in a process of its own"]
fn reaper_thread_child() {
    if std::env::var_os("FFB_POOL_REAPER_CHILD").is_none() {
        return;
    }
    let reapers = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == "ffb-pool-reaper")
            .count()
    };
    assert_eq!(reapers(), 0);
    let a = pool(0, 2, Some(Duration::from_millis(20)));
    let b = a.clone();
    // A new thread names itself once it runs.
    assert!(eventually(Duration::from_secs(5), || reapers() == 1));
    // No reaper when nothing can be reaped.
    let c = pool(1, 1, Some(Duration::from_millis(20)));
    let d = pool(0, 2, None);
    assert_eq!(reapers(), 1);
    a.call("ffb_calls", &[]).unwrap();
    drop(a);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(reapers(), 1, "a clone still holds the pool");
    assert_eq!(b.stats().members, 0, "{:?}", b.stats());
    drop(b);
    // Dropping the last clone joins the reaper.
    assert_eq!(reapers(), 0);
    drop((c, d));
}
/// Audit lines the disk refuses are counted for the whole pool, also those
/// of a member that has since been reaped.
#[test]
fn audit_lines_a_full_disk_refuses_are_counted_across_members() {
    let pool = Pool::new(
        builder().audit_log("/dev/full"),
        PoolConfig {
            min_helpers: 0,
            max_helpers: 1,
            idle_timeout: Some(Duration::from_millis(50)),
        },
    )
    .expect("starting the pool");
    assert_eq!(pool.audit_losses(), None, "nothing happened yet");
    let crash_one = || {
        let out = pool.call("ffb_counter_new", &[Value::I64(1)]).unwrap();
        let e = crash_member_of(&pool, handle_of(&out.ret));
        assert_eq!(e.kind, crashed("SIGSEGV"), "{e}");
    };
    crash_one();
    let (first, why) = pool.audit_losses().expect("the crash line was lost");
    assert!(first >= 1, "{first}");
    assert_eq!(why, std::io::Error::from_raw_os_error(libc::ENOSPC).to_string());
    // The member goes idle and is reaped; what it lost still counts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pool.stats().members > 0 {
        assert!(Instant::now() < deadline, "the idle member was never reaped");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pool.audit_losses().map(|l| l.0), Some(first));
    crash_one();
    let (now, _) = pool.audit_losses().unwrap();
    assert!(now > first, "the new member's loss was added: {now} after {first}");
}
