//! Starting the interpreter: an isolated configuration with exactly the
//! host's search path, then the host's own module and the allowlist, then
//! the pre-imports.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyModule};

use crate::encode::Writer;
use ffb_contract::wire::python::INIT_FAILED;

/// The host's own module, run once before anything of the user's.
const BOOTSTRAP: &str = include_str!("bootstrap.py");

/// What the host asks the interpreter to start with (see the init request in
/// [`ffb_contract::wire::python`]).
pub struct Config {
    executable: CString,
    search_path: Vec<CString>,
    allowed: Vec<String>,
    preimport: Vec<String>,
    stdlib: Vec<String>,
}

impl Config {
    /// Reads the init request; `None` if it is not one.
    pub fn decode(mut input: &[u8]) -> Option<Config> {
        if rmp::decode::read_array_len(&mut input).ok()? != 5 {
            return None;
        }
        let executable = CString::new(read_str(&mut input)?).ok()?;
        let mut strings = || -> Option<Vec<String>> {
            let n = rmp::decode::read_array_len(&mut input).ok()?;
            (0..n)
                .map(|_| read_str(&mut input).map(str::to_string))
                .collect()
        };
        let search_path = strings()?
            .into_iter()
            .map(CString::new)
            .collect::<Result<_, _>>()
            .ok()?;
        let allowed = strings()?;
        let preimport = strings()?;
        let stdlib = strings()?;
        Some(Config {
            executable,
            search_path,
            allowed,
            preimport,
            stdlib,
        })
    }
}

/// A MessagePack str at the front of `input`, borrowed from it.
fn read_str<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let len = rmp::decode::read_str_len(input).ok()? as usize;
    if len > input.len() {
        return None;
    }
    let (text, rest) = input.split_at(len);
    *input = rest;
    std::str::from_utf8(text).ok()
}

/// Starts the interpreter and writes the init reply into `out`: the
/// reply's length, or a negative code.
pub fn start(config: &Config, out: &mut [u8]) -> Result<i64, i64> {
    // SAFETY: called once per process (`ffb_py_init` refuses a second
    // call), before any other Python API; every pointer passed is a live
    // local or one the PyConfig API itself returned.
    if let Err(message) = unsafe { initialize(config) } {
        let mut w = Writer::new(out);
        w.exception("ffb.InterpreterStartFailed", &message, "");
        return w.finish().map_or(Err(INIT_FAILED), |_| Err(INIT_FAILED));
    }
    let reply = Python::attach(|py| -> Result<i64, i64> {
        let mut w = Writer::new(out);
        match bootstrap(py, config) {
            Ok(version) => w.value_reply(py, version.as_any()),
            Err(e) => w.python_exception(py, &e),
        }
        w.finish()
    });
    // The main thread gives the GIL up, so that every later call (and any
    // thread an extension starts) takes it the ordinary way.
    // SAFETY: this thread holds the GIL since Py_InitializeFromConfig, and
    // `attach` above has returned it to that state; the thread state is
    // kept by the interpreter for PyGILState_Ensure to find.
    unsafe { ffi::PyEval_SaveThread() };
    reply
}

/// Py_InitializeFromConfig with an isolated configuration.
///
/// # Safety
/// As for [`start`].
unsafe fn initialize(config: &Config) -> Result<(), String> {
    let mut raw = MaybeUninit::<ffi::PyConfig>::uninit();
    // SAFETY: PyConfig_InitIsolatedConfig fills in every field of the struct.
    unsafe { ffi::PyConfig_InitIsolatedConfig(raw.as_mut_ptr()) };
    // SAFETY: initialized just above.
    let c = unsafe { raw.assume_init_mut() };
    // No site (the host gives the whole path), no signal handlers (the
    // helper keeps every signal at its default), no bytecode files (nothing
    // is writable anyway), no warnings about the path.
    c.site_import = 0;
    c.user_site_directory = 0;
    c.install_signal_handlers = 0;
    c.write_bytecode = 0;
    c.pathconfig_warnings = 0;
    c.module_search_paths_set = 1;
    let result = (|| {
        let executable = &mut c.executable as *mut *mut libc::wchar_t;
        // SAFETY: `c` is an initialized config and the string is a live C string.
        check(unsafe { ffi::PyConfig_SetBytesString(c, executable, config.executable.as_ptr()) })?;
        let program = &mut c.program_name as *mut *mut libc::wchar_t;
        // SAFETY: as above.
        check(unsafe { ffi::PyConfig_SetBytesString(c, program, config.executable.as_ptr()) })?;
        for entry in &config.search_path {
            // SAFETY: a live C string; the result is freed below.
            let wide = unsafe { ffi::Py_DecodeLocale(entry.as_ptr(), std::ptr::null_mut()) };
            if wide.is_null() {
                return Err(format!("cannot decode search path entry {entry:?}"));
            }
            // SAFETY: `wide` is a wide string Py_DecodeLocale made; the list
            // copies it.
            let status = unsafe { ffi::PyWideStringList_Append(&mut c.module_search_paths, wide) };
            // SAFETY: Py_DecodeLocale's result is freed with PyMem_RawFree.
            unsafe { ffi::PyMem_RawFree(wide.cast()) };
            check(status)?;
        }
        // SAFETY: `c` is fully configured.
        check(unsafe { ffi::Py_InitializeFromConfig(c) })
    })();
    // SAFETY: `c` was initialized by PyConfig_InitIsolatedConfig; the
    // interpreter copied what it needs.
    unsafe { ffi::PyConfig_Clear(c) };
    result
}

/// A PyStatus as a Result.
fn check(status: ffi::PyStatus) -> Result<(), String> {
    // SAFETY: PyStatus_Exception only reads the status value.
    if unsafe { ffi::PyStatus_Exception(status) } == 0 {
        return Ok(());
    }
    let message = if status.err_msg.is_null() {
        "the interpreter did not start".to_string()
    } else {
        // SAFETY: a set err_msg is a static C string of the interpreter's.
        unsafe { CStr::from_ptr(status.err_msg) }
            .to_string_lossy()
            .into_owned()
    };
    Err(message)
}

/// Runs the host's module, installs the allowlist, pre-imports; returns
/// `sys.version`.
fn bootstrap<'py>(py: Python<'py>, config: &Config) -> PyResult<Bound<'py, PyAny>> {
    let code = CString::new(BOOTSTRAP).expect("the bootstrap has no NUL");
    let module = PyModule::from_code(py, &code, c"<ffb bootstrap>", c"_ffb")?;
    module.call_method1(
        "install",
        (
            PyList::new(py, &config.allowed)?,
            PyList::new(py, &config.stdlib)?,
        ),
    )?;
    for name in &config.preimport {
        py.import(name.as_str())?;
    }
    py.import("sys")?.getattr("version")
}
