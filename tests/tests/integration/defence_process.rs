//! Defence in depth: the helper's process identity and the host's reports, from the attacker's side (issue 9).
//!
//! Each attack is a C function in `fixtures/ffb_attack_process.c`, run inside
//! the helper; each effect is checked from outside it: a pty's input queue,
//! a System V segment, another helper's memory, the test process's own
//! signals and timers, the error the host reports and its audit log.
//!
//! Several attacks run under an allow-everything Docker profile: it stands
//! for an imported profile on a root host (no Landlock, uid 0), where only
//! the process-identity layers stand between the extension and its target.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ffb_loader::{Bridge, ErrorKind, SandboxPolicy, Value};
use ffb_tests::bridge::{crashed, i64_of, violation};
use ffb_tests::cli::{self, Scratch};
use ffb_tests::procfs::namespaced_pid;
use ffb_tests::{bridge_builder, load_bridge};

const ENXIO: i64 = 6;
const EACCES: i64 = 13;
const EPERM: i64 = 1;
const ENOENT: i64 = 2;
const EINVAL: i64 = 22;
const EROFS: i64 = 30;

fn attack_lib() -> &'static Path {
    Path::new(env!("FFB_ATTACK_PROCESS_LIB"))
}

/// An imported Docker profile that allows every syscall the attacks make
/// (ffb refuses a profile that allows by default): only ffb's floor and the
/// baseline layers are left.
fn allow_all(dir: &Scratch) -> PathBuf {
    let names = [
        "read",
        "write",
        "open",
        "openat",
        "close",
        "ioctl",
        "fstat",
        "newfstatat",
        "lseek",
        "pread64",
        "pwrite64",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "madvise",
        "futex",
        "getpid",
        "gettid",
        "getuid",
        "rt_sigprocmask",
        "sched_yield",
        "exit",
        "exit_group",
        "shmget",
        "shmat",
        "shmdt",
        "shmctl",
        "getrandom",
    ];
    let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let profile = format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}]}}"#,
        names.join(",")
    );
    dir.file("allow-all.json", profile)
}

/// [`allow_all`], loaded, and without Landlock (`unconfined`): Landlock's
/// own scoping (no ptrace out of the domain) would hide the layer under test.
fn allow_all_policy(dir: &Scratch) -> SandboxPolicy {
    let path = allow_all(dir);
    let mut policy =
        ffb_policy::source::load_policy(path.to_str().unwrap()).expect("the allow-all profile");
    policy.confine = false;
    policy
}

/// A TOML policy: `pure`, plus opening files and `ioctl`, with the terminal
/// paths writable under Landlock, so that only the missing controlling
/// terminal stands between the extension and the terminal.
fn terminal_policy(dir: &Scratch, slave: &Path) -> PathBuf {
    dir.file(
        "terminal.toml",
        format!(
            "extends = \"pure\"\n[seccomp]\nallow = [\"open\", \"openat\", \"ioctl\", \"close\"]\n[filesystem]\nwrite = [\"/dev/tty\", \"{}\"]\n",
            slave.display()
        ),
    )
}

fn attack(policy: SandboxPolicy, decls: &[&str]) -> Bridge {
    bridge_builder(attack_lib(), decls)
        .policy(policy)
        .load()
        .expect("loading the process attacks")
}

fn call_i64(b: &mut Bridge, name: &str, args: &[Value]) -> i64 {
    let out = b
        .call_by_name(name, args)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    i64_of(&out.ret)
}

// --- no controlling terminal ---------------------------------------------

/// A pty pair: (master, path of the slave).
fn open_pty() -> (OwnedFd, PathBuf) {
    // SAFETY: posix_openpt takes flags and returns a new fd or -1.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(
        master >= 0,
        "posix_openpt: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: posix_openpt just returned this fd, owned by no one else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: grantpt and unlockpt take the master fd only.
    assert_eq!(unsafe { libc::grantpt(master.as_raw_fd()) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::unlockpt(master.as_raw_fd()) }, 0);
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes at most `name.len()` bytes into the buffer.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    assert_eq!(rc, 0);
    // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    (master, PathBuf::from(path.to_str().unwrap()))
}

/// `cmd` as the leader of a new session whose controlling terminal is the
/// pty slave at `slave` (its stdin); stdout and stderr are piped.
fn under_terminal(mut cmd: Command, slave: &Path) -> std::process::Output {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(slave)
        .expect("opening the pty slave");
    cmd.stdin(Stdio::from(tty))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let take_terminal = || {
        // SAFETY: setsid and ioctl are async-signal-safe syscalls on ints;
        // nothing is allocated between fork and exec.
        if unsafe { libc::setsid() } < 0 || unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure makes only async-signal-safe calls (see above).
    unsafe { cmd.pre_exec(take_terminal) };
    let child = cmd.spawn().expect("spawning under the pty");
    child.wait_with_output().expect("waiting for the child")
}

/// Whatever is waiting in the pty's input queue (what the slave would read):
/// typed by TIOCSTI, it shows on the master as echo. Non-blocking.
fn drain(master: &OwnedFd) -> Vec<u8> {
    // SAFETY: F_SETFL takes an int flag set and touches no memory.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: reads at most `buf.len()` bytes into the live buffer.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

#[test]
fn the_helper_has_no_terminal_even_when_its_host_has_one() {
    let dir = Scratch::new("tty");
    let (master, slave) = open_pty();
    let policy = terminal_policy(&dir, &slave);

    // The control: a child set up the same way does own the terminal.
    let mut shell = Command::new("sh");
    shell.args(["-c", "printf CONTROL > /dev/tty"]);
    let out = under_terminal(shell, &slave);
    assert!(out.status.success(), "{out:?}");
    let echoed = String::from_utf8_lossy(&drain(&master)).into_owned();
    assert!(echoed.contains("CONTROL"), "{echoed:?}");

    // The host (the ffb CLI) has the pty as its controlling terminal, and
    // gives its helper the pty itself as stdout and stderr.
    let lib = attack_lib().to_str().unwrap();
    let run = |sig: &str| {
        let args = cli::call_args(
            lib,
            &[
                "--policy",
                policy.to_str().unwrap(),
                "--extension-output",
                slave.to_str().unwrap(),
                "--json",
            ],
            sig,
            &[],
        );
        let mut cmd = cli::ffb();
        cmd.args(args);
        let out = under_terminal(cmd, &slave);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json: serde_json::Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{sig}: {e}: {out:?}"));
        json
    };
    let opened = run("ffb_attack_tty_open() -> i64");
    assert_eq!(opened["ret"], serde_json::json!(-ENXIO), "{opened}");
    // TIOCSTI on fds 0 to 2 (1 and 2 are the pty): refused, by the floor
    // (a violation) or, without it, because the pty is not the helper's
    // controlling terminal (EPERM: nothing accepted it).
    let typed = run("ffb_attack_tiocsti_fds() -> i64");
    let refused = typed["ret"] == serde_json::json!(0)
        || (typed["error"]["kind"] == "policy_violation" && typed["error"]["syscall"] == "ioctl");
    assert!(refused, "{typed}");
    let injected = drain(&master);
    assert!(
        !injected.contains(&b'Z') && !injected.contains(&b'Y'),
        "typed into the terminal: {:?}",
        String::from_utf8_lossy(&injected)
    );
}

// --- an IPC namespace of its own -------------------------------------------

/// A System V segment of the test's own, removed on drop.
struct Segment {
    key: libc::key_t,
    id: i32,
    at: *mut u8,
}

impl Segment {
    fn new() -> Segment {
        let key = 0x4646_0000 | (std::process::id() as libc::key_t & 0xffff);
        // SAFETY: shmget takes a key, a size and flags.
        let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        // SAFETY: attaches the fresh segment at an address the kernel picks.
        let at = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        assert_ne!(at as isize, -1);
        let at = at.cast::<u8>();
        // SAFETY: the segment is 4096 bytes, mapped at `at`.
        unsafe { std::ptr::copy_nonoverlapping(b"MARKER".as_ptr(), at, 6) };
        Segment { key, id, at }
    }

    fn marker(&self) -> [u8; 6] {
        let mut out = [0u8; 6];
        // SAFETY: the segment is still attached at `at`, 4096 bytes long.
        unsafe { std::ptr::copy_nonoverlapping(self.at, out.as_mut_ptr(), 6) };
        out
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: detaches this segment's one attachment and removes it.
        unsafe { libc::shmdt(self.at.cast()) };
        // SAFETY: IPC_RMID takes no buffer.
        unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

#[test]
fn sysv_segments_of_others_are_out_of_reach() {
    let dir = Scratch::new("shm");
    let segment = Segment::new();
    let mut b = attack(
        allow_all_policy(&dir),
        &[
            "ffb_attack_shm(i64, i64) -> i64",
            "ffb_attack_shm_own() -> i64",
        ],
    );
    // The control: System V calls themselves work in the helper.
    assert_eq!(call_i64(&mut b, "ffb_attack_shm_own", &[]), 0);
    let got = call_i64(
        &mut b,
        "ffb_attack_shm",
        &[
            Value::I64(segment.key.into()),
            Value::I64(segment.id.into()),
        ],
    );
    assert_eq!(got, -(ENOENT * 1000 + EINVAL), "reached by key or id");
    assert_eq!(&segment.marker(), b"MARKER");
}

/// On a host without `CAP_SYS_ADMIN` (the ffb CLI run as uid 12345, with no
/// capabilities), the IPC namespace comes inside a user namespace: a
/// segment anyone may attach (mode 0666) is still out of reach.
#[test]
fn an_unprivileged_hosts_helper_has_its_own_ipc_namespace_too() {
    let dir = Scratch::new("shm-nobody");
    let profile = allow_all(&dir);
    let segment = Segment::new();
    // SAFETY: shmid_ds is plain C data; all zeroes is a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one shmid_ds into the live `ds`.
    let stat = unsafe { libc::shmctl(segment.id, libc::IPC_STAT, &mut ds) };
    assert_eq!(stat, 0);
    ds.shm_perm.mode = 0o666;
    // SAFETY: IPC_SET reads the live `ds`.
    let set = unsafe { libc::shmctl(segment.id, libc::IPC_SET, &mut ds) };
    assert_eq!(set, 0);
    let run = |sig: &str, args: &[&str]| {
        let lib = attack_lib().to_str().unwrap();
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=12345",
            "--regid=12345",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(ffb_tests::ffb_bin())
        .args(cli::call_args(
            lib,
            &["--policy", profile.to_str().unwrap(), "--json"],
            sig,
            args,
        ))
        .env("FFB_SHIM", ffb_tests::shim_bin())
        .env_remove("FFB_BRIDGE_MODE");
        cli::run(cmd, None).json_for(sig)
    };
    let own = run("ffb_attack_shm_own() -> i64", &[]);
    assert_eq!(own["ret"], serde_json::json!(0), "{own}");
    let (key, id) = (segment.key.to_string(), segment.id.to_string());
    let got = run("ffb_attack_shm(i64, i64) -> i64", &[&key, &id]);
    assert_eq!(
        got["ret"],
        serde_json::json!(-(ENOENT * 1000 + EINVAL)),
        "{got}"
    );
    assert_eq!(&segment.marker(), b"MARKER");
}

// --- non-dumpable helpers --------------------------------------------------

/// The real uid of process `pid`, from `/proc/PID/status`.
fn helper_uid(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

static CHILD_VICTIM: AtomicI64 = AtomicI64::new(4242);

/// A child of the test that has dropped every capability but stays
/// dumpable, as a helper used to, with the uid and gid `id` (the
/// attacking helper's: on a root host each helper has its own): the
/// control target. Killed on drop.
struct DumpableChild(i32);

impl DumpableChild {
    fn start(id: u32) -> DumpableChild {
        // SAFETY: the child makes only raw syscalls (setresgid, setresuid,
        // prctl, capset, pause) and never returns into Rust code, so the
        // fork of a multithreaded process is sound.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: ids only; no memory is touched.
            unsafe { libc::setresgid(id, id, id) };
            // SAFETY: as above.
            unsafe { libc::setresuid(id, id, id) };
            // SAFETY: an integer-only option; a uid change reset the flag.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
            let header = [0x2008_0522u32, 0];
            let data = [0u32; 6];
            // SAFETY: a version-3 header and two empty records, both live.
            unsafe { libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) };
            loop {
                // SAFETY: pause takes no arguments.
                unsafe { libc::pause() };
            }
        }
        // Wait until the child has dropped its capabilities.
        let deadline = Instant::now() + Duration::from_secs(10);
        let dropped = || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|s| s.contains("CapEff:\t0000000000000000"))
        };
        while !dropped() {
            assert!(Instant::now() < deadline, "the child kept its capabilities");
            std::thread::sleep(Duration::from_millis(1));
        }
        DumpableChild(pid)
    }

    fn victim(&self) -> i64 {
        let mut value = 0i64;
        let local = libc::iovec {
            iov_base: (&raw mut value).cast(),
            iov_len: 8,
        };
        let remote = libc::iovec {
            iov_base: CHILD_VICTIM.as_ptr().cast(),
            iov_len: 8,
        };
        // SAFETY: writes 8 bytes into the live local `value`.
        let n = unsafe { libc::process_vm_readv(self.0, &local, 1, &remote, 1, 0) };
        assert_eq!(n, 8, "{}", std::io::Error::last_os_error());
        value
    }
}

impl Drop for DumpableChild {
    fn drop(&mut self) {
        // SAFETY: kills and reaps the test's own child.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
        // SAFETY: as above; a null status pointer is allowed.
        unsafe { libc::waitpid(self.0, std::ptr::null_mut(), 0) };
    }
}

/// Two layers stand between a helper and another's memory, and each is
/// shown on its own: `/proc` is read-only in every helper's mount
/// namespace, so no write through `/proc/PID/mem` opens at all, not even
/// into a process the helper could otherwise write; and a read, which the
/// mount allows, is refused by identity (another uid, non-dumpable) while
/// the same read of a dumpable process of the helper's own identity works.
#[test]
fn a_helper_cannot_write_another_helpers_memory() {
    let dir = Scratch::new("mem");
    let decls = [
        "ffb_attack_victim_addr() -> i64",
        "ffb_attack_victim_value() -> i64",
        "ffb_attack_write_mem(i64, i64, i64) -> i64",
        "ffb_attack_read_mem(i64, i64) -> i64",
    ];
    let mut a = attack(allow_all_policy(&dir), &decls);
    let mut b = attack(allow_all_policy(&dir), &decls);
    let victim = call_i64(&mut b, "ffb_attack_victim_addr", &[]);
    let b_pid = b.helper_pid().unwrap();

    // The control: a dumpable process of the helper's own identity. (On a
    // root host that identity is the attacker's own uid, no longer root's.)
    let a_uid = helper_uid(a.helper_pid().unwrap());
    let child = DumpableChild::start(a_uid);
    let child_victim = [
        Value::I64(child.0.into()),
        Value::I64(CHILD_VICTIM.as_ptr() as i64),
    ];
    let read = call_i64(&mut a, "ffb_attack_read_mem", &child_victim);
    assert_eq!(read, 4242, "the read route is open to a process of its own identity");
    let mut write_child = child_victim.to_vec();
    write_child.push(Value::I64(666));
    let wrote = call_i64(&mut a, "ffb_attack_write_mem", &write_child);
    assert_eq!(
        (wrote, child.victim()),
        (-EROFS, 4242),
        "/proc is read-only: not even that process's memory opens for writing"
    );
    assert_eq!(CHILD_VICTIM.load(Ordering::Relaxed), 4242);

    let b_victim = [Value::I64(b_pid.into()), Value::I64(victim)];
    let read = call_i64(&mut a, "ffb_attack_read_mem", &b_victim);
    assert!(read == -EACCES || read == -EPERM, "read another helper's memory: {read}");
    let mut write_b = b_victim.to_vec();
    write_b.push(Value::I64(666));
    let wrote = call_i64(&mut a, "ffb_attack_write_mem", &write_b);
    assert!(
        wrote == -EROFS || wrote == -EACCES || wrote == -EPERM,
        "{wrote}"
    );
    assert_eq!(call_i64(&mut b, "ffb_attack_victim_value", &[]), 4242);
    assert_eq!(b.helper_pid(), Some(b_pid));
}

// --- pending signals -------------------------------------------------------

/// The limit in the `SigQ:` line of `/proc/PID/status` (queued/limit).
fn sigq_limit(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("SigQ:")).unwrap();
    line.split('/').nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn one_helper_cannot_use_up_the_users_signal_queue() {
    let mut b = load_bridge(
        attack_lib(),
        &["ffb_attack_sigqueue_flood(i64, i64) -> i64"],
    );
    let pid = b.helper_pid().unwrap();
    let cap = ffb_contract::artefacts::DEFAULT_PENDING_SIGNALS;
    assert_eq!(sigq_limit(pid), cap);
    let queued = call_i64(
        &mut b,
        "ffb_attack_sigqueue_flood",
        &[
            Value::I64(namespaced_pid(pid).expect("the helper's own pid")),
            Value::I64(200_000),
        ],
    );
    assert!(queued >= 1 && queued as u64 <= cap, "queued {queued}");

    // While the helper holds them, this process can still queue signals to
    // itself and create timers (each takes a slot of the same per-user count).
    let sig = libc::SIGRTMIN() + 3;
    // SAFETY: sigset_t is plain bits; sigemptyset makes it empty.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is live and writable.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: as above.
    unsafe { libc::sigaddset(&mut set, sig) };
    // SAFETY: blocks `sig` in this thread only, so it stays queued here.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    // SAFETY: getpid takes no arguments.
    let me = unsafe { libc::getpid() };
    // SAFETY: gettid takes no arguments.
    let thread = unsafe { libc::gettid() };
    for _ in 0..32 {
        // SAFETY: siginfo_t is plain C data; all zeroes is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        info.si_signo = sig;
        info.si_code = libc::SI_QUEUE;
        // SAFETY: queues `sig` to this blocked thread, with the live `info`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                me,
                thread,
                sig,
                &raw const info,
            )
        };
        assert_eq!(rc, 0, "sigqueue: {}", std::io::Error::last_os_error());
    }
    let mut timers = Vec::new();
    for _ in 0..32 {
        let mut timer: libc::timer_t = std::ptr::null_mut();
        // SAFETY: a null sigevent asks for SIGALRM on expiry; the timer is
        // never armed, and written into the live `timer`.
        let rc =
            unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, std::ptr::null_mut(), &mut timer) };
        assert_eq!(rc, 0, "timer_create: {}", std::io::Error::last_os_error());
        timers.push(timer);
    }
    for timer in timers {
        // SAFETY: deletes a timer created above.
        unsafe { libc::timer_delete(timer) };
    }
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: takes the queued signals off this thread, with no wait.
    while unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) } == sig {}
    // SAFETY: unblocks what was blocked above.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    drop(b);
}

// --- reports the extension cannot bend -------------------------------------

/// Compiles the attack fixture with `define` set, into `dir`: a library
/// whose constructor attacks at `dlopen`.
fn constructor_lib(dir: &Scratch, define: &str) -> PathBuf {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ffb_attack_process.c");
    let out = dir.path(&format!("lib{define}.so"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-D{define}"))
        .arg("-o")
        .arg(&out)
        .arg(src)
        .arg("-lpthread")
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(status.success(), "compiling {src} with -D{define}");
    out
}

#[test]
fn a_violation_in_a_constructor_is_reported_and_audited() {
    let dir = Scratch::new("ctor");
    for (define, syscall, nr, times) in [
        ("FFB_CTOR_SOCKET", "socket", 41, 10),
        ("FFB_CTOR_FORK", "clone", 56, 3),
        ("FFB_CTOR_KILL_PARENT", "kill", 62, 3),
    ] {
        let lib = constructor_lib(&dir, define);
        let audit = dir.path(&format!("{define}.audit"));
        for _ in 0..times {
            let e = bridge_builder(&lib, &["ffb_attack_process_present() -> i64"])
                .audit_log(&audit)
                .load()
                .expect_err(define);
            assert_eq!(e.kind, violation(syscall, nr), "{define}: {e}");
            assert!(e.message.contains("while loading"), "{e}");
        }
        let log = std::fs::read_to_string(&audit).unwrap_or_default();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), times, "{define}: {log}");
        for line in lines {
            assert_eq!(
                (&line["event"], &line["syscall"], &line["action"]),
                (
                    &serde_json::json!("violation"),
                    &serde_json::json!(syscall),
                    &serde_json::json!("killed")
                ),
                "{line}"
            );
        }
    }
}

#[test]
fn a_constructor_cannot_forge_the_handshake() {
    let dir = Scratch::new("forge");
    let lib = constructor_lib(&dir, "FFB_CTOR_FORGE");
    // The forged "failed" went nowhere: the load succeeds and serves.
    let mut b = load_bridge(&lib, &["ffb_attack_process_present() -> i64"]);
    assert_eq!(call_i64(&mut b, "ffb_attack_process_present", &[]), 1);
    drop(b);
    // A load that really fails is reported in the host's words, naming the
    // host's declaration, with the kind of what really failed.
    let e = bridge_builder(&lib, &["ffb_attack_no_such_symbol() -> i64"])
        .load()
        .expect_err("a missing symbol");
    assert_eq!(e.kind, ErrorKind::SymbolNotFound, "{e}");
    assert!(!e.message.contains("FORGED"), "{e}");
    assert!(
        e.message
            .contains("'ffb_attack_no_such_symbol' (declared as"),
        "{e}"
    );
}

#[test]
fn a_self_raised_sigxcpu_is_a_signal_not_the_cpu_limit() {
    let mut b = load_bridge(attack_lib(), &["ffb_attack_raise_sigxcpu() -> i64"]);
    let e = b.call_by_name("ffb_attack_raise_sigxcpu", &[]).unwrap_err();
    assert_eq!(e.kind, crashed("SIGXCPU"), "{e}");
}

#[test]
fn a_busy_loop_past_the_cpu_limit_is_the_cpu_limit() {
    let mut policy = SandboxPolicy::preset("pure").unwrap();
    policy.limits.cpu_seconds = 1;
    let mut b = attack(policy, &["ffb_attack_burn_cpu() -> i64"]);
    let started = Instant::now();
    let e = b.call_by_name("ffb_attack_burn_cpu", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceLimit, "{e}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// A helper that returns a string and exits right after, from another
/// thread: the string is either read in full while the helper lives (then
/// the call succeeds, and the next call on that helper reports the exit),
/// or the helper is reported as exited with its code. Never `protocol`.
#[test]
fn a_helper_that_exits_while_returning_a_string_is_reported_as_exited() {
    let mut b = load_bridge(
        attack_lib(),
        &[
            "ffb_attack_string_then_exit(i64) -> cstr",
            "ffb_attack_wait_for_end() -> i64",
        ],
    );
    let exited = ErrorKind::Exited { code: 7 };
    let mut read_in_full = 0;
    for i in 0..50 {
        match b.call_by_name("ffb_attack_string_then_exit", &[Value::I64(i * 40)]) {
            Ok(out) => {
                assert_eq!(out.ret, Value::Str(b"the answer, read in full".to_vec()));
                read_in_full += 1;
                let e = b.call_by_name("ffb_attack_wait_for_end", &[]).unwrap_err();
                assert_eq!(e.kind, exited, "after a string read in full: {e}");
            }
            Err(e) => assert_eq!(e.kind, exited, "iteration {i}: {e}"),
        }
    }
    eprintln!("strings read in full before the exit: {read_in_full} of 50");
}
