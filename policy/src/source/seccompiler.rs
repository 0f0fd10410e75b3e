//! rust-vmm seccompiler JSON filters (seccompiler 0.5's format), accepted as
//! they are.

use serde_json::Value;

use super::condition::{self, ArgFormat};
use super::imported::{empty_policy, push_imported, push_warning, reject_allow_default};
use super::json::{self, dotted, join, opt, JsonIndex};
use crate::diagnostics::{unknown_syscall_message, PolicyFileError};
use crate::sandbox::{Action, ArgCondition, CmpOp, SandboxPolicy, SyscallRule};
use crate::syscalls::number_of;

/// The keys that make a JSON object a seccompiler filter (with its aliases).
pub(super) const FILTER_KEYS: &[&str] = &[
    "mismatch_action",
    "default_action",
    "match_action",
    "filter_action",
    "filter",
];

/// How a seccompiler filter writes an argument condition.
const SECCOMPILER_ARG: ArgFormat = ArgFormat {
    keys: &["index", "type", "op", "val", "comment"],
    value: "val",
};

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
///
/// ```
/// use ffb_policy::sandbox::Action;
/// use ffb_policy::source::import_seccompiler;
/// let filter = r#"{"main": {"mismatch_action": "kill_process", "match_action": "allow",
///     "filter": [{"syscall": "read"}]}}"#;
/// let p = import_seccompiler(filter, "main.json").unwrap();
/// assert_eq!((p.default_action, p.rules.len()), (Action::Kill, 1));
/// ```
pub fn import_seccompiler(text: &str, path: &str) -> Result<SandboxPolicy, PolicyFileError> {
    import_value(&json::parse(text, path)?, text, path)
}

/// [`import_seccompiler`] for a filter file already parsed from `text`.
pub(super) fn import_value(
    root: &Value,
    text: &str,
    path: &str,
) -> Result<SandboxPolicy, PolicyFileError> {
    let ix = JsonIndex::new(text, path);
    let root = ix.object("", root)?;
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
    let filter = ix.object(fp, filter)?;
    ix.check_keys(fp, filter, FILTER_KEYS)?;
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
    let rules = ix.array(
        &rules_path,
        filter
            .get("filter")
            .ok_or_else(|| ix.err(fp, format!("filter '{fp}' has no filter (rule list)")))?,
    )?;

    let mut policy = empty_policy(path, default_action);
    for (i, rule) in rules.iter().enumerate() {
        let rp = join(&rules_path, i);
        let rule = ix.object(&rp, rule)?;
        ix.check_keys(&rp, rule, &["syscall", "args", "comment"])?;
        if let Some(c) = opt(rule, "comment") {
            ix.str(&join(&rp, "comment"), c)?;
        }
        let sp = join(&rp, "syscall");
        let name = ix.str(&sp, ix.required(&rp, rule, "syscall")?)?;
        if number_of(name).is_none() {
            return Err(ix.err(&sp, unknown_syscall_message(name)));
        }
        let mut conditions = Vec::new();
        for (cp, arg) in condition::args_of(&ix, &rp, rule)? {
            let (condition, warning) = seccompiler_condition(&ix, &cp, arg)?;
            if let Some(w) = warning {
                push_warning(&mut policy, format!("{}: {w}", dotted(&cp)));
            }
            if let Some(why) = condition.impossible() {
                return Err(ix.err(&cp, format!("condition can never hold: {why}")));
            }
            conditions.push(condition);
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
                "errno" => Ok(Action::Errno(ix.errno(&join(path, "errno"), n)?)),
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

/// A condition, and a warning when ffb compares more bits than the filter
/// asked for.
fn seccompiler_condition(
    ix: &JsonIndex,
    path: &str,
    v: &Value,
) -> Result<(ArgCondition, Option<String>), PolicyFileError> {
    let arg = condition::parse(ix, path, v, &SECCOMPILER_ARG)?;
    let (index, value) = (arg.index, arg.value);
    let type_path = join(path, "type");
    let dword = match ix.str(&type_path, ix.required(path, arg.object, "type")?)? {
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
    let not_an_operator = |shown: String| {
        ix.err(
            &op_path,
            format!(
                "'{}' = {shown} is not a seccompiler operator",
                dotted(&op_path)
            ),
        )
    };
    let op = match ix.required(path, arg.object, "op")? {
        // seccompiler writes masked_eq as an object, never as a name.
        Value::String(s) => match s.parse::<CmpOp>() {
            Ok(CmpOp::MaskedEq(_)) | Err(_) => return Err(not_an_operator(format!("\"{s}\""))),
            Ok(op) => op,
        },
        Value::Object(o) if o.len() == 1 && o.contains_key("masked_eq") => {
            CmpOp::MaskedEq(ix.u64(&join(&op_path, "masked_eq"), &o["masked_eq"])?)
        }
        other => return Err(not_an_operator(other.to_string())),
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
                "the dword comparison '{op}' is made on all 64 bits of argument {index} \
                 (ffb compares whole registers)"
            )),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SECCOMP_RET_USER_NOTIF;
    use crate::source::load_policy;
    use crate::test_support::{args as a, fixture, nr, run};

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn seccompiler_filter_behaves_as_written() {
        let p = load_policy(&fixture("seccompiler.json")).unwrap();
        assert_eq!(p.default_action, Action::Errno(1));
        let f = p.compile().unwrap();
        assert_eq!(run(&f, nr("read"), &a(0, 0, 0)), ALLOW);
        assert_eq!(
            run(&f, nr("openat"), &a(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF,
            "loading route"
        );
        assert_eq!(
            run(&f, nr("getcwd"), &a(0, 0, 0)),
            SECCOMP_RET_USER_NOTIF,
            "loading route"
        );
        assert_eq!(run(&f, nr("mkdir"), &a(0, 0, 0)), EPERM);
        assert_eq!(run(&f, nr("socket"), &a(1, 1, 0)), ALLOW);
        assert_eq!(
            run(&f, nr("socket"), &a(1 | 7 << 32, 1, 0)),
            ALLOW,
            "dword: low half only"
        );
        assert_eq!(run(&f, nr("socket"), &a(2, 1, 0)), EPERM);
        assert_eq!(run(&f, nr("mmap"), &a(0, 4096, 3)), ALLOW);
        assert_eq!(
            run(&f, nr("mmap"), &a(0, 4096, 5)),
            SECCOMP_RET_USER_NOTIF,
            "loading route"
        );
        assert_eq!(run(&f, nr("lseek"), &a(3, 0, 2)), ALLOW);
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
        // A thread reaches the host too, which counts it against the limit.
        assert_eq!(
            run(&f, nr("clone"), &a(libc::CLONE_THREAD as u64, 0, 0)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(run(&f, nr("clone"), &a(0, 0, 0)), SECCOMP_RET_USER_NOTIF);
    }
}
