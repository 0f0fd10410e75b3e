//! CPython extension modules in the sandbox: a [`PyBridge`] runs an embedded
//! interpreter in a locked-down helper and calls `module.function(*args,
//! **kwargs)` there, with canonical values ([`PyValue`]) crossing as
//! MessagePack in the shared arena, and everything else staying in the
//! helper behind a [`PyHandle`].
//!
//! The helper is an ordinary ffb helper (the same fork server, seccomp
//! filter, Landlock, rlimits and supervision as a C library's) that preloads
//! the chosen interpreter's libpython with `RTLD_GLOBAL` and then loads the
//! Python host (`libffb_pyhost.so`, the `pyhost/` crate). The host decides
//! everything the interpreter may reach before the helper exists: the
//! standard library, the allowed modules' distributions and what they
//! require (read from their `*.dist-info`), and the `--module-path` directories, read-only
//! under Landlock. The module allowlist is also checked at import time, so a
//! refused import is an `ImportError` naming the module.
//!
//! ```
//! use ffb_loader::python::{PyBridge, PyValue};
//! use ffb_loader::{BridgeMode, ErrorKind};
//!
//! let mut py = PyBridge::builder()
//! #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
//! #   .pyhost(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/libffb_pyhost.so"))
//!     .bridge_mode(BridgeMode::Enabled)
//!     .build()?;
//! // zlib is a C extension of the standard library, loaded in the helper.
//! let crc = py.call("zlib:crc32", &[PyValue::Bytes(b"hello".to_vec())], &[])?;
//! assert_eq!(crc, PyValue::Int(0x3610a686));
//!
//! // A Python exception is a typed error, in the helper's words.
//! let e = py.call("math:sqrt", &[PyValue::Int(-1)], &[]).unwrap_err();
//! assert!(matches!(&e.kind, ErrorKind::PythonException { type_name, .. } if type_name == "ValueError"));
//!
//! // An object that is not a canonical value stays in the helper.
//! let pattern = py.call("re:compile", &[PyValue::str("a+")], &[])?;
//! let handle = pattern.as_handle().unwrap();
//! assert_eq!(handle.type_name(), "re.Pattern");
//! let found = py.call_method(handle, "findall", &[PyValue::str("caaab")], &[])?;
//! assert_eq!(found, PyValue::List(vec![PyValue::str("aaa")]));
//! # Ok::<(), ffb_loader::Error>(())
//! ```

mod codec;
mod interpreter;
mod packages;
mod value;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ffb_contract::wire::python::{
    BAD_REQUEST, CALL_SIGNATURE, INIT_SIGNATURE, NOT_INITIALIZED, REPLY_TOO_LARGE,
};
use ffb_contract::wire::BUFFER_ALIGN;
use ffb_policy::sandbox::SandboxPolicy;

pub use interpreter::{Interpreter, DEFAULT_PYTHON, PYTHON_VERSION};
pub use value::{PyHandle, PyValue};

use crate::bridge::{Bridge, BridgeBuilder, BridgeMode, CallOutput, FunctionId};
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::Value;
use codec::{HandleMaker, HandleScope, Reply, Request};

/// A Python helper's arena: large, because tables cross in it; a memfd
/// costs only the pages that are touched.
pub const DEFAULT_PYTHON_ARENA: usize = 256 << 20;

/// Keyword arguments: `(name, value)` pairs.
pub type Kwargs<'a> = [(&'a str, PyValue)];

/// Configures a [`PyBridge`]; nothing starts until [`build`](Self::build),
/// which checks everything first.
#[derive(Clone, Debug)]
pub struct PyBridgeBuilder {
    mode: BridgeMode,
    python: Option<PathBuf>,
    allow: Vec<String>,
    module_paths: Vec<PathBuf>,
    policy: Option<SandboxPolicy>,
    timeout: Option<Duration>,
    shim: Option<PathBuf>,
    pyhost: Option<PathBuf>,
    arena_size: usize,
    audit_log: Option<PathBuf>,
    output: Option<PathBuf>,
    preimport: bool,
    learn: bool,
}

impl PyBridge {
    /// Starts configuring a Python bridge.
    pub fn builder() -> PyBridgeBuilder {
        PyBridgeBuilder {
            mode: BridgeMode::Disabled,
            python: None,
            allow: Vec::new(),
            module_paths: Vec::new(),
            policy: None,
            timeout: None,
            shim: None,
            pyhost: None,
            arena_size: DEFAULT_PYTHON_ARENA,
            audit_log: None,
            output: None,
            preimport: true,
            learn: false,
        }
    }
}

impl PyBridgeBuilder {
    /// Bridge mode; the default is [`BridgeMode::Disabled`].
    pub fn bridge_mode(mut self, mode: BridgeMode) -> Self {
        self.mode = mode;
        self
    }

    /// The interpreter to embed: a `python` executable, such as a virtual
    /// environment's `bin/python`. Default: [`DEFAULT_PYTHON`].
    pub fn python(mut self, path: impl Into<PathBuf>) -> Self {
        self.python = Some(path.into());
        self
    }

    /// Allows importing the top-level module `name` (and what its
    /// distribution requires). Standard-library modules need no grant.
    pub fn allow_module(mut self, name: impl Into<String>) -> Self {
        self.allow.push(name.into());
        self
    }

    /// Adds a directory of the user's own modules to `sys.path`, readable
    /// (only) by the helper; every module in it is allowed.
    pub fn module_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.module_paths.push(dir.into());
        self
    }

    /// The sandbox policy; the default is the `python` preset. Whatever it
    /// is, the interpreter's own files are added to what it may read.
    pub fn policy(mut self, policy: SandboxPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Per-call timeout (the policy's by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The `ffb-shim` executable (see [`BridgeBuilder::shim`]).
    pub fn shim(mut self, path: impl Into<PathBuf>) -> Self {
        self.shim = Some(path.into());
        self
    }

    /// The Python host library. Default: `FFB_PYHOST`, else
    /// `libffb_pyhost.so` next to the current executable (or its parent
    /// directory).
    pub fn pyhost(mut self, path: impl Into<PathBuf>) -> Self {
        self.pyhost = Some(path.into());
        self
    }

    /// The arena's size; [`DEFAULT_PYTHON_ARENA`] by default. Half of it
    /// holds one request or reply.
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.arena_size = bytes;
        self
    }

    /// The audit log (see [`BridgeBuilder::audit_log`]).
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_log = Some(path.into());
        self
    }

    /// Where the interpreter's stdout and stderr go (see
    /// [`BridgeBuilder::extension_output`]).
    pub fn extension_output(mut self, path: impl Into<PathBuf>) -> Self {
        self.output = Some(path.into());
        self
    }

    /// Whether each helper imports the allowed modules as it starts (the
    /// default), so that the first call does not pay for them.
    pub fn preimport(mut self, on: bool) -> Self {
        self.preimport = on;
        self
    }

    /// Learn mode (see [`BridgeBuilder::learn`]): for finding what a
    /// module needs from a trusted script, never for production.
    pub fn learn(mut self, on: bool) -> Self {
        self.learn = on;
        self
    }

    /// Checks the interpreter, the modules and the paths, then starts the
    /// helper and its interpreter. Nothing starts if anything is wrong: an
    /// unknown module, a `--python` that is not CPython 3.11, a module path
    /// that is not a directory are `bad_argument`.
    pub fn build(self) -> Result<PyBridge> {
        if self.mode != BridgeMode::Enabled {
            return err(
                ErrorKind::BridgeDisabled,
                "bridge mode is off: pass --bridge-mode, set FFB_BRIDGE_MODE=1, or use BridgeMode::Enabled",
            );
        }
        let interpreter = match &self.python {
            Some(p) => Interpreter::probe(p)?,
            None => Interpreter::system()?,
        };
        let plan = Plan::make(&interpreter, &self.allow, &self.module_paths)?;
        let pyhost = match &self.pyhost {
            Some(p) => p.clone(),
            None => default_pyhost()?,
        };
        let mut policy = match self.policy {
            Some(p) => p,
            None => SandboxPolicy::preset("python")
                .map_err(|e| Error::new(ErrorKind::LoadFailed, e.to_string()))?,
        };
        policy.filesystem.read.extend(plan.read.iter().cloned());
        let mut builder = Bridge::builder(pyhost.to_string_lossy().into_owned())
            .bridge_mode(BridgeMode::Enabled)
            .preload(interpreter.libpython.to_string_lossy().into_owned())
            .policy(policy)
            .arena_size(self.arena_size)
            .declare(INIT_SIGNATURE)
            .declare(CALL_SIGNATURE)
            // Without HOME, os.path.expanduser asks the password database
            // for the helper's uid, which has no entry, and glibc then
            // opens a socket to nscd: a policy violation for nothing.
            .env("HOME", "/nonexistent");
        for dir in &interpreter.site_packages {
            builder = builder.listable(dir.clone());
        }
        if let Some(t) = self.timeout {
            builder = builder.timeout(t);
        }
        if let Some(s) = self.shim {
            builder = builder.shim(s);
        }
        if let Some(a) = self.audit_log {
            builder = builder.audit_log(a);
        }
        if self.learn {
            builder = builder.learn(true);
        }
        if let Some(o) = self.output {
            builder = builder.extension_output(o);
        }
        let init = plan.init_request(&interpreter, self.preimport);
        PyBridge::start(builder, init, self.arena_size)
    }
}

/// What the helper's interpreter gets: its `sys.path`, its allowlist, its
/// readable files.
struct Plan {
    search_path: Vec<PathBuf>,
    allowed: Vec<String>,
    preimport: Vec<String>,
    read: Vec<PathBuf>,
}

impl Plan {
    fn make(interpreter: &Interpreter, allow: &[String], module_paths: &[PathBuf]) -> Result<Plan> {
        for name in allow {
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return err(
                    ErrorKind::BadArgument,
                    format!(
                        "--allow-module {name:?}: not a top-level module name (no dots, no paths)"
                    ),
                );
            }
        }
        let mut module_dirs = Vec::new();
        let mut own_modules = Vec::new();
        for dir in module_paths {
            let canonical = std::fs::canonicalize(dir).map_err(|e| {
                Error::new(
                    ErrorKind::BadArgument,
                    format!(
                        "--module-path {}: {}",
                        dir.display(),
                        ffb_policy::files::os_error(&e)
                    ),
                )
            })?;
            if !canonical.is_dir() {
                return err(
                    ErrorKind::BadArgument,
                    format!("--module-path {}: not a directory", dir.display()),
                );
            }
            own_modules.extend(modules_in(&canonical));
            module_dirs.push(canonical);
        }
        let wanted: Vec<String> = allow
            .iter()
            .filter(|m| !interpreter.stdlib_modules.contains(m) && !own_modules.contains(m))
            .cloned()
            .collect();
        let (grants, unknown) =
            packages::grants(&interpreter.site_packages, &wanted).map_err(|e| {
                Error::new(
                    ErrorKind::BadArgument,
                    format!("reading site-packages: {e}"),
                )
            })?;
        if let Some(name) = unknown.first() {
            let site: Vec<String> = interpreter
                .site_packages
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return err(
                ErrorKind::BadArgument,
                format!(
                    "--allow-module {name}: no such module in the standard library, in {}, or in a --module-path",
                    if site.is_empty() { "the interpreter's site-packages (it has none)".to_string() } else { site.join(", ") }
                ),
            );
        }
        let mut search_path = interpreter.stdlib_path.clone();
        search_path.extend(module_dirs.iter().cloned());
        search_path.extend(interpreter.site_packages.iter().cloned());
        let mut allowed: Vec<String> = grants.modules.into_iter().collect();
        allowed.extend(own_modules);
        allowed.extend(allow.iter().cloned());
        allowed.sort();
        allowed.dedup();
        let mut read = interpreter.stdlib_path.clone();
        read.extend(module_dirs);
        read.extend(grants.read);
        Ok(Plan {
            search_path,
            allowed,
            preimport: allow.to_vec(),
            read,
        })
    }

    fn init_request(&self, interpreter: &Interpreter, preimport: bool) -> Vec<u8> {
        let mut w = Vec::new();
        let strings = |w: &mut Vec<u8>, items: &[String]| {
            let _ = rmp::encode::write_array_len(w, items.len() as u32);
            for s in items {
                let _ = rmp::encode::write_str(w, s);
            }
        };
        let _ = rmp::encode::write_array_len(&mut w, 5);
        let _ = rmp::encode::write_str(&mut w, &interpreter.executable.to_string_lossy());
        let path: Vec<String> = self
            .search_path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        strings(&mut w, &path);
        strings(&mut w, &self.allowed);
        strings(&mut w, if preimport { &self.preimport } else { &[] });
        let stdlib: Vec<String> = interpreter
            .stdlib_path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        strings(&mut w, &stdlib);
        w
    }
}

/// The top-level modules a directory provides.
fn modules_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".py")
                .or_else(|| name.find(".cpython-").map(|i| &name[..i]))
                .or_else(|| name.strip_suffix(".so"))
                .or_else(|| e.path().is_dir().then_some(name.as_str()))?;
            let valid = !stem.is_empty() && stem.chars().all(|c| c.is_alphanumeric() || c == '_');
            valid.then(|| stem.to_string())
        })
        .collect()
}

/// Finds `libffb_pyhost.so`: `FFB_PYHOST`, else next to the current
/// executable or in its parent directory (for test binaries in `deps/`).
fn default_pyhost() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FFB_PYHOST") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| {
        Error::new(
            ErrorKind::LoadFailed,
            format!("cannot find libffb_pyhost.so: {e}"),
        )
    })?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    for candidate in [
        dir.join("libffb_pyhost.so"),
        dir.join("../libffb_pyhost.so"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    err(
        ErrorKind::LoadFailed,
        format!(
            "cannot find libffb_pyhost.so next to {} (build the ffb-pyhost crate, or set FFB_PYHOST to its path)",
            exe.display()
        ),
    )
}

/// Each bridge's identity, for its handles.
static NEXT_BRIDGE: AtomicU64 = AtomicU64::new(1);

/// Python code in a sandboxed helper. Calls run one at a time, in order,
/// each a full fence; a helper that crashes, hangs or breaks its policy is
/// replaced (with a fresh interpreter) on the next call, and its handles are
/// stale. See the [module documentation](self) for an example.
pub struct PyBridge {
    bridge: Bridge,
    init: Vec<u8>,
    init_fn: FunctionId,
    call_fn: FunctionId,
    /// The helper generation whose interpreter is started.
    ready: u64,
    id: u64,
    releases: Arc<Mutex<Vec<u64>>>,
    /// Reused for every request, reply and release list: no allocation per
    /// call once they have grown.
    request: Vec<u8>,
    reply: Vec<u8>,
    releasing: Vec<u64>,
    out: CallOutput,
    /// The shared buffer's length: the largest request or reply.
    shared_len: usize,
}

impl PyBridge {
    fn start(builder: BridgeBuilder, init: Vec<u8>, arena_size: usize) -> Result<PyBridge> {
        let bridge = builder.load()?;
        let init_fn = bridge.function("ffb_py_init").expect("declared");
        let call_fn = bridge.function("ffb_py_call").expect("declared");
        let shared_len = (arena_size.saturating_sub(64 << 10) / 2) & !(BUFFER_ALIGN - 1);
        let mut py = PyBridge {
            bridge,
            init,
            init_fn,
            call_fn,
            ready: 0,
            id: NEXT_BRIDGE.fetch_add(1, Ordering::Relaxed),
            releases: Arc::new(Mutex::new(Vec::new())),
            request: Vec::new(),
            reply: Vec::new(),
            releasing: Vec::new(),
            out: CallOutput::default(),
            shared_len,
        };
        py.ensure_ready()?;
        Ok(py)
    }

    /// Calls `target` (`"module:function"`) with `args` and `kwargs`.
    pub fn call(&mut self, target: &str, args: &[PyValue], kwargs: &Kwargs<'_>) -> Result<PyValue> {
        let (module, function) = split_target(target)?;
        self.exchange(&Request::Call {
            module,
            function,
            args,
            kwargs,
        })
    }

    /// Calls `method` on the object behind `handle`.
    pub fn call_method(
        &mut self,
        handle: &PyHandle,
        method: &str,
        args: &[PyValue],
        kwargs: &Kwargs<'_>,
    ) -> Result<PyValue> {
        self.exchange(&Request::CallMethod {
            target: handle,
            method,
            args,
            kwargs,
        })
    }

    /// Reads the attribute `name` of the object behind `handle`.
    pub fn getattr(&mut self, handle: &PyHandle, name: &str) -> Result<PyValue> {
        self.exchange(&Request::GetAttr {
            target: handle,
            name,
        })
    }

    /// Releases the object behind `handle` (and every clone of the handle)
    /// now, rather than with the next call. Using it afterwards is
    /// `stale_handle`.
    pub fn release(&mut self, handle: &PyHandle) -> Result<()> {
        if handle.bridge() != self.id || handle.generation() != self.bridge.generation() {
            handle.release();
            return Ok(());
        }
        handle.release();
        self.exchange(&Request::Release).map(drop)
    }

    /// What learn mode recorded (see [`Bridge::learned`]).
    pub fn learned(&self) -> Option<crate::learn::Learned> {
        self.bridge.learned()
    }

    /// The helper's pid, while it runs.
    pub fn helper_pid(&self) -> Option<i32> {
        self.bridge.helper_pid()
    }

    /// How many times the helper was replaced.
    pub fn respawns(&self) -> u64 {
        self.bridge.respawns()
    }

    /// The underlying bridge's generation: it changes with every helper.
    pub fn generation(&self) -> u64 {
        self.bridge.generation()
    }

    /// Changes the per-call timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.bridge.set_timeout(timeout);
    }

    /// Starts the interpreter in the current helper (spawning one if
    /// needed), unless it already runs.
    fn ensure_ready(&mut self) -> Result<()> {
        // Spawns a helper if there is none.
        self.bridge.shared_buffer(self.shared_len)?;
        let generation = self.bridge.generation();
        if generation == self.ready && generation != 0 {
            return Ok(());
        }
        // Tokens of the old helper died with it.
        if let Ok(mut queue) = self.releases.lock() {
            queue.clear();
        }
        let init = std::mem::take(&mut self.init);
        let result = self.round_trip(self.init_fn, &init);
        self.init = init;
        match result? {
            Reply::Value(_) => {
                self.ready = generation;
                Ok(())
            }
            Reply::Exception {
                type_name,
                message,
                traceback,
            } => {
                // An interpreter that failed to start is not used again.
                let e = exception(
                    type_name,
                    &format!("starting the interpreter: {message}"),
                    traceback,
                );
                self.bridge.respawn().ok();
                Err(e)
            }
        }
    }

    fn exchange(&mut self, request: &Request<'_>) -> Result<PyValue> {
        self.ensure_ready()?;
        let scope = HandleScope {
            bridge: self.id,
            generation: self.bridge.generation(),
        };
        self.releasing.clear();
        if let Ok(mut queue) = self.releases.lock() {
            std::mem::swap(&mut *queue, &mut self.releasing);
        }
        let mut request_bytes = std::mem::take(&mut self.request);
        let encoded = codec::encode_request(&mut request_bytes, &self.releasing, request, &scope);
        if let Err(e) = encoded {
            self.request = request_bytes;
            self.requeue_releases();
            return Err(e);
        }
        let result = self.round_trip(self.call_fn, &request_bytes);
        self.request = request_bytes;
        match result? {
            Reply::Value(v) => Ok(v),
            Reply::Exception {
                type_name,
                message,
                traceback,
            } => Err(exception(type_name, &message, traceback)),
        }
    }

    /// Puts back releases that were not sent.
    fn requeue_releases(&mut self) {
        if let Ok(mut queue) = self.releases.lock() {
            queue.append(&mut self.releasing);
        }
    }

    /// Writes `request` into the shared buffer, calls `f` on it, and reads
    /// the reply once, whole, before decoding it.
    fn round_trip(&mut self, f: FunctionId, request: &[u8]) -> Result<Reply> {
        if request.len() > self.shared_len {
            self.requeue_releases();
            return err(
                ErrorKind::BadArgument,
                format!(
                    "the call's arguments take {} bytes; the shared buffer holds {} (raise the arena size)",
                    request.len(),
                    self.shared_len
                ),
            );
        }
        self.bridge.shared_buffer(self.shared_len)?.write(request);
        let len = request.len() as u64;
        let args = [
            Value::Shared(request.len()),
            Value::U64(len),
            Value::U64(self.shared_len as u64),
        ];
        self.bridge.call_into(f, &args, &mut self.out)?;
        let n = match self.out.ret {
            Value::I64(n) => n,
            _ => return Err(self.protocol("the Python host returned no length".into())),
        };
        if n < 0 {
            return Err(match n {
                REPLY_TOO_LARGE => Error::new(
                    ErrorKind::ResourceLimit,
                    format!(
                        "the result does not fit in the {}-byte shared buffer (raise the arena size)",
                        self.shared_len
                    ),
                ),
                BAD_REQUEST | NOT_INITIALIZED => {
                    self.protocol(format!("the Python host refused a well-formed request (code {n})"))
                }
                other => self.protocol(format!("the Python host returned the unknown code {other}")),
            });
        }
        if n as u64 > self.shared_len as u64 {
            return Err(self.protocol(format!(
                "the Python host claims a {n}-byte reply in a {}-byte buffer",
                self.shared_len
            )));
        }
        self.reply.resize(n as usize, 0);
        self.bridge
            .shared_buffer(self.shared_len)?
            .read(&mut self.reply);
        let maker = HandleMaker {
            bridge: self.id,
            generation: self.bridge.generation(),
            releases: Arc::clone(&self.releases),
        };
        match codec::decode_reply(&self.reply, &maker) {
            Ok(reply) => Ok(reply),
            Err(e) => Err(self.bridge.discard_helper(e)),
        }
    }

    /// A `protocol` failure: the helper is killed.
    fn protocol(&mut self, message: String) -> Error {
        self.bridge
            .discard_helper(Error::new(ErrorKind::Protocol, message))
    }
}

/// Checks that `target` is `MODULE:FUNCTION`, before anything starts.
pub fn check_target(target: &str) -> Result<()> {
    split_target(target).map(drop)
}

/// `module:function`, checked.
fn split_target(target: &str) -> Result<(&str, &str)> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    };
    match target.split_once(':') {
        Some((m, f)) if ok(m) && ok(f) && !f.contains('.') => Ok((m, f)),
        _ => err(
            ErrorKind::BadArgument,
            format!("{target:?} is not MODULE:FUNCTION (say zlib:crc32 or os.path:join)"),
        ),
    }
}

/// The helper's exception as an error: every text is its words, escaped.
fn exception(type_name: String, message: &str, traceback: String) -> Error {
    Error::new(
        ErrorKind::PythonException {
            type_name: escape_controls(&type_name),
            traceback,
        },
        format!("the helper reported: {}", escape_controls(message)),
    )
}

/// `text` with every control character escaped (`\n`, `\u{1b}`), so that
/// nothing the helper says can move a terminal's cursor or pass for a
/// second line of ffb's own.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
