//! Every process this benchmark starts, and how each one ends on every path:
//! children re-executing this binary die with it (`PR_SET_PDEATHSIG`), are
//! killed and reaped when their owner drops them, and by the signal handler
//! on SIGINT, SIGTERM or SIGHUP; the fork servers the bridges started are
//! shut down on the way out.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};

/// Shuts down the fork servers the bridges started, on every path.
pub struct ForkServers;

impl Drop for ForkServers {
    fn drop(&mut self) {
        ffb_loader::shutdown_fork_servers();
    }
}

/// Our live children (baselines and hogs), for the signal handler.
static CHILDREN: [AtomicI32; 32] = [const { AtomicI32::new(0) }; 32];

/// Whether stderr is a terminal, read by the signal handler (which may not
/// ask the kernel itself).
static STDERR_TTY: AtomicBool = AtomicBool::new(false);

fn track(pid: u32) {
    for slot in &CHILDREN {
        if slot.compare_exchange(0, pid as i32, SeqCst, SeqCst).is_ok() {
            return;
        }
    }
}

fn untrack(pid: u32) {
    for slot in &CHILDREN {
        let _ = slot.compare_exchange(pid as i32, 0, SeqCst, SeqCst);
    }
}

/// A child process, killed and reaped when dropped, and by the signal
/// handler if a signal ends the run first.
pub struct Child(std::process::Child);

impl Child {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
        let child = cmd.spawn()?;
        track(child.id());
        Ok(Child(child))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// The ends of its piped stdin and stdout, once.
    pub fn take_pipes(&mut self) -> (ChildStdin, ChildStdout) {
        let stdin = self.0.stdin.take().expect("piped");
        (stdin, self.0.stdout.take().expect("piped"))
    }

    /// Kills it without waiting, so that many can die at once before
    /// [`Drop`] reaps each.
    pub fn kill(&mut self) {
        untrack(self.0.id());
        let _ = self.0.kill();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
        let _ = self.0.wait();
    }
}

/// A command re-executing this binary as a child that dies with us.
pub fn child_command(lib: &Path) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding ffb-bench: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--lib").arg(lib);
    let parent = std::process::id();
    let die_with_parent = move || {
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of the calling
        // (forked, not yet exec'd) process; it is async-signal-safe.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // If we died before the flag was set, the child was reparented: it
        // fails to start (ESRCH, as no one is left to read a message).
        if std::os::unix::process::parent_id() != parent {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec, so it may only call
    // async-signal-safe functions: prctl and getppid are, and it neither
    // allocates nor takes locks (an io::Error made from an errno is a plain
    // number).
    unsafe { cmd.pre_exec(die_with_parent) };
    Ok(cmd)
}

/// On SIGINT, SIGTERM or SIGHUP: kill and reap every child, say so in one
/// line, and exit. (Children also die with us by `PR_SET_PDEATHSIG`; this
/// reaps them too, and the fork servers exit when they see our socket close.)
extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &CHILDREN {
        let pid = slot.swap(0, SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe and `pid` is a child we
            // started and have not reaped (its slot is cleared before its
            // reaping), so the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: waitpid is async-signal-safe; a null status pointer
            // means the status is not stored.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        }
    }
    let msg = b"\r\x1b[2Kffb-bench: interrupted by a signal; its children were killed\n";
    // Without the progress line's erase sequence when stderr is not a terminal.
    let msg = if STDERR_TTY.load(SeqCst) {
        &msg[..]
    } else {
        &msg[5..]
    };
    // SAFETY: write is async-signal-safe, and `msg` is a static buffer of
    // `msg.len()` readable bytes.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
    // SAFETY: _exit is async-signal-safe and runs no destructors or atexit
    // handlers, which a signal handler must not.
    unsafe { libc::_exit(128 + sig) };
}

/// Installs [`on_signal`] for SIGINT, SIGTERM and SIGHUP.
pub fn install_signal_handlers() {
    STDERR_TTY.store(std::io::stderr().is_terminal(), SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `sigaction` is a plain C struct for which all-zero bytes
        // are valid: the default handler, no flags, an empty mask.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        // SAFETY: `sa_mask` is a sigset_t we own and may write.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is initialised and outlives the call, and its
        // handler touches only atomics and async-signal-safe calls.
        unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    }
}
