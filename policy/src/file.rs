//! Policy files: the TOML format ops write, and [`load_policy`], which also
//! accepts a preset name or an imported JSON profile (see [`crate::import`]).
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
//! default_action = "kill"        # kill | errno:EPERM (any errno name) | log
//! allow = ["getpid"]             # extra syscalls, by name, any arguments
//!
//! [[seccomp.rule]]               # one rule per [[seccomp.rule]] table
//! syscall = "socket"
//! action = "allow"               # allow (the default) | kill | log | errno:NAME
//! args = [{ index = 0, op = "eq", value = 1 }]
//!
//! [filesystem]                   # Landlock
//! read = ["/etc/hostname", "/usr/share/zoneinfo"]
//! write = ["/var/lib/app"]       # a directory grants what is beneath it
//!
//! [network]                      # Landlock TCP rules (ABI >= 4)
//! connect_tcp = [5432]
//! bind_tcp = []
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
//!   one of [`PRESETS`]. The file's `allow` list and
//!   rules are added after the preset's rules (the first rule that matches a
//!   call decides, so a file cannot narrow what its preset allows);
//!   `[limits]` override the preset's field by field; the `[filesystem]` and
//!   `[network]` lists are added to the preset's; `[namespaces]` and
//!   `[identity]` are the file's own.
//! * `[seccomp]`
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
//!   directory grants what is beneath it. No paths listed means no file is
//!   reachable once the library is loaded, whatever the seccomp rules say.
//! * `[network]`: Landlock TCP port rules (kernel ABI 4 and later).
//!   `connect_tcp` (array of ports 1 to 65535): ports the library may connect
//!   to; `bind_tcp`: ports it may bind. Which socket families can be created
//!   at all is a seccomp matter: see the `db-client` preset's `socket` rules,
//!   or write `[[seccomp.rule]]`s on `socket` argument 0.
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

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::sandbox::{
    floor_entry_granted_by, Action, ArgCondition, CmpOp, Identity, Namespace, SandboxPolicy,
    SyscallRule, PRESETS,
};
use crate::syscalls::{all_names, number_of};

/// An error in a policy file, with the position of the offending value.
///
/// Displays as one line: `PATH:LINE:COL: message`. Lines and columns count
/// from 1; both are 0 when the error concerns the file as a whole (it is
/// missing or unreadable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFileError {
    /// The file's path, as given.
    pub path: String,
    /// The line, from 1 (0: the whole file).
    pub line: usize,
    /// The column in characters, from 1 (0: the whole file).
    pub column: usize,
    /// What is wrong, on one line.
    pub message: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for PolicyFileError {}

impl PolicyFileError {
    /// An error at byte `offset` of `text`.
    pub(crate) fn at(path: &str, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, offset);
        Self {
            path: path.to_string(),
            line,
            column,
            message: one_line(&message.into()),
        }
    }

    /// An error about the file as a whole.
    pub(crate) fn whole(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            line: 0,
            column: 0,
            message: one_line(&message.into()),
        }
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Loads a policy: a preset name, or a policy file (TOML, a Docker/OCI seccomp
/// profile, or a seccompiler JSON filter; see [`parse_policy_text`]).
///
/// The policy's `name` is the preset name or the path as given.
pub fn load_policy(spec: &str) -> Result<SandboxPolicy, PolicyFileError> {
    if PRESETS.contains(&spec) {
        return SandboxPolicy::preset(spec)
            .map_err(|e| PolicyFileError::whole(spec, e.to_string()));
    }
    let text = std::fs::read_to_string(spec).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound && !spec.contains(['/', '.']) {
            format!(" (and it is not a preset: {})", PRESETS.join(", "))
        } else {
            String::new()
        };
        PolicyFileError::whole(spec, format!("cannot read the policy file: {e}{hint}"))
    })?;
    parse_policy_text(&text, spec, crate::import::running_kernel())
}

/// Parses a policy file's text, detecting its format by content:
///
/// * a JSON object with `defaultAction`: a Docker/OCI seccomp profile
///   ([`crate::import::import_docker`], evaluated for `kernel`, `(major, minor)`);
/// * a JSON object whose values hold `mismatch_action`/`default_action`,
///   `match_action`/`filter_action` and `filter`: a seccompiler filter
///   ([`crate::import::import_seccompiler`]);
/// * anything else: a TOML policy ([`parse_toml_policy`]).
pub fn parse_policy_text(
    text: &str,
    path: &str,
    kernel: (u32, u32),
) -> Result<SandboxPolicy, PolicyFileError> {
    if text.trim().is_empty() {
        return Err(PolicyFileError::at(path, text, 0, "empty policy file"));
    }
    if text.trim_start().starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| PolicyFileError {
            path: path.to_string(),
            line: e.line(),
            column: e.column(),
            message: one_line(&format!("not valid JSON: {e}")),
        })?;
        let Some(object) = value.as_object() else {
            unreachable!("text starting with '{{' parsed as a non-object");
        };
        if object.contains_key("defaultAction") {
            return crate::import::import_docker(text, path, kernel);
        }
        let seccompiler_like = !object.is_empty()
            && object.values().all(|v| {
                v.as_object().is_some_and(|f| {
                    [
                        "mismatch_action",
                        "default_action",
                        "match_action",
                        "filter_action",
                        "filter",
                    ]
                    .iter()
                    .any(|k| f.contains_key(*k))
                })
            });
        if seccompiler_like {
            return crate::import::import_seccompiler(text, path);
        }
        return Err(PolicyFileError::at(
            path,
            text,
            text.len() - text.trim_start().len(),
            "a JSON policy must be a Docker/OCI seccomp profile (with \"defaultAction\") \
             or a seccompiler filter (an object of filters with \"mismatch_action\", \
             \"match_action\" and \"filter\")",
        ));
    }
    parse_toml_policy(text, path)
}

// ---------------------------------------------------------------------------
// The TOML format

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
pub fn parse_toml_policy(text: &str, path: &str) -> Result<SandboxPolicy, PolicyFileError> {
    if text.trim().is_empty() {
        return Err(PolicyFileError::at(path, text, 0, "empty policy file"));
    }
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        PolicyFileError::at(path, text, offset, e.message())
    })?;
    convert(raw, path)
        .map_err(|(span, message)| PolicyFileError::at(path, text, span.start, message))
}

fn convert(raw: RawFile, path: &str) -> Result<SandboxPolicy, Fail> {
    let mut policy = match &raw.extends {
        None => SandboxPolicy::pure(),
        Some(name) => {
            SandboxPolicy::preset(name.get_ref()).map_err(|e| (name.span(), e.to_string()))?
        }
    };
    policy.name = path.to_string();

    if let Some(seccomp) = raw.seccomp {
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

    if let Some(fs) = raw.filesystem {
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
            let n = match name.get_ref().as_str() {
                "user" => Namespace::User,
                "pid" => Namespace::Pid,
                "net" => Namespace::Net,
                "ipc" => Namespace::Ipc,
                "mount" => Namespace::Mount,
                other => {
                    return Err((
                        name.span(),
                        format!(
                            "unknown namespace '{other}' (namespaces: user, pid, net, ipc, mount)"
                        ),
                    ))
                }
            };
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
    parse_action(value.get_ref()).map_err(|e| (value.span(), format!("default_action: {e}")))
}

/// Parses `allow`, `kill`, `log` or `errno:NAME` (NAME an errno name or number).
pub(crate) fn parse_action(text: &str) -> Result<Action, String> {
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

/// The number of errno `name` (`EPERM`, `EACCES`, ...; a number in 1 to 4095 is
/// accepted as itself).
pub fn errno_number(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return (1..=4095).contains(&n).then_some(n);
    }
    ERRNO_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
}

/// The canonical name of errno `number`, if it has one.
pub fn errno_name(number: u32) -> Option<&'static str> {
    ERRNO_NAMES
        .iter()
        .find(|(_, v)| *v == number)
        .map(|(n, _)| *n)
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

/// "unknown syscall 'x'", with "did you mean 'y'?" when a close name exists.
pub(crate) fn unknown_syscall_message(name: &str) -> String {
    match did_you_mean(name) {
        Some(close) => format!("unknown syscall '{name}' (did you mean '{close}'?)"),
        None => format!("unknown syscall '{name}' (not an x86_64 syscall)"),
    }
}

/// The known syscall name closest to `name`, if it is close enough.
pub(crate) fn did_you_mean(name: &str) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    all_names()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// The floor check for a rule that would run a syscall (allow or log).
fn check_floor(rule: &SyscallRule, span: Range<usize>) -> Result<(), Fail> {
    if !matches!(rule.action, Action::Allow | Action::Log) {
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
        Some(a) => parse_action(a.get_ref()).map_err(|e| (a.span(), e))?,
    };
    let mut conditions: Vec<(ArgCondition, Range<usize>)> = Vec::new();
    for arg in &raw.args {
        let a = arg.get_ref();
        let index = *a.index.get_ref();
        if !(0..=5).contains(&index) {
            return Err((
                a.index.span(),
                format!("argument index {index} is out of range (0 to 5)"),
            ));
        }
        let value = number_u64(&a.value)?;
        let op = match (a.op.get_ref().as_str(), &a.mask) {
            ("masked_eq", Some(mask)) => CmpOp::MaskedEq(number_u64(mask)?),
            ("masked_eq", None) => {
                return Err((
                    a.op.span(),
                    "op \"masked_eq\" needs a mask (mask = N: arg & mask == value)".to_string(),
                ))
            }
            (op, Some(mask)) if CMP_OPS.contains(&op) => {
                return Err((
                    mask.span(),
                    format!("mask is only for op \"masked_eq\", not \"{op}\""),
                ))
            }
            ("eq", None) => CmpOp::Eq,
            ("ne", None) => CmpOp::Ne,
            ("lt", None) => CmpOp::Lt,
            ("le", None) => CmpOp::Le,
            ("gt", None) => CmpOp::Gt,
            ("ge", None) => CmpOp::Ge,
            (other, _) => {
                return Err((
                    a.op.span(),
                    format!("unknown op '{other}' (ops: eq, ne, lt, le, gt, ge, masked_eq)"),
                ))
            }
        };
        let condition = ArgCondition::new(index as u8, op, value);
        if let Some(why) = impossible_alone(&condition) {
            return Err((arg.span(), format!("condition can never hold: {why}")));
        }
        for (other, _) in &conditions {
            if let Some(why) = impossible_together(other, &condition) {
                return Err((
                    arg.span(),
                    format!("conditions can never hold together: {why}"),
                ));
            }
        }
        conditions.push((condition, arg.span()));
    }
    let rule = SyscallRule::new(
        &name,
        action,
        conditions.into_iter().map(|(c, _)| c).collect(),
    )
    .map_err(|e| (raw.syscall.span(), e.to_string()))?;
    check_floor(&rule, raw.syscall.span())?;
    Ok(rule)
}

const CMP_OPS: &[&str] = &["eq", "ne", "lt", "le", "gt", "ge", "masked_eq"];

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

/// Why one condition can never hold, if it cannot.
pub(crate) fn impossible_alone(c: &ArgCondition) -> Option<String> {
    let i = c.index;
    match c.op {
        CmpOp::Lt if c.value == 0 => Some(format!("arg{i} < 0 (arguments are unsigned)")),
        CmpOp::Gt if c.value == u64::MAX => {
            Some(format!("arg{i} > {:#x} (no argument is larger)", u64::MAX))
        }
        CmpOp::MaskedEq(mask) if c.value & !mask != 0 => Some(format!(
            "arg{i} & {mask:#x} == {:#x}: the value has bits outside the mask",
            c.value
        )),
        _ => None,
    }
}

/// Why two conditions of one rule can never hold together, if they cannot.
pub(crate) fn impossible_together(a: &ArgCondition, b: &ArgCondition) -> Option<String> {
    if a.index != b.index {
        return None;
    }
    let i = a.index;
    match (a.op, b.op) {
        (CmpOp::Eq, CmpOp::Ne) | (CmpOp::Ne, CmpOp::Eq) if a.value == b.value => {
            Some(format!("arg{i} == {v} and arg{i} != {v}", v = a.value))
        }
        (CmpOp::Eq, CmpOp::Eq) if a.value != b.value => {
            Some(format!("arg{i} == {} and arg{i} == {}", a.value, b.value))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Identity

/// Resolves a user (a name or a uid) and an optional group (a name or a gid)
/// against the text of `/etc/passwd` and `/etc/group`.
///
/// Without a group, the gid is the user's primary group from `passwd`, or, for a
/// uid with no entry, the same number. Errors about the group start with "group".
///
/// ```
/// use ffb_policy::file::resolve_identity;
/// let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n";
/// let group = "root:x:0:\nnogroup:x:65534:\n";
/// let id = resolve_identity("nobody", None, passwd, group).unwrap();
/// assert_eq!((id.uid, id.gid), (65534, 65534));
/// assert_eq!(resolve_identity("1000", Some("nogroup"), passwd, group).unwrap().gid, 65534);
/// assert!(resolve_identity("alice", None, passwd, group).is_err());
/// ```
pub fn resolve_identity(
    user: &str,
    group: Option<&str>,
    passwd: &str,
    group_file: &str,
) -> Result<Identity, String> {
    // name:password:uid:gid:...
    let users: Vec<(&str, u32, u32)> = passwd
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.first()?.trim(),
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect();
    let groups: Vec<(&str, u32)> = group_file
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.trim(), f.get(2)?.parse().ok()?))
        })
        .collect();
    if user.is_empty() {
        return Err("run_as is empty: give a user name or a uid".to_string());
    }
    let (uid, primary_gid) = if let Ok(uid) = user.parse::<i64>() {
        let uid = u32::try_from(uid)
            .ok()
            .filter(|&u| u != u32::MAX)
            .ok_or_else(|| format!("uid {uid} is out of range"))?;
        let primary = users
            .iter()
            .find(|(_, u, _)| *u == uid)
            .map_or(uid, |(_, _, g)| *g);
        (uid, primary)
    } else {
        let (_, uid, gid) = users
            .iter()
            .find(|(n, _, _)| *n == user)
            .ok_or_else(|| format!("no user '{user}' in /etc/passwd"))?;
        (*uid, *gid)
    };
    let gid = match group {
        None => primary_gid,
        Some(g) => {
            if let Ok(gid) = g.parse::<i64>() {
                u32::try_from(gid)
                    .ok()
                    .filter(|&g| g != u32::MAX)
                    .ok_or_else(|| format!("group id {gid} is out of range"))?
            } else {
                groups
                    .iter()
                    .find(|(n, _)| *n == g)
                    .map(|(_, gid)| *gid)
                    .ok_or_else(|| format!("group '{g}' is not in /etc/group"))?
            }
        }
    };
    Ok(Identity {
        uid,
        gid,
        name: match group {
            Some(g) => format!("{user}:{g}"),
            None => user.to_string(),
        },
    })
}

/// [`resolve_identity`] against this machine's `/etc/passwd` and `/etc/group`.
pub fn resolve_identity_here(user: &str, group: Option<&str>) -> Result<Identity, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_identity(user, group, &passwd, &groups)
}

// ---------------------------------------------------------------------------
// Hash

/// A stable hash of what a policy enforces, for audit logs: 16 hex digits of
/// 64-bit FNV-1a over the policy's canonical JSON (its serde serialization,
/// fields in declaration order), leaving out `name` and `warnings`, which do
/// not change what is enforced. The same policy loaded from two paths has the
/// same hash.
pub fn policy_hash(p: &SandboxPolicy) -> String {
    #[derive(Serialize)]
    struct Enforced<'a> {
        default_action: &'a Action,
        rules: &'a [SyscallRule],
        limits: &'a crate::sandbox::Limits,
        filesystem: &'a crate::sandbox::FilesystemRules,
        network: &'a crate::sandbox::NetworkRules,
        namespaces: &'a [Namespace],
        run_as: &'a Option<Identity>,
    }
    let canonical = serde_json::to_string(&Enforced {
        default_action: &p.default_action,
        rules: &p.rules,
        limits: &p.limits,
        filesystem: &p.filesystem,
        network: &p.network,
        namespaces: &p.namespaces,
        run_as: &p.run_as,
    })
    .expect("a policy always serializes");
    format!("{:016x}", fnv1a64(canonical.as_bytes()))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Linux errno names and numbers (from `asm-generic/errno*.h`); aliases after the canonical name.
const ERRNO_NAMES: &[(&str, u32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("ESRCH", 3),
    ("EINTR", 4),
    ("EIO", 5),
    ("ENXIO", 6),
    ("E2BIG", 7),
    ("ENOEXEC", 8),
    ("EBADF", 9),
    ("ECHILD", 10),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("ENOTBLK", 15),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EXDEV", 18),
    ("ENODEV", 19),
    ("ENOTDIR", 20),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ENOTTY", 25),
    ("ETXTBSY", 26),
    ("EFBIG", 27),
    ("ENOSPC", 28),
    ("ESPIPE", 29),
    ("EROFS", 30),
    ("EMLINK", 31),
    ("EPIPE", 32),
    ("EDOM", 33),
    ("ERANGE", 34),
    ("EDEADLK", 35),
    ("ENAMETOOLONG", 36),
    ("ENOLCK", 37),
    ("ENOSYS", 38),
    ("ENOTEMPTY", 39),
    ("ELOOP", 40),
    ("EWOULDBLOCK", 11),
    ("ENOMSG", 42),
    ("EIDRM", 43),
    ("ECHRNG", 44),
    ("EL2NSYNC", 45),
    ("EL3HLT", 46),
    ("EL3RST", 47),
    ("ELNRNG", 48),
    ("EUNATCH", 49),
    ("ENOCSI", 50),
    ("EL2HLT", 51),
    ("EBADE", 52),
    ("EBADR", 53),
    ("EXFULL", 54),
    ("ENOANO", 55),
    ("EBADRQC", 56),
    ("EBADSLT", 57),
    ("EDEADLOCK", 35),
    ("EBFONT", 59),
    ("ENOSTR", 60),
    ("ENODATA", 61),
    ("ETIME", 62),
    ("ENOSR", 63),
    ("ENONET", 64),
    ("ENOPKG", 65),
    ("EREMOTE", 66),
    ("ENOLINK", 67),
    ("EADV", 68),
    ("ESRMNT", 69),
    ("ECOMM", 70),
    ("EPROTO", 71),
    ("EMULTIHOP", 72),
    ("EDOTDOT", 73),
    ("EBADMSG", 74),
    ("EOVERFLOW", 75),
    ("ENOTUNIQ", 76),
    ("EBADFD", 77),
    ("EREMCHG", 78),
    ("ELIBACC", 79),
    ("ELIBBAD", 80),
    ("ELIBSCN", 81),
    ("ELIBMAX", 82),
    ("ELIBEXEC", 83),
    ("EILSEQ", 84),
    ("ERESTART", 85),
    ("ESTRPIPE", 86),
    ("EUSERS", 87),
    ("ENOTSOCK", 88),
    ("EDESTADDRREQ", 89),
    ("EMSGSIZE", 90),
    ("EPROTOTYPE", 91),
    ("ENOPROTOOPT", 92),
    ("EPROTONOSUPPORT", 93),
    ("ESOCKTNOSUPPORT", 94),
    ("EOPNOTSUPP", 95),
    ("EPFNOSUPPORT", 96),
    ("EAFNOSUPPORT", 97),
    ("EADDRINUSE", 98),
    ("EADDRNOTAVAIL", 99),
    ("ENETDOWN", 100),
    ("ENETUNREACH", 101),
    ("ENETRESET", 102),
    ("ECONNABORTED", 103),
    ("ECONNRESET", 104),
    ("ENOBUFS", 105),
    ("EISCONN", 106),
    ("ENOTCONN", 107),
    ("ESHUTDOWN", 108),
    ("ETOOMANYREFS", 109),
    ("ETIMEDOUT", 110),
    ("ECONNREFUSED", 111),
    ("EHOSTDOWN", 112),
    ("EHOSTUNREACH", 113),
    ("EALREADY", 114),
    ("EINPROGRESS", 115),
    ("ESTALE", 116),
    ("EUCLEAN", 117),
    ("ENOTNAM", 118),
    ("ENAVAIL", 119),
    ("EISNAM", 120),
    ("EREMOTEIO", 121),
    ("EDQUOT", 122),
    ("ENOMEDIUM", 123),
    ("EMEDIUMTYPE", 124),
    ("ECANCELED", 125),
    ("ENOKEY", 126),
    ("EKEYEXPIRED", 127),
    ("EKEYREVOKED", 128),
    ("EKEYREJECTED", 129),
    ("EOWNERDEAD", 130),
    ("ENOTRECOVERABLE", 131),
    ("ERFKILL", 132),
    ("EHWPOISON", 133),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Evaluate;
    use crate::sandbox::{Phase, Verdict, SECCOMP_RET_USER_NOTIF};

    pub(crate) fn fixture(name: &str) -> String {
        format!(
            "{}/../tests/fixtures/policies/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn nr(name: &str) -> i64 {
        number_of(name).unwrap()
    }

    fn args(a0: u64, a1: u64, a2: u64) -> [u64; 6] {
        [a0, a1, a2, 0, 0, 0]
    }

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
        assert_eq!(
            p.rules.len(),
            base.rules.len() + 1,
            "getpid was already allowed"
        );
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
        assert_eq!(f.evaluate(nr("getpid"), &[0; 6]), libc::SECCOMP_RET_ALLOW);
        assert_eq!(
            f.evaluate(nr("socket"), &args(1, 1, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            f.evaluate(nr("socket"), &args(2, 1, 0)),
            SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn fixtures_and_small_files_parse() {
        let p = load_policy(&fixture("full.toml")).unwrap();
        assert!(p.name.ends_with("full.toml"));
        let f = p.compile().unwrap();
        // fadvise64(fd, off, len, advice & 7 == 4) fails with EACCES; other advice is denied.
        assert_eq!(
            f.evaluate(nr("fadvise64"), &[3, 0, 0, 4, 0, 0]),
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
        );
        assert_eq!(
            f.evaluate(nr("fadvise64"), &[3, 0, 0, 1, 0, 0]),
            SECCOMP_RET_USER_NOTIF
        );

        let db = load_policy(&fixture("db-client.toml")).unwrap();
        assert_eq!(db.default_action, Action::Errno(1));
        assert_eq!(db.limits.memory_mb, 512);
        assert_eq!(db.limits.open_files, 64, "limits override field by field");
        assert!(
            crate::lint::lint(&db).is_empty(),
            "{:?}",
            crate::lint::lint(&db)
        );

        for text in [
            "extends = \"pure\"",
            "# nothing but a comment is still a (pure) policy\n",
            "[seccomp]\ndefault_action = \"errno:EACCES\"",
            "[seccomp]\ndefault_action = \"log\"",
            "[seccomp]\ndefault_action = \"errno:13\"",
            "[[seccomp.rule]]\nsyscall = \"clone\"\nargs = [{ index = 0, op = \"masked_eq\", mask = 0x10000, value = 0x10000 }]",
            "[[seccomp.rule]]\nsyscall = \"prctl\"\nargs = [{ index = 1, op = \"le\", value = \"0xffffffffffffffff\" }]",
            "[[seccomp.rule]]\nsyscall = \"execve\"\naction = \"errno:EPERM\"",
            "[identity]\nrun_as = 65534",
            "[identity]\nrun_as = 12345\ngroup = 0",
        ] {
            parse_toml_policy(text, "t.toml").unwrap_or_else(|e| panic!("{text:?}: {e}"));
        }
        assert_eq!(
            parse_toml_policy("[seccomp]\ndefault_action = \"log\"", "t")
                .unwrap()
                .default_action,
            Action::Log
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
            ("extends = \"db_client\"", 1, 11, "unknown policy preset 'db_client' (presets: pure, fs-read, db-client)"),
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

    #[test]
    fn missing_and_empty_files() {
        let e = load_policy("/no/such/policy.toml").unwrap_err();
        assert_eq!((e.line, e.column), (0, 0));
        assert!(
            e.to_string()
                .starts_with("/no/such/policy.toml:0:0: cannot read the policy file"),
            "{e}"
        );
        let e = load_policy("strict").unwrap_err();
        assert!(
            e.message.contains("not a preset: pure, fs-read, db-client"),
            "{e}"
        );
        let e = parse_policy_text(" \n", "empty.json", (6, 1)).unwrap_err();
        assert_eq!(e.to_string(), "empty.json:1:1: empty policy file");
    }

    #[test]
    fn presets_load_by_name() {
        for name in PRESETS {
            let p = load_policy(name).unwrap();
            assert_eq!(p.name, *name);
            p.compile().unwrap();
        }
    }

    #[test]
    fn fs_read_opens_read_only() {
        let p = SandboxPolicy::fs_read();
        let f = p.compile().unwrap();
        let ro = args(
            libc::AT_FDCWD as u64,
            0,
            (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
        );
        let dir = args(
            libc::AT_FDCWD as u64,
            0,
            (libc::O_RDONLY | libc::O_DIRECTORY) as u64,
        );
        let wo = args(libc::AT_FDCWD as u64, 0, libc::O_WRONLY as u64);
        let creat = args(
            libc::AT_FDCWD as u64,
            0,
            (libc::O_RDONLY | libc::O_CREAT) as u64,
        );
        assert_eq!(f.evaluate(nr("openat"), &ro), libc::SECCOMP_RET_ALLOW);
        assert_eq!(f.evaluate(nr("openat"), &dir), libc::SECCOMP_RET_ALLOW);
        for a in [wo, creat] {
            assert_eq!(f.evaluate(nr("openat"), &a), SECCOMP_RET_USER_NOTIF);
            assert_eq!(
                p.verdict(nr("openat"), &a, Phase::Serving, |_| false),
                Verdict::Violation
            );
        }
        assert_eq!(
            f.evaluate(nr("open"), &args(0, libc::O_RDONLY as u64, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            f.evaluate(nr("open"), &args(0, libc::O_RDWR as u64, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        for name in [
            "statx",
            "newfstatat",
            "getdents64",
            "readlinkat",
            "faccessat2",
            "fcntl",
            "lseek",
        ] {
            assert_eq!(
                f.evaluate(nr(name), &args(3, 0, 0)),
                libc::SECCOMP_RET_ALLOW,
                "{name}"
            );
        }
        for name in ["socket", "write_unknown_is_not_a_syscall"] {
            if let Some(n) = number_of(name) {
                assert_eq!(f.evaluate(n, &args(2, 1, 0)), SECCOMP_RET_USER_NOTIF);
            }
        }
        assert_eq!(
            f.evaluate(nr("unlink"), &args(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn db_client_allows_inet_sockets_connect_and_poll() {
        let p = SandboxPolicy::db_client();
        let f = p.compile().unwrap();
        for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            let a = args(
                family as u64,
                (libc::SOCK_STREAM | libc::SOCK_CLOEXEC) as u64,
                0,
            );
            assert_eq!(
                f.evaluate(nr("socket"), &a),
                libc::SECCOMP_RET_ALLOW,
                "{family}"
            );
        }
        let packet = args(libc::AF_PACKET as u64, libc::SOCK_RAW as u64, 0);
        assert_eq!(f.evaluate(nr("socket"), &packet), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            p.verdict(nr("socket"), &packet, Phase::Serving, |_| false),
            Verdict::Violation
        );
        for name in [
            "connect",
            "poll",
            "ppoll",
            "epoll_pwait",
            "sendto",
            "recvfrom",
            "dup3",
            "pipe2",
            "sysinfo",
        ] {
            assert_eq!(
                f.evaluate(nr(name), &args(3, 0, 0)),
                libc::SECCOMP_RET_ALLOW,
                "{name}"
            );
        }
        assert_eq!(
            f.evaluate(nr("ioctl"), &args(3, libc::FIONREAD, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            f.evaluate(nr("ioctl"), &args(3, libc::FIONBIO, 0)),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            f.evaluate(nr("ioctl"), &args(3, 0x5412, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        // Read-only files, as fs-read; still no processes.
        assert_eq!(
            f.evaluate(nr("openat"), &args(0, 0, libc::O_WRONLY as u64)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            f.evaluate(nr("execve"), &args(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            f.evaluate(nr("bind"), &args(3, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn presets_keep_the_floor_out() {
        for name in PRESETS {
            let p = SandboxPolicy::preset(name).unwrap();
            for rule in &p.rules {
                assert!(
                    floor_entry_granted_by(rule).is_none(),
                    "{name}: {}",
                    rule.syscall
                );
            }
        }
    }

    #[test]
    fn hash_is_stable_and_follows_the_rules() {
        let pure = SandboxPolicy::pure();
        assert_eq!(policy_hash(&pure), "c917e8ef065a1284");
        assert_eq!(policy_hash(&pure).len(), 16);
        let mut renamed = pure.clone();
        renamed.name = "/etc/ffb/other.toml".into();
        renamed.warnings.push("a warning".into());
        assert_eq!(policy_hash(&renamed), policy_hash(&pure));
        let more = pure.clone().allow("getcwd").unwrap();
        assert_ne!(policy_hash(&more), policy_hash(&pure));
        let mut errno = pure.clone();
        errno.rules[0].action = Action::Errno(1);
        assert_ne!(policy_hash(&errno), policy_hash(&pure));
        let mut cond = pure.clone();
        let last = cond.rules.len() - 1;
        cond.rules[last].conditions[0].value = 1;
        assert_ne!(policy_hash(&cond), policy_hash(&pure));
    }

    #[test]
    fn identities_resolve_from_passwd_text() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1001:1002::/home/app:/bin/sh\n";
        let group = "root:x:0:\nnogroup:x:65534:\napp:x:1002:\n";
        let app = resolve_identity("app", None, passwd, group).unwrap();
        assert_eq!((app.uid, app.gid), (1001, 1002));
        let n = resolve_identity("1001", None, passwd, group).unwrap();
        assert_eq!((n.uid, n.gid), (1001, 1002));
        let bare = resolve_identity("4000", None, passwd, group).unwrap();
        assert_eq!((bare.uid, bare.gid), (4000, 4000));
        let g = resolve_identity("app", Some("nogroup"), passwd, group).unwrap();
        assert_eq!((g.gid, g.name.as_str()), (65534, "app:nogroup"));
        assert!(resolve_identity("ghost", None, passwd, group).is_err());
        assert!(resolve_identity("app", Some("ghosts"), passwd, group)
            .unwrap_err()
            .starts_with("group"));
        assert!(resolve_identity("-1", None, passwd, group).is_err());
        // "nobody" must resolve on this machine.
        let here = resolve_identity_here("nobody", None).unwrap();
        assert_eq!(here.name, "nobody");
    }

    #[test]
    fn errno_names_and_suggestions() {
        assert_eq!(errno_number("EPERM"), Some(1));
        assert_eq!(errno_number("EACCES"), Some(13));
        assert_eq!(errno_number("EWOULDBLOCK"), Some(11));
        assert_eq!(errno_name(11), Some("EAGAIN"));
        assert_eq!(errno_number("0"), None);
        assert_eq!(did_you_mean("opnat"), Some("openat"));
        assert_eq!(did_you_mean("zzzzzzzz"), None);
    }
}
