//! `ffb policy ...`: check, explain, lint and learn sandbox policies.
//!
//! A policy is a preset name or a file (TOML, Docker/OCI or seccompiler
//! JSON). An invalid one is reported as `FILE:LINE:COL: what is wrong` with
//! exit status 2, by every policy command alike.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use ffb_loader::SandboxPolicy;

use crate::load::load_checked;
use crate::output::report_policy;

mod check;
mod explain;
mod learn;
mod lint;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check a policy: exit 0 if it is valid, else 2 with FILE:LINE:COL: what is wrong.
    Check(PolicyFileArg),
    /// Print the effective policy after presets, merges and the floor.
    Explain(explain::ExplainArgs),
    /// Warn about risky grants in a valid policy, with the reason for each (exit 0).
    Lint(PolicyFileArg),
    /// Run a script of calls in learn mode and print the smallest policy (TOML) that lets it pass.
    #[command(
        long_about = "Run a script of calls on the library in learn mode and print, on \
stdout, the smallest TOML policy that lets the same script pass: `extends` the preset, the \
syscalls the preset does not allow, the paths opened and the TCP ports connected or bound.\n\n\
The script holds one request per line, as for `ffb session`: {\"id\": ANY, \"sig\": \"name(types) -> \
ret\", \"args\": [...]}. Each line's result is reported on stderr. Learn mode lets every syscall \
through except the floor and signals to other processes, and applies no Landlock rules, so run \
only a trusted script on a library you trust for the run, and review the policy before use.\n\n\
Exit status: 0 with the policy on stdout; 1 when a line fails (a crash, a timeout, a floor \
syscall, ...), naming the line; 2 for bad usage or bad input (nothing is spawned)."
    )]
    Learn(learn::LearnArgs),
}

#[derive(Args)]
pub struct PolicyFileArg {
    /// A policy file (TOML, Docker/OCI or seccompiler JSON) or a preset name.
    #[arg(value_name = "FILE_OR_PRESET")]
    policy: String,
}

pub fn run(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Check(args) => with_policy(&args.policy, check::run),
        PolicyCommand::Explain(args) => with_policy(&args.file.policy, |_, policy| {
            explain::run(policy, args.json)
        }),
        PolicyCommand::Lint(args) => with_policy(&args.policy, lint::run),
        PolicyCommand::Learn(args) => learn::run(args),
    }
}

/// Runs `command` on the policy `spec` names, once it has loaded and
/// compiled; else reports why not, with exit status 2.
fn with_policy(spec: &str, command: impl FnOnce(&str, &SandboxPolicy) -> ExitCode) -> ExitCode {
    match load_checked(spec) {
        Ok(policy) => command(spec, &policy),
        Err(e) => report_policy(&e, false),
    }
}
