//! The spin-then-sleep handoff under every race we can provoke: helpers that
//! die while the host spins or sleeps, hosts that give up just as the answer
//! arrives, both sides parking between calls while signals fly, and many
//! threads on one pool. No call may be lost, duplicated or answered twice.
//!
//! Randomised with a seed printed by each test; set `FFB_STRESS_SEED` to
//! replay one, and `FFB_STRESS_SCALE=N` to run N times as many iterations.
//! Nothing here asserts on timing: every outcome a race allows is accepted,
//! and every outcome is checked exactly.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ffb_loader::{Bridge, BridgeBuilder, ErrorKind, Pool, PoolConfig, Value};
use ffb_tests::bridge::crashed;
use ffb_tests::procfs::{pidfd_open, pidfd_signal};
use ffb_tests::rng::seed_from_env;
use ffb_tests::{bridge_builder, fixture_lib, hostile_lib};

/// The iteration multiplier (`FFB_STRESS_SCALE`, default 1).
fn scale() -> usize {
    ffb_tests::env_or("FFB_STRESS_SCALE", 1)
}

/// SplitMix64: small, fast, and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        Rng(seed_from_env("FFB_STRESS_SEED", test))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }

    /// A pause between calls: often none, often shorter than the spin
    /// windows, sometimes long enough for both sides to park.
    fn pause(&mut self, max_us: u64) {
        match self.next() % 4 {
            0 => {}
            1 => thread::yield_now(),
            _ => thread::sleep(Duration::from_micros(self.range(1, max_us))),
        }
    }
}

/// The two handoff configurations: the default spin windows, and zero (both
/// sides park almost every time, which is where wake-up races live; the host
/// still spins briefly after waking a parked helper).
fn spin_configs() -> [(&'static str, Duration); 2] {
    [
        ("default spins", Duration::from_micros(100)),
        ("minimal spinning", Duration::ZERO),
    ]
}

fn builder(lib: &std::path::Path, spin: Duration, decls: &[&str]) -> BridgeBuilder {
    bridge_builder(lib, decls).helper_spin(spin).host_spin(spin)
}

/// Fixture declarations, plus a crasher: `ffb_sum_bytes` declared with its
/// pointer as a plain integer, so `(16, 64)` reads address 16.
const FIXTURE: &[&str] = &[
    "ffb_calls() -> i64",
    "ffb_add_i64(i64, i64) -> i64",
    "ffb_record(i64) -> i64",
    "ffb_recorded(out[800000], usize) -> i64",
    "ffb_sleep_ms(i64) -> i64",
    "ffb_counter_new(i64) -> handle",
    "ffb_counter_next(handle) -> i64",
    "ffb_sum_bytes(usize, usize) -> u32",
];

fn fixture(spin: Duration) -> Bridge {
    builder(fixture_lib(), spin, FIXTURE)
        .load()
        .expect("loading the fixture")
}

fn crash(b: &mut Bridge) {
    let e = b
        .call_by_name("ffb_sum_bytes", &[Value::Usize(16), Value::Usize(64)])
        .unwrap_err();
    assert_eq!(e.kind, crashed("SIGSEGV"), "{e}");
}

/// Tracks `ffb_calls` across helpers: 1, 2, 3, ... and back to 1 after every
/// helper that ended. Any lost, repeated or stale answer breaks the sequence.
struct CallCounter {
    expected: i64,
}

impl CallCounter {
    fn new() -> Self {
        CallCounter { expected: 1 }
    }

    fn ok(&mut self, got: &Value, at: usize) {
        assert_eq!(got, &Value::I64(self.expected), "call {at}");
        self.expected += 1;
    }

    fn helper_ended(&mut self) {
        self.expected = 1;
    }
}

/// The values `ffb_record` recorded in this helper (`FIXTURE` declares room
/// for 100,000).
fn recorded(b: &mut Bridge) -> Vec<i64> {
    ffb_tests::bridge::recorded(b, 800_000)
}

// ---------------------------------------------------------------------------
// (a) helpers that die mid-sequence
// ---------------------------------------------------------------------------

#[test]
fn crashes_at_random_points_cost_exactly_the_crashed_call() {
    let mut rng = Rng::new("crashes_at_random_points");
    for (config, spin) in spin_configs() {
        let mut b = fixture(spin);
        let calls = b.function("ffb_calls").unwrap();
        let mut counter = CallCounter::new();
        let mut crashes = 0;
        let mut generation = b.generation();
        let n = 400 * scale();
        for i in 0..n {
            if rng.chance(20) {
                crash(&mut b);
                crashes += 1;
                counter.helper_ended();
                assert_eq!(b.generation(), 0, "{config}: no helper after a crash");
            } else {
                let out = b.call(calls, &[]).unwrap();
                counter.ok(&out.ret, i);
                if counter.expected == 2 && i > 0 {
                    assert_ne!(b.generation(), generation, "{config}: a fresh helper");
                }
                generation = b.generation();
            }
            rng.pause(300);
        }
        // One more call, so a crash at the very end is followed by a respawn too.
        counter.ok(&b.call(calls, &[]).unwrap().ret, n);
        assert_eq!(b.respawns(), crashes, "{config}");
        eprintln!("{config}: {crashes} crashes in {n} calls");
    }
}

#[test]
fn hostile_exits_and_faults_at_random_points() {
    let mut rng = Rng::new("hostile_exits_and_faults");
    for (config, spin) in spin_configs() {
        let mut b = builder(
            hostile_lib(),
            spin,
            &[
                "ffb_rlimit_cur(i32) -> i64",
                "ffb_exit_now(i32) -> void",
                "ffb_segv() -> void",
            ],
        )
        .load()
        .expect("loading the hostile corpus");
        let probe = b.function("ffb_rlimit_cur").unwrap();
        // RLIMIT_NOFILE: the same limit in every helper.
        let nofile = b
            .call(probe, &[Value::I32(libc::RLIMIT_NOFILE as i32)])
            .unwrap()
            .ret;
        assert!(matches!(nofile, Value::I64(n) if n > 0), "{nofile:?}");
        let mut ended = 0;
        let mut pids = std::collections::BTreeSet::new();
        let n = 300 * scale();
        for i in 0..n {
            match rng.next() % 24 {
                0 => {
                    let code = rng.range(0, 255) as i32;
                    let e = b
                        .call_by_name("ffb_exit_now", &[Value::I32(code)])
                        .unwrap_err();
                    assert_eq!(e.kind, ErrorKind::Exited { code }, "{config} call {i}: {e}");
                    ended += 1;
                }
                1 => {
                    let e = b.call_by_name("ffb_segv", &[]).unwrap_err();
                    assert_eq!(e.kind, crashed("SIGSEGV"), "{config} call {i}: {e}");
                    ended += 1;
                }
                _ => {
                    let out = b
                        .call(probe, &[Value::I32(libc::RLIMIT_NOFILE as i32)])
                        .unwrap();
                    assert_eq!(out.ret, nofile, "{config} call {i}");
                    pids.insert(b.helper_pid().unwrap());
                }
            }
            rng.pause(300);
        }
        let out = b
            .call(probe, &[Value::I32(libc::RLIMIT_NOFILE as i32)])
            .unwrap();
        assert_eq!(out.ret, nofile, "{config}");
        assert_eq!(b.respawns(), ended, "{config}");
        // Every helper that served a probe was a different process.
        assert!(pids.len() as u64 <= ended + 1, "{config}");
        eprintln!("{config}: {ended} exits/faults in {n} calls");
    }
}

/// A killer thread SIGKILLs the helper after a random delay while the host
/// keeps calling: the kill lands while the host spins, while it sleeps,
/// while the helper runs the call, or between calls.
#[test]
fn helpers_killed_while_the_host_waits() {
    let mut rng = Rng::new("helpers_killed_while_the_host_waits");
    let (orders, killer_rx) = mpsc::channel::<(OwnedFd, Duration, mpsc::Sender<bool>)>();
    let killer = thread::spawn(move || {
        for (pidfd, delay, done) in killer_rx {
            let start = Instant::now();
            if delay > Duration::from_micros(500) {
                thread::sleep(delay);
            } else {
                while start.elapsed() < delay {
                    std::hint::spin_loop();
                }
            }
            done.send(pidfd_signal(&pidfd, libc::SIGKILL)).unwrap();
        }
    });
    let sigkill = crashed("SIGKILL");
    for (config, spin) in spin_configs() {
        let mut b = fixture(spin);
        let calls = b.function("ffb_calls").unwrap();
        let mut counter = CallCounter::new();
        let mut made = 0;
        let rounds = 60 * scale();
        for round in 0..rounds {
            // A live helper to aim at.
            let out = b.call(calls, &[]).unwrap();
            counter.ok(&out.ret, made);
            made += 1;
            let pid = b.helper_pid().unwrap();
            let pidfd = pidfd_open(pid).unwrap_or_else(|e| panic!("pidfd_open({pid}): {e}"));
            let delay = if rng.chance(4) {
                Duration::from_micros(rng.range(500, 3_000))
            } else {
                Duration::from_micros(rng.range(0, 300))
            };
            let (done, killed) = mpsc::channel();
            orders.send((pidfd, delay, done)).unwrap();
            // Call until the kill shows; every answer before it must be right.
            let mut calls_in_round = 0;
            let e = loop {
                match b.call(calls, &[]) {
                    Ok(out) => counter.ok(&out.ret, made),
                    Err(e) => break e,
                }
                made += 1;
                calls_in_round += 1;
                assert!(
                    calls_in_round < 1_000_000,
                    "{config} round {round}: never killed"
                );
                if rng.chance(8) {
                    rng.pause(200);
                }
            };
            assert_eq!(e.kind, sigkill, "{config} round {round}: {e}");
            assert!(
                killed.recv().unwrap(),
                "{config} round {round}: kill failed"
            );
            counter.helper_ended();
        }
        // Every round but the first started with a fresh helper.
        assert_eq!(b.respawns(), rounds as u64 - 1, "{config}");
        eprintln!("{config}: {rounds} kills over {made} calls");
    }
    drop(orders);
    killer.join().unwrap();
}

// ---------------------------------------------------------------------------
// (b) hosts that give up just as the helper answers
// ---------------------------------------------------------------------------

#[test]
fn timeouts_at_the_boundary_never_leak_a_stale_answer() {
    let mut rng = Rng::new("timeouts_at_the_boundary");
    for (config, spin) in spin_configs() {
        for (timeout_ms, sleeps) in [(20u64, 15..=25u64), (3, 1..=5)] {
            let mut b = fixture(spin);
            b.set_timeout(Duration::from_millis(timeout_ms));
            let sleep = b.function("ffb_sleep_ms").unwrap();
            let calls = b.function("ffb_calls").unwrap();
            let mut counter = CallCounter::new();
            let (mut ok, mut timed_out) = (0, 0);
            for i in 0..50 * scale() {
                let k = rng.range(*sleeps.start(), *sleeps.end()) as i64;
                let before = b.generation();
                match b.call(sleep, &[Value::I64(k)]) {
                    Ok(out) => {
                        assert_eq!(out.ret, Value::I64(k), "{config} {timeout_ms} ms, call {i}");
                        assert_eq!(b.generation(), before);
                        ok += 1;
                    }
                    Err(e) => {
                        assert_eq!(e.kind, ErrorKind::Timeout, "{config} call {i}: {e}");
                        counter.helper_ended();
                        timed_out += 1;
                    }
                }
                // The next call: on the same helper after an answer, on a
                // fresh one (whose count starts at 1) after a timeout. The
                // generous timeout keeps a slow respawn from timing out.
                b.set_timeout(Duration::from_secs(20));
                let out = b.call(calls, &[]).unwrap();
                counter.ok(&out.ret, i);
                assert_ne!(b.generation(), 0);
                b.set_timeout(Duration::from_millis(timeout_ms));
            }
            assert_eq!(b.respawns(), timed_out, "{config}");
            eprintln!(
                "{config}, timeout {timeout_ms} ms, sleeps {sleeps:?} ms: {ok} answered, {timed_out} timed out"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (c) both sides parked, and signals that interrupt the host's waits
// ---------------------------------------------------------------------------

extern "C" fn ignore_signal(_: libc::c_int) {}

/// A no-op SIGUSR2 handler without SA_RESTART: a SIGUSR2 sent to a thread
/// blocked in `poll` or `recvmsg` makes that call fail with EINTR.
fn install_eintr_handler() {
    // SAFETY: sigaction is plain old data; all zeroes is a valid value
    // (no handler, no flags, an empty mask).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
    action.sa_flags = 0;
    // SAFETY: the mask is a live, writable sigset_t in `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised and its handler is an
    // `extern "C" fn(c_int)` that does nothing, so it is async-signal-safe;
    // the old action is not asked for (null).
    let rc = unsafe { libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());
}

fn gettid() -> i64 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// Until `stop`: SIGUSR2 to the host thread `tid` and SIGCONT (harmless) to
/// the helper `pid`, at random intervals around the spin windows.
fn signal_storm(
    tid: i64,
    helper: Arc<std::sync::Mutex<Option<i32>>>,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut sent = 0;
        let mut current: Option<(i32, OwnedFd)> = None;
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: tgkill takes ids and a signal number and touches no
            // memory; SIGUSR2 runs the no-op handler installed above.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    std::process::id() as libc::pid_t,
                    tid,
                    libc::SIGUSR2,
                )
            };
            sent += 1;
            let pid = *helper.lock().unwrap();
            if let Some(pid) = pid {
                if current.as_ref().map(|c| c.0) != Some(pid) {
                    current = pidfd_open(pid).ok().map(|fd| (pid, fd));
                }
                if let Some((_, fd)) = &current {
                    pidfd_signal(fd, libc::SIGCONT);
                }
            }
            thread::sleep(Duration::from_micros(rng.range(20, 1_500)));
        }
        sent
    })
}

#[test]
fn parked_sides_and_signals_lose_nothing() {
    install_eintr_handler();
    let mut rng = Rng::new("parked_sides_and_signals");
    for (config, spin) in spin_configs() {
        let mut b = fixture(spin);
        let helper = Arc::new(std::sync::Mutex::new(b.helper_pid()));
        let stop = Arc::new(AtomicBool::new(false));
        let storm = signal_storm(gettid(), helper.clone(), stop.clone(), Rng(rng.next()));

        // Calls separated by pauses longer than the spin windows.
        let record = b.function("ffb_record").unwrap();
        let values: Vec<i64> = (0..200 * scale()).map(|_| rng.next() as i64).collect();
        for (i, v) in values.iter().enumerate() {
            let out = b.call(record, &[Value::I64(*v)]).unwrap();
            assert_eq!(out.ret, Value::I64(i as i64 + 1), "{config} call {i}");
            thread::sleep(Duration::from_micros(rng.range(0, 3_000)));
        }
        assert_eq!(recorded(&mut b), values, "{config}");

        // Respawns (fork server exchange, handshake) under the same storm.
        let calls = b.function("ffb_calls").unwrap();
        // ffb_record is not ffb_calls: this helper's count starts at 1.
        let mut counter = CallCounter::new();
        let respawns = b.respawns();
        let mut crashes = 0;
        let n = 100 * scale();
        for i in 0..n {
            *helper.lock().unwrap() = b.helper_pid();
            if rng.chance(8) {
                crash(&mut b);
                crashes += 1;
                counter.helper_ended();
            } else {
                let out = b.call(calls, &[]).unwrap();
                counter.ok(&out.ret, i);
            }
            rng.pause(2_000);
        }
        counter.ok(&b.call(calls, &[]).unwrap().ret, n);
        assert_eq!(b.respawns() - respawns, crashes, "{config}");
        stop.store(true, Ordering::Relaxed);
        let sent = storm.join().unwrap();
        eprintln!("{config}: {sent} signals, {crashes} crashes");
    }
}

// ---------------------------------------------------------------------------
// (d) many host threads on one pool
// ---------------------------------------------------------------------------

#[test]
fn eight_threads_on_one_pool_get_every_answer_once() {
    const THREADS: u64 = 8;
    let per_thread = 1_000 * scale() as u64;
    let mut rng = Rng::new("eight_threads_on_one_pool");
    for (config, spin) in spin_configs() {
        let pool = Pool::new(
            builder(fixture_lib(), spin, FIXTURE),
            PoolConfig {
                min_helpers: 1,
                max_helpers: 3,
                idle_timeout: Some(Duration::from_millis(50)),
            },
        )
        .unwrap();
        let add = pool.function("ffb_add_i64").unwrap();
        let next = pool.function("ffb_counter_next").unwrap();
        let successes = Arc::new(AtomicU64::new(0));
        let start = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, successes, start) = (pool.clone(), successes.clone(), start.clone());
                let mut rng = Rng(rng.next());
                thread::spawn(move || {
                    start.wait();
                    // Each thread's own counter lives on one member; its calls
                    // interleave with everyone's unaffined ones.
                    let base = t as i64 * 1_000_000;
                    let out = pool.call("ffb_counter_new", &[Value::I64(base)]).unwrap();
                    successes.fetch_add(1, Ordering::Relaxed);
                    let Value::Handle(counter) = out.ret else {
                        panic!("{:?}", out.ret)
                    };
                    let mut ticks = 0;
                    for i in 1..per_thread {
                        if i % 4 == 0 {
                            let out = pool.call(next, &[Value::Handle(counter)]).unwrap();
                            assert_eq!(out.ret, Value::I64(base + ticks), "thread {t} call {i}");
                            ticks += 1;
                        } else {
                            let a = (t << 48 | i) as i64;
                            let b = -(rng.next() as i64 >> 2);
                            let out = pool.call(add, &[Value::I64(a), Value::I64(b)]).unwrap();
                            assert_eq!(out.ret, Value::I64(a + b), "thread {t} call {i}");
                        }
                        successes.fetch_add(1, Ordering::Relaxed);
                        if rng.chance(50) {
                            rng.pause(1_000);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a caller panicked");
        }
        assert_eq!(successes.load(Ordering::Relaxed), THREADS * per_thread);
        let stats = pool.stats();
        assert_eq!(stats.calls, THREADS * per_thread, "{config}: {stats:?}");
        assert!(stats.members <= 3, "{config}: {stats:?}");
        assert_eq!(stats.respawns, 0, "{config}: {stats:?}");
        eprintln!("{config}: {stats:?}");
    }
}

// ---------------------------------------------------------------------------
// (e) ordering under parking
// ---------------------------------------------------------------------------

#[test]
fn order_survives_parking() {
    let mut rng = Rng::new("order_survives_parking");
    for (config, spin) in spin_configs() {
        let mut b = fixture(spin);
        let record = b.function("ffb_record").unwrap();
        let values: Vec<i64> = (0..2_000 * scale() as i64).collect();
        for (i, v) in values.iter().enumerate() {
            let out = b.call(record, &[Value::I64(*v)]).unwrap();
            assert_eq!(out.ret, Value::I64(i as i64 + 1), "{config} call {i}");
            if rng.chance(3) {
                rng.pause(400);
            }
        }
        assert_eq!(recorded(&mut b), values, "{config}");
        assert_eq!(b.respawns(), 0, "{config}");
    }
}
