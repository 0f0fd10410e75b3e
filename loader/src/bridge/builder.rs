//! Configuring a bridge: [`BridgeBuilder`], [`BridgeMode`] and the defaults,
//! and finding the `ffb-shim` helper binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ffb_abi::signature::Signature;
use ffb_contract::wire::MAX_WIRE_ARGS;
use ffb_policy::sandbox::SandboxPolicy;

use super::handles::{FnHandles, HandleTable, Kinds};
use super::{next_generation, retained_bit, Bridge};
use crate::audit::AuditLog;
use crate::error::{err, Error, ErrorKind, Result};
use crate::helper::{ExtensionOutput, HelperSpec};

/// Whether bridge mode is on. Nothing is loaded or spawned unless it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BridgeMode {
    /// The default: every load fails with `bridge_disabled`.
    #[default]
    Disabled,
    /// Legacy native code may be loaded, in a sandboxed helper.
    Enabled,
}

impl BridgeMode {
    /// `Enabled` when `FFB_BRIDGE_MODE=1` is set in the environment.
    pub fn from_env() -> BridgeMode {
        match std::env::var("FFB_BRIDGE_MODE").as_deref() {
            Ok("1") => BridgeMode::Enabled,
            _ => BridgeMode::Disabled,
        }
    }
}

/// Default size of a helper's shared arena.
pub const DEFAULT_ARENA: usize = 64 << 20;
/// Default bound on a returned `cstr`.
pub const DEFAULT_MAX_CSTR: usize = 1 << 20;
/// Default bound on the bytes retained buffers may pin in one helper's arena
/// (at most half the arena's data area is ever used): 4 MiB.
pub const DEFAULT_PINNED_LIMIT: usize = 4 << 20;
/// Default cap on the extension's output file, for the whole bridge: 16 MiB.
pub(crate) const DEFAULT_OUTPUT_LIMIT: u64 = 16 << 20;

/// Configures and loads a [`Bridge`].
///
/// ```
/// use ffb_loader::{Bridge, BridgeMode, Value};
/// let mut z = Bridge::builder("libz.so.1")
/// #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
///     .bridge_mode(BridgeMode::Enabled)
///     .declare("crc32(u64, bytes, u32) -> u64")
///     .load()?;
/// let crc32 = z.function("crc32").unwrap();
/// let out = z.call(crc32, &[Value::U64(0), Value::bytes("hello"), Value::U32(5)])?;
/// assert_eq!(out.ret, Value::U64(0x3610a686));
/// # Ok::<(), ffb_loader::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BridgeBuilder {
    library: String,
    preload: Vec<String>,
    listable: Vec<PathBuf>,
    mode: BridgeMode,
    policy: SandboxPolicy,
    declarations: Vec<String>,
    timeout: Option<Duration>,
    arena_size: usize,
    helper_spin: Duration,
    host_spin: Duration,
    env: Vec<(String, String)>,
    output: Option<PathBuf>,
    output_limit: u64,
    shim: Option<PathBuf>,
    max_cstr: usize,
    audit_log: Option<PathBuf>,
    learn: bool,
    /// Handle kinds: name, close function, parent kind.
    handle_kinds: Vec<(String, Option<String>, Option<String>)>,
    /// Retained arguments: function name, argument index.
    retained: Vec<(String, usize)>,
    pinned_limit: usize,
    /// Identifies this builder's declaration table in its [`FunctionId`]s.
    ///
    /// [`FunctionId`]: super::FunctionId
    table: u64,
}

impl Bridge {
    /// Starts configuring a bridge to `library` (a path or a soname).
    pub fn builder(library: impl Into<String>) -> BridgeBuilder {
        BridgeBuilder {
            library: library.into(),
            preload: Vec::new(),
            listable: Vec::new(),
            mode: BridgeMode::Disabled,
            policy: SandboxPolicy::pure(),
            declarations: Vec::new(),
            timeout: None,
            arena_size: DEFAULT_ARENA,
            helper_spin: Duration::from_micros(100),
            host_spin: Duration::from_micros(100),
            env: Vec::new(),
            output: None,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            shim: None,
            max_cstr: DEFAULT_MAX_CSTR,
            audit_log: None,
            learn: false,
            handle_kinds: Vec::new(),
            retained: Vec::new(),
            pinned_limit: DEFAULT_PINNED_LIMIT,
            table: next_generation(),
        }
    }
}

/// Writes the builder's plain setters: each stores its argument in one field
/// and hands the builder back, so that configuration reads as one chain.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty) => $field:ident = $value:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $arg: $ty) -> Self {
                self.$field = $value;
                self
            }
        )*
    };
}

impl BridgeBuilder {
    setters! {
        /// Sets bridge mode. The default is [`BridgeMode::Disabled`].
        bridge_mode(mode: BridgeMode) => mode = mode;
        /// The sandbox policy. The default is the `pure` preset.
        policy(policy: SandboxPolicy) => policy = policy;
        /// Per-call timeout. The default is the policy's (30 s).
        timeout(timeout: Duration) => timeout = Some(timeout);
        /// Size of the shared arena; it bounds the total size of one call's buffers.
        arena_size(bytes: usize) => arena_size = bytes;
        /// How long the helper spins for the next request before it sleeps.
        helper_spin(spin: Duration) => helper_spin = spin;
        /// How long the host spins for a response before it sleeps.
        host_spin(spin: Duration) => host_spin = spin;
        /// Appends the extension's stdout and stderr to this file instead of
        /// /dev/null, up to [`extension_output_limit`](Self::extension_output_limit).
        extension_output(path: impl Into<PathBuf>) => output = Some(path.into());
        /// Caps what the extension may write to its output file, in bytes, for
        /// the whole bridge: respawned helpers append to the same file and share
        /// the cap. The host copies the output through a pipe, so the extension
        /// cannot get around it; past the cap it writes one line,
        /// `[ffb: extension output cut at N bytes]`, and discards the rest. The
        /// default is 16 MiB; 0 means no cap (the helper then writes to the
        /// file itself).
        extension_output_limit(bytes: u64) => output_limit = bytes;
        /// The `ffb-shim` executable. Default: `FFB_SHIM`, else next to the current executable.
        shim(path: impl Into<PathBuf>) => shim = Some(path.into());
        /// Appends one JSON line per violation, crash, timeout, resource-limit hit
        /// and respawn to this file, from the host's view of each event.
        audit_log(path: impl Into<PathBuf>) => audit_log = Some(path.into());
        /// Learn mode: instead of enforcing the policy beyond its floor, let every
        /// syscall through and record it (see [`Bridge::learned`]). For building a
        /// policy from a trusted script, never for production.
        learn(on: bool) => learn = on;
        /// Bound on a returned `cstr`, in bytes.
        max_cstr(bytes: usize) => max_cstr = bytes;
        /// Bound on the bytes [retained](Self::retain) buffers may pin in one
        /// helper's arena at once; past it, a call that would pin more fails
        /// with `resource_limit`. At most half the arena's data area is used,
        /// whatever this says. The default is [`DEFAULT_PINNED_LIMIT`].
        pinned_limit(bytes: usize) => pinned_limit = bytes;
    }

    /// Declares a kind of handle, as named in `handle<kind>` in signatures:
    /// the function that closes it (`closed_by`), and the kind it belongs to
    /// (`parent`).
    ///
    /// * Calling `closed_by` with a token closes the token: later calls with
    ///   it fail with `stale_handle` before anything is sent, so the library
    ///   never sees the freed pointer. The token closes once the call is
    ///   sent, whatever the function returns. The closed argument is the
    ///   function's `handle` argument of this kind, else its first untyped
    ///   `handle` argument.
    /// * A token of this kind made by a call that took a token of the
    ///   `parent` kind (`sqlite3_prepare_v2(db, ..., *stmt)`) belongs to that
    ///   token, and closing the parent closes it too (statements die with
    ///   their connection).
    ///
    /// ```
    /// use ffb_loader::{Bridge, BridgeMode, ErrorKind, Value};
    ///
    /// let mut c = Bridge::builder("libc.so.6")
    /// #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
    ///     .bridge_mode(BridgeMode::Enabled)
    ///     .declare("malloc(usize) -> handle<buf>")
    ///     .declare("free(handle<buf>)")
    ///     .handle_kind("buf", Some("free"), None)
    ///     .load()?;
    /// let buf = c.call_by_name("malloc", &[Value::Usize(64)])?.ret;
    /// c.call_by_name("free", &[buf.clone()])?;
    /// // A double free never reaches the library.
    /// let e = c.call_by_name("free", &[buf]).unwrap_err();
    /// assert_eq!(e.kind, ErrorKind::StaleHandle);
    /// assert!(e.message.contains("(buf) was closed by free"), "{e}");
    /// # Ok::<(), ffb_loader::Error>(())
    /// ```
    pub fn handle_kind(
        mut self,
        kind: &str,
        closed_by: Option<&str>,
        parent: Option<&str>,
    ) -> Self {
        self.handle_kinds.push((
            kind.to_string(),
            closed_by.map(str::to_string),
            parent.map(str::to_string),
        ));
        self
    }

    /// Marks argument `arg` (0-based, as in [`CallOutput::out`]) of the
    /// declared `function` as retained: the foreign code keeps the pointer
    /// after the call (text bound with `SQLITE_STATIC`), so the buffer is
    /// pinned in the arena instead of the per-call scratch area, and stays
    /// there, unchanged, until the handle that owns it (the call's first
    /// `handle` argument) is closed, or the helper ends. Only `cstr` and
    /// `bytes` arguments can be retained; see [`pinned_limit`](Self::pinned_limit).
    ///
    /// [`CallOutput::out`]: crate::CallOutput::out
    pub fn retain(mut self, function: &str, arg: usize) -> Self {
        self.retained.push((function.to_string(), arg));
        self
    }

    /// Opens `library` (a path) in the helper before the bridge's own
    /// library, with `RTLD_GLOBAL`: its symbols then resolve the undefined
    /// symbols of the library and of everything it loads later. The Python
    /// host needs this for libpython, whose extension modules expect the
    /// interpreter's symbols in the global scope. Its directory becomes
    /// readable under Landlock, as the library's does.
    pub fn preload(mut self, library: impl Into<String>) -> Self {
        self.preload.push(library.into());
        self
    }

    /// Lets the helper list `dir` and the directories beneath it, without
    /// reading their files (Landlock's `READ_DIR` alone): what the policy's
    /// `[filesystem] read` grants stays the only readable part. The Python
    /// helper gets its environment's site-packages this way, so that imports
    /// can search it while only the allowed packages open.
    pub fn listable(mut self, dir: impl Into<PathBuf>) -> Self {
        self.listable.push(dir.into());
        self
    }

    /// Declares a function to resolve at load time (`name(type, ...) -> ret`).
    pub fn declare(mut self, signature: impl Into<String>) -> Self {
        self.declarations.push(signature.into());
        self
    }

    /// Sets a variable in the helper's environment (which starts empty but for
    /// `LD_LIBRARY_PATH`, passed through from the host when set). The helper
    /// sets these after it started, so `LD_LIBRARY_PATH` does not change where
    /// its `dlopen` looks; give a library outside the system directories by
    /// its path.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Checks everything, then spawns the helper, loads the library in it and
    /// resolves every declared symbol. Nothing is spawned if bridge mode is off
    /// or a declaration is malformed.
    pub fn load(self) -> Result<Bridge> {
        if self.mode != BridgeMode::Enabled {
            return err(
                ErrorKind::BridgeDisabled,
                "bridge mode is off: pass --bridge-mode, set FFB_BRIDGE_MODE=1, or use BridgeMode::Enabled",
            );
        }
        let mut functions = Vec::new();
        for text in &self.declarations {
            functions.push(parse_signature(text)?);
        }
        let mut kinds = Kinds::default();
        for (kind, closed_by, parent) in &self.handle_kinds {
            kinds.set_rule(kind, closed_by.as_deref(), parent.as_deref())?;
        }
        let mut retained = vec![0u64; functions.len()];
        for (function, arg) in &self.retained {
            let Some(i) = functions.iter().rposition(|s| &s.name == function) else {
                return err(
                    ErrorKind::BadSignature,
                    format!("cannot retain an argument of '{function}': it is not declared"),
                );
            };
            retained[i] |= retained_bit(&functions[i], *arg)?;
        }
        let mut derived = Vec::with_capacity(functions.len());
        for (sig, retained) in functions.iter().zip(retained) {
            derived.push(FnHandles::derive(sig, &mut kinds, retained)?);
        }
        let filter = self.policy.compile().map_err(|e| {
            Error::new(
                ErrorKind::LoadFailed,
                format!("policy '{}': {e}", self.policy.name),
            )
        })?;
        let shim = match self.shim {
            Some(p) => p,
            None => default_shim()?,
        };
        let mut env = self.env;
        if let Ok(path) = std::env::var("LD_LIBRARY_PATH") {
            if !env.iter().any(|(k, _)| k == "LD_LIBRARY_PATH") {
                env.push(("LD_LIBRARY_PATH".into(), path));
            }
        }
        let audit = match &self.audit_log {
            Some(path) => Some(Arc::new(AuditLog::open(
                path,
                &self.library,
                &self.policy.name,
                ffb_policy::hash::policy_hash(&self.policy),
            )?)),
            None => None,
        };
        let timeout = self
            .timeout
            .unwrap_or(Duration::from_millis(self.policy.limits.call_timeout_ms));
        let spec = HelperSpec {
            shim,
            library: self.library,
            preload: self.preload,
            listable: self.listable,
            functions: Vec::new(),
            policy: Arc::new(self.policy),
            filter: Arc::new(filter),
            arena_len: self.arena_size,
            helper_spin_us: self.helper_spin.as_micros().min(u32::MAX as u128) as u32,
            host_spin: self.host_spin,
            env,
            output: self
                .output
                .map(|path| Arc::new(ExtensionOutput::new(path, self.output_limit))),
            load_timeout: timeout.max(Duration::from_secs(10)),
            audit,
            learn: self
                .learn
                .then(|| Arc::new(std::sync::Mutex::new(crate::learn::Learned::default()))),
        };
        let mut bridge = Bridge {
            spec,
            functions: Vec::new(),
            by_name: HashMap::new(),
            helper: None,
            generation: 0,
            handles: HandleTable::default(),
            kinds,
            pin_cap: self.pinned_limit,
            timeout,
            max_cstr: self.max_cstr,
            respawns: 0,
            layout: Vec::with_capacity(MAX_WIRE_ARGS),
            shared: None,
            started_once: false,
            table: self.table,
        };
        for (sig, handles) in functions.into_iter().zip(derived) {
            bridge.record(sig, handles);
        }
        bridge.ensure_helper()?;
        Ok(bridge)
    }
}

/// Parses a declaration, naming it in the error.
pub(super) fn parse_signature(text: &str) -> Result<Signature> {
    Signature::parse(text)
        .map_err(|e| Error::new(ErrorKind::BadSignature, format!("'{text}': {e}")))
}

/// Finds `ffb-shim`: `FFB_SHIM`, else next to the current executable (or its parent
/// directory, for test binaries in `target/*/deps`).
pub(crate) fn default_shim() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FFB_SHIM") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::new(ErrorKind::LoadFailed, format!("cannot find ffb-shim: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    for candidate in [dir.join("ffb-shim"), dir.join("../ffb-shim")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    err(
        ErrorKind::LoadFailed,
        format!(
            "cannot find ffb-shim next to {} (set FFB_SHIM to its path)",
            exe.display()
        ),
    )
}
