//! Learn mode: run a script under a tracing policy and record what the
//! extension needs, so ops can start from the smallest policy that works.
//!
//! The helper runs under its base preset, whose "kill" default already routes
//! every other syscall to the host's listener. In learn mode the host lets
//! each of those through and records it, with the paths opened and the TCP
//! ports connected or bound; the floor, x32 numbers, and signals and
//! file-owner changes aimed at other processes stay violations. No Landlock
//! is applied, and nothing is recorded of the loading phase.
//! Paths and socket addresses are read from the helper's memory: the
//! extension could lie about them, which only misleads its own policy, and
//! ops review the result before use.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ffb_policy::sandbox::{
    floor_entry_for_call, supervised_owner_call, LOADING_SYSCALLS, SUPERVISED_SIGNALS,
    X32_SYSCALL_BIT,
};
use ffb_policy::syscalls::display_name;

/// What a learning run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// Syscalls the extension made that its base preset does not allow.
    pub syscalls: BTreeSet<String>,
    /// Files and directories opened for reading.
    pub read_paths: BTreeSet<PathBuf>,
    /// Files and directories opened for writing.
    pub write_paths: BTreeSet<PathBuf>,
    /// TCP ports connected to.
    pub connect_tcp: BTreeSet<u16>,
    /// TCP ports bound.
    pub bind_tcp: BTreeSet<u16>,
}

/// Whether a syscall that reached the listener may be learned (and so let
/// through): never the floor, x32 numbers, signals or file-owner changes aimed
/// at other processes (those stay violations, even while learning); and
/// loading syscalls during loading are the bridge's own business.
pub(crate) fn worth_recording(nr: i64, args: &[u64; 6], loading: bool) -> bool {
    let name = display_name(nr);
    let supervised =
        SUPERVISED_SIGNALS.contains(&name.as_str()) || supervised_owner_call(&name, args).is_some();
    if floor_entry_for_call(nr, args).is_some() || nr & X32_SYSCALL_BIT != 0 || supervised {
        return false;
    }
    !(loading && LOADING_SYSCALLS.contains(&name.as_str()))
}

impl Learned {
    /// Records one call; `read_mem(addr, len)` reads the helper's memory.
    pub(crate) fn record(
        &mut self,
        nr: i64,
        args: &[u64; 6],
        cwd: Option<PathBuf>,
        read_mem: impl Fn(u64, usize) -> Option<Vec<u8>>,
    ) {
        let name = display_name(nr);
        let path_at = |addr: u64| -> Option<PathBuf> {
            let bytes = read_mem(addr, 4096)?;
            let end = bytes.iter().position(|&b| b == 0)?;
            let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let p = PathBuf::from(text);
            Some(if p.is_absolute() {
                p
            } else {
                cwd.clone()?.join(p)
            })
        };
        let writes = |flags: u64| {
            flags
                & (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND)
                    as u64
                != 0
        };
        match name.as_str() {
            "openat" | "open" => {
                let (path_arg, flags) = if name == "open" {
                    (args[0], args[1])
                } else {
                    (args[1], args[2])
                };
                if let Some(p) = path_at(path_arg) {
                    if writes(flags) {
                        self.write_paths.insert(p);
                    } else {
                        self.read_paths.insert(p);
                    }
                }
            }
            "connect" | "bind" => {
                let len = (args[2] as usize).min(128);
                if let Some(addr) = read_mem(args[1], len) {
                    let family = addr.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
                    let port = addr.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]]));
                    if let (Some(f), Some(port)) = (family, port) {
                        if f == libc::AF_INET as u16 || f == libc::AF_INET6 as u16 {
                            if name == "connect" {
                                self.connect_tcp.insert(port);
                            } else {
                                self.bind_tcp.insert(port);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        self.syscalls.insert(name);
    }
}
