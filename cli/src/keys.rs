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
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(digit) => digits.push(digit),
                        // Without its closing brace the escape could mean another key.
                        None => {
                            return Err(format!("`\\u{{{digits}` has no closing brace"));
                        }
                    }
                }
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

/// `text` as one shell word: in single quotes, a quote inside written `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `agent-memory` with the options that name the store and key prefix of this run, for a
/// command printed to be pasted: `address` as given (`--store`, or `AGENT_MEMORY_STORE`),
/// except its password, written `PASSWORD` (never printed); the prefix when not the default.
pub fn command_for(address: Option<&str>, key_prefix: &str) -> String {
    let mut words = vec!["agent-memory".to_string()];
    if let Some(address) = address {
        words.push("--store".to_string());
        words.push(shell_quote(&without_password(address)));
    }
    if key_prefix != agent_memory::settings::DEFAULT_KEY_PREFIX {
        words.push("--key-prefix".to_string());
        words.push(shell_quote(key_prefix));
    }
    words.join(" ")
}

/// A store address with its password (`scheme://user:password@...`) replaced by `PASSWORD`.
fn without_password(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:PASSWORD{}", &rest[at..])
        }
        None => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_command_names_the_store_without_its_password() {
        assert_eq!(command_for(None, "ai:memory:"), "agent-memory");
        assert_eq!(
            command_for(Some("redis://u:s3cret@h:1/2"), "ai:memory:"),
            "agent-memory --store 'redis://u:PASSWORD@h:1/2'"
        );
        assert_eq!(
            command_for(Some("redis://:s3cret@h:1"), "x:"),
            "agent-memory --store 'redis://:PASSWORD@h:1' --key-prefix 'x:'"
        );
        assert_eq!(
            command_for(Some("./it's.redb"), "ai:memory:"),
            "agent-memory --store './it'\\''s.redb'"
        );
    }

    #[test]
    fn an_escape_without_its_end_is_refused_not_guessed() {
        for typo in [
            "ai:memory:\\u{a",
            "ai:memory:\\u{ab",
            "ai:memory:\\u",
            "ai:memory:\\x4",
        ] {
            assert!(parse(typo).is_err(), "{typo}");
        }
        assert_eq!(parse("ai:memory:\\u{a}").unwrap(), b"ai:memory:\n");
    }

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
