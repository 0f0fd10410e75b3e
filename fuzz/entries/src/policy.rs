//! The policy parsers (TOML, seccompiler JSON, Docker/OCI JSON) and the
//! manifest parser. A policy that parses must also compile to BPF, or be
//! refused with an error: never a panic, in the parser, the compiler or the
//! error's own formatting (positions are byte offsets into the text).

use ffb_policy::manifest::Manifest;
use ffb_policy::sandbox::SandboxPolicy;
use ffb_policy::source::{import_docker, import_seccompiler, toml::parse_toml_policy_for};

/// Where the fuzzed files claim to live: a directory that does not exist, so
/// a relative `import` or `policy` path names nothing readable.
const DIR: &str = "/nonexistent-ffb-fuzz";
/// The kernel an OCI profile is evaluated for, when the input names none.
const KERNEL: (u32, u32) = (6, 18);

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Compiles a policy that parsed, and formats whatever error comes back.
fn compile(result: Result<SandboxPolicy, impl std::fmt::Display>) {
    match result {
        Ok(policy) => {
            if let Err(e) = policy.compile() {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty(), "an empty error message");
        }
    }
}

/// A TOML policy.
pub fn policy_toml(data: &[u8]) {
    let Some(text) = text(data) else { return };
    compile(parse_toml_policy_for(
        text,
        &format!("{DIR}/policy.toml"),
        KERNEL,
    ));
}

/// A seccompiler JSON filter.
pub fn policy_seccompiler(data: &[u8]) {
    let Some(text) = text(data) else { return };
    compile(import_seccompiler(text, &format!("{DIR}/filter.json")));
}

/// A Docker/OCI seccomp profile, evaluated for the kernel the first two
/// bytes name when they are not JSON (`{` starts every profile).
pub fn policy_oci(data: &[u8]) {
    let (kernel, json) = match data {
        [major, minor, rest @ ..] if *major != b'{' && !major.is_ascii_whitespace() => {
            ((u32::from(*major % 8), u32::from(*minor % 32)), rest)
        }
        _ => (KERNEL, data),
    };
    let Some(text) = text(json) else { return };
    compile(import_docker(text, &format!("{DIR}/profile.json"), kernel));
}

/// A library manifest; one that parses answers every question the bridge
/// and `ffb describe` ask of it.
pub fn manifest(data: &[u8]) {
    let Some(text) = text(data) else { return };
    match Manifest::parse(text, &format!("{DIR}/lib.toml")) {
        Ok(m) => {
            let _ = m.policy_spec();
            for f in &m.functions {
                assert!(
                    m.function(f.name()).is_some(),
                    "{} is not found by name",
                    f.name()
                );
                let _ = f.handle_slots();
                for (i, _) in f.pointer_args() {
                    assert!(f.signature.args[i].is_pointer());
                }
                for &r in &f.retained {
                    assert!(
                        r < f.signature.args.len(),
                        "retained position {r} out of range"
                    );
                }
            }
            for h in &m.handles {
                assert!(m.handle(&h.name).is_some());
            }
            let _ = m.unknown_function("no_such_function_x");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
