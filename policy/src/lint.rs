//! Lint: findings about a policy that is valid but probably not what its
//! author wants in production.
//!
//! ```
//! use ffb_policy::{lint::lint, sandbox::SandboxPolicy};
//! assert!(lint(&SandboxPolicy::pure()).is_empty());
//! let rules: Vec<_> = lint(&SandboxPolicy::preset("db-client").unwrap())
//!     .into_iter()
//!     .map(|w| w.rule)
//!     .collect();
//! assert_eq!(rules, ["open-without-paths", "socket-without-ports"]);
//! ```

use std::fmt;

use crate::sandbox::{floor_entry_granted_by, Action, CmpOp, SandboxPolicy, SyscallRule};

const PROT_EXEC: u64 = libc::PROT_EXEC as u64;

/// Syscalls that change a file's metadata: mode (setuid bits), owner,
/// timestamps and extended attributes. Landlock does not confine them, so
/// [`lint`] flags any grant of one (`metadata-grant`).
pub const METADATA_SYSCALLS: &[&str] = &[
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "setxattrat",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "removexattrat",
];

/// The memory limit above which [`lint`] warns, in MiB.
pub const MEMORY_LIMIT_WARN_MB: u64 = 4096;

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintWarning {
    /// A short stable identifier: `unconfined-import`, `open-without-paths`,
    /// `socket-without-ports`, `clone-not-thread-only`, `exec-mappings`,
    /// `metadata-grant`, `memory-limit-high` or `log-default`.
    pub rule: &'static str,
    /// What was found and why it matters.
    pub message: String,
}

impl fmt::Display for LintWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.message)
    }
}

/// Lints a policy. The findings come in a fixed order, one per rule at most.
pub fn lint(p: &SandboxPolicy) -> Vec<LintWarning> {
    let mut out = Vec::new();
    let allowed = |names: &[&str]| -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for r in &p.rules {
            if r.action.runs() && names.contains(&r.syscall.as_str()) && !found.contains(&r.syscall)
            {
                found.push(r.syscall.clone());
            }
        }
        found
    };

    if !p.confine {
        out.push(LintWarning {
            rule: "unconfined-import",
            message: "this imported profile runs without Landlock ([filesystem] unconfined = \
                      true): the extension can open, write and create any file and connect \
                      to any port the helper's user can; remove the setting and grant the \
                      paths and ports the library needs beside the import instead"
                .to_string(),
        });
    }

    let opens = allowed(&["open", "openat", "openat2", "creat"]);
    if !opens.is_empty() && p.filesystem.read.is_empty() && p.filesystem.write.is_empty() {
        out.push(LintWarning {
            rule: "open-without-paths",
            message: if p.confine {
                format!(
                    "{} allowed but no [filesystem] paths are listed: Landlock refuses every path \
                     but the system library directories, so either the paths were forgotten or \
                     the rule only adds attack surface",
                    opens.join(", ")
                )
            } else {
                format!(
                    "{} allowed and Landlock is off (unconfined = true): the extension \
                     can open any file the helper's user can",
                    opens.join(", ")
                )
            },
        });
    }

    if !allowed(&["socket"]).is_empty() && p.network.is_empty() {
        out.push(LintWarning {
            rule: "socket-without-ports",
            message: if p.confine {
                "socket allowed but no [network] TCP ports are listed: Landlock refuses \
                 every TCP connect and bind, while UDP and Unix sockets are not limited \
                 by port rules at all"
                    .to_string()
            } else {
                "socket allowed and Landlock is off (unconfined = true): the extension \
                 can connect anywhere the network lets it"
                    .to_string()
            },
        });
    }

    if p.rules
        .iter()
        .any(|r| r.action.runs() && r.syscall == "clone" && floor_entry_granted_by(r).is_some())
    {
        out.push(LintWarning {
            rule: "clone-not-thread-only",
            message: "clone allowed without requiring CLONE_THREAD: a clone without it makes \
                      a new process, which the floor denies anyway (so the rule misleads)"
                .to_string(),
        });
    }

    let exec: Vec<String> = p
        .rules
        .iter()
        .filter(|r| {
            r.action.runs() && matches!(r.syscall.as_str(), "mmap" | "mprotect" | "pkey_mprotect")
        })
        .filter(|r| !excludes_prot_exec(r))
        .map(|r| r.syscall.clone())
        .fold(Vec::new(), |mut acc, s| {
            if !acc.contains(&s) {
                acc.push(s);
            }
            acc
        });
    if !exec.is_empty() {
        out.push(LintWarning {
            rule: "exec-mappings",
            message: format!(
                "{} allowed with PROT_EXEC possible (no masked_eq condition on argument 2 \
                 excluding it): writable-then-executable memory lets a library, or an exploit \
                 inside it, run code it made; loading needs no such rule",
                exec.join(", ")
            ),
        });
    }

    let metadata = allowed(METADATA_SYSCALLS);
    if !metadata.is_empty() {
        out.push(LintWarning {
            rule: "metadata-grant",
            message: format!(
                "{} allowed: Landlock does not confine file metadata, so the extension can \
                 make any file the helper's user owns setuid, change its owner, back-date it \
                 or tag it with extended attributes, outside every listed path. On a root \
                 host the per-helper identity leaves it only the files it created, but with \
                 a write grant it can still tag any file and set its times to now; under \
                 run_as, or on a host that is not root, it is every file of that user. Grant \
                 them only if the library needs them",
                metadata.join(", ")
            ),
        });
    }

    if p.limits.memory_mb > MEMORY_LIMIT_WARN_MB {
        out.push(LintWarning {
            rule: "memory-limit-high",
            message: format!(
                "memory limit {} MiB is above {MEMORY_LIMIT_WARN_MB} MiB: a leaking or hostile \
                 library can take that much from the host before it is stopped",
                p.limits.memory_mb
            ),
        });
    }

    if p.default_action == Action::Log {
        out.push(LintWarning {
            rule: "log-default",
            message: "default action is log, which is not for production: every syscall no \
                      rule allows still runs (the kernel only logs it)"
                .to_string(),
        });
    }
    out
}

/// Whether a rule on mmap/mprotect requires PROT_EXEC (argument 2) to be clear.
fn excludes_prot_exec(rule: &SyscallRule) -> bool {
    rule.conditions.iter().any(|c| {
        c.index == 2
            && matches!(c.op, CmpOp::MaskedEq(m) if m & PROT_EXEC != 0)
            && c.value & PROT_EXEC == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::ArgCondition;

    fn rules_of(p: &SandboxPolicy) -> Vec<&'static str> {
        lint(p).into_iter().map(|w| w.rule).collect()
    }

    #[test]
    fn presets_lint_as_expected() {
        assert!(rules_of(&SandboxPolicy::pure()).is_empty());
        assert_eq!(rules_of(&SandboxPolicy::fs_read()), ["open-without-paths"]);
        let mut p = SandboxPolicy::db_client();
        p.filesystem.read.push("/etc/hosts".into());
        p.network.connect_tcp.push(5432);
        assert!(rules_of(&p).is_empty());
    }

    #[test]
    fn each_rule_fires_with_its_reason() {
        let mut p = SandboxPolicy::pure();
        p.rules
            .push(SyscallRule::new("mprotect", Action::Allow, vec![]).unwrap());
        p.rules
            .push(SyscallRule::new("clone", Action::Allow, vec![]).unwrap());
        p.rules
            .push(SyscallRule::new("socket", Action::Log, vec![]).unwrap());
        p.limits.memory_mb = 8192;
        p.default_action = Action::Log;
        let found = lint(&p);
        assert_eq!(
            found.iter().map(|w| w.rule).collect::<Vec<_>>(),
            [
                "socket-without-ports",
                "clone-not-thread-only",
                "exec-mappings",
                "memory-limit-high",
                "log-default"
            ]
        );
        assert!(found[2]
            .message
            .starts_with("mprotect allowed with PROT_EXEC"));
        assert!(found[3].message.contains("8192 MiB"));
        assert!(found[4].to_string().contains("not for production"));
    }

    #[test]
    fn metadata_grants_and_unconfined_imports_are_flagged() {
        for name in METADATA_SYSCALLS {
            let p = SandboxPolicy::pure().allow(name).unwrap();
            let found = lint(&p);
            assert_eq!(rules_of(&p), ["metadata-grant"], "{name}");
            assert!(
                found[0].message.starts_with(&format!(
                    "{name} allowed: Landlock does not confine file metadata"
                )),
                "{}",
                found[0]
            );
            assert!(
                found[0].message.contains("per-helper identity"),
                "{}",
                found[0]
            );
        }
        let mut p = SandboxPolicy::pure();
        for name in ["chmod", "utimensat", "setxattr", "chmod"] {
            p.rules
                .push(SyscallRule::new(name, Action::Log, vec![]).unwrap());
        }
        p.rules
            .push(SyscallRule::new("fchown", Action::Errno(1), vec![]).unwrap());
        let found = lint(&p);
        assert_eq!(
            rules_of(&p),
            ["metadata-grant"],
            "errno rules grant nothing"
        );
        assert!(
            found[0]
                .message
                .starts_with("chmod, utimensat, setxattr allowed:"),
            "{}",
            found[0]
        );

        let mut imported = SandboxPolicy::pure();
        imported.confine = false;
        imported
            .rules
            .push(SyscallRule::new("openat", Action::Allow, vec![]).unwrap());
        let found = lint(&imported);
        assert_eq!(
            rules_of(&imported),
            ["unconfined-import", "open-without-paths"]
        );
        assert!(
            found[0].message.contains("unconfined = true"),
            "{}",
            found[0]
        );
        assert!(found[1].message.contains("Landlock is off"), "{}", found[1]);
    }

    #[test]
    fn denied_rules_and_exec_free_mappings_are_fine() {
        let mut p = SandboxPolicy::pure();
        p.rules
            .push(SyscallRule::new("openat", Action::Errno(13), vec![]).unwrap());
        p.rules.push(
            SyscallRule::new(
                "mprotect",
                Action::Allow,
                vec![ArgCondition::new(2, CmpOp::MaskedEq(PROT_EXEC | 1), 1)],
            )
            .unwrap(),
        );
        assert!(lint(&p).is_empty());
    }
}
