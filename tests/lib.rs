//! Support code for ffb's integration tests.
//!
//! * [`fixture_lib`] / [`hostile_lib`]: the C fixtures from `fixtures/`,
//!   compiled into real shared libraries by `build.rs`.
//! * [`ffb_bin`] / [`shim_bin`]: the workspace binaries under test (built
//!   by `cargo build --workspace --bins`, which `scripts/test.sh` runs
//!   first).
//! * [`open_fds`], [`child_processes`], [`memfd_mappings`]: `/proc`
//!   observers used to assert that the host process leaks no fds,
//!   helpers, zombies or arena mappings.
//! * [`in_process`]: load a fixture directly into the test process, for
//!   differential tests that compare a bridged call against a direct one.
//! * [`cli`]: run the `ffb` binary as a real process under a watchdog and
//!   check its output, for the command-line tests (`tests/cli.rs`,
//!   `tests/policy_cli.rs`).

use std::fs;
use std::path::{Path, PathBuf};

/// Path of `libffb_fixture.so`, the well-behaved ABI-matrix fixture
/// (`fixtures/ffb_fixture.c`).
pub fn fixture_lib() -> &'static Path {
    Path::new(env!("FFB_FIXTURE_LIB"))
}

/// Path of `libffb_hostile.so`, the hostile corpus
/// (`fixtures/ffb_hostile.c`).
pub fn hostile_lib() -> &'static Path {
    Path::new(env!("FFB_HOSTILE_LIB"))
}

/// The cargo target profile directory (`target/<profile>`, or
/// `target/<triple>/<profile>` when cross-compiling) that the running test
/// binary lives in.
///
/// Test binaries run from `target/<profile>/deps/<bin>`; examples from
/// `target/<profile>/examples/<bin>`. Anything else is assumed to sit
/// directly in the profile directory.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("ffb-tests: cannot determine current_exe()");
    let mut dir = exe
        .parent()
        .unwrap_or_else(|| panic!("ffb-tests: current_exe {} has no parent", exe.display()))
        .to_path_buf();
    if matches!(
        dir.file_name().and_then(|n| n.to_str()),
        Some("deps") | Some("examples")
    ) {
        dir.pop();
    }
    dir
}

fn workspace_bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.is_file() {
        panic!(
            "{name} not found at {}: run `cargo build --workspace --bins` (scripts/test.sh does this) before the tests",
            path.display()
        );
    }
    path
}

/// `target_dir()/ffb`, the ffb command-line binary.
///
/// # Panics
/// If it has not been built.
pub fn ffb_bin() -> PathBuf {
    workspace_bin("ffb")
}

/// `target_dir()/ffb-shim`, the sandboxed helper binary.
///
/// # Panics
/// If it has not been built, with a message saying how to build it.
pub fn shim_bin() -> PathBuf {
    workspace_bin("ffb-shim")
}

/// The open file descriptors of this process with their `readlink`
/// targets (e.g. `socket:[1234]`, `/memfd:ffb-arena (deleted)`), sorted by
/// fd.
///
/// The directory fd used to list `/proc/self/fd` is closed before the
/// links are read, so it does not appear in the result.
pub fn open_fds() -> Vec<(i32, String)> {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .expect("ffb-tests: cannot read /proc/self/fd")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    let mut out: Vec<(i32, String)> = fds
        .into_iter()
        .filter_map(|fd| {
            fs::read_link(format!("/proc/self/fd/{fd}"))
                .ok()
                .map(|t| (fd, t.to_string_lossy().into_owned()))
        })
        .collect();
    out.sort();
    out
}

/// Every process whose parent is this process: `(pid, state, comm)`, where
/// `state` is the one-letter state from `/proc/PID/stat` (`R`, `S`, `Z`
/// for a zombie, ...). Sorted by pid.
///
/// Only thread-group leaders are listed (threads of this process are not
/// children).
pub fn child_processes() -> Vec<(i32, char, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // The process may exit between listing and reading: skip it.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((ppid, state, comm)) = parse_stat(&stat) {
            if ppid == me {
                out.push((pid, state, comm));
            }
        }
    }
    out.sort();
    out
}

/// Parses `pid (comm) state ppid ...` into `(ppid, state, comm)`. `comm`
/// may itself contain spaces and parentheses, so the fields are taken
/// after the *last* `)`.
fn parse_stat(stat: &str) -> Option<(i32, char, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, state, comm))
}

/// Number of lines in `/proc/self/maps` that contain `memfd:`, i.e. the
/// memfd-backed mappings (shared arenas) this process currently holds.
pub fn memfd_mappings() -> usize {
    fs::read_to_string("/proc/self/maps")
        .expect("ffb-tests: cannot read /proc/self/maps")
        .lines()
        .filter(|l| l.contains("memfd:"))
        .count()
}

/// Direct, in-process loading of a fixture, for differential tests: call
/// the same function through ffb and directly, and compare.
///
/// Only use this with [`fixture_lib`](crate::fixture_lib()) (or functions
/// of the hostile corpus that are known to be harmless): whatever the
/// library does happens to the test process itself.
pub mod in_process {
    use std::path::Path;

    /// A shared library `dlopen`ed into the test process.
    pub struct InProcess {
        lib: libloading::Library,
    }

    impl InProcess {
        /// `dlopen`s `path`.
        ///
        /// # Panics
        /// If the library cannot be loaded.
        pub fn open(path: impl AsRef<Path>) -> Self {
            let path = path.as_ref();
            // SAFETY: the fixtures have no initialisers with side effects.
            let lib = unsafe { libloading::Library::new(path) }
                .unwrap_or_else(|e| panic!("ffb-tests: cannot dlopen {}: {e}", path.display()));
            InProcess { lib }
        }

        /// Looks up `name`, e.g.
        /// `lib.sym::<unsafe extern "C" fn(i64, i64) -> i64>("ffb_add_i64")`.
        ///
        /// # Safety
        /// `T` must match the C signature of the symbol exactly; calling
        /// through a mismatched type is undefined behaviour.
        ///
        /// # Panics
        /// If the symbol is missing.
        pub unsafe fn sym<T>(&self, name: &str) -> libloading::Symbol<'_, T> {
            // SAFETY: the caller promises `T` matches the symbol's C type,
            // and the symbol borrows `self.lib`, which outlives it.
            unsafe { self.lib.get(name.as_bytes()) }
                .unwrap_or_else(|e| panic!("ffb-tests: symbol {name} not found: {e}"))
        }
    }
}

/// Running the `ffb` command line as a real process, shared by the
/// command-line tests (`tests/cli.rs`, `tests/policy_cli.rs`).
///
/// Every run gets `FFB_SHIM` (the freshly built helper), no inherited
/// `FFB_BRIDGE_MODE`, and `RUST_BACKTRACE=1`, so that a panic anywhere shows
/// up as "panicked"/"backtrace" text, which [`run`](cli::run) rejects for
/// every command. Every child has a watchdog ([`DEADLINE`](cli::DEADLINE)):
/// a hang fails the test instead of blocking the suite.
///
/// Where a command must not spawn anything (bridge mode off, bad usage, a
/// bad policy), the run points `FFB_SHIM` at a [`Sentinel`](cli::Sentinel)
/// script that records any attempt to start it.
///
/// The checks are written once here so that both suites hold ffb to the same
/// standard: "one line on stderr" or "one JSON object on stdout" means the
/// same thing in every test. Methods that take a `case` name it in the
/// failure message, for tests that loop over a table of cases.
pub mod cli {
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
            let dir =
                std::env::temp_dir().join(format!("ffb-test-{}-{tag}-{n}", std::process::id()));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_handles_odd_comm() {
        let s = "123 (a) b) (c) S 456 123 123 0 -1 4194560";
        assert_eq!(parse_stat(s), Some((456, 'S', "a) b) (c".to_string())));
    }

    #[test]
    fn fixtures_exist_and_load() {
        assert!(fixture_lib().is_file(), "{}", fixture_lib().display());
        assert!(hostile_lib().is_file(), "{}", hostile_lib().display());
        let lib = in_process::InProcess::open(fixture_lib());
        let add = unsafe { lib.sym::<unsafe extern "C" fn(i64, i64) -> i64>("ffb_add_i64") };
        assert_eq!(unsafe { add(i64::MAX, 1) }, i64::MIN);
    }

    #[test]
    fn cli_output_checks_are_strict() {
        use cli::{one_line, single_json_object};
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

    #[test]
    fn proc_observers_work() {
        assert!(open_fds().iter().any(|(fd, _)| *fd <= 2));
        let _ = child_processes();
        let _ = memfd_mappings();
    }
}
