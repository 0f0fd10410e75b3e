//! Canonical values: what crosses between the host and Python code in the
//! helper ([`PyValue`]), and handles to the objects that stay there
//! ([`PyHandle`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use num_bigint::BigInt;
use serde_json::{json, Map, Value as Json};

/// A Python value that crosses the bridge by value: `None`, `bool`, `int` of
/// any size, `float` (bit-exact: NaN payloads and `-0.0` survive), `str`,
/// `bytes`, `list`, `tuple` and `dict`. Anything else stays in the helper
/// and crosses as a [`PyValue::Handle`].
///
/// An `int` is [`PyValue::Int`] when it fits in an `i64`, and
/// [`PyValue::BigInt`] otherwise (build one with [`PyValue::int`], which
/// picks). Two values are equal when Python's would be identical: floats
/// compare by their bits.
#[derive(Clone, Debug)]
pub enum PyValue {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// An `int` that fits in `i64`.
    Int(i64),
    /// An `int` that does not.
    BigInt(BigInt),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `list`.
    List(Vec<PyValue>),
    /// `tuple`.
    Tuple(Vec<PyValue>),
    /// `dict`, in its iteration order.
    Dict(Vec<(PyValue, PyValue)>),
    /// An object that stays in the helper.
    Handle(PyHandle),
}

impl PyValue {
    /// An `int`: [`PyValue::Int`] when it fits, else [`PyValue::BigInt`].
    pub fn int(value: impl Into<BigInt>) -> PyValue {
        let value = value.into();
        match i64::try_from(&value) {
            Ok(small) => PyValue::Int(small),
            Err(_) => PyValue::BigInt(value),
        }
    }

    /// A `str`.
    pub fn str(text: impl Into<String>) -> PyValue {
        PyValue::Str(text.into())
    }

    /// The value as an `i64`, if it is an `int` that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            PyValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The handle, if this is one.
    pub fn as_handle(&self) -> Option<&PyHandle> {
        match self {
            PyValue::Handle(h) => Some(h),
            _ => None,
        }
    }

    /// The JSON form ffb prints: plain JSON where it is unambiguous, and
    /// one-key objects where it is not: `{"hex": "..."}` for bytes,
    /// `{"tuple": [...]}`, `{"int": "digits"}` beyond 64 bits, `{"float":
    /// "nan"|"inf"|"-inf"}`, `{"dict": [[key, value], ...]}` for a dict
    /// whose keys are not all str (or that would read back as one of these
    /// forms), and `{"handle": token, "type": name}`.
    /// [`PyValue::from_json`] reads every form back.
    pub fn to_json(&self) -> Json {
        match self {
            PyValue::None => Json::Null,
            PyValue::Bool(b) => json!(b),
            PyValue::Int(n) => json!(n),
            PyValue::BigInt(n) => json!({ "int": n.to_string() }),
            PyValue::Float(f) if f.is_finite() => json!(f),
            PyValue::Float(f) if f.is_nan() => json!({ "float": "nan" }),
            PyValue::Float(f) => json!({ "float": if *f > 0.0 { "inf" } else { "-inf" } }),
            PyValue::Str(s) => json!(s),
            PyValue::Bytes(b) => json!({ "hex": hex::encode(b) }),
            PyValue::List(items) => Json::Array(items.iter().map(PyValue::to_json).collect()),
            PyValue::Tuple(items) => {
                json!({ "tuple": items.iter().map(PyValue::to_json).collect::<Vec<_>>() })
            }
            PyValue::Dict(pairs) => {
                let plain = pairs.iter().all(|(k, _)| matches!(k, PyValue::Str(_)))
                    && !(pairs.len() == 1
                        && matches!(&pairs[0].0, PyValue::Str(k) if SPECIAL_KEYS.contains(&k.as_str())));
                if plain {
                    let mut map = Map::new();
                    for (k, v) in pairs {
                        if let PyValue::Str(k) = k {
                            map.insert(k.clone(), v.to_json());
                        }
                    }
                    if map.len() == pairs.len() {
                        return Json::Object(map);
                    }
                }
                let pairs: Vec<Json> = pairs
                    .iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect();
                json!({ "dict": pairs })
            }
            PyValue::Handle(h) => json!({ "handle": h.token(), "type": h.type_name() }),
        }
    }

    /// Reads the JSON form of [`to_json`](Self::to_json), all but handles
    /// (see [`from_json_with`](Self::from_json_with)). Any JSON integer is
    /// an `int`, any other number a `float`.
    pub fn from_json(json: &Json) -> Result<PyValue, String> {
        PyValue::from_json_with(json, &|_| None)
    }

    /// [`from_json`](Self::from_json), with `{"handle": token}` resolved by
    /// `resolve` (a session's table of the handles it has seen).
    pub fn from_json_with(
        json: &Json,
        resolve: &dyn Fn(u64) -> Option<PyHandle>,
    ) -> Result<PyValue, String> {
        let recurse = |j: &Json| PyValue::from_json_with(j, resolve);
        Ok(match json {
            Json::Null => PyValue::None,
            Json::Bool(b) => PyValue::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    PyValue::Int(i)
                } else if let Some(u) = n.as_u64() {
                    PyValue::int(u)
                } else {
                    PyValue::Float(n.as_f64().ok_or("a number JSON cannot represent")?)
                }
            }
            Json::String(s) => PyValue::Str(s.clone()),
            Json::Array(items) => {
                PyValue::List(items.iter().map(recurse).collect::<Result<_, _>>()?)
            }
            Json::Object(map) if map.len() == 1 => {
                let (key, inner) = map.iter().next().expect("one entry");
                match (key.as_str(), inner) {
                    ("hex", Json::String(h)) => PyValue::Bytes(
                        hex::decode(h).map_err(|e| format!("{{\"hex\": ...}} is not hex: {e}"))?,
                    ),
                    ("tuple", Json::Array(items)) => {
                        PyValue::Tuple(items.iter().map(recurse).collect::<Result<_, _>>()?)
                    }
                    ("int", Json::String(digits)) => {
                        PyValue::int(digits.parse::<BigInt>().map_err(|_| {
                            format!("{{\"int\": {digits:?}}} is not a decimal integer")
                        })?)
                    }
                    ("float", Json::String(f)) => PyValue::Float(match f.as_str() {
                        "nan" => f64::NAN,
                        "inf" => f64::INFINITY,
                        "-inf" => f64::NEG_INFINITY,
                        other => {
                            return Err(format!(
                                "{{\"float\": {other:?}}} must be \"nan\", \"inf\" or \"-inf\""
                            ))
                        }
                    }),
                    ("dict", Json::Array(pairs)) => PyValue::Dict(
                        pairs
                            .iter()
                            .map(|pair| match pair {
                                Json::Array(kv) if kv.len() == 2 => {
                                    Ok((recurse(&kv[0])?, recurse(&kv[1])?))
                                }
                                _ => Err("each item of {\"dict\": [...]} is a [key, value] pair"
                                    .to_string()),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    ("handle", Json::Number(n)) => match n.as_u64().and_then(resolve) {
                        Some(h) => PyValue::Handle(h),
                        None => {
                            return Err(format!("{{\"handle\": {n}}} is no handle of this session"))
                        }
                    },
                    (k, _) if SPECIAL_KEYS.contains(&k) => {
                        return Err(format!("{{\"{k}\": ...}} has the wrong kind of value"))
                    }
                    _ => plain_dict(map, resolve)?,
                }
            }
            Json::Object(map) => plain_dict(map, resolve)?,
        })
    }
}

/// The keys of the one-key JSON forms.
const SPECIAL_KEYS: &[&str] = &["hex", "tuple", "int", "float", "dict", "handle"];

fn plain_dict(
    map: &Map<String, Json>,
    resolve: &dyn Fn(u64) -> Option<PyHandle>,
) -> Result<PyValue, String> {
    Ok(PyValue::Dict(
        map.iter()
            .map(|(k, v)| {
                Ok((
                    PyValue::Str(k.clone()),
                    PyValue::from_json_with(v, resolve)?,
                ))
            })
            .collect::<Result<_, String>>()?,
    ))
}

impl PartialEq for PyValue {
    fn eq(&self, other: &PyValue) -> bool {
        use PyValue::*;
        match (self, other) {
            (None, None) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (BigInt(a), BigInt(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a == b,
            (Dict(a), Dict(b)) => a == b,
            (Handle(a), Handle(b)) => a.same_object(b),
            _ => false,
        }
    }
}

/// Python's `repr`, near enough, with every control character escaped (the
/// text came from the helper, and goes to a terminal).
impl fmt::Display for PyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[PyValue]| -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        };
        match self {
            PyValue::None => f.write_str("None"),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::Int(n) => write!(f, "{n}"),
            PyValue::BigInt(n) => write!(f, "{n}"),
            PyValue::Float(x) if x.is_nan() => f.write_str("nan"),
            PyValue::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "inf" } else { "-inf" })
            }
            PyValue::Float(x) if x.fract() == 0.0 && x.abs() < 1e16 => write!(f, "{x:.1}"),
            PyValue::Float(x) => write!(f, "{x}"),
            PyValue::Str(s) => write!(f, "'{}'", s.escape_debug()),
            PyValue::Bytes(b) => write!(f, "b'{}'", b.escape_ascii()),
            PyValue::List(items) => {
                f.write_str("[")?;
                list(f, items)?;
                f.write_str("]")
            }
            PyValue::Tuple(items) => {
                f.write_str("(")?;
                list(f, items)?;
                f.write_str(if items.len() == 1 { ",)" } else { ")" })
            }
            PyValue::Dict(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            PyValue::Handle(h) => write!(
                f,
                "<handle {}: {}>",
                h.token(),
                h.type_name().escape_debug()
            ),
        }
    }
}

/// An object that stays in the helper: a `DataFrame`, a `psycopg2`
/// connection, a compiled regex. Pass it back (as [`PyValue::Handle`]) to
/// call its methods (`PyBridge::call_method`) or read its attributes.
///
/// Clones share the object. When the last clone is dropped, or on
/// `PyBridge::release`, the helper is told to drop its reference (with the
/// next request, costing no round trip of its own). A handle is stale once
/// its helper is gone: using it then is `stale_handle`, before anything is
/// sent.
#[derive(Clone)]
pub struct PyHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    token: u64,
    /// The helper generation (`Bridge::generation`) that made it.
    generation: u64,
    /// Which `PyBridge` made it.
    bridge: u64,
    /// The type's name, as the helper reported it (cut and validated).
    type_name: String,
    released: AtomicBool,
    /// Where the token goes when it is released: the bridge's queue.
    releases: Arc<Mutex<Vec<u64>>>,
}

impl PyHandle {
    pub(super) fn new(
        token: u64,
        generation: u64,
        bridge: u64,
        type_name: String,
        releases: Arc<Mutex<Vec<u64>>>,
    ) -> PyHandle {
        PyHandle {
            inner: Arc::new(HandleInner {
                token,
                generation,
                bridge,
                type_name,
                released: AtomicBool::new(false),
                releases,
            }),
        }
    }

    /// The token the helper knows the object by.
    pub fn token(&self) -> u64 {
        self.inner.token
    }

    /// The object's type (`module.qualname`), as the helper reported it.
    pub fn type_name(&self) -> &str {
        &self.inner.type_name
    }

    pub(super) fn generation(&self) -> u64 {
        self.inner.generation
    }

    pub(super) fn bridge(&self) -> u64 {
        self.inner.bridge
    }

    pub(super) fn is_released(&self) -> bool {
        self.inner.released.load(Ordering::Acquire)
    }

    /// Queues the token for release, once.
    pub(super) fn release(&self) {
        self.inner.release();
    }

    fn same_object(&self, other: &PyHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl HandleInner {
    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            if let Ok(mut queue) = self.releases.lock() {
                queue.push(self.token);
            }
        }
    }
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for PyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PyHandle({}: {})", self.token(), self.type_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_read_back() {
        let v = PyValue::List(vec![
            PyValue::None,
            PyValue::Bool(true),
            PyValue::Int(-3),
            PyValue::int(BigInt::from(u64::MAX) * 7),
            PyValue::Float(f64::NAN),
            PyValue::Float(-0.0),
            PyValue::Float(f64::NEG_INFINITY),
            PyValue::str("é\u{1}"),
            PyValue::Bytes(vec![0, 255]),
            PyValue::Tuple(vec![PyValue::Int(1)]),
            PyValue::Dict(vec![(PyValue::Int(1), PyValue::str("a"))]),
            PyValue::Dict(vec![(PyValue::str("hex"), PyValue::str("00"))]),
            PyValue::Dict(vec![(PyValue::str("k"), PyValue::List(vec![]))]),
        ]);
        let back = PyValue::from_json(&v.to_json()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn int_picks_the_small_form_when_it_fits() {
        assert!(matches!(PyValue::int(5u64), PyValue::Int(5)));
        assert!(matches!(PyValue::int(u64::MAX), PyValue::BigInt(_)));
    }

    #[test]
    fn display_escapes_control_characters() {
        let shown = PyValue::str("\u{1b}[2J").to_string();
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert_eq!(PyValue::Tuple(vec![PyValue::Int(1)]).to_string(), "(1,)");
    }

    #[test]
    fn bad_special_forms_are_refused() {
        for bad in [
            json!({"hex": "zz"}),
            json!({"int": "12a"}),
            json!({"float": "big"}),
            json!({"dict": [[1]]}),
            json!({"handle": 3}),
            json!({"tuple": 3}),
        ] {
            assert!(PyValue::from_json(&bad).is_err(), "{bad}");
        }
    }
}
