//! The JSON request of `ffb session` and of a `ffb policy learn` script:
//! `{"id": ANY, "sig": "name(types) -> ret", "args": [...]}`.
//!
//! A request is checked whole (its keys, its signature, its arguments)
//! before anything is called, so a learn script with a bad line spawns
//! nothing and a session answers a bad line without touching the helper.

use ffb_loader::{Bridge, CallOutput, Error, ErrorKind, Signature, Value};
use serde_json::Value as Json;

use crate::args::{arg_from_json, values_for};

/// One checked request: its signature and argument values.
pub struct Request {
    sig_text: String,
    pub sig: Signature,
    values: Vec<Value>,
}

impl Request {
    /// Checks a request (`{"id", "sig", "args"}`) without calling anything.
    pub fn parse(request: &Json) -> Result<Request, Error> {
        let Some(obj) = request.as_object() else {
            return Err(Error::new(
                ErrorKind::BadArgument,
                "a request must be a JSON object",
            ));
        };
        if let Some(key) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "id" | "sig" | "args"))
        {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("unknown key '{key}' (a request has id, sig and args)"),
            ));
        }
        let sig_text = obj
            .get("sig")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::new(ErrorKind::BadSignature, "missing \"sig\" string"))?;
        let sig = Signature::parse(sig_text)
            .map_err(|e| Error::new(ErrorKind::BadSignature, format!("'{sig_text}': {e}")))?;
        let args = match obj.get("args") {
            None => &[][..],
            Some(Json::Array(a)) => a.as_slice(),
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::BadArgument,
                    "\"args\" must be an array",
                ))
            }
        };
        let values = values_for(&sig, args, arg_from_json)?;
        Ok(Request {
            sig_text: sig_text.to_string(),
            sig,
            values,
        })
    }

    /// Parses one line of JSON as a request.
    pub fn from_line(line: &str) -> Result<Request, Error> {
        let json = serde_json::from_str::<Json>(line)
            .map_err(|e| Error::new(ErrorKind::BadArgument, format!("not JSON: {e}")))?;
        Request::parse(&json)
    }

    /// Declares the function on `bridge` and calls it with the values.
    pub fn call(&self, bridge: &mut Bridge) -> Result<CallOutput, Error> {
        let f = bridge.declare(&self.sig_text)?;
        bridge.call(f, &self.values)
    }
}
