//! [`Json`]: one JSON value, held exactly as Python's `json.dumps` writes it.
//!
//! Message members travel between agents, this host, the policy and Python services. A
//! `serde_json::Value` cannot carry all of what Python stores: integers beyond 64 bits, `NaN`
//! and the infinities (which `json.dumps` writes by default), and, without a crate-wide feature
//! we do not impose on embedders, floats parsed exactly. So a member is held as its canonical
//! text — the bytes `json.dumps` writes for it — which makes equality mean Python's equality
//! and makes a read-then-write leave stored bytes unchanged. Conversions to and from
//! `serde_json::Value` are there for convenience; the only ones that can fail are the values
//! `serde_json` has no exact form for, and they say so.

use std::fmt;

use agent_memory_format::json::{self as pyjson, ParseError, Value as PyValue};
use serde_json::{Number, Value};

/// One JSON value in canonical Python form (`json.dumps` text, ASCII only).
///
/// ```
/// use agent_memory::json::Json;
///
/// let parsed = Json::parse(r#"{"n":1E5,"big":123456789012345678901234567890,"x":NaN}"#)?;
/// assert_eq!(parsed.as_str(), r#"{"n": 100000.0, "big": 123456789012345678901234567890, "x": NaN}"#);
/// assert_eq!(Json::from(serde_json::json!({"a": [1, 0.5]})).as_str(), r#"{"a": [1, 0.5]}"#);
/// # Ok::<(), agent_memory::json::JsonError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Json {
    text: String,
}

/// Why text is not a [`Json`] value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(ParseError);

impl From<ParseError> for JsonError {
    fn from(error: ParseError) -> Self {
        Self(error)
    }
}

impl JsonError {
    /// What is wrong, as the storage format names it.
    pub fn reason(&self) -> ParseError {
        self.0
    }
}

/// Why a [`Json`] value has no exact `serde_json::Value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotStandardJson {
    /// It holds `NaN`, `Infinity` or `-Infinity` (Python writes them; JSON has no such number).
    #[error("holds NaN or an infinity, which standard JSON cannot hold (use Json::as_str)")]
    NonFinite,
    /// It holds an integer beyond 64 bits, which `serde_json::Number` cannot hold exactly.
    #[error(
        "holds an integer beyond 64 bits, which serde_json cannot hold exactly (use Json::as_str)"
    )]
    IntegerBeyond64Bits,
    /// It nests deeper than the reader allows.
    #[error("nests deeper than {} levels", pyjson::MAX_READ_DEPTH)]
    TooDeep,
}

impl Json {
    /// Parse JSON text as Python's `json.loads` does (standard JSON, plus `NaN`, `Infinity`,
    /// `-Infinity` and integers of any size), into canonical form.
    pub fn parse(text: &str) -> Result<Self, JsonError> {
        pyjson::loads_str(text, pyjson::MAX_READ_DEPTH)
            .map(|value| Self::from_py(&value))
            .map_err(JsonError)
    }

    /// `null`.
    pub fn null() -> Self {
        Self {
            text: "null".to_string(),
        }
    }

    /// The canonical text: exactly what `json.dumps` writes for this value.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        self.text == "null"
    }

    /// The value as a `serde_json::Value`, exact, or why it cannot be.
    pub fn to_value(&self) -> Result<Value, NotStandardJson> {
        let value = pyjson::loads_str(&self.text, pyjson::MAX_READ_DEPTH)
            .map_err(|_| NotStandardJson::TooDeep)?;
        to_serde(value)
    }

    pub(crate) fn from_py(value: &PyValue) -> Self {
        Self {
            text: pyjson::dumps(value),
        }
    }

    /// Text the storage format wrote with its `dumps` (canonical by construction).
    pub(crate) fn from_canonical(text: String) -> Self {
        Self { text }
    }

    pub(crate) fn into_string(self) -> String {
        self.text
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        Self::from(&value)
    }
}

impl From<&Value> for Json {
    /// Every `serde_json::Value` has an exact canonical form: integers keep their digits,
    /// floats are written as Python's `repr` writes the same double.
    fn from(value: &Value) -> Self {
        Self::from_py(&py_value_of(value))
    }
}

impl TryFrom<&Json> for Value {
    type Error = NotStandardJson;

    fn try_from(json: &Json) -> Result<Self, Self::Error> {
        json.to_value()
    }
}

/// A `serde_json::Value` as the storage format's value. Exact: a serde number is an i64, a u64
/// or a finite f64, and each has its Python counterpart.
pub(crate) fn py_value_of(value: &Value) -> PyValue {
    match value {
        Value::Null => PyValue::Null,
        Value::Bool(flag) => PyValue::Bool(*flag),
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(int), _, _) => PyValue::Int(int.to_string()),
            (None, Some(int), _) => PyValue::Int(int.to_string()),
            (None, None, Some(float)) => PyValue::Float(float),
            // serde_json numbers are always one of the three.
            (None, None, None) => PyValue::Null,
        },
        Value::String(text) => PyValue::Str(text.clone()),
        Value::Array(items) => PyValue::Array(items.iter().map(py_value_of).collect()),
        Value::Object(members) => PyValue::Object(
            members
                .iter()
                .map(|(name, member)| (name.clone(), py_value_of(member)))
                .collect(),
        ),
    }
}

fn to_serde(value: PyValue) -> Result<Value, NotStandardJson> {
    Ok(match value {
        PyValue::Null => Value::Null,
        PyValue::Bool(flag) => Value::Bool(flag),
        PyValue::Int(digits) => {
            if let Ok(int) = digits.parse::<i64>() {
                Value::Number(int.into())
            } else if let Ok(int) = digits.parse::<u64>() {
                Value::Number(int.into())
            } else {
                return Err(NotStandardJson::IntegerBeyond64Bits);
            }
        }
        PyValue::Float(float) => {
            Value::Number(Number::from_f64(float).ok_or(NotStandardJson::NonFinite)?)
        }
        PyValue::Str(text) => Value::String(text),
        PyValue::Array(items) => {
            Value::Array(items.into_iter().map(to_serde).collect::<Result<_, _>>()?)
        }
        PyValue::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(name, member)| Ok((name, to_serde(member)?)))
                .collect::<Result<_, NotStandardJson>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serde_values_get_python_text_and_come_back_equal() {
        let value = json!({"s": "é\n", "i": -3, "u": u64::MAX, "f": 0.4245191891425139,
                           "z": -0.0, "e": 1e16, "a": [null, true, {}]});
        let json = Json::from(&value);
        assert_eq!(
            json.as_str(),
            r#"{"s": "\u00e9\n", "i": -3, "u": 18446744073709551615, "f": 0.4245191891425139, "z": -0.0, "e": 1e+16, "a": [null, true, {}]}"#
        );
        assert_eq!(json.to_value(), Ok(value));
    }

    #[test]
    fn values_serde_json_cannot_hold_say_so() {
        assert_eq!(
            Json::parse("[1, NaN]").unwrap().to_value(),
            Err(NotStandardJson::NonFinite)
        );
        assert_eq!(
            Json::parse("123456789012345678901234567890")
                .unwrap()
                .to_value(),
            Err(NotStandardJson::IntegerBeyond64Bits)
        );
    }

    #[test]
    fn equality_is_pythons() {
        assert_eq!(Json::parse("1E2").unwrap(), Json::parse("100.0").unwrap());
        assert_eq!(Json::parse("-0").unwrap(), Json::parse("0").unwrap());
        assert_ne!(Json::parse("1").unwrap(), Json::parse("1.0").unwrap());
        assert_eq!(
            Json::parse(r#"{"a":1,"a":2}"#).unwrap().as_str(),
            r#"{"a": 2}"#
        );
    }

    #[test]
    fn text_python_would_refuse_is_refused() {
        for text in ["", "{", "[1,]", "\"\\ud800\"", "1e", "\u{feff}1"] {
            assert!(Json::parse(text).is_err(), "{text:?}");
        }
    }
}
