//! The notation's types, its round trip through Display, and every error with its column.

use super::parse::{EXPECTED_ARG, EXPECTED_RET};
use super::*;

fn p(s: &str) -> Signature {
    Signature::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn perr(s: &str) -> SignatureError {
    match Signature::parse(s) {
        Ok(sig) => panic!("{s:?} should not parse, got {sig}"),
        Err(e) => e,
    }
}

fn all_arg_types() -> Vec<ArgType> {
    let mut v: Vec<ArgType> = ScalarType::ALL.into_iter().map(ArgType::Scalar).collect();
    v.extend(ScalarType::ALL.map(|s| ArgType::Ptr(Pointee::Scalar(s))));
    v.extend([
        ArgType::CStr,
        ArgType::Bytes,
        ArgType::Out(1),
        ArgType::Out(16),
        ArgType::Out(MAX_OUT_LEN),
        ArgType::Ptr(Pointee::Handle),
        ArgType::Handle,
    ]);
    v
}

fn all_ret_types() -> Vec<RetType> {
    let mut v: Vec<RetType> = ScalarType::ALL.into_iter().map(RetType::Scalar).collect();
    v.extend([RetType::Void, RetType::CStr, RetType::Handle]);
    v
}

#[test]
fn scalar_table() {
    for s in ScalarType::ALL {
        assert_eq!(ScalarType::from_name(s.name()), Some(s));
        assert_eq!(s.to_string(), s.name());
    }
    assert_eq!(ScalarType::from_name("int"), None);
    let sizes: Vec<usize> = ScalarType::ALL.iter().map(|s| s.size()).collect();
    assert_eq!(sizes, [1, 2, 4, 8, 1, 2, 4, 8, 8, 8, 4, 8]);
    let floats: Vec<_> = ScalarType::ALL
        .into_iter()
        .filter(|s| s.is_float())
        .collect();
    assert_eq!(floats, [ScalarType::F32, ScalarType::F64]);
    let unsigned: Vec<_> = ScalarType::ALL
        .into_iter()
        .filter(|s| !s.is_signed())
        .collect();
    assert_eq!(
        unsigned,
        [
            ScalarType::U8,
            ScalarType::U16,
            ScalarType::U32,
            ScalarType::U64,
            ScalarType::Usize
        ]
    );
}

#[test]
fn arg_type_predicates() {
    for a in all_arg_types() {
        let pointer = matches!(
            a,
            ArgType::CStr | ArgType::Bytes | ArgType::Out(_) | ArgType::Ptr(_)
        );
        assert_eq!(a.is_pointer(), pointer, "{a}");
        assert_eq!(a.takes_value(), !matches!(a, ArgType::Out(_)), "{a}");
    }
    assert_eq!(p("f(out[4], i32, out[2], cstr)").value_arity(), 2);
}

#[test]
fn every_type_parses_as_arg_and_ret() {
    for a in all_arg_types() {
        let sig = p(&format!("f({a})"));
        assert_eq!(sig.args, [a]);
        assert_eq!(sig.ret, RetType::Void);
    }
    for r in all_ret_types() {
        assert_eq!(p(&format!("f() -> {r}")).ret, r);
    }
}

#[test]
fn display_round_trips() {
    let args = all_arg_types();
    for r in all_ret_types() {
        for (i, a) in args.iter().enumerate() {
            let sig = Signature {
                name: format!("fn_{i}"),
                args: vec![*a, args[(i + 7) % args.len()], args[(i * 3) % args.len()]],
                ret: r,
                arg_kinds: Vec::new(),
                ret_kind: None,
            };
            let text = sig.to_string();
            assert_eq!(p(&text), sig, "via {text:?}");
        }
        let all = Signature {
            name: "_All9".into(),
            args: args.clone(),
            ret: r,
            arg_kinds: Vec::new(),
            ret_kind: None,
        };
        assert_eq!(p(&all.to_string()), all);
    }
    let none = Signature {
        name: "f".into(),
        args: vec![],
        ret: RetType::Void,
        arg_kinds: Vec::new(),
        ret_kind: None,
    };
    assert_eq!(none.to_string(), "f() -> void");
    assert_eq!(p("f() -> void"), none);
}

#[test]
fn canonical_display() {
    let sig = p("name ( i32,*u64 , out [ 0x10 ] ,* handle,cstr )->f64");
    assert_eq!(
        sig.to_string(),
        "name(i32, *u64, out[16], *handle, cstr) -> f64"
    );
}

#[test]
fn void_and_empty_args() {
    for s in [
        "f()",
        "f( )",
        "f(void)",
        "f( void )",
        "f(void) -> void",
        " f ( ) ",
    ] {
        let sig = p(s);
        assert!(sig.args.is_empty(), "{s}");
        assert_eq!(sig.ret, RetType::Void, "{s}");
    }
    assert_eq!(
        p("f(\tvoid\n)->\ti32").ret,
        RetType::Scalar(ScalarType::I32)
    );
}

#[test]
fn out_lengths() {
    assert_eq!(p("f(out[1])").args, [ArgType::Out(1)]);
    assert_eq!(p("f(out[0x40])").args, [ArgType::Out(64)]);
    assert_eq!(p("f(out[0XfF])").args, [ArgType::Out(255)]);
    assert_eq!(p("f(out[1073741824])").args, [ArgType::Out(MAX_OUT_LEN)]);
    assert_eq!(p("f(out[0x40000000])").args, [ArgType::Out(MAX_OUT_LEN)]);
}

#[test]
fn arg_count_limit() {
    let list = |n: usize| vec!["i32"; n].join(", ");
    assert_eq!(p(&format!("f({})", list(MAX_ARGS))).args.len(), MAX_ARGS);
    let text = format!("f({})", list(MAX_ARGS + 1));
    let e = perr(&text);
    assert!(e.message.contains("too many arguments"), "{e}");
    assert_eq!(e.column, 3 + MAX_ARGS * 5, "{e}");
    assert_eq!(text.chars().nth(e.column - 1), Some('i'));
}

#[test]
fn columns_count_chars_not_bytes() {
    let e = perr("f(i32, \u{e9})");
    assert_eq!(e.column, 8);
    let e = perr("f() -> i32 \u{e9}\u{e9} x");
    assert_eq!(e.column, 12);
}

#[test]
fn errors_with_columns() {
    // (input, column, words the message must contain)
    let cases: &[(&str, usize, &[&str])] = &[
        ("", 1, &["empty signature"]),
        ("  ", 1, &["empty signature"]),
        ("1f()", 1, &["function name"]),
        ("(i32)", 1, &["function name"]),
        ("f", 2, &["expected '('", "'f'"]),
        ("f i32)", 3, &["expected '('"]),
        ("f-(i32)", 2, &["expected '('"]),
        ("f(", 3, &["argument type or ')'", "end of input"]),
        ("f(i32", 6, &["missing ')'"]),
        ("f(i32 i32)", 7, &["parameter names"]),
        ("f(i32 x)", 7, &["parameter names", "i32"]),
        ("f(i32;)", 6, &["expected ',' or ')'"]),
        ("f(i32,,u8)", 7, &["empty argument"]),
        ("f(,i32)", 3, &["expected an argument type", "','"]),
        ("f(i32,)", 7, &["trailing comma"]),
        ("f(i32, )", 8, &["trailing comma"]),
        ("f(i32,", 7, &["after ','", "end of input"]),
        (
            "f(...)",
            3,
            &[
                "variadic functions are not supported",
                "fixed-arity wrapper",
            ],
        ),
        (
            "printf(cstr, ...)",
            14,
            &["variadic functions are not supported"],
        ),
        ("f(cstr ...)", 8, &["variadic functions are not supported"]),
        ("f(i32, ..)", 8, &["expected an argument type", "'.'"]),
        (
            "f(int)",
            3,
            &["unknown type 'int' (did you mean i32?)", EXPECTED_ARG],
        ),
        ("f(i32, unsigned)", 8, &["'unsigned' (did you mean u32?)"]),
        (
            "f(unsigned int)",
            3,
            &["'unsigned int' (did you mean u32?)"],
        ),
        ("f(long)", 3, &["did you mean i64?"]),
        ("f(long long)", 3, &["'long long' (did you mean i64?)"]),
        ("f(int64_t)", 3, &["did you mean i64?"]),
        (
            "f(unsigned long)",
            3,
            &["'unsigned long' (did you mean u64?)"],
        ),
        ("f(uint64_t)", 3, &["did you mean u64?"]),
        ("f(size_t)", 3, &["did you mean usize?"]),
        ("f(ssize_t)", 3, &["did you mean isize?"]),
        ("f(short)", 3, &["did you mean i16?"]),
        ("f(char)", 3, &["did you mean i8?"]),
        ("f(int8_t)", 3, &["did you mean i8?"]),
        ("f(uint8_t)", 3, &["did you mean u8?"]),
        ("f(unsigned char)", 3, &["did you mean u8?"]),
        ("f(float)", 3, &["did you mean f32?"]),
        ("f(double)", 3, &["did you mean f64?"]),
        ("f(int32_t)", 3, &["did you mean i32?"]),
        ("f(uint16_t)", 3, &["did you mean u16?"]),
        ("f(char*)", 3, &["'char*' (did you mean cstr?)"]),
        (
            "f(const char *)",
            3,
            &["'const char*' (did you mean cstr?)"],
        ),
        ("f(void*)", 3, &["'void*' (did you mean handle?)"]),
        ("f(void *)", 3, &["did you mean handle?"]),
        ("f(int*)", 3, &["did you mean *i32?"]),
        ("f(*int)", 4, &["did you mean *i32?"]),
        ("f(int x)", 3, &["'int' (did you mean i32?)"]),
        ("f(widget)", 3, &["unknown type 'widget'; expected one of"]),
        ("f(I32)", 3, &["unknown type 'I32'"]),
        ("f(void, i32)", 3, &["'void' is not an argument type"]),
        ("f(i32, void)", 8, &["'void' is not an argument type"]),
        (
            "f(*cstr)",
            3,
            &["'*cstr'", "only scalars and handle can be pointed to"],
        ),
        ("f(*bytes)", 3, &["'*bytes'", "only scalars and handle"]),
        (
            "f(i32, **i32)",
            8,
            &["pointers to pointers", "only scalars and handle"],
        ),
        (
            "f(*void)",
            3,
            &["'*void'", "only scalars and handle", "handle"],
        ),
        ("f(*out[4])", 3, &["'*out'", "only scalars and handle"]),
        ("f(*)", 4, &["expected a type after '*'"]),
        ("f(* )", 5, &["expected a type after '*'"]),
        ("f(i32*)", 6, &["leading '*'"]),
        ("f(out)", 6, &["out[N]"]),
        ("f(out[])", 7, &["expected a length", "']'"]),
        ("f(out[0])", 7, &["out[0] is empty"]),
        ("f(out[0x0])", 7, &["out[0] is empty"]),
        ("f(out[-1])", 7, &["expected a length"]),
        ("f(out[1073741825])", 7, &["too large", "1073741824"]),
        ("f(out[0x40000001])", 7, &["too large"]),
        ("f(out[99999999999999999999999])", 7, &["too large"]),
        ("f(out[12ab])", 7, &["invalid length '12ab'"]),
        ("f(out[0x])", 7, &["invalid length '0x'"]),
        ("f(out[16)", 9, &["expected ']'"]),
        ("f(out[16 16])", 10, &["expected ']'"]),
        (
            "f() -> bytes",
            8,
            &["cannot return bytes", "cannot know the length", "out[N]"],
        ),
        ("f() -> out[8]", 8, &["cannot return out[N]"]),
        ("f() -> *i32", 8, &["cannot return a pointer", "handle"]),
        ("f() -> *handle", 8, &["cannot return a pointer"]),
        ("f() -> int", 8, &["did you mean i32?", EXPECTED_RET]),
        ("f() -> const char*", 8, &["did you mean cstr?"]),
        ("f() ->", 7, &["expected a return type", "end of input"]),
        ("f() -> ", 8, &["expected a return type"]),
        ("f() -> (", 8, &["expected a return type", "'('"]),
        ("f() - > i32", 5, &["expected '-> ret'"]),
        ("f() i32", 5, &["expected '-> ret'", "'i32'"]),
        (
            "f() -> i32 x",
            12,
            &["unexpected 'x' after the return type"],
        ),
        ("f() -> i32;", 11, &["unexpected ';'"]),
        ("f(i32))", 7, &["expected '-> ret'"]),
        ("f(i32)\n-> i32\nx", 15, &["unexpected 'x'"]),
    ];
    for &(input, column, needles) in cases {
        let e = perr(input);
        assert_eq!(e.column, column, "{input:?}: {e}");
        for n in needles {
            assert!(e.message.contains(n), "{input:?}: {e} lacks {n:?}");
        }
        assert!(!e.message.contains('\n'), "{input:?}: {e}");
        assert_eq!(e.to_string(), format!("column {column}: {}", e.message));
    }
}

#[test]
fn from_str_matches_parse() {
    let s = "f(handle) -> handle";
    assert_eq!(s.parse::<Signature>().unwrap(), p(s));
    assert_eq!("f(".parse::<Signature>().unwrap_err(), perr("f("));
}

#[test]
fn handle_kinds_parse_and_round_trip() {
    let sig = p("prepare( handle < db >, cstr, i32, * handle<stmt>, *u64 ) -> i32");
    assert_eq!(
        sig.args,
        [
            ArgType::Handle,
            ArgType::CStr,
            ArgType::Scalar(ScalarType::I32),
            ArgType::Ptr(Pointee::Handle),
            ArgType::Ptr(Pointee::Scalar(ScalarType::U64)),
        ]
    );
    assert_eq!(
        sig.arg_kinds,
        [Some("db".into()), None, None, Some("stmt".into()), None]
    );
    assert_eq!(
        (sig.arg_kind(0), sig.arg_kind(3), sig.arg_kind(9)),
        (Some("db"), Some("stmt"), None)
    );
    let text = sig.to_string();
    assert_eq!(
        text,
        "prepare(handle<db>, cstr, i32, *handle<stmt>, *u64) -> i32"
    );
    assert_eq!(p(&text), sig);

    let open = p("open(cstr) -> handle<sqlite3_db>");
    assert_eq!(
        (open.ret, open.ret_kind()),
        (RetType::Handle, Some("sqlite3_db"))
    );
    assert!(open.arg_kinds.is_empty());
    assert_eq!(open.to_string(), "open(cstr) -> handle<sqlite3_db>");
    assert_eq!(p(&open.to_string()), open);

    // Untyped handles stay as they were: no kinds at all, so a signature
    // without kinds equals its old self.
    let untyped = p("f(handle, *handle) -> handle");
    assert!(untyped.arg_kinds.is_empty() && untyped.ret_kind.is_none());
    assert_ne!(p("f(handle<a>)"), p("f(handle)"));
    assert_ne!(p("f(handle<a>)"), p("f(handle<b>)"));
    // Kinds show in arity messages, as written.
    assert_eq!(
        p("finalize(handle<stmt>) -> i32")
            .arity_mismatch(0)
            .unwrap(),
        "finalize takes 1 argument (handle<stmt>) but 0 were given"
    );
}

#[test]
fn handle_kind_errors_with_columns() {
    let cases: &[(&str, usize, &[&str])] = &[
        ("f(handle<>)", 10, &["empty handle kind", "handle<NAME>"]),
        ("f(handle<1x>)", 10, &["expected a handle kind", "'1'"]),
        (
            "f(handle<a b>)",
            12,
            &["expected '>' to close handle<a>", "'b'"],
        ),
        ("f(handle<a)", 11, &["expected '>'", "')'"]),
        ("f(handle<a", 11, &["expected '>'", "end of input"]),
        ("f(*handle<>)", 11, &["empty handle kind"]),
        (
            "f() -> handle<",
            15,
            &["expected a handle kind", "end of input"],
        ),
        (
            "f() -> *handle<x>",
            8,
            &["cannot return a pointer (*handle<x>)"],
        ),
        (
            "f(handle<db> name)",
            14,
            &["'name'", "after argument type handle<db>"],
        ),
    ];
    for &(input, column, needles) in cases {
        let e = perr(input);
        assert_eq!(e.column, column, "{input:?}: {e}");
        for needle in needles {
            assert!(e.message.contains(needle), "{input:?}: {e}");
        }
    }
}

#[test]
fn function_names_have_a_bound() {
    let longest = "f".repeat(MAX_NAME_LEN);
    assert_eq!(p(&format!("{longest}() -> void")).name, longest);
    let e = perr(&format!("{longest}g() -> void"));
    assert_eq!(e.column, 1);
    assert!(e.message.contains("4097 bytes"), "{}", e.message);
}
