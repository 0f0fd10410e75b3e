//! Compiles the C fixtures in `fixtures/` into real shared libraries in
//! `OUT_DIR` and exports their paths to the crate (lib and integration
//! tests) as `FFB_FIXTURE_LIB`, `FFB_HOSTILE_LIB`, `FFB_ATTACK_ROUTES_LIB`,
//! `FFB_ATTACK_PROCESS_LIB`, `FFB_ATTACK_IMPORTED_LIB`,
//! `FFB_ATTACK_CONNECT_LIB` (races against the connect broker) and
//! `FFB_FAKE_CLIENT_LIB` (a compromised database client library).
//!
//! The compiler is found with the `cc` crate's detection (so `CC`,
//! `CFLAGS`, cross targets etc. are honoured), but it is invoked directly
//! to link a `.so` rather than the static archive `cc` would produce.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (library stem, source file, env var exported to the crate)
const LIBS: &[(&str, &str, &str)] = &[
    ("ffb_fixture", "fixtures/ffb_fixture.c", "FFB_FIXTURE_LIB"),
    ("ffb_hostile", "fixtures/ffb_hostile.c", "FFB_HOSTILE_LIB"),
    (
        "ffb_attack_routes",
        "fixtures/ffb_attack_routes.c",
        "FFB_ATTACK_ROUTES_LIB",
    ),
    (
        "ffb_attack_process",
        "fixtures/ffb_attack_process.c",
        "FFB_ATTACK_PROCESS_LIB",
    ),
    (
        "ffb_attack_imported",
        "fixtures/ffb_attack_imported.c",
        "FFB_ATTACK_IMPORTED_LIB",
    ),
    (
        "ffb_attack_connect",
        "fixtures/ffb_attack_connect.c",
        "FFB_ATTACK_CONNECT_LIB",
    ),
    (
        "ffb_fake_client",
        "fixtures/ffb_fake_client.c",
        "FFB_FAKE_CLIENT_LIB",
    ),
];

/// Headers the sources include; a change to any of them rebuilds both.
const HEADERS: &[&str] = &["fixtures/ffb_fixture.h", "fixtures/ffb_hostile.h"];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    println!("cargo:rerun-if-changed=build.rs");
    for h in HEADERS {
        println!("cargo:rerun-if-changed={h}");
    }

    // Probe once; `cc` reads TARGET/HOST/OPT_LEVEL etc. from cargo's env.
    // Not the host's RUSTFLAGS: a sanitizer build of the host (ASan) must not
    // instrument the fixtures, which the uninstrumented helper loads.
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .inherit_rustflags(false)
        .get_compiler();

    for (stem, src, var) in LIBS {
        println!("cargo:rerun-if-changed={src}");
        let src_path = manifest_dir.join(src);
        let out = out_dir.join(format!("lib{stem}.so"));
        compile(&compiler, &src_path, &out);
        println!("cargo:rustc-env={var}={}", out.display());
    }
    python_extension(&compiler, &manifest_dir, &out_dir);
}

/// The hostile CPython extension module, built against the system's Python
/// 3.11 headers into `OUT_DIR/pyext`, exported as `FFB_PY_EXT_DIR` (a
/// `--module-path` for the tests). Without the headers, the build fails
/// naming the package to install.
fn python_extension(compiler: &cc::Tool, manifest_dir: &Path, out_dir: &Path) {
    let src = manifest_dir.join("python/ffb_hostile_ext.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let include = Path::new("/usr/include/python3.11");
    if !include.join("Python.h").is_file() {
        panic!(
            "ffb-tests: {}/Python.h is missing: install python3.11-dev (the hostile extension module is built against it)",
            include.display()
        );
    }
    let dir = out_dir.join("pyext");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/pyext");
    let out = dir.join("ffb_hostile_ext.cpython-311-x86_64-linux-gnu.so");
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-shared", "-fPIC", "-O1", "-g", "-Wall", "-Werror"])
        .arg(format!("-I{}", include.display()))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .arg("-lpthread");
    let output = cmd.output().unwrap_or_else(|e| {
        panic!(
            "ffb-tests: could not run the C compiler for {}: {e}",
            src.display()
        )
    });
    if !output.status.success() {
        panic!(
            "ffb-tests: failed to compile {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("cargo:rustc-env=FFB_PY_EXT_DIR={}", dir.display());
}

fn compile(compiler: &cc::Tool, src: &Path, out: &Path) {
    let mut cmd: Command = compiler.to_command();
    cmd.args([
        "-shared", "-fPIC", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o",
    ])
    .arg(out)
    .arg(src)
    .arg("-lpthread");
    // Program and arguments only (`{cmd:?}` would also dump the whole env).
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!(
            "ffb-tests: could not run the C compiler {:?} to build fixture {}: {e}\n  command: {shown}",
            compiler.path(),
            src.display()
        ),
    };
    if !output.status.success() {
        panic!(
            "ffb-tests: failed to compile C fixture {} into {} ({})\n  command: {shown}\n--- compiler stdout ---\n{}\n--- compiler stderr ---\n{}",
            src.display(),
            out.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    // Surface any (non-fatal) compiler chatter in cargo's build output.
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        println!("cargo:warning={line}");
    }
}
