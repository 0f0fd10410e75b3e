//! Parameters bound with `SQLBindParameter`: integers as
//! `SQL_C_SBIGINT`/`SQL_BIGINT`, floats as `SQL_C_DOUBLE`/`SQL_DOUBLE`,
//! text as `SQL_C_CHAR`/`SQL_VARCHAR`, blobs as
//! `SQL_C_BINARY`/`SQL_VARBINARY`, NULL by its indicator. The value and
//! indicator buffers are retained (pinned) by the bridge until the
//! statement is bound again or freed: the driver reads them at
//! `SQLExecute`.

use super::{
    ok, Odbc, SQL_C_BINARY, SQL_C_DOUBLE, SQL_C_SBIGINT, SQL_HANDLE_STMT, SQL_NULL_DATA,
    SQL_RESET_PARAMS,
};
use crate::error::{Error, ErrorKind, Result};
use crate::sql::calls::{batch_each, int};
use crate::sql::Value;
use crate::value::Value as Raw;

const SQL_PARAM_INPUT: i16 = 1;
const SQL_C_CHAR: i16 = 1;
const SQL_VARCHAR: i16 = 12;
const SQL_BIGINT: i16 = -5;
const SQL_DOUBLE: i16 = 8;
const SQL_VARBINARY: i16 = -3;

impl Odbc {
    /// Unbinds the statement's parameters (releasing their pins) and binds
    /// `params`, in one round trip.
    pub(super) fn bind(&mut self, h: &Raw, params: &[Value]) -> Result<()> {
        self.stmt_call(self.fns.free_stmt, &[h.clone(), Raw::U16(SQL_RESET_PARAMS)])?;
        self.bridge.release_pins(h)?;
        if params.is_empty() {
            return Ok(());
        }
        let args = params
            .iter()
            .enumerate()
            .map(|(i, v)| bind_args(h, i + 1, v))
            .collect::<Result<Vec<_>>>()?;
        let outs = batch_each(&mut self.bridge, self.fns.bind, &args)?;
        if let Some(rc) = outs.iter().map(|o| int(&o.ret)).find(|&rc| !ok(rc)) {
            return Err(self.diag(SQL_HANDLE_STMT, h, rc));
        }
        Ok(())
    }
}

/// The `SQLBindParameter` arguments for parameter `i` (1-based) of `stmt`.
fn bind_args(stmt: &Raw, i: usize, v: &Value) -> Result<Vec<Raw>> {
    let (c, sql, buf, ind): (i16, i16, Vec<u8>, i64) = match v {
        Value::Null => (SQL_C_CHAR, SQL_VARCHAR, vec![0; 8], SQL_NULL_DATA),
        Value::Int(x) => (SQL_C_SBIGINT, SQL_BIGINT, x.to_ne_bytes().to_vec(), 8),
        Value::Float(x) => (SQL_C_DOUBLE, SQL_DOUBLE, x.to_ne_bytes().to_vec(), 8),
        Value::Text(s) => (
            SQL_C_CHAR,
            SQL_VARCHAR,
            s.as_bytes().to_vec(),
            s.len() as i64,
        ),
        Value::Blob(b) => (SQL_C_BINARY, SQL_VARBINARY, b.clone(), b.len() as i64),
    };
    let at =
        u16::try_from(i).map_err(|_| Error::new(ErrorKind::BadArgument, "too many parameters"))?;
    let size = buf.len().max(1) as u64;
    let len = buf.len() as i64;
    Ok(vec![
        stmt.clone(),
        Raw::U16(at),
        Raw::I16(SQL_PARAM_INPUT),
        Raw::I16(c),
        Raw::I16(sql),
        Raw::U64(size),
        Raw::I16(0),
        Raw::Bytes(buf),
        Raw::I64(len),
        Raw::Bytes(ind.to_ne_bytes().to_vec()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_by_their_class() {
        let h = Raw::Null;
        let a = bind_args(&h, 2, &Value::Int(-2)).unwrap();
        assert_eq!(a[1], Raw::U16(2));
        assert_eq!(
            (&a[3], &a[4]),
            (&Raw::I16(SQL_C_SBIGINT), &Raw::I16(SQL_BIGINT))
        );
        assert_eq!(a[7], Raw::Bytes((-2i64).to_ne_bytes().to_vec()));
        let a = bind_args(&h, 1, &Value::Null).unwrap();
        assert_eq!(a[9], Raw::Bytes(SQL_NULL_DATA.to_ne_bytes().to_vec()));
        let a = bind_args(&h, 1, &Value::from("")).unwrap();
        // An empty value still declares a column size of 1.
        assert_eq!((&a[5], &a[8]), (&Raw::U64(1), &Raw::I64(0)));
        let a = bind_args(&h, 1, &Value::Blob(vec![0, 1, 2])).unwrap();
        assert_eq!((&a[3], &a[8]), (&Raw::I16(SQL_C_BINARY), &Raw::I64(3)));
        assert!(bind_args(&h, 70_000, &Value::Null).is_err());
    }
}
