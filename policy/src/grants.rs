//! Grants: the resources a policy lets the extension reach, and the syscalls
//! ffb derives from them.
//!
//! Ops say *what* a driver may reach (a path to read or write, a TCP port, a
//! unix socket); ffb works out *which syscalls* that takes, so that a grant
//! is always usable and never needs a hand-written `[seccomp]` list beside
//! it. Each derived rule records the grant that brought it in
//! ([`SyscallRule::origin`]), which `ffb policy explain` shows.
//!
//! | grant | brings in (allow rules, appended after the policy's own) | bounded by |
//! |---|---|---|
//! | `[filesystem] read` | read-only `open`/`openat`, the `stat`/`access`/`readlink` family, `getdents64`, `fcntl` `F_GETFD`/`F_SETFD`/`F_GETFL`/`F_SETFL` | Landlock (read rights on the paths) |
//! | `[filesystem] write` | everything `read` brings, `open`/`openat` with any flags, `write`/`pwrite64`/`pwritev`/`pwritev2`, `ftruncate`/`truncate`, `fsync`/`fdatasync`, `fallocate`, `rename`/`renameat`/`renameat2`, `unlink`/`unlinkat`, `mkdir`/`mkdirat`/`rmdir`, and POSIX byte-range locks (`fcntl` `F_GETLK`/`F_SETLK`/`F_SETLKW` and the `F_OFD_*` ones) | Landlock (every right on the paths: a file grant cannot create, rename or remove anything, a directory grant can beneath it); for the lock-setting commands, the host: it lets one run only on a file within a write grant ([`SandboxPolicy::write_grant_covers`]) |
//! | `[network] connect_tcp` | `socket(AF_INET/AF_INET6, SOCK_STREAM, 0/IPPROTO_TCP)`, `connect`, `get/setsockopt`, `getsockname`, `getpeername`, the send/receive calls, `shutdown`, `poll`/`ppoll`/`select`/`pselect6`/`epoll_*`, `fcntl` `F_GETFL`/`F_SETFL`/`F_GETFD`/`F_SETFD`, `ioctl` `FIONREAD`/`FIONBIO` | Landlock (TCP connect to the ports); MPTCP, SCTP and `MSG_FASTOPEN` stay violations (no derived rule names them) |
//! | `[network] connect_unix` | `socket(AF_UNIX, SOCK_STREAM, 0)`, and the same calls as `connect_tcp` but the `socket` rule | the host: no kernel mechanism bounds a pathname unix connect (Landlock has no right for it up to ABI 7), so every `connect` goes to the host, which connects the helper's socket itself, to a granted path only ([`SandboxPolicy::connect_decision`]) |
//!
//! No grant brings in `flock`, leases (on the floor), or a metadata call
//! (`chmod`, `chown`, `utimensat`, xattrs: Landlock does not confine them).
//! Whatever the rules allow, a lock-setting call (`fcntl` `F_SETLK`,
//! `F_SETLKW`, `F_OFD_SETLK`, `F_OFD_SETLKW`, `flock` but `LOCK_UN`) goes to
//! the host, which lets it run only on a file within a write grant
//! ([`SUPERVISED_LOCKS`](crate::sandbox::SUPERVISED_LOCKS)): a read lock
//! needs only a readable fd, and would otherwise stall another process's
//! writer of any file the helper may read.
//!
//! A derived rule is left out when an allow rule already in the policy
//! covers it (same syscall, a subset of its conditions). Derivation is
//! canonical: [`SandboxPolicy::with_grants`] drops every derived rule and
//! derives again from all the policy's grants, so a policy built at run
//! time is exactly what a TOML file listing the same grants gives.
//!
//! ```
//! use ffb_policy::grants::Grants;
//! use ffb_policy::sandbox::SandboxPolicy;
//! use ffb_policy::source::parse_toml_policy;
//!
//! let grants = Grants {
//!     write: vec!["/tmp".into()],
//!     connect_tcp: vec![5432],
//!     ..Grants::default()
//! };
//! let runtime = SandboxPolicy::preset("fs-read").unwrap().with_grants(&grants).unwrap();
//! let mut file = parse_toml_policy(
//!     "extends = \"fs-read\"\n[filesystem]\nwrite = [\"/tmp\"]\n[network]\nconnect_tcp = [5432]\n",
//!     "p.toml",
//! )
//! .unwrap();
//! file.name = runtime.name.clone();
//! assert_eq!(runtime, file);
//! let openat = runtime.rules.iter().rfind(|r| r.syscall == "openat").unwrap();
//! assert!(openat.conditions.is_empty(), "write-mode opens, bounded by Landlock");
//! assert_eq!(openat.origin.unwrap().section(), "[filesystem] write");
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sandbox::{Action, ArgCondition, CmpOp, PolicyError, SandboxPolicy, SyscallRule};

/// Resources granted to an extension, as a driver builds them at run time
/// (for example the database file it was given). The same lists as a TOML
/// policy's `[filesystem] read`/`write` and `[network]
/// connect_tcp`/`connect_unix`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Paths that may be read (a directory grants what is beneath it).
    pub read: Vec<PathBuf>,
    /// Paths that may be written, created, renamed and removed beneath (and read).
    pub write: Vec<PathBuf>,
    /// TCP ports the extension may connect to.
    pub connect_tcp: Vec<u16>,
    /// Unix-domain stream sockets the extension may connect to, by path.
    pub connect_unix: Vec<PathBuf>,
}

/// Which kind of grant brought a rule in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    /// `[filesystem] write`.
    Write,
    /// `[filesystem] read`.
    Read,
    /// `[network] connect_tcp`.
    ConnectTcp,
    /// `[network] connect_unix`.
    ConnectUnix,
}

impl GrantKind {
    /// Every kind, in the order rules are derived (write before read, so a
    /// read grant's read-only opens are covered by a write grant's).
    pub const ALL: [GrantKind; 4] = [
        GrantKind::Write,
        GrantKind::Read,
        GrantKind::ConnectTcp,
        GrantKind::ConnectUnix,
    ];

    /// The policy file's section and key: `[filesystem] write`.
    pub fn section(self) -> &'static str {
        match self {
            GrantKind::Write => "[filesystem] write",
            GrantKind::Read => "[filesystem] read",
            GrantKind::ConnectTcp => "[network] connect_tcp",
            GrantKind::ConnectUnix => "[network] connect_unix",
        }
    }

    /// What the policy grants of this kind, as policy files write it
    /// (quoted paths, bare ports).
    pub fn granted(self, p: &SandboxPolicy) -> Vec<String> {
        let paths = |v: &[PathBuf]| {
            v.iter()
                .map(|p| format!("{:?}", p.display().to_string()))
                .collect()
        };
        match self {
            GrantKind::Write => paths(&p.filesystem.write),
            GrantKind::Read => paths(&p.filesystem.read),
            GrantKind::ConnectTcp => p.network.connect_tcp.iter().map(u16::to_string).collect(),
            GrantKind::ConnectUnix => paths(&p.connect_unix),
        }
    }

    /// The syscall rules this kind of grant brings in, each marked with it.
    pub fn rules(self) -> Vec<SyscallRule> {
        let mut out = Vec::new();
        let mut push = |name: &str, conditions: Vec<ArgCondition>| {
            let mut rule = SyscallRule::new(name, Action::Allow, conditions)
                .expect("grants name only real syscalls");
            rule.origin = Some(self);
            out.push(rule);
        };
        let eq = |index, value: u64| vec![ArgCondition::new(index, CmpOp::Eq, value)];
        match self {
            GrantKind::Read | GrantKind::Write => {
                if self == GrantKind::Write {
                    push("open", vec![]);
                    push("openat", vec![]);
                } else {
                    let read_only =
                        |i| vec![ArgCondition::new(i, CmpOp::MaskedEq(READ_WRITE_FLAGS), 0)];
                    push("open", read_only(1));
                    push("openat", read_only(2));
                }
                for name in READ_UNCONDITIONAL {
                    push(name, vec![]);
                }
                for command in FD_FLAG_COMMANDS {
                    push("fcntl", eq(1, command));
                }
                if self == GrantKind::Write {
                    for name in WRITE_UNCONDITIONAL {
                        push(name, vec![]);
                    }
                    for command in LOCK_COMMANDS {
                        push("fcntl", eq(1, command));
                    }
                }
            }
            GrantKind::ConnectTcp | GrantKind::ConnectUnix => {
                let stream = || {
                    ArgCondition::new(1, CmpOp::MaskedEq(SOCK_TYPE_MASK), libc::SOCK_STREAM as u64)
                };
                if self == GrantKind::ConnectTcp {
                    for family in [libc::AF_INET, libc::AF_INET6] {
                        for protocol in [0, libc::IPPROTO_TCP] {
                            push(
                                "socket",
                                vec![
                                    ArgCondition::new(0, CmpOp::Eq, family as u64),
                                    stream(),
                                    ArgCondition::new(2, CmpOp::Eq, protocol as u64),
                                ],
                            );
                        }
                    }
                } else {
                    push(
                        "socket",
                        vec![
                            ArgCondition::new(0, CmpOp::Eq, libc::AF_UNIX as u64),
                            stream(),
                            ArgCondition::new(2, CmpOp::Eq, 0),
                        ],
                    );
                }
                for name in SOCKET_UNCONDITIONAL {
                    push(name, vec![]);
                }
                for command in FD_FLAG_COMMANDS {
                    push("fcntl", eq(1, command));
                }
                for request in [libc::FIONREAD, libc::FIONBIO] {
                    push("ioctl", eq(1, request));
                }
            }
        }
        out
    }
}

impl std::fmt::Display for GrantKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.section())
    }
}

/// The `open(2)` flags a read grant's opens may not carry (the `fs-read`
/// preset's mask, so that its rules cover a read grant's).
const READ_WRITE_FLAGS: u64 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u64;

/// The bits of `socket(2)`'s type that name the type.
const SOCK_TYPE_MASK: u64 = 0xf;

/// What reading a file takes beyond `read`, which every preset allows.
const READ_UNCONDITIONAL: &[&str] = &[
    "read",
    "pread64",
    "readv",
    "lseek",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "getdents64",
    "readlink",
    "readlinkat",
    "access",
    "faccessat",
    "faccessat2",
];

/// `fcntl` commands on the fd's own flags: close-on-exec and `O_NONBLOCK`.
const FD_FLAG_COMMANDS: [u64; 4] = [
    libc::F_GETFD as u64,
    libc::F_SETFD as u64,
    libc::F_GETFL as u64,
    libc::F_SETFL as u64,
];

/// POSIX byte-range locks. The setting ones still go to the host first,
/// which lets them run only on a file within a write grant (a read lock
/// needs only a readable fd); these rules are what it then consults
/// ([`SandboxPolicy::lock_rules_verdict`]). See `docs/policy.md`, "What a
/// write grant bounds".
const LOCK_COMMANDS: [u64; 6] = [
    libc::F_GETLK as u64,
    libc::F_SETLK as u64,
    libc::F_SETLKW as u64,
    libc::F_OFD_GETLK as u64,
    libc::F_OFD_SETLK as u64,
    libc::F_OFD_SETLKW as u64,
];

/// What writing, creating, renaming and removing files takes.
const WRITE_UNCONDITIONAL: &[&str] = &[
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "ftruncate",
    "truncate",
    "fsync",
    "fdatasync",
    "fallocate",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
];

/// What talking over a connected stream socket takes. (`sendto` and
/// `sendmsg` with `MSG_FASTOPEN` still go to the host, which refuses them:
/// no rule here names that flag.)
const SOCKET_UNCONDITIONAL: &[&str] = &[
    "connect",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "read",
    "write",
    "close",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
];

impl SandboxPolicy {
    /// The policy with these grants added to its own, and the syscalls they
    /// need derived: exactly what a TOML policy listing the same grants
    /// gives. Paths must be absolute and ports 1 to 65535.
    ///
    /// ```
    /// use ffb_policy::grants::Grants;
    /// use ffb_policy::sandbox::SandboxPolicy;
    /// let db = Grants { write: vec!["/srv/app/data.db".into()], ..Grants::default() };
    /// let p = SandboxPolicy::pure().with_grants(&db).unwrap();
    /// assert!(p.rules.iter().any(|r| r.syscall == "fsync" && r.origin.is_some()));
    /// let relative = Grants { read: vec!["data.db".into()], ..Grants::default() };
    /// assert!(SandboxPolicy::pure().with_grants(&relative).is_err());
    /// ```
    pub fn with_grants(mut self, grants: &Grants) -> Result<Self, PolicyError> {
        for (kind, list, into) in [
            (GrantKind::Read, &grants.read, &mut self.filesystem.read),
            (GrantKind::Write, &grants.write, &mut self.filesystem.write),
            (
                GrantKind::ConnectUnix,
                &grants.connect_unix,
                &mut self.connect_unix,
            ),
        ] {
            for path in list {
                if !path.is_absolute() {
                    return Err(PolicyError::Grant(format!(
                        "{kind} path '{}' must be absolute (start with '/')",
                        path.display()
                    )));
                }
                if !into.contains(path) {
                    into.push(path.clone());
                }
            }
        }
        for &port in &grants.connect_tcp {
            if port == 0 {
                return Err(PolicyError::Grant(
                    "[network] connect_tcp port 0 is out of range (1 to 65535)".to_string(),
                ));
            }
            if !self.network.connect_tcp.contains(&port) {
                self.network.connect_tcp.push(port);
            }
        }
        self.derive_grant_rules();
        Ok(self)
    }

    /// What the policy grants, as a [`Grants`].
    pub fn grants(&self) -> Grants {
        Grants {
            read: self.filesystem.read.clone(),
            write: self.filesystem.write.clone(),
            connect_tcp: self.network.connect_tcp.clone(),
            connect_unix: self.connect_unix.clone(),
        }
    }

    /// Whether the policy grants anything of this kind.
    pub fn grants_any(&self, kind: GrantKind) -> bool {
        match kind {
            GrantKind::Write => !self.filesystem.write.is_empty(),
            GrantKind::Read => !self.filesystem.read.is_empty(),
            GrantKind::ConnectTcp => !self.network.connect_tcp.is_empty(),
            GrantKind::ConnectUnix => !self.connect_unix.is_empty(),
        }
    }

    /// Whether `file`, the absolute path of an open file with every symlink
    /// resolved (as `/proc/PID/fd/N` names it), lies within one of the
    /// policy's write grants: it is a granted file or beneath a granted
    /// directory, component by component (`/data/db-journal` is not within a
    /// grant of `/data/db`). A grant is compared as written and with its
    /// own symlinks resolved, as Landlock resolved it when it opened the
    /// grant.
    ///
    /// ```
    /// use ffb_policy::grants::Grants;
    /// use ffb_policy::sandbox::SandboxPolicy;
    /// let p = SandboxPolicy::pure()
    ///     .with_grants(&Grants { write: vec!["/srv/db".into()], ..Grants::default() })
    ///     .unwrap();
    /// assert!(p.write_grant_covers("/srv/db/main.db".as_ref()));
    /// assert!(!p.write_grant_covers("/srv/db2/main.db".as_ref()));
    /// ```
    pub fn write_grant_covers(&self, file: &std::path::Path) -> bool {
        file.is_absolute()
            && self.filesystem.write.iter().any(|grant| {
                file.starts_with(grant)
                    || std::fs::canonicalize(grant).is_ok_and(|real| file.starts_with(real))
            })
    }

    /// Drops every derived rule and derives them again from the policy's
    /// grants, after its own rules, in [`GrantKind::ALL`] order.
    pub(crate) fn derive_grant_rules(&mut self) {
        self.rules.retain(|r| r.origin.is_none());
        for kind in GrantKind::ALL {
            if !self.grants_any(kind) {
                continue;
            }
            for rule in kind.rules() {
                if !covered(&self.rules, &rule) {
                    self.rules.push(rule);
                }
            }
        }
    }
}

/// What the host should do with a `connect` it supervises
/// ([`SandboxPolicy::connect_decision`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectDecision {
    /// Connect the helper's socket to this granted unix socket path (the
    /// policy's own bytes, never the helper's).
    Unix(PathBuf),
    /// Connect the helper's socket to this address, whose port is granted.
    Inet(std::net::SocketAddr),
    /// Fail the `connect` with this errno.
    Refuse(u32),
}

impl SandboxPolicy {
    /// Whether the host must make every `connect` itself: true when the
    /// policy grants a unix socket, which no kernel mechanism bounds by path
    /// (see `docs/policy.md`, "Unix sockets"). The compiled program then
    /// routes every `connect` to the host, ahead of the rules; the host
    /// answers it with [`Self::connect_decision`], and
    /// [`verdict`](Self::verdict) calls any that reach it a violation.
    pub fn supervises_connect(&self) -> bool {
        !self.connect_unix.is_empty()
    }

    /// The host's decision on a supervised `connect` on a socket of family
    /// `domain` (`SO_DOMAIN` of the host's copy of the fd), to the address
    /// `addr` as read from the helper (hostile bytes: only compared, never
    /// used). A unix path must be granted byte for byte (an abstract or
    /// unnamed address never is); an internet port must be in
    /// `connect_tcp`. Anything else is `EACCES`, as Landlock answers; an
    /// address of another family than the socket's is `EAFNOSUPPORT`.
    ///
    /// ```
    /// use ffb_policy::grants::{ConnectDecision, Grants};
    /// use ffb_policy::sandbox::SandboxPolicy;
    /// let p = SandboxPolicy::pure()
    ///     .with_grants(&Grants { connect_unix: vec!["/run/pg/.s.PGSQL.5432".into()], ..Grants::default() })
    ///     .unwrap();
    /// let mut addr = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    /// addr.extend_from_slice(b"/run/pg/.s.PGSQL.5432\0");
    /// assert_eq!(
    ///     p.connect_decision(libc::AF_UNIX, &addr),
    ///     ConnectDecision::Unix("/run/pg/.s.PGSQL.5432".into())
    /// );
    /// ```
    pub fn connect_decision(&self, domain: i32, addr: &[u8]) -> ConnectDecision {
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
        use std::os::unix::ffi::OsStrExt;
        let refuse = ConnectDecision::Refuse(libc::EACCES as u32);
        let Some(family) = addr
            .get(..2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]) as i32)
        else {
            return ConnectDecision::Refuse(libc::EINVAL as u32);
        };
        if family != domain {
            return ConnectDecision::Refuse(libc::EAFNOSUPPORT as u32);
        }
        let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
        match domain {
            libc::AF_UNIX => {
                let path = &addr[2..];
                let path = &path[..path.iter().position(|&b| b == 0).unwrap_or(path.len())];
                if path.is_empty() {
                    return refuse;
                }
                self.connect_unix
                    .iter()
                    .find(|granted| granted.as_os_str().as_bytes() == path)
                    .map_or(refuse, |p| ConnectDecision::Unix(p.clone()))
            }
            libc::AF_INET if addr.len() >= 16 => {
                let ip = Ipv4Addr::new(addr[4], addr[5], addr[6], addr[7]);
                let port = port(addr);
                if self.network.connect_tcp.contains(&port) {
                    ConnectDecision::Inet(SocketAddr::V4(SocketAddrV4::new(ip, port)))
                } else {
                    refuse
                }
            }
            libc::AF_INET6 if addr.len() >= 28 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&addr[8..24]);
                let flow = u32::from_be_bytes([addr[4], addr[5], addr[6], addr[7]]);
                let scope = u32::from_ne_bytes([addr[24], addr[25], addr[26], addr[27]]);
                let port = port(addr);
                if self.network.connect_tcp.contains(&port) {
                    ConnectDecision::Inet(SocketAddr::V6(SocketAddrV6::new(
                        Ipv6Addr::from(octets),
                        port,
                        flow,
                        scope,
                    )))
                } else {
                    refuse
                }
            }
            libc::AF_INET | libc::AF_INET6 => ConnectDecision::Refuse(libc::EINVAL as u32),
            _ => refuse,
        }
    }
}

/// Whether an allow rule already in `rules` lets through every call `rule`
/// does: the same syscall, with a subset of its conditions.
fn covered(rules: &[SyscallRule], rule: &SyscallRule) -> bool {
    rules.iter().any(|r| {
        r.nr == rule.nr
            && r.action == Action::Allow
            && r.conditions.iter().all(|c| rule.conditions.contains(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::SECCOMP_RET_ALLOW;
    use crate::sandbox::{Phase, Verdict, SECCOMP_RET_USER_NOTIF};
    use crate::test_support::{args, nr, run};
    use std::path::Path;

    const AT_FDCWD: u64 = libc::AT_FDCWD as u64;

    fn write_grant() -> Grants {
        Grants {
            write: vec!["/data".into()],
            ..Grants::default()
        }
    }

    #[test]
    fn a_write_grant_brings_in_write_mode_opens_and_what_writing_needs() {
        let p = SandboxPolicy::fs_read()
            .with_grants(&write_grant())
            .unwrap();
        let f = p.compile().unwrap();
        for flags in [
            libc::O_WRONLY,
            libc::O_RDWR | libc::O_CREAT,
            libc::O_WRONLY | libc::O_TRUNC,
            libc::O_WRONLY | libc::O_APPEND,
        ] {
            let a = args(AT_FDCWD, 0, flags as u64);
            assert_eq!(run(&f, nr("openat"), &a), SECCOMP_RET_ALLOW, "{flags:#x}");
        }
        for name in [
            "ftruncate",
            "fsync",
            "fdatasync",
            "rename",
            "renameat2",
            "unlink",
            "unlinkat",
            "mkdir",
            "fallocate",
            "pwrite64",
        ] {
            assert_eq!(
                run(&f, nr(name), &args(3, 0, 0)),
                SECCOMP_RET_ALLOW,
                "{name}"
            );
        }
        for command in [libc::F_GETLK, libc::F_OFD_GETLK] {
            assert_eq!(
                run(&f, nr("fcntl"), &args(3, command as u64, 0)),
                SECCOMP_RET_ALLOW
            );
        }
        // Setting a lock goes to the host, which checks the file; the rules
        // a write grant brings let it go on to that check.
        for command in [
            libc::F_SETLK,
            libc::F_SETLKW,
            libc::F_OFD_SETLK,
            libc::F_OFD_SETLKW,
        ] {
            let a = args(3, command as u64, 0);
            assert_eq!(run(&f, nr("fcntl"), &a), SECCOMP_RET_USER_NOTIF);
            let on_pure = SandboxPolicy::pure().with_grants(&write_grant()).unwrap();
            for policy in [&p, &on_pure] {
                assert_eq!(
                    policy.lock_rules_verdict(nr("fcntl"), &a, Phase::Serving),
                    Verdict::Continue
                );
            }
            assert_eq!(
                SandboxPolicy::pure().lock_rules_verdict(nr("fcntl"), &a, Phase::Serving),
                Verdict::Violation,
                "pure allows no fcntl"
            );
        }
        // Never: flock, leases (floor), metadata.
        for (name, a) in [
            ("flock", args(3, libc::LOCK_EX as u64, 0)),
            ("fcntl", args(3, libc::F_SETLEASE as u64, 0)),
            ("fchmod", args(3, 0o4755, 0)),
            ("utimensat", args(3, 0, 0)),
            ("fsetxattr", args(3, 0, 0)),
        ] {
            assert_eq!(run(&f, nr(name), &a), SECCOMP_RET_USER_NOTIF, "{name}");
            assert_eq!(
                p.verdict(nr(name), &a, Phase::Serving, |_| false),
                Verdict::Violation,
                "{name}"
            );
        }
        let openat = p
            .rules
            .iter()
            .find(|r| r.syscall == "openat" && r.conditions.is_empty())
            .unwrap();
        assert_eq!(openat.origin, Some(GrantKind::Write));
        // fs-read's rules are the policy's own; nothing it covers comes twice.
        let base = SandboxPolicy::fs_read();
        assert_eq!(&p.rules[..base.rules.len()], &base.rules[..]);
        assert!(p.rules[base.rules.len()..]
            .iter()
            .all(|r| r.origin.is_some()));
        assert!(
            !p.rules
                .iter()
                .any(|r| r.syscall == "fcntl" && r.origin.is_some()),
            "fs-read allows every fcntl already"
        );
    }

    #[test]
    fn a_port_on_pure_brings_in_tcp_sockets_only() {
        let g = Grants {
            connect_tcp: vec![5432],
            ..Grants::default()
        };
        let p = SandboxPolicy::pure().with_grants(&g).unwrap();
        let f = p.compile().unwrap();
        let stream = (libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) as u64;
        for family in [libc::AF_INET, libc::AF_INET6] {
            for protocol in [0, libc::IPPROTO_TCP as u64] {
                let a = args(family as u64, stream, protocol);
                assert_eq!(run(&f, nr("socket"), &a), SECCOMP_RET_ALLOW);
            }
        }
        for refused in [
            args(libc::AF_INET as u64, stream, 262),
            args(libc::AF_INET as u64, libc::SOCK_DGRAM as u64, 0),
            args(libc::AF_UNIX as u64, stream, 0),
            args(libc::AF_INET as u64, libc::SOCK_RAW as u64, 6),
        ] {
            assert_eq!(
                p.verdict(nr("socket"), &refused, Phase::Serving, |_| false),
                Verdict::Violation,
                "{refused:?}"
            );
        }
        for name in [
            "connect",
            "getsockopt",
            "setsockopt",
            "recvfrom",
            "ppoll",
            "epoll_pwait",
        ] {
            assert_eq!(
                run(&f, nr(name), &args(3, 0, 0)),
                SECCOMP_RET_ALLOW,
                "{name}"
            );
        }
        let fast_open = [3, 0, 0, 0x2000_0000, 0, 0];
        assert_eq!(
            p.verdict(nr("sendto"), &fast_open, Phase::Serving, |_| false),
            Verdict::Violation
        );
        // No file access came with it.
        assert_eq!(
            p.verdict(nr("openat"), &args(AT_FDCWD, 0, 0), Phase::Serving, |_| {
                false
            }),
            Verdict::Violation
        );
    }

    #[test]
    fn a_unix_grant_brings_in_unix_stream_sockets_only() {
        let g = Grants {
            connect_unix: vec!["/run/pg/.s.PGSQL.5432".into()],
            ..Grants::default()
        };
        let p = SandboxPolicy::pure().with_grants(&g).unwrap();
        let f = p.compile().unwrap();
        let unix = args(libc::AF_UNIX as u64, libc::SOCK_STREAM as u64 | 0x80000, 0);
        assert_eq!(run(&f, nr("socket"), &unix), SECCOMP_RET_ALLOW);
        for refused in [
            args(libc::AF_UNIX as u64, libc::SOCK_DGRAM as u64, 0),
            args(libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0),
        ] {
            assert_eq!(run(&f, nr("socket"), &refused), SECCOMP_RET_USER_NOTIF);
        }
        assert_eq!(p.connect_unix, [PathBuf::from("/run/pg/.s.PGSQL.5432")]);
    }

    #[test]
    fn derivation_is_canonical_and_matches_the_toml() {
        let all = Grants {
            read: vec!["/etc/hosts".into()],
            write: vec!["/data".into()],
            connect_tcp: vec![5432],
            connect_unix: vec!["/run/x.sock".into()],
        };
        let once = SandboxPolicy::pure().with_grants(&all).unwrap();
        let halves = SandboxPolicy::pure()
            .with_grants(&Grants {
                connect_tcp: vec![5432],
                connect_unix: vec!["/run/x.sock".into()],
                ..Grants::default()
            })
            .unwrap()
            .with_grants(&Grants {
                read: vec!["/etc/hosts".into()],
                write: vec!["/data".into()],
                ..Grants::default()
            })
            .unwrap();
        assert_eq!(once.rules, halves.rules);
        assert_eq!(once.grants(), halves.grants());
        assert_eq!(once.clone().with_grants(&all).unwrap(), once, "idempotent");
        let toml = crate::source::parse_toml_policy(
            "[filesystem]\nread = [\"/etc/hosts\"]\nwrite = [\"/data\"]\n[network]\n\
             connect_tcp = [5432]\nconnect_unix = [\"/run/x.sock\"]\n",
            "pure",
        )
        .unwrap();
        assert_eq!(toml, once);
    }

    #[test]
    fn supervised_connects_reach_granted_addresses_only() {
        let p = SandboxPolicy::pure()
            .with_grants(&Grants {
                connect_tcp: vec![5432],
                connect_unix: vec!["/run/pg/.s.PGSQL.5432".into()],
                ..Grants::default()
            })
            .unwrap();
        assert!(p.supervises_connect());
        assert!(!SandboxPolicy::db_client().supervises_connect());
        // Every connect goes to the host, ahead of the rules that allow it;
        // one that reaches the verdict was not made by the host, and must not run.
        let f = p.compile().unwrap();
        assert_eq!(
            run(&f, nr("connect"), &args(3, 0, 16)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            p.verdict(nr("connect"), &args(3, 0, 16), Phase::Serving, |_| false),
            Verdict::Violation
        );
        let tcp_only = SandboxPolicy::pure()
            .with_grants(&Grants {
                connect_tcp: vec![5432],
                ..Grants::default()
            })
            .unwrap();
        let f = tcp_only.compile().unwrap();
        assert_eq!(
            run(&f, nr("connect"), &args(3, 0, 16)),
            SECCOMP_RET_ALLOW,
            "Landlock bounds TCP"
        );
        assert_ne!(
            crate::hash::policy_hash(&p),
            crate::hash::policy_hash(
                &p.clone()
                    .with_grants(&Grants {
                        connect_unix: vec!["/run/other.sock".into()],
                        ..Grants::default()
                    })
                    .unwrap()
            ),
            "the unix path is part of the hash"
        );
        let unix = |path: &[u8]| {
            let mut a = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
            a.extend_from_slice(path);
            a
        };
        let eacces = ConnectDecision::Refuse(libc::EACCES as u32);
        assert_eq!(
            p.connect_decision(libc::AF_UNIX, &unix(b"/run/pg/.s.PGSQL.5432")),
            ConnectDecision::Unix("/run/pg/.s.PGSQL.5432".into())
        );
        for other in [
            &b"/run/pg/.s.PGSQL.5433\0"[..],
            b"/run/pg/.s.PGSQL.543",
            b"/run/pg/.s.PGSQL.5432/",
            b"\0/run/pg/.s.PGSQL.5432",
            b"",
        ] {
            assert_eq!(
                p.connect_decision(libc::AF_UNIX, &unix(other)),
                eacces,
                "{other:?}"
            );
        }
        let v4 = |port: u16| {
            let mut a = (libc::AF_INET as u16).to_ne_bytes().to_vec();
            a.extend_from_slice(&port.to_be_bytes());
            a.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
            a
        };
        assert_eq!(
            p.connect_decision(libc::AF_INET, &v4(5432)),
            ConnectDecision::Inet("127.0.0.1:5432".parse().unwrap())
        );
        assert_eq!(p.connect_decision(libc::AF_INET, &v4(5433)), eacces);
        assert_eq!(
            p.connect_decision(libc::AF_INET, &v4(5432)[..8]),
            ConnectDecision::Refuse(libc::EINVAL as u32)
        );
        assert_eq!(
            p.connect_decision(libc::AF_UNIX, &v4(5432)),
            ConnectDecision::Refuse(libc::EAFNOSUPPORT as u32),
            "a unix socket given an internet address"
        );
        let mut v6 = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        v6.extend_from_slice(&5432u16.to_be_bytes());
        v6.extend_from_slice(&[0; 4]);
        v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0; 4]);
        assert_eq!(
            p.connect_decision(libc::AF_INET6, &v6),
            ConnectDecision::Inet("[::1]:5432".parse().unwrap())
        );
    }

    #[test]
    fn a_lock_is_within_a_write_grant_only_beneath_it_component_by_component() {
        let dir = std::env::temp_dir().join(format!("ffb-grant-covers-{}", std::process::id()));
        let real = dir.join("real");
        std::fs::create_dir_all(&real).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let p = SandboxPolicy::pure()
            .with_grants(&Grants {
                write: vec![link.clone(), "/srv/app/data.db".into()],
                read: vec![dir.clone()],
                ..Grants::default()
            })
            .unwrap();
        // The kernel names an open file with its symlinks resolved.
        assert!(p.write_grant_covers(&real.join("x.db")));
        assert!(p.write_grant_covers(&link.join("x.db")));
        assert!(p.write_grant_covers(Path::new("/srv/app/data.db")));
        for outside in [
            dir.join("other.db"),
            dir.join("real2").join("x.db"),
            "/srv/app/data.db-journal".into(),
            "relative/data.db".into(),
        ] {
            assert!(!p.write_grant_covers(&outside), "{outside:?}");
        }
        // A read grant covers nothing.
        assert!(!SandboxPolicy::fs_read().write_grant_covers(&real.join("x.db")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_grants_are_errors() {
        let relative = Grants {
            write: vec!["data".into()],
            ..Grants::default()
        };
        assert_eq!(
            SandboxPolicy::pure()
                .with_grants(&relative)
                .unwrap_err()
                .to_string(),
            "[filesystem] write path 'data' must be absolute (start with '/')"
        );
        let zero = Grants {
            connect_tcp: vec![0],
            ..Grants::default()
        };
        assert!(SandboxPolicy::pure().with_grants(&zero).is_err());
    }
}
