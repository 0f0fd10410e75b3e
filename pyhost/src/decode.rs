//! MessagePack to Python objects: the canonical values of
//! [`ffb_contract::wire::python`], with handles looked up in the table.
//!
//! The bytes come from the host, but they are read as carefully as if they
//! did not: every length is checked against what is left before anything is
//! read, nothing is allocated from a length alone, and nesting is bounded.

use pyo3::exceptions::PyLookupError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyNone, PyString, PyTuple};

use ffb_contract::wire::python::{EXT_BIG_INT, EXT_HANDLE, EXT_TUPLE, MAX_DEPTH};

/// Why a request could not be read.
pub enum DecodeError {
    /// Not a document of this protocol: the host answers `protocol`.
    Malformed,
    /// A well-formed document naming something the interpreter refuses (a
    /// handle no longer in the table): an exception reply.
    Python(PyErr),
}

impl From<std::convert::Infallible> for DecodeError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<PyErr> for DecodeError {
    fn from(e: PyErr) -> Self {
        DecodeError::Python(e)
    }
}

/// A cursor over a MessagePack document.
pub struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input }
    }

    /// Whether every byte has been read.
    pub fn is_done(&self) -> bool {
        self.input.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.input.len() {
            return Err(DecodeError::Malformed);
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A length that must fit in what is left, each item taking at least
    /// `min_item` bytes.
    fn count(&mut self, width: usize, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.be(width)? as usize;
        self.fits(n, min_item)
    }

    fn fits(&self, n: usize, min_item: usize) -> Result<usize, DecodeError> {
        if n.saturating_mul(min_item) > self.input.len() {
            return Err(DecodeError::Malformed);
        }
        Ok(n)
    }

    /// An array header; its item count.
    pub fn array(&mut self) -> Result<usize, DecodeError> {
        match self.byte()? {
            b @ 0x90..=0x9f => self.fits(usize::from(b & 0x0f), 1),
            0xdc => self.count(2, 1),
            0xdd => self.count(4, 1),
            _ => Err(DecodeError::Malformed),
        }
    }

    /// An unsigned integer.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        match self.byte()? {
            b @ 0x00..=0x7f => Ok(u64::from(b)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => Err(DecodeError::Malformed),
        }
    }

    /// A str, borrowed from the document.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = match self.byte()? {
            b @ 0xa0..=0xbf => usize::from(b & 0x1f),
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return Err(DecodeError::Malformed),
        };
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::Malformed)
    }

    /// Any canonical value (or handle) as a Python object.
    pub fn value<'py>(
        &mut self,
        py: Python<'py>,
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::Malformed);
        }
        let marker = *self.input.first().ok_or(DecodeError::Malformed)?;
        if matches!(marker, 0xa0..=0xbf | 0xd9..=0xdb) {
            return Ok(PyString::new(py, self.str()?).into_any());
        }
        if matches!(marker, 0x90..=0x9f | 0xdc | 0xdd) {
            let n = self.array()?;
            let list = PyList::empty(py);
            for _ in 0..n {
                list.append(self.value(py, depth + 1)?)?;
            }
            return Ok(list.into_any());
        }
        self.byte()?;
        let any = match marker {
            0x00..=0x7f => (marker as i64).into_pyobject(py)?.into_any(),
            0xe0..=0xff => (marker as i8 as i64).into_pyobject(py)?.into_any(),
            0xc0 => PyNone::get(py).to_owned().into_any(),
            0xc2 => PyBool::new(py, false).to_owned().into_any(),
            0xc3 => PyBool::new(py, true).to_owned().into_any(),
            0xcc..=0xcf => {
                let n = self.be(1 << (marker - 0xcc))?;
                n.into_pyobject(py)?.into_any()
            }
            0xd0..=0xd3 => {
                let width = 1usize << (marker - 0xd0);
                let raw = self.be(width)?;
                let shift = 64 - 8 * width as u32;
                (((raw << shift) as i64) >> shift)
                    .into_pyobject(py)?
                    .into_any()
            }
            0xca => PyFloat::new(py, f64::from(f32::from_bits(self.be(4)? as u32))).into_any(),
            0xcb => PyFloat::new(py, f64::from_bits(self.be(8)?)).into_any(),
            0xc4..=0xc6 => {
                let len = self.be(1 << (marker - 0xc4))? as usize;
                PyBytes::new(py, self.take(len)?).into_any()
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let n = match marker {
                    0xde => self.count(2, 2)?,
                    0xdf => self.count(4, 2)?,
                    _ => self.fits(usize::from(marker & 0x0f), 2)?,
                };
                let dict = PyDict::new(py);
                for _ in 0..n {
                    let key = self.value(py, depth + 1)?;
                    let item = self.value(py, depth + 1)?;
                    dict.set_item(key, item)?;
                }
                dict.into_any()
            }
            0xd4..=0xd8 | 0xc7..=0xc9 => {
                let len = match marker {
                    0xd4..=0xd8 => 1usize << (marker - 0xd4),
                    _ => self.be(1 << (marker - 0xc7))? as usize,
                };
                let kind = self.byte()? as i8;
                let payload = self.take(len)?;
                self.ext(py, kind, payload, depth)?
            }
            _ => return Err(DecodeError::Malformed),
        };
        Ok(any)
    }

    fn ext<'py>(
        &mut self,
        py: Python<'py>,
        kind: i8,
        payload: &[u8],
        depth: usize,
    ) -> Result<Bound<'py, PyAny>, DecodeError> {
        match kind {
            EXT_BIG_INT if !payload.is_empty() => {
                let bytes = PyBytes::new(py, payload);
                let kwargs = PyDict::new(py);
                kwargs.set_item("signed", true)?;
                Ok(py.get_type::<PyInt>().call_method(
                    "from_bytes",
                    (bytes, "little"),
                    Some(&kwargs),
                )?)
            }
            EXT_TUPLE if payload.is_empty() => {
                let n = self.array()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(py, depth + 1)?);
                }
                Ok(PyTuple::new(py, items)?.into_any())
            }
            EXT_HANDLE if payload.len() >= 8 => {
                let token = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                let handles = py.import("_ffb")?.getattr("handles")?;
                match handles.get_item(token) {
                    Ok(object) => Ok(object),
                    Err(_) => Err(DecodeError::Python(PyLookupError::new_err(format!(
                        "handle {token} is not in this helper's table (released, or from another helper)"
                    )))),
                }
            }
            _ => Err(DecodeError::Malformed),
        }
    }
}
