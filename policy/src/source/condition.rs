//! Argument conditions as the JSON formats write them.
//!
//! A Docker/OCI profile and a seccompiler filter both give a rule an `args`
//! list of objects, each with the argument's `index` (0 to 5), a value and an
//! operator. They differ in the value's key (`value`, `val`), the operators'
//! names and what else the object may hold; [`parse`] reads what they share,
//! so both formats check it alike and say so in the same words, and hands the
//! rest to the format.

use serde_json::{Map, Value};

use super::json::{join, opt, JsonIndex};
use crate::diagnostics::PolicyFileError;
use crate::sandbox::arg_index;

/// How one format writes a condition.
pub(super) struct ArgFormat {
    /// Every key a condition object may have.
    pub(super) keys: &'static [&'static str],
    /// The key of the value compared against.
    pub(super) value: &'static str,
}

/// A condition's shared part, read and checked.
pub(super) struct JsonArg<'v> {
    /// The condition's object, for the format's own fields.
    pub(super) object: &'v Map<String, Value>,
    /// The argument index, 0 to 5.
    pub(super) index: u8,
    /// The value compared against.
    pub(super) value: u64,
}

/// The conditions of the rule at `path`: its `args` list, as `(path, value)`
/// pairs (absent or `null`: none).
pub(super) fn args_of<'v>(
    ix: &JsonIndex,
    path: &str,
    rule: &'v Map<String, Value>,
) -> Result<Vec<(String, &'v Value)>, PolicyFileError> {
    let Some(args) = opt(rule, "args") else {
        return Ok(Vec::new());
    };
    let args_path = join(path, "args");
    Ok(ix
        .array(&args_path, args)?
        .iter()
        .enumerate()
        .map(|(j, arg)| (join(&args_path, j), arg))
        .collect())
}

/// Reads the condition at `path`: its keys, comment, index and value.
pub(super) fn parse<'v>(
    ix: &JsonIndex,
    path: &str,
    v: &'v Value,
    format: &ArgFormat,
) -> Result<JsonArg<'v>, PolicyFileError> {
    let object = ix.object(path, v)?;
    ix.check_keys(path, object, format.keys)?;
    if let Some(c) = opt(object, "comment") {
        ix.str(&join(path, "comment"), c)?;
    }
    let index_path = join(path, "index");
    let index = ix.u64(&index_path, ix.required(path, object, "index")?)?;
    let index = arg_index(index).map_err(|e| ix.err(&index_path, e))?;
    let value = ix.u64(
        &join(path, format.value),
        ix.required(path, object, format.value)?,
    )?;
    Ok(JsonArg {
        object,
        index,
        value,
    })
}
