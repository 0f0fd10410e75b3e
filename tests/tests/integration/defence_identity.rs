//! Defence in depth: the helper's identity, from the attacker's side (issue 9).
//!
//! On a root host (these tests run as root) every helper used to keep uid 0,
//! without capabilities: it still owned every root-owned file, so a policy
//! granting `chmod`, `utimensat` or `setxattr` let it make a file outside
//! every listed path setuid, back-date it or tag it. Now each helper of a
//! root host runs as a uid and gid of its own, `OWN_ID_BASE + pid`, with no
//! supplementary groups, keeping `CAP_DAC_READ_SEARCH` and
//! `CAP_DAC_OVERRIDE` only where its grants need them (Landlock bounds
//! both), and never `CAP_FOWNER` or `CAP_CHOWN`.
//!
//! The attacks are C functions in `fixtures/ffb_attack_process.c` (who am I,
//! `kill`, `prlimit`), `fixtures/ffb_attack_imported.c` (metadata) and
//! `fixtures/ffb_hostile.c` (reads and writes); every effect is checked from
//! outside the helper: `/proc/PID/status` and `/proc/PID/limits`, a file's
//! mode, times, extended attributes and contents, whether a helper still
//! answers. On a host that is not root the helper keeps the host's uid, in
//! its user namespace: the tests check that instead.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ffb_contract::artefacts::Namespace;
use ffb_contract::wire::OWN_ID_BASE;
use ffb_loader::{Bridge, ErrorKind, SandboxPolicy, Value};
use ffb_tests::bridge::i64_of;
use ffb_tests::cli::{self, ffb_run, path_str, Scratch};
use ffb_tests::procfs::namespaced_pid;
use ffb_tests::{bridge_builder, hostile_lib};
use serde_json::{json, Value as Json};

const EPERM: i64 = 1;
const EACCES: i64 = 13;

const READ_FILE: &str = "ffb_read_file(cstr, out[64], u64) -> i32";
const WRITE_FILE: &str = "ffb_write_file(cstr, bytes, u64) -> i32";
const CHMOD: &str = "ffb_chmod(cstr, u32) -> i32";
const BACKDATE: &str = "ffb_backdate(cstr, i64) -> i32";
const TAG: &str = "ffb_tag(cstr, cstr, cstr) -> i32";
const TOUCH_NOW: &str = "ffb_touch_now(cstr) -> i32";

const IDS: &[&str] = &[
    "ffb_attack_uid() -> i64",
    "ffb_attack_euid() -> i64",
    "ffb_attack_gid() -> i64",
    "ffb_attack_groups() -> i64",
    "ffb_attack_kill(i64, i64) -> i64",
    "ffb_attack_prlimit_nofile(i64, i64) -> i64",
];

fn root_host() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn process_lib() -> &'static Path {
    Path::new(env!("FFB_ATTACK_PROCESS_LIB"))
}

fn imported_lib() -> &'static str {
    env!("FFB_ATTACK_IMPORTED_LIB")
}

/// `pure`, plus the calls the identity attacks make; `kill` and `prlimit64`
/// aimed at another process stay the host's to judge.
fn ids_policy(dir: &Scratch) -> SandboxPolicy {
    let path = dir.file(
        "ids.toml",
        "extends = \"pure\"\n[seccomp]\nallow = [\"getgroups\", \"kill\", \"prlimit64\"]\n",
    );
    ffb_policy::source::load_policy(path_str(&path)).expect("the identity policy")
}

fn ids_bridge(policy: SandboxPolicy) -> Bridge {
    bridge_builder(process_lib(), IDS)
        .policy(policy)
        .load()
        .expect("loading the identity attacks")
}

fn call_i64(b: &mut Bridge, name: &str, args: &[Value]) -> i64 {
    let out = b
        .call_by_name(name, args)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    i64_of(&out.ret)
}

/// One `Uid:`/`Gid:` line of `/proc/PID/status`: (real, effective, saved, fs).
fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line[key.len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// The uid a helper with host pid `pid` must have.
fn expected_uid(pid: i32) -> u32 {
    if root_host() {
        OWN_ID_BASE + pid as u32
    } else {
        // SAFETY: getuid has no arguments and cannot fail.
        unsafe { libc::getuid() }
    }
}

#[test]
fn a_root_hosts_helpers_are_never_root_and_never_share_a_uid() {
    let dir = Scratch::new("identity-ids");
    let mut a = ids_bridge(ids_policy(&dir));
    let mut b = ids_bridge(ids_policy(&dir));
    let (a_pid, b_pid) = (a.helper_pid().unwrap(), b.helper_pid().unwrap());
    let mut seen = Vec::new();
    for (bridge, pid) in [(&mut a, a_pid), (&mut b, b_pid)] {
        let uid = call_i64(bridge, "ffb_attack_uid", &[]);
        let euid = call_i64(bridge, "ffb_attack_euid", &[]);
        let gid = call_i64(bridge, "ffb_attack_gid", &[]);
        let want = i64::from(expected_uid(pid));
        assert_eq!((uid, euid, gid), (want, want, want), "helper {pid}");
        // From outside: real, effective, saved and file-system ids alike.
        let id = expected_uid(pid);
        assert_eq!(status_ids(pid, "Uid:"), vec![id; 4], "helper {pid}");
        assert_eq!(status_ids(pid, "Gid:"), vec![id; 4], "helper {pid}");
        if root_host() {
            assert_ne!(uid, 0);
            assert_eq!(call_i64(bridge, "ffb_attack_groups", &[]), 0, "groups");
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
            assert_eq!(groups["Groups:".len()..].trim(), "", "{status}");
        }
        seen.push(uid);
    }
    if root_host() {
        assert_ne!(seen[0], seen[1], "two helpers share a uid");
    }
}

/// The thread limit is `RLIMIT_NPROC` of a uid no other process has.
#[test]
fn a_root_hosts_helper_has_a_thread_limit_of_its_own() {
    if !root_host() {
        return;
    }
    let dir = Scratch::new("identity-nproc");
    let a = ids_bridge(ids_policy(&dir));
    let pid = a.helper_pid().unwrap();
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap();
    let threads = ffb_contract::artefacts::Limits::default().threads;
    assert_eq!(
        line.split_whitespace().nth(2),
        Some(threads.to_string().as_str()),
        "{line}"
    );
}

/// The soft `Max open files` of `pid`, from outside.
fn nofile(pid: i32) -> String {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().to_string()
}

/// A `kill` or `prlimit64` aimed at another helper fails (the host refuses
/// it before the kernel would, and the kernel would refuse it too: the
/// uids differ and no capability is left), and the target is unharmed.
#[test]
fn a_helper_can_neither_kill_nor_limit_another_helper() {
    let dir = Scratch::new("identity-kill");
    let mut victim = ids_bridge(ids_policy(&dir));
    let victim_pid = victim.helper_pid().unwrap();
    let before = nofile(victim_pid);
    let refused = |r: Result<ffb_loader::CallOutput, ffb_loader::Error>, what: &str| match r {
        Ok(out) => {
            let ret = i64_of(&out.ret);
            assert!(ret == -EPERM || ret == -EACCES, "{what}: {ret}");
        }
        Err(e) => assert!(
            matches!(e.kind, ErrorKind::PolicyViolation { .. }),
            "{what}: {e}"
        ),
    };
    // The victim as the attacker can name it: in the fork server's pid
    // namespace, which both share.
    let victim_there = namespaced_pid(victim_pid).expect("the victim's pid");
    let mut attacker = ids_bridge(ids_policy(&dir));
    let killed = attacker.call_by_name(
        "ffb_attack_kill",
        &[Value::I64(victim_there), Value::I64(libc::SIGKILL.into())],
    );
    refused(killed, "kill");
    let mut attacker = ids_bridge(ids_policy(&dir));
    let limited = attacker.call_by_name(
        "ffb_attack_prlimit_nofile",
        &[Value::I64(victim_there), Value::I64(3)],
    );
    refused(limited, "prlimit");
    assert_eq!(nofile(victim_pid), before, "the victim's limit changed");
    // The control: on itself, prlimit works.
    assert_eq!(
        call_i64(
            &mut victim,
            "ffb_attack_prlimit_nofile",
            &[Value::I64(victim_there), Value::I64(32)]
        ),
        0
    );
    assert_eq!(nofile(victim_pid), "32");
    assert_eq!(victim.helper_pid(), Some(victim_pid), "the victim died");
}

/// `ffb call --json --policy POLICY --lib LIB --sig SIG ARGS...`: its JSON.
fn call(lib: &str, policy: &Path, sig: &str, args: &[&str]) -> Json {
    let r = ffb_run(&cli::call_args(
        lib,
        &["--json", "--policy", path_str(policy)],
        sig,
        args,
    ));
    let j = r.json_for(&format!("{sig} {args:?}"));
    assert_eq!(j["ok"], json!(true), "{sig} {args:?}: {r:#?}");
    j
}

fn ret(j: &Json) -> i64 {
    j["ret"].as_i64().unwrap_or_else(|| panic!("{j}"))
}

/// A root-owned file, mode 0644, back-dated an hour.
fn victim_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, "root's own data\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    path
}

/// A root-owned directory with `mode`.
fn root_dir(dir: &Scratch, name: &str, mode: u32) -> PathBuf {
    let path = dir.path(name);
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// The size of `path`'s `user.ffb` attribute, or -1.
fn xattr_len(path: &Path) -> isize {
    let name = std::ffi::CString::new("user.ffb").unwrap();
    let c = std::ffi::CString::new(path_str(path)).unwrap();
    // SAFETY: live NUL-terminated strings; a NULL buffer of size 0 asks only
    // for the value's size.
    unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) }
}

/// The metadata attack: a TOML policy grants `chmod`, `utimensat` and
/// `setxattr` (with a read grant, so Landlock lists paths), and the helper
/// aims them at a root-owned file outside every listed path. Landlock does
/// not confine metadata; the helper's own uid does: it owns nothing there
/// and has neither `CAP_FOWNER` nor, without a write grant,
/// `CAP_DAC_OVERRIDE`.
#[test]
fn granted_metadata_calls_cannot_touch_a_root_owned_file() {
    let dir = Scratch::new("identity-metadata");
    let listed = root_dir(&dir, "listed", 0o755);
    let outside = root_dir(&dir, "outside", 0o755);
    let target = victim_file(&outside, "setuid-me");
    let policy = dir.file(
        "metadata.toml",
        format!(
            "extends = \"pure\"\n[seccomp]\nallow = [\"chmod\", \"fchmodat\", \"utimensat\", \"setxattr\", \"lsetxattr\"]\n\n[filesystem]\nread = [\"{}\"]\n",
            listed.display()
        ),
    );
    let meta = fs::metadata(&target).unwrap();
    let before = (meta.mode(), meta.mtime(), meta.uid(), fs::read(&target).unwrap());
    // The control, from outside as root: each call works on a twin.
    let twin = victim_file(&outside, "twin");
    fs::set_permissions(&twin, fs::Permissions::from_mode(0o4755)).unwrap();
    let name = std::ffi::CString::new("user.ffb").unwrap();
    let c = std::ffi::CString::new(path_str(&twin)).unwrap();
    // SAFETY: live NUL-terminated strings, and a 3-byte value buffer.
    let tagged = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"yes".as_ptr().cast(), 3, 0) };
    assert_eq!(tagged, 0, "this filesystem takes user xattrs");

    let lib = imported_lib();
    let t = path_str(&target);
    let chmod = ret(&call(lib, &policy, CHMOD, &[t, &0o4755.to_string()]));
    let backdate = ret(&call(lib, &policy, BACKDATE, &[t, "0"]));
    let tag = ret(&call(lib, &policy, TAG, &[t, "user.ffb", "tagged"]));
    if root_host() {
        assert_eq!(chmod, -EPERM, "chmod");
        assert_eq!(backdate, -EPERM, "utimensat");
        assert!(tag == -EPERM || tag == -EACCES, "setxattr: {tag}");
    }
    let meta = fs::metadata(&target).unwrap();
    let after = (meta.mode(), meta.mtime(), meta.uid(), fs::read(&target).unwrap());
    assert_eq!(after, before, "mode, mtime, owner or content changed");
    assert_eq!(xattr_len(&target), -1, "the file was tagged");
}

/// With a write grant as well, the metadata calls still cannot touch a
/// root-owned file outside the grants: a policy that grants a metadata
/// call gets no `CAP_DAC_OVERRIDE` for its write grants (which then work
/// where the helper's own uid may write, a 0777 directory here), so setting
/// the times to *now* or a `user.*` attribute, which write access alone
/// would allow, is refused too.
#[test]
fn with_a_write_grant_metadata_calls_still_cannot_touch_a_root_owned_file() {
    let dir = Scratch::new("identity-metadata-write");
    let granted = root_dir(&dir, "granted", 0o777);
    let outside = root_dir(&dir, "outside", 0o755);
    let target = victim_file(&outside, "touch-me");
    let policy = dir.file(
        "metadata-write.toml",
        format!(
            "extends = \"pure\"\n[seccomp]\nallow = [\"open\", \"openat\", \"write\", \"close\", \"utimensat\", \"setxattr\"]\n\n[filesystem]\nwrite = [\"{}\"]\n",
            granted.display()
        ),
    );
    let meta = fs::metadata(&target).unwrap();
    let before = (meta.mtime(), meta.mtime_nsec(), fs::read(&target).unwrap());
    // The control, from outside as root: a twin can be touched and tagged.
    let twin = victim_file(&outside, "twin");
    let name = std::ffi::CString::new("user.ffb").unwrap();
    let c = std::ffi::CString::new(path_str(&twin)).unwrap();
    // SAFETY: live NUL-terminated strings, and a 3-byte value buffer.
    let tagged = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"yes".as_ptr().cast(), 3, 0) };
    assert_eq!(tagged, 0, "this filesystem takes user xattrs");

    let t = path_str(&target);
    let touched = ret(&call(imported_lib(), &policy, TOUCH_NOW, &[t]));
    let tag = ret(&call(imported_lib(), &policy, TAG, &[t, "user.ffb", "tagged"]));
    if root_host() {
        assert!(touched == -EACCES || touched == -EPERM, "utimensat(now): {touched}");
        assert!(tag == -EACCES || tag == -EPERM, "setxattr: {tag}");
    }
    let meta = fs::metadata(&target).unwrap();
    let after = (meta.mtime(), meta.mtime_nsec(), fs::read(&target).unwrap());
    assert_eq!(after, before, "mtime or content changed");
    assert_eq!(xattr_len(&target), -1, "the file was tagged");
    // The write grant itself still works, where the helper's uid may write.
    let inside = granted.join("inside.txt");
    let lib = path_str(hostile_lib());
    let j = call(lib, &policy, WRITE_FILE, &[path_str(&inside), "written", "7"]);
    assert_eq!(ret(&j), 0, "{j}");
    assert_eq!(fs::read_to_string(&inside).unwrap(), "written");
}

/// A write grant to a root-owned directory (mode 0755) still works: the
/// helper keeps `CAP_DAC_OVERRIDE`, bounded by Landlock, and what it creates
/// is its own uid's. Beside the grant, nothing is written.
#[test]
fn a_write_grant_to_a_root_owned_dir_still_works() {
    let dir = Scratch::new("identity-write");
    let granted = root_dir(&dir, "granted", 0o755);
    let beside = root_dir(&dir, "beside", 0o755);
    let policy = dir.file(
        "write.toml",
        format!(
            "extends = \"pure\"\n[seccomp]\nallow = [\"open\", \"openat\", \"write\", \"close\"]\n\n[filesystem]\nwrite = [\"{}\"]\n",
            granted.display()
        ),
    );
    let lib = path_str(hostile_lib());
    let inside = granted.join("inside.txt");
    let j = call(lib, &policy, WRITE_FILE, &[path_str(&inside), "written", "7"]);
    assert_eq!(ret(&j), 0, "{j}");
    assert_eq!(fs::read_to_string(&inside).unwrap(), "written");
    let owner = fs::metadata(&inside).unwrap().uid();
    if root_host() {
        assert!(owner >= OWN_ID_BASE, "created as uid {owner}");
    }
    let escaped = beside.join("outside.txt");
    let j = call(lib, &policy, WRITE_FILE, &[path_str(&escaped), "escaped", "7"]);
    assert_eq!(ret(&j), -EACCES, "{j}");
    assert!(!escaped.exists());
}

/// A read grant to a root-owned directory of mode 0700 (a test's temp dir,
/// say) still works: the helper keeps `CAP_DAC_READ_SEARCH`, bounded by
/// Landlock. A root-owned 0600 file beside the grant stays unreadable.
#[test]
fn a_read_grant_to_a_0700_root_dir_still_works() {
    let dir = Scratch::new("identity-read");
    let granted = root_dir(&dir, "granted", 0o700);
    let secret = granted.join("secret.txt");
    fs::write(&secret, "only root may read this").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let beside = root_dir(&dir, "beside", 0o700);
    let other = beside.join("other.txt");
    fs::write(&other, "nor this").unwrap();
    let policy = dir.file(
        "read.toml",
        format!(
            "extends = \"pure\"\n[seccomp]\nallow = [\"open\", \"openat\", \"read\", \"close\"]\n\n[filesystem]\nread = [\"{}\"]\n",
            granted.display()
        ),
    );
    let lib = path_str(hostile_lib());
    let j = call(lib, &policy, READ_FILE, &[path_str(&secret), "64"]);
    assert_eq!(ret(&j), 23, "{j}");
    let text = hex::encode(b"only root may read this");
    assert!(
        j["out"][1]["hex"]
            .as_str()
            .is_some_and(|h| h.starts_with(&text)),
        "{j}"
    );
    let j = call(lib, &policy, READ_FILE, &[path_str(&other), "64"]);
    assert_eq!(ret(&j), -EACCES, "{j}");
}

/// In a pid namespace of its own every helper is pid 1 to itself: its uid
/// still comes from its pid as the host counts it, so it stays unique.
#[test]
fn in_a_pid_namespace_the_uid_comes_from_the_hosts_pid() {
    let dir = Scratch::new("identity-pidns");
    let mut p = ids_policy(&dir);
    p.namespaces = vec![ffb_contract::artefacts::Namespace::Pid];
    let mut a = ids_bridge(p.clone());
    let mut b = ids_bridge(p);
    for bridge in [&mut a, &mut b] {
        let pid = bridge.helper_pid().unwrap();
        let want = expected_uid(pid);
        assert_eq!(call_i64(bridge, "ffb_attack_uid", &[]), i64::from(want));
        assert_eq!(status_ids(pid, "Uid:"), vec![want; 4], "helper {pid}");
    }
}

/// A policy's user namespace does not make a root host's helper uid 0
/// again: it switches to its own uid first, and the namespace maps that uid
/// alone. Seen from outside it has its own uid and no groups, and a
/// root-owned file that only its owner may read stays unreadable.
#[test]
fn in_a_user_namespace_a_root_hosts_helper_is_still_its_own_uid() {
    let dir = Scratch::new("identity-userns");
    let secret = dir.file("secret", b"root only");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let policy = dir.file(
        "userns.toml",
        format!(
            "extends = \"pure\"\n[seccomp]\nallow = [\"getgroups\", \"open\", \"openat\", \"read\", \"close\"]\n\n[filesystem]\nread = [\"{}\"]\n",
            dir.path("").display()
        ),
    );
    let policy = ffb_policy::source::load_policy(path_str(&policy)).expect("the policy");
    for namespaces in [vec![Namespace::User], vec![Namespace::User, Namespace::Pid]] {
        let mut p = policy.clone();
        p.namespaces = namespaces.clone();
        let mut ids = ids_bridge(p.clone());
        let pid = ids.helper_pid().unwrap();
        let want = expected_uid(pid);
        assert_eq!(status_ids(pid, "Uid:"), vec![want; 4], "{namespaces:?}");
        assert_eq!(status_ids(pid, "Gid:"), vec![want; 4], "{namespaces:?}");
        assert_eq!(
            call_i64(&mut ids, "ffb_attack_uid", &[]),
            i64::from(want),
            "{namespaces:?}: the namespace maps the uid to itself"
        );
        if !root_host() {
            continue;
        }
        assert_ne!(want, 0);
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
        assert_eq!(groups["Groups:".len()..].trim(), "", "{status}");
        // The kernel's uid 0 would own the file and read it.
        let mut reader = bridge_builder(hostile_lib(), &[READ_FILE])
            .policy(p)
            .load()
            .unwrap_or_else(|e| panic!("{namespaces:?}: {e}"));
        let out = reader
            .call_by_name(
                "ffb_read_file",
                &[Value::Str(path_str(&secret).as_bytes().to_vec()), Value::U64(64)],
            )
            .unwrap_or_else(|e| panic!("{namespaces:?}: {e}"));
        assert_eq!(out.ret, Value::I32(-EACCES as i32), "{namespaces:?}: a 0600 root file");
    }
}

/// An explicit `run_as` wins over the helper's own uid.
#[test]
fn an_explicit_run_as_wins() {
    let dir = Scratch::new("identity-run-as");
    let mut p = ids_policy(&dir);
    p.run_as = Some(ffb_contract::artefacts::Identity {
        uid: 65534,
        gid: 65534,
        name: "nobody".into(),
    });
    if !root_host() {
        return;
    }
    let mut b = ids_bridge(p);
    assert_eq!(call_i64(&mut b, "ffb_attack_uid", &[]), 65534);
    assert_eq!(call_i64(&mut b, "ffb_attack_gid", &[]), 65534);
}

/// A library in a directory only root may search (a test's 0700 temp dir)
/// still loads under `pure`: the helper keeps `CAP_DAC_READ_SEARCH` for it,
/// and Landlock still confines reads to the loader's directories and the
/// library's own.
#[test]
fn a_library_in_a_0700_root_dir_still_loads() {
    let dir = Scratch::new("identity-libdir");
    let private = root_dir(&dir, "private", 0o700);
    let lib = private.join("libffb_attack_process.so");
    fs::copy(process_lib(), &lib).unwrap();
    fs::set_permissions(&lib, fs::Permissions::from_mode(0o700)).unwrap();
    let mut b = bridge_builder(&lib, &["ffb_attack_uid() -> i64"])
        .policy(SandboxPolicy::pure())
        .load()
        .expect("loading from a 0700 directory");
    let pid = b.helper_pid().unwrap();
    assert_eq!(
        call_i64(&mut b, "ffb_attack_uid", &[]),
        i64::from(expected_uid(pid))
    );
}
