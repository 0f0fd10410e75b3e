//! Defence in depth under imported Docker/OCI and seccompiler profiles, from the attacker's side (issue 9).
//!
//! An imported profile says nothing of paths or ports. It used to run with
//! no Landlock at all, so under Docker's default profile a helper that kept
//! the host's uid (root here) could open `/proc/sys/kernel/core_pattern` for
//! writing and write any root-owned file. Now an imported profile confines
//! like ffb's own policies: the loader's directories and the library's are
//! readable, nothing is writable, unless a TOML policy that imports the
//! profile grants paths beside it (`[seccomp] import = "..."`). Only
//! `[filesystem] unconfined = true` turns Landlock off, and lint says so.
//!
//! The library (`ffb_hostile.c`) makes each attack inside the helper; every
//! side effect is checked from outside: the file's content and mtime, whether
//! a file exists. Each refused attack is first shown to work from the test
//! process itself (root), so a refusal cannot come from the host refusing it
//! anyway. The real Docker profile (`../shared/fixtures/`) must be present:
//! a missing one fails the tests, naming the path.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ffb_tests::cli::{self, ffb_run, path_str, Run, Scratch};
use ffb_tests::{docker_default_profile, fixture_policy, hostile_lib};
use serde_json::{json, Value as Json};

const READ_FILE: &str = "ffb_read_file(cstr, out[64], u64) -> i32";
const WRITE_FILE: &str = "ffb_write_file(cstr, bytes, u64) -> i32";
const SOCKET: &str = "ffb_socket() -> i32";
const EACCES: i64 = -13;
const EROFS: i64 = -30;
const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
const OPEN_WRITE: &str = "ffb_open_write(cstr, i32, bytes, u64) -> i32";
const CHMOD: &str = "ffb_chmod(cstr, u32) -> i32";
const BACKDATE: &str = "ffb_backdate(cstr, i64) -> i32";
const TAG: &str = "ffb_tag(cstr, cstr, cstr) -> i32";

/// `libffb_attack_imported.so` (`fixtures/ffb_attack_imported.c`): opens with
/// any flags, and metadata calls. Fails the test when `tests/build.rs` does
/// not build it.
fn attack_lib() -> &'static str {
    option_env!("FFB_ATTACK_IMPORTED_LIB").unwrap_or_else(|| {
        panic!(
            "tests/build.rs does not build fixtures/ffb_attack_imported.c: add it to LIBS as \
             (\"ffb_attack_imported\", \"fixtures/ffb_attack_imported.c\", \"FFB_ATTACK_IMPORTED_LIB\")"
        )
    })
}

/// [`call_ret`] into [`attack_lib`].
fn attack_ret(policy: &str, sig: &str, args: &[&str]) -> i64 {
    let r = ffb_run(&cli::call_args(
        attack_lib(),
        &["--json", "--policy", policy],
        sig,
        args,
    ));
    let j = r.json_for(&format!("--policy {policy} {sig} {args:?}"));
    assert_eq!(
        j["ok"],
        json!(true),
        "--policy {policy} {sig} {args:?}: {r:#?}"
    );
    r.expect_code_for(0, sig);
    j["ret"]
        .as_i64()
        .unwrap_or_else(|| panic!("{sig}: ret is not an integer: {j}"))
}



/// `ffb call --bridge-mode --json --lib HOSTILE --policy POLICY --sig SIG ARGS...`.
fn call(policy: &str, sig: &str, args: &[&str]) -> (Run, Json) {
    let lib = path_str(hostile_lib());
    let r = ffb_run(&cli::call_args(
        lib,
        &["--json", "--policy", policy],
        sig,
        args,
    ));
    let j = r.json_for(&format!("--policy {policy} {sig} {args:?}"));
    (r, j)
}

/// The return value of a call that must succeed (the bridge loaded the
/// library under `policy` and the call ran).
fn call_ret(policy: &str, sig: &str, args: &[&str]) -> i64 {
    let (r, j) = call(policy, sig, args);
    assert_eq!(
        j["ok"],
        json!(true),
        "--policy {policy} {sig} {args:?}: {r:#?}"
    );
    r.expect_code_for(0, sig);
    j["ret"]
        .as_i64()
        .unwrap_or_else(|| panic!("{sig}: ret is not an integer: {j}"))
}

/// What can be seen of a file from outside: its bytes and mtime.
fn outside_view(path: &Path) -> (Vec<u8>, SystemTime) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mtime = fs::metadata(path).and_then(|m| m.modified()).unwrap();
    (bytes, mtime)
}

/// A root-owned (the tests run as root), mode 0644 file in `dir`, its
/// mtime an hour back so that any write shows.
fn victim(dir: &Scratch) -> PathBuf {
    victim_named(dir, "owned-by-root.txt")
}

/// [`victim`], named `name`.
fn victim_named(dir: &Scratch, name: &str) -> PathBuf {
    let path = dir.file(name, "root's own data\n");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    path
}

/// A directory anyone may write, so that a write the policy grants works
/// whatever uid the helper runs as (not only root's).
fn open_dir(dir: &Scratch, name: &str) -> PathBuf {
    let path = dir.path(name);
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
    path
}

/// The helper opens `/proc/sys/kernel/core_pattern` for writing and writes
/// back exactly what it holds (so a defence that fails changes nothing on
/// the machine, and the call's success is what shows).
fn core_pattern_is_refused(policy: &str) {
    let before = fs::read(CORE_PATTERN).unwrap();
    // From outside, as the test's own root, the open works: the refusal
    // below is the sandbox's.
    fs::OpenOptions::new()
        .write(true)
        .open(CORE_PATTERN)
        .unwrap_or_else(|e| panic!("the test cannot open {CORE_PATTERN} for writing: {e}"));
    let hex = format!("hex:{}", hex::encode(&before));
    let n = before.len().to_string();
    // The read-only /proc of the baseline's mount namespace refuses first
    // (EROFS); Landlock, under it, would answer EACCES.
    let opened = call_ret(policy, WRITE_FILE, &[CORE_PATTERN, &hex, &n]);
    assert!(
        opened == EROFS || opened == EACCES,
        "{policy}: the helper opened {CORE_PATTERN} for writing: {opened}"
    );
    assert_eq!(fs::read(CORE_PATTERN).unwrap(), before);
}

/// The helper truncates and overwrites a root-owned 0644 file in a temp dir.
fn root_owned_file_is_refused(policy: &str) {
    let dir = Scratch::new("imported-victim");
    let path = victim(&dir);
    let before = outside_view(&path);
    assert_eq!(
        call_ret(policy, WRITE_FILE, &[path_str(&path), "forged", "6"]),
        EACCES,
        "{policy}: the helper opened a root-owned file for writing"
    );
    assert_eq!(
        outside_view(&path),
        before,
        "{policy}: the root-owned file's content or mtime changed"
    );
}

/// The helper creates a file in a directory anyone may write.
fn creating_a_file_is_refused(policy: &str) {
    let dir = Scratch::new("imported-create");
    let open = open_dir(&dir, "anyone");
    let new = open.join("planted.txt");
    assert_eq!(
        call_ret(policy, WRITE_FILE, &[path_str(&new), "planted", "7"]),
        EACCES,
        "{policy}: the helper created a file"
    );
    assert!(!new.exists(), "{policy}: {} was created", new.display());
}

/// The library still loads and runs, and it can read its own file (the
/// library's directory is granted for loading), but not `/etc/passwd`.
fn the_library_reads_and_nothing_else(policy: &str) {
    let lib = path_str(hostile_lib());
    let (r, j) = call(policy, READ_FILE, &[lib, "64"]);
    r.expect_code_for(0, "read the library");
    assert_eq!(j["ret"], json!(64), "{policy}: reading the library: {j}");
    assert!(
        j["out"][1]["hex"]
            .as_str()
            .is_some_and(|h| h.starts_with(&hex::encode(b"\x7fELF"))),
        "{j}"
    );
    assert_eq!(
        call_ret(policy, READ_FILE, &["/etc/passwd", "64"]),
        EACCES,
        "{policy}: the helper read /etc/passwd"
    );
}

/// The helper opens a root-owned file for appending, for reading and
/// writing, and for writing without truncation, and opens `core_pattern`
/// for writing without writing a byte.
fn opens_for_writing_are_refused(policy: &str) {
    let dir = Scratch::new("imported-append");
    let path = victim(&dir);
    let before = outside_view(&path);
    for (flags, what, data, n) in [
        (libc::O_WRONLY | libc::O_APPEND, "append", "appended", "8"),
        (libc::O_RDWR, "read-write", "forged", "6"),
        (libc::O_WRONLY, "write-only", "", "0"),
    ] {
        assert_eq!(
            attack_ret(
                policy,
                OPEN_WRITE,
                &[path_str(&path), &flags.to_string(), data, n]
            ),
            EACCES,
            "{policy}: the helper opened a root-owned file for {what}"
        );
    }
    assert_eq!(
        outside_view(&path),
        before,
        "{policy}: the root-owned file changed"
    );
    fs::OpenOptions::new()
        .write(true)
        .open(CORE_PATTERN)
        .unwrap_or_else(|e| panic!("the test cannot open {CORE_PATTERN} for writing: {e}"));
    for flags in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_WRONLY | libc::O_APPEND,
    ] {
        assert_eq!(
            attack_ret(
                policy,
                OPEN_WRITE,
                &[CORE_PATTERN, &flags.to_string(), "", "0"]
            ),
            EACCES,
            "{policy}: the helper opened {CORE_PATTERN} with flags {flags:#o}"
        );
    }
}

// ---------------------------------------------------------------------------
// Profiles imported as they are
// ---------------------------------------------------------------------------

#[test]
fn docker_default_as_is_cannot_append_to_or_reopen_root_files_for_writing() {
    opens_for_writing_are_refused(path_str(&docker_default_profile()));
}

#[test]
fn docker_default_as_is_cannot_write_core_pattern() {
    core_pattern_is_refused(path_str(&docker_default_profile()));
}

#[test]
fn docker_default_as_is_cannot_write_a_root_owned_file() {
    root_owned_file_is_refused(path_str(&docker_default_profile()));
}

#[test]
fn docker_default_as_is_cannot_create_a_file() {
    creating_a_file_is_refused(path_str(&docker_default_profile()));
}

#[test]
fn docker_default_as_is_still_loads_and_reads_the_library() {
    the_library_reads_and_nothing_else(path_str(&docker_default_profile()));
}

/// `seccompiler-files.json` allows `openat` with any flags (the
/// `seccompiler.json` fixture does not, so seccomp alone would refuse the
/// attacks there and prove nothing about Landlock).
#[test]
fn seccompiler_profile_as_is_is_confined_like_docker() {
    let profile = fixture_policy("seccompiler-files.json");
    let policy = path_str(&profile);
    core_pattern_is_refused(policy);
    root_owned_file_is_refused(policy);
    creating_a_file_is_refused(policy);
    the_library_reads_and_nothing_else(policy);
}

#[test]
fn seccompiler_profile_as_is_cannot_append_to_or_reopen_root_files_for_writing() {
    opens_for_writing_are_refused(path_str(&fixture_policy("seccompiler-files.json")));
}

// ---------------------------------------------------------------------------
// A TOML policy that imports a profile
// ---------------------------------------------------------------------------

/// Docker's default profile copied beside a TOML policy that imports it by a
/// relative path and grants one directory for writing.
#[test]
fn toml_import_writes_only_under_its_write_grant() {
    let dir = Scratch::new("imported-grant");
    fs::copy(
        docker_default_profile(),
        dir.path("docker-default-seccomp.json"),
    )
    .unwrap();
    let granted = open_dir(&dir, "granted");
    let beside = open_dir(&dir, "beside");
    let policy = dir.file(
        "import.toml",
        format!(
            "[seccomp]\nimport = \"docker-default-seccomp.json\"\n\n[filesystem]\nwrite = [\"{}\"]\n",
            granted.display()
        ),
    );
    let policy = path_str(&policy);
    let inside = granted.join("inside.txt");
    assert_eq!(
        call_ret(policy, WRITE_FILE, &[path_str(&inside), "written", "7"]),
        0
    );
    assert_eq!(fs::read_to_string(&inside).unwrap(), "written");
    let outside = beside.join("outside.txt");
    assert_eq!(
        call_ret(policy, WRITE_FILE, &[path_str(&outside), "escaped", "7"]),
        EACCES,
        "a write beside the granted directory"
    );
    assert!(!outside.exists(), "the refused write created the file");
    root_owned_file_is_refused(policy);
    core_pattern_is_refused(policy);
}

/// [`toml_import_writes_only_under_its_write_grant`], appending.
#[test]
fn toml_import_appends_only_under_its_write_grant() {
    let dir = Scratch::new("imported-grant-append");
    let granted = open_dir(&dir, "granted");
    let policy = dir.file(
        "import.toml",
        format!(
            "[seccomp]\nimport = \"{}\"\n\n[filesystem]\nwrite = [\"{}\"]\n",
            docker_default_profile().display(),
            granted.display()
        ),
    );
    let policy = path_str(&policy);
    let inside = granted.join("log.txt");
    fs::write(&inside, "first").unwrap();
    // Docker's profile grants metadata calls, so the helper gets no
    // CAP_DAC_OVERRIDE: its write grant reaches what its own uid may write.
    fs::set_permissions(&inside, fs::Permissions::from_mode(0o666)).unwrap();
    let append = (libc::O_WRONLY | libc::O_APPEND).to_string();
    assert_eq!(
        attack_ret(
            policy,
            OPEN_WRITE,
            &[path_str(&inside), &append, "+more", "5"]
        ),
        0
    );
    assert_eq!(fs::read_to_string(&inside).unwrap(), "first+more");
    opens_for_writing_are_refused(policy);
}

/// The allowed case: with `unconfined = true`, the same create works (so the
/// refusals above are Landlock's), and lint warns.
#[test]
fn only_an_explicit_unconfined_import_writes_anywhere_and_lint_says_so() {
    let dir = Scratch::new("imported-unconfined");
    let policy = dir.file(
        "unconfined.toml",
        format!(
            "[seccomp]\nimport = \"{}\"\n\n[filesystem]\nunconfined = true\n",
            docker_default_profile().display()
        ),
    );
    let policy = path_str(&policy);
    let open = open_dir(&dir, "anyone");
    let new = open.join("planted.txt");
    assert_eq!(
        call_ret(policy, WRITE_FILE, &[path_str(&new), "planted", "7"]),
        0,
        "unconfined: the create runs"
    );
    assert_eq!(fs::read_to_string(&new).unwrap(), "planted");

    let r = ffb_run(&["policy", "lint", policy]);
    r.expect_code_for(0, "lint unconfined");
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("warning[unconfined-import]"))
        .unwrap_or_else(|| panic!("no unconfined-import warning\n{r:#?}"));
    assert!(
        line.starts_with(&format!("{policy}: warning[unconfined-import]: "))
            && line.contains("without Landlock"),
        "{line}"
    );
    let confined = ffb_run(&["policy", "lint", path_str(&docker_default_profile())]);
    confined.expect_code_for(0, "lint docker default");
    assert!(
        !confined.stdout.contains("unconfined-import"),
        "{confined:#?}"
    );
}

/// `docker-small-read.toml`: the rules of `docker-small.json`, `openat`
/// added, and one file granted for reading.
#[test]
fn toml_import_fixture_keeps_the_profiles_rules_and_reads_only_its_grant() {
    let fixture = fixture_policy("docker-small-read.toml");
    let policy = path_str(&fixture);
    // The profile's rule: socket(AF_INET) fails with its errnoRet 97.
    assert_eq!(call_ret(policy, SOCKET, &[]), -97);
    let (r, j) = call(policy, READ_FILE, &["/etc/hostname", "64"]);
    r.expect_code_for(0, "read the granted file");
    let expected = fs::read("/etc/hostname").unwrap();
    assert_eq!(j["ret"], json!(expected.len().min(64)), "{j}");
    assert_eq!(
        call_ret(policy, READ_FILE, &["/etc/passwd", "64"]),
        EACCES,
        "a file beside the read grant"
    );

    let r = ffb_run(&["policy", "check", policy]);
    r.expect_code_for(0, "check");
    assert!(r.stdout.contains(": ok"), "{r:#?}");
    assert!(
        r.stderr.contains(
            "syscall rules imported from docker-small.json, a Docker/OCI seccomp profile"
        ),
        "{r:#?}"
    );
    let r = ffb_run(&["policy", "explain", "--json", policy]);
    r.expect_code_for(0, "explain");
    let j = r.json_for("explain");
    assert_eq!(j["default_action"], json!("errno:EPERM"), "{j}");
    assert_eq!(j["filesystem"]["read"], json!(["/etc/hostname"]), "{j}");
    let warnings = j["warnings"].as_array().expect("warnings");
    assert_eq!(
        warnings[0],
        json!("syscall rules imported from docker-small.json, a Docker/OCI seccomp profile"),
        "explain says where the rules came from: {j}"
    );
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.starts_with("docker-small.json: syscall execve is on ffb's floor"))),
        "{j}"
    );
    let socket = j["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["syscall"] == json!("socket") && r["action"] == json!("errno:97"))
        .or_else(|| {
            j["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["syscall"] == json!("socket") && r["conditions"] == json!([]))
        });
    assert!(socket.is_some(), "the profile's socket rules: {j}");
    let r = ffb_run(&["policy", "lint", policy]);
    r.expect_code_for(0, "lint");
    assert!(!r.stdout.contains("unconfined-import"), "{r:#?}");
}

#[test]
fn bad_imports_are_refused_with_file_line_and_column() {
    let dir = Scratch::new("imported-bad");
    let imports_in_turn = dir.file(
        "imports.toml",
        format!(
            "[seccomp]\nimport = \"{}\"\n",
            docker_default_profile().display()
        ),
    );
    fs::create_dir(dir.path("a-directory")).unwrap();
    dir.file("not-a-profile.json", "{ \"rules\": [] }\n");
    let cases: &[(&str, &str)] = &[
        ("missing.json", "cannot import 'missing.json' ("),
        ("a-directory", "it is a directory"),
        (
            "not-a-profile.json",
            "not-a-profile.json:1:1: a JSON policy must be",
        ),
        ("imports.toml", "itself imports"),
    ];
    for (i, (import, words)) in cases.iter().enumerate() {
        let policy = dir.file(
            &format!("bad-{i}.toml"),
            format!("# an import that cannot be\n[seccomp]\nimport = \"{import}\"\n"),
        );
        let r = ffb_run(&["policy", "check", path_str(&policy)]);
        let line = r.expect_usage_error_for(import);
        assert!(
            line.starts_with(&format!("{}:3:10: ", policy.display())) && line.contains(words),
            "{import}: {line}"
        );
        // A call under it is refused before any helper starts.
        let r = ffb_run(&cli::call_args(
            path_str(hostile_lib()),
            &["--policy", path_str(&policy)],
            SOCKET,
            &[],
        ));
        let refused = r.expect_usage_error_for(import);
        assert!(
            refused.contains(&format!("{}:3:10: ", policy.display())),
            "{refused}"
        );
    }
    assert!(imports_in_turn.exists());
}

// ---------------------------------------------------------------------------
// Metadata grants (lint)
// ---------------------------------------------------------------------------

/// Landlock does not confine chmod, chown, utimes or xattrs: a policy that
/// grants them lets the extension make a root-owned file outside every
/// listed path setuid, back-date it and tag it. Lint says so for each.
#[test]
fn lint_flags_every_metadata_grant_with_its_reason() {
    let dir = Scratch::new("imported-metadata");
    let out = open_dir(&dir, "out");
    let policy = dir.file(
        "metadata.toml",
        format!(
            "[seccomp]\nallow = [\"fchmodat\", \"utimensat\", \"lsetxattr\", \"fchownat\"]\n\n[filesystem]\nwrite = [\"{}\"]\n",
            out.display()
        ),
    );
    let r = ffb_run(&["policy", "lint", path_str(&policy)]);
    r.expect_code_for(0, "lint metadata");
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains("warning[metadata-grant]"))
        .unwrap_or_else(|| panic!("no metadata-grant warning\n{r:#?}"));
    for words in [
        "fchmodat, utimensat, lsetxattr, fchownat allowed",
        "Landlock does not confine file metadata",
        "setuid",
        "outside every listed path",
        "per-helper identity",
    ] {
        assert!(line.contains(words), "the reason lacks {words:?}: {line}");
    }
    // Docker's default profile grants chmod and the rest: flagged too.
    let r = ffb_run(&["policy", "lint", path_str(&docker_default_profile())]);
    r.expect_code_for(0, "lint docker default");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("warning[metadata-grant]: chmod, ")),
        "{r:#?}"
    );
    // A policy without them: no such warning.
    let r = ffb_run(&[
        "policy",
        "lint",
        path_str(&fixture_policy("docker-small-read.toml")),
    ]);
    assert!(!r.stdout.contains("metadata-grant"), "{r:#?}");
}

/// The denied case: a policy that grants no metadata call (here the
/// `docker-small-read.toml` import) leaves a root-owned file's mode, times
/// and extended attributes alone, even where Landlock would not stop it.
#[test]
fn without_a_metadata_grant_a_root_owned_file_keeps_its_mode_times_and_tags() {
    let dir = Scratch::new("imported-metadata-denied");
    let path = victim(&dir);
    let policy = fixture_policy("docker-small-read.toml");
    let policy = path_str(&policy);
    let mode = || fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    let before = (outside_view(&path), mode());
    // From outside, as root, each of these works on a scratch twin.
    let twin = victim_named(&dir, "twin.txt");
    fs::set_permissions(&twin, fs::Permissions::from_mode(0o4755)).unwrap();
    assert_eq!(
        fs::metadata(&twin).unwrap().permissions().mode() & 0o7777,
        0o4755
    );
    let xattr = |file: &Path, set: bool| {
        let name = std::ffi::CString::new("user.ffb").unwrap();
        let c = std::ffi::CString::new(path_str(file)).unwrap();
        if set {
            // SAFETY: live NUL-terminated strings, and a 3-byte value buffer.
            let r =
                unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"yes".as_ptr().cast(), 3, 0) };
            r as isize
        } else {
            // SAFETY: live NUL-terminated strings; a NULL buffer of size 0
            // asks only for the value's size.
            unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) }
        }
    };
    assert_eq!(xattr(&twin, true), 0, "this filesystem takes user xattrs");
    assert_eq!(xattr(&twin, false), 3);
    let target = path_str(&path);
    assert_eq!(
        attack_ret(policy, CHMOD, &[target, &0o4755.to_string()]),
        -1
    );
    assert_eq!(attack_ret(policy, BACKDATE, &[target, "0"]), -1);
    assert_eq!(attack_ret(policy, TAG, &[target, "user.ffb", "tagged"]), -1);
    assert_eq!(
        (outside_view(&path), mode()),
        before,
        "mode, content or mtime changed"
    );
    assert_eq!(xattr(&path, false), -1, "the file was tagged");
}
