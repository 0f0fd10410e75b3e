//! Where policies come from: a preset name, or a policy file in one of three
//! formats, told apart by content so that ops can hand ffb the profile they
//! already have.
//!
//! | format | detected by | parser |
//! |---|---|---|
//! | a TOML policy (ffb's own, see [`toml`](mod@toml)) | anything that is not a JSON object | [`parse_toml_policy`] |
//! | a Docker/OCI seccomp profile | a JSON object with `defaultAction` | [`import_docker`] |
//! | a seccompiler filter | a JSON object whose values all hold `mismatch_action`/`default_action`, `match_action`/`filter_action` or `filter` | [`import_seccompiler`] |
//!
//! A JSON file is parsed once: detection looks at the parsed value, which the
//! importer then reads.
//!
//! An imported profile gives the syscall rules only. Like ffb's own policies,
//! it is confined by Landlock: the extension may read the system library
//! directories and the library's own, and write nothing. A TOML policy can
//! import a profile (`[seccomp] import = "profile.json"`) and grant paths and
//! ports beside it; see [`toml`](mod@toml).
//!
//! ```
//! use ffb_policy::source::{load_policy, parse_policy_text};
//! assert_eq!(load_policy("fs-read").unwrap().name, "fs-read");
//! let p = parse_policy_text("extends = \"pure\"\n", "p.toml", (6, 1)).unwrap();
//! assert_eq!(p.name, "p.toml");
//! ```

mod condition;
mod docker;
mod import;
mod imported;
mod json;
mod seccompiler;
pub mod toml;

use serde_json::Value;

use crate::diagnostics::PolicyFileError;
use crate::kernel::running_kernel;
use crate::sandbox::{SandboxPolicy, PRESETS};

pub use docker::import_docker;
pub use seccompiler::import_seccompiler;
pub use toml::parse_toml_policy;

/// Loads a policy: a preset name, or a policy file (TOML, a Docker/OCI seccomp
/// profile, or a seccompiler JSON filter; see [`parse_policy_text`]).
///
/// The policy's `name` is the preset name or the path as given.
pub fn load_policy(spec: &str) -> Result<SandboxPolicy, PolicyFileError> {
    if PRESETS.contains(&spec) {
        return SandboxPolicy::preset(spec)
            .map_err(|e| PolicyFileError::whole(spec, e.to_string()));
    }
    let text =
        crate::files::read_regular_text(std::path::Path::new(spec), crate::files::MAX_POLICY)
            .map_err(|e| {
                let missing = std::fs::symlink_metadata(spec)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
                let hint = if missing && !spec.contains(['/', '.']) {
                    format!(" (and it is not a preset: {})", PRESETS.join(", "))
                } else {
                    String::new()
                };
                PolicyFileError::whole(spec, format!("cannot read the policy file: {e}{hint}"))
            })?;
    parse_policy_text(&text, spec, running_kernel())
}

/// Parses a policy file's text, detecting its format by content:
///
/// * a JSON object with `defaultAction`: a Docker/OCI seccomp profile
///   ([`import_docker`], evaluated for `kernel`, `(major, minor)`);
/// * a JSON object whose values hold `mismatch_action`/`default_action`,
///   `match_action`/`filter_action` and `filter`: a seccompiler filter
///   ([`import_seccompiler`]);
/// * anything else: a TOML policy ([`parse_toml_policy`]).
pub fn parse_policy_text(
    text: &str,
    path: &str,
    kernel: (u32, u32),
) -> Result<SandboxPolicy, PolicyFileError> {
    if !text.trim_start().starts_with('{') {
        return toml::parse_toml_policy_for(text, path, kernel);
    }
    parse_profile(text, path, kernel).map(|(policy, _)| policy)
}

/// Parses a JSON seccomp profile (Docker/OCI or seccompiler), returning the
/// policy and what kind of profile it was, for messages.
fn parse_profile(
    text: &str,
    path: &str,
    kernel: (u32, u32),
) -> Result<(SandboxPolicy, &'static str), PolicyFileError> {
    let root = json::parse(text, path)?;
    if is_docker(&root) {
        return docker::import_value(&root, text, path, kernel)
            .map(|p| (p, "a Docker/OCI seccomp profile"));
    }
    if is_seccompiler(&root) {
        return seccompiler::import_value(&root, text, path).map(|p| (p, "a seccompiler filter"));
    }
    Err(PolicyFileError::at(
        path,
        text,
        text.len() - text.trim_start().len(),
        "a JSON policy must be a Docker/OCI seccomp profile (with \"defaultAction\") \
         or a seccompiler filter (an object of filters with \"mismatch_action\", \
         \"match_action\" and \"filter\")",
    ))
}

fn is_docker(root: &Value) -> bool {
    root.as_object()
        .is_some_and(|o| o.contains_key("defaultAction"))
}

fn is_seccompiler(root: &Value) -> bool {
    root.as_object().is_some_and(|filters| {
        !filters.is_empty()
            && filters.values().all(|v| {
                v.as_object()
                    .is_some_and(|f| seccompiler::FILTER_KEYS.iter().any(|k| f.contains_key(*k)))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Action, SECCOMP_RET_USER_NOTIF};
    use crate::test_support::{fixture, nr, run};

    #[test]
    fn fixtures_and_small_files_parse() {
        let p = load_policy(&fixture("full.toml")).unwrap();
        assert!(p.name.ends_with("full.toml"));
        let f = p.compile().unwrap();
        // fadvise64(fd, off, len, advice & 7 == 4) fails with EACCES; other advice is denied.
        assert_eq!(
            run(&f, nr("fadvise64"), &[3, 0, 0, 4, 0, 0]),
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
        );
        assert_eq!(
            run(&f, nr("fadvise64"), &[3, 0, 0, 1, 0, 0]),
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
}
