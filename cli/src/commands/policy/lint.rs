//! `ffb policy lint`: risky grants in a valid policy, each with its reason.

use std::process::ExitCode;

use ffb_loader::SandboxPolicy;

use ffb_policy::lint::lint;

use crate::output::print_warnings;

/// One line per finding on stdout (`FILE: warning[RULE]: what and why`),
/// exit 0 whatever it finds.
pub fn run(spec: &str, policy: &SandboxPolicy) -> ExitCode {
    print_warnings(policy);
    let findings = lint(policy);
    for w in &findings {
        println!("{spec}: warning[{}]: {}", w.rule, w.message);
    }
    if findings.is_empty() {
        println!("{spec}: no findings");
    }
    ExitCode::SUCCESS
}
