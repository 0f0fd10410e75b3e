//! The extension's stdout and stderr, when the host keeps them: a file with
//! a cap the extension cannot get around.
//!
//! The helper never holds the file. It gets the write end of a pipe on its
//! fds 1 and 2, and a thread of the host's (one per helper, started only when
//! output is on) copies what arrives into the file until the bridge's budget
//! is spent, then writes one line of its own,
//! `[ffb: extension output cut at N bytes]`, and reads and discards the rest,
//! so the helper never blocks on a full pipe. The thread ends when the last
//! write end closes: when the helper (and whatever it started) has died.
//! The [`Drain`] the helper holds waits for it when the helper is dropped
//! (after it is reaped), so everything the helper wrote is in the file by
//! then, and no thread outlives the helper's host-side half, unless
//! something the helper started still holds the pipe after [`DRAIN_GRACE`].
//!
//! The budget is per bridge, not per helper: a respawned helper appends to
//! the same file, from what its predecessors left of the budget, so crashing
//! and respawning does not buy more disk. A limit of 0 means no cap: the
//! helper then gets the file itself, as before the cap existed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// How much the drain reads at a time: the default pipe capacity.
const CHUNK: usize = 64 << 10;

/// How long dropping a helper waits for its drain to reach the end of the
/// pipe before it leaves the thread to end on its own.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A bridge's output file, its cap, and what its helpers have spent of it.
#[derive(Debug)]
pub(crate) struct ExtensionOutput {
    path: PathBuf,
    /// The most bytes of the extension's own the file gets; 0 for no cap.
    limit: u64,
    budget: Mutex<Budget>,
}

#[derive(Debug, Default)]
struct Budget {
    /// The extension's bytes written so far, by every helper of the bridge.
    written: u64,
    /// Whether the cut line is written: everything from now on is discarded.
    cut: bool,
    /// Whether the last byte written ended a line.
    at_line_start: bool,
}

impl ExtensionOutput {
    /// Output to `path` (appended to, created if need be), capped at `limit`
    /// bytes for the whole bridge, or not capped if `limit` is 0.
    pub(crate) fn new(path: PathBuf, limit: u64) -> ExtensionOutput {
        ExtensionOutput {
            path,
            limit,
            budget: Mutex::new(Budget {
                at_line_start: true,
                ..Budget::default()
            }),
        }
    }

    /// The fd a new helper gets for its stdout and stderr. The file is
    /// opened for every helper, as it always was, so a file removed between
    /// two helpers is created again. With a cap, this is a pipe's write end,
    /// and a drain thread holds the read end and the file until the helper
    /// is gone.
    pub(crate) fn helper_end(self: &Arc<Self>) -> Result<(OwnedFd, Option<Drain>)> {
        let file = open_append(&self.path)?;
        if self.limit == 0 {
            return Ok((OwnedFd::from(file), None));
        }
        let (read, write) = pipe()?;
        let sink = Arc::clone(self);
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let finished = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("ffb-output".into())
            .stack_size(64 << 10)
            .spawn(move || {
                sink.drain(File::from(read), file);
                let (flag, cv) = &*finished;
                *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
                cv.notify_all();
            })
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::LoadFailed,
                    format!("starting the extension output's drain: {e}"),
                    e,
                )
            })?;
        let drain = Drain {
            done,
            thread: Some(thread),
        };
        Ok((write, Some(drain)))
    }

    /// Copies the pipe into the file within the budget, until end of file.
    fn drain(&self, mut pipe: File, mut file: File) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => self.take(&mut file, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Writes what of `data` the budget allows, and the cut line when it
    /// runs out. A file that cannot be written (a full disk) loses the bytes;
    /// the pipe is drained all the same.
    fn take(&self, file: &mut File, data: &[u8]) {
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        if budget.cut {
            return;
        }
        let room = self.limit - budget.written;
        let keep = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if keep > 0 {
            let _ = file.write_all(&data[..keep]);
            budget.written += keep as u64;
            budget.at_line_start = data[keep - 1] == b'\n';
        }
        if keep < data.len() {
            let line = format!(
                "{}[ffb: extension output cut at {} bytes]\n",
                if budget.at_line_start { "" } else { "\n" },
                self.limit
            );
            let _ = file.write_all(line.as_bytes());
            budget.cut = true;
        }
    }
}

/// A helper's drain thread, waited for (up to [`DRAIN_GRACE`]) on drop.
pub(crate) struct Drain {
    done: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Drain {
    fn drop(&mut self) {
        let (flag, cv) = &*self.done;
        let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = cv
            .wait_timeout_while(guard, DRAIN_GRACE, |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        let done = *guard;
        drop(guard);
        if let (true, Some(thread)) = (done, self.thread.take()) {
            let _ = thread.join();
        }
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            Error::with_source(
                ErrorKind::LoadFailed,
                format!(
                    "cannot open the extension's output file '{}': {e}",
                    path.display()
                ),
                e,
            )
        })
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the two-element array it is given.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(Error::with_source(
            ErrorKind::LoadFailed,
            format!("creating the extension output's pipe: {e}"),
            e,
        ));
    }
    // SAFETY: both fds were just created by pipe2 and are owned by nothing else.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as above, for the write end.
    let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(limit: u64, writes: &[&[u8]]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!(
            "ffb-output-{}-{limit}-{}",
            std::process::id(),
            writes.len()
        ));
        let _ = std::fs::remove_file(&dir);
        let out = ExtensionOutput::new(dir.clone(), limit);
        let mut file = open_append(&dir).unwrap();
        for w in writes {
            out.take(&mut file, w);
        }
        let got = std::fs::read(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        got
    }

    #[test]
    fn below_the_limit_everything_arrives() {
        assert_eq!(drained(10, &[b"abc", b"defg", b"hij"]), b"abcdefghij");
    }

    #[test]
    fn the_cut_line_comes_once_and_last() {
        assert_eq!(
            drained(5, &[b"abc", b"defg", b"more"]),
            b"abcde\n[ffb: extension output cut at 5 bytes]\n"
        );
        assert_eq!(
            drained(4, &[b"abc\n", b"x"]),
            b"abc\n[ffb: extension output cut at 4 bytes]\n"
        );
    }
}
