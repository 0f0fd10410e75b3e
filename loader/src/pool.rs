//! A [`Pool`] of helpers: many host threads calling one library at once.
//!
//! A [`Bridge`] is one helper, and its calls run one at a time. A pool keeps
//! several bridges to the same library (its *members*), each built from a
//! clone of one [`BridgeBuilder`], so every member has the same declarations
//! and the same [`FunctionId`]s. A call borrows a member for its duration and
//! runs on the calling thread: there is no dispatcher thread between the
//! caller and the helper, so a pooled call costs a bridged call plus two short
//! critical sections.
//!
//! * **Any member.** A call without handles takes the member that was idle
//!   most recently (its helper is the likeliest to still be spinning, and the
//!   others stay parked and can be reaped). If none is idle, the pool starts
//!   another member, up to [`PoolConfig::max_helpers`]; at the maximum the
//!   caller waits, and members are handed to waiting callers first come, first
//!   served over a crossbeam channel.
//! * **Handles stay home.** A call with a [`Value::Handle`] argument runs on the
//!   member that issued the handle (the one whose [`Bridge::generation`]
//!   equals [`Handle::generation`]), waiting for it if it is busy. A handle no
//!   member owns any more — its helper died, or it came from another bridge
//!   or pool — fails with [`ErrorKind::StaleHandle`], as it would on a single
//!   bridge.
//! * **Failures stay local.** A call that ends its member's helper (see
//!   [`ErrorKind::ends_helper`]) returns that error; the member starts a fresh
//!   helper on its next call, and the old helper's handles are stale.
//! * **Idle reaping.** Members beyond [`PoolConfig::min_helpers`] that have been
//!   idle for [`PoolConfig::idle_timeout`] are dropped (their helpers killed)
//!   by a small background thread, which stops when the pool is dropped. A
//!   member whose current helper has issued a handle is never reaped: the pool
//!   cannot know whether the handle is still held, and reaping would turn it
//!   stale behind its owner's back. (Its helper still ends as any helper can:
//!   by a failure, or with the pool.)
//!
//! A batch ([`Pool::call_batch`]) runs on one member, like a call. Shared
//! buffers ([`Value::Shared`]) belong to one bridge and cannot go through a
//! pool.
//!
//! Calls on one member are strictly ordered, as on a bridge; calls on
//! different members are not ordered with each other, and members do not share
//! the library's state (each helper has its own copy of its globals).
//!
//! ```
//! use std::time::Duration;
//! use ffb_loader::{Bridge, BridgeMode, Pool, PoolConfig, Value};
//!
//! let builder = Bridge::builder("libz.so.1")
//! #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
//!     .bridge_mode(BridgeMode::Enabled)
//!     .declare("crc32(u64, bytes, u32) -> u64");
//! let pool = Pool::new(
//!     builder,
//!     PoolConfig {
//!         max_helpers: 4,
//!         idle_timeout: Some(Duration::from_secs(10)),
//!         ..PoolConfig::default()
//!     },
//! )?;
//! let crc32 = pool.function("crc32").unwrap();
//! std::thread::scope(|s| {
//!     for _ in 0..8 {
//!         s.spawn(|| {
//!             let args = [Value::U64(0), Value::bytes("hello"), Value::U32(5)];
//!             let out = pool.call(crc32, &args).unwrap();
//!             assert_eq!(out.ret, Value::U64(0x3610a686));
//!         });
//!     }
//! });
//! assert!(pool.stats().members <= 4);
//! # Ok::<(), ffb_loader::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::audit::AuditLosses;
use crate::bridge::{BatchFailure, Bridge, BridgeBuilder, CallOutput, FunctionId};
use crate::error::{Error, ErrorKind, Result};
use crate::value::{Handle, Value};

/// How a [`Pool`] sizes itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Members kept even when idle. [`Pool::new`] starts this many (at least
    /// one, to check the library loads). Default: 1.
    pub min_helpers: usize,
    /// The most members the pool runs at once; callers wait when all are busy.
    /// Default: the number of cores available.
    pub max_helpers: usize,
    /// Members beyond `min_helpers` idle for this long are dropped. `None`
    /// keeps every member until the pool is dropped. Default: 30 s.
    pub idle_timeout: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            min_helpers: 1,
            max_helpers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            idle_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// A snapshot of a pool's members and counters (see [`Pool::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Live members, busy or idle.
    pub members: usize,
    /// Members waiting for a call.
    pub idle: usize,
    /// Callers waiting because every member was busy and the pool was full.
    pub waiting: usize,
    /// Calls that ran on a member, whatever their outcome (each call in a
    /// batch counts).
    pub calls: u64,
    /// Members the pool started.
    pub spawns: u64,
    /// Fresh helpers members started after one of theirs ended.
    pub respawns: u64,
    /// Members dropped for being idle.
    pub reaped: u64,
    /// Members kept from reaping because their helper issued a handle.
    pub pinned: usize,
}

/// The function a pooled call runs: a [`FunctionId`] (from [`Pool::function`])
/// or a declared name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callee<'a> {
    /// A declared function, by id.
    Id(FunctionId),
    /// A declared function, by name.
    Name(&'a str),
}

impl From<FunctionId> for Callee<'_> {
    fn from(f: FunctionId) -> Self {
        Callee::Id(f)
    }
}

impl<'a> From<&'a str> for Callee<'a> {
    fn from(name: &'a str) -> Self {
        Callee::Name(name)
    }
}

impl<'a> From<&'a String> for Callee<'a> {
    fn from(name: &'a String) -> Self {
        Callee::Name(name)
    }
}

/// Bridges to one library, shared by many threads. Cheap to clone: clones
/// share the members. Dropping the last clone kills every helper.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// Owned only by [`Pool`] clones, never by the reaper, so its `Drop` (which
/// joins the reaper) never runs on the reaper's own thread.
struct Inner {
    reaper: Option<Reaper>,
    shared: Arc<Shared>,
}

struct Reaper {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    builder: BridgeBuilder,
    min: usize,
    max: usize,
    idle_timeout: Option<Duration>,
    state: Mutex<State>,
    /// Members handed straight to callers that are waiting, and `Retry` when
    /// room for one more member opened up instead.
    handoff_tx: Sender<Handoff>,
    handoff_rx: Receiver<Handoff>,
    names: RwLock<HashMap<String, Option<FunctionId>>>,
    calls: AtomicU64,
    spawns: AtomicU64,
    respawns: AtomicU64,
    reaped: AtomicU64,
    /// The lost-line counters of the members' audit logs (each member opens
    /// its own), for [`Pool::audit_losses`]. A finished member's counter is
    /// dropped unless it counted a loss.
    audit_losses: Mutex<Vec<Arc<AuditLosses>>>,
}

struct State {
    members: Vec<Member>,
    /// Ids of idle members, the most recently used last. Their bridges are in
    /// `members`; `idle_since` grows along the list.
    idle: Vec<u64>,
    /// Members being started, outside the lock.
    spawning: usize,
    /// Callers blocked on `handoff_rx`: each will receive exactly one message.
    waiting: usize,
    next_id: u64,
}

struct Member {
    id: u64,
    /// The bridge's generation when it was last returned; handles route by it.
    generation: u64,
    /// `Some` while nobody holds the member: idle (listed in `State::idle`),
    /// or kept for a handle's caller (`affinity_waiters > 0`).
    bridge: Option<Box<Bridge>>,
    idle_since: Instant,
    /// The generation in which this member issued a handle, if any: while it
    /// is still the member's generation, the member is not reaped.
    pinned: u64,
    /// Callers waiting for this member because their handles live in it.
    affinity_waiters: usize,
    wake: Arc<Condvar>,
}

enum Handoff {
    Member(u64, Box<Bridge>),
    Retry,
}

/// A member borrowed for one call; returned on drop (even when unwinding).
struct Lease<'p> {
    shared: &'p Shared,
    id: u64,
    bridge: Option<Box<Bridge>>,
    /// Whether a call on this lease returned a handle.
    issued_handle: bool,
}

impl Pool {
    /// Starts a pool of bridges built from clones of `builder`, with
    /// `max(config.min_helpers, 1)` members at once, so that a library that
    /// does not load fails here. Fails with [`ErrorKind::BadArgument`] if
    /// `max_helpers` is 0 or below `min_helpers`, and with the builder's
    /// error if a member does not load.
    pub fn new(builder: BridgeBuilder, config: PoolConfig) -> Result<Pool> {
        if config.max_helpers == 0 || config.min_helpers > config.max_helpers {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!(
                    "a pool needs 1 <= max_helpers and min_helpers <= max_helpers (min {}, max {})",
                    config.min_helpers, config.max_helpers
                ),
            ));
        }
        let (handoff_tx, handoff_rx) = crossbeam_channel::unbounded();
        let bridges = load_many(&builder, config.min_helpers.max(1))?;
        let audit_losses = bridges
            .iter()
            .filter_map(Bridge::audit_loss_counter)
            .collect();
        let now = Instant::now();
        let mut members = Vec::new();
        let mut idle = Vec::new();
        for (id, bridge) in (0..).zip(bridges) {
            members.push(Member {
                id,
                generation: bridge.generation(),
                bridge: Some(Box::new(bridge)),
                idle_since: now,
                pinned: 0,
                affinity_waiters: 0,
                wake: Arc::new(Condvar::new()),
            });
            idle.push(id);
        }
        let started = members.len() as u64;
        let shared = Arc::new(Shared {
            builder,
            min: config.min_helpers,
            max: config.max_helpers,
            idle_timeout: config.idle_timeout,
            state: Mutex::new(State {
                members,
                idle,
                spawning: 0,
                waiting: 0,
                next_id: started,
            }),
            handoff_tx,
            handoff_rx,
            names: RwLock::new(HashMap::new()),
            calls: AtomicU64::new(0),
            spawns: AtomicU64::new(started),
            respawns: AtomicU64::new(0),
            reaped: AtomicU64::new(0),
            audit_losses: Mutex::new(audit_losses),
        });
        let reaper = match config.idle_timeout {
            Some(timeout) if config.max_helpers > config.min_helpers => {
                Some(start_reaper(Arc::downgrade(&shared), timeout)?)
            }
            _ => None,
        };
        Ok(Pool {
            inner: Arc::new(Inner { reaper, shared }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// The id of a declared function, by name: the same in every member. The
    /// first lookup of a name borrows a member (waiting if all are busy).
    pub fn function(&self, name: &str) -> Option<FunctionId> {
        let shared = self.shared();
        if let Some(&known) = shared
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return known;
        }
        let found = shared.acquire_any().ok()?.bridge().function(name);
        shared
            .names
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), found);
        found
    }

    /// Calls a declared function on a member: the one that owns the handles
    /// among `args`, if any, else any member. See [`Bridge::call`].
    pub fn call<'a>(&self, f: impl Into<Callee<'a>>, args: &[Value]) -> Result<CallOutput> {
        let mut out = CallOutput::default();
        self.call_into(f, args, &mut out)?;
        Ok(out)
    }

    /// Like [`Pool::call`], reusing `out`'s buffers (see [`Bridge::call_into`]).
    pub fn call_into<'a>(
        &self,
        f: impl Into<Callee<'a>>,
        args: &[Value],
        out: &mut CallOutput,
    ) -> Result<()> {
        let shared = self.shared();
        let mut lease = match route(args)? {
            Some(h) => shared.acquire_for(h)?,
            None => shared.acquire_any()?,
        };
        let bridge = lease.bridge();
        let f = match f.into() {
            Callee::Id(f) => f,
            Callee::Name(name) => bridge.function(name).ok_or_else(|| {
                Error::new(ErrorKind::BadSignature, format!("'{name}' is not declared"))
            })?,
        };
        let respawns = bridge.respawns();
        let result = bridge.call_into(f, args, out);
        let outputs = result.as_ref().ok().map(|_| &*out);
        lease.finish(respawns, 1, outputs);
        result
    }

    /// Runs a batch on one member, in one round trip (see
    /// [`Bridge::call_batch`]): on the member that owns the handles among the
    /// calls' arguments, if any, else on any member. All the handles in a
    /// batch must come from the same member.
    pub fn call_batch(
        &self,
        calls: &[(FunctionId, &[Value])],
    ) -> std::result::Result<Vec<CallOutput>, BatchFailure> {
        let fail = BatchFailure::before_sending;
        let mut home = None;
        for (i, (_, args)) in calls.iter().enumerate() {
            let h = route(args).map_err(|e| fail(i, e))?;
            if home.is_none() {
                home = h.map(|h| (i, h));
            }
        }
        let shared = self.shared();
        let mut lease = match home {
            Some((i, h)) => shared.acquire_for(h).map_err(|e| fail(i, e))?,
            None => shared.acquire_any().map_err(|e| fail(0, e))?,
        };
        let bridge = lease.bridge();
        let respawns = bridge.respawns();
        let result = bridge.call_batch(calls);
        match &result {
            Ok(outputs) => lease.finish(respawns, outputs.len(), outputs.iter()),
            Err(failure) => lease.finish(respawns, failure.index + 1, failure.completed.iter()),
        }
        result
    }

    /// Audit lines that could not be written to the audit log
    /// ([`BridgeBuilder::audit_log`]) by any member, finished ones
    /// included: how many, and the first error. `None` when every line was
    /// written, or without an audit log.
    pub fn audit_losses(&self) -> Option<(u64, String)> {
        let counters = self.shared().audit_counters();
        let mut total = 0;
        let mut first = None;
        for (count, error) in counters.iter().filter_map(|c| c.get()) {
            total += count;
            first.get_or_insert(error);
        }
        first.map(|e| (total, e))
    }

    /// A snapshot of the pool's members and counters.
    pub fn stats(&self) -> PoolStats {
        let shared = self.shared();
        let st = shared.lock();
        PoolStats {
            members: st.members.len(),
            idle: st.idle.len(),
            waiting: st.waiting,
            calls: shared.calls.load(Relaxed),
            spawns: shared.spawns.load(Relaxed),
            respawns: shared.respawns.load(Relaxed),
            reaped: shared.reaped.load(Relaxed),
            pinned: st.members.iter().filter(|m| m.is_pinned()).count(),
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        f.debug_struct("Pool")
            .field("min_helpers", &shared.min)
            .field("max_helpers", &shared.max)
            .field("idle_timeout", &shared.idle_timeout)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(reaper) = &mut self.reaper {
            // Disconnecting the channel wakes the reaper, which then returns.
            drop(reaper.stop.take());
            if let Some(thread) = reaper.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// The handle a call must follow (the first among `args`), if any. Shared
/// buffers belong to one bridge, and a pool lends none.
fn route(args: &[Value]) -> Result<Option<Handle>> {
    let mut home = None;
    for v in args {
        match v {
            Value::Handle(h) if home.is_none() => home = Some(*h),
            Value::Shared(_) => {
                return Err(Error::new(
                    ErrorKind::BadArgument,
                    "Value::Shared cannot go through a pool: shared buffers belong to one Bridge",
                ))
            }
            _ => {}
        }
    }
    Ok(home)
}

/// Loads `n` bridges, in parallel when there are several.
fn load_many(builder: &BridgeBuilder, n: usize) -> Result<Vec<Bridge>> {
    if n == 1 {
        return Ok(vec![builder.clone().load()?]);
    }
    std::thread::scope(|s| {
        let loads: Vec<_> = (0..n).map(|_| s.spawn(|| builder.clone().load())).collect();
        // Collect every result first, so no load is left running on an error.
        let results: Vec<Result<Bridge>> = loads
            .into_iter()
            .map(|l| {
                l.join().unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::LoadFailed,
                        "starting a pool member panicked",
                    ))
                })
            })
            .collect();
        results.into_iter().collect()
    })
}

fn start_reaper(shared: Weak<Shared>, timeout: Duration) -> Result<Reaper> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let period = (timeout / 2).max(Duration::from_millis(1));
    let thread = std::thread::Builder::new()
        .name("ffb-pool-reaper".into())
        .spawn(move || loop {
            match stopped.recv_timeout(period) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.reap(timeout);
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::LoadFailed,
                format!("cannot start the pool's reaper thread: {e}"),
            )
        })?;
    Ok(Reaper {
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn audit_counters(&self) -> MutexGuard<'_, Vec<Arc<AuditLosses>>> {
        self.audit_losses.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a new member's lost-line counter, and forgets those of
    /// finished members (no one else holds them) that lost nothing.
    fn count_audit_losses_of(&self, bridge: &Bridge) {
        if let Some(counter) = bridge.audit_loss_counter() {
            let mut counters = self.audit_counters();
            counters.retain(|c| Arc::strong_count(c) > 1 || c.get().is_some());
            counters.push(counter);
        }
    }

    fn lease(&self, id: u64, bridge: Box<Bridge>) -> Lease<'_> {
        Lease {
            shared: self,
            id,
            bridge: Some(bridge),
            issued_handle: false,
        }
    }

    /// Borrows the most recently idle member, starts a new one if there is
    /// room, or waits for one to be returned.
    fn acquire_any(&self) -> Result<Lease<'_>> {
        let mut st = self.lock();
        loop {
            if let Some(id) = st.idle.pop() {
                let bridge = st
                    .member_mut(id)
                    .and_then(|m| m.bridge.take())
                    .expect("an idle member has its bridge");
                return Ok(self.lease(id, bridge));
            }
            if st.members.len() + st.spawning < self.max {
                st.spawning += 1;
                drop(st);
                let loaded = self.builder.clone().load().map(Box::new);
                st = self.lock();
                st.spawning -= 1;
                return match loaded {
                    Ok(bridge) => {
                        self.spawns.fetch_add(1, Relaxed);
                        self.count_audit_losses_of(&bridge);
                        let id = st.next_id;
                        st.next_id += 1;
                        st.members.push(Member {
                            id,
                            generation: bridge.generation(),
                            bridge: None,
                            idle_since: Instant::now(),
                            pinned: 0,
                            affinity_waiters: 0,
                            wake: Arc::new(Condvar::new()),
                        });
                        Ok(self.lease(id, bridge))
                    }
                    Err(e) => {
                        // A waiter may have counted on this member: let it try.
                        self.retry_one(&mut st);
                        Err(e)
                    }
                };
            }
            st.waiting += 1;
            drop(st);
            // Whoever decrements `waiting` sends exactly one message, and the
            // pool holds a sender, so this cannot disconnect.
            match self.handoff_rx.recv() {
                Ok(Handoff::Member(id, bridge)) => return Ok(self.lease(id, bridge)),
                Ok(Handoff::Retry) | Err(_) => st = self.lock(),
            }
        }
    }

    /// Borrows the member that issued `h`, waiting for it if it is busy.
    fn acquire_for(&self, h: Handle) -> Result<Lease<'_>> {
        let stale = || {
            Error::new(
                ErrorKind::StaleHandle,
                format!("{h} belongs to a helper that is gone"),
            )
        };
        let mut st = self.lock();
        let Some(member) = st
            .members
            .iter_mut()
            .find(|m| m.generation == h.generation() && m.generation != 0)
        else {
            return Err(stale());
        };
        let id = member.id;
        let taken = member.bridge.take();
        let bridge = match taken {
            Some(bridge) => {
                st.idle.retain(|&i| i != id);
                bridge
            }
            None => {
                member.affinity_waiters += 1;
                let wake = member.wake.clone();
                loop {
                    st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
                    // A member that is gone dropped its waiters' claim with it.
                    let member = st.member_mut(id).ok_or_else(stale)?;
                    if let Some(bridge) = member.bridge.take() {
                        member.affinity_waiters -= 1;
                        break bridge;
                    }
                }
            }
        };
        drop(st);
        let lease = self.lease(id, bridge);
        // The member may have lost that helper while this caller waited.
        if lease.bridge.as_ref().map(|b| b.generation()) != Some(h.generation()) {
            return Err(stale());
        }
        Ok(lease)
    }

    /// Takes a member back: for a caller waiting on one of its handles first,
    /// else for a caller waiting for any member, else into the idle list.
    /// Without a bridge (a call panicked) the member is dropped.
    fn release(&self, id: u64, bridge: Option<Box<Bridge>>, issued_handle: bool) {
        let mut st = self.lock();
        let Some(pos) = st.members.iter().position(|m| m.id == id) else {
            drop(st);
            drop(bridge);
            return;
        };
        let Some(bridge) = bridge else {
            let member = st.members.remove(pos);
            member.wake.notify_all();
            self.retry_one(&mut st);
            return;
        };
        let waiting = st.waiting;
        let member = &mut st.members[pos];
        member.generation = bridge.generation();
        if issued_handle {
            member.pinned = member.generation;
        }
        if member.affinity_waiters > 0 {
            member.bridge = Some(bridge);
            member.wake.notify_all();
        } else if waiting > 0 {
            st.waiting -= 1;
            let _ = self.handoff_tx.send(Handoff::Member(id, bridge));
        } else {
            member.bridge = Some(bridge);
            member.idle_since = Instant::now();
            st.idle.push(id);
        }
    }

    /// Lets one waiting caller (if any) try again to start a member.
    fn retry_one(&self, st: &mut State) {
        if st.waiting > 0 {
            st.waiting -= 1;
            let _ = self.handoff_tx.send(Handoff::Retry);
        }
    }

    /// Drops the members beyond `min` that have been idle for `timeout` and
    /// hold no handles, oldest first. Helpers are killed outside the lock.
    fn reap(&self, timeout: Duration) {
        let mut doomed = Vec::new();
        {
            let mut st = self.lock();
            let mut i = 0;
            while st.members.len() > self.min && i < st.idle.len() {
                let id = st.idle[i];
                let pos = st
                    .members
                    .iter()
                    .position(|m| m.id == id)
                    .expect("idle members are members");
                let member = &st.members[pos];
                if member.idle_since.elapsed() < timeout {
                    // The rest of the list has been idle for less.
                    break;
                }
                if member.is_pinned() {
                    i += 1;
                    continue;
                }
                st.idle.remove(i);
                doomed.push(st.members.remove(pos));
            }
        }
        self.reaped.fetch_add(doomed.len() as u64, Relaxed);
        drop(doomed);
    }
}

impl Member {
    fn is_pinned(&self) -> bool {
        self.pinned != 0 && self.pinned == self.generation
    }
}

impl State {
    fn member_mut(&mut self, id: u64) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }
}

impl Lease<'_> {
    /// Accounts for `ran` calls made on this lease, and notes whether their
    /// `outputs` (those that succeeded) hold a handle.
    fn finish<'o>(
        &mut self,
        respawns_before: u64,
        ran: usize,
        outputs: impl IntoIterator<Item = &'o CallOutput>,
    ) {
        let respawned = self.bridge().respawns() - respawns_before;
        self.shared.calls.fetch_add(ran as u64, Relaxed);
        self.shared.respawns.fetch_add(respawned, Relaxed);
        let is_handle = |v: &Value| matches!(v, Value::Handle(_));
        self.issued_handle |= outputs
            .into_iter()
            .any(|o| is_handle(&o.ret) || o.out.iter().flatten().any(is_handle));
    }

    fn bridge(&mut self) -> &mut Bridge {
        self.bridge
            .as_mut()
            .expect("a lease holds its bridge until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let bridge = self.bridge.take();
        if std::thread::panicking() {
            // The member may be mid-call; do not hand it to anyone else.
            self.shared.release(self.id, None, false);
            drop(bridge);
        } else {
            self.shared.release(self.id, bridge, self.issued_handle);
        }
    }
}
