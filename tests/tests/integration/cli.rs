//! Integration tests of the `ffb` command line: `ffb call` and `ffb session`
//! run as real processes (`std::process::Command`) against the C fixtures,
//! the hostile corpus and the system's libz.
//!
//! The processes are run by [`ffb_tests::cli`]: every run gets `FFB_SHIM`
//! (the freshly built helper), no inherited `FFB_BRIDGE_MODE`, and
//! `RUST_BACKTRACE=1`, so that a panic anywhere would show up as
//! "panicked"/"backtrace" text, which [`run`] rejects for every command.
//! Every child has a watchdog ([`DEADLINE`]): a hang fails the test instead
//! of blocking the suite. There are no timing assertions beyond the
//! structure of `--repeat`'s report.
//!
//! Where a command must not spawn anything (bridge mode off, bad usage), the
//! run points `FFB_SHIM` at a sentinel script ([`Sentinel`]) that records
//! any attempt to start it.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ffb_tests::cli::{
    call_args, ffb, ffb_run, path_str, read_all, refused, run, single_json_object,
    wait_with_deadline, Run, Scratch, Sentinel, DEADLINE,
};
use ffb_tests::procfs::{namespaced_pid, proc_stat, processes, ProcStat};
use ffb_tests::{fixture_lib, hostile_lib};
use serde_json::{json, Value as Json};

// ---------------------------------------------------------------------------
// support
// ---------------------------------------------------------------------------

/// `ffb call --bridge-mode --json --lib LIB --sig SIG ARGS...`: the run and
/// its single JSON object.
fn call_json(lib: &Path, sig: &str, args: &[&str]) -> (Run, Json) {
    call_json_with(lib, sig, &[], args)
}

/// Like [`call_json`] with extra options before `--sig`.
fn call_json_with(lib: &Path, sig: &str, options: &[&str], args: &[&str]) -> (Run, Json) {
    let options = [&["--json"], options].concat();
    let r = ffb_run(&call_args(path_str(lib), &options, sig, args));
    let j = r.json();
    (r, j)
}

/// A successful `--json` call: exit 0, `ok: true`, an `out` array with one
/// entry per parameter; returns the object.
fn call_ok(lib: &Path, sig: &str, nparams: usize, args: &[&str]) -> Json {
    let (r, j) = call_json(lib, sig, args);
    r.expect_code(0);
    assert_eq!(j["ok"], json!(true), "{r:#?}");
    assert!(j.get("ret").is_some(), "no \"ret\": {j}");
    let out = j["out"]
        .as_array()
        .unwrap_or_else(|| panic!("\"out\" is not an array: {j}"));
    assert_eq!(out.len(), nparams, "one \"out\" entry per parameter: {j}");
    j
}

/// A failed `--json` call with exit status `code`; returns the error object,
/// after checking its common shape.
fn call_err(lib: &Path, sig: &str, options: &[&str], args: &[&str], code: i32) -> Json {
    let (r, j) = call_json_with(lib, sig, options, args);
    r.expect_code(code);
    assert_eq!(j["ok"], json!(false), "{r:#?}");
    let e = j["error"].clone();
    assert!(e["kind"].is_string(), "error without a kind: {j}");
    assert!(e["message"].is_string(), "error without a message: {j}");
    e
}

/// `ffb call --bridge-mode OPTIONS... --lib FIXTURE --sig SIG ARGS...` with a
/// sentinel shim, expecting bad usage: exit 2, nothing spawned (see
/// [`refused`]).
fn usage_run(options: &[&str], sig: &str, args: &[&str]) -> Run {
    let case = format!("{} {args:?}", [options, &[sig]].concat().join(" "));
    refused(
        &case,
        &call_args(path_str(fixture_lib()), options, sig, args),
        None,
    )
}

/// [`usage_run`] without `--json`: nothing on stdout, one line on stderr.
/// Returns the stderr line.
fn usage_error(sig: &str, args: &[&str]) -> String {
    usage_run(&[], sig, args).expect_usage_error().to_string()
}

/// [`usage_run`] with `--json`: the single stdout object's error kind.
fn usage_error_kind(sig: &str, args: &[&str]) -> String {
    let r = usage_run(&["--json"], sig, args);
    let j = r.json();
    assert_eq!(j["ok"], json!(false), "{r:#?}");
    j["error"]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no error kind: {j}"))
        .to_string()
}

// ---------------------------------------------------------------------------
// bridge mode
// ---------------------------------------------------------------------------

const NOP: &str = "ffb_nop() -> void";
const ID_I32: &str = "ffb_id_i32(i32) -> i32";

/// `ffb call --json --lib FIXTURE --sig ID_I32 5`, without `--bridge-mode`.
fn id_call_json() -> [&'static str; 7] {
    [
        "call",
        "--json",
        "--lib",
        path_str(fixture_lib()),
        "--sig",
        ID_I32,
        "5",
    ]
}

#[test]
fn call_without_bridge_mode_is_one_line_exit_2_and_spawns_nothing() {
    let sentinel = Sentinel::new();
    let lib = path_str(fixture_lib());
    for env in [&[][..], &[("FFB_BRIDGE_MODE", "0")][..]] {
        let r = sentinel.run(&["call", "--lib", lib, "--sig", ID_I32, "5"], env, None);
        let line = r.expect_usage_error();
        assert!(line.contains("--bridge-mode"), "must name the flag: {line}");
    }
    sentinel.assert_not_spawned("call without bridge mode");
}

#[test]
fn call_without_bridge_mode_json_is_one_bridge_disabled_object() {
    let r = refused("call --json without bridge mode", &id_call_json(), None);
    let j = r.json();
    assert_eq!(j["ok"], json!(false), "{j}");
    assert_eq!(j["error"]["kind"], json!("bridge_disabled"), "{j}");
    assert!(
        j["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--bridge-mode")),
        "{j}"
    );
}

#[test]
fn session_without_bridge_mode_refuses_and_spawns_nothing() {
    let request = format!("{{\"id\":1,\"sig\":\"{NOP}\"}}\n");
    let r = refused(
        "session without bridge mode",
        &["session", "--lib", path_str(fixture_lib())],
        Some(request.as_bytes()),
    );
    let j = r.json();
    assert_eq!(j["error"]["kind"], json!("bridge_disabled"), "{j}");
}

#[test]
fn env_var_enables_bridge_mode_instead_of_the_flag() {
    let mut cmd = ffb();
    cmd.env("FFB_BRIDGE_MODE", "1").args(id_call_json());
    let r = run(cmd, None);
    r.expect_code(0);
    assert_eq!(r.json()["ret"], json!(5), "{r:#?}");

    let mut cmd = ffb();
    cmd.env("FFB_BRIDGE_MODE", "1")
        .args(["session", "--lib", path_str(fixture_lib())]);
    let r = run(
        cmd,
        Some(b"{\"id\":1,\"sig\":\"ffb_id_i32(i32) -> i32\",\"args\":[6]}\n"),
    );
    r.expect_code(0);
    let j = r.json();
    assert_eq!(j["id"], json!(1), "{j}");
    assert_eq!(j["ret"], json!(6), "{j}");
}

// ---------------------------------------------------------------------------
// bad usage
// ---------------------------------------------------------------------------

#[test]
fn unknown_flags_and_commands_are_one_line_exit_2_without_panic_text() {
    let lib = path_str(fixture_lib());
    // `ffb call --bridge-mode --lib FIXTURE --sig NOP EXTRA...`
    let nop = |extra: &[&'static str]| {
        [
            &["call", "--bridge-mode", "--lib", lib, "--sig", NOP][..],
            extra,
        ]
        .concat()
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "call",
                "--bridge-mode",
                "--bogus",
                "--lib",
                lib,
                "--sig",
                NOP,
            ],
            "--bogus",
        ),
        (
            vec![
                "call",
                "--bridge-mode",
                "--json",
                "--lib",
                lib,
                "--sig",
                NOP,
                "--frob",
            ],
            "--frob",
        ),
        (
            vec!["session", "--bridge-mode", "--lib", lib, "--bogus"],
            "--bogus",
        ),
        (vec!["--bogus"], "--bogus"),
        (vec!["frobnicate"], "frobnicate"),
        (nop(&["--repeat", "0"]), "--repeat"),
        (nop(&["--repeat", "many"]), "--repeat"),
        (nop(&["--timeout-ms", "x"]), "--timeout-ms"),
        (
            vec!["call", "--bridge-mode", "--lib", lib, "--sig"],
            "--sig",
        ),
    ];
    for (args, named) in cases {
        let case = format!("{args:?}");
        let r = refused(&case, &args, None);
        let line = r.expect_usage_error_for(&case);
        assert!(
            line.contains(named),
            "{case}: the line should name {named}: {line}"
        );
    }
}

#[test]
fn missing_required_option_is_one_line_naming_it() {
    let lib = path_str(fixture_lib());
    let cases: &[(&[&str], &str)] = &[
        (&["call", "--bridge-mode", "--lib", lib], "--sig"),
        (&["call", "--bridge-mode", "--sig", NOP], "--lib"),
        (&["session", "--bridge-mode"], "--lib"),
    ];
    for (args, named) in cases {
        let r = ffb_run(args);
        let line = r.expect_usage_error_for(&format!("{args:?}"));
        assert!(
            line.contains(named),
            "{args:?}: the one line should say that {named} is missing: {line}"
        );
    }
}

#[test]
fn malformed_signatures_are_exit_2_naming_the_column() {
    // Columns are 1-based character positions in the --sig text.
    let cases = [
        ("f(int) -> i32", 3),        // unknown type
        ("f(i32", 6),                // unterminated: end of input
        ("f(cstr, ...) -> i32", 9),  // variadic
        ("ffb_nop() -> ", 14),       // missing return type
        ("ffb_id_i32(i32) i32", 17), // missing arrow
    ];
    for (sig, column) in cases {
        let line = usage_error(sig, &[]);
        assert!(
            line.contains(&format!("column {column}")),
            "{sig:?}: expected column {column} in: {line}"
        );
        assert_eq!(usage_error_kind(sig, &[]), "bad_signature", "{sig:?}");
    }
    let variadic = usage_error("f(cstr, ...) -> i32", &[]);
    assert!(variadic.contains("variadic"), "{variadic}");
}

#[test]
fn wrong_argument_counts_are_exit_2() {
    let cases: &[(&str, &[&str])] = &[
        (ID_I32, &[]),
        (ID_I32, &["1", "2"]),
        (NOP, &["1"]),
        ("ffb_add_i64(i64, i64) -> i64", &["1"]),
        // out[N] takes no argument: one ARG only, for the usize.
        ("ffb_fill_out(out[4], usize) -> i32", &["0", "4"]),
        ("ffb_fill_out(out[4], usize) -> i32", &[]),
    ];
    for (sig, args) in cases {
        usage_error(sig, args);
        assert_eq!(
            usage_error_kind(sig, args),
            "bad_argument",
            "{sig} {args:?}"
        );
    }
}

#[test]
fn unparsable_arguments_are_exit_2() {
    let cases: &[(&str, &[&str])] = &[
        (ID_I32, &["12x"]),
        (ID_I32, &["0x"]),
        (ID_I32, &["1.5"]),
        (ID_I32, &["2147483648"]),
        ("ffb_id_u8(u8) -> u8", &["300"]),
        ("ffb_id_u8(u8) -> u8", &["--", "-1"]),
        ("ffb_id_i8(i8) -> i8", &["--", "-129"]),
        ("ffb_id_u64(u64) -> u64", &["0x1ffffffffffffffff"]),
        ("ffb_id_f64(f64) -> f64", &["two"]),
        ("ffb_sum_bytes(bytes, usize) -> u32", &["hex:0", "1"]),
        ("ffb_sum_bytes(bytes, usize) -> u32", &["hex:zz", "1"]),
        (
            "ffb_sum_bytes(bytes, usize) -> u32",
            &["@/nonexistent/ffb-cli-test/file", "1"],
        ),
        (
            "ffb_strlen(cstr) -> usize",
            &["@/nonexistent/ffb-cli-test/file"],
        ),
        ("ffb_counter_next(handle) -> i64", &["not-a-handle"]),
    ];
    for (sig, args) in cases {
        let line = usage_error(sig, args);
        assert!(line.contains("argument 1"), "{sig} {args:?}: {line}");
        assert_eq!(
            usage_error_kind(sig, args),
            "bad_argument",
            "{sig} {args:?}"
        );
    }
}

#[test]
fn cstr_with_a_nul_byte_is_bad_input_rejected_before_spawning() {
    let sig = "ffb_strlen(cstr) -> usize";
    let args = ["hex:610062"]; // "a\0b"
                               // With the real shim: a bad_argument, exit 2.
    let e = call_err(fixture_lib(), sig, &[], &args, 2);
    assert_eq!(e["kind"], json!("bad_argument"), "{e}");
    // Like every other argument check, it must happen before anything is
    // spawned.
    let line = usage_error(sig, &args);
    assert!(line.contains("NUL"), "{line}");
}

// ---------------------------------------------------------------------------
// argument formats
// ---------------------------------------------------------------------------

#[test]
fn integer_arguments_decimal_negative_and_hex() {
    let lib = fixture_lib();
    let cases: &[(&str, &[&str], Json)] = &[
        (ID_I32, &["5"], json!(5)),
        (ID_I32, &["--", "-5"], json!(-5)),
        (ID_I32, &["0x7fffffff"], json!(i32::MAX)),
        (ID_I32, &["0X10"], json!(16)),
        (ID_I32, &["--", "-2147483648"], json!(i32::MIN)),
        ("ffb_id_i64(i64) -> i64", &["--", "-0x10"], json!(-16)),
        (
            "ffb_id_i64(i64) -> i64",
            &["--", "-9223372036854775808"],
            json!(i64::MIN),
        ),
        ("ffb_id_i8(i8) -> i8", &["--", "-128"], json!(-128)),
        ("ffb_id_u8(u8) -> u8", &["0xff"], json!(255)),
        ("ffb_id_u16(u16) -> u16", &["65535"], json!(65535)),
        (
            "ffb_id_u64(u64) -> u64",
            &["0xffffffffffffffff"],
            json!(u64::MAX),
        ),
        (
            "ffb_id_usize(usize) -> usize",
            &["18446744073709551615"],
            json!(u64::MAX),
        ),
        ("ffb_id_isize(isize) -> isize", &["--", "-7"], json!(-7)),
        (
            "ffb_add_i64(i64, i64) -> i64",
            &["--", "-40", "0x2a"],
            json!(2),
        ),
    ];
    for (sig, args, want) in cases {
        let nparams = args.iter().filter(|a| **a != "--").count();
        let j = call_ok(lib, sig, nparams, args);
        assert_eq!(&j["ret"], want, "{sig} {args:?}: {j}");
        assert!(
            j["out"].as_array().unwrap().iter().all(Json::is_null),
            "scalars have null out entries: {j}"
        );
    }
}

#[test]
fn float_arguments() {
    let lib = fixture_lib();
    let f = |sig: &str, args: &[&str]| -> f64 {
        let nparams = args.iter().filter(|a| **a != "--").count();
        let j = call_ok(lib, sig, nparams, args);
        j["ret"]
            .as_f64()
            .unwrap_or_else(|| panic!("{sig} {args:?}: ret is not a number: {j}"))
    };
    assert_eq!(f("ffb_id_f64(f64) -> f64", &["2.5"]), 2.5);
    assert_eq!(f("ffb_id_f64(f64) -> f64", &["--", "-0.125"]), -0.125);
    assert_eq!(f("ffb_id_f64(f64) -> f64", &["3"]), 3.0);
    assert_eq!(f("ffb_id_f32(f32) -> f32", &["--", "-1.5"]), -1.5);
    // a + 2b + 3c + 4d with ints and floats interleaved.
    assert_eq!(
        f(
            "ffb_mix4(i32, f64, i64, f32) -> f64",
            &["1", "0.5", "0x2", "0.25"]
        ),
        9.0
    );
}

#[test]
fn text_hex_and_file_arguments_for_cstr_and_bytes() {
    let lib = fixture_lib();
    let scratch = Scratch::new("args");
    let text_file = scratch.file("text.txt", b"read from a file");
    let bin_file = scratch.file("bin.dat", [0x00, 0x01, 0xff, 0x0a]);
    let at_text = format!("@{}", text_file.display());
    let at_bin = format!("@{}", bin_file.display());

    // cstr: plain text, hex:, @PATH; and text starting with '-' after --.
    let echo = "ffb_echo(cstr) -> cstr";
    assert_eq!(
        call_ok(lib, echo, 1, &["hi there"])["ret"],
        json!("hi there")
    );
    assert_eq!(call_ok(lib, echo, 1, &["hex:6869"])["ret"], json!("hi"));
    assert_eq!(
        call_ok(lib, echo, 1, &[&at_text])["ret"],
        json!("read from a file")
    );
    assert_eq!(
        call_ok(lib, echo, 1, &["--", "-dash"])["ret"],
        json!("-dash")
    );
    let strlen = "ffb_strlen(cstr) -> usize";
    assert_eq!(call_ok(lib, strlen, 1, &["hello"])["ret"], json!(5));
    assert_eq!(call_ok(lib, strlen, 1, &[""])["ret"], json!(0));
    assert_eq!(call_ok(lib, strlen, 1, &[&at_text])["ret"], json!(16));

    // bytes: the buffer comes back in "out" as hex.
    let sum = "ffb_sum_bytes(bytes, usize) -> u32";
    let j = call_ok(lib, sum, 2, &["hex:010203", "3"]);
    assert_eq!(j["ret"], json!(6), "{j}");
    assert_eq!(j["out"], json!([{"hex": "010203"}, null]), "{j}");
    let j = call_ok(lib, sum, 2, &["abc", "3"]);
    assert_eq!(j["ret"], json!(97 + 98 + 99), "{j}");
    assert_eq!(j["out"], json!([{"hex": "616263"}, null]), "{j}");
    let j = call_ok(lib, sum, 2, &[&at_bin, "4"]);
    assert_eq!(j["ret"], json!(1 + 255 + 10), "{j}");
    assert_eq!(j["out"], json!([{"hex": "0001ff0a"}, null]), "{j}");

    // bytes are copied back after the call.
    let j = call_ok(
        lib,
        "ffb_reverse_bytes(bytes, usize) -> void",
        2,
        &["hex:010203", "3"],
    );
    assert_eq!(j["ret"], Json::Null, "{j}");
    assert_eq!(j["out"], json!([{"hex": "030201"}, null]), "{j}");
}

// ---------------------------------------------------------------------------
// outputs
// ---------------------------------------------------------------------------

#[test]
fn out_buffers_and_pointer_values_in_json() {
    let lib = fixture_lib();
    let j = call_ok(lib, "ffb_fill_out(out[4], usize) -> i32", 2, &["4"]);
    assert_eq!(j["ret"], json!(4), "{j}");
    assert_eq!(j["out"], json!([{"hex": "030a1118"}, null]), "{j}");
    let j = call_ok(lib, "ffb_fill_out(out[8], usize) -> i32", 2, &["8"]);
    assert_eq!(j["out"][0], json!({"hex": "030a11181f262d34"}), "{j}");

    let divmod = "ffb_divmod(i64, i64, *i64, *i64) -> i32";
    let j = call_ok(lib, divmod, 4, &["17", "5", "0", "0"]);
    assert_eq!(j["ret"], json!(0), "{j}");
    assert_eq!(j["out"], json!([null, null, 3, 2]), "{j}");
    let j = call_ok(lib, divmod, 4, &["--", "-17", "5", "-1", "-1"]);
    assert_eq!(j["out"], json!([null, null, -3, -2]), "{j}");
    let j = call_ok(lib, divmod, 4, &["1", "0", "0", "0"]);
    assert_eq!(j["ret"], json!(-1), "{j}");

    let j = call_ok(lib, "ffb_ptr_f64(*f64) -> void", 1, &["4"]);
    assert_eq!(j["ret"], Json::Null, "{j}");
    assert_eq!(j["out"][0].as_f64(), Some(10.0), "{j}");
    let j = call_ok(lib, "ffb_ptr_i32(*i32) -> void", 1, &["--", "-7"]);
    assert_eq!(j["out"], json!([-21]), "{j}");
    let j = call_ok(lib, "ffb_ptr_u64(*u64) -> void", 1, &["0x10"]);
    assert_eq!(j["out"], json!([33]), "{j}");
}

#[test]
fn return_kinds_in_json() {
    let lib = fixture_lib();
    // cstr: a JSON string; NULL: null.
    let j = call_ok(lib, "ffb_greet() -> cstr", 0, &[]);
    assert_eq!(j["ret"], json!("hello from ffb fixture"), "{j}");
    let j = call_ok(lib, "ffb_null_cstr() -> cstr", 0, &[]);
    assert_eq!(j["ret"], Json::Null, "{j}");
    // handle: a token string.
    let j = call_ok(lib, "ffb_counter_new(i64) -> handle", 1, &["10"]);
    let token = j["ret"]
        .as_str()
        .unwrap_or_else(|| panic!("a handle is a token string: {j}"));
    assert!(is_handle_token(token), "not a handle token: {token}");
    let j = call_ok(lib, "ffb_null_handle() -> handle", 0, &[]);
    assert_eq!(j["ret"], Json::Null, "{j}");
    // void: null.
    let j = call_ok(lib, NOP, 0, &[]);
    assert_eq!(j["ret"], Json::Null, "{j}");
    assert_eq!(j["out"], json!([]), "{j}");
}

/// `handle:<generation>:<index>`.
fn is_handle_token(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 3
        && parts[0] == "handle"
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn default_output_is_one_short_line() {
    let lib = path_str(fixture_lib());
    let plain = |sig: &str, args: &[&str]| -> String {
        let r = ffb_run(&call_args(lib, &[], sig, args));
        r.expect_code(0);
        assert_eq!(r.stderr, "", "{r:#?}");
        let line = r.one_stdout_line().to_string();
        assert!(line.len() < 200, "not short: {line}");
        assert!(
            !line.trim_start().starts_with('{'),
            "not JSON by default: {line}"
        );
        line
    };
    assert!(plain(ID_I32, &["--", "-5"]).contains("-5"));
    assert!(plain("ffb_greet() -> cstr", &[]).contains("hello from ffb fixture"));
    assert!(plain("ffb_counter_new(i64) -> handle", &["1"]).contains("handle:"));
    assert!(plain("ffb_fill_out(out[4], usize) -> i32", &["4"]).contains("030a1118"));
    let line = plain(
        "ffb_divmod(i64, i64, *i64, *i64) -> i32",
        &["17", "5", "0", "0"],
    );
    assert!(line.contains('3') && line.contains('2'), "{line}");
}

#[test]
fn repeat_reports_consistent_timing() {
    let (r, j) = call_json_with(
        fixture_lib(),
        "ffb_calls() -> i64",
        &["--repeat", "1000"],
        &[],
    );
    r.expect_code(0);
    assert_eq!(j["ok"], json!(true), "{j}");
    // One helper served every call: its call counter reached 1000.
    assert_eq!(j["ret"], json!(1000), "{j}");
    let t = &j["timing"];
    let field = |name: &str| -> u64 {
        t[name]
            .as_u64()
            .unwrap_or_else(|| panic!("timing.{name} is not a non-negative integer: {j}"))
    };
    assert_eq!(field("calls"), 1000, "{j}");
    let (min, median, p99) = (field("min_ns"), field("median_ns"), field("p99_ns"));
    let _ = field("spawn_ns");
    assert!(min <= median && median <= p99, "min <= median <= p99: {j}");
    assert_eq!(
        t.as_object().map(|o| o.len()),
        Some(5),
        "timing has calls, min_ns, median_ns, p99_ns, spawn_ns: {j}"
    );
}

// ---------------------------------------------------------------------------
// error kinds
// ---------------------------------------------------------------------------

#[test]
fn crash_is_exit_1_with_the_signal() {
    let e = call_err(hostile_lib(), "ffb_segv() -> void", &[], &[], 1);
    assert_eq!(e["kind"], json!("crashed"), "{e}");
    assert_eq!(e["signal"], json!("SIGSEGV"), "{e}");

    // Without --json: nothing on stdout, one line on stderr.
    let r = ffb_run(&[
        "call",
        "--bridge-mode",
        "--lib",
        path_str(hostile_lib()),
        "--sig",
        "ffb_segv() -> void",
    ]);
    r.expect_code(1);
    assert_eq!(r.stdout, "", "{r:#?}");
    let line = r.one_stderr_line();
    assert!(
        line.contains("crashed") && line.contains("SIGSEGV"),
        "{line}"
    );
}

#[test]
fn exit_is_exit_1_with_the_code() {
    let e = call_err(hostile_lib(), "ffb_exit(i32) -> void", &[], &["7"], 1);
    assert_eq!(e["kind"], json!("exited"), "{e}");
    assert_eq!(e["code"], json!(7), "{e}");
}

#[test]
fn forbidden_syscall_is_exit_1_with_its_name_and_number() {
    let e = call_err(hostile_lib(), "ffb_execve() -> i32", &[], &[], 1);
    assert_eq!(e["kind"], json!("policy_violation"), "{e}");
    assert_eq!(e["syscall"], json!("execve"), "{e}");
    assert_eq!(e["nr"], json!(libc::SYS_execve), "{e}");
    #[cfg(target_arch = "x86_64")]
    assert_eq!(e["nr"], json!(59), "{e}");
}

#[test]
fn hang_is_exit_1_timeout() {
    let e = call_err(
        hostile_lib(),
        "ffb_spin_forever() -> void",
        &["--timeout-ms", "500"],
        &[],
        1,
    );
    assert_eq!(e["kind"], json!("timeout"), "{e}");
}

#[test]
fn load_failures_are_exit_1() {
    let e = call_err(
        Path::new("/nonexistent/ffb-cli-test/libnothing.so"),
        NOP,
        &[],
        &[],
        1,
    );
    assert_eq!(e["kind"], json!("load_failed"), "{e}");
    let e = call_err(fixture_lib(), "ffb_no_such_function() -> void", &[], &[], 1);
    assert_eq!(e["kind"], json!("symbol_not_found"), "{e}");
}

#[test]
fn helper_stdio_is_not_ffb_output() {
    const FORGED: [&str; 2] = ["FFB-FAKE-STDERR", "999"];
    let no_forgery = |r: &Run| {
        for s in FORGED {
            assert!(
                !r.stdout.contains(s) && !r.stderr.contains(s),
                "the helper's forged output leaked into ffb's: {r:#?}"
            );
        }
    };
    let lib = hostile_lib();
    let sig = "ffb_print_fake() -> i32";
    let (r, j) = call_json(lib, sig, &[]);
    r.expect_code(0);
    assert_eq!(j["ok"], json!(true), "{r:#?}");
    assert_eq!(j["ret"], json!(7), "{r:#?}");
    no_forgery(&r);

    let r = ffb_run(&[
        "call",
        "--bridge-mode",
        "--lib",
        path_str(lib),
        "--sig",
        sig,
    ]);
    r.expect_code(0);
    assert!(r.one_stdout_line().contains('7'), "{r:#?}");
    no_forgery(&r);

    // --extension-output is where it goes instead.
    let scratch = Scratch::new("extout");
    let file = scratch.path("extension.log");
    let (r, j) = call_json_with(lib, sig, &["--extension-output", path_str(&file)], &[]);
    r.expect_code(0);
    assert_eq!(j["ret"], json!(7), "{r:#?}");
    assert!(!r.stdout.contains("FFB-FAKE") && !r.stderr.contains("FFB-FAKE"));
    let captured = fs::read_to_string(&file).expect("the extension output file");
    assert!(
        captured.contains("FFB-FAKE-STDERR") && captured.contains("\"ret\":999"),
        "{captured:?}"
    );
}

#[test]
fn libz_crc32_through_the_cli() {
    let j = call_ok(
        Path::new("libz.so.1"),
        "crc32(u64, bytes, u32) -> u64",
        3,
        &["0", "hello", "5"],
    );
    assert_eq!(j["ret"], json!(0x3610_a686u64), "{j}");
    assert_eq!(j["out"][1], json!({"hex": "68656c6c6f"}), "{j}");
}

// ---------------------------------------------------------------------------
// sessions
// ---------------------------------------------------------------------------

/// A running `ffb session`, fed and read one line at a time.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Session {
    fn start(lib: &Path, options: &[&str]) -> Session {
        let mut cmd = ffb();
        cmd.args(["session", "--bridge-mode", "--lib", path_str(lib)])
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting ffb session");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            stdin: child.stdin.take(),
            stderr: Some(read_all(child.stderr.take().expect("piped stderr"))),
            lines,
            child,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends one raw line and returns the one JSON object it answers with.
    fn send(&mut self, line: &str) -> Json {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("writing to the session");
        stdin.flush().expect("flushing the session's stdin");
        let reply = self
            .lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("no reply to {line:?}: {e}"));
        let j = single_json_object(&reply)
            .unwrap_or_else(|e| panic!("reply to {line:?} is not one JSON object: {e}: {reply}"));
        assert!(j.get("id").is_some(), "reply without \"id\": {reply}");
        assert!(j["ok"].is_boolean(), "reply without \"ok\": {reply}");
        j
    }

    /// Sends a request and returns its reply, checking that the id is echoed.
    fn request(&mut self, id: Json, sig: &str, args: Json) -> Json {
        let j = self.send(&json!({"id": id, "sig": sig, "args": args}).to_string());
        assert_eq!(j["id"], id, "the reply must carry the request's id: {j}");
        j
    }

    /// A request that must succeed; returns "ret".
    fn ok(&mut self, id: Json, sig: &str, args: Json) -> Json {
        let j = self.request(id, sig, args);
        assert_eq!(j["ok"], json!(true), "{sig}: {j}");
        j["ret"].clone()
    }

    /// A request that must fail; returns the error object.
    fn err(&mut self, id: Json, sig: &str, args: Json) -> Json {
        let j = self.request(id, sig, args);
        assert_eq!(j["ok"], json!(false), "{sig}: {j}");
        j["error"].clone()
    }

    /// Closes stdin and waits: (exit status, anything else on stdout, stderr).
    fn finish(mut self) -> (i32, Vec<String>, String) {
        drop(self.stdin.take());
        let status = wait_with_deadline(&mut self.child, "ffb session after EOF");
        let rest: Vec<String> = self.lines.try_iter().collect();
        let stderr = self.stderr.take().expect("once").join().expect("stderr");
        let code = status
            .code()
            .unwrap_or_else(|| panic!("the session was killed by a signal: {status:?}"));
        (code, rest, stderr)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Only on an early test failure: never leave a session behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const NEW: &str = "ffb_counter_new(i64) -> handle";
const NEXT: &str = "ffb_counter_next(handle) -> i64";
const GETPID: &str = "ffb_getpid() -> u64";

#[test]
fn session_keeps_state_and_handles_across_lines() {
    let mut s = Session::start(fixture_lib(), &[]);
    let token = s.ok(json!(1), NEW, json!([40]));
    assert!(token.as_str().is_some_and(is_handle_token), "{token}");
    assert_eq!(s.ok(json!(2), NEXT, json!([token])), json!(40));
    assert_eq!(s.ok(json!("three"), NEXT, json!([token])), json!(41));
    // Helper state persists too.
    assert_eq!(
        s.ok(json!({"n": 4}), "ffb_calls() -> i64", json!([])),
        json!(1)
    );
    assert_eq!(s.ok(json!([5]), "ffb_calls() -> i64", json!([])), json!(2));
    // JSON argument forms and the call --json output shape.
    let j = s.request(
        json!(6),
        "ffb_sum_bytes(bytes, usize) -> u32",
        json!([{"hex": "010203"}, 3]),
    );
    assert_eq!(j["ret"], json!(6), "{j}");
    assert_eq!(j["out"], json!([{"hex": "010203"}, null]), "{j}");
    let j = s.request(
        json!(7),
        "ffb_divmod(i64, i64, *i64, *i64) -> i32",
        json!([-17, 5, 0, 0]),
    );
    assert_eq!(j["out"], json!([null, null, -3, -2]), "{j}");
    assert_eq!(
        s.ok(json!(8), "ffb_echo(cstr) -> cstr", json!(["hi"])),
        json!("hi")
    );
    assert_eq!(s.ok(json!(9), NOP, json!([])), Json::Null);
    // "args" may be left out when there are none.
    let j = s.send(&json!({"id": 10, "sig": "ffb_greet() -> cstr"}).to_string());
    assert_eq!(j["ret"], json!("hello from ffb fixture"), "{j}");
    let (code, rest, stderr) = s.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "output after EOF: {rest:?}");
}

#[test]
fn session_survives_malformed_lines() {
    let mut s = Session::start(fixture_lib(), &[]);
    let token = s.ok(json!(1), NEW, json!([100]));
    assert_eq!(s.ok(json!(2), NEXT, json!([token])), json!(100));

    let bad_kinds = [json!("bad_signature"), json!("bad_argument")];
    let check = |j: &Json, id: Json, what: &str| {
        assert_eq!(j["id"], id, "{what}: {j}");
        assert_eq!(j["ok"], json!(false), "{what}: {j}");
        assert!(bad_kinds.contains(&j["error"]["kind"]), "{what}: {j}");
        assert!(j["error"]["message"].is_string(), "{what}: {j}");
    };
    // Not JSON at all: no id to echo.
    check(&s.send("this is not json {"), Json::Null, "garbage");
    check(&s.send("[1, 2, 3]"), Json::Null, "an array");
    // A request without "sig".
    let j = s.send(r#"{"id": 5, "args": []}"#);
    check(&j, json!(5), "missing sig");
    assert_eq!(j["error"]["kind"], json!("bad_signature"), "{j}");
    // A malformed signature, a bad argument, a wrong argument count.
    let j = s.send(r#"{"id": "s", "sig": "f(int) -> i32", "args": [1]}"#);
    check(&j, json!("s"), "bad sig");
    assert_eq!(j["error"]["kind"], json!("bad_signature"), "{j}");
    let j = s.send(r#"{"id": 7, "sig": "ffb_id_u8(u8) -> u8", "args": [300]}"#);
    check(&j, json!(7), "out of range");
    assert_eq!(j["error"]["kind"], json!("bad_argument"), "{j}");
    let j = s.send(r#"{"id": 8, "sig": "ffb_id_u8(u8) -> u8", "args": []}"#);
    check(&j, json!(8), "arity");
    assert_eq!(j["error"]["kind"], json!("bad_argument"), "{j}");
    let j = s.send(r#"{"id": 9, "sig": "ffb_counter_next(handle) -> i64", "args": ["x"]}"#);
    check(&j, json!(9), "not a handle");

    // The same helper goes on: the counter continues where it was.
    assert_eq!(s.ok(json!(10), NEXT, json!([token])), json!(101));
    let (code, rest, stderr) = s.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "output after EOF: {rest:?}");
}

#[test]
fn session_crash_on_hostile_lib_is_reported_then_a_fresh_helper_serves() {
    let sum = "ffb_thread_sum(i32) -> i64";
    let mut s = Session::start(hostile_lib(), &[]);
    assert_eq!(s.ok(json!(1), sum, json!([1])), json!(500_500));
    let e = s.err(json!(2), "ffb_segv() -> void", json!([]));
    assert_eq!(e["kind"], json!("crashed"), "{e}");
    assert_eq!(e["signal"], json!("SIGSEGV"), "{e}");
    assert_eq!(s.ok(json!(3), sum, json!([2])), json!(1_501_500));
    let e = s.err(json!(4), "ffb_exit(i32) -> void", json!([7]));
    assert_eq!(e["kind"], json!("exited"), "{e}");
    assert_eq!(e["code"], json!(7), "{e}");
    assert_eq!(s.ok(json!(5), sum, json!([1])), json!(500_500));
    let (code, _, stderr) = s.finish();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn session_handles_go_stale_when_the_helper_crashes() {
    let mut s = Session::start(fixture_lib(), &[]);
    let token = s.ok(json!(1), NEW, json!([7]));
    assert_eq!(s.ok(json!(2), NEXT, json!([token])), json!(7));
    let pid_before = s.ok(json!(3), GETPID, json!([]));
    // Crash the fixture's helper: sum_bytes declared with a raw address
    // reads from the unmapped page at 16.
    let e = s.err(
        json!(4),
        "ffb_sum_bytes(usize, usize) -> u32",
        json!([16, 1]),
    );
    assert_eq!(e["kind"], json!("crashed"), "{e}");
    assert_eq!(e["signal"], json!("SIGSEGV"), "{e}");
    // The old token belongs to the dead helper.
    let e = s.err(json!(5), NEXT, json!([token]));
    assert_eq!(e["kind"], json!("stale_handle"), "{e}");
    // A fresh helper serves the next lines, with fresh handles.
    let pid_after = s.ok(json!(6), GETPID, json!([]));
    assert_ne!(
        pid_before, pid_after,
        "the crashed helper cannot serve again"
    );
    let fresh = s.ok(json!(7), NEW, json!([50]));
    assert!(fresh.as_str().is_some_and(is_handle_token), "{fresh}");
    assert_ne!(
        fresh, token,
        "a fresh helper's token must differ from a stale one"
    );
    assert_eq!(s.ok(json!(8), NEXT, json!([fresh])), json!(50));
    let e = s.err(json!(9), NEXT, json!([token]));
    assert_eq!(e["kind"], json!("stale_handle"), "{e}");
    let (code, _, stderr) = s.finish();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn session_timeout_is_reported_and_the_session_goes_on() {
    let mut s = Session::start(fixture_lib(), &["--timeout-ms", "500"]);
    let token = s.ok(json!(1), NEW, json!([1]));
    let e = s.err(json!(2), "ffb_sleep_ms(i64) -> i64", json!([600_000]));
    assert_eq!(e["kind"], json!("timeout"), "{e}");
    let e = s.err(json!(3), NEXT, json!([token]));
    assert_eq!(e["kind"], json!("stale_handle"), "{e}");
    assert_eq!(
        s.ok(json!(4), "ffb_sleep_ms(i64) -> i64", json!([1])),
        json!(1)
    );
    let (code, _, stderr) = s.finish();
    assert_eq!(code, 0, "{stderr}");
}

/// Every live descendant of `root`: `pid -> (comm, starttime)`.
fn descendants(root: i32) -> HashMap<i32, (String, u64)> {
    let mut by_parent: HashMap<i32, Vec<(i32, ProcStat)>> = HashMap::new();
    for (pid, stat) in processes() {
        by_parent.entry(stat.ppid).or_default().push((pid, stat));
    }
    let mut found = HashMap::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for (pid, stat) in by_parent.get(&p).into_iter().flatten() {
            if found
                .insert(*pid, (stat.comm.clone(), stat.start_time))
                .is_none()
            {
                todo.push(*pid);
            }
        }
    }
    found
}

/// Whether the process `pid` that started at `start` still exists and is not
/// dead (see [`ProcStat::is_dead`]): its `(ppid, state, comm)` if so.
fn still_running(pid: i32, start: u64) -> Option<(i32, char, String)> {
    proc_stat(pid)
        .filter(|s| s.start_time == start && !s.is_dead())
        .map(|s| (s.ppid, s.state, s.comm))
}

/// EOF ends the session with status 0, and every process the session started
/// (its fork server and helpers, all named ffb-shim) is gone.
///
/// How leftovers are found, robustly:
/// * The set of processes to watch is taken from the session's own process
///   tree (its descendants in /proc), so processes of concurrently running
///   tests can neither hide nor fake a leak.
/// * It is taken while the session is idle, blocked reading stdin after
///   answering every request: ffb only spawns in response to a request, so
///   the set is complete. It must contain the helper's pid as reported by
///   the helper itself (ffb_getpid), which proves the snapshot is not vacuous.
/// * A process is identified by (pid, start time), so pid reuse after exit
///   cannot be mistaken for a survivor.
/// * After the session exits, each watched process must stop running within
///   a grace period (it may already be gone, or be a zombie reparented to
///   init that merely awaits reaping). The grace only absorbs the kernel
///   delivering a parent-death signal; a process that keeps running fails.
#[test]
fn session_eof_exits_0_and_leaves_no_helper_behind() {
    let mut s = Session::start(fixture_lib(), &[]);
    let token = s.ok(json!(1), NEW, json!([1]));
    assert_eq!(s.ok(json!(2), NEXT, json!([token])), json!(1));
    // As the helper counts it: in the fork server's pid namespace.
    let reported = s.ok(json!(3), GETPID, json!([])).as_i64().expect("a pid");
    let session_pid = s.pid();

    let watched = descendants(session_pid);
    let helper = watched
        .keys()
        .copied()
        .find(|&pid| namespaced_pid(pid) == Some(reported))
        .unwrap_or_else(|| {
            panic!("the helper {reported} is not among the session's descendants {watched:?}")
        });
    assert_eq!(watched[&helper].0, "ffb-shim", "{watched:?}");

    let (code, rest, stderr) = s.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(rest.is_empty(), "output after EOF: {rest:?}");
    assert_eq!(stderr, "", "a clean EOF says nothing on stderr");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let survivors: Vec<_> = watched
            .iter()
            .filter_map(|(pid, (_, start))| still_running(*pid, *start).map(|s| (*pid, s)))
            .collect();
        if survivors.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes of session {session_pid} still running after it exited: \
             {survivors:?} (pid, (ppid, state, comm))"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// help
// ---------------------------------------------------------------------------

fn help(args: &[&str]) -> String {
    let r = ffb_run(args);
    r.expect_code(0);
    assert_eq!(r.stderr, "", "{r:#?}");
    r.stdout
}

/// `ffb ARGS...` (a help request) must mention every one of `words`.
fn help_mentions(args: &[&str], words: &[&str]) {
    let text = help(args);
    for word in words {
        assert!(
            text.contains(word),
            "ffb {} lacks {word}:\n{text}",
            args.join(" ")
        );
    }
}

#[test]
fn help_mentions_every_flag() {
    help_mentions(
        &["--help"],
        &[
            "call",
            "session",
            "--help",
            "--version",
            "--bridge-mode",
            "FFB_BRIDGE_MODE",
        ],
    );
    // Both subcommands take these.
    let shared = [
        "--bridge-mode",
        "--lib",
        "--policy",
        "--timeout-ms",
        "--extension-output",
        "--help",
    ];
    help_mentions(
        &["call", "--help"],
        &[
            &shared[..],
            &[
                "--sig", "--json", "--repeat", "ARG", "hex:", "@PATH", "out[N]",
            ],
        ]
        .concat(),
    );
    help_mentions(
        &["session", "--help"],
        &[&shared[..], &["\"id\"", "\"sig\"", "\"args\""]].concat(),
    );
    // The short forms work too.
    help(&["-h"]);
    help(&["call", "-h"]);
    help(&["session", "-h"]);
}
