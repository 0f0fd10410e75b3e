//! Python bridges for the tests: the freshly built shim and Python host,
//! the tests' own modules (`tests/python/modules`) and hostile extension
//! module (`FFB_PY_EXT_DIR`) as module paths, and the project's `.venv`.

use std::path::PathBuf;
use std::time::Duration;

use ffb_loader::python::{PyBridge, PyBridgeBuilder};
use ffb_loader::BridgeMode;

use crate::{shim_bin, target_dir};

/// `target_dir()/libffb_pyhost.so`.
///
/// # Panics
/// If it has not been built, saying how to build it.
pub fn pyhost_lib() -> PathBuf {
    let path = target_dir().join("libffb_pyhost.so");
    assert!(
        path.is_file(),
        "libffb_pyhost.so not found at {}: run `cargo build --workspace --bins --lib` (scripts/test.sh does this) before the tests",
        path.display()
    );
    path
}

/// The project's virtual environment's interpreter (`.venv/bin/python`).
///
/// # Panics
/// If `scripts/python.sh` has not made it.
pub fn venv_python() -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/python.sh (scripts/test.sh does) to make the project's .venv with numpy, pandas, pyarrow and psycopg2",
        path.display()
    );
    path
}

/// The tests' own Python modules (`ffb_pytest`).
pub fn test_modules() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/python/modules"))
}

/// Where the hostile extension module `ffb_hostile_ext` was built.
pub fn hostile_extension_dir() -> PathBuf {
    PathBuf::from(env!("FFB_PY_EXT_DIR"))
}

/// A builder with the test shim and host, bridge mode on, the test modules
/// and the hostile extension on the path, and a timeout generous enough
/// for a loaded machine.
pub fn py_builder() -> PyBridgeBuilder {
    PyBridge::builder()
        .bridge_mode(BridgeMode::Enabled)
        .shim(shim_bin())
        .pyhost(pyhost_lib())
        .module_path(test_modules())
        .module_path(hostile_extension_dir())
        .timeout(Duration::from_secs(60))
}

/// [`py_builder`] with the system interpreter, started.
pub fn py() -> PyBridge {
    py_builder().build().expect("start a Python bridge")
}
