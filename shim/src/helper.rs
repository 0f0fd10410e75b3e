//! A helper's life after the fork: lock down, hand over the listener, load,
//! resolve, then serve.

use ffb_contract::exit;
use ffb_contract::fds;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use ffb_contract::sys::{send_packet, write_all};
use ffb_contract::wire::{HelperMessage, LoadFailureKind, SpawnRequest, Status, LOADED_SEQ};

use crate::arena::Arena;
use crate::exit_now;
use crate::lockdown::{self, LockdownError};
use crate::serve::Server;

/// Runs a freshly forked helper. Never returns.
pub fn helper_main(request: SpawnRequest, received: [i32; 4], parent: i32) -> ! {
    if lockdown::take_process(parent, received).is_err() {
        // fd 3 may still be the fork server's socket to the host: say nothing
        // there; the host learns of the failure from the exit status.
        exit_now(exit::TAKE_PROCESS_FAILED);
    }
    for (key, value) in &request.env {
        std::env::set_var(key, value);
    }
    let arena = match Arena::map(request.arena_len as usize) {
        Ok(a) => a,
        Err(e) => fail_and_exit(
            LoadFailureKind::LoadFailed,
            &format!("mapping the arena: {e}"),
        ),
    };
    // Landlock goes on while the helper is still its original user (so it can
    // open every listed path) and still single-threaded (so every thread the
    // library starts inherits it); the user switch and capability drop follow.
    let who = match (&request.run_as, &request.own_identity) {
        (Some(id), _) => Ok(lockdown::Become::RunAs(id)),
        (None, Some(own)) => lockdown::host_pid().map(|pid| lockdown::Become::Own(own, pid)),
        (None, None) => Ok(lockdown::Become::Same),
    };
    let locked = who.and_then(|who| {
        lockdown::enter_namespaces(&request.namespaces, &request.baseline_namespaces).map(|_| who)
    });
    let locked = locked
        .and_then(|who| lockdown::set_limits(&request.limits).map(|_| who))
        .and_then(|who| lockdown::set_no_new_privs().map(|_| who))
        .and_then(|who| match &request.landlock {
            Some(spec) => lockdown::apply_landlock(spec).map(|_| who),
            None => Ok(who),
        })
        .and_then(|who| lockdown::drop_privileges(who, request.limits.threads, parent))
        .and_then(|_| match request.non_dumpable {
            true => lockdown::set_non_dumpable(),
            false => Ok(()),
        })
        .and_then(|_| lockdown::install_filter(&request.filter));
    let listener = match locked {
        Ok(fd) => fd,
        Err(LockdownError(why)) => fail_and_exit(
            LoadFailureKind::LoadFailed,
            &format!("lockdown failed: {why}"),
        ),
    };
    // The host takes the listener from this process with pidfd_getfd and
    // answers with one byte; only then is the helper's own copy closed, before
    // any of the library's code can run.
    send(&HelperMessage::Listener {
        listener_fd: listener,
    });
    let mut ack = [0u8; 1];
    // SAFETY: reads at most one byte into the one-byte local buffer.
    if unsafe { libc::read(fds::CONTROL, ack.as_mut_ptr().cast(), 1) } != 1 {
        exit_now(exit::LISTENER_NOT_ACKNOWLEDGED);
    }
    // SAFETY: `listener` is this process's own fd from seccomp(); the host
    // holds its copy now, and nothing here uses this one again.
    unsafe { libc::close(listener) };
    // The control socket closes before any of the library's code runs, so
    // nothing on it can be the library's. From here the helper reports in
    // the arena, which the host treats as the helper's claim.
    // SAFETY: fd 3 is the helper's own control socket; nothing uses it again.
    unsafe { libc::close(fds::CONTROL) };

    let library = match load(&request.library) {
        Ok(lib) => lib,
        Err(message) => loaded_and_exit(&arena, Status::BadRequest, 0, &message),
    };
    let mut server = Server::new(arena, library, request.spin_us);
    for (index, text) in request.functions.iter().enumerate() {
        if let Err((status, message)) = server.declare(text) {
            let status = match status {
                Status::SymbolNotFound => Status::SymbolNotFound,
                _ => Status::BadSignature,
            };
            loaded_and_exit(&arena, status, index as u64, &message);
        }
    }
    report_loaded(&arena, Status::Ok, 0, "");
    server.serve()
}

/// Reports how loading ended in the arena ([`LOADED_SEQ`]) and wakes the
/// host, which waits for it in `poll`.
fn report_loaded(arena: &Arena, status: Status, index: u64, message: &str) {
    let ctl = arena.control();
    let len = arena.write_message(message);
    ctl.helper.message_len.store(len, Relaxed);
    ctl.helper.ret.store(index, Relaxed);
    ctl.helper.status.store(status as u32, Relaxed);
    ctl.helper.resp_seq.store(LOADED_SEQ, SeqCst);
    let _ = write_all(fds::WAKE, &1u64.to_ne_bytes());
}

fn loaded_and_exit(arena: &Arena, status: Status, index: u64, message: &str) -> ! {
    report_loaded(arena, status, index, message);
    exit_now(exit::FAILED_AND_REPORTED)
}

fn send(message: &HelperMessage) {
    let _ = send_packet(fds::CONTROL, &message.encode());
}

fn fail_and_exit(kind: LoadFailureKind, message: &str) -> ! {
    send(&HelperMessage::Failed {
        kind,
        message: message.to_string(),
    });
    exit_now(exit::FAILED_AND_REPORTED)
}

fn load(path: &str) -> Result<libloading::Library, String> {
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
    // SAFETY: loading runs the library's initializers, which may do
    // anything; that is why it happens only now, under the filter, Landlock
    // and the rlimits, in a process that is expendable.
    unsafe { libloading::os::unix::Library::open(Some(path), flags) }
        .map(libloading::Library::from)
        .map_err(|e| e.to_string())
}
