//! What every imported seccomp profile becomes, whatever its format.
//!
//! An imported profile becomes a [`SandboxPolicy`] with no Landlock paths or
//! ports, no namespaces, no identity and default limits: those are ffb's own
//! and have no counterpart in a seccomp profile. It is confined like ffb's own
//! policies: Landlock lets the extension read the system library directories
//! and the library's own, and write nothing, unless a TOML policy that imports
//! the profile grants paths beside it (or, linted, turns Landlock off with
//! `[filesystem] unconfined = true`; see [`toml`](mod@super::toml)).
//!
//! Rules that allow a syscall on ffb's floor do not fail the import: the floor
//! filter denies them regardless. Each gives one line in
//! [`SandboxPolicy::warnings`] and the rule is dropped (a `clone` rule is
//! narrowed to threads instead, so `pthread_create` keeps working).

use super::json::{dotted, JsonIndex};
use crate::diagnostics::PolicyFileError;
use crate::sandbox::{floor_entry_granted_by, threads_only, Action, SandboxPolicy, SyscallRule};

/// The policy an import starts from: no rules, and confined by Landlock to
/// what loading the library reads (no paths or ports granted).
pub(super) fn empty_policy(path: &str, default_action: Action) -> SandboxPolicy {
    let mut p = SandboxPolicy::pure();
    p.name = path.to_string();
    p.rules.clear();
    p.default_action = default_action;
    // A seccomp profile says nothing of paths or ports, which is read as "none":
    // under a profile that allows open and write, a helper that kept the host's
    // uid (root, say) could otherwise write any file it owns.
    p.confine = true;
    p
}

/// Refuses a profile that allows by default: ffb's policies deny by default.
pub(super) fn reject_allow_default(
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

/// Adds imported rules, turning floor grants into warnings.
pub(super) fn push_imported(policy: &mut SandboxPolicy, mut rule: SyscallRule) {
    if rule.action.runs() {
        if let Some(entry) = floor_entry_granted_by(&rule) {
            if entry.only_when.is_some() {
                rule.conditions.push(threads_only());
                push_warning(
                    policy,
                    format!(
                        "syscall {} is on ffb's floor: {}; denied anyway except for threads \
                         (the rule is narrowed to CLONE_THREAD)",
                        rule.syscall, entry.reason
                    ),
                );
                policy.rules.push(rule);
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

/// Adds a warning once, however many rules give it.
pub(super) fn push_warning(policy: &mut SandboxPolicy, warning: String) {
    if !policy.warnings.contains(&warning) {
        policy.warnings.push(warning);
    }
}
