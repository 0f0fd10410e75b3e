//! The compiled artefacts a helper receives in its spawn request and applies
//! to itself before it loads the library: the seccomp program, the Landlock
//! rules, resource limits, namespaces and identity.
//!
//! The host's policy compilers (`ffb-policy`) produce these; the helper only
//! applies them, so it never parses a policy.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A compiled BPF program, ready to install. Each instruction is packed as
/// `code | jt << 16 | jf << 24 | k << 32` so it travels as plain numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledFilter {
    /// The packed instructions.
    pub instructions: Vec<u64>,
}

impl CompiledFilter {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.instructions.len()
    }

    /// Whether the program is empty (never true for a compiled policy).
    pub fn is_empty(&self) -> bool {
        self.instructions.is_empty()
    }

    /// The program as kernel `sock_filter` instructions.
    pub fn to_sock_filters(&self) -> Vec<libc::sock_filter> {
        self.instructions
            .iter()
            .map(|&w| libc::sock_filter {
                code: w as u16,
                jt: (w >> 16) as u8,
                jf: (w >> 24) as u8,
                k: (w >> 32) as u32,
            })
            .collect()
    }
}

/// Resource limits the helper sets on itself before it loads anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Address-space limit (`RLIMIT_AS`), in MiB. The shared arena counts toward it.
    pub memory_mb: u64,
    /// CPU-time limit (`RLIMIT_CPU`) over the helper's life, in seconds.
    pub cpu_seconds: u64,
    /// Open-file limit (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Per-call timeout, in milliseconds.
    pub call_timeout_ms: u64,
    /// Most threads the helper may run (enforced through `RLIMIT_NPROC` only when
    /// the helper runs as its own user; otherwise advisory).
    pub threads: u64,
    /// Most signals queued to the helper and not yet delivered
    /// (`RLIMIT_SIGPENDING`). The kernel counts pending signals per user,
    /// so without this cap one helper could use up the whole user's quota
    /// and make every other process of that user fail `sigqueue` and
    /// `timer_create`.
    #[serde(default = "default_pending_signals")]
    pub pending_signals: u64,
}

/// The default [`Limits::pending_signals`]: plenty for a library that uses
/// a few timers or real-time signals, far below a user's quota.
pub const DEFAULT_PENDING_SIGNALS: u64 = 64;

fn default_pending_signals() -> u64 {
    DEFAULT_PENDING_SIGNALS
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 1024,
            cpu_seconds: 3600,
            open_files: 64,
            call_timeout_ms: 30_000,
            threads: 16,
            pending_signals: DEFAULT_PENDING_SIGNALS,
        }
    }
}

/// TCP ports the extension may reach (Landlock ABI 4 and later).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRules {
    /// Ports it may connect to.
    pub connect_tcp: Vec<u16>,
    /// Ports it may bind.
    pub bind_tcp: Vec<u16>,
}

impl NetworkRules {
    /// Whether any TCP rule is present.
    pub fn is_empty(&self) -> bool {
        self.connect_tcp.is_empty() && self.bind_tcp.is_empty()
    }
}

/// A Linux namespace the helper can be placed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// A user namespace (the helper is root only inside it).
    User,
    /// A pid namespace.
    Pid,
    /// An empty network namespace: no network at all.
    Net,
    /// An IPC namespace.
    Ipc,
    /// A mount namespace.
    Mount,
}

impl Namespace {
    /// Every namespace, in the order the helper enters them.
    pub const ALL: [Namespace; 5] = [
        Namespace::User,
        Namespace::Pid,
        Namespace::Net,
        Namespace::Ipc,
        Namespace::Mount,
    ];

    /// The name policy files and `policy explain` use.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Mount => "mount",
        }
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Namespace {
    type Err = String;

    /// Parses a namespace name; the error lists the names there are.
    ///
    /// ```
    /// use ffb_contract::artefacts::Namespace;
    /// assert_eq!("ipc".parse::<Namespace>(), Ok(Namespace::Ipc));
    /// assert!("uts".parse::<Namespace>().unwrap_err().contains("user, pid, net, ipc, mount"));
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Namespace::ALL
            .into_iter()
            .find(|n| n.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Namespace::ALL.iter().map(|n| n.name()).collect();
                format!(
                    "unknown namespace '{text}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// A user and group to run the helper as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
    /// The name it was given by, for messages.
    pub name: String,
}

/// What Landlock restricts in a helper. Filesystem access is restricted only
/// when `fs` is set, TCP only when `net` is set. For a policy that confines
/// (`SandboxPolicy::confine`) the host always sets both, even with no paths
/// or ports listed; for one that does not, neither.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockSpec {
    /// Filesystem rules, or `None` to leave the filesystem to seccomp and DAC.
    pub fs: Option<FsSpec>,
    /// TCP rules, or `None` to leave the network to seccomp.
    pub net: Option<NetworkRules>,
    /// Whether the policy itself lists paths or ports, so Landlock must be
    /// fully enforced; otherwise it is defense in depth and applied as far as
    /// the running kernel supports it.
    pub required: bool,
}

/// Landlock filesystem rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsSpec {
    /// Readable (and executable) paths: the policy's, plus what loading the
    /// library needs (its own path and the system library directories).
    pub read: Vec<PathBuf>,
    /// Writable paths.
    pub write: Vec<PathBuf>,
    /// Directories that may be listed (`LANDLOCK_ACCESS_FS_READ_DIR`, here
    /// and beneath) but whose files stay closed unless `read` grants them:
    /// an environment's site-packages, searched by imports, of which only
    /// the allowed packages are readable.
    pub list: Vec<PathBuf>,
}
