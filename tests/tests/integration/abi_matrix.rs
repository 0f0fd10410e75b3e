//! Differential ABI tests: every fixture function is called through the
//! bridge and directly in-process (`ffb_tests::in_process`), and the two
//! results must be identical (floats compared by their bits).

use ffb_loader::{Bridge, ErrorKind, Value};
use ffb_tests::in_process::InProcess;
use ffb_tests::rng::XorShift;
use ffb_tests::{fixture_bridge, fixture_lib};

fn direct() -> InProcess {
    InProcess::open(fixture_lib())
}

fn ret(b: &mut Bridge, name: &str, args: &[Value]) -> Value {
    b.call_by_name(name, args)
        .unwrap_or_else(|e| panic!("{name}({args:?}): {e}"))
        .ret
}

fn f32_bits(v: &Value) -> u32 {
    match v {
        Value::F32(f) => f.to_bits(),
        other => panic!("expected F32, got {other:?}"),
    }
}

fn f64_bits(v: &Value) -> u64 {
    match v {
        Value::F64(f) => f.to_bits(),
        other => panic!("expected F64, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// scalar identities
// ---------------------------------------------------------------------------

macro_rules! int_identity {
    ($test:ident, $sym:literal, $ty:literal, $rust:ty, $variant:ident) => {
        #[test]
        fn $test() {
            let mut b = fixture_bridge(&[concat!($sym, "(", $ty, ") -> ", $ty)]);
            let lib = direct();
            // SAFETY: every ffb_id_* integer identity (fixtures/ffb_fixture.h) takes and returns plain
            // numbers and is defined for every value, so a safe fn pointer is sound.
            let f = unsafe { lib.sym::<extern "C" fn($rust) -> $rust>($sym) };
            let mut values: Vec<$rust> = vec![
                <$rust>::MIN,
                <$rust>::MAX,
                0,
                1,
                <$rust>::MIN.wrapping_add(1),
                <$rust>::MAX.wrapping_sub(1),
                <$rust>::MAX / 3,
                0x5a as $rust,
            ];
            #[allow(unused_comparisons)]
            if <$rust>::MIN < 0 {
                values.push((0 as $rust).wrapping_sub(1));
            }
            for v in values {
                let expected = f(v);
                assert_eq!(expected, v, "in-process identity of {v}");
                let got = ret(&mut b, $sym, &[Value::$variant(v)]);
                assert_eq!(got, Value::$variant(expected), "{} of {v}", $sym);
            }
        }
    };
}

int_identity!(id_i8, "ffb_id_i8", "i8", i8, I8);
int_identity!(id_i16, "ffb_id_i16", "i16", i16, I16);
int_identity!(id_i32, "ffb_id_i32", "i32", i32, I32);
int_identity!(id_i64, "ffb_id_i64", "i64", i64, I64);
int_identity!(id_u8, "ffb_id_u8", "u8", u8, U8);
int_identity!(id_u16, "ffb_id_u16", "u16", u16, U16);
int_identity!(id_u32, "ffb_id_u32", "u32", u32, U32);
int_identity!(id_u64, "ffb_id_u64", "u64", u64, U64);
int_identity!(id_isize, "ffb_id_isize", "isize", isize, Isize);
int_identity!(id_usize, "ffb_id_usize", "usize", usize, Usize);

#[test]
fn narrower_integer_values_are_widened_and_range_checked() {
    let mut b = fixture_bridge(&["ffb_id_i8(i8) -> i8", "ffb_id_u16(u16) -> u16"]);
    let pid0 = b.helper_pid();
    // An I64 that fits is converted.
    assert_eq!(
        ret(&mut b, "ffb_id_i8", &[Value::I64(-128)]),
        Value::I8(-128)
    );
    assert_eq!(
        ret(&mut b, "ffb_id_u16", &[Value::U8(200)]),
        Value::U16(200)
    );
    // One that does not is a bad_argument, and nothing is called.
    let e = b.call_by_name("ffb_id_i8", &[Value::I64(128)]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    let e = b.call_by_name("ffb_id_u16", &[Value::I32(-1)]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");
    assert_eq!(b.helper_pid(), pid0, "the helper was replaced");
}

const F64_SPECIALS: &[u64] = &[
    0x0000_0000_0000_0000, // 0.0
    0x8000_0000_0000_0000, // -0.0
    0x3ff0_0000_0000_0000, // 1.0
    0xbff0_0000_0000_0000, // -1.0
    0x7ff0_0000_0000_0000, // inf
    0xfff0_0000_0000_0000, // -inf
    0x7ff8_0000_0000_0000, // canonical quiet NaN
    0xfff8_0000_0000_0000, // negative quiet NaN
    0x7ff8_dead_beef_0001, // quiet NaN with payload
    0x7ff0_0000_0000_0001, // signalling NaN
    0x7ff4_0000_0000_0000, // signalling NaN, high payload
    0x0000_0000_0000_0001, // smallest subnormal
    0x000f_ffff_ffff_ffff, // largest subnormal
    0x0010_0000_0000_0000, // MIN_POSITIVE
    0x7fef_ffff_ffff_ffff, // MAX
    0xffef_ffff_ffff_ffff, // MIN
    0x4009_21fb_5444_2d18, // pi
];

const F32_QUIET_SPECIALS: &[u32] = &[
    0x0000_0000, // 0.0
    0x8000_0000, // -0.0
    0x3f80_0000, // 1.0
    0xbf80_0000, // -1.0
    0x7f80_0000, // inf
    0xff80_0000, // -inf
    0x7fc0_0000, // canonical quiet NaN
    0xffc0_0000, // negative quiet NaN
    0x7fc0_beef, // quiet NaN with payload
    0x0000_0001, // smallest subnormal
    0x007f_ffff, // largest subnormal
    0x0080_0000, // MIN_POSITIVE
    0x7f7f_ffff, // MAX
    0xff7f_ffff, // MIN
    0x4049_0fdb, // pi
];

const F32_SIGNALLING_NANS: &[u32] = &[0x7f80_0001, 0x7fa0_0000, 0xff80_beef];

#[test]
fn id_f64_preserves_every_bit_pattern() {
    let mut b = fixture_bridge(&["ffb_id_f64(f64) -> f64"]);
    let lib = direct();
    // SAFETY: ffb_id_f64 (fixtures/ffb_fixture.h) takes and returns plain
    // numbers and is defined for every value, so a safe fn pointer is sound.
    let f = unsafe { lib.sym::<extern "C" fn(f64) -> f64>("ffb_id_f64") };
    for &bits in F64_SPECIALS {
        let v = f64::from_bits(bits);
        let expected = f(v).to_bits();
        let got = f64_bits(&ret(&mut b, "ffb_id_f64", &[Value::F64(v)]));
        assert_eq!(
            got, expected,
            "ffb_id_f64({bits:#018x}): bridged {got:#018x}, in-process {expected:#018x}"
        );
        assert_eq!(got, bits, "ffb_id_f64({bits:#018x}) changed the bits");
    }
}

#[test]
fn id_f32_preserves_non_signalling_bit_patterns() {
    let mut b = fixture_bridge(&["ffb_id_f32(f32) -> f32"]);
    let lib = direct();
    // SAFETY: ffb_id_f32 (fixtures/ffb_fixture.h) takes and returns plain
    // numbers and is defined for every value, so a safe fn pointer is sound.
    let f = unsafe { lib.sym::<extern "C" fn(f32) -> f32>("ffb_id_f32") };
    for &bits in F32_QUIET_SPECIALS {
        let v = f32::from_bits(bits);
        let expected = f(v).to_bits();
        let got = f32_bits(&ret(&mut b, "ffb_id_f32", &[Value::F32(v)]));
        assert_eq!(
            got, expected,
            "ffb_id_f32({bits:#010x}): bridged {got:#010x}, in-process {expected:#010x}"
        );
        assert_eq!(got, bits, "ffb_id_f32({bits:#010x}) changed the bits");
    }
}

/// Signalling-NaN f32 arguments: an identity function called in-process
/// returns the exact bits. Through the bridge they must arrive unchanged too.
#[test]
fn id_f32_preserves_signalling_nan_bits() {
    let mut b = fixture_bridge(&["ffb_id_f32(f32) -> f32"]);
    let lib = direct();
    // SAFETY: ffb_id_f32 (fixtures/ffb_fixture.h) takes and returns plain
    // numbers and is defined for every value, so a safe fn pointer is sound.
    let f = unsafe { lib.sym::<extern "C" fn(f32) -> f32>("ffb_id_f32") };
    let mut failures = Vec::new();
    for &bits in F32_SIGNALLING_NANS {
        let v = f32::from_bits(bits);
        let expected = f(v).to_bits();
        assert_eq!(expected, bits, "in-process identity");
        let got = f32_bits(&ret(&mut b, "ffb_id_f32", &[Value::F32(v)]));
        if got != expected {
            failures.push(format!(
                "ffb_id_f32({bits:#010x}) returned {got:#010x} through the bridge, {expected:#010x} in-process"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// arithmetic and many-argument calls
// ---------------------------------------------------------------------------

#[test]
fn add_i64_wraps_like_in_process() {
    let mut b = fixture_bridge(&[
        "ffb_add_i64(i64, i64) -> i64",
        "ffb_add_i32(i32, i32) -> i32",
    ]);
    let lib = direct();
    // SAFETY: ffb_add_i64 (wrapping) (fixtures/ffb_fixture.h) takes and returns plain
    // numbers and is defined for every value, so a safe fn pointer is sound.
    let add = unsafe { lib.sym::<extern "C" fn(i64, i64) -> i64>("ffb_add_i64") };
    // SAFETY: ffb_add_i32 (wrapping) (fixtures/ffb_fixture.h) takes and returns plain
    // numbers and is defined for every value, so a safe fn pointer is sound.
    let add32 = unsafe { lib.sym::<extern "C" fn(i32, i32) -> i32>("ffb_add_i32") };
    let cases = [
        (2i64, 40i64),
        (i64::MAX, 1),
        (i64::MIN, -1),
        (-1, -1),
        (0, 0),
        (i64::MIN, i64::MIN),
        (123_456_789_012, -987_654_321_098),
    ];
    for (a, c) in cases {
        let expected = add(a, c);
        assert_eq!(expected, a.wrapping_add(c));
        assert_eq!(
            ret(&mut b, "ffb_add_i64", &[Value::I64(a), Value::I64(c)]),
            Value::I64(expected),
            "{a} + {c}"
        );
    }
    for (a, c) in [(i32::MAX, 1i32), (i32::MIN, -1), (-5, 3)] {
        let expected = add32(a, c);
        assert_eq!(expected, a.wrapping_add(c));
        assert_eq!(
            ret(&mut b, "ffb_add_i32", &[Value::I32(a), Value::I32(c)]),
            Value::I32(expected)
        );
    }
    assert_eq!(
        ret(&mut b, "ffb_add_i64", &[Value::I64(2), Value::I64(40)]),
        Value::I64(42)
    );
}

// The many-argument functions take and return plain numbers and are defined
// for every value (fixtures/ffb_fixture.h), so they are looked up as safe fn
// pointers: each lookup's SAFETY comment is the whole argument.

type Mix4 = extern "C" fn(i32, f64, i64, f32) -> f64;

#[test]
fn mix4_assigns_registers_like_in_process() {
    let mut b = fixture_bridge(&["ffb_mix4(i32, f64, i64, f32) -> f64"]);
    let lib = direct();
    // SAFETY: Mix4 is the C type of ffb_mix4, which is sound to call with
    // any values (see the type aliases above).
    let f = unsafe { lib.sym::<Mix4>("ffb_mix4") };
    // 1 + 2*2 + 3*3 + 4*4 = 30: every weight shows.
    assert_eq!(
        ret(
            &mut b,
            "ffb_mix4",
            &[
                Value::I32(1),
                Value::F64(2.0),
                Value::I64(3),
                Value::F32(4.0)
            ]
        ),
        Value::F64(30.0)
    );
    let cases = [
        (i32::MIN, f64::MAX, i64::MAX, f32::MIN),
        (-7, -0.0, 0, -0.0),
        (0, f64::INFINITY, 1, f32::NEG_INFINITY),
        (1, 1e-300, -1, 1e-30),
    ];
    for (a, bb, c, d) in cases {
        let expected = f(a, bb, c, d);
        let got = ret(
            &mut b,
            "ffb_mix4",
            &[Value::I32(a), Value::F64(bb), Value::I64(c), Value::F32(d)],
        );
        assert_eq!(
            f64_bits(&got),
            expected.to_bits(),
            "mix4({a}, {bb}, {c}, {d})"
        );
    }
}

const MANY_MIXED_SIG: &str = "ffb_many_mixed(i32, f64, i64, f32, u8, f64, i16, f64, u32, f64, i64, f64, u64, f64, i8, f64, u16, f64, i32, f32) -> f64";

type ManyMixed = extern "C" fn(
    i32,
    f64,
    i64,
    f32,
    u8,
    f64,
    i16,
    f64,
    u32,
    f64,
    i64,
    f64,
    u64,
    f64,
    i8,
    f64,
    u16,
    f64,
    i32,
    f32,
) -> f64;

#[derive(Clone, Copy, Debug)]
struct Mixed {
    a0: i32,
    f0: f64,
    a1: i64,
    f1: f32,
    a2: u8,
    f2: f64,
    a3: i16,
    f3: f64,
    a4: u32,
    f4: f64,
    a5: i64,
    f5: f64,
    a6: u64,
    f6: f64,
    a7: i8,
    f7: f64,
    a8: u16,
    f8: f64,
    a9: i32,
    f9: f32,
}

impl Mixed {
    fn values(&self) -> Vec<Value> {
        vec![
            Value::I32(self.a0),
            Value::F64(self.f0),
            Value::I64(self.a1),
            Value::F32(self.f1),
            Value::U8(self.a2),
            Value::F64(self.f2),
            Value::I16(self.a3),
            Value::F64(self.f3),
            Value::U32(self.a4),
            Value::F64(self.f4),
            Value::I64(self.a5),
            Value::F64(self.f5),
            Value::U64(self.a6),
            Value::F64(self.f6),
            Value::I8(self.a7),
            Value::F64(self.f7),
            Value::U16(self.a8),
            Value::F64(self.f8),
            Value::I32(self.a9),
            Value::F32(self.f9),
        ]
    }

    fn direct(&self, f: ManyMixed) -> f64 {
        f(
            self.a0, self.f0, self.a1, self.f1, self.a2, self.f2, self.a3, self.f3, self.a4,
            self.f4, self.a5, self.f5, self.a6, self.f6, self.a7, self.f7, self.a8, self.f8,
            self.a9, self.f9,
        )
    }
}

#[test]
fn many_mixed_20_args_stack_interleaving() {
    let mut b = fixture_bridge(&[MANY_MIXED_SIG]);
    let lib = direct();
    // SAFETY: ManyMixed is the C type of ffb_many_mixed, which is sound to call with
    // any values (see the type aliases above).
    let f = unsafe { lib.sym::<ManyMixed>("ffb_many_mixed") };
    // Each position k holds a distinct value k + 1, so the exact result is
    // sum (k+1)^2 = 2870 and any swap changes it.
    let ones = Mixed {
        a0: 1,
        f0: 2.0,
        a1: 3,
        f1: 4.0,
        a2: 5,
        f2: 6.0,
        a3: 7,
        f3: 8.0,
        a4: 9,
        f4: 10.0,
        a5: 11,
        f5: 12.0,
        a6: 13,
        f6: 14.0,
        a7: 15,
        f7: 16.0,
        a8: 17,
        f8: 18.0,
        a9: 19,
        f9: 20.0,
    };
    assert_eq!(ones.direct(*f), 2870.0);
    assert_eq!(
        ret(&mut b, "ffb_many_mixed", &ones.values()),
        Value::F64(2870.0)
    );
    // Only the last (stack-passed) values set: swaps at the end show too.
    let mut tail = Mixed {
        a0: 0,
        f0: 0.0,
        a1: 0,
        f1: 0.0,
        a2: 0,
        f2: 0.0,
        a3: 0,
        f3: 0.0,
        a4: 0,
        f4: 0.0,
        a5: 0,
        f5: 0.0,
        a6: 0,
        f6: 0.0,
        a7: 0,
        f7: 0.0,
        a8: 0,
        f8: 0.0,
        a9: 0,
        f9: 0.0,
    };
    tail.f8 = 1.0; // 18
    tail.a9 = 1000; // 19000
    tail.f9 = 100_000.0; // 2_000_000
    tail.a7 = -1; // -15
    tail.a6 = u64::MAX; // 13 * 1.8446744073709552e19
    let expected = tail.direct(*f);
    let got = ret(&mut b, "ffb_many_mixed", &tail.values());
    assert_eq!(f64_bits(&got), expected.to_bits(), "{got:?} vs {expected}");
    let extremes = Mixed {
        a0: i32::MIN,
        f0: f64::MIN_POSITIVE,
        a1: i64::MAX,
        f1: f32::MAX,
        a2: u8::MAX,
        f2: -0.0,
        a3: i16::MIN,
        f3: 1e300,
        a4: u32::MAX,
        f4: -1e300,
        a5: i64::MIN,
        f5: 0.5,
        a6: 0,
        f6: f64::EPSILON,
        a7: i8::MIN,
        f7: 3.25,
        a8: u16::MAX,
        f8: -2.5,
        a9: i32::MAX,
        f9: f32::MIN_POSITIVE,
    };
    let expected = extremes.direct(*f);
    let got = ret(&mut b, "ffb_many_mixed", &extremes.values());
    assert_eq!(f64_bits(&got), expected.to_bits());
}

type ManyInts = extern "C" fn(
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
) -> u64;

fn many_ints_sig() -> String {
    format!("ffb_many_ints({}) -> u64", ["u64"; 16].join(", "))
}

fn many_ints_reference(x: &[u64; 16]) -> u64 {
    let mut s = 0u64;
    for (k, v) in x.iter().enumerate() {
        s = s.wrapping_add((k as u64 + 1).wrapping_mul(*v));
    }
    s ^ (x[15] << 1)
}

fn many_ints_direct(f: ManyInts, x: &[u64; 16]) -> u64 {
    f(
        x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13],
        x[14], x[15],
    )
}

#[test]
fn many_ints_16_args() {
    let mut b = fixture_bridge(&[&many_ints_sig()]);
    let lib = direct();
    // SAFETY: ManyInts is the C type of ffb_many_ints, which is sound to call with
    // any values (see the type aliases above).
    let f = unsafe { lib.sym::<ManyInts>("ffb_many_ints") };
    let inputs: [[u64; 16]; 4] = [
        std::array::from_fn(|k| k as u64 + 1),
        std::array::from_fn(|k| if k == 15 { u64::MAX } else { 0 }),
        std::array::from_fn(|k| 1u64 << (k * 4)),
        [u64::MAX; 16],
    ];
    for x in &inputs {
        let expected = many_ints_direct(*f, x);
        assert_eq!(expected, many_ints_reference(x));
        let args: Vec<Value> = x.iter().map(|v| Value::U64(*v)).collect();
        assert_eq!(
            ret(&mut b, "ffb_many_ints", &args),
            Value::U64(expected),
            "{x:?}"
        );
    }
    // 1..=16: sum (k+1)^2 = 1496, ^ (16 << 1).
    let args: Vec<Value> = (1..=16u64).map(Value::U64).collect();
    assert_eq!(ret(&mut b, "ffb_many_ints", &args), Value::U64(1496 ^ 32));
}

type ManyFloats = extern "C" fn(
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
    f64,
) -> f64;

#[test]
fn many_floats_16_args() {
    let sig = format!("ffb_many_floats({}) -> f64", ["f64"; 16].join(", "));
    let mut b = fixture_bridge(&[&sig]);
    let lib = direct();
    // SAFETY: ManyFloats is the C type of ffb_many_floats, which is sound to call with
    // any values (see the type aliases above).
    let f = unsafe { lib.sym::<ManyFloats>("ffb_many_floats") };
    let inputs: [[f64; 16]; 3] = [
        std::array::from_fn(|k| k as f64 + 1.0),
        std::array::from_fn(|k| if k >= 8 { 1.0 / (k as f64) } else { -0.0 }),
        std::array::from_fn(|k| (k as f64 * 0.37).sin() * 1e10),
    ];
    for x in &inputs {
        let expected = f(
            x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13],
            x[14], x[15],
        );
        let args: Vec<Value> = x.iter().map(|v| Value::F64(*v)).collect();
        let got = ret(&mut b, "ffb_many_floats", &args);
        assert_eq!(f64_bits(&got), expected.to_bits(), "{x:?}");
    }
    let args: Vec<Value> = (1..=16).map(|k| Value::F64(k as f64)).collect();
    assert_eq!(ret(&mut b, "ffb_many_floats", &args), Value::F64(1496.0));
}

type ManyF32 = extern "C" fn(f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) -> f32;

#[test]
fn many_f32_12_args() {
    let sig = format!("ffb_many_f32({}) -> f32", ["f32"; 12].join(", "));
    let mut b = fixture_bridge(&[&sig]);
    let lib = direct();
    // SAFETY: ManyF32 is the C type of ffb_many_f32, which is sound to call with
    // any values (see the type aliases above).
    let f = unsafe { lib.sym::<ManyF32>("ffb_many_f32") };
    let inputs: [[f32; 12]; 3] = [
        std::array::from_fn(|k| k as f32 + 1.0),
        std::array::from_fn(|k| if k >= 8 { 1000.0 * k as f32 } else { 0.0 }),
        std::array::from_fn(|k| (k as f32 * 1.3).cos() / 7.0),
    ];
    for x in &inputs {
        let expected = f(
            x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11],
        );
        let args: Vec<Value> = x.iter().map(|v| Value::F32(*v)).collect();
        let got = ret(&mut b, "ffb_many_f32", &args);
        assert_eq!(f32_bits(&got), expected.to_bits(), "{x:?}");
    }
    // sum (k+1)^2 for k < 12 = 650.
    let args: Vec<Value> = (1..=12).map(|k| Value::F32(k as f32)).collect();
    assert_eq!(ret(&mut b, "ffb_many_f32", &args), Value::F32(650.0));
}

// ---------------------------------------------------------------------------
// cstr
// ---------------------------------------------------------------------------

#[test]
fn cstr_arguments_and_returns() {
    let mut b = fixture_bridge(&[
        "ffb_strlen(cstr) -> usize",
        "ffb_echo(cstr) -> cstr",
        "ffb_greet() -> cstr",
        "ffb_null_cstr() -> cstr",
    ]);
    let pid0 = b.helper_pid();
    let lib = direct();
    // SAFETY: ffb_strlen is `size_t (const char *)` (fixtures/ffb_fixture.h).
    let strlen =
        unsafe { lib.sym::<unsafe extern "C" fn(*const libc::c_char) -> usize>("ffb_strlen") };
    // SAFETY: ffb_greet is `const char *(void)`: with no arguments it has
    // nothing to misuse, so it is sound to call as a safe fn.
    let greet = unsafe { lib.sym::<extern "C" fn() -> *const libc::c_char>("ffb_greet") };
    let long = "x".repeat(100_000);
    let utf8 = "héllo wörld ✓";
    for s in ["", "a", "hello", utf8, long.as_str()] {
        let c = std::ffi::CString::new(s).unwrap();
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        let expected = unsafe { strlen(c.as_ptr()) };
        assert_eq!(expected, s.len());
        assert_eq!(
            ret(&mut b, "ffb_strlen", &[Value::str(s)]),
            Value::Usize(expected)
        );
        assert_eq!(ret(&mut b, "ffb_echo", &[Value::str(s)]), Value::str(s));
    }
    // Bytes values are accepted for a cstr parameter too.
    assert_eq!(
        ret(&mut b, "ffb_echo", &[Value::bytes([0xff, 0x01, 0x7f])]),
        Value::Str(vec![0xff, 0x01, 0x7f])
    );
    // SAFETY: ffb_greet returns a pointer to a static NUL-terminated string.
    let expected = unsafe { std::ffi::CStr::from_ptr(greet()) }
        .to_bytes()
        .to_vec();
    assert_eq!(expected, b"hello from ffb fixture");
    assert_eq!(ret(&mut b, "ffb_greet", &[]), Value::Str(expected));
    assert_eq!(ret(&mut b, "ffb_null_cstr", &[]), Value::Null);
    assert_eq!(b.helper_pid(), pid0, "the helper was replaced");
}

#[test]
fn bad_cstr_returns_are_typed_errors() {
    let mut b = fixture_bridge(&[
        "ffb_bad_cstr() -> cstr",
        "ffb_huge_cstr() -> cstr",
        "ffb_unterminated_end() -> cstr",
        "ffb_greet() -> cstr",
    ]);
    let e = b.call_by_name("ffb_huge_cstr", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceLimit, "{e}");
    assert_eq!(
        ret(&mut b, "ffb_greet", &[]),
        Value::str("hello from ffb fixture")
    );
    let e = b.call_by_name("ffb_bad_cstr", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert_eq!(
        ret(&mut b, "ffb_greet", &[]),
        Value::str("hello from ffb fixture")
    );
    let e = b.call_by_name("ffb_unterminated_end", &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert_eq!(
        ret(&mut b, "ffb_greet", &[]),
        Value::str("hello from ffb fixture")
    );
}

// ---------------------------------------------------------------------------
// bytes and out[N]
// ---------------------------------------------------------------------------

#[test]
fn bytes_are_copied_in_and_out() {
    let mut b = fixture_bridge(&[
        "ffb_reverse_bytes(bytes, usize) -> void",
        "ffb_sum_bytes(bytes, usize) -> u32",
        "ffb_adler_like(bytes, usize) -> u32",
    ]);
    let lib = direct();
    // SAFETY: ffb_reverse_bytes is `void (uint8_t *, size_t)`.
    let reverse = unsafe { lib.sym::<unsafe extern "C" fn(*mut u8, usize)>("ffb_reverse_bytes") };
    // SAFETY: ffb_adler_like is `uint32_t (const uint8_t *, size_t)`.
    let adler =
        unsafe { lib.sym::<unsafe extern "C" fn(*const u8, usize) -> u32>("ffb_adler_like") };
    for data in [
        vec![],
        vec![7u8],
        vec![1, 2, 3, 4, 5],
        (0..=255u8).collect::<Vec<_>>(),
        (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect(),
    ] {
        let args = vec![Value::Bytes(data.clone()), Value::Usize(data.len())];
        let out = b.call_by_name("ffb_reverse_bytes", &args).unwrap();
        let mut expected = data.clone();
        // SAFETY: it reverses exactly `len` bytes of the buffer in place.
        unsafe { reverse(expected.as_mut_ptr(), expected.len()) };
        let mut rev = data.clone();
        rev.reverse();
        assert_eq!(expected, rev);
        assert_eq!(out.ret, Value::Null);
        assert_eq!(out.out, vec![Some(Value::Bytes(expected)), None]);
        // The caller's values are untouched.
        assert_eq!(args[0], Value::Bytes(data.clone()));

        let sum: u32 = data.iter().map(|&x| x as u32).sum();
        assert_eq!(
            ret(
                &mut b,
                "ffb_sum_bytes",
                &[Value::Bytes(data.clone()), Value::Usize(data.len())]
            ),
            Value::U32(sum)
        );
        // SAFETY: it reads exactly `len` bytes of the buffer.
        let expected = unsafe { adler(data.as_ptr(), data.len()) };
        assert_eq!(
            ret(
                &mut b,
                "ffb_adler_like",
                &[Value::Bytes(data.clone()), Value::Usize(data.len())]
            ),
            Value::U32(expected)
        );
    }
    // Adler-32 of "Wikipedia" is the textbook 0x11E60398.
    assert_eq!(
        ret(
            &mut b,
            "ffb_adler_like",
            &[Value::bytes("Wikipedia"), Value::Usize(9)]
        ),
        Value::U32(0x11E6_0398)
    );
}

#[test]
fn out_buffers_are_zeroed_then_filled() {
    let mut b = fixture_bridge(&[
        "ffb_fill_out(out[64], usize) -> i32",
        "ffb_write_buf(out[20], usize) -> i32",
    ]);
    let lib = direct();
    // SAFETY: ffb_fill_out is `int32_t (uint8_t *, size_t)`.
    let fill = unsafe { lib.sym::<unsafe extern "C" fn(*mut u8, usize) -> i32>("ffb_fill_out") };
    for n in [64usize, 10, 0] {
        let mut expected = vec![0u8; 64];
        // SAFETY: it writes the first `n` bytes, and n <= 64 = the buffer's length.
        let r = unsafe { fill(expected.as_mut_ptr(), n) };
        let out = b.call_by_name("ffb_fill_out", &[Value::Usize(n)]).unwrap();
        assert_eq!(out.ret, Value::I32(r));
        assert_eq!(r, n as i32);
        for (i, byte) in expected.iter().enumerate() {
            let want = if i < n { (i * 7 + 3) as u8 } else { 0 };
            assert_eq!(*byte, want);
        }
        assert_eq!(out.out, vec![Some(Value::Bytes(expected)), None]);
    }
    // After a full fill, a shorter one still sees a zeroed buffer.
    b.call_by_name("ffb_write_buf", &[Value::Usize(20)])
        .unwrap();
    let out = b.call_by_name("ffb_write_buf", &[Value::Usize(3)]).unwrap();
    let mut want = b"fix".to_vec();
    want.resize(20, 0);
    assert_eq!(out.out[0], Some(Value::Bytes(want)));
}

// ---------------------------------------------------------------------------
// *T pointers
// ---------------------------------------------------------------------------

macro_rules! ptr_case {
    ($b:expr, $lib:expr, $sym:literal, $rust:ty, $variant:ident, [$($v:expr),*]) => {{
        // SAFETY: every ffb_ptr_* is `void (T *)` for its T
        // (fixtures/ffb_fixture.h).
        let f = unsafe { $lib.sym::<unsafe extern "C" fn(*mut $rust)>($sym) };
        for v in [$($v),*] {
            let v: $rust = v;
            let mut expected = v;
            // SAFETY: it reads and writes the one live `T` it is given.
            unsafe { f(&mut expected) };
            let out = $b
                .call_by_name($sym, &[Value::$variant(v)])
                .unwrap_or_else(|e| panic!("{}: {e}", $sym));
            assert_eq!(out.ret, Value::Null);
            assert_eq!(out.out.len(), 1);
            match (&out.out[0], expected) {
                (Some(Value::$variant(got)), want) => {
                    assert_eq!(
                        ValueBits::bits(got),
                        ValueBits::bits(&want),
                        "{}({v:?}): bridged {got:?}, in-process {want:?}",
                        $sym
                    );
                }
                (other, _) => panic!("{}: out-value {other:?}", $sym),
            }
        }
    }};
}

trait ValueBits {
    fn bits(&self) -> u64;
}
macro_rules! int_bits {
    ($($t:ty),*) => {$(impl ValueBits for $t { fn bits(&self) -> u64 { *self as u64 } })*};
}
int_bits!(i8, u16, i32, u64, isize, usize);
impl ValueBits for f32 {
    fn bits(&self) -> u64 {
        self.to_bits().into()
    }
}
impl ValueBits for f64 {
    fn bits(&self) -> u64 {
        self.to_bits()
    }
}

#[test]
fn pointer_out_values_match_in_process() {
    let mut b = fixture_bridge(&[
        "ffb_ptr_i8(*i8) -> void",
        "ffb_ptr_u16(*u16) -> void",
        "ffb_ptr_i32(*i32) -> void",
        "ffb_ptr_u64(*u64) -> void",
        "ffb_ptr_f32(*f32) -> void",
        "ffb_ptr_f64(*f64) -> void",
        "ffb_ptr_isize(*isize) -> void",
        "ffb_ptr_usize(*usize) -> void",
    ]);
    let lib = direct();
    ptr_case!(b, lib, "ffb_ptr_i8", i8, I8, [5, -128, 127, 0, -1]);
    ptr_case!(b, lib, "ffb_ptr_u16", u16, U16, [0, 65535, 64536, 1]);
    ptr_case!(b, lib, "ffb_ptr_i32", i32, I32, [7, i32::MAX, i32::MIN, -1]);
    ptr_case!(b, lib, "ffb_ptr_u64", u64, U64, [0, u64::MAX, 1 << 63, 21]);
    ptr_case!(
        b,
        lib,
        "ffb_ptr_f32",
        f32,
        F32,
        [3.0, -0.0, f32::INFINITY, f32::MIN_POSITIVE, f32::MAX]
    );
    ptr_case!(
        b,
        lib,
        "ffb_ptr_f64",
        f64,
        F64,
        [2.0, -0.0, f64::NEG_INFINITY, 1e308, 5e-324]
    );
    ptr_case!(
        b,
        lib,
        "ffb_ptr_isize",
        isize,
        Isize,
        [0, isize::MIN, isize::MAX, -7]
    );
    ptr_case!(
        b,
        lib,
        "ffb_ptr_usize",
        usize,
        Usize,
        [0, usize::MAX, 1 << 62, 10]
    );
    // Fixed expectations, independent of the in-process run.
    let out = b.call_by_name("ffb_ptr_i8", &[Value::I8(5)]).unwrap();
    assert_eq!(out.out, vec![Some(Value::I8(-5))]);
    let out = b.call_by_name("ffb_ptr_u16", &[Value::U16(65000)]).unwrap();
    assert_eq!(out.out, vec![Some(Value::U16(464))]);
    let out = b.call_by_name("ffb_ptr_f64", &[Value::F64(2.0)]).unwrap();
    assert_eq!(out.out, vec![Some(Value::F64(5.0))]);
    let out = b
        .call_by_name("ffb_ptr_isize", &[Value::Isize(10)])
        .unwrap();
    assert_eq!(out.out, vec![Some(Value::Isize(-17))]);
    let out = b
        .call_by_name("ffb_ptr_usize", &[Value::Usize(10)])
        .unwrap();
    assert_eq!(out.out, vec![Some(Value::Usize(45))]);
}

#[test]
fn divmod_two_pointer_outs() {
    let mut b = fixture_bridge(&["ffb_divmod(i64, i64, *i64, *i64) -> i32"]);
    let lib = direct();
    // SAFETY: ffb_divmod is `int32_t (int64_t, int64_t, int64_t *, int64_t *)`.
    let f = unsafe {
        lib.sym::<unsafe extern "C" fn(i64, i64, *mut i64, *mut i64) -> i32>("ffb_divmod")
    };
    let cases = [
        (17i64, 5i64),
        (-17, 5),
        (17, -5),
        (i64::MIN, -1),
        (i64::MAX, 1),
        (0, 3),
        (5, 0),
    ];
    for (a, d) in cases {
        let (mut q, mut r) = (111i64, 222i64);
        // SAFETY: it writes through its two pointers only, both to live i64s.
        let rc = unsafe { f(a, d, &mut q, &mut r) };
        let out = b
            .call_by_name(
                "ffb_divmod",
                &[
                    Value::I64(a),
                    Value::I64(d),
                    Value::I64(111),
                    Value::I64(222),
                ],
            )
            .unwrap();
        assert_eq!(out.ret, Value::I32(rc), "{a} / {d}");
        assert_eq!(
            out.out,
            vec![None, None, Some(Value::I64(q)), Some(Value::I64(r))],
            "{a} / {d}"
        );
    }
    let out = b
        .call_by_name(
            "ffb_divmod",
            &[Value::I64(-17), Value::I64(5), Value::I64(0), Value::I64(0)],
        )
        .unwrap();
    assert_eq!(out.ret, Value::I32(0));
    assert_eq!(out.out[2..], [Some(Value::I64(-3)), Some(Value::I64(-2))]);
    let out = b
        .call_by_name(
            "ffb_divmod",
            &[Value::I64(1), Value::I64(0), Value::I64(9), Value::I64(8)],
        )
        .unwrap();
    assert_eq!(out.ret, Value::I32(-1));
    assert_eq!(out.out[2..], [Some(Value::I64(9)), Some(Value::I64(8))]);
}

// ---------------------------------------------------------------------------
// handles
// ---------------------------------------------------------------------------

#[test]
fn handles_round_trip() {
    let mut b = fixture_bridge(&[
        "ffb_counter_new(i64) -> handle",
        "ffb_counter_next(handle) -> i64",
        "ffb_counter_free(handle) -> void",
        "ffb_counter_open(*handle, i64) -> i32",
        "ffb_null_handle() -> handle",
        "ffb_counter_peek_ptr(*handle) -> i64",
    ]);
    let pid0 = b.helper_pid();
    let c = ret(&mut b, "ffb_counter_new", &[Value::I64(10)]);
    assert!(matches!(c, Value::Handle(_)), "{c:?}");
    for want in 10..15 {
        assert_eq!(
            ret(&mut b, "ffb_counter_next", std::slice::from_ref(&c)),
            Value::I64(want)
        );
    }
    // A second counter is a distinct handle with its own state.
    let d = ret(&mut b, "ffb_counter_new", &[Value::I64(i64::MAX)]);
    assert!(matches!(d, Value::Handle(_)));
    assert_ne!(c, d);
    assert_eq!(
        ret(&mut b, "ffb_counter_next", std::slice::from_ref(&d)),
        Value::I64(i64::MAX)
    );
    assert_eq!(
        ret(&mut b, "ffb_counter_next", std::slice::from_ref(&d)),
        Value::I64(i64::MIN)
    );
    assert_eq!(
        ret(&mut b, "ffb_counter_next", std::slice::from_ref(&c)),
        Value::I64(15)
    );

    // *handle out-parameter: the new handle is usable afterwards.
    let out = b
        .call_by_name("ffb_counter_open", &[Value::Null, Value::I64(100)])
        .unwrap();
    assert_eq!(out.ret, Value::I32(0));
    assert_eq!(out.out.len(), 2);
    assert_eq!(out.out[1], None);
    let opened = out.out[0].clone().expect("*handle out-value");
    assert!(matches!(opened, Value::Handle(_)), "{opened:?}");
    assert_ne!(opened, c);
    assert_eq!(
        ret(&mut b, "ffb_counter_next", std::slice::from_ref(&opened)),
        Value::I64(100)
    );
    assert_eq!(
        ret(&mut b, "ffb_counter_next", std::slice::from_ref(&opened)),
        Value::I64(101)
    );

    // *handle in: peek reads through it without changing it.
    let out = b
        .call_by_name("ffb_counter_peek_ptr", std::slice::from_ref(&opened))
        .unwrap();
    assert_eq!(out.ret, Value::I64(102));
    assert_eq!(out.out, vec![Some(opened.clone())]);
    let out = b
        .call_by_name("ffb_counter_peek_ptr", &[Value::Null])
        .unwrap();
    assert_eq!(out.ret, Value::I64(i64::MIN));
    assert_eq!(out.out, vec![Some(Value::Null)]);

    // NULL handles both ways.
    assert_eq!(ret(&mut b, "ffb_null_handle", &[]), Value::Null);
    assert_eq!(
        ret(&mut b, "ffb_counter_next", &[Value::Null]),
        Value::I64(i64::MIN)
    );
    // A non-handle value for a handle parameter is a bad argument.
    let e = b
        .call_by_name("ffb_counter_next", &[Value::U64(0x1000)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument, "{e}");

    ret(&mut b, "ffb_counter_free", &[d]);
    assert_eq!(ret(&mut b, "ffb_counter_next", &[c]), Value::I64(16));
    assert_eq!(b.helper_pid(), pid0, "the helper was replaced");
}

#[test]
fn handles_from_another_bridge_are_rejected() {
    let decls = [
        "ffb_counter_new(i64) -> handle",
        "ffb_counter_next(handle) -> i64",
    ];
    let mut a = fixture_bridge(&decls);
    let mut other = fixture_bridge(&decls);
    let h = ret(&mut a, "ffb_counter_new", &[Value::I64(1)]);
    let e = other
        .call_by_name("ffb_counter_next", std::slice::from_ref(&h))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    assert_eq!(ret(&mut a, "ffb_counter_next", &[h]), Value::I64(1));
}

// ---------------------------------------------------------------------------
// effects
// ---------------------------------------------------------------------------

#[test]
fn every_call_is_a_full_fence() {
    let mut b = fixture_bridge(&["ffb_nop() -> void", "ffb_id_i32(i32) -> i32"]);
    for name in ["ffb_nop", "ffb_id_i32"] {
        let f = b.function(name).unwrap();
        assert!(b.effects(f).is_worst_case());
        let args = if name == "ffb_nop" {
            vec![]
        } else {
            vec![Value::I32(3)]
        };
        let out = b.call(f, &args).unwrap();
        assert_eq!(
            out.effects.to_string(),
            "io + nondet + mutates(all) + throws(any)"
        );
        assert!(out.effects.is_worst_case());
    }
    assert_eq!(
        ffb_loader::call_effects().to_string(),
        "io + nondet + mutates(all) + throws(any)"
    );
}

// ---------------------------------------------------------------------------
// seeded fuzz: bridged vs in-process
// ---------------------------------------------------------------------------

/// The fuzz's own draws on top of the shared generator: floats that favour
/// the edge cases.
trait Draw {
    fn f64(&mut self) -> f64;
    fn f32(&mut self) -> f32;
}

impl Draw for XorShift {
    fn f64(&mut self) -> f64 {
        match self.next_u64() % 8 {
            0 => f64::from_bits(self.next_u64()),
            1 => [
                0.0,
                -0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::MAX,
                f64::MIN,
            ][(self.next_u64() % 6) as usize],
            _ => (self.next_u64() as i64 as f64) / (1u64 << (self.next_u64() % 64)) as f64,
        }
    }

    fn f32(&mut self) -> f32 {
        match self.next_u64() % 8 {
            // Random bits, but not signalling NaNs (see
            // id_f32_preserves_signalling_nan_bits for those).
            0 => {
                let f = f32::from_bits(self.next_u64() as u32);
                if f.is_nan() {
                    f32::from_bits(f.to_bits() | 0x0040_0000)
                } else {
                    f
                }
            }
            1 => [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY][(self.next_u64() % 4) as usize],
            _ => (self.next_u64() as i32 as f32) / (1u32 << (self.next_u64() % 32)) as f32,
        }
    }
}

#[test]
fn seeded_fuzz_bridged_equals_in_process() {
    let mut b = fixture_bridge(&[
        MANY_MIXED_SIG,
        &many_ints_sig(),
        "ffb_mix4(i32, f64, i64, f32) -> f64",
    ]);
    let pid0 = b.helper_pid();
    let lib = direct();
    // SAFETY: the aliases are the functions' C types, and the functions are
    // sound to call with any values (see the aliases).
    let mixed = unsafe { lib.sym::<ManyMixed>("ffb_many_mixed") };
    // SAFETY: as above.
    let ints = unsafe { lib.sym::<ManyInts>("ffb_many_ints") };
    // SAFETY: as above.
    let mix4 = unsafe { lib.sym::<Mix4>("ffb_mix4") };
    let fm = b.function("ffb_many_mixed").unwrap();
    let fi = b.function("ffb_many_ints").unwrap();
    let f4 = b.function("ffb_mix4").unwrap();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut calls = 0;
    for round in 0..1000 {
        let r = &mut rng;
        let m = Mixed {
            a0: r.next_u64() as i32,
            f0: r.f64(),
            a1: r.next_u64() as i64,
            f1: r.f32(),
            a2: r.next_u64() as u8,
            f2: r.f64(),
            a3: r.next_u64() as i16,
            f3: r.f64(),
            a4: r.next_u64() as u32,
            f4: r.f64(),
            a5: r.next_u64() as i64,
            f5: r.f64(),
            a6: r.next_u64(),
            f6: r.f64(),
            a7: r.next_u64() as i8,
            f7: r.f64(),
            a8: r.next_u64() as u16,
            f8: r.f64(),
            a9: r.next_u64() as i32,
            f9: r.f32(),
        };
        let expected = m.direct(*mixed);
        let got = b.call(fm, &m.values()).unwrap().ret;
        assert_eq!(
            f64_bits(&got),
            expected.to_bits(),
            "round {round}: many_mixed{m:?}: bridged {got:?}, in-process {expected}"
        );

        let x: [u64; 16] = std::array::from_fn(|_| rng.next_u64());
        let expected = many_ints_direct(*ints, &x);
        let args: Vec<Value> = x.iter().map(|v| Value::U64(*v)).collect();
        assert_eq!(
            b.call(fi, &args).unwrap().ret,
            Value::U64(expected),
            "round {round}: many_ints{x:?}"
        );

        let (a, bb, c, d) = (
            rng.next_u64() as i32,
            rng.f64(),
            rng.next_u64() as i64,
            rng.f32(),
        );
        let expected = mix4(a, bb, c, d);
        let got = b
            .call(
                f4,
                &[Value::I32(a), Value::F64(bb), Value::I64(c), Value::F32(d)],
            )
            .unwrap()
            .ret;
        assert_eq!(
            f64_bits(&got),
            expected.to_bits(),
            "round {round}: mix4({a}, {bb:e}, {c}, {d:e})"
        );
        calls += 3;
    }
    assert_eq!(calls, 3000);
    assert_eq!(b.helper_pid(), pid0, "the helper was replaced");
}
