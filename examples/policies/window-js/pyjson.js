// JSON exactly as Python's `json` module reads and writes it with its default arguments.
//
// - Reading follows `json.loads(bytes)`: the encoding is detected as `json.detect_encoding`
//   does (UTF-8 with or without a BOM, UTF-16 and UTF-32 in either byte order), decoded with
//   `surrogatepass`, then parsed with the grammar of CPython's scanner: standard JSON plus
//   `NaN`, `Infinity` and `-Infinity`; integers of any length up to Python's 4300-digit limit,
//   kept as their digits; floats correctly rounded; `\uXXXX` surrogate pairs joined; control
//   characters refused inside strings; a repeated object member keeps its first position and
//   its last value, as a dict does.
// - Writing follows `json.dumps(value)`: separators ", " and ": ", ensure_ascii escapes
//   (`\uXXXX` lowercase, one per UTF-16 code unit, the short forms \" \\ \n \r \t \b \f),
//   integers as their digits, floats as `float.__repr__`, NaN / Infinity / -Infinity.
//
// Neither direction recurses: nesting is walked with explicit stacks, so hostile input can never
// overflow the interpreter's stack (which is small inside wasm). Nesting deeper than the limit a
// parse runs with is refused as soon as the parser meets it.
//
// Values: null, true, false, a JS string (str), a JS number (float), PyInt (int, as digits),
// a JS Array (list), PyDict (dict).

/** Deepest nesting a read accepts (CPython itself stops at about 993 levels). */
export const MAX_READ_DEPTH = 1000;

/** Longest integer, in digits, that Python converts (`sys.get_int_max_str_digits()`). */
export const MAX_INT_DIGITS = 4300;

/** A Python int, as canonical decimal digits: an optional '-', no leading zeros, never "-0". */
export class PyInt {
  constructor(text) {
    this.text = text;
  }
}

/** A Python dict: keys in insertion order, each once. */
export class PyDict {
  constructor() {
    this.keys = [];
    this.values = [];
  }
}

/** Why text is not JSON that Python would load, or cannot be held by the host. */
export class JsonError extends Error {
  /**
   * @param {'not-text'|'syntax'|'int-too-long'|'too-deep'|'lone-surrogate'} kind
   * @param {number} [offset] UTF-16 index of a syntax error in the decoded text
   */
  constructor(kind, offset = 0) {
    super(kind);
    this.kind = kind;
    this.offset = offset;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
const NEEDS_ESCAPE_ALL = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;
const SHORT_ESCAPES = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};
const HEX = '0123456789abcdef';

function escapeUnit(ch) {
  const short = SHORT_ESCAPES[ch];
  if (short !== undefined) return short;
  const unit = ch.charCodeAt(0);
  return '\\u' + HEX[(unit >> 12) & 15] + HEX[(unit >> 8) & 15] + HEX[(unit >> 4) & 15] + HEX[unit & 15];
}

/** `text` as a quoted JSON string, escaped unit by unit (the reference for `escapeString`). */
export function escapeStringByUnit(text) {
  // Without the `u` flag the regex matches UTF-16 code units, so a character beyond U+FFFF is
  // written as its two surrogates, as Python does.
  if (!NEEDS_ESCAPE.test(text)) return '"' + text + '"';
  return '"' + text.replace(NEEDS_ESCAPE_ALL, escapeUnit) + '"';
}

const NON_ASCII = /[\x7f-\uffff]/;
const LATIN1 = /[\x7f-\xff]/;
const LATIN1_ESCAPE = /%(?:7F|[89A-F])/;
// Runs of non-ASCII text, with the ASCII non-letters (spaces, digits, punctuation) inside them;
// captured, so that `split` keeps them (at the odd indexes of its result).
const RUNS = /([\x7f-\uffff][\x7f-\uffff\x20-\x40\x5b-\x60\x7b-\x7e]*)/;
const LATIN1_PASSES = 12;
const HIGH_DIGITS = ['8', '9', 'A', 'B', 'C', 'D', 'E', 'F'];

/**
 * A run (as `RUNS` matches it, in text `JSON.stringify` wrote) with every unit from U+007F up as
 * `\uxxxx`. `escape` writes %uXXXX for those above U+00FF and %XX for all the others; the former
 * become `\uXXXX`, those from %7F up `\u00XX`; the run holds no ASCII letter, so lowercasing it
 * touches only the hex digits (and the %XX that are left, ASCII punctuation, which `unescape`
 * then turns back into itself).
 */
function escapeRun(run) {
  let out = escape(run).split('%u').join('\\u');
  if (LATIN1_ESCAPE.test(out)) {
    out = out.split('%7F').join('\\u007F');
    for (const digit of HIGH_DIGITS) out = out.split('%' + digit).join('\\u00' + digit);
  }
  return unescape(out.toLowerCase());
}

const nativeEscapes =
  typeof escape === 'function' &&
  typeof unescape === 'function' &&
  escapeRun('\x7f\u00e9\u65e5\ud83d\ude00 %41 \\"') === '\\u007f\\u00e9\\u65e5\\ud83d\\ude00 %41 \\"';

/**
 * `text` as a quoted JSON string, escaped as Python's `json.dumps` (ensure_ascii) does.
 *
 * Inside a component every step of JavaScript costs the interpreter about a thousand wasm
 * instructions (host fuel), several thousand for a call such as `slice` or a regex match, so the
 * work is left to native functions, a few calls per run of text rather than per character:
 * `JSON.stringify` writes exactly Python's escapes for ASCII (\" \\ \b \f \n \r \t, `\u00xx` in
 * lowercase for other controls) and leaves the rest as it is; then each distinct character of
 * U+007F..U+00FF (the accented letters of European text, sprinkled between ASCII ones) is
 * replaced everywhere at once with `split`/`join`, and each remaining run of non-ASCII text
 * (words and sentences of other scripts) is escaped at once by `escapeRun`.
 */
export function escapeString(text) {
  if (!NEEDS_ESCAPE.test(text)) return '"' + text + '"';
  if (!nativeEscapes) return escapeStringByUnit(text);
  let quoted = JSON.stringify(text);
  if (!NON_ASCII.test(quoted)) return quoted;
  for (let pass = 0; pass < LATIN1_PASSES; pass += 1) {
    const found = LATIN1.exec(quoted);
    if (found === null) break;
    quoted = quoted.split(found[0]).join(escapeUnit(found[0]));
  }
  if (!NON_ASCII.test(quoted)) return quoted;
  const parts = quoted.split(RUNS);
  for (let i = 1; i < parts.length; i += 2) parts[i] = escapeRun(parts[i]);
  return parts.join('');
}

const F64 = new DataView(new ArrayBuffer(8));

/** The exact value of a finite positive double as m * 2^q, m and q BigInt / number. */
function exactBinary(x) {
  F64.setFloat64(0, x);
  const hi = F64.getUint32(0);
  const lo = F64.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased === 0) return [m, -1074];
  m |= 1n << 52n;
  return [m, biased - 1075];
}

/** Whether m * 2^q == n * 10^p exactly (all integers, m and n BigInt). */
function exactlyEqual(m, q, n, p) {
  let left = m;
  let right = n;
  if (q >= 0) left <<= BigInt(q);
  else right <<= BigInt(-q);
  if (p >= 0) right *= 10n ** BigInt(p);
  else left *= 10n ** BigInt(-p);
  return left === right;
}

/**
 * The shortest round-trip digits of a positive finite double, as CPython's repr chooses them:
 * [digits, exponent of the first digit]. `toExponential()` gives the shortest digits closest to
 * the value; when the value lies exactly halfway between two shortest candidates, CPython takes
 * the one with the even last digit, which an engine need not do.
 */
function shortestDigits(x) {
  const s = x.toExponential();
  const e = s.indexOf('e');
  const exponent = Number(s.slice(e + 1));
  let digits = s.slice(0, e).replace('.', '');
  const last = digits.charCodeAt(digits.length - 1) - 48;
  if (last & 1) {
    const k = digits.length;
    const big = BigInt(digits);
    for (const delta of [-1n, 1n]) {
      // The midpoint between `digits` and its neighbour, one digit longer.
      const mid = big * 10n + 5n * delta;
      const midPow = exponent - k;
      if (Number(`${mid}e${midPow}`) !== x) continue;
      const [m, q] = exactBinary(x);
      if (!exactlyEqual(m, q, mid, midPow)) continue;
      const candidate = (big + delta).toString();
      if (candidate.length !== k) continue;
      if (Number(`${candidate}e${exponent - k + 1}`) !== x) continue;
      digits = candidate.replace(/0+$/, '');
      break;
    }
  }
  return [digits, exponent];
}

/** A Python float as `json.dumps` writes it: `float.__repr__`, or NaN / Infinity / -Infinity. */
export function floatRepr(x) {
  if (x !== x) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [digits, exponent] = shortestDigits(x < 0 ? -x : x);
  // repr uses positional notation for -4 <= exponent < 16 (CPython's -4 < decpt <= 16).
  const decpt = exponent + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return sign + '0.' + '0'.repeat(-decpt) + digits;
    if (decpt >= digits.length) return sign + digits + '0'.repeat(decpt - digits.length) + '.0';
    return sign + digits.slice(0, decpt) + '.' + digits.slice(decpt);
  }
  const mantissa = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
  const abs = exponent < 0 ? -exponent : exponent;
  return sign + mantissa + (exponent < 0 ? 'e-' : 'e+') + (abs < 10 ? '0' : '') + abs;
}

function scalarText(value) {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'string') return escapeString(value);
  if (typeof value === 'number') return floatRepr(value);
  if (value instanceof PyInt) return value.text;
  throw new TypeError('not a JSON value');
}

/** `json.dumps(value)`, without recursion. */
export function dumps(value) {
  const out = [];
  const stack = [];
  let v = value;
  for (;;) {
    if (Array.isArray(v)) {
      if (v.length === 0) {
        out.push('[]');
      } else {
        out.push('[');
        stack.push({ items: v, keys: null, at: 0 });
        v = v[0];
        continue;
      }
    } else if (v instanceof PyDict) {
      if (v.keys.length === 0) {
        out.push('{}');
      } else {
        out.push('{', escapeString(v.keys[0]), ': ');
        stack.push({ items: v.values, keys: v.keys, at: 0 });
        v = v.values[0];
        continue;
      }
    } else {
      out.push(scalarText(v));
    }
    // The value is written: on to the next item of the innermost open container.
    for (;;) {
      if (stack.length === 0) return out.join('');
      const frame = stack[stack.length - 1];
      frame.at += 1;
      if (frame.at < frame.items.length) {
        if (frame.keys === null) out.push(', ');
        else out.push(', ', escapeString(frame.keys[frame.at]), ': ');
        v = frame.items[frame.at];
        break;
      }
      out.push(frame.keys === null ? ']' : '}');
      stack.pop();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding bytes (json.detect_encoding, then bytes.decode(encoding, 'surrogatepass'))

/**
 * Text decoded from bytes. A surrogate encoded in the bytes themselves (let through by
 * `surrogatepass`) stands as U+FFFD, its index listed in `raw`: inside a string it makes the
 * string hold a lone surrogate; anywhere else the grammar fails on it anyway. (Kept as the
 * surrogate itself, two of them could pair up in a JS string where Python holds two lone ones.)
 */
class Decoded {
  constructor(text, raw) {
    this.text = text;
    this.raw = raw;
  }
}

/** Collects UTF-16 code units into a string, a chunk at a time. */
class UnitSink {
  constructor() {
    this.parts = [];
    this.units = [];
    this.length = 0;
  }
  push(unit) {
    this.units.push(unit);
    this.length += 1;
    if (this.units.length >= 8192) this.flush();
  }
  flush() {
    if (this.units.length > 0) {
      this.parts.push(String.fromCharCode.apply(null, this.units));
      this.units = [];
    }
  }
  pushCodePoint(cp) {
    if (cp > 0xffff) {
      const v = cp - 0x10000;
      this.push(0xd800 + (v >> 10));
      this.push(0xdc00 + (v & 0x3ff));
    } else {
      this.push(cp);
    }
  }
  text() {
    this.flush();
    return this.parts.join('');
  }
}

let fastUtf8 = null;

/** Whether the engine's TextDecoder is used for UTF-8 (strict, BOM-keeping); else decodeUtf8. */
export const usesTextDecoder = () => fastUtf8 !== null;
try {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  // Use it only if it is strict (refuses bad bytes and encoded surrogates) and keeps a BOM.
  let strict = false;
  try {
    decoder.decode(new Uint8Array([0xed, 0xa0, 0x80]));
  } catch {
    strict = true;
  }
  if (strict && decoder.decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x31])) === '\ufeff1') {
    fastUtf8 = decoder;
  }
} catch {
  fastUtf8 = null;
}

/** UTF-8 as Python's strict decoder reads it, encoded surrogates let through (surrogatepass). */
export function decodeUtf8(bytes, start = 0) {
  const sink = new UnitSink();
  const raw = [];
  const n = bytes.length;
  let i = start;
  const bad = () => new JsonError('not-text');
  const cont = (at) => at < n && (bytes[at] & 0xc0) === 0x80;
  while (i < n) {
    const b0 = bytes[i];
    if (b0 < 0x80) {
      sink.push(b0);
      i += 1;
    } else if (b0 >= 0xc2 && b0 <= 0xdf) {
      if (!cont(i + 1)) throw bad();
      sink.push(((b0 & 0x1f) << 6) | (bytes[i + 1] & 0x3f));
      i += 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      if (!cont(i + 1) || !cont(i + 2)) throw bad();
      const b1 = bytes[i + 1];
      if (b0 === 0xe0 && b1 < 0xa0) throw bad();
      const cp = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
      if (cp >= 0xd800 && cp <= 0xdfff) {
        raw.push(sink.length);
        sink.push(0xfffd);
      } else {
        sink.push(cp);
      }
      i += 3;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) throw bad();
      const b1 = bytes[i + 1];
      if ((b0 === 0xf0 && b1 < 0x90) || (b0 === 0xf4 && b1 > 0x8f)) throw bad();
      sink.pushCodePoint(
        ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f),
      );
      i += 4;
    } else {
      throw bad();
    }
  }
  return new Decoded(sink.text(), raw);
}

function decodeUtf8Fast(bytes, start) {
  if (fastUtf8 !== null) {
    try {
      return new Decoded(fastUtf8.decode(start === 0 ? bytes : bytes.subarray(start)), []);
    } catch {
      // Not strict UTF-8: perhaps encoded surrogates, which the slow path lets through.
    }
  }
  return decodeUtf8(bytes, start);
}

function decodeUtf16(bytes, start, littleEndian) {
  if ((bytes.length - start) % 2 !== 0) throw new JsonError('not-text');
  const sink = new UnitSink();
  const raw = [];
  const n = bytes.length;
  const unitAt = littleEndian ? (at) => bytes[at] | (bytes[at + 1] << 8) : (at) => (bytes[at] << 8) | bytes[at + 1];
  for (let i = start; i < n; i += 2) {
    const unit = unitAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 2 < n) {
      const next = unitAt(i + 2);
      if (next >= 0xdc00 && next <= 0xdfff) {
        sink.push(unit);
        sink.push(next);
        i += 2;
        continue;
      }
    }
    if (unit >= 0xd800 && unit <= 0xdfff) {
      raw.push(sink.length);
      sink.push(0xfffd);
    } else {
      sink.push(unit);
    }
  }
  return new Decoded(sink.text(), raw);
}

function decodeUtf32(bytes, start, littleEndian) {
  if ((bytes.length - start) % 4 !== 0) throw new JsonError('not-text');
  const sink = new UnitSink();
  const raw = [];
  for (let i = start; i < bytes.length; i += 4) {
    const cp = littleEndian
      ? (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) >>> 0
      : ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
    if (cp > 0x10ffff) throw new JsonError('not-text');
    if (cp >= 0xd800 && cp <= 0xdfff) {
      raw.push(sink.length);
      sink.push(0xfffd);
    } else {
      sink.pushCodePoint(cp);
    }
  }
  return new Decoded(sink.text(), raw);
}

/** Python's `json.detect_encoding`, then the decode `json.loads(bytes)` does. */
export function decodeBytes(b) {
  const n = b.length;
  if (n >= 4 && b[0] === 0x00 && b[1] === 0x00 && b[2] === 0xfe && b[3] === 0xff) return decodeUtf32(b, 4, false);
  if (n >= 4 && b[0] === 0xff && b[1] === 0xfe && b[2] === 0x00 && b[3] === 0x00) return decodeUtf32(b, 4, true);
  if (n >= 2 && b[0] === 0xfe && b[1] === 0xff) return decodeUtf16(b, 2, false);
  if (n >= 2 && b[0] === 0xff && b[1] === 0xfe) return decodeUtf16(b, 2, true);
  if (n >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return decodeUtf8Fast(b, 3);
  if (n >= 4) {
    if (b[0] === 0) return b[1] !== 0 ? decodeUtf16(b, 0, false) : decodeUtf32(b, 0, false);
    if (b[1] === 0) return b[2] !== 0 || b[3] !== 0 ? decodeUtf16(b, 0, true) : decodeUtf32(b, 0, true);
  } else if (n === 2) {
    if (b[0] === 0) return decodeUtf16(b, 0, false);
    if (b[1] === 0) return decodeUtf16(b, 0, true);
  }
  return decodeUtf8Fast(b, 0);
}

// ---------------------------------------------------------------------------------------------
// Parsing (CPython's scanner, iteratively)

const PLAIN_RUN = /[^"\\\x00-\x1f]*/y;
const CONTROL = /[\x00-\x1f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;

/** An object being read: a dict, and how many of its strings hold a lone surrogate. */
class ObjectFrame {
  constructor() {
    this.dict = new PyDict();
    this.index = new Map();
    this.lones = [];
    this.loneInNames = 0;
    this.key = '';
    this.keyLone = false;
  }
  add(value, lone) {
    if (this.keyLone) this.loneInNames += 1;
    const at = this.index.get(this.key);
    if (at !== undefined) {
      // A dict keeps the first position and takes the last value.
      this.dict.values[at] = value;
      this.lones[at] = lone;
      return;
    }
    this.index.set(this.key, this.dict.keys.length);
    this.dict.keys.push(this.key);
    this.dict.values.push(value);
    this.lones.push(lone);
  }
  get value() {
    return this.dict;
  }
  get lone() {
    let total = this.loneInNames;
    for (const lone of this.lones) total += lone;
    return total;
  }
}

class ArrayFrame {
  constructor() {
    this.items = [];
    this.loneCount = 0;
  }
  add(value, lone) {
    this.items.push(value);
    this.loneCount += lone;
  }
  get value() {
    return this.items;
  }
  get lone() {
    return this.loneCount;
  }
}

function isWhitespace(c) {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function hexValue(c) {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

class Parser {
  constructor(text, raw, maxDepth) {
    this.text = text;
    this.raw = raw;
    this.maxDepth = maxDepth;
    this.pos = 0;
    this.deepest = 0;
    this.stringLone = false;
  }

  syntax(at = this.pos) {
    return new JsonError('syntax', at);
  }

  skipWhitespace() {
    const text = this.text;
    let pos = this.pos;
    while (isWhitespace(text.charCodeAt(pos))) pos += 1;
    this.pos = pos;
  }

  /** Four hex digits at `at`, or -1. */
  hex4(at) {
    const text = this.text;
    if (at + 4 > text.length) return -1;
    let value = 0;
    for (let i = at; i < at + 4; i += 1) {
      const digit = hexValue(text.charCodeAt(i));
      if (digit < 0) return -1;
      value = (value << 4) | digit;
    }
    return value;
  }

  /**
   * A string token (pos on its opening quote); sets `stringLone`. The engine does the work: the
   * closing quote is found with `indexOf`, and a body with escapes is decoded by `JSON.parse`,
   * whose string grammar is Python's (strict: no raw control characters). A string that is not
   * valid goes to `stringByUnit`, which names the error where Python does.
   */
  string() {
    const text = this.text;
    const start = this.pos + 1;
    let end = text.indexOf('"', start);
    for (;;) {
      if (end < 0) return this.stringByUnit();
      let backslashes = 0;
      while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes += 1;
      if ((backslashes & 1) === 0) break;
      end = text.indexOf('"', end + 1);
    }
    const body = text.slice(start, end);
    let value = body;
    let lone = false;
    if (body.indexOf('\\') >= 0) {
      try {
        value = JSON.parse(text.slice(start - 1, end + 1));
      } catch {
        return this.stringByUnit();
      }
      // Escapes of surrogates pair up as CPython's scanner pairs them; one left alone is lone.
      if (body.indexOf('\\u') >= 0 && LONE_SURROGATE.test(value)) lone = true;
    } else if (CONTROL.test(body)) {
      return this.stringByUnit();
    }
    if (this.raw.length > 0 && this.rawWithin(start, end)) lone = true;
    this.pos = end + 1;
    this.stringLone = lone;
    return value;
  }

  /** `string`, a code unit at a time: CPython's scanner, with its error offsets. */
  stringByUnit() {
    const text = this.text;
    const start = this.pos + 1;
    let pos = start;
    let out = '';
    let lone = false;
    for (;;) {
      PLAIN_RUN.lastIndex = pos;
      PLAIN_RUN.test(text);
      const runEnd = PLAIN_RUN.lastIndex;
      if (runEnd > pos) {
        out += text.slice(pos, runEnd);
        pos = runEnd;
      }
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        this.pos = pos + 1;
        if (this.raw.length > 0 && this.rawWithin(start, pos)) lone = true;
        this.stringLone = lone;
        return out;
      }
      if (c !== 0x5c) {
        // The end of the text, or a control character (strict=True).
        throw this.syntax(c !== c ? start - 1 : pos);
      }
      const kind = text.charCodeAt(pos + 1);
      switch (kind) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          const unit = this.hex4(pos + 2);
          if (unit < 0) throw this.syntax(pos + 1);
          pos += 6;
          if (unit >= 0xd800 && unit <= 0xdbff && text.charCodeAt(pos) === 0x5c && text.charCodeAt(pos + 1) === 0x75) {
            const low = this.hex4(pos + 2);
            if (low < 0) throw this.syntax(pos + 1);
            if (low >= 0xdc00 && low <= 0xdfff) {
              out += String.fromCharCode(unit, low);
              pos += 6;
              continue;
            }
          }
          if (unit >= 0xd800 && unit <= 0xdfff) lone = true;
          out += String.fromCharCode(unit);
          continue;
        }
        default:
          throw this.syntax(pos + 1);
      }
      pos += 2;
    }
  }

  /** Whether a surrogate decoded from the bytes lies in text[start, end). */
  rawWithin(start, end) {
    const raw = this.raw;
    let lo = 0;
    let hi = raw.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (raw[mid] < start) lo = mid + 1;
      else hi = mid;
    }
    return lo < raw.length && raw[lo] < end;
  }

  number() {
    const text = this.text;
    const start = this.pos;
    NUMBER.lastIndex = start;
    const match = NUMBER.exec(text);
    if (match === null) throw this.syntax();
    const token = match[0];
    this.pos = start + token.length;
    if (match[1] !== undefined || match[2] !== undefined) return Number(token);
    const digits = token.charCodeAt(0) === 0x2d ? token.length - 1 : token.length;
    if (digits > MAX_INT_DIGITS) throw new JsonError('int-too-long', start);
    return new PyInt(token === '-0' ? '0' : token);
  }

  literal(word, value) {
    if (!this.text.startsWith(word, this.pos)) throw this.syntax();
    this.pos += word.length;
    return value;
  }

  /** A member name and its colon (pos on the name's quote), into `frame.key`. */
  memberName(frame) {
    if (this.text.charCodeAt(this.pos) !== 0x22) throw this.syntax();
    frame.key = this.string();
    frame.keyLone = this.stringLone;
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) !== 0x3a) throw this.syntax();
    this.pos += 1;
    this.skipWhitespace();
  }

  open(frame) {
    if (this.stack.length >= this.maxDepth) throw new JsonError('too-deep', this.pos);
    this.stack.push(frame);
    if (this.stack.length > this.deepest) this.deepest = this.stack.length;
  }

  document() {
    const text = this.text;
    const stack = (this.stack = []);
    this.skipWhitespace();
    let value;
    let lone;
    outer: for (;;) {
      // One value at pos: a scalar into `value`, or a container opened (then `continue`).
      lone = 0;
      const c = text.charCodeAt(this.pos);
      switch (c) {
        case 0x22:
          value = this.string();
          lone = this.stringLone ? 1 : 0;
          break;
        case 0x7b: {
          this.open(new ObjectFrame());
          this.pos += 1;
          this.skipWhitespace();
          if (text.charCodeAt(this.pos) === 0x7d) {
            this.pos += 1;
            value = stack.pop().value;
            break;
          }
          this.memberName(stack[stack.length - 1]);
          continue outer;
        }
        case 0x5b: {
          this.open(new ArrayFrame());
          this.pos += 1;
          this.skipWhitespace();
          if (text.charCodeAt(this.pos) === 0x5d) {
            this.pos += 1;
            value = stack.pop().value;
            break;
          }
          continue outer;
        }
        case 0x6e: value = this.literal('null', null); break;
        case 0x74: value = this.literal('true', true); break;
        case 0x66: value = this.literal('false', false); break;
        case 0x4e: value = this.literal('NaN', NaN); break;
        case 0x49: value = this.literal('Infinity', Infinity); break;
        case 0x2d:
          value = text.startsWith('-Infinity', this.pos) ? this.literal('-Infinity', -Infinity) : this.number();
          break;
        default:
          if (c >= 0x30 && c <= 0x39) value = this.number();
          else throw this.syntax();
      }
      // The value is read: it belongs to the innermost open container, if any.
      for (;;) {
        if (stack.length === 0) break outer;
        const frame = stack[stack.length - 1];
        frame.add(value, lone);
        this.skipWhitespace();
        const next = text.charCodeAt(this.pos);
        if (next === 0x2c) {
          this.pos += 1;
          this.skipWhitespace();
          if (frame instanceof ObjectFrame) this.memberName(frame);
          continue outer;
        }
        if (next === (frame instanceof ObjectFrame ? 0x7d : 0x5d)) {
          this.pos += 1;
          stack.pop();
          value = frame.value;
          lone = frame.lone;
          continue;
        }
        throw this.syntax();
      }
    }
    this.skipWhitespace();
    if (this.pos !== text.length) throw this.syntax();
    // Reported only for a document Python would load, and only when a lone surrogate is still
    // in the value once repeated members have replaced earlier ones.
    if (lone > 0) throw new JsonError('lone-surrogate');
    return value;
  }
}

/**
 * Parse decoded text; returns { value, depth } (depth: deepest nesting, 0 for a scalar) or throws
 * a JsonError.
 */
function parse(text, raw, maxDepth) {
  const parser = new Parser(text, raw, maxDepth);
  const value = parser.document();
  return { value, depth: parser.deepest };
}

/** `json.loads(bytes)`: detect the encoding, decode, parse. Throws JsonError. */
export function loadsBytes(bytes, maxDepth = MAX_READ_DEPTH) {
  const decoded = decodeBytes(bytes);
  return parse(decoded.text, decoded.raw, maxDepth).value;
}

/**
 * `json.loads(str)`: parse text already decoded (a leading BOM is refused, as Python does).
 * Returns { value, depth }; throws JsonError.
 */
export function loadsText(text, maxDepth = MAX_READ_DEPTH) {
  if (text.charCodeAt(0) === 0xfeff) throw new JsonError('syntax', 0);
  return parse(text, [], maxDepth);
}

/** `json.dumps(json.loads(text))`. Throws JsonError. */
export function canonical(text, maxDepth = MAX_READ_DEPTH) {
  return dumps(loadsText(text, maxDepth).value);
}

/** The length in UTF-8 bytes of text[0, end), for error offsets. */
export function utf8Length(text, end = text.length) {
  let bytes = 0;
  for (let i = 0; i < end; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < end) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i += 1;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Why `error` (a JsonError met parsing `text`) refuses it, in words. */
export function describeError(error, text) {
  switch (error.kind) {
    case 'not-text':
      return 'not UTF-8, UTF-16 or UTF-32 text';
    case 'syntax':
      return `not JSON (at byte ${utf8Length(text, Math.min(error.offset, text.length))})`;
    case 'int-too-long':
      return `an integer has more than ${MAX_INT_DIGITS} digits`;
    case 'too-deep':
      return 'nested too deeply';
    case 'lone-surrogate':
      return 'a string holds a lone UTF-16 surrogate';
    default:
      return String(error.kind);
  }
}
