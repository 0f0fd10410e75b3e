//! The policy model: what a [`SandboxPolicy`] says, independent of the file
//! it came from and of the BPF it compiles to.
//!
//! [`Action`] and [`CmpOp`] have one text form each ([`Display`](fmt::Display)
//! and [`FromStr`]), the one policy files and `policy explain` use, so what
//! `explain` prints can be pasted into a policy file.
//!
//! ```
//! use ffb_policy::sandbox::{Action, CmpOp};
//! assert_eq!(Action::Errno(13).to_string(), "errno:EACCES");
//! assert_eq!("errno:EACCES".parse::<Action>(), Ok(Action::Errno(13)));
//! assert_eq!("ge".parse::<CmpOp>(), Ok(CmpOp::Ge));
//! assert_eq!(CmpOp::MaskedEq(0x10).to_string(), "masked_eq");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use ffb_contract::artefacts::{CompiledFilter, Identity, Limits, Namespace, NetworkRules};

use super::floor::floor_entry_granted_by;
use super::presets::PRESETS;
use crate::errno::{errno_label, errno_number};
use crate::grants::GrantKind;
use crate::syscalls::number_of;

/// Errors in building or compiling a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A syscall name that x86_64 does not have.
    #[error("unknown syscall '{0}'")]
    UnknownSyscall(String),
    /// A preset name that does not exist.
    #[error("unknown policy preset '{0}' (presets: {presets})", presets = PRESETS.join(", "))]
    UnknownPreset(String),
    /// A condition on an argument index above 5.
    #[error("syscall '{syscall}': argument index {index} is out of range (0 to 5)")]
    BadArgIndex {
        /// The syscall the rule is for.
        syscall: String,
        /// The index that was given.
        index: u8,
    },
    /// A policy that asks for a syscall the floor forbids.
    #[error("syscall '{syscall}' can never be allowed: {reason}")]
    Floor {
        /// The syscall's name.
        syscall: String,
        /// Why the floor forbids it.
        reason: &'static str,
    },
    /// seccompiler refused the program.
    #[error("the seccomp filter does not compile: {0}")]
    Compile(String),
    /// A grant that cannot be given (a relative path, port 0).
    #[error("{0}")]
    Grant(String),
}

/// Comparison operators for argument conditions (seccompiler's set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// `arg == value`
    Eq,
    /// `arg != value`
    Ne,
    /// `arg < value`
    Lt,
    /// `arg <= value`
    Le,
    /// `arg > value`
    Gt,
    /// `arg >= value`
    Ge,
    /// `arg & mask == value`
    MaskedEq(u64),
}

impl CmpOp {
    /// Every operator's name, as policy files write it.
    pub const NAMES: [&'static str; 7] = ["eq", "ne", "lt", "le", "gt", "ge", "masked_eq"];

    /// The operator's name, as policy files write it (`masked_eq` without its
    /// mask: every format gives the mask in a field of its own).
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::MaskedEq(_) => "masked_eq",
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CmpOp {
    type Err = String;

    /// Parses an operator name. `masked_eq` parses with the full mask
    /// (`u64::MAX`, which makes it `eq`): the caller puts in the mask its
    /// format gives separately.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "masked_eq" => CmpOp::MaskedEq(u64::MAX),
            other => {
                return Err(format!(
                    "unknown op '{other}' (ops: {})",
                    CmpOp::NAMES.join(", ")
                ))
            }
        })
    }
}

/// One condition on a syscall argument. All conditions of a rule must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgCondition {
    /// Argument index, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub op: CmpOp,
    /// The value compared against (all 64 bits).
    pub value: u64,
}

impl ArgCondition {
    /// A condition `arg[index] <op> value`.
    pub fn new(index: u8, op: CmpOp, value: u64) -> Self {
        Self { index, op, value }
    }

    /// Whether the condition holds for these syscall arguments.
    pub fn holds(&self, args: &[u64; 6]) -> bool {
        let Some(&arg) = args.get(self.index as usize) else {
            return false;
        };
        match self.op {
            CmpOp::Eq => arg == self.value,
            CmpOp::Ne => arg != self.value,
            CmpOp::Lt => arg < self.value,
            CmpOp::Le => arg <= self.value,
            CmpOp::Gt => arg > self.value,
            CmpOp::Ge => arg >= self.value,
            CmpOp::MaskedEq(mask) => arg & mask == self.value,
        }
    }

    /// Why the condition can never hold, if it cannot. Policy files reject
    /// such a condition (it is always a mistake); imports drop its rule.
    pub(crate) fn impossible(&self) -> Option<String> {
        let i = self.index;
        match self.op {
            CmpOp::Lt if self.value == 0 => Some(format!("arg{i} < 0 (arguments are unsigned)")),
            CmpOp::Gt if self.value == u64::MAX => {
                Some(format!("arg{i} > {:#x} (no argument is larger)", u64::MAX))
            }
            CmpOp::MaskedEq(mask) if self.value & !mask != 0 => Some(format!(
                "arg{i} & {mask:#x} == {:#x}: the value has bits outside the mask",
                self.value
            )),
            _ => None,
        }
    }

    /// Why this condition and `other`, in one rule, can never hold together.
    pub(crate) fn impossible_with(&self, other: &ArgCondition) -> Option<String> {
        if self.index != other.index {
            return None;
        }
        let i = self.index;
        match (self.op, other.op) {
            (CmpOp::Eq, CmpOp::Ne) | (CmpOp::Ne, CmpOp::Eq) if self.value == other.value => {
                Some(format!("arg{i} == {v} and arg{i} != {v}", v = self.value))
            }
            (CmpOp::Eq, CmpOp::Eq) if self.value != other.value => Some(format!(
                "arg{i} == {} and arg{i} == {}",
                self.value, other.value
            )),
            _ => None,
        }
    }
}

/// An argument index as a policy gives it, checked to name one of the six
/// syscall arguments; the error is the message every format shows.
pub(crate) fn arg_index<N>(index: N) -> Result<u8, String>
where
    N: Copy + fmt::Display + TryInto<u8>,
{
    index
        .try_into()
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| format!("argument index {index} is out of range (0 to 5)"))
}

/// What happens to a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The syscall runs.
    Allow,
    /// The syscall fails with this errno; the helper goes on.
    Errno(u32),
    /// The syscall runs and the kernel logs it.
    Log,
    /// The helper is killed and the call returns `policy_violation` naming the syscall.
    Kill,
}

impl Action {
    /// Whether the syscall runs (allow and log): what a rule on a floor
    /// syscall must never do.
    pub fn runs(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

impl fmt::Display for Action {
    /// As written in a policy file: `allow`, `kill`, `log`, `errno:EPERM`
    /// (the errno's name, or its number when it has none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Kill => f.write_str("kill"),
            Action::Log => f.write_str("log"),
            Action::Errno(n) => write!(f, "errno:{}", errno_label(*n)),
        }
    }
}

impl FromStr for Action {
    type Err = String;

    /// Parses `allow`, `kill`, `log` or `errno:NAME` (NAME an errno name or number).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "allow" => Ok(Action::Allow),
            "kill" => Ok(Action::Kill),
            "log" => Ok(Action::Log),
            other => match other.strip_prefix("errno:") {
                Some(name) => errno_number(name).map(Action::Errno).ok_or_else(|| {
                    format!("unknown errno '{name}' (use a name such as EPERM or EACCES)")
                }),
                None => Err(format!(
                    "unknown action '{other}' (actions: allow, kill, log, errno:NAME)"
                )),
            },
        }
    }
}

/// A rule: `syscall` gets `action` when every condition holds (always, if there are none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallRule {
    /// The syscall's name.
    pub syscall: String,
    /// Its x86_64 number.
    pub nr: i64,
    /// What happens when the rule matches.
    pub action: Action,
    /// Conditions that must all hold.
    pub conditions: Vec<ArgCondition>,
    /// The grant that brought the rule in ([`crate::grants`]), or `None` for
    /// a rule the policy (its preset, file or import) wrote itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<GrantKind>,
}

impl SyscallRule {
    /// A rule for the syscall called `name`.
    pub fn new(
        name: &str,
        action: Action,
        conditions: Vec<ArgCondition>,
    ) -> Result<Self, PolicyError> {
        let nr = number_of(name).ok_or_else(|| PolicyError::UnknownSyscall(name.to_string()))?;
        if let Some(c) = conditions.iter().find(|c| c.index > 5) {
            return Err(PolicyError::BadArgIndex {
                syscall: name.to_string(),
                index: c.index,
            });
        }
        Ok(Self {
            syscall: name.to_string(),
            nr,
            action,
            conditions,
            origin: None,
        })
    }

    /// Whether the rule decides this call.
    pub(crate) fn matches(&self, nr: i64, args: &[u64; 6]) -> bool {
        self.nr == nr && self.conditions.iter().all(|c| c.holds(args))
    }
}

/// A sandbox policy: which syscalls the extension may make, and the helper's limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// A name for messages and audit lines (a preset name or a file path).
    pub name: String,
    /// What happens to a syscall no rule allows. Never [`Action::Allow`].
    pub default_action: Action,
    /// Rules, in the order written.
    pub rules: Vec<SyscallRule>,
    /// Resource limits.
    pub limits: Limits,
    /// Landlock filesystem rules. When the policy confines, empty means
    /// nothing beyond what the dynamic loader reads (the system library
    /// directories, `/etc/ld.so.cache`, the library's own directory).
    pub filesystem: FilesystemRules,
    /// Landlock TCP rules.
    pub network: NetworkRules,
    /// Unix-domain stream sockets the extension may connect to, by path
    /// (`[network] connect_unix`). Landlock cannot bound these: see
    /// [`crate::grants`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_unix: Vec<std::path::PathBuf>,
    /// Namespaces the helper is placed in (none unless asked).
    pub namespaces: Vec<Namespace>,
    /// Run the helper as this user and group instead of the host's.
    pub run_as: Option<Identity>,
    /// Non-fatal findings from loading the policy (for example, an imported
    /// profile that allows floor syscalls, which stay denied).
    pub warnings: Vec<String>,
    /// Whether Landlock confines the extension to [`Self::filesystem`] and
    /// [`Self::network`] (plus the system library directories, for loading):
    /// true for ffb's presets and policy files, where no paths listed means no
    /// file reachable; false for imported seccomp-only profiles, which say
    /// nothing of paths or ports.
    #[serde(default = "confined")]
    pub confine: bool,
}

/// A serialized policy that does not say whether it confines does: confining
/// is the safe reading.
fn confined() -> bool {
    true
}

/// Paths the extension may reach (Landlock). A directory grants what is beneath it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemRules {
    /// Readable paths.
    pub read: Vec<std::path::PathBuf>,
    /// Writable (and readable) paths.
    pub write: Vec<std::path::PathBuf>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self::pure()
    }
}

impl SandboxPolicy {
    /// Adds an unconditional allow rule for `syscall`.
    ///
    /// ```
    /// use ffb_policy::sandbox::SandboxPolicy;
    /// let p = SandboxPolicy::pure().allow("capget").unwrap();
    /// assert!(p.allow("nope").is_err());
    /// ```
    pub fn allow(self, syscall: &str) -> Result<Self, PolicyError> {
        self.with_rule(SyscallRule::new(syscall, Action::Allow, vec![])?)
    }

    /// Adds a rule. Rules that allow a floor syscall are rejected.
    pub fn with_rule(mut self, rule: SyscallRule) -> Result<Self, PolicyError> {
        if rule.action.runs() {
            if let Some(entry) = floor_entry_granted_by(&rule) {
                return Err(PolicyError::Floor {
                    syscall: rule.syscall.clone(),
                    reason: entry.reason,
                });
            }
        }
        self.rules.push(rule);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for action in [
            Action::Allow,
            Action::Kill,
            Action::Log,
            Action::Errno(1),
            Action::Errno(4000),
        ] {
            assert_eq!(action.to_string().parse::<Action>(), Ok(action));
        }
        assert_eq!(Action::Errno(4000).to_string(), "errno:4000");
        assert_eq!(
            "trap".parse::<Action>().unwrap_err(),
            "unknown action 'trap' (actions: allow, kill, log, errno:NAME)"
        );
        assert_eq!(
            "errno:EFOO".parse::<Action>().unwrap_err(),
            "unknown errno 'EFOO' (use a name such as EPERM or EACCES)"
        );
        for name in CmpOp::NAMES {
            assert_eq!(name.parse::<CmpOp>().unwrap().to_string(), name);
        }
        assert_eq!(
            "between".parse::<CmpOp>().unwrap_err(),
            "unknown op 'between' (ops: eq, ne, lt, le, gt, ge, masked_eq)"
        );
    }

    #[test]
    fn impossible_conditions_say_why() {
        let c = |op, value| ArgCondition::new(1, op, value);
        assert!(c(CmpOp::Lt, 0).impossible().unwrap().contains("arg1 < 0"));
        assert!(c(CmpOp::Gt, u64::MAX).impossible().is_some());
        assert!(c(CmpOp::MaskedEq(1), 2).impossible().is_some());
        assert!(c(CmpOp::MaskedEq(3), 2).impossible().is_none());
        assert_eq!(
            c(CmpOp::Eq, 2).impossible_with(&c(CmpOp::Ne, 2)).unwrap(),
            "arg1 == 2 and arg1 != 2"
        );
        assert!(c(CmpOp::Eq, 2).impossible_with(&c(CmpOp::Eq, 3)).is_some());
        assert!(c(CmpOp::Eq, 2)
            .impossible_with(&ArgCondition::new(0, CmpOp::Eq, 3))
            .is_none());
        assert_eq!(arg_index(5i64), Ok(5));
        assert_eq!(
            arg_index(6u64).unwrap_err(),
            "argument index 6 is out of range (0 to 5)"
        );
        assert!(arg_index(-1i64).is_err());
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            SandboxPolicy::pure().allow("frobnicate").unwrap_err(),
            PolicyError::UnknownSyscall("frobnicate".into())
        );
        assert!(SandboxPolicy::preset("nope").is_err());
    }
}
