//! The host's side of the fork server (`ffb-shim --zygote`).
//!
//! One fork server per process and shim path, started with `exec` from
//! whichever thread first needs a helper. The host never forks itself: a
//! multithreaded host only ever starts the fork server through
//! `std::process::Command`, whose child does nothing but `dup2` and `exec`.
//!
//! One process-wide lock, over the table of every fork server, serializes
//! all spawns, whichever fork server they go to: each request and its
//! reply are one exchange on a socket, and starting a fork server happens
//! under the same lock. It covers only the fork itself (and a fork
//! server's start), not the helper's loading, which each caller waits for
//! on its own.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use ffb_contract::sys::{recv_with_fds, send_with_fds, seqpacket_pair};
use ffb_contract::wire::{SpawnReply, SpawnRequest, SPAWN_FDS, WIRE_VERSION};

use crate::error::{Error, ErrorKind, Result};

struct ForkServer {
    child: Child,
    socket: OwnedFd,
}

impl Drop for ForkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every fork server of this process, by shim path, behind the one lock
/// that serializes spawns.
type Servers = Mutex<HashMap<PathBuf, ForkServer>>;

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A newly forked helper: its pid and a pidfd for it.
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Asks the fork server for `shim` to fork a helper with these fds, starting
/// (or restarting) the fork server when needed.
pub(crate) fn spawn(
    shim: &Path,
    request: &SpawnRequest,
    fds: [RawFd; SPAWN_FDS],
) -> Result<Spawned> {
    let payload = request
        .encode()
        .map_err(|e| Error::new(ErrorKind::LoadFailed, format!("encoding the request: {e}")))?;
    let mut servers = servers().lock().unwrap_or_else(|p| p.into_inner());
    for attempt in 0..2 {
        if !servers.contains_key(shim) {
            servers.insert(shim.to_path_buf(), start(shim)?);
        }
        let server = servers.get_mut(shim).expect("just inserted");
        match exchange(server.socket.as_raw_fd(), &payload, &fds) {
            Ok(spawned) => return Ok(spawned),
            Err(Exchange::ServerGone(e)) => {
                servers.remove(shim);
                if attempt == 1 {
                    let message = format!("the fork server died: {e}");
                    return Err(Error::with_source(ErrorKind::LoadFailed, message, e));
                }
            }
            Err(Exchange::Refused(libc::EPROTO)) => {
                return Err(Error::new(ErrorKind::LoadFailed, format!(
                    "'{}' is from another ffb build (it does not speak wire version {}): rebuild ffb and ffb-shim together",
                    shim.display(),
                    WIRE_VERSION
                )))
            }
            Err(Exchange::Refused(errno)) => {
                let e = io::Error::from_raw_os_error(errno);
                let message = format!("the fork server could not fork: {e}");
                return Err(Error::with_source(ErrorKind::LoadFailed, message, e));
            }
        }
    }
    unreachable!("the loop returns on its second attempt")
}

fn start(shim: &Path) -> Result<ForkServer> {
    let (ours, theirs) = seqpacket_pair()
        .map_err(|e| Error::with_source(ErrorKind::LoadFailed, format!("socketpair: {e}"), e))?;
    let theirs_raw = theirs.as_raw_fd();
    let mut command = Command::new(shim);
    command.arg("--zygote").env_clear();
    // The dynamic loader reads LD_LIBRARY_PATH once, at exec: for dlopen in
    // the helpers to search it, the fork server must start with it.
    if let Some(path) = std::env::var_os("LD_LIBRARY_PATH") {
        command.env("LD_LIBRARY_PATH", path);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let put_socket_on_fd_3 = move || {
        // SAFETY: dup2 takes two fd numbers and touches no memory;
        // `theirs_raw` stays open in the parent until the spawn is done.
        if unsafe { libc::dup2(theirs_raw, 3) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec in a copy of a
    // possibly multithreaded process, where only async-signal-safe calls
    // are sound: it makes one, dup2 (and reads errno), and allocates nothing.
    unsafe { command.pre_exec(put_socket_on_fd_3) };
    let child = command.spawn().map_err(|e| {
        let message = format!(
            "cannot start the helper '{}': {e} (set FFB_SHIM or put ffb-shim next to ffb)",
            shim.display()
        );
        Error::with_source(ErrorKind::LoadFailed, message, e)
    })?;
    drop(theirs);
    Ok(ForkServer {
        child,
        socket: ours,
    })
}

enum Exchange {
    ServerGone(io::Error),
    Refused(i32),
}

/// Sends one request with its fds and reads the reply: the helper's pid and
/// a pidfd for it, or the fork server's errno.
fn exchange(
    socket: RawFd,
    payload: &[u8],
    fds: &[RawFd; SPAWN_FDS],
) -> std::result::Result<Spawned, Exchange> {
    send_with_fds(socket, payload, fds).map_err(Exchange::ServerGone)?;
    let mut reply = [0u8; 4];
    let received = recv_with_fds(socket, &mut reply).map_err(Exchange::ServerGone)?;
    if received.len != 4 {
        return Err(Exchange::ServerGone(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "no reply",
        )));
    }
    let pid = SpawnReply::from_ne_bytes(reply);
    match (pid, received.fds.into_iter().next()) {
        (pid, Some(pidfd)) if pid > 0 => Ok(Spawned { pid, pidfd }),
        (pid, _) if pid < 0 => Err(Exchange::Refused(-pid)),
        _ => Err(Exchange::ServerGone(io::Error::new(
            io::ErrorKind::InvalidData,
            "reply without a pidfd",
        ))),
    }
}

/// The pid of the running fork server for `shim`, if any (for tests and diagnostics).
pub fn fork_server_pid(shim: &Path) -> Option<u32> {
    let servers = servers().lock().unwrap_or_else(|p| p.into_inner());
    servers.get(shim).map(|s| s.child.id())
}

/// Stops every fork server this process started and reaps it. Helpers still
/// running die with their fork server. A process that exits without calling
/// this leaves each fork server to notice EOF on its socket and exit, to be
/// reaped by init; calling it first leaves nothing behind at all.
pub fn shutdown_fork_servers() {
    let mut servers = servers().lock().unwrap_or_else(|p| p.into_inner());
    servers.clear();
}
