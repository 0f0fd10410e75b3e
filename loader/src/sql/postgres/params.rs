//! Parameters as `PQsendQueryParams` takes them: the types, lengths and
//! formats as plain integer arrays, and the values copied into a scratch
//! `PGresult` in the helper, whose addresses make the `paramValues` array
//! (see "Parameters without an array type" in the driver's docs).

use super::{Postgres, PGRES_TUPLES_OK};
use crate::bridge::FunctionId;
use crate::error::{err, Error, ErrorKind, Result};
use crate::sql::calls::{batch_owned, int};
use crate::sql::lifecycle::free_quietly;
use crate::sql::Value;
use crate::value::Value as Raw;

use super::values::float_text;

/// `sizeof(PGresAttDesc)`: name pointer, then six 4-byte fields.
const ATT_DESC_SIZE: usize = 32;
/// `BYTEAOID`: blobs go typed, in binary format.
const BYTEA_OID: u32 = 17;

/// A statement's parameters, ready to send.
pub(super) struct Bound {
    /// `paramTypes`: an OID each (0 lets the server decide).
    pub types: Vec<u8>,
    /// `paramValues`: each value's address in the helper (0 for NULL).
    pub values: Vec<u8>,
    /// `paramLengths`.
    pub lengths: Vec<u8>,
    /// `paramFormats`: 0 text, 1 binary.
    pub formats: Vec<u8>,
    /// The scratch result holding the values, to be freed once the
    /// statement is sent.
    pub scratch: Option<Raw>,
}

impl Postgres {
    /// Encodes `params` and copies their values into the helper.
    pub(super) fn bind(&mut self, params: &[Value]) -> Result<Bound> {
        let n = params.len();
        let mut types = Vec::with_capacity(4 * n);
        let mut lengths = Vec::with_capacity(4 * n);
        let mut formats = Vec::with_capacity(4 * n);
        let mut payloads = Vec::with_capacity(n);
        for (i, p) in params.iter().enumerate() {
            let (oid, format, payload): (u32, i32, Option<Vec<u8>>) = match p {
                Value::Null => (0, 0, None),
                Value::Int(v) => (0, 0, Some(v.to_string().into_bytes())),
                Value::Float(v) => (0, 0, Some(float_text(*v).into_bytes())),
                Value::Text(s) => {
                    if s.contains('\0') {
                        return err(
                            ErrorKind::BadArgument,
                            format!(
                                "parameter {}: PostgreSQL text cannot hold a NUL character",
                                i + 1
                            ),
                        );
                    }
                    (0, 0, Some(s.clone().into_bytes()))
                }
                Value::Blob(b) => (BYTEA_OID, 1, Some(b.clone())),
            };
            let len = payload.as_ref().map_or(0, Vec::len) as i32;
            types.extend_from_slice(&oid.to_ne_bytes());
            lengths.extend_from_slice(&len.to_ne_bytes());
            formats.extend_from_slice(&format.to_ne_bytes());
            payloads.push(payload);
        }
        let (addresses, scratch) = self.stage(&payloads)?;
        Ok(Bound {
            types,
            values: addresses.iter().flat_map(|a| a.to_ne_bytes()).collect(),
            lengths,
            formats,
            scratch,
        })
    }

    /// Copies the non-NULL parameter values into a scratch result and
    /// returns their addresses in the helper (0 for NULL), and the scratch
    /// result, to be freed once the statement is sent.
    fn stage(&mut self, payloads: &[Option<Vec<u8>>]) -> Result<(Vec<u64>, Option<Raw>)> {
        let mut addresses = vec![0u64; payloads.len()];
        if payloads.iter().all(Option::is_none) {
            return Ok((addresses, None));
        }
        let n = i32::try_from(payloads.len())
            .map_err(|_| Error::new(ErrorKind::BadArgument, "too many parameters"))?;
        let scratch = self
            .bridge
            .call(
                self.fns.make_empty,
                &[self.conn.clone(), Raw::I32(PGRES_TUPLES_OK as i32)],
            )?
            .ret;
        if scratch == Raw::Null {
            return Err(Error::foreign(
                "postgres",
                "53200",
                "PQmakeEmptyPGresult: out of memory",
            ));
        }
        let mut calls: Vec<(FunctionId, Vec<Raw>)> = vec![(
            self.fns.set_attrs,
            vec![
                scratch.clone(),
                Raw::I32(n),
                Raw::Bytes(vec![0; ATT_DESC_SIZE * payloads.len()]),
            ],
        )];
        let mut reads = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            if let Some(p) = p {
                let len = i32::try_from(p.len()).map_err(|_| {
                    Error::new(
                        ErrorKind::BadArgument,
                        format!("parameter {} is larger than 2 GiB", i + 1),
                    )
                })?;
                calls.push((
                    self.fns.set_value,
                    vec![
                        scratch.clone(),
                        Raw::I32(0),
                        Raw::I32(i as i32),
                        Raw::Bytes(p.clone()),
                        Raw::I32(len),
                    ],
                ));
                reads.push(i);
            }
        }
        for &i in &reads {
            calls.push((
                self.fns.getvalue,
                vec![scratch.clone(), Raw::I32(0), Raw::I32(i as i32)],
            ));
        }
        let outs = match batch_owned(&mut self.bridge, &calls) {
            Ok(o) => o,
            Err(e) => {
                free_quietly(&mut self.bridge, self.fns.clear, &[scratch]);
                return Err(e);
            }
        };
        let set = &outs[..1 + reads.len()];
        if set.iter().any(|o| int(&o.ret) != 1) {
            free_quietly(&mut self.bridge, self.fns.clear, &[scratch]);
            return Err(Error::foreign(
                "postgres",
                "53200",
                "libpq could not copy the parameters (out of memory)",
            ));
        }
        for (&i, out) in reads.iter().zip(&outs[1 + reads.len()..]) {
            match out.ret {
                Raw::U64(a) if a != 0 => addresses[i] = a,
                _ => {
                    free_quietly(&mut self.bridge, self.fns.clear, &[scratch]);
                    return err(
                        ErrorKind::Protocol,
                        "PQgetvalue gave no address for a parameter copy",
                    );
                }
            }
        }
        Ok((addresses, Some(scratch)))
    }
}
