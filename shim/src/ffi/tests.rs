//! The direct path against libffi: for every arity it takes (0 to 6) and
//! every return type, with every argument type, the same function called
//! both ways with the same words must give the same return word and see
//! the same registers. The callees take and return raw `u64`s whatever the
//! declaration says, so they see exactly what the caller put in each
//! register, and a return's upper bits are whatever the callee left there:
//! a wrong widening of an argument or a return, a swapped register or a
//! wrong return register changes the result. Real libc functions (C code)
//! are checked the same way, against their known answers too.

use std::cell::Cell;
use std::ffi::CStr;

use super::*;

/// Every argument word has high bits set in each byte, half and word, so
/// that sign- and zero-extension differ at every width.
fn words() -> [u64; MAX_WIRE_ARGS] {
    let mut w = [0u64; MAX_WIRE_ARGS];
    for (i, slot) in w.iter_mut().enumerate() {
        *slot = 0x8182_8384_f5f6_c7b8u64.rotate_left(8 * i as u32) ^ (i as u64 * 0x11);
    }
    w
}

/// What a callee computes from the registers it saw: every bit of every
/// argument, in its position.
fn fold(args: &[u64]) -> u64 {
    args.iter()
        .enumerate()
        .fold(0xcbf2_9ce4_8422_2325, |h, (i, &a)| {
            (h ^ a.rotate_left(9 * i as u32 + 1)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

thread_local! {
    /// What the last void callee saw.
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// One callee of each return kind for `n` arguments: `word` returns the
/// fold (all 64 bits: a narrow declared return must be cut and widened),
/// `float` and `double` a value made from it, `void` records it.
macro_rules! callees {
    ($($name:ident($($a:ident),*);)*) => {$(
        mod $name {
            use super::{fold, SEEN};
            pub extern "C" fn word($($a: u64),*) -> u64 {
                fold(&[$($a),*])
            }
            pub extern "C" fn double($($a: u64),*) -> f64 {
                (fold(&[$($a),*]) >> 11) as f64 * -1.5
            }
            pub extern "C" fn float($($a: u64),*) -> f32 {
                (fold(&[$($a),*]) >> 40) as f32 * -0.75
            }
            pub extern "C" fn void($($a: u64),*) {
                SEEN.set(fold(&[$($a),*]));
            }
        }
    )*};
}

callees! {
    a0();
    a1(a);
    a2(a, b);
    a3(a, b, c);
    a4(a, b, c, d);
    a5(a, b, c, d, e);
    a6(a, b, c, d, e, f);
}

/// A code address from a Rust function pointer.
fn code(f: *const ()) -> unsafe extern "C" fn() {
    assert!(!f.is_null());
    // SAFETY: a non-null function address, reinterpreted as another
    // function pointer type; each test calls it only under the shape it
    // really has (u64 arguments, the return kind of its name).
    unsafe { std::mem::transmute::<*const (), unsafe extern "C" fn()>(f) }
}

/// The callees for `n` arguments: word, double, float, void.
fn callees_of(n: usize) -> [*const (); 4] {
    macro_rules! of {
        ($m:ident) => {
            [
                $m::word as *const (),
                $m::double as *const (),
                $m::float as *const (),
                $m::void as *const (),
            ]
        };
    }
    match n {
        0 => of!(a0),
        1 => of!(a1),
        2 => of!(a2),
        3 => of!(a3),
        4 => of!(a4),
        5 => of!(a5),
        _ => of!(a6),
    }
}

const INT_RETURNS: [&str; 12] = [
    "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "isize", "usize", "cstr", "handle",
];
/// Every argument type a direct call takes, one register each.
const INT_ARGS: [&str; 16] = [
    "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "isize", "usize", "handle", "cstr",
    "bytes", "out[8]", "*i32", "*handle",
];

/// Calls `f` both ways with `w` (widened by the declaration first, as
/// [`ArgSlots::call`] does); their return words, and for a void callee what
/// it saw each time.
fn both_ways(f: &Function, w: &[u64; MAX_WIRE_ARGS]) -> ((u64, u64), (u64, u64)) {
    let mut slots = ArgSlots::new();
    for (i, arg) in f.args.iter().enumerate() {
        // Buffer words are addresses already here.
        slots.words[i] = if arg.buffer {
            w[i]
        } else {
            arg.widen.apply(w[i])
        };
    }
    SEEN.set(0);
    // SAFETY: every callee here takes its arguments as u64s (any integer
    // class argument is one), and returns what its declaration says
    // (an integer of any width comes back in rax, read from its low bytes).
    let by_ffi = unsafe { f.invoke_ffi(&mut slots) };
    let seen_ffi = SEEN.replace(0);
    // SAFETY: as above.
    let by_direct = unsafe { f.invoke_direct(&slots.words) }.expect("a direct shape");
    let seen_direct = SEEN.replace(0);
    ((by_ffi, by_direct), (seen_ffi, seen_direct))
}

#[test]
fn every_direct_shape_matches_libffi() {
    let w = words();
    let mut checked = 0;
    for n in 0..=MAX_DIRECT_ARGS {
        let [word, double, float, void] = callees_of(n);
        // Rotate the argument types through every position.
        for start in 0..INT_ARGS.len() {
            let args: Vec<&str> = (0..n)
                .map(|i| INT_ARGS[(start + 3 * i) % INT_ARGS.len()])
                .collect();
            let args = args.join(", ");
            let mut returns: Vec<(String, *const ())> =
                INT_RETURNS.iter().map(|r| (r.to_string(), word)).collect();
            returns.push(("f64".into(), double));
            returns.push(("f32".into(), float));
            returns.push(("void".into(), void));
            for (ret, callee) in returns {
                let text = format!("f({args}) -> {ret}");
                let sig = Signature::parse(&text).expect(&text);
                let f = Function::prepare(code(callee), &sig);
                assert!(f.direct.is_some(), "{text} should be called directly");
                let ((ffi, direct), (seen_ffi, seen_direct)) = both_ways(&f, &w);
                assert_eq!(ffi, direct, "{text}: return words differ");
                assert_eq!(
                    seen_ffi, seen_direct,
                    "{text}: the callee saw different registers"
                );
                if ret == "void" {
                    assert_eq!(ffi, 0, "{text}: a void call's word is 0");
                    assert_ne!(seen_ffi, 0, "{text}: the void callee did not run");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, (MAX_DIRECT_ARGS + 1) * INT_ARGS.len() * 15);
}

#[test]
fn widening_is_libffis_and_reaches_the_callee() {
    // Spelled out once, so that libffi and the direct path cannot both be
    // wrong in the same way unnoticed: a narrow argument arrives extended
    // by its sign (or zero), and a narrow return is cut to its width, then
    // extended the same way.
    let identity = Function::prepare(
        code(a1::word as *const ()),
        &Signature::parse("f(u64) -> u64").unwrap(),
    );
    let raw = |x: u64| fold(&[x]);
    let call = |sig: &str, x: u64| {
        let f = Function::prepare(code(a1::word as *const ()), &Signature::parse(sig).unwrap());
        let mut w = [0u64; MAX_WIRE_ARGS];
        w[0] = x;
        let ((ffi, direct), _) = both_ways(&f, &w);
        assert_eq!(ffi, direct, "{sig}");
        direct
    };
    let x = 0x1234_5678_9abc_def0u64;
    let ((whole, _), _) = both_ways(&identity, &[x; MAX_WIRE_ARGS]);
    assert_eq!(whole, raw(x));
    assert_eq!(call("f(i8) -> u64", x), raw(0xffff_ffff_ffff_fff0));
    assert_eq!(call("f(u8) -> u64", x), raw(0xf0));
    assert_eq!(call("f(i16) -> u64", x), raw(0xffff_ffff_ffff_def0));
    assert_eq!(call("f(u16) -> u64", x), raw(0xdef0));
    assert_eq!(call("f(i32) -> u64", x), raw(0xffff_ffff_9abc_def0));
    assert_eq!(call("f(u32) -> u64", x), raw(0x9abc_def0));
    let r = raw(x);
    assert_eq!(call("f(u64) -> i8", x), r as i8 as i64 as u64);
    assert_eq!(call("f(u64) -> u8", x), r as u8 as u64);
    assert_eq!(call("f(u64) -> i16", x), r as i16 as i64 as u64);
    assert_eq!(call("f(u64) -> u16", x), r as u16 as u64);
    assert_eq!(call("f(u64) -> i32", x), r as i32 as i64 as u64);
    assert_eq!(call("f(u64) -> u32", x), r as u32 as u64);
}

#[test]
fn only_integer_shapes_of_six_or_fewer_go_direct() {
    let direct = |text: &str| {
        Function::prepare(
            code(a0::word as *const ()),
            &Signature::parse(text).unwrap(),
        )
        .direct
        .is_some()
    };
    assert!(direct("f() -> void"));
    assert!(direct("f(handle, i32) -> f64"));
    assert!(direct("f(handle, cstr, i32, *handle, out[4], u8) -> i32"));
    assert!(!direct("f(f64) -> f64"));
    assert!(!direct("f(handle, f32) -> i32"));
    assert!(!direct("f(i32, i32, i32, i32, i32, i32, i32) -> i32"));
}

/// libc itself: C functions of several shapes, called both ways, must give
/// their known answers.
#[test]
fn libc_functions_agree_both_ways() {
    // SAFETY: loading the C library this process already has loaded runs
    // no new initialisers.
    let libc = unsafe { libloading::Library::new("libc.so.6") }.expect("libc.so.6");
    let call = |text: &str, args: &[u64]| -> u64 {
        let f = Function::resolve(&libc, text).unwrap_or_else(|(_, why)| panic!("{why}"));
        assert!(f.direct.is_some(), "{text}");
        let mut w = [0u64; MAX_WIRE_ARGS];
        w[..args.len()].copy_from_slice(args);
        let ((ffi, direct), _) = both_ways(&f, &w);
        assert_eq!(ffi, direct, "{text}");
        direct
    };
    let text = c"  -12.5e1xyz";
    let p = text.as_ptr() as u64;
    assert_eq!(call("labs(i64) -> i64", [(-42i64) as u64].as_slice()), 42);
    // Only the low 32 bits are the argument: -7 with garbage above.
    assert_eq!(
        call("abs(i32) -> i32", &[0xdead_beef_ffff_fff9]),
        7u64,
        "abs(-7)"
    );
    assert_eq!(
        call("toupper(i32) -> i32", &[u64::from(b'q')]),
        u64::from(b'Q')
    );
    assert_eq!(call("strlen(cstr) -> usize", &[p]), 12);
    assert_eq!(
        f64::from_bits(call("strtod(cstr, *u64) -> f64", &[p, 0])),
        -125.0
    );
    assert_eq!(
        f32::from_bits(call("strtof(cstr, *u64) -> f32", &[p, 0]) as u32),
        -125.0
    );
    let end = call("strchr(cstr, i32) -> cstr", &[p, u64::from(b'x')]);
    assert_eq!(end, p + 9);
    let (a, b) = (c"abcdef", c"abcxef");
    let cmp = call(
        "memcmp(bytes, bytes, usize) -> i32",
        &[a.as_ptr() as u64, b.as_ptr() as u64, 6],
    );
    assert!((cmp as i64) < 0, "memcmp sign-extended: {cmp:#x}");
    let mut buf = [7u8; 16];
    call(
        "explicit_bzero(out[16], usize) -> void",
        &[buf.as_mut_ptr() as u64, 10],
    );
    assert_eq!(buf[..10], [0; 10]);
    assert_eq!(buf[10..], [7; 6]);
    let mut out = [0u8; 32];
    let copied = call(
        "memccpy(out[32], cstr, i32, usize) -> u64",
        &[out.as_mut_ptr() as u64, p, u64::from(b'e'), 32],
    );
    assert_eq!(copied, out.as_ptr() as u64 + 8);
    // SAFETY: memccpy copied up to and including the 'e', into zeroes.
    let got = unsafe { CStr::from_ptr(out.as_ptr().cast()) };
    assert_eq!(got, c"  -12.5e");
}
