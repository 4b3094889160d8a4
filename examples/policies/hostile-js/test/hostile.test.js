// The hostile policy, built, run in Node over an in-memory store. Runs only when HOSTILE_JS_WASM
// names a built component. `loop` is not run here (it never returns: the host's deadline is what
// stops it); `alloc` only with HOSTILE_ALLOC=1 (it grows the instance to the 4 GiB wasm32 limit).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeHost } from '../../window-js/test/fake-host.js';
import { loadComponent } from '../../window-js/test/component-loader.js';
import { textMessage } from '../../window-js/codec.js';

const WASM = process.env.HOSTILE_JS_WASM;
const skip = WASM ? false : 'set HOSTILE_JS_WASM to a built hostile-js component';

async function fresh() {
  const box = { host: new FakeHost() };
  return { box, ...(await loadComponent(WASM, box)) };
}

test('any other session id gets the default window policy', { skip }, async () => {
  const { box, memory, describe } = await fresh();
  assert.deepEqual(describe.settings(), []);
  assert.equal(memory.addMessage('s', textMessage('user', 'a')).tag, 'stored');
  assert.deepEqual(memory.getContext('s').messages, [textMessage('user', 'a')]);
  assert.deepEqual(box.host.calls, ['apply ai:memory:s', 'apply ai:memory:s']);
});

test('raise: every memory call traps', { skip }, async () => {
  for (const call of [(m) => m.getContext('raise'), (m) => m.addMessage('raise-1', textMessage('user', 'a')), (m) => m.clear('raise')]) {
    const { memory } = await fresh();
    assert.throws(() => call(memory), (error) => error instanceof WebAssembly.RuntimeError);
  }
});

test('bad-output: messages without a role, or with a json member that is not JSON', { skip }, async () => {
  const { memory } = await fresh();
  assert.deepEqual(memory.getContext('bad-output').messages, [
    { members: [{ name: 'content', value: { tag: 'text', val: 'a message without a role' } }] },
  ]);
  assert.deepEqual(memory.addAndGetContext('bad-output-json', [textMessage('user', 'a')]).context.messages[0].members[1], {
    name: 'content',
    value: { tag: 'json', val: '{"not": json' },
  });
  assert.equal(memory.addMessage('bad-output', textMessage('user', 'a')).val.evicted.length, 1);
  assert.equal(memory.clear('bad-output-json').val.evicted[0].members[0].name, 'role');
});

test('alloc: allocates until the instance runs out of memory', { skip: skip || (process.env.HOSTILE_ALLOC === '1' ? false : 'set HOSTILE_ALLOC=1') }, async () => {
  const { memory } = await fresh();
  assert.throws(() => memory.getContext('alloc'));
});
