//! Docker/OCI seccomp profiles (`defaultAction`, `syscalls`, ...), accepted
//! as they are, Docker's own default profile included.

use serde_json::{Map, Value};

use super::condition::{self, ArgFormat};
use super::imported::{empty_policy, push_imported, reject_allow_default};
use super::json::{self, dotted, join, opt, JsonIndex};
use crate::diagnostics::PolicyFileError;
use crate::kernel::parse_kernel_version;
use crate::sandbox::{Action, ArgCondition, CmpOp, SandboxPolicy, SyscallRule};
use crate::syscalls::number_of;

/// The Docker architecture names of the helper's (only) architecture.
const HELPER_ARCHES: &[&str] = &["amd64", "x86_64"];

/// How a Docker profile writes an argument condition.
const DOCKER_ARG: ArgFormat = ArgFormat {
    keys: &["index", "value", "valueTwo", "op"],
    value: "value",
};

/// Imports a Docker/OCI seccomp profile (`defaultAction`, `syscalls`, ...).
///
/// `includes`/`excludes` are evaluated for the helper as it runs: no
/// capabilities at all, x86_64 (Docker's `amd64`), kernel `kernel`
/// (`(major, minor)`, see [`running_kernel`](crate::kernel::running_kernel)).
/// A rule applies only when all its includes hold and none of its excludes
/// match.
///
/// Actions: `SCMP_ACT_ALLOW`; `SCMP_ACT_ERRNO` (with the rule's `errnoRet`, or
/// the profile's `defaultErrnoRet`, or EPERM); `SCMP_ACT_KILL`,
/// `SCMP_ACT_KILL_PROCESS` and `SCMP_ACT_KILL_THREAD` (all a policy violation
/// that stops the helper); `SCMP_ACT_LOG`. `SCMP_ACT_TRAP`, `SCMP_ACT_TRACE`
/// and `SCMP_ACT_NOTIFY` are rejected, as is a default that allows.
///
/// Syscall names x86_64 does not have (Docker lists other architectures' and
/// newer kernels' calls) are skipped, with one warning listing them.
///
/// ```
/// use ffb_policy::sandbox::Action;
/// use ffb_policy::source::import_docker;
/// let profile = r#"{"defaultAction": "SCMP_ACT_ERRNO",
///     "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}"#;
/// let p = import_docker(profile, "docker.json", (6, 1)).unwrap();
/// assert_eq!(p.default_action, Action::Errno(1));
/// assert_eq!(p.rules.len(), 2);
/// ```
pub fn import_docker(
    text: &str,
    path: &str,
    kernel: (u32, u32),
) -> Result<SandboxPolicy, PolicyFileError> {
    import_value(&json::parse(text, path)?, text, path, kernel)
}

/// [`import_docker`] for a profile already parsed from `text`.
pub(super) fn import_value(
    root: &Value,
    text: &str,
    path: &str,
    kernel: (u32, u32),
) -> Result<SandboxPolicy, PolicyFileError> {
    let ix = JsonIndex::new(text, path);
    let root = ix.object("", root)?;
    ix.check_keys(
        "",
        root,
        &[
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "archMap",
            "syscalls",
        ],
    )?;

    let default_errno = match opt(root, "defaultErrnoRet") {
        Some(v) => Some(ix.errno("defaultErrnoRet", v)?),
        None => None,
    };
    let default_action = docker_action(
        &ix,
        "defaultAction",
        root.get("defaultAction")
            .ok_or_else(|| ix.err("", "a Docker/OCI seccomp profile needs a \"defaultAction\""))?,
        None,
        default_errno,
    )?;
    let default_action = reject_allow_default(&ix, "defaultAction", default_action)?;
    check_architectures(&ix, root)?;

    let mut policy = empty_policy(path, default_action);
    let mut unknown: Vec<String> = Vec::new();
    let syscalls = match opt(root, "syscalls") {
        Some(v) => ix.array("syscalls", v)?,
        None => &[],
    };
    for (i, entry) in syscalls.iter().enumerate() {
        let p = join("syscalls", i);
        let Some(entry) = syscalls_entry(&ix, &p, entry, kernel, default_errno)? else {
            continue;
        };
        let impossible = entry.conditions.iter().find_map(ArgCondition::impossible);
        for name in entry.names {
            if number_of(name).is_none() {
                if !unknown.iter().any(|u| u == name) {
                    unknown.push(name.to_string());
                }
                continue;
            }
            if impossible.is_some() {
                continue; // a rule that can never match changes nothing
            }
            let rule = SyscallRule::new(name, entry.action, entry.conditions.clone())
                .map_err(|e| ix.err(&p, e.to_string()))?;
            push_imported(&mut policy, rule);
        }
    }
    if !unknown.is_empty() {
        policy.warnings.push(format!(
            "skipped {} syscall name(s) that are not x86_64 syscalls at all (other \
             architectures' or newer kernels' calls): {}",
            unknown.len(),
            unknown.join(", ")
        ));
    }
    Ok(policy)
}

/// Architectures: the helper runs x86_64 code only, and the compiled
/// filter's first instructions refuse any other audit architecture, so
/// 32-bit x86 and x32 calls are always denied whatever the profile lists.
/// `architectures` must therefore name SCMP_ARCH_X86_64 if it is given;
/// `archMap` (which tells Docker the subarchitectures of each native
/// architecture) is checked for shape and otherwise ignored, since only its
/// x86_64 entry could ever matter and that entry changes nothing.
fn check_architectures(ix: &JsonIndex, root: &Map<String, Value>) -> Result<(), PolicyFileError> {
    if let Some(arches) = opt(root, "architectures") {
        let list = ix.strings("architectures", arches)?;
        if !list.is_empty() && !list.contains(&"SCMP_ARCH_X86_64") {
            return Err(ix.err(
                "architectures",
                "'architectures' does not include SCMP_ARCH_X86_64, the only architecture the helper runs",
            ));
        }
    }
    if let Some(map) = opt(root, "archMap") {
        for (i, entry) in ix.array("archMap", map)?.iter().enumerate() {
            let p = join("archMap", i);
            let entry = ix.object(&p, entry)?;
            ix.check_keys(&p, entry, &["architecture", "subArchitectures"])?;
            if let Some(a) = opt(entry, "architecture") {
                ix.str(&join(&p, "architecture"), a)?;
            }
            if let Some(s) = opt(entry, "subArchitectures") {
                ix.strings(&join(&p, "subArchitectures"), s)?;
            }
        }
    }
    Ok(())
}

/// One `syscalls` entry that applies to the helper.
struct Entry<'v> {
    names: Vec<&'v str>,
    action: Action,
    conditions: Vec<ArgCondition>,
}

/// Reads the `syscalls` entry at `p`, all of it checked; `None` when its
/// includes and excludes say it does not apply to the helper.
fn syscalls_entry<'v>(
    ix: &JsonIndex,
    p: &str,
    entry: &'v Value,
    kernel: (u32, u32),
    default_errno: Option<u32>,
) -> Result<Option<Entry<'v>>, PolicyFileError> {
    let entry = ix.object(p, entry)?;
    ix.check_keys(
        p,
        entry,
        &[
            "names", "name", "action", "args", "errnoRet", "includes", "excludes", "comment",
        ],
    )?;
    if let Some(c) = opt(entry, "comment") {
        ix.str(&join(p, "comment"), c)?;
    }
    let applies_included = match opt(entry, "includes") {
        Some(f) => docker_filter(ix, &join(p, "includes"), f, kernel)?.all_hold,
        None => true,
    };
    let excluded = match opt(entry, "excludes") {
        Some(f) => docker_filter(ix, &join(p, "excludes"), f, kernel)?.any_holds,
        None => false,
    };
    let errno_ret = match opt(entry, "errnoRet") {
        Some(v) => Some(ix.errno(&join(p, "errnoRet"), v)?),
        None => None,
    };
    let action = docker_action(
        ix,
        &join(p, "action"),
        ix.required(p, entry, "action")?,
        errno_ret,
        default_errno,
    )?;
    let conditions = condition::args_of(ix, p, entry)?
        .into_iter()
        .map(|(cp, arg)| docker_condition(ix, &cp, arg))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names: Vec<&str> = Vec::new();
    if let Some(list) = opt(entry, "names") {
        let np = join(p, "names");
        for (j, n) in ix.array(&np, list)?.iter().enumerate() {
            names.push(ix.str(&join(&np, j), n)?);
        }
    }
    if let Some(n) = opt(entry, "name") {
        names.push(ix.str(&join(p, "name"), n)?);
    }
    Ok((applies_included && !excluded).then_some(Entry {
        names,
        action,
        conditions,
    }))
}

fn docker_action(
    ix: &JsonIndex,
    path: &str,
    v: &Value,
    errno_ret: Option<u32>,
    default_errno: Option<u32>,
) -> Result<Action, PolicyFileError> {
    let name = ix.str(path, v)?;
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno_ret.or(default_errno).unwrap_or(libc::EPERM as u32)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_PROCESS" | "SCMP_ACT_KILL_THREAD" => Action::Kill,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_TRAP" | "SCMP_ACT_TRACE" | "SCMP_ACT_NOTIFY" => {
            return Err(ix.err(
                path,
                format!(
                    "'{}' = \"{name}\" is not supported: ffb has no signal handler, tracer or \
                     notification listener for the profile (use SCMP_ACT_ERRNO, SCMP_ACT_KILL or SCMP_ACT_LOG)",
                    dotted(path)
                ),
            ))
        }
        other => {
            return Err(ix.err(
                path,
                format!("'{}' = \"{other}\" is not a seccomp action", dotted(path)),
            ))
        }
    })
}

fn docker_condition(
    ix: &JsonIndex,
    path: &str,
    v: &Value,
) -> Result<ArgCondition, PolicyFileError> {
    let arg = condition::parse(ix, path, v, &DOCKER_ARG)?;
    let value_two = match opt(arg.object, "valueTwo") {
        Some(v) => ix.u64(&join(path, "valueTwo"), v)?,
        None => 0,
    };
    let op_path = join(path, "op");
    let op = match ix.str(&op_path, ix.required(path, arg.object, "op")?)? {
        "SCMP_CMP_EQ" => CmpOp::Eq,
        "SCMP_CMP_NE" => CmpOp::Ne,
        "SCMP_CMP_LT" => CmpOp::Lt,
        "SCMP_CMP_LE" => CmpOp::Le,
        "SCMP_CMP_GT" => CmpOp::Gt,
        "SCMP_CMP_GE" => CmpOp::Ge,
        // libseccomp: arg & value == valueTwo.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ArgCondition::new(
                arg.index,
                CmpOp::MaskedEq(arg.value),
                value_two,
            ))
        }
        other => {
            return Err(ix.err(
                &op_path,
                format!(
                    "'{}' = \"{other}\" is not a seccomp comparison",
                    dotted(&op_path)
                ),
            ))
        }
    };
    Ok(ArgCondition::new(arg.index, op, arg.value))
}

struct FilterResult {
    /// Every condition holds (for `includes`).
    all_hold: bool,
    /// Some condition holds (for `excludes`).
    any_holds: bool,
}

fn docker_filter(
    ix: &JsonIndex,
    path: &str,
    v: &Value,
    kernel: (u32, u32),
) -> Result<FilterResult, PolicyFileError> {
    let f = ix.object(path, v)?;
    ix.check_keys(path, f, &["caps", "arches", "minKernel"])?;
    let mut held: Vec<bool> = Vec::new();
    if let Some(caps) = opt(f, "caps") {
        // The helper holds no capabilities at all.
        let caps = ix.strings(&join(path, "caps"), caps)?;
        if !caps.is_empty() {
            held.push(false);
        }
    }
    if let Some(arches) = opt(f, "arches") {
        let arches = ix.strings(&join(path, "arches"), arches)?;
        if !arches.is_empty() {
            held.push(arches.iter().any(|a| HELPER_ARCHES.contains(a)));
        }
    }
    if let Some(min) = opt(f, "minKernel") {
        let p = join(path, "minKernel");
        let text = ix.str(&p, min)?;
        let version = parse_kernel_version(text).ok_or_else(|| {
            ix.err(
                &p,
                format!("'{}' = \"{text}\" is not a kernel version", dotted(&p)),
            )
        })?;
        held.push(kernel >= version);
    }
    Ok(FilterResult {
        all_hold: held.iter().all(|h| *h),
        any_holds: held.iter().any(|h| *h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Phase, Verdict, SECCOMP_RET_USER_NOTIF};
    use crate::source::load_policy;
    use crate::test_support::{args as a, fixture, nr, run};

    const DOCKER_DEFAULT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/docker-default-seccomp.json"
    );
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn docker_default_profile_loads_as_it_is() {
        let p = load_policy(DOCKER_DEFAULT).unwrap();
        assert_eq!(p.name, DOCKER_DEFAULT);
        assert_eq!(p.default_action, Action::Errno(1));
        let f = p.compile().unwrap();
        for name in [
            "read",
            "write",
            "futex",
            "openat",
            "mmap",
            "epoll_wait",
            "arch_prctl",
        ] {
            assert_eq!(run(&f, nr(name), &a(3, 0, 0)), ALLOW, "{name}");
        }
        // Floor syscalls the profile allows still reach the host, which refuses them.
        for name in [
            "execve", "execveat", "fork", "vfork", "seccomp", "ptrace", "mount", "bpf",
        ] {
            assert_eq!(
                run(&f, nr(name), &a(0, 0, 0)),
                SECCOMP_RET_USER_NOTIF,
                "{name}"
            );
        }
        // Capability-gated rules do not apply to a helper without capabilities.
        for name in [
            "reboot",
            "chroot",
            "settimeofday",
            "iopl",
            "syslog",
            "open_by_handle_at",
        ] {
            assert_eq!(run(&f, nr(name), &a(0, 0, 0)), EPERM, "{name}");
        }
        // clone: both reach the host, which counts a thread against the
        // threads limit and refuses a new process (floor).
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(
            run(&f, nr("clone"), &a(thread, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            run(&f, nr("clone"), &a(libc::SIGCHLD as u64, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        let new_user = a(thread | libc::CLONE_NEWUSER as u64, 0, 0);
        assert_eq!(run(&f, nr("clone"), &new_user), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            p.verdict(nr("clone"), &new_user, Phase::Serving, |_| false),
            Verdict::Fail(libc::EPERM as u32),
            "a thread, so not the floor; but the profile's rule excludes namespace flags"
        );
        assert_eq!(
            run(&f, nr("clone3"), &a(0, 0, 0)),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        // socket: every family but AF_VSOCK (40).
        assert_eq!(run(&f, nr("socket"), &a(libc::AF_INET as u64, 1, 0)), ALLOW);
        assert_eq!(run(&f, nr("socket"), &a(40, 1, 0)), EPERM);
        assert_eq!(run(&f, nr("personality"), &a(0xffff_ffff, 0, 0)), ALLOW);
        assert_eq!(run(&f, nr("personality"), &a(1, 0, 0)), EPERM);

        let w = p.warnings.join("\n");
        for floor in [
            "execve",
            "execveat",
            "fork",
            "vfork",
            "seccomp",
            "pidfd_send_signal",
            "ptrace",
            "process_vm_readv",
        ] {
            let line = format!("syscall {floor} is on ffb's floor: ");
            assert!(w.contains(&line), "no warning for {floor}:\n{w}");
        }
        assert!(w.contains("syscall execve is on ffb's floor: the bridge runs library code, never programs; denied anyway"));
        assert!(w.contains("syscall clone is on ffb's floor: clone without CLONE_THREAD makes a new process; threads stay allowed; denied anyway except for threads"));
        // bpf and perf_event_open need capabilities the helper lacks: no rule, no warning.
        assert!(!w.contains("syscall bpf "), "{w}");
        assert!(w.contains("not x86_64 syscalls at all"), "{w}");
        for not_x86 in ["socketcall", "_llseek", "fcntl64"] {
            assert!(w.contains(not_x86), "{not_x86} not reported:\n{w}");
        }
        // Names of arch-specific rules that do not apply are not reported.
        assert!(!w.contains("cacheflush"), "{w}");
    }

    #[test]
    fn docker_includes_follow_the_kernel() {
        let text = std::fs::read_to_string(DOCKER_DEFAULT).unwrap();
        let old = import_docker(&text, "old", (4, 4)).unwrap();
        assert!(!old.warnings.iter().any(|w| w.contains("ptrace")));
        let new = import_docker(&text, "new", (4, 8)).unwrap();
        assert!(new
            .warnings
            .iter()
            .any(|w| w.contains("syscall ptrace is on ffb's floor")));
    }

    #[test]
    fn small_docker_profile_behaves_as_written() {
        let p = load_policy(&fixture("docker-small.json")).unwrap();
        let f = p.compile().unwrap();
        assert_eq!(run(&f, nr("read"), &a(0, 0, 0)), ALLOW);
        assert_eq!(run(&f, nr("socket"), &a(1, 1, 0)), ALLOW);
        assert_eq!(
            run(&f, nr("socket"), &a(2, 1, 0)),
            libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32
        );
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let rx = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        assert_eq!(run(&f, nr("mprotect"), &a(0, 4096, rw)), ALLOW);
        // mprotect is on the loading route: the host decides, by the rules once loaded.
        assert_eq!(
            run(&f, nr("mprotect"), &a(0, 4096, rx)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            p.verdict(nr("mprotect"), &a(0, 4096, rx), Phase::Serving, |_| false),
            Verdict::Fail(1)
        );
        assert_eq!(run(&f, nr("mkdir"), &a(0, 0, 0)), libc::SECCOMP_RET_LOG);
        assert_eq!(run(&f, nr("chroot"), &a(0, 0, 0)), EPERM);
        assert_eq!(run(&f, nr("arch_prctl"), &a(0, 0, 0)), ALLOW);
        assert_eq!(run(&f, nr("statx"), &a(0, 0, 0)), ALLOW);
        assert_eq!(run(&f, nr("getcpu"), &a(0, 0, 0)), ALLOW);
        assert_eq!(run(&f, nr("execve"), &a(0, 0, 0)), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            p.warnings,
            [
                "syscall execve is on ffb's floor: the bridge runs library code, never programs; denied anyway",
                "skipped 1 syscall name(s) that are not x86_64 syscalls at all (other architectures' or newer kernels' calls): socketcall",
            ]
        );
    }
}
