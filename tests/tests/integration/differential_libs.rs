//! Real system libraries, bridged against in process: libm, libc's string
//! and memory functions, zlib and SQLite. Every function is called through
//! the bridge and directly (libloading) with the same random arguments,
//! [`cases`] per test (100k unless `FFB_DIFF_CASES` says otherwise), and
//! the results must be identical: floats by their bits (NaN payloads and
//! the sign of zero included), integers, out-values and buffers exactly,
//! and the comparison functions by sign, which is all C promises of them.
//!
//! The arguments mix edge values into random ones: NaNs with payloads,
//! signalling NaNs, ±0, subnormals, ±inf, the largest and smallest finite
//! values; empty buffers, buffers without a terminator (for the functions
//! that take a length), interior NULs, bytes above 0x7f; overlapping
//! `memmove`s; lengths of 0 and of the whole arena. The calls go in
//! batches ([`Bridge::call_batch`]), which is what makes 100k cases cheap.
//!
//! Pointer results (`memchr`, `strchr`, `memmem`, ...) are compared as
//! addresses: the haystack lives in the bridge's shared buffer, whose
//! address in the helper is learnt once (`memchr` of a known byte), so a
//! bridged result must be that address plus the offset found in process.
//!
//! SQLite is driven through `ffb_loader::sql::Connection` against the
//! in-process reference of [`ffb_tests::sql_corpus`]: `differential.rs`
//! checks values stored and read back; here each case is a row of bound
//! values and the expressions SQLite computes over them (arithmetic with its
//! overflow to float, conversions, printf, hex, comparisons across types).
//!
//! Seeded: each test prints `FFB_DIFF_SEED=N`; set it to replay a run.

use std::ffi::c_int;
use std::time::{Duration, Instant};

use ffb_loader::sql::{Config, Connection};
use ffb_loader::{Bridge, BridgeBuilder, BridgeMode, CallOutput, ErrorKind, FunctionId, Value};
use ffb_tests::in_process::InProcess;
use ffb_tests::rng::{seed_from_env, XorShift};
use ffb_tests::sql_corpus::reference::Sqlite;
use ffb_tests::sql_corpus::{
    assert_same_rows, edge_blobs, edge_floats, edge_ints, edge_texts, Dialect, Rows, SqlValue,
};
use ffb_tests::{bridge_builder, shim_bin};

/// Calls per round trip.
const BATCH: usize = 500;

/// Cases per test: `FFB_DIFF_CASES`, default 100,000.
fn cases() -> usize {
    ffb_tests::env_or("FFB_DIFF_CASES", 100_000)
}

// ------------------------------------------------------------ random input

/// The seeded generator, with the draws these tests need.
struct Rng(XorShift);

impl Rng {
    /// Seeded from `FFB_DIFF_SEED`, else the clock; prints the seed.
    fn new(test: &str) -> Rng {
        let seed = seed_from_env("FFB_DIFF_SEED", test);
        // xorshift never leaves zero: start from a scrambled, odd state.
        Rng(XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1))
    }

    fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.u64().is_multiple_of(one_in)
    }

    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())].clone()
    }

    /// A length: 0 often, mostly short, sometimes up to `max`.
    fn len(&mut self, max: usize) -> usize {
        match self.below(16) {
            0 => 0,
            1..=8 => self.below(17.min(max + 1)),
            9..=13 => self.below(300.min(max + 1)),
            _ => self.below(max + 1),
        }
    }

    /// [`Rng::bytes`] of a [`Rng::len`] up to `max`.
    fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.len(max);
        self.bytes(n)
    }

    /// `n` bytes from one of a few alphabets: three letters (so searches
    /// and comparisons go deep), bytes above 0x7f (signedness), anything
    /// but NUL, or anything.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let alphabet: &[u8] = match self.below(4) {
            0 => b"abc",
            1 => &[b'a', 0x7f, 0x80, 0xfe, 0xff],
            _ => &[],
        };
        let no_nul = self.chance(2);
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let w = self.u64();
            for byte in w.to_le_bytes().into_iter().take(n - v.len()) {
                v.push(match alphabet {
                    [] if no_nul => byte.max(1),
                    [] => byte,
                    a => a[byte as usize % a.len()],
                });
            }
        }
        v
    }

    /// An f64: edge values, any bit pattern, NaNs with payloads,
    /// subnormals, values near the extremes, or ordinary magnitudes.
    fn f64(&mut self) -> f64 {
        let sign = self.u64() & (1 << 63);
        let mantissa = self.u64() & 0x000f_ffff_ffff_ffff;
        match self.below(10) {
            0 | 1 => self.pick(EDGE_F64),
            2 => f64::from_bits(self.u64()),
            // A NaN: quiet or signalling, with a payload.
            3 => f64::from_bits(sign | 0x7ff0_0000_0000_0000 | mantissa.max(1)),
            4 => f64::from_bits(sign | mantissa),
            5 => {
                let exponent = self.pick(&[1u64, 2, 3, 0x7fd, 0x7fe]);
                f64::from_bits(sign | exponent << 52 | mantissa)
            }
            // Exponents around 1, where most functions are interesting.
            _ => {
                let exponent = 1023 - 40 + self.below(80) as u64;
                f64::from_bits(sign | exponent << 52 | mantissa)
            }
        }
    }

    /// An f32, drawn as [`Rng::f64`] is.
    fn f32(&mut self) -> f32 {
        let sign = (self.u64() as u32) & (1 << 31);
        let mantissa = (self.u64() as u32) & 0x007f_ffff;
        match self.below(10) {
            0 | 1 => self.pick(EDGE_F32),
            2 => f32::from_bits(self.u64() as u32),
            3 => f32::from_bits(sign | 0x7f80_0000 | mantissa.max(1)),
            4 => f32::from_bits(sign | mantissa),
            5 => {
                let exponent = self.pick(&[1u32, 2, 0xfd, 0xfe]);
                f32::from_bits(sign | exponent << 23 | mantissa)
            }
            _ => {
                let exponent = 127 - 20 + self.below(40) as u32;
                f32::from_bits(sign | exponent << 23 | mantissa)
            }
        }
    }

    /// An int for `ldexp`-like exponents and the initial value of an
    /// `int` out-parameter.
    fn i32(&mut self) -> i32 {
        if self.chance(3) {
            self.pick(&[
                0,
                1,
                -1,
                2,
                -2,
                127,
                -149,
                1023,
                -1074,
                2000,
                -2000,
                i32::MAX,
                i32::MIN,
            ])
        } else {
            (self.u64() as i32) >> self.below(32)
        }
    }
}

const EDGE_F64: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    3.0,
    0.1,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
    -f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    std::f64::consts::PI,
    -std::f64::consts::PI,
    std::f64::consts::FRAC_PI_2,
    1e308,
    1e-308,
    709.782712893384,
    -745.1332191019412,
    9_007_199_254_740_993.0,
    4.5,
    -2.5,
];

const EDGE_F32: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    0.1,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    f32::MIN_POSITIVE,
    f32::MAX,
    f32::MIN,
    f32::EPSILON,
    std::f32::consts::PI,
    88.72284,
    -103.97208,
    16_777_217.0,
    -2.5,
];

/// Edge NaNs the draws above produce only by chance, as bit patterns: a
/// negative quiet NaN, a signalling NaN, and payloads at both ends.
const EDGE_NAN_BITS_F64: &[u64] = &[
    0xfff8_0000_0000_0000,
    0x7ff0_0000_0000_0001,
    0x7ff8_dead_beef_0001,
    0x7fff_ffff_ffff_ffff,
    0xfff4_0000_0000_0000,
];

// ------------------------------------------------------ comparing outcomes

/// Equal, with floats compared by their bits.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// A value as a failure message shows it: floats with their bits, long
/// buffers cut short.
fn show(v: &Value) -> String {
    match v {
        Value::F64(x) => format!("{x:?} (0x{:016x})", x.to_bits()),
        Value::F32(x) => format!("{x:?}f32 (0x{:08x})", x.to_bits()),
        Value::Bytes(b) | Value::Str(b) if b.len() > 48 => {
            format!("{} bytes {}...", b.len(), hex::encode(&b[..48]))
        }
        Value::Bytes(b) => format!("bytes {}", hex::encode(b)),
        other => format!("{other:?}"),
    }
}

fn show_all<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    values.into_iter().map(show).collect::<Vec<_>>().join(", ")
}

/// How a return value must agree.
#[derive(Clone, Copy, PartialEq)]
enum Agree {
    Exactly,
    /// Only the sign (`memcmp`, `strcmp`, ...).
    BySign,
}

/// What the in-process call gave: the return value, and every out-value,
/// as the bridge reports them (one per parameter, `None` by value).
struct Want {
    ret: Value,
    out: Vec<Option<Value>>,
    agree: Agree,
}

impl Want {
    fn exactly(ret: Value, out: Vec<Option<Value>>) -> Want {
        Want {
            ret,
            out,
            agree: Agree::Exactly,
        }
    }

    /// A function of values only: no out-values.
    fn plain(ret: Value, arity: usize) -> Want {
        Want::exactly(ret, vec![None; arity])
    }

    fn by_sign(ret: i32, out: Vec<Option<Value>>) -> Want {
        Want {
            ret: Value::I32(ret.signum()),
            out,
            agree: Agree::BySign,
        }
    }

    fn matches(&self, got: &CallOutput) -> bool {
        let ret = match (self.agree, &got.ret) {
            (Agree::BySign, Value::I32(r)) => Value::I32(r.signum()) == self.ret,
            (Agree::BySign, _) => false,
            (Agree::Exactly, r) => same(r, &self.ret),
        };
        ret && got.out.len() == self.out.len()
            && got.out.iter().zip(&self.out).all(|pair| match pair {
                (None, None) => true,
                (Some(a), Some(b)) => same(a, b),
                _ => false,
            })
    }
}

/// One call to make both ways.
struct Case {
    name: &'static str,
    f: FunctionId,
    args: Vec<Value>,
    want: Want,
}

/// Runs cases through one bridge in batches and checks each against its
/// in-process result.
struct Differ<'b> {
    bridge: &'b mut Bridge,
    pending: Vec<Case>,
    checked: usize,
}

impl<'b> Differ<'b> {
    fn new(bridge: &'b mut Bridge) -> Self {
        Differ {
            bridge,
            pending: Vec::with_capacity(BATCH),
            checked: 0,
        }
    }

    fn function(&self, name: &str) -> FunctionId {
        self.bridge
            .function(name)
            .unwrap_or_else(|| panic!("{name} is not declared"))
    }

    fn push(&mut self, name: &'static str, args: Vec<Value>, want: Want) {
        let f = self.function(name);
        self.pending.push(Case {
            name,
            f,
            args,
            want,
        });
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// Sends what is pending as one batch and checks every result.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let calls: Vec<(FunctionId, &[Value])> =
            self.pending.iter().map(|c| (c.f, &c.args[..])).collect();
        let outs = self.bridge.call_batch(&calls).unwrap_or_else(|failure| {
            let c = &self.pending[failure.index];
            panic!("{}({}): {failure}", c.name, show_all(&c.args))
        });
        assert_eq!(outs.len(), self.pending.len(), "one output per call");
        for (c, got) in self.pending.iter().zip(&outs) {
            assert!(
                c.want.matches(got),
                "{}({}):\n  bridged    ret {} out [{}]\n  in process ret {} out [{}]",
                c.name,
                show_all(&c.args),
                show(&got.ret),
                show_all(got.out.iter().flatten()),
                show(&c.want.ret),
                show_all(c.want.out.iter().flatten()),
            );
        }
        self.checked += self.pending.len();
        self.pending.clear();
    }

    /// Flushes, and reports how many cases were checked in how long.
    fn finish(mut self, what: &str, start: Instant) -> usize {
        self.flush();
        eprintln!(
            "{what}: {} cases identical in {:.2?}",
            self.checked,
            start.elapsed()
        );
        self.checked
    }
}

/// The function `name` of `lib`, copied out of its symbol: it stays valid
/// while `lib` is open, which every test keeps for its whole length.
///
/// # Safety
/// `T` must be the function's C type, as for [`InProcess::sym`].
unsafe fn sym<T: Copy>(lib: &InProcess, name: &str) -> T {
    // SAFETY: the caller promises `T` is the symbol's C type.
    *unsafe { lib.sym::<T>(name) }
}

/// `let NAME: TYPE` for each pair: the function NAME of the library
/// `lib`, through [`sym`].
macro_rules! functions {
    ($lib:ident; $($name:ident: $ty:ty),* $(,)?) => {
        $(
            // SAFETY: every alias used here spells the C prototype, from
            // <string.h>, <strings.h> or zlib.h, of the functions given it.
            let $name: $ty = unsafe { sym(&$lib, stringify!($name)) };
        )*
    };
}

/// A bridge to `lib` with `decls` (an explicit arena size, so that "the
/// whole arena" means the same thing whatever the default).
fn load(lib: &str, decls: &[String], arena: usize) -> Bridge {
    let decls: Vec<&str> = decls.iter().map(String::as_str).collect();
    let builder: BridgeBuilder = bridge_builder(lib, &decls).arena_size(arena);
    builder
        .load()
        .unwrap_or_else(|e| panic!("loading {lib}: {e}"))
}

// -------------------------------------------------------------------- libm

/// The C shapes of the libm functions under test, each given once: its
/// name, its declaration for the bridge, and its type in process. `*`
/// parameters are out-pointers, passed with a random initial value the
/// function may overwrite. The value-only shapes are safe fn pointers:
/// libm defines them for every argument (at worst setting errno or a
/// floating-point flag). The out-pointer shapes are `unsafe`, and each call
/// says why its pointer is valid.
macro_rules! math_shapes {
    ($($shape:ident: $decl:literal => $fn:ty;)*) => {
        /// A libm function's C shape.
        #[derive(Clone, Copy, Debug)]
        enum Shape {
            $($shape,)*
        }

        impl Shape {
            fn signature(self, name: &str) -> String {
                let rest = match self {
                    $(Shape::$shape => $decl,)*
                };
                format!("{name}{rest}")
            }
        }

        /// A libm function looked up in process, by its shape.
        #[derive(Clone, Copy)]
        enum MathFn {
            $($shape($fn),)*
        }

        impl MathFn {
            /// Looks `name` up in `lib` as `shape`. The fn pointer is copied
            /// out of the symbol: it stays valid while `lib` is open, which
            /// the caller keeps for the whole test.
            fn lookup(lib: &InProcess, name: &str, shape: Shape) -> MathFn {
                match shape {
                    $(Shape::$shape => MathFn::$shape(
                        // SAFETY: the table below gives each function its C
                        // type from <math.h>, spelled as the variant's fn
                        // type (long is 64-bit on the targets ffb runs on);
                        // the value-only ones are defined for every
                        // argument, so safe fn pointers are sound.
                        unsafe { sym(lib, name) },
                    ),)*
                }
            }
        }
    };
}

math_shapes! {
    F64x1: "(f64) -> f64" => extern "C" fn(f64) -> f64;
    F64x2: "(f64, f64) -> f64" => extern "C" fn(f64, f64) -> f64;
    F64x3: "(f64, f64, f64) -> f64" => extern "C" fn(f64, f64, f64) -> f64;
    F64I32: "(f64, i32) -> f64" => extern "C" fn(f64, c_int) -> f64;
    F64OutI32: "(f64, *i32) -> f64" => unsafe extern "C" fn(f64, *mut c_int) -> f64;
    F64OutF64: "(f64, *f64) -> f64" => unsafe extern "C" fn(f64, *mut f64) -> f64;
    F64x2OutI32: "(f64, f64, *i32) -> f64" => unsafe extern "C" fn(f64, f64, *mut c_int) -> f64;
    F64Out2: "(f64, *f64, *f64) -> void" => unsafe extern "C" fn(f64, *mut f64, *mut f64);
    F64ToI64: "(f64) -> i64" => extern "C" fn(f64) -> i64;
    F64ToI32: "(f64) -> i32" => extern "C" fn(f64) -> c_int;
    F32x1: "(f32) -> f32" => extern "C" fn(f32) -> f32;
    F32x2: "(f32, f32) -> f32" => extern "C" fn(f32, f32) -> f32;
    F32x3: "(f32, f32, f32) -> f32" => extern "C" fn(f32, f32, f32) -> f32;
    F32I32: "(f32, i32) -> f32" => extern "C" fn(f32, c_int) -> f32;
    F32OutI32: "(f32, *i32) -> f32" => unsafe extern "C" fn(f32, *mut c_int) -> f32;
    F32OutF32: "(f32, *f32) -> f32" => unsafe extern "C" fn(f32, *mut f32) -> f32;
    F32x2OutI32: "(f32, f32, *i32) -> f32" => unsafe extern "C" fn(f32, f32, *mut c_int) -> f32;
    F32Out2: "(f32, *f32, *f32) -> void" => unsafe extern "C" fn(f32, *mut f32, *mut f32);
}

const LIBM: &[(&str, Shape)] = &[
    ("sin", Shape::F64x1),
    ("cos", Shape::F64x1),
    ("tan", Shape::F64x1),
    ("asin", Shape::F64x1),
    ("acos", Shape::F64x1),
    ("atan", Shape::F64x1),
    ("sinh", Shape::F64x1),
    ("cosh", Shape::F64x1),
    ("tanh", Shape::F64x1),
    ("asinh", Shape::F64x1),
    ("acosh", Shape::F64x1),
    ("atanh", Shape::F64x1),
    ("exp", Shape::F64x1),
    ("exp2", Shape::F64x1),
    ("expm1", Shape::F64x1),
    ("log", Shape::F64x1),
    ("log2", Shape::F64x1),
    ("log10", Shape::F64x1),
    ("log1p", Shape::F64x1),
    ("sqrt", Shape::F64x1),
    ("cbrt", Shape::F64x1),
    ("erf", Shape::F64x1),
    ("erfc", Shape::F64x1),
    ("tgamma", Shape::F64x1),
    ("lgamma", Shape::F64x1),
    ("floor", Shape::F64x1),
    ("ceil", Shape::F64x1),
    ("trunc", Shape::F64x1),
    ("round", Shape::F64x1),
    ("rint", Shape::F64x1),
    ("nearbyint", Shape::F64x1),
    ("logb", Shape::F64x1),
    ("j0", Shape::F64x1),
    ("y1", Shape::F64x1),
    ("pow", Shape::F64x2),
    ("atan2", Shape::F64x2),
    ("hypot", Shape::F64x2),
    ("fmod", Shape::F64x2),
    ("remainder", Shape::F64x2),
    ("nextafter", Shape::F64x2),
    ("fmin", Shape::F64x2),
    ("fmax", Shape::F64x2),
    ("fdim", Shape::F64x2),
    ("copysign", Shape::F64x2),
    ("fma", Shape::F64x3),
    ("ldexp", Shape::F64I32),
    ("scalbn", Shape::F64I32),
    ("frexp", Shape::F64OutI32),
    ("modf", Shape::F64OutF64),
    ("remquo", Shape::F64x2OutI32),
    ("sincos", Shape::F64Out2),
    ("lround", Shape::F64ToI64),
    ("lrint", Shape::F64ToI64),
    ("ilogb", Shape::F64ToI32),
    ("sinf", Shape::F32x1),
    ("cosf", Shape::F32x1),
    ("tanf", Shape::F32x1),
    ("expf", Shape::F32x1),
    ("exp2f", Shape::F32x1),
    ("logf", Shape::F32x1),
    ("log2f", Shape::F32x1),
    ("log10f", Shape::F32x1),
    ("sqrtf", Shape::F32x1),
    ("cbrtf", Shape::F32x1),
    ("atanf", Shape::F32x1),
    ("erff", Shape::F32x1),
    ("tgammaf", Shape::F32x1),
    ("floorf", Shape::F32x1),
    ("powf", Shape::F32x2),
    ("atan2f", Shape::F32x2),
    ("hypotf", Shape::F32x2),
    ("fmodf", Shape::F32x2),
    ("nextafterf", Shape::F32x2),
    ("fminf", Shape::F32x2),
    ("fmaf", Shape::F32x3),
    ("ldexpf", Shape::F32I32),
    ("frexpf", Shape::F32OutI32),
    ("modff", Shape::F32OutF32),
    ("remquof", Shape::F32x2OutI32),
    ("sincosf", Shape::F32Out2),
];

impl MathFn {
    /// Random arguments for this function, and what the in-process call
    /// gives for them.
    fn case(self, rng: &mut Rng) -> (Vec<Value>, Want) {
        use Value::{F32, F64, I32, I64};
        let d = |rng: &mut Rng| {
            if rng.chance(40) {
                f64::from_bits(rng.pick(EDGE_NAN_BITS_F64))
            } else {
                rng.f64()
            }
        };
        match self {
            MathFn::F64x1(f) => {
                let x = d(rng);
                (vec![F64(x)], Want::plain(F64(f(x)), 1))
            }
            MathFn::F64x2(f) => {
                let (x, y) = (d(rng), d(rng));
                (vec![F64(x), F64(y)], Want::plain(F64(f(x, y)), 2))
            }
            MathFn::F64x3(f) => {
                let (x, y, z) = (d(rng), d(rng), d(rng));
                (
                    vec![F64(x), F64(y), F64(z)],
                    Want::plain(F64(f(x, y, z)), 3),
                )
            }
            MathFn::F64I32(f) => {
                let (x, e) = (d(rng), rng.i32());
                (vec![F64(x), I32(e)], Want::plain(F64(f(x, e)), 2))
            }
            MathFn::F64OutI32(f) => {
                let (x, init) = (d(rng), rng.i32());
                let mut e = init;
                // SAFETY: `e` is a live, writable int for the call.
                let r = unsafe { f(x, &mut e) };
                let out = vec![None, Some(I32(e))];
                (vec![F64(x), I32(init)], Want::exactly(F64(r), out))
            }
            MathFn::F64OutF64(f) => {
                let (x, init) = (d(rng), d(rng));
                let mut i = init;
                // SAFETY: `i` is a live, writable double for the call.
                let r = unsafe { f(x, &mut i) };
                let out = vec![None, Some(F64(i))];
                (vec![F64(x), F64(init)], Want::exactly(F64(r), out))
            }
            MathFn::F64x2OutI32(f) => {
                let (x, y, init) = (d(rng), d(rng), rng.i32());
                let mut q = init;
                // SAFETY: `q` is a live, writable int for the call.
                let r = unsafe { f(x, y, &mut q) };
                let out = vec![None, None, Some(I32(q))];
                (vec![F64(x), F64(y), I32(init)], Want::exactly(F64(r), out))
            }
            MathFn::F64Out2(f) => {
                let (x, s0, c0) = (d(rng), d(rng), d(rng));
                let (mut s, mut c) = (s0, c0);
                // SAFETY: `s` and `c` are live, writable, distinct doubles.
                unsafe { f(x, &mut s, &mut c) };
                let out = vec![None, Some(F64(s)), Some(F64(c))];
                (
                    vec![F64(x), F64(s0), F64(c0)],
                    Want::exactly(Value::Null, out),
                )
            }
            MathFn::F64ToI64(f) => {
                let x = d(rng);
                (vec![F64(x)], Want::plain(I64(f(x)), 1))
            }
            MathFn::F64ToI32(f) => {
                let x = d(rng);
                (vec![F64(x)], Want::plain(I32(f(x)), 1))
            }
            MathFn::F32x1(f) => {
                let x = rng.f32();
                (vec![F32(x)], Want::plain(F32(f(x)), 1))
            }
            MathFn::F32x2(f) => {
                let (x, y) = (rng.f32(), rng.f32());
                (vec![F32(x), F32(y)], Want::plain(F32(f(x, y)), 2))
            }
            MathFn::F32x3(f) => {
                let (x, y, z) = (rng.f32(), rng.f32(), rng.f32());
                (
                    vec![F32(x), F32(y), F32(z)],
                    Want::plain(F32(f(x, y, z)), 3),
                )
            }
            MathFn::F32I32(f) => {
                let (x, e) = (rng.f32(), rng.i32());
                (vec![F32(x), I32(e)], Want::plain(F32(f(x, e)), 2))
            }
            MathFn::F32OutI32(f) => {
                let (x, init) = (rng.f32(), rng.i32());
                let mut e = init;
                // SAFETY: `e` is a live, writable int for the call.
                let r = unsafe { f(x, &mut e) };
                let out = vec![None, Some(I32(e))];
                (vec![F32(x), I32(init)], Want::exactly(F32(r), out))
            }
            MathFn::F32OutF32(f) => {
                let (x, init) = (rng.f32(), rng.f32());
                let mut i = init;
                // SAFETY: `i` is a live, writable float for the call.
                let r = unsafe { f(x, &mut i) };
                let out = vec![None, Some(F32(i))];
                (vec![F32(x), F32(init)], Want::exactly(F32(r), out))
            }
            MathFn::F32x2OutI32(f) => {
                let (x, y, init) = (rng.f32(), rng.f32(), rng.i32());
                let mut q = init;
                // SAFETY: `q` is a live, writable int for the call.
                let r = unsafe { f(x, y, &mut q) };
                let out = vec![None, None, Some(I32(q))];
                (vec![F32(x), F32(y), I32(init)], Want::exactly(F32(r), out))
            }
            MathFn::F32Out2(f) => {
                let (x, s0, c0) = (rng.f32(), rng.f32(), rng.f32());
                let (mut s, mut c) = (s0, c0);
                // SAFETY: `s` and `c` are live, writable, distinct floats.
                unsafe { f(x, &mut s, &mut c) };
                let out = vec![None, Some(F32(s)), Some(F32(c))];
                (
                    vec![F32(x), F32(s0), F32(c0)],
                    Want::exactly(Value::Null, out),
                )
            }
        }
    }
}

#[test]
fn libm_is_bit_identical_bridged_and_in_process() {
    let mut rng = Rng::new("libm_is_bit_identical");
    let lib = InProcess::open("libm.so.6");
    let decls: Vec<String> = LIBM
        .iter()
        .map(|(name, shape)| shape.signature(name))
        .collect();
    let fns: Vec<(&'static str, MathFn)> = LIBM
        .iter()
        .map(|&(name, shape)| (name, MathFn::lookup(&lib, name, shape)))
        .collect();
    let mut m = load("libm.so.6", &decls, 8 << 20);
    let start = Instant::now();
    let mut d = Differ::new(&mut m);
    let n = cases();
    // Every function a few times first, so none is left out, then random draws.
    for &(name, f) in &fns {
        for _ in 0..8 {
            let (args, want) = f.case(&mut rng);
            d.push(name, args, want);
        }
    }
    while d.checked + d.pending.len() < n {
        let (name, f) = rng.pick(&fns);
        let (args, want) = f.case(&mut rng);
        d.push(name, args, want);
    }
    let checked = d.finish("libm", start);
    assert!(checked >= n);
    assert_eq!(m.respawns(), 0, "no call ended the helper");
}

// -------------------------------------------------------------------- libc

/// `int f(const char *, const char *)`, `size_t f(const char *)`, ...
type StrCmp = unsafe extern "C" fn(*const u8, *const u8) -> c_int;
type StrNCmp = unsafe extern "C" fn(*const u8, *const u8, usize) -> c_int;
type StrLen = unsafe extern "C" fn(*const u8) -> usize;
type StrNLen = unsafe extern "C" fn(*const u8, usize) -> usize;
type StrSpan = unsafe extern "C" fn(*const u8, *const u8) -> usize;
type MemCopy = unsafe extern "C" fn(*mut u8, *const u8, usize) -> *mut u8;
type MemSet = unsafe extern "C" fn(*mut u8, c_int, usize) -> *mut u8;
type MemChr = unsafe extern "C" fn(*const u8, c_int, usize) -> *const u8;
type StrChr = unsafe extern "C" fn(*const u8, c_int) -> *const u8;
type MemMem = unsafe extern "C" fn(*const u8, usize, *const u8, usize) -> *const u8;
type StrStr = unsafe extern "C" fn(*const u8, *const u8) -> *const u8;

/// The out buffer the copy functions write into.
const OUT: usize = 4096;

/// `s` with a NUL appended: a C string (which may hold an earlier NUL).
fn terminated(mut s: Vec<u8>) -> Vec<u8> {
    s.push(0);
    s
}

/// A second string for a comparison with `a`: often `a` itself, a prefix
/// of it, or `a` with one byte changed, so comparisons run deep.
fn partner(rng: &mut Rng, a: &[u8]) -> Vec<u8> {
    let mut b = match rng.below(5) {
        0 => a.to_vec(),
        1 => a[..rng.below(a.len() + 1)].to_vec(),
        2 | 3 if !a.is_empty() => {
            let mut b = a.to_vec();
            let at = rng.below(b.len());
            b[at] = rng.u64() as u8;
            b
        }
        _ => rng.some_bytes(300),
    };
    if rng.chance(4) {
        b.extend(rng.some_bytes(16));
    }
    b
}

#[test]
fn libc_lengths_comparisons_and_copies_match_in_process() {
    let mut rng = Rng::new("libc_lengths_comparisons_and_copies");
    let lib = InProcess::open("libc.so.6");
    functions!(lib;
        strlen: StrLen, strnlen: StrNLen, strcmp: StrCmp, strcasecmp: StrCmp,
        strncmp: StrNCmp, strncasecmp: StrNCmp, memcmp: StrNCmp, strspn: StrSpan,
        strcspn: StrSpan, memcpy: MemCopy, memmove: MemCopy, memset: MemSet,
    );
    let decls: Vec<String> = [
        "strlen(bytes) -> usize",
        "strnlen(bytes, usize) -> usize",
        "strcmp(bytes, bytes) -> i32",
        "strcasecmp(bytes, bytes) -> i32",
        "strncmp(bytes, bytes, usize) -> i32",
        "strncasecmp(bytes, bytes, usize) -> i32",
        "memcmp(bytes, bytes, usize) -> i32",
        "strspn(bytes, bytes) -> usize",
        "strcspn(bytes, bytes) -> usize",
        // The copies return their destination, an address in the helper:
        // declared void, and compared by what they wrote.
        &format!("memcpy(out[{OUT}], bytes, usize) -> void"),
        &format!("memmove(out[{OUT}], bytes, usize) -> void"),
        &format!("memset(out[{OUT}], i32, usize) -> void"),
    ]
    .map(String::from)
    .to_vec();
    let mut c = load("libc.so.6", &decls, 16 << 20);
    let start = Instant::now();
    let mut d = Differ::new(&mut c);
    let n = cases();
    let bytes = |v: &[u8]| Some(Value::bytes(v));
    while d.checked + d.pending.len() < n {
        let a = rng.some_bytes(4000);
        match rng.below(12) {
            0 => {
                let s = terminated(a);
                // SAFETY: `s` is NUL-terminated.
                let want = unsafe { strlen(s.as_ptr()) };
                let w = Want::exactly(Value::Usize(want), vec![bytes(&s)]);
                d.push("strlen", vec![Value::Bytes(s)], w);
            }
            1 => {
                // Unterminated is fine: strnlen reads at most `max` bytes.
                let max = rng.below(a.len() + 1);
                // SAFETY: `max <= a.len()`.
                let want = unsafe { strnlen(a.as_ptr(), max) };
                let w = Want::exactly(Value::Usize(want), vec![bytes(&a), None]);
                d.push("strnlen", vec![Value::Bytes(a), Value::Usize(max)], w);
            }
            2 | 3 => {
                let b = terminated(partner(&mut rng, &a));
                let a = terminated(a);
                let (name, f) = if rng.chance(2) {
                    ("strcmp", strcmp)
                } else {
                    ("strcasecmp", strcasecmp)
                };
                // SAFETY: both are NUL-terminated.
                let want = unsafe { f(a.as_ptr(), b.as_ptr()) };
                let w = Want::by_sign(want, vec![bytes(&a), bytes(&b)]);
                d.push(name, vec![Value::Bytes(a), Value::Bytes(b)], w);
            }
            4 | 5 => {
                let b = terminated(partner(&mut rng, &a));
                let a = terminated(a);
                // Any limit: both strings end within their buffers.
                let limit = match rng.below(4) {
                    0 => usize::MAX,
                    _ => rng.below(a.len().max(b.len()) + 8),
                };
                let (name, f) = if rng.chance(2) {
                    ("strncmp", strncmp)
                } else {
                    ("strncasecmp", strncasecmp)
                };
                // SAFETY: both are NUL-terminated, so neither is read past
                // its end whatever the limit.
                let want = unsafe { f(a.as_ptr(), b.as_ptr(), limit) };
                let w = Want::by_sign(want, vec![bytes(&a), bytes(&b), None]);
                d.push(
                    name,
                    vec![Value::Bytes(a), Value::Bytes(b), Value::Usize(limit)],
                    w,
                );
            }
            6 => {
                let b = partner(&mut rng, &a);
                let len = rng.below(a.len().min(b.len()) + 1);
                // SAFETY: `len` is within both buffers.
                let want = unsafe { memcmp(a.as_ptr(), b.as_ptr(), len) };
                let w = Want::by_sign(want, vec![bytes(&a), bytes(&b), None]);
                d.push(
                    "memcmp",
                    vec![Value::Bytes(a), Value::Bytes(b), Value::Usize(len)],
                    w,
                );
            }
            7 => {
                let set = terminated(rng.some_bytes(8));
                let s = terminated(a);
                let (name, f) = if rng.chance(2) {
                    ("strspn", strspn)
                } else {
                    ("strcspn", strcspn)
                };
                // SAFETY: both are NUL-terminated.
                let want = unsafe { f(s.as_ptr(), set.as_ptr()) };
                let w = Want::exactly(Value::Usize(want), vec![bytes(&s), bytes(&set)]);
                d.push(name, vec![Value::Bytes(s), Value::Bytes(set)], w);
            }
            8 | 9 => {
                let len = rng.below(a.len().min(OUT) + 1);
                let (name, f) = if rng.chance(2) {
                    ("memcpy", memcpy)
                } else {
                    ("memmove", memmove)
                };
                let mut dest = vec![0u8; OUT];
                // SAFETY: `len` fits both `dest` (OUT bytes) and `a`, two
                // distinct allocations.
                unsafe { f(dest.as_mut_ptr(), a.as_ptr(), len) };
                let w = Want::exactly(Value::Null, vec![Some(Value::Bytes(dest)), bytes(&a), None]);
                d.push(name, vec![Value::Bytes(a), Value::Usize(len)], w);
            }
            _ => {
                let byte = (rng.u64() as i32) >> rng.below(32);
                let len = rng.len(OUT);
                let mut dest = vec![0u8; OUT];
                // SAFETY: `len <= OUT`, the size of `dest`.
                unsafe { memset(dest.as_mut_ptr(), byte, len) };
                let w = Want::exactly(Value::Null, vec![Some(Value::Bytes(dest)), None, None]);
                d.push("memset", vec![Value::I32(byte), Value::Usize(len)], w);
            }
        }
    }
    d.finish("libc lengths, comparisons and copies", start);
    assert_eq!(c.respawns(), 0, "no call ended the helper");
}

/// The shared buffer the search and move test works in.
const SHARED: usize = 1 << 20;

/// The helper's address of the start of `b`'s shared buffer of `len`
/// bytes, learnt from `memchr` on a byte placed at a known offset (and
/// checked at a second one).
fn shared_base(b: &mut Bridge, len: usize) -> usize {
    let memchr = b.function("memchr").unwrap();
    let mut locate = |at: usize| {
        let mut probe = vec![0u8; at + 1];
        probe[at] = 0x5a;
        b.shared_buffer(len).unwrap().write(&probe);
        let args = [
            Value::Shared(at + 1),
            Value::I32(0x5a),
            Value::Usize(at + 1),
        ];
        match b.call(memchr, &args).unwrap().ret {
            Value::Usize(address) => address - at,
            other => panic!("memchr returned {other:?}"),
        }
    };
    let base = locate(0);
    assert_eq!(locate(4093), base, "memchr finds the byte where it was put");
    assert_ne!(base, 0);
    base
}

/// An in-process pointer result as the bridge must report it: the same
/// offset from the helper's copy of the haystack, or 0 for NULL.
fn address(found: *const u8, haystack: &[u8], base: usize) -> Value {
    if found.is_null() {
        return Value::Usize(0);
    }
    let offset = found as usize - haystack.as_ptr() as usize;
    assert!(
        offset <= haystack.len(),
        "the in-process result is inside the haystack"
    );
    Value::Usize(base + offset)
}

#[test]
fn libc_searches_and_overlapping_moves_match_in_process() {
    let mut rng = Rng::new("libc_searches_and_overlapping_moves");
    let lib = InProcess::open("libc.so.6");
    functions!(lib;
        memchr: MemChr, memrchr: MemChr, strchr: StrChr, strrchr: StrChr,
        memmem: MemMem, strstr: StrStr, strpbrk: StrStr, memmove: MemCopy, memset: MemSet,
    );
    let decls: Vec<String> = [
        // The haystacks are the shared buffer (Value::Shared); the results
        // are addresses in it.
        "memchr(bytes, i32, usize) -> usize",
        "memrchr(bytes, i32, usize) -> usize",
        "strchr(bytes, i32) -> usize",
        "strrchr(bytes, i32) -> usize",
        "memmem(bytes, usize, bytes, usize) -> usize",
        "strstr(bytes, bytes) -> usize",
        "strpbrk(bytes, bytes) -> usize",
        // Moves within the shared buffer, by address: overlapping ranges.
        "memmove(usize, usize, usize) -> usize",
        "memset(usize, i32, usize) -> usize",
    ]
    .map(String::from)
    .to_vec();
    let arena = 8 << 20;
    let mut c = load("libc.so.6", &decls, arena);
    let base = shared_base(&mut c, SHARED);
    let start = Instant::now();
    let n = cases();
    let mut checked = 0;
    let mut rounds = 0;
    // What the shared buffer holds, kept in process by the same calls.
    let mut mirror = vec![0u8; SHARED];
    c.shared_buffer(SHARED).unwrap().read(&mut mirror);
    while checked < n {
        rounds += 1;
        // A haystack (its own NUL at the end, and maybe earlier ones).
        let hay = terminated(rng.some_bytes(SHARED / 16 - 1));
        mirror[..hay.len()].copy_from_slice(&hay);
        c.shared_buffer(SHARED).unwrap().write(&hay);
        let mut d = Differ::new(&mut c);
        let byte = |rng: &mut Rng| -> i32 {
            match rng.below(4) {
                // Bytes present in the haystack, NUL included.
                0 | 1 => hay[rng.below(hay.len())] as i32,
                // memchr converts to unsigned char: 0x161 finds 'a'.
                2 => (rng.u64() as i32) >> rng.below(32),
                _ => rng.u64() as u8 as i32,
            }
        };
        for _ in 0..BATCH.min(n - checked) {
            match rng.below(7) {
                0 | 1 => {
                    let len = rng.below(hay.len() + 1);
                    let ch = byte(&mut rng);
                    let (name, f) = if rng.chance(2) {
                        ("memchr", memchr)
                    } else {
                        ("memrchr", memrchr)
                    };
                    // SAFETY: `len <= hay.len()`.
                    let found = unsafe { f(hay.as_ptr(), ch, len) };
                    let w = Want::plain(address(found, &hay, base), 3);
                    d.push(
                        name,
                        vec![Value::Shared(len), Value::I32(ch), Value::Usize(len)],
                        w,
                    );
                }
                2 => {
                    let ch = byte(&mut rng);
                    let (name, f) = if rng.chance(2) {
                        ("strchr", strchr)
                    } else {
                        ("strrchr", strrchr)
                    };
                    // SAFETY: `hay` is NUL-terminated.
                    let found = unsafe { f(hay.as_ptr(), ch) };
                    let w = Want::plain(address(found, &hay, base), 2);
                    d.push(name, vec![Value::Shared(hay.len()), Value::I32(ch)], w);
                }
                3 | 4 => {
                    let len = rng.below(hay.len() + 1);
                    let needle = if rng.chance(3) || len == 0 {
                        rng.some_bytes(6)
                    } else {
                        let from = rng.below(len);
                        hay[from..(from + rng.len(40)).min(len)].to_vec()
                    };
                    // SAFETY: `len <= hay.len()`, and the needle's length is its own.
                    let found = unsafe { memmem(hay.as_ptr(), len, needle.as_ptr(), needle.len()) };
                    let w = Want::exactly(
                        address(found, &hay, base),
                        vec![None, None, Some(Value::bytes(&needle)), None],
                    );
                    let needle_len = Value::Usize(needle.len());
                    let args = vec![
                        Value::Shared(len),
                        Value::Usize(len),
                        Value::Bytes(needle),
                        needle_len,
                    ];
                    d.push("memmem", args, w);
                }
                _ => {
                    let needle = if rng.chance(2) {
                        let from = rng.below(hay.len());
                        hay[from..(from + rng.len(12)).min(hay.len() - 1)].to_vec()
                    } else {
                        rng.some_bytes(6)
                    };
                    let needle = terminated(needle);
                    let (name, f) = if rng.chance(2) {
                        ("strstr", strstr)
                    } else {
                        ("strpbrk", strpbrk)
                    };
                    // SAFETY: both are NUL-terminated.
                    let found = unsafe { f(hay.as_ptr(), needle.as_ptr()) };
                    let w = Want::exactly(
                        address(found, &hay, base),
                        vec![None, Some(Value::bytes(&needle))],
                    );
                    d.push(
                        name,
                        vec![Value::Shared(hay.len()), Value::Bytes(needle)],
                        w,
                    );
                }
            }
        }
        // Every search above read the haystack as written: send them
        // before the moves change it.
        d.flush();
        // Then moves and fills inside the buffer, overlapping in both
        // directions, applied in process to `mirror` in the same order.
        let moves = rng.below(64).min(n - checked - d.checked);
        for _ in 0..moves {
            let len = rng.len(SHARED / 8);
            let from = rng.below(SHARED - len + 1);
            let to = match rng.below(3) {
                0 => from.saturating_sub(rng.below(64)),
                1 => (from + rng.below(64)).min(SHARED - len),
                _ => rng.below(SHARED - len + 1),
            };
            if rng.chance(4) {
                let fill = (rng.u64() as i32) >> rng.below(32);
                // SAFETY: `to + len <= SHARED`, the size of `mirror`.
                unsafe { memset(mirror.as_mut_ptr().wrapping_add(to), fill, len) };
                let args = vec![Value::Usize(base + to), Value::I32(fill), Value::Usize(len)];
                d.push("memset", args, Want::plain(Value::Usize(base + to), 3));
            } else {
                let p = mirror.as_mut_ptr();
                // SAFETY: both ranges are inside `mirror` (`from + len` and
                // `to + len` are at most SHARED); memmove allows overlap.
                unsafe { memmove(p.wrapping_add(to), p.wrapping_add(from), len) };
                let args = vec![
                    Value::Usize(base + to),
                    Value::Usize(base + from),
                    Value::Usize(len),
                ];
                d.push("memmove", args, Want::plain(Value::Usize(base + to), 3));
            }
        }
        d.flush();
        checked += d.checked;
        let mut back = vec![0u8; SHARED];
        c.shared_buffer(SHARED).unwrap().read(&mut back);
        if back != mirror {
            let at = back.iter().zip(&mirror).position(|(a, b)| a != b).unwrap();
            panic!(
                "round {rounds}: the shared buffer differs from the in-process one at byte {at}"
            );
        }
    }
    eprintln!(
        "libc searches and moves: {checked} cases identical in {:.2?} ({rounds} haystacks)",
        start.elapsed()
    );
    assert_eq!(c.respawns(), 0, "no call ended the helper");

    // The whole shared buffer an arena allows (half its data area): a
    // search that runs to its last byte.
    let largest = (arena - ffb_contract::wire::CONTROL_SIZE) / 2;
    let base = shared_base(&mut c, largest);
    let mut hay = vec![b'x'; largest];
    *hay.last_mut().unwrap() = b'y';
    c.shared_buffer(largest).unwrap().write(&hay);
    for (ch, want) in [(b'y', base + largest - 1), (b'z', 0), (b'x', base)] {
        let args = [
            Value::Shared(largest),
            Value::I32(ch as i32),
            Value::Usize(largest),
        ];
        let got = c.call_by_name("memchr", &args).unwrap().ret;
        assert_eq!(
            got,
            Value::Usize(want),
            "memchr over {largest} bytes for {ch}"
        );
    }
    let e = c
        .shared_buffer(largest + 4096)
        .err()
        .expect("more than half the arena");
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
}

// -------------------------------------------------------------------- zlib

/// `uLong f(uLong, const Bytef *, uInt)`; uLong is 64-bit on x86-64.
type Checksum = unsafe extern "C" fn(u64, *const u8, u32) -> u64;
/// `uLong f(uLong, const Bytef *, z_size_t)`.
type ChecksumZ = unsafe extern "C" fn(u64, *const u8, usize) -> u64;
/// `uLong f(uLong, uLong, z_off_t)`.
type Combine = extern "C" fn(u64, u64, i64) -> u64;
/// `int f(Bytef *, uLongf *, const Bytef *, uLong)`.
type Codec = unsafe extern "C" fn(*mut u8, *mut u64, *const u8, u64) -> c_int;
/// `int compress2(Bytef *, uLongf *, const Bytef *, uLong, int)`.
type Compress2 = unsafe extern "C" fn(*mut u8, *mut u64, *const u8, u64, c_int) -> c_int;
/// `int uncompress2(Bytef *, uLongf *, const Bytef *, uLong *)`.
type Uncompress2 = unsafe extern "C" fn(*mut u8, *mut u64, *const u8, *mut u64) -> c_int;

/// Data zlib finds worth compressing (words, runs) or not (noise).
fn compressible(rng: &mut Rng, n: usize) -> Vec<u8> {
    const WORDS: &[&[u8]] = &[
        b"ffb ",
        b"sandbox ",
        b"helper ",
        b"\0\0\0\0",
        b"zlib",
        b"\n",
    ];
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        match rng.below(4) {
            0 => {
                let n = rng.below(32);
                v.extend(rng.bytes(n))
            }
            1 => v.extend(std::iter::repeat_n(rng.u64() as u8, rng.below(200))),
            _ => v.extend_from_slice(rng.pick(WORDS)),
        }
    }
    v.truncate(n);
    v
}

#[test]
fn zlib_checksums_are_identical_bridged_and_in_process() {
    let mut rng = Rng::new("zlib_checksums_are_identical");
    let lib = InProcess::open("libz.so.1");
    // The combine functions are safe fn pointers: they take only numbers
    // and are defined for every value but a negative crc32_combine length,
    // which is never passed (zlib 1.2.13 loops forever on one).
    functions!(lib;
        crc32: Checksum, adler32: Checksum, crc32_z: ChecksumZ, adler32_z: ChecksumZ,
        crc32_combine: Combine, adler32_combine: Combine,
    );
    // SAFETY: `uLong compressBound(uLong)`, defined for every value.
    let compress_bound: extern "C" fn(u64) -> u64 = unsafe { sym(&lib, "compressBound") };
    let decls: Vec<String> = [
        "crc32(u64, bytes, u32) -> u64",
        "adler32(u64, bytes, u32) -> u64",
        "crc32_z(u64, bytes, usize) -> u64",
        "adler32_z(u64, bytes, usize) -> u64",
        "crc32_combine(u64, u64, i64) -> u64",
        "adler32_combine(u64, u64, i64) -> u64",
        "compressBound(u64) -> u64",
    ]
    .map(String::from)
    .to_vec();
    let arena = 8 << 20;
    let mut z = load("libz.so.1", &decls, arena);
    let start = Instant::now();
    let mut d = Differ::new(&mut z);
    let n = cases();
    let seed = |rng: &mut Rng| match rng.below(4) {
        0 => rng.pick(&[0, 1, u32::MAX as u64, u64::MAX]),
        1 => rng.u64(),
        _ => rng.u64() & 0xffff_ffff,
    };
    while d.checked + d.pending.len() < n {
        match rng.below(8) {
            0..=3 => {
                let len = rng.len(8192);
                let data = compressible(&mut rng, len);
                let len = if rng.chance(4) {
                    rng.below(data.len() + 1)
                } else {
                    data.len()
                };
                let s = seed(&mut rng);
                let z_sized = rng.chance(2);
                let crc = rng.chance(2);
                let (name, want) = if z_sized {
                    let (name, f) = if crc {
                        ("crc32_z", crc32_z)
                    } else {
                        ("adler32_z", adler32_z)
                    };
                    // SAFETY: it reads `len <= data.len()` bytes of `data`.
                    (name, unsafe { f(s, data.as_ptr(), len) })
                } else {
                    let (name, f) = if crc {
                        ("crc32", crc32)
                    } else {
                        ("adler32", adler32)
                    };
                    // SAFETY: as above; `len` fits a u32 (at most 8192).
                    (name, unsafe { f(s, data.as_ptr(), len as u32) })
                };
                let length = if z_sized {
                    Value::Usize(len)
                } else {
                    Value::U32(len as u32)
                };
                let w = Want::exactly(
                    Value::U64(want),
                    vec![None, Some(Value::bytes(&data)), None],
                );
                d.push(name, vec![Value::U64(s), Value::Bytes(data), length], w);
            }
            4..=6 => {
                let (a, b) = (seed(&mut rng), seed(&mut rng));
                let len2 = match rng.below(3) {
                    0 => rng.pick(&[0, 1, i64::MAX, u32::MAX as i64 + 1]),
                    1 => (rng.u64() >> 1) as i64,
                    _ => rng.below(100_000) as i64,
                };
                // Negative lengths for adler32_combine only, which refuses
                // them; crc32_combine would loop forever on one.
                let (name, len2, want) = if rng.chance(2) {
                    ("crc32_combine", len2, crc32_combine(a, b, len2))
                } else {
                    let len2 = if rng.chance(8) { -len2 - 1 } else { len2 };
                    ("adler32_combine", len2, adler32_combine(a, b, len2))
                };
                let w = Want::plain(Value::U64(want), 3);
                d.push(
                    name,
                    vec![Value::U64(a), Value::U64(b), Value::I64(len2)],
                    w,
                );
            }
            _ => {
                let len = match rng.below(3) {
                    0 => rng.u64(),
                    1 => u64::MAX - rng.below(1 << 16) as u64,
                    _ => rng.below(1 << 20) as u64,
                };
                let w = Want::plain(Value::U64(compress_bound(len)), 1);
                d.push("compressBound", vec![Value::U64(len)], w);
            }
        }
    }
    d.finish("zlib checksums", start);
    assert_eq!(z.respawns(), 0, "no call ended the helper");

    // Lengths 0 and the whole arena: the largest buffer a call can pass.
    let largest = arena - ffb_contract::wire::CONTROL_SIZE;
    let data = compressible(&mut rng, largest);
    for len in [0, 1, largest] {
        let s = seed(&mut rng);
        // SAFETY: `len <= data.len()`.
        let want = unsafe { crc32_z(s, data.as_ptr(), len) };
        let args = [Value::U64(s), Value::bytes(&data[..len]), Value::Usize(len)];
        let got = z.call_by_name("crc32_z", &args).unwrap().ret;
        assert_eq!(got, Value::U64(want), "crc32_z of {len} bytes");
    }
    let args = [
        Value::U64(0),
        Value::Bytes(vec![0; largest + 1]),
        Value::Usize(largest + 1),
    ];
    let e = z.call_by_name("crc32_z", &args).unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::BadArgument,
        "a byte more than the arena: {e}"
    );
    assert_eq!(z.respawns(), 0, "refused before sending");
}

/// The size of every codec's destination.
const DEST: usize = 4096;

/// What a zlib codec call `(dest, *destLen, source, sourceLen, ...)` must
/// come back with: its code, the buffer and length it wrote, its source
/// unchanged, and `rest`, the out-values of the parameters after `source`.
fn codec_want(
    rc: i32,
    dest: Vec<u8>,
    dest_len: u64,
    source: &[u8],
    rest: &[Option<Value>],
) -> Want {
    let mut out = vec![
        Some(Value::Bytes(dest)),
        Some(Value::U64(dest_len)),
        Some(Value::bytes(source)),
    ];
    out.extend_from_slice(rest);
    Want::exactly(Value::I32(rc), out)
}

#[test]
fn zlib_compress_and_uncompress_are_identical_bridged_and_in_process() {
    let mut rng = Rng::new("zlib_compress_and_uncompress_are_identical");
    let lib = InProcess::open("libz.so.1");
    functions!(lib;
        compress: Codec, uncompress: Codec, compress2: Compress2, uncompress2: Uncompress2,
    );
    let decls: Vec<String> = [
        format!("compress(out[{DEST}], *u64, bytes, u64) -> i32"),
        format!("compress2(out[{DEST}], *u64, bytes, u64, i32) -> i32"),
        format!("uncompress(out[{DEST}], *u64, bytes, u64) -> i32"),
        format!("uncompress2(out[{DEST}], *u64, bytes, *u64) -> i32"),
    ]
    .to_vec();
    let mut z = load("libz.so.1", &decls, 32 << 20);
    let start = Instant::now();
    let mut d = Differ::new(&mut z);
    let n = cases();
    // A destination length: usually room enough, sometimes too little.
    let dest_len = |rng: &mut Rng| match rng.below(4) {
        0 => rng.below(DEST + 1) as u64,
        1 => rng.below(64) as u64,
        _ => DEST as u64,
    };
    let mut outcomes = std::collections::BTreeMap::<i32, usize>::new();
    while d.checked + d.pending.len() < n {
        let len = rng.len(3000);
        let original = compressible(&mut rng, len);
        let mut dest = vec![0u8; DEST];
        let mut dl = dest_len(&mut rng);
        let initial = dl;
        if rng.chance(2) {
            let level = rng.pick(&[-1, 0, 1, 5, 6, 9, 10, -2, i32::MIN]);
            // SAFETY: zlib writes at most `dl <= DEST` bytes to `dest` and
            // reads `original.len()` bytes of `original`.
            let rc = unsafe {
                compress2(
                    dest.as_mut_ptr(),
                    &mut dl,
                    original.as_ptr(),
                    original.len() as u64,
                    level,
                )
            };
            *outcomes.entry(rc).or_default() += 1;
            let w = codec_want(rc, dest, dl, &original, &[None, None]);
            let args = vec![
                Value::U64(initial),
                Value::bytes(&original),
                Value::U64(original.len() as u64),
                Value::I32(level),
            ];
            d.push("compress2", args, w);
            continue;
        }
        // SAFETY: as for compress2.
        let rc = unsafe {
            compress(
                dest.as_mut_ptr(),
                &mut dl,
                original.as_ptr(),
                original.len() as u64,
            )
        };
        *outcomes.entry(rc).or_default() += 1;
        let compressed = dest[..dl as usize].to_vec();
        let w = codec_want(rc, dest, dl, &original, &[None]);
        let args = vec![
            Value::U64(initial),
            Value::bytes(&original),
            Value::U64(original.len() as u64),
        ];
        d.push("compress", args, w);

        // Its output back (whole, cut short, or with a byte changed), or
        // noise, through uncompress and uncompress2.
        let mut source = if rc == 0 {
            compressed
        } else {
            rng.some_bytes(64)
        };
        match rng.below(6) {
            0 if !source.is_empty() => {
                let at = rng.below(source.len());
                source[at] ^= 1 << rng.below(8);
            }
            1 => source.truncate(rng.below(source.len() + 1)),
            _ => {}
        }
        let mut dest = vec![0u8; DEST];
        let mut dl = dest_len(&mut rng);
        let initial = dl;
        let source_len = source.len() as u64;
        if rng.chance(2) {
            // SAFETY: zlib writes at most `dl <= DEST` bytes to `dest` and
            // reads `source_len` bytes of `source`.
            let rc = unsafe { uncompress(dest.as_mut_ptr(), &mut dl, source.as_ptr(), source_len) };
            *outcomes.entry(rc).or_default() += 1;
            let w = codec_want(rc, dest, dl, &source, &[None]);
            let args = vec![
                Value::U64(initial),
                Value::Bytes(source),
                Value::U64(source_len),
            ];
            d.push("uncompress", args, w);
        } else {
            let mut sl = source_len;
            // SAFETY: as for uncompress; `sl` is a live uLong.
            let rc = unsafe { uncompress2(dest.as_mut_ptr(), &mut dl, source.as_ptr(), &mut sl) };
            *outcomes.entry(rc).or_default() += 1;
            let w = codec_want(rc, dest, dl, &source, &[Some(Value::U64(sl))]);
            let args = vec![
                Value::U64(initial),
                Value::Bytes(source),
                Value::U64(source_len),
            ];
            d.push("uncompress2", args, w);
        }
    }
    d.finish("zlib compress and uncompress", start);
    eprintln!("zlib return codes (code: count): {outcomes:?}");
    // The draws reach success and every failure the codecs have here:
    // Z_OK, Z_STREAM_ERROR (bad levels), Z_DATA_ERROR, Z_BUF_ERROR.
    for rc in [0, -2, -3, -5] {
        assert!(
            outcomes.get(&rc).copied().unwrap_or(0) > 0,
            "no case returned {rc}: {outcomes:?}"
        );
    }
    assert_eq!(z.respawns(), 0, "no call ended the helper");
}

// ------------------------------------------------------------------ SQLite

/// Rows per query: each row is one case, its parameters bound values.
const ROWS: usize = 1000;

/// The expressions evaluated per row, over the row's values `a`, `b`,
/// `c`: arithmetic with SQLite's overflow to float, comparisons across
/// types, conversions, text and blob functions, printf. None of them can
/// fail on any value (abs(i64::MIN) could, and json_quote of a blob, and
/// are left out), so every query must succeed. Text that may hold a blob's
/// bytes (not UTF-8) is compared through hex().
const EXPRESSIONS: &[&str] = &[
    "a + b",
    "a - b",
    "a * b",
    "a / b",
    "a % b",
    "a & b",
    "a | b",
    "~a",
    "a << (b % 70)",
    "a >> 3",
    "hex(a || b)",
    "a = b",
    "a < b",
    "a IS b",
    "a BETWEEN b AND c",
    "typeof(a)",
    "quote(a)",
    "hex(a)",
    "length(a)",
    "hex(lower(c))",
    "hex(upper(c))",
    "hex(printf('%d|%.17g|%s|%x|%q|%w', a, b, c, a, c, c))",
    "hex(printf('%12.4e|%-8s|%c', a, b, c))",
    "printf('%d|%.17g|%x|%5.2f', a, b, a, b)",
    "format('%.3f', b)",
    "round(a, 3)",
    "round(b)",
    "cast(a AS integer)",
    "cast(b AS real)",
    "hex(cast(a AS text))",
    "cast(c AS blob)",
    "cast(a AS numeric)",
    "coalesce(a, b, c)",
    "nullif(a, b)",
    "min(a, b, c)",
    "max(a, b)",
    "iif(a > b, a, c)",
    "substr(c, b % 10, 5)",
    "instr(c, a)",
    "hex(replace(c, a, b))",
    "hex(trim(c))",
    "hex(ltrim(c, a))",
    "unicode(c)",
    "a LIKE c",
    "c GLOB a",
    "json_quote(typeof(a))",
    "cast(zeroblob(a % 8) || b AS blob)",
];

/// The SQL corpus's edge values, by type.
struct SqlEdges {
    ints: Vec<i64>,
    floats: Vec<f64>,
    texts: Vec<String>,
    blobs: Vec<Vec<u8>>,
}

impl SqlEdges {
    fn new() -> Self {
        SqlEdges {
            ints: edge_ints(),
            floats: edge_floats(Dialect::Sqlite),
            texts: edge_texts(),
            blobs: edge_blobs(),
        }
    }
}

/// A bound value: the corpus's edge values or random ones of every type.
fn sql_param(rng: &mut Rng, edges: &SqlEdges) -> SqlValue {
    match rng.below(12) {
        0 => SqlValue::Int(rng.pick(&edges.ints)),
        1 => SqlValue::Float(rng.pick(&edges.floats)),
        2 => SqlValue::Text(rng.pick(&edges.texts)),
        3 => SqlValue::Blob(rng.pick(&edges.blobs)),
        4 => SqlValue::Null,
        5 => SqlValue::Float(-0.0),
        6 | 7 => SqlValue::Int((rng.u64() as i64) >> rng.below(64)),
        8 => SqlValue::Float(rng.f64()),
        9 => SqlValue::Blob(rng.some_bytes(24)),
        _ => {
            let s: String = rng
                .some_bytes(24)
                .into_iter()
                .map(|b| match b % 8 {
                    0 => '%',
                    1 => 'é',
                    2 => '\'',
                    3 => '_',
                    _ => (b'0' + b % 75) as char,
                })
                .collect();
            SqlValue::Text(s)
        }
    }
}

#[test]
fn sqlite_expressions_are_identical_bridged_and_in_process() {
    let mut rng = Rng::new("sqlite_expressions_are_identical");
    let edges = SqlEdges::new();
    let reference = Sqlite::open(":memory:");
    let config = Config::sqlite_memory()
        .bridge_mode(BridgeMode::Enabled)
        .shim(shim_bin())
        .timeout(ffb_tests::bridge::HANG_TIMEOUT);
    let mut db = Connection::open(config).unwrap_or_else(|e| panic!("opening sqlite: {e}"));
    let start = Instant::now();
    let n = cases();
    let mut checked = 0;
    let mut queries = 0;
    let (mut in_process, mut bridged) = (Duration::ZERO, Duration::ZERO);
    while checked < n {
        let rows = ROWS.min(n - checked);
        // A random selection of the expressions, every one of them over
        // the run.
        let mut chosen: Vec<&str> = (0..8).map(|_| rng.pick(EXPRESSIONS)).collect();
        chosen.push(EXPRESSIONS[queries % EXPRESSIONS.len()]);
        let columns: Vec<String> = chosen
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS e{i}"))
            .collect();
        let values = vec!["(?, ?, ?)"; rows].join(", ");
        let sql = format!(
            "WITH v(a, b, c) AS (VALUES {values}) SELECT {} FROM v",
            columns.join(", ")
        );
        let params: Vec<SqlValue> = (0..rows * 3).map(|_| sql_param(&mut rng, &edges)).collect();
        let t0 = Instant::now();
        let want = reference
            .query(&sql, &params)
            .unwrap_or_else(|e| panic!("in process: {e}\n{}", &sql[sql.len() - 300..]));
        in_process += t0.elapsed();
        let t0 = Instant::now();
        let bound: Vec<_> = params.iter().map(SqlValue::to_sql).collect();
        let got = db
            .query(&sql, &bound)
            .and_then(|rows| {
                let columns = rows.columns().to_vec();
                let rows = rows
                    .map(|r| {
                        r.map(|r| {
                            r.into_values()
                                .into_iter()
                                .map(SqlValue::from_sql)
                                .collect()
                        })
                    })
                    .collect::<Result<Vec<Vec<SqlValue>>, _>>()?;
                Ok(Rows { columns, rows })
            })
            .unwrap_or_else(|e| panic!("bridged: {e}"));
        bridged += t0.elapsed();
        assert_eq!(got.rows.len(), rows);
        assert_same_rows(
            &format!("query {queries} ({})", chosen.join("; ")),
            &got,
            &want,
        );
        checked += rows;
        queries += 1;
    }
    eprintln!(
        "sqlite expressions: {checked} rows of 9 expressions identical in {:.2?} ({queries} queries; in process {in_process:.2?}, bridged {bridged:.2?})",
        start.elapsed()
    );
}
