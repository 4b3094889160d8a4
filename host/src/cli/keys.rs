//! Raw keys on a command line: how `doctor` writes a key that agents cannot name (empty id,
//! control characters, not UTF-8), and how `clear --raw-key` reads it back, byte for byte.
//!
//! The escapes are Rust's: `\xNN` for a byte that is not part of UTF-8 text, `\u{…}` for a
//! control character or a bidirectional override, `\\` for a backslash; everything else as it
//! is. [`escape`] and [`parse`] are inverse, so a line of `doctor` can be pasted.

use std::fmt::Write as _;

/// `key` with every byte a terminal could act on, and every backslash, escaped.
pub fn escape(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for chunk in key.utf8_chunks() {
        for ch in chunk.valid().chars() {
            let bidi = matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            match ch {
                '\\' => out.push_str("\\\\"),
                _ if ch.is_control() || bidi => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(ch));
                }
                _ => out.push(ch),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// The key `text` spells with [`escape`]'s escapes (and `\n`, `\r`, `\t`, `\0`, which people
/// type), or what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            let mut buffer = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        match chars.next() {
            Some('\\') => out.push(b'\\'),
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('x') => {
                let digits: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&digits, 16)
                    .ok()
                    .filter(|_| digits.len() == 2)
                    .ok_or_else(|| format!("`\\x{digits}` is not a byte: write `\\xNN`"))?;
                out.push(byte);
            }
            Some('u') => {
                if chars.next() != Some('{') {
                    return Err("`\\u` must be followed by `{hex}`".to_string());
                }
                let digits: String = chars.by_ref().take_while(|&ch| ch != '}').collect();
                let ch = u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("`\\u{{{digits}}}` is not a character"))?;
                let mut buffer = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
            }
            Some(other) => {
                return Err(format!(
                    "`\\{other}` is not an escape: use `\\\\` for a backslash"
                ));
            }
            None => return Err("the key ends in a lone backslash".to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_comes_back_from_its_escaped_form() {
        let mut state = 0x1234_5678_9abc_def1u64;
        for length in 0..400 {
            let key: Vec<u8> = (0..length % 40)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let escaped = escape(&key);
            assert!(!escaped.chars().any(char::is_control), "{escaped:?}");
            assert_eq!(parse(&escaped).unwrap(), key, "{escaped}");
        }
        for key in [
            &b"ai:memory:"[..],
            b"a\\b",
            b"\x1b[31m",
            b"\xff\xfe",
            "é\u{202e}".as_bytes(),
        ] {
            assert_eq!(parse(&escape(key)).unwrap(), key);
        }
    }

    #[test]
    fn escapes_that_spell_nothing_are_refused() {
        for bad in ["\\", "\\q", "\\x4", "\\xzz", "\\u41", "\\u{110000}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("a\\nb\\t\\0").unwrap(), b"a\nb\t\0");
    }
}
