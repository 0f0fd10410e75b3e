//! A policy's fingerprint for audit logs: two helpers with the same hash
//! enforce the same thing, whatever file or preset name they were loaded by.

use serde::Serialize;

use crate::sandbox::{
    Action, FilesystemRules, Identity, Limits, Namespace, NetworkRules, SandboxPolicy, SyscallRule,
};

/// A stable hash of what a policy enforces, for audit logs: 16 hex digits of
/// 64-bit FNV-1a over the policy's canonical JSON (its serde serialization,
/// fields in declaration order), leaving out `name` and `warnings`, which do
/// not change what is enforced. The same policy loaded from two paths has the
/// same hash. Whether Landlock confines is part of it only when it does not
/// (an import with `unconfined = true`), so confined policies keep their hashes.
pub fn policy_hash(p: &SandboxPolicy) -> String {
    #[derive(Serialize)]
    struct Enforced<'a> {
        default_action: &'a Action,
        rules: &'a [SyscallRule],
        limits: &'a Limits,
        filesystem: &'a FilesystemRules,
        network: &'a NetworkRules,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        connect_unix: &'a [std::path::PathBuf],
        namespaces: &'a [Namespace],
        run_as: &'a Option<Identity>,
        #[serde(skip_serializing_if = "is_true")]
        confine: bool,
    }
    fn is_true(b: &bool) -> bool {
        *b
    }
    let canonical = serde_json::to_string(&Enforced {
        default_action: &p.default_action,
        rules: &p.rules,
        limits: &p.limits,
        filesystem: &p.filesystem,
        network: &p.network,
        connect_unix: &p.connect_unix,
        namespaces: &p.namespaces,
        run_as: &p.run_as,
        confine: p.confine,
    })
    .expect("a policy always serializes");
    format!("{:016x}", fnv1a64(canonical.as_bytes()))
}

/// 64-bit FNV-1a: tiny, stable across Rust versions and platforms (unlike
/// `std`'s hashers), and enough to tell policies apart in a log.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_follows_the_rules() {
        let pure = SandboxPolicy::pure();
        assert_eq!(policy_hash(&pure), "e0c1bca1b9bb6583");
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
        let mut unconfined = pure.clone();
        unconfined.confine = false;
        assert_ne!(policy_hash(&unconfined), policy_hash(&pure));
    }
}
