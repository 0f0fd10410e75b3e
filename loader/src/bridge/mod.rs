//! The public API: a [`Bridge`] to one library, loaded in a sandboxed helper.
//!
//! This module holds the bridge itself: declaring functions, one call from
//! argument check to decoded result, and what happens when a helper fails
//! (the audit line, forgetting the helper, starting the next one). Each other
//! concept of a call lives in its own module, with its own `impl Bridge`
//! block where it needs the bridge's state:
//!
//! * [`builder`]: configuring and loading ([`BridgeBuilder`], [`BridgeMode`]);
//! * [`layout`]: where arguments go in the arena, and copying out-values back;
//! * [`handles`]: the tokens for the helper's pointers: their kinds, their
//!   close functions and parents, and when they go stale;
//! * [`pinned`]: arena space for retained buffers, kept until their handle
//!   is closed;
//! * [`batch`]: several calls in one round trip ([`Bridge::call_batch`]);
//! * [`fetch`]: fetch programs, a page of rows per round trip ([`Bridge::fetch`]);
//! * [`shared`]: zero-copy buffers ([`Bridge::shared_buffer`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use ffb_abi::effects::{EffectSet, WORST_CASE};
use ffb_abi::signature::{RetType, Signature};
use ffb_contract::wire::{Op, Status, CONTROL_SIZE};
use ffb_policy::sandbox::SandboxPolicy;

use crate::audit::{event_for, AuditEvent};
use crate::error::{err, Error, ErrorKind, Result};
use crate::helper::{Helper, HelperSpec, Response};
use crate::value::{decode_scalar, Value};

mod batch;
mod builder;
mod fetch;
mod handles;
mod layout;
mod pinned;
mod shared;

pub use batch::BatchFailure;
pub use builder::{
    BridgeBuilder, BridgeMode, DEFAULT_ARENA, DEFAULT_MAX_CSTR, DEFAULT_PINNED_LIMIT,
};
/// For the fuzz targets (`crate::fuzzing`).
pub(crate) use fetch::{check_answer, walk};
pub use fetch::{
    Cell, Cmp, FetchEnd, FetchProgram, FetchProgramBuilder, FetchState, Operand, Section,
    DEFAULT_PAGE_ROWS,
};
pub use shared::SharedBuffer;

use builder::parse_signature;
use handles::{FnHandles, HandleTable, Kinds, NONE};
use layout::Slot;

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

struct Declared {
    sig: Signature,
    text: String,
    /// What it does with handles and retained buffers.
    handles: FnHandles,
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
    /// Raw pointer values behind the handles of the current generation, and
    /// the retained buffers they own.
    handles: HandleTable,
    /// The handle kinds and their rules.
    kinds: Kinds,
    /// Most bytes retained buffers may pin in one helper's arena.
    pin_cap: usize,
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

/// Helper generations and declaration tables draw from one counter, so
/// neither is ever 0 and no two are equal within the process.
fn next_generation() -> u64 {
    static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);
    NEXT_GENERATION.fetch_add(1, Relaxed)
}

/// The bit that marks argument `arg` of `sig` retained, once it is known to
/// exist.
fn retained_bit(sig: &Signature, arg: usize) -> Result<u64> {
    if arg >= sig.args.len() {
        return err(
            ErrorKind::BadSignature,
            format!(
                "cannot retain argument index {arg} of '{sig}': it has {} (indices start at 0)",
                sig.args.len()
            ),
        );
    }
    Ok(1 << arg)
}

/// Checks that `given` values were supplied for `sig`'s parameters.
fn check_arity(sig: &Signature, given: usize) -> Result<()> {
    match sig.arity_mismatch(given) {
        None => Ok(()),
        Some(message) => err(ErrorKind::BadArgument, message),
    }
}

impl Bridge {
    fn record(&mut self, sig: Signature, handles: FnHandles) -> FunctionId {
        let id = FunctionId {
            table: self.table,
            index: self.functions.len(),
        };
        self.by_name.insert(sig.name.clone(), id);
        self.functions.push(Declared {
            text: sig.to_string(),
            sig,
            handles,
        });
        id
    }

    /// Declares how handles of `kind` end and what they belong to, on a
    /// running bridge (see [`BridgeBuilder::handle_kind`]). It applies to the
    /// functions declared so far and to later ones; a function that cannot
    /// follow it (a close function without a `handle` argument) is an error,
    /// and then nothing changes.
    pub fn handle_kind(
        &mut self,
        kind: &str,
        closed_by: Option<&str>,
        parent: Option<&str>,
    ) -> Result<()> {
        let mut kinds = self.kinds.clone();
        kinds.set_rule(kind, closed_by, parent)?;
        let derived = self
            .functions
            .iter()
            .map(|d| FnHandles::derive(&d.sig, &mut kinds, d.handles.retained))
            .collect::<Result<Vec<_>>>()?;
        for (d, h) in self.functions.iter_mut().zip(derived) {
            d.handles = h;
        }
        self.kinds = kinds;
        Ok(())
    }

    /// Marks argument `arg` (0-based, as in [`CallOutput::out`]) of the
    /// declared `function` as retained, on a running bridge (see
    /// [`BridgeBuilder::retain`]).
    pub fn retain(&mut self, function: &str, arg: usize) -> Result<()> {
        let id = self.function(function).ok_or_else(|| {
            Error::new(
                ErrorKind::BadSignature,
                format!("cannot retain an argument of '{function}': it is not declared"),
            )
        })?;
        let d = &self.functions[id.index];
        let bit = retained_bit(&d.sig, arg)?;
        let handles = FnHandles::derive(&d.sig, &mut self.kinds, d.handles.retained | bit)?;
        self.functions[id.index].handles = handles;
        Ok(())
    }

    /// Releases the retained buffers that `handle` owns, while it stays
    /// open: for when the library has let go of them without closing the
    /// handle (say, after `sqlite3_clear_bindings`, or once a statement was
    /// bound again with `SQLITE_TRANSIENT`). Their bytes are handed out
    /// again, so a library that still reads them reads whatever the next
    /// calls left there (inside the helper; the host is not at risk).
    /// Returns the bytes released; a closed or stale token is `stale_handle`.
    pub fn release_pins(&mut self, handle: &Value) -> Result<usize> {
        let resolved = self
            .handles
            .check(handle, self.generation, NONE)
            .map_err(|r| handles::refusal_message(r, None, &self.kinds, &|_| None))?;
        Ok(self.handles.release_pins(resolved.token))
    }

    /// The bytes retained buffers hold pinned in the current helper's arena
    /// now (0 with no helper). They are released when their handles close.
    pub fn pinned_bytes(&self) -> usize {
        self.handles.pinned.used()
    }

    /// Declares another function. With a live helper the symbol is resolved
    /// at once, so a missing one fails here, not at its first call.
    pub fn declare(&mut self, signature: &str) -> Result<FunctionId> {
        let sig = parse_signature(signature)?;
        let handles = FnHandles::derive(&sig, &mut self.kinds, 0)?;
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
            if CONTROL_SIZE + text.len() > self.handles.pinned.floor() {
                return err(ErrorKind::BadSignature, "signature longer than the arena");
            }
            helper.arena().write(CONTROL_SIZE, text.as_bytes());
            helper.arena().control().args[0].store(text.len() as u64, Relaxed);
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
        Ok(self.record(sig, handles))
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

    /// Audit lines that could not be written to the audit log (a full disk,
    /// a quota, an I/O error): how many, and the first error. `None` when
    /// every line was written, or without an audit log.
    pub fn audit_losses(&self) -> Option<(u64, String)> {
        self.spec.audit.as_ref().and_then(|a| a.losses())
    }

    /// The audit log's counter of lost lines, shared with it (a pool sums
    /// its members'), if there is an audit log.
    pub(crate) fn audit_loss_counter(&self) -> Option<std::sync::Arc<crate::audit::AuditLosses>> {
        self.spec.audit.as_ref().map(|a| a.loss_counter())
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

    /// Ends the current helper because of `error`, a failure found above
    /// the bridge (a reply the caller found malformed, say): audits it as
    /// the bridge's own failures are, kills the helper, and returns the
    /// error. The next call starts a fresh helper; handles of the old one
    /// are stale.
    pub fn discard_helper(&mut self, error: Error) -> Error {
        let error = self.failed(error, None);
        self.helper_ended();
        error
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
        self.generation = next_generation();
        let arena = helper.arena();
        let pin_cap = self.pin_cap.min(arena.data_capacity() / 2);
        self.handles.reset(arena.len(), pin_cap);
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
    ///
    /// ```
    /// use ffb_loader::{Bridge, BridgeMode, ErrorKind, Value};
    ///
    /// let mut z = Bridge::builder("libz.so.1")
    /// #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
    ///     .bridge_mode(BridgeMode::Enabled)
    ///     .declare("compress(out[64], *u64, bytes, u64) -> i32")
    ///     .load()?;
    /// let compress = z.function("compress").unwrap();
    ///
    /// // `out[64]` takes no value; `*u64` goes in as 64 and comes back as
    /// // the compressed length.
    /// let data = b"hello hello hello hello";
    /// let args = [Value::U64(64), Value::bytes(data), Value::U64(data.len() as u64)];
    /// let out = z.call(compress, &args)?;
    /// assert_eq!(out.ret, Value::I32(0)); // Z_OK
    /// let Some(Value::U64(len)) = out.out[1] else { panic!("{:?}", out.out) };
    /// let Some(Value::Bytes(compressed)) = &out.out[0] else { panic!("{:?}", out.out) };
    /// assert_eq!(compressed.len(), 64);
    /// assert_eq!(&compressed[..2], &[0x78, 0x9c]); // a zlib header
    /// assert!(len < data.len() as u64);
    ///
    /// // A value that does not fit its type fails before anything is sent.
    /// let e = z.call(compress, &[Value::I64(-1), Value::bytes(data), Value::U64(1)]).unwrap_err();
    /// assert_eq!(e.kind, ErrorKind::BadArgument);
    /// # Ok::<(), ffb_loader::Error>(())
    /// ```
    pub fn call(&mut self, f: FunctionId, args: &[Value]) -> Result<CallOutput> {
        let mut out = CallOutput::default();
        self.call_into(f, args, &mut out)?;
        Ok(out)
    }

    /// Like [`Bridge::call`], but writes the result into `out`, reusing its
    /// buffers: a call whose arguments and results fit what `out` already holds
    /// allocates nothing. On failure `out` is left as it was.
    ///
    /// ```
    /// use ffb_loader::{Bridge, BridgeMode, CallOutput, Value};
    ///
    /// let mut m = Bridge::builder("libm.so.6")
    /// #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
    ///     .bridge_mode(BridgeMode::Enabled)
    ///     .declare("pow(f64, f64) -> f64")
    ///     .load()?;
    /// let pow = m.function("pow").unwrap();
    ///
    /// // One output for the whole loop: the hot path allocates nothing.
    /// let mut out = CallOutput::default();
    /// let mut args = [Value::F64(2.0), Value::F64(0.0)];
    /// for n in 0..10 {
    ///     args[1] = Value::F64(n as f64);
    ///     m.call_into(pow, &args, &mut out)?;
    ///     assert_eq!(out.ret, Value::F64(2f64.powi(n)));
    /// }
    /// # Ok::<(), ffb_loader::Error>(())
    /// ```
    pub fn call_into(&mut self, f: FunctionId, args: &[Value], out: &mut CallOutput) -> Result<()> {
        self.check_call(f, args)?;
        self.ensure_helper()?;
        let (functions, layout, mut ctx) = self.start_layout();
        let declared = &functions[f.index];
        let arena = ctx.arena;
        let mut cursor = CONTROL_SIZE;
        let laid = ctx.lay_out(declared, args, layout, &mut cursor, &mut |i, word| {
            arena.control().args[i].store(word, Relaxed)
        });
        if let Err(e) = laid {
            self.unpin_unsent(0..self.layout.len());
            return Err(e);
        }
        let nargs = self.functions[f.index].sig.args.len() as u32;
        let response = self.exchange(Op::Call, f.index as u32, nargs, Some(f));
        // Sent: the close function ran (or may have), whatever it answered.
        self.settle(f, 0..self.layout.len());
        let response = response?;
        let ret = self.decode_ret(f, response.ret, 0..self.layout.len())?;
        self.copy_out(0..self.layout.len(), &mut out.out)?;
        out.ret = ret;
        out.effects = call_effects();
        Ok(())
    }

    /// Checks that `f` was declared on this bridge's table, that `args` fit
    /// its arity, and that every [`Value::Shared`] among them is live.
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
                self.check_shared(*len)?;
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

    /// Applies what a sent call did to handles, before its results are
    /// read: a close function's token (and its children) is closed, and the
    /// call's retained buffers go to the token that owns them, its first
    /// handle argument (with none, they stay pinned until the helper ends).
    /// `slots` is the call's range of the layout. With the helper gone the
    /// table is empty and this does nothing.
    fn settle(&mut self, f: FunctionId, slots: std::ops::Range<usize>) {
        let handles = &self.functions[f.index].handles;
        if let Some(arg) = handles.closes {
            let token = self.layout[slots.start + arg].token();
            self.handles.close(token, f.index as u32);
        }
        if handles.retained != 0 {
            let slots = &self.layout[slots];
            let owner = slots
                .iter()
                .find(|s| s.is_handle_by_value() && s.token() != NONE)
                .map_or(NONE, |s| s.token());
            for slot in slots.iter().filter(|s| s.is_pinned()) {
                self.handles.own_pin(owner, slot.offset());
            }
        }
    }

    /// Releases the pins laid out in `slots` for calls that were never sent.
    fn unpin_unsent(&mut self, slots: std::ops::Range<usize>) {
        for slot in self.layout[slots].iter().filter(|s| s.is_pinned()) {
            self.handles.pinned.unpin(slot.offset());
        }
    }

    /// Decodes a raw return value of a call laid out in `slots`; decoding
    /// fails only when a returned string cannot be read out of the helper,
    /// or a helper has issued every token it can.
    fn decode_ret(
        &mut self,
        f: FunctionId,
        raw: u64,
        slots: std::ops::Range<usize>,
    ) -> Result<Value> {
        let ret = self.functions[f.index].sig.ret;
        Ok(match ret {
            RetType::Void => Value::Null,
            RetType::Scalar(s) => decode_scalar(s, raw),
            RetType::Handle => {
                let kind = self.functions[f.index].handles.ret_kind;
                let parent = if kind == NONE {
                    NONE
                } else {
                    let tokens = self.layout[slots].iter().map(Slot::token);
                    self.handles.parent_for(&self.kinds, kind, tokens)
                };
                self.handles.register(raw, self.generation, kind, parent)?
            }
            RetType::CStr if raw == 0 => Value::Null,
            RetType::CStr => {
                let helper = self.helper.as_mut().expect("alive after a response");
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
