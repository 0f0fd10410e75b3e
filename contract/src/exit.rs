//! Exit codes of `ffb-shim`, the fork server and its helpers.
//!
//! A helper that fails before it can report over its control socket says
//! why with its exit code alone; the fork server passes the wait status on
//! to the host, which reports it as `exited (<code>)`. The codes are here so
//! that a person reading such an error, and the code that produced it, name
//! the same thing.

/// `ffb-shim` was started by hand, or with arguments ffb never passes.
pub const USAGE: u8 = 2;

/// The fork server could not set itself up (its `SIGCHLD` signalfd).
pub const FORK_SERVER_SETUP: u8 = 3;

/// The helper's parent (the fork server) died before the helper's
/// parent-death signal was armed: nobody would kill it with the host now.
pub const PARENT_GONE: u8 = 111;

/// The host never acknowledged the seccomp listener. The helper cannot know
/// the host holds it, and must not load the library unsupervised.
pub const LISTENER_NOT_ACKNOWLEDGED: u8 = 112;

/// Lockdown failed after a [`HelperMessage::Failed`](crate::wire::HelperMessage::Failed)
/// went to the host, or loading failed after the helper reported it in the
/// arena ([`LOADED_SEQ`](crate::wire::LOADED_SEQ)); the host reports that
/// rather than this code.
pub const FAILED_AND_REPORTED: u8 = 113;

/// Taking over the process (process group, parent-death signal, signals,
/// fds) failed. fd 3 may still be the fork server's socket to the host
/// then, so nothing is sent: the exit status is the only report.
pub const TAKE_PROCESS_FAILED: u8 = 114;
