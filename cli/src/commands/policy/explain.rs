//! `ffb policy explain`: the effective policy after presets, merges and the
//! floor.

use std::process::ExitCode;

use clap::Args;
use ffb_loader::SandboxPolicy;
use ffb_policy::explain::{explain_json, explain_text};

use super::PolicyFileArg;

#[derive(Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub file: PolicyFileArg,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The table, or one JSON object.
pub fn run(policy: &SandboxPolicy, json_output: bool) -> ExitCode {
    if json_output {
        println!("{}", explain_json(policy));
    } else {
        print!("{}", explain_text(policy));
    }
    ExitCode::SUCCESS
}
