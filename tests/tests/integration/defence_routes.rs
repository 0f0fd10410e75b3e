//! Defence in depth: routes a policy cannot see past, from the attacker's side (issue 9).
//!
//! Each attack runs inside the helper (`fixtures/ffb_attack_routes.c`) under a
//! policy that allows the syscall, and its side effect is checked from the
//! test process: the host's rlimits, another process's nice value, CPUs,
//! I/O class and scheduler, a pty's input queue, a writer a lease or a lock
//! would block, a listener that must never accept, and the helper's thread
//! count.

use std::io::ErrorKind as IoErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ffb_loader::{Bridge, SandboxPolicy, Value};
use ffb_policy::sandbox::{Action, ArgCondition, CmpOp, SyscallRule};
use ffb_tests::bridge::violation;
use ffb_tests::bridge_builder;
use ffb_tests::procfs::has_ended;

const DECLS: &[&str] = &[
    "ffb_routes_stack_filter() -> i32",
    "ffb_routes_prctl_name() -> i32",
    "ffb_routes_tty_inject(cstr, cstr, u32) -> i32",
    "ffb_routes_read_lease(cstr) -> i32",
    "ffb_routes_lock(cstr, i32, i32) -> i32",
    "ffb_routes_unlock(cstr) -> i32",
    "ffb_routes_unlock_all() -> i32",
    "ffb_routes_swap_race(cstr, cstr, i32, i32) -> i32",
    "ffb_routes_prlimit_cpu(i32, u64, u64) -> i32",
    "ffb_routes_setpriority(i32, i32, i32) -> i32",
    "ffb_routes_pin(i32, i32) -> i32",
    "ffb_routes_idle_io(i32, i32) -> i32",
    "ffb_routes_sched_idle(i32) -> i32",
    "ffb_routes_start_threads(i32) -> i32",
    "ffb_routes_first_error() -> i32",
    "ffb_routes_release_threads() -> i32",
    "ffb_routes_held() -> i32",
    "ffb_routes_race_threads(i32, i32) -> i32",
    "ffb_routes_thread_cost(i32) -> i64",
    "ffb_routes_notified_cost(i32) -> i64",
    "ffb_routes_socket(i32, i32, i32) -> i32",
    "ffb_routes_mptcp_connect(u16) -> i32",
    "ffb_routes_fastopen(u16, i32) -> i32",
];

/// "The helper itself" to the fixture's pid arguments.
const SELF: i32 = -1;
const IPPROTO_MPTCP: u64 = 262;
const MSG_FASTOPEN: u64 = 0x2000_0000;

fn routes_lib() -> &'static Path {
    Path::new(env!("FFB_ATTACK_ROUTES_LIB"))
}

fn load(policy: SandboxPolicy) -> Bridge {
    bridge_builder(routes_lib(), DECLS)
        .policy(policy)
        .load()
        .expect("loading the routes corpus")
}

/// `pure` with unconditional allow rules for `names`.
fn pure_allowing(names: &[&str]) -> SandboxPolicy {
    names
        .iter()
        .try_fold(SandboxPolicy::pure(), |p, n| p.allow(n))
        .expect("no floor syscall")
}

fn call(b: &mut Bridge, name: &str, args: &[Value]) -> Result<Value, ffb_loader::Error> {
    b.call_by_name(name, args).map(|out| out.ret)
}

fn i32_of(v: Value) -> i32 {
    match v {
        Value::I32(i) => i,
        other => panic!("expected an i32, got {other:?}"),
    }
}

/// Calls `name`, which must get the helper killed for `syscall`, and checks
/// that the helper is gone.
fn expect_violation(b: &mut Bridge, name: &str, args: &[Value], syscall: &str, nr: i64) {
    let pid = b.helper_pid().expect("a live helper");
    match call(b, name, args) {
        Err(e) => assert_eq!(e.kind, violation(syscall, nr), "{name}: {e}"),
        Ok(v) => panic!("{name}{args:?} ran and returned {v:?}: the route is open"),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(has_ended(pid), "{name}: the helper outlived its violation");
}

/// A `sleep` the attacks aim at; killed when dropped.
struct Victim(Child);

impl Victim {
    fn new() -> Self {
        Victim(Command::new("sleep").arg("60").spawn().expect("sleep"))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
    fn stat_field(&self, n: usize) -> i64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let rest = stat.rsplit_once(')').unwrap().1;
        rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
    }

    fn nice(&self) -> i64 {
        self.stat_field(19)
    }

    fn policy(&self) -> i64 {
        self.stat_field(41)
    }

    fn affinity(&self) -> Vec<usize> {
        affinity_of(self.pid())
    }

    fn ioprio(&self) -> i64 {
        // SAFETY: ioprio_get takes two integers and reads no memory.
        unsafe { libc::syscall(libc::SYS_ioprio_get, 1, self.pid()) }
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn affinity_of(pid: i32) -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: writes at most size_of::<cpu_set_t>() bytes into the live `set`.
    let r = unsafe { libc::sched_getaffinity(pid, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(r, 0, "sched_getaffinity({pid})");
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: reads one bit of the live set, within CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

fn cpu_limit_of_this_process() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the live `limit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CPU, &mut limit) }, 0);
    limit
}

#[test]
fn a_stacked_filter_through_prctl_is_a_violation() {
    let mut b = load(pure_allowing(&["prctl"]));
    // Allowing prctl allows its ordinary commands...
    assert_eq!(
        i32_of(call(&mut b, "ffb_routes_prctl_name", &[]).unwrap()),
        0
    );
    // ...but never PR_SET_SECCOMP: with the stack, ptrace would have failed
    // quietly with EPERM and the call would have returned normally.
    expect_violation(&mut b, "ffb_routes_stack_filter", &[], "prctl", 157);
}

/// A pty pair; the slave's input queue is what TIOCSTI would fill.
struct Pty {
    master: i32,
    slave_path: String,
}

impl Pty {
    fn new() -> Self {
        // SAFETY: posix_openpt takes flags and returns a new fd or -1.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0, "posix_openpt");
        // SAFETY: grantpt and unlockpt take the live master fd.
        assert_eq!(unsafe { libc::grantpt(master) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::unlockpt(master) }, 0);
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: ptsname_r writes at most name.len() bytes into the live buffer.
        let named = unsafe { libc::ptsname_r(master, name.as_mut_ptr(), name.len()) };
        assert_eq!(named, 0);
        // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
        let slave_path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        // A root host's helper has a uid of its own and, with no Landlock
        // to bound it, no DAC override: the slave must be anyone's to open,
        // so that only the floor stands between the helper and TIOCSTI.
        std::fs::set_permissions(
            &slave_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        Pty { master, slave_path }
    }

    /// Bytes waiting in the slave's input queue (what its reader would get).
    fn queued_input(&self) -> i32 {
        let path = std::ffi::CString::new(self.slave_path.clone()).unwrap();
        // SAFETY: opens the NUL-terminated path; returns a new fd or -1.
        let slave = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
        assert!(slave >= 0, "open {}", self.slave_path);
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into the live `n`.
        assert_eq!(unsafe { libc::ioctl(slave, libc::FIONREAD, &mut n) }, 0);
        // SAFETY: closes the fd opened above.
        unsafe { libc::close(slave) };
        n
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // SAFETY: closes the master fd this Pty owns.
        unsafe { libc::close(self.master) };
    }
}

#[test]
fn terminal_input_injection_is_a_violation_on_every_fd() {
    let pty = Pty::new();
    // An imported-profile-like policy: ioctl on any fd with any request, no
    // Landlock. The floor still refuses TIOCSTI and TIOCLINUX.
    for request in [libc::TIOCSTI, libc::TIOCLINUX] {
        let mut p = pure_allowing(&["ioctl", "openat", "open"]);
        p.confine = false;
        let mut b = load(p);
        let args = [
            Value::str(&pty.slave_path),
            Value::str("id\n"),
            Value::U32(request as u32),
        ];
        expect_violation(&mut b, "ffb_routes_tty_inject", &args, "ioctl", 16);
        assert_eq!(pty.queued_input(), 0, "request {request:#x} queued input");
    }
}

#[test]
fn a_read_lease_is_a_violation_and_blocks_no_writer() {
    let dir = std::env::temp_dir().join(format!("ffb-routes-lease-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shared.txt");
    std::fs::write(&file, "data").unwrap();
    let mut p = SandboxPolicy::fs_read();
    p.filesystem.read.push(dir.clone());
    let mut b = load(p);
    let path = Value::str(file.to_str().unwrap());
    expect_violation(&mut b, "ffb_routes_read_lease", &[path], "fcntl", 72);
    // A lease would make this open fail with EWOULDBLOCK (and a blocking one
    // wait for the lease-break time).
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open(&file);
    assert!(opened.is_ok(), "a writer is blocked: {opened:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

/// `ffb_routes_lock`'s ways of locking: `F_SETLK`, `F_OFD_SETLK`, `flock`
/// (`LOCK_NB`), then the same three waiting.
const LOCK_WAYS: [&str; 6] = [
    "F_SETLK",
    "F_OFD_SETLK",
    "flock",
    "F_SETLKW",
    "F_OFD_SETLKW",
    "flock (waiting)",
];
/// The ways `fs-read` and `db-client` allow (they allow no `flock`).
const FCNTL_LOCK_WAYS: [i32; 4] = [0, 1, 3, 4];
const ENOLCK: i32 = -libc::ENOLCK;

fn is_flock(way: i32) -> bool {
    way % 3 == 2
}

/// A directory of files for the lock tests, with a read-only and a
/// writable subdirectory; removed when dropped.
struct LockFiles {
    dir: std::path::PathBuf,
}

impl LockFiles {
    fn new(name: &str) -> Self {
        Self::under(&std::env::temp_dir(), name)
    }

    fn under(parent: &Path, name: &str) -> Self {
        let dir = parent.join(format!("ffb-locks-{name}-{}", std::process::id()));
        for sub in ["read", "write"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("shared.db"), "data").unwrap();
        }
        LockFiles { dir }
    }

    fn read_dir(&self) -> std::path::PathBuf {
        self.dir.join("read")
    }

    fn write_dir(&self) -> std::path::PathBuf {
        self.dir.join("write")
    }

    /// The file another process shares, which the helper may only read.
    fn read_only(&self) -> std::path::PathBuf {
        self.read_dir().join("shared.db")
    }

    /// A file within the write grant.
    fn granted(&self) -> std::path::PathBuf {
        self.write_dir().join("shared.db")
    }

    /// `extends` with the read directory as a read grant and the write
    /// directory as a write grant, and `flock` allowed, as a TOML file
    /// writes it.
    fn granting(&self, extends: &str) -> SandboxPolicy {
        let text = format!(
            "extends = \"{extends}\"\n[filesystem]\nread = [{:?}]\nwrite = [{:?}]\n\n\
             [[seccomp.rule]]\nsyscall = \"flock\"\naction = \"allow\"\n",
            self.read_dir().display().to_string(),
            self.write_dir().display().to_string(),
        );
        ffb_policy::source::parse_toml_policy(&text, "locks.toml")
            .unwrap_or_else(|e| panic!("{text}\n{e}"))
    }
}

impl Drop for LockFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this process can take a write lock on all of `file` now, of the
/// kind that conflicts with lock `way` (`F_SETLK` against record and open
/// file locks, which share one lock space; `flock` against `flock`), never
/// waiting. Released at once.
fn can_write_lock(file: &Path, way: i32) -> bool {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let r = if is_flock(way) {
        // SAFETY: flock takes an fd and an integer.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }
    } else {
        // SAFETY: struct flock is plain C data; all zeroes is a valid value.
        let mut record: libc::flock = unsafe { std::mem::zeroed() };
        record.l_type = libc::F_WRLCK as libc::c_short;
        record.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: F_SETLK reads one struct flock from the live `record`.
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &record) }
    };
    if r == 0 {
        return true;
    }
    let e = std::io::Error::last_os_error();
    assert!(
        matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)),
        "the test's own lock on {file:?} failed otherwise: {e}"
    );
    false
}

fn lock(b: &mut Bridge, file: &Path, way: i32, exclusive: bool) -> i32 {
    let args = [
        Value::str(file.to_str().unwrap()),
        Value::I32(way),
        Value::I32(exclusive as i32),
    ];
    i32_of(call(b, "ffb_routes_lock", &args).unwrap())
}

/// Each of `ways` to take a read lock on `file` fails with `ENOLCK` in a
/// helper that lives on, and this process can still lock the file for
/// writing; an unlock there succeeds.
fn assert_read_locks_refused(b: &mut Bridge, file: &Path, ways: &[i32]) {
    let pid = b.helper_pid();
    for &way in ways {
        let name = LOCK_WAYS[way as usize];
        assert_eq!(lock(b, file, way, false), ENOLCK, "{name} on {file:?}");
        assert!(can_write_lock(file, way), "{name}: the helper holds a lock");
    }
    let unlock = call(
        b,
        "ffb_routes_unlock",
        &[Value::str(file.to_str().unwrap())],
    );
    assert_eq!(i32_of(unlock.unwrap()), 0, "an unlock where no lock can be");
    call(b, "ffb_routes_unlock_all", &[]).unwrap();
    assert_eq!(b.helper_pid(), pid, "the refusals killed the helper");
}

/// Each way of locking `file` for reading (on a read-only fd, as SQLite
/// opens a read-only database) and for writing works: this process sees
/// the lock held, and free again once the helper closes its fd.
fn assert_locks_work(b: &mut Bridge, file: &Path) {
    for way in 0..6 {
        for exclusive in [false, true] {
            let name = LOCK_WAYS[way as usize];
            assert_eq!(lock(b, file, way, exclusive), 0, "{name} {exclusive}");
            assert!(!can_write_lock(file, way), "{name} {exclusive}: not held");
            call(b, "ffb_routes_unlock_all", &[]).unwrap();
            assert!(can_write_lock(file, way), "{name} {exclusive}: still held");
        }
    }
}

#[test]
fn a_read_lock_outside_the_write_grants_is_refused_under_fs_read_and_db_client() {
    let files = LockFiles::new("presets");
    for preset in [SandboxPolicy::fs_read(), SandboxPolicy::db_client()] {
        let mut p = preset;
        p.filesystem.read.push(files.dir.clone());
        let name = p.name.clone();
        let mut b = load(p);
        assert_read_locks_refused(&mut b, &files.read_only(), &FCNTL_LOCK_WAYS);
        // Neither allows flock at all.
        let path = Value::str(files.read_only().to_str().unwrap());
        let args = [path, Value::I32(2), Value::I32(0)];
        expect_violation(&mut b, "ffb_routes_lock", &args, "flock", 73);
        assert!(can_write_lock(&files.read_only(), 2), "{name}");
    }
}

#[test]
fn under_dockers_default_profile_a_read_lock_is_refused() {
    // The imported profile allows fcntl and flock outright, and reads the
    // library's own directory.
    let files = LockFiles::under(routes_lib().parent().unwrap(), "docker");
    let audit = files.dir.join("audit.jsonl");
    let mut b = bridge_builder(routes_lib(), DECLS)
        .policy(docker_default())
        .audit_log(&audit)
        .load()
        .expect("loading the routes corpus");
    assert_read_locks_refused(&mut b, &files.read_only(), &[0, 1, 2, 3, 4, 5]);
    // Each refusal is audited, with its syscall and its errno.
    drop(b);
    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    for syscall in ["fcntl", "flock"] {
        let refused = log
            .lines()
            .filter(|l| l.contains(syscall) && l.contains("errno:ENOLCK"))
            .count();
        let expected = if syscall == "flock" { 2 } else { 4 };
        assert_eq!(refused, expected, "{syscall} in the audit log: {log}");
    }
}

#[test]
fn under_a_write_grant_locks_work_there_and_nowhere_else() {
    let files = LockFiles::new("granted");
    let mut b = load(files.granting("fs-read"));
    assert_read_locks_refused(&mut b, &files.read_only(), &[0, 1, 2, 3, 4, 5]);
    assert_locks_work(&mut b, &files.granted());
    // A lock that must wait runs in the helper, and is taken once freed.
    assert_waiting_locks_are_taken(&mut b, &files.granted());
}

#[test]
fn with_threads_running_the_host_takes_open_file_locks_itself() {
    let files = LockFiles::new("threads");
    let mut b = load(files.granting("db-client"));
    let started = i32_of(call(&mut b, "ffb_routes_start_threads", &[Value::I32(3)]).unwrap());
    assert_eq!(started, 3);
    assert_read_locks_refused(&mut b, &files.read_only(), &[0, 1, 2, 3, 4, 5]);
    assert_locks_work(&mut b, &files.granted());
    // A host thread waits for these, retrying, and answers when it has the lock.
    assert_waiting_locks_are_taken(&mut b, &files.granted());
    call(&mut b, "ffb_routes_release_threads", &[]).unwrap();
}

/// With this process holding a write lock on `file`, each waiting way
/// returns 0 once a thread of the test lets its lock go, and holds the lock.
fn assert_waiting_locks_are_taken(b: &mut Bridge, file: &Path) {
    use std::os::fd::AsRawFd;
    for way in [3, 4, 5] {
        let name = LOCK_WAYS[way as usize];
        let holder = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(file)
            .unwrap();
        let r = if is_flock(way) {
            // SAFETY: flock takes an fd and an integer.
            unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }
        } else {
            // SAFETY: struct flock is plain C data; all zeroes is a valid value.
            let mut record: libc::flock = unsafe { std::mem::zeroed() };
            record.l_type = libc::F_WRLCK as libc::c_short;
            // SAFETY: F_OFD_SETLK reads one struct flock from the live
            // `record` (an open file lock, so that no other fd of this
            // process releases it).
            unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_OFD_SETLK, &record) }
        };
        assert_eq!(r, 0, "{name}: the test's own lock");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(holder);
        });
        assert_eq!(lock(b, file, way, false), 0, "{name}");
        release.join().unwrap();
        assert!(!can_write_lock(file, way), "{name}: not held");
        call(b, "ffb_routes_unlock_all", &[]).unwrap();
    }
}

#[test]
fn swapping_the_fd_while_the_host_checks_it_locks_no_other_file() {
    let files = LockFiles::new("swap");
    let mut b = load(files.granting("db-client"));
    for (way, how) in [(1, 1), (2, 2)] {
        let args = [
            Value::str(files.granted().to_str().unwrap()),
            Value::str(files.read_only().to_str().unwrap()),
            Value::I32(how),
            Value::I32(2000),
        ];
        let locked = i32_of(call(&mut b, "ffb_routes_swap_race", &args).unwrap());
        assert!(
            locked > 0,
            "{}: no lock on the granted file",
            LOCK_WAYS[way]
        );
        // Both fds stay open in the helper: a lock on the read-only file's
        // open file description would still be held.
        assert!(
            can_write_lock(&files.read_only(), way as i32),
            "{}: the read-only file was locked",
            LOCK_WAYS[way]
        );
        call(&mut b, "ffb_routes_unlock_all", &[]).unwrap();
    }
}

#[test]
fn prlimit_on_the_host_is_a_violation_and_on_itself_works() {
    let before = cpu_limit_of_this_process();
    let audit = std::env::temp_dir().join(format!("ffb-routes-audit-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&audit);
    let mut b = bridge_builder(routes_lib(), DECLS)
        .policy(pure_allowing(&["prlimit64"]))
        .audit_log(&audit)
        .load()
        .expect("loading the routes corpus");
    // Its own limit: lowering it is the helper's business.
    for pid in [0, SELF] {
        let args = [Value::I32(pid), Value::U64(3000), Value::U64(3000)];
        assert_eq!(
            i32_of(call(&mut b, "ffb_routes_prlimit_cpu", &args).unwrap()),
            0,
            "pid {pid}"
        );
    }
    let host = std::process::id() as i32;
    let args = [Value::I32(host), Value::U64(1), Value::U64(1)];
    expect_violation(&mut b, "ffb_routes_prlimit_cpu", &args, "prlimit64", 302);
    let after = cpu_limit_of_this_process();
    assert_eq!(
        (after.rlim_cur, after.rlim_max),
        (before.rlim_cur, before.rlim_max),
        "the host's RLIMIT_CPU changed"
    );
    // And the violation is in the audit log, with its syscall.
    drop(b);
    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("violation") && l.contains("prlimit64")),
        "audit log: {log:?}"
    );
    let _ = std::fs::remove_file(&audit);
}

/// The scheduling calls of the issue, allowed by the policy.
fn scheduling_policy() -> SandboxPolicy {
    pure_allowing(&[
        "setpriority",
        "sched_setaffinity",
        "ioprio_set",
        "sched_setscheduler",
    ])
}

#[test]
fn renicing_pinning_or_idling_another_process_is_a_violation() {
    let victim = Victim::new();
    let (nice, cpus, ioprio, policy) = (
        victim.nice(),
        victim.affinity(),
        victim.ioprio(),
        victim.policy(),
    );
    let v = victim.pid();
    let attacks: [(&str, Vec<Value>, &str, i64); 6] = [
        (
            "ffb_routes_setpriority",
            vec![Value::I32(0), Value::I32(v), Value::I32(19)],
            "setpriority",
            141,
        ),
        (
            // PRIO_PGRP of its own group: not provably the helper alone.
            "ffb_routes_setpriority",
            vec![Value::I32(1), Value::I32(0), Value::I32(19)],
            "setpriority",
            141,
        ),
        (
            "ffb_routes_pin",
            vec![Value::I32(v), Value::I32(0)],
            "sched_setaffinity",
            203,
        ),
        (
            "ffb_routes_idle_io",
            vec![Value::I32(1), Value::I32(v)],
            "ioprio_set",
            251,
        ),
        (
            // IOPRIO_WHO_USER: every process of the uid.
            "ffb_routes_idle_io",
            vec![Value::I32(3), Value::I32(0)],
            "ioprio_set",
            251,
        ),
        (
            "ffb_routes_sched_idle",
            vec![Value::I32(v)],
            "sched_setscheduler",
            144,
        ),
    ];
    for (name, args, syscall, nr) in attacks {
        let mut b = load(scheduling_policy());
        expect_violation(&mut b, name, &args, syscall, nr);
    }
    assert_eq!(victim.nice(), nice, "the victim was reniced");
    assert_eq!(victim.affinity(), cpus, "the victim was pinned");
    assert_eq!(victim.ioprio(), ioprio, "the victim's I/O was idled");
    assert_eq!(victim.policy(), policy, "the victim was made SCHED_IDLE");
}

#[test]
fn scheduling_calls_on_the_helper_itself_still_work() {
    let mut b = load(scheduling_policy());
    let helper = b.helper_pid().unwrap();
    let stat_field = |n: usize| {
        let stat = std::fs::read_to_string(format!("/proc/{helper}/stat")).unwrap();
        let rest = stat.rsplit_once(')').unwrap().1.to_string();
        rest.split_whitespace().nth(n - 3).unwrap().to_string()
    };
    // Raising its own nice needs no privilege, whatever it starts at.
    let start: i32 = stat_field(19).parse().unwrap();
    let (nicer, nicest) = ((start + 1).min(19), (start + 2).min(19));
    let mut ok = |name: &str, args: &[Value]| {
        let r = i32_of(call(&mut b, name, args).unwrap_or_else(|e| panic!("{name}: {e}")));
        assert_eq!(r, 0, "{name}{args:?}");
    };
    ok(
        "ffb_routes_setpriority",
        &[Value::I32(0), Value::I32(0), Value::I32(nicer)],
    );
    ok(
        "ffb_routes_setpriority",
        &[Value::I32(0), Value::I32(SELF), Value::I32(nicest)],
    );
    let cpu = affinity_of(helper)[0] as i32;
    ok("ffb_routes_pin", &[Value::I32(SELF), Value::I32(cpu)]);
    ok("ffb_routes_idle_io", &[Value::I32(1), Value::I32(0)]);
    ok("ffb_routes_sched_idle", &[Value::I32(0)]);
    // Seen from outside: the helper itself changed.
    assert_eq!(stat_field(19), nicest.to_string(), "nice");
    assert_eq!(stat_field(41), libc::SCHED_IDLE.to_string(), "policy");
    // Under pure, which allows none of them, the same calls are violations.
    let mut b = load(SandboxPolicy::pure());
    let args = [Value::I32(0), Value::I32(0), Value::I32(5)];
    expect_violation(&mut b, "ffb_routes_setpriority", &args, "setpriority", 141);
}

fn task_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn threads_stop_at_the_policy_limit_for_any_uid() {
    let policy = SandboxPolicy::pure();
    let limit = policy.limits.threads as usize;
    assert_eq!(limit, 16, "policy explain says threads: 16");
    let mut b = load(policy);
    let helper = b.helper_pid().unwrap();
    let started =
        i32_of(call(&mut b, "ffb_routes_start_threads", &[Value::I32(1500)]).unwrap()) as usize;
    let running = task_count(helper);
    let error = i32_of(call(&mut b, "ffb_routes_first_error", &[]).unwrap());
    assert_eq!(started, limit - 1, "the main thread and {} more", limit - 1);
    assert_eq!(running, limit, "threads seen in /proc/{helper}/task");
    assert_eq!(
        error,
        libc::EAGAIN,
        "pthread_create fails as at a real limit"
    );
    assert_eq!(
        i32_of(call(&mut b, "ffb_routes_release_threads", &[]).unwrap()) as usize,
        started
    );
    // The host survived, and the helper goes on with threads below the limit.
    let per_thread = match call(&mut b, "ffb_routes_thread_cost", &[Value::I32(200)]).unwrap() {
        Value::I64(ns) => ns,
        other => panic!("{other:?}"),
    };
    assert!(per_thread > 0, "pthread_create failed: {per_thread}");
    // The same loop in the test process: no filter, no listener.
    let lib = ffb_tests::in_process::InProcess::open(routes_lib());
    // SAFETY: the C signature is `int64_t ffb_routes_thread_cost(int32_t)`,
    // sound for any count.
    let direct = unsafe { lib.sym::<extern "C" fn(i32) -> i64>("ffb_routes_thread_cost") }(200);
    let notified = match call(&mut b, "ffb_routes_notified_cost", &[Value::I32(200)]).unwrap() {
        Value::I64(ns) => ns,
        other => panic!("{other:?}"),
    };
    println!(
        "pthread_create + join, mean of 200: {per_thread} ns in the helper (through the \
         host's listener), {direct} ns in the test process; one notification answered \
         by the host (kill(self, 0)): {notified} ns"
    );
}

#[test]
fn a_lower_thread_limit_holds_too() {
    // A policy of 4 threads, then 100 asked for.
    let mut p = SandboxPolicy::pure();
    p.limits.threads = 4;
    let mut b = load(p);
    let helper = b.helper_pid().unwrap();
    let started = i32_of(call(&mut b, "ffb_routes_start_threads", &[Value::I32(100)]).unwrap());
    assert_eq!(started, 3);
    assert_eq!(task_count(helper), 4);
    call(&mut b, "ffb_routes_release_threads", &[]).unwrap();
}

#[test]
fn threads_cloning_at_once_never_pass_the_limit() {
    // Eight threads each try 200 pthread_creates at the same time; the test
    // watches /proc/PID/task all along.
    let mut p = SandboxPolicy::pure();
    p.limits.threads = 32;
    let mut b = load(p);
    let helper = b.helper_pid().unwrap();
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(task_count(helper));
                std::thread::sleep(Duration::from_micros(200));
            }
            most
        })
    };
    let args = [Value::I32(8), Value::I32(200)];
    let held = i32_of(call(&mut b, "ffb_routes_race_threads", &args).unwrap());
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    assert!(most <= 32, "{most} threads seen at once, the limit is 32");
    // The creators are gone: the held threads and the main one remain.
    assert!(held > 0 && held as usize <= 31, "held {held}");
    assert_eq!(task_count(helper), held as usize + 1);
    call(&mut b, "ffb_routes_release_threads", &[]).unwrap();
}

#[test]
fn threads_started_while_loading_are_counted_too() {
    // The library's constructor asks for 1,500 threads before the helper is
    // ready: the host answers (and counts) them during the handshake.
    let mut b = bridge_builder(routes_lib(), DECLS)
        .policy(SandboxPolicy::pure())
        .env("FFB_ROUTES_CTOR_THREADS", "1500")
        .load()
        .expect("a constructor that starts threads still loads");
    let helper = b.helper_pid().unwrap();
    let held = i32_of(call(&mut b, "ffb_routes_held", &[]).unwrap());
    assert_eq!(held, 15, "the main thread and 15 more");
    assert_eq!(task_count(helper), 16);
    assert_eq!(
        i32_of(call(&mut b, "ffb_routes_first_error", &[]).unwrap()),
        libc::EAGAIN
    );
    assert_eq!(
        i32_of(call(&mut b, "ffb_routes_release_threads", &[]).unwrap()),
        held
    );
}

/// A loopback listener whose accept queue the test can check without waiting.
fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn assert_never_accepted(l: &TcpListener, what: &str) {
    match l.accept() {
        Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
        other => panic!("{what}: the unlisted listener accepted: {other:?}"),
    }
}

fn db_client_with_port(port: u16) -> SandboxPolicy {
    let mut p = SandboxPolicy::db_client();
    p.network.connect_tcp.push(port);
    p
}

#[test]
fn tcp_without_connect_reaches_no_unlisted_port() {
    let (_listed, listed_port) = listener();
    let (unlisted, unlisted_port) = listener();
    let port = Value::U16(unlisted_port);
    let attacks: [(&str, Vec<Value>, &str, i64); 4] = [
        ("ffb_routes_mptcp_connect", vec![port.clone()], "socket", 41),
        (
            "ffb_routes_fastopen",
            vec![port.clone(), Value::I32(0)],
            "sendto",
            44,
        ),
        (
            "ffb_routes_fastopen",
            vec![port.clone(), Value::I32(1)],
            "sendmsg",
            46,
        ),
        (
            "ffb_routes_fastopen",
            vec![port.clone(), Value::I32(2)],
            "sendmmsg",
            307,
        ),
    ];
    for (name, args, syscall, nr) in attacks {
        let mut b = load(db_client_with_port(listed_port));
        expect_violation(&mut b, name, &args, syscall, nr);
        std::thread::sleep(Duration::from_millis(20));
        assert_never_accepted(&unlisted, name);
    }
}

#[test]
fn db_client_has_tcp_sockets_only() {
    let (_l, port) = listener();
    let mut b = load(db_client_with_port(port));
    let tcp = [
        Value::I32(libc::AF_INET),
        Value::I32(libc::SOCK_STREAM | libc::SOCK_CLOEXEC),
        Value::I32(0),
    ];
    assert!(i32_of(call(&mut b, "ffb_routes_socket", &tcp).unwrap()) >= 0);
    // Landlock bounds neither UDP nor unix sockets: db-client grants neither.
    for (family, kind) in [
        (libc::AF_INET, libc::SOCK_DGRAM),
        (libc::AF_INET6, libc::SOCK_DGRAM),
        (libc::AF_UNIX, libc::SOCK_STREAM),
        (libc::AF_UNIX, libc::SOCK_DGRAM),
    ] {
        let mut b = load(db_client_with_port(port));
        let args = [Value::I32(family), Value::I32(kind), Value::I32(0)];
        expect_violation(&mut b, "ffb_routes_socket", &args, "socket", 41);
    }
}

#[test]
fn mptcp_and_fast_open_pass_only_when_a_rule_names_them() {
    let (listed, listed_port) = listener();
    let rule = |name: &str, index: u8, op: CmpOp, value: u64| {
        SyscallRule::new(
            name,
            Action::Allow,
            vec![ArgCondition::new(index, op, value)],
        )
        .unwrap()
    };
    // An allow of every socket and every sendto is not a grant of either.
    let broad = pure_allowing(&["socket", "sendto", "connect", "close"]);
    let mut b = load(broad);
    let args = [Value::U16(listed_port), Value::I32(0)];
    expect_violation(&mut b, "ffb_routes_fastopen", &args, "sendto", 44);
    // Named, they pass (to a listed port; where Landlock stops them, not this route's business).
    let named = db_client_with_port(listed_port)
        .with_rule(rule("socket", 2, CmpOp::Eq, IPPROTO_MPTCP))
        .and_then(|p| {
            p.with_rule(rule(
                "sendto",
                3,
                CmpOp::MaskedEq(MSG_FASTOPEN),
                MSG_FASTOPEN,
            ))
        })
        .unwrap();
    let mut b = load(named);
    let mptcp = call(
        &mut b,
        "ffb_routes_mptcp_connect",
        &[Value::U16(listed_port)],
    )
    .expect("a named MPTCP socket is no violation");
    let mptcp = i32_of(mptcp);
    assert!(
        mptcp == 0
            || [
                libc::EPROTONOSUPPORT,
                libc::EACCES,
                libc::ENOPROTOOPT,
                libc::EINVAL
            ]
            .contains(&-mptcp),
        "MPTCP: {mptcp}"
    );
    let sent = i32_of(
        call(&mut b, "ffb_routes_fastopen", &args).expect("a named Fast Open send is no violation"),
    );
    assert_eq!(sent, 1, "a Fast Open send to the listed port");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match listed.accept() {
            Ok(_) => break,
            Err(e) if e.kind() == IoErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("the listed listener never saw the Fast Open connection: {e}"),
        }
    }
}

#[test]
fn an_ordinary_rule_on_a_partly_floored_syscall_is_accepted() {
    // Rules on every ioctl, fcntl or prctl grant no floor entry.
    for name in ["ioctl", "fcntl", "prctl"] {
        assert!(SandboxPolicy::pure().allow(name).is_ok(), "{name}");
    }
    // One that names the floored command does.
    let tiocsti = SyscallRule::new(
        "ioctl",
        Action::Allow,
        vec![ArgCondition::new(1, CmpOp::Eq, libc::TIOCSTI)],
    )
    .unwrap();
    assert!(SandboxPolicy::pure().with_rule(tiocsti).is_err());
}

/// Docker's default seccomp profile, as it is.
fn docker_default() -> SandboxPolicy {
    let path = ffb_tests::docker_default_profile();
    ffb_policy::source::load_policy(path.to_str().unwrap()).expect("it loads as it is")
}

#[test]
fn under_dockers_default_profile_the_routes_stay_closed() {
    // The profile allows every one of these syscalls outright.
    let victim = Victim::new();
    let (nice, ioprio) = (victim.nice(), victim.ioprio());
    let before = cpu_limit_of_this_process();
    let host = std::process::id() as i32;
    let v = victim.pid();
    let (unlisted, unlisted_port) = listener();
    let attacks: Vec<(&str, Vec<Value>, &str, i64)> = vec![
        ("ffb_routes_stack_filter", vec![], "prctl", 157),
        (
            "ffb_routes_prlimit_cpu",
            vec![Value::I32(host), Value::U64(1), Value::U64(1)],
            "prlimit64",
            302,
        ),
        (
            "ffb_routes_setpriority",
            vec![Value::I32(0), Value::I32(v), Value::I32(19)],
            "setpriority",
            141,
        ),
        (
            "ffb_routes_idle_io",
            vec![Value::I32(1), Value::I32(v)],
            "ioprio_set",
            251,
        ),
        (
            "ffb_routes_mptcp_connect",
            vec![Value::U16(unlisted_port)],
            "socket",
            41,
        ),
        (
            "ffb_routes_fastopen",
            vec![Value::U16(unlisted_port), Value::I32(0)],
            "sendto",
            44,
        ),
    ];
    for (name, args, syscall, nr) in attacks {
        let mut b = load(docker_default());
        expect_violation(&mut b, name, &args, syscall, nr);
    }
    let after = cpu_limit_of_this_process();
    assert_eq!(
        (after.rlim_cur, after.rlim_max),
        (before.rlim_cur, before.rlim_max)
    );
    assert_eq!((victim.nice(), victim.ioprio()), (nice, ioprio));
    std::thread::sleep(Duration::from_millis(20));
    assert_never_accepted(&unlisted, "under Docker's default profile");
    // Threads are counted under it too.
    let mut b = load(docker_default());
    let started = i32_of(call(&mut b, "ffb_routes_start_threads", &[Value::I32(1500)]).unwrap());
    assert_eq!(started, 15);
    call(&mut b, "ffb_routes_release_threads", &[]).unwrap();
}
