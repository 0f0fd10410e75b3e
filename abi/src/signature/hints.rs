//! C spellings of the notation's types, for "did you mean ...?" hints.
//!
//! Someone binding a library reads its header, so the likeliest mistake is a
//! C type name (`unsigned long`, `const char *`); this table answers with the
//! type to write instead.

/// Maps a C (or otherwise familiar) type spelling to this notation.
pub(super) fn c_hint(spelling: &str) -> Option<&'static str> {
    let stars = spelling.len() - spelling.trim_end_matches('*').len();
    let base: Vec<&str> = spelling
        .trim_end_matches('*')
        .split(' ')
        .filter(|w| !matches!(*w, "const" | "volatile" | "restrict"))
        .collect();
    let base = base.join(" ");
    let scalar = match base.as_str() {
        "int" | "signed" | "signed int" | "int32_t" => Some("i32"),
        "unsigned" | "unsigned int" | "uint32_t" => Some("u32"),
        "long" | "long int" | "signed long" | "signed long int" | "long long" | "long long int"
        | "signed long long" | "int64_t" | "off_t" => Some("i64"),
        "unsigned long"
        | "unsigned long int"
        | "unsigned long long"
        | "unsigned long long int"
        | "uint64_t" => Some("u64"),
        "size_t" | "uintptr_t" => Some("usize"),
        "ssize_t" | "ptrdiff_t" | "intptr_t" => Some("isize"),
        "short" | "short int" | "signed short" | "int16_t" => Some("i16"),
        "unsigned short" | "unsigned short int" | "uint16_t" => Some("u16"),
        "char" | "signed char" | "int8_t" => Some("i8"),
        "unsigned char" | "uint8_t" | "bool" | "_Bool" => Some("u8"),
        "float" => Some("f32"),
        "double" => Some("f64"),
        _ => None,
    };
    match (stars, base.as_str()) {
        (0, "str" | "string") => Some("cstr"),
        (0, "ptr" | "pointer") => Some("handle"),
        (0, _) => scalar,
        (1, "char" | "signed char") => Some("cstr"),
        (1, "unsigned char" | "uint8_t") => Some("bytes"),
        (1, "void") => Some("handle"),
        (1, _) => scalar.and_then(|s| match s {
            "i8" => Some("*i8"),
            "i16" => Some("*i16"),
            "i32" => Some("*i32"),
            "i64" => Some("*i64"),
            "u8" => Some("*u8"),
            "u16" => Some("*u16"),
            "u32" => Some("*u32"),
            "u64" => Some("*u64"),
            "isize" => Some("*isize"),
            "usize" => Some("*usize"),
            "f32" => Some("*f32"),
            "f64" => Some("*f64"),
            _ => None,
        }),
        _ => None,
    }
}
