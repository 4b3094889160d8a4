// The JSON layer on fixed cases; each expectation is what CPython 3.11's
// `json.dumps(json.loads(text))` prints (the same cases as the Rust format crate's tests).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { canonical, decodeBytes, escapeString, floatRepr, JsonError, loadsBytes, loadsText, MAX_INT_DIGITS } from '../pyjson.js';

const kindOf = (f) => {
  try {
    f();
    return 'ok';
  } catch (error) {
    if (!(error instanceof JsonError)) throw error;
    return error.kind;
  }
};
const bytes = (text) => new TextEncoder().encode(text);

test('objects use Python separators and keep member order', () => {
  assert.equal(
    canonical('{"role":"user","content":"hi","b":1,"a":[1,2,{}],"z":[]}'),
    '{"role": "user", "content": "hi", "b": 1, "a": [1, 2, {}], "z": []}',
  );
});

test('non-ASCII is escaped like ensure_ascii, per UTF-16 code unit, in lowercase hex', () => {
  assert.equal(canonical('"h\u00e9llo"'), '"h\\u00e9llo"');
  assert.equal(canonical('"\u65e5\u672c"'), '"\\u65e5\\u672c"');
  assert.equal(canonical('"\u{1f600}"'), '"\\ud83d\\ude00"');
  assert.equal(escapeString('\uABCD'), '"\\uabcd"');
});

test('control characters use short forms where Python does', () => {
  assert.equal(
    canonical('"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\\u2028"'),
    '"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\\u2028"',
  );
  assert.equal(canonical('"a\\/b"'), '"a/b"');
  assert.equal(escapeString('\u0000\u000b\u001b '), '"\\u0000\\u000b\\u001b "');
});

test('integers keep every digit and minus zero is zero', () => {
  assert.equal(
    canonical('[0, -0, -3, 9007199254740993, 18446744073709551616, -123456789012345678901234567890]'),
    '[0, 0, -3, 9007199254740993, 18446744073709551616, -123456789012345678901234567890]',
  );
});

test("integers past Python's digit limit are refused", () => {
  const atLimit = '7'.repeat(MAX_INT_DIGITS);
  assert.equal(canonical(atLimit), atLimit);
  assert.equal(canonical(`-${atLimit}`), `-${atLimit}`);
  assert.equal(kindOf(() => canonical(`${atLimit}7`)), 'int-too-long');
  // A float has no such limit.
  assert.equal(canonical(`${atLimit}7.0`), 'Infinity');
});

test('floats are written like float.__repr__', () => {
  assert.equal(
    canonical(
      '[0.1, 1.0, 1e16, 1e15, 1e-5, 0.0001, 123.456, -3e-7, 1.5e300, 5e-324, 2.5, -0.0, 0.0, 1e22, 12345678901234567890.0, 1E5, 1.7976931348623157e308, 0.4245191891425139, 1e400, -1e400, 1e-400, 0.1e1, 1.0e+2]',
    ),
    '[0.1, 1.0, 1e+16, 1000000000000000.0, 1e-05, 0.0001, 123.456, -3e-07, 1.5e+300, 5e-324, 2.5, -0.0, 0.0, 1e+22, 1.2345678901234567e+19, 100000.0, 1.7976931348623157e+308, 0.4245191891425139, Infinity, -Infinity, 0.0, 1.0, 100.0]',
  );
});

test('exact ties between two shortest forms take the even digit, as Python does', () => {
  assert.equal(
    canonical('[2000000000000000.25, 2000000000000000.75, 1000000000000000.375, 1000000000000000.625, 4000000000000000.5, 1e23, 5e-324]'),
    '[2000000000000000.2, 2000000000000000.8, 1000000000000000.4, 1000000000000000.6, 4000000000000000.5, 1e+23, 5e-324]',
  );
  // Whatever the engine's toExponential does with a tie, floatRepr corrects it.
  const original = Number.prototype.toExponential;
  try {
    Number.prototype.toExponential = function (digits) {
      if (digits === undefined && this.valueOf() === 2000000000000000.25) return '2.0000000000000003e+15';
      return original.call(this, digits);
    };
    assert.equal(floatRepr(2000000000000000.25), '2000000000000000.2');
  } finally {
    Number.prototype.toExponential = original;
  }
});

test("Python's non-finite constants are read and written", () => {
  assert.equal(canonical('[NaN, Infinity, -Infinity]'), '[NaN, Infinity, -Infinity]');
  for (const bad of ['-NaN', 'nan', 'inf', '+Infinity', 'Infinit']) assert.equal(kindOf(() => canonical(bad)), 'syntax', bad);
});

test('a repeated member keeps its first place and last value, like a dict', () => {
  assert.equal(canonical('{"a": 1, "b": 2, "a": 3}'), '{"a": 3, "b": 2}');
  const many = Array.from({ length: 40 }, (_, i) => `"k${i}": ${i}`);
  const value = loadsText(`{${many.join(', ')}, "k3": "again"}`).value;
  assert.equal(value.keys.length, 40);
  assert.deepEqual([value.keys[3], value.values[3]], ['k3', 'again']);
});

test('surrogate escapes pair up and lone ones are named', () => {
  assert.equal(canonical('"\\ud83d\\ude00"'), '"\\ud83d\\ude00"');
  assert.equal(loadsText('"\\ud83d\\ude00"').value, '\u{1f600}');
  for (const lone of ['"\\ud800"', '"\\udc00"', '"\\ud800x"', '"\\ud800\\u0041"', '"\\ude00\\ud83d"', '{"\\udfff": 1}']) {
    assert.equal(kindOf(() => canonical(lone)), 'lone-surrogate', lone);
  }
  // Broken documents are not JSON, whatever they hold.
  assert.equal(kindOf(() => canonical('["\\ud800"')), 'syntax');
});

test('a lone surrogate replaced by a repeated member is gone, as in Python', () => {
  assert.equal(canonical('{"a": ["\\ud800"], "b": 1, "a": null}'), '{"a": null, "b": 1}');
  assert.equal(kindOf(() => canonical('{"a": null, "a": "\\ud800"}')), 'lone-surrogate');
  assert.equal(kindOf(() => canonical('{"\\ud800": 1, "\\ud800": 2}')), 'lone-surrogate');
});

test('surrogates encoded in the bytes are lone inside strings and syntax outside', () => {
  const withRaw = (before, raw, after) => new Uint8Array([...bytes(before), ...raw, ...bytes(after)]);
  assert.equal(kindOf(() => loadsBytes(withRaw('"a', [0xed, 0xa0, 0x80], 'b"'))), 'lone-surrogate');
  // An encoded high surrogate next to an escaped low one: Python does not join them.
  assert.equal(kindOf(() => loadsBytes(withRaw('"', [0xed, 0xa0, 0xbd], '\\ude00"'))), 'lone-surrogate');
  // Nor two encoded halves of a pair.
  assert.equal(kindOf(() => loadsBytes(withRaw('"', [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], '"'))), 'lone-surrogate');
  assert.equal(kindOf(() => loadsBytes(withRaw('[1, ', [0xed, 0xa0, 0x80], ']'))), 'syntax');
  assert.equal(loadsBytes(bytes('"ok" ')), 'ok');
});

test('encodings are detected like json.detect_encoding', () => {
  const text = '{"a": "\u00e9"}';
  const units = Array.from(text, (c) => c.charCodeAt(0));
  const u16 = (le) => units.flatMap((u) => (le ? [u & 255, u >> 8] : [u >> 8, u & 255]));
  const u32 = (le) => units.flatMap((u) => (le ? [u & 255, u >> 8, 0, 0] : [0, 0, u >> 8, u & 255]));
  for (const input of [
    [...bytes(text)],
    [0xef, 0xbb, 0xbf, ...bytes(text)],
    u16(true),
    u16(false),
    [0xff, 0xfe, ...u16(true)],
    [0xfe, 0xff, ...u16(false)],
    u32(true),
    u32(false),
    [0xff, 0xfe, 0, 0, ...u32(true)],
    [0, 0, 0xfe, 0xff, ...u32(false)],
  ]) {
    assert.equal(canonical(text), '{"a": "\\u00e9"}');
    const value = loadsBytes(new Uint8Array(input));
    assert.deepEqual([value.keys, value.values], [['a'], ['\u00e9']], JSON.stringify(input));
  }
  // A BOM in decoded text is refused, as json.loads(str) does; a second one after the first too.
  assert.equal(kindOf(() => loadsText('\ufeff1')), 'syntax');
  assert.equal(kindOf(() => loadsBytes(new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, 0x31]))), 'syntax');
  assert.equal(decodeBytes(new Uint8Array([0x31, 0x00])).text, '1');
});

test('bytes that are not text are named', () => {
  for (const input of [[0xff, 0xfe, 0x00], [0x22, 0xc3, 0x22], [0x22, 0xf8, 0x88, 0x80, 0x80, 0x80, 0x22], [0x80]]) {
    assert.ok(['not-text', 'syntax'].includes(kindOf(() => loadsBytes(new Uint8Array(input)))), JSON.stringify(input));
  }
  assert.equal(kindOf(() => loadsBytes(new Uint8Array([0x22, 0xc3, 0x22]))), 'not-text');
});

test("the grammar is CPython's", () => {
  for (const ok of [' 1 ', '\t[\r\n]\n', '-0.5e-3', '0', '""', '{}', '[[], {}]', '1E+2', '1e-0']) {
    assert.equal(kindOf(() => canonical(ok)), 'ok', ok);
  }
  for (const bad of [
    '', ' ', '01', '1.', '.5', '1e', '1e+', '+1', '- 1', '[1,]', '{"a":1,}', '{a:1}', '{"a" 1}', '[1 2]',
    '"\t"', '"\\x"', '"\\u12"', '"\\u12"x', '"abc', 'tru', 'nul', 'Infinit', '1 2', '{"a":}', '[', "'a'",
    '\u00a01', '\ufeff1x', '"\\ud800\\u12"', '\u000c1', '1\u000b', '[1]]', '{"a":1}}',
  ]) {
    assert.equal(kindOf(() => canonical(bad)), 'syntax', JSON.stringify(bad));
  }
});

test('nesting is bounded without exhausting the stack', () => {
  const deep = (n) => '['.repeat(n) + ']'.repeat(n);
  assert.equal(kindOf(() => loadsBytes(bytes(deep(1000)))), 'ok');
  assert.equal(kindOf(() => loadsBytes(bytes(deep(1001)))), 'too-deep');
  assert.equal(kindOf(() => loadsText(deep(3), 2)), 'too-deep');
  assert.equal(loadsText(deep(7)).depth, 7);
  assert.equal(loadsText('1').depth, 0);
  assert.equal(kindOf(() => loadsBytes(bytes('['.repeat(1_000_000)))), 'too-deep');
  // Writing a deep value does not recurse either.
  assert.equal(canonical('{"a":'.repeat(1000) + '1' + '}'.repeat(1000)), '{"a": '.repeat(1000) + '1' + '}'.repeat(1000));
});

test('the engine-assisted escaping writes what escaping unit by unit writes', async () => {
  const { escapeStringByUnit } = await import('../pyjson.js');
  const { rng, randomCodePoints, stringOf } = await import('./gen.js');
  const r = rng(99);
  for (let i = 0; i < 5000; i += 1) {
    const text = stringOf(randomCodePoints(r, { lone: true, max: 40 }));
    assert.equal(escapeString(text), escapeStringByUnit(text), JSON.stringify(text));
  }
});
