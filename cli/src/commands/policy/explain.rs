//! `ffb policy explain`: the effective policy after presets, merges and the
//! floor.

use std::process::ExitCode;

use clap::Args;
use ffb_loader::SandboxPolicy;
use ffb_policy::explain::{explain_json, explain_text};

use super::PolicyFileArg;
use crate::output::stdout_text;

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
    let text = if json_output {
        format!("{}\n", explain_json(policy))
    } else {
        explain_text(policy)
    };
    stdout_text(&text, ExitCode::SUCCESS)
}
