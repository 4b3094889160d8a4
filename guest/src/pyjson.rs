//! JSON text exactly as Python's `json.dumps` writes it with its default arguments.
//!
//! Python services of the original design read and write the same sessions, and some of their
//! tools match raw entries (`LREM` by value, dedupe by bytes). Writing what `json.dumps` would
//! write makes our entries indistinguishable from theirs:
//!
//! - separators `", "` between items and `": "` after keys;
//! - `ensure_ascii`: every character outside printable ASCII (space to `~`) is escaped as
//!   `\uXXXX` with lowercase hex, as a surrogate pair above U+FFFF; `"`, `\` and the five
//!   control characters with short forms (`\b \f \n \r \t`) use those;
//! - members in the order given.
//!
//! Numbers are written as the text they arrived as (serde_json's `arbitrary_precision`), so an
//! integer of any size or a float such as `0.1` survives unchanged.

use serde_json::Value;

/// Append the Python rendering of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (index, (name, member)) in members.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_member(out, name, member);
            }
            out.push('}');
        }
    }
}

/// Append `"name": value` (without a leading separator).
pub fn write_member(out: &mut String, name: &str, value: &Value) {
    write_string(out, name);
    out.push_str(": ");
    write_value(out, value);
}

/// Append `text` as a quoted JSON string with Python's `ensure_ascii` escaping.
pub fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    push_unicode_escape(out, *unit);
                }
            }
        }
    }
    out.push('"');
}

fn push_unicode_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12u16, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(json: &str) -> String {
        let value: Value = serde_json::from_str(json).expect("test input is JSON");
        let mut out = String::new();
        write_value(&mut out, &value);
        out
    }

    // Each expectation below is what CPython 3.11 `json.dumps` prints for the same value.

    #[test]
    fn objects_use_python_separators_and_keep_member_order() {
        assert_eq!(
            dumps(r#"{"role":"user","content":"hi","b":1,"a":[1,2,{}],"z":[]}"#),
            r#"{"role": "user", "content": "hi", "b": 1, "a": [1, 2, {}], "z": []}"#
        );
    }

    #[test]
    fn non_ascii_is_escaped_like_ensure_ascii() {
        assert_eq!(dumps(r#""héllo""#), r#""h\u00e9llo""#);
        assert_eq!(dumps(r#""日本""#), r#""\u65e5\u672c""#);
    }

    #[test]
    fn astral_characters_become_lowercase_surrogate_pairs() {
        assert_eq!(dumps(r#""😀""#), r#""\ud83d\ude00""#);
    }

    #[test]
    fn control_characters_use_short_forms_where_python_does() {
        assert_eq!(
            dumps(r#""a\"b\\c\n\r\t\b\f\u0001\u001f\u007f""#),
            r#""a\"b\\c\n\r\t\b\f\u0001\u001f\u007f""#
        );
    }

    #[test]
    fn slash_is_not_escaped() {
        assert_eq!(dumps(r#""a\/b""#), r#""a/b""#);
    }

    #[test]
    fn numbers_keep_their_text() {
        assert_eq!(
            dumps("[0.1, 1.0, -3, 123456789012345678901234567890, 1e+100]"),
            "[0.1, 1.0, -3, 123456789012345678901234567890, 1e+100]"
        );
    }

    #[test]
    fn literals_are_lowercase() {
        assert_eq!(dumps("[true, false, null]"), "[true, false, null]");
    }
}
