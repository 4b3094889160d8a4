//! Writing values as `json.dumps(value)` does with its default arguments.

use std::fmt::Write as _;

use super::Value;

/// `json.dumps(value)`, appended to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(digits) => out.push_str(digits),
        Value::Float(float) => write_float(out, *float),
        Value::Str(text) => write_str(out, text),
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
                write_str(out, name);
                out.push_str(": ");
                write_value(out, member);
            }
            out.push('}');
        }
    }
}

/// `json.dumps(value)` as a new string.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// A Python float as `json.dumps` writes it: `float.__repr__`, or `NaN` / `Infinity` /
/// `-Infinity`.
pub fn write_float(out: &mut String, float: f64) {
    if float.is_nan() {
        out.push_str("NaN");
        return;
    }
    if float.is_infinite() {
        out.push_str(if float > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    let scientific = shortest_scientific(float);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    out.push_str(sign);
    // Where the decimal point goes relative to the digits, as CPython's `format_float_short`
    // names it: repr uses positional notation for -4 < decpt <= 16.
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
        let _ = write!(out, "{:02}", exponent.unsigned_abs());
    }
}

/// The shortest digits that read back as `float`, in Rust's `{:e}` layout, chosen as CPython's
/// `repr` chooses them.
///
/// Rust's `{:e}` gives the shortest digits that round-trip, the closest to the exact value when
/// several do — as CPython does — but breaks an exact tie between two such candidates upwards,
/// where CPython takes the even last digit (2000000000000000.25 is `...0.2` in Python, `...0.3`
/// in Rust). Rust's fixed-precision formatting rounds exact ties to even, so the same number of
/// digits formatted that way is CPython's choice whenever it also reads back as `float`.
fn shortest_scientific(float: f64) -> String {
    let mut shortest = String::with_capacity(32);
    // Writing to a String cannot fail.
    let _ = write!(shortest, "{float:e}");
    let digits = shortest
        .split('e')
        .next()
        .unwrap_or("")
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    let mut even = String::with_capacity(32);
    let _ = write!(even, "{:.*e}", digits.saturating_sub(1), float);
    if even != shortest && even.parse::<f64>() == Ok(float) {
        return even;
    }
    shortest
}

/// `text` as a quoted JSON string with Python's `ensure_ascii` escaping, appended to `out`.
pub fn write_str(out: &mut String, text: &str) {
    out.push('"');
    // Copy runs of characters that need no escape in one go.
    let mut run_start = 0;
    for (at, ch) in text.char_indices() {
        let short = match ch {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{08}' => "\\b",
            '\u{0c}' => "\\f",
            ' '..='~' => continue,
            _ => "",
        };
        out.push_str(&text[run_start..at]);
        run_start = at + ch.len_utf8();
        if short.is_empty() {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                push_unicode_escape(out, *unit);
            }
        } else {
            out.push_str(short);
        }
    }
    out.push_str(&text[run_start..]);
    out.push('"');
}

/// The length in bytes of `text` as [`write_str`] writes it, quotes included.
///
/// Counted from the UTF-8 bytes, without decoding characters (the host runs this on every
/// message before a call): a leading byte of a 4-byte sequence is a character beyond U+FFFF
/// (a surrogate pair, 12 bytes escaped), another leading byte a 6-byte escape, and
/// continuation bytes add nothing.
pub fn escaped_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            b' '..=b'~' => 1,
            0x80..=0xbf => 0,
            0xf0..=0xff => 12,
            _ => 6,
        })
        .sum::<usize>()
}

fn push_unicode_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12u16, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}
