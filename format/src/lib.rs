//! The storage format agent-memory shares with the Python original, in one place for the
//! policy component (which writes and reads entries) and the host (which checks sizes before a
//! call and inspects stores for operators).
//!
//! # Layout
//! - [`json`]: JSON exactly as Python's `json.loads` reads it and `json.dumps` writes it.
//! - [`entry`]: one list entry <-> one message (role, content, other members).
//!
//! No dependencies, no `unsafe`, no panics on any input: the policy runs this on data anyone
//! with access to Redis may have written, and a panic there is a trap.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod entry;
pub mod json;

#[cfg(test)]
mod properties {
    //! Property tests over generated JSON: exactness of the canonical form, any layout in,
    //! canonical out, and no panic on any bytes. The same properties are checked against the
    //! real CPython in the integration tests (tests/tests/interop_properties.rs).

    use proptest::prelude::*;

    use crate::json::{self, Value};

    /// Floats at the edges as well as anywhere: every bit pattern is a double.
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(0.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(f64::MAX),
            Just(1e16),
            Just(1e-5),
            Just(0.1),
            (-1e6f64..1e6).prop_map(|f| (f * 1000.0).round() / 1000.0),
        ]
    }

    fn int() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|i| i.to_string()),
            ("-?[1-9][0-9]{19,60}").prop_map(|digits| digits),
            Just("0".to_string()),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ -~]{0,12}",
            "[\\u{0}-\\u{1f}\"\\\\/é日😀\u{2028}\u{7f}]{0,8}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            int().prop_map(Value::Int),
            float().prop_map(Value::Float),
            text().prop_map(Value::Str),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((text(), inner), 0..6).prop_map(|members| {
                    // Names unique, as in a dict: keep the first of each.
                    let mut seen = std::collections::HashSet::new();
                    Value::Object(
                        members
                            .into_iter()
                            .filter(|(name, _)| seen.insert(name.clone()))
                            .collect(),
                    )
                }),
            ]
        })
    }

    /// `value` in another valid layout: compact or airy whitespace, raw (unescaped) non-ASCII,
    /// exponents and integers written differently where Python reads them the same.
    fn relayout(value: &Value, airy: bool, out: &mut String) {
        let space = if airy { " \t\n " } else { "" };
        match value {
            Value::Str(text) => {
                out.push('"');
                for ch in text.chars() {
                    match ch {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\u{0}'..='\u{1f}' => out.push_str(&format!("\\u{:04X}", ch as u32)),
                        '/' if airy => out.push_str("\\/"),
                        _ => out.push(ch),
                    }
                }
                out.push('"');
            }
            Value::Float(float) if float.is_finite() => {
                // Rust's shortest round-trip form, in exponent notation: a layout Python never
                // writes but reads as the same double.
                out.push_str(&format!("{float:E}"));
            }
            Value::Int(digits) if digits == "0" && airy => out.push_str("-0"),
            Value::Array(items) => {
                out.push('[');
                out.push_str(space);
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                        out.push_str(space);
                    }
                    relayout(item, airy, out);
                }
                out.push_str(space);
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (index, (name, member)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(space);
                    relayout(&Value::Str(name.clone()), airy, out);
                    out.push_str(space);
                    out.push(':');
                    relayout(member, airy, out);
                }
                out.push('}');
            }
            other => json::write_value(out, other),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_canonical_form_reads_back_as_the_same_value_and_bytes(value in value()) {
            let written = json::dumps(&value);
            prop_assert!(written.is_ascii());
            let read = json::loads(written.as_bytes()).expect("our output is JSON");
            prop_assert_eq!(json::dumps(&read), written);
        }

        #[test]
        fn every_double_survives_exactly(float in float()) {
            let written = json::dumps(&Value::Float(float));
            match json::loads(written.as_bytes()) {
                Ok(Value::Float(read)) if float.is_nan() => prop_assert!(read.is_nan()),
                Ok(Value::Float(read)) => prop_assert_eq!(read.to_bits(), float.to_bits()),
                other => prop_assert!(false, "{written} read as {other:?}"),
            }
        }

        #[test]
        fn any_layout_reads_as_the_canonical_value(value in value(), airy in any::<bool>()) {
            let mut text = String::new();
            relayout(&value, airy, &mut text);
            let read = json::loads(text.as_bytes()).expect("a relayout is JSON");
            prop_assert_eq!(json::dumps(&read), json::dumps(&value));
        }

        #[test]
        fn escaped_len_is_the_length_write_str_writes(text in any::<String>()) {
            let mut out = String::new();
            json::write_str(&mut out, &text);
            prop_assert_eq!(json::escaped_len(&text), out.len());
        }

        #[test]
        fn no_bytes_make_the_reader_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = json::loads(&bytes);
            let _ = crate::entry::decode(&bytes);
        }

        #[test]
        fn damaged_json_never_panics(value in value(), cut in any::<prop::sample::Index>(),
                                     byte in any::<u8>()) {
            let mut bytes = json::dumps(&value).into_bytes();
            let at = cut.index(bytes.len() + 1);
            if at < bytes.len() {
                bytes[at] = byte;
            }
            let _ = json::loads(&bytes);
            let _ = json::loads(&bytes[..at]);
        }
    }
}
