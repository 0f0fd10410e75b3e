//! Defence in depth: the cap on `--extension-output`, from the attacker's
//! side (issue 9).
//!
//! The floods are C functions in `fixtures/ffb_attack_process.c`, run inside
//! the helper; what they achieved is read from outside it: the output file's
//! length and contents, and this process's threads and fds.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ffb_loader::{Bridge, ErrorKind, Value};
use ffb_tests::bridge::{crashed, i64_of};
use ffb_tests::bridge_builder;
use ffb_tests::cli::{self, path_str, Scratch};

const MIB: u64 = 1 << 20;

fn attack_lib() -> &'static Path {
    Path::new(env!("FFB_ATTACK_PROCESS_LIB"))
}

const DECLS: &[&str] = &[
    "ffb_spew(u64) -> i64",
    "ffb_spew_lines(u64) -> i64",
    "ffb_spew_forever() -> void",
    "ffb_spew_then_segv(u64) -> void",
];

fn cut_line(limit: u64) -> String {
    format!("[ffb: extension output cut at {limit} bytes]\n")
}

/// The tests here that count this process's drain threads run one at a time
/// (no other module gives a bridge an output file in this process).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn load(file: &Path, limit: Option<u64>) -> Bridge {
    let b = bridge_builder(attack_lib(), DECLS).extension_output(file);
    match limit {
        Some(bytes) => b.extension_output_limit(bytes),
        None => b,
    }
    .load()
    .expect("loading the attack library")
}

fn spew(b: &mut Bridge, n: u64) -> i64 {
    i64_of(&b.call_by_name("ffb_spew", &[Value::U64(n)]).unwrap().ret)
}

/// What `ffb_spew` writes: 'x', with a newline every 64 bytes.
fn spewed(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| if i % 64 == 63 { b'\n' } else { b'x' })
        .collect()
}

#[test]
fn a_64_mib_flood_is_cut_at_a_1_mib_limit() {
    let _g = serial();
    let dir = Scratch::new("output-flood");
    let file = dir.path("out.log");
    let mut b = load(&file, Some(MIB));
    let start = Instant::now();
    // The helper is never blocked: every byte it writes is taken.
    assert_eq!(spew(&mut b, 64 * MIB), (64 * MIB) as i64);
    let took = start.elapsed();
    drop(b);
    let got = std::fs::read(&file).unwrap();
    let line = cut_line(MIB);
    assert!(
        got.len() <= MIB as usize + line.len() + 1,
        "{} bytes",
        got.len()
    );
    assert!(got.ends_with(line.as_bytes()), "the cut line comes last");
    let body = &got[..got.len() - line.len()];
    // 1 MiB is a multiple of 64: the cut falls after a newline.
    assert_eq!(body, &spewed(MIB as usize)[..], "the first 1 MiB, intact");
    eprintln!("64 MiB through a 1 MiB cap in {took:.2?}");
}

#[test]
fn without_a_cap_the_flood_arrives_whole() {
    // Limit 0 is no cap: what the test above counts would then be wrong.
    let _g = serial();
    let dir = Scratch::new("output-uncapped");
    let file = dir.path("out.log");
    let mut b = load(&file, Some(0));
    assert_eq!(spew(&mut b, 3 * MIB), (3 * MIB) as i64);
    drop(b);
    assert_eq!(std::fs::read(&file).unwrap(), spewed(3 * MIB as usize));
}

#[test]
fn output_below_the_limit_arrives_intact_and_in_order() {
    let _g = serial();
    let dir = Scratch::new("output-order");
    let file = dir.path("out.log");
    // The default cap (16 MiB); stdout and stderr alternate, line by line.
    let mut b = load(&file, None);
    let lines = 20_000u64;
    let r = b.call_by_name("ffb_spew_lines", &[Value::U64(lines)]);
    assert_eq!(i64_of(&r.unwrap().ret), lines as i64);
    drop(b);
    let expected: String = (0..lines).map(|i| format!("{i:08}\n")).collect();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
}

#[test]
fn the_cap_is_per_bridge_across_respawns_and_the_file_is_appended_to() {
    let _g = serial();
    let dir = Scratch::new("output-respawn");
    let file = dir.file("out.log", "before\n");
    let mut b = load(&file, Some(MIB));
    let e = b
        .call_by_name("ffb_spew_then_segv", &[Value::U64(700_000)])
        .unwrap_err();
    assert_eq!(e.kind, crashed("SIGSEGV"), "{e}");
    // The respawned helper has only what is left of the bridge's budget.
    assert_eq!(spew(&mut b, 700_000), 700_000);
    assert_eq!(spew(&mut b, 700_000), 700_000);
    assert!(b.respawns() >= 1);
    drop(b);
    let got = std::fs::read(&file).unwrap();
    let line = cut_line(MIB);
    assert!(got.starts_with(b"before\n"), "the file is appended to");
    assert!(got.ends_with(line.as_bytes()), "the cut line comes last");
    // The cut falls mid-line here: the cut line starts a line of its own.
    let body = &got[7..got.len() - line.len() - 1];
    assert_eq!(got[got.len() - line.len() - 1], b'\n');
    assert_eq!(body.len(), MIB as usize, "two helpers, one budget");
    let mut expected = spewed(700_000);
    expected.extend_from_slice(&spewed(700_000));
    assert_eq!(body, &expected[..MIB as usize]);
    assert_eq!(
        got.windows(5).filter(|w| w == b"[ffb:").count(),
        1,
        "one cut line"
    );
}

/// This process's threads named `ffb-output` (the drains).
fn drain_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "ffb-output")
        .count()
}

/// This process's fds that point at `target` (a path or `pipe:[inode]`).
fn fds_to(target: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|f| std::fs::read_link(f.ok()?.path()).ok())
        .filter(|l| l == target)
        .count()
}

/// Where a helper's fds 1 and 2 point.
fn helper_stdio(pid: i32) -> [PathBuf; 2] {
    [1, 2].map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap())
}

#[test]
fn a_helper_that_dies_mid_spew_leaves_no_thread_or_fd() {
    let _g = serial();
    let dir = Scratch::new("output-death");
    let file = dir.path("out.log");
    let before = drain_threads();
    for round in 0..6 {
        let mut b = bridge_builder(attack_lib(), DECLS)
            .extension_output(&file)
            .extension_output_limit(MIB)
            .timeout(Duration::from_millis(300))
            .load()
            .unwrap();
        // The helper writes into a pipe, never into the file itself.
        let [out, err] = helper_stdio(b.helper_pid().unwrap());
        assert_eq!(out, err);
        assert!(out.to_string_lossy().starts_with("pipe:["), "{out:?}");
        assert_eq!(fds_to(&out), 1, "the host holds the read end only");
        assert_eq!(drain_threads(), before + 1, "one drain per helper");
        match round % 3 {
            0 => {
                let e = b.call_by_name("ffb_spew_forever", &[]).unwrap_err();
                assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
            }
            1 => {
                let e = b
                    .call_by_name("ffb_spew_then_segv", &[Value::U64(8 * MIB)])
                    .unwrap_err();
                assert_eq!(e.kind, crashed("SIGSEGV"), "{e}");
            }
            _ => assert_eq!(spew(&mut b, 100), 100),
        }
        drop(b);
        assert_eq!(fds_to(&out), 0, "round {round}: the pipe is closed");
        assert_eq!(fds_to(&file), 0, "round {round}: the file is closed");
        assert_eq!(drain_threads(), before, "round {round}: the drain ended");
    }
    // Six bridges, six budgets: four floods cut, two writes of 100 bytes.
    let got = std::fs::read(&file).unwrap();
    let line = cut_line(MIB);
    let cuts = got
        .windows(line.len())
        .filter(|w| *w == line.as_bytes())
        .count();
    assert_eq!(cuts, 4);
    assert_eq!(got.len(), 4 * (MIB as usize + line.len()) + 200);
}

#[test]
fn the_cli_caps_the_output_and_refuses_bad_limits() {
    let dir = Scratch::new("output-cli");
    let file = dir.path("out.log");
    let lib = path_str(attack_lib());
    let sig = "ffb_spew(u64) -> i64";
    let args = cli::call_args(
        lib,
        &[
            "--extension-output",
            path_str(&file),
            "--extension-output-limit",
            "64K",
        ],
        sig,
        &["4000000"],
    );
    let r = cli::ffb_run(&args);
    r.expect_code(0);
    assert!(r.one_stdout_line().contains("4000000"), "{r:#?}");
    let got = std::fs::read(&file).unwrap();
    let line = cut_line(64 << 10);
    assert_eq!(got.len(), (64 << 10) + line.len());
    assert!(got.ends_with(line.as_bytes()));

    let cases: &[&[&str]] = &[
        &[
            "--extension-output",
            "/dev/null",
            "--extension-output-limit",
            "x",
        ],
        &[
            "--extension-output",
            "/dev/null",
            "--extension-output-limit",
            "-1",
        ],
        &[
            "--extension-output",
            "/dev/null",
            "--extension-output-limit",
            "12Q",
        ],
        &[
            "--extension-output",
            "/dev/null",
            "--extension-output-limit",
            "",
        ],
        &[
            "--extension-output",
            "/dev/null",
            "--extension-output-limit",
            "99999999999999999999",
        ],
        &["--extension-output-limit", "1M"],
    ];
    for options in cases {
        let args = cli::call_args(lib, options, sig, &["1"]);
        let case = format!("{options:?}");
        let r = cli::ffb_run(&args);
        let line = r.expect_usage_error_for(&case);
        assert!(line.contains("--extension-output"), "{case}: {line}");
    }
}
