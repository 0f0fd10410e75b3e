//! `ffb policy check`: whether a policy loads and compiles.

use std::process::ExitCode;

use ffb_loader::SandboxPolicy;

use crate::output::{print_warnings, stdout_line};

/// Warnings on stderr, one summary line on stdout.
pub fn run(spec: &str, policy: &SandboxPolicy) -> ExitCode {
    print_warnings(policy);
    let rules = policy.rules.len();
    let line = format!(
        "{spec}: ok ({rules} rule{}, default {}, hash {}{})",
        if rules == 1 { "" } else { "s" },
        policy.default_action,
        ffb_policy::hash::policy_hash(policy),
        match policy.warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        }
    );
    stdout_line(&line, ExitCode::SUCCESS)
}
