// The built component (ComponentizeJS: this code inside SpiderMonkey, compiled to wasm) against
// the same in-memory store, and against this code run natively in Node: the same bytes written,
// the same messages read, for seeded random messages and entries (whose native results the
// property tests compare with Python). Runs only when WINDOW_JS_WASM names a built component.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeHost, bytes, text } from './fake-host.js';
import { loadComponent } from './component-loader.js';
import { createWindowPolicy, componentExports } from '../window.js';
import { textMessage } from '../codec.js';
import { encodeEntry, randomEntryText, randomMessage, rng, witMessage } from './gen.js';

const WASM = process.env.WINDOW_JS_WASM;
const skip = WASM ? false : 'set WINDOW_JS_WASM to a built window-js component';
const SEED = Number(process.env.PROPERTY_SEED ?? 20260101);

const box = { host: new FakeHost() };
let component;
async function fresh(settings) {
  component ??= await loadComponent(WASM, box);
  box.host = new FakeHost(settings);
  return { host: box.host, memory: component.memory, describe: component.describe };
}

const stored = (appended, trimmed, length) => ({ tag: 'stored', val: { appended, trimmed, length, evicted: [] } });

test('component: the window, retries, degraded reads and clear', { skip }, async () => {
  const { host, memory, describe } = await fresh({ maxMessages: 2 });
  assert.deepEqual(describe.settings(), []);
  assert.deepEqual(memory.addMessages('s', ['a', 'b', 'c'].map((c) => textMessage('user', c))), stored(2, 1, 2));
  assert.deepEqual(host.lists.get('ai:memory:s').map(text), ['{"role": "user", "content": "b"}', '{"role": "user", "content": "c"}']);
  host.failures.push({ tag: 'outcome-unknown', val: 'reset' });
  assert.equal(memory.getContext('s').messages.length, 2);
  host.failures.push({ tag: 'timeout' });
  assert.deepEqual(memory.getContext('s'), { messages: [], skipped: [], degraded: { tag: 'timeout' } });
  host.failures.push({ tag: 'outcome-unknown', val: 'x' });
  assert.deepEqual(memory.addMessage('s', textMessage('user', 'd')), { tag: 'failed', val: { tag: 'outcome-unknown', val: 'x' } });
  const turn = memory.addAndGetContext('s', [textMessage('user', 'e')]);
  assert.deepEqual(turn.outcome, stored(1, 1, 2));
  assert.deepEqual(turn.context.messages.map((m) => m.members[1].value.val), ['c', 'e']);
  assert.deepEqual(memory.clear('s'), stored(0, 2, 0));
  host.settings.maxMessages = 0;
  assert.deepEqual(memory.addMessage('s', textMessage('user', 'f')), stored(0, 1, 0));
});

test('component: strings that start with U+FEFF keep it, both ways', { skip }, async () => {
  const { host, memory } = await fresh({ keyPrefix: '\ufeffp:' });
  const message = { members: [{ name: '\ufeffrole', value: { tag: 'text', val: 'x' } }, { name: 'role', value: { tag: 'text', val: '\ufeffuser' } }] };
  assert.equal(memory.addMessage('\ufeffs', message).tag, 'stored');
  assert.deepEqual([...host.lists.keys()], ['\ufeffp:\ufeffs']);
  assert.equal(text(host.lists.get('\ufeffp:\ufeffs')[0]), '{"\\ufeffrole": "x", "role": "\\ufeffuser"}');
  assert.deepEqual(memory.getContext('\ufeffs').messages, [message]);
});

test('component: refusals are errors with their payload', { skip }, async () => {
  const { memory } = await fresh({ maxMessageBytes: 40 });
  const payloadOf = (f) => {
    try {
      f();
    } catch (error) {
      return error.payload;
    }
    return 'no error';
  };
  assert.deepEqual(payloadOf(() => memory.addMessages('s', [])), { tag: 'no-messages' });
  assert.deepEqual(payloadOf(() => memory.addMessage('s', textMessage('user', 'x'.repeat(40)))), {
    tag: 'invalid-message',
    val: [0, { tag: 'too-large', val: { what: 'encoded message bytes', actual: 71n, limit: 40n } }],
  });
  const bad = { members: [{ name: 'role', value: { tag: 'text', val: 'u' } }, { name: 'c', value: { tag: 'json', val: '[1,' } }] };
  assert.deepEqual(payloadOf(() => memory.addAndGetContext('s', [bad])), {
    tag: 'invalid-message',
    val: [0, { tag: 'invalid-json', val: 'member `c` is not JSON: not JSON (at byte 3)' }],
  });
  const deep = { members: [{ name: 'role', value: { tag: 'text', val: 'u' } }, { name: 'c', value: { tag: 'json', val: '['.repeat(200000) } }] };
  assert.deepEqual(payloadOf(() => memory.addMessage('s', deep)), { tag: 'invalid-message', val: [0, { tag: 'too-deep', val: 'c' }] });
});

test('component: hostile entries are skipped without a trap', { skip }, async () => {
  const { host, memory } = await fresh();
  host.lists.set('ai:memory:s', [
    bytes('['.repeat(1_000_000)),
    bytes('{"role": "user", "x": ' + '['.repeat(1000) + ']'.repeat(1000) + '}'),
    new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22]),
    bytes('{"role": "user", "content": "' + 'x'.repeat(1 << 20) + '"}'),
  ]);
  const context = memory.getContext('s');
  assert.deepEqual(context.skipped, [
    { position: 0, problem: 'too-deep' },
    { position: 1, problem: 'too-deep' },
    { position: 2, problem: 'lone-surrogate' },
  ]);
  assert.equal(context.messages[0].members[1].value.val.length, 1 << 20);
});

test('component: the same bytes and messages as the native code, on random messages and entries', { skip }, async () => {
  const r = rng(SEED + 7000);
  const { host, memory } = await fresh({ maxMessages: 100000 });
  const native = new FakeHost({ maxMessages: 100000 });
  const nativeMemory = componentExports(createWindowPolicy(native)).memory;
  const messages = Array.from({ length: 600 }, () => witMessage(randomMessage(r)));
  for (let i = 0; i < messages.length; i += 50) {
    memory.addMessages('s', messages.slice(i, i + 50));
    nativeMemory.addMessages('s', messages.slice(i, i + 50));
  }
  assert.deepEqual(host.lists.get('ai:memory:s').map(text), native.lists.get('ai:memory:s').map(text));
  const entries = Array.from({ length: 1500 }, () => encodeEntry(r, randomEntryText(r)));
  host.lists.set('ai:memory:e', entries);
  native.lists.set('ai:memory:e', entries);
  assert.deepEqual(memory.getContext('e'), nativeMemory.getContext('e'));
  // And the floats of every magnitude, in the engine's own float formatting.
  const floats = bytes(`{"role": "user", "f": [${Array.from({ length: 3000 }, () => String(Math.exp((r.next() - 0.5) * 1400) * (r.chance(0.5) ? -1 : 1)).replace(/^(-?\d+)$/, '$1.0')).join(', ')}, 2000000000000000.25, 5e-324, 1e16, 1e-5]}`);
  host.lists.set('ai:memory:f', [floats]);
  native.lists.set('ai:memory:f', [floats]);
  assert.deepEqual(memory.getContext('f'), nativeMemory.getContext('f'));
});
