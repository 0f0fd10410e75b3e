//! Direct, in-process loading of a fixture, for differential tests: call
//! the same function through ffb and directly, and compare.
//!
//! Only use this with [`fixture_lib`](crate::fixture_lib()) (or functions
//! of the hostile corpus that are known to be harmless), or a system
//! library such as libz: whatever the library does happens to the test
//! process itself.
//!
//! Where a C function is defined for every value of its arguments (plain
//! integers and floats, no pointers), look it up as a safe
//! `extern "C" fn(...)`: the lookup's `SAFETY` comment then carries the
//! whole argument, and the calls need no `unsafe` of their own. Functions
//! that take pointers are looked up as `unsafe extern "C" fn(...)`, and
//! each call says why its pointers are valid.

use std::path::Path;

/// A shared library `dlopen`ed into the test process.
pub struct InProcess {
    lib: libloading::Library,
}

impl InProcess {
    /// `dlopen`s `path` (a path, or a soname such as `libz.so.1`).
    ///
    /// # Panics
    /// If the library cannot be loaded.
    pub fn open(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        // SAFETY: the libraries the tests open (the fixtures, libz, libm)
        // have no initialisers with side effects on the test process.
        let lib = unsafe { libloading::Library::new(path) }
            .unwrap_or_else(|e| panic!("ffb-tests: cannot dlopen {}: {e}", path.display()));
        InProcess { lib }
    }

    /// Looks up `name`, e.g.
    /// `lib.sym::<extern "C" fn(i64, i64) -> i64>("ffb_add_i64")`.
    ///
    /// # Safety
    /// `T` must match the C signature of the symbol exactly; calling
    /// through a mismatched type is undefined behaviour. If `T` is a safe
    /// `extern "C" fn`, the function must also be sound to call with any
    /// arguments of those types.
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
