//! A thousand helpers started and ended every way there is must leave the
//! host exactly as it was: no fds, no children or zombies, no arena
//! mappings. A test binary of its own with one test only, so nothing else
//! runs in this process meanwhile.

use std::time::{Duration, Instant};

use ffb_loader::{Bridge, ErrorKind, Value};
use ffb_tests::bridge::{crashed, violation};
use ffb_tests::procfs::Snapshot;
use ffb_tests::{bridge_builder, hostile_lib, open_fds, shim_bin};

const CYCLES: usize = 1_000;

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
    let baseline = Snapshot::settled(&shim_bin(), Duration::from_secs(2), |s| {
        s.helpers.is_empty()
    });
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
    let end = Snapshot::settled(&shim_bin(), Duration::from_secs(2), |s| *s == baseline);
    let _ = std::fs::remove_file(&output);
    end.assert_unchanged_since(&baseline);
    assert_eq!(end.fds.len(), open_fds().len());
}
