//! ABI fuzzing: random sets of declared signatures, called in random order,
//! alone and in batches, with random arguments; every bridged call must give
//! what the same call made in process gives, bit for bit (floats by their
//! bits, NaN payloads included), return value and every out-value alike.
//!
//! The signatures come from a catalogue of shapes that covers the calling
//! convention's cases: every scalar type alone, integer and float registers
//! mixed and spilled to the stack (up to 20 arguments), `cstr` in and out,
//! `bytes` read and written, `out[N]` of a random size, `*T` for every
//! pointee, several out-pointers at once, and libc functions found through
//! the fixture's dependencies. Each case declares a random subset of the
//! catalogue in a random order (so function indices differ from case to
//! case), then makes a random sequence of calls and batches. A property
//! test: a failing case is shrunk to a small one before it is reported.

use ffb_loader::{Bridge, CallOutput, Value};
use ffb_tests::fixture_bridge;
use ffb_tests::in_process::InProcess;
use proptest::prelude::*;

/// A call's random material: words for the scalars, bytes for the buffers.
#[derive(Clone, Debug)]
struct Draw {
    words: [u64; 20],
    bytes: Vec<u8>,
}

/// What a call returned: the return value and the out-values, with floats
/// replaced by their bits so that NaNs compare.
#[derive(Debug, PartialEq)]
struct Seen {
    ret: String,
    out: Vec<Option<String>>,
}

fn canonical(v: &Value) -> String {
    match v {
        Value::F32(f) => format!("f32:{:#010x}", f.to_bits()),
        Value::F64(f) => format!("f64:{:#018x}", f.to_bits()),
        other => format!("{other:?}"),
    }
}

fn seen(out: &CallOutput) -> Seen {
    Seen {
        ret: canonical(&out.ret),
        out: out.out.iter().map(|o| o.as_ref().map(canonical)).collect(),
    }
}

/// Bytes without a NUL, for a `cstr`.
fn text(d: &Draw) -> Vec<u8> {
    d.bytes.iter().map(|&b| b.max(1)).collect()
}

/// One shape: its signature (given `out[N]`'s N), the values a draw makes,
/// and the same call made in process.
struct Shape {
    sig: fn(usize) -> String,
    args: fn(&Draw) -> Vec<Value>,
    direct: fn(&InProcess, &Draw, usize) -> Seen,
}

fn plain(ret: Value, arity: usize) -> Seen {
    Seen {
        ret: canonical(&ret),
        out: vec![None; arity],
    }
}

/// A plain number made from one of a draw's words, and the [`Value`] that
/// carries it across the bridge.
trait Word: Copy {
    fn from_word(w: u64) -> Self;
    fn value(self) -> Value;
}

macro_rules! word {
    ($($rust:ty => $variant:ident, $from:expr;)*) => {
        $(impl Word for $rust {
            fn from_word(w: u64) -> Self {
                $from(w)
            }
            fn value(self) -> Value {
                Value::$variant(self)
            }
        })*
    };
}

word! {
    i8 => I8, |w| w as i8;
    i16 => I16, |w| w as i16;
    i32 => I32, |w| w as i32;
    i64 => I64, |w| w as i64;
    u8 => U8, |w| w as u8;
    u16 => U16, |w| w as u16;
    u32 => U32, |w| w as u32;
    u64 => U64, |w| w;
    isize => Isize, |w| w as isize;
    usize => Usize, |w| w as usize;
    f32 => F32, f32_of;
    f64 => F64, f64_of;
}

/// A fixture function of plain numbers, argument `i` made from word `i` of
/// the draw. Its declaration, the values sent and the in-process call all
/// come from the one list of types, so they cannot disagree.
macro_rules! numeric {
    ($name:literal, ($($arg:ident),+) -> $ret:ident) => {
        Shape {
            sig: |_| {
                let args = [$(stringify!($arg)),+].join(", ");
                format!("{}({args}) -> {}", $name, stringify!($ret))
            },
            args: |d| {
                let mut w = d.words.iter().copied();
                vec![$(<$arg as Word>::from_word(w.next().expect("a word per argument")).value()),+]
            },
            direct: |lib, d, _| {
                // SAFETY: the fixture's numeric functions take and return
                // plain numbers of these types and are defined (wrapping)
                // for every value.
                let f = unsafe { lib.sym::<extern "C" fn($($arg),+) -> $ret>($name) };
                let mut w = d.words.iter().copied();
                // Arguments are evaluated left to right: word i for argument i.
                let r = f($(<$arg as Word>::from_word(w.next().expect("a word per argument"))),+);
                plain(r.value(), [$(stringify!($arg)),+].len())
            },
        }
    };
}

fn f32_of(w: u64) -> f32 {
    f32::from_bits(w as u32)
}

fn f64_of(w: u64) -> f64 {
    f64::from_bits(w)
}

/// A fixture `ffb_ptr_*` function: it reads and rewrites one value of type
/// `$rust` through its pointer, made from the draw's first word.
macro_rules! pointer {
    ($name:literal, $rust:ident) => {
        Shape {
            sig: |_| concat!($name, "(*", stringify!($rust), ")").to_string(),
            args: |d| vec![<$rust as Word>::from_word(d.words[0]).value()],
            direct: |lib, d, _| {
                // SAFETY: the fixture's ffb_ptr_* functions read and write
                // one value of this type through their pointer.
                let f = unsafe { lib.sym::<unsafe extern "C" fn(*mut $rust)>($name) };
                let mut v = <$rust as Word>::from_word(d.words[0]);
                // SAFETY: `v` is a live local of the pointee type.
                unsafe { f(&mut v) };
                Seen {
                    ret: canonical(&Value::Null),
                    out: vec![Some(canonical(&v.value()))],
                }
            },
        }
    };
}

fn shapes() -> Vec<Shape> {
    vec![
        numeric!("ffb_id_i8", (i8) -> i8),
        numeric!("ffb_id_i16", (i16) -> i16),
        numeric!("ffb_id_i32", (i32) -> i32),
        numeric!("ffb_id_i64", (i64) -> i64),
        numeric!("ffb_id_u8", (u8) -> u8),
        numeric!("ffb_id_u16", (u16) -> u16),
        numeric!("ffb_id_u32", (u32) -> u32),
        numeric!("ffb_id_u64", (u64) -> u64),
        numeric!("ffb_id_isize", (isize) -> isize),
        numeric!("ffb_id_usize", (usize) -> usize),
        numeric!("ffb_id_f32", (f32) -> f32),
        numeric!("ffb_id_f64", (f64) -> f64),
        pointer!("ffb_ptr_i8", i8),
        pointer!("ffb_ptr_u16", u16),
        pointer!("ffb_ptr_i32", i32),
        pointer!("ffb_ptr_u64", u64),
        pointer!("ffb_ptr_f32", f32),
        pointer!("ffb_ptr_f64", f64),
        pointer!("ffb_ptr_isize", isize),
        pointer!("ffb_ptr_usize", usize),
        numeric!("ffb_add_i64", (i64, i64) -> i64),
        numeric!("ffb_mix4", (i32, f64, i64, f32) -> f64),
        // Integer and float registers interleaved, and spilled to the stack.
        numeric!("ffb_many_mixed", (
            i32, f64, i64, f32, u8, f64, i16, f64, u32, f64,
            i64, f64, u64, f64, i8, f64, u16, f64, i32, f32
        ) -> f64),
        numeric!("ffb_many_ints", (
            u64, u64, u64, u64, u64, u64, u64, u64,
            u64, u64, u64, u64, u64, u64, u64, u64
        ) -> u64),
        numeric!("ffb_many_floats", (
            f64, f64, f64, f64, f64, f64, f64, f64,
            f64, f64, f64, f64, f64, f64, f64, f64
        ) -> f64),
        numeric!("ffb_many_f32", (
            f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32
        ) -> f32),
        Shape {
            sig: |_| "ffb_echo(cstr) -> cstr".into(),
            args: |d| vec![Value::Str(text(d))],
            // The identity on strings: what went in comes back.
            direct: |_, d, _| plain(Value::Str(text(d)), 1),
        },
        Shape {
            sig: |_| "strlen(cstr) -> usize".into(),
            args: |d| vec![Value::Str(text(d))],
            direct: |lib, d, _| {
                type Strlen = unsafe extern "C" fn(*const libc::c_char) -> usize;
                // SAFETY: libc's strlen (found, as the helper finds it,
                // among the fixture's dependencies) reads up to the NUL.
                let f = unsafe { lib.sym::<Strlen>("strlen") };
                let s = std::ffi::CString::new(text(d)).expect("no NUL");
                // SAFETY: `s` is a live NUL-terminated string.
                plain(Value::Usize(unsafe { f(s.as_ptr()) }), 1)
            },
        },
        Shape {
            sig: |_| "ffb_adler_like(bytes, usize) -> u32".into(),
            args: |d| vec![Value::Bytes(d.bytes.clone()), Value::Usize(d.bytes.len())],
            direct: |lib, d, _| {
                // SAFETY: ffb_adler_like reads n bytes at p.
                let f = unsafe {
                    lib.sym::<unsafe extern "C" fn(*const u8, usize) -> u32>("ffb_adler_like")
                };
                // SAFETY: the bytes are live and `len` long.
                let r = unsafe { f(d.bytes.as_ptr(), d.bytes.len()) };
                Seen {
                    ret: canonical(&Value::U32(r)),
                    out: vec![Some(canonical(&Value::Bytes(d.bytes.clone()))), None],
                }
            },
        },
        Shape {
            sig: |_| "ffb_reverse_bytes(bytes, usize)".into(),
            args: |d| vec![Value::Bytes(d.bytes.clone()), Value::Usize(d.bytes.len())],
            direct: |lib, d, _| {
                // SAFETY: ffb_reverse_bytes reverses n bytes in place at p.
                let f =
                    unsafe { lib.sym::<unsafe extern "C" fn(*mut u8, usize)>("ffb_reverse_bytes") };
                let mut b = d.bytes.clone();
                // SAFETY: `b` is live, writable and `len` long.
                unsafe { f(b.as_mut_ptr(), b.len()) };
                Seen {
                    ret: canonical(&Value::Null),
                    out: vec![Some(canonical(&Value::Bytes(b))), None],
                }
            },
        },
        Shape {
            sig: |n| format!("ffb_fill_out(out[{n}], usize) -> i32"),
            args: |d| vec![Value::Usize(d.words[0] as usize)],
            direct: |lib, d, n| {
                // SAFETY: ffb_fill_out writes its n bytes at out.
                let f = unsafe {
                    lib.sym::<unsafe extern "C" fn(*mut u8, usize) -> i32>("ffb_fill_out")
                };
                let mut b = vec![0u8; n];
                let fill = (d.words[0] as usize) % (n + 1);
                // SAFETY: `b` is live, writable and `n` >= `fill` long.
                let r = unsafe { f(b.as_mut_ptr(), fill) };
                Seen {
                    ret: canonical(&Value::I32(r)),
                    out: vec![Some(canonical(&Value::Bytes(b))), None],
                }
            },
        },
        Shape {
            sig: |_| "ffb_divmod(i64, i64, *i64, *i64) -> i32".into(),
            args: |d| {
                vec![
                    Value::I64(d.words[0] as i64),
                    Value::I64(d.words[1] as i64 >> (d.words[2] % 64)),
                    Value::I64(d.words[3] as i64),
                    Value::I64(d.words[4] as i64),
                ]
            },
            direct: |lib, d, _| {
                type DivMod = unsafe extern "C" fn(i64, i64, *mut i64, *mut i64) -> i32;
                // SAFETY: ffb_divmod writes one i64 through each pointer.
                let f = unsafe { lib.sym::<DivMod>("ffb_divmod") };
                let (mut q, mut r) = (d.words[3] as i64, d.words[4] as i64);
                let b = d.words[1] as i64 >> (d.words[2] % 64);
                // SAFETY: `q` and `r` are live locals.
                let ret = unsafe { f(d.words[0] as i64, b, &mut q, &mut r) };
                Seen {
                    ret: canonical(&Value::I32(ret)),
                    out: vec![
                        None,
                        None,
                        Some(canonical(&Value::I64(q))),
                        Some(canonical(&Value::I64(r))),
                    ],
                }
            },
        },
        Shape {
            sig: |_| "labs(i64) -> i64".into(),
            args: |d| vec![Value::I64(d.words[0] as i64)],
            // SAFETY: labs is defined for every value but the minimum, whose
            // result glibc computes by wrapping; libc's own labs is called.
            direct: |_, d, _| plain(Value::I64(unsafe { libc::labs(d.words[0] as i64) }), 1),
        },
    ]
}

/// `ffb_fill_out`'s size argument must stay within its buffer: the fixture
/// writes as many bytes as it is told.
fn fitted(shape_sig: &str, mut args: Vec<Value>, n: usize) -> Vec<Value> {
    if shape_sig.starts_with("ffb_fill_out") {
        if let Some(Value::Usize(fill)) = args.first_mut() {
            *fill %= n + 1;
        }
    }
    args
}

/// One case: which shapes to declare (indices into the catalogue, in
/// declaration order), the `out[N]` size, and the calls, each a shape
/// (an index into the declared ones), a draw, and whether it starts a batch
/// with the calls after it.
#[derive(Clone, Debug)]
struct Case {
    declared: Vec<usize>,
    out_len: usize,
    calls: Vec<(usize, Draw, u8)>,
}

fn draw() -> impl Strategy<Value = Draw> {
    (
        any::<[u64; 20]>(),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(words, bytes)| Draw { words, bytes })
}

fn case(catalogue: usize) -> impl Strategy<Value = Case> {
    (
        Just((0..catalogue).collect::<Vec<_>>()).prop_shuffle(),
        1..=catalogue,
        1usize..300,
        prop::collection::vec((any::<prop::sample::Index>(), draw(), 0u8..4), 1..16),
    )
        .prop_map(|(order, take, out_len, calls)| {
            let declared: Vec<usize> = order.into_iter().take(take).collect();
            let calls = calls
                .into_iter()
                .map(|(i, d, batch)| (i.index(declared.len()), d, batch))
                .collect();
            Case {
                declared,
                out_len,
                calls,
            }
        })
}

fn run_case(shapes: &[Shape], lib: &InProcess, case: &Case) -> Result<(), TestCaseError> {
    let sigs: Vec<String> = case
        .declared
        .iter()
        .map(|&s| (shapes[s].sig)(case.out_len))
        .collect();
    let decls: Vec<&str> = sigs.iter().map(String::as_str).collect();
    let mut bridge: Bridge = fixture_bridge(&decls);
    let ids: Vec<_> = sigs
        .iter()
        .map(|s| {
            let name = s.split('(').next().expect("a name");
            bridge.function(name).expect("declared")
        })
        .collect();
    let mut i = 0;
    while i < case.calls.len() {
        // A batch of 1 + `len` calls, or a single call when `len` is 0.
        let len = usize::from(case.calls[i].2).min(case.calls.len() - i - 1);
        let group = &case.calls[i..=i + len];
        let prepared: Vec<(usize, Vec<Value>, Seen)> = group
            .iter()
            .map(|(k, d, _)| {
                let shape = &shapes[case.declared[*k]];
                let args = fitted(&sigs[*k], (shape.args)(d), case.out_len);
                (*k, args, (shape.direct)(lib, d, case.out_len))
            })
            .collect();
        let got: Vec<Seen> = if len == 0 {
            let (k, args, _) = &prepared[0];
            let out = bridge
                .call(ids[*k], args)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", sigs[*k])))?;
            vec![seen(&out)]
        } else {
            let calls: Vec<_> = prepared
                .iter()
                .map(|(k, args, _)| (ids[*k], args.as_slice()))
                .collect();
            let outs = bridge
                .call_batch(&calls)
                .map_err(|f| TestCaseError::fail(format!("batch call {}: {}", f.index, f.error)))?;
            outs.iter().map(seen).collect()
        };
        for ((k, args, expected), got) in prepared.iter().zip(&got) {
            prop_assert_eq!(got, expected, "{} with {:?}", sigs[*k], args);
        }
        i += len + 1;
    }
    Ok(())
}

proptest! {
    // Each case starts a helper and makes up to 15 calls: 128 cases take
    // seconds. A failing case is shrunk and printed whole.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_signatures_and_arguments_match_the_in_process_call(c in case(shapes().len())) {
        let lib = InProcess::open(ffb_tests::fixture_lib());
        run_case(&shapes(), &lib, &c)?;
    }
}
