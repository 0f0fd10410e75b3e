//! Running the `ffb` command line as a real process, shared by the
//! command-line tests (`cli` and `policy_cli` in the `integration` binary).
//!
//! Every run gets `FFB_SHIM` (the freshly built helper), no inherited
//! `FFB_BRIDGE_MODE`, and `RUST_BACKTRACE=1`, so that a panic anywhere shows
//! up as "panicked"/"backtrace" text, which [`run`] rejects for
//! every command. Every child has a watchdog ([`DEADLINE`]):
//! a hang fails the test instead of blocking the suite.
//!
//! Where a command must not spawn anything (bridge mode off, bad usage, a
//! bad policy), the run points `FFB_SHIM` at a [`Sentinel`]
//! script that records any attempt to start it.
//!
//! The checks are written once here so that both suites hold ffb to the same
//! standard: "one line on stderr" or "one JSON object on stdout" means the
//! same thing in every test. Methods that take a `case` name it in the
//! failure message, for tests that loop over a table of cases.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::{ffb_bin, shim_bin};

/// How long any single ffb process (or session response) may take before
/// the test gives up on it. Generous: it is a hang detector, not a
/// benchmark.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The outcome of one finished `ffb` process.
#[derive(Debug)]
pub struct Run {
    /// The exit status ([`run`] fails the test on death by a signal, so
    /// there always is one).
    pub code: i32,
    /// Everything on stdout (lossily decoded as UTF-8).
    pub stdout: String,
    /// Everything on stderr (lossily decoded as UTF-8).
    pub stderr: String,
}

impl Run {
    /// Asserts the exit status, showing everything on failure.
    pub fn expect_code(&self, code: i32) -> &Self {
        self.expect_code_for(code, "")
    }

    /// Like [`Run::expect_code`], naming the case in the failure message.
    pub fn expect_code_for(&self, code: i32, case: &str) -> &Self {
        assert_eq!(self.code, code, "{case}: unexpected exit status\n{self:#?}");
        self
    }

    /// Asserts that stdout is exactly one line holding exactly one JSON
    /// object (see [`one_line`] and [`single_json_object`]), and returns
    /// it. `--json` output and session replies are JSON lines, so a
    /// pretty-printed or repeated object is a bug too.
    pub fn json(&self) -> Json {
        self.json_for("")
    }

    /// Like [`Run::json`], naming the case in the failure message.
    pub fn json_for(&self, case: &str) -> Json {
        let line =
            one_line(&self.stdout).unwrap_or_else(|e| panic!("{case}: stdout: {e}\n{self:#?}"));
        single_json_object(line).unwrap_or_else(|e| {
            panic!("{case}: stdout is not exactly one JSON object: {e}\n{self:#?}")
        })
    }

    /// stdout as JSON lines (a session's responses): every line must be
    /// one JSON value.
    pub fn json_lines(&self) -> Vec<Json> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{self:#?}"))
            })
            .collect()
    }

    /// Asserts that stderr is exactly one non-blank line and returns it.
    pub fn one_stderr_line(&self) -> &str {
        self.one_stderr_line_for("")
    }

    /// Like [`Run::one_stderr_line`], naming the case in the failure
    /// message.
    pub fn one_stderr_line_for(&self, case: &str) -> &str {
        one_line(&self.stderr).unwrap_or_else(|e| panic!("{case}: stderr: {e}\n{self:#?}"))
    }

    /// Asserts that stdout is exactly one non-blank line and returns it.
    pub fn one_stdout_line(&self) -> &str {
        one_line(&self.stdout).unwrap_or_else(|e| panic!("stdout: {e}\n{self:#?}"))
    }

    /// Asserts bad input as ffb reports it without `--json`: exit 2,
    /// nothing on stdout, exactly one line on stderr (returned), so that
    /// a script sees one clear reason and no half-done output.
    pub fn expect_usage_error(&self) -> &str {
        self.expect_usage_error_for("")
    }

    /// Like [`Run::expect_usage_error`], naming the case in the failure
    /// message.
    pub fn expect_usage_error_for(&self, case: &str) -> &str {
        self.expect_code_for(2, case);
        assert_eq!(
            self.stdout, "",
            "{case}: stdout must be empty on a usage error\n{self:#?}"
        );
        self.one_stderr_line_for(case)
    }
}

/// `text` must be exactly one non-blank line (with or without a final
/// `\n`); returns it without the `\n`.
pub fn one_line(text: &str) -> Result<&str, String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.trim().is_empty() {
        return Err("expected exactly one line, got nothing".into());
    }
    if body.contains('\n') {
        return Err(format!(
            "expected exactly one line, got {}",
            body.lines().count()
        ));
    }
    Ok(body)
}

/// `text` must hold exactly one JSON value, an object, and nothing else
/// but whitespace.
pub fn single_json_object(text: &str) -> Result<Json, String> {
    let values = serde_json::Deserializer::from_str(text)
        .into_iter::<Json>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid JSON ({e})"))?;
    match values.as_slice() {
        [v @ Json::Object(_)] => Ok(v.clone()),
        [other] => Err(format!("not an object: {other}")),
        vs => Err(format!("{} JSON values", vs.len())),
    }
}

/// A `Command` for the ffb binary with the test environment.
pub fn ffb() -> Command {
    let mut cmd = Command::new(ffb_bin());
    cmd.env("FFB_SHIM", shim_bin())
        .env_remove("FFB_BRIDGE_MODE")
        .env("RUST_BACKTRACE", "1");
    cmd
}

/// Runs `cmd` to completion with `stdin` (or /dev/null), under the
/// watchdog. Fails the test on a hang, on death by signal, and on any
/// panic or backtrace text on stdout or stderr.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let bytes = bytes.to_vec();
        // A broken pipe just means ffb stopped reading early.
        thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let out = read_all(child.stdout.take().expect("piped stdout"));
    let err = read_all(child.stderr.take().expect("piped stderr"));
    let status = wait_with_deadline(&mut child, &format!("{cmd:?}"));
    if let Some(w) = writer {
        w.join().expect("stdin writer");
    }
    let r = Run {
        code: status
            .code()
            .unwrap_or_else(|| panic!("{cmd:?} was killed by a signal: {status:?}")),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    for forbidden in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(
            !r.stderr.contains(forbidden) && !r.stdout.contains(forbidden),
            "{forbidden:?} in the output of {cmd:?}\n{r:#?}"
        );
    }
    r
}

/// `ffb ARGS...`, with stdin from /dev/null.
pub fn ffb_run(args: &[&str]) -> Run {
    let mut cmd = ffb();
    cmd.args(args);
    run(cmd, None)
}

/// `call --bridge-mode --lib LIB OPTIONS... --sig SIG ARGS...`: the arguments
/// of one `ffb call`, in the order the tests write them.
pub fn call_args<'a>(
    lib: &'a str,
    options: &[&'a str],
    sig: &'a str,
    args: &[&'a str],
) -> Vec<&'a str> {
    let mut all = vec!["call", "--bridge-mode", "--lib", lib];
    all.extend_from_slice(options);
    all.extend_from_slice(&["--sig", sig]);
    all.extend_from_slice(args);
    all
}

/// Reads `pipe` to its end on a thread of its own, so that a child that
/// fills one pipe while we read the other cannot deadlock.
pub fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).expect("reading a pipe");
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` (described as `what`) for at most [`DEADLINE`];
/// kills it and fails the test after that.
pub fn wait_with_deadline(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// `p` as a command-line argument.
///
/// # Panics
/// If it is not UTF-8 (the tests only make UTF-8 paths).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// A private temporary directory, removed on drop.
///
/// Its name holds the process id and a counter, so tests running in
/// parallel (in this process or another test binary) never share one.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> Scratch {
        let n = SCRATCH.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ffb-test-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating a scratch dir");
        Scratch(dir)
    }

    /// The path of `name` in the directory (which need not exist).
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` to `name` in the directory; returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, contents).expect("writing a scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A fake `ffb-shim` that records being started. ffb starts the shim (as
/// its fork server) before any helper exists, so "the sentinel never ran"
/// means "nothing was spawned".
pub struct Sentinel {
    dir: Scratch,
}

impl Default for Sentinel {
    fn default() -> Self {
        Self::new()
    }
}

impl Sentinel {
    /// A sentinel script in a scratch directory of its own.
    pub fn new() -> Sentinel {
        let dir = Scratch::new("sentinel");
        let script = dir.file(
            "ffb-shim",
            "#!/bin/sh\n: > \"$(dirname \"$0\")/spawned\"\nexit 1\n",
        );
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
        Sentinel { dir }
    }

    /// Runs `ffb ARGS...` with this sentinel as the shim, the extra
    /// environment `env`, and stdin from `stdin` (or /dev/null).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        let mut cmd = ffb();
        cmd.env("FFB_SHIM", self.dir.path("ffb-shim"))
            .envs(env.iter().copied())
            .args(args);
        run(cmd, stdin)
    }

    /// Asserts that no run so far started the sentinel.
    pub fn assert_not_spawned(&self, what: &str) {
        assert!(
            !self.spawned(),
            "{what}: ffb started the shim although it must spawn nothing"
        );
    }

    /// Like [`Sentinel::assert_not_spawned`], showing the run.
    pub fn assert_nothing_spawned(&self, what: &str, r: &Run) {
        assert!(
            !self.spawned(),
            "{what}: ffb started the shim although it must spawn nothing\n{r:#?}"
        );
    }

    fn spawned(&self) -> bool {
        self.dir.path("spawned").exists()
    }
}

/// `ffb ARGS...` (stdin from `stdin`) with a fresh [`Sentinel`] as the
/// shim, for input that ffb must refuse before it spawns anything:
/// asserts exit 2 and that the sentinel never ran, and returns the run
/// for the caller to check how the refusal reads (one stderr line, or one
/// JSON object with `--json`).
pub fn refused(case: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let sentinel = Sentinel::new();
    let r = sentinel.run(args, &[], stdin);
    sentinel.assert_nothing_spawned(case, &r);
    r.expect_code_for(2, case);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_checks_are_strict() {
        assert_eq!(one_line("a b\n"), Ok("a b"));
        assert_eq!(one_line("a b"), Ok("a b"));
        for bad in ["", "\n", "  \n", "a\nb\n", "a\n\n"] {
            assert!(one_line(bad).is_err(), "{bad:?}");
        }
        assert!(single_json_object(" {\"a\": 1}\n").is_ok());
        for bad in ["", "1", "[]", "{} {}", "{", "{}x"] {
            assert!(single_json_object(bad).is_err(), "{bad:?}");
        }
    }
}
