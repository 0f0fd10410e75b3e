//! Declared functions and how the helper calls them.
//!
//! Each function is prepared once, when it is declared: how every argument
//! word becomes a register's value, how the return register becomes the
//! return word, a libffi call interface, and whether it can be called
//! directly. Most declarations in practice (`sqlite3_column_int64(handle,
//! i32) -> i64`, `PQgetvalue(handle, i32, i32) -> cstr`) take only integers
//! and pointers, at most six, and return an integer, a pointer, a float or
//! nothing. On x86-64 (System V) such a function is called exactly like an
//! `extern "C" fn(u64, ...) -> R` of the same arity, so those are called
//! through that type, without libffi's per-call classification; everything
//! else goes through libffi. Both paths put the same bits in the same
//! registers and make the same return word (the unit tests compare them on
//! every shape), so which one ran is invisible to the host.
//!
//! A call allocates nothing: argument slots are built once, per helper.

use std::ffi::{c_void, CString};

use ffb_contract::signature::{ArgType, Pointee, RetType, ScalarType, Signature};
use ffb_contract::wire::{Status, MAX_WIRE_ARGS};
use libffi::middle::{Cif, Type};

use crate::arena::Arena;

// The direct path's register reasoning is the System V x86-64 ABI's.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("ffb-shim's direct calls assume the System V x86-64 ABI");

/// The most arguments a direct call takes: the six general-purpose
/// argument registers (rdi, rsi, rdx, rcx, r8, r9).
const MAX_DIRECT_ARGS: usize = 6;

/// How an integer's low bytes fill a 64-bit register, as libffi fills it:
/// signed types sign-extended, unsigned ones zero-extended (libffi's
/// `ffi_call_int` for an argument, its `store_table` for a return).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Widen {
    I8,
    I16,
    I32,
    U8,
    U16,
    U32,
    /// Eight bytes: 64-bit integers and pointers, as they are.
    Full,
}

impl Widen {
    /// Every widening, each at the index of its discriminant.
    const ALL: [Widen; 7] = [
        Widen::I8,
        Widen::I16,
        Widen::I32,
        Widen::U8,
        Widen::U16,
        Widen::U32,
        Widen::Full,
    ];

    fn of(s: ScalarType) -> Widen {
        match s {
            ScalarType::I8 => Widen::I8,
            ScalarType::I16 => Widen::I16,
            ScalarType::I32 => Widen::I32,
            ScalarType::U8 => Widen::U8,
            ScalarType::U16 => Widen::U16,
            ScalarType::U32 => Widen::U32,
            ScalarType::I64
            | ScalarType::U64
            | ScalarType::Isize
            | ScalarType::Usize
            | ScalarType::F32
            | ScalarType::F64 => Widen::Full,
        }
    }

    /// The bits above the value, and whether its sign fills them.
    fn shift_and_sign(self) -> (u32, bool) {
        match self {
            Widen::I8 => (56, true),
            Widen::I16 => (48, true),
            Widen::I32 => (32, true),
            Widen::U8 => (56, false),
            Widen::U16 => (48, false),
            Widen::U32 => (32, false),
            Widen::Full => (0, false),
        }
    }

    /// `w`'s low bytes extended to 64 bits. Shifts, not a branch per
    /// width: this runs for every argument of every call.
    fn apply(self, w: u64) -> u64 {
        let (shift, signed) = self.shift_and_sign();
        let up = w << shift;
        if signed {
            ((up as i64) >> shift) as u64
        } else {
            up >> shift
        }
    }
}

/// How one argument word becomes the argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    /// An integer or a handle, in a general-purpose register.
    Int(Widen),
    /// A float's bits, in a vector register (libffi only).
    Float,
    /// An arena offset, passed as the helper's address of that byte.
    Buffer,
}

impl Arg {
    fn of(a: ArgType) -> Arg {
        match a {
            ArgType::Scalar(s) if s.is_float() => Arg::Float,
            ArgType::Scalar(s) => Arg::Int(Widen::of(s)),
            ArgType::Handle => Arg::Int(Widen::Full),
            ArgType::CStr | ArgType::Bytes | ArgType::Out(_) | ArgType::Ptr(_) => Arg::Buffer,
        }
    }
}

/// How [`ArgSlots::call_words`] turns one argument word into its slot: a
/// buffer offset into an address, anything else widened (a float's bits
/// as they are, [`Widen::Full`]).
#[derive(Clone, Copy, Debug)]
struct ArgWord {
    widen: Widen,
    buffer: bool,
}

impl ArgWord {
    fn of(a: Arg) -> ArgWord {
        let (widen, buffer) = match a {
            Arg::Int(widen) => (widen, false),
            Arg::Float => (Widen::Full, false),
            Arg::Buffer => (Widen::Full, true),
        };
        ArgWord { widen, buffer }
    }
}

/// Where the return value is, and how it becomes the return word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    /// Nothing: the word is 0.
    Void,
    /// rax, widened as libffi widens it.
    Int(Widen),
    /// xmm0's low four bytes, the word's upper half 0 (libffi stores four).
    F32,
    /// xmm0's eight bytes.
    F64,
}

impl Ret {
    fn of(r: RetType) -> Ret {
        match r {
            RetType::Void => Ret::Void,
            RetType::Scalar(ScalarType::F32) => Ret::F32,
            RetType::Scalar(ScalarType::F64) => Ret::F64,
            RetType::Scalar(s) => Ret::Int(Widen::of(s)),
            RetType::CStr | RetType::Handle => Ret::Int(Widen::Full),
        }
    }
}

/// One resolved function.
pub struct Function {
    code: unsafe extern "C" fn(),
    cif: Cif,
    args: Box<[ArgWord]>,
    /// When every argument is [`Arg::Int`] or [`Arg::Buffer`], at most
    /// [`MAX_DIRECT_ARGS`] of them: the caller for this shape, chosen once.
    direct: Option<DirectCall>,
}

impl Function {
    /// Parses `text`, finds its symbol in `library` and prepares the call.
    /// The error says which status to report, and why.
    pub fn resolve(
        library: &libloading::Library,
        text: &str,
    ) -> Result<Function, (Status, String)> {
        let sig = Signature::parse(text)
            .map_err(|e| (Status::BadSignature, format!("bad signature '{text}': {e}")))?;
        let name = CString::new(sig.name.as_str())
            .map_err(|_| (Status::BadSignature, "symbol name contains NUL".to_string()))?;
        // SAFETY: the symbol is looked up as a plain address (`*mut c_void`),
        // which is what dlsym returns for any symbol; nothing is called or
        // read through it here.
        let symbol = unsafe { library.get::<*mut c_void>(name.as_bytes_with_nul()) };
        let address = symbol.map(|s| *s).map_err(|_| {
            (
                Status::SymbolNotFound,
                format!("symbol '{}' not found in the library", sig.name),
            )
        })?;
        if address.is_null() {
            return Err((
                Status::SymbolNotFound,
                format!("symbol '{}' resolves to NULL", sig.name),
            ));
        }
        crate::helper::refuse_data_symbol(address, &sig.name)
            .map_err(|m| (Status::SymbolNotFound, m))?;
        // SAFETY: a non-null code address has the size and representation of
        // a function pointer on this platform; the declared signature, not
        // this type, says how it is called (Function::invoke).
        let code = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn()>(address) };
        Ok(Function::prepare(code, &sig))
    }

    /// Everything a call of `code`, declared as `sig`, needs.
    fn prepare(code: unsafe extern "C" fn(), sig: &Signature) -> Function {
        let args: Box<[Arg]> = sig.args.iter().map(|a| Arg::of(*a)).collect();
        let ret = Ret::of(sig.ret);
        let direct = (args.len() <= MAX_DIRECT_ARGS && !args.contains(&Arg::Float))
            .then(|| direct_caller(ret, args.len()));
        let cif = Cif::new(
            sig.args.iter().map(|a| ffi_arg_type(*a)),
            ffi_ret_type(sig.ret),
        );
        Function {
            code,
            cif,
            args: args.iter().map(|a| ArgWord::of(*a)).collect(),
            direct,
        }
    }

    /// Calls the function with the first `args.len()` words of `slots`,
    /// already widened ([`ArgSlots::call`]), and returns the return word.
    ///
    /// # Safety
    ///
    /// `code` must be a function of the declared signature; each buffer
    /// argument's word must be an address the function may use as the
    /// declaration says. (What the library's code then does is what the
    /// sandbox is for: this process is locked down and expendable.)
    unsafe fn invoke(&self, slots: &mut ArgSlots) -> u64 {
        match self.direct {
            Some(call) => {
                let words = slots
                    .words
                    .first_chunk::<MAX_DIRECT_ARGS>()
                    .expect("MAX_WIRE_ARGS >= MAX_DIRECT_ARGS");
                // SAFETY: `call` was chosen for this signature's shape
                // (direct_caller); the rest is this function's own contract.
                unsafe { call(self.code, words) }
            }
            // SAFETY: this function's own contract.
            None => unsafe { self.invoke_ffi(slots) },
        }
    }

    /// The libffi path.
    ///
    /// # Safety
    ///
    /// As [`Function::invoke`].
    unsafe fn invoke_ffi(&self, slots: &mut ArgSlots) -> u64 {
        let mut ret: u64 = 0;
        // SAFETY: `cif` was built from this function's own signature, with
        // one argument per word, and `ptrs[i]` points at word i
        // (ArgSlots::new), which holds each argument in its low bytes
        // (little-endian); `ret` is a full word, as libffi requires for any
        // return type of at most 8 bytes. The function itself: the caller's
        // contract.
        unsafe {
            libffi::raw::ffi_call(
                self.cif.as_raw_ptr(),
                Some(self.code),
                (&raw mut ret).cast(),
                slots.ptrs.as_mut_ptr(),
            )
        };
        ret
    }

    /// The direct path alone, for the tests: `None` for a shape it does
    /// not take.
    ///
    /// # Safety
    ///
    /// As [`Function::invoke`].
    #[cfg(test)]
    unsafe fn invoke_direct(&self, words: &[u64; MAX_WIRE_ARGS]) -> Option<u64> {
        let words = words.first_chunk::<MAX_DIRECT_ARGS>().expect("6 of 64");
        // SAFETY: the caller's contract; `call` is this shape's.
        self.direct.map(|call| unsafe { call(self.code, words) })
    }
}

/// A direct call of one shape: `code` called with the argument words,
/// giving the return word.
///
/// Under System V x86-64, each of the at most six arguments of a direct
/// shape is an integer, a handle or a pointer, all of class INTEGER and at
/// most eight bytes, so each takes the next general-purpose argument
/// register, in order, exactly as a `u64` does; the words were widened as
/// libffi widens them ([`Widen`]), so the registers hold the bits libffi
/// would put there. The return is read from the register the declared type
/// returns in (rax for integers and pointers, then widened as libffi does;
/// xmm0 for floats), or not at all for void. So the call is the one libffi
/// makes for the signature.
///
/// Calling one is `unsafe`: `code` must be a function of the shape it was
/// chosen for, and its pointer arguments valid for it.
type DirectCall = unsafe fn(unsafe extern "C" fn(), &[u64; MAX_DIRECT_ARGS]) -> u64;

/// The caller for `n` arguments returning `ret`, `n` at most
/// [`MAX_DIRECT_ARGS`].
fn direct_caller(ret: Ret, n: usize) -> DirectCall {
    fn arities<R: Returns>() -> [DirectCall; MAX_DIRECT_ARGS + 1] {
        [
            direct::<R, 0>,
            direct::<R, 1>,
            direct::<R, 2>,
            direct::<R, 3>,
            direct::<R, 4>,
            direct::<R, 5>,
            direct::<R, 6>,
        ]
    }
    let by_arity = match ret {
        Ret::Void => arities::<Nothing>(),
        Ret::F32 => arities::<f32>(),
        Ret::F64 => arities::<f64>(),
        Ret::Int(Widen::I8) => arities::<Int<{ Widen::I8 as u8 }>>(),
        Ret::Int(Widen::I16) => arities::<Int<{ Widen::I16 as u8 }>>(),
        Ret::Int(Widen::I32) => arities::<Int<{ Widen::I32 as u8 }>>(),
        Ret::Int(Widen::U8) => arities::<Int<{ Widen::U8 as u8 }>>(),
        Ret::Int(Widen::U16) => arities::<Int<{ Widen::U16 as u8 }>>(),
        Ret::Int(Widen::U32) => arities::<Int<{ Widen::U32 as u8 }>>(),
        Ret::Int(Widen::Full) => arities::<Int<{ Widen::Full as u8 }>>(),
    };
    by_arity[n]
}

/// A return kind of a direct call: the Rust type the register is read as,
/// and how that becomes the return word.
trait Returns {
    type Raw;
    fn word(raw: Self::Raw) -> u64;
}

/// A void return: the word is 0.
struct Nothing;
impl Returns for Nothing {
    type Raw = ();
    fn word((): ()) -> u64 {
        0
    }
}

/// xmm0's low four bytes; libffi stores four, so the upper half stays 0.
impl Returns for f32 {
    type Raw = f32;
    fn word(raw: f32) -> u64 {
        u64::from(raw.to_bits())
    }
}

impl Returns for f64 {
    type Raw = f64;
    fn word(raw: f64) -> u64 {
        raw.to_bits()
    }
}

/// rax, widened as [`Widen`] number `W` says.
struct Int<const W: u8>;
impl<const W: u8> Returns for Int<W> {
    type Raw = u64;
    fn word(raw: u64) -> u64 {
        Widen::ALL[usize::from(W)].apply(raw)
    }
}

/// The [`DirectCall`] of `N` arguments returning `R` (see there).
///
/// # Safety
///
/// As [`DirectCall`].
unsafe fn direct<R: Returns, const N: usize>(
    code: unsafe extern "C" fn(),
    w: &[u64; MAX_DIRECT_ARGS],
) -> u64 {
    // SAFETY: this function's own contract, for N arguments.
    R::word(unsafe { call_as::<R::Raw>(code, w, N) })
}

type F0<R> = unsafe extern "C" fn() -> R;
type F1<R> = unsafe extern "C" fn(u64) -> R;
type F2<R> = unsafe extern "C" fn(u64, u64) -> R;
type F3<R> = unsafe extern "C" fn(u64, u64, u64) -> R;
type F4<R> = unsafe extern "C" fn(u64, u64, u64, u64) -> R;
type F5<R> = unsafe extern "C" fn(u64, u64, u64, u64, u64) -> R;
type F6<R> = unsafe extern "C" fn(u64, u64, u64, u64, u64, u64) -> R;

/// The function pointer types a direct call is made through.
trait CodePointer: Copy {}
impl<R> CodePointer for F0<R> {}
impl<R> CodePointer for F1<R> {}
impl<R> CodePointer for F2<R> {}
impl<R> CodePointer for F3<R> {}
impl<R> CodePointer for F4<R> {}
impl<R> CodePointer for F5<R> {}
impl<R> CodePointer for F6<R> {}

/// `code` as a function pointer of type `F`: the same address. Making one
/// is sound (a non-null code address); calling it is what needs care.
fn cast<F: CodePointer>(code: unsafe extern "C" fn()) -> F {
    const { assert!(size_of::<F>() == size_of::<unsafe extern "C" fn()>()) };
    // SAFETY: `F` is one of the function pointer types above, of the same
    // size (checked at compile time) and representation as `code`: this
    // reinterprets one non-null code address as another function pointer.
    unsafe { std::mem::transmute_copy::<unsafe extern "C" fn(), F>(&code) }
}

/// Calls `code` as an `unsafe extern "C" fn(u64 × n) -> R` with `w[..n]`.
///
/// # Safety
///
/// `code` must be callable with that type under the platform's C ABI
/// ([`DirectCall`] says when it is), and `n` at most
/// [`MAX_DIRECT_ARGS`].
unsafe fn call_as<R>(code: unsafe extern "C" fn(), w: &[u64; MAX_DIRECT_ARGS], n: usize) -> R {
    // Every arm: this function's own contract, for `n` arguments.
    match n {
        // SAFETY: as above.
        0 => unsafe { cast::<F0<R>>(code)() },
        // SAFETY: as above.
        1 => unsafe { cast::<F1<R>>(code)(w[0]) },
        // SAFETY: as above.
        2 => unsafe { cast::<F2<R>>(code)(w[0], w[1]) },
        // SAFETY: as above.
        3 => unsafe { cast::<F3<R>>(code)(w[0], w[1], w[2]) },
        // SAFETY: as above.
        4 => unsafe { cast::<F4<R>>(code)(w[0], w[1], w[2], w[3]) },
        // SAFETY: as above.
        5 => unsafe { cast::<F5<R>>(code)(w[0], w[1], w[2], w[3], w[4]) },
        // SAFETY: as above.
        _ => unsafe { cast::<F6<R>>(code)(w[0], w[1], w[2], w[3], w[4], w[5]) },
    }
}

/// Argument storage: one word per argument and a pointer to each word, as
/// libffi wants them.
pub struct ArgSlots {
    words: [u64; MAX_WIRE_ARGS],
    ptrs: [*mut c_void; MAX_WIRE_ARGS],
}

impl ArgSlots {
    /// Slots whose pointers point at their own words: boxed, so they stay put.
    pub fn new() -> Box<ArgSlots> {
        let mut slots = Box::new(ArgSlots {
            words: [0; MAX_WIRE_ARGS],
            ptrs: [std::ptr::null_mut(); MAX_WIRE_ARGS],
        });
        for i in 0..MAX_WIRE_ARGS {
            slots.ptrs[i] = (&raw mut slots.words[i]).cast();
        }
        slots
    }

    /// Calls `function` with `nargs` argument words from `word(i)`, as
    /// [`ArgSlots::call_words`] does.
    pub fn call(
        &mut self,
        function: &Function,
        arena: &Arena,
        nargs: usize,
        word: impl Fn(usize) -> u64,
    ) -> Result<u64, String> {
        self.call_words(function, arena, (0..nargs).map(word))
            .map_err(String::from)
    }

    /// Calls `function` with the argument words of `words` (exactly as
    /// many as it declares): integers and handles widened to their
    /// register's value, floats as their bits, buffer offsets turned into
    /// addresses in the helper's mapping of `arena`.
    pub fn call_words(
        &mut self,
        function: &Function,
        arena: &Arena,
        words: impl ExactSizeIterator<Item = u64>,
    ) -> Result<u64, &'static str> {
        if words.len() != function.args.len() {
            return Err("argument count mismatch");
        }
        for ((slot, arg), w) in self.words.iter_mut().zip(&function.args).zip(words) {
            *slot = if arg.buffer {
                arena.address(w).ok_or("buffer offset out of range")?
            } else {
                arg.widen.apply(w)
            };
        }
        // SAFETY: the function was resolved from the library under its
        // declared signature, with one word per argument set above and
        // every buffer word an address inside the arena's data area. What
        // the library's code then does is what the sandbox is for.
        Ok(unsafe { function.invoke(self) })
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

#[cfg(test)]
mod tests;
