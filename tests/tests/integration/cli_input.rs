//! The command line under input a new user (or a careless script) gives it:
//! every request answered, nothing read without a bound, nothing started
//! before the input is known to be good, no panic on a closed or full
//! stdout, and every error one line that blames the right party and shows
//! the user's text escaped.
//!
//! Each test is one defect found by trying the CLI as a new user would
//! (issue 11, section 1), run as a real `ffb` process. Where ffb must refuse
//! before it starts anything, the run uses a [`Sentinel`] shim (through
//! [`refused`]) that records any attempt to start it.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ffb_tests::cli::{
    call_args, ffb, ffb_run, path_str, read_all, refused, run, wait_with_deadline, Scratch,
};
use ffb_tests::fixture_lib;
use serde_json::{json, Value as Json};

// ---------------------------------------------------------------------------
// support
// ---------------------------------------------------------------------------

/// `ffb call --bridge-mode --lib FIXTURE OPTIONS... --sig SIG ARGS...`,
/// refused before anything starts: returns the one stderr line.
fn call_refused(options: &[&str], sig: &str, args: &[&str]) -> String {
    // Cut: a case may be a name of thousands of characters.
    let case: String = format!("{options:?} {sig} {args:?}")
        .chars()
        .take(200)
        .collect();
    let argv = call_args(path_str(fixture_lib()), options, sig, args);
    refused(&case, &argv, None)
        .expect_usage_error_for(&case)
        .to_string()
}

/// `dir/name`, a sparse file of `len` bytes: as large as that to whoever
/// checks its size, and cheap to make.
fn sparse_file(dir: &Scratch, name: &str, len: u64) -> PathBuf {
    let path = dir.path(name);
    fs::File::create(&path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("a sparse file of {len} bytes at {}: {e}", path.display()));
    path
}

/// Asserts that `line` has no control character: whatever the user typed,
/// ffb's messages reach the terminal as plain text.
fn assert_printable(line: &str) {
    assert!(
        !line.chars().any(char::is_control),
        "a control character reached the terminal: {line:?}"
    );
}

/// Runs `ffb ARGS...` with `stdout` as its stdout (and `stdin`, or
/// /dev/null), under the watchdog: the exit status and everything on
/// stderr. Fails on death by a signal and on panic text.
fn run_with_stdout(args: &[&str], stdout: Stdio, stdin: Option<&[u8]>) -> (i32, String) {
    let mut cmd = ffb();
    cmd.args(args).stdout(stdout).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("starting ffb");
    if let Some(bytes) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A broken pipe just means ffb stopped reading.
        let _ = pipe.write_all(bytes);
    }
    let err = read_all(child.stderr.take().expect("piped stderr"));
    let status = wait_with_deadline(&mut child, &format!("{args:?}"));
    let stderr = err.join().expect("stderr reader");
    let code = status
        .code()
        .unwrap_or_else(|| panic!("{args:?} was killed by a signal: {status:?}\n{stderr}"));
    for forbidden in ["panicked", "backtrace"] {
        assert!(!stderr.contains(forbidden), "{args:?}: {stderr}");
    }
    (code, stderr)
}

/// A pipe whose reading end is already closed: writing to it fails with
/// EPIPE, as `ffb ... | true` does once `true` has exited.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer.into()
}

/// `/dev/full` for writing: every write fails with ENOSPC.
fn full_device() -> Stdio {
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("opening /dev/full")
        .into()
}

/// The repository's manifest for libsqlite3.
const SQLITE_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/sqlite3.toml");

/// The commands that print on stdout, each as `ffb` takes it, with what
/// they read on stdin.
fn printing_commands(lib: &str) -> Vec<(Vec<&str>, Option<&'static [u8]>)> {
    vec![
        (vec!["policy", "check", "pure"], None),
        (vec!["policy", "explain", "pure"], None),
        (vec!["policy", "explain", "--json", "pure"], None),
        (vec!["policy", "lint", "pure"], None),
        (vec!["--help"], None),
        (vec!["call", "--help"], None),
        (
            vec![
                "call",
                "--bridge-mode",
                "--lib",
                lib,
                "--sig",
                "ffb_id_i32(i32) -> i32",
                "5",
            ],
            None,
        ),
        (
            vec![
                "call",
                "--bridge-mode",
                "--json",
                "--lib",
                lib,
                "--sig",
                "ffb_id_i32(i32) -> i32",
                "5",
            ],
            None,
        ),
        (
            vec!["session", "--bridge-mode", "--lib", lib],
            Some(b"{\"id\":1,\"sig\":\"ffb_id_i32(i32) -> i32\",\"args\":[5]}\n"),
        ),
        (vec!["describe", "--manifest", SQLITE_MANIFEST], None),
        (
            vec!["describe", "--json", "--manifest", SQLITE_MANIFEST],
            None,
        ),
        (vec!["sql", "--bridge-mode", "select 1"], None),
        (vec!["sql", "--bridge-mode", "--json", "select 1"], None),
    ]
}

/// Compiles `source` (C) into a shared library `name` in `dir`.
fn compile_lib(dir: &Scratch, name: &str, source: &str) -> PathBuf {
    let src = dir.file(&format!("{name}.c"), source);
    let out = dir.path(&format!("lib{name}.so"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(status.success(), "compiling {}", src.display());
    out
}

// ---------------------------------------------------------------------------
// lost data: every session line gets one answer
// ---------------------------------------------------------------------------

#[test]
fn a_session_answers_every_line_even_one_that_is_not_utf8() {
    let lib = path_str(fixture_lib());
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"id\":1,\"sig\":\"ffb_id_i32(i32) -> i32\",\"args\":[1]}\n");
    input.extend_from_slice(
        b"{\"id\":2,\"sig\":\"ffb_strlen(cstr) -> usize\",\"args\":[\"caf\xe9\"]}\n",
    );
    input.extend_from_slice(b"{\"id\":3,\"sig\":\"ffb_id_i32(i32) -> i32\",\"args\":[3]}\n");
    // A line of only invalid bytes, with no id to be found.
    input.extend_from_slice(b"\xff\xfe\n");
    input.extend_from_slice(b"{\"id\":5,\"sig\":\"ffb_id_i32(i32) -> i32\",\"args\":[5]}\n");
    let mut cmd = ffb();
    cmd.args(["session", "--bridge-mode", "--lib", lib]);
    let r = run(cmd, Some(&input));
    r.expect_code(0);
    assert_eq!(r.stderr, "", "{r:#?}");
    let answers = r.json_lines();
    assert_eq!(answers.len(), 5, "one answer per line: {r:#?}");
    let ids: Vec<Json> = answers.iter().map(|a| a["id"].clone()).collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3), Json::Null, json!(5)]);
    for (i, n) in [(0, 1), (2, 3), (4, 5)] {
        assert_eq!(answers[i]["ok"], json!(true), "{}", answers[i]);
        assert_eq!(answers[i]["ret"], json!(n), "{}", answers[i]);
    }
    for (i, line) in [(1, 2), (3, 4)] {
        let e = &answers[i]["error"];
        assert_eq!(answers[i]["ok"], json!(false), "{}", answers[i]);
        assert_eq!(e["kind"], json!("bad_argument"), "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("line {line}: not UTF-8")),
            "{message}"
        );
    }
}

#[test]
fn a_session_line_longer_than_its_bound_is_answered_and_skipped() {
    // Twice the 64 MiB arena (a bytes argument as hex) plus 1 MiB, plus one.
    let bound = 2 * (64 << 20) + (1 << 20);
    let mut input = vec![b'x'; bound + 1];
    input.extend_from_slice(b"\n{\"id\":2,\"sig\":\"ffb_id_i32(i32) -> i32\",\"args\":[2]}\n");
    let mut cmd = ffb();
    cmd.args(["session", "--bridge-mode", "--lib", path_str(fixture_lib())]);
    let r = run(cmd, Some(&input));
    r.expect_code(0);
    let answers = r.json_lines();
    assert_eq!(answers.len(), 2, "{:?}", answers);
    let message = answers[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("line 1: longer than {bound} bytes")),
        "{message}"
    );
    assert_eq!(answers[1]["id"], json!(2));
    assert_eq!(answers[1]["ret"], json!(2));
}

// ---------------------------------------------------------------------------
// panics
// ---------------------------------------------------------------------------

#[test]
fn repeat_beyond_its_bound_is_a_usage_error() {
    for n in ["18446744073709551615", "100000000000", "1000001"] {
        let line = call_refused(&["--repeat", n], "ffb_nop() -> void", &[]);
        assert!(
            line.contains("--repeat") && line.contains("1000000"),
            "{line}"
        );
    }
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let lib = path_str(fixture_lib());
    for (args, stdin) in printing_commands(lib) {
        let (code, stderr) = run_with_stdout(&args, closed_pipe(), stdin);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}: a closed stdout is not an error");
    }
}

#[test]
fn a_full_stdout_is_one_line_and_exit_1() {
    let lib = path_str(fixture_lib());
    for (args, stdin) in printing_commands(lib) {
        let (code, stderr) = run_with_stdout(&args, full_device(), stdin);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(
            stderr, "ffb: writing the output: No space left on device\n",
            "{args:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// unbounded reads
// ---------------------------------------------------------------------------

#[test]
fn devices_and_fifos_are_refused_where_a_file_is_meant() {
    let dir = Scratch::new("fifo");
    let fifo = dir.path("policy.fifo");
    let c_path = std::ffi::CString::new(path_str(&fifo)).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path, a live CString.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let fifo = path_str(&fifo);
    let lib = path_str(fixture_lib());
    let crc = "ffb_strlen(cstr) -> usize";
    let fifo_arg = format!("@{fifo}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            call_args(lib, &[], crc, &["@/dev/zero"]),
            "character device",
        ),
        (
            call_args(lib, &["--policy", "/dev/zero"], crc, &["a"]),
            "character device",
        ),
        (call_args(lib, &["--policy", fifo], crc, &["a"]), "FIFO"),
        (call_args(lib, &["--policy", "/"], crc, &["a"]), "directory"),
        (call_args(lib, &[], crc, &[&fifo_arg]), "FIFO"),
        (vec!["policy", "check", fifo], "FIFO"),
        (vec!["policy", "lint", "/dev/zero"], "character device"),
        (
            vec![
                "policy",
                "learn",
                "--bridge-mode",
                "--lib",
                lib,
                "--script",
                "/dev/zero",
            ],
            "character device",
        ),
        (
            vec!["call", "--bridge-mode", "--manifest", "/dev/zero", "f"],
            "character device",
        ),
        (
            vec![
                "session",
                "--bridge-mode",
                "--lib",
                lib,
                "--policy",
                "/dev/zero",
            ],
            "character device",
        ),
    ];
    for (args, why) in cases {
        let case = format!("{args:?}");
        let r = refused(&case, &args, None);
        // A session reports on stdout, as JSON; the others on stderr.
        let line = if args[0] == "session" {
            r.json_for(&case)["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            r.expect_usage_error_for(&case).to_string()
        };
        assert!(
            line.contains(why) && line.contains("not a regular file"),
            "{case}: {line}"
        );
    }
}

#[test]
fn oversized_input_is_refused_before_anything_starts() {
    let dir = Scratch::new("oversized");
    let big = sparse_file(&dir, "big.bin", 100_000_000);
    let big_arg = format!("@{}", path_str(&big));
    let line = call_refused(&[], "ffb_sum_bytes(bytes, usize) -> u32", &[&big_arg, "1"]);
    assert!(
        line.contains("argument 1") && line.contains("64 MiB"),
        "{line}"
    );

    let line = call_refused(&[], "ffb_fill_out(out[1073741824], usize) -> i32", &["1"]);
    assert!(
        line.contains("argument 1") && line.contains("arena"),
        "{line}"
    );

    // Two buffers that fit one by one, but not together (the function is
    // never looked up: the refusal comes first).
    let half = sparse_file(&dir, "half.bin", 40 << 20);
    let half_arg = format!("@{}", path_str(&half));
    let line = call_refused(
        &[],
        "ffb_two_buffers(bytes, bytes) -> void",
        &[&half_arg, &half_arg],
    );
    assert!(
        line.contains("argument 2") && line.contains("arena"),
        "{line}"
    );

    let policy = sparse_file(&dir, "big.toml", 5 << 20);
    let line = call_refused(&["--policy", path_str(&policy)], "ffb_nop() -> void", &[]);
    assert!(line.contains("larger than 4 MiB"), "{line}");
}

// ---------------------------------------------------------------------------
// wrong blame, half-done refusals, silent acceptance
// ---------------------------------------------------------------------------

#[test]
fn a_huge_function_or_library_name_is_a_usage_error() {
    let name = "f".repeat(8108);
    let line = call_refused(&[], &format!("{name}() -> void"), &[]);
    assert!(
        line.contains("8108 bytes") && line.contains("4096"),
        "{line}"
    );
    assert!(
        line.len() < 2100,
        "the echo is capped: {} bytes",
        line.len()
    );

    let lib = format!("/{}", "x/".repeat(2100));
    let argv = call_args(&lib, &[], "ffb_nop() -> void", &[]);
    let r = refused("a 4 KiB --lib", &argv, None);
    let line = r.expect_usage_error();
    assert!(line.contains("--lib") && line.contains("4095"), "{line}");
    assert!(!line.contains("protocol"), "{line}");
}

#[test]
fn a_bad_extension_output_is_refused_before_the_audit_log_is_created() {
    let dir = Scratch::new("half-done");
    let audit = dir.path("audit.log");
    let line = call_refused(
        &[
            "--audit-log",
            path_str(&audit),
            "--extension-output",
            "/nonexistent/ffb/out.log",
        ],
        "ffb_nop() -> void",
        &[],
    );
    assert!(line.contains("--extension-output"), "{line}");
    assert!(
        !audit.exists(),
        "the audit log was created before the refusal"
    );

    // What cannot be appended to without blocking or failing is refused
    // too; a character device (a terminal, /dev/null) takes the output.
    let fifo = dir.path("out.fifo");
    let c_path = std::ffi::CString::new(path_str(&fifo)).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path, a live CString.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let scratch = dir.path("");
    for (path, why) in [(path_str(&fifo), "FIFO"), (path_str(&scratch), "directory")] {
        let line = call_refused(&["--extension-output", path], "ffb_nop() -> void", &[]);
        assert!(line.contains(why), "{line}");
    }
    let lib = path_str(fixture_lib());
    let r = ffb_run(&call_args(
        lib,
        &["--extension-output", "/dev/null"],
        "ffb_nop() -> void",
        &[],
    ));
    r.expect_code(0);
}

#[test]
fn an_empty_library_name_is_refused() {
    let argv = call_args("", &[], "getpid() -> i32", &[]);
    let r = refused("--lib ''", &argv, None);
    let line = r.expect_usage_error();
    assert!(line.contains("--lib") && line.contains("empty"), "{line}");
}

#[test]
fn floats_too_large_for_their_type_are_refused_not_made_infinite() {
    for (sig, text) in [
        ("ffb_id_f64(f64) -> f64", "1e400"),
        ("ffb_id_f64(f64) -> f64", "-1e400"),
        ("ffb_id_f32(f32) -> f32", "1e39"),
        ("ffb_ptr_f32(*f32) -> void", "1e39"),
    ] {
        let line = call_refused(&[], sig, &[text]);
        assert!(line.contains("out of range"), "{sig} {text}: {line}");
    }
    // The same through a session, as a JSON number.
    let lib = path_str(fixture_lib());
    let mut cmd = ffb();
    cmd.args(["session", "--bridge-mode", "--lib", lib]);
    let r = run(
        cmd,
        Some(b"{\"id\":1,\"sig\":\"ffb_id_f32(f32) -> f32\",\"args\":[1e39]}\n"),
    );
    let answer = &r.json_lines()[0];
    assert_eq!(answer["error"]["kind"], json!("bad_argument"), "{answer}");
    // An infinity that is written as one is an infinity.
    let r = ffb_run(&call_args(
        lib,
        &["--json"],
        "ffb_id_f64(f64) -> f64",
        &["-inf"],
    ));
    r.expect_code(0);
    assert_eq!(r.json()["ret"], json!("-inf"), "{r:#?}");
}

#[test]
fn a_sign_after_0x_is_refused() {
    for text in ["0x-1", "0x+1", "0x-0x1"] {
        let line = call_refused(&[], "ffb_id_i32(i32) -> i32", &[text]);
        assert!(line.contains("not an integer"), "{text}: {line}");
    }
}

#[test]
fn a_json_array_as_a_policy_is_reported_as_such() {
    let dir = Scratch::new("array-policy");
    let policy = dir.file("policy.json", "  [{\"names\": [\"read\"]}]\n");
    let r = refused("array", &["policy", "check", path_str(&policy)], None);
    let line = r.expect_usage_error();
    assert_eq!(
        line,
        format!(
            "{}:1:3: the file is a JSON array, not a policy: a JSON policy is an object, \
             a Docker/OCI seccomp profile (with \"defaultAction\") or a seccompiler filter",
            policy.display()
        )
    );
}

#[test]
fn an_audit_log_that_would_lose_events_is_refused() {
    // /dev/full accepts the open and fails every write: the events would be
    // lost without a word.
    let line = call_refused(&["--audit-log", "/dev/full"], "ffb_nop() -> void", &[]);
    assert!(
        line.contains("--audit-log /dev/full") && line.contains("not a regular file"),
        "{line}"
    );
}

/// How large the audit log of [`lost_audit_lines_are_reported`] is, and
/// the file size limit its ffb runs under: every append fails with EFBIG,
/// as on a full disk (the limit is above the 64 MiB arena ffb creates).
const FULL_AT: u64 = 128 << 20;

#[test]
fn lost_audit_lines_are_reported() {
    use std::os::unix::process::CommandExt;
    let dir = Scratch::new("audit-full");
    // Sparse: the size is what counts.
    let audit = sparse_file(&dir, "audit.log", FULL_AT);
    let hostile = path_str(ffb_tests::hostile_lib());
    for (command, stdin) in [
        (vec!["call", "--sig", "ffb_segv()"], None),
        (
            vec!["session"],
            Some(&b"{\"id\":1,\"sig\":\"ffb_segv()\"}\n"[..]),
        ),
    ] {
        let mut cmd = ffb();
        cmd.args(&command[..1])
            .args(["--bridge-mode", "--lib", hostile, "--audit-log"])
            .arg(&audit)
            .args(&command[1..]);
        let limit_file_size = || {
            // SAFETY: ignoring SIGXFSZ changes only this (child) process's
            // disposition, so a write past the limit fails with EFBIG.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            let limit = libc::rlimit {
                rlim_cur: FULL_AT,
                rlim_max: FULL_AT,
            };
            // SAFETY: setrlimit reads the live `limit`.
            if unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        };
        // SAFETY: between fork and exec the hook makes only
        // async-signal-safe calls (signal, setrlimit) and allocates nothing.
        unsafe { cmd.pre_exec(limit_file_size) };
        let r = run(cmd, stdin);
        r.expect_code_for(1, command[0]);
        let lost = r
            .stderr
            .lines()
            .find(|l| l.contains("could not be written"))
            .unwrap_or_else(|| panic!("{}: the loss is not reported\n{r:#?}", command[0]));
        assert!(
            lost.starts_with(&format!("ffb: --audit-log {}: ", audit.display()))
                && lost.contains("File too large"),
            "{lost}"
        );
        assert_eq!(fs::metadata(&audit).unwrap().len(), FULL_AT);
    }
}

// ---------------------------------------------------------------------------
// messages
// ---------------------------------------------------------------------------

#[test]
fn user_text_in_errors_is_escaped_and_capped() {
    let dir = Scratch::new("escapes");
    let sneaky = "x\n\x1b[2J\x1b]0;owned\x07\u{9b}31m\u{202e}";
    let sneaky_path = format!("{}/{sneaky}.toml", path_str(&dir.path("")));
    let lib = path_str(fixture_lib());
    let long = "y".repeat(10_000);
    let cases: Vec<Vec<String>> = vec![
        // a signature
        vec!["--sig".into(), format!("f{sneaky}(i32) -> i32"), "1".into()],
        // an argument
        vec![
            "--sig".into(),
            "ffb_id_i32(i32) -> i32".into(),
            sneaky.into(),
        ],
        vec![
            "--sig".into(),
            "ffb_id_f64(f64) -> f64".into(),
            sneaky.into(),
        ],
        // a path
        vec![
            "--policy".into(),
            sneaky_path.clone(),
            "--sig".into(),
            "ffb_nop()".into(),
        ],
        vec![
            "--sig".into(),
            "ffb_strlen(cstr) -> usize".into(),
            format!("@{sneaky_path}"),
        ],
        // a long argument
        vec![
            "--sig".into(),
            "ffb_id_i32(i32) -> i32".into(),
            long.clone(),
        ],
    ];
    for case in cases {
        let mut argv = vec!["call", "--bridge-mode", "--lib", lib];
        argv.extend(case.iter().map(String::as_str));
        let r = refused(&format!("{case:?}"), &argv, None);
        let line = r.expect_usage_error_for(&format!("{case:?}"));
        assert_printable(line);
        assert!(line.len() < 2100, "{} bytes: {line}", line.len());
    }
    // A library whose name carries escapes fails to load: exit 1, one line.
    let argv = call_args(sneaky, &[], "ffb_nop() -> void", &[]);
    let r = ffb_run(&argv);
    r.expect_code(1);
    assert_printable(r.one_stderr_line());
    // Policy errors too.
    let r = ffb_run(&["policy", "check", &sneaky_path]);
    assert_printable(r.expect_usage_error());
}

#[test]
fn a_missing_policy_file_names_the_file_without_line_and_column() {
    let r = refused("nope", &["policy", "check", "nope"], None);
    assert_eq!(
        r.expect_usage_error(),
        "nope: cannot read the policy file: No such file or directory \
         (and it is not a preset: pure, fs-read, db-client, python)"
    );
    let line = call_refused(
        &["--policy", "/nonexistent/p.toml"],
        "ffb_nop() -> void",
        &[],
    );
    assert_eq!(
        line,
        "/nonexistent/p.toml: cannot read the policy file: No such file or directory"
    );
}

#[test]
fn a_crash_in_a_library_constructor_names_the_signal() {
    let dir = Scratch::new("ctor-crash");
    let lib = compile_lib(
        &dir,
        "ctor_crash",
        "#include <signal.h>\n\
         __attribute__((constructor)) static void crash(void) { raise(SIGSEGV); }\n\
         int f(void) { return 1; }\n",
    );
    let r = ffb_run(&call_args(path_str(&lib), &["--json"], "f() -> i32", &[]));
    r.expect_code(1);
    let e = &r.json()["error"];
    assert_eq!(e["kind"], json!("load_failed"), "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("SIGSEGV") && !message.contains("control channel"),
        "{message}"
    );
}

#[test]
fn calling_a_data_symbol_is_refused_before_the_call() {
    let dir = Scratch::new("data-symbol");
    let lib = compile_lib(
        &dir,
        "data_symbols",
        "int data_object = 7;\n\
         __thread int tls_object = 3;\n\
         int function(void) { return data_object + tls_object; }\n",
    );
    let lib = path_str(&lib);
    for (name, why) in [
        ("data_object", "is data (STT_OBJECT), not a function"),
        ("tls_object", "is not code"),
    ] {
        let sig = format!("{name}() -> i32");
        let r = ffb_run(&call_args(lib, &["--json"], &sig, &[]));
        r.expect_code(1);
        let e = &r.json()["error"];
        assert_eq!(e["kind"], json!("symbol_not_found"), "{name}: {e}");
        let message = e["message"].as_str().unwrap();
        // The helper's words, quoted by the host.
        assert!(
            message.contains(&format!("{name}\\' {why}")),
            "{name}: {message}"
        );
    }
    // Declared at run time in a session, the same; the session goes on.
    let mut cmd = ffb();
    cmd.args(["session", "--bridge-mode", "--lib", lib]);
    let r = run(
        cmd,
        Some(
            b"{\"id\":1,\"sig\":\"data_object() -> i32\"}\n\
              {\"id\":2,\"sig\":\"function() -> i32\"}\n",
        ),
    );
    let answers = r.json_lines();
    assert_eq!(
        answers[0]["error"]["kind"],
        json!("symbol_not_found"),
        "{r:#?}"
    );
    assert_eq!(answers[1]["ret"], json!(10), "{r:#?}");
}

#[test]
fn negative_numbers_need_no_double_dash() {
    let lib = path_str(fixture_lib());
    let cases = [
        ("ffb_id_i64(i64) -> i64", "-0x10", json!(-16)),
        ("ffb_id_i64(i64) -> i64", "-5", json!(-5)),
        ("ffb_id_f64(f64) -> f64", "-inf", json!("-inf")),
        ("ffb_id_f64(f64) -> f64", "-Infinity", json!("-inf")),
        ("ffb_id_f64(f64) -> f64", "-1.5e3", json!(-1500.0)),
        ("ffb_ptr_i8(*i8) -> void", "-0x7f", Json::Null),
    ];
    for (sig, text, ret) in cases {
        // The flag after the value still counts as a flag.
        let mut argv = call_args(lib, &[], sig, &[text]);
        argv.push("--json");
        let r = ffb_run(&argv);
        r.expect_code_for(0, text);
        let j = r.json_for(text);
        assert_eq!(j["ret"], ret, "{text}: {j}");
    }
    // A value of an option that takes one is not rewritten.
    let line = call_refused(&["--timeout-ms", "-0x10"], "ffb_nop() -> void", &[]);
    assert!(
        line.contains("'-0x10'") && !line.contains('\u{0}'),
        "{line}"
    );
    // After `--`, a dash is a dash, for a cstr.
    let r = ffb_run(&[
        "call",
        "--bridge-mode",
        "--lib",
        lib,
        "--sig",
        "ffb_strlen(cstr) -> usize",
        "--",
        "-x",
    ]);
    r.expect_code(0);
    assert_eq!(r.one_stdout_line(), "ffb_strlen = 2");
}

/// The argument types of the signature notation, as `ffb call --help` and
/// the README's table name them.
const TYPES: [&str; 17] = [
    "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "isize", "usize", "f32", "f64", "cstr",
    "bytes", "out[N]", "*T", "handle",
];

#[test]
fn call_help_lists_the_types_and_explains_out_and_pointers() {
    let r = ffb_run(&["call", "--help"]);
    r.expect_code(0);
    let help = &r.stdout;
    // Each type starts a line of the help's table.
    let rows: Vec<&str> = help.lines().map(str::trim_start).collect();
    for ty in TYPES {
        assert!(
            rows.iter()
                .any(|row| row.split_whitespace().any(|w| w == ty)),
            "{ty} missing from ffb call --help:\n{help}"
        );
    }
    for words in [
        "it takes NO argument",
        "give its\n             initial value",
        "Negative numbers work without --",
        "-inf",
        "-0x10",
        "too large for its type is refused",
    ] {
        assert!(help.contains(words), "{words:?} missing:\n{help}");
    }
    // The README's argument types are the same set.
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("### Argument types")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("README has an Argument types section");
    let mut in_readme: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            l.split('|')
                .nth(1)
                .unwrap_or("")
                .split('`')
                .skip(1)
                .step_by(2)
        })
        .collect();
    in_readme.sort_unstable();
    let mut expected = TYPES.to_vec();
    expected.sort_unstable();
    assert_eq!(
        in_readme, expected,
        "README's argument types differ from the help's"
    );
    // And the README says what the help says about negative numbers.
    assert!(readme.contains("Negative numbers need no `--`"));
}
