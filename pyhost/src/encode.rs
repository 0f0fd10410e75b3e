//! Python objects to MessagePack, into the shared buffer: canonical values
//! as themselves, anything else as a handle (see
//! [`ffb_contract::wire::python`]).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use ffb_contract::wire::python::{
    EXT_BIG_INT, EXT_HANDLE, EXT_TUPLE, MAX_DEPTH, MAX_EXCEPTION_TEXT, MAX_TYPE_NAME,
    REPLY_EXCEPTION, REPLY_TOO_LARGE, REPLY_VALUE,
};

/// The next handle token. Tokens are never reused within a helper, so a
/// released token can never name a later object.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A reply being written into the shared buffer, refusing to go past it.
pub struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
    overflowed: bool,
}

impl io::Write for Writer<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.out.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
                Ok(bytes.len())
            }
            None => {
                self.overflowed = true;
                Err(io::ErrorKind::WriteZero.into())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a value could not be written.
enum Unwritable {
    /// Out of room: the reply is too large for the buffer.
    Full,
    /// A Python error while looking at the value.
    Python(PyErr),
    /// Nested deeper than the protocol allows (a list that contains itself).
    TooDeep,
}

impl From<io::Error> for Unwritable {
    fn from(_: io::Error) -> Self {
        Unwritable::Full
    }
}

impl From<rmp::encode::ValueWriteError> for Unwritable {
    fn from(_: rmp::encode::ValueWriteError) -> Self {
        Unwritable::Full
    }
}

impl From<PyErr> for Unwritable {
    fn from(e: PyErr) -> Self {
        Unwritable::Python(e)
    }
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut [u8]) -> Writer<'a> {
        Writer {
            out,
            len: 0,
            overflowed: false,
        }
    }

    /// The reply's length, or [`REPLY_TOO_LARGE`].
    pub fn finish(self) -> Result<i64, i64> {
        if self.overflowed {
            Err(REPLY_TOO_LARGE)
        } else {
            Ok(self.len as i64)
        }
    }

    /// `[REPLY_VALUE, value]`; if the value cannot be written, the
    /// exception that says why instead.
    pub fn value_reply(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) {
        let written = (|| -> Result<(), Unwritable> {
            rmp::encode::write_array_len(self, 2)?;
            rmp::encode::write_uint(self, REPLY_VALUE)?;
            self.value(py, value, 0)
        })();
        match written {
            Ok(()) | Err(Unwritable::Full) => {}
            Err(Unwritable::Python(e)) => self.restart_with(py, &e),
            Err(Unwritable::TooDeep) => {
                self.restart();
                self.exception(
                    "ValueError",
                    &format!("the result is nested deeper than {MAX_DEPTH} levels"),
                    "",
                );
            }
        }
    }

    /// `[REPLY_EXCEPTION, type, message, traceback]` for a Python error.
    pub fn python_exception(&mut self, py: Python<'_>, error: &PyErr) {
        let (kind, message, traceback) = describe(py, error);
        self.exception(&kind, &message, &traceback);
    }

    /// `[REPLY_EXCEPTION, type, message, traceback]`.
    pub fn exception(&mut self, kind: &str, message: &str, traceback: &str) {
        let _ = (|| -> Result<(), Unwritable> {
            rmp::encode::write_array_len(self, 4)?;
            rmp::encode::write_uint(self, REPLY_EXCEPTION)?;
            for text in [kind, message, traceback] {
                rmp::encode::write_str(self, cut(text, MAX_EXCEPTION_TEXT))?;
            }
            Ok(())
        })();
    }

    fn restart(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    fn restart_with(&mut self, py: Python<'_>, error: &PyErr) {
        self.restart();
        self.python_exception(py, error);
    }

    fn value(
        &mut self,
        py: Python<'_>,
        v: &Bound<'_, PyAny>,
        depth: usize,
    ) -> Result<(), Unwritable> {
        if depth > MAX_DEPTH {
            return Err(Unwritable::TooDeep);
        }
        if v.is_none() {
            rmp::encode::write_nil(self)?;
        } else if let Ok(b) = v.cast_exact::<PyBool>() {
            rmp::encode::write_bool(self, b.is_true())?;
        } else if let Ok(i) = v.cast_exact::<PyInt>() {
            self.int(i)?;
        } else if let Ok(f) = v.cast_exact::<PyFloat>() {
            rmp::encode::write_f64(self, f.value())?;
        } else if let Ok(s) = v.cast_exact::<PyString>() {
            match s.to_str() {
                Ok(text) => rmp::encode::write_str(self, text)?,
                // Lone surrogates have no UTF-8 form: such a str is not
                // canonical, and stays in the helper.
                Err(_) => self.handle(py, v)?,
            }
        } else if let Ok(b) = v.cast_exact::<PyBytes>() {
            rmp::encode::write_bin(self, b.as_bytes())?;
        } else if let Ok(list) = v.cast_exact::<PyList>() {
            rmp::encode::write_array_len(self, list.len() as u32)?;
            for item in list.iter() {
                self.value(py, &item, depth + 1)?;
            }
        } else if let Ok(tuple) = v.cast_exact::<PyTuple>() {
            rmp::encode::write_ext_meta(self, 0, EXT_TUPLE)?;
            rmp::encode::write_array_len(self, tuple.len() as u32)?;
            for item in tuple.iter() {
                self.value(py, &item, depth + 1)?;
            }
        } else if let Ok(dict) = v.cast_exact::<PyDict>() {
            rmp::encode::write_map_len(self, dict.len() as u32)?;
            for (key, item) in dict.iter() {
                self.value(py, &key, depth + 1)?;
                self.value(py, &item, depth + 1)?;
            }
        } else {
            self.handle(py, v)?;
        }
        Ok(())
    }

    fn int(&mut self, i: &Bound<'_, PyInt>) -> Result<(), Unwritable> {
        if let Ok(n) = i.extract::<i64>() {
            rmp::encode::write_sint(self, n)?;
        } else if let Ok(n) = i.extract::<u64>() {
            rmp::encode::write_uint(self, n)?;
        } else {
            let bits: usize = i.call_method0("bit_length")?.extract()?;
            let len = bits / 8 + 1;
            let kwargs = PyDict::new(i.py());
            kwargs.set_item("signed", true)?;
            let bytes = i.call_method("to_bytes", (len, "little"), Some(&kwargs))?;
            let bytes = bytes.cast_exact::<PyBytes>().map_err(PyErr::from)?;
            let bytes = bytes.as_bytes();
            let len = u32::try_from(bytes.len()).map_err(|_| Unwritable::Full)?;
            rmp::encode::write_ext_meta(self, len, EXT_BIG_INT)?;
            io::Write::write_all(self, bytes)?;
        }
        Ok(())
    }

    /// Keeps the object in the handle table and writes its token.
    fn handle(&mut self, py: Python<'_>, v: &Bound<'_, PyAny>) -> Result<(), Unwritable> {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        py.import("_ffb")?.getattr("handles")?.set_item(token, v)?;
        let name = type_name(v);
        let name = cut(&name, MAX_TYPE_NAME);
        let len = 8 + name.len() as u32;
        rmp::encode::write_ext_meta(self, len, EXT_HANDLE)?;
        io::Write::write_all(self, &token.to_le_bytes())?;
        io::Write::write_all(self, name.as_bytes())?;
        Ok(())
    }
}

/// `module.qualname` of an object's type (just `qualname` for builtins).
fn type_name(v: &Bound<'_, PyAny>) -> String {
    let ty = v.get_type();
    let qualname = ty
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "?".into());
    match ty.module().map(|m| m.to_string()) {
        Ok(m) if m != "builtins" => format!("{m}.{qualname}"),
        _ => qualname,
    }
}

/// An exception's type name, message and traceback, each bounded; the
/// helper's own module formats them, and a failure to is said in words.
fn describe(py: Python<'_>, error: &PyErr) -> (String, String, String) {
    let value = error.value(py);
    if let Some(tb) = error.traceback(py) {
        let _ = value.setattr("__traceback__", tb);
    }
    py.import("_ffb")
        .and_then(|m| m.call_method1("describe", (value, MAX_EXCEPTION_TEXT)))
        .and_then(|t| t.extract::<(String, String, String)>())
        .unwrap_or_else(|_| {
            (
                "<unprintable exception>".into(),
                String::new(),
                String::new(),
            )
        })
}

/// `text` cut to at most `limit` bytes, at a character boundary.
fn cut(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
