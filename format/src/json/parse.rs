//! Text to a [`Value`] by the grammar of CPython's JSON scanner.

use std::collections::BTreeMap;

use super::{MAX_INT_DIGITS, ParseError, Value};

/// `json.JSONDecoder.decode`: whitespace, one value, whitespace, end.
pub(super) fn parse_document(
    text: &str,
    lone_surrogates: &[usize],
    max_depth: usize,
) -> Result<Value, ParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        lone_surrogates,
        depth: 0,
        max_depth,
        lone_in_string: false,
    };
    parser.skip_whitespace();
    let (value, lone) = parser.value()?;
    parser.skip_whitespace();
    if parser.pos != parser.bytes.len() {
        return Err(parser.syntax());
    }
    // Reported only for a document Python would load (otherwise it is simply not JSON), and
    // only when a lone surrogate is still in the value once repeated members have replaced
    // earlier ones, as they do in the dict Python builds.
    if lone > 0 {
        return Err(ParseError::LoneSurrogate);
    }
    Ok(value)
}

/// A recursive-descent parser with CPython's scanner's grammar. Recursion is bounded by
/// `max_depth`.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    lone_surrogates: &'a [usize],
    depth: usize,
    max_depth: usize,
    /// The string being read holds a lone surrogate (see [`ParseError::LoneSurrogate`]).
    lone_in_string: bool,
}

/// A parsed value, and how many strings in it hold a lone surrogate (which Python loads and a
/// Rust string cannot hold; they stand as U+FFFD meanwhile).
type Parsed = (Value, usize);

impl Parser<'_> {
    fn syntax(&self) -> ParseError {
        ParseError::Syntax { offset: self.pos }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Python's `WHITESPACE`: space, tab, newline, carriage return.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Parsed, ParseError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok((value, 0))
        } else {
            Err(self.syntax())
        }
    }

    fn value(&mut self) -> Result<Parsed, ParseError> {
        match self.peek() {
            Some(b'"') => self
                .string()
                .map(|(text, lone)| (Value::Str(text), usize::from(lone))),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'N') => self.literal("NaN", Value::Float(f64::NAN)),
            Some(b'I') => self.literal("Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if self.bytes[self.pos..].starts_with(b"-Infinity") => {
                self.literal("-Infinity", Value::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number().map(|number| (number, 0)),
            _ => Err(self.syntax()),
        }
    }

    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<Parsed, ParseError>,
    ) -> Result<Parsed, ParseError> {
        if self.depth >= self.max_depth {
            return Err(ParseError::TooDeep);
        }
        self.depth += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn array(&mut self) -> Result<Parsed, ParseError> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        let mut lone = 0;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok((Value::Array(items), 0));
        }
        loop {
            self.skip_whitespace();
            let (item, item_lone) = self.value()?;
            items.push(item);
            lone += item_lone;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok((Value::Array(items), lone));
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    fn object(&mut self) -> Result<Parsed, ParseError> {
        self.pos += 1; // '{'
        let mut members = Members::default();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(members.into_parsed());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.syntax());
            }
            let (name, name_lone) = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.syntax());
            }
            self.pos += 1;
            self.skip_whitespace();
            let (value, value_lone) = self.value()?;
            members.insert(name, name_lone, value, value_lone);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(members.into_parsed());
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// A number token, with the backtracking of CPython's `_match_number_unicode`: `1.` and
    /// `1e` end the number before the `.` or `e` (which then fails as extra data).
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.syntax()),
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') && self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit)
        {
            is_float = true;
            self.pos += 1;
            self.skip_digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            let mark = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            let digits_from = self.pos;
            self.skip_digits();
            if self.pos > digits_from {
                is_float = true;
            } else {
                self.pos = mark;
            }
        }
        let token = &self.text[start..self.pos];
        if is_float {
            // Rust's parser rounds correctly, as CPython's does; out of range gives infinity
            // or zero, as in Python.
            return token
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| ParseError::Syntax { offset: start });
        }
        let digits = token.len() - usize::from(negative);
        if digits > MAX_INT_DIGITS {
            return Err(ParseError::IntegerTooLong);
        }
        Ok(Value::Int(if token == "-0" {
            "0".to_string()
        } else {
            token.to_string()
        }))
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// A string token (the cursor on its opening quote), unescaped, and whether it holds a
    /// lone surrogate.
    fn string(&mut self) -> Result<(String, bool), ParseError> {
        self.pos += 1; // '"'
        self.lone_in_string = false;
        let start = self.pos;
        let mut out: Option<String> = None;
        let mut run_start = start;
        loop {
            let Some(byte) = self.peek() else {
                return Err(ParseError::Syntax { offset: start - 1 });
            };
            match byte {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    self.note_lone_surrogates(start, end);
                    let text = match out {
                        Some(mut text) => {
                            text.push_str(&self.text[run_start..end]);
                            text
                        }
                        None => self.text[start..end].to_string(),
                    };
                    return Ok((text, self.lone_in_string));
                }
                b'\\' => {
                    let text = out.get_or_insert_with(String::new);
                    text.push_str(&self.text[run_start..self.pos]);
                    self.pos += 1;
                    let ch = self.escape()?;
                    text.push(ch);
                    run_start = self.pos;
                }
                // strict=True: control characters must be escaped.
                0x00..=0x1f => return Err(self.syntax()),
                _ => self.pos = plain_run_end(self.text.as_bytes(), self.pos + 1),
            }
        }
    }

    /// Note a lone surrogate that came from the bytes themselves (see [`Decoded`]) and lies
    /// inside the string `start..end`.
    fn note_lone_surrogates(&mut self, start: usize, end: usize) {
        let first_at_or_after = self.lone_surrogates.partition_point(|&at| at < start);
        if self
            .lone_surrogates
            .get(first_at_or_after)
            .is_some_and(|&at| at < end)
        {
            self.lone_in_string = true;
        }
    }

    /// The character an escape stands for (the cursor just after its backslash).
    fn escape(&mut self) -> Result<char, ParseError> {
        let Some(kind) = self.peek() else {
            return Err(self.syntax());
        };
        self.pos += 1;
        let ch = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{08}',
            b'f' => '\u{0c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => {
                self.pos -= 1;
                return Err(self.syntax());
            }
        };
        Ok(ch)
    }

    /// `\uXXXX` (the cursor after the `u`), joined with a following `\uXXXX` low surrogate
    /// when it is a high one, as CPython does. A surrogate left alone is noted and stands as
    /// U+FFFD until the document is known to be otherwise valid.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let high = self.hex4()?;
        if let Some(ch) = char::from_u32(high) {
            return Ok(ch);
        }
        if (0xd800..=0xdbff).contains(&high) && self.bytes[self.pos..].starts_with(b"\\u") {
            let mark = self.pos;
            self.pos += 2;
            let low = self.hex4()?;
            if (0xdc00..=0xdfff).contains(&low) {
                let joined = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                if let Some(ch) = char::from_u32(joined) {
                    return Ok(ch);
                }
            }
            self.pos = mark;
        }
        self.lone_in_string = true;
        Ok(char::REPLACEMENT_CHARACTER)
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            return Err(self.syntax());
        };
        let mut value = 0u32;
        for digit in digits {
            let nibble = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                b'A'..=b'F' => digit - b'A' + 10,
                _ => return Err(self.syntax()),
            };
            value = (value << 4) | u32::from(nibble);
        }
        self.pos += 4;
        Ok(value)
    }
}

/// Object members as a Python `dict` collects them: a repeated name keeps its first position
/// and takes the last value. Small objects are searched linearly; large ones get an index so
/// that a hostile entry with thousands of members stays linear-logarithmic. Lone surrogates
/// are counted per member, so one in a value that a repeated name replaces no longer counts;
/// one in a name always does.
#[derive(Default)]
struct Members {
    list: Vec<(String, Value, usize)>,
    index: Option<BTreeMap<String, usize>>,
    lone_in_names: usize,
}

impl Members {
    /// Past this many members, names are indexed.
    const LINEAR_SEARCH_MAX: usize = 16;

    fn insert(&mut self, name: String, name_lone: bool, value: Value, value_lone: usize) {
        self.lone_in_names += usize::from(name_lone);
        let existing = match &self.index {
            Some(index) => index.get(&name).copied(),
            None => self.list.iter().position(|(known, _, _)| *known == name),
        };
        if let Some(at) = existing {
            self.list[at].1 = value;
            self.list[at].2 = value_lone;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(name.clone(), self.list.len());
        }
        self.list.push((name, value, value_lone));
        if self.index.is_none() && self.list.len() > Self::LINEAR_SEARCH_MAX {
            let index = self
                .list
                .iter()
                .enumerate()
                .map(|(at, (known, _, _))| (known.clone(), at))
                .collect();
            self.index = Some(index);
        }
    }

    fn into_parsed(self) -> Parsed {
        let lone = self.lone_in_names + self.list.iter().map(|(_, _, lone)| lone).sum::<usize>();
        let members = self
            .list
            .into_iter()
            .map(|(name, value, _)| (name, value))
            .collect();
        (Value::Object(members), lone)
    }
}

/// The first index at or after `at` whose byte ends a run of plain string characters: `"`,
/// `\\` or a control character (or `bytes.len()`).
///
/// Message text is mostly plain, and this scan was the largest single cost of reading a
/// window in the policy, a byte at a time. It tests eight bytes at once with the classic
/// "has a byte less than n" bit trick on a `u64` (one wasm `i64` operation each): for a byte
/// `b` with no borrow coming in from below, `(b - n) & !b & 0x80` is set exactly when
/// `b < n`, and a borrow only comes from a lower byte that matched. So the lowest marked byte
/// of a word is the first special byte, exactly.
fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES * 0x80;
    /// Marks (high bit) on the bytes of `word` below `n` (exact up to the first mark).
    fn below(word: u64, n: u8) -> u64 {
        word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH_BITS
    }
    while let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let special = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if special != 0 {
            return at + special.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    while let Some(&byte) = bytes.get(at) {
        if matches!(byte, b'"' | b'\\' | 0x00..=0x1f) {
            break;
        }
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_scan_stops_where_the_byte_scan_does() {
        let naive = |bytes: &[u8], from: usize| {
            (from..bytes.len())
                .find(|&at| matches!(bytes[at], b'"' | b'\\' | 0x00..=0x1f))
                .unwrap_or(bytes.len())
        };
        // Every special byte (and the bytes around the trick's thresholds) at every offset of
        // a word, after plain bytes of both halves of the byte range, from every start.
        let plain = [
            b'a', b' ', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']', 0x21, 0x5d,
        ];
        let special = [b'"', b'\\', 0x00, 0x01, 0x1f, b'\n'];
        for &filler in &plain {
            for &stop in &special {
                for length in 0..24 {
                    for position in 0..=length {
                        let mut bytes = vec![filler; length];
                        if position < length {
                            bytes[position] = stop;
                        }
                        // A second special byte further on must not move the first.
                        if let Some(byte) = bytes.get_mut(position + 3) {
                            *byte = 0x00;
                        }
                        for from in 0..=length {
                            assert_eq!(
                                plain_run_end(&bytes, from),
                                naive(&bytes, from),
                                "{bytes:?} from {from}"
                            );
                        }
                    }
                }
            }
        }
    }
}
