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

use crate::sandbox::{
    floor_entry_granted_by, Action, CmpOp, Phase, SandboxPolicy, SyscallRule, Verdict,
};
use crate::syscalls::number_of;

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
    /// `write-open-without-write-paths`, `socket-without-ports`,
    /// `grant-unused`, `clone-not-thread-only`,
    /// `exec-mappings`, `metadata-grant`, `memory-limit-high` or `log-default`.
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

    // A policy-written open with write flags, where only reading is granted:
    // every write-mode open then fails in Landlock. (With no paths at all,
    // `open-without-paths` says it.)
    let write_opens: Vec<String> = p
        .rules
        .iter()
        .filter(|r| {
            r.origin.is_none()
                && r.action.runs()
                && matches!(r.syscall.as_str(), "open" | "openat" | "creat")
                && r.matches(r.nr, &write_open_args(&r.syscall))
        })
        .map(|r| r.syscall.clone())
        .fold(Vec::new(), dedup);
    if !write_opens.is_empty()
        && p.confine
        && p.filesystem.write.is_empty()
        && !p.filesystem.read.is_empty()
    {
        out.push(LintWarning {
            rule: "write-open-without-write-paths",
            message: format!(
                "{} allowed with write flags but no [filesystem] write path is listed: Landlock                  refuses every write-mode open, so either the write path was forgotten or the                  rule only adds attack surface (a write path brings in the write-mode opens by                  itself)",
                write_opens.join(", ")
            ),
        });
    }

    if !allowed(&["socket"]).is_empty() && p.network.is_empty() && p.connect_unix.is_empty() {
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

    let unusable = unusable_grants(p);
    if !unusable.is_empty() {
        out.push(LintWarning {
            rule: "grant-unused",
            message: format!(
                "{} can never be used: {}",
                unusable
                    .iter()
                    .map(|(what, _)| what.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                unusable
                    .iter()
                    .map(|(_, why)| why.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
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

    // A driver manager that dlopens a driver after loading maps its code
    // PROT_EXEC from the .so: fine when the mapping is never writable, never
    // anonymous, and no file the helper could have written can be mapped.
    let nothing_writable = p.confine && p.filesystem.write.is_empty();
    let exec: Vec<String> = p
        .rules
        .iter()
        .filter(|r| {
            r.action.runs() && matches!(r.syscall.as_str(), "mmap" | "mprotect" | "pkey_mprotect")
        })
        .filter(|r| !(excludes_prot_exec(r) || (read_only_file_exec(r) && nothing_writable)))
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
                 host the per-helper identity leaves it only the files it created (and its \
                 write grants then work only where that uid may write: it gets no \
                 CAP_DAC_OVERRIDE, which would let it tag any file and set its times to \
                 now); under run_as, or on a host that is not root, it is every file of \
                 that user. Grant them only if the library needs them",
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

fn dedup(mut acc: Vec<String>, s: String) -> Vec<String> {
    if !acc.contains(&s) {
        acc.push(s);
    }
    acc
}

/// Arguments of a write-mode open (`O_RDWR | O_CREAT`) for `open` or `openat`.
fn write_open_args(syscall: &str) -> [u64; 6] {
    let flags = (libc::O_RDWR | libc::O_CREAT) as u64;
    match syscall {
        "openat" => [libc::AT_FDCWD as u64, 0, flags, 0o644, 0, 0],
        "open" => [0, flags, 0o644, 0, 0, 0],
        _ => [0, 0o644, 0, 0, 0, 0],
    }
}

/// The grants whose first syscall the policy refuses, each with why:
/// a write path with no write-mode open, a read path with no read-only
/// open, a port or unix socket with no socket of its family or no
/// `connect`, a bind port with no socket or no `bind`.
fn unusable_grants(p: &SandboxPolicy) -> Vec<(String, String)> {
    let runs = |name: &str, args: [u64; 6]| {
        let nr = number_of(name).expect("lint probes real syscalls");
        matches!(
            p.verdict(nr, &args, Phase::Serving, |_| false),
            Verdict::Continue | Verdict::Log
        )
    };
    let stream = libc::SOCK_STREAM as u64 | libc::SOCK_CLOEXEC as u64;
    let inet = || {
        [libc::AF_INET, libc::AF_INET6]
            .into_iter()
            .any(|f| runs("socket", [f as u64, stream, 0, 0, 0, 0]))
    };
    let mut out = Vec::new();
    let mut unusable = |kind: &str, granted: bool, why: Option<&str>| {
        if let (true, Some(why)) = (granted, why) {
            out.push((kind.to_string(), why.to_string()));
        }
    };
    let at = libc::AT_FDCWD as u64;
    unusable(
        "[filesystem] write",
        !p.filesystem.write.is_empty(),
        (!runs(
            "openat",
            [at, 0, (libc::O_RDWR | libc::O_CREAT) as u64, 0o644, 0, 0],
        ))
        .then_some("an earlier rule refuses openat with write flags"),
    );
    unusable(
        "[filesystem] read",
        !p.filesystem.read.is_empty(),
        (!runs(
            "openat",
            [
                at,
                0,
                libc::O_RDONLY as u64 | libc::O_CLOEXEC as u64,
                0,
                0,
                0,
            ],
        ))
        .then_some("an earlier rule refuses read-only openat"),
    );
    // With a unix socket granted the host makes every connect itself.
    let connect = p.supervises_connect() || runs("connect", [3, 0, 16, 0, 0, 0]);
    unusable(
        "[network] connect_tcp",
        !p.network.connect_tcp.is_empty(),
        if !inet() {
            Some("no TCP socket (AF_INET or AF_INET6, SOCK_STREAM) can be created")
        } else if !connect {
            Some("connect is refused")
        } else {
            None
        },
    );
    unusable(
        "[network] bind_tcp",
        !p.network.bind_tcp.is_empty(),
        if !inet() {
            Some("no TCP socket (AF_INET or AF_INET6, SOCK_STREAM) can be created")
        } else if !runs("bind", [3, 0, 16, 0, 0, 0]) {
            Some("bind is refused (a port grant brings in no bind: allow it with the listen and accept calls the library needs)")
        } else {
            None
        },
    );
    unusable(
        "[network] connect_unix",
        !p.connect_unix.is_empty(),
        if !runs("socket", [libc::AF_UNIX as u64, stream, 0, 0, 0, 0]) {
            Some("no unix stream socket can be created")
        } else if !connect {
            Some("connect is refused")
        } else {
            None
        },
    );
    out
}

/// Whether a rule is on `mmap` and requires `PROT_WRITE` clear (argument 2)
/// and `MAP_ANONYMOUS` clear (argument 3): executable code can only come
/// from a file, mapped read-only.
fn read_only_file_exec(rule: &SyscallRule) -> bool {
    let requires_clear = |index: u8, bit: u64| {
        rule.conditions.iter().any(|c| {
            c.index == index
                && matches!(c.op, CmpOp::MaskedEq(m) if m & bit != 0)
                && c.value & bit == 0
        })
    };
    rule.syscall == "mmap"
        && requires_clear(2, libc::PROT_WRITE as u64)
        && requires_clear(3, libc::MAP_ANONYMOUS as u64)
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

    fn toml(text: &str) -> SandboxPolicy {
        crate::source::parse_toml_policy(text, "p.toml").unwrap()
    }

    #[test]
    fn grants_bring_what_they_need_so_they_lint_clean() {
        for text in [
            "[filesystem]\nwrite = [\"/data\"]\n",
            "extends = \"fs-read\"\n[filesystem]\nwrite = [\"/data\"]\n",
            "[filesystem]\nread = [\"/etc/hosts\"]\n",
            "[network]\nconnect_tcp = [5432]\n",
            "extends = \"db-client\"\n[network]\nconnect_tcp = [5432]\n[filesystem]\nread = [\"/etc/hosts\"]\n",
        ] {
            assert!(rules_of(&toml(text)).is_empty(), "{text}: {:?}", lint(&toml(text)));
        }
    }

    #[test]
    fn grants_that_can_never_be_used_are_flagged() {
        // An explicit rule before the derived ones refuses the write-mode open.
        let p = toml(
            "[[seccomp.rule]]\nsyscall = \"openat\"\naction = \"errno:EACCES\"\n\
             [filesystem]\nwrite = [\"/data\"]\n",
        );
        let found = lint(&p);
        assert_eq!(rules_of(&p), ["grant-unused"]);
        assert_eq!(
            found[0].message,
            "[filesystem] write can never be used: an earlier rule refuses openat with write flags"
        );
        // No grant brings in bind.
        let p = toml("[network]\nbind_tcp = [8080]\n");
        let found = lint(&p);
        assert_eq!(rules_of(&p), ["grant-unused"]);
        assert!(
            found[0]
                .message
                .starts_with("[network] bind_tcp can never be used: no TCP socket"),
            "{}",
            found[0]
        );
        let p = toml("[network]\nconnect_tcp = [5432]\nbind_tcp = [8080]\n");
        assert!(
            lint(&p)[0].message.contains("bind is refused"),
            "{:?}",
            lint(&p)
        );
        // A profile that refuses sockets leaves a port grant unusable.
        let p = toml(
            "[[seccomp.rule]]\nsyscall = \"socket\"\naction = \"errno:EPERM\"\n\
             [network]\nconnect_tcp = [5432]\nconnect_unix = [\"/run/x.sock\"]\n",
        );
        let found = lint(&p);
        assert_eq!(rules_of(&p), ["grant-unused"]);
        assert!(
            found[0].message.starts_with(
                "[network] connect_tcp, [network] connect_unix can never be used: no TCP socket"
            ),
            "{}",
            found[0]
        );
    }

    #[test]
    fn a_write_open_without_a_write_path_is_flagged() {
        let p = toml(
            "extends = \"fs-read\"\n[seccomp]\nallow = [\"openat\"]\n\
             [filesystem]\nread = [\"/etc/hosts\"]\n",
        );
        let found = lint(&p);
        assert_eq!(rules_of(&p), ["write-open-without-write-paths"]);
        assert!(
            found[0]
                .message
                .starts_with("openat allowed with write flags"),
            "{}",
            found[0]
        );
        // fs-read's own read-only openat is no such rule.
        assert!(rules_of(&toml(
            "extends = \"fs-read\"\n[filesystem]\nread = [\"/etc/hosts\"]\n"
        ))
        .is_empty());

        // A unix socket alone is a resource: no socket-without-ports.
        let p = toml("[network]\nconnect_unix = [\"/run/pg/.s.PGSQL.5432\"]\n");
        assert!(rules_of(&p).is_empty(), "{:?}", lint(&p));
    }

    #[test]
    fn read_only_file_exec_mappings_pass_only_without_write_grants() {
        let rule = "[[seccomp.rule]]\nsyscall = \"mmap\"\nargs = [\n\
            { index = 2, op = \"masked_eq\", mask = 6, value = 4 },\n\
            { index = 3, op = \"masked_eq\", mask = 0x20, value = 0 },\n]\n";
        assert!(rules_of(&toml(rule)).is_empty(), "{:?}", lint(&toml(rule)));
        let with_write = format!("{rule}[filesystem]\nwrite = [\"/data\"]\n");
        assert_eq!(rules_of(&toml(&with_write)), ["exec-mappings"]);
        // Anonymous or writable exec mappings are flagged whatever the grants.
        for (mask, value) in [(4, 4), (6, 6)] {
            let anon = format!(
                "[[seccomp.rule]]\nsyscall = \"mmap\"\nargs = [{{ index = 2, op = \"masked_eq\", mask = {mask}, value = {value} }}]\n"
            );
            assert_eq!(rules_of(&toml(&anon)), ["exec-mappings"], "{anon}");
        }
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
