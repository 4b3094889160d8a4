//! Bytes to text as `json.loads(bytes)` decodes them: `json.detect_encoding`, then
//! `bytes.decode(encoding, "surrogatepass")`.

use std::borrow::Cow;

use super::ParseError;

/// Text decoded from bytes, with the byte offsets at which a lone surrogate (encoded in the
/// bytes themselves, which Python's `surrogatepass` decoding lets through) was replaced by
/// U+FFFD. Whether such a surrogate matters depends on where it is: inside a string it is a
/// [`ParseError::LoneSurrogate`], elsewhere the grammar fails on it anyway.
pub(super) struct Decoded<'a> {
    pub(super) text: Cow<'a, str>,
    pub(super) lone_surrogates: Vec<usize>,
}

/// Python's `json.detect_encoding`, then `bytes.decode(encoding, "surrogatepass")`.
pub(super) fn decode_text(bytes: &[u8]) -> Result<Decoded<'_>, ParseError> {
    const BOM_UTF8: &[u8] = b"\xef\xbb\xbf";
    if bytes.starts_with(b"\x00\x00\xfe\xff") {
        return decode_utf32(&bytes[4..], u32::from_be_bytes);
    }
    if bytes.starts_with(b"\xff\xfe\x00\x00") {
        return decode_utf32(&bytes[4..], u32::from_le_bytes);
    }
    if bytes.starts_with(b"\xfe\xff") {
        return decode_utf16(&bytes[2..], u16::from_be_bytes);
    }
    if bytes.starts_with(b"\xff\xfe") {
        return decode_utf16(&bytes[2..], u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(BOM_UTF8) {
        return decode_utf8(rest);
    }
    match bytes {
        [0, b1, _, _, ..] if *b1 != 0 => decode_utf16(bytes, u16::from_be_bytes),
        [0, _, _, _, ..] => decode_utf32(bytes, u32::from_be_bytes),
        [_, 0, b2, b3, ..] if *b2 != 0 || *b3 != 0 => decode_utf16(bytes, u16::from_le_bytes),
        [_, 0, _, _, ..] => decode_utf32(bytes, u32::from_le_bytes),
        [0, _] => decode_utf16(bytes, u16::from_be_bytes),
        [_, 0] => decode_utf16(bytes, u16::from_le_bytes),
        _ => decode_utf8(bytes),
    }
}

/// UTF-8 with `surrogatepass`: encoded surrogates (`ED A0..BF 80..BF`) are let through.
fn decode_utf8(bytes: &[u8]) -> Result<Decoded<'_>, ParseError> {
    // The common case, and the only one for entries Python or we wrote: plain UTF-8, no copy.
    let first_error = match std::str::from_utf8(bytes) {
        Ok(text) => {
            return Ok(Decoded {
                text: Cow::Borrowed(text),
                lone_surrogates: Vec::new(),
            });
        }
        Err(error) => error.valid_up_to(),
    };
    let mut text = String::with_capacity(bytes.len());
    let mut lone_surrogates = Vec::new();
    let mut rest = bytes;
    let mut valid = first_error;
    loop {
        // `valid` bytes of `rest` are UTF-8 (checked by `from_utf8` just before).
        text.push_str(std::str::from_utf8(&rest[..valid]).map_err(|_| ParseError::NotText)?);
        rest = &rest[valid..];
        match rest {
            [] => break,
            [0xed, 0xa0..=0xbf, 0x80..=0xbf, tail @ ..] => {
                lone_surrogates.push(text.len());
                text.push(char::REPLACEMENT_CHARACTER);
                rest = tail;
            }
            _ => return Err(ParseError::NotText),
        }
        valid = match std::str::from_utf8(rest) {
            Ok(_) => rest.len(),
            Err(error) => error.valid_up_to(),
        };
    }
    Ok(Decoded {
        text: Cow::Owned(text),
        lone_surrogates,
    })
}

/// UTF-16 with `surrogatepass`: unpaired surrogates are let through.
fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<Decoded<'static>, ParseError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ParseError::NotText);
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let mut text = String::with_capacity(bytes.len());
    let mut lone_surrogates = Vec::new();
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(ch) => text.push(ch),
            Err(_) => {
                lone_surrogates.push(text.len());
                text.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    Ok(Decoded {
        text: Cow::Owned(text),
        lone_surrogates,
    })
}

/// UTF-32 with `surrogatepass`: surrogate code points are let through, beyond U+10FFFF is not.
fn decode_utf32(bytes: &[u8], unit: fn([u8; 4]) -> u32) -> Result<Decoded<'static>, ParseError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(ParseError::NotText);
    }
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut lone_surrogates = Vec::new();
    for quad in bytes.chunks_exact(4) {
        let code = unit([quad[0], quad[1], quad[2], quad[3]]);
        match char::from_u32(code) {
            Some(ch) => text.push(ch),
            None if (0xd800..=0xdfff).contains(&code) => {
                lone_surrogates.push(text.len());
                text.push(char::REPLACEMENT_CHARACTER);
            }
            None => return Err(ParseError::NotText),
        }
    }
    Ok(Decoded {
        text: Cow::Owned(text),
        lone_surrogates,
    })
}
