//! Declared functions and how the helper calls them: a libffi call
//! interface per signature, built once, and argument slots built once, so a
//! call allocates nothing.

use std::ffi::{c_void, CString};

use ffb_contract::signature::{ArgType, Pointee, RetType, ScalarType, Signature};
use ffb_contract::wire::{Status, MAX_WIRE_ARGS};
use libffi::middle::{Cif, Type};

use crate::arena::Arena;

/// One resolved function.
pub struct Function {
    code: unsafe extern "C" fn(),
    cif: Cif,
    args: Vec<ArgType>,
}

impl Function {
    /// Parses `text`, finds its symbol in `library` and builds its call
    /// interface. The error says which status to report, and why.
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
        // SAFETY: a non-null code address has the size and representation of
        // a function pointer on this platform; the declared signature, not
        // this type, says how it is called (through `cif`).
        let code = unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn()>(address) };
        let cif = Cif::new(
            sig.args.iter().map(|a| ffi_arg_type(*a)),
            ffi_ret_type(sig.ret),
        );
        Ok(Function {
            code,
            cif,
            args: sig.args,
        })
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

    /// Calls `function` with `nargs` argument words from `word(i)`: scalars
    /// and handles as they are, buffer offsets turned into addresses in the
    /// helper's mapping of `arena`.
    pub fn call(
        &mut self,
        function: &Function,
        arena: &Arena,
        nargs: usize,
        word: impl Fn(usize) -> u64,
    ) -> Result<u64, String> {
        if nargs != function.args.len() {
            return Err("argument count mismatch".into());
        }
        for (i, ty) in function.args.iter().enumerate() {
            let w = word(i);
            self.words[i] = match ty {
                ArgType::Scalar(_) | ArgType::Handle => w,
                ArgType::CStr | ArgType::Bytes | ArgType::Out(_) | ArgType::Ptr(_) => arena
                    .address(w)
                    .ok_or_else(|| "buffer offset out of range".to_string())?,
            };
        }
        let mut ret: u64 = 0;
        // SAFETY: `cif` was built from this function's own signature, with
        // one argument per word set above, and `ptrs[i]` points at word i
        // (ArgSlots::new), which holds each argument in its low bytes; `ret`
        // is a full word, as libffi requires for any return type of at most
        // 8 bytes. What the library's code then does is what the sandbox is
        // for: this process is locked down and expendable.
        unsafe {
            libffi::raw::ffi_call(
                function.cif.as_raw_ptr(),
                Some(function.code),
                (&raw mut ret).cast(),
                self.ptrs.as_mut_ptr(),
            )
        };
        Ok(ret)
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
