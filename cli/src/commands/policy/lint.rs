//! `ffb policy lint`: risky grants in a valid policy, each with its reason.

use std::process::ExitCode;

use ffb_loader::SandboxPolicy;

use ffb_policy::lint::lint;

use crate::output::{print_warnings, stdout_text};

/// One line per finding on stdout (`FILE: warning[RULE]: what and why`),
/// exit 0 whatever it finds.
pub fn run(spec: &str, policy: &SandboxPolicy) -> ExitCode {
    print_warnings(policy);
    let findings = lint(policy);
    let mut text = String::new();
    for w in &findings {
        text.push_str(&format!("{spec}: warning[{}]: {}\n", w.rule, w.message));
    }
    if findings.is_empty() {
        text.push_str(&format!("{spec}: no findings\n"));
    }
    stdout_text(&text, ExitCode::SUCCESS)
}
