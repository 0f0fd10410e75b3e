//! The host's side of the fork server (`ffb-shim --zygote`).
//!
//! One fork server per process and shim path, started with `exec` from
//! whichever thread first needs a helper. The host never forks itself: a
//! multithreaded host only ever starts the fork server through
//! `std::process::Command`, whose child does nothing but `dup2` and `exec`.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use ffb_contract::wire::{SpawnReply, SpawnRequest, SPAWN_FDS};

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
    let payload = serde_json::to_vec(request)
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
                    return Err(load_failed(format!("the fork server died: {e}")));
                }
            }
            Err(Exchange::Refused(libc::EPROTO)) => {
                return Err(load_failed(format!(
                    "'{}' is from another ffb build (it does not speak wire version {}): rebuild ffb and ffb-shim together",
                    shim.display(),
                    ffb_contract::wire::WIRE_VERSION
                )))
            }
            Err(Exchange::Refused(errno)) => {
                return Err(load_failed(format!(
                    "the fork server could not fork: {}",
                    io::Error::from_raw_os_error(errno)
                )))
            }
        }
    }
    unreachable!("the loop returns on its second attempt")
}

fn load_failed(message: String) -> Error {
    Error::new(ErrorKind::LoadFailed, message)
}

fn start(shim: &Path) -> Result<ForkServer> {
    let mut pair = [0; 2];
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(load_failed(format!(
            "socketpair: {}",
            io::Error::last_os_error()
        )));
    }
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
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
    unsafe {
        // Runs between fork and exec: dup2 only, which is async-signal-safe.
        command.pre_exec(move || {
            if libc::dup2(theirs_raw, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| {
        load_failed(format!(
            "cannot start the helper '{}': {e} (set FFB_SHIM or put ffb-shim next to ffb)",
            shim.display()
        ))
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

fn exchange(
    socket: RawFd,
    payload: &[u8],
    fds: &[RawFd; SPAWN_FDS],
) -> std::result::Result<Spawned, Exchange> {
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    let mut cmsg = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut _,
        iov_len: payload.len(),
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    unsafe {
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(fd_bytes) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(c),
            fd_bytes as usize,
        );
    }
    if unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(Exchange::ServerGone(io::Error::last_os_error()));
    }
    let mut reply = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: reply.as_mut_ptr().cast(),
        iov_len: reply.len(),
    };
    let mut cmsg = [0u64; 4];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    let n = loop {
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break n;
    };
    if n != 4 {
        return Err(Exchange::ServerGone(if n < 0 {
            io::Error::last_os_error()
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "no reply")
        }));
    }
    let mut pidfd = None;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if !c.is_null() && (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS
        {
            pidfd = Some(OwnedFd::from_raw_fd(std::ptr::read_unaligned(
                libc::CMSG_DATA(c) as *const RawFd,
            )));
        }
    }
    let pid = SpawnReply::from_ne_bytes(reply);
    match (pid, pidfd) {
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
