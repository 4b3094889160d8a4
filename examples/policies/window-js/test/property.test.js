// Property tests of exactness against Python itself: thousands of seeded random cases, each fed as
// the same text (or bytes) to this policy's JSON layer and to CPython's json module (test/oracle.py,
// one python3 process per batch), the answers compared byte for byte.
//
// PROPERTY_SEED (default 20260101) picks the cases; PROPERTY_SCALE (default 1) multiplies their
// number. A failure prints the seed, the batch and the input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { canonical, decodeBytes, decodeUtf8, floatRepr, JsonError } from '../pyjson.js';
import { decodeEntry, encodeMessage } from '../codec.js';
import {
  deepJson,
  encodeEntry,
  mutate,
  randomDouble,
  randomEntryText,
  randomJson,
  randomMessage,
  randomUtf8ish,
  randomWide,
  rng,
  witMessage,
} from './gen.js';

const SEED = Number(process.env.PROPERTY_SEED ?? 20260101);
const SCALE = Number(process.env.PROPERTY_SCALE ?? 1);
const ORACLE = fileURLToPath(new URL('./oracle.py', import.meta.url));
const PYTHON = process.env.PYTHON ?? 'python3';

let casesRun = 0;

/** Python's answers to `requests`, one python3 process for the batch. */
function oracle(requests) {
  const input = requests.map((request) => JSON.stringify(request) + '\n').join('');
  const run = spawnSync(PYTHON, [ORACLE], { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`oracle failed: ${run.stderr}`);
  const answers = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line));
  assert.equal(answers.length, requests.length);
  casesRun += requests.length;
  return answers;
}

/** This layer's answer to a `canon` request, in the oracle's terms. */
function canonOf(text) {
  try {
    return { r: 'ok', t: canonical(text) };
  } catch (error) {
    if (!(error instanceof JsonError)) throw error;
    if (error.kind === 'lone-surrogate') return { r: 'lone' };
    if (error.kind === 'too-deep') return { r: 'too-deep' };
    return { r: 'error' };
  }
}

function entryOf(bytes) {
  const decoded = decodeEntry(bytes);
  if (decoded.err !== undefined) return { r: decoded.err };
  return { r: 'ok', members: decoded.ok.members.map((m) => [m.name, m.value.tag, m.value.val]) };
}

function compare(label, inputs, mine, theirs) {
  for (let i = 0; i < inputs.length; i += 1) {
    assert.deepEqual(mine[i], theirs[i], `${label} (seed ${SEED}) case ${i}: input ${JSON.stringify(inputs[i])}`);
  }
}

const batches = (n) => Math.max(1, Math.round(n * SCALE));

test('canonical text of random JSON values is json.dumps(json.loads(text))', () => {
  for (let batch = 0; batch < batches(4); batch += 1) {
    const r = rng(SEED + 1000 + batch);
    const texts = [];
    for (let i = 0; i < 2000; i += 1) {
      const roll = r.int(20);
      if (roll === 0) texts.push(deepJson(r, r.range(20, 400)));
      else texts.push(randomJson(r, r.range(0, 7), { lone: r.chance(0.1) }));
    }
    const theirs = oracle(texts.map((text) => ({ op: 'canon', text })));
    compare(`canonical batch ${batch}`, texts, texts.map(canonOf), theirs);
  }
});

test('floats of every magnitude are written as float.__repr__', () => {
  for (let batch = 0; batch < batches(2); batch += 1) {
    const r = rng(SEED + 2000 + batch);
    const texts = [];
    for (let i = 0; i < 3000; i += 1) {
      const x = randomDouble(r);
      // Spelled so that json.loads reads exactly x (String(x) round-trips), as a float.
      const s = String(x);
      texts.push(/[.e]/.test(s) ? s : s + '.0');
    }
    const theirs = oracle(texts.map((text) => ({ op: 'canon', text })));
    compare(`float batch ${batch}`, texts, texts.map(canonOf), theirs);
    // floatRepr directly, on the same values.
    texts.forEach((text, i) => assert.equal(floatRepr(Number(text)), theirs[i].t, text));
  }
});

test('broken JSON is refused exactly where Python refuses it', () => {
  for (let batch = 0; batch < batches(2); batch += 1) {
    const r = rng(SEED + 3000 + batch);
    const texts = [];
    for (let i = 0; i < 2000; i += 1) texts.push(mutate(r, randomJson(r, r.range(1, 5))));
    const theirs = oracle(texts.map((text) => ({ op: 'canon', text })));
    compare(`mutation batch ${batch}`, texts, texts.map(canonOf), theirs);
  }
});

test('encoded messages are the bytes json.dumps writes of the dict', () => {
  for (let batch = 0; batch < batches(2); batch += 1) {
    const r = rng(SEED + 4000 + batch);
    const messages = [];
    for (let i = 0; i < 1500; i += 1) messages.push(randomMessage(r));
    const theirs = oracle(messages.map((members) => ({ op: 'encode', members })));
    const mine = messages.map((members) => {
      const result = encodeMessage(witMessage(members), 2 ** 32 - 1);
      assert.equal(result.err, undefined, JSON.stringify(members));
      return { r: 'ok', t: new TextDecoder().decode(result.ok) };
    });
    compare(`encode batch ${batch}`, messages, mine, theirs);
    // And each entry decodes to the same members, canonical values unchanged.
    mine.forEach(({ t }, i) => {
      const decoded = decodeEntry(new TextEncoder().encode(t));
      assert.ok(decoded.ok, t);
      assert.deepEqual(
        decoded.ok.members.map((m) => m.name),
        messages[i].map(([name]) => name),
      );
    });
  }
});

test('stored entries in any encoding decode as json.loads(bytes) reads them', () => {
  for (let batch = 0; batch < batches(3); batch += 1) {
    const r = rng(SEED + 5000 + batch);
    const entries = [];
    for (let i = 0; i < 1500; i += 1) entries.push(encodeEntry(r, randomEntryText(r)));
    const theirs = oracle(entries.map((bytes) => ({ op: 'entry', b64: Buffer.from(bytes).toString('base64') })));
    const inputs = entries.map((bytes) => Buffer.from(bytes).toString('hex'));
    compare(`entry batch ${batch}`, inputs, entries.map(entryOf), theirs);
  }
});

/** This layer's decode of `bytes` in the oracle's terms. */
function decodedOf(decode) {
  try {
    const decoded = decode();
    return { r: 'ok', t: decoded.text, raw: decoded.raw };
  } catch (error) {
    if (!(error instanceof JsonError)) throw error;
    return { r: error.kind };
  }
}

test('bytes are decoded as json.loads decodes them (detect_encoding, surrogatepass)', () => {
  for (let batch = 0; batch < batches(2); batch += 1) {
    const r = rng(SEED + 6000 + batch);
    const inputs = [];
    for (let i = 0; i < 2000; i += 1) inputs.push(r.chance(0.6) ? randomUtf8ish(r) : randomWide(r));
    const b64 = inputs.map((bytes) => Buffer.from(bytes).toString('base64'));
    const theirs = oracle(b64.map((data) => ({ op: 'decode', b64: data })));
    const hex = inputs.map((bytes) => Buffer.from(bytes).toString('hex'));
    compare(`decode batch ${batch}`, hex, inputs.map((bytes) => decodedOf(() => decodeBytes(bytes))), theirs);
    // The UTF-8 decoder the component falls back on when its TextDecoder is not strict.
    const utf8 = oracle(b64.map((data) => ({ op: 'decode', b64: data, encoding: 'utf-8' })));
    compare(`utf-8 batch ${batch}`, hex, inputs.map((bytes) => decodedOf(() => decodeUtf8(bytes))), utf8);
  }
});

test('nesting: Python reads what we read up to its own limit', () => {
  const texts = [];
  for (const n of [1, 2, 10, 100, 499, 500, 900]) {
    texts.push('['.repeat(n) + ']'.repeat(n));
    texts.push('{"a":'.repeat(n) + '1' + '}'.repeat(n));
  }
  const theirs = oracle(texts.map((text) => ({ op: 'canon', text })));
  compare('nesting', texts, texts.map(canonOf), theirs);
});

test('report', () => {
  // Not a check: the number of cases compared with Python in this run.
  console.log(`property cases compared with Python: ${casesRun} (seed ${SEED}, scale ${SCALE})`);
  assert.ok(casesRun > 0);
});
