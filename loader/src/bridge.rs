//! The public API: a [`Bridge`] to one library, loaded in a sandboxed helper.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ffb_abi::effects::{EffectSet, WORST_CASE};
use ffb_abi::signature::{ArgType, Pointee, RetType, Signature};
use ffb_contract::wire::{align_up, Op, Status, CONTROL_SIZE, MAX_WIRE_ARGS};
use ffb_policy::sandbox::SandboxPolicy;

use crate::error::{err, Error, ErrorKind, Result};
use crate::helper::{Helper, HelperSpec, Response};
use std::sync::atomic::Ordering::Relaxed;

use crate::arena::Arena;
use crate::audit::{event_for, AuditEvent, AuditLog};
use crate::value::{buffer_bytes, decode_scalar, scalar_word, Handle, Value};

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

/// The fence every bridged call carries: `io + nondet + mutates(all) + throws(any)`.
/// A compiler must not reorder, cache or eliminate anything across it.
pub fn call_effects() -> &'static EffectSet {
    &WORST_CASE
}

/// A declared function. It is valid on the bridge that declared it, and on
/// every bridge loaded from clones of the same builder (a pool's members).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FunctionId {
    /// Which declaration table (one per `Bridge::builder` call).
    table: u64,
    index: usize,
}

/// The result of a successful call.
#[derive(Clone, Debug, PartialEq)]
pub struct CallOutput {
    /// The return value (`Value::Null` for void or a NULL `cstr`/`handle`).
    pub ret: Value,
    /// One entry per parameter: the contents behind `bytes`, `out[N]` and `*T`
    /// after the call; `None` for parameters passed by value.
    pub out: Vec<Option<Value>>,
    /// The call's effects: always [`WORST_CASE`].
    pub effects: &'static EffectSet,
}

impl Default for CallOutput {
    /// An empty output to pass to [`Bridge::call_into`], which fills it.
    fn default() -> Self {
        CallOutput {
            ret: Value::Null,
            out: Vec::new(),
            effects: call_effects(),
        }
    }
}

/// Default size of a helper's shared arena.
pub const DEFAULT_ARENA: usize = 64 << 20;
/// Default bound on a returned `cstr`.
pub const DEFAULT_MAX_CSTR: usize = 1 << 20;

/// Configures and loads a [`Bridge`].
///
/// ```no_run
/// use ffb_loader::{Bridge, BridgeMode, Value};
/// let mut z = Bridge::builder("libz.so.1")
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
    mode: BridgeMode,
    policy: SandboxPolicy,
    declarations: Vec<String>,
    timeout: Option<Duration>,
    arena_size: usize,
    helper_spin: Duration,
    host_spin: Duration,
    env: Vec<(String, String)>,
    output: Option<PathBuf>,
    shim: Option<PathBuf>,
    max_cstr: usize,
    audit_log: Option<PathBuf>,
    learn: bool,
    /// Identifies this builder's declaration table in its [`FunctionId`]s.
    table: u64,
}

impl BridgeBuilder {
    /// Sets bridge mode. The default is [`BridgeMode::Disabled`].
    pub fn bridge_mode(mut self, mode: BridgeMode) -> Self {
        self.mode = mode;
        self
    }

    /// The sandbox policy. The default is the `pure` preset.
    pub fn policy(mut self, policy: SandboxPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Declares a function to resolve at load time (`name(type, ...) -> ret`).
    pub fn declare(mut self, signature: impl Into<String>) -> Self {
        self.declarations.push(signature.into());
        self
    }

    /// Per-call timeout. The default is the policy's (30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Size of the shared arena; it bounds the total size of one call's buffers.
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.arena_size = bytes;
        self
    }

    /// How long the helper spins for the next request before it sleeps.
    pub fn helper_spin(mut self, spin: Duration) -> Self {
        self.helper_spin = spin;
        self
    }

    /// How long the host spins for a response before it sleeps.
    pub fn host_spin(mut self, spin: Duration) -> Self {
        self.host_spin = spin;
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

    /// Appends the extension's stdout and stderr to this file instead of /dev/null.
    pub fn extension_output(mut self, path: impl Into<PathBuf>) -> Self {
        self.output = Some(path.into());
        self
    }

    /// The `ffb-shim` executable. Default: `FFB_SHIM`, else next to the current executable.
    pub fn shim(mut self, path: impl Into<PathBuf>) -> Self {
        self.shim = Some(path.into());
        self
    }

    /// Appends one JSON line per violation, crash, timeout, resource-limit hit
    /// and respawn to this file, from the host's view of each event.
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_log = Some(path.into());
        self
    }

    /// Learn mode: instead of enforcing the policy beyond its floor, let every
    /// syscall through and record it (see [`Bridge::learned`]). For building a
    /// policy from a trusted script, never for production.
    pub fn learn(mut self, on: bool) -> Self {
        self.learn = on;
        self
    }

    /// Bound on a returned `cstr`, in bytes.
    pub fn max_cstr(mut self, bytes: usize) -> Self {
        self.max_cstr = bytes;
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
                ffb_policy::file::policy_hash(&self.policy),
            )?)),
            None => None,
        };
        let timeout = self
            .timeout
            .unwrap_or(Duration::from_millis(self.policy.limits.call_timeout_ms));
        let spec = HelperSpec {
            shim,
            library: self.library,
            functions: Vec::new(),
            policy: Arc::new(self.policy),
            filter: Arc::new(filter),
            arena_len: self.arena_size,
            helper_spin_us: self.helper_spin.as_micros().min(u32::MAX as u128) as u32,
            host_spin: self.host_spin,
            env,
            output: self.output,
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
            timeout,
            max_cstr: self.max_cstr,
            respawns: 0,
            layout: Vec::with_capacity(MAX_WIRE_ARGS),
            shared: None,
            started_once: false,
            table: self.table,
        };
        for sig in functions {
            bridge.record(sig);
        }
        bridge.ensure_helper()?;
        Ok(bridge)
    }
}

fn parse_signature(text: &str) -> Result<Signature> {
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

struct Declared {
    sig: Signature,
    text: String,
}

/// A library loaded in a sandboxed helper process.
///
/// Calls run strictly in the order they are made (`&mut self`). After any
/// failure that ends the helper, the next call starts a fresh one; handles
/// from the old helper are then stale.
pub struct Bridge {
    spec: HelperSpec,
    functions: Vec<Declared>,
    by_name: HashMap<String, FunctionId>,
    helper: Option<Helper>,
    generation: u64,
    /// Raw pointer values behind the handles of the current generation.
    handles: HandleTable,
    timeout: Duration,
    max_cstr: usize,
    respawns: u64,
    /// Reused for every call's argument layout, so calls do not allocate.
    layout: Vec<Slot>,
    /// The shared buffer's helper generation and reserved length, if any.
    shared: Option<(u64, usize)>,
    /// Whether a helper was ever started (the next one is a respawn).
    started_once: bool,
    /// The declaration table [`FunctionId`]s must come from.
    table: u64,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("library", &self.spec.library)
            .field("helper_pid", &self.helper_pid())
            .field("generation", &self.generation)
            .finish()
    }
}

static NEXT_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Bridge {
    /// Starts configuring a bridge to `library` (a path or a soname).
    pub fn builder(library: impl Into<String>) -> BridgeBuilder {
        BridgeBuilder {
            library: library.into(),
            mode: BridgeMode::Disabled,
            policy: SandboxPolicy::pure(),
            declarations: Vec::new(),
            timeout: None,
            arena_size: DEFAULT_ARENA,
            helper_spin: Duration::from_micros(100),
            host_spin: Duration::from_micros(100),
            env: Vec::new(),
            output: None,
            shim: None,
            max_cstr: DEFAULT_MAX_CSTR,
            audit_log: None,
            learn: false,
            table: NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn record(&mut self, sig: Signature) -> FunctionId {
        let id = FunctionId {
            table: self.table,
            index: self.functions.len(),
        };
        self.by_name.insert(sig.name.clone(), id);
        self.functions.push(Declared {
            text: sig.to_string(),
            sig,
        });
        id
    }

    /// Declares another function. With a live helper the symbol is resolved
    /// at once, so a missing one fails here, not at its first call.
    pub fn declare(&mut self, signature: &str) -> Result<FunctionId> {
        let sig = parse_signature(signature)?;
        if let Some(&id) = self.by_name.get(&sig.name) {
            if self.functions[id.index].sig == sig {
                return Ok(id);
            }
            return err(
                ErrorKind::BadSignature,
                format!(
                    "'{}' is already declared as '{}'",
                    sig.name, self.functions[id.index].text
                ),
            );
        }
        // Resolve against a live helper, so a missing symbol fails here and is
        // never recorded (a recorded one would fail every later respawn).
        self.ensure_helper()?;
        if let Some(helper) = self.helper.as_mut() {
            let text = sig.to_string();
            if text.len() > helper.arena().data_capacity() {
                return err(ErrorKind::BadSignature, "signature longer than the arena");
            }
            helper.arena().write(CONTROL_SIZE, text.as_bytes());
            helper.arena().control().args[0]
                .store(text.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let response = match helper.round_trip(Op::Declare, 0, 1, self.timeout) {
                Ok(r) => r,
                Err(e) => return Err(self.failed(e, None)),
            };
            match response.status {
                Status::Ok if response.ret == self.functions.len() as u64 => {}
                Status::Ok => {
                    let e = Error::new(
                        ErrorKind::Protocol,
                        "the helper numbered a function wrongly; it was killed",
                    );
                    return Err(self.failed(e, None));
                }
                status => {
                    let message = match helper.arena().message(response.message_len) {
                        Ok(m) => m,
                        Err(e) => return Err(self.failed(e, None)),
                    };
                    let kind = if status == Status::SymbolNotFound {
                        ErrorKind::SymbolNotFound
                    } else {
                        ErrorKind::BadSignature
                    };
                    return Err(Error::new(kind, message));
                }
            }
        }
        Ok(self.record(sig))
    }

    /// The id of a declared function, by name.
    pub fn function(&self, name: &str) -> Option<FunctionId> {
        self.by_name.get(name).copied()
    }

    /// The signature of a declared function.
    /// `None` for a function declared on an unrelated bridge.
    pub fn signature(&self, f: FunctionId) -> Option<&Signature> {
        self.functions
            .get(f.index)
            .filter(|_| f.table == self.table)
            .map(|d| &d.sig)
    }

    /// The effects of a declared function: always the worst case, since
    /// nothing is known about legacy code.
    pub fn effects(&self, _f: FunctionId) -> &'static EffectSet {
        call_effects()
    }

    /// The current helper's pid, if one is running.
    pub fn helper_pid(&self) -> Option<i32> {
        self.helper.as_ref().map(Helper::pid)
    }

    /// The current helper's generation (unique in this process), or 0 when no
    /// helper is running. Handles carry the generation that issued them.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What learn mode has recorded so far (`None` unless built with `learn(true)`).
    pub fn learned(&self) -> Option<crate::learn::Learned> {
        self.spec
            .learn
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The sandbox policy helpers run under.
    pub fn policy(&self) -> &SandboxPolicy {
        &self.spec.policy
    }

    /// How many helpers this bridge has started after the first.
    pub fn respawns(&self) -> u64 {
        self.respawns
    }

    /// The library this bridge loads.
    pub fn library(&self) -> &str {
        &self.spec.library
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the per-call timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Kills the current helper (if any) and starts a fresh one now. Handles
    /// from the old helper become stale.
    pub fn respawn(&mut self) -> Result<()> {
        self.helper = None;
        self.helper_ended();
        self.ensure_helper()
    }

    fn audit(&self, event: &AuditEvent<'_>) {
        if let Some(audit) = &self.spec.audit {
            audit.record(event);
        }
    }

    /// Records a failure that ended the helper (or hit a limit) in the audit
    /// log, then forgets the helper if it is gone. Returns the error.
    fn failed(&mut self, error: Error, function: Option<FunctionId>) -> Error {
        // A resource limit may have killed the helper (SIGXCPU) or not (a
        // string over its bound): what counts is whether it is still there.
        let ends = error.kind.ends_helper() || self.helper.as_ref().is_none_or(Helper::is_gone);
        if ends || error.kind == ErrorKind::ResourceLimit {
            let name = function.map(|f| self.functions[f.index].sig.name.clone());
            let (pid, syscall) = self
                .helper
                .as_ref()
                .map_or((0, None), |h| (h.pid(), h.violation()));
            let action = match &error.kind {
                ErrorKind::ResourceLimit if !ends => "call_failed",
                _ => "killed",
            };
            self.audit(&AuditEvent {
                event: event_for(&error.kind),
                function: name.as_deref(),
                syscall,
                action,
                pid,
                detail: Some(&error),
            });
        }
        if ends {
            self.helper_ended();
        }
        error
    }

    fn helper_ended(&mut self) {
        self.helper = None;
        self.handles.clear();
        // Old tokens can never match again.
        self.generation = 0;
    }

    fn ensure_helper(&mut self) -> Result<()> {
        if self.helper.is_some() {
            return Ok(());
        }
        self.spec.functions = self.functions.iter().map(|d| d.text.clone()).collect();
        let helper = Helper::spawn(&self.spec)?;
        if self.started_once {
            self.respawns += 1;
            self.audit(&AuditEvent {
                event: "respawn",
                function: None,
                syscall: None,
                action: "respawned",
                pid: helper.pid(),
                detail: None,
            });
        }
        self.started_once = true;
        self.generation = NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.handles.clear();
        self.helper = Some(helper);
        Ok(())
    }

    /// Calls a declared function by name.
    pub fn call_by_name(&mut self, name: &str, args: &[Value]) -> Result<CallOutput> {
        let f = self.function(name).ok_or_else(|| {
            Error::new(ErrorKind::BadSignature, format!("'{name}' is not declared"))
        })?;
        self.call(f, args)
    }

    /// Calls `f` with one value per parameter that takes one (`out[N]` takes
    /// none). On failure nothing the caller owns has changed.
    pub fn call(&mut self, f: FunctionId, args: &[Value]) -> Result<CallOutput> {
        let mut out = CallOutput::default();
        self.call_into(f, args, &mut out)?;
        Ok(out)
    }

    /// Like [`Bridge::call`], but writes the result into `out`, reusing its
    /// buffers: a call whose arguments and results fit what `out` already holds
    /// allocates nothing. On failure `out` is left as it was.
    pub fn call_into(&mut self, f: FunctionId, args: &[Value], out: &mut CallOutput) -> Result<()> {
        self.check_call(f, args)?;
        self.ensure_helper()?;
        let limit = self.data_limit();
        let Bridge {
            functions,
            helper,
            handles,
            layout,
            generation,
            ..
        } = self;
        let sig = &functions[f.index].sig;
        let arena = helper.as_ref().expect("ensured").arena();
        layout.clear();
        let mut cursor = CONTROL_SIZE;
        let ctx = LayoutContext {
            arena,
            generation: *generation,
            handles,
            limit,
        };
        ctx.lay_out(sig, args, layout, &mut cursor, &mut |i, word| {
            arena.control().args[i].store(word, Relaxed)
        })?;
        let response = self.exchange(
            Op::Call,
            f.index as u32,
            sig_len(&self.functions[f.index].sig),
            Some(f),
        )?;
        let ret = self.decode_ret(f, response.ret)?;
        self.copy_out(0..self.layout.len(), &mut out.out);
        out.ret = ret;
        out.effects = call_effects();
        Ok(())
    }

    /// Sends several calls at once; the helper runs them in order and stops at
    /// the first failure. Each call is still a full fence, and the batch as a
    /// whole is one round trip.
    ///
    /// Every argument of every call is checked before anything is sent. On a
    /// failure, [`BatchFailure`] holds the outputs of the calls that completed,
    /// the index of the one that failed, and why; later calls did not run.
    pub fn call_batch(
        &mut self,
        calls: &[(FunctionId, &[Value])],
    ) -> std::result::Result<Vec<CallOutput>, BatchFailure> {
        let fail = BatchFailure::before_sending;
        for (i, (f, args)) in calls.iter().enumerate() {
            self.check_call(*f, args).map_err(|e| fail(i, e))?;
        }
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_helper().map_err(|e| fail(0, e))?;
        let limit = self.data_limit();
        let mut ranges = Vec::with_capacity(calls.len());
        let results_at;
        {
            let Bridge {
                functions,
                helper,
                handles,
                layout,
                generation,
                ..
            } = &mut *self;
            let arena = helper.as_ref().expect("ensured").arena();
            layout.clear();
            // Records first (func, nargs, words), then buffers, then one result
            // word per call.
            let records_len: usize = calls
                .iter()
                .map(|(f, _)| 8 + 8 * functions[f.index].sig.args.len())
                .sum();
            let mut record = CONTROL_SIZE;
            let mut cursor = align_up(CONTROL_SIZE + records_len)
                .filter(|&end| end <= limit)
                .ok_or_else(|| fail(0, too_big(0, limit)))?;
            let ctx = LayoutContext {
                arena,
                generation: *generation,
                handles,
                limit,
            };
            for (i, (f, args)) in calls.iter().enumerate() {
                let sig = &functions[f.index].sig;
                let header = (f.index as u64) | (sig.args.len() as u64) << 32;
                arena.write(record, &header.to_ne_bytes());
                let words_at = record + 8;
                let start = layout.len();
                ctx.lay_out(sig, args, layout, &mut cursor, &mut |k, word| {
                    arena.write(words_at + 8 * k, &word.to_ne_bytes())
                })
                .map_err(|e| fail(i, e))?;
                ranges.push((*f, start, layout.len()));
                record = words_at + 8 * sig.args.len();
            }
            results_at = cursor;
            if results_at + 8 * calls.len() > limit {
                return Err(fail(0, too_big(0, limit)));
            }
            let ctl = arena.control();
            ctl.args[0].store(results_at as u64, Relaxed);
        }
        let timeout = self.timeout;
        let helper = self.helper.as_mut().expect("ensured");
        // The helper resets it too, but a helper that dies before it gets
        // there must not leave the previous batch's count standing.
        helper
            .arena()
            .control()
            .progress
            .completed
            .store(0, Relaxed);
        let (completed, failure) =
            match helper.round_trip(Op::Batch, 0, calls.len() as u32, timeout) {
                Ok(r) if r.status == Status::Ok => (calls.len(), None),
                Ok(r) => (
                    0,
                    Some(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "the helper answered a batch with status {:?}; it was killed",
                            r.status
                        ),
                    )),
                ),
                // Read once, and bounded by what was sent: how far the helper got
                // before it ended. Its arena is still mapped until it is dropped.
                Err(e) => (
                    (helper.arena().control().progress.completed.load(Relaxed) as usize)
                        .min(calls.len()),
                    Some(e),
                ),
            };
        let mut outputs = Vec::with_capacity(completed);
        let mut lost_string = false;
        // All result words in one copy (read once, like everything the helper wrote).
        let mut results = vec![0u8; 8 * completed];
        if let Some(helper) = self.helper.as_ref() {
            helper.arena().read_into(results_at, &mut results);
        }
        for (i, &(f, start, end)) in ranges.iter().enumerate().take(completed) {
            let raw = u64::from_ne_bytes(results[8 * i..8 * i + 8].try_into().expect("8 bytes"));
            if failure.is_some() && raw != 0 && self.functions[f.index].sig.ret == RetType::CStr {
                // The string lived in the helper, which is gone.
                lost_string = true;
                break;
            }
            let ret = match self.decode_ret(f, raw) {
                Ok(v) => v,
                Err(error) => {
                    let message = format!(
                        "{}; the calls after it in the batch ran, but their results are not reported",
                        error.message
                    );
                    return Err(BatchFailure {
                        completed: outputs,
                        index: i,
                        error: Error::new(error.kind, message),
                    });
                }
            };
            let mut out = Vec::new();
            if start != end {
                self.copy_out(start..end, &mut out);
            }
            outputs.push(CallOutput {
                ret,
                out,
                effects: call_effects(),
            });
        }
        match failure {
            None => Ok(outputs),
            Some(error) => {
                let index = outputs.len();
                let f = ranges.get(completed).map(|r| r.0);
                let mut error = self.failed(error, f);
                if lost_string {
                    error.message = format!(
                        "{}; call {completed} failed, and the string call {index} returned was lost with the helper",
                        error.message
                    );
                }
                Err(BatchFailure {
                    error,
                    completed: outputs,
                    index,
                })
            }
        }
    }

    /// Copies out the values behind the pointer parameters laid out in
    /// `slots` (a range of the current layout) after a response.
    fn copy_out(&mut self, slots: std::ops::Range<usize>, out: &mut Vec<Option<Value>>) {
        let Bridge {
            helper,
            handles,
            layout,
            generation,
            ..
        } = self;
        let arena = helper.as_ref().expect("alive after a response").arena();
        copy_out(arena, &layout[slots], out, *generation, handles);
    }

    /// A buffer of `len` bytes inside the shared arena, for zero-copy calls:
    /// fill it, then pass [`Value::Shared`] for a `bytes` parameter, and the
    /// function gets a pointer to it with nothing copied in or out. Read what
    /// the function left there through a new `shared_buffer` view.
    ///
    /// The helper can write to this memory at any time: treat what you read
    /// back as untrusted bytes. A buffer from a helper that has since been
    /// replaced is gone; passing `Value::Shared` then gives `stale_handle`.
    pub fn shared_buffer(&mut self, len: usize) -> Result<SharedBuffer<'_>> {
        self.ensure_helper()?;
        let arena = self.helper.as_ref().expect("ensured").arena();
        let reserve = align_up(len.max(1)).unwrap_or(usize::MAX);
        if reserve > arena.data_capacity() / 2 {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "a {len}-byte shared buffer needs an arena of at least {} bytes (this one has {})",
                    reserve.saturating_mul(2).saturating_add(CONTROL_SIZE),
                    arena.len()
                ),
            );
        }
        self.shared = Some((self.generation, reserve));
        let arena = self.helper.as_ref().expect("ensured").arena();
        let offset = arena.len() - reserve;
        Ok(SharedBuffer {
            ptr: unsafe { arena.base().add(offset) },
            len,
            _bridge: std::marker::PhantomData,
        })
    }

    /// Where argument buffers may go: the data area below any shared buffer.
    fn data_limit(&self) -> usize {
        let arena_len = self.helper.as_ref().map_or(0, |h| h.arena().len());
        match self.shared {
            Some((generation, reserve)) if generation == self.generation => arena_len - reserve,
            _ => arena_len,
        }
    }

    fn check_call(&self, f: FunctionId, args: &[Value]) -> Result<()> {
        let declared = self
            .functions
            .get(f.index)
            .filter(|_| f.table == self.table)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::BadArgument,
                    format!("{f:?} is not declared here"),
                )
            })?;
        check_arity(&declared.sig, args.len())?;
        for v in args {
            if let Value::Shared(len) = v {
                match self.shared {
                    Some((generation, reserve)) if generation == self.generation && *len <= reserve => {}
                    Some((generation, _)) if generation == self.generation => {
                        return err(
                            ErrorKind::BadArgument,
                            format!("Value::Shared({len}) is longer than the shared buffer"),
                        )
                    }
                    _ => {
                        return err(
                            ErrorKind::StaleHandle,
                            "Value::Shared refers to a shared buffer of a helper that is gone (call shared_buffer again)",
                        )
                    }
                }
            }
        }
        Ok(())
    }

    /// One round trip with the helper; a failure that ends it is audited and
    /// forgets it.
    fn exchange(
        &mut self,
        op: Op,
        func: u32,
        count: u32,
        f: Option<FunctionId>,
    ) -> Result<Response> {
        let timeout = self.timeout;
        let helper = self.helper.as_mut().expect("ensured");
        match helper.round_trip(op, func, count, timeout) {
            Ok(r) if r.status == Status::Ok => Ok(r),
            Ok(r) => {
                let e = Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "the helper answered with status {:?}; it was killed",
                        r.status
                    ),
                );
                Err(self.failed(e, f))
            }
            Err(e) => Err(self.failed(e, f)),
        }
    }

    /// Decodes a raw return value; the only decoding step that can fail is
    /// reading a returned string out of the helper.
    fn decode_ret(&mut self, f: FunctionId, raw: u64) -> Result<Value> {
        let ret = self.functions[f.index].sig.ret;
        Ok(match ret {
            RetType::Void => Value::Null,
            RetType::Scalar(s) => decode_scalar(s, raw),
            RetType::Handle => register_handle(raw, self.generation, &mut self.handles),
            RetType::CStr if raw == 0 => Value::Null,
            RetType::CStr => {
                let helper = self.helper.as_ref().expect("alive after a response");
                match helper.read_cstr(raw, self.max_cstr) {
                    Ok(bytes) => Value::Str(bytes),
                    // Unreadable (protocol): the library is in a state nobody
                    // should call into again. Too long (resource_limit): the
                    // helper stays.
                    Err(e) => return Err(self.failed(e, Some(f))),
                }
            }
        })
    }
}

/// A failed batch: what completed before the failure, and the failure.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchFailure {
    /// Outputs of the calls that completed, in order.
    pub completed: Vec<CallOutput>,
    /// Index of the call that failed; calls after it did not run.
    pub index: usize,
    /// Why it failed.
    pub error: Error,
}

impl BatchFailure {
    /// A batch refused before anything ran: call `index` cannot be sent.
    pub fn before_sending(index: usize, error: Error) -> Self {
        BatchFailure {
            completed: Vec::new(),
            index,
            error,
        }
    }
}

impl std::fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call {} of the batch failed: {}", self.index, self.error)
    }
}

impl std::error::Error for BatchFailure {}

/// A view of a buffer inside the shared arena (see [`Bridge::shared_buffer`]).
pub struct SharedBuffer<'a> {
    ptr: *mut u8,
    len: usize,
    _bridge: std::marker::PhantomData<&'a mut Bridge>,
}

impl SharedBuffer<'_> {
    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` to the start of the buffer (at most its length).
    pub fn write(&mut self, data: &[u8]) {
        let n = data.len().min(self.len);
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr, n) };
    }

    /// Copies the start of the buffer into `out` (at most its length).
    pub fn read(&self, out: &mut [u8]) {
        let n = out.len().min(self.len);
        unsafe { std::ptr::copy_nonoverlapping(self.ptr, out.as_mut_ptr(), n) };
    }

    /// The buffer as a slice, to fill in place.
    ///
    /// # Safety
    /// The helper maps the same memory and may write to it while the slice
    /// lives; only use this while no call is running, and treat what you read
    /// as untrusted.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr..ptr + len` is the reserved end of the live arena
        // mapping, borrowed mutably through `self`; the caller upholds the
        // no-call-running rule above.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

fn sig_len(sig: &Signature) -> u32 {
    sig.args.len() as u32
}

fn too_big(position: usize, limit: usize) -> Error {
    Error::new(
        ErrorKind::BadArgument,
        format!(
            "argument {position}: the call's buffers need more than the {limit}-byte arena (raise the arena size)"
        ),
    )
}

/// Where one parameter went for the current call.
#[derive(Clone, Copy, Debug)]
struct Slot {
    ty: ArgType,
    offset: usize,
    len: usize,
    /// A zero-copy argument: nothing is copied back.
    shared: bool,
}

/// Checks that `given` values were supplied for `sig`'s parameters.
pub(crate) fn check_arity(sig: &Signature, given: usize) -> Result<()> {
    match sig.arity_mismatch(given) {
        None => Ok(()),
        Some(message) => err(ErrorKind::BadArgument, message),
    }
}

struct LayoutContext<'a> {
    arena: &'a Arena,
    generation: u64,
    handles: &'a HandleTable,
    /// End of the space argument buffers may use.
    limit: usize,
}

impl LayoutContext<'_> {
    /// Checks every argument against its type and writes it to the arena:
    /// scalars and handles as argument words (through `word`), buffers into
    /// the data area at host-chosen offsets from `cursor`. Nothing is sent
    /// yet, so a failure here leaves the helper idle.
    fn lay_out(
        &self,
        sig: &Signature,
        args: &[Value],
        layout: &mut Vec<Slot>,
        cursor: &mut usize,
        word: &mut dyn FnMut(usize, u64),
    ) -> Result<()> {
        if sig.args.len() > MAX_WIRE_ARGS {
            return err(ErrorKind::BadSignature, "too many parameters");
        }
        let arena = self.arena;
        let mut given = args.iter();
        for (i, &ty) in sig.args.iter().enumerate() {
            let position = i + 1;
            let value = if ty.takes_value() {
                given.next().expect("arity checked")
            } else {
                &Value::Null
            };
            if let (ArgType::Bytes, Value::Shared(len)) = (ty, value) {
                // The shared buffer starts where argument buffers must end.
                let offset = self.limit;
                word(i, offset as u64);
                layout.push(Slot {
                    ty,
                    offset,
                    len: *len,
                    shared: true,
                });
                continue;
            }
            let bytes = match ty {
                ArgType::CStr | ArgType::Bytes => buffer_bytes(ty, value, position)?,
                _ => &[],
            };
            let len = match ty {
                ArgType::CStr => bytes.len() + 1,
                ArgType::Bytes => bytes.len(),
                ArgType::Out(n) => n,
                ArgType::Ptr(_) => 8,
                ArgType::Scalar(_) | ArgType::Handle => 0,
            };
            let offset = *cursor;
            if ty.is_pointer() {
                *cursor = align_up(cursor.saturating_add(len.max(1)))
                    .filter(|&end| end <= self.limit)
                    .ok_or_else(|| too_big(position, self.limit))?;
            }
            let w = match ty {
                ArgType::Scalar(s) => scalar_word(s, value, position)?,
                ArgType::Handle => handle_raw(value, self.generation, self.handles)?,
                ArgType::CStr => {
                    arena.write(offset, bytes);
                    arena.write(offset + bytes.len(), &[0]);
                    offset as u64
                }
                ArgType::Bytes => {
                    arena.write(offset, bytes);
                    offset as u64
                }
                ArgType::Out(n) => {
                    arena.zero(offset, n);
                    offset as u64
                }
                ArgType::Ptr(Pointee::Scalar(s)) => {
                    arena.write(offset, &scalar_word(s, value, position)?.to_ne_bytes());
                    offset as u64
                }
                ArgType::Ptr(Pointee::Handle) => {
                    let raw = handle_raw(value, self.generation, self.handles)?;
                    arena.write(offset, &raw.to_ne_bytes());
                    offset as u64
                }
            };
            word(i, w);
            layout.push(Slot {
                ty,
                offset,
                len,
                shared: false,
            });
        }
        Ok(())
    }
}

/// Copies out-values from host-chosen offsets and host-known lengths only,
/// reusing the buffers already in `out`.
fn copy_out(
    arena: &Arena,
    layout: &[Slot],
    out: &mut Vec<Option<Value>>,
    generation: u64,
    handles: &mut HandleTable,
) {
    out.truncate(layout.len());
    out.resize(layout.len(), None);
    for (slot, value) in layout.iter().zip(out.iter_mut()) {
        match slot.ty {
            _ if slot.shared => *value = None,
            ArgType::Bytes | ArgType::Out(_) => {
                let mut buf = match value.take() {
                    Some(Value::Bytes(b)) => b,
                    _ => Vec::new(),
                };
                arena.read_to_vec(slot.offset, slot.len, &mut buf);
                *value = Some(Value::Bytes(buf));
            }
            ArgType::Ptr(Pointee::Scalar(s)) => {
                let mut word = [0u8; 8];
                arena.read_into(slot.offset, &mut word);
                *value = Some(decode_scalar(s, u64::from_ne_bytes(word)));
            }
            ArgType::Ptr(Pointee::Handle) => {
                let mut word = [0u8; 8];
                arena.read_into(slot.offset, &mut word);
                *value = Some(register_handle(
                    u64::from_ne_bytes(word),
                    generation,
                    handles,
                ));
            }
            _ => *value = None,
        }
    }
}

/// The raw pointer values behind the current helper's handles.
#[derive(Debug, Default)]
struct HandleTable {
    /// By token index.
    raw: Vec<u64>,
    /// Token index by raw value, so the same pointer keeps one token.
    index: HashMap<u64, usize>,
}

impl HandleTable {
    fn clear(&mut self) {
        self.raw.clear();
        self.index.clear();
    }
}

fn handle_raw(v: &Value, generation: u64, handles: &HandleTable) -> Result<u64> {
    match v {
        Value::Null => Ok(0),
        Value::Handle(h) if h.generation == generation => handles
            .raw
            .get(h.index as usize)
            .copied()
            .ok_or_else(|| Error::new(ErrorKind::StaleHandle, format!("{h} was never issued"))),
        Value::Handle(h) => err(
            ErrorKind::StaleHandle,
            format!("{h} belongs to a helper that is gone"),
        ),
        other => err(ErrorKind::BadArgument, format!("{other:?} is not a handle")),
    }
}

fn register_handle(raw: u64, generation: u64, handles: &mut HandleTable) -> Value {
    if raw == 0 {
        return Value::Null;
    }
    let next = handles.raw.len();
    let index = *handles.index.entry(raw).or_insert(next);
    if index == next {
        handles.raw.push(raw);
    }
    Value::Handle(Handle {
        generation,
        index: index as u32,
    })
}
