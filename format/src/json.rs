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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

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

/// Text decoded from bytes, with the byte offsets at which a lone surrogate (encoded in the
/// bytes themselves, which Python's `surrogatepass` decoding lets through) was replaced by
/// U+FFFD. Whether such a surrogate matters depends on where it is: inside a string it is a
/// [`ParseError::LoneSurrogate`], elsewhere the grammar fails on it anyway.
struct Decoded<'a> {
    text: Cow<'a, str>,
    lone_surrogates: Vec<usize>,
}

/// Python's `json.detect_encoding`, then `bytes.decode(encoding, "surrogatepass")`.
fn decode_text(bytes: &[u8]) -> Result<Decoded<'_>, ParseError> {
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

/// `json.JSONDecoder.decode`: whitespace, one value, whitespace, end.
fn parse_document(
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

/// How deeply `value` nests: 0 for a scalar, 1 for a flat array or object.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
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
