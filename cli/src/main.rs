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
mod sql_output;

use commands::{call, describe, policy, session, sql};

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
With --manifest, a request may name a declared function instead: {\"id\": ANY, \"fn\": \"name\", \"args\": [...]}\n\
Response: the same shape as `ffb call --json`, plus the request's \"id\".\n\
Arguments are JSON numbers, strings (cstr, bytes), {\"hex\": \"...\"}, handle tokens or null. \
A malformed line gets an error object and the session goes on."
    )]
    Session(session::SessionArgs),
    /// Show what an extension manifest declares and what bridge mode enforces.
    #[command(
        long_about = "Show an extension manifest (docs/manifests.md) without loading anything: the \
library, its policy, its handle kinds with the function that closes each, and per function the \
signature, each pointer argument's ownership (borrowed or retained), the handles it takes and \
hands out, the effects the manifest declares and the effects bridge mode enforces (every call \
is fenced as the worst case).\n\n\
An invalid manifest is one line on stderr, ffb: FILE:LINE:COL: what is wrong, and exit status 2."
    )]
    Describe(describe::DescribeArgs),
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
    /// Run SQL through a bridged database driver (sqlite, postgres, odbc) and print the rows.
    #[command(
        long_about = "Run one or more SQL statements, separated by ';', through a database client \
library loaded in a sandboxed helper, and print the last statement's rows as they arrive.\n\n\
--driver sqlite (the default) takes a database file as --db, or none for an in-memory \
database; its helper may reach that file and its -journal, -wal and -shm files, nothing else. \
--driver postgres takes a libpq connection string, --driver odbc a DSN or connection string.\n\n\
PARAMs bind to the last statement, in order: null; an integer (decimal or 0x hex); a decimal \
float; hex:00ff or @FILE for a blob; text:... for text that would read as one of those; \
anything else is text.\n\n\
Output: an aligned table (its widths come from the first 1000 rows), --json \
{\"columns\":[...],\"rows\":[[...],...]} (blobs as {\"hex\":...}, non-finite floats as the \
strings \"inf\", \"-inf\", \"NaN\"), or --csv (RFC 4180, a header line, NULL as an empty field, \
blobs as x'..').\n\n\
Exit status: 0 on success (also when stdout is closed early), 1 when the driver reported an \
error (kind foreign, with its message) or the bridge failed, 2 for bad usage or input, 130 \
after Ctrl-C.",
        allow_negative_numbers = true
    )]
    Sql(sql::SqlArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::usage_error(e),
    };
    let code = match cli.command {
        Command::Call(args) => call::run(args),
        Command::Session(args) => session::run(args),
        Command::Describe(args) => describe::run(args),
        Command::Policy(command) => policy::run(command),
        Command::Sql(args) => sql::run(args),
    };
    ffb_loader::shutdown_fork_servers();
    code
}
