//! JSON exactly as Python's `json` module reads and writes it with its default arguments.
//!
//! Python services of the original design share our sessions, so "the same value" means what
//! Python means by it, and "the same bytes" means what `json.dumps` writes:
//!
//! - **Reading** follows `json.loads(bytes)`: the encoding is detected as Python's
//!   `json.detect_encoding` does (UTF-8 with or without a BOM, UTF-16 and UTF-32 in either byte
//!   order), then the text is parsed by the grammar of CPython's scanner: standard JSON plus the
//!   constants `NaN`, `Infinity` and `-Infinity`; integers of any length up to Python's
//!   4300-digit conversion limit; floats correctly rounded to the nearest double (so `1e400` is
//!   infinity, as in Python); strings with `\uXXXX` escapes, surrogate pairs joined; control
//!   characters refused inside strings (`strict=True`); a repeated object member keeps its first
//!   position and its last value, as a `dict` does.
//! - **Writing** follows `json.dumps(value)`: separators `", "` and `": "`, `ensure_ascii`
//!   escapes (`\uXXXX` in lowercase hex, surrogate pairs above U+FFFF, the short forms
//!   `\" \\ \n \r \t \b \f`), integers as their digits, floats as `float.__repr__` writes them
//!   (shortest digits that round-trip, exponent form below 1e-4 and from 1e16), `NaN`,
//!   `Infinity` and `-Infinity` for the non-finite floats, members in their order.
//!
//! What Python accepts but a Rust `String` cannot hold, a lone surrogate, is refused with its own
//! error ([`ParseError::LoneSurrogate`]) so that callers can count it apart from broken data.
//! Nesting is bounded ([`MAX_READ_DEPTH`]): the parser recurses once per level, and CPython
//! itself stops at about 993 levels (its recursion limit).
//!
//! `decode` turns bytes into text as `json.detect_encoding` does, `parse` reads the text by
//! CPython's grammar, `write` writes values as `json.dumps` does; this module holds the values,
//! the errors and the entry points.

mod decode;
mod parse;
mod write;

pub use self::write::{dumps, escaped_len, write_float, write_str, write_value};

use self::decode::decode_text;
use self::parse::parse_document;

/// Deepest nesting [`loads`] accepts. CPython reads at most about 993 levels (a
/// `RecursionError` beyond), so everything Python can read, we read; the bound keeps the
/// recursive parser's stack use small and fixed.
pub const MAX_READ_DEPTH: usize = 1000;

/// Longest integer, in digits, that Python converts (`sys.get_int_max_str_digits()`, 4300 by
/// default since CPython 3.11). `json.loads` refuses longer ones with a `ValueError`, and
/// `json.dumps` cannot write them, so they are not JSON as Python services see it.
pub const MAX_INT_DIGITS: usize = 4300;

/// A JSON value as Python holds it after `json.loads`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` (`None`).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer of any size (Python `int`), as canonical decimal digits: an optional `-`, no
    /// leading zeros, never `-0`.
    Int(String),
    /// A float (Python `float`), possibly NaN or infinite.
    Float(f64),
    /// A string.
    Str(String),
    /// An array (Python `list`).
    Array(Vec<Value>),
    /// An object (Python `dict`): members in insertion order, names unique.
    Object(Vec<(String, Value)>),
}

/// Why bytes are not JSON that Python would load, or cannot be held here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not text in any encoding `json.loads` detects (invalid UTF-8, UTF-16 or UTF-32).
    NotText,
    /// Not JSON: the grammar fails at byte `offset` of the decoded text.
    Syntax {
        /// Where, in bytes of the decoded text.
        offset: usize,
    },
    /// An integer longer than [`MAX_INT_DIGITS`] digits: Python refuses it too.
    IntegerTooLong,
    /// Nested deeper than the limit the parse ran with.
    TooDeep,
    /// A string holds a lone UTF-16 surrogate (`"\ud800"`). Python loads it; a Rust string
    /// cannot hold it.
    LoneSurrogate,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotText => f.write_str("not UTF-8, UTF-16 or UTF-32 text"),
            Self::Syntax { offset } => write!(f, "not JSON (at byte {offset})"),
            Self::IntegerTooLong => write!(f, "an integer has more than {MAX_INT_DIGITS} digits"),
            Self::TooDeep => f.write_str("nested too deeply"),
            Self::LoneSurrogate => f.write_str("a string holds a lone UTF-16 surrogate"),
        }
    }
}

impl std::error::Error for ParseError {}

/// `json.loads(bytes)`: detect the encoding, decode, parse. Nesting up to [`MAX_READ_DEPTH`].
pub fn loads(bytes: &[u8]) -> Result<Value, ParseError> {
    loads_with_depth(bytes, MAX_READ_DEPTH)
}

/// [`loads`] with another nesting limit (for writers that must stay below what readers take).
pub fn loads_with_depth(bytes: &[u8], max_depth: usize) -> Result<Value, ParseError> {
    let decoded = decode_text(bytes)?;
    parse_document(&decoded.text, &decoded.lone_surrogates, max_depth)
}

/// `json.loads(str)`: parse text that is already decoded. Like Python, a leading byte-order
/// mark is refused here (it is only skipped when decoding bytes).
pub fn loads_str(text: &str, max_depth: usize) -> Result<Value, ParseError> {
    if text.starts_with('\u{feff}') {
        return Err(ParseError::Syntax { offset: 0 });
    }
    parse_document(text, &[], max_depth)
}

/// How deeply `value` nests: 0 for a scalar, 1 for a flat array or object.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(json: &str) -> String {
        dumps(&loads(json.as_bytes()).expect("test input is JSON"))
    }

    // Each expectation below is what CPython 3.11's `json.dumps(json.loads(text))` prints.

    #[test]
    fn objects_use_python_separators_and_keep_member_order() {
        assert_eq!(
            roundtrip(r#"{"role":"user","content":"hi","b":1,"a":[1,2,{}],"z":[]}"#),
            r#"{"role": "user", "content": "hi", "b": 1, "a": [1, 2, {}], "z": []}"#
        );
    }

    #[test]
    fn non_ascii_is_escaped_like_ensure_ascii() {
        assert_eq!(roundtrip(r#""héllo""#), r#""h\u00e9llo""#);
        assert_eq!(roundtrip(r#""日本""#), r#""\u65e5\u672c""#);
        assert_eq!(roundtrip(r#""😀""#), r#""\ud83d\ude00""#);
    }

    #[test]
    fn control_characters_use_short_forms_where_python_does() {
        assert_eq!(
            roundtrip(r#""a\"b\\c\n\r\t\b\f\u0001\u001f\u007f\u2028""#),
            r#""a\"b\\c\n\r\t\b\f\u0001\u001f\u007f\u2028""#
        );
        assert_eq!(roundtrip(r#""a\/b""#), r#""a/b""#);
    }

    #[test]
    fn integers_keep_every_digit_and_minus_zero_is_zero() {
        assert_eq!(
            roundtrip(
                "[0, -0, -3, 9007199254740993, 18446744073709551616, \
                 -123456789012345678901234567890]"
            ),
            "[0, 0, -3, 9007199254740993, 18446744073709551616, \
             -123456789012345678901234567890]"
        );
    }

    #[test]
    fn integers_past_pythons_digit_limit_are_refused_like_python() {
        let at_limit = "7".repeat(MAX_INT_DIGITS);
        assert_eq!(roundtrip(&at_limit), at_limit);
        assert_eq!(roundtrip(&format!("-{at_limit}")), format!("-{at_limit}"));
        assert_eq!(
            loads(format!("{at_limit}7").as_bytes()),
            Err(ParseError::IntegerTooLong)
        );
    }

    #[test]
    fn floats_are_written_like_python_repr() {
        // python3 -c 'import json; print(json.dumps(json.loads("[0.1, 1.0, ...]")))'
        assert_eq!(
            roundtrip(
                "[0.1, 1.0, 1e16, 1e15, 1e-5, 0.0001, 123.456, -3e-7, 1.5e300, 5e-324, 2.5, \
                 -0.0, 0.0, 1e22, 12345678901234567890.0, 1E5, 1.7976931348623157e308, \
                 0.4245191891425139, 1e400, -1e400, 1e-400, 0.1e1, 1.0e+2]"
            ),
            "[0.1, 1.0, 1e+16, 1000000000000000.0, 1e-05, 0.0001, 123.456, -3e-07, 1.5e+300, \
             5e-324, 2.5, -0.0, 0.0, 1e+22, 1.2345678901234567e+19, 100000.0, \
             1.7976931348623157e+308, 0.4245191891425139, Infinity, -Infinity, 0.0, 1.0, 100.0]"
        );
    }

    #[test]
    fn exact_ties_between_two_shortest_forms_take_the_even_digit_as_python_does() {
        // python3 -c 'print(repr(2000000000000000.25), repr(2000000000000000.75), ...)'
        assert_eq!(
            roundtrip(
                "[2000000000000000.25, 2000000000000000.75, 1000000000000000.375, \
                 1000000000000000.625, 4000000000000000.5, 1e23, 5e-324]"
            ),
            "[2000000000000000.2, 2000000000000000.8, 1000000000000000.4, \
             1000000000000000.6, 4000000000000000.5, 1e+23, 5e-324]"
        );
    }

    #[test]
    fn pythons_non_finite_constants_are_read_and_written() {
        assert_eq!(
            roundtrip("[NaN, Infinity, -Infinity]"),
            "[NaN, Infinity, -Infinity]"
        );
        assert!(loads(b"-NaN").is_err());
        assert!(loads(b"nan").is_err());
    }

    #[test]
    fn a_repeated_member_keeps_its_first_place_and_last_value_like_a_dict() {
        assert_eq!(
            roundtrip(r#"{"a": 1, "b": 2, "a": 3}"#),
            r#"{"a": 3, "b": 2}"#
        );
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("{{{}, \"k3\": \"again\"}}", many.join(", "));
        let Value::Object(members) = loads(text.as_bytes()).unwrap() else {
            panic!("an object");
        };
        assert_eq!(members.len(), 40);
        assert_eq!(members[3], ("k3".to_string(), Value::Str("again".into())));
    }

    #[test]
    fn surrogate_escapes_pair_up_and_lone_ones_are_named() {
        assert_eq!(roundtrip(r#""\ud83d\ude00""#), r#""\ud83d\ude00""#);
        assert_eq!(
            loads(br#""\ud83d\ude00""#),
            Ok(Value::Str("😀".to_string()))
        );
        for lone in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\u0041""#,
        ] {
            assert_eq!(
                loads(lone.as_bytes()),
                Err(ParseError::LoneSurrogate),
                "{lone}"
            );
        }
        assert_eq!(loads(br#"{"\udfff": 1}"#), Err(ParseError::LoneSurrogate));
    }

    #[test]
    fn a_lone_surrogate_replaced_by_a_repeated_member_is_gone_as_in_python() {
        // python3 -c 'import json; print(json.dumps(json.loads(TEXT)))' prints the right side.
        assert_eq!(
            roundtrip(r#"{"a": ["\ud800"], "b": 1, "a": null}"#),
            r#"{"a": null, "b": 1}"#
        );
        assert_eq!(
            loads(br#"{"a": null, "a": "\ud800"}"#),
            Err(ParseError::LoneSurrogate)
        );
        // A lone surrogate in a name stays, whatever comes after.
        assert_eq!(
            loads(br#"{"\ud800": 1, "\ud800": 2}"#),
            Err(ParseError::LoneSurrogate)
        );
    }

    #[test]
    fn surrogates_encoded_in_the_bytes_are_lone_inside_strings_and_syntax_outside() {
        // UTF-8-encoded surrogates, which Python's `surrogatepass` decoding lets through.
        assert_eq!(loads(b"\"a\xed\xa0\x80b\""), Err(ParseError::LoneSurrogate));
        // An encoded high surrogate next to an escaped low one: Python does not join them.
        assert_eq!(
            loads(b"\"\xed\xa0\xbd\\ude00\""),
            Err(ParseError::LoneSurrogate)
        );
        assert!(matches!(
            loads(b"[1, \xed\xa0\x80]"),
            Err(ParseError::Syntax { .. })
        ));
        assert_eq!(loads(b"\"ok\" "), Ok(Value::Str("ok".into())));
    }

    #[test]
    fn encodings_are_detected_like_json_detect_encoding() {
        let expected = Ok(Value::Object(vec![("a".into(), Value::Str("é".into()))]));
        let text = r#"{"a": "é"}"#;
        let utf16le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let utf32le: Vec<u8> = text
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        let utf32be: Vec<u8> = text
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        let with_bom = |bom: &[u8], body: &[u8]| [bom, body].concat();
        for bytes in [
            text.as_bytes().to_vec(),
            with_bom(b"\xef\xbb\xbf", text.as_bytes()),
            utf16le.clone(),
            utf16be.clone(),
            with_bom(b"\xff\xfe", &utf16le),
            with_bom(b"\xfe\xff", &utf16be),
            utf32le.clone(),
            utf32be.clone(),
            with_bom(b"\xff\xfe\x00\x00", &utf32le),
            with_bom(b"\x00\x00\xfe\xff", &utf32be),
        ] {
            assert_eq!(loads(&bytes), expected, "{bytes:?}");
        }
        // A BOM in already-decoded text is refused, as `json.loads(str)` does.
        assert!(loads_str("\u{feff}1", MAX_READ_DEPTH).is_err());
        assert!(loads(b"\xef\xbb\xbf\xef\xbb\xbf1").is_err());
    }

    #[test]
    fn bytes_that_are_not_text_are_named() {
        for bytes in [
            &b"\xff\xfe\x00"[..],
            b"\"\xc3\"",
            b"\"\xf8\x88\x80\x80\x80\"",
            b"\x80",
        ] {
            assert!(
                matches!(
                    loads(bytes),
                    Err(ParseError::NotText | ParseError::Syntax { .. })
                ),
                "{bytes:?}"
            );
        }
        assert_eq!(loads(b"\"\xc3\""), Err(ParseError::NotText));
    }

    #[test]
    fn the_grammar_is_cpythons() {
        for ok in [
            " 1 ",
            "\t[\r\n]\n",
            "-0.5e-3",
            "0",
            "\"\"",
            "{}",
            "[[], {}]",
            "1E+2",
            "1e-0",
        ] {
            assert!(loads(ok.as_bytes()).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "- 1",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\" 1}",
            "[1 2]",
            "\"\t\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"abc",
            "tru",
            "nul",
            "Infinit",
            "1 2",
            "{\"a\":}",
            "[",
            "'a'",
            "\u{a0}1",
            "\u{feff}1x",
        ] {
            assert!(loads(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_without_exhausting_the_stack() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(loads(deep(MAX_READ_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            loads(deep(MAX_READ_DEPTH + 1).as_bytes()),
            Err(ParseError::TooDeep)
        );
        assert_eq!(
            loads_with_depth(deep(3).as_bytes(), 2),
            Err(ParseError::TooDeep)
        );
        assert_eq!(depth(&loads(deep(7).as_bytes()).unwrap()), 7);
        // Far deeper input fails fast at the limit rather than recursing.
        assert_eq!(
            loads("[".repeat(1_000_000).as_bytes()),
            Err(ParseError::TooDeep)
        );
    }

    #[test]
    fn escaped_len_is_the_written_length() {
        for text in [
            "",
            "abc",
            "é日😀",
            "\"\\\n\r\t\u{8}\u{c}\u{1}\u{7f}",
            "mixed é \" 😀 x",
        ] {
            let mut out = String::new();
            write_str(&mut out, text);
            assert_eq!(escaped_len(text), out.len(), "{text:?}");
        }
    }
}
