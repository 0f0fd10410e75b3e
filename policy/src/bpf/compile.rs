//! [`SandboxPolicy::compile`]: the routes as seccompiler segments, chained
//! into one program behind ffb's own prelude.
//!
//! seccompiler compiles a filter with one match action and one mismatch
//! action. Each route is one such filter, whose mismatch action is a marker
//! that becomes a jump to the next segment; the last segment falls through to
//! the policy's default.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::{
    AUDIT_ARCH_X86_64, BPF_MAX_INSNS, JMP_JA, JMP_JEQ_K, JMP_JSET_K, LD_W_ABS, RET_K,
    SECCOMP_DATA_ARCH, SECCOMP_DATA_NR, SECCOMP_RET_ACTION_FULL, SECCOMP_RET_ALLOW,
    SECCOMP_RET_DATA, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_LOG,
    SECCOMP_RET_TRACE, SECCOMP_RET_USER_NOTIF,
};
use crate::sandbox::{
    Action, ArgCondition, CmpOp, CompiledFilter, PolicyError, SandboxPolicy, Target, FLOOR,
    LOADING_SYSCALLS, SUPERVISED_CONNECTS, SUPERVISED_LOCKS, SUPERVISED_OWNERS, SUPERVISED_SIGNALS,
    SUPERVISED_TARGETS, X32_SYSCALL_BIT,
};
use crate::syscalls::number_of;

/// Placeholder actions: seccompiler has no user-notification action and no
/// "continue with the next segment", so segments are compiled with these
/// TRACE values and patched afterwards. No policy can ask for TRACE.
const MARK_NOTIFY: u32 = SECCOMP_RET_TRACE | 0xfeed;
const MARK_NEXT_SEGMENT: u32 = SECCOMP_RET_TRACE | 0xfee1;

/// One route: the rules seccompiler matches, by syscall number, and the
/// action word for a match.
type Segment = (BTreeMap<i64, Vec<SeccompRule>>, u32);

impl SandboxPolicy {
    /// Compiles the policy, with the floor and the supervised routes, to one BPF program.
    pub fn compile(&self) -> Result<CompiledFilter, PolicyError> {
        if self.default_action == Action::Allow {
            return Err(PolicyError::Compile(
                "a policy must deny by default: its default action cannot be allow".into(),
            ));
        }
        let mut segments: Vec<Segment> = Vec::new();

        // 1. The floor and the supervised routes go to the host, whatever the rules say.
        let mut notify = BTreeMap::new();
        for entry in FLOOR {
            let conditions = entry.conditions();
            add_rule(&mut notify, lookup(entry.syscall), &conditions)?;
        }
        for name in SUPERVISED_SIGNALS {
            add_rule(&mut notify, lookup(name), &[])?;
        }
        for (name, index, command) in SUPERVISED_OWNERS {
            // The kernel reads the command as a 32-bit int: whatever the
            // register's upper half holds, the low half decides.
            add_rule(
                &mut notify,
                lookup(name),
                &[ArgCondition::new(
                    *index,
                    CmpOp::MaskedEq(0xffff_ffff),
                    *command,
                )],
            )?;
        }
        // Calls aimed at a process: unless they aim at the caller (pid 0), the
        // host decides. Each is an int, so the upper half does not count.
        for (name, target) in SUPERVISED_TARGETS {
            let nr = lookup(name);
            let not = |index: u8, value: u64| {
                SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, value)
                    .and_then(|c| SeccompRule::new(vec![c]))
                    .map_err(compile_error)
            };
            let rules = match target {
                Target::Pid(index) => vec![not(*index, 0)?],
                Target::Which(process) => vec![not(0, *process)?, not(1, 0)?],
            };
            match notify.get_mut(&nr) {
                // An unconditional entry (none today) already covers them.
                Some(existing) if existing.is_empty() => {}
                Some(existing) => existing.extend(rules),
                None => {
                    notify.insert(nr, rules);
                }
            }
        }
        // Connections without connect(): MPTCP and SCTP sockets, Fast Open sends.
        for (name, index, mask, value) in SUPERVISED_CONNECTS {
            let condition = ArgCondition::new(*index, CmpOp::MaskedEq(*mask), *value);
            add_rule(&mut notify, lookup(name), &[condition])?;
        }
        // Locks: a read lock needs only a readable fd, so the host checks
        // the file against the write grants, whatever the rules allow.
        for (name, index, mask, value) in SUPERVISED_LOCKS {
            let condition = ArgCondition::new(*index, CmpOp::MaskedEq(*mask), *value);
            add_rule(&mut notify, lookup(name), &[condition])?;
        }
        // With a unix socket granted, the host makes every connect itself
        // (`SandboxPolicy::connect_decision`): no kernel mechanism bounds a
        // unix connect by its path.
        if self.supervises_connect() {
            add_rule(&mut notify, lookup("connect"), &[])?;
        }
        // Every new thread too, so that the host can count them: with the
        // floor's processes, that is every clone.
        add_rule(&mut notify, lookup("clone"), &[])?;
        segments.push((notify, MARK_NOTIFY));

        // 2. clone3 fails with ENOSYS so glibc falls back to clone, where flags can be checked.
        let mut enosys = BTreeMap::new();
        add_rule(&mut enosys, lookup("clone3"), &[])?;
        segments.push((enosys, SECCOMP_RET_ERRNO | libc::ENOSYS as u32));

        // 3. The policy's own rules, in order, one segment per action.
        for rule in &self.rules {
            let ret = action_ret(rule.action);
            match segments.last_mut() {
                Some((map, last)) if *last == ret => add_rule(map, rule.nr, &rule.conditions)?,
                _ => {
                    let mut map = BTreeMap::new();
                    add_rule(&mut map, rule.nr, &rule.conditions)?;
                    segments.push((map, ret));
                }
            }
        }

        // 4. What loading needs goes to the host, which allows it only while loading.
        let mut loading = BTreeMap::new();
        for name in LOADING_SYSCALLS {
            add_rule(&mut loading, lookup(name), &[])?;
        }
        segments.push((loading, MARK_NOTIFY));

        chain_segments(segments, action_ret(self.default_action))
    }
}

fn lookup(name: &str) -> i64 {
    number_of(name).unwrap_or_else(|| panic!("built-in syscall list names unknown '{name}'"))
}

/// The action word for a rule's action. `kill` goes to the host, which kills
/// the helper and names the syscall (the kernel's kill would say nothing).
fn action_ret(action: Action) -> u32 {
    match action {
        Action::Allow => SECCOMP_RET_ALLOW,
        Action::Errno(e) => SECCOMP_RET_ERRNO | (e & SECCOMP_RET_DATA),
        Action::Log => SECCOMP_RET_LOG,
        Action::Kill => MARK_NOTIFY,
    }
}

/// A condition as seccompiler's, on all 64 bits of the argument.
///
/// A `masked_eq` whose mask has no bit in the upper half (flags, and the
/// int commands of the floor and the supervised routes) tests the low half
/// alone: its upper-half test (`arg & 0 == 0`) always holds. It compiles to
/// that low-half test, an `eq` when the mask is the whole int: the same
/// test in half the instructions or fewer, and each instruction costs at
/// every spawn, when the kernel compiles the program.
fn to_seccompiler(c: &ArgCondition) -> Result<SeccompCondition, PolicyError> {
    if let CmpOp::MaskedEq(mask) = c.op {
        if mask <= 0xffff_ffff && c.value <= 0xffff_ffff {
            let op = if mask == 0xffff_ffff {
                SeccompCmpOp::Eq
            } else {
                SeccompCmpOp::MaskedEq(mask)
            };
            return SeccompCondition::new(c.index, SeccompCmpArgLen::Dword, op, c.value)
                .map_err(compile_error);
        }
    }
    let op = match c.op {
        CmpOp::Eq => SeccompCmpOp::Eq,
        CmpOp::Ne => SeccompCmpOp::Ne,
        CmpOp::Lt => SeccompCmpOp::Lt,
        CmpOp::Le => SeccompCmpOp::Le,
        CmpOp::Gt => SeccompCmpOp::Gt,
        CmpOp::Ge => SeccompCmpOp::Ge,
        CmpOp::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
    };
    SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, c.value).map_err(compile_error)
}

fn compile_error(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Compile(e.to_string())
}

fn add_rule(
    map: &mut BTreeMap<i64, Vec<SeccompRule>>,
    nr: i64,
    conditions: &[ArgCondition],
) -> Result<(), PolicyError> {
    // seccompiler reads an empty chain as "unconditional", which absorbs every
    // conditional rule for the same syscall.
    if conditions.is_empty() {
        map.insert(nr, vec![]);
        return Ok(());
    }
    if map.get(&nr).is_some_and(Vec::is_empty) {
        return Ok(());
    }
    let conditions = conditions
        .iter()
        .map(to_seccompiler)
        .collect::<Result<Vec<_>, _>>()?;
    let rule = SeccompRule::new(conditions).map_err(compile_error)?;
    map.entry(nr).or_default().push(rule);
    Ok(())
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Chains segments into one program: a segment that does not match jumps to the next.
fn chain_segments(segments: Vec<Segment>, default_ret: u32) -> Result<CompiledFilter, PolicyError> {
    let mut compiled: Vec<BpfProgram> = Vec::new();
    for (rules, ret) in segments.into_iter().filter(|(rules, _)| !rules.is_empty()) {
        let filter = SeccompFilter::new(
            rules,
            seccompiler_action(MARK_NEXT_SEGMENT),
            seccompiler_action(ret),
            TargetArch::x86_64,
        )
        .map_err(compile_error)?;
        compiled.push(BpfProgram::try_from(filter).map_err(compile_error)?);
    }
    // Before any segment: x32-ABI numbers go straight to the host, so that no
    // rule written for x86_64 numbers can be bypassed through them.
    let mut program: Vec<sock_filter> = vec![
        insn(LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        insn(JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        insn(LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
        insn(JMP_JSET_K, 0, 1, X32_SYSCALL_BIT as u32),
        insn(RET_K, 0, 0, MARK_NOTIFY),
    ];
    for segment in compiled {
        let end = program.len() + segment.len();
        for i in segment {
            let pc = program.len();
            if i.code == RET_K && i.k == MARK_NEXT_SEGMENT {
                program.push(insn(JMP_JA, 0, 0, (end - (pc + 1)) as u32));
            } else {
                program.push(i);
            }
        }
    }
    program.push(insn(RET_K, 0, 0, default_ret));
    for i in &mut program {
        if i.code == RET_K && i.k == MARK_NOTIFY {
            i.k = SECCOMP_RET_USER_NOTIF;
        }
    }
    if program.len() > BPF_MAX_INSNS {
        return Err(PolicyError::Compile(format!(
            "{} BPF instructions is more than the kernel's 4096",
            program.len()
        )));
    }
    Ok(CompiledFilter {
        instructions: program
            .into_iter()
            .map(|i| {
                u64::from(i.code)
                    | u64::from(i.jt) << 16
                    | u64::from(i.jf) << 24
                    | u64::from(i.k) << 32
            })
            .collect(),
    })
}

/// An action word as seccompiler's action, so that it compiles to the same word.
fn seccompiler_action(ret: u32) -> SeccompAction {
    let data = ret & SECCOMP_RET_DATA;
    match ret & SECCOMP_RET_ACTION_FULL {
        SECCOMP_RET_ALLOW => SeccompAction::Allow,
        SECCOMP_RET_ERRNO => SeccompAction::Errno(data),
        SECCOMP_RET_LOG => SeccompAction::Log,
        SECCOMP_RET_TRACE => SeccompAction::Trace(data),
        SECCOMP_RET_KILL_PROCESS => SeccompAction::KillProcess,
        _ => SeccompAction::KillThread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Phase, SyscallRule, Verdict};
    use crate::test_support::{nr, run, NONE};

    const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;

    #[test]
    fn pure_allows_the_call_loop_and_routes_the_rest_to_the_host() {
        let f = SandboxPolicy::pure().compile().unwrap();
        for name in [
            "read",
            "write",
            "futex",
            "exit_group",
            "getrandom",
            "munmap",
        ] {
            assert_eq!(run(&f, nr(name), &NONE), libc::SECCOMP_RET_ALLOW, "{name}");
        }
        for name in [
            "openat",
            "socket",
            "execve",
            "ptrace",
            "bpf",
            "io_uring_setup",
            "kill",
        ] {
            assert_eq!(run(&f, nr(name), &NONE), SECCOMP_RET_USER_NOTIF, "{name}");
        }
        assert_eq!(
            run(&f, nr("clone3"), &NONE),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
    }

    #[test]
    fn clone_is_allowed_only_for_threads() {
        let f = SandboxPolicy::pure().compile().unwrap();
        let thread = [CLONE_THREAD | libc::CLONE_VM as u64, 0, 0, 0, 0, 0];
        let process = [libc::SIGCHLD as u64, 0, 0, 0, 0, 0];
        // Both reach the host: a process is on the floor, a thread is counted.
        assert_eq!(run(&f, nr("clone"), &thread), SECCOMP_RET_USER_NOTIF);
        assert_eq!(run(&f, nr("clone"), &process), SECCOMP_RET_USER_NOTIF);
        let p = SandboxPolicy::pure();
        let counted =
            |n: u64| p.verdict_counting(nr("clone"), &thread, Phase::Serving, |_| false, || n);
        assert_eq!(counted(15), Verdict::Continue);
        assert_eq!(counted(16), Verdict::Fail(libc::EAGAIN as u32));
        assert_eq!(
            p.verdict(nr("clone"), &process, Phase::Loading, |_| false),
            Verdict::Violation
        );
    }

    #[test]
    fn x32_numbers_never_match_a_rule() {
        let p = SandboxPolicy::pure();
        let f = p.compile().unwrap();
        let x32_read = X32_SYSCALL_BIT; // read is 0 in the x32 table too
        assert_eq!(run(&f, x32_read, &NONE), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            p.verdict(x32_read, &NONE, Phase::Loading, |_| false),
            Verdict::Violation
        );
        let mut log = SandboxPolicy::pure();
        log.default_action = Action::Log;
        assert_eq!(
            run(&log.compile().unwrap(), x32_read | 59, &NONE),
            SECCOMP_RET_USER_NOTIF
        );
        let mut allow = SandboxPolicy::pure();
        allow.default_action = Action::Allow;
        assert!(allow.compile().is_err());
    }

    #[test]
    fn errno_rules_and_defaults_compile_to_their_actions() {
        let mut p = SandboxPolicy::pure()
            .with_rule(
                SyscallRule::new("socket", Action::Errno(libc::EACCES as u32), vec![]).unwrap(),
            )
            .unwrap();
        p.default_action = Action::Errno(libc::EPERM as u32);
        let f = p.compile().unwrap();
        assert_eq!(
            run(&f, nr("socket"), &NONE),
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
        );
        assert_eq!(
            run(&f, nr("mkdir"), &NONE),
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32
        );
        // The floor still reaches the host, whatever the default.
        assert_eq!(run(&f, nr("execve"), &NONE), SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn the_prelude_kills_other_architectures_and_sends_x32_to_the_host() {
        let f = SandboxPolicy::pure().compile().unwrap();
        let prelude: Vec<(u16, u32)> = f.to_sock_filters()[..6]
            .iter()
            .map(|i| (i.code, i.k))
            .collect();
        assert_eq!(
            prelude,
            [
                (LD_W_ABS, SECCOMP_DATA_ARCH),
                (JMP_JEQ_K, AUDIT_ARCH_X86_64),
                (RET_K, SECCOMP_RET_KILL_PROCESS),
                (LD_W_ABS, SECCOMP_DATA_NR),
                (JMP_JSET_K, X32_SYSCALL_BIT as u32),
                (RET_K, SECCOMP_RET_USER_NOTIF),
            ]
        );
        // No placeholder survives compilation.
        assert!(!f
            .to_sock_filters()
            .iter()
            .any(|i| i.code == RET_K && i.k & SECCOMP_RET_ACTION_FULL == SECCOMP_RET_TRACE));
    }
}
