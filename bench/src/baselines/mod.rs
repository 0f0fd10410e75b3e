//! The baselines a bridged call is measured beside: the same fixture called
//! in-process ([`InProcess`]), and helper processes that call it once per
//! request over a unix socket or two pipes ([`stream`]), or by a futex
//! handoff on shared memory, plain or spinning first ([`futex`]).
//!
//! Each helper is this binary re-executed with `--baseline-child MODE`
//! ([`serve`]); the host side is a [`Baseline`], killed and reaped when dropped.

mod futex;
mod in_process;
mod stream;

use std::path::Path;
use std::process::ExitCode;

pub use in_process::InProcess;

use crate::children::{child_command, Child};
use crate::plan::MAX_PAYLOAD;

/// How a baseline helper is reached.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Socket,
    Pipe,
    Futex,
    /// The floor: spin for [`futex::SPIN_FLOOR`], then futex, without adapting.
    Spin,
}

impl Mode {
    /// Its mechanism name in row names, columns and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Socket => "socket",
            Mode::Pipe => "pipe",
            Mode::Futex => "futex",
            Mode::Spin => "spin",
        }
    }

    /// What its hot null-call row measures.
    pub fn what(self) -> &'static str {
        match self {
            Mode::Socket => "request/response over a unix socket with a helper process",
            Mode::Pipe => "request/response over two pipes with a helper process",
            Mode::Futex => "futex wait/wake handoff on shared memory with a helper process",
            Mode::Spin => "floor: spin 100 µs, then futex, on shared memory with a helper process (no adaptation)",
        }
    }

    /// What its payload-sweep rows measure.
    pub fn payload_what(self) -> &'static str {
        match self {
            Mode::Socket | Mode::Pipe => {
                "8-byte length + payload sent, read by the helper and sent back"
            }
            Mode::Futex | Mode::Spin => "copied into shared memory, futex handoff, copied back out",
        }
    }

    /// The child's `--baseline-child` argument.
    fn child_mode(self) -> &'static str {
        match self {
            Mode::Socket | Mode::Pipe => "stream",
            Mode::Futex => "futex",
            Mode::Spin => "spin",
        }
    }
}

/// Every baseline helper of a run, started in column order.
pub struct Baselines {
    pub socket: Baseline,
    pub pipe: Baseline,
    pub futex: Baseline,
    pub spin: Baseline,
}

impl Baselines {
    pub fn start(lib: &Path) -> Result<Baselines, String> {
        Ok(Baselines {
            socket: Baseline::start(Mode::Socket, lib)?,
            pipe: Baseline::start(Mode::Pipe, lib)?,
            futex: Baseline::start(Mode::Futex, lib)?,
            spin: Baseline::start(Mode::Spin, lib)?,
        })
    }

    /// All four, for the hot calls.
    pub fn all(&mut self) -> [&mut Baseline; 4] {
        [
            &mut self.socket,
            &mut self.pipe,
            &mut self.futex,
            &mut self.spin,
        ]
    }

    /// The three the payload sweep compares (the spin floor is for hot calls).
    pub fn carriers(&mut self) -> [&mut Baseline; 3] {
        [&mut self.socket, &mut self.pipe, &mut self.futex]
    }
}

/// A baseline helper: a child process that calls ffb_nop (or ffb_nop_bytes
/// on the payload) once per request. Killed and reaped when dropped.
pub struct Baseline {
    mode: Mode,
    /// Declared before `io`, so the child is dead before its channel closes.
    _child: Child,
    io: Io,
    /// Where the response lands (8-byte length + payload).
    buf: Vec<u8>,
}

enum Io {
    Stream(stream::Stream),
    Futex(futex::Handoff),
}

impl Baseline {
    pub fn start(mode: Mode, lib: &Path) -> Result<Baseline, String> {
        let name = mode.name();
        let mut cmd = child_command(lib)?;
        cmd.arg("--baseline-child").arg(mode.child_mode());
        let started = match mode {
            Mode::Socket => stream::socket(&mut cmd).map(|(c, s)| (c, Io::Stream(s))),
            Mode::Pipe => stream::pipe(&mut cmd).map(|(c, s)| (c, Io::Stream(s))),
            Mode::Futex => futex::spawn(&mut cmd, false).map(|(c, h)| (c, Io::Futex(h))),
            Mode::Spin => futex::spawn(&mut cmd, true).map(|(c, h)| (c, Io::Futex(h))),
        };
        let (child, io) = started.map_err(|e| format!("starting the {name} baseline: {e}"))?;
        let mut b = Baseline {
            mode,
            _child: child,
            io,
            buf: vec![0u8; 8 + MAX_PAYLOAD],
        };
        // One round trip proves the child is up (and has loaded the library).
        b.round_trip(&[])
            .map_err(|e| format!("the {name} baseline did not answer: {e}"))?;
        Ok(b)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// One request/response carrying `payload` both ways.
    pub fn round_trip(&mut self, payload: &[u8]) -> std::io::Result<()> {
        match &self.io {
            Io::Stream(s) => s.round_trip(payload, &mut self.buf),
            Io::Futex(h) => h.round_trip(payload, &mut self.buf[8..]),
        }
    }
}

/// The child's side (`--baseline-child MODE`): serves requests until the
/// host closes the stream or kills it. Exits 3 if the fixture or the shared
/// memory is missing, 2 for an unknown mode.
pub fn serve(mode: &str, lib: &Path) -> ExitCode {
    let Ok(fixture) = InProcess::load(lib) else {
        return ExitCode::from(3);
    };
    match mode {
        "stream" => stream::serve(&fixture),
        "futex" => futex::serve(&fixture, false),
        "spin" => futex::serve(&fixture, true),
        _ => ExitCode::from(2),
    }
}
