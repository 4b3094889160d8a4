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
//! Integers are written as integers; floats as Python's `repr` writes them (shortest digits that
//! round-trip, exponent form below 1e-4 and from 1e16, `e-07` style exponents, `.0` on whole
//! numbers). Integers beyond 64 bits, which Python keeps exactly, arrive here as floats: serde_json
//! without `arbitrary_precision` has no other representation (see the README's limits).

use serde_json::Value;

/// Append the Python rendering of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
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

fn write_number(out: &mut String, number: &serde_json::Number) {
    if let Some(int) = number.as_i64() {
        out.push_str(&int.to_string());
    } else if let Some(int) = number.as_u64() {
        out.push_str(&int.to_string());
    } else if let Some(float) = number.as_f64() {
        write_float(out, float);
    }
}

/// Python's `float.__repr__` (the "short" repr style of CPython 3.1+).
fn write_float(out: &mut String, float: f64) {
    // Rust's `{:e}` gives the same shortest round-trip digits; only the layout differs.
    let scientific = format!("{float:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    // Position of the decimal point relative to the digits, as CPython's `float_repr` names it.
    let decpt = exponent + 1;
    if -4 < decpt && decpt <= 16 {
        let point = decpt.unsigned_abs() as usize;
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', point));
            out.push_str(&digits);
        } else if point >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(if exponent < 0 { "e-" } else { "e+" });
        out.push_str(&format!("{:02}", exponent.unsigned_abs()));
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
    fn integers_are_written_as_integers() {
        assert_eq!(
            dumps("[0, -3, 9007199254740993, 18446744073709551615, -9223372036854775808]"),
            "[0, -3, 9007199254740993, 18446744073709551615, -9223372036854775808]"
        );
    }

    #[test]
    fn floats_are_written_like_python_repr() {
        // python3 -c 'import json; print(json.dumps([0.1, 1.0, 1e16, ...]))'
        assert_eq!(
            dumps(
                "[0.1, 1.0, 1e16, 1e15, 1e-5, 0.0001, 123.456, -3e-7, 1.5e300, 5e-324, 2.5, \
                 -0.0, 0.0, 1e22, 12345678901234567890.0, 1E5, 1.7976931348623157e308]"
            ),
            "[0.1, 1.0, 1e+16, 1000000000000000.0, 1e-05, 0.0001, 123.456, -3e-07, 1.5e+300, \
             5e-324, 2.5, -0.0, 0.0, 1e+22, 1.2345678901234567e+19, 100000.0, \
             1.7976931348623157e+308]"
        );
    }

    #[test]
    fn literals_are_lowercase() {
        assert_eq!(dumps("[true, false, null]"), "[true, false, null]");
    }
}
