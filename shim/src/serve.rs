//! A helper's life after the fork: lock down, load, resolve, serve.

use std::ffi::{c_void, CString};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use ffb_contract::signature::{ArgType, Pointee, RetType, ScalarType, Signature};
use ffb_contract::spin::AdaptiveSpin;
use ffb_contract::wire::{
    current_cpu_hint, fds, Control, HelperMessage, Op, SpawnRequest, Status, CONTROL_SIZE,
    MAX_WIRE_ARGS, MESSAGE_CAPACITY, MESSAGE_OFFSET,
};
use libffi::middle::{Cif, Type};

use crate::lockdown::{self, LockdownError};
use crate::sys::{futex_wait, send_packet, write_all};

/// Runs a freshly forked helper. Never returns.
pub fn helper_main(request: SpawnRequest, received: [i32; 4], parent: i32) -> ! {
    if lockdown::take_process(parent, received).is_err() {
        // fd 3 may still be the fork server's socket to the host: say nothing
        // there; the host learns of the failure from the exit status.
        unsafe { libc::_exit(114) };
    }
    for (key, value) in &request.env {
        std::env::set_var(key, value);
    }
    let arena = match map_arena(request.arena_len as usize) {
        Ok(a) => a,
        Err(e) => fail_and_exit("load_failed", &format!("mapping the arena: {e}")),
    };
    // Landlock goes on while the helper is still its original user (so it can
    // open every listed path) and still single-threaded (so every thread the
    // library starts inherits it); the user switch and capability drop follow.
    let locked = lockdown::enter_namespaces(&request.namespaces)
        .and_then(|_| lockdown::set_limits(&request.limits))
        .and_then(|_| lockdown::set_no_new_privs())
        .and_then(|_| match &request.landlock {
            Some(spec) => lockdown::apply_landlock(spec),
            None => Ok(()),
        })
        .and_then(|_| lockdown::drop_privileges(request.run_as.as_ref(), request.limits.threads))
        .and_then(|_| lockdown::install_filter(&request.filter));
    let listener = match locked {
        Ok(fd) => fd,
        Err(LockdownError(why)) => fail_and_exit("load_failed", &format!("lockdown failed: {why}")),
    };
    // The host takes the listener from this process with pidfd_getfd and
    // answers with one byte; only then is the helper's own copy closed, before
    // any of the library's code can run.
    send(&HelperMessage::Listener {
        listener_fd: listener,
    });
    let mut ack = [0u8; 1];
    if unsafe { libc::read(fds::CONTROL, ack.as_mut_ptr().cast(), 1) } != 1 {
        unsafe { libc::_exit(112) };
    }
    unsafe { libc::close(listener) };

    let library = match load(&request.library) {
        Ok(lib) => lib,
        Err(message) => fail_and_exit("load_failed", &message),
    };
    let mut server = Server::new(arena, request.arena_len as usize, library, request.spin_us);
    for text in &request.functions {
        if let Err((status, message)) = server.declare(text) {
            let kind = match status {
                Status::SymbolNotFound => "symbol_not_found",
                _ => "bad_signature",
            };
            fail_and_exit(kind, &message);
        }
    }
    send(&HelperMessage::Ready);
    unsafe { libc::close(fds::CONTROL) };
    server.serve()
}

fn send(message: &HelperMessage) {
    if let Ok(bytes) = serde_json::to_vec(message) {
        let _ = send_packet(fds::CONTROL, &bytes);
    }
}

fn fail_and_exit(kind: &str, message: &str) -> ! {
    send(&HelperMessage::Failed {
        kind: kind.to_string(),
        message: message.to_string(),
    });
    unsafe { libc::_exit(113) }
}

fn map_arena(len: usize) -> std::io::Result<*mut u8> {
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fds::ARENA,
            0,
        )
    };
    unsafe { libc::close(fds::ARENA) };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ptr.cast())
}

fn load(path: &str) -> Result<libloading::Library, String> {
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
    unsafe { libloading::os::unix::Library::open(Some(path), flags) }
        .map(libloading::Library::from)
        .map_err(|e| format!("cannot load '{path}': {e}"))
}

struct Function {
    code: *mut c_void,
    cif: Cif,
    args: Vec<ArgType>,
}

/// Argument storage: one word per argument and a pointer to each word, built
/// once so a call allocates nothing.
struct ArgSlots {
    words: [u64; MAX_WIRE_ARGS],
    ptrs: [*mut c_void; MAX_WIRE_ARGS],
}

struct Server {
    arena: *mut u8,
    arena_len: usize,
    library: libloading::Library,
    functions: Vec<Function>,
    slots: Box<ArgSlots>,
    spin: AdaptiveSpin,
}

impl Server {
    fn new(arena: *mut u8, arena_len: usize, library: libloading::Library, spin_us: u32) -> Self {
        let mut slots = Box::new(ArgSlots {
            words: [0; MAX_WIRE_ARGS],
            ptrs: [std::ptr::null_mut(); MAX_WIRE_ARGS],
        });
        for i in 0..MAX_WIRE_ARGS {
            slots.ptrs[i] = (&mut slots.words[i] as *mut u64).cast();
        }
        Self {
            arena,
            arena_len,
            library,
            functions: Vec::new(),
            slots,
            spin: AdaptiveSpin::new(Duration::from_micros(spin_us.into())),
        }
    }

    /// The control area. The arena stays mapped for the helper's whole life.
    fn control(&self) -> &'static Control {
        unsafe { &*(self.arena as *const Control) }
    }

    fn declare(&mut self, text: &str) -> Result<u32, (Status, String)> {
        let sig = Signature::parse(text)
            .map_err(|e| (Status::BadSignature, format!("bad signature '{text}': {e}")))?;
        let name = CString::new(sig.name.as_str())
            .map_err(|_| (Status::BadSignature, "symbol name contains NUL".to_string()))?;
        let code = unsafe {
            self.library
                .get::<*mut c_void>(name.as_bytes_with_nul())
                .map(|s| *s)
                .map_err(|_| {
                    (
                        Status::SymbolNotFound,
                        format!("symbol '{}' not found in the library", sig.name),
                    )
                })?
        };
        if code.is_null() {
            return Err((
                Status::SymbolNotFound,
                format!("symbol '{}' resolves to NULL", sig.name),
            ));
        }
        let cif = Cif::new(
            sig.args.iter().map(|a| ffi_arg_type(*a)),
            ffi_ret_type(sig.ret),
        );
        self.functions.push(Function {
            code,
            cif,
            args: sig.args,
        });
        Ok((self.functions.len() - 1) as u32)
    }

    fn serve(mut self) -> ! {
        // The host may post its first request before this loop starts; its
        // sequence numbers start at 1, so 0 is "nothing answered yet".
        let mut last = 0;
        loop {
            let seq = self.wait_for_request(last);
            let ctl = self.control();
            let (status, ret, message) = match Op::from_u32(ctl.host.op.load(Relaxed)) {
                Some(Op::Call) => self.call(),
                Some(Op::Declare) => self.declare_from_arena(),
                Some(Op::Batch) => self.batch(),
                None => (Status::BadRequest, 0, Some("unknown op".to_string())),
            };
            let ctl = self.control();
            if let Some(text) = message {
                let bytes = &text.as_bytes()[..text.len().min(MESSAGE_CAPACITY)];
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        self.arena.add(MESSAGE_OFFSET),
                        bytes.len(),
                    );
                }
                ctl.helper.message_len.store(bytes.len() as u32, Relaxed);
            } else {
                ctl.helper.message_len.store(0, Relaxed);
            }
            ctl.helper.ret.store(ret, Relaxed);
            // With the rest of the answer: an early store to this line would
            // pull it away from the spinning host once more per call.
            ctl.helper.helper_cpu.store(current_cpu_hint(), Relaxed);
            ctl.helper.status.store(status as u32, Relaxed);
            ctl.helper.resp_seq.store(seq, SeqCst);
            if ctl.host.host_parked.load(SeqCst) != 0 {
                let _ = write_all(fds::WAKE, &1u64.to_ne_bytes());
            }
            last = seq;
        }
    }

    /// Spins for the configured window, then sleeps on the futex.
    fn wait_for_request(&mut self, last: u32) -> u32 {
        let ctl = self.control();
        let budget = self.spin.budget();
        // Read lazily: a request that follows at once needs no clock.
        let mut start: Option<Instant> = None;
        let mut spins = 0u32;
        // A host on this same CPU cannot post while this thread spins.
        let mut yielding = false;
        loop {
            let seq = ctl.host.req_seq.load(Acquire);
            if seq != last {
                self.spin.answered_while_spinning();
                return seq;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                let now = Instant::now();
                if now - *start.get_or_insert(now) >= budget {
                    break;
                }
                let host = ctl.host.host_cpu.load(Relaxed);
                yielding = yielding || (host != 0 && host == current_cpu_hint());
            }
            if yielding {
                unsafe { libc::sched_yield() };
            } else {
                std::hint::spin_loop();
            }
        }
        self.spin.slept();
        loop {
            ctl.helper.helper_parked.store(1, SeqCst);
            let seq = ctl.host.req_seq.load(SeqCst);
            if seq != last {
                ctl.helper.helper_parked.store(0, Relaxed);
                return seq;
            }
            futex_wait(&ctl.host.req_seq, last);
            ctl.helper.helper_parked.store(0, Relaxed);
            let seq = ctl.host.req_seq.load(Acquire);
            if seq != last {
                return seq;
            }
        }
    }

    fn call(&mut self) -> (Status, u64, Option<String>) {
        let ctl = self.control();
        let index = ctl.host.func.load(Relaxed) as usize;
        let nargs = ctl.host.nargs.load(Relaxed) as usize;
        match self.invoke(index, nargs, |i| ctl.args[i].load(Relaxed)) {
            Ok(ret) => (Status::Ok, ret, None),
            Err(why) => (Status::BadRequest, 0, Some(why)),
        }
    }

    /// Runs the calls of a batch in order. A call that kills the helper ends
    /// the batch; `completed` tells the host how far it got.
    fn batch(&mut self) -> (Status, u64, Option<String>) {
        let ctl = self.control();
        let count = ctl.host.nargs.load(Relaxed) as usize;
        let results = ctl.args[0].load(Relaxed) as usize;
        ctl.progress.completed.store(0, Relaxed);
        let arena_len = self.arena_len;
        let fits = move |offset: usize, len: usize| {
            offset >= CONTROL_SIZE && offset.checked_add(len).is_some_and(|end| end <= arena_len)
        };
        if !fits(results, count.saturating_mul(8)) {
            return (
                Status::BadRequest,
                0,
                Some("batch results out of range".into()),
            );
        }
        let mut record = CONTROL_SIZE;
        for n in 0..count {
            if !fits(record, 8) {
                return (
                    Status::BadRequest,
                    0,
                    Some("batch record out of range".into()),
                );
            }
            let header = unsafe { std::ptr::read_unaligned(self.arena.add(record) as *const u64) };
            let (index, nargs) = ((header & 0xffff_ffff) as usize, (header >> 32) as usize);
            let words = record + 8;
            if nargs > MAX_WIRE_ARGS || !fits(words, nargs * 8) {
                return (
                    Status::BadRequest,
                    0,
                    Some("batch record out of range".into()),
                );
            }
            let arena = self.arena;
            let word = |i: usize| unsafe {
                std::ptr::read_unaligned(arena.add(words + 8 * i) as *const u64)
            };
            match self.invoke(index, nargs, word) {
                Ok(ret) => unsafe {
                    std::ptr::write_unaligned(self.arena.add(results + 8 * n) as *mut u64, ret);
                },
                Err(why) => return (Status::BadRequest, 0, Some(why)),
            }
            ctl.progress.completed.store(n as u32 + 1, Release);
            record = words + 8 * nargs;
        }
        (Status::Ok, count as u64, None)
    }

    /// Calls function `index` with `nargs` argument words from `word(i)`.
    fn invoke(
        &mut self,
        index: usize,
        nargs: usize,
        word: impl Fn(usize) -> u64,
    ) -> Result<u64, String> {
        let Some(function) = self.functions.get(index) else {
            return Err(format!("no function {index}"));
        };
        if nargs != function.args.len() {
            return Err("argument count mismatch".into());
        }
        for (i, ty) in function.args.iter().enumerate() {
            let w = word(i);
            self.slots.words[i] = match ty {
                ArgType::Scalar(_) | ArgType::Handle => w,
                ArgType::CStr | ArgType::Bytes | ArgType::Out(_) | ArgType::Ptr(_) => {
                    if w < CONTROL_SIZE as u64 || w >= self.arena_len as u64 {
                        return Err("buffer offset out of range".into());
                    }
                    self.arena as u64 + w
                }
            };
        }
        let mut ret: u64 = 0;
        unsafe {
            libffi::raw::ffi_call(
                function.cif.as_raw_ptr(),
                Some(std::mem::transmute::<*mut c_void, unsafe extern "C" fn()>(
                    function.code,
                )),
                (&mut ret as *mut u64).cast(),
                self.slots.ptrs.as_mut_ptr(),
            );
        }
        Ok(ret)
    }

    fn declare_from_arena(&mut self) -> (Status, u64, Option<String>) {
        let len = self.control().args[0].load(Relaxed) as usize;
        if len > self.arena_len - CONTROL_SIZE {
            return (Status::BadRequest, 0, Some("declaration too long".into()));
        }
        let bytes =
            unsafe { std::slice::from_raw_parts(self.arena.add(CONTROL_SIZE), len) }.to_vec();
        let Ok(text) = String::from_utf8(bytes) else {
            return (
                Status::BadSignature,
                0,
                Some("signature is not UTF-8".into()),
            );
        };
        match self.declare(&text) {
            Ok(index) => (Status::Ok, index.into(), None),
            Err((status, message)) => (status, 0, Some(message)),
        }
    }
}

fn ffi_scalar(s: ScalarType) -> Type {
    match s {
        ScalarType::I8 => Type::i8(),
        ScalarType::I16 => Type::i16(),
        ScalarType::I32 => Type::i32(),
        ScalarType::I64 => Type::i64(),
        ScalarType::U8 => Type::u8(),
        ScalarType::U16 => Type::u16(),
        ScalarType::U32 => Type::u32(),
        ScalarType::U64 => Type::u64(),
        ScalarType::Isize => Type::isize(),
        ScalarType::Usize => Type::usize(),
        ScalarType::F32 => Type::f32(),
        ScalarType::F64 => Type::f64(),
    }
}

fn ffi_arg_type(a: ArgType) -> Type {
    match a {
        ArgType::Scalar(s) => ffi_scalar(s),
        ArgType::CStr | ArgType::Bytes | ArgType::Out(_) | ArgType::Handle => Type::pointer(),
        ArgType::Ptr(Pointee::Scalar(_) | Pointee::Handle) => Type::pointer(),
    }
}

fn ffi_ret_type(r: RetType) -> Type {
    match r {
        RetType::Void => Type::void(),
        RetType::Scalar(s) => ffi_scalar(s),
        RetType::CStr | RetType::Handle => Type::pointer(),
    }
}
