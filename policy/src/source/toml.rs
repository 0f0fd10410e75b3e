//! The TOML policy file: the format ops write, and [`parse_toml_policy`].
//!
//! # The TOML policy file
//!
//! Every key is optional. A file that sets nothing is the `pure` preset; an
//! empty (or whitespace-only) file is an error, so a truncated deploy is noticed.
//!
//! ```toml
//! extends = "fs-read"            # a preset: pure | fs-read | db-client
//!
//! [seccomp]
//! # import = "docker.json"       # or: the syscall rules of a Docker/OCI profile
//! #                              # or a seccompiler filter (then no extends and
//! #                              # no default_action here)
//! default_action = "kill"        # kill | errno:EPERM (any errno name) | log
//! allow = ["getpid"]             # extra syscalls, by name, any arguments
//!
//! [[seccomp.rule]]               # one rule per [[seccomp.rule]] table
//! syscall = "socket"
//! action = "allow"               # allow (the default) | kill | log | errno:NAME
//! args = [{ index = 0, op = "eq", value = 1 }]
//!
//! [filesystem]                   # Landlock
//! # unconfined = true            # only beside an import: no Landlock (linted)
//! read = ["/etc/hostname", "/usr/share/zoneinfo"]
//! write = ["/var/lib/app"]       # a directory grants what is beneath it
//!
//! [network]                      # Landlock TCP rules (ABI >= 4)
//! connect_tcp = [5432]
//! bind_tcp = []
//! connect_unix = ["/run/postgresql/.s.PGSQL.5432"]   # the host connects, to these only
//!
//! [limits]
//! memory_mb = 1024
//! cpu_seconds = 60
//! open_files = 64
//! threads = 16
//! call_timeout_ms = 30000
//!
//! [namespaces]                   # off unless asked
//! enable = ["user", "pid", "ipc"]
//!
//! [identity]                     # run the helper as this user (name or number)
//! run_as = "nobody"
//! group = "nogroup"              # optional; default: the user's primary group
//! ```
//!
//! ## Keys
//!
//! * `extends` (string, default `"pure"`): the preset the file starts from,
//!   one of [`PRESETS`](crate::sandbox::PRESETS). The file's `allow` list and
//!   rules are added after the preset's rules (the first rule that matches a
//!   call decides, so a file cannot narrow what its preset allows);
//!   `[limits]` override the preset's field by field; the `[filesystem]` and
//!   `[network]` lists are added to the preset's, and the syscalls they need
//!   are derived and added after the file's own rules
//!   ([`crate::grants`]); `[namespaces]` and `[identity]` are the file's own.
//! * `[seccomp]`
//!   * `import` (string): take the syscall rules and the default action from
//!     a Docker/OCI seccomp profile or a seccompiler filter, at this path
//!     relative to the TOML file's directory (or absolute), evaluated as
//!     [`import_docker`](crate::source::import_docker) and
//!     [`import_seccompiler`](crate::source::import_seccompiler) do. The rest
//!     of the file (`allow`, rules, `[filesystem]`, `[network]`, `[limits]`,
//!     ...) applies beside it: `allow` and `[[seccomp.rule]]`s come after the
//!     profile's rules. Not with `extends` or `default_action`. Only a JSON
//!     profile can be imported, never another TOML policy, so an import does
//!     not import in turn. The policy's warnings say where the rules came
//!     from, and each of the profile's warnings is prefixed with the import.
//!   * `default_action` (string, default: the preset's, `"kill"`): what happens
//!     to a syscall no rule allows. `"kill"` stops the helper and the call
//!     returns a `policy_violation` naming the syscall; `"errno:NAME"` makes the
//!     syscall fail with that errno (`errno:EPERM`, `errno:EACCES`, any Linux
//!     errno name, or a number); `"log"` lets it run and the kernel logs it (for
//!     finding out what a library needs; never for production). `"allow"` is
//!     rejected: a policy must deny by default.
//!   * `allow` (array of syscall names): syscalls allowed with any arguments.
//!   * `[[seccomp.rule]]` (array of tables): rules with argument conditions.
//!     * `syscall` (string, required): the x86_64 syscall name.
//!     * `action` (string, default `"allow"`): `allow`, `kill`, `log` or `errno:NAME`.
//!     * `args` (array of inline tables, default none): conditions that must
//!       all hold. Each has `index` (0 to 5, the argument), `op` (`eq`, `ne`,
//!       `lt`, `le`, `gt`, `ge` or `masked_eq`), `value` (an integer from 0, or
//!       a string such as `"0xffffffffffffffff"` for values TOML integers
//!       cannot hold) and, for `masked_eq` only, `mask` (`arg & mask == value`).
//!       All 64 bits of the argument are compared. Conditions that can never
//!       hold are rejected (`lt 0`, `gt` the largest value, `eq` and `ne` of the
//!       same value, two different `eq`s, a `masked_eq` value with bits outside
//!       its mask).
//!
//!   Syscalls on the floor ([`FLOOR`](crate::sandbox::FLOOR): exec, new
//!   processes, ptrace, bpf, io_uring, mount, ...) can never be allowed or
//!   logged; `clone` is accepted only with a condition
//!   `{ index = 0, op = "masked_eq", mask = 0x10000, value = 0x10000 }`
//!   (CLONE_THREAD: threads, not processes). The presets already allow threads.
//! * `[filesystem]`: Landlock paths, each absolute. `read` (array): paths that
//!   may be read; `write` (array): paths that may be written (and read). A
//!   directory grants what is beneath it. Each grant brings in the syscalls
//!   that reading, or writing, creating, renaming and removing, take
//!   ([`crate::grants`]). No paths listed means no file is
//!   reachable once the library is loaded, whatever the seccomp rules say
//!   (an imported profile included). `unconfined = true` (only with a
//!   `[seccomp] import`, and with no paths or ports listed) turns Landlock
//!   off for the imported profile: the extension then reaches every file and
//!   port the helper's user can. `ffb policy lint` warns about it
//!   (`unconfined-import`).
//! * `[network]`: Landlock TCP port rules (kernel ABI 4 and later).
//!   `connect_tcp` (array of ports 1 to 65535): ports the library may connect
//!   to (bringing in TCP sockets, `connect` and the send, receive and poll
//!   calls); `bind_tcp`: ports it may bind (bringing in nothing: allow `bind`
//!   and what listening takes by hand). `connect_unix` (array of absolute
//!   paths): unix stream sockets it may connect to, bringing in unix stream
//!   sockets and the same calls; the host then makes every `connect` itself,
//!   to these paths and the `connect_tcp` ports only
//!   ([`SandboxPolicy::connect_decision`]).
//! * `[limits]` (integers, each at least 1): `memory_mb` (address space, MiB,
//!   default 1024), `cpu_seconds` (CPU time over the helper's life, default
//!   3600), `open_files` (default 64), `threads` (default 16),
//!   `call_timeout_ms` (per call, default 30000).
//! * `[namespaces]`: `enable` (array of `user`, `pid`, `net`, `ipc`, `mount`):
//!   namespaces the helper is placed in. None unless asked.
//! * `[identity]`: `run_as` (a user name or a uid): run the helper as this
//!   user. Names are looked up in `/etc/passwd` when the policy is loaded.
//!   `group` (a group name or a gid, optional): the group; by default the
//!   user's primary group (for a bare uid without a passwd entry, the same
//!   number).
//!
//! Errors name the file, line and column of the offending value:
//! `policy.toml:7:11: unknown syscall 'getpdi' (did you mean 'getpid'?)`.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::{unknown_syscall_message, PolicyFileError};
use crate::identity::resolve_identity_here;
use crate::kernel::running_kernel;
use crate::sandbox::{
    arg_index, floor_entry_granted_by, Action, ArgCondition, CmpOp, Namespace, SandboxPolicy,
    SyscallRule,
};
use crate::syscalls::number_of;

use super::import::load_import;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    extends: Option<Spanned<String>>,
    seccomp: Option<RawSeccomp>,
    filesystem: Option<RawFilesystem>,
    network: Option<RawNetwork>,
    limits: Option<RawLimits>,
    namespaces: Option<RawNamespaces>,
    identity: Option<RawIdentity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeccomp {
    import: Option<Spanned<String>>,
    default_action: Option<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    syscall: Spanned<String>,
    action: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<Spanned<RawArg>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArg {
    index: Spanned<i64>,
    op: Spanned<String>,
    value: Spanned<RawNumber>,
    mask: Option<Spanned<RawNumber>>,
}

/// An integer, or a string holding one (decimal or `0x` hex) for values past `i64`.
enum RawNumber {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrText(
            "an integer from 0, or a string such as \"0xffffffffffffffff\"",
        ))
        .map(|v| match v {
            Ok(n) => RawNumber::Int(n),
            Err(s) => RawNumber::Text(s),
        })
    }
}

/// A visitor for "an integer or a string", with a readable expectation.
struct IntOrText(&'static str);

impl serde::de::Visitor<'_> for IntOrText {
    type Value = Result<i64, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Ok(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_err(|_| v.to_string()))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Err(v.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilesystem {
    unconfined: Option<Spanned<bool>>,
    #[serde(default)]
    read: Vec<Spanned<String>>,
    #[serde(default)]
    write: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    connect_tcp: Vec<Spanned<i64>>,
    #[serde(default)]
    bind_tcp: Vec<Spanned<i64>>,
    #[serde(default)]
    connect_unix: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<Spanned<i64>>,
    cpu_seconds: Option<Spanned<i64>>,
    open_files: Option<Spanned<i64>>,
    threads: Option<Spanned<i64>>,
    call_timeout_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespaces {
    #[serde(default)]
    enable: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    run_as: Spanned<RawId>,
    group: Option<Spanned<RawId>>,
}

/// A user or group: a name or a number.
enum RawId {
    Number(i64),
    Name(String),
}

impl<'de> Deserialize<'de> for RawId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrText("a name or a number"))
            .map(|v| match v {
                Ok(n) => RawId::Number(n),
                Err(s) => RawId::Name(s),
            })
    }
}

impl RawId {
    fn as_text(&self) -> String {
        match self {
            RawId::Number(n) => n.to_string(),
            RawId::Name(s) => s.clone(),
        }
    }
}

/// Errors while converting a parsed file: a span and a message.
type Fail = (Range<usize>, String);

/// Parses a TOML policy file (the format described in this module's
/// documentation). `path` names the file in errors and becomes the policy's name.
///
/// A `[seccomp] import` of a Docker/OCI profile is evaluated for the running
/// kernel (see [`parse_toml_policy_for`]).
pub fn parse_toml_policy(text: &str, path: &str) -> Result<SandboxPolicy, PolicyFileError> {
    parse_toml_policy_for(text, path, running_kernel())
}

/// [`parse_toml_policy`], with a `[seccomp] import` of a Docker/OCI profile
/// evaluated for `kernel`, `(major, minor)`.
pub fn parse_toml_policy_for(
    text: &str,
    path: &str,
    kernel: (u32, u32),
) -> Result<SandboxPolicy, PolicyFileError> {
    if text.trim().is_empty() {
        return Err(PolicyFileError::at(path, text, 0, "empty policy file"));
    }
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        PolicyFileError::at(path, text, offset, e.message())
    })?;
    convert(raw, path, kernel)
        .map_err(|(span, message)| PolicyFileError::at(path, text, span.start, message))
}

fn convert(raw: RawFile, path: &str, kernel: (u32, u32)) -> Result<SandboxPolicy, Fail> {
    let import = raw.seccomp.as_ref().and_then(|s| s.import.as_ref());
    if let Some((default, import)) = raw
        .seccomp
        .as_ref()
        .and_then(|s| s.default_action.as_ref().zip(s.import.as_ref()))
    {
        return Err((
            default.span(),
            format!(
                "default_action comes from the imported profile '{}': set it there",
                import.get_ref()
            ),
        ));
    }
    let mut policy = match (&raw.extends, import) {
        (Some(name), Some(_)) => {
            return Err((
                name.span(),
                "extends and [seccomp] import both give the syscall rules: use one \
                 (the imported profile starts from no rules and ffb's default limits)"
                    .to_string(),
            ))
        }
        (None, Some(import)) => load_import(import.get_ref(), path, kernel)
            .map_err(|message| (import.span(), message))?,
        (None, None) => SandboxPolicy::pure(),
        (Some(name), None) => {
            SandboxPolicy::preset(name.get_ref()).map_err(|e| (name.span(), e.to_string()))?
        }
    };
    policy.name = path.to_string();

    if let Some(seccomp) = &raw.seccomp {
        if let Some(default) = &seccomp.default_action {
            policy.default_action = parse_default_action(default)?;
        }
        for name in &seccomp.allow {
            let rule = SyscallRule::new(&syscall_number_checked(name)?, Action::Allow, vec![])
                .map_err(|e| (name.span(), e.to_string()))?;
            check_floor(&rule, name.span())?;
            if !policy.rules.contains(&rule) {
                policy.rules.push(rule);
            }
        }
        for raw_rule in &seccomp.rule {
            let rule = convert_rule(raw_rule)?;
            policy.rules.push(rule);
        }
    }

    let mut unconfined = None;
    if let Some(fs) = raw.filesystem {
        if let Some(flag) = fs.unconfined.as_ref().filter(|f| *f.get_ref()) {
            if import.is_none() {
                return Err((
                    flag.span(),
                    "unconfined = true is only for a [seccomp] import: ffb's own policies \
                     are always confined by Landlock"
                        .to_string(),
                ));
            }
            unconfined = Some(flag.span());
        }
        for (list, into) in [
            (&fs.read, &mut policy.filesystem.read),
            (&fs.write, &mut policy.filesystem.write),
        ] {
            for p in list {
                let path = p.get_ref();
                if !path.starts_with('/') {
                    return Err((
                        p.span(),
                        format!("filesystem path '{path}' must be absolute (start with '/')"),
                    ));
                }
                let path = std::path::PathBuf::from(path);
                if !into.contains(&path) {
                    into.push(path);
                }
            }
        }
    }

    if let Some(net) = raw.network {
        for p in &net.connect_unix {
            let path = p.get_ref();
            if !path.starts_with('/') {
                return Err((
                    p.span(),
                    format!("unix socket path '{path}' must be absolute (start with '/')"),
                ));
            }
            let path = std::path::PathBuf::from(path);
            if !policy.connect_unix.contains(&path) {
                policy.connect_unix.push(path);
            }
        }
        for (list, into) in [
            (&net.connect_tcp, &mut policy.network.connect_tcp),
            (&net.bind_tcp, &mut policy.network.bind_tcp),
        ] {
            for port in list {
                let p = *port.get_ref();
                let p = u16::try_from(p).ok().filter(|&p| p != 0).ok_or_else(|| {
                    (
                        port.span(),
                        format!("port {p} is out of range (1 to 65535)"),
                    )
                })?;
                if !into.contains(&p) {
                    into.push(p);
                }
            }
        }
    }

    if let Some(span) = unconfined {
        if !policy.filesystem.read.is_empty()
            || !policy.filesystem.write.is_empty()
            || !policy.network.is_empty()
            || !policy.connect_unix.is_empty()
        {
            return Err((
                span,
                "unconfined = true turns Landlock off, so [filesystem] and [network] grants \
                 would mean nothing: remove either"
                    .to_string(),
            ));
        }
        policy.confine = false;
    } else {
        // Whatever the import says, a TOML policy confines unless it says not to.
        policy.confine = true;
    }

    if let Some(limits) = raw.limits {
        let l = &mut policy.limits;
        for (value, into, name) in [
            (&limits.memory_mb, &mut l.memory_mb, "memory_mb"),
            (&limits.cpu_seconds, &mut l.cpu_seconds, "cpu_seconds"),
            (&limits.open_files, &mut l.open_files, "open_files"),
            (&limits.threads, &mut l.threads, "threads"),
            (
                &limits.call_timeout_ms,
                &mut l.call_timeout_ms,
                "call_timeout_ms",
            ),
        ] {
            if let Some(v) = value {
                *into = u64::try_from(*v.get_ref())
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| {
                        (
                            v.span(),
                            format!("limit {name} = {} must be at least 1", v.get_ref()),
                        )
                    })?;
            }
        }
    }

    if let Some(ns) = raw.namespaces {
        for name in &ns.enable {
            // The message names this file's key, not the type's own words.
            let n: Namespace = name.get_ref().parse().map_err(|_| {
                (
                    name.span(),
                    format!(
                        "unknown namespace '{}' (namespaces: {})",
                        name.get_ref(),
                        Namespace::ALL.map(Namespace::name).join(", ")
                    ),
                )
            })?;
            if !policy.namespaces.contains(&n) {
                policy.namespaces.push(n);
            }
        }
    }

    if let Some(id) = raw.identity {
        let group = id.group.as_ref().map(|g| g.get_ref().as_text());
        let identity = resolve_identity_here(&id.run_as.get_ref().as_text(), group.as_deref())
            .map_err(|e| {
                let span = match (&id.group, e.starts_with("group")) {
                    (Some(g), true) => g.span(),
                    _ => id.run_as.span(),
                };
                (span, e)
            })?;
        policy.run_as = Some(identity);
    }
    // The grants bring in the syscalls they need, after the file's own rules.
    policy.derive_grant_rules();
    Ok(policy)
}

fn parse_default_action(value: &Spanned<String>) -> Result<Action, Fail> {
    if value.get_ref() == "allow" {
        return Err((
            value.span(),
            "default_action = \"allow\" is not accepted: a policy must deny by default \
             (use kill, errno:NAME or log)"
                .to_string(),
        ));
    }
    value
        .get_ref()
        .parse()
        .map_err(|e| (value.span(), format!("default_action: {e}")))
}

/// `name`, checked to be an x86_64 syscall; otherwise an error with a suggestion.
fn syscall_number_checked(name: &Spanned<String>) -> Result<String, Fail> {
    let n = name.get_ref();
    if number_of(n).is_some() {
        Ok(n.clone())
    } else {
        Err((name.span(), unknown_syscall_message(n)))
    }
}

/// The floor check for a rule that would run a syscall (allow or log).
fn check_floor(rule: &SyscallRule, span: Range<usize>) -> Result<(), Fail> {
    if !rule.action.runs() {
        return Ok(());
    }
    match floor_entry_granted_by(rule) {
        None => Ok(()),
        Some(entry) => {
            let hint = if entry.only_when.is_some() {
                "; allow it only for threads, with a condition \
                 { index = 0, op = \"masked_eq\", mask = 0x10000, value = 0x10000 } (CLONE_THREAD)"
            } else {
                ""
            };
            Err((
                span,
                format!(
                    "syscall '{}' is on ffb's floor and can never be allowed: {}{hint}",
                    rule.syscall, entry.reason
                ),
            ))
        }
    }
}

fn convert_rule(raw: &RawRule) -> Result<SyscallRule, Fail> {
    let name = syscall_number_checked(&raw.syscall)?;
    let action = match &raw.action {
        None => Action::Allow,
        Some(a) => a.get_ref().parse().map_err(|e| (a.span(), e))?,
    };
    let mut conditions: Vec<ArgCondition> = Vec::new();
    for arg in &raw.args {
        let a = arg.get_ref();
        let index = arg_index(*a.index.get_ref()).map_err(|e| (a.index.span(), e))?;
        let value = number_u64(&a.value)?;
        let op: CmpOp = a.op.get_ref().parse().map_err(|e| (a.op.span(), e))?;
        let op = match (op, &a.mask) {
            (CmpOp::MaskedEq(_), Some(mask)) => CmpOp::MaskedEq(number_u64(mask)?),
            (CmpOp::MaskedEq(_), None) => {
                return Err((
                    a.op.span(),
                    "op \"masked_eq\" needs a mask (mask = N: arg & mask == value)".to_string(),
                ))
            }
            (op, Some(mask)) => {
                return Err((
                    mask.span(),
                    format!("mask is only for op \"masked_eq\", not \"{op}\""),
                ))
            }
            (op, None) => op,
        };
        let condition = ArgCondition::new(index, op, value);
        if let Some(why) = condition.impossible() {
            return Err((arg.span(), format!("condition can never hold: {why}")));
        }
        for other in &conditions {
            if let Some(why) = other.impossible_with(&condition) {
                return Err((
                    arg.span(),
                    format!("conditions can never hold together: {why}"),
                ));
            }
        }
        conditions.push(condition);
    }
    let rule = SyscallRule::new(&name, action, conditions)
        .map_err(|e| (raw.syscall.span(), e.to_string()))?;
    check_floor(&rule, raw.syscall.span())?;
    Ok(rule)
}

fn number_u64(value: &Spanned<RawNumber>) -> Result<u64, Fail> {
    let out_of_range = |shown: &str| {
        (
            value.span(),
            format!("value {shown} is out of range (0 to 18446744073709551615)"),
        )
    };
    match value.get_ref() {
        RawNumber::Int(n) => u64::try_from(*n).map_err(|_| out_of_range(&n.to_string())),
        RawNumber::Text(text) => {
            let t = text.trim().replace('_', "");
            let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => t.parse::<u64>(),
            };
            match parsed {
                Ok(n) => Ok(n),
                Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => {
                    Err(out_of_range(text))
                }
                Err(_) if t.starts_with('-') => Err(out_of_range(text)),
                Err(_) => Err((
                    value.span(),
                    format!(
                        "value '{text}' is not a number (use an integer or a string like \"0xff\")"
                    ),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SECCOMP_RET_USER_NOTIF;
    use crate::test_support::{args, nr, run};

    /// The example from the issue, key for key.
    const EXAMPLE: &str = r#"extends = "fs-read"            # a preset: pure | fs-read | db-client
[seccomp]
default_action = "kill"        # kill | errno:EPERM (any errno name, e.g. errno:EACCES) | log
allow = ["getpid"]             # extra syscalls, by name
[[seccomp.rule]]               # argument conditions, seccompiler's operators
syscall = "socket"
action = "allow"               # allow | kill | log | errno:NAME
args = [{ index = 0, op = "eq", value = 1 }]   # eq ne lt le gt ge masked_eq (add mask = N)
[filesystem]                   # Landlock
read = ["/etc/hostname", "/usr/share/zoneinfo"]
write = ["/var/lib/app"]       # a directory grants what is beneath it
[network]                      # Landlock TCP rules (ABI >= 4) + socket family conditions
connect_tcp = [5432]
bind_tcp = []
[limits]
memory_mb = 1024
cpu_seconds = 60
open_files = 64
threads = 16
call_timeout_ms = 30000
[namespaces]                   # optional: user, pid, net, ipc, mount; off unless asked
enable = ["user", "pid", "ipc"]
[identity]                     # optional: run the helper as this uid/gid (names or numbers)
run_as = "nobody"
"#;

    #[test]
    fn the_issue_example_parses() {
        let p = parse_toml_policy(EXAMPLE, "example.toml").unwrap();
        assert_eq!(p.name, "example.toml");
        assert_eq!(p.default_action, Action::Kill);
        let base = SandboxPolicy::fs_read();
        assert_eq!(&p.rules[..base.rules.len()], &base.rules[..]);
        // getpid was already allowed; the socket rule is the file's own, and
        // the rest come from the write path and the port, in that order.
        let own = &p.rules[base.rules.len()..];
        assert_eq!((own[0].syscall.as_str(), own[0].origin), ("socket", None));
        let derived: Vec<_> = own[1..].iter().map(|r| r.origin).collect();
        assert!(derived.iter().all(Option::is_some), "{derived:?}");
        let first_tcp = derived
            .iter()
            .position(|o| *o == Some(crate::grants::GrantKind::ConnectTcp))
            .unwrap();
        assert!(derived[..first_tcp]
            .iter()
            .all(|o| *o == Some(crate::grants::GrantKind::Write)));
        assert!(derived[first_tcp..]
            .iter()
            .all(|o| *o == Some(crate::grants::GrantKind::ConnectTcp)));
        assert_eq!(p.filesystem.read.len(), 2);
        assert_eq!(
            p.filesystem.write,
            [std::path::PathBuf::from("/var/lib/app")]
        );
        assert_eq!(p.network.connect_tcp, [5432]);
        assert_eq!(p.limits.cpu_seconds, 60);
        assert_eq!(
            p.namespaces,
            [Namespace::User, Namespace::Pid, Namespace::Ipc]
        );
        let nobody = p.run_as.unwrap();
        assert_eq!((nobody.uid, nobody.name.as_str()), (65534, "nobody"));
        let f = parse_toml_policy(EXAMPLE, "x").unwrap().compile().unwrap();
        assert_eq!(run(&f, nr("getpid"), &[0; 6]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(
            run(&f, nr("socket"), &args(1, 1, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        // TCP from the port grant; UDP from nothing.
        assert_eq!(
            run(&f, nr("socket"), &args(2, 1, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(&f, nr("socket"), &args(2, 2, 0)),
            SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn errors_point_at_the_offending_value() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("extends = \"pure", 1, 16, "invalid basic string"),
            ("[seccomp]\nallow = [\"getpid\",]]\n", 2, 20, ""),
            ("extends = \"pure\"\nbogus = 1\n", 2, 1, "unknown field `bogus`"),
            ("[limits]\nmemroy_mb = 1\n", 2, 1, "unknown field `memroy_mb`"),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 0, op = \"eq\", value = 1, vlaue = 2 }]",
                3,
                44,
                "unknown field `vlaue`",
            ),
            ("[seccomp]\nallow = [\"read\", \"getpdi\"]", 2, 18, "unknown syscall 'getpdi' (did you mean 'getpid'?)"),
            ("[seccomp]\nallow = [\"frobnicate_all\"]", 2, 10, "unknown syscall 'frobnicate_all'"),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 6, op = \"eq\", value = 1 }]",
                3,
                19,
                "argument index 6 is out of range (0 to 5)",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 0, op = \"masked_eq\", value = 1 }]",
                3,
                27,
                "op \"masked_eq\" needs a mask",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 0, op = \"eq\", value = 1, mask = 3 }]",
                3,
                51,
                "mask is only for op \"masked_eq\", not \"eq\"",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 0, op = \"eq\", value = -1 }]",
                3,
                41,
                "value -1 is out of range",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 0, op = \"eq\", value = \"0x1ffffffffffffffff\" }]",
                3,
                41,
                "value 0x1ffffffffffffffff is out of range",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [\n  { index = 0, op = \"eq\", value = 2 },\n  { index = 0, op = \"ne\", value = 2 },\n]",
                5,
                3,
                "can never hold together: arg0 == 2 and arg0 != 2",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 1, op = \"lt\", value = 0 }]",
                3,
                9,
                "can never hold: arg1 < 0",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 1, op = \"gt\", value = \"0xffffffffffffffff\" }]",
                3,
                9,
                "can never hold: arg1 > 0xffffffffffffffff",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 1, op = \"le\", value = 1 }, { index = 1, op = \"masked_eq\", mask = 1, value = 2 }]",
                3,
                46,
                "bits outside the mask",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"socket\"\nargs = [{ index = 1, op = \"between\", value = 1 }]",
                3,
                27,
                "unknown op 'between'",
            ),
            (
                "[seccomp]\nallow = [\"getpid\", \"execve\"]",
                2,
                20,
                "syscall 'execve' is on ffb's floor and can never be allowed: the bridge runs library code, never programs",
            ),
            (
                "[seccomp]\nallow = [\"clone\"]",
                2,
                10,
                "syscall 'clone' is on ffb's floor and can never be allowed: clone without CLONE_THREAD makes a new process",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"clone\"\naction = \"log\"\nargs = [{ index = 0, op = \"ne\", value = 17 }]",
                2,
                11,
                "mask = 0x10000, value = 0x10000",
            ),
            ("extends = \"db_client\"", 1, 11, "unknown policy preset 'db_client' (presets: pure, fs-read, db-client, python)"),
            ("[seccomp]\ndefault_action = \"errno:EFOO\"", 2, 18, "unknown errno 'EFOO'"),
            ("[seccomp]\ndefault_action = \"deny\"", 2, 18, "unknown action 'deny'"),
            (
                "[seccomp]\ndefault_action = \"allow\"",
                2,
                18,
                "a policy must deny by default",
            ),
            (
                "[[seccomp.rule]]\nsyscall = \"getpid\"\naction = \"trap\"",
                3,
                10,
                "unknown action 'trap'",
            ),
            ("[namespaces]\nenable = [\"user\", \"uts\"]", 2, 19, "unknown namespace 'uts'"),
            ("[network]\nconnect_tcp = [5432, 0]", 2, 22, "port 0 is out of range (1 to 65535)"),
            ("[network]\nbind_tcp = [70000]", 2, 13, "port 70000 is out of range"),
            (
                "[filesystem]\nread = [\"/etc/hosts\", \"etc/passwd\"]",
                2,
                23,
                "filesystem path 'etc/passwd' must be absolute",
            ),
            ("[limits]\nthreads = 0", 2, 11, "limit threads = 0 must be at least 1"),
            (
                "[[seccomp.rule]]\nsyscall = \"read\"\nargs = [{ index = 0, op = \"eq\", value = 1.5 }]",
                3,
                41,
                "invalid type: floating point `1.5`, expected an integer from 0, or a string",
            ),
            ("[identity]\nrun_as = true", 2, 10, "expected a name or a number"),
            ("[[seccomp.rule]]\naction = \"allow\"", 1, 1, "missing field `syscall`"),
            ("[limits]\nmemory_mb = \"lots\"", 2, 13, "invalid type"),
            ("[identity]\nrun_as = \"no-such-user-here\"", 2, 10, "no user 'no-such-user-here' in /etc/passwd"),
            (
                "[identity]\nrun_as = \"nobody\"\ngroup = \"no-such-group-here\"",
                3,
                9,
                "group 'no-such-group-here' is not in /etc/group",
            ),
            ("", 1, 1, "empty policy file"),
            ("  \n\t\n", 1, 1, "empty policy file"),
        ];
        let mut wrong = Vec::new();
        for &(text, line, column, words) in cases {
            let e = parse_toml_policy(text, "p.toml").expect_err(text);
            let shown = e.to_string();
            if (e.line, e.column) != (line, column)
                || !e.message.contains(words)
                || !shown.starts_with(&format!("p.toml:{line}:{column}: "))
                || shown.contains('\n')
            {
                wrong.push(format!(
                    "{text:?}\n  expected {line}:{column} {words:?}\n  got      {shown}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

#[cfg(test)]
mod import_tests {
    use super::*;
    use crate::lint::lint;
    use crate::test_support::{fixture, nr, run};

    /// A TOML file that would sit in the fixtures directory, with `text`.
    fn in_fixtures(text: &str) -> Result<SandboxPolicy, PolicyFileError> {
        parse_toml_policy_for(text, &fixture("imports.toml"), (6, 1))
    }

    #[test]
    fn an_import_gives_the_rules_and_the_file_gives_the_grants() {
        let p = parse_toml_policy_for(
            &std::fs::read_to_string(fixture("docker-small-read.toml")).unwrap(),
            &fixture("docker-small-read.toml"),
            (6, 1),
        )
        .unwrap();
        let direct = crate::source::parse_policy_text(
            &std::fs::read_to_string(fixture("docker-small.json")).unwrap(),
            "docker-small.json",
            (6, 1),
        )
        .unwrap();
        assert!(direct.confine, "an imported profile confines by default");
        assert!(p.confine);
        assert_eq!(p.default_action, direct.default_action);
        assert_eq!(&p.rules[..direct.rules.len()], &direct.rules[..]);
        let own = &p.rules[direct.rules.len()..];
        assert_eq!(
            (own[0].syscall.as_str(), own[0].origin),
            ("openat", None),
            "openat added after"
        );
        assert!(
            own[1..]
                .iter()
                .all(|r| r.origin == Some(crate::grants::GrantKind::Read)),
            "the read grant's rules come last"
        );
        assert_eq!(
            p.filesystem.read,
            [std::path::PathBuf::from("/etc/hostname")]
        );
        assert_eq!(
            p.warnings[0],
            "syscall rules imported from docker-small.json, a Docker/OCI seccomp profile"
        );
        assert!(
            p.warnings[1].starts_with("docker-small.json: syscall execve is on ffb's floor"),
            "{:?}",
            p.warnings
        );
        let f = p.compile().unwrap();
        // socket(AF_INET): the profile's errnoRet 97.
        assert_eq!(
            run(&f, nr("socket"), &[2, 1, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ERRNO | 97
        );
        assert_eq!(
            run(&f, nr("openat"), &[0; 6]),
            libc::SECCOMP_RET_ALLOW,
            "the file's own allow"
        );
        assert!(lint(&p).iter().all(|w| w.rule != "unconfined-import"));

        let s = in_fixtures("[seccomp]\nimport = \"seccompiler.json\"\n").unwrap();
        assert!(s.confine);
        assert_eq!(
            s.warnings[0],
            "syscall rules imported from seccompiler.json, a seccompiler filter"
        );
        assert!(
            s.warnings[1..]
                .iter()
                .all(|w| w.starts_with("seccompiler.json: ")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn unconfined_is_explicit_linted_and_only_for_imports() {
        let p = in_fixtures(
            "[seccomp]\nimport = \"docker-small.json\"\n[filesystem]\nunconfined = true\n",
        )
        .unwrap();
        assert!(!p.confine);
        assert_eq!(lint(&p)[0].rule, "unconfined-import");
        let p = in_fixtures(
            "[seccomp]\nimport = \"docker-small.json\"\n[filesystem]\nunconfined = false\n",
        )
        .unwrap();
        assert!(p.confine);
    }

    #[test]
    fn bad_imports_point_at_the_import() {
        let dir = std::env::temp_dir().join(format!("ffb-policy-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rules.json"), "{ \"rules\": [] }").unwrap();
        std::fs::write(
            dir.join("bad.json"),
            "{ \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"] }",
        )
        .unwrap();
        std::fs::write(dir.join("empty.json"), " \n").unwrap();
        let toml = dir.join("p.toml");
        let toml = toml.to_str().unwrap();
        let cases: &[(&str, usize, usize, &str)] = &[
            (
                "[seccomp]\nimport = \"no-such.json\"",
                2,
                10,
                "cannot import 'no-such.json' (",
            ),
            (
                "[seccomp]\nimport = \"no-such.json\"",
                2,
                10,
                "No such file or directory",
            ),
            ("[seccomp]\nimport = \".\"", 2, 10, "it is a directory"),
            ("[seccomp]\nimport = \"\"", 2, 10, "names no file"),
            (
                "[seccomp]\nimport = \"rules.json\"",
                2,
                10,
                "rules.json:1:1: a JSON policy must be a Docker/OCI seccomp profile",
            ),
            (
                "[seccomp]\nimport = \"bad.json\"",
                2,
                10,
                "bad.json:2:3: field 'flags' is not supported",
            ),
            ("[seccomp]\nimport = \"empty.json\"", 2, 10, "it is empty"),
            (
                "[seccomp]\nimport = \"p.toml\"",
                2,
                10,
                "itself imports 'nothing.json', and an import cannot import",
            ),
            ("[seccomp]\nimport = 7", 2, 10, "invalid type"),
            (
                "extends = \"pure\"\n[seccomp]\nimport = \"rules.json\"",
                1,
                11,
                "extends and [seccomp] import both give the syscall rules",
            ),
            (
                "[seccomp]\nimport = \"rules.json\"\ndefault_action = \"kill\"",
                3,
                18,
                "default_action comes from the imported profile 'rules.json'",
            ),
            (
                "[filesystem]\nunconfined = true",
                2,
                14,
                "only for a [seccomp] import",
            ),
            (
                "[seccomp]\nimport = \"rules.json\"\n[filesystem]\nunconfined = \"yes\"",
                4,
                14,
                "invalid type",
            ),
        ];
        // The TOML file imports itself: the import of an import.
        std::fs::write(toml, "[seccomp]\nimport = \"nothing.json\"\n").unwrap();
        let mut wrong = Vec::new();
        for &(text, line, column, words) in cases {
            let e = parse_toml_policy_for(text, toml, (6, 1)).expect_err(text);
            let shown = e.to_string();
            if (e.line, e.column) != (line, column)
                || !e.message.contains(words)
                || !shown.starts_with(&format!("{toml}:{line}:{column}: "))
                || shown.contains('\n')
            {
                wrong.push(format!(
                    "{text:?}\n  expected {line}:{column} {words:?}\n  got      {shown}"
                ));
            }
        }
        // A valid import that grants paths cannot also be unconfined.
        let e = in_fixtures(
            "[seccomp]\nimport = \"docker-small.json\"\n[filesystem]\nunconfined = true\nread = [\"/etc/hostname\"]\n",
        )
        .unwrap_err();
        if (e.line, e.column) != (4, 14) || !e.message.contains("would mean nothing") {
            wrong.push(format!("unconfined with paths: {e}"));
        }
        let e = in_fixtures(
            "[seccomp]\nimport = \"docker-small.json\"\n[filesystem]\nunconfined = true\n[network]\nconnect_tcp = [5432]\n",
        )
        .unwrap_err();
        if (e.line, e.column) != (4, 14) || !e.message.contains("would mean nothing") {
            wrong.push(format!("unconfined with ports: {e}"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
