//! The host's half of the Python host's MessagePack documents
//! ([`ffb_contract::wire::python`]): requests written, replies read.
//!
//! A reply is the helper's work, so it is read as hostile: it is copied out
//! of the arena once before it is read, every length is checked against
//! what is left before anything is allocated, nesting is bounded, every str
//! must be UTF-8, and a document with bytes after its end is refused. Any of
//! that is `protocol`, never a panic.

use std::sync::{Arc, Mutex};

use num_bigint::BigInt;

use ffb_contract::wire::python::{
    EXT_BIG_INT, EXT_HANDLE, EXT_TUPLE, MAX_DEPTH, MAX_EXCEPTION_TEXT, MAX_TYPE_NAME, OP_CALL,
    OP_CALL_METHOD, OP_GET_ATTR, OP_RELEASE, REPLY_EXCEPTION, REPLY_VALUE,
};

use super::value::{PyHandle, PyValue};
use crate::error::{err, Error, ErrorKind, Result};

/// What a request asks the interpreter to do.
pub(super) enum Request<'a> {
    /// `module.function(*args, **kwargs)`.
    Call {
        module: &'a str,
        function: &'a str,
        args: &'a [PyValue],
        kwargs: &'a [(&'a str, PyValue)],
    },
    /// `target.method(*args, **kwargs)`.
    CallMethod {
        target: &'a PyHandle,
        method: &'a str,
        args: &'a [PyValue],
        kwargs: &'a [(&'a str, PyValue)],
    },
    /// `target.name`.
    GetAttr { target: &'a PyHandle, name: &'a str },
    /// Only the releases.
    Release,
}

/// Which handles a request may carry: this bridge's, of its current helper,
/// not released.
pub(super) struct HandleScope {
    pub bridge: u64,
    pub generation: u64,
}

impl HandleScope {
    fn check(&self, h: &PyHandle) -> Result<()> {
        if h.bridge() != self.bridge {
            return err(
                ErrorKind::StaleHandle,
                format!("handle {} belongs to another Python bridge", h.token()),
            );
        }
        if h.is_released() {
            return err(
                ErrorKind::StaleHandle,
                format!("handle {} ({}) was released", h.token(), h.type_name()),
            );
        }
        if h.generation() != self.generation {
            return err(
                ErrorKind::StaleHandle,
                format!(
                    "handle {} ({}) belongs to a helper that is gone",
                    h.token(),
                    h.type_name()
                ),
            );
        }
        Ok(())
    }
}

/// Writes `request` (after `releases`) into `out`, which is cleared first.
pub(super) fn encode_request(
    out: &mut Vec<u8>,
    releases: &[u64],
    request: &Request<'_>,
    scope: &HandleScope,
) -> Result<()> {
    out.clear();
    let w = out;
    let items = match request {
        Request::Call { .. } | Request::CallMethod { .. } => 6,
        Request::GetAttr { .. } => 4,
        Request::Release => 2,
    };
    let op = match request {
        Request::Call { .. } => OP_CALL,
        Request::CallMethod { .. } => OP_CALL_METHOD,
        Request::GetAttr { .. } => OP_GET_ATTR,
        Request::Release => OP_RELEASE,
    };
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(w, items);
    let _ = rmp::encode::write_uint(w, op);
    let _ = rmp::encode::write_array_len(w, releases.len() as u32);
    for token in releases {
        let _ = rmp::encode::write_uint(w, *token);
    }
    match request {
        Request::Call {
            module,
            function,
            args,
            kwargs,
        } => {
            let _ = rmp::encode::write_str(w, module);
            let _ = rmp::encode::write_str(w, function);
            arguments(w, args, kwargs, scope)?;
        }
        Request::CallMethod {
            target,
            method,
            args,
            kwargs,
        } => {
            handle(w, target, scope)?;
            let _ = rmp::encode::write_str(w, method);
            arguments(w, args, kwargs, scope)?;
        }
        Request::GetAttr { target, name } => {
            handle(w, target, scope)?;
            let _ = rmp::encode::write_str(w, name);
        }
        Request::Release => {}
    }
    Ok(())
}

fn arguments(
    w: &mut Vec<u8>,
    args: &[PyValue],
    kwargs: &[(&str, PyValue)],
    scope: &HandleScope,
) -> Result<()> {
    let _ = rmp::encode::write_array_len(w, len32(args.len())?);
    for a in args {
        value(w, a, scope, 0)?;
    }
    let _ = rmp::encode::write_map_len(w, len32(kwargs.len())?);
    for (k, v) in kwargs {
        let _ = rmp::encode::write_str(w, k);
        value(w, v, scope, 0)?;
    }
    Ok(())
}

fn len32(n: usize) -> Result<u32> {
    u32::try_from(n).or_else(|_| err(ErrorKind::BadArgument, "more than 2^32 items in one value"))
}

/// Writes one value.
pub(super) fn value(w: &mut Vec<u8>, v: &PyValue, scope: &HandleScope, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return err(
            ErrorKind::BadArgument,
            format!("an argument is nested deeper than {MAX_DEPTH} levels"),
        );
    }
    match v {
        PyValue::None => {
            let _ = rmp::encode::write_nil(w);
        }
        PyValue::Bool(b) => {
            let _ = rmp::encode::write_bool(w, *b);
        }
        PyValue::Int(n) => {
            let _ = rmp::encode::write_sint(w, *n);
        }
        PyValue::BigInt(n) => {
            let bytes = n.to_signed_bytes_le();
            let _ = rmp::encode::write_ext_meta(w, len32(bytes.len())?, EXT_BIG_INT);
            w.extend_from_slice(&bytes);
        }
        PyValue::Float(f) => {
            let _ = rmp::encode::write_f64(w, *f);
        }
        PyValue::Str(s) => {
            let _ = rmp::encode::write_str(w, s);
        }
        PyValue::Bytes(b) => {
            let _ = rmp::encode::write_bin(w, b);
        }
        PyValue::List(items) => {
            let _ = rmp::encode::write_array_len(w, len32(items.len())?);
            for item in items {
                value(w, item, scope, depth + 1)?;
            }
        }
        PyValue::Tuple(items) => {
            let _ = rmp::encode::write_ext_meta(w, 0, EXT_TUPLE);
            let _ = rmp::encode::write_array_len(w, len32(items.len())?);
            for item in items {
                value(w, item, scope, depth + 1)?;
            }
        }
        PyValue::Dict(pairs) => {
            let _ = rmp::encode::write_map_len(w, len32(pairs.len())?);
            for (k, item) in pairs {
                value(w, k, scope, depth + 1)?;
                value(w, item, scope, depth + 1)?;
            }
        }
        PyValue::Handle(h) => handle(w, h, scope)?,
    }
    Ok(())
}

fn handle(w: &mut Vec<u8>, h: &PyHandle, scope: &HandleScope) -> Result<()> {
    scope.check(h)?;
    // The type name stays on the host: the token alone names the object.
    let _ = rmp::encode::write_ext_meta(w, 8, EXT_HANDLE);
    w.extend_from_slice(&h.token().to_le_bytes());
    Ok(())
}

/// A reply, read.
pub(super) enum Reply {
    /// The call's value.
    Value(PyValue),
    /// The Python exception it raised (the helper's words).
    Exception {
        type_name: String,
        message: String,
        traceback: String,
    },
}

/// What a decoded handle needs from its bridge.
pub(super) struct HandleMaker {
    pub bridge: u64,
    pub generation: u64,
    pub releases: Arc<Mutex<Vec<u64>>>,
}

/// Reads a whole reply. Anything malformed is a `protocol` error, naming
/// where.
pub(super) fn decode_reply(bytes: &[u8], maker: &HandleMaker) -> Result<Reply> {
    let mut r = Reader {
        input: bytes,
        at: 0,
    };
    let reply = r.reply(maker)?;
    if !r.input.is_empty() {
        return r.malformed("bytes after the end of the reply");
    }
    Ok(reply)
}

/// A cursor over a reply, counting the offset for error messages.
struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn malformed<T>(&self, what: &str) -> Result<T> {
        Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "the Python host's reply is malformed at byte {}: {what}",
                self.at
            ),
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.input.len() {
            return self.malformed(&format!("{n} bytes announced, {} left", self.input.len()));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        self.at += n;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A count of items, each at least `min_item` bytes, that must fit.
    fn fits(&self, n: u64, min_item: u64) -> Result<usize> {
        if n.saturating_mul(min_item) > self.input.len() as u64 {
            return self.malformed(&format!(
                "{n} items announced in {} bytes",
                self.input.len()
            ));
        }
        Ok(n as usize)
    }

    fn array(&mut self) -> Result<usize> {
        match self.byte()? {
            b @ 0x90..=0x9f => self.fits(u64::from(b & 0x0f), 1),
            0xdc => {
                let n = self.be(2)?;
                self.fits(n, 1)
            }
            0xdd => {
                let n = self.be(4)?;
                self.fits(n, 1)
            }
            _ => self.malformed("expected an array"),
        }
    }

    fn text(&mut self, limit: usize, what: &str) -> Result<String> {
        let len = match self.byte()? {
            b @ 0xa0..=0xbf => u64::from(b & 0x1f),
            0xd9 => self.be(1)?,
            0xda => self.be(2)?,
            0xdb => self.be(4)?,
            _ => return self.malformed(&format!("{what} is not a str")),
        };
        if len > limit as u64 {
            return self.malformed(&format!(
                "{what} is {len} bytes, over the {limit}-byte bound"
            ));
        }
        self.utf8(len as usize, what)
    }

    fn utf8(&mut self, len: usize, what: &str) -> Result<String> {
        let at = self.at;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(Error::new(
                ErrorKind::Protocol,
                format!("the Python host's reply is malformed at byte {at}: {what} is not UTF-8"),
            )),
        }
    }

    fn reply(&mut self, maker: &HandleMaker) -> Result<Reply> {
        let items = self.array()?;
        let tag = match self.byte()? {
            b @ 0..=0x7f => u64::from(b),
            _ => return self.malformed("the reply's tag is not a small int"),
        };
        match (tag, items) {
            (REPLY_VALUE, 2) => Ok(Reply::Value(self.value(maker, 0)?)),
            (REPLY_EXCEPTION, 4) => Ok(Reply::Exception {
                type_name: self.text(MAX_EXCEPTION_TEXT, "the exception's type")?,
                message: self.text(MAX_EXCEPTION_TEXT, "the exception's message")?,
                traceback: self.text(MAX_EXCEPTION_TEXT, "the traceback")?,
            }),
            _ => self.malformed(&format!("tag {tag} with {items} items is no reply")),
        }
    }

    fn value(&mut self, maker: &HandleMaker, depth: usize) -> Result<PyValue> {
        if depth > MAX_DEPTH {
            return self.malformed(&format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => PyValue::Int(i64::from(marker)),
            0xe0..=0xff => PyValue::Int(i64::from(marker as i8)),
            0xc0 => PyValue::None,
            0xc2 => PyValue::Bool(false),
            0xc3 => PyValue::Bool(true),
            0xcc..=0xcf => PyValue::int(self.be(1 << (marker - 0xcc))?),
            0xd0..=0xd3 => {
                let width = 1usize << (marker - 0xd0);
                let shift = 64 - 8 * width as u32;
                PyValue::Int(((self.be(width)? << shift) as i64) >> shift)
            }
            0xca => PyValue::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => PyValue::Float(f64::from_bits(self.be(8)?)),
            0xa0..=0xbf | 0xd9..=0xdb => {
                let len = match marker {
                    0xd9 => self.be(1)?,
                    0xda => self.be(2)?,
                    0xdb => self.be(4)?,
                    _ => u64::from(marker & 0x1f),
                };
                let len = self.fits(len, 1)?;
                PyValue::Str(self.utf8(len, "a str")?)
            }
            0xc4..=0xc6 => {
                let len = self.be(1 << (marker - 0xc4))?;
                let len = self.fits(len, 1)?;
                PyValue::Bytes(self.take(len)?.to_vec())
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = match marker {
                    0xdc => self.be(2)?,
                    0xdd => self.be(4)?,
                    _ => u64::from(marker & 0x0f),
                };
                let n = self.fits(n, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(maker, depth + 1)?);
                }
                PyValue::List(items)
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let n = match marker {
                    0xde => self.be(2)?,
                    0xdf => self.be(4)?,
                    _ => u64::from(marker & 0x0f),
                };
                let n = self.fits(n, 2)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.value(maker, depth + 1)?;
                    let v = self.value(maker, depth + 1)?;
                    pairs.push((k, v));
                }
                PyValue::Dict(pairs)
            }
            0xd4..=0xd8 | 0xc7..=0xc9 => {
                let len = match marker {
                    0xd4..=0xd8 => 1u64 << (marker - 0xd4),
                    _ => self.be(1 << (marker - 0xc7))?,
                };
                let kind = self.byte()? as i8;
                let len = self.fits(len, 1)?;
                self.ext(kind, len, maker, depth)?
            }
            _ => return self.malformed(&format!("0x{marker:02x} is no value's marker")),
        })
    }

    fn ext(&mut self, kind: i8, len: usize, maker: &HandleMaker, depth: usize) -> Result<PyValue> {
        match kind {
            EXT_BIG_INT if len > 0 => {
                Ok(PyValue::int(BigInt::from_signed_bytes_le(self.take(len)?)))
            }
            EXT_TUPLE if len == 0 => match self.value(maker, depth)? {
                PyValue::List(items) => Ok(PyValue::Tuple(items)),
                _ => self.malformed("a tuple marker not followed by an array"),
            },
            EXT_HANDLE if (8..=8 + MAX_TYPE_NAME).contains(&len) => {
                let token = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
                let type_name = self.utf8(len - 8, "a handle's type name")?;
                Ok(PyValue::Handle(PyHandle::new(
                    token,
                    maker.generation,
                    maker.bridge,
                    type_name,
                    Arc::clone(&maker.releases),
                )))
            }
            _ => self.malformed(&format!("ext type {kind} of {len} bytes is no value")),
        }
    }
}

#[cfg(test)]
mod tests;
