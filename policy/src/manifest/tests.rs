use std::path::PathBuf;

use ffb_abi::effects::WORST_CASE;

use super::{Manifest, ManifestPolicy, Ownership};

const GOOD: &str = r#"[library]
name = "libz.so.1"
policy = "pure"
description = "zlib"

[functions.crc32]
sig = "crc32(u64, bytes, u32) -> u64"
effects = "pure"
retained = [1]

[functions.zlibVersion]
sig = "zlibVersion() -> cstr"
"#;

/// The error's `LINE:COL: message` for `text`.
fn error(text: &str) -> String {
    let e = Manifest::parse(text, "m.toml").unwrap_err();
    assert_eq!(e.path, "m.toml");
    e.to_string().strip_prefix("m.toml:").unwrap().to_string()
}

#[test]
fn parses_a_good_manifest_in_file_order() {
    let m = Manifest::parse(GOOD, "dir/m.toml").unwrap();
    assert_eq!(m.library, "libz.so.1");
    assert_eq!(m.description.as_deref(), Some("zlib"));
    assert_eq!(m.policy, ManifestPolicy::Preset("pure".into()));
    let names: Vec<&str> = m.functions.iter().map(|f| f.name()).collect();
    // File order, not alphabetical ('z' > 'c' but 'Version' sorts before lowercase).
    assert_eq!(names, ["crc32", "zlibVersion"]);
    assert_eq!(m.functions[0].retained, [1]);
    assert_eq!(m.functions[0].pointer_args(), [(1, Ownership::Retained)]);
    assert_eq!(m.functions[1].declared_effects, WORST_CASE);
    assert!(m.function("crc32").is_some());
    assert!(m.function("adler32").is_none());
}

#[test]
fn a_policy_file_is_resolved_against_the_manifest() {
    let m = Manifest::parse(
        &GOOD.replace("policy = \"pure\"", "policy = \"z.policy.toml\""),
        "dir/m.toml",
    )
    .unwrap();
    assert_eq!(
        m.policy,
        ManifestPolicy::File(PathBuf::from("dir/z.policy.toml"))
    );
    let e = m.load_policy().unwrap_err();
    // An unreadable policy file is reported at the manifest's value.
    assert!(
        e.to_string()
            .starts_with("dir/m.toml:3:10: policy 'dir/z.policy.toml': cannot read"),
        "{e}"
    );
    let abs = Manifest::parse(
        &GOOD.replace("policy = \"pure\"", "policy = \"/etc/p.toml\""),
        "dir/m.toml",
    )
    .unwrap();
    assert_eq!(
        abs.policy,
        ManifestPolicy::File(PathBuf::from("/etc/p.toml"))
    );
    assert_eq!(m.policy_spec(), "dir/z.policy.toml");
}

#[test]
fn preset_policies_load() {
    let m = Manifest::parse(GOOD, "m.toml").unwrap();
    assert_eq!(m.load_policy().unwrap().name, "pure");
}

#[test]
fn toml_syntax_and_shape_errors() {
    assert_eq!(error("  \n"), "1:1: empty manifest");
    assert!(error("[library\n").starts_with("1:"));
    assert!(error("[functions.f]\nsig = \"f()\"\n").contains("missing field `library`"));
    assert_eq!(
        error("[library]\nname = \"x\"\npolicy = \"pure\"\nnmae = \"y\"\n"),
        "4:1: unknown key 'nmae' (did you mean 'name'?)"
    );
    assert_eq!(
        error("[library]\nname = \"x\"\npolicy = \"pure\"\n[functoins.f]\nsig = \"f()\"\n"),
        "4:2: unknown key 'functoins' (did you mean 'functions'?)"
    );
    assert_eq!(
        error("[library]\nname = \"x\"\npolicy = \"pure\"\nzzzzzz = 1\n"),
        "4:1: unknown key 'zzzzzz' (expected 'name', 'policy', 'description')"
    );
    assert!(error("[library]\nname = 3\npolicy = \"pure\"\n").starts_with("2:8: "));
    assert_eq!(
        error("[library]\nname = \" \"\npolicy = \"pure\"\n"),
        "2:8: library name is empty"
    );
    assert!(error("[library]\nname = \"x\"\npolicy = \"\"\n").starts_with("3:10: policy is empty"));
}

/// A manifest with `[library]` and then `rest`.
fn with(rest: &str) -> String {
    format!("[library]\nname = \"x\"\npolicy = \"pure\"\n{rest}")
}

#[test]
fn function_errors_point_at_the_value() {
    // Line 4 is the table, line 5 the first key.
    assert_eq!(
        error(&with("[functions.f]\nsig = \"f(int) -> i32\"\n")),
        format!(
            "5:10: sig: {}",
            ffb_abi::signature::Signature::parse("f(int)")
                .unwrap_err()
                .message
        )
    );
    assert_eq!(
        error(&with("[functions.f]\nsig = \"g() -> i32\"\n")),
        "5:7: sig declares 'g' but the table is [functions.f]: they must be the same"
    );
    assert_eq!(
        error(&with(
            "[functions.f]\nsig = \"f(i32)\"\neffects = \"io + mutates\"\n"
        )),
        format!(
            "6:17: effects: {}",
            "io + mutates"
                .parse::<ffb_abi::effects::EffectSet>()
                .unwrap_err()
                .message
        )
    );
    assert_eq!(
        error(&with(
            "[functions.f]\nsig = \"f(i32)\"\neffects = \"mutates(args=[1])\"\n"
        )),
        "6:11: effects: mutates argument 1, but 'f' has 1 argument (positions count from 0)"
    );
    assert_eq!(
        error(&with("[functions.f]\nsig = \"f(i32)\"\nsig2 = 1\n")),
        "6:1: unknown key 'sig2' (did you mean 'sig'?)"
    );
    assert!(error(&with("[functions.f]\neffects = \"io\"\n")).contains("missing field `sig`"));
}

#[test]
fn retained_positions_must_be_pointer_arguments_in_range() {
    let f = |r: &str| {
        error(&with(&format!(
            "[functions.f]\nsig = \"f(i32, cstr)\"\nretained = {r}\n"
        )))
    };
    assert_eq!(
        f("[2]"),
        "6:13: retained position 2 is out of range: 'f' has 2 arguments (positions count from 0)"
    );
    assert!(f("[-1]").starts_with("6:13: retained position -1 is out of range"));
    assert_eq!(
        f("[0]"),
        "6:13: retained position 0 is i32, not a buffer the caller fills \
         (only cstr and bytes arguments can be retained)"
    );
    assert_eq!(f("[1, 1]"), "6:16: retained position 1 is listed twice");
    assert!(f("1").starts_with("6:12: "));
    let ok = Manifest::parse(
        &with("[functions.f]\nsig = \"f(bytes, *i32, out[4], cstr)\"\nretained = [3, 0]\n"),
        "m.toml",
    )
    .unwrap();
    assert_eq!(ok.functions[0].retained, [0, 3]);
    assert!(error(&with(
        "[functions.f]\nsig = \"f(out[4])\"\nretained = [0]\n"
    ))
    .starts_with("6:13: retained position 0 is out[4], not a buffer"));
}

#[test]
fn handle_errors_point_at_the_value() {
    let h = |rest: &str| {
        error(&with(&format!(
            "[functions.f_close]\nsig = \"f_close(handle) -> i32\"\n{rest}"
        )))
    };
    assert_eq!(
        h("[handles.db]\nclose = \"f_clos\"\n"),
        "7:9: unknown function 'f_clos' (did you mean 'f_close'?)"
    );
    assert_eq!(
        h("[handles.db]\nclose = \"zzzzzzzz\"\n"),
        "7:9: unknown function 'zzzzzzzz' (declare it in [functions.NAME])"
    );
    assert!(h("[handles.db]\n").contains("missing field `close`"));
    assert_eq!(
        h("[handles.db]\nclose = \"f_close\"\nclsoe = 1\n"),
        "8:1: unknown key 'clsoe' (did you mean 'close'?)"
    );
    assert_eq!(
        h("[handles.\"a-b\"]\nclose = \"f_close\"\n"),
        "6:10: handle kind 'a-b' is not an identifier (letters, digits and _)"
    );
}

/// A manifest with a connection and a statement kind, then `rest`.
fn typed(rest: &str) -> String {
    with(&format!(
        "[functions.open]\nsig = \"open(cstr, *handle<db>) -> i32\"\n\
         [functions.close]\nsig = \"close(handle<db>) -> i32\"\n\
         [functions.prepare]\nsig = \"prepare(handle<db>, cstr, *handle<stmt>) -> i32\"\n\
         [functions.finalize]\nsig = \"finalize(handle<stmt>) -> i32\"\n{rest}"
    ))
}

#[test]
fn typed_handles_with_closers_and_parents() {
    let m = Manifest::parse(
        &typed("[handles.db]\nclose = \"close\"\n[handles.stmt]\nclose = \"finalize\"\nparent = \"db\"\n"),
        "m.toml",
    )
    .unwrap();
    assert_eq!(m.handles.len(), 2);
    assert_eq!(m.handle("stmt").unwrap().parent.as_deref(), Some("db"));
    assert_eq!(m.handle("db").unwrap().close, "close");
    let slots = m.function("prepare").unwrap().handle_slots();
    assert_eq!(slots.len(), 2);
    assert_eq!(
        (slots[0].position, slots[0].kind, slots[0].out),
        (Some(0), Some("db"), false)
    );
    assert_eq!(
        (slots[1].position, slots[1].kind, slots[1].out),
        (Some(2), Some("stmt"), true)
    );
}

#[test]
fn typed_handle_errors() {
    // Line 12 is the first [handles] table, 13 its first key.
    let db = "[handles.db]\nclose = \"close\"\n";
    assert_eq!(
        error(&typed("[handles.stmt]\nclose = \"finalize\"\n")),
        "5:27: unknown handle kind 'db' (declare it in [handles.NAME])"
    );
    assert_eq!(
        error(&with(
            "[functions.f]\nsig = \"f(handle<stmtt>)\"\n[handles.stmt]\nclose = \"f\"\n"
        )),
        "5:17: unknown handle kind 'stmtt' (did you mean 'stmt'?)"
    );
    assert_eq!(
        error(&typed(&format!("{db}[handles.stmt]\nclose = \"close\"\n"))),
        "15:9: close function 'close' takes no handle<stmt> argument (it is 'close(handle<db>) -> i32')"
    );
    // An out-parameter of the kind does not make a closer.
    assert_eq!(
        error(&typed("[handles.db]\nclose = \"open\"\n[handles.stmt]\nclose = \"finalize\"\n")),
        "13:9: close function 'open' takes no handle<db> argument (it is 'open(cstr, *handle<db>) -> i32')"
    );
    assert_eq!(
        error(&typed(&format!(
            "{db}[handles.stmt]\nclose = \"finalize\"\nparent = \"dbb\"\n"
        ))),
        "16:10: unknown handle kind 'dbb' (did you mean 'db'?)"
    );
    assert_eq!(
        error(&typed(&format!(
            "{db}[handles.stmt]\nclose = \"finalize\"\nparent = \"stmt\"\n"
        ))),
        "16:10: handle kind 'stmt' cannot be its own parent"
    );
    assert_eq!(
        error(&typed(
            "[handles.db]\nclose = \"close\"\nparent = \"stmt\"\n[handles.stmt]\nclose = \"finalize\"\nparent = \"db\"\n"
        )),
        "17:10: handle parents form a cycle: db -> stmt -> db"
    );
}

#[test]
fn the_shipped_manifests_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".toml") || name.ends_with(".policy.toml") {
            continue;
        }
        let m = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!m.functions.is_empty(), "{name}");
        assert!(matches!(m.policy, ManifestPolicy::File(_)), "{name}");
        seen += 1;
    }
    assert_eq!(
        seen,
        3,
        "sqlite3.toml, libpq.toml and odbc.toml in {}",
        dir.display()
    );
}

#[test]
fn the_first_mistake_in_the_file_is_reported() {
    // 'zz' sorts after 'aa', but comes first in the file.
    assert_eq!(
        error(&with(
            "[functions.zz]\nsig = \"zz(int)\"\n[functions.aa]\nsig = \"aa(int)\"\n"
        )),
        format!(
            "5:11: sig: {}",
            ffb_abi::signature::Signature::parse("zz(int)")
                .unwrap_err()
                .message
        )
    );
}
