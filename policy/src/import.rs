//! Imported seccomp profiles, accepted as they are: Docker/OCI profiles
//! ([`import_docker`]) and rust-vmm seccompiler JSON filters ([`import_seccompiler`]).
//!
//! An imported profile becomes a [`SandboxPolicy`] with no Landlock paths or
//! ports, no namespaces, no identity and default limits: those are ffb's own
//! and have no counterpart in a seccomp profile.
//!
//! Rules that allow a syscall on ffb's floor do not fail the import: the floor
//! filter denies them regardless. Each gives one line in
//! [`SandboxPolicy::warnings`] and the rule is dropped (a `clone` rule is
//! narrowed to threads instead, so `pthread_create` keeps working).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::file::{errno_name, impossible_alone, unknown_syscall_message, PolicyFileError};
use crate::sandbox::{
    floor_entry_granted_by, Action, ArgCondition, CmpOp, SandboxPolicy, SyscallRule,
};
use crate::syscalls::number_of;

const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;

/// The running kernel's `(major, minor)` version, from `uname(2)`
/// (`(0, 0)` if it cannot be read, which fails every `minKernel` include).
pub fn running_kernel() -> (u32, u32) {
    // SAFETY: uname fills the struct it is given; a zeroed utsname is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    let release: String = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    parse_kernel_version(&release).unwrap_or((0, 0))
}

/// `"6.8.0-45-generic"` → `(6, 8)`; `"4.8"` → `(4, 8)`; `"5"` → `(5, 0)`.
pub fn parse_kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => 0,
    };
    Some((major, minor))
}

// ---------------------------------------------------------------------------
// Positions in JSON text

/// Byte offsets of every value (and object key) in a JSON text, by path
/// (`syscalls/3/action`; keys as `syscalls/3/action#key`).
struct JsonIndex<'a> {
    text: &'a str,
    path: &'a str,
    at: HashMap<String, usize>,
}

impl<'a> JsonIndex<'a> {
    fn new(text: &'a str, path: &'a str) -> Self {
        let mut index = Self {
            text,
            path,
            at: HashMap::new(),
        };
        let mut pos = 0;
        index.value(&mut pos, String::new());
        index
    }

    fn skip_ws(&self, pos: &mut usize) {
        let b = self.text.as_bytes();
        while *pos < b.len() && b[*pos].is_ascii_whitespace() {
            *pos += 1;
        }
    }

    /// Skips a string starting at `pos` (a quote); returns its raw contents.
    fn string(&self, pos: &mut usize) -> String {
        let b = self.text.as_bytes();
        let start = *pos + 1;
        *pos += 1;
        while *pos < b.len() && b[*pos] != b'"' {
            *pos += if b[*pos] == b'\\' { 2 } else { 1 };
        }
        let end = (*pos).min(b.len());
        *pos += 1;
        self.text.get(start..end).unwrap_or_default().to_string()
    }

    fn value(&mut self, pos: &mut usize, path: String) {
        let b = self.text.as_bytes();
        self.skip_ws(pos);
        self.at.insert(path.clone(), *pos);
        match b.get(*pos) {
            Some(b'{') => {
                *pos += 1;
                loop {
                    self.skip_ws(pos);
                    match b.get(*pos) {
                        Some(b'"') => {
                            let key_at = *pos;
                            let key = self.string(pos);
                            let child = if path.is_empty() {
                                key
                            } else {
                                format!("{path}/{key}")
                            };
                            self.at.insert(format!("{child}#key"), key_at);
                            self.skip_ws(pos);
                            *pos += 1; // ':'
                            self.value(pos, child);
                        }
                        Some(b',') => *pos += 1,
                        Some(b'}') => {
                            *pos += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            Some(b'[') => {
                *pos += 1;
                let mut i = 0;
                loop {
                    self.skip_ws(pos);
                    match b.get(*pos) {
                        Some(b']') => {
                            *pos += 1;
                            return;
                        }
                        Some(b',') => *pos += 1,
                        Some(_) => {
                            let child = if path.is_empty() {
                                i.to_string()
                            } else {
                                format!("{path}/{i}")
                            };
                            self.value(pos, child);
                            i += 1;
                        }
                        None => return,
                    }
                }
            }
            Some(b'"') => {
                self.string(pos);
            }
            Some(_) => {
                while *pos < b.len() && !matches!(b[*pos], b',' | b']' | b'}') {
                    *pos += 1;
                }
            }
            None => {}
        }
    }

    /// An error at the value at `path` (or its nearest known ancestor).
    fn err(&self, path: &str, message: impl Into<String>) -> PolicyFileError {
        let mut p = path;
        let offset = loop {
            if let Some(&o) = self.at.get(p) {
                break o;
            }
            match p.rfind(['/', '#']) {
                Some(i) => p = &p[..i],
                None => break self.at.get("").copied().unwrap_or(0),
            }
        };
        PolicyFileError::at(self.path, self.text, offset, message)
    }

    /// An error naming an unsupported key of the object at `path`.
    fn unknown_key(&self, path: &str, key: &str, supported: &[&str]) -> PolicyFileError {
        let full = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}/{key}")
        };
        self.err(
            &format!("{full}#key"),
            format!(
                "field '{}' is not supported (supported here: {})",
                dotted(&full),
                supported.join(", ")
            ),
        )
    }
}

/// `syscalls/3/action` → `syscalls[3].action`, for messages.
fn dotted(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('/') {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn join(path: &str, key: impl std::fmt::Display) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

/// An optional field: absent and `null` (as Go writes an unset field) are the same.
fn opt<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).filter(|v| !v.is_null())
}

fn check_keys(
    ix: &JsonIndex,
    path: &str,
    object: &Map<String, Value>,
    supported: &[&str],
) -> Result<(), PolicyFileError> {
    match object.keys().find(|k| !supported.contains(&k.as_str())) {
        Some(k) => Err(ix.unknown_key(path, k, supported)),
        None => Ok(()),
    }
}

fn as_object<'v>(
    ix: &JsonIndex,
    path: &str,
    v: &'v Value,
) -> Result<&'v Map<String, Value>, PolicyFileError> {
    v.as_object()
        .ok_or_else(|| ix.err(path, format!("'{}' must be an object", dotted(path))))
}

fn as_array<'v>(ix: &JsonIndex, path: &str, v: &'v Value) -> Result<&'v [Value], PolicyFileError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| ix.err(path, format!("'{}' must be an array", dotted(path))))
}

fn as_str<'v>(ix: &JsonIndex, path: &str, v: &'v Value) -> Result<&'v str, PolicyFileError> {
    v.as_str()
        .ok_or_else(|| ix.err(path, format!("'{}' must be a string", dotted(path))))
}

fn as_u64(ix: &JsonIndex, path: &str, v: &Value) -> Result<u64, PolicyFileError> {
    v.as_u64().ok_or_else(|| {
        ix.err(
            path,
            format!(
                "'{}' must be an integer from 0 to 18446744073709551615, not {v}",
                dotted(path)
            ),
        )
    })
}

/// A list of strings; `null` (as Go writes an empty list) is an empty list.
fn string_list<'v>(
    ix: &JsonIndex,
    path: &str,
    v: &'v Value,
) -> Result<Vec<&'v str>, PolicyFileError> {
    if v.is_null() {
        return Ok(Vec::new());
    }
    as_array(ix, path, v)?
        .iter()
        .enumerate()
        .map(|(i, s)| as_str(ix, &join(path, i), s))
        .collect()
}

/// Adds imported rules, turning floor grants into warnings.
fn push_imported(policy: &mut SandboxPolicy, mut rule: SyscallRule) {
    if matches!(rule.action, Action::Allow | Action::Log) {
        if let Some(entry) = floor_entry_granted_by(&rule) {
            if entry.only_when.is_some() {
                rule.conditions.push(ArgCondition::new(
                    0,
                    CmpOp::MaskedEq(CLONE_THREAD),
                    CLONE_THREAD,
                ));
                push_warning(
                    policy,
                    format!(
                        "syscall {} is on ffb's floor: {}; denied anyway except for threads \
                         (the rule is narrowed to CLONE_THREAD)",
                        rule.syscall, entry.reason
                    ),
                );
                if impossible_alone(rule.conditions.last().expect("just pushed")).is_none() {
                    policy.rules.push(rule);
                }
            } else {
                push_warning(
                    policy,
                    format!(
                        "syscall {} is on ffb's floor: {}; denied anyway",
                        rule.syscall, entry.reason
                    ),
                );
            }
            return;
        }
    }
    policy.rules.push(rule);
}

fn push_warning(policy: &mut SandboxPolicy, warning: String) {
    if !policy.warnings.contains(&warning) {
        policy.warnings.push(warning);
    }
}

fn empty_policy(path: &str, default_action: Action) -> SandboxPolicy {
    let mut p = SandboxPolicy::pure();
    p.name = path.to_string();
    p.rules.clear();
    p.default_action = default_action;
    // A seccomp profile says nothing of paths or ports: Landlock stays off
    // (and lint says what that means).
    p.confine = false;
    p
}

fn reject_allow_default(
    ix: &JsonIndex,
    path: &str,
    action: Action,
) -> Result<Action, PolicyFileError> {
    if action == Action::Allow {
        return Err(ix.err(
            path,
            format!(
                "'{}' allows by default, which ffb does not accept: a policy must deny by default",
                dotted(path)
            ),
        ));
    }
    Ok(action)
}

// ---------------------------------------------------------------------------
// Docker / OCI

/// The Docker architecture names of the helper's (only) architecture.
const HELPER_ARCHES: &[&str] = &["amd64", "x86_64"];

/// Imports a Docker/OCI seccomp profile (`defaultAction`, `syscalls`, ...).
///
/// `includes`/`excludes` are evaluated for the helper as it runs: no
/// capabilities at all, x86_64 (Docker's `amd64`), kernel `kernel`
/// (`(major, minor)`, see [`running_kernel`]). A rule applies only when all
/// its includes hold and none of its excludes match.
///
/// Actions: `SCMP_ACT_ALLOW`; `SCMP_ACT_ERRNO` (with the rule's `errnoRet`, or
/// the profile's `defaultErrnoRet`, or EPERM); `SCMP_ACT_KILL`,
/// `SCMP_ACT_KILL_PROCESS` and `SCMP_ACT_KILL_THREAD` (all a policy violation
/// that stops the helper); `SCMP_ACT_LOG`. `SCMP_ACT_TRAP`, `SCMP_ACT_TRACE`
/// and `SCMP_ACT_NOTIFY` are rejected, as is a default that allows.
///
/// Parses `text` as JSON, with the parser's position on failure.
fn parse_json(text: &str, path: &str) -> Result<Value, PolicyFileError> {
    serde_json::from_str(text).map_err(|e| PolicyFileError {
        path: path.to_string(),
        line: e.line(),
        column: e.column(),
        message: format!("not valid JSON: {e}"),
    })
}

/// Syscall names x86_64 does not have (Docker lists other architectures' and
/// newer kernels' calls) are skipped, with one warning listing them.
pub fn import_docker(
    text: &str,
    path: &str,
    kernel: (u32, u32),
) -> Result<SandboxPolicy, PolicyFileError> {
    let ix = JsonIndex::new(text, path);
    let root = parse_json(text, path)?;
    let root = as_object(&ix, "", &root)?;
    check_keys(
        &ix,
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
        Some(v) => Some(errno_value(&ix, "defaultErrnoRet", v)?),
        None => None,
    };
    let default_action = docker_action(
        &ix,
        "defaultAction",
        root.get("defaultAction")
            .expect("detected by defaultAction"),
        None,
        default_errno,
    )?;
    let default_action = reject_allow_default(&ix, "defaultAction", default_action)?;

    // Architectures: the helper runs x86_64 code only, and the compiled
    // filter's first instructions (seccompiler's) refuse any other audit
    // architecture, so 32-bit x86 and x32 calls are always denied whatever the
    // profile lists. `architectures` must therefore name SCMP_ARCH_X86_64 if it
    // is given; `archMap` (which tells Docker the subarchitectures of each
    // native architecture) is checked for shape and otherwise ignored, since
    // only its x86_64 entry could ever matter and that entry changes nothing.
    if let Some(arches) = opt(root, "architectures") {
        let list = string_list(&ix, "architectures", arches)?;
        if !list.is_empty() && !list.contains(&"SCMP_ARCH_X86_64") {
            return Err(ix.err(
                "architectures",
                "'architectures' does not include SCMP_ARCH_X86_64, the only architecture the helper runs",
            ));
        }
    }
    if let Some(map) = opt(root, "archMap") {
        for (i, entry) in as_array(&ix, "archMap", map)?.iter().enumerate() {
            let p = join("archMap", i);
            let entry = as_object(&ix, &p, entry)?;
            check_keys(&ix, &p, entry, &["architecture", "subArchitectures"])?;
            if let Some(a) = opt(entry, "architecture") {
                as_str(&ix, &join(&p, "architecture"), a)?;
            }
            if let Some(s) = opt(entry, "subArchitectures") {
                string_list(&ix, &join(&p, "subArchitectures"), s)?;
            }
        }
    }

    let mut policy = empty_policy(path, default_action);
    let mut unknown: Vec<String> = Vec::new();
    let empty = Vec::new();
    let syscalls = match opt(root, "syscalls") {
        Some(v) => as_array(&ix, "syscalls", v)?,
        None => empty.as_slice(),
    };
    for (i, entry) in syscalls.iter().enumerate() {
        let p = join("syscalls", i);
        let entry = as_object(&ix, &p, entry)?;
        check_keys(
            &ix,
            &p,
            entry,
            &[
                "names", "name", "action", "args", "errnoRet", "includes", "excludes", "comment",
            ],
        )?;
        if let Some(c) = opt(entry, "comment") {
            as_str(&ix, &join(&p, "comment"), c)?;
        }
        let applies_included = match opt(entry, "includes") {
            Some(f) => docker_filter(&ix, &join(&p, "includes"), f, kernel)?.all_hold,
            None => true,
        };
        let excluded = match opt(entry, "excludes") {
            Some(f) => docker_filter(&ix, &join(&p, "excludes"), f, kernel)?.any_holds,
            None => false,
        };
        let errno_ret = match opt(entry, "errnoRet") {
            Some(v) => Some(errno_value(&ix, &join(&p, "errnoRet"), v)?),
            None => None,
        };
        let action_path = join(&p, "action");
        let action = docker_action(
            &ix,
            &action_path,
            entry
                .get("action")
                .ok_or_else(|| ix.err(&p, format!("'{}' has no action", dotted(&p))))?,
            errno_ret,
            default_errno,
        )?;
        let mut conditions = Vec::new();
        if let Some(args) = opt(entry, "args") {
            if !args.is_null() {
                for (j, arg) in as_array(&ix, &join(&p, "args"), args)?.iter().enumerate() {
                    conditions.push(docker_condition(&ix, &join(&join(&p, "args"), j), arg)?);
                }
            }
        }
        let mut names: Vec<(String, &str)> = Vec::new();
        if let Some(list) = opt(entry, "names") {
            let np = join(&p, "names");
            for (j, n) in as_array(&ix, &np, list)?.iter().enumerate() {
                names.push((join(&np, j), as_str(&ix, &join(&np, j), n)?));
            }
        }
        if let Some(n) = opt(entry, "name") {
            let np = join(&p, "name");
            names.push((np.clone(), as_str(&ix, &np, n)?));
        }
        if !applies_included || excluded {
            continue;
        }
        let impossible = conditions.iter().find_map(impossible_alone);
        for (_, name) in names {
            if number_of(name).is_none() {
                if !unknown.iter().any(|u| u == name) {
                    unknown.push(name.to_string());
                }
                continue;
            }
            if impossible.is_some() {
                continue; // a rule that can never match changes nothing
            }
            let rule = SyscallRule::new(name, action, conditions.clone())
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

fn errno_value(ix: &JsonIndex, path: &str, v: &Value) -> Result<u32, PolicyFileError> {
    let n = as_u64(ix, path, v)?;
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=4095).contains(n))
        .ok_or_else(|| {
            ix.err(
                path,
                format!("'{}' = {n} is not an errno (1 to 4095)", dotted(path)),
            )
        })
}

fn docker_action(
    ix: &JsonIndex,
    path: &str,
    v: &Value,
    errno_ret: Option<u32>,
    default_errno: Option<u32>,
) -> Result<Action, PolicyFileError> {
    let name = as_str(ix, path, v)?;
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
    let arg = as_object(ix, path, v)?;
    check_keys(ix, path, arg, &["index", "value", "valueTwo", "op"])?;
    let field = |k: &str| {
        arg.get(k)
            .ok_or_else(|| ix.err(path, format!("'{}' has no {k}", dotted(path))))
    };
    let index_path = join(path, "index");
    let index = as_u64(ix, &index_path, field("index")?)?;
    if index > 5 {
        return Err(ix.err(
            &index_path,
            format!("argument index {index} is out of range (0 to 5)"),
        ));
    }
    let value = as_u64(ix, &join(path, "value"), field("value")?)?;
    let value_two = match opt(arg, "valueTwo") {
        Some(v) => as_u64(ix, &join(path, "valueTwo"), v)?,
        None => 0,
    };
    let op_path = join(path, "op");
    let op = match as_str(ix, &op_path, field("op")?)? {
        "SCMP_CMP_EQ" => CmpOp::Eq,
        "SCMP_CMP_NE" => CmpOp::Ne,
        "SCMP_CMP_LT" => CmpOp::Lt,
        "SCMP_CMP_LE" => CmpOp::Le,
        "SCMP_CMP_GT" => CmpOp::Gt,
        "SCMP_CMP_GE" => CmpOp::Ge,
        // libseccomp: arg & value == valueTwo.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ArgCondition::new(
                index as u8,
                CmpOp::MaskedEq(value),
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
    Ok(ArgCondition::new(index as u8, op, value))
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
    let f = as_object(ix, path, v)?;
    check_keys(ix, path, f, &["caps", "arches", "minKernel"])?;
    let mut held: Vec<bool> = Vec::new();
    if let Some(caps) = opt(f, "caps") {
        // The helper holds no capabilities at all.
        let caps = string_list(ix, &join(path, "caps"), caps)?;
        if !caps.is_empty() {
            held.push(false);
        }
    }
    if let Some(arches) = opt(f, "arches") {
        let arches = string_list(ix, &join(path, "arches"), arches)?;
        if !arches.is_empty() {
            held.push(arches.iter().any(|a| HELPER_ARCHES.contains(a)));
        }
    }
    if let Some(min) = opt(f, "minKernel") {
        let p = join(path, "minKernel");
        let text = as_str(ix, &p, min)?;
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

// ---------------------------------------------------------------------------
// seccompiler

/// Imports a rust-vmm seccompiler JSON filter file (seccompiler 0.5's format):
///
/// ```json
/// { "main": { "mismatch_action": "kill_process", "match_action": "allow",
///             "filter": [ { "syscall": "read" },
///                         { "syscall": "socket", "args": [
///                             { "index": 0, "type": "dword", "op": "eq", "val": 1 } ] } ] } }
/// ```
///
/// The file must hold exactly one filter (ffb has one helper thread's policy).
/// `default_action` and `filter_action` are accepted as aliases, as
/// seccompiler does. Actions: `"allow"`, `{"errno": N}`, `"kill_thread"` and
/// `"kill_process"` (a policy violation), `"log"`; `"trap"` and `{"trace": N}`
/// are rejected. Operators: `eq ne lt le gt ge` and `{"masked_eq": MASK}`.
/// A `dword` condition compares the low 32 bits: `eq` and `masked_eq` are
/// translated exactly (to a mask on the low half); other `dword` comparisons are
/// made on all 64 bits, with a warning.
pub fn import_seccompiler(text: &str, path: &str) -> Result<SandboxPolicy, PolicyFileError> {
    let ix = JsonIndex::new(text, path);
    let root = parse_json(text, path)?;
    let root = as_object(&ix, "", &root)?;
    if root.len() != 1 {
        let names: Vec<&str> = root.keys().map(String::as_str).collect();
        return Err(ix.err(
            "",
            format!(
                "a seccompiler file must hold exactly one filter; this one has {}: {}",
                names.len(),
                names.join(", ")
            ),
        ));
    }
    let (filter_name, filter) = root.iter().next().expect("one filter");
    let fp = filter_name.as_str();
    let filter = as_object(&ix, fp, filter)?;
    check_keys(
        &ix,
        fp,
        filter,
        &[
            "mismatch_action",
            "default_action",
            "match_action",
            "filter_action",
            "filter",
        ],
    )?;
    let pick = |a: &str, b: &str| -> Result<(String, &Value), PolicyFileError> {
        match (filter.get(a), filter.get(b)) {
            (Some(v), None) => Ok((join(fp, a), v)),
            (None, Some(v)) => Ok((join(fp, b), v)),
            (Some(_), Some(_)) => Err(ix.err(
                &join(fp, b),
                format!(
                    "'{}' and '{}' are the same field; give one",
                    dotted(&join(fp, a)),
                    dotted(&join(fp, b))
                ),
            )),
            (None, None) => Err(ix.err(fp, format!("filter '{fp}' has no {a}"))),
        }
    };
    let (mp, mismatch) = pick("mismatch_action", "default_action")?;
    let default_action = reject_allow_default(&ix, &mp, seccompiler_action(&ix, &mp, mismatch)?)?;
    let (ap, matched) = pick("match_action", "filter_action")?;
    let action = seccompiler_action(&ix, &ap, matched)?;
    let rules_path = join(fp, "filter");
    let rules = as_array(
        &ix,
        &rules_path,
        filter
            .get("filter")
            .ok_or_else(|| ix.err(fp, format!("filter '{fp}' has no filter (rule list)")))?,
    )?;

    let mut policy = empty_policy(path, default_action);
    for (i, rule) in rules.iter().enumerate() {
        let rp = join(&rules_path, i);
        let rule = as_object(&ix, &rp, rule)?;
        check_keys(&ix, &rp, rule, &["syscall", "args", "comment"])?;
        if let Some(c) = opt(rule, "comment") {
            as_str(&ix, &join(&rp, "comment"), c)?;
        }
        let sp = join(&rp, "syscall");
        let name = as_str(
            &ix,
            &sp,
            rule.get("syscall")
                .ok_or_else(|| ix.err(&rp, format!("'{}' has no syscall", dotted(&rp))))?,
        )?;
        if number_of(name).is_none() {
            return Err(ix.err(&sp, unknown_syscall_message(name)));
        }
        let mut conditions = Vec::new();
        if let Some(args) = rule.get("args").filter(|a| !a.is_null()) {
            let argp = join(&rp, "args");
            for (j, arg) in as_array(&ix, &argp, args)?.iter().enumerate() {
                let cp = join(&argp, j);
                let (condition, warning) = seccompiler_condition(&ix, &cp, arg)?;
                if let Some(w) = warning {
                    push_warning(&mut policy, format!("{}: {w}", dotted(&cp)));
                }
                if let Some(why) = impossible_alone(&condition) {
                    return Err(ix.err(&cp, format!("condition can never hold: {why}")));
                }
                conditions.push(condition);
            }
        }
        let rule =
            SyscallRule::new(name, action, conditions).map_err(|e| ix.err(&rp, e.to_string()))?;
        push_imported(&mut policy, rule);
    }
    Ok(policy)
}

fn seccompiler_action(ix: &JsonIndex, path: &str, v: &Value) -> Result<Action, PolicyFileError> {
    let rejected = |what: &str| {
        ix.err(
            path,
            format!(
                "'{}' = {what} is not supported: ffb has no signal handler or tracer for the \
                 filter (use \"allow\", {{\"errno\": N}}, \"kill_process\", \"kill_thread\" or \"log\")",
                dotted(path)
            ),
        )
    };
    match v {
        Value::String(s) => match s.as_str() {
            "allow" => Ok(Action::Allow),
            "kill_thread" | "kill_process" => Ok(Action::Kill),
            "log" => Ok(Action::Log),
            "trap" => Err(rejected("\"trap\"")),
            other => Err(ix.err(
                path,
                format!(
                    "'{}' = \"{other}\" is not a seccompiler action",
                    dotted(path)
                ),
            )),
        },
        Value::Object(o) if o.len() == 1 => {
            let (k, n) = o.iter().next().expect("one entry");
            match k.as_str() {
                "errno" => Ok(Action::Errno(errno_value(ix, &join(path, "errno"), n)?)),
                "trace" => Err(rejected(&format!("{{\"trace\": {n}}}"))),
                other => Err(ix.unknown_key(path, other, &["errno"])),
            }
        }
        other => Err(ix.err(
            path,
            format!("'{}' = {other} is not a seccompiler action", dotted(path)),
        )),
    }
}

fn seccompiler_condition(
    ix: &JsonIndex,
    path: &str,
    v: &Value,
) -> Result<(ArgCondition, Option<String>), PolicyFileError> {
    let arg = as_object(ix, path, v)?;
    check_keys(ix, path, arg, &["index", "type", "op", "val", "comment"])?;
    let field = |k: &str| {
        arg.get(k)
            .ok_or_else(|| ix.err(path, format!("'{}' has no {k}", dotted(path))))
    };
    if let Some(c) = opt(arg, "comment") {
        as_str(ix, &join(path, "comment"), c)?;
    }
    let index_path = join(path, "index");
    let index = as_u64(ix, &index_path, field("index")?)?;
    if index > 5 {
        return Err(ix.err(
            &index_path,
            format!("argument index {index} is out of range (0 to 5)"),
        ));
    }
    let index = index as u8;
    let value = as_u64(ix, &join(path, "val"), field("val")?)?;
    let type_path = join(path, "type");
    let dword = match as_str(ix, &type_path, field("type")?)? {
        "dword" => true,
        "qword" => false,
        other => {
            return Err(ix.err(
                &type_path,
                format!(
                    "'{}' = \"{other}\" is not \"dword\" or \"qword\"",
                    dotted(&type_path)
                ),
            ))
        }
    };
    if dword && value > u64::from(u32::MAX) {
        return Err(ix.err(
            &join(path, "val"),
            format!("a dword condition's val {value} does not fit in 32 bits"),
        ));
    }
    let op_path = join(path, "op");
    let op_value = field("op")?;
    let op = match op_value {
        Value::String(s) => match s.as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            other => {
                return Err(ix.err(
                    &op_path,
                    format!(
                        "'{}' = \"{other}\" is not a seccompiler operator",
                        dotted(&op_path)
                    ),
                ))
            }
        },
        Value::Object(o) if o.len() == 1 && o.contains_key("masked_eq") => {
            CmpOp::MaskedEq(as_u64(ix, &join(&op_path, "masked_eq"), &o["masked_eq"])?)
        }
        other => {
            return Err(ix.err(
                &op_path,
                format!(
                    "'{}' = {other} is not a seccompiler operator",
                    dotted(&op_path)
                ),
            ))
        }
    };
    const LOW: u64 = 0xffff_ffff;
    Ok(match (dword, op) {
        // seccompiler compares `arg & mask` with `val & mask`.
        (false, CmpOp::MaskedEq(mask)) => (
            ArgCondition::new(index, CmpOp::MaskedEq(mask), value & mask),
            None,
        ),
        (false, op) => (ArgCondition::new(index, op, value), None),
        (true, CmpOp::Eq) => (ArgCondition::new(index, CmpOp::MaskedEq(LOW), value), None),
        (true, CmpOp::MaskedEq(mask)) => (
            ArgCondition::new(index, CmpOp::MaskedEq(mask & LOW), value & mask & LOW),
            None,
        ),
        (true, op) => (
            ArgCondition::new(index, op, value),
            Some(format!(
                "the dword comparison '{}' is made on all 64 bits of argument {index} \
                 (ffb compares whole registers)",
                match op {
                    CmpOp::Ne => "ne",
                    CmpOp::Lt => "lt",
                    CmpOp::Le => "le",
                    CmpOp::Gt => "gt",
                    _ => "ge",
                }
            )),
        ),
    })
}

/// A readable errno for messages: `EPERM` or the number.
pub(crate) fn errno_label(n: u32) -> String {
    errno_name(n).map_or_else(|| n.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{load_policy, parse_policy_text};
    use crate::sandbox::Evaluate;
    use crate::sandbox::{Phase, Verdict, SECCOMP_RET_USER_NOTIF};

    const DOCKER_DEFAULT: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/docker-default-seccomp.json"
    );
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    fn fixture(name: &str) -> String {
        format!(
            "{}/../tests/fixtures/policies/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn nr(name: &str) -> i64 {
        number_of(name).unwrap()
    }

    fn a(a0: u64, a1: u64, a2: u64) -> [u64; 6] {
        [a0, a1, a2, 0, 0, 0]
    }

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
            assert_eq!(f.evaluate(nr(name), &a(3, 0, 0)), ALLOW, "{name}");
        }
        // Floor syscalls the profile allows still reach the host, which refuses them.
        for name in [
            "execve", "execveat", "fork", "vfork", "seccomp", "ptrace", "mount", "bpf",
        ] {
            assert_eq!(
                f.evaluate(nr(name), &a(0, 0, 0)),
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
            assert_eq!(f.evaluate(nr(name), &a(0, 0, 0)), EPERM, "{name}");
        }
        // clone: threads pass; a new process reaches the host (floor).
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(f.evaluate(nr("clone"), &a(thread, 0, 0)), ALLOW);
        assert_eq!(
            f.evaluate(nr("clone"), &a(libc::SIGCHLD as u64, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            f.evaluate(nr("clone"), &a(thread | libc::CLONE_NEWUSER as u64, 0, 0)),
            EPERM,
            "a thread, so not the floor; but the profile's rule excludes namespace flags"
        );
        assert_eq!(
            f.evaluate(nr("clone3"), &a(0, 0, 0)),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        // socket: every family but AF_VSOCK (40).
        assert_eq!(
            f.evaluate(nr("socket"), &a(libc::AF_INET as u64, 1, 0)),
            ALLOW
        );
        assert_eq!(f.evaluate(nr("socket"), &a(40, 1, 0)), EPERM);
        assert_eq!(f.evaluate(nr("personality"), &a(0xffff_ffff, 0, 0)), ALLOW);
        assert_eq!(f.evaluate(nr("personality"), &a(1, 0, 0)), EPERM);

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
        assert_eq!(f.evaluate(nr("read"), &a(0, 0, 0)), ALLOW);
        assert_eq!(f.evaluate(nr("socket"), &a(1, 1, 0)), ALLOW);
        assert_eq!(
            f.evaluate(nr("socket"), &a(2, 1, 0)),
            libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32
        );
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let rx = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        assert_eq!(f.evaluate(nr("mprotect"), &a(0, 4096, rw)), ALLOW);
        // mprotect is on the loading route: the host decides, by the rules once loaded.
        assert_eq!(
            f.evaluate(nr("mprotect"), &a(0, 4096, rx)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            p.verdict(nr("mprotect"), &a(0, 4096, rx), Phase::Serving, |_| false),
            Verdict::Fail(1)
        );
        assert_eq!(f.evaluate(nr("mkdir"), &a(0, 0, 0)), libc::SECCOMP_RET_LOG);
        assert_eq!(f.evaluate(nr("chroot"), &a(0, 0, 0)), EPERM);
        assert_eq!(f.evaluate(nr("arch_prctl"), &a(0, 0, 0)), ALLOW);
        assert_eq!(f.evaluate(nr("statx"), &a(0, 0, 0)), ALLOW);
        assert_eq!(f.evaluate(nr("getcpu"), &a(0, 0, 0)), ALLOW);
        assert_eq!(
            f.evaluate(nr("execve"), &a(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            p.warnings,
            [
                "syscall execve is on ffb's floor: the bridge runs library code, never programs; denied anyway",
                "skipped 1 syscall name(s) that are not x86_64 syscalls at all (other architectures' or newer kernels' calls): socketcall",
            ]
        );
    }

    #[test]
    fn seccompiler_filter_behaves_as_written() {
        let p = load_policy(&fixture("seccompiler.json")).unwrap();
        assert_eq!(p.default_action, Action::Errno(1));
        let f = p.compile().unwrap();
        assert_eq!(f.evaluate(nr("read"), &a(0, 0, 0)), ALLOW);
        assert_eq!(
            f.evaluate(nr("openat"), &a(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF,
            "loading route"
        );
        assert_eq!(
            f.evaluate(nr("getcwd"), &a(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF,
            "loading route"
        );
        assert_eq!(f.evaluate(nr("mkdir"), &a(0, 0, 0)), EPERM);
        assert_eq!(f.evaluate(nr("socket"), &a(1, 1, 0)), ALLOW);
        assert_eq!(
            f.evaluate(nr("socket"), &a(1 | 7 << 32, 1, 0)),
            ALLOW,
            "dword: low half only"
        );
        assert_eq!(f.evaluate(nr("socket"), &a(2, 1, 0)), EPERM);
        assert_eq!(f.evaluate(nr("mmap"), &a(0, 4096, 3)), ALLOW);
        assert_eq!(
            f.evaluate(nr("mmap"), &a(0, 4096, 5)),
            SECCOMP_RET_USER_NOTIF,
            "loading route"
        );
        assert_eq!(f.evaluate(nr("lseek"), &a(3, 0, 2)), ALLOW);
        assert_eq!(
            p.warnings,
            ["main_thread.filter[6].args[0]: the dword comparison 'le' is made on all 64 bits of argument 2 (ffb compares whole registers)"]
        );
    }

    #[test]
    fn seccompiler_floor_rules_warn_and_are_dropped() {
        let text = r#"{"t": {"mismatch_action": "kill_process", "match_action": "allow",
            "filter": [{"syscall": "read"}, {"syscall": "ptrace"}, {"syscall": "clone"}]}}"#;
        let p = import_seccompiler(text, "s.json").unwrap();
        assert_eq!(p.default_action, Action::Kill);
        assert_eq!(p.rules.len(), 2, "read, and clone narrowed to threads");
        assert!(p.warnings[0].starts_with("syscall ptrace is on ffb's floor: it reads or writes"));
        assert!(p.warnings[1].contains("narrowed to CLONE_THREAD"));
        let f = p.compile().unwrap();
        assert_eq!(
            f.evaluate(nr("clone"), &a(libc::CLONE_THREAD as u64, 0, 0)),
            ALLOW
        );
        assert_eq!(f.evaluate(nr("clone"), &a(0, 0, 0)), SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn json_errors_name_the_field_and_its_position() {
        let docker =
            |body: &str| format!("{{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n{body}\n}}");
        let cases: Vec<(String, usize, usize, &str)> = vec![
            (
                docker("  \"syscalls\": [\n    { \"names\": [\"read\"], \"action\": \"SCMP_ACT_TRAP\" }\n  ]"),
                4,
                36,
                "'syscalls[0].action' = \"SCMP_ACT_TRAP\" is not supported",
            ),
            (
                docker("  \"syscalls\": [\n    { \"names\": [\"read\"], \"action\": \"SCMP_ACT_NOTIFY\" }\n  ]"),
                4,
                36,
                "SCMP_ACT_NOTIFY",
            ),
            (
                docker("  \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"]"),
                3,
                3,
                "field 'flags' is not supported",
            ),
            (
                docker("  \"syscalls\": [\n    { \"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"priority\": 1 }\n  ]"),
                4,
                54,
                "field 'syscalls[0].priority' is not supported",
            ),
            (
                docker("  \"syscalls\": [{ \"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n    \"args\": [{ \"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_BETWEEN\" }] }]"),
                4,
                46,
                "'syscalls[0].args[0].op' = \"SCMP_CMP_BETWEEN\" is not a seccomp comparison",
            ),
            (
                docker("  \"syscalls\": [{ \"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\",\n    \"includes\": { \"minKernel\": \"4.8\", \"osVersion\": \"x\" } }]"),
                4,
                39,
                "field 'syscalls[0].includes.osVersion' is not supported",
            ),
            (
                docker("  \"architectures\": [\"SCMP_ARCH_AARCH64\"]"),
                3,
                20,
                "does not include SCMP_ARCH_X86_64",
            ),
            (
                "{ \"defaultAction\": \"SCMP_ACT_ALLOW\" }".to_string(),
                1,
                20,
                "must deny by default",
            ),
            (
                "{ \"a\": { \"mismatch_action\": \"kill_process\", \"match_action\": \"allow\", \"filter\": [] },\n  \"b\": { \"mismatch_action\": \"kill_process\", \"match_action\": \"allow\", \"filter\": [] } }".to_string(),
                1,
                1,
                "exactly one filter; this one has 2: a, b",
            ),
            (
                "{ \"a\": { \"mismatch_action\": \"trap\", \"match_action\": \"allow\", \"filter\": [] } }".to_string(),
                1,
                29,
                "'a.mismatch_action' = \"trap\" is not supported",
            ),
            (
                "{ \"a\": { \"mismatch_action\": \"kill_process\", \"match_action\": { \"trace\": 3 }, \"filter\": [] } }".to_string(),
                1,
                61,
                "'a.match_action' = {\"trace\": 3} is not supported",
            ),
            (
                "{ \"a\": { \"mismatch_action\": \"allow\", \"match_action\": \"kill_process\", \"filter\": [] } }".to_string(),
                1,
                29,
                "must deny by default",
            ),
            (
                "{ \"a\": { \"mismatch_action\": \"log\", \"match_action\": \"allow\",\n  \"filter\": [ { \"syscall\": \"opnat\" } ] } }".to_string(),
                2,
                28,
                "unknown syscall 'opnat' (did you mean 'openat'?)",
            ),
            (
                "{ \"a\": { \"mismatch_action\": \"log\", \"match_action\": \"allow\",\n  \"filter\": [ { \"syscall\": \"read\", \"args\": [ { \"index\": 0, \"type\": \"dword\", \"op\": \"eq\", \"val\": 1, \"extra\": 2 } ] } ] } }".to_string(),
                2,
                99,
                "field 'a.filter[0].args[0].extra' is not supported",
            ),
            (
                "{ \"a\": { \"mismatch_action\": \"log\", \"match_action\": \"allow\",\n  \"filter\": [ { \"syscall\": \"read\", \"args\": [ { \"index\": 7, \"type\": \"dword\", \"op\": \"eq\", \"val\": 1 } ] } ] } }".to_string(),
                2,
                57,
                "argument index 7 is out of range",
            ),
            ("{ \"defaultAction\": \"SCMP_ACT_ERRNO\", }".to_string(), 1, 38, "not valid JSON"),
            ("{ \"rules\": [] }".to_string(), 1, 1, "must be a Docker/OCI seccomp profile"),
        ];
        let mut wrong = Vec::new();
        for (text, line, column, words) in &cases {
            let e = parse_policy_text(text, "p.json", (6, 1)).expect_err(text);
            let shown = e.to_string();
            if (e.line, e.column) != (*line, *column)
                || !e.message.contains(words)
                || shown.contains('\n')
            {
                wrong.push(format!(
                    "{text}\n  expected {line}:{column} {words:?}\n  got      {shown}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("5"), Some((5, 0)));
        assert_eq!(parse_kernel_version("x.y"), None);
        assert!(running_kernel() >= (3, 0));
    }
}
