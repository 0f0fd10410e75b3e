//! The unix-socket and pipe baselines: each message is an 8-byte length and
//! the payload, sent to the helper, which calls the fixture and sends the
//! same message back.

use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode, Stdio};

use super::InProcess;
use crate::children::Child;
use crate::plan::MAX_PAYLOAD;

/// The host's ends of the channel to a helper.
pub struct Stream {
    to: File,
    from: File,
}

/// Starts `cmd` with both ends of one unix socket as its stdin and stdout.
pub fn socket(cmd: &mut Command) -> std::io::Result<(Child, Stream)> {
    let (ours, theirs) = UnixStream::pair()?;
    let theirs_too = theirs.try_clone()?;
    cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(theirs_too)));
    let ours_too = ours.try_clone()?;
    let child = Child::spawn(cmd)?;
    let stream = Stream {
        to: File::from(OwnedFd::from(ours)),
        from: File::from(OwnedFd::from(ours_too)),
    };
    Ok((child, stream))
}

/// Starts `cmd` with a pipe to its stdin and one from its stdout.
pub fn pipe(cmd: &mut Command) -> std::io::Result<(Child, Stream)> {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = Child::spawn(cmd)?;
    let (stdin, stdout) = child.take_pipes();
    let stream = Stream {
        to: File::from(OwnedFd::from(stdin)),
        from: File::from(OwnedFd::from(stdout)),
    };
    Ok((child, stream))
}

impl Stream {
    /// Sends `payload` and reads the answer into `buf`.
    pub fn round_trip(&self, payload: &[u8], buf: &mut [u8]) -> std::io::Result<()> {
        let len = payload.len();
        write2(&self.to, &(len as u64).to_ne_bytes(), payload)?;
        let got = read_msg(&self.from, buf)?;
        if got != len {
            return Err(std::io::Error::other(format!(
                "answered {got} bytes for {len}"
            )));
        }
        Ok(())
    }
}

/// The helper: answers each message on stdin with the same on stdout.
pub fn serve(fixture: &InProcess) -> ExitCode {
    // Raw fds 0 and 1 (duplicated): no buffering, no line discipline.
    let dup = |fd: std::os::fd::BorrowedFd| fd.try_clone_to_owned().map(File::from);
    let (Ok(input), Ok(output)) = (
        dup(std::io::stdin().as_fd()),
        dup(std::io::stdout().as_fd()),
    ) else {
        return ExitCode::from(3);
    };
    let mut buf = vec![0u8; 8 + MAX_PAYLOAD];
    while let Ok(len) = read_msg(&input, &mut buf) {
        if len == 0 {
            fixture.nop();
        } else {
            fixture.nop_bytes(buf[8..].as_mut_ptr());
        }
        if write2(&output, &buf[..8 + len], &[]).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Writes `a` then `b` with as few syscalls as possible (one, normally).
fn write2(mut to: &File, mut a: &[u8], mut b: &[u8]) -> std::io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = match to.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let k = n.min(a.len());
        a = &a[k..];
        b = &b[(n - k).min(b.len())..];
    }
    Ok(())
}

/// Reads one message (8-byte length + payload) into `buf`; returns the
/// payload length. Only one message is ever in flight, so reading greedily
/// never takes bytes of the next one.
fn read_msg(mut from: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    let mut need = 8;
    loop {
        while got < need {
            match from.read(&mut buf[got..]) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if need == 8 {
            let len = u64::from_ne_bytes(buf[..8].try_into().expect("8 bytes")) as usize;
            if len > buf.len() - 8 {
                return Err(std::io::Error::other(format!("a {len}-byte message")));
            }
            need = 8 + len;
            if got < need {
                continue;
            }
        }
        if got != need {
            return Err(std::io::Error::other("more than one message in flight"));
        }
        return Ok(need - 8);
    }
}
