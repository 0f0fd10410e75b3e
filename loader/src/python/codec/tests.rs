use super::*;

fn maker() -> HandleMaker {
    HandleMaker {
        bridge: 1,
        generation: 7,
        releases: Arc::new(Mutex::new(Vec::new())),
    }
}

fn scope() -> HandleScope {
    HandleScope {
        bridge: 1,
        generation: 7,
    }
}

/// `[REPLY_VALUE, v]` as the Python host would write it.
fn value_reply(v: &PyValue) -> Vec<u8> {
    let mut w = Vec::new();
    let _ = rmp::encode::write_array_len(&mut w, 2);
    let _ = rmp::encode::write_uint(&mut w, REPLY_VALUE);
    value(&mut w, v, &scope(), 0).unwrap();
    w
}

fn decoded(bytes: &[u8]) -> Result<PyValue> {
    match decode_reply(bytes, &maker())? {
        Reply::Value(v) => Ok(v),
        Reply::Exception { type_name, .. } => panic!("exception {type_name}"),
    }
}

#[test]
fn values_read_back_as_written() {
    let v = PyValue::List(vec![
        PyValue::Tuple(vec![
            PyValue::Int(-1),
            PyValue::Int(i64::MIN),
            PyValue::int(u64::MAX),
        ]),
        PyValue::int(BigInt::from(-3) << 100u32),
        PyValue::Float(f64::from_bits(0x7ff0_0000_0000_0001)),
        PyValue::str("é"),
        PyValue::Bytes(vec![1, 2, 3]),
        PyValue::Dict(vec![(PyValue::None, PyValue::Bool(false))]),
    ]);
    assert_eq!(decoded(&value_reply(&v)).unwrap(), v);
}

#[test]
fn exceptions_are_bounded_and_checked() {
    let mut w = Vec::new();
    let _ = rmp::encode::write_array_len(&mut w, 4);
    let _ = rmp::encode::write_uint(&mut w, REPLY_EXCEPTION);
    let _ = rmp::encode::write_str(&mut w, "ValueError");
    let _ = rmp::encode::write_str(&mut w, &"x".repeat(MAX_EXCEPTION_TEXT + 1));
    let _ = rmp::encode::write_str(&mut w, "");
    let e = decode_reply(&w, &maker()).err().expect("over the bound");
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("over the"), "{e}");
}

#[test]
fn malformed_replies_are_protocol_errors() {
    let good = value_reply(&PyValue::List(vec![PyValue::str("abc"), PyValue::Int(300)]));
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x92],
        vec![0x92, 0x00, 0xc1],
        // A str that is not UTF-8.
        vec![0x92, 0x00, 0xa2, 0xff, 0xfe],
        // An array announcing 2^32-1 items in a few bytes.
        vec![0x92, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00],
        // A bin announcing more bytes than there are.
        vec![0x92, 0x00, 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00],
        // A tuple marker with a payload, an unknown ext type.
        vec![0x92, 0x00, 0xd4, EXT_TUPLE as u8, 0x00],
        vec![0x92, 0x00, 0xd4, 0x55, 0x00],
        // A handle with a short token.
        vec![0x92, 0x00, 0xd5, EXT_HANDLE as u8, 0x01, 0x02],
        // Unknown tags and lengths.
        vec![0x92, 0x05, 0xc0],
        vec![0x93, 0x00, 0xc0, 0xc0],
    ];
    // Every truncation of a good reply, and one with a byte after its end.
    for n in 0..good.len() {
        cases.push(good[..n].to_vec());
    }
    let mut trailing = good.clone();
    trailing.push(0xc0);
    cases.push(trailing);
    // Nesting past the bound.
    let mut deep = vec![0x92, 0x00];
    deep.extend(std::iter::repeat_n(0x91, MAX_DEPTH + 2));
    deep.push(0xc0);
    cases.push(deep);
    for bytes in cases {
        let e = decode_reply(&bytes, &maker())
            .err()
            .unwrap_or_else(|| panic!("{bytes:02x?} read as a reply"));
        assert_eq!(e.kind, ErrorKind::Protocol, "{bytes:02x?}: {e}");
    }
}

#[test]
fn random_bytes_never_panic_or_allocate_from_a_length() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut bytes = vec![0x92, 0x00];
        let n = (x % 24) as usize;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x as u8);
        }
        let _ = decode_reply(&bytes, &maker());
    }
}

#[test]
fn handles_of_other_bridges_or_helpers_are_not_sent() {
    let releases = Arc::new(Mutex::new(Vec::new()));
    let h = PyHandle::new(5, 6, 1, "re.Pattern".into(), Arc::clone(&releases));
    let mut w = Vec::new();
    let e = value(&mut w, &PyValue::Handle(h.clone()), &scope(), 0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle);
    let other = PyHandle::new(9, 7, 2, "re.Pattern".into(), Arc::clone(&releases));
    let e = value(&mut w, &PyValue::Handle(other), &scope(), 0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle);
    assert_eq!(*releases.lock().unwrap(), vec![9]);
    // Dropping every clone queues the token for release, once.
    let again = h.clone();
    drop(h);
    assert_eq!(*releases.lock().unwrap(), vec![9]);
    drop(again);
    assert_eq!(*releases.lock().unwrap(), vec![9, 5]);
}
