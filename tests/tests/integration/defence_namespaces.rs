//! Defence in depth: the namespaces every helper starts in, whatever its
//! policy says (issue 9), checked from outside the helper.
//!
//! * **mount**: a namespace of its own in which `/proc` (with `/proc/sys`)
//!   is read-only, so nothing under it opens for writing even where no
//!   Landlock rule confines the helper;
//! * **ipc**: a namespace of its own (tested in `defence_process`);
//! * **pid**: the fork server's shared pid namespace, where no pid a helper
//!   can name is a process of the host;
//! * **net**: when the policy grants no TCP port, the fork server's shared
//!   empty network namespace, where not even a UDP datagram to loopback
//!   leaves; a policy with a TCP port keeps the host's network.
//!
//! The pid and network namespaces need `CAP_SYS_ADMIN`, which these tests
//! (run as root) have; a host without it gets the others, inside a user
//! namespace.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};

use ffb_loader::{Bridge, SandboxPolicy, Value};
use ffb_tests::bridge::i64_of;
use ffb_tests::cli::Scratch;
use ffb_tests::procfs::{namespace_of, namespaced_pid};
use ffb_tests::{bridge_builder, docker_default_profile};

const EROFS: i32 = 30;
const ESRCH: i64 = 3;
const SYS_PIDFD_OPEN: i64 = 434;
const SYS_GETPID: i64 = 39;

fn attack_lib() -> &'static Path {
    Path::new(env!("FFB_ATTACK_PROCESS_LIB"))
}

fn hostile_syscalls() -> &'static Path {
    ffb_tests::hostile_lib()
}

const SYSCALL6: &str = "ffb_syscall6(i64, i64, i64, i64, i64, i64, i64) -> i64";

fn syscall(b: &mut Bridge, nr: i64, a0: i64) -> i64 {
    let mut args = vec![Value::I64(nr), Value::I64(a0)];
    args.extend((0..5).map(|_| Value::I64(0)));
    i64_of(&b.call_by_name("ffb_syscall6", &args).unwrap().ret)
}

/// Docker's default profile as it is: it allows UDP sockets, `pidfd_open`
/// and opening files, so only the baseline stands in the way.
fn docker_policy() -> SandboxPolicy {
    ffb_policy::source::load_policy(docker_default_profile().to_str().unwrap())
        .expect("Docker's default profile")
}

/// Docker's default profile without Landlock (`[filesystem] unconfined =
/// true`, which lint flags): the read-only `/proc` is then all that is left
/// between the helper and `/proc/sys`.
fn unconfined_docker(dir: &Scratch) -> SandboxPolicy {
    let path: PathBuf = dir.file(
        "unconfined.toml",
        format!(
            "[seccomp]\nimport = \"{}\"\n[filesystem]\nunconfined = true\n",
            docker_default_profile().display()
        ),
    );
    ffb_policy::source::load_policy(path.to_str().unwrap()).expect("the unconfined import")
}

fn load(lib: &Path, decls: &[&str], policy: SandboxPolicy) -> Bridge {
    bridge_builder(lib, decls).policy(policy).load().unwrap()
}

fn host(kind: &str) -> String {
    namespace_of("self", kind)
}

fn helper(b: &Bridge, kind: &str) -> String {
    namespace_of(&b.helper_pid().unwrap().to_string(), kind)
}

#[test]
fn every_helper_gets_its_own_mount_and_ipc_and_the_shared_pid_and_net() {
    let mut a = load(hostile_syscalls(), &[SYSCALL6], SandboxPolicy::pure());
    let b = load(hostile_syscalls(), &[SYSCALL6], SandboxPolicy::pure());
    for kind in ["mnt", "ipc"] {
        assert_ne!(helper(&a, kind), host(kind), "{kind}: the host's");
        assert_ne!(helper(&a, kind), helper(&b, kind), "{kind}: shared");
    }
    for kind in ["pid", "net"] {
        assert_ne!(helper(&a, kind), host(kind), "{kind}: the host's");
        assert_eq!(helper(&a, kind), helper(&b, kind), "{kind}: not shared");
    }
    let host_pid = a.helper_pid().unwrap() as i64;
    let own = syscall(&mut a, SYS_GETPID, 0);
    assert_eq!(Some(own), namespaced_pid(host_pid as i32));
    assert!(
        own >= 2 && own != host_pid,
        "the helper counts itself in the shared namespace, not as its init: {own}"
    );
}

#[test]
fn a_policy_with_a_tcp_port_keeps_the_hosts_network() {
    let mut p = SandboxPolicy::preset("db-client").unwrap();
    p.network.connect_tcp.push(5432);
    let b = load(hostile_syscalls(), &[SYSCALL6], p);
    assert_eq!(helper(&b, "net"), host("net"));
    assert_ne!(helper(&b, "mnt"), host("mnt"));
}

#[test]
fn proc_is_read_only_even_without_landlock() {
    let dir = Scratch::new("ro-proc");
    let mut b = load(
        hostile_syscalls(),
        &["ffb_write_file(cstr, bytes, u64) -> i32"],
        unconfined_docker(&dir),
    );
    const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
    let before = std::fs::read(CORE_PATTERN).unwrap();
    // From outside, as the test's own root, the open works.
    std::fs::OpenOptions::new()
        .write(true)
        .open(CORE_PATTERN)
        .unwrap();
    let out = b
        .call_by_name(
            "ffb_write_file",
            &[
                Value::str(CORE_PATTERN),
                Value::bytes(&before),
                Value::U64(before.len() as u64),
            ],
        )
        .unwrap();
    assert_eq!(out.ret, Value::I32(-EROFS), "{CORE_PATTERN} opened for writing");
    assert_eq!(std::fs::read(CORE_PATTERN).unwrap(), before);
}

#[test]
fn no_pid_a_helper_can_name_is_the_hosts() {
    let mut b = load(hostile_syscalls(), &[SYSCALL6], docker_policy());
    let test_process = std::process::id() as i64;
    // pidfd_open needs no permission at all: only the namespace stops it.
    assert_eq!(syscall(&mut b, SYS_PIDFD_OPEN, test_process), -ESRCH);
    // The control: its own pid, as it counts it, opens.
    let own = syscall(&mut b, SYS_GETPID, 0);
    assert!(syscall(&mut b, SYS_PIDFD_OPEN, own) >= 0);
}

#[test]
fn without_a_tcp_grant_not_even_a_udp_datagram_leaves() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // The control: from the host's network the datagram arrives.
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"x", ("127.0.0.1", port))
        .unwrap();
    let mut buf = [0u8; 8];
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(listener.recv(&mut buf).unwrap(), 1);

    let mut b = load(
        attack_lib(),
        &["ffb_attack_udp_send(i64) -> i64"],
        docker_policy(),
    );
    let sent = i64_of(
        &b.call_by_name("ffb_attack_udp_send", &[Value::I64(port.into())])
            .unwrap()
            .ret,
    );
    assert!(sent < 0, "the helper sent a datagram: {sent}");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(listener.recv(&mut buf).is_err(), "a datagram arrived");
}
