//! How `ffb` ends: its exit statuses, and clap's usage errors folded into
//! one line with the usage status.
//!
//! The statuses are part of the interface (scripts test them, and each
//! command's `--help` lists them), so they are named once here.

use std::process::ExitCode;

/// Exit status for a call that failed with one of ffb's error kinds (or,
/// for `policy learn`, a line of the script that failed).
pub const CALL_FAILED: u8 = 1;
/// Exit status for bad usage or bad input: nothing was spawned, or what
/// was asked cannot be done as asked.
pub const USAGE: u8 = 2;

/// clap's errors in one line; help and version print as usual.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        return crate::output::stdout_text(&e.render().to_string(), ExitCode::SUCCESS);
    }
    let message = if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
        if std::env::args_os().nth(1).is_some_and(|a| a == "policy") {
            "a policy command is required: check, explain, lint or learn".to_string()
        } else {
            "a command is required: call, session or policy".to_string()
        }
    } else {
        one_line(&e.render().to_string())
    };
    crate::output::stderr_line(&format!("{message} (see ffb --help)"));
    ExitCode::from(USAGE)
}

/// clap's message without its usage block and tips, folded onto one line.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("tip:") && !l.starts_with("For more information")
        })
        .map(|l| l.trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_drops_usage_and_tips() {
        let rendered = "error: unexpected argument '--x' found\n\n  \
                        tip: to pass '--x' as a value, use '-- --x'\n\n\
                        Usage: ffb call [OPTIONS]\n\nFor more information, try '--help'.\n";
        assert_eq!(one_line(rendered), "unexpected argument '--x' found");
    }
}
