//! `ffb`: call functions of legacy native libraries through a sandboxed helper.
//!
//! One module per subcommand under [`commands`]; what several share has its
//! own module: [`load`] turns the common flags into a bridge builder,
//! [`output`] prints results and errors, [`request`] reads the JSON request
//! of `ffb session` and `ffb policy learn`, [`args`] reads argument values
//! and [`exit`] names the exit statuses.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod commands;
mod exit;
mod load;
mod output;
mod request;

use commands::{call, policy, session};

#[derive(Parser)]
#[command(
    name = "ffb",
    version,
    about = "Call legacy native libraries through a sandboxed helper process",
    long_about = "ffb loads an opaque C-ABI .so only inside a helper process locked down with \
seccomp-BPF, no capabilities and rlimits, and calls its functions through shared memory. \
Nothing is loaded unless bridge mode is on (--bridge-mode or FFB_BRIDGE_MODE=1).\n\n\
Signatures: name(type, ...) -> ret. Argument types: i8 i16 i32 i64 u8 u16 u32 u64 isize usize \
f32 f64, cstr, bytes, out[N], *T (T a scalar or handle), handle. Return types: a scalar, void, \
cstr, handle.",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make one call (or --repeat N calls) and print the result.
    #[command(
        long_about = "Make one call and print the result.\n\n\
Give one ARG per parameter, in order; out[N] takes none. Integers are decimal or 0x hex, floats \
decimal. cstr and bytes take text, hex:0a1b..., or @PATH to read a file. *T takes its initial \
value; handle takes a token or null.\n\n\
Put -- before the arguments when one starts with a dash (negative numbers work without it).\n\n\
Exit status: 0 on success, 1 when the call failed with one of ffb's error kinds, 2 for bad usage \
or bad input (malformed signature, unparsable argument, wrong argument count, bridge mode off).",
        allow_negative_numbers = true
    )]
    Call(call::CallArgs),
    /// Serve calls as JSON lines on stdin and stdout, with one long-lived helper.
    #[command(
        long_about = "Serve calls as JSON lines on stdin/stdout. The helper, with its state \
and handles, lives until EOF on stdin.\n\n\
Request:  {\"id\": ANY, \"sig\": \"name(types) -> ret\", \"args\": [...]}\n\
Response: the same shape as `ffb call --json`, plus the request's \"id\".\n\
Arguments are JSON numbers, strings (cstr, bytes), {\"hex\": \"...\"}, handle tokens or null. \
A malformed line gets an error object and the session goes on."
    )]
    Session(session::SessionArgs),
    /// Check, explain, lint or learn sandbox policies.
    #[command(
        subcommand,
        long_about = "Work with sandbox policies: a preset (pure, fs-read, db-client) or a policy \
file (TOML, a Docker/OCI seccomp profile, or a seccompiler JSON filter, told apart by content). \
See docs/policy.md.\n\n\
An invalid policy is one line on stderr, FILE:LINE:COL: what is wrong, and exit status 2. \
Warnings about imported profiles are lines starting with 'ffb: warning:' on stderr."
    )]
    Policy(policy::PolicyCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::usage_error(e),
    };
    let code = match cli.command {
        Command::Call(args) => call::run(args),
        Command::Session(args) => session::run(args),
        Command::Policy(command) => policy::run(command),
    };
    ffb_loader::shutdown_fork_servers();
    code
}
