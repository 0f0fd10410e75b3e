//! Real system libraries through the bridge (libz, libm), each result
//! compared with a direct in-process call of the same library.

use std::time::Duration;

use ffb_loader::{Bridge, BridgeMode, Value};
use ffb_tests::shim_bin;

fn bridge(library: &str, decls: &[&str]) -> Bridge {
    let mut builder = Bridge::builder(library)
        .shim(shim_bin())
        .bridge_mode(BridgeMode::Enabled)
        .timeout(Duration::from_secs(20));
    for d in decls {
        builder = builder.declare(*d);
    }
    builder
        .load()
        .unwrap_or_else(|e| panic!("loading {library}: {e}"))
}

fn open(library: &str) -> libloading::Library {
    unsafe { libloading::Library::new(library) }.unwrap_or_else(|e| panic!("{library}: {e}"))
}

/// `uLong f(uLong, const Bytef *, uInt)`; uLong is 64-bit on x86_64.
type Checksum = unsafe extern "C" fn(u64, *const u8, u32) -> u64;
type Codec = unsafe extern "C" fn(*mut u8, *mut libc::c_ulong, *const u8, libc::c_ulong) -> i32;

fn sample_inputs() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"hello".to_vec(),
        b"The quick brown fox jumps over the lazy dog".to_vec(),
        (0..=255u8).collect(),
        (0..5000u32).map(|i| (i * i % 253) as u8).collect(),
    ]
}

#[test]
fn zlib_checksums_match_in_process() {
    let mut z = bridge(
        "libz.so.1",
        &[
            "crc32(u64, bytes, u32) -> u64",
            "adler32(u64, bytes, u32) -> u64",
        ],
    );
    let lib = open("libz.so.1");
    let crc32 = unsafe { lib.get::<Checksum>(b"crc32\0") }.unwrap();
    let adler32 = unsafe { lib.get::<Checksum>(b"adler32\0") }.unwrap();
    for data in sample_inputs() {
        for seed in [0u64, 1, 0xdead_beef] {
            let n = data.len() as u32;
            let want = unsafe { crc32(seed, data.as_ptr(), n) };
            let out = z
                .call_by_name(
                    "crc32",
                    &[Value::U64(seed), Value::Bytes(data.clone()), Value::U32(n)],
                )
                .unwrap();
            assert_eq!(
                out.ret,
                Value::U64(want),
                "crc32({seed}, {} bytes)",
                data.len()
            );
            // bytes are copied back unchanged (zlib only reads them).
            assert_eq!(out.out[1], Some(Value::Bytes(data.clone())));

            let want = unsafe { adler32(seed, data.as_ptr(), n) };
            let got = z
                .call_by_name(
                    "adler32",
                    &[Value::U64(seed), Value::Bytes(data.clone()), Value::U32(n)],
                )
                .unwrap()
                .ret;
            assert_eq!(
                got,
                Value::U64(want),
                "adler32({seed}, {} bytes)",
                data.len()
            );
        }
    }
    // Known values, independent of the in-process library.
    let hello = [Value::U64(0), Value::bytes("hello"), Value::U32(5)];
    assert_eq!(
        z.call_by_name("crc32", &hello).unwrap().ret,
        Value::U64(0x3610_a686)
    );
    let wiki = [Value::U64(1), Value::bytes("Wikipedia"), Value::U32(9)];
    assert_eq!(
        z.call_by_name("adler32", &wiki).unwrap().ret,
        Value::U64(0x11e6_0398)
    );
}

#[test]
fn zlib_compress_uncompress_round_trip() {
    let mut z = bridge(
        "libz.so.1",
        &[
            "compress(out[256], *u64, bytes, u64) -> i32",
            "uncompress(out[256], *u64, bytes, u64) -> i32",
        ],
    );
    let lib = open("libz.so.1");
    let compress = unsafe { lib.get::<Codec>(b"compress\0") }.unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        b"hello hello hello hello hello hello".to_vec(),
        b"ffb: a sandboxed loader for legacy native code".to_vec(),
        vec![b'a'; 200],
        (0..150u8).collect(),
    ];
    for original in inputs {
        // In-process reference.
        let mut want = vec![0u8; 256];
        let mut want_len: libc::c_ulong = 256;
        let rc = unsafe {
            compress(
                want.as_mut_ptr(),
                &mut want_len,
                original.as_ptr(),
                original.len() as libc::c_ulong,
            )
        };
        assert_eq!(rc, 0, "in-process compress");
        want.truncate(want_len as usize);

        let out = z
            .call_by_name(
                "compress",
                &[
                    Value::U64(256),
                    Value::Bytes(original.clone()),
                    Value::U64(original.len() as u64),
                ],
            )
            .unwrap();
        assert_eq!(out.ret, Value::I32(0), "compress returned Z_OK");
        assert_eq!(out.out.len(), 4);
        let Some(Value::U64(dest_len)) = out.out[1] else {
            panic!("destLen out-value: {:?}", out.out[1]);
        };
        assert_eq!(dest_len, want_len as u64);
        let Some(Value::Bytes(buf)) = &out.out[0] else {
            panic!("dest out-value: {:?}", out.out[0]);
        };
        assert_eq!(buf.len(), 256);
        let compressed = buf[..dest_len as usize].to_vec();
        assert_eq!(compressed, want, "compressed bytes equal in-process");
        assert!(buf[dest_len as usize..].iter().all(|&b| b == 0));

        let out = z
            .call_by_name(
                "uncompress",
                &[
                    Value::U64(256),
                    Value::Bytes(compressed.clone()),
                    Value::U64(compressed.len() as u64),
                ],
            )
            .unwrap();
        assert_eq!(out.ret, Value::I32(0), "uncompress returned Z_OK");
        assert_eq!(out.out[1], Some(Value::U64(original.len() as u64)));
        let Some(Value::Bytes(buf)) = &out.out[0] else {
            panic!("dest out-value: {:?}", out.out[0]);
        };
        assert_eq!(&buf[..original.len()], original.as_slice());
    }
    // A destination too small is zlib's Z_BUF_ERROR (-5), not a bridge error.
    let out = z
        .call_by_name(
            "compress",
            &[
                Value::U64(4),
                Value::bytes("x".repeat(100)),
                Value::U64(100),
            ],
        )
        .unwrap();
    assert_eq!(out.ret, Value::I32(-5));
    // Corrupt input: Z_DATA_ERROR (-3).
    let out = z
        .call_by_name(
            "uncompress",
            &[
                Value::U64(256),
                Value::bytes("not zlib data"),
                Value::U64(13),
            ],
        )
        .unwrap();
    assert_eq!(out.ret, Value::I32(-3));
}

#[test]
fn libm_matches_in_process() {
    let mut m = bridge(
        "libm.so.6",
        &[
            "cos(f64) -> f64",
            "pow(f64, f64) -> f64",
            "ldexp(f64, i32) -> f64",
            "fmaf(f32, f32, f32) -> f32",
            "lround(f64) -> i64",
        ],
    );
    let lib = open("libm.so.6");
    let cos = unsafe { lib.get::<unsafe extern "C" fn(f64) -> f64>(b"cos\0") }.unwrap();
    let pow = unsafe { lib.get::<unsafe extern "C" fn(f64, f64) -> f64>(b"pow\0") }.unwrap();
    let ldexp = unsafe { lib.get::<unsafe extern "C" fn(f64, i32) -> f64>(b"ldexp\0") }.unwrap();
    let fmaf = unsafe { lib.get::<unsafe extern "C" fn(f32, f32, f32) -> f32>(b"fmaf\0") }.unwrap();
    let lround = unsafe { lib.get::<unsafe extern "C" fn(f64) -> i64>(b"lround\0") }.unwrap();

    let bits = |v: &Value| match v {
        Value::F64(f) => f.to_bits(),
        Value::F32(f) => f.to_bits() as u64,
        other => panic!("not a float: {other:?}"),
    };

    for x in [
        0.0,
        -0.0,
        1.0,
        std::f64::consts::PI,
        -2.5,
        1e10,
        1e-300,
        f64::INFINITY,
    ] {
        let want = unsafe { cos(x) };
        let got = m.call_by_name("cos", &[Value::F64(x)]).unwrap().ret;
        assert_eq!(bits(&got), want.to_bits(), "cos({x})");
    }
    assert_eq!(
        m.call_by_name("cos", &[Value::F64(0.0)]).unwrap().ret,
        Value::F64(1.0)
    );
    for (x, y) in [
        (2.0, 10.0),
        (2.0, 0.5),
        (-8.0, 1.0 / 3.0),
        (10.0, -3.0),
        (0.0, -1.0),
    ] {
        let want = unsafe { pow(x, y) };
        let got = m
            .call_by_name("pow", &[Value::F64(x), Value::F64(y)])
            .unwrap()
            .ret;
        assert_eq!(bits(&got), want.to_bits(), "pow({x}, {y})");
    }
    assert_eq!(
        m.call_by_name("pow", &[Value::F64(2.0), Value::F64(10.0)])
            .unwrap()
            .ret,
        Value::F64(1024.0)
    );
    for (x, e) in [
        (1.0, 10),
        (3.0, -2),
        (1.5, 1023),
        (1.0, -1074),
        (1.0, i32::MIN),
    ] {
        let want = unsafe { ldexp(x, e) };
        let got = m
            .call_by_name("ldexp", &[Value::F64(x), Value::I32(e)])
            .unwrap()
            .ret;
        assert_eq!(bits(&got), want.to_bits(), "ldexp({x}, {e})");
    }
    assert_eq!(
        m.call_by_name("ldexp", &[Value::F64(3.0), Value::I32(-2)])
            .unwrap()
            .ret,
        Value::F64(0.75)
    );
    for (a, b, c) in [
        (2.0f32, 3.0f32, 4.0f32),
        (0.1, 10.0, -1.0),
        (f32::MAX, 2.0, -f32::MAX),
        (-0.0, 1.0, -0.0),
    ] {
        let want = unsafe { fmaf(a, b, c) };
        let got = m
            .call_by_name("fmaf", &[Value::F32(a), Value::F32(b), Value::F32(c)])
            .unwrap()
            .ret;
        assert_eq!(bits(&got), want.to_bits() as u64, "fmaf({a}, {b}, {c})");
    }
    assert_eq!(
        m.call_by_name("fmaf", &[Value::F32(2.0), Value::F32(3.0), Value::F32(4.0)])
            .unwrap()
            .ret,
        Value::F32(10.0)
    );
    for x in [2.5, -2.5, 0.49999999999999994, 1e15 + 0.5, -0.0, 123.456] {
        let want = unsafe { lround(x) };
        let got = m.call_by_name("lround", &[Value::F64(x)]).unwrap().ret;
        assert_eq!(got, Value::I64(want), "lround({x})");
    }
    assert_eq!(
        m.call_by_name("lround", &[Value::F64(-2.5)]).unwrap().ret,
        Value::I64(-3)
    );
}
