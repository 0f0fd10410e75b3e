//! The forked child that installs a program and makes the calls, and the
//! parent's side: taking its listener, answering every notification, and
//! reading what it reports.

use super::*;

/// Writes one word to the report pipe; false if it did not go through.
pub(super) fn report(fd: RawFd, word: i64) -> bool {
    let bytes = word.to_ne_bytes();
    // SAFETY: write reads 8 bytes from a live local array; a bad fd only
    // makes it fail.
    let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    written == bytes.len() as isize
}

pub(super) fn child_exit(code: i32) -> ! {
    // SAFETY: _exit ends this child at once, running no atexit handlers and
    // touching no state shared with the parent's other threads.
    unsafe { libc::_exit(code) }
}

/// The child's whole life: install `filter` (if any), with its listener fd as
/// the first report, then make each call and report its result.
pub(super) fn child(filter: Option<&libc::sock_fprog>, cases: &[Case], pipe: RawFd) -> ! {
    if let Some(prog) = filter {
        let no_new_privs = [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0];
        // SAFETY: PR_SET_NO_NEW_PRIVS only sets a flag on this child's credentials.
        if unsafe { raw_syscall(libc::SYS_prctl, &no_new_privs) } != 0 {
            child_exit(EXIT_SETUP);
        }
        let install = [
            libc::SECCOMP_SET_MODE_FILTER as u64,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            prog as *const libc::sock_fprog as u64,
            0,
            0,
            0,
        ];
        // SAFETY: `prog` and the instructions it points to were built before
        // the fork and live in this child's copy of the parent's memory; the
        // kernel copies them and only confines this child.
        let listener = unsafe { raw_syscall(libc::SYS_seccomp, &install) };
        if listener < 0 || !report(pipe, listener) {
            child_exit(EXIT_SETUP);
        }
    }
    for case in cases {
        let ret = match case.entry {
            // SAFETY: every case comes from the templates, whose calls fail
            // before they change anything, only probe (signal 0, a stat), or
            // change only this child, which exits right after.
            Entry::Syscall => unsafe { raw_syscall(case.nr, &case.args) },
            // SAFETY: the i386 getpid reads and changes nothing.
            Entry::Int80 => unsafe { int80_syscall(case.nr) },
        };
        if !report(pipe, ret) {
            child_exit(EXIT_REPORT);
        }
    }
    child_exit(0)
}

pub(super) fn last_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// A forked child, killed and reaped if the test gives up on it.
pub(super) struct Child {
    pub(super) pid: libc::pid_t,
    pub(super) pidfd: OwnedFd,
    pub(super) reaped: bool,
}

impl Child {
    /// Blocks until the child (which has exited: its pidfd said so) is
    /// reaped, and returns its wait status.
    pub(super) fn reap(&mut self) -> Result<i32, String> {
        let mut status = 0;
        // SAFETY: waitpid writes the status to a live local; the pid is our
        // unreaped child, so it names no one else.
        let got = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        self.reaped = true;
        if got == self.pid {
            Ok(status)
        } else {
            Err(last_error("waitpid"))
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: the pid is our unreaped child, so SIGKILL reaches no one else.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.reap();
        }
    }
}

/// Forks a child that runs [`child`]; returns it and the read end of its
/// report pipe (non-blocking).
pub(super) fn spawn(
    filter: Option<&libc::sock_fprog>,
    cases: &[Case],
) -> Result<(Child, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into a live local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(last_error("pipe2"));
    }
    // SAFETY: pipe2 just returned these fds, owned by no one else.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as above.
    let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    // SAFETY: the child runs only `child`, which makes raw syscalls on memory
    // built before the fork: no allocation, no lock, no unwinding, so the
    // other threads' state it inherits is never touched.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child(filter, cases, write.as_raw_fd());
    }
    if pid < 0 {
        return Err(last_error("fork"));
    }
    drop(write);
    // SAFETY: pidfd_open takes plain integers; the pid is our unreaped child.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        let error = last_error("pidfd_open");
        // SAFETY: the pid is our unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // SAFETY: reaps that child; a null status pointer is allowed.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(error);
    }
    // SAFETY: pidfd_open just returned this fd, owned by no one else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    Ok((
        Child {
            pid,
            pidfd,
            reaped: false,
        },
        read,
    ))
}

/// Copies the child's fd `fd` (its seccomp listener) into this process.
pub(super) fn take_fd(pidfd: &OwnedFd, fd: i64) -> Result<OwnedFd, String> {
    // SAFETY: pidfd_getfd takes plain integers and returns a new fd or -1.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return Err(last_error("pidfd_getfd"));
    }
    // SAFETY: pidfd_getfd just returned this fd, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(got as RawFd) })
}

/// Reads every word waiting in the pipe; false once the pipe is at its end.
pub(super) fn drain(pipe: &OwnedFd, words: &mut Vec<i64>) -> bool {
    loop {
        let mut bytes = [0u8; 8];
        // SAFETY: read writes at most 8 bytes into a live local array.
        let got = unsafe { libc::read(pipe.as_raw_fd(), bytes.as_mut_ptr().cast(), bytes.len()) };
        match got {
            8 => words.push(i64::from_ne_bytes(bytes)),
            0 => return false,
            // EAGAIN: nothing more for now. (Writes of 8 bytes are atomic.)
            _ => return true,
        }
    }
}

/// Receives one notification, records it and fails the call with
/// [`NOTIFIED_ERRNO`] so that the child goes on.
pub(super) fn answer(listener: &OwnedFd, seen: &mut Vec<libc::seccomp_data>) -> Result<(), String> {
    let mut notif = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    let fd = listener.as_raw_fd();
    // SAFETY: the kernel fills a zeroed seccomp_notif we own; the fd is a
    // seccomp listener.
    let received = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) };
    if received != 0 {
        return Err(last_error("SECCOMP_IOCTL_NOTIF_RECV"));
    }
    seen.push(notif.data);
    let mut response = libc::seccomp_notif_resp {
        id: notif.id,
        val: 0,
        error: -NOTIFIED_ERRNO,
        flags: 0,
    };
    // SAFETY: the kernel reads a seccomp_notif_resp we own.
    let sent = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut response) };
    if sent != 0 {
        return Err(last_error("SECCOMP_IOCTL_NOTIF_SEND"));
    }
    Ok(())
}

/// What a child did: the words it reported, the notifications it caused,
/// and its wait status.
pub(super) struct Run {
    pub(super) words: Vec<i64>,
    pub(super) notifications: Vec<libc::seccomp_data>,
    pub(super) status: i32,
}

/// Runs `cases` in one child under `filter`, answering its notifications,
/// for at most `timeout`.
pub(super) fn run_child(
    filter: Option<&libc::sock_fprog>,
    cases: &[Case],
    timeout: Duration,
) -> Result<Run, String> {
    let (mut child, pipe) = spawn(filter, cases)?;
    let deadline = Instant::now() + timeout;
    let (mut words, mut notifications) = (Vec::new(), Vec::new());
    let mut listener: Option<OwnedFd> = None;
    let (mut want_listener, mut pipe_open) = (filter.is_some(), true);
    let mut no_listener = None;
    loop {
        if want_listener && listener.is_none() {
            if let Some(&fd) = words.first() {
                // A child that died at once (killed by its filter) has no
                // fd to take; one that waits for an answer times out below.
                match take_fd(&child.pidfd, fd) {
                    Ok(fd) => listener = Some(fd),
                    Err(e) => (want_listener, no_listener) = (false, Some(e)),
                }
            }
        }
        let fd_or_off = |on: bool, fd: RawFd| if on { fd } else { -1 };
        let mut polled = [
            fd_or_off(pipe_open, pipe.as_raw_fd()),
            child.pidfd.as_raw_fd(),
            listener
                .as_ref()
                .map_or(-1, |l| fd_or_off(want_listener, l.as_raw_fd())),
        ]
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the child did not finish within {timeout:?} (reported {words:?}, {} notifications{})",
                notifications.len(),
                no_listener.map_or(String::new(), |e| format!(", {e}"))
            ));
        }
        let millis = left.as_millis().clamp(1, 60_000) as libc::c_int;
        // SAFETY: poll reads and writes an array of 3 pollfds we own.
        if unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) } < 0 {
            return Err(last_error("poll"));
        }
        let [from_pipe, from_pidfd, from_listener] = polled.map(|p| p.revents);
        if from_pipe != 0 {
            pipe_open = drain(&pipe, &mut words);
        }
        if from_listener & libc::POLLIN != 0 {
            if let Some(l) = &listener {
                answer(l, &mut notifications)?;
            }
        } else if from_listener != 0 {
            // POLLHUP: the filter has no task left, so no more notifications.
            want_listener = false;
        }
        if from_pidfd != 0 {
            break;
        }
    }
    drain(&pipe, &mut words);
    let status = child.reap()?;
    Ok(Run {
        words,
        notifications,
        status,
    })
}

/// Runs `args` as syscall `nr` with the `syscall` instruction and returns the
/// raw result (`-errno` on failure).
///
/// # Safety
///
/// The call itself must be sound: one of the harmless calls above, or one
/// whose effect on this process the caller owns.
pub(super) unsafe fn raw_syscall(nr: i64, args: &[u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the `syscall` instruction reads only the registers given here
    // and clobbers rcx and r11 (declared) besides rax; the caller vouches for
    // what the call does.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Runs syscall `nr` through the 32-bit `int 0x80` entry, with no arguments.
///
/// # Safety
///
/// As for [`raw_syscall`], for the i386 syscall `nr`.
pub(super) unsafe fn int80_syscall(nr: i64) -> i64 {
    let ret: i64;
    // SAFETY: `int 0x80` reads eax (and the argument registers, unused by the
    // calls made here) and may clear r8 to r11 (declared clobbered).
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("rax") nr => ret,
            lateout("r8") _,
            lateout("r9") _,
            lateout("r10") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
