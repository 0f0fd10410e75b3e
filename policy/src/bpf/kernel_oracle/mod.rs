//! The kernel is the oracle: compiled filters installed in real processes,
//! their verdicts compared with the interpreter's.
//!
//! Every test that reads a verdict off [`interp::evaluate`] trusts that it
//! runs a program the way the kernel does. These tests check that trust. For
//! each policy they generate syscalls from a seeded PRNG, and for each call
//! they fork a child that installs the compiled program (with a
//! user-notification listener), makes the call and reports its raw result. The
//! parent takes the listener with `pidfd_getfd`, answers every notification
//! with [`NOTIFIED_ERRNO`], and classifies what the kernel did:
//!
//! | the kernel | the interpreter's word |
//! |---|---|
//! | ran the call: the same result as a child with no filter | `ALLOW`, `LOG` |
//! | failed it with errno `E` (capped at 4095, as the kernel does) | `ERRNO \| E` |
//! | sent the listener a notification for this very call | `USER_NOTIF` |
//! | killed the child with `SIGSYS` | `KILL_PROCESS` |
//!
//! A verdict is compared as far as the call can tell: a result is an errno,
//! zero or positive (pids and fds differ from child to child), so `ERRNO`
//! with the errno a call fails with anyway, or `ERRNO 0` for a call that
//! returns 0, passes for `ALLOW`. Generated policies use errnos no syscall
//! returns (4001 and up) to keep that rare.
//!
//! A policy's `kill` compiles to `USER_NOTIF` (the host kills, and says
//! why), so a compiled policy returns `KILL_PROCESS` only to a call through
//! another architecture's entry, which the interpreter does not model: the
//! kernel alone is checked there (`int 0x80`), and a hand-built program checks
//! the kill route of the comparison itself.
//!
//! Every generated call is harmless if the kernel lets it run: bad fds, a path
//! that does not exist, flags, lengths and addresses the kernel refuses before
//! it does anything, signal 0. The generator's seed is printed with every
//! failure; `FFB_ORACLE_SEED=<seed>` replays it.
//!
//! The test process is multithreaded, so a child may only make raw syscalls:
//! everything it touches is built before `fork`, and it reports through a pipe
//! with `write` alone (every base policy allows `write` and `exit_group`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::interp;
use super::{
    AUDIT_ARCH_X86_64, JMP_JEQ_K, LD_W_ABS, RET_K, SECCOMP_DATA_NR, SECCOMP_RET_ACTION_FULL,
    SECCOMP_RET_ALLOW, SECCOMP_RET_DATA, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS,
    SECCOMP_RET_KILL_THREAD, SECCOMP_RET_LOG, SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF,
};
use crate::sandbox::{
    Action, ArgCondition, CmpOp, CompiledFilter, SandboxPolicy, SyscallRule, PRESETS,
    X32_SYSCALL_BIT,
};
use crate::syscalls::{display_name, number_of};

/// The errno the parent answers every notification with: no syscall below
/// returns it on its own, so a child that saw it was notified.
const NOTIFIED_ERRNO: i32 = libc::ENOTRECOVERABLE;
/// The kernel caps an `ERRNO` action's data at `MAX_ERRNO`.
const MAX_ERRNO: u32 = 4095;
/// A child that runs longer than this is killed and the case fails.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Exit codes of a child that could not do its job.
const EXIT_SETUP: i32 = 3;
const EXIT_REPORT: i32 = 4;
/// getpid through the 32-bit `int 0x80` entry.
const I386_GETPID: i64 = 20;
/// The seed when `FFB_ORACLE_SEED` is not set.
const DEFAULT_SEED: u64 = 0x0ffb_5eed;
/// A path that does not exist, so that opening it fails whatever the flags.
static MISSING: &[u8] = b"/nonexistent-ffb-kernel-oracle/x\0";

mod cases;
mod child;
mod verdicts;

use cases::*;
use child::*;
use verdicts::*;

/// The route cases and `count` calls generated from `seed`.
fn cases_for(seed: u64, count: usize) -> Vec<Case> {
    let mut cases = route_cases();
    cases.extend(generate(&mut Prng::new(seed), count));
    cases
}

/// Compiles `policy` and checks the route cases and `count` generated calls.
fn check_policy(label: &str, policy: &SandboxPolicy, count: usize) -> Routes {
    let seed = seed_for(label);
    let filter = policy
        .compile()
        .unwrap_or_else(|e| panic!("{label} does not compile: {e}"));
    check(label, seed, &filter, &cases_for(seed, count))
}

/// A rule: syscall, action, and at most one condition `(index, op, value)`.
type RuleRow = (&'static str, Action, Option<(u8, CmpOp, u64)>);

/// Adds one rule per row.
fn with_rules(mut policy: SandboxPolicy, rows: &[RuleRow]) -> SandboxPolicy {
    for &(name, action, condition) in rows {
        let conditions = condition
            .map(|(index, op, value)| ArgCondition::new(index, op, value))
            .into_iter()
            .collect();
        let rule = SyscallRule::new(name, action, conditions).expect("a real syscall");
        policy = policy.with_rule(rule).expect("no floor syscall");
    }
    policy
}

/// pure, with errno, log and allow rules on argument conditions of every
/// comparison, some behind the supervised routes (which must still win),
/// errno 0 (success without the call) and errno 5000 (the kernel caps it).
fn conditions_policy() -> SandboxPolicy {
    let accmode = CmpOp::MaskedEq(libc::O_ACCMODE as u64);
    let creat = libc::O_CREAT as u64;
    #[rustfmt::skip]
    let rows = [
        ("openat", Action::Errno(4001), Some((2, accmode, libc::O_WRONLY as u64))),
        ("openat", Action::Log, Some((2, CmpOp::MaskedEq(creat), creat))),
        ("openat", Action::Allow, Some((2, accmode, libc::O_RDONLY as u64))),
        ("socket", Action::Errno(4002), Some((0, CmpOp::Eq, libc::AF_INET6 as u64))),
        ("socket", Action::Allow, Some((0, CmpOp::Lt, 3))),
        ("prctl", Action::Errno(5000), Some((0, CmpOp::Eq, 0x7fff_0002))),
        ("prctl", Action::Errno(0), Some((0, CmpOp::Ge, 0x7fff_0100))),
        ("fcntl", Action::Errno(4003), Some((1, CmpOp::Eq, libc::F_GETFD as u64))),
        ("fcntl", Action::Errno(4004), Some((1, CmpOp::Eq, libc::F_SETOWN as u64))),
        ("kill", Action::Errno(4005), None),
        ("ioctl", Action::Errno(4006), Some((1, CmpOp::Gt, 0x8000))),
        ("connect", Action::Errno(4007), Some((2, CmpOp::Le, 8))),
        ("sendto", Action::Log, Some((2, CmpOp::Ne, 8))),
        ("prlimit64", Action::Errno(4008), Some((0, CmpOp::Ne, 0))),
        ("lseek", Action::Errno(4009), None),
        ("dup", Action::Kill, None),
    ];
    with_rules(SandboxPolicy::pure(), &rows)
}

/// A random policy: preset `k` (in turn), a random default, and rules on the templates'
/// arguments with values from their pools (so that calls hit both ways).
fn generated_policy(rng: &mut Prng, k: u32) -> SandboxPolicy {
    let base = PRESETS[k as usize % PRESETS.len()];
    let mut policy = SandboxPolicy::preset(base).expect("a preset");
    policy.default_action = rng.pick(&[Action::Kill, Action::Errno(4100 + k), Action::Log]);
    for j in 0..3 + rng.below(8) as u32 {
        let tpl = &TEMPLATES[rng.below(TEMPLATES.len())];
        let action = match rng.below(5) {
            0 => Action::Allow,
            1 => Action::Log,
            2 => Action::Kill,
            3 => Action::Errno(rng.pick(&[0, 4095, 4096])),
            _ => Action::Errno(4200 + j),
        };
        let conditions = (0..rng.below(3))
            .filter_map(|_| condition(rng, tpl))
            .collect();
        let Ok(rule) = SyscallRule::new(tpl.name, action, conditions) else {
            continue;
        };
        if let Ok(p) = policy.clone().with_rule(rule) {
            policy = p;
        }
    }
    policy
}

fn condition(rng: &mut Prng, tpl: &Template) -> Option<ArgCondition> {
    let index = rng.below(6);
    if tpl.pools[index].is_empty() || tpl.path == Some(index) {
        return None;
    }
    let value = draw_arg(rng, tpl, index);
    let op = match rng.below(7) {
        0 => CmpOp::Eq,
        1 => CmpOp::Ne,
        2 => CmpOp::Lt,
        3 => CmpOp::Le,
        4 => CmpOp::Gt,
        5 => CmpOp::Ge,
        _ => {
            let mask = rng.pick(&[0xffff_ffff, u64::MAX, 0xff, 0xffff_ffff_0000_0000, value]);
            return Some(ArgCondition::new(
                index as u8,
                CmpOp::MaskedEq(mask),
                value & mask,
            ));
        }
    };
    Some(ArgCondition::new(index as u8, op, value))
}

/// Checks a preset, which must send calls down its allow, errno (clone3)
/// and notification routes.
fn check_preset(name: &str, count: usize) {
    let policy = SandboxPolicy::preset(name).expect("a preset");
    let routes = check_policy(name, &policy, count);
    assert!(
        routes.allow > 0 && routes.errno > 0 && routes.notify > 0,
        "{routes:?}"
    );
}

#[test]
fn pure_agrees_with_the_kernel() {
    check_preset("pure", 150);
}

#[test]
fn fs_read_agrees_with_the_kernel() {
    check_preset("fs-read", 120);
}

#[test]
fn db_client_agrees_with_the_kernel() {
    check_preset("db-client", 120);
}

#[test]
fn argument_conditions_agree_with_the_kernel() {
    let routes = check_policy("conditions", &conditions_policy(), 200);
    let Routes {
        allow,
        log,
        errno,
        notify,
        ..
    } = routes;
    assert!(
        allow > 0 && log > 0 && errno > 0 && notify > 0,
        "{routes:?}"
    );
}

#[test]
fn errno_and_log_defaults_agree_with_the_kernel() {
    let mut errno_default = with_rules(
        SandboxPolicy::fs_read(),
        &[
            ("socket", Action::Log, None),
            ("prctl", Action::Log, Some((0, CmpOp::Lt, 0x7fff_0100))),
            ("sendto", Action::Kill, None),
        ],
    );
    errno_default.default_action = Action::Errno(4011);
    let routes = check_policy("errno-default", &errno_default, 100);
    assert!(routes.errno > 0 && routes.log > 0, "{routes:?}");

    let mut log_default = with_rules(
        SandboxPolicy::pure(),
        &[(
            "prctl",
            Action::Errno(4012),
            Some((0, CmpOp::Gt, 0x7fff_0001)),
        )],
    );
    log_default.default_action = Action::Log;
    let routes = check_policy("log-default", &log_default, 100);
    assert!(routes.errno > 0 && routes.log > 0, "{routes:?}");
}

#[test]
fn generated_policies_agree_with_the_kernel() {
    let seed = seed_for("generated");
    let mut rng = Prng::new(seed);
    let mut total = Routes::default();
    for k in 0..4 {
        let policy = generated_policy(&mut rng, k);
        let label = format!(
            "generated-{k} ({} rules on {})",
            policy.rules.len(),
            policy.name
        );
        let routes = check_policy(&label, &policy, 50);
        total.allow += routes.allow;
        total.log += routes.log;
        total.errno += routes.errno;
        total.notify += routes.notify;
    }
    assert!(
        total.allow > 0 && total.errno > 0 && total.notify > 0,
        "{total:?}"
    );
}

#[test]
fn policy_file_fixtures_agree_with_the_kernel() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/policies");
    for file in [
        "minimal.toml",
        "db-client.toml",
        "risky.toml",
        "docker-small.json",
        "seccompiler.json",
    ] {
        let path = format!("{dir}/{file}");
        let policy = crate::source::load_policy(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        check_policy(file, &policy, 40);
    }
}

#[test]
fn supervised_routes_win_over_allow_rules_in_the_kernel() {
    // Every syscall of the issue-9 routes allowed outright: the floor's
    // commands, calls aimed at other processes, connections without connect()
    // and new threads must still reach the listener.
    let names = [
        "prctl",
        "ioctl",
        "fcntl",
        "flock",
        "prlimit64",
        "setpriority",
        "ioprio_set",
        "sched_setaffinity",
        "sched_setscheduler",
        "sched_setparam",
        "sched_setattr",
        "migrate_pages",
        "move_pages",
        "socket",
        "sendto",
        "sendmsg",
        "sendmmsg",
    ];
    let policy = names
        .iter()
        .try_fold(SandboxPolicy::pure(), |p, n| p.allow(n))
        .expect("no floor syscall");
    let routes = check_policy("supervised-routes", &policy, 150);
    assert!(routes.allow > 0 && routes.notify > 0, "{routes:?}");
    // The interpreter's own word for a few: the kernel agreed with it above.
    let filter = policy.compile().expect("compiles");
    let word = |name: &str, args: [u64; 6]| interp::evaluate(&filter, nr_of(name), &args).unwrap();
    let stream = libc::SOCK_STREAM as u64;
    for (name, args) in [
        ("prctl", [1 << 32 | 22, 0, 0, 0, 0, 0]),
        ("ioctl", [0, libc::TIOCSTI | 1 << 32, 0, 0, 0, 0]),
        ("fcntl", [0, libc::F_SETLEASE as u64, 0, 0, 0, 0]),
        ("fcntl", [0, 1 << 32 | libc::F_SETLK as u64, 0, 0, 0, 0]),
        ("flock", [0, libc::LOCK_SH as u64, 0, 0, 0, 0]),
        ("prlimit64", [1, 0, 0, 0, 0, 0]),
        ("setpriority", [1, 0, 0, 0, 0, 0]),
        ("ioprio_set", [1, 7, 0, 0, 0, 0]),
        ("socket", [2, stream, 262, 0, 0, 0]),
        ("sendto", [3, 0, 0, 0x2000_0000, 0, 0]),
        ("clone", [libc::CLONE_THREAD as u64, 0, 0, 0, 0, 0]),
    ] {
        assert_eq!(word(name, args), SECCOMP_RET_USER_NOTIF, "{name}{args:?}");
    }
    for (name, args) in [
        ("prctl", [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0]),
        ("flock", [0, libc::LOCK_UN as u64, 0, 0, 0, 0]),
        ("fcntl", [0, libc::F_GETLK as u64, 0, 0, 0, 0]),
        ("prlimit64", [1 << 32, 0, 0, 0, 0, 0]),
        ("setpriority", [0, 0, 0, 0, 0, 0]),
        ("ioprio_set", [1, 0, 0, 0, 0, 0]),
        ("socket", [2, stream, 6, 0, 0, 0]),
        ("sendto", [3, 0, 0, 0x40, 0, 0]),
    ] {
        assert_eq!(word(name, args), SECCOMP_RET_ALLOW, "{name}{args:?}");
    }
}

#[test]
fn calls_through_the_32_bit_entry_die_by_sigsys() {
    // The interpreter models only the x86_64 entry, so here the kernel alone
    // speaks: every program's first check kills a foreign architecture.
    let int80 = Case {
        nr: I386_GETPID,
        args: [0; 6],
        entry: Entry::Int80,
    };
    let unfiltered = run_child(None, &[int80], CASE_TIMEOUT).expect("an unfiltered child");
    assert!(
        matches!(unfiltered.words.as_slice(), [pid] if *pid > 0),
        "int 0x80 getpid does not work here: {:?}, status {:#x}",
        unfiltered.words,
        unfiltered.status
    );
    let policies = PRESETS
        .iter()
        .map(|name| SandboxPolicy::preset(name).expect("a preset"))
        .chain([conditions_policy()]);
    for policy in policies {
        let instructions = policy.compile().expect("compiles").to_sock_filters();
        let prog = program(&instructions);
        let run = run_child(Some(&prog), &[int80], CASE_TIMEOUT).expect("a filtered child");
        assert_eq!(
            observe(&run, &int80),
            Ok(Outcome::Killed(libc::SIGSYS)),
            "{}: int 0x80",
            policy.name
        );
    }
}

#[test]
fn the_harness_tells_every_route_apart() {
    // A hand-built program: KILL_PROCESS for getpid, ERRNO 4001 for gettid,
    // USER_NOTIF for getppid, ALLOW for the rest.
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        u64::from(code) | u64::from(jt) << 16 | u64::from(jf) << 24 | u64::from(k) << 32
    };
    let mut instructions = vec![insn(LD_W_ABS, 0, 0, SECCOMP_DATA_NR)];
    for (name, ret) in [
        ("getpid", SECCOMP_RET_KILL_PROCESS),
        ("gettid", SECCOMP_RET_ERRNO | 4001),
        ("getppid", SECCOMP_RET_USER_NOTIF),
    ] {
        instructions.push(insn(JMP_JEQ_K, 0, 1, nr_of(name) as u32));
        instructions.push(insn(RET_K, 0, 0, ret));
    }
    instructions.push(insn(RET_K, 0, 0, SECCOMP_RET_ALLOW));
    let filter = CompiledFilter { instructions };
    let cases: Vec<Case> = ["getpid", "gettid", "getppid", "getuid"]
        .iter()
        .map(|name| Case {
            nr: nr_of(name),
            args: [0; 6],
            entry: Entry::Syscall,
        })
        .collect();
    let routes = check("hand-built", 0, &filter, &cases);
    assert_eq!(
        (routes.kill, routes.errno, routes.notify, routes.allow),
        (1, 1, 1, 1)
    );

    // A wrong expectation must not pass: each outcome differs from the others.
    let runs = run_under(&filter, &cases);
    for wrong in [
        SECCOMP_RET_ALLOW,
        SECCOMP_RET_ERRNO | 4001,
        SECCOMP_RET_ERRNO | 4002,
        SECCOMP_RET_USER_NOTIF,
        SECCOMP_RET_KILL_PROCESS,
    ] {
        let (_, failures) = disagreements(&runs, &cases, |_| wrong);
        let fits = cases
            .iter()
            .filter(|c| interpret(&filter, c) == wrong)
            .count();
        assert_eq!(
            failures.len(),
            cases.len() - fits,
            "the word {wrong:#x} passes where it is wrong: {failures:#?}"
        );
    }
}

#[test]
fn a_wrong_interpreter_is_caught() {
    // Interpreters with the mistakes a BPF backend is likely to make: the
    // argument halves swapped, the upper halves ignored, the x32 bit ignored.
    let seed = seed_for("wrong");
    let filter = conditions_policy().compile().expect("compiles");
    let cases = cases_for(seed, 60);
    let runs = run_under(&filter, &cases);
    let (_, right) = disagreements(&runs, &cases, |case| interpret(&filter, case));
    assert_eq!(right, Vec::<String>::new(), "seed {seed:#x}");
    let run = |nr: i64, args: [u64; 6]| {
        interp::evaluate(&filter, nr, &args).expect("the interpreter runs the program")
    };
    type Mutant<'a> = &'a dyn Fn(&Case) -> u32;
    let mutants: [(&str, Mutant); 3] = [
        ("halves swapped", &|c| {
            run(c.nr, c.args.map(|a| a.rotate_left(32)))
        }),
        ("upper halves ignored", &|c| {
            run(c.nr, c.args.map(|a| a & 0xffff_ffff))
        }),
        ("x32 bit ignored", &|c| run(c.nr & !X32_SYSCALL_BIT, c.args)),
    ];
    for (mistake, mutant) in mutants {
        let (_, failures) = disagreements(&runs, &cases, mutant);
        assert!(
            !failures.is_empty(),
            "an interpreter with its {mistake} passes (seed {seed:#x})"
        );
    }
}
