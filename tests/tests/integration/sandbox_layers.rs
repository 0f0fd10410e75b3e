//! The layers around seccomp, tested from the attacker's side: Landlock with
//! no paths listed, indirect signals through file owners, namespaces, running
//! as another user, and dying with the host.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ffb_loader::{Bridge, SandboxPolicy, Value};
use ffb_policy::sandbox::{Identity, Namespace};
use ffb_tests::bridge::violation;
use ffb_tests::procfs::{children_of, has_ended, namespaced_pid, PID_NAMESPACE_INIT};
use ffb_tests::{bridge_builder, ffb_bin, hostile_lib, shim_bin};

const SYS_GETPID: i64 = 39;
const SYS_GETUID: i64 = 102;
const EACCES: i32 = 13;

const SYSCALL6: &str = "ffb_syscall6(i64, i64, i64, i64, i64, i64, i64) -> i64";

fn hostile(policy: SandboxPolicy) -> Bridge {
    bridge_builder(
        hostile_lib(),
        &[
            "ffb_read_file(cstr, out[64], usize) -> i32",
            "ffb_fcntl_setown(i32, i32) -> i32",
            SYSCALL6,
            "ffb_tcp_connect(u16) -> i32",
        ],
    )
    .policy(policy)
    .load()
    .expect("loading the hostile corpus")
}

fn syscall0(b: &mut Bridge, nr: i64) -> i64 {
    let mut args = vec![Value::I64(nr)];
    args.extend((0..6).map(|_| Value::I64(0)));
    match b.call_by_name("ffb_syscall6", &args).unwrap().ret {
        Value::I64(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_preset_with_no_paths_reaches_no_file() {
    // fs-read allows read-only opens; Landlock decides which paths: none listed.
    let mut b = hostile(SandboxPolicy::preset("fs-read").unwrap());
    let out = b
        .call_by_name(
            "ffb_read_file",
            &[Value::str("/etc/passwd"), Value::Usize(64)],
        )
        .unwrap();
    assert_eq!(out.ret, Value::I32(-EACCES));
}

#[test]
fn naming_another_process_as_a_file_owner_is_a_violation() {
    // db-client allows fcntl; F_SETOWN would make the kernel signal the target.
    let mut b = hostile(SandboxPolicy::preset("db-client").unwrap());
    let me = syscall0(&mut b, SYS_GETPID) as i32;
    let out = b
        .call_by_name("ffb_fcntl_setown", &[Value::I32(1), Value::I32(me)])
        .unwrap();
    assert_eq!(out.ret, Value::I32(0), "owning its own files is fine");
    let victim = std::process::id() as i32;
    let e = b
        .call_by_name("ffb_fcntl_setown", &[Value::I32(1), Value::I32(victim)])
        .unwrap_err();
    assert_eq!(e.kind, violation("fcntl", 72), "{e}");
}

#[test]
fn namespaces_isolate_the_helper() {
    let mut p = SandboxPolicy::preset("db-client").unwrap();
    p.namespaces = vec![
        Namespace::User,
        Namespace::Pid,
        Namespace::Net,
        Namespace::Ipc,
        Namespace::Mount,
    ];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    p.network.connect_tcp.push(port);
    let mut b = hostile(p);
    assert_eq!(
        syscall0(&mut b, SYS_GETPID),
        1,
        "first process of its pid namespace"
    );
    let out = b
        .call_by_name("ffb_tcp_connect", &[Value::U16(port)])
        .unwrap();
    let Value::I32(r) = out.ret else { panic!() };
    assert!(
        r < 0,
        "an empty network namespace cannot reach the host's loopback listener, got {r}"
    );
    // Without the net namespace the same port is reachable: the failure above
    // came from the namespace, not from Landlock.
    let mut p = SandboxPolicy::preset("db-client").unwrap();
    p.network.connect_tcp.push(port);
    let mut b = hostile(p);
    let out = b
        .call_by_name("ffb_tcp_connect", &[Value::U16(port)])
        .unwrap();
    assert_eq!(out.ret, Value::I32(0));
}

#[test]
fn run_as_switches_user_and_keeps_nothing_else() {
    let mut p = SandboxPolicy::pure();
    p.run_as = Some(Identity {
        uid: 65534,
        gid: 65534,
        name: "nobody".into(),
    });
    let p = p.allow("getuid").unwrap();
    let mut b = hostile(p);
    assert_eq!(syscall0(&mut b, SYS_GETUID), 65534);
}

/// The one helper of the `ffb` process `session`: the child of its fork
/// server that is not the fork server's pid namespace init.
fn session_helper(session: i32) -> i32 {
    let servers = children_of(session);
    let helpers: Vec<i32> = servers
        .iter()
        .flat_map(|(server, _, _)| children_of(*server))
        .filter(|(_, _, comm)| comm != PID_NAMESPACE_INIT)
        .map(|(pid, _, _)| pid)
        .collect();
    assert_eq!(helpers.len(), 1, "one helper below {session}: {servers:?}");
    helpers[0]
}

/// The helper dies with the host, even when the host is killed outright.
#[test]
fn helpers_die_with_a_killed_host() {
    let mut session = Command::new(ffb_bin())
        .args(["session", "--bridge-mode", "--lib"])
        .arg(hostile_lib())
        .env("FFB_SHIM", shim_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = session.stdin.take().unwrap();
    let mut stdout = BufReader::new(session.stdout.take().unwrap());
    writeln!(
        stdin,
        r#"{{"id":1,"sig":"ffb_syscall6(i64,i64,i64,i64,i64,i64,i64) -> i64","args":[39,0,0,0,0,0,0]}}"#
    )
    .unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
    let in_namespace = reply["ret"].as_i64().expect("the helper's pid");
    // The helper counts its pid in the fork server's pid namespace; the
    // host's own count is found from outside, below the session's fork
    // server.
    let helper = session_helper(session.id() as i32);
    assert_eq!(
        namespaced_pid(helper),
        Some(in_namespace),
        "helper {helper} is the one that answered"
    );
    session.kill().unwrap();
    session.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // A zombie waiting for init to reap it is already dead.
    while !has_ended(helper) {
        assert!(
            Instant::now() < deadline,
            "helper {helper} outlived its killed host"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A soname in the host's LD_LIBRARY_PATH loads (the fork server starts with
/// it, since the dynamic loader reads it only at exec), and its directory is
/// readable under Landlock.
#[test]
fn sonames_are_found_through_the_hosts_library_path() {
    let lib = ffb_tests::fixture_lib();
    let run = |with_path: bool| {
        let mut cmd = Command::new(ffb_bin());
        cmd.args([
            "call",
            "--bridge-mode",
            "--json",
            "--lib",
            "libffb_fixture.so",
            "--sig",
            "ffb_add_i64(i64, i64) -> i64",
            "2",
            "3",
        ])
        .env("FFB_SHIM", shim_bin())
        .env_remove("LD_LIBRARY_PATH");
        if with_path {
            cmd.env("LD_LIBRARY_PATH", lib.parent().unwrap());
        }
        let out = cmd.output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(run(true)["ret"], 5);
    assert_eq!(run(false)["error"]["kind"], "load_failed");
}

/// A helper that joins the host's process group (under a policy that allows
/// setpgid) cannot then reach the host with `kill(0, ...)`: the host lets
/// kill(0) through only while the helper still leads its own group.
#[test]
fn kill_zero_from_another_process_group_is_a_violation() {
    let p = SandboxPolicy::pure().allow("setpgid").unwrap();
    let mut b = bridge_builder(hostile_lib(), &[SYSCALL6, "ffb_kill_pid(i64, i32) -> i32"])
        .policy(p.clone())
        .load()
        .unwrap();
    // A group to join: the host's is out of the helper's pid namespace, but
    // another helper's, which leads its own, is in it.
    let other = bridge_builder(hostile_lib(), &[SYSCALL6])
        .policy(p)
        .load()
        .unwrap();
    let other_group = namespaced_pid(other.helper_pid().unwrap()).expect("the other helper");
    // Signal 0 only probes: were the check missing, nothing would be hurt.
    let own = b
        .call_by_name("ffb_kill_pid", &[Value::I64(0), Value::I32(0)])
        .unwrap();
    assert_eq!(own.ret, Value::I32(0), "its own group is fine");
    let mut args = vec![Value::I64(109), Value::I64(0), Value::I64(other_group)];
    args.extend((0..4).map(|_| Value::I64(0)));
    let joined = b.call_by_name("ffb_syscall6", &args).unwrap();
    assert_eq!(joined.ret, Value::I64(0), "setpgid into the other helper's group");
    let e = b
        .call_by_name("ffb_kill_pid", &[Value::I64(0), Value::I32(0)])
        .unwrap_err();
    assert_eq!(e.kind, violation("kill", 62), "{e}");
}
