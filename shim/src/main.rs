//! `ffb-shim`: the helper side of ffb.
//!
//! The host starts one `ffb-shim --zygote` per process. That fork server is a
//! small, single-threaded, clean process; every helper is a `fork` of it (or
//! a `clone` into a new pid namespace), so the (possibly multithreaded) host
//! never forks itself. A new helper:
//!
//! 1. takes its fds, its process group and its parent-death signal, gives
//!    up any controlling terminal (`TIOCNOTTY`, staying in the host's
//!    session), checks its parent is still the fork server, and resets every
//!    signal to its default;
//! 2. enters the policy's namespaces and the host's baseline (IPC and mount
//!    namespaces, with `/proc` read-only, inside a user namespace on an
//!    unprivileged host; the fork server's shared pid and empty network
//!    namespaces were entered at the fork), sets its
//!    rlimits (pending signals included) and `no_new_privs`, applies
//!    Landlock, then locks the securebits, drops every capability
//!    (switching to `run_as` on the way, or on a root host to a uid and gid
//!    of its own, keeping only the DAC capabilities its grants need), and
//!    turns non-dumpable when the host asks;
//! 3. installs the seccomp filter, hands its listener to the host, and
//!    closes its control socket;
//! 4. only then loads the library (its constructors already run sandboxed),
//!    resolves every declared symbol, reports how that went in the arena,
//!    and serves calls through it.
//!
//! This is the code that runs next to the hostile library: keep it small.
//!
//! * [`zygote`]: the fork server.
//! * [`shared_namespaces`]: the pid and network namespaces the fork server
//!   makes once for all its helpers.
//! * [`helper`]: one helper's life, steps 1 to 4 in order.
//! * [`lockdown`]: each lockdown step.
//! * [`arena`]: the helper's mapping of the shared arena, and the rule for
//!   touching it.
//! * [`ffi`]: declared functions and the libffi call.
//! * [`fetch`]: fetch programs, a page of rows per request.
//! * [`serve`]: the serve loop.

mod arena;
mod fetch;
mod ffi;
mod helper;
mod lockdown;
mod serve;
mod shared_namespaces;
mod zygote;

use std::process::ExitCode;

use ffb_contract::exit;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--zygote" => zygote::run(),
        [flag] if flag == "--version" => {
            println!("ffb-shim {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "ffb-shim: this is ffb's helper and is started by ffb itself (usage: ffb-shim --zygote, with the fork-server socket on fd 3)"
            );
            ExitCode::from(exit::USAGE)
        }
    }
}

/// Ends the process at once with one of the [`exit`] codes: no
/// destructors, no atexit handlers, no stdio flush (a forked helper shares
/// that state with the fork server, and later with the library).
pub(crate) fn exit_now(code: u8) -> ! {
    // SAFETY: _exit ends the process without running any code of its own,
    // so no state can be left half-used.
    unsafe { libc::_exit(code.into()) }
}
