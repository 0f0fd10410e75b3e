//! What a failed ODBC call becomes: the first diagnostic record of its
//! handle (`SQLGetDiagRec`), as a foreign error with its SQLSTATE.

use super::{ok, Odbc};
use crate::error::Error;
use crate::sql::calls::{int, out};
use crate::value::Value as Raw;

/// `SQLGetDiagRec`'s message buffer (its `out[1024]`).
const MESSAGE_CAP: i16 = 1024;

impl Odbc {
    /// The first diagnostic record of `handle` (of kind `kind`) as a
    /// foreign error (or, for a handle with none, the return code `rc`).
    pub(super) fn diag(&mut self, kind: i16, handle: &Raw, rc: i64) -> Error {
        // The two out[N] buffers take no value.
        let args = [
            Raw::I16(kind),
            handle.clone(),
            Raw::I16(1),
            Raw::I32(0),
            Raw::I16(MESSAGE_CAP),
            Raw::I16(0),
        ];
        let o = match self.bridge.call(self.fns.diag, &args) {
            Ok(o) => o,
            Err(e) => return e,
        };
        if !ok(int(&o.ret)) {
            return Error::foreign(
                "odbc",
                "HY000",
                format!("the call failed ({rc}) without a diagnostic record"),
            );
        }
        let state = match out(&o, 3) {
            Raw::Bytes(b) => String::from_utf8_lossy(&b[..5.min(b.len())]).into_owned(),
            _ => "HY000".into(),
        };
        let len = int(&out(&o, 7)).clamp(0, MESSAGE_CAP as i64 - 1) as usize;
        let message = match out(&o, 5) {
            Raw::Bytes(b) => String::from_utf8_lossy(&b[..len.min(b.len())]).into_owned(),
            _ => String::new(),
        };
        Error::foreign("odbc", state, message.trim_end().to_string())
    }
}
