//! Which CPython a Python helper embeds: its version, its libpython, its
//! standard library and its environment's site-packages, found by asking the
//! interpreter itself with `-I -S` (isolated, no `site`: nothing of the
//! environment's own runs on the host) under a timeout.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// The CPython version the Python host (`pyhost/`) is built for: its ABI is
/// the only one it can embed.
pub const PYTHON_VERSION: (u32, u32) = (3, 11);

/// The interpreter used when none is given.
pub const DEFAULT_PYTHON: &str = "/usr/bin/python3.11";

/// How long the probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most the probe may print.
const MAX_PROBE_OUTPUT: u64 = 1 << 20;

/// Prints what the host needs as one JSON object. A virtual environment is
/// recognized by its `pyvenv.cfg` (as `site` would, without running it).
const PROBE: &str = r#"
import json, os, sys, sysconfig
exe = os.path.abspath(sys.executable)
root = os.path.dirname(os.path.dirname(exe))
site = []
if os.path.isfile(os.path.join(root, "pyvenv.cfg")):
    site.append(os.path.join(root, "lib", "python%d.%d" % sys.version_info[:2], "site-packages"))
else:
    site += [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
cv = sysconfig.get_config_var
print(json.dumps({
    "version": list(sys.version_info[:3]),
    "executable": exe,
    "libdirs": [d for d in (cv("LIBDIR"), os.path.join(cv("LIBDIR") or "", cv("MULTIARCH") or ""), sys.base_prefix + "/lib") if d],
    "soname": cv("INSTSONAME") or "",
    "path": [p for p in sys.path if p],
    "site": site,
    "stdlib_modules": sorted(sys.stdlib_module_names),
}))
"#;

#[derive(Deserialize)]
struct Probe {
    version: Vec<u32>,
    executable: String,
    libdirs: Vec<String>,
    soname: String,
    path: Vec<String>,
    site: Vec<String>,
    stdlib_modules: Vec<String>,
}

/// A CPython installation a Python helper can embed.
#[derive(Clone, Debug)]
pub struct Interpreter {
    /// `sys.executable`.
    pub executable: PathBuf,
    /// `sys.version_info[:3]`.
    pub version: (u32, u32, u32),
    /// The shared libpython the helper preloads.
    pub libpython: PathBuf,
    /// The standard library's entries of `sys.path` that exist.
    pub stdlib_path: Vec<PathBuf>,
    /// The environment's site-packages directories that exist.
    pub site_packages: Vec<PathBuf>,
    /// `sys.stdlib_module_names`.
    pub stdlib_modules: Vec<String>,
}

impl Interpreter {
    /// Asks the interpreter at `python` what it is. Refuses anything that is
    /// not a CPython [`PYTHON_VERSION`] with a shared libpython, naming
    /// `python` and what is wrong, with `bad_argument`.
    pub fn probe(python: &Path) -> Result<Interpreter> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::BadArgument,
                format!("--python {}: {why}", python.display()),
            )
        };
        match std::fs::metadata(python) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(bad("not a file".into())),
            Err(e) => return Err(bad(ffb_policy::files::os_error(&e))),
        }
        let text = run_probe(python).map_err(bad)?;
        let probe: Probe = serde_json::from_str(&text).map_err(|_| {
            bad("not a CPython interpreter (its answer to the probe is not ffb's)".into())
        })?;
        let version = match probe.version[..] {
            [a, b, c] => (a, b, c),
            _ => return Err(bad("reported no version".into())),
        };
        if (version.0, version.1) != PYTHON_VERSION {
            return Err(bad(format!(
                "is Python {}.{}.{}, and ffb's Python host is built for {}.{}",
                version.0, version.1, version.2, PYTHON_VERSION.0, PYTHON_VERSION.1
            )));
        }
        let soname = if probe.soname.ends_with(".a") || probe.soname.is_empty() {
            format!("libpython{}.{}.so.1.0", version.0, version.1)
        } else {
            probe.soname.clone()
        };
        let libpython = probe
            .libdirs
            .iter()
            .map(|d| Path::new(d).join(&soname))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                bad(format!(
                    "has no shared {soname} (looked in {})",
                    probe.libdirs.join(", ")
                ))
            })?;
        let libpython = std::fs::canonicalize(&libpython).unwrap_or(libpython);
        let existing = |paths: &[String]| -> Vec<PathBuf> {
            let mut out: Vec<PathBuf> = Vec::new();
            for p in paths.iter().map(PathBuf::from).filter(|p| p.exists()) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            out
        };
        Ok(Interpreter {
            executable: PathBuf::from(probe.executable),
            version,
            libpython,
            stdlib_path: existing(&probe.path),
            site_packages: existing(&probe.site),
            stdlib_modules: probe.stdlib_modules,
        })
    }

    /// [`DEFAULT_PYTHON`], probed.
    pub fn system() -> Result<Interpreter> {
        Interpreter::probe(Path::new(DEFAULT_PYTHON))
    }
}

/// Runs the probe with an empty environment, a bounded output and a
/// timeout; its stdout, or why not.
fn run_probe(python: &Path) -> std::result::Result<String, String> {
    let mut child = Command::new(python)
        .args(["-I", "-S", "-c", PROBE])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it: {}", ffb_policy::files::os_error(&e)))?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.take(MAX_PROBE_OUTPUT).read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(format!(
                    "did not answer within {} s",
                    PROBE_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
    };
    let text = reader.join().unwrap_or_default();
    if !status.success() {
        return Err("not a CPython interpreter (the probe failed)".into());
    }
    Ok(text)
}
