//! Real system libraries through the bridge (libz, libm), each result
//! compared with a direct in-process call of the same library.

use ffb_loader::{Bridge, Value};
use ffb_tests::in_process::InProcess;
use ffb_tests::load_bridge;

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
    let mut z = load_bridge(
        "libz.so.1",
        &[
            "crc32(u64, bytes, u32) -> u64",
            "adler32(u64, bytes, u32) -> u64",
        ],
    );
    let lib = InProcess::open("libz.so.1");
    // SAFETY: zlib's crc32 and adler32 are `uLong (uLong, const Bytef *,
    // uInt)`: Checksum.
    let crc32 = unsafe { lib.sym::<Checksum>("crc32") };
    // SAFETY: as above.
    let adler32 = unsafe { lib.sym::<Checksum>("adler32") };
    for data in sample_inputs() {
        for seed in [0u64, 1, 0xdead_beef] {
            let n = data.len() as u32;
            // SAFETY: it reads exactly `n` bytes, the length of `data`.
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

            // SAFETY: as for crc32.
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
    let mut z = load_bridge(
        "libz.so.1",
        &[
            "compress(out[256], *u64, bytes, u64) -> i32",
            "uncompress(out[256], *u64, bytes, u64) -> i32",
        ],
    );
    let lib = InProcess::open("libz.so.1");
    // SAFETY: zlib's compress is `int (Bytef *, uLongf *, const Bytef *,
    // uLong)`: Codec.
    let compress = unsafe { lib.sym::<Codec>("compress") };
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
        // SAFETY: zlib writes at most `want_len` (256) bytes to `want`, which
        // holds 256, and reads `original.len()` bytes of `original`.
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

        let (rc, dest_len, buf) = codec(&mut z, "compress", 256, &original);
        assert_eq!(rc, Value::I32(0), "compress returned Z_OK");
        assert_eq!(dest_len, want_len as u64);
        assert_eq!(buf.len(), 256);
        let compressed = buf[..dest_len as usize].to_vec();
        assert_eq!(compressed, want, "compressed bytes equal in-process");
        assert!(buf[dest_len as usize..].iter().all(|&b| b == 0));

        let (rc, dest_len, buf) = codec(&mut z, "uncompress", 256, &compressed);
        assert_eq!(rc, Value::I32(0), "uncompress returned Z_OK");
        assert_eq!(dest_len, original.len() as u64);
        assert_eq!(&buf[..original.len()], original.as_slice());
    }
    // A destination too small is zlib's Z_BUF_ERROR (-5), not a bridge error.
    let (rc, _, _) = codec(&mut z, "compress", 4, "x".repeat(100).as_bytes());
    assert_eq!(rc, Value::I32(-5));
    // Corrupt input: Z_DATA_ERROR (-3).
    let (rc, _, _) = codec(&mut z, "uncompress", 256, b"not zlib data");
    assert_eq!(rc, Value::I32(-3));
}

/// `name(dest, &dest_len, source, source.len())` through the bridge, for
/// compress and uncompress (declared `(out[256], *u64, bytes, u64) -> i32`):
/// the return code, `*destLen` after the call, and the whole destination.
fn codec(z: &mut Bridge, name: &str, dest_len: u64, source: &[u8]) -> (Value, u64, Vec<u8>) {
    let out = z
        .call_by_name(
            name,
            &[
                Value::U64(dest_len),
                Value::bytes(source),
                Value::U64(source.len() as u64),
            ],
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.out.len(), 4, "{name}: one out-value per parameter");
    let Some(Value::U64(dest_len)) = out.out[1] else {
        panic!("{name}: destLen out-value: {:?}", out.out[1]);
    };
    let Some(Value::Bytes(dest)) = &out.out[0] else {
        panic!("{name}: dest out-value: {:?}", out.out[0]);
    };
    (out.ret, dest_len, dest.clone())
}

#[test]
fn libm_matches_in_process() {
    let mut m = load_bridge(
        "libm.so.6",
        &[
            "cos(f64) -> f64",
            "pow(f64, f64) -> f64",
            "ldexp(f64, i32) -> f64",
            "fmaf(f32, f32, f32) -> f32",
            "lround(f64) -> i64",
        ],
    );
    let lib = InProcess::open("libm.so.6");
    // The libm functions take and return plain numbers and are defined for
    // every value (at worst they set errno or raise a floating-point flag),
    // so each is looked up as a safe fn pointer of its C type.
    // SAFETY: `double cos(double)`.
    let cos = unsafe { lib.sym::<extern "C" fn(f64) -> f64>("cos") };
    // SAFETY: `double pow(double, double)`.
    let pow = unsafe { lib.sym::<extern "C" fn(f64, f64) -> f64>("pow") };
    // SAFETY: `double ldexp(double, int)`.
    let ldexp = unsafe { lib.sym::<extern "C" fn(f64, i32) -> f64>("ldexp") };
    // SAFETY: `float fmaf(float, float, float)`.
    let fmaf = unsafe { lib.sym::<extern "C" fn(f32, f32, f32) -> f32>("fmaf") };
    // SAFETY: `long lround(double)`, and long is 64-bit on the targets ffb runs on.
    let lround = unsafe { lib.sym::<extern "C" fn(f64) -> i64>("lround") };

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
        let want = cos(x);
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
        let want = pow(x, y);
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
        let want = ldexp(x, e);
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
        let want = fmaf(a, b, c);
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
        let want = lround(x);
        let got = m.call_by_name("lround", &[Value::F64(x)]).unwrap().ret;
        assert_eq!(got, Value::I64(want), "lround({x})");
    }
    assert_eq!(
        m.call_by_name("lround", &[Value::F64(-2.5)]).unwrap().ret,
        Value::I64(-3)
    );
}
