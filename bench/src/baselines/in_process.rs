//! The in-process baseline: the fixture's functions called directly, the
//! floor any bridge is measured against. The baseline helpers call the
//! fixture through it too.

use std::path::Path;

use libloading::Library;

/// The fixture loaded into this process, with its four functions resolved.
pub struct InProcess {
    nop: unsafe extern "C" fn(),
    add: unsafe extern "C" fn(i64, i64) -> i64,
    mix4: unsafe extern "C" fn(i32, f64, i64, f32) -> f64,
    nop_bytes: unsafe extern "C" fn(*mut u8),
    /// Keeps the functions above mapped while they can be called.
    _lib: Library,
}

impl InProcess {
    pub fn load(path: &Path) -> Result<InProcess, String> {
        // SAFETY: loading runs the library's initialisers; the fixture
        // (tests/fixtures/ffb_fixture.c, built by scripts/bench.sh) has none
        // that could break this process.
        let lib = unsafe { Library::new(path) }
            .map_err(|e| format!("loading {}: {e}", path.display()))?;
        Ok(InProcess {
            nop: symbol(&lib, path, "ffb_nop")?,
            add: symbol(&lib, path, "ffb_add_i64")?,
            mix4: symbol(&lib, path, "ffb_mix4")?,
            nop_bytes: symbol(&lib, path, "ffb_nop_bytes")?,
            _lib: lib,
        })
    }

    /// `void ffb_nop(void)`.
    pub fn nop(&self) {
        // SAFETY: resolved from the library `self` keeps loaded, and typed as
        // the fixture declares it; it does nothing.
        unsafe { (self.nop)() }
    }

    /// `int64_t ffb_add_i64(int64_t, int64_t)`.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        // SAFETY: as in `nop`; it only adds its arguments.
        unsafe { (self.add)(a, b) }
    }

    /// `double ffb_mix4(int32_t, double, int64_t, float)`.
    pub fn mix4(&self, a: i32, b: f64, c: i64, d: f32) -> f64 {
        // SAFETY: as in `nop`; it only combines its arguments.
        unsafe { (self.mix4)(a, b, c, d) }
    }

    /// `void ffb_nop_bytes(uint8_t *)`, which ignores its pointer (so any
    /// pointer, even one into memory another process writes, is fine).
    pub fn nop_bytes(&self, p: *mut u8) {
        // SAFETY: as in `nop`; the fixture never reads or writes through `p`.
        unsafe { (self.nop_bytes)(p) }
    }
}

/// The function `name` in `lib`, typed `F` (a function pointer type the
/// caller matches to the fixture's C declaration).
fn symbol<F: Copy>(lib: &Library, path: &Path, name: &str) -> Result<F, String> {
    // SAFETY: every caller's `F` is the C signature of `name` in the fixture,
    // and the pointer is used only while `lib` is kept loaded (by [`InProcess`]).
    let sym = unsafe { lib.get::<F>(name.as_bytes()) }
        .map_err(|e| format!("{name} in {}: {e}", path.display()))?;
    Ok(*sym)
}
