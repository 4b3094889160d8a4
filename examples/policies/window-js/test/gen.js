// Seeded generators of JSON text as Python's json module reads it: random values written in random
// layouts (whitespace, escapes, number spellings), messages, entries in every encoding
// json.detect_encoding knows, and mutations that break them.

/** mulberry32: a small, seeded, reproducible PRNG. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    range: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)],
  };
  return r;
}

const SHORT = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f', '/': '\\/' };

function hex4(unit, upper) {
  const h = unit.toString(16).padStart(4, '0');
  return '\\u' + (upper ? h.toUpperCase() : h);
}

/** A random string as a list of code points (lone surrogates possible when `lone`). */
export function randomCodePoints(r, { lone = false, max = 12 } = {}) {
  const n = r.chance(0.1) ? r.range(20, 200) : r.int(max + 1);
  const points = [];
  for (let i = 0; i < n; i += 1) {
    const kind = r.int(100);
    let cp;
    if (kind < 45) cp = r.range(0x20, 0x7e);
    else if (kind < 52) cp = r.pick([0x22, 0x5c, 0x2f, 0x7f, 0x20]);
    else if (kind < 60) cp = r.range(0x00, 0x1f);
    else if (kind < 70) cp = r.range(0x80, 0x7ff);
    else if (kind < 80) {
      do cp = r.range(0x800, 0xffff);
      while (cp >= 0xd800 && cp <= 0xdfff);
    } else if (kind < 90) cp = r.range(0x10000, 0x10ffff);
    else if (kind < 96) cp = r.pick([0x2028, 0x2029, 0xfeff, 0xfffd, 0xffff, 0x1f600, 0x10ffff, 0xe9, 0x65e5]);
    else if (lone && kind < 98) cp = r.range(0xd800, 0xdfff);
    else cp = r.range(0x61, 0x7a);
    points.push(cp);
  }
  return points;
}

/** Code points as a JS string (a lone surrogate stays one code unit). */
export const stringOf = (points) => points.map((cp) => String.fromCodePoint(cp)).join('');

/** Code points written as the body of a JSON string literal, escapes chosen at random. */
function writeString(r, points) {
  let out = '"';
  for (const cp of points) {
    const ch = String.fromCodePoint(cp);
    const isSurrogate = cp >= 0xd800 && cp <= 0xdfff;
    const mustEscape = cp < 0x20 || cp === 0x22 || cp === 0x5c || isSurrogate;
    const style = r.int(10);
    if (!mustEscape && style < 6) {
      out += ch;
    } else if (SHORT[ch] !== undefined && style < 8) {
      out += SHORT[ch];
    } else if (cp > 0xffff) {
      const v = cp - 0x10000;
      out += hex4(0xd800 + (v >> 10), r.chance(0.3)) + hex4(0xdc00 + (v & 0x3ff), r.chance(0.3));
    } else {
      out += hex4(cp, r.chance(0.3));
    }
  }
  return out + '"';
}

const F64 = new DataView(new ArrayBuffer(8));

/** A random finite double of any magnitude (subnormals included), from random bits. */
export function randomDouble(r) {
  for (;;) {
    F64.setUint32(0, Math.floor(r.next() * 2 ** 32));
    F64.setUint32(4, Math.floor(r.next() * 2 ** 32));
    const x = F64.getFloat64(0);
    if (Number.isFinite(x)) return x;
  }
}

const SPECIAL_FLOATS = [
  '0.0', '-0.0', '1.0', '-1.0', '1e16', '1e15', '9999999999999998.0', '1E5', '1e-5', '0.0001', '0.00001',
  '0.00009999', '1e-4', '123.456', '1.5e300', '5e-324', '2.5e-324', '1e-400', '1e400', '-1e400',
  '1.7976931348623157e308', '1.7976931348623159e308', '2.2250738585072014e-308', '4.9406564584124654e-324',
  '2000000000000000.25', '2000000000000000.75', '1000000000000000.375', '1000000000000000.625', '4000000000000000.5',
  '1e23', '8.41e21', '0.1e1', '1.0e+2', '12345678901234567890.0', '0.4245191891425139', '100000000000000000000000.0',
  '1e22', '1e21', '123456789012345680000.0', '0.30000000000000004', '9007199254740993.0', '-2.5', '1e-7',
];

/** A float token, spelled in one of many ways. */
function floatToken(r) {
  const kind = r.int(10);
  if (kind === 0) return r.pick(SPECIAL_FLOATS);
  if (kind === 1) {
    // Exact halfway cases between two shortest candidates: an integer plus a quarter near 2^51.
    const n = r.range(1, 8) * 1e15 + r.int(1e6);
    return `${n}.${r.pick(['25', '75', '375', '625', '125', '875', '5'])}`;
  }
  const x = randomDouble(r);
  let text;
  if (kind < 6) text = String(x);
  else if (kind < 8) text = x.toExponential(r.int(21));
  else if (kind === 8) text = x.toPrecision(r.range(1, 21));
  else {
    // Random digits, point and exponent.
    const digits = (n) => Array.from({ length: n }, () => r.int(10)).join('');
    const intPart = r.chance(0.3) ? '0' : String(r.range(1, 9)) + digits(r.int(25));
    text = (r.chance(0.5) ? '-' : '') + intPart;
    if (r.chance(0.7)) text += '.' + digits(r.range(1, 30));
    if (r.chance(0.6) || !text.includes('.')) {
      text += r.pick(['e', 'E']) + r.pick(['', '+', '-']) + String(r.chance(0.2) ? r.range(300, 420) : r.int(40));
    }
  }
  if (/e/i.test(text) || text.includes('.')) return text.replace('e+', r.chance(0.5) ? 'e+' : 'e');
  return text + '.0';
}

function intToken(r) {
  const kind = r.int(20);
  if (kind === 0) return r.pick(['0', '-0', '1', '-1', '9007199254740993', '18446744073709551616']);
  if (kind === 1) return (r.chance(0.5) ? '-' : '') + '7'.repeat(r.pick([300, 4299, 4300]));
  const length = kind < 14 ? r.range(1, 6) : r.range(7, 60);
  let text = String(r.range(1, 9));
  for (let i = 1; i < length; i += 1) text += String(r.int(10));
  return (r.chance(0.4) ? '-' : '') + text;
}

function ws(r) {
  if (r.chance(0.6)) return '';
  return r.pick([' ', '  ', '\n', '\t', '\r\n', ' \n\t ', '\r']);
}

/**
 * A random JSON text (always valid JSON for Python, possibly with lone surrogates when `lone`).
 * `depth` bounds the nesting.
 */
export function randomJson(r, depth = 6, opts = {}) {
  const { lone = false, keys = null } = opts;
  const kind = depth <= 0 ? r.int(7) : r.int(10);
  switch (kind) {
    case 0:
      return r.pick(['null', 'true', 'false']);
    case 1:
      return r.pick(['NaN', 'Infinity', '-Infinity', 'null']);
    case 2:
      return intToken(r);
    case 3:
    case 4:
      return floatToken(r);
    case 5:
    case 6:
      return writeString(r, randomCodePoints(r, { lone }));
    case 7:
    case 8: {
      const n = r.int(5);
      const items = [];
      for (let i = 0; i < n; i += 1) items.push(ws(r) + randomJson(r, depth - 1, opts) + ws(r));
      return '[' + (n === 0 ? ws(r) : items.join(',')) + ']';
    }
    default: {
      const n = r.int(5);
      const members = [];
      for (let i = 0; i < n; i += 1) {
        const name = keys !== null && r.chance(0.5) ? r.pick(keys) : stringOf(randomCodePoints(r, { lone, max: 6 }));
        const nameText = r.chance(0.5) && !/[\x00-\x1f"\\\ud800-\udfff]/.test(name) ? `"${name}"` : writeString(r, Array.from(name, (c) => c.codePointAt(0)));
        members.push(ws(r) + nameText + ws(r) + ':' + ws(r) + randomJson(r, depth - 1, opts) + ws(r));
      }
      return '{' + (n === 0 ? ws(r) : members.join(',')) + '}';
    }
  }
}

/** A deep chain of arrays and objects, `levels` levels. */
export function deepJson(r, levels) {
  let open = '';
  let close = '';
  for (let i = 0; i < levels; i += 1) {
    if (r.chance(0.5)) {
      open += '[';
      close = ']' + close;
    } else {
      open += '{"k":';
      close = '}' + close;
    }
  }
  return open + randomJson(r, 0) + close;
}

const MUTATIONS = [',', ']', '}', '[', '{', '"', '\\', ':', ' ', '\u0001', '\n', '0', '-', '.', 'e', '+', 'x', '\u00e9', '\ufeff', '/', 'u', 'N', 'I', 'n', 't', '1'];

/** `text` with one to three random edits (delete, insert, replace, truncate). */
export function mutate(r, text) {
  let out = text;
  const edits = r.range(1, 3);
  for (let e = 0; e < edits; e += 1) {
    const at = r.int(out.length + 1);
    switch (r.int(4)) {
      case 0:
        out = out.slice(0, at) + out.slice(at + 1);
        break;
      case 1:
        out = out.slice(0, at) + r.pick(MUTATIONS) + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + r.pick(MUTATIONS) + out.slice(at + 1);
        break;
      default:
        out = out.slice(0, at);
    }
  }
  // Never split a surrogate pair in the text itself: the host's strings cannot hold one.
  return out.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '?');
}

const ROLES = ['user', 'assistant', 'system', 'tool', 'developer', 'r\u00f4le', '\u{1f916}'];

/** An OpenAI-style tool_calls array, as JSON text. */
function toolCalls(r) {
  const n = r.range(0, 3);
  const calls = [];
  for (let i = 0; i < n; i += 1) {
    const args = r.chance(0.5) ? '{}' : `{"city": ${JSON.stringify(stringOf(randomCodePoints(r)))}, "n": ${intToken(r)}}`;
    calls.push(
      `{"id":"call_${r.int(1e6)}","type":"function","function":{"name":${JSON.stringify(stringOf(randomCodePoints(r, { max: 5 })))},"arguments":${JSON.stringify(args)}}}`,
    );
  }
  return '[' + calls.join(', ') + ']';
}

/**
 * A valid message: [name, 'text'|'json', value] members in random order, names unique, a role
 * that is text (or a JSON string).
 */
export function randomMessage(r) {
  const members = [];
  const names = new Set(['role']);
  const roleValue = r.pick(ROLES);
  members.push(r.chance(0.1) ? ['role', 'json', JSON.stringify(roleValue)] : ['role', 'text', roleValue]);
  const extra = r.range(0, 5);
  for (let i = 0; i < extra; i += 1) {
    let name = r.pick(['content', 'tool_calls', 'tool_call_id', 'name', 'refusal', null, null]);
    if (name === null) name = stringOf(randomCodePoints(r, { max: 6 }));
    if (names.has(name)) continue;
    names.add(name);
    let member;
    if (name === 'tool_calls') member = [name, 'json', toolCalls(r)];
    else if (r.chance(0.5)) member = [name, 'text', stringOf(randomCodePoints(r))];
    else member = [name, 'json', ws(r) + randomJson(r, 4) + ws(r)];
    members.push(member);
  }
  // Any order: role is not always first.
  for (let i = members.length - 1; i > 0; i -= 1) {
    const j = r.int(i + 1);
    [members[i], members[j]] = [members[j], members[i]];
  }
  return members;
}

/** A message's members as the WIT record ComponentizeJS hands over. */
export const witMessage = (members) => ({
  members: members.map(([name, tag, val]) => ({ name, value: { tag, val } })),
});

/** A random entry's text: mostly a message object in any layout, sometimes anything. */
export function randomEntryText(r) {
  const kind = r.int(10);
  if (kind < 6) {
    const members = randomMessage(r);
    if (r.chance(0.15)) members.push(['role', 'json', randomJson(r, 1)]); // repeated: last value wins
    if (r.chance(0.1)) members.splice(members.findIndex(([n]) => n === 'role'), 1);
    return (
      ws(r) +
      '{' +
      members
        .map(([name, tag, val]) => ws(r) + JSON.stringify(name) + ws(r) + ':' + ws(r) + (tag === 'text' ? writeString(r, Array.from(val, (c) => c.codePointAt(0))) : val))
        .join(',') +
      '}' +
      ws(r)
    );
  }
  if (kind < 8) return randomJson(r, 4, { lone: true, keys: ['role', 'content', 'a'] });
  return `{"role": ${randomJson(r, 2, { lone: true })}, "content": ${randomJson(r, 3, { lone: true })}}`;
}

function utf16Units(text) {
  const units = [];
  for (let i = 0; i < text.length; i += 1) units.push(text.charCodeAt(i));
  return units;
}

/** `text` encoded as one of the encodings json.detect_encoding recognises, sometimes damaged. */
export function encodeEntry(r, text) {
  const encoding = r.pick(['utf-8', 'utf-8', 'utf-8', 'utf-8-sig', 'utf-16-le', 'utf-16-be', 'utf-16', 'utf-32-le', 'utf-32-be', 'utf-32']);
  let bytes = [];
  const units = utf16Units(text);
  // A raw surrogate, placed inside the text by the encoding itself (surrogatepass territory).
  const raw = r.chance(0.08) ? r.int(units.length + 1) : -1;
  const rawUnit = r.range(0xd800, 0xdfff);
  const points = [];
  for (let i = 0; i < units.length; i += 1) {
    if (i === raw) points.push(rawUnit);
    const cp = text.codePointAt(i);
    points.push(cp);
    if (cp > 0xffff) i += 1;
  }
  if (raw === units.length) points.push(rawUnit);
  if (encoding.startsWith('utf-8')) {
    if (encoding === 'utf-8-sig') bytes.push(0xef, 0xbb, 0xbf);
    for (const cp of points) {
      if (cp < 0x80) bytes.push(cp);
      else if (cp < 0x800) bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
      else if (cp < 0x10000) bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
      else bytes.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    }
  } else if (encoding.startsWith('utf-16')) {
    const le = encoding !== 'utf-16-be' && (encoding !== 'utf-16' || r.chance(0.5));
    const out16 = [];
    for (const cp of points) {
      if (cp > 0xffff) out16.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
      else out16.push(cp);
    }
    if (encoding === 'utf-16') out16.unshift(0xfeff);
    for (const u of out16) bytes.push(...(le ? [u & 255, u >> 8] : [u >> 8, u & 255]));
  } else {
    const le = encoding !== 'utf-32-be' && (encoding !== 'utf-32' || r.chance(0.5));
    const out32 = encoding === 'utf-32' ? [0xfeff, ...points] : points;
    for (const cp of out32) {
      const b = [cp >>> 24, (cp >> 16) & 255, (cp >> 8) & 255, cp & 255];
      bytes.push(...(le ? b.reverse() : b));
    }
  }
  if (r.chance(0.06) && bytes.length > 0) {
    const at = r.int(bytes.length);
    switch (r.int(3)) {
      case 0:
        bytes[at] = r.int(256);
        break;
      case 1:
        bytes.splice(at, 1);
        break;
      default:
        bytes = bytes.slice(0, at);
    }
  }
  return new Uint8Array(bytes);
}

/** Random bytes built from valid, surrogate, overlong, truncated and stray UTF-8 pieces. */
export function randomUtf8ish(r) {
  const bytes = [];
  const n = r.int(12);
  const cont = () => 0x80 | r.int(64);
  for (let i = 0; i < n; i += 1) {
    switch (r.int(12)) {
      case 0:
      case 1:
      case 2:
        bytes.push(r.range(0x20, 0x7e));
        break;
      case 3:
        bytes.push(r.range(0xc2, 0xdf), cont());
        break;
      case 4:
        bytes.push(r.range(0xe1, 0xef), cont(), cont());
        break;
      case 5:
        bytes.push(r.range(0xf0, 0xf4), r.range(0x80, 0xbf), cont(), cont());
        break;
      case 6:
        bytes.push(0xed, r.range(0xa0, 0xbf), cont()); // an encoded surrogate
        break;
      case 7:
        bytes.push(r.pick([0xc0, 0xc1, 0xe0, 0xf0, 0xf4, 0xf5, 0xff, 0x80, 0xbf]), cont()); // overlong / out of range
        break;
      case 8:
        bytes.push(r.range(0xc2, 0xf4)); // truncated
        break;
      case 9:
        bytes.push(0xe0, r.range(0x80, 0xbf), cont());
        break;
      case 10:
        bytes.push(0);
        break;
      default:
        bytes.push(r.int(256));
    }
  }
  if (r.chance(0.15)) bytes.unshift(...r.pick([[0xef, 0xbb, 0xbf], [0xff, 0xfe], [0xfe, 0xff], [0xff, 0xfe, 0, 0], [0, 0, 0xfe, 0xff]]));
  return new Uint8Array(bytes);
}

/** Random UTF-16 or UTF-32 code units (lone surrogates, pairs, out-of-range values), as bytes. */
export function randomWide(r) {
  const wide = r.chance(0.5) ? 2 : 4;
  const le = r.chance(0.5);
  const units = [];
  const n = r.int(10);
  for (let i = 0; i < n; i += 1) {
    const k = r.int(6);
    if (k === 0) units.push(r.range(0xd800, 0xdbff));
    else if (k === 1) units.push(r.range(0xdc00, 0xdfff));
    else if (k === 2 && wide === 4) units.push(r.chance(0.5) ? r.range(0x110000, 0x110010) : r.range(0x10000, 0x10ffff));
    else if (k === 3) units.push(r.range(0, 0xffff));
    else units.push(r.range(0x20, 0x7e));
  }
  const bytes = [];
  for (const u of units) {
    const b = wide === 2 ? [(u >> 8) & 255, u & 255] : [u >>> 24, (u >> 16) & 255, (u >> 8) & 255, u & 255];
    bytes.push(...(le ? b.reverse() : b));
  }
  if (r.chance(0.1) && bytes.length > 0) bytes.pop();
  if (r.chance(0.3)) bytes.unshift(...(wide === 2 ? (le ? [0xff, 0xfe] : [0xfe, 0xff]) : le ? [0xff, 0xfe, 0, 0] : [0, 0, 0xfe, 0xff]));
  return new Uint8Array(bytes);
}
