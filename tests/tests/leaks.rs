//! A thousand helpers started and ended every way there is must leave the
//! host exactly as it was: no fds, no children or zombies, no arena
//! mappings. A test binary of its own with one test only, so nothing else
//! runs in this process meanwhile.

use std::time::{Duration, Instant};

use ffb_loader::{Bridge, ErrorKind, Value};
use ffb_tests::bridge::{crashed, violation};
use ffb_tests::procfs::fork_server_children;
use ffb_tests::{bridge_builder, child_processes, hostile_lib, memfd_mappings, open_fds, shim_bin};

const CYCLES: usize = 1_000;

fn fork_server() -> u32 {
    ffb_loader::fork_server_pid(&shim_bin()).expect("the fork server runs")
}

/// This process's children other than the fork server.
fn children() -> Vec<(i32, char, String)> {
    let server = fork_server() as i32;
    child_processes()
        .into_iter()
        .filter(|(pid, _, _)| *pid != server)
        .collect()
}

/// The fork server's children (helpers, live or not yet reaped).
fn helpers() -> Vec<i32> {
    fork_server_children(&shim_bin())
}

/// The fork server's open fds (it keeps one status pipe per live helper).
fn fork_server_fds() -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", fork_server()))
        .map(|d| d.count())
        .unwrap_or(usize::MAX)
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    fds: Vec<(i32, String)>,
    children: Vec<(i32, char, String)>,
    memfds: usize,
    helpers: Vec<i32>,
    server_fds: usize,
    /// This process's threads (the drains of capped extension output among them).
    threads: usize,
}

fn snapshot() -> Snapshot {
    Snapshot {
        fds: open_fds(),
        children: children(),
        memfds: memfd_mappings(),
        helpers: helpers(),
        server_fds: fork_server_fds(),
        threads: std::fs::read_dir("/proc/self/task").map_or(usize::MAX, |d| d.count()),
    }
}

fn load(timeout: Duration) -> Bridge {
    load_with(timeout, None)
}

/// [`load`], with the extension's output (capped) in `output` if given.
fn load_with(timeout: Duration, output: Option<&std::path::Path>) -> Bridge {
    let b = bridge_builder(
        hostile_lib(),
        &[
            "ffb_segv() -> void",
            "ffb_rlimit_cur(i32) -> i64",
            "ffb_socket() -> i32",
            "ffb_spin_forever() -> void",
        ],
    )
    .timeout(timeout);
    match output {
        Some(path) => b.extension_output(path).extension_output_limit(4096),
        None => b,
    }
    .load()
    .expect("loading the hostile corpus")
}

fn harmless(b: &mut Bridge) {
    assert_eq!(
        b.call_by_name("ffb_rlimit_cur", &[Value::I32(7)])
            .unwrap()
            .ret,
        Value::I64(64)
    );
}

#[test]
fn a_thousand_helpers_leak_nothing() {
    // Start the fork server first: it and its socket live for the process.
    drop(load(Duration::from_secs(10)));
    let baseline = {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let s = snapshot();
            if s.helpers.is_empty() || Instant::now() >= deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert_eq!(baseline.helpers, Vec::<i32>::new());
    assert_eq!(baseline.children, Vec::new());
    assert_eq!(
        baseline.memfds, 0,
        "no arena is mapped with no bridge alive"
    );

    let output = std::env::temp_dir().join(format!("ffb-leaks-output-{}", std::process::id()));
    let start = Instant::now();
    let mut tally = [0usize; 4]; // dropped, crashed, timed out, violated
    for i in 0..CYCLES {
        if i % 50 == 49 {
            let mut b = load(Duration::from_millis(200));
            harmless(&mut b);
            let e = b.call_by_name("ffb_spin_forever", &[]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Timeout, "cycle {i}: {e}");
            tally[2] += 1;
        } else if i % 10 == 9 {
            let mut b = load(Duration::from_secs(10));
            let e = b.call_by_name("ffb_socket", &[]).unwrap_err();
            assert_eq!(e.kind, violation("socket", 41), "cycle {i}: {e}");
            tally[3] += 1;
        } else if i % 2 == 0 {
            let mut b = load(Duration::from_secs(10));
            harmless(&mut b);
            drop(b);
            tally[0] += 1;
        } else {
            // Crashing helpers with their output drained by the host: the
            // drain threads and pipes must end with them.
            let mut b = load_with(Duration::from_secs(10), Some(&output));
            let e = b.call_by_name("ffb_segv", &[]).unwrap_err();
            assert_eq!(e.kind, crashed("SIGSEGV"), "cycle {i}: {e}");
            // Every fourth crash, carry on in a respawned helper first.
            if i % 8 == 1 {
                harmless(&mut b);
            }
            tally[1] += 1;
        }
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{CYCLES} cycles (dropped, crashed, timed out, violated = {tally:?}) in {elapsed:.2?}"
    );
    assert_eq!(tally.iter().sum::<usize>(), CYCLES);
    assert_eq!(tally, [500, 400, 20, 80]);

    // The fork server reaps asynchronously: give it up to 2 s.
    let deadline = Instant::now() + Duration::from_secs(2);
    let end = loop {
        let s = snapshot();
        if s == baseline || Instant::now() >= deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&output);
    let zombies: Vec<_> = end.children.iter().filter(|c| c.1 == 'Z').collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    assert_eq!(end.fds, baseline.fds, "open fds");
    assert_eq!(end.children, baseline.children, "child processes");
    assert_eq!(end.memfds, baseline.memfds, "memfd mappings");
    assert_eq!(end.helpers, baseline.helpers, "helpers left behind");
    assert_eq!(end.server_fds, baseline.server_fds, "fork server fds");
    assert_eq!(end.threads, baseline.threads, "threads");
    assert_eq!(end.fds.len(), open_fds().len());
}
