//! One request: read it whole, release what it lists, run it, write the
//! reply.

use pyo3::prelude::*;
use std::sync::Mutex;

use pyo3::types::{PyDict, PyString, PyTuple};

use crate::decode::{DecodeError, Reader};
use crate::encode::Writer;
use ffb_contract::wire::python::{BAD_REQUEST, OP_CALL, OP_CALL_METHOD, OP_GET_ATTR, OP_RELEASE};

/// What a request asks for, with its values already Python objects.
enum Action<'py> {
    Call {
        module: Bound<'py, PyString>,
        function: Bound<'py, PyString>,
        args: Bound<'py, PyTuple>,
        kwargs: Bound<'py, PyDict>,
    },
    CallMethod {
        target: Bound<'py, PyAny>,
        method: Bound<'py, PyString>,
        args: Bound<'py, PyTuple>,
        kwargs: Bound<'py, PyDict>,
    },
    GetAttr {
        target: Bound<'py, PyAny>,
        name: Bound<'py, PyString>,
    },
    Release,
}

/// Serves the request in `buffer[..len]` and writes the reply into
/// `buffer[..cap]`: the reply's length, or a negative code.
///
/// # Safety
/// `buffer` must be valid for reads of `len` and writes of `cap` bytes, and
/// untouched by anything else during the call.
pub unsafe fn serve(buffer: *mut u8, len: u64, cap: u64) -> i64 {
    Python::attach(|py| {
        // SAFETY: the caller guarantees `len` readable bytes; the slice is
        // dropped (with everything borrowed from it copied into Python
        // objects) before the reply is written below.
        let input = unsafe { crate::slice(buffer, len) };
        let read = read_request(py, input);
        let result = match read {
            Ok((releases, action)) => {
                release(py, &releases);
                run(py, action).map_err(Some)
            }
            Err(DecodeError::Malformed) => return BAD_REQUEST,
            Err(DecodeError::Python(e)) => Err(Some(e)),
        };
        // SAFETY: the caller guarantees `cap` writable bytes, and nothing
        // borrowed from the request is alive any more.
        let out = unsafe { crate::slice_mut(buffer, cap) };
        let mut w = Writer::new(out);
        match result {
            Ok(value) => w.value_reply(py, &value),
            Err(Some(e)) => w.python_exception(py, &e),
            Err(None) => {}
        }
        w.finish().unwrap_or_else(|code| code)
    })
}

/// The tokens to release and the action, with the module, function and
/// method names copied into Python strings (the input is the shared
/// buffer, which the reply overwrites).
fn read_request<'py>(
    py: Python<'py>,
    input: &[u8],
) -> Result<(Vec<u64>, Action<'py>), DecodeError> {
    let mut r = Reader::new(input);
    let items = r.array()?;
    let op = r.uint()?;
    let n = r.array()?;
    let mut releases = Vec::with_capacity(n);
    for _ in 0..n {
        releases.push(r.uint()?);
    }
    let name = |r: &mut Reader<'_>| -> Result<Bound<'py, PyString>, DecodeError> {
        Ok(interned(py, r.str()?))
    };
    let action = match (op, items) {
        (OP_CALL, 6) => {
            let module = name(&mut r)?;
            let function = name(&mut r)?;
            let (args, kwargs) = arguments(py, &mut r)?;
            Action::Call {
                module,
                function,
                args,
                kwargs,
            }
        }
        (OP_CALL_METHOD, 6) => {
            let target = r.value(py, 0)?;
            let method = name(&mut r)?;
            let (args, kwargs) = arguments(py, &mut r)?;
            Action::CallMethod {
                target,
                method,
                args,
                kwargs,
            }
        }
        (OP_GET_ATTR, 4) => {
            let target = r.value(py, 0)?;
            let name = name(&mut r)?;
            Action::GetAttr { target, name }
        }
        (OP_RELEASE, 2) => Action::Release,
        _ => return Err(DecodeError::Malformed),
    };
    if !r.is_done() {
        return Err(DecodeError::Malformed);
    }
    Ok((releases, action))
}

/// `args` (an array, as a tuple) and `kwargs` (a map with str keys).
fn arguments<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
) -> Result<(Bound<'py, PyTuple>, Bound<'py, PyDict>), DecodeError> {
    let args = r.value(py, 0)?;
    let args = args
        .cast_exact::<pyo3::types::PyList>()
        .map_err(|_| DecodeError::Malformed)?;
    let args = PyTuple::new(py, args.iter())?;
    let kwargs = r.value(py, 0)?;
    let kwargs = kwargs
        .cast_into_exact::<PyDict>()
        .map_err(|_| DecodeError::Malformed)?;
    Ok((args, kwargs))
}

extern "C" {
    /// CPython's own (3.7 and later); pyo3's bindings skip it.
    fn PyImport_GetModule(name: *mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject;
}

/// `sys.modules[name]`, if it is there: no import machinery, no lock.
fn loaded_module<'py>(py: Python<'py>, name: &Bound<'py, PyString>) -> Option<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held (`py`), and `name` is a live str;
    // PyImport_GetModule returns a new reference or NULL.
    let module = unsafe { PyImport_GetModule(name.as_ptr()) };
    if module.is_null() {
        // NULL with or without an error set: either way, import it.
        let _ = PyErr::take(py);
        return None;
    }
    // SAFETY: a non-null new reference, owned from here on.
    Some(unsafe { Bound::from_owned_ptr(py, module) })
}

/// `f(*args, **kwargs)`, without a keyword dict when there are none.
fn call<'py>(
    f: Bound<'py, PyAny>,
    args: Bound<'py, PyTuple>,
    kwargs: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    if kwargs.is_empty() {
        f.call1(args)
    } else {
        f.call(args, Some(&kwargs))
    }
}

/// The most names [`interned`] keeps.
const MAX_INTERNED: usize = 256;

/// Module, function and method names seen so far, as Python strings: a
/// hot call names the same ones each time, and making them again would
/// cost more than the call.
static NAMES: Mutex<Vec<Interned>> = Mutex::new(Vec::new());

/// A name's UTF-8 bytes and its Python string.
type Interned = (Box<[u8]>, Py<PyString>);

/// `text` as an interned Python string, made once.
fn interned<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyString> {
    let Ok(mut names) = NAMES.lock() else {
        return PyString::intern(py, text);
    };
    if let Some((_, s)) = names.iter().find(|(k, _)| **k == *text.as_bytes()) {
        return s.bind(py).clone();
    }
    let s = PyString::intern(py, text);
    if names.len() < MAX_INTERNED {
        names.push((text.as_bytes().into(), s.clone().unbind()));
    }
    s
}

/// Drops the listed handles (their `__del__` runs here, inside the call).
fn release(py: Python<'_>, tokens: &[u64]) {
    if tokens.is_empty() {
        return;
    }
    if let Ok(handles) = py.import("_ffb").and_then(|m| m.getattr("handles")) {
        for token in tokens {
            let _ = handles.call_method1("pop", (token, py.None()));
        }
    }
}

fn run<'py>(py: Python<'py>, action: Action<'py>) -> PyResult<Bound<'py, PyAny>> {
    match action {
        Action::Call {
            module,
            function,
            args,
            kwargs,
        } => {
            let module = match loaded_module(py, &module) {
                Some(m) => m,
                None => py.import(&module)?.into_any(),
            };
            call(module.getattr(&function)?, args, kwargs)
        }
        Action::CallMethod {
            target,
            method,
            args,
            kwargs,
        } => call(target.getattr(&method)?, args, kwargs),
        Action::GetAttr { target, name } => target.getattr(&name),
        Action::Release => Ok(py.None().into_bound(py)),
    }
}
