//! The one-line progress indicator on stderr, shown only on a terminal.

use std::io::IsTerminal;

/// Shows `step` as what is being measured now.
pub fn step(step: &str) {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2Kffb-bench: {step} ...");
    }
}

/// Erases the progress line.
pub fn done() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}
