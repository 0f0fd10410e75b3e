//! What the JSON formats share: where each value stands in the text (serde
//! parses values but forgets their positions), and typed accessors whose
//! errors point at the value.
//!
//! A value is named by its path from the root, `syscalls/3/action`; an
//! object key by its value's path and `#key`. Messages show the path dotted:
//! `syscalls[3].action`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::diagnostics::PolicyFileError;
use crate::errno::ERRNO_MAX;

/// Parses `text` as JSON, with the parser's position on failure.
pub(super) fn parse(text: &str, path: &str) -> Result<Value, PolicyFileError> {
    serde_json::from_str(text).map_err(|e| PolicyFileError::json(path, &e))
}

/// Byte offsets of every value (and object key) in a JSON text, by path
/// (`syscalls/3/action`; keys as `syscalls/3/action#key`), for errors.
///
/// The text has been parsed (so it is valid JSON); this scan only finds where
/// things start, and stops quietly where it does not understand.
pub(super) struct JsonIndex<'a> {
    text: &'a str,
    path: &'a str,
    at: HashMap<String, usize>,
}

impl<'a> JsonIndex<'a> {
    /// Indexes `text`, the file at `path` (which errors name).
    pub(super) fn new(text: &'a str, path: &'a str) -> Self {
        let mut index = Self {
            text,
            path,
            at: HashMap::new(),
        };
        let mut pos = 0;
        index.value(&mut pos, String::new());
        index
    }

    fn skip_ws(&self, pos: &mut usize) {
        let b = self.text.as_bytes();
        while *pos < b.len() && b[*pos].is_ascii_whitespace() {
            *pos += 1;
        }
    }

    /// Skips a string starting at `pos` (a quote); returns its raw contents.
    fn string(&self, pos: &mut usize) -> String {
        let b = self.text.as_bytes();
        let start = *pos + 1;
        *pos += 1;
        while *pos < b.len() && b[*pos] != b'"' {
            *pos += if b[*pos] == b'\\' { 2 } else { 1 };
        }
        let end = (*pos).min(b.len());
        *pos += 1;
        self.text.get(start..end).unwrap_or_default().to_string()
    }

    fn value(&mut self, pos: &mut usize, path: String) {
        let b = self.text.as_bytes();
        self.skip_ws(pos);
        self.at.insert(path.clone(), *pos);
        match b.get(*pos) {
            Some(b'{') => {
                *pos += 1;
                loop {
                    self.skip_ws(pos);
                    match b.get(*pos) {
                        Some(b'"') => {
                            let key_at = *pos;
                            let child = join(&path, self.string(pos));
                            self.at.insert(format!("{child}#key"), key_at);
                            self.skip_ws(pos);
                            *pos += 1; // ':'
                            self.value(pos, child);
                        }
                        Some(b',') => *pos += 1,
                        Some(b'}') => {
                            *pos += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            Some(b'[') => {
                *pos += 1;
                let mut i = 0;
                loop {
                    self.skip_ws(pos);
                    match b.get(*pos) {
                        Some(b']') => {
                            *pos += 1;
                            return;
                        }
                        Some(b',') => *pos += 1,
                        Some(_) => {
                            self.value(pos, join(&path, i));
                            i += 1;
                        }
                        None => return,
                    }
                }
            }
            Some(b'"') => {
                self.string(pos);
            }
            Some(_) => {
                while *pos < b.len() && !matches!(b[*pos], b',' | b']' | b'}') {
                    *pos += 1;
                }
            }
            None => {}
        }
    }

    /// An error at the value at `path` (or its nearest known ancestor).
    pub(super) fn err(&self, path: &str, message: impl Into<String>) -> PolicyFileError {
        let mut p = path;
        let offset = loop {
            if let Some(&o) = self.at.get(p) {
                break o;
            }
            match p.rfind(['/', '#']) {
                Some(i) => p = &p[..i],
                None => break self.at.get("").copied().unwrap_or(0),
            }
        };
        PolicyFileError::at(self.path, self.text, offset, message)
    }

    /// An error naming an unsupported key of the object at `path`.
    pub(super) fn unknown_key(&self, path: &str, key: &str, supported: &[&str]) -> PolicyFileError {
        let full = join(path, key);
        self.err(
            &format!("{full}#key"),
            format!(
                "field '{}' is not supported (supported here: {})",
                dotted(&full),
                supported.join(", ")
            ),
        )
    }

    /// Refuses the first key of `object` (at `path`) that is not `supported`:
    /// a field ffb does not read would otherwise be silently ignored.
    pub(super) fn check_keys(
        &self,
        path: &str,
        object: &Map<String, Value>,
        supported: &[&str],
    ) -> Result<(), PolicyFileError> {
        match object.keys().find(|k| !supported.contains(&k.as_str())) {
            Some(k) => Err(self.unknown_key(path, k, supported)),
            None => Ok(()),
        }
    }

    /// The value at `path` as an object.
    pub(super) fn object<'v>(
        &self,
        path: &str,
        v: &'v Value,
    ) -> Result<&'v Map<String, Value>, PolicyFileError> {
        v.as_object()
            .ok_or_else(|| self.err(path, format!("'{}' must be an object", dotted(path))))
    }

    /// The value at `path` as an array.
    pub(super) fn array<'v>(
        &self,
        path: &str,
        v: &'v Value,
    ) -> Result<&'v [Value], PolicyFileError> {
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.err(path, format!("'{}' must be an array", dotted(path))))
    }

    /// The value at `path` as a string.
    pub(super) fn str<'v>(&self, path: &str, v: &'v Value) -> Result<&'v str, PolicyFileError> {
        v.as_str()
            .ok_or_else(|| self.err(path, format!("'{}' must be a string", dotted(path))))
    }

    /// The value at `path` as a 64-bit unsigned integer.
    pub(super) fn u64(&self, path: &str, v: &Value) -> Result<u64, PolicyFileError> {
        v.as_u64().ok_or_else(|| {
            self.err(
                path,
                format!(
                    "'{}' must be an integer from 0 to 18446744073709551615, not {v}",
                    dotted(path)
                ),
            )
        })
    }

    /// A list of strings; `null` (as Go writes an empty list) is an empty list.
    pub(super) fn strings<'v>(
        &self,
        path: &str,
        v: &'v Value,
    ) -> Result<Vec<&'v str>, PolicyFileError> {
        if v.is_null() {
            return Ok(Vec::new());
        }
        self.array(path, v)?
            .iter()
            .enumerate()
            .map(|(i, s)| self.str(&join(path, i), s))
            .collect()
    }

    /// The value at `path` as an errno number (1 to 4095).
    pub(super) fn errno(&self, path: &str, v: &Value) -> Result<u32, PolicyFileError> {
        let n = self.u64(path, v)?;
        u32::try_from(n)
            .ok()
            .filter(|n| (1..=ERRNO_MAX).contains(n))
            .ok_or_else(|| {
                self.err(
                    path,
                    format!("'{}' = {n} is not an errno (1 to 4095)", dotted(path)),
                )
            })
    }

    /// A field the object at `path` must have.
    pub(super) fn required<'v>(
        &self,
        path: &str,
        object: &'v Map<String, Value>,
        key: &str,
    ) -> Result<&'v Value, PolicyFileError> {
        object
            .get(key)
            .ok_or_else(|| self.err(path, format!("'{}' has no {key}", dotted(path))))
    }
}

/// `syscalls/3/action` → `syscalls[3].action`, for messages.
pub(super) fn dotted(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('/') {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The path of `key` (or index) inside the value at `path`.
pub(super) fn join(path: &str, key: impl std::fmt::Display) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

/// An optional field: absent and `null` (as Go writes an unset field) are the same.
pub(super) fn opt<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_point_at_values_and_keys() {
        let text = "{\n  \"a\": [1, {\"b\": \"x\"}]\n}";
        let ix = JsonIndex::new(text, "t.json");
        assert_eq!(ix.err("a/1/b", "m").to_string(), "t.json:2:18: m");
        assert_eq!(ix.err("a/1/b#key", "m").to_string(), "t.json:2:13: m");
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(ix.err("a/1/c", "m").to_string(), "t.json:2:12: m");
        assert_eq!(dotted("a/1/b"), "a[1].b");
        assert_eq!(join("", "a"), "a");
    }
}
