//! A helper's life after the fork: lock down, hand over the listener, load,
//! resolve, then serve.

use ffb_contract::artefacts::Namespace;
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
    let listener = match lock_down(&request, parent) {
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

    // Preloads stay loaded for the helper's life: their symbols serve the
    // library and everything it opens later.
    for preload in &request.preload {
        match open(preload, libloading::os::unix::RTLD_GLOBAL) {
            Ok(lib) => std::mem::forget(lib),
            Err(message) => loaded_and_exit(&arena, Status::BadRequest, 0, &message),
        }
    }
    let library = match open(&request.library, libloading::os::unix::RTLD_LOCAL) {
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

/// `dlopen(path, RTLD_NOW | scope)`.
fn open(path: &str, scope: libc::c_int) -> Result<libloading::Library, String> {
    let flags = libloading::os::unix::RTLD_NOW | scope;
    // SAFETY: loading runs the library's initializers, which may do
    // anything; that is why it happens only now, under the filter, Landlock
    // and the rlimits, in a process that is expendable.
    unsafe { libloading::os::unix::Library::open(Some(path), flags) }
        .map(libloading::Library::from)
        .map_err(|e| e.to_string())
}

/// `dladdr1`'s request for the symbol's own ELF entry (glibc's
/// `RTLD_DL_SYMENT`).
const RTLD_DL_SYMENT: libc::c_int = 1;

/// ELF symbol types of data: an object, a common block, thread-local data.
const DATA_SYMBOL_TYPES: [(u8, &str); 3] = [(1, "STT_OBJECT"), (5, "STT_COMMON"), (6, "STT_TLS")];

/// Refuses a resolved symbol that is not code: calling it would jump into
/// bytes that are not instructions. Two checks, neither a system call:
/// the dynamic symbol table's type for the symbol at exactly this address
/// (data types are refused, by name), then whether the address lies in an
/// executable segment of a loaded object (a thread-local variable, whose
/// address `dlsym` gives in the thread's TLS block, lies in none). A
/// function, and an indirect function (`STT_GNU_IFUNC`, which `dlsym` has
/// resolved to its implementation), passes both.
pub fn refuse_data_symbol(address: *mut libc::c_void, name: &str) -> Result<(), String> {
    if let Some(ty) = data_symbol_type(address) {
        return Err(format!(
            "symbol '{name}' is data ({ty}), not a function: it cannot be called"
        ));
    }
    if !in_executable_segment(address as usize) {
        return Err(format!(
            "symbol '{name}' is not code: its address is in no executable segment of a loaded \
             object (thread-local or other data); it cannot be called"
        ));
    }
    Ok(())
}

/// The data type of the dynamic symbol at exactly `address`, if it is one.
fn data_symbol_type(address: *mut libc::c_void) -> Option<&'static str> {
    // SAFETY: Dl_info is plain data (pointers and integers): all zeroes is a
    // valid value, which dladdr1 overwrites.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let mut entry: *mut libc::c_void = std::ptr::null_mut();
    // SAFETY: dladdr1 only reads the dynamic linker's own tables for
    // `address` and writes `info` and `entry`, both live locals.
    let found = unsafe { libc::dladdr1(address, &mut info, &mut entry, RTLD_DL_SYMENT) };
    if found == 0 || entry.is_null() || info.dli_saddr != address {
        return None;
    }
    // SAFETY: with RTLD_DL_SYMENT, a non-null `entry` points at the
    // symbol's Elf64_Sym in the loaded object's dynamic symbol table, which
    // stays mapped while the library is loaded.
    let st_info = unsafe { (*entry.cast::<libc::Elf64_Sym>()).st_info };
    DATA_SYMBOL_TYPES
        .iter()
        .find(|(ty, _)| *ty == st_info & 0xf)
        .map(|(_, name)| *name)
}

/// Whether `address` lies in a `PT_LOAD` segment with `PF_X` of any loaded
/// object.
fn in_executable_segment(address: usize) -> bool {
    struct Search {
        address: usize,
        found: bool,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes the `Search` given below as `data`,
        // live and not otherwise borrowed during the walk.
        let search = unsafe { &mut *data.cast::<Search>() };
        // SAFETY: dl_iterate_phdr passes a valid `info` for the duration of
        // this callback.
        let info = unsafe { &*info };
        // SAFETY: as above: `dlpi_phnum` program headers at `dlpi_phdr`.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        let base = info.dlpi_addr as usize;
        search.found = headers.iter().any(|h| {
            let start = base.wrapping_add(h.p_vaddr as usize);
            h.p_type == libc::PT_LOAD
                && h.p_flags & libc::PF_X != 0
                && search.address >= start
                && search.address - start < h.p_memsz as usize
        });
        // Non-zero stops the walk.
        libc::c_int::from(search.found)
    }
    let mut search = Search {
        address,
        found: false,
    };
    // SAFETY: `visit` matches the callback type and reads `data` only as
    // the live `Search`; dl_iterate_phdr makes no system call beyond the
    // loader's lock.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast()) };
    search.found
}

/// Every step of the lockdown, in order; the listener of the installed
/// filter, or why a step failed.
///
/// The Landlock ruleset is built first, while the helper is still its
/// original user (so it can open every listed path), and enforced after
/// the namespaces (whose mounts it would forbid), still single-threaded (so
/// every thread the library starts inherits it). A root host's helper that
/// enters a user namespace becomes its own uid before it makes the
/// namespace; any other user switch and the capability drop come last.
fn lock_down(request: &SpawnRequest, parent: i32) -> Result<i32, LockdownError> {
    let landlock = lockdown::prepare_landlock(request.landlock.as_ref())?;
    let user_namespace = request.namespaces.contains(&Namespace::User)
        || request.baseline_namespaces.contains(&Namespace::User);
    let who = match (&request.run_as, &request.own_identity) {
        (Some(id), _) => lockdown::Become::RunAs(id),
        (None, Some(own)) if user_namespace => {
            lockdown::switch_before_user_namespace(own, lockdown::host_pid()?)?
        }
        (None, Some(own)) => lockdown::Become::Own(own, lockdown::host_pid()?),
        (None, None) => lockdown::Become::Same,
    };
    lockdown::enter_namespaces(&request.namespaces, &request.baseline_namespaces)?;
    lockdown::set_limits(&request.limits)?;
    lockdown::set_no_new_privs()?;
    lockdown::enforce_landlock(landlock)?;
    lockdown::drop_privileges(who, request.limits.threads, parent)?;
    if request.non_dumpable {
        lockdown::set_non_dumpable()?;
    }
    lockdown::install_filter(&request.filter)
}
