//! `ffb`: call functions of legacy native libraries through a sandboxed helper.
//!
//! One module per subcommand under [`commands`]; what several share has its
//! own module: [`load`] turns the common flags into a bridge builder,
//! [`output`] prints results and errors, [`request`] reads the JSON request
//! of `ffb session` and `ffb policy learn`, [`lines`] reads a session's
//! stdin line by line, [`args`] reads argument values, [`files`] reads the
//! files named on the command line (bounded, regular files only) and
//! [`exit`] names the exit statuses.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod args;
mod commands;
mod exit;
mod files;
mod lines;
mod load;
mod output;
mod request;
mod sql_output;

use commands::{call, describe, policy, py, session, sql};

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
The signature (--sig) is name(type, ...) -> ret, with types only. Argument types:\n  \
i8 i16 i32 i64 u8 u16 u32 u64 isize usize  an integer, range-checked\n  \
f32 f64    a float\n  \
cstr       a NUL-terminated string (const char *); it may not contain a NUL\n  \
bytes      a buffer (const uint8_t *): copied in, and back out after the call\n  \
out[N]     N zeroed bytes the function fills (uint8_t *out), shown after the call;\n             \
it takes NO argument. N is decimal or 0x hex, 1 to 1 GiB\n  \
*T         a pointer to one T (a scalar or handle, e.g. *i32 for int *): give its\n             \
initial value, and its value after the call is shown\n  \
handle     an opaque pointer (void *, FILE *) the library returned: a token such\n             \
as handle:1:0, or null\n\
Return types: void, a scalar, cstr, handle.\n\n\
Give one ARG per parameter, in order; out[N] takes none. Integers are decimal or 0x hex, with \
an optional sign (-5, 0xff, -0x10). Floats are decimal (1.5, 1e-3) or nan, inf, -inf; a number \
too large for its type is refused, not made infinite. cstr and bytes take text, hex:0a1b..., or \
@PATH to read a regular file (at most the 64 MiB arena). *T takes its initial value; handle \
takes a token or null.\n\n\
Negative numbers work without -- (-5, -0x10, -1.5e3, -inf); put -- before the arguments when \
another one starts with a dash.\n\n\
Everything typed (the signature, every argument and its size, --lib, --policy, the output and \
audit paths) is checked before anything is started. Output: one line, NAME = RET then each \
value that came back through a pointer as argN:, or with --json one JSON object. A closed \
stdout ends ffb quietly.\n\n\
Exit status: 0 on success, 1 when the call failed with one of ffb's error kinds (or stdout \
or audit lines could not be written), 2 for bad usage or bad input (malformed signature, unparsable or \
out-of-range argument, wrong argument count, an unreadable or invalid policy, bridge mode off).",
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
Every line gets exactly one response: a malformed line (not JSON, not UTF-8, longer than \
twice the arena) gets an error object, and the session goes on."
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
        long_about = "Work with sandbox policies: a preset (pure, fs-read, db-client, python) or a policy \
file (TOML, a Docker/OCI seccomp profile, or a seccompiler JSON filter, told apart by content). \
See docs/policy.md.\n\n\
An invalid policy is one line on stderr, FILE:LINE:COL: what is wrong (FILE: what is wrong when \
it concerns the whole file: missing, not a regular file, over 4 MiB), and exit status 2. \
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
    /// Call a Python function in a sandboxed interpreter (CPython extension modules welcome).
    #[command(
        long_about = "Call MODULE:FUNCTION in an embedded CPython running in a sandboxed helper, \
and print the result. Only canonical values cross: JSON arguments, with {\"hex\": \"...\"} for \
bytes, {\"tuple\": [...]}, {\"int\": \"digits\"} beyond 64 bits, {\"float\": \"nan\"}; anything \
else comes back as a handle that stays in the helper (use `ffb py session` to call its methods).\n\n\
The helper may read the interpreter's standard library, the allowed modules (--allow-module, \
with what their distributions require) and the --module-path directories, nothing else; the \
python preset grants no network, no exec and no processes. A refused import is an ImportError \
naming the module.\n\n\
Session: JSON lines {\"id\": ANY, \"call\": \"mod:fn\", \"args\": [...], \"kwargs\": {...}}, \
{\"method\": \"name\", \"handle\": N, ...}, {\"getattr\": \"name\", \"handle\": N}, {\"release\": N}.\n\n\
Exit status: 0 on success, 1 when the call failed (python_exception with the helper's type, \
message and traceback, or a crash, violation or timeout), 2 for bad usage or input (an unknown \
module, an unparsable argument, a --python that is not CPython 3.11, bridge mode off).",
        allow_negative_numbers = true
    )]
    Py(py::PyArgs),
}

fn main() -> ExitCode {
    let argv = args::mark_negative_literals(std::env::args_os().collect(), &Cli::command());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return exit::usage_error(e),
    };
    let code = match cli.command {
        Command::Call(args) => call::run(args),
        Command::Session(args) => session::run(args),
        Command::Describe(args) => describe::run(args),
        Command::Policy(command) => policy::run(command),
        Command::Sql(args) => sql::run(args),
        Command::Py(args) => py::run(args),
    };
    ffb_loader::shutdown_fork_servers();
    code
}
