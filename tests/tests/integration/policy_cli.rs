//! Integration tests of ops-configured sandbox policies in the `ffb` command
//! line: `--policy FILE_OR_PRESET` and `--audit-log FILE` on `call` and
//! `session`, and `ffb policy check | explain | lint | learn`, run as real
//! processes against the hostile corpus.
//!
//! The processes are run by [`ffb_tests::cli`]: every run gets `FFB_SHIM`
//! (the freshly built helper), no inherited `FFB_BRIDGE_MODE`,
//! `RUST_BACKTRACE=1` (so a panic shows up as text that [`run`] rejects) and
//! a watchdog ([`ffb_tests::cli::DEADLINE`]). Where nothing may be spawned,
//! `FFB_SHIM` points at a [`Sentinel`](ffb_tests::cli::Sentinel) script that
//! records any start ([`refused`]).
//!
//! The Landlock tests (`landlock_*`, `learned_policy_keeps_*`) need Landlock
//! in the running kernel (ABI 5 for files, 4 for TCP ports; ffb refuses to
//! load a policy with paths or ports without it); on an older kernel they say
//! so on stderr and pass.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use ffb_policy::hash::policy_hash;
use ffb_policy::source::{load_policy, parse_toml_policy};
use ffb_policy::sandbox::{Action, SandboxPolicy};
use ffb_tests::cli::{self, ffb, ffb_run, one_line, path_str, refused, run, Run, Scratch};
use ffb_tests::{docker_default_profile, fixture_policy, hostile_lib};
use serde_json::{json, Value as Json};

// ---------------------------------------------------------------------------
// support
// ---------------------------------------------------------------------------

fn hostile() -> &'static str {
    path_str(hostile_lib())
}



/// `ffb call --bridge-mode [--json] --lib HOSTILE OPTIONS... --sig SIG ARGS...`.
fn call_args<'a>(json: bool, options: &[&'a str], sig: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let json: &[&str] = if json { &["--json"] } else { &[] };
    cli::call_args(hostile(), &[json, options].concat(), sig, args)
}

/// `ffb call --bridge-mode --json --lib HOSTILE --policy POLICY --sig SIG ARGS...`.
fn call(policy: &str, sig: &str, args: &[&str]) -> (Run, Json) {
    call_with(&["--policy", policy], sig, args)
}

/// `ffb call --bridge-mode --json --lib HOSTILE OPTIONS... --sig SIG ARGS...`:
/// the run and its single JSON object.
fn call_with(options: &[&str], sig: &str, args: &[&str]) -> (Run, Json) {
    let r = ffb_run(&call_args(true, options, sig, args));
    let j = r.json_for(&format!("{} {sig} {args:?}", options.join(" ")));
    (r, j)
}

/// A successful call's return value (as i64).
fn call_ret(policy: &str, sig: &str, args: &[&str]) -> i64 {
    let (r, j) = call(policy, sig, args);
    assert_eq!(j["ok"], json!(true), "--policy {policy} {sig}: {r:#?}");
    r.expect_code_for(0, sig);
    j["ret"]
        .as_i64()
        .unwrap_or_else(|| panic!("{sig}: ret is not an integer: {j}"))
}

/// A failed call's error object (exit 1).
fn call_error(policy: &str, sig: &str, args: &[&str]) -> Json {
    let (r, j) = call(policy, sig, args);
    assert_eq!(j["ok"], json!(false), "--policy {policy} {sig}: {r:#?}");
    r.expect_code_for(1, sig);
    j["error"].clone()
}

/// `ffb session --bridge-mode --lib HOSTILE OPTIONS...` fed `requests`: the
/// run and its responses (one per request).
fn session(options: &[&str], requests: &[Json]) -> (Run, Vec<Json>) {
    let mut all = vec!["session", "--bridge-mode", "--lib", hostile()];
    all.extend_from_slice(options);
    let mut cmd = ffb();
    cmd.args(&all);
    let r = run(cmd, Some(jsonl(requests).as_bytes()));
    r.expect_code_for(0, &format!("session {options:?}"));
    let responses = r.json_lines();
    assert_eq!(
        responses.len(),
        requests.len(),
        "one response per request\n{r:#?}"
    );
    (r, responses)
}

fn request(id: i64, sig: &str, args: Json) -> Json {
    json!({"id": id, "sig": sig, "args": args})
}

/// `requests` as JSON lines: a session's input, or a `--script` for learn.
fn jsonl(requests: &[Json]) -> String {
    requests.iter().map(|r| format!("{r}\n")).collect()
}

/// Writes `requests` to `calls.jsonl` in `dir`: a script for
/// `ffb policy learn`.
fn script(dir: &Scratch, requests: &[Json]) -> PathBuf {
    dir.file("calls.jsonl", jsonl(requests))
}

/// `ffb policy learn --bridge-mode --lib HOSTILE --script SCRIPT EXTRA...`.
fn learn_args<'a>(script: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "policy",
        "learn",
        "--bridge-mode",
        "--lib",
        hostile(),
        "--script",
        path_str(script),
    ];
    all.extend_from_slice(extra);
    all
}

/// A failed `ffb policy learn`: exit 1 and no policy on stdout. Returns the
/// last line on stderr, the one that says why (progress lines come first).
fn learn_failed<'r>(r: &'r Run, case: &str) -> &'r str {
    r.expect_code_for(1, case);
    assert_eq!(r.stdout, "", "{case}: no policy on failure\n{r:#?}");
    r.stderr.lines().last().unwrap_or_default()
}

/// `ffb policy ARGS...`, which must succeed (exit 0).
fn policy_ok(args: &[&str]) -> Run {
    let r = ffb_run(&[&["policy"], args].concat());
    r.expect_code_for(0, &format!("policy {}", args.join(" ")));
    r
}

/// The hash that `policy check` prints and the audit log carries for the
/// policy file at `path`.
fn hash_of(path: &Path) -> String {
    policy_hash(&load_policy(path_str(path)).unwrap())
}

/// The kernel's Landlock ABI version (0: no Landlock).
fn landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: a version query reads and writes no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0)
}

/// Whether Landlock ABI `abi` is available; says so on stderr when it is not.
fn have_landlock(abi: i64, test: &str) -> bool {
    let have = landlock_abi();
    if have < abi {
        eprintln!("{test}: skipped: the kernel's Landlock ABI is {have}, the test needs {abi}");
        return false;
    }
    true
}

const SOCKET: &str = "ffb_socket() -> i32";
const SYSCALL6: &str = "ffb_syscall6(i64, i64, i64, i64, i64, i64, i64) -> i64";
const READ_FILE: &str = "ffb_read_file(cstr, out[64], u64) -> i32";
const OPEN: &str = "ffb_open(cstr) -> i32";
const WRITE_FILE: &str = "ffb_write_file(cstr, bytes, u64) -> i32";
const TCP_CONNECT: &str = "ffb_tcp_connect(u16) -> i32";
const EACCES: i64 = -13;

/// `ffb_syscall6` arguments: the syscall number, then six arguments.
fn syscall_args(nr: i64, args: [i64; 6]) -> Vec<String> {
    std::iter::once(nr)
        .chain(args)
        .map(|a| a.to_string())
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A loopback TCP listener on an ephemeral port. Connections wait in its
/// backlog; nobody accepts them.
fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a loopback listener");
    let port = l.local_addr().expect("local_addr").port();
    (l, port)
}

// ---------------------------------------------------------------------------
// ffb policy check
// ---------------------------------------------------------------------------

#[test]
fn check_accepts_valid_policies() {
    for name in ["full.toml", "minimal.toml", "db-client.toml", "risky.toml"] {
        let path = fixture_policy(name);
        let r = policy_ok(&["check", path_str(&path)]);
        assert_eq!(r.stderr, "", "{name}: a valid TOML policy has no warnings");
        let line = one_line(&r.stdout).unwrap_or_else(|e| panic!("{name}: {e}\n{r:#?}"));
        assert!(
            line.starts_with(&format!("{}: ok", path.display())),
            "{name}: {line}"
        );
        // The summary names the hash the audit log will carry.
        let hash = hash_of(&path);
        assert!(line.contains(&hash), "{name}: no hash {hash}: {line}");
    }
    for preset in ["pure", "fs-read", "db-client", "python"] {
        policy_ok(&["check", preset]);
    }
}

/// An invalid policy text: (case, file name, contents, line, column, words
/// the message must hold).
type Invalid = (
    &'static str,
    &'static str,
    &'static str,
    usize,
    usize,
    &'static [&'static str],
);

const INVALID: &[Invalid] = &[
    (
        "broken TOML",
        "broken.toml",
        "extends = \"pure",
        1,
        16,
        &["invalid basic string"],
    ),
    (
        "unknown key",
        "unknown-key.toml",
        "extends = \"pure\"\nbogus = 1\n",
        2,
        1,
        &["unknown field `bogus`"],
    ),
    (
        "unknown key in a table",
        "unknown-limit.toml",
        "[limits]\nmemroy_mb = 1\n",
        2,
        1,
        &["unknown field `memroy_mb`"],
    ),
    (
        "unknown syscall",
        "unknown-syscall.toml",
        "[seccomp]\nallow = [\"read\", \"getpdi\"]\n",
        2,
        18,
        &["unknown syscall 'getpdi'", "did you mean 'getpid'?"],
    ),
    (
        "floor syscall",
        "floor.toml",
        "[seccomp]\nallow = [\"getpid\", \"execve\"]\n",
        2,
        20,
        &["'execve'", "floor", "never programs"],
    ),
    (
        "clone for processes",
        "clone.toml",
        "[seccomp]\nallow = [\"clone\"]\n",
        2,
        10,
        &["'clone'", "floor", "CLONE_THREAD"],
    ),
    (
        "empty file",
        "empty.toml",
        "",
        1,
        1,
        &["empty policy file"],
    ),
    (
        "blank file",
        "blank.toml",
        "  \n\n",
        1,
        1,
        &["empty policy file"],
    ),
    (
        "bad errno",
        "bad-errno.toml",
        "[seccomp]\ndefault_action = \"errno:EFOO\"\n",
        2,
        18,
        &["unknown errno 'EFOO'"],
    ),
    (
        "argument index 9",
        "index.toml",
        "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 9, op = \"eq\", value = 1 }]\n",
        3,
        19,
        &["argument index 9 is out of range (0 to 5)"],
    ),
    (
        "impossible conditions",
        "impossible.toml",
        "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [\n  { index = 0, op = \"eq\", value = 2 },\n  { index = 0, op = \"ne\", value = 2 },\n]\n",
        5,
        3,
        &["can never hold together", "arg0 == 2 and arg0 != 2"],
    ),
    (
        "impossible condition",
        "lt0.toml",
        "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 1, op = \"lt\", value = 0 }]\n",
        3,
        9,
        &["can never hold", "arg1 < 0"],
    ),
    (
        "allow by default",
        "allow-default.toml",
        "[seccomp]\ndefault_action = \"allow\"\n",
        2,
        18,
        &["must deny by default"],
    ),
    (
        "unknown preset",
        "preset.toml",
        "extends = \"db_client\"\n",
        1,
        11,
        &["unknown policy preset 'db_client'"],
    ),
    (
        "broken JSON",
        "broken.json",
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n",
        4,
        0,
        &["not valid JSON"],
    ),
    (
        "Docker profile with an unknown key",
        "docker-key.json",
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"sycsalls\": []\n}\n",
        3,
        3,
        &["'sycsalls' is not supported"],
    ),
    (
        "Docker profile with an unknown syscall action",
        "docker-action.json",
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_TRAP\"}]}\n",
        2,
        45,
        &["SCMP_ACT_TRAP", "not supported"],
    ),
];

/// Writes the invalid cases into `dir`: (case, path, expected prefix, words).
fn invalid_files(dir: &Scratch) -> Vec<(String, PathBuf, String, Vec<&'static str>)> {
    let mut out: Vec<_> = INVALID
        .iter()
        .map(|&(case, name, text, line, column, words)| {
            let path = dir.file(name, text);
            let prefix = format!("{}:{line}:{column}: ", path.display());
            (case.to_string(), path, prefix, words.to_vec())
        })
        .collect();
    let missing = dir.path("missing.toml");
    out.push((
        "missing file".into(),
        missing.clone(),
        format!("{}: ", missing.display()),
        vec!["cannot read the policy file", "No such file"],
    ));
    out
}

#[test]
fn check_rejects_invalid_policies_with_file_line_column() {
    let dir = Scratch::new("invalid");
    for (case, path, prefix, words) in invalid_files(&dir) {
        let r = ffb_run(&["policy", "check", path_str(&path)]);
        let line = r.expect_usage_error_for(&case);
        assert!(
            line.starts_with(&prefix),
            "{case}: expected the prefix {prefix:?}: {line}"
        );
        for w in words {
            assert!(line.contains(w), "{case}: expected {w:?} in: {line}");
        }
        // explain and lint refuse it the same way.
        for command in ["explain", "lint"] {
            let r = ffb_run(&["policy", command, path_str(&path)]);
            let case = format!("{command}: {case}");
            assert!(
                r.expect_usage_error_for(&case).starts_with(&prefix),
                "{case}\n{r:#?}"
            );
        }
    }
    // A name that is neither a file nor a preset says what the presets are.
    let r = ffb_run(&["policy", "check", "strict"]);
    let line = r.expect_usage_error_for("strict");
    assert!(
        line.starts_with("strict: ") && line.contains("pure, fs-read, db-client"),
        "{line}"
    );
}

#[test]
fn check_accepts_dockers_default_profile_with_one_warning_per_floor_syscall() {
    let profile = docker_default_profile();
    let r = policy_ok(&["check", path_str(&profile)]);
    assert!(
        one_line(&r.stdout).is_ok_and(|l| l.contains(": ok")),
        "{r:#?}"
    );
    let warnings: Vec<&str> = r.stderr.lines().collect();
    assert!(!warnings.is_empty(), "expected warnings\n{r:#?}");
    for w in &warnings {
        assert!(w.starts_with("ffb: warning: "), "not a warning line: {w}");
    }
    // Docker's default profile allows these floor syscalls; each gets exactly
    // one line that names it and says it stays denied.
    for syscall in [
        "execve",
        "execveat",
        "fork",
        "vfork",
        "clone",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "seccomp",
    ] {
        let named: Vec<&&str> = warnings
            .iter()
            .filter(|w| w.contains(&format!("syscall {syscall} is on ffb's floor")))
            .collect();
        assert_eq!(
            named.len(),
            1,
            "one warning line for {syscall}: {named:?}\n{r:#?}"
        );
        assert!(named[0].contains("denied anyway"), "{}", named[0]);
    }
    // Floor syscalls that Docker does not allow get no warning.
    for syscall in ["bpf", "mount", "kexec_load", "io_uring_setup"] {
        assert!(
            !warnings
                .iter()
                .any(|w| w.contains(&format!("syscall {syscall} is on"))),
            "{syscall}\n{r:#?}"
        );
    }
}

// ---------------------------------------------------------------------------
// ffb policy explain
// ---------------------------------------------------------------------------

#[test]
fn explain_prints_the_effective_policy_as_text() {
    let full = fixture_policy("full.toml");
    let r = policy_ok(&["explain", path_str(&full)]);
    let text = &r.stdout;
    let hash = hash_of(&full);
    for needle in [
        format!("policy {} (hash {hash})", full.display()),
        "default action: kill".into(),
        // The preset's rules, merged with the file's.
        "openat".into(),
        "getpid".into(),
        "socket".into(),
        "arg0 == 1".into(),
        "errno:EACCES".into(),
        // The floor, with its reasons.
        "floor (always denied".into(),
        "execve".into(),
        "the bridge runs library code, never programs".into(),
        "/etc/hostname".into(),
        "/var/lib/app".into(),
        "5432".into(),
        "memory_mb:       1024".into(),
        "namespaces: user, pid, ipc".into(),
        "run as: nobody".into(),
    ] {
        assert!(text.contains(&needle), "explain lacks {needle:?}:\n{text}");
    }
    // A preset name works too.
    let r = policy_ok(&["explain", "db-client"]);
    assert!(r.stdout.contains("policy db-client"), "{}", r.stdout);
    assert!(r.stdout.contains("connect"), "{}", r.stdout);
}

#[test]
fn explain_json_is_one_parsable_object_with_rules_and_floor() {
    let full = fixture_policy("full.toml");
    let r = policy_ok(&["explain", "--json", path_str(&full)]);
    let j = r.json_for("explain --json");
    assert_eq!(j["name"], json!(path_str(&full)), "{j}");
    assert_eq!(j["default_action"], json!("kill"), "{j}");
    assert_eq!(j["hash"], json!(hash_of(&full)));
    let rules = j["rules"].as_array().expect("rules");
    let socket = rules
        .iter()
        .find(|r| r["syscall"] == json!("socket"))
        .unwrap_or_else(|| panic!("no socket rule: {j}"));
    assert_eq!(socket["action"], json!("allow"));
    assert_eq!(
        socket["conditions"],
        json!([{"index": 0, "op": "eq", "value": 1}])
    );
    let fadvise = rules
        .iter()
        .find(|r| r["syscall"] == json!("fadvise64"))
        .expect("fadvise64 rule");
    assert_eq!(fadvise["action"], json!("errno:EACCES"));
    assert_eq!(fadvise["conditions"][0]["mask"], json!(7));
    // fs-read's rules are there too, before the file's.
    assert!(rules.iter().any(|r| r["syscall"] == json!("openat")), "{j}");
    let floor = j["floor"].as_array().expect("floor");
    let execve = floor
        .iter()
        .find(|f| f["syscall"] == json!("execve"))
        .expect("execve on the floor");
    assert!(execve["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let clone = floor
        .iter()
        .find(|f| f["syscall"] == json!("clone"))
        .expect("clone on the floor");
    assert_eq!(clone["only_when"]["mask"], json!(0x10000));
    assert_eq!(
        j["filesystem"]["read"],
        json!(["/etc/hostname", "/usr/share/zoneinfo"])
    );
    assert_eq!(j["network"]["connect_tcp"], json!([5432]));
    assert_eq!(j["limits"]["cpu_seconds"], json!(60));
    assert_eq!(j["namespaces"], json!(["user", "pid", "ipc"]));
    assert_eq!(j["run_as"]["name"], json!("nobody"));

    // An imported profile's warnings are part of the explanation.
    let docker = fixture_policy("docker-small.json");
    let r = policy_ok(&["explain", "--json", path_str(&docker)]);
    let j = r.json_for("explain docker");
    assert_eq!(j["default_action"], json!("errno:EPERM"));
    let warnings = j["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("execve"))),
        "{j}"
    );
}

// ---------------------------------------------------------------------------
// ffb policy lint
// ---------------------------------------------------------------------------

#[test]
fn lint_flags_risky_grants_each_with_its_reason() {
    let risky = fixture_policy("risky.toml");
    // Warnings do not fail.
    let r = policy_ok(&["lint", path_str(&risky)]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let expected: &[(&str, &[&str])] = &[
        (
            "open-without-paths",
            &[
                "openat allowed",
                "no [filesystem] paths",
                "Landlock refuses",
            ],
        ),
        (
            "socket-without-ports",
            &[
                "socket allowed",
                "no [network] TCP ports",
                "Landlock refuses",
            ],
        ),
        (
            "exec-mappings",
            &["mprotect allowed with PROT_EXEC", "run code it made"],
        ),
        ("memory-limit-high", &["8192 MiB", "above 4096 MiB"]),
        ("log-default", &["not for production", "still runs"]),
    ];
    assert_eq!(lines.len(), expected.len(), "{r:#?}");
    for (line, (rule, words)) in lines.iter().zip(expected) {
        let prefix = format!("{}: warning[{rule}]: ", risky.display());
        assert!(line.starts_with(&prefix), "expected {prefix:?}: {line}");
        for w in *words {
            assert!(line.contains(w), "{rule}: the reason lacks {w:?}: {line}");
        }
    }
    // clone without CLONE_THREAD cannot even be written in a policy file (so
    // lint's clone-not-thread-only finding only concerns policies built in
    // code): check names the floor instead.
    let dir = Scratch::new("lint");
    let clone = dir.file("clone.toml", "[seccomp]\nallow = [\"clone\"]\n");
    let r = ffb_run(&["policy", "lint", path_str(&clone)]);
    r.expect_code_for(2, "lint clone.toml");
    assert!(
        r.one_stderr_line_for("clone").contains("CLONE_THREAD"),
        "{r:#?}"
    );
    // A thread-only clone rule is fine.
    let threads = dir.file(
        "threads.toml",
        "[[seccomp.rule]]\nsyscall = \"clone\"\nargs = [{ index = 0, op = \"masked_eq\", mask = 0x10000, value = 0x10000 }]\n",
    );
    let r = policy_ok(&["lint", path_str(&threads)]);
    assert!(r.stdout.contains("no findings"), "{r:#?}");
}

#[test]
fn lint_of_careful_policies_and_presets() {
    for name in ["full.toml", "minimal.toml", "db-client.toml"] {
        let path = fixture_policy(name);
        let r = policy_ok(&["lint", path_str(&path)]);
        assert_eq!(
            r.stdout.trim(),
            format!("{}: no findings", path.display()),
            "{name}"
        );
    }
    // The db-client preset alone lists no paths and no ports.
    let r = policy_ok(&["lint", "db-client"]);
    assert!(
        r.stdout.contains("warning[open-without-paths]")
            && r.stdout.contains("warning[socket-without-ports]"),
        "{r:#?}"
    );
}

// ---------------------------------------------------------------------------
// --policy on call and session
// ---------------------------------------------------------------------------

#[test]
fn policy_errors_on_call_and_session_are_one_line_exit_2_and_spawn_nothing() {
    let dir = Scratch::new("bad-policy");
    for (case, path, prefix, words) in invalid_files(&dir) {
        let policy = path_str(&path);
        let names_the_place = |j: &Json| {
            assert!(
                j["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(&prefix)),
                "{case}: {j}"
            );
        };
        // call: the FILE:LINE:COL line on stderr.
        let options = ["--policy", policy];
        let r = refused(&case, &call_args(false, &options, SOCKET, &[]), None);
        let line = r.expect_usage_error_for(&case);
        assert!(line.starts_with(&prefix), "{case}: {line}");
        for w in &words {
            assert!(line.contains(w), "{case}: {w:?} in {line}");
        }
        // call --json: one error object with that line as its message.
        let r = refused(&case, &call_args(true, &options, SOCKET, &[]), None);
        let j = r.json_for(&case);
        assert_eq!(j["ok"], json!(false), "{j}");
        names_the_place(&j);
        // session: the same object, before reading any request.
        let r = refused(
            &case,
            &[
                "session",
                "--bridge-mode",
                "--lib",
                hostile(),
                "--policy",
                policy,
            ],
            Some(jsonl(&[request(1, SOCKET, json!([]))]).as_bytes()),
        );
        names_the_place(&r.json_for(&case));
    }
}

#[test]
fn policy_that_allows_socket_lets_it_through() {
    let dir = Scratch::new("socket");
    let allow = dir.file("socket.toml", "[seccomp]\nallow = [\"socket\"]\n");
    let fd = call_ret(path_str(&allow), SOCKET, &[]);
    assert!(fd >= 0, "socket() under a policy allowing it: {fd}");
    // The default policy still stops it.
    let e = call_error("pure", SOCKET, &[]);
    assert_eq!(e["kind"], json!("policy_violation"), "{e}");
    assert_eq!(e["syscall"], json!("socket"), "{e}");
}

#[test]
fn errno_default_action_fails_forbidden_syscalls_and_the_call_goes_on() {
    let dir = Scratch::new("errno");
    let eacces = dir.file(
        "eacces.toml",
        "[seccomp]\ndefault_action = \"errno:EACCES\"\n",
    );
    assert_eq!(call_ret(path_str(&eacces), SOCKET, &[]), EACCES);
    // The floor is still a violation, whatever the default.
    let e = call_error(path_str(&eacces), "ffb_execve() -> i32", &[]);
    assert_eq!(e["syscall"], json!("execve"), "{e}");
}

#[test]
fn errno_rule_on_one_syscall_leaves_the_default_for_others() {
    let dir = Scratch::new("errno-rule");
    let rule = dir.file(
        "rule.toml",
        "[[seccomp.rule]]\nsyscall = \"socket\"\naction = \"errno:EAFNOSUPPORT\"\n",
    );
    let policy = path_str(&rule);
    assert_eq!(call_ret(policy, SOCKET, &[]), -97);
    // mkdir has no rule: the default (kill) applies.
    let e = call_error(policy, SYSCALL6, &strs(&syscall_args(83, [0; 6])));
    assert_eq!(e["kind"], json!("policy_violation"), "{e}");
    assert_eq!(e["syscall"], json!("mkdir"), "{e}");
}

#[test]
fn imported_profiles_warn_on_stderr_and_go_on() {
    let docker = fixture_policy("docker-small.json");
    let (r, j) = call(path_str(&docker), SOCKET, &[]);
    r.expect_code_for(0, "docker-small");
    assert_eq!(j["ok"], json!(true), "{r:#?}");
    let warnings: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{r:#?}");
    assert!(warnings.iter().all(|w| w.starts_with("ffb: warning: ")));
    assert!(warnings[0].contains("execve"), "{r:#?}");
    assert!(warnings[1].contains("socketcall"), "{r:#?}");
}

#[test]
fn docker_profile_behaves_as_its_author_meant() {
    let profile = fixture_policy("docker-small.json");
    let policy = path_str(&profile);
    let (_, out) = session(
        &["--policy", policy],
        &[
            // socket(AF_UNIX, SOCK_STREAM, 0): allowed by its first socket rule.
            request(1, SYSCALL6, json!([41, 1, 1, 0, 0, 0, 0])),
            // socket(AF_INET, ...): the second socket rule, errnoRet 97.
            request(2, SOCKET, json!([])),
            // mkdir is SCMP_ACT_LOG: it runs (and fails on the NULL path).
            request(3, SYSCALL6, json!([83, 0, 0o755, 0, 0, 0, 0])),
            // getppid is not listed: defaultAction errno, defaultErrnoRet 1.
            request(4, SYSCALL6, json!([110, 0, 0, 0, 0, 0, 0])),
            // execve is allowed by the profile but on ffb's floor.
            request(5, "ffb_execve() -> i32", json!([])),
        ],
    );
    assert_eq!(out[0]["ok"], json!(true), "{}", out[0]);
    assert!(
        out[0]["ret"].as_i64().unwrap() >= 0,
        "AF_UNIX socket: {}",
        out[0]
    );
    assert_eq!(out[1]["ret"], json!(-97), "AF_INET socket: {}", out[1]);
    assert_eq!(out[2]["ret"], json!(-14), "logged mkdir runs: {}", out[2]);
    assert_eq!(out[3]["ret"], json!(-1), "unlisted getppid: {}", out[3]);
    assert_eq!(out[4]["ok"], json!(false), "{}", out[4]);
    assert_eq!(out[4]["error"]["syscall"], json!("execve"), "{}", out[4]);
}

#[test]
fn seccompiler_filter_behaves_as_its_author_meant() {
    let filter = fixture_policy("seccompiler.json");
    let (r, out) = session(
        &["--policy", path_str(&filter)],
        &[
            // socket(AF_UNIX, ...): the dword eq rule matches.
            request(1, SYSCALL6, json!([41, 1, 1, 0, 0, 0, 0])),
            // socket(AF_INET, ...): mismatch_action errno 1.
            request(2, SOCKET, json!([])),
            // lseek(fd, 0, SEEK_END = 2): allowed (le 2); on a bad fd, EBADF.
            request(3, SYSCALL6, json!([8, -1, 0, 2, 0, 0, 0])),
            // lseek whence 3 (SEEK_DATA): not allowed, EPERM.
            request(4, SYSCALL6, json!([8, -1, 0, 3, 0, 0, 0])),
        ],
    );
    assert!(
        r.stderr.lines().all(|l| l.starts_with("ffb: warning: ")),
        "{r:#?}"
    );
    assert!(out[0]["ret"].as_i64().unwrap() >= 0, "{}", out[0]);
    assert_eq!(out[1]["ret"], json!(-1), "{}", out[1]);
    assert_eq!(out[2]["ret"], json!(-9), "{}", out[2]);
    assert_eq!(out[3]["ret"], json!(-1), "{}", out[3]);
}

// ---------------------------------------------------------------------------
// Landlock (through --policy)
// ---------------------------------------------------------------------------

#[test]
fn landlock_reads_only_the_listed_file() {
    if !have_landlock(5, "landlock_reads_only_the_listed_file") {
        return;
    }
    let dir = Scratch::new("landlock-read");
    let allowed = dir.file("allowed.txt", "allowed contents");
    let sibling = dir.file("sibling.txt", "secret");
    let policy = dir.file(
        "read.toml",
        format!(
            "extends = \"fs-read\"\n\n[filesystem]\nread = [\"{}\"]\n",
            allowed.display()
        ),
    );
    let policy = path_str(&policy);
    let (r, j) = call(policy, READ_FILE, &[path_str(&allowed), "64"]);
    r.expect_code_for(0, "read the allowed file");
    assert_eq!(j["ret"], json!(16), "{j}");
    assert!(
        j["out"][1]["hex"]
            .as_str()
            .is_some_and(|h| h.starts_with(&hex::encode(b"allowed contents"))),
        "{j}"
    );
    assert_eq!(
        call_ret(policy, READ_FILE, &[path_str(&sibling), "64"]),
        EACCES,
        "the sibling of the allowed file must be refused by Landlock"
    );
    assert_eq!(
        call_ret(policy, OPEN, &["/etc/passwd"]),
        EACCES,
        "a system file outside the policy must be refused by Landlock"
    );
}

#[test]
fn landlock_writes_only_inside_the_listed_directory() {
    if !have_landlock(5, "landlock_writes_only_inside_the_listed_directory") {
        return;
    }
    let dir = Scratch::new("landlock-write");
    let out_dir = dir.path("out");
    fs::create_dir(&out_dir).unwrap();
    let policy = dir.file(
        "write.toml",
        format!(
            "extends = \"fs-read\"\n\n[seccomp]\nallow = [\"openat\"]\n\n[filesystem]\nwrite = [\"{}\"]\n",
            out_dir.display()
        ),
    );
    let policy = path_str(&policy);
    let inside = out_dir.join("inside.txt");
    assert_eq!(
        call_ret(policy, WRITE_FILE, &[path_str(&inside), "written", "7"]),
        0
    );
    assert_eq!(fs::read_to_string(&inside).unwrap(), "written");
    let outside = dir.path("outside.txt");
    assert_eq!(
        call_ret(policy, WRITE_FILE, &[path_str(&outside), "escaped", "7"]),
        EACCES,
        "a write beside the allowed directory must be refused by Landlock"
    );
    assert!(!outside.exists(), "the refused write created the file");
}

#[test]
fn landlock_connects_only_to_the_listed_tcp_port() {
    if !have_landlock(4, "landlock_connects_only_to_the_listed_tcp_port") {
        return;
    }
    let (_allowed, allowed_port) = listener();
    let (_other, other_port) = listener();
    let dir = Scratch::new("landlock-tcp");
    let policy = dir.file(
        "tcp.toml",
        format!("extends = \"db-client\"\n\n[network]\nconnect_tcp = [{allowed_port}]\n"),
    );
    let policy = path_str(&policy);
    assert_eq!(
        call_ret(policy, TCP_CONNECT, &[&allowed_port.to_string()]),
        0,
        "connect to the allowed port"
    );
    assert_eq!(
        call_ret(policy, TCP_CONNECT, &[&other_port.to_string()]),
        EACCES,
        "a connect to another port must be refused by Landlock"
    );
}

// ---------------------------------------------------------------------------
// ffb policy learn
// ---------------------------------------------------------------------------

/// A learn scenario: a data file, a listener, and a script using both.
struct LearnSetup {
    dir: Scratch,
    data: PathBuf,
    port: u16,
    _listener: TcpListener,
    script: PathBuf,
    requests: Vec<Json>,
}

const DATA: &str = "learned data";

impl LearnSetup {
    fn new(tag: &str) -> LearnSetup {
        let dir = Scratch::new(tag);
        let data = dir.file("data.txt", DATA);
        let (listener, port) = listener();
        let requests = vec![
            request(1, SOCKET, json!([])),
            request(2, READ_FILE, json!([path_str(&data), 64])),
            request(3, TCP_CONNECT, json!([port])),
        ];
        let script = script(&dir, &requests);
        LearnSetup {
            dir,
            data,
            port,
            _listener: listener,
            script,
            requests,
        }
    }

    /// `ffb policy learn` on the hostile library with this script.
    fn learn(&self, extends: Option<&str>) -> Run {
        let extra = extends.map_or(vec![], |preset| vec!["--extends", preset]);
        ffb_run(&learn_args(&self.script, &extra))
    }

    /// Learns, checks the progress lines, writes the policy to a file and
    /// returns its path and its parsed form.
    fn learned(&self, extends: Option<&str>) -> (PathBuf, SandboxPolicy) {
        let r = self.learn(extends);
        r.expect_code_for(0, "learn");
        let progress: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(progress.len(), self.requests.len(), "{r:#?}");
        for (i, line) in progress.iter().enumerate() {
            assert!(
                line.contains(&format!("{}:{}: ", self.script.display(), i + 1)),
                "progress line {}: {line}",
                i + 1
            );
        }
        let path = self.dir.file(
            &format!("learned-{}.toml", extends.unwrap_or("default")),
            &r.stdout,
        );
        let policy = parse_toml_policy(&r.stdout, path_str(&path))
            .unwrap_or_else(|e| panic!("the learned policy does not load: {e}\n{}", r.stdout));
        policy_ok(&["check", path_str(&path)]);
        (path, policy)
    }

    /// Asserts that the learned `policy` (whose file reads `text`) opens
    /// exactly the script's data file for reading and its listener's port
    /// for connecting: what the script reached, and nothing else.
    fn assert_reach(&self, policy: &SandboxPolicy, text: &str) {
        assert_eq!(
            policy.filesystem.read,
            std::slice::from_ref(&self.data),
            "{text}"
        );
        assert_eq!(policy.network.connect_tcp, [self.port], "{text}");
    }

    /// Replays the script under `policy`: every line ok, with the results the
    /// calls had while learning.
    fn replay(&self, policy: &Path) {
        let (r, out) = session(&["--policy", path_str(policy)], &self.requests);
        for (i, o) in out.iter().enumerate() {
            assert_eq!(
                o["ok"],
                json!(true),
                "line {} under the learned policy\n{r:#?}",
                i + 1
            );
        }
        assert!(out[0]["ret"].as_i64().unwrap() >= 0, "socket: {}", out[0]);
        assert_eq!(out[1]["ret"], json!(DATA.len()), "read_file: {}", out[1]);
        assert_eq!(out[2]["ret"], json!(0), "tcp_connect: {}", out[2]);
    }
}

/// The syscalls of the rules that a learned `policy` adds after those of
/// the preset `base` it extends, in order.
/// The rules the policy file itself adds to `base`: not those its
/// `[filesystem]` and `[network]` grants bring in (`origin`), which any file
/// with the same grants gets.
fn added_rules<'p>(policy: &'p SandboxPolicy, base: &SandboxPolicy) -> Vec<&'p str> {
    policy.rules[base.rules.len()..]
        .iter()
        .filter(|r| r.origin.is_none())
        .map(|r| r.syscall.as_str())
        .collect()
}

/// The rule names a policy allows unconditionally, of its own (not those
/// its grants bring in).
fn unconditional(policy: &SandboxPolicy) -> Vec<&str> {
    policy
        .rules
        .iter()
        .filter(|r| r.action == Action::Allow && r.conditions.is_empty() && r.origin.is_none())
        .map(|r| r.syscall.as_str())
        .collect()
}

#[test]
fn learn_round_trip_replays_and_still_denies_what_the_script_never_did() {
    let s = LearnSetup::new("learn");
    let (path, policy) = s.learned(None);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("extends = \"pure\""), "{text}");
    // Exactly what pure lacks for this script; its read-only openat comes
    // from the learned [filesystem] read path, not from an allow of its own.
    assert_eq!(
        added_rules(&policy, &SandboxPolicy::pure()),
        ["connect", "socket"],
        "{text}"
    );
    assert!(
        policy.rules.iter().any(|r| r.syscall == "openat"
            && r.origin == Some(ffb_policy::grants::GrantKind::Read)),
        "{text}"
    );
    s.assert_reach(&policy, &text);
    assert!(policy.filesystem.write.is_empty(), "{text}");
    assert!(policy.network.bind_tcp.is_empty(), "{text}");

    s.replay(&path);

    // A syscall the script never made is still a violation.
    let (_, out) = session(
        &["--policy", path_str(&path)],
        &[request(1, SYSCALL6, json!([83, 0, 0o755, 0, 0, 0, 0]))],
    );
    assert_eq!(out[0]["ok"], json!(false), "{}", out[0]);
    assert_eq!(
        out[0]["error"]["kind"],
        json!("policy_violation"),
        "{}",
        out[0]
    );
    assert_eq!(out[0]["error"]["syscall"], json!("mkdir"), "{}", out[0]);
    // The learned policy passes lint: every grant has its paths and ports.
    let r = policy_ok(&["lint", path_str(&path)]);
    assert!(r.stdout.contains("no findings"), "{r:#?}");
}

#[test]
fn learned_policy_keeps_other_paths_and_ports_closed() {
    if !have_landlock(5, "learned_policy_keeps_other_paths_and_ports_closed") {
        return;
    }
    let s = LearnSetup::new("learn-landlock");
    let (path, _) = s.learned(None);
    let other = s.dir.file("other.txt", "never opened while learning");
    let (_other_listener, other_port) = listener();
    let (_, out) = session(
        &["--policy", path_str(&path)],
        &[
            request(1, OPEN, json!([path_str(&other)])),
            request(2, TCP_CONNECT, json!([other_port])),
        ],
    );
    assert_eq!(
        out[0]["ret"],
        json!(EACCES),
        "a file the script never opened: {}",
        out[0]
    );
    assert_eq!(
        out[1]["ret"],
        json!(EACCES),
        "a port the script never connected to: {}",
        out[1]
    );
}

#[test]
fn learn_extends_presets_with_only_what_they_lack() {
    let s = LearnSetup::new("learn-presets");
    // fs-read opens read-only files itself, but has no sockets.
    let (path, policy) = s.learned(Some("fs-read"));
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("extends = \"fs-read\""), "{text}");
    assert_eq!(
        added_rules(&policy, &SandboxPolicy::fs_read()),
        ["connect", "socket"],
        "{text}"
    );
    s.assert_reach(&policy, &text);
    s.replay(&path);

    // db-client has sockets and connect: only paths and ports are added.
    let (path, policy) = s.learned(Some("db-client"));
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("[seccomp]"), "{text}");
    assert_eq!(
        unconditional(&policy),
        unconditional(&SandboxPolicy::db_client()),
        "{text}"
    );
    s.assert_reach(&policy, &text);
    s.replay(&path);
}

#[test]
fn learn_records_written_paths_and_bound_ports() {
    let dir = Scratch::new("learn-write");
    let out_file = dir.path("out.txt");
    let script = script(
        &dir,
        &[request(
            1,
            WRITE_FILE,
            json!([path_str(&out_file), "abc", 3]),
        )],
    );
    let r = ffb_run(&learn_args(&script, &["--extends", "fs-read"]));
    r.expect_code_for(0, "learn a write");
    let policy = parse_toml_policy(&r.stdout, "learned.toml").unwrap();
    assert_eq!(
        policy.filesystem.write,
        std::slice::from_ref(&out_file),
        "{}",
        r.stdout
    );
    assert!(policy.filesystem.read.is_empty(), "{}", r.stdout);
    // A write needs openat beyond fs-read's read-only opens.
    assert!(unconditional(&policy).contains(&"openat"), "{}", r.stdout);
    assert_eq!(fs::read_to_string(&out_file).unwrap(), "abc");
}

#[test]
fn learn_stops_at_a_floor_syscall_naming_it_and_the_line() {
    let dir = Scratch::new("learn-floor");
    let script = dir.file(
        "calls.jsonl",
        format!(
            "{}\n\n{}\n{}\n",
            request(1, SOCKET, json!([])),
            request(2, "ffb_execve() -> i32", json!([])),
            request(3, SOCKET, json!([])),
        ),
    );
    let r = ffb_run(&learn_args(&script, &[]));
    let last = learn_failed(&r, "learn with a floor syscall");
    for needle in [
        format!("{}:3: ", script.display()),
        "policy_violation".into(),
        "execve".into(),
        "floor".into(),
        "can never be learned".into(),
    ] {
        assert!(last.contains(&needle), "{needle:?} in {last}\n{r:#?}");
    }
}

#[test]
fn learn_never_lets_a_signal_reach_another_process() {
    let mut victim = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("starting a victim process");
    let dir = Scratch::new("learn-signal");
    let script = script(
        &dir,
        &[request(
            1,
            "ffb_kill_pid(i64, i32) -> i32",
            json!([victim.id(), 9]),
        )],
    );
    let r = ffb_run(&learn_args(&script, &[]));
    thread::sleep(Duration::from_millis(100));
    let victim_status = victim.try_wait().expect("try_wait");
    if victim_status.is_none() {
        let _ = victim.kill();
    }
    let _ = victim.wait();
    let last = learn_failed(&r, "learn with kill(other, SIGKILL)");
    assert!(
        last.contains(&format!("{}:1: ", script.display())) && last.contains("kill"),
        "{r:#?}"
    );
    assert!(
        victim_status.is_none(),
        "learn mode let kill() reach another process ({victim_status:?})\n{r:#?}"
    );
}

#[test]
fn learn_reports_a_crash_naming_the_line() {
    let dir = Scratch::new("learn-crash");
    let script = script(&dir, &[request(1, "ffb_segv() -> void", json!([]))]);
    let r = ffb_run(&learn_args(&script, &[]));
    learn_failed(&r, "learn with a crash");
    let line = r.one_stderr_line_for("crash");
    assert!(
        line.contains(&format!("{}:1: ", script.display()))
            && line.contains("crashed")
            && line.contains("SIGSEGV"),
        "{line}"
    );
}

#[test]
fn learn_bad_input_is_one_line_exit_2_and_spawns_nothing() {
    let dir = Scratch::new("learn-bad");
    let socket = [request(1, SOCKET, json!([]))];
    let good = dir.file("good.jsonl", jsonl(&socket));
    let bad_json = dir.file("bad-json.jsonl", jsonl(&socket) + "{not json\n");
    let bad_sig = dir.file(
        "bad-sig.jsonl",
        "{\"id\": 1, \"sig\": \"ffb_socket( -> i32\", \"args\": []}\n",
    );
    let bad_args = dir.file(
        "bad-args.jsonl",
        "{\"id\": 1, \"sig\": \"ffb_tcp_connect(u16) -> i32\", \"args\": [70000]}\n",
    );
    let bad_key = dir.file(
        "bad-key.jsonl",
        "{\"id\": 1, \"sig\": \"ffb_socket() -> i32\", \"arg\": []}\n",
    );
    let empty = dir.file("empty.jsonl", "\n\n");
    let missing = dir.path("missing.jsonl");
    let lib = hostile();
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "no bridge mode",
            vec!["policy", "learn", "--lib", lib, "--script", path_str(&good)],
            "--bridge-mode".into(),
        ),
        (
            "unknown preset",
            learn_args(&good, &["--extends", "strict"]),
            "--extends strict".into(),
        ),
        (
            "missing script",
            learn_args(&missing, &[]),
            path_str(&missing).into(),
        ),
        (
            "bad JSON on line 2",
            learn_args(&bad_json, &[]),
            format!("{}:2: ", bad_json.display()),
        ),
        (
            "bad signature",
            learn_args(&bad_sig, &[]),
            format!("{}:1: ", bad_sig.display()),
        ),
        (
            "bad argument",
            learn_args(&bad_args, &[]),
            format!("{}:1: ", bad_args.display()),
        ),
        (
            "unknown request key",
            learn_args(&bad_key, &[]),
            "unknown key 'arg'".into(),
        ),
        ("no calls", learn_args(&empty, &[]), "no calls".into()),
        (
            "missing --script",
            vec!["policy", "learn", "--bridge-mode", "--lib", lib],
            "--script".into(),
        ),
        (
            "zero timeout",
            learn_args(&good, &["--timeout-ms", "0"]),
            "--timeout-ms".into(),
        ),
    ];
    for (case, args, named) in cases {
        let r = refused(case, &args, None);
        let line = r.expect_usage_error_for(case);
        assert!(
            line.contains(&named),
            "{case}: expected {named:?} in {line}"
        );
    }
}

// ---------------------------------------------------------------------------
// --audit-log
// ---------------------------------------------------------------------------

/// The audit log's lines, each parsed, with the common fields checked.
fn audit_lines(path: &Path, library: &str, policy: &str, hash: &str) -> Vec<Json> {
    let text = fs::read_to_string(path).expect("reading the audit log");
    text.lines()
        .map(|line| {
            let j: Json = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {line}"));
            for key in [
                "time",
                "event",
                "library",
                "policy",
                "policy_hash",
                "function",
                "action",
                "pid",
            ] {
                assert!(j.get(key).is_some(), "audit line without {key}: {line}");
            }
            let time = j["time"].as_str().expect("time is a string");
            assert!(
                time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
                "time is not RFC 3339 UTC: {line}"
            );
            assert_eq!(j["library"], json!(library), "{line}");
            assert_eq!(j["policy"], json!(policy), "{line}");
            assert_eq!(j["policy_hash"], json!(hash), "{line}");
            assert!(j["pid"].as_i64().is_some_and(|p| p > 0), "{line}");
            j
        })
        .collect()
}

#[test]
fn audit_log_has_one_json_line_per_event() {
    let dir = Scratch::new("audit");
    let log = dir.path("audit.log");
    let policy = dir.file(
        "audit.toml",
        "extends = \"pure\"\n\n[seccomp]\nallow = [\"getcwd\"]\n",
    );
    let hash = hash_of(&policy);
    let (r, out) = session(
        &[
            "--policy",
            path_str(&policy),
            "--audit-log",
            path_str(&log),
            "--timeout-ms",
            "1000",
        ],
        &[
            request(1, "ffb_segv() -> void", json!([])),
            request(2, SOCKET, json!([])),
            request(3, "ffb_spin_forever() -> void", json!([])),
            // getcwd(NULL, 0): allowed by the file (it fails with ERANGE).
            request(4, SYSCALL6, json!([79, 0, 0, 0, 0, 0, 0])),
        ],
    );
    let kinds: Vec<&Json> = out.iter().map(|o| &o["error"]["kind"]).collect();
    assert_eq!(
        kinds,
        [
            &json!("crashed"),
            &json!("policy_violation"),
            &json!("timeout"),
            &Json::Null
        ],
        "{r:#?}"
    );
    let lines = audit_lines(&log, hostile(), path_str(&policy), &hash);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "crash",
            "respawn",
            "violation",
            "respawn",
            "timeout",
            "respawn"
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[0]["function"], json!("ffb_segv"));
    assert_eq!(lines[0]["action"], json!("killed"));
    assert_eq!(lines[0]["error"]["signal"], json!("SIGSEGV"));
    let violation = &lines[2];
    assert_eq!(violation["function"], json!("ffb_socket"));
    assert_eq!(violation["syscall"], json!("socket"));
    assert_eq!(violation["nr"], json!(41));
    let args = violation["args"].as_array().expect("args");
    assert_eq!(args.len(), 6, "{violation}");
    // socket(AF_INET = 2, SOCK_STREAM = 1, 0)
    assert_eq!(args[0], json!("0x2"), "{violation}");
    assert_eq!(args[1], json!("0x1"), "{violation}");
    assert_eq!(lines[4]["function"], json!("ffb_spin_forever"));
    for respawn in [&lines[1], &lines[3], &lines[5]] {
        assert_eq!(respawn["action"], json!("respawned"), "{respawn}");
        assert_eq!(respawn["function"], Json::Null, "{respawn}");
    }
    // Each respawn names the new helper: all pids differ.
    let pids: std::collections::BTreeSet<i64> = [1, 3, 5]
        .iter()
        .map(|&i| lines[i]["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{lines:#?}");
}

#[test]
fn audit_log_records_resource_limits_and_appends_across_runs() {
    let dir = Scratch::new("audit-limit");
    let log = dir.path("audit.log");
    let policy = dir.file("cpu.toml", "[limits]\ncpu_seconds = 1\n");
    let hash = hash_of(&policy);
    let options = ["--policy", path_str(&policy), "--audit-log", path_str(&log)];
    let (r, j) = call_with(&options, "ffb_burn_cpu_ms(i64) -> i64", &["5000"]);
    r.expect_code_for(1, "CPU limit");
    assert_eq!(j["error"]["kind"], json!("resource_limit"), "{r:#?}");
    // A second run appends.
    let r = ffb_run(&call_args(true, &options, "ffb_execve() -> i32", &[]));
    r.expect_code_for(1, "violation");
    let lines = audit_lines(&log, hostile(), path_str(&policy), &hash);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["resource_limit", "violation"], "{lines:#?}");
    assert_eq!(lines[0]["function"], json!("ffb_burn_cpu_ms"));
    assert_eq!(lines[1]["syscall"], json!("execve"));
    assert_eq!(lines[1]["nr"], json!(59));
}

#[test]
fn audit_log_that_cannot_be_opened_is_bad_input() {
    let case = "--audit-log in a missing directory";
    let missing = "/nonexistent/ffb-test-dir/audit.log";
    let args = call_args(false, &["--audit-log", missing], SOCKET, &[]);
    let r = refused(case, &args, None);
    let line = r.expect_usage_error_for(case);
    assert!(
        line.contains("--audit-log") && line.contains(missing),
        "{line}"
    );
}

// ---------------------------------------------------------------------------
// usage
// ---------------------------------------------------------------------------

#[test]
fn policy_commands_have_help_and_one_line_usage_errors() {
    let r = policy_ok(&["--help"]);
    for word in ["check", "explain", "lint", "learn"] {
        assert!(
            r.stdout.contains(word),
            "policy --help lacks {word}\n{r:#?}"
        );
    }
    let r = policy_ok(&["learn", "--help"]);
    for word in [
        "--script",
        "--extends",
        "--lib",
        "--bridge-mode",
        "--timeout-ms",
    ] {
        assert!(r.stdout.contains(word), "learn --help lacks {word}\n{r:#?}");
    }
    for sub in ["call", "session"] {
        let r = ffb_run(&[sub, "--help"]);
        for word in ["--policy", "--audit-log", "FILE_OR_PRESET"] {
            assert!(r.stdout.contains(word), "{sub} --help lacks {word}\n{r:#?}");
        }
    }
    for (args, named) in [
        (&["policy"][..], "check, explain, lint or learn"),
        (&["policy", "frob"][..], "frob"),
        (&["policy", "check"][..], "FILE_OR_PRESET"),
        (&["policy", "explain", "pure", "--yaml"][..], "--yaml"),
    ] {
        let r = ffb_run(args);
        let line = r.expect_usage_error_for(&format!("{args:?}"));
        assert!(line.contains(named), "{args:?}: {line}");
    }
}
