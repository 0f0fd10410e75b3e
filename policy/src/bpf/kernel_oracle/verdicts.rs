//! Reading the kernel's verdict off a child's run, and comparing it with the
//! interpreter's word for the same call.

use super::*;

/// A syscall's result, as far as it is the same in every child: an errno, or
/// zero, or some positive number (a pid, an fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ret {
    Zero,
    Positive,
    Errno(i64),
}

impl Ret {
    pub(super) fn of(raw: i64) -> Self {
        match raw {
            0 => Ret::Zero,
            r if r > 0 => Ret::Positive,
            r => Ret::Errno(-r),
        }
    }
}

/// What happened to one call, in the kernel or by the interpreter's word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// It returned (ran, or was failed with an errno).
    Returned(Ret),
    /// The listener got a notification for it.
    Notified,
    /// The child died by this signal.
    Killed(i32),
}

/// What the kernel did with the one call `run` made under a filter.
pub(super) fn observe(run: &Run, case: &Case) -> Result<Outcome, String> {
    if libc::WIFSIGNALED(run.status) {
        return Ok(Outcome::Killed(libc::WTERMSIG(run.status)));
    }
    let &[_listener, ret] = run.words.as_slice() else {
        let why = match libc::WEXITSTATUS(run.status) {
            EXIT_SETUP => "it could not install the filter",
            EXIT_REPORT => "it could not report",
            _ => "it exited",
        };
        return Err(format!("{why}; it reported {:?}", run.words));
    };
    match run.notifications.as_slice() {
        [] => Ok(Outcome::Returned(Ret::of(ret))),
        [seen] => {
            let expected = (case.nr as i32, AUDIT_ARCH_X86_64, case.args);
            let (nr, arch, args) = (seen.nr, seen.arch, seen.args);
            if case.entry == Entry::Syscall && (nr, arch, args) != expected {
                return Err(format!(
                    "notified of nr {nr:#x} arch {arch:#x} args {args:#x?}, not of this call"
                ));
            }
            if ret != -i64::from(NOTIFIED_ERRNO) {
                return Err(format!(
                    "notified, but the call returned {ret}, not the answer"
                ));
            }
            Ok(Outcome::Notified)
        }
        many => Err(format!("{} notifications for one call", many.len())),
    }
}

/// What the kernel does, by the action `word` the program returned, to a
/// call that returns `unfiltered` with no filter.
pub(super) fn expected(word: u32, unfiltered: Ret) -> Outcome {
    let data = word & SECCOMP_RET_DATA;
    match word & SECCOMP_RET_ACTION_FULL {
        SECCOMP_RET_ALLOW | SECCOMP_RET_LOG => Outcome::Returned(unfiltered),
        SECCOMP_RET_ERRNO => Outcome::Returned(Ret::of(-i64::from(data.min(MAX_ERRNO)))),
        SECCOMP_RET_USER_NOTIF => Outcome::Notified,
        SECCOMP_RET_KILL_PROCESS | SECCOMP_RET_KILL_THREAD | SECCOMP_RET_TRAP => {
            Outcome::Killed(libc::SIGSYS)
        }
        // TRACE with no tracer: the call fails with ENOSYS.
        _ => Outcome::Returned(Ret::Errno(libc::ENOSYS.into())),
    }
}

/// How many cases the interpreter sent down each route.
#[derive(Debug, Default)]
pub(super) struct Routes {
    pub(super) allow: usize,
    pub(super) log: usize,
    pub(super) errno: usize,
    pub(super) notify: usize,
    pub(super) kill: usize,
}

impl Routes {
    pub(super) fn count(&mut self, word: u32) {
        match word & SECCOMP_RET_ACTION_FULL {
            SECCOMP_RET_ALLOW => self.allow += 1,
            SECCOMP_RET_LOG => self.log += 1,
            SECCOMP_RET_ERRNO => self.errno += 1,
            SECCOMP_RET_USER_NOTIF => self.notify += 1,
            _ => self.kill += 1,
        }
    }
}

pub(super) fn interpret(filter: &CompiledFilter, case: &Case) -> u32 {
    interp::evaluate(filter, case.nr, &case.args)
        .unwrap_or_else(|e| panic!("the interpreter cannot run the program: {e}"))
}

/// The results of `cases` in one child with no filter, in order.
pub(super) fn unfiltered(cases: &[Case]) -> Vec<Ret> {
    let run = run_child(None, cases, CASE_TIMEOUT * 2)
        .unwrap_or_else(|e| panic!("the unfiltered child failed: {e}"));
    if let Some(case) = cases.get(run.words.len()) {
        panic!(
            "the unfiltered child stopped at {} (status {:#x})",
            case.describe(),
            run.status
        );
    }
    run.words.into_iter().map(Ret::of).collect()
}

/// The `sock_fprog` for `instructions`, which must outlive it.
pub(super) fn program(instructions: &[libc::sock_filter]) -> libc::sock_fprog {
    libc::sock_fprog {
        len: u16::try_from(instructions.len()).expect("at most 4096 instructions"),
        // The kernel only reads through this pointer.
        filter: instructions.as_ptr().cast_mut(),
    }
}

/// What the kernel did with each case under `filter`, each in its own
/// child, beside what the case returns with no filter.
pub(super) struct KernelRuns {
    pub(super) unfiltered: Vec<Ret>,
    pub(super) outcomes: Vec<Result<Outcome, String>>,
}

pub(super) fn run_under(filter: &CompiledFilter, cases: &[Case]) -> KernelRuns {
    let instructions = filter.to_sock_filters();
    let prog = program(&instructions);
    let outcomes = cases
        .iter()
        .map(|case| {
            run_child(Some(&prog), std::slice::from_ref(case), CASE_TIMEOUT)
                .and_then(|run| observe(&run, case))
        })
        .collect();
    KernelRuns {
        unfiltered: unfiltered(cases),
        outcomes,
    }
}

/// The cases where `interpreter`'s word does not predict what the kernel
/// did, and the routes its words took.
pub(super) fn disagreements(
    runs: &KernelRuns,
    cases: &[Case],
    interpreter: impl Fn(&Case) -> u32,
) -> (Routes, Vec<String>) {
    let mut routes = Routes::default();
    let mut failures = Vec::new();
    for ((case, &unfiltered), got) in cases.iter().zip(&runs.unfiltered).zip(&runs.outcomes) {
        let word = interpreter(case);
        routes.count(word);
        let want = expected(word, unfiltered);
        if got.as_ref() != Ok(&want) {
            failures.push(format!(
                "{}: interpreter {word:#010x} means {want:?}, kernel {got:?} (unfiltered {unfiltered:?})",
                case.describe()
            ));
        }
    }
    (routes, failures)
}

/// Runs every case under `filter` in the kernel and compares with the
/// interpreter; panics with the seed on any difference.
pub(super) fn check(label: &str, seed: u64, filter: &CompiledFilter, cases: &[Case]) -> Routes {
    let runs = run_under(filter, cases);
    let (routes, failures) = disagreements(&runs, cases, |case| interpret(filter, case));
    let base = base_seed();
    assert!(
        failures.is_empty(),
        "{label}: the kernel and the interpreter disagree on {} of {} calls \
         (seed {seed:#x}; replay with FFB_ORACLE_SEED={base:#x}):\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    println!(
        "{label}: {} calls agree (seed {seed:#x}): {routes:?}",
        cases.len()
    );
    routes
}
