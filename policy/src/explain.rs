//! `policy explain`: what a policy does, as a readable table ([`explain_text`])
//! or as JSON ([`explain_json`]).
//!
//! ```
//! use ffb_policy::{explain::{explain_json, explain_text}, sandbox::SandboxPolicy};
//! let p = SandboxPolicy::preset("fs-read").unwrap();
//! assert!(explain_text(&p).contains("openat"));
//! assert_eq!(explain_json(&p)["default_action"], "kill");
//! ```

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::grants::GrantKind;
use crate::hash::policy_hash;
use crate::sandbox::{
    ArgCondition, CmpOp, SandboxPolicy, Target, FLOOR, LOADING_SYSCALLS, SUPERVISED_CONNECTS,
    SUPERVISED_LOCKS, SUPERVISED_SIGNALS, SUPERVISED_TARGETS,
};

/// A condition as an expression: `arg0 == 2`, `arg2 & 0x4 == 0`.
pub fn condition_label(c: &ArgCondition) -> String {
    let i = c.index;
    match c.op {
        CmpOp::Eq => format!("arg{i} == {}", num(c.value)),
        CmpOp::Ne => format!("arg{i} != {}", num(c.value)),
        CmpOp::Lt => format!("arg{i} < {}", num(c.value)),
        CmpOp::Le => format!("arg{i} <= {}", num(c.value)),
        CmpOp::Gt => format!("arg{i} > {}", num(c.value)),
        CmpOp::Ge => format!("arg{i} >= {}", num(c.value)),
        CmpOp::MaskedEq(m) => format!("arg{i} & {m:#x} == {:#x}", c.value),
    }
}

/// Small numbers in decimal, large ones (flags, ioctl requests) in hex.
fn num(v: u64) -> String {
    if v < 4096 {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

fn floor_label(e: &crate::sandbox::FloorEntry) -> String {
    match (e.only_when, e.except) {
        (Some((i, mask, value)), Some((j, except))) => format!(
            "{} (when arg{i} & {mask:#x} == {value:#x} and arg{j} != {except:#x})",
            e.syscall
        ),
        (Some((i, mask, value)), None) => {
            format!("{} (when arg{i} & {mask:#x} == {value:#x})", e.syscall)
        }
        _ => e.syscall.to_string(),
    }
}

/// The supervised-target calls, with how each names its target.
fn target_labels() -> Vec<String> {
    SUPERVISED_TARGETS
        .iter()
        .map(|(name, target)| match target {
            Target::Pid(i) => format!("{name} (pid arg{i})"),
            Target::Which(_) => format!("{name} (which arg0, who arg1)"),
        })
        .collect()
}

/// A route's `(syscall, argument, mask, value)` table as expressions:
/// `socket (arg2 & 0xffffffff == 0x106)`.
fn masked_labels(table: &[(&str, u8, u64, u64)]) -> Vec<String> {
    table
        .iter()
        .map(|(name, i, mask, value)| format!("{name} (arg{i} & {mask:#x} == {value:#x})"))
        .collect()
}

/// The connect routes as expressions.
fn connect_labels() -> Vec<String> {
    masked_labels(SUPERVISED_CONNECTS)
}

/// The lock routes as expressions.
fn lock_labels() -> Vec<String> {
    masked_labels(SUPERVISED_LOCKS)
}

/// A readable account of the policy: its rules, the floor, the supervised
/// routes, the default, Landlock paths and ports, limits, namespaces,
/// identity and warnings.
pub fn explain_text(p: &SandboxPolicy) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "policy {} (hash {})", p.name, policy_hash(p));
    let _ = writeln!(w, "default action: {}", p.default_action);
    let _ = writeln!(w);
    let _ = writeln!(w, "rules (the first that matches decides):");
    let width = p
        .rules
        .iter()
        .map(|r| r.syscall.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let _ = writeln!(
        w,
        "  {:<width$}  {:>4}  {:<12}  conditions",
        "syscall", "nr", "action"
    );
    for r in &p.rules {
        let conditions = if r.conditions.is_empty() {
            "any arguments".to_string()
        } else {
            r.conditions
                .iter()
                .map(condition_label)
                .collect::<Vec<_>>()
                .join(" and ")
        };
        let origin = r
            .origin
            .map(|kind| format!("  <- {}", grant_label(p, kind)))
            .unwrap_or_default();
        let _ = writeln!(
            w,
            "  {:<width$}  {:>4}  {:<12}  {conditions}{origin}",
            r.syscall,
            r.nr,
            r.action.to_string()
        );
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "floor (always denied, whatever the rules say; a policy violation):"
    );
    let fw = FLOOR
        .iter()
        .map(|e| floor_label(e).len())
        .max()
        .unwrap_or(0);
    for e in FLOOR {
        let _ = writeln!(w, "  {:<fw$}  {}", floor_label(e), e.reason);
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "supervised signals (allowed only when aimed at the helper itself): {}",
        SUPERVISED_SIGNALS.join(", ")
    );
    let _ = writeln!(
        w,
        "supervised targets (a violation unless aimed at the helper itself; then the rules decide): {}",
        target_labels().join(", ")
    );
    let _ = writeln!(
        w,
        "connections without connect() (a violation unless a rule names the value): {}",
        connect_labels().join(", ")
    );
    let _ = writeln!(
        w,
        "locks (the rules decide, then the host lets them run only on a file within a write grant, \
         else ENOLCK): {}",
        lock_labels().join(", ")
    );
    let _ = writeln!(
        w,
        "threads: every clone with CLONE_THREAD goes to the host, which fails it with EAGAIN at {} threads",
        p.limits.threads
    );
    let _ = writeln!(
        w,
        "while loading only (read-only opens, exec mappings): {}",
        LOADING_SYSCALLS.join(", ")
    );
    let _ = writeln!(
        w,
        "clone3: fails with ENOSYS (so glibc falls back to clone)"
    );
    let _ = writeln!(w);
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let paths =
        |v: &[std::path::PathBuf]| list(v.iter().map(|p| p.display().to_string()).collect());
    let ports = |v: &[u16]| list(v.iter().map(u16::to_string).collect());
    let _ = writeln!(w, "landlock:");
    let _ = writeln!(w, "  read:        {}", paths(&p.filesystem.read));
    let _ = writeln!(w, "  write:       {}", paths(&p.filesystem.write));
    let _ = writeln!(w, "  connect_tcp: {}", ports(&p.network.connect_tcp));
    let _ = writeln!(w, "  bind_tcp:    {}", ports(&p.network.bind_tcp));
    if !p.connect_unix.is_empty() {
        let _ = writeln!(
            w,
            "unix sockets (connect_unix; the host makes every connect, to these only): {}",
            paths(&p.connect_unix)
        );
    }
    let l = &p.limits;
    let _ = writeln!(w, "limits:");
    let _ = writeln!(w, "  memory_mb:       {}", l.memory_mb);
    let _ = writeln!(w, "  cpu_seconds:     {}", l.cpu_seconds);
    let _ = writeln!(w, "  open_files:      {}", l.open_files);
    let _ = writeln!(w, "  threads:         {}", l.threads);
    let _ = writeln!(w, "  call_timeout_ms: {}", l.call_timeout_ms);
    let _ = writeln!(
        w,
        "namespaces: {}",
        list(p.namespaces.iter().map(|n| n.to_string()).collect())
    );
    let _ = writeln!(
        w,
        "run as: {}",
        match &p.run_as {
            Some(id) => format!("{} (uid {}, gid {})", id.name, id.uid, id.gid),
            None => "the host's user".to_string(),
        }
    );
    if p.warnings.is_empty() {
        let _ = writeln!(w, "warnings: none");
    } else {
        let _ = writeln!(w, "warnings:");
        for warning in &p.warnings {
            let _ = writeln!(w, "  - {warning}");
        }
    }
    out
}

/// The grant behind a derived rule, as the policy file writes it:
/// `[filesystem] write "/data"`, `[network] connect_tcp 5432, 5433`.
pub fn grant_label(p: &SandboxPolicy, kind: GrantKind) -> String {
    let granted = kind.granted(p);
    if granted.is_empty() {
        kind.section().to_string()
    } else {
        format!("{} {}", kind.section(), granted.join(", "))
    }
}

/// What the policy grants of a kind, as JSON: path strings or port numbers.
fn granted_json(p: &SandboxPolicy, kind: GrantKind) -> Value {
    let paths = |v: &[std::path::PathBuf]| {
        json!(v
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>())
    };
    match kind {
        GrantKind::Write => paths(&p.filesystem.write),
        GrantKind::Read => paths(&p.filesystem.read),
        GrantKind::ConnectTcp => json!(p.network.connect_tcp),
        GrantKind::ConnectUnix => paths(&p.connect_unix),
    }
}

fn condition_json(c: &ArgCondition) -> Value {
    let mut v = json!({ "index": c.index, "op": c.op.name(), "value": c.value });
    if let CmpOp::MaskedEq(mask) = c.op {
        v["mask"] = json!(mask);
    }
    v
}

/// The policy as machine-readable JSON:
///
/// `{"name", "hash", "default_action", "rules": [{"syscall", "nr", "action",
/// "conditions": [{"index", "op", "value", "mask"?}], "granted_by": {"section",
/// "values"} or null}], "floor": [{"syscall",
/// "reason", "only_when"?}], "supervised_signals", "supervised_targets",
/// "supervised_connects", "supervised_locks", "loading_only",
/// "filesystem": {"read", "write"}, "network": {"connect_tcp", "bind_tcp",
/// "connect_unix"},
/// "limits": {...}, "namespaces": [...], "run_as": {"name", "uid", "gid"} or
/// null, "warnings": [...]}`. Actions are written as in policy files
/// (`allow`, `kill`, `log`, `errno:EPERM`).
pub fn explain_json(p: &SandboxPolicy) -> Value {
    json!({
        "name": p.name,
        "hash": policy_hash(p),
        "default_action": p.default_action.to_string(),
        "rules": p.rules.iter().map(|r| json!({
            "syscall": r.syscall,
            "nr": r.nr,
            "action": r.action.to_string(),
            "conditions": r.conditions.iter().map(condition_json).collect::<Vec<_>>(),
            "granted_by": r.origin.map(|kind| json!({
                "section": kind.section(),
                "values": granted_json(p, kind),
            })),
        })).collect::<Vec<_>>(),
        "floor": FLOOR.iter().map(|e| {
            let mut v = json!({ "syscall": e.syscall, "reason": e.reason });
            if let Some((index, mask, value)) = e.only_when {
                v["only_when"] = json!({ "index": index, "op": "masked_eq", "mask": mask, "value": value });
            }
            if let Some((index, value)) = e.except {
                v["except"] = json!({ "index": index, "op": "ne", "value": value });
            }
            v
        }).collect::<Vec<_>>(),
        "supervised_signals": SUPERVISED_SIGNALS,
        "supervised_targets": SUPERVISED_TARGETS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supervised_connects": connect_labels(),
        "supervised_locks": lock_labels(),
        "loading_only": LOADING_SYSCALLS,
        "filesystem": {
            "read": p.filesystem.read.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "write": p.filesystem.write.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        },
        "network": {
            "connect_tcp": p.network.connect_tcp,
            "bind_tcp": p.network.bind_tcp,
            "connect_unix": p.connect_unix.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        },
        "limits": {
            "memory_mb": p.limits.memory_mb,
            "cpu_seconds": p.limits.cpu_seconds,
            "open_files": p.limits.open_files,
            "threads": p.limits.threads,
            "call_timeout_ms": p.limits.call_timeout_ms,
        },
        "namespaces": p.namespaces.iter().map(|n| n.name()).collect::<Vec<_>>(),
        "run_as": p.run_as.as_ref().map(|id| json!({ "name": id.name, "uid": id.uid, "gid": id.gid })),
        "warnings": p.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Action;

    #[test]
    fn text_lists_rules_floor_limits_and_warnings() {
        let mut p = SandboxPolicy::db_client();
        p.network.connect_tcp.push(5432);
        p.warnings.push("something to know".into());
        let t = explain_text(&p);
        for needle in [
            "policy db-client",
            "default action: kill",
            "arg0 == 2",
            "arg2 & 0x643 == 0",
            "execve",
            "the bridge runs library code",
            "clone (when arg0 & 0x10000 == 0x0)",
            "ioctl (when arg1 & 0xffffffff == 0x5412)",
            "prctl (when arg0 & 0xffffffff == 0x16)",
            "fcntl (when arg1 & 0xffffffff == 0x400)",
            "types input into a terminal",
            "prlimit64 (pid arg0)",
            "setpriority (which arg0, who arg1)",
            "socket (arg2 & 0xffffffff == 0x106)",
            "sendto (arg3 & 0x20000000 == 0x20000000)",
            "only on a file within a write grant, else ENOLCK",
            "fcntl (arg1 & 0xffffffff == 0x25)",
            "flock (arg1 & 0x2 == 0x2)",
            "fails it with EAGAIN at 16 threads",
            "tgkill",
            "connect_tcp: 5432",
            "memory_mb:       1024",
            "namespaces: none",
            "run as: the host's user",
            "  - something to know",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
    }

    #[test]
    fn derived_rules_name_the_grant_that_brought_them_in() {
        let p = SandboxPolicy::fs_read()
            .with_grants(&crate::grants::Grants {
                write: vec!["/data".into(), "/srv/db".into()],
                connect_tcp: vec![5432],
                ..Default::default()
            })
            .unwrap();
        let t = explain_text(&p);
        let line = |syscall: &str, tail: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(&format!("{syscall} ")) && l.ends_with(tail))
                .unwrap_or_else(|| panic!("no {syscall} line ending {tail:?} in\n{t}"))
                .to_string()
        };
        let openat = line("openat", "<- [filesystem] write \"/data\", \"/srv/db\"");
        assert!(openat.contains("any arguments"), "{openat}");
        line("fsync", "<- [filesystem] write \"/data\", \"/srv/db\"");
        let socket = line("socket", "<- [network] connect_tcp 5432");
        assert!(socket.contains("arg0 == 2"), "{socket}");
        // fs-read's own openat names no grant.
        assert!(t
            .lines()
            .any(|l| l.contains("openat") && l.contains("0x643") && !l.contains("<-")));
        let j = explain_json(&p);
        let fsync = j["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["syscall"] == "fsync")
            .unwrap();
        assert_eq!(fsync["granted_by"]["section"], "[filesystem] write");
        assert_eq!(fsync["granted_by"]["values"][1], "/srv/db");
        let socket = j["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["syscall"] == "socket")
            .unwrap();
        assert_eq!(socket["granted_by"]["values"], json!([5432]));
        assert_eq!(j["rules"][0]["granted_by"], Value::Null);
    }

    #[test]
    fn json_has_the_documented_shape() {
        let mut p = SandboxPolicy::fs_read();
        p.default_action = Action::Errno(libc::EACCES as u32);
        let v = explain_json(&p);
        assert_eq!(v["name"], "fs-read");
        assert_eq!(v["hash"], policy_hash(&p));
        assert_eq!(v["default_action"], "errno:EACCES");
        let openat = v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["syscall"] == "openat")
            .unwrap();
        assert_eq!(openat["nr"], 257);
        assert_eq!(openat["action"], "allow");
        assert_eq!(openat["conditions"][0]["op"], "masked_eq");
        assert_eq!(openat["conditions"][0]["mask"], 0x643);
        assert!(v["floor"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["syscall"] == "bpf"));
        assert_eq!(v["limits"]["threads"], 16);
        assert_eq!(v["supervised_locks"].as_array().unwrap().len(), 6);
        assert_eq!(v["run_as"], Value::Null);
        assert!(v["namespaces"].as_array().unwrap().is_empty());
    }
}
