//! The Python helper (`ffb_loader::python`, `ffb py`): the standard
//! library's C extensions, canonical values both ways, handles, typed
//! exceptions, the module allowlist and Landlock, hostile modules (each
//! contained, typed, and followed by a working call in a fresh helper),
//! numpy/pandas/pyarrow from the project's .venv, psycopg2 against the
//! private PostgreSQL, and the command line's refusals.

use std::time::Duration;

use ffb_loader::python::{PyBridge, PyValue};
use ffb_loader::ErrorKind;
use ffb_tests::cli::{ffb, refused, run, Scratch};
use ffb_tests::python::{hostile_extension_dir, py, py_builder, test_modules, venv_python};
use ffb_tests::rng::{seed_from_env, XorShift};
use num_bigint::BigInt;

fn s(text: &str) -> PyValue {
    PyValue::str(text)
}

fn kind_of(e: &ffb_loader::Error) -> String {
    match &e.kind {
        ErrorKind::PythonException { type_name, .. } => format!("python_exception {type_name}"),
        ErrorKind::Crashed { signal } => format!("crashed {signal}"),
        ErrorKind::PolicyViolation { syscall, .. } => format!("policy_violation {syscall}"),
        ErrorKind::Exited { code } => format!("exited {code}"),
        other => other.name().to_string(),
    }
}

/// The helper still serves after `e`: a fresh one if `e` ended it.
fn still_serves(py: &mut PyBridge) {
    let v = py.call("ffb_pytest:add", &[PyValue::Int(2), PyValue::Int(40)], &[]).unwrap();
    assert_eq!(v, PyValue::Int(42));
}

#[test]
fn the_standard_librarys_c_extensions_answer_in_the_helper() {
    let mut py = py();
    let v = py.call("ffb_pytest:stdlib_c_extensions", &[], &[]).unwrap();
    let PyValue::Dict(pairs) = v else { panic!("{v}") };
    let get = |k: &str| pairs.iter().find(|(key, _)| *key == s(k)).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("zlib"), PyValue::Bool(true));
    assert_eq!(get("sqlite"), PyValue::Int(6));
    assert_eq!(
        get("json"),
        PyValue::Dict(vec![(s("a"), PyValue::List(vec![PyValue::Int(1), PyValue::Float(2.5), PyValue::None]))])
    );
    assert_eq!(get("json_c"), PyValue::Bool(true));
    assert_eq!(get("decimal"), s("3.305"));
    assert_eq!(get("decimal_c"), PyValue::Bool(true));
    assert_eq!(get("struct"), PyValue::Bytes(vec![0xfe, 0xff, 0xff, 0xff, 7, 0]));
    assert_eq!(get("struct_c"), PyValue::Int(6));
    // And straight into a C function of a module: zlib.crc32.
    let crc = py.call("zlib:crc32", &[PyValue::Bytes(b"hello".to_vec())], &[]).unwrap();
    assert_eq!(crc, PyValue::Int(0x3610a686));
}

fn below(rng: &mut XorShift, n: u64) -> u64 {
    rng.next_u64() % n
}

/// A random canonical value, `depth` levels deep at most.
fn value(rng: &mut XorShift, depth: u32) -> PyValue {
    let floats = [0.0, -0.0, f64::NAN, f64::from_bits(0x7ff8_0000_dead_beef), f64::INFINITY, f64::MIN_POSITIVE, 1e308, -2.5];
    let texts = ["", "é", "\u{10ffff}", "a\u{0}b", "\u{1b}[2J", "🎉 mixed ascii", "\u{feff}"];
    match below(rng, if depth == 0 { 8 } else { 11 }) {
        0 => PyValue::None,
        1 => PyValue::Bool(below(rng, 2) == 1),
        2 => PyValue::Int(rng.next_u64() as i64),
        3 => PyValue::int(BigInt::from(rng.next_u64()) * BigInt::from(rng.next_u64()) * BigInt::from(-1i64).pow(below(rng, 2) as u32)),
        4 => PyValue::Float(floats[below(rng, floats.len() as u64) as usize]),
        5 => PyValue::Float(f64::from_bits(rng.next_u64())),
        6 => PyValue::str(texts[below(rng, texts.len() as u64) as usize]),
        7 => PyValue::Bytes((0..below(rng, 300)).map(|_| rng.next_u64() as u8).collect()),
        8 => PyValue::List((0..below(rng, 5)).map(|_| value(rng, depth - 1)).collect()),
        9 => PyValue::Tuple((0..below(rng, 4)).map(|_| value(rng, depth - 1)).collect()),
        _ => PyValue::Dict(
            (0..below(rng, 4))
                .map(|i| (PyValue::Int(i as i64), value(rng, depth - 1)))
                .collect(),
        ),
    }
}

#[test]
fn canonical_values_come_back_identical() {
    let mut py = py();
    let mut rng = XorShift(seed_from_env("FFB_PY_SEED", "canonical_values_come_back_identical") | 1);
    for _ in 0..300 {
        let v = value(&mut rng, 4);
        let back = py.call("ffb_pytest:echo", std::slice::from_ref(&v), &[]).unwrap();
        assert_eq!(back, v, "{v}");
    }
    // Deep nesting up to the bound, and a large bytes value.
    let mut deep = PyValue::None;
    for _ in 0..60 {
        deep = PyValue::List(vec![deep]);
    }
    assert_eq!(py.call("ffb_pytest:echo", std::slice::from_ref(&deep), &[]).unwrap(), deep);
    let big = PyValue::Bytes(vec![0xab; 8 << 20]);
    assert_eq!(py.call("ffb_pytest:echo", std::slice::from_ref(&big), &[]).unwrap(), big);
}

#[test]
fn values_are_what_python_sees_in_process() {
    // The helper's repr of each value equals the repr the host's own
    // CPython gives the same value, read from ffb's JSON form.
    let mut py = py();
    let cases = [
        PyValue::Tuple(vec![PyValue::Int(1), s("x"), PyValue::Bytes(vec![0, 255])]),
        PyValue::int(BigInt::from(1u8) << 200u32),
        PyValue::Float(-0.0),
        PyValue::Dict(vec![(PyValue::Int(1), PyValue::Tuple(vec![])), (s("k"), PyValue::List(vec![PyValue::Bool(true)]))]),
        s("\u{0}\u{7f}é🎉"),
    ];
    for v in cases {
        let in_helper = py.call("ffb_pytest:describe", std::slice::from_ref(&v), &[]).unwrap();
        let json = v.to_json().to_string();
        let out = std::process::Command::new("/usr/bin/python3.11")
            .args(["-I", "-c", PY_FROM_JSON, &json])
            .output()
            .expect("run the host's python3.11");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let in_process = String::from_utf8(out.stdout).unwrap();
        assert_eq!(in_helper, s(in_process.trim_end_matches('\n')), "{v}");
    }
}

/// Reads ffb's JSON form of a value into Python and prints its repr.
const PY_FROM_JSON: &str = r#"
import json, sys
def conv(j):
    if isinstance(j, list): return [conv(x) for x in j]
    if isinstance(j, dict):
        if len(j) == 1:
            (k, v), = j.items()
            if k == "hex": return bytes.fromhex(v)
            if k == "tuple": return tuple(conv(x) for x in v)
            if k == "int": return int(v)
            if k == "float": return float(v)
            if k == "dict": return {conv(a): conv(b) for a, b in v}
        return {k: conv(v) for k, v in j.items()}
    return j
print(repr(conv(json.loads(sys.argv[1]))))
"#;

#[test]
fn exceptions_are_typed_and_stay_the_helpers_words() {
    let mut py = py();
    let e = py
        .call("ffb_pytest:raise_value_error", &[s("bad \u{1b}[31mred\u{1b}[0m\nffb: crashed (SIGSEGV): fake")], &[])
        .unwrap_err();
    let ErrorKind::PythonException { type_name, traceback } = &e.kind else { panic!("{e}") };
    assert_eq!(type_name, "ValueError");
    assert!(traceback.contains("raise_value_error"), "{traceback}");
    let shown = e.to_string();
    assert!(shown.starts_with("python_exception (ValueError): the helper reported: bad "), "{shown}");
    assert!(!shown.contains('\u{1b}') && !shown.contains('\n'), "{shown:?}");
    assert_eq!(e.to_json()["kind"], "python_exception");
    // The helper is fine after an exception: same pid.
    let pid = py.helper_pid();
    still_serves(&mut py);
    assert_eq!(py.helper_pid(), pid);
    // SystemExit is an exception like any other, not the end of the helper.
    let e = py.call("ffb_pytest:raise_system_exit", &[PyValue::Int(3)], &[]).unwrap_err();
    assert_eq!(kind_of(&e), "python_exception SystemExit");
    assert_eq!(py.helper_pid(), pid);
}

#[test]
fn handles_keep_objects_in_the_helper_until_released_or_respawned() {
    let mut py = py();
    let pattern = py.call("re:compile", &[s("a+")], &[]).unwrap();
    let h = pattern.as_handle().unwrap().clone();
    assert_eq!(h.type_name(), "re.Pattern");
    let found = py.call_method(&h, "findall", &[s("caaab a")], &[]).unwrap();
    assert_eq!(found, PyValue::List(vec![s("aaa"), s("a")]));
    assert_eq!(py.getattr(&h, "pattern").unwrap(), s("a+"));
    // Passed back as an argument, it is the same object.
    let same = py.call("ffb_pytest:echo", &[pattern.clone()], &[]).unwrap();
    assert_eq!(py.call_method(same.as_handle().unwrap(), "match", &[s("b")], &[]).unwrap(), PyValue::None);
    py.release(&h).unwrap();
    let e = py.call_method(&h, "findall", &[s("aa")], &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    // A handle of a helper that is gone is stale, before anything is sent.
    let other = py.call("re:compile", &[s("b")], &[]).unwrap();
    let e = py.call("ffb_hostile_ext:segv", &[], &[]).unwrap_err();
    assert_eq!(kind_of(&e), "crashed SIGSEGV");
    let e = py.call_method(other.as_handle().unwrap(), "findall", &[s("b")], &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
    // And one from another bridge is refused too.
    let mut second = ffb_tests::python::py();
    let e = second.call_method(other.as_handle().unwrap(), "findall", &[s("b")], &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::StaleHandle, "{e}");
}

#[test]
fn dropped_handles_are_released_in_the_helper() {
    let mut py = py();
    let before = handle_table_len(&mut py);
    let handles: Vec<PyValue> = (0..50).map(|_| py.call("builtins:object", &[], &[]).unwrap()).collect();
    assert_eq!(handle_table_len(&mut py), before + 50);
    let kept = handles[7].clone();
    drop(handles);
    // The releases go with the next request; the clone keeps its object.
    assert_eq!(handle_table_len(&mut py), before + 1);
    drop(kept);
    assert_eq!(handle_table_len(&mut py), before);
}

/// The size of the helper's handle table (`_ffb.handles`), read there.
fn handle_table_len(py: &mut PyBridge) -> i64 {
    py.call("ffb_pytest:handle_count", &[], &[]).unwrap().as_i64().unwrap()
}

#[test]
fn hostile_modules_are_contained_and_typed() {
    let mut py = py_builder().timeout(Duration::from_secs(20)).build().unwrap();
    let outside = "/etc/hostname";
    let cases: Vec<(&str, Vec<PyValue>, &str)> = vec![
        ("ffb_hostile_ext:segv", vec![], "crashed SIGSEGV"),
        ("ffb_hostile_ext:poke", vec![PyValue::Int(16), PyValue::Int(1)], "crashed SIGSEGV"),
        ("ffb_pytest:ctypes_write", vec![PyValue::Int(64)], "crashed SIGSEGV"),
        ("ffb_pytest:run_system", vec![s("touch /tmp/ffb-py-pwned")], "policy_violation clone"),
        ("ffb_pytest:run_subprocess", vec![PyValue::List(vec![s("/bin/true")])], "policy_violation vfork"),
        ("ffb_pytest:fork", vec![], "policy_violation clone"),
        ("ffb_pytest:open_socket", vec![], "policy_violation socket"),
        ("ffb_pytest:read_file", vec![s(outside)], "python_exception PermissionError"),
        ("ffb_pytest:hard_exit", vec![PyValue::Int(7)], "exited 7"),
        ("ffb_pytest:import_module", vec![s("msgpack")], "python_exception ImportError"),
    ];
    for (target, args, expected) in cases {
        let e = py.call(target, &args, &[]).unwrap_err();
        assert_eq!(kind_of(&e), expected, "{target}: {e}");
        still_serves(&mut py);
    }
    assert!(!std::path::Path::new("/tmp/ffb-py-pwned").exists());
}

#[test]
fn a_hanging_del_is_a_timeout_and_the_next_call_works() {
    let mut py = py_builder().timeout(Duration::from_millis(1500)).build().unwrap();
    let stubborn = py.call("ffb_pytest:stubborn", &[], &[]).unwrap();
    // Its __repr__ never returns, but the host never asks for it.
    assert_eq!(stubborn.as_handle().unwrap().type_name(), "ffb_pytest.Stubborn");
    let h = stubborn.as_handle().unwrap().clone();
    drop(stubborn);
    let e = py.release(&h).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    still_serves(&mut py);
}

#[test]
fn a_module_scribbling_after_it_returned_cannot_corrupt_replies() {
    let mut py = py();
    let buffer = py.call("builtins:bytearray", &[PyValue::Int(1 << 16)], &[]).unwrap();
    py.call("ffb_hostile_ext:scribble_later", &[buffer], &[]).unwrap();
    for i in 0..200 {
        let v = PyValue::Bytes(vec![i as u8; 4096]);
        assert_eq!(py.call("ffb_pytest:echo", std::slice::from_ref(&v), &[]).unwrap(), v);
    }
}

#[test]
fn imports_outside_the_allowlist_are_refused_by_name() {
    let mut py = py_builder().python(venv_python()).allow_module("numpy").build().unwrap();
    let e = py.call("ffb_pytest:import_module", &[s("msgpack")], &[]).unwrap_err();
    assert_eq!(kind_of(&e), "python_exception ImportError");
    assert!(e.message.contains("'msgpack' is not allowed") && e.message.contains("--allow-module msgpack"), "{e}");
    // Landlock is the real boundary: the package's files do not open.
    let init = venv_python().parent().unwrap().parent().unwrap().join("lib/python3.11/site-packages/msgpack/__init__.py");
    assert!(init.is_file(), "{}", init.display());
    let e = py.call("ffb_pytest:read_file", &[s(init.to_str().unwrap())], &[]).unwrap_err();
    assert_eq!(kind_of(&e), "python_exception PermissionError", "{e}");
    // What is allowed works.
    let dot = py.call("ffb_pytest:numpy_dot", &[], &[]).unwrap();
    assert_eq!(dot.to_string(), "[[5, 14], [14, 50]]");
}

#[test]
fn numpy_pandas_and_pyarrow_run_from_the_projects_venv() {
    let mut py = py_builder()
        .python(venv_python())
        .allow_module("pandas")
        .allow_module("pyarrow")
        .build()
        .unwrap();
    let sums = py.call("ffb_pytest:pandas_groupby_sum", &[], &[]).unwrap();
    assert_eq!(sums.to_string(), "{'a': 4, 'b': 2, 'c': 4}");
    let rows = py.call("ffb_pytest:pyarrow_table_rows", &[], &[]).unwrap();
    assert_eq!(rows, PyValue::Tuple(vec![PyValue::Int(3), PyValue::Int(1)]));
    // A DataFrame stays in the helper as a handle, with methods.
    let df = py
        .call("pandas:DataFrame", &[PyValue::Dict(vec![(s("a"), PyValue::List(vec![PyValue::Int(1), PyValue::Int(2)]))])], &[])
        .unwrap();
    let h = df.as_handle().unwrap();
    assert_eq!(h.type_name(), "pandas.DataFrame");
    let total = py.call_method(h, "to_dict", &[s("list")], &[]).unwrap();
    assert_eq!(total.to_string(), "{'a': [1, 2]}");
}

#[test]
fn psycopg2_reaches_the_private_postgresql_through_a_granted_socket() {
    let pg = ffb_tests::postgres::server();
    let scratch = Scratch::new("py-pg");
    let socket = format!("{}/.s.PGSQL.{}", pg.socket_dir.display(), pg.port);
    let policy = scratch.file(
        "policy.toml",
        format!("extends = \"python\"\n[network]\nconnect_unix = [\"{socket}\"]\n"),
    );
    let policy = ffb_policy::source::load_policy(policy.to_str().unwrap()).expect("policy");
    let mut py = py_builder().python(venv_python()).allow_module("psycopg2").policy(policy).build().unwrap();
    let dsn = pg.socket_conninfo();
    let rows = py.call("ffb_pytest:psycopg2_query", &[s(&dsn), s("select 40 + 2, 'ffb'")], &[]).unwrap();
    assert_eq!(rows.to_string(), "[[42, 'ffb']]");
    // Without the grant, the connect never happens.
    let mut denied = py_builder().python(venv_python()).allow_module("psycopg2").build().unwrap();
    let e = denied.call("ffb_pytest:psycopg2_query", &[s(&dsn), s("select 1")], &[]).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::PolicyViolation { .. } | ErrorKind::PythonException { .. }), "{e}");
}

#[test]
fn ffb_py_prints_results_and_refuses_bad_input_before_starting() {
    let mut cmd = ffb();
    cmd.args(["py", "--bridge-mode", "zlib:crc32", r#"{"hex":"68656c6c6f"}"#]);
    let r = run(cmd, None);
    r.expect_code(0);
    assert_eq!(r.one_stdout_line(), "907060870");
    let mut cmd = ffb();
    cmd.args(["py", "--bridge-mode", "--json", "math:factorial", "30"]);
    let r = run(cmd, None);
    r.expect_code(0);
    assert_eq!(r.json()["result"]["int"], "265252859812191058636308480000000");
    let mut cmd = ffb();
    cmd.args(["py", "--bridge-mode", "math:sqrt", "-1"]);
    let r = run(cmd, None);
    r.expect_code(1);
    assert!(r.stderr.starts_with("ffb: python_exception (ValueError): the helper reported: math domain error"), "{r:#?}");
    let ext = hostile_extension_dir();
    let modules = test_modules();
    for (case, args) in [
        ("unknown module", vec!["py", "--bridge-mode", "--allow-module", "no_such_module_anywhere", "zlib:crc32"]),
        ("dotted allow", vec!["py", "--bridge-mode", "--allow-module", "os.path", "zlib:crc32"]),
        ("not JSON", vec!["py", "--bridge-mode", "zlib:crc32", "hello"]),
        ("bad hex", vec!["py", "--bridge-mode", "zlib:crc32", r#"{"hex":"zz"}"#]),
        ("no target", vec!["py", "--bridge-mode"]),
        ("bad target", vec!["py", "--bridge-mode", "zlib.crc32"]),
        ("not an interpreter", vec!["py", "--bridge-mode", "--python", "/bin/true", "zlib:crc32"]),
        ("no interpreter", vec!["py", "--bridge-mode", "--python", "/nonexistent/python", "zlib:crc32"]),
        ("bad module path", vec!["py", "--bridge-mode", "--module-path", "/nonexistent", "zlib:crc32"]),
        ("bridge mode off", vec!["py", "zlib:crc32"]),
        ("bad kw", vec!["py", "--bridge-mode", "--kw", "x", "zlib:crc32"]),
    ] {
        let r = refused(case, &args, None);
        r.one_stderr_line_for(case);
    }
    let _ = (ext, modules);
}

#[test]
fn a_python_of_another_version_is_refused_before_starting() {
    let pyenv = std::path::Path::new("/root/.pyenv/versions");
    // Any interpreter on this machine that is not 3.11.
    let other = ["/usr/bin/python3.12", "/usr/bin/python3.13", "/usr/bin/python2.7"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .chain(std::fs::read_dir(pyenv).into_iter().flatten().flatten().map(|e| e.path().join("bin/python3")))
        .find(|p| p.is_file() && !p.to_string_lossy().contains("3.11"));
    // A fake interpreter that answers the probe as 3.12 stands in when the
    // machine has no other version.
    let scratch = Scratch::new("py-version");
    let fake = scratch.file(
        "python3",
        "#!/bin/sh\nexec /usr/bin/python3.11 -c 'import json; print(json.dumps({\"version\": [3, 12, 0], \"executable\": \"/x\", \"libdirs\": [], \"soname\": \"\", \"path\": [], \"site\": [], \"stdlib_modules\": []}))'\n",
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let python = other.unwrap_or(fake);
    let r = refused("other version", &["py", "--bridge-mode", "--python", python.to_str().unwrap(), "zlib:crc32"], None);
    let line = r.one_stderr_line();
    assert!(line.contains("ffb's Python host is built for 3.11"), "{line}");
}

#[test]
fn ffb_py_session_calls_methods_on_handles() {
    let modules = test_modules();
    let mut cmd = ffb();
    cmd.args(["py", "session", "--bridge-mode", "--module-path", modules.to_str().unwrap()]);
    let input = concat!(
        r#"{"id": 1, "call": "re:compile", "args": ["a+"]}"#, "\n",
        r#"{"id": 2, "method": "findall", "handle": HANDLE, "args": ["caab"]}"#, "\n",
        r#"{"id": 3, "getattr": "pattern", "handle": HANDLE}"#, "\n",
        r#"{"id": 4, "release": HANDLE}"#, "\n",
        r#"{"id": 5, "method": "findall", "handle": HANDLE, "args": ["a"]}"#, "\n",
        r#"{"id": 6, "call": "ffb_pytest:raise_value_error", "args": ["no"]}"#, "\n",
        "not json\n",
        r#"{"id": 8, "call": "ffb_pytest:add", "args": [1], "kwargs": {"b": 2}}"#, "\n",
    );
    // The first handle of a fresh helper is token 1.
    let input = input.replace("HANDLE", "1");
    let r = run(cmd, Some(input.as_bytes()));
    r.expect_code(0);
    let lines = r.json_lines();
    assert_eq!(lines.len(), 8, "{r:#?}");
    assert_eq!(lines[0]["result"]["handle"], 1);
    assert_eq!(lines[1]["result"], serde_json::json!(["aa"]));
    assert_eq!(lines[2]["result"], "a+");
    assert_eq!(lines[3]["ok"], true);
    assert_eq!(lines[4]["error"]["kind"], "stale_handle");
    assert_eq!(lines[5]["error"]["kind"], "python_exception");
    assert_eq!(lines[5]["error"]["type"], "ValueError");
    assert_eq!(lines[6]["error"]["kind"], "bad_argument");
    assert_eq!(lines[7]["result"], 3);
}
