//! The host's side of the supervised routes: what it answers when the
//! compiled program hands it a syscall (a user notification).
//!
//! The answer depends on what the BPF program cannot know: whether a signal's
//! target is the helper itself, and whether the helper is still loading.

use super::floor::{
    floor_entry_for_call, is_thread_clone, loading_permits, names_value, supervised_connect_call,
    supervised_lock_call, supervised_owner_call, supervised_target, LOCK_REFUSED,
    SUPERVISED_SIGNALS, X32_SYSCALL_BIT,
};
use super::model::{Action, SandboxPolicy};
use crate::syscalls::display_name;

/// Where a notification stands in the helper's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Loading the library and resolving symbols.
    Loading,
    /// Serving calls.
    Serving,
}

/// The host's answer to a user notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the syscall run.
    Continue,
    /// Fail the syscall with this errno.
    Fail(u32),
    /// Let it run, and log it.
    Log,
    /// Kill the helper: a policy violation.
    Violation,
}

impl From<Action> for Verdict {
    /// What a rule's (or the default) action means once the host decides.
    fn from(action: Action) -> Self {
        match action {
            Action::Allow => Verdict::Continue,
            Action::Errno(e) => Verdict::Fail(e),
            Action::Log => Verdict::Log,
            Action::Kill => Verdict::Violation,
        }
    }
}

impl SandboxPolicy {
    /// The host's answer to a notification for syscall `nr` with `args`, for
    /// a helper that runs one thread (see [`Self::verdict_counting`]).
    ///
    /// `aimed_at_self(arg)` tells whether a signal's target (a pid or tid) is the
    /// helper itself; `aimed_at_self(0)` whether the helper still leads its own
    /// process group (the target of `kill(0, ...)`). Only what the compiled
    /// program routes to the listener reaches this function.
    pub fn verdict(
        &self,
        nr: i64,
        args: &[u64; 6],
        phase: Phase,
        aimed_at_self: impl Fn(i64) -> bool,
    ) -> Verdict {
        self.verdict_counting(nr, args, phase, aimed_at_self, || 1)
    }

    /// [`Self::verdict`], with `threads()` the number of threads the helper
    /// runs now: a new thread (`clone` with `CLONE_THREAD`) that the policy
    /// allows is let through while that is below [`Limits::threads`](super::Limits::threads), and
    /// fails with `EAGAIN` (what `pthread_create` reports at a real thread
    /// limit) otherwise. `threads` is only called for a new thread.
    pub fn verdict_counting(
        &self,
        nr: i64,
        args: &[u64; 6],
        phase: Phase,
        aimed_at_self: impl Fn(i64) -> bool,
        threads: impl FnOnce() -> u64,
    ) -> Verdict {
        let name = display_name(nr);
        if floor_entry_for_call(nr, args).is_some() || nr & X32_SYSCALL_BIT != 0 {
            return Verdict::Violation;
        }
        if supervised_lock_call(nr, args).is_some() {
            // The host answers these itself once it has checked the file
            // (`lock_rules_verdict`); one that reaches the verdict is refused
            // where the rules would have let it run.
            return match self.lock_rules_verdict(nr, args, phase) {
                Verdict::Continue | Verdict::Log => Verdict::Fail(LOCK_REFUSED),
                other => other,
            };
        }
        if let Some((_, _, command)) = supervised_owner_call(&name, args) {
            // F_SETOWN takes a pid (or -pgid) as an integer; the others take a
            // pointer the host could only read racily, so they are refused.
            let owner = args[2] as u32 as i32 as i64;
            let is_self = *command == libc::F_SETOWN as u64
                && (owner == 0 || aimed_at_self(owner) || aimed_at_self(-owner));
            return if is_self {
                Verdict::Continue
            } else {
                Verdict::Violation
            };
        }
        if SUPERVISED_SIGNALS.contains(&name.as_str()) {
            // kill(pid), tkill(tid), tgkill(tgid, ...), rt_(tg)sigqueueinfo(tgid, ...):
            // the target is always argument 0. kill(0, sig) is the caller's own group.
            // The target is a C int: the register's upper half means nothing.
            let target = args[0] as u32 as i32 as i64;
            // `aimed_at_self(0)` asks whether the helper's process group is
            // still only the helper (it leads it); kill(0) signals that group.
            let is_self = match name.as_str() {
                "kill" => aimed_at_self(target) || (target < 0 && aimed_at_self(-target)),
                _ => target != 0 && aimed_at_self(target),
            };
            return if is_self && target != -1 {
                Verdict::Continue
            } else {
                Verdict::Violation
            };
        }
        if let Some(target) = supervised_target(&name) {
            // Aimed at the helper itself, the policy decides below (the
            // loading route never covers these).
            if !target.is_self(args, aimed_at_self) {
                return Verdict::Violation;
            }
            return Verdict::from(self.rule_action(nr, args));
        }
        if let Some(&(_, index, mask, value)) = supervised_connect_call(&name, args) {
            // Only a rule that names the value lets it through: an allow of
            // every socket or send is not a grant of MPTCP or Fast Open.
            return self
                .rules
                .iter()
                .find(|r| r.matches(nr, args) && names_value(&r.conditions, index, mask, value))
                .map_or(Verdict::Violation, |r| Verdict::from(r.action));
        }
        if name == "connect" && self.supervises_connect() {
            // The host answers these itself, through `connect_decision`:
            // one that reaches the verdict was not, and must not run.
            return Verdict::Violation;
        }
        if is_thread_clone(nr, args) {
            return match Verdict::from(self.rule_action(nr, args)) {
                v @ (Verdict::Continue | Verdict::Log) => {
                    if threads() < self.limits.threads {
                        v
                    } else {
                        Verdict::Fail(libc::EAGAIN as u32)
                    }
                }
                refused => refused,
            };
        }
        if phase == Phase::Loading && loading_permits(&name, args) {
            return Verdict::Continue;
        }
        // An explicit rule may have decided (e.g. an errno rule) before the loading
        // route; otherwise the default action applies.
        Verdict::from(self.rule_action(nr, args))
    }

    /// For a lock-setting call
    /// ([`supervised_lock_call`](super::supervised_lock_call)): what the
    /// policy says before the host looks at the file, as the program would
    /// without the lock route: the first matching rule, else while loading
    /// the loading route, else the default. Only `Continue` or `Log` lets
    /// the host go on to check that the file lies within a write grant.
    pub fn lock_rules_verdict(&self, nr: i64, args: &[u64; 6], phase: Phase) -> Verdict {
        if let Some(rule) = self.rules.iter().find(|r| r.matches(nr, args)) {
            return Verdict::from(rule.action);
        }
        if phase == Phase::Loading && loading_permits(&display_name(nr), args) {
            return Verdict::Continue;
        }
        Verdict::from(self.default_action)
    }

    /// The action of the first rule that matches, or the default.
    fn rule_action(&self, nr: i64, args: &[u64; 6]) -> Action {
        self.rules
            .iter()
            .find(|r| r.matches(nr, args))
            .map_or(self.default_action, |r| r.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{SECCOMP_RET_ALLOW, SECCOMP_RET_USER_NOTIF};
    use crate::sandbox::floor::{FIOSETOWN, F_SETOWN_EX};
    use crate::test_support::{args, nr, run};

    use Phase::{Loading, Serving};
    use Verdict::{Continue, Violation};

    /// Checks the verdict on each `(syscall, args, phase, expected)`.
    fn expect(
        p: &SandboxPolicy,
        aimed_at_self: impl Fn(i64) -> bool + Copy,
        cases: &[(&str, [u64; 6], Phase, Verdict)],
    ) {
        for (name, args, phase, expected) in cases {
            assert_eq!(
                p.verdict(nr(name), args, *phase, aimed_at_self),
                *expected,
                "{name}{args:?} while {phase:?}"
            );
        }
    }

    #[test]
    fn exec_mappings_are_not_allowed_after_loading() {
        let p = SandboxPolicy::pure();
        let f = p.compile().unwrap();
        let rw = args(0, 4096, (libc::PROT_READ | libc::PROT_WRITE) as u64);
        let rx = args(0, 4096, (libc::PROT_READ | libc::PROT_EXEC) as u64);
        assert_eq!(run(&f, nr("mmap"), &rw), SECCOMP_RET_ALLOW);
        assert_eq!(run(&f, nr("mmap"), &rx), SECCOMP_RET_USER_NOTIF);
        expect(
            &p,
            |_| false,
            &[
                ("mmap", rx, Loading, Continue),
                ("mmap", rx, Serving, Violation),
            ],
        );
    }

    #[test]
    fn loading_may_only_open_for_reading() {
        let read = args(0, 0, (libc::O_RDONLY | libc::O_CLOEXEC) as u64);
        let write = args(0, 0, libc::O_WRONLY as u64);
        expect(
            &SandboxPolicy::pure(),
            |_| false,
            &[
                ("openat", read, Loading, Continue),
                ("openat", write, Loading, Violation),
                ("openat", read, Serving, Violation),
            ],
        );
    }

    #[test]
    fn signals_pass_only_when_aimed_at_the_helper() {
        let p = SandboxPolicy::pure();
        let me = 4242;
        let at = |t: i64| args(t as u64, libc::SIGABRT as u64, 0);
        expect(
            &p,
            |t| t == me || t == 0,
            &[
                ("tgkill", at(me), Serving, Continue),
                ("kill", at(0), Serving, Continue),
                ("kill", at(1), Serving, Violation),
                ("kill", at(-1), Serving, Violation),
                ("tgkill", at(7), Serving, Violation),
            ],
        );
        // A helper that joined another process group no longer owns kill(0).
        expect(&p, |t| t == me, &[("kill", at(0), Serving, Violation)]);
    }

    #[test]
    fn calls_aimed_at_another_process_are_violations_whatever_the_rules() {
        let me = 4242;
        let open = SandboxPolicy::pure()
            .allow("prlimit64")
            .and_then(|p| p.allow("setpriority"))
            .and_then(|p| p.allow("sched_setaffinity"))
            .unwrap();
        expect(
            &open,
            |t| t == me,
            &[
                ("prlimit64", args(1, 0, 0x1000), Serving, Violation),
                ("prlimit64", args(me as u64, 0, 0x1000), Serving, Continue),
                ("prlimit64", args(0, 0, 0x1000), Loading, Continue),
                ("setpriority", args(0, me as u64, 5), Serving, Continue),
                ("setpriority", args(0, 1, 5), Serving, Violation),
                ("setpriority", args(1, 0, 5), Serving, Violation),
                ("sched_setaffinity", args(7, 8, 0x1000), Serving, Violation),
                ("ioprio_set", args(1, 0, 0), Serving, Violation),
            ],
        );
        // Aimed at itself, the policy decides: pure allows only getrlimit.
        expect(
            &SandboxPolicy::pure(),
            |t| t == me,
            &[("prlimit64", args(me as u64, 0, 0x1000), Serving, Violation)],
        );
    }

    #[test]
    fn connections_without_connect_pass_only_when_named() {
        let stream = libc::SOCK_STREAM as u64;
        let mptcp = args(libc::AF_INET as u64, stream, 262);
        let fastopen = [3, 0, 1, 0x2000_0000, 0, 0];
        let broad = SandboxPolicy::pure()
            .allow("socket")
            .and_then(|p| p.allow("sendto"))
            .unwrap();
        expect(
            &broad,
            |_| false,
            &[
                ("socket", mptcp, Serving, Violation),
                ("sendto", fastopen, Serving, Violation),
            ],
        );
        let named = broad
            .with_rule(
                crate::sandbox::SyscallRule::new(
                    "socket",
                    Action::Allow,
                    vec![crate::sandbox::ArgCondition::new(
                        2,
                        crate::sandbox::CmpOp::Eq,
                        262,
                    )],
                )
                .unwrap(),
            )
            .unwrap();
        expect(&named, |_| false, &[("socket", mptcp, Serving, Continue)]);
    }

    #[test]
    fn naming_another_process_as_a_file_owner_is_a_violation() {
        let p = SandboxPolicy::pure();
        let me = 4242;
        let setown = |owner: i64| args(3, libc::F_SETOWN as u64, owner as u64);
        // The kernel reads the command's low 32 bits only.
        let disguised = args(3, (1 << 32) | libc::F_SETOWN as u64, 1);
        expect(
            &p,
            |t| t == me,
            &[
                ("fcntl", setown(1), Loading, Violation),
                ("fcntl", setown(me), Serving, Continue),
                ("fcntl", setown(-me), Serving, Continue),
                ("fcntl", args(3, F_SETOWN_EX, 0x1000), Loading, Violation),
                ("ioctl", args(3, FIOSETOWN, 0x1000), Serving, Violation),
                ("fcntl", disguised, Serving, Violation),
            ],
        );
        let f = p.compile().unwrap();
        assert_eq!(run(&f, nr("fcntl"), &setown(1)), SECCOMP_RET_USER_NOTIF);
        // Even a policy that allows every fcntl keeps the owner commands supervised.
        let open = SandboxPolicy::pure()
            .allow("fcntl")
            .unwrap()
            .compile()
            .unwrap();
        assert_eq!(run(&open, nr("fcntl"), &setown(1)), SECCOMP_RET_USER_NOTIF);
        assert_eq!(run(&open, nr("fcntl"), &disguised), SECCOMP_RET_USER_NOTIF);
        let getfl = args(3, libc::F_GETFL as u64, 0);
        assert_eq!(run(&open, nr("fcntl"), &getfl), SECCOMP_RET_ALLOW);
    }
}
