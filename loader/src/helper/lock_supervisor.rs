//! The lock supervisor: the host's answer to a lock-setting call
//! ([`SUPERVISED_LOCKS`](ffb_policy::sandbox::SUPERVISED_LOCKS)), which the
//! program routes to the host whatever the policy allows.
//!
//! A read lock needs only a readable fd, so without the host a helper could
//! take one on any file it may read (its read grants, the loader's
//! directories) and stall a writer of another process that locks the same
//! file (another program's SQLite database). The host lets a lock run only
//! when the policy's own rules allow the call and the file lies within a
//! write grant; any other fails with `ENOLCK` and is audited, and an unlock
//! (`F_UNLCK`) of a file outside the grants, where the helper can hold no
//! lock, succeeds without running.
//!
//! The file is named by the kernel: `/proc/TID/fd/N` of the calling thread,
//! whose target must be the same inode (device and inode number) as the
//! path it reads as. Once the file is known to be granted, the lock must be
//! taken on that file and no other, though another thread of the helper
//! could `dup2` a different file onto the fd number meanwhile:
//!
//! * a helper with one thread cannot: that thread waits in this very call,
//!   and a signal that interrupts it withdraws the notification (the answer
//!   then fails, and the restarted call is checked again). The call runs
//!   itself (`CONTINUE`), blocking in the helper if it waits;
//! * with more threads, an open file description lock or a `flock` is taken
//!   by the host on its own copy of the fd (`pidfd_getfd`: the same open
//!   file description, checked to be the same inode), never with
//!   `CONTINUE`. One that would wait is retried by a host thread of its own,
//!   so the monitor never blocks; it gives up when the notification is
//!   withdrawn (the helper died, or a signal interrupted the call);
//! * with more threads, a classic record lock belongs to the process that
//!   takes it, which the host is not: it runs with `CONTINUE`, and a thread
//!   that swaps the fd between the check and the call can lock another file
//!   it may read (see `docs/SECURITY.md`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use ffb_policy::errno::errno_name;
use ffb_policy::grants::GrantKind;
use ffb_policy::sandbox::{LockCall, LockOwner, Verdict, LOCK_REFUSED};

use super::monitor::{send_response, thread_count};
use super::remote_memory::read_memory;
use super::Helper;

/// The longest pause between a waiting lock's attempts: how late a lock
/// that became free can be noticed, and how late a withdrawn wait ends.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// What the monitor does with a supervised lock call.
pub(super) enum LockAnswer {
    /// Send this answer.
    Respond(libc::seccomp_notif_resp),
    /// A host thread waits for the lock and answers.
    Deferred,
    /// Kill the helper: the policy's rules forbid the call.
    Violation,
}

/// A file as the kernel identifies it: device and inode number.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl Helper {
    /// The answer to lock-setting call `call` of notification `req`.
    pub(super) fn answer_lock(&self, req: &libc::seccomp_notif, call: LockCall) -> LockAnswer {
        let nr = req.data.nr as i64;
        let args = req.data.args;
        let answer = |ret: i32| LockAnswer::Respond(response(req.id, ret));
        match self.policy.lock_rules_verdict(nr, &args, self.phase) {
            Verdict::Continue => {}
            Verdict::Log => self.audit_verdict(nr, args, "logged"),
            Verdict::Fail(errno) => {
                self.audit_verdict(nr, args, &errno_action(errno));
                return answer(-(errno as i32));
            }
            Verdict::Violation => return LockAnswer::Violation,
        }
        // The record a fcntl lock describes, read once: only its type is
        // looked at here, and the host takes an open file lock with this copy.
        let record = match call.owner {
            LockOwner::Flock => None,
            LockOwner::Process | LockOwner::OpenFile => match read_record(self.pid, args[2]) {
                Some(record) => Some(record),
                None => return answer(-libc::EFAULT),
            },
        };
        let unlock = record.is_some_and(|r| r.l_type == libc::F_UNLCK as libc::c_short);
        // The fd is a C int: the register's upper half means nothing.
        let fd = args[0] as u32 as i32;
        let thread = if req.pid > 0 {
            req.pid as i32
        } else {
            self.pid
        };
        let granted = if self.policy.grants_any(GrantKind::Write) {
            // Counted before the file is looked at: a thread that swapped
            // the fd during the check and then ended would not be counted
            // after it.
            let alone = thread_count(self.pid) == Some(1);
            match self.granted_file(thread, fd) {
                Ok(granted) => granted.map(|file| (file, alone)),
                Err(errno) => return answer(-errno),
            }
        } else {
            None
        };
        let Some((file, alone)) = granted else {
            if unlock {
                // No lock of the helper's can be on a file outside the grants.
                return answer(0);
            }
            self.audit_verdict(nr, args, &errno_action(LOCK_REFUSED));
            return answer(-(LOCK_REFUSED as i32));
        };
        if alone || call.owner == LockOwner::Process {
            // One thread: it waits in this call, so no other can swap the fd.
            // A record lock of more threads: see the module's documentation.
            let mut resp = response(req.id, 0);
            resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
            return LockAnswer::Respond(resp);
        }
        self.lock_on_copy(req, call, fd, file, record)
    }

    /// The granted file that the calling thread's fd `fd` is open on:
    /// `Ok(None)` when it is not a file within a write grant (a pipe, a
    /// socket, a deleted file, a file outside the grants), `Err(EBADF)` when
    /// there is no such fd.
    fn granted_file(&self, thread: i32, fd: RawFd) -> Result<Option<FileId>, i32> {
        if fd < 0 {
            return Err(libc::EBADF);
        }
        let link = format!("/proc/{thread}/fd/{fd}");
        let path = std::fs::read_link(&link).map_err(|_| libc::EBADF)?;
        let opened = std::fs::metadata(&link).map_err(|_| libc::EBADF)?;
        let id = FileId {
            dev: opened.dev(),
            ino: opened.ino(),
        };
        // The path must still name that very inode: not a pipe or a socket
        // ("pipe:[N]"), not a deleted file ("/x (deleted)"), not a file
        // renamed since. Then the grants decide.
        let named = std::fs::metadata(&path).is_ok_and(|m| m.dev() == id.dev && m.ino() == id.ino)
            && self.policy.write_grant_covers(&path);
        Ok(named.then_some(id))
    }

    /// Takes an open file description lock or a `flock` on the host's copy
    /// of the helper's fd, which must still be open on `file`.
    fn lock_on_copy(
        &self,
        req: &libc::seccomp_notif,
        call: LockCall,
        fd: RawFd,
        file: FileId,
        record: Option<libc::flock>,
    ) -> LockAnswer {
        let answer = |ret: i32| LockAnswer::Respond(response(req.id, ret));
        let copy = match self.take_fd(fd) {
            Ok(copy) => copy,
            Err(e) => return answer(-e.raw_os_error().unwrap_or(libc::EBADF)),
        };
        if file_id(&copy) != Some(file) {
            // Another thread swapped the fd since the check.
            let (nr, args) = (req.data.nr as i64, req.data.args);
            self.audit_verdict(nr, args, &errno_action(LOCK_REFUSED));
            return answer(-(LOCK_REFUSED as i32));
        }
        let flock_operation = req.data.args[1] as u32 as i32;
        let attempt = move || match record {
            Some(record) => lock_open_file(&copy, &record),
            None => flock_without_waiting(&copy, flock_operation),
        };
        let first = attempt();
        if !(call.waits && is_conflict(first)) {
            return answer(first);
        }
        let Some(listener) = self.listener.as_ref().and_then(|l| l.try_clone().ok()) else {
            return answer(-(LOCK_REFUSED as i32));
        };
        let id = req.id;
        let waiter = std::thread::Builder::new()
            .name("ffb-lock-wait".into())
            .spawn(move || wait_then_answer(&listener, id, attempt));
        match waiter {
            Ok(_) => LockAnswer::Deferred,
            Err(_) => answer(-(LOCK_REFUSED as i32)),
        }
    }
}

/// Retries a waiting lock until it is taken or fails otherwise, then
/// answers notification `id`; gives up once the notification is withdrawn.
fn wait_then_answer(listener: &OwnedFd, id: u64, mut attempt: impl FnMut() -> i32) {
    let mut pause = Duration::from_millis(1);
    loop {
        std::thread::sleep(pause);
        if !notification_pending(listener, id) {
            return;
        }
        let ret = attempt();
        if !is_conflict(ret) {
            send_response(listener.as_raw_fd(), &response(id, ret));
            return;
        }
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

/// Whether a lock attempt's result says another lock is in the way.
fn is_conflict(ret: i32) -> bool {
    ret == -libc::EAGAIN || ret == -libc::EACCES
}

/// The answer that makes the helper's call return `ret` (0 or a negative errno).
fn response(id: u64, ret: i32) -> libc::seccomp_notif_resp {
    libc::seccomp_notif_resp {
        id,
        val: 0,
        error: ret.min(0),
        flags: 0,
    }
}

/// Whether notification `id` still waits for an answer.
fn notification_pending(listener: &OwnedFd, id: u64) -> bool {
    // SAFETY: ID_VALID reads one u64 from the live `id`.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &id,
        ) == 0
    }
}

fn errno_action(errno: u32) -> String {
    format!("errno:{}", errno_name(errno).unwrap_or("?"))
}

/// The `struct flock` at `addr` in the helper's memory, read once.
fn read_record(pid: i32, addr: u64) -> Option<libc::flock> {
    let len = std::mem::size_of::<libc::flock>();
    let bytes = read_memory(pid, addr, len).filter(|b| b.len() == len)?;
    // SAFETY: struct flock is plain C data (integers) for which every bit
    // pattern is a valid value, and `bytes` holds exactly its size;
    // read_unaligned makes no assumption about the buffer's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<libc::flock>()) })
}

fn file_id(fd: &OwnedFd) -> Option<FileId> {
    // SAFETY: stat is plain C data; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one struct stat into the live `st`.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    Some(FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// `F_OFD_SETLK` on the host's copy, never waiting: 0 or a negative errno.
fn lock_open_file(fd: &OwnedFd, record: &libc::flock) -> i32 {
    // SAFETY: F_OFD_SETLK reads one struct flock from the live `record`.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, record) };
    if r == 0 {
        0
    } else {
        -errno()
    }
}

/// `flock(operation | LOCK_NB)` on the host's copy: 0 or a negative errno.
fn flock_without_waiting(fd: &OwnedFd, operation: i32) -> i32 {
    // SAFETY: flock takes an fd and an integer and touches no memory.
    let r = unsafe { libc::flock(fd.as_raw_fd(), operation | libc::LOCK_NB) };
    if r == 0 {
        0
    } else {
        -errno()
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
