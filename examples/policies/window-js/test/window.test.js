// The window policy's operations against an in-memory store.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeHost, bytes, text } from './fake-host.js';
import { componentExports, createWindowPolicy } from '../window.js';
import { textMessage } from '../codec.js';

const user = (content) => textMessage('user', content);
const contents = (context) =>
  context.messages.flatMap((message) => message.members.filter((member) => member.name === 'content').map((member) => member.value.val));
const stored = (appended, trimmed, length) => ({ tag: 'stored', val: { appended, trimmed, length, evicted: [] } });

function setup(settings) {
  const host = new FakeHost(settings);
  return { host, policy: createWindowPolicy(host) };
}

const STORE_ERRORS = [
  { tag: 'unavailable', val: 'refused' },
  { tag: 'timeout' },
  { tag: 'outcome-unknown', val: 'reset' },
  { tag: 'out-of-memory' },
  { tag: 'disk-full', val: 'no space' },
  { tag: 'damaged', val: 'bad page' },
  { tag: 'wrong-type' },
  { tag: 'too-large', val: { what: 'entries read', actual: 10n, limit: 5n } },
  { tag: 'denied', val: 'quota' },
  { tag: 'rejected', val: 'READONLY' },
  { tag: 'not-replicated', val: { wanted: 1, acknowledged: 0 } },
  { tag: 'conflict' },
];

test('messages written are read back in order, under prefix + session id, as json.dumps bytes', () => {
  const { host, policy } = setup();
  assert.deepEqual(policy.addMessages('s1', [user('a'), user('b')]), { tag: 'ok', val: stored(2, 0, 2) });
  const context = policy.getContext('s1').val;
  assert.deepEqual(contents(context), ['a', 'b']);
  assert.deepEqual(context.skipped, []);
  assert.equal(context.degraded, undefined);
  assert.deepEqual(host.lists.get('ai:memory:s1').map(text), [
    '{"role": "user", "content": "a"}',
    '{"role": "user", "content": "b"}',
  ]);
  assert.deepEqual(host.calls, ['apply ai:memory:s1', 'read-range ai:memory:s1']);
});

test('an append is push, trim to the newest max-messages, expire, in one transaction', () => {
  const { host, policy } = setup({ maxMessages: 7, ttlSeconds: 99 });
  policy.addMessage('s', user('a'));
  assert.deepEqual(host.applied, [
    [
      { tag: 'push', val: [bytes('{"role": "user", "content": "a"}')] },
      { tag: 'trim', val: { start: -7n, stop: -1n } },
      { tag: 'expire', val: 99 },
    ],
  ]);
  assert.equal(host.ttls.get('ai:memory:s'), 99);
});

test('a read asks for the newest max-messages entries only', () => {
  const { host, policy } = setup({ maxMessages: 2 });
  host.lists.set('ai:memory:s', ['a', 'b', 'c'].map((c) => bytes(JSON.stringify({ role: 'user', content: c }))));
  assert.deepEqual(contents(policy.getContext('s').val), ['b', 'c']);
});

test('the window keeps the newest messages and reports what it trimmed', () => {
  const { host, policy } = setup({ maxMessages: 2 });
  policy.addMessages('s', [user('a'), user('b')]);
  assert.deepEqual(policy.addMessages('s', [user('c')]).val, stored(1, 1, 2));
  assert.deepEqual(contents(policy.getContext('s').val), ['b', 'c']);
  assert.equal(host.lists.get('ai:memory:s').length, 2);
});

test('a batch larger than the window pushes only its newest messages and counts the rest', () => {
  const { host, policy } = setup({ maxMessages: 2 });
  policy.addMessage('s', user('old'));
  const outcome = policy.addMessages('s', ['a', 'b', 'c', 'd', 'e'].map(user)).val;
  // 3 of the batch never pushed, and 'old' trimmed away.
  assert.deepEqual(outcome, stored(2, 4, 2));
  assert.equal(host.applied[1][0].val.length, 2);
  assert.deepEqual(contents(policy.getContext('s').val), ['d', 'e']);
});

test('a window of zero deletes, reads nothing, and counts everything as trimmed', () => {
  const { host, policy } = setup({ maxMessages: 0 });
  host.lists.set('ai:memory:s', [bytes('old'), bytes('old'), bytes('old')]);
  assert.deepEqual(policy.addMessages('s', [user('a'), user('b')]).val, stored(0, 5, 0));
  assert.deepEqual(host.applied, [[{ tag: 'delete' }]]);
  assert.equal(host.lists.size, 0);
  assert.deepEqual(policy.getContext('s'), { tag: 'ok', val: { messages: [], skipped: [], degraded: undefined } });
  const turn = policy.addAndGetContext('s', [user('c')]).val;
  assert.deepEqual(turn.outcome, stored(0, 1, 0));
  assert.deepEqual(turn.context, { messages: [], skipped: [], degraded: undefined });
  assert.deepEqual(host.applied[1], [{ tag: 'delete' }]);
  assert.deepEqual(host.calls, ['apply ai:memory:s', 'apply ai:memory:s']);
});

test('settings are read on every call', () => {
  const { host, policy } = setup({ maxMessages: 5 });
  policy.addMessages('s', ['a', 'b', 'c'].map(user));
  host.settings.maxMessages = 1;
  host.settings.keyPrefix = 'other:';
  policy.addMessage('s', user('x'));
  assert.deepEqual(host.applied[1][1], { tag: 'trim', val: { start: -1n, stop: -1n } });
  assert.ok(host.lists.has('other:s'));
  host.settings.keyPrefix = 'ai:memory:';
  assert.deepEqual(contents(policy.getContext('s').val), ['c']);
});

test('clear deletes the session and counts what it held', () => {
  const { host, policy } = setup();
  policy.addMessages('s', [user('a'), user('b')]);
  assert.deepEqual(policy.clear('s').val, stored(0, 2, 0));
  assert.equal(host.lists.size, 0);
  assert.deepEqual(policy.clear('s').val, stored(0, 0, 0));
  host.failures.push({ tag: 'timeout' });
  assert.deepEqual(policy.clear('s').val, { tag: 'failed', val: { tag: 'timeout' } });
});

test('a read survives one dropped connection, and only that', () => {
  const { host, policy } = setup();
  policy.addMessage('s', user('a'));
  host.calls = [];
  host.failures.push({ tag: 'outcome-unknown', val: 'reset' });
  const context = policy.getContext('s').val;
  assert.deepEqual([contents(context), context.degraded], [['a'], undefined]);
  assert.equal(host.calls.length, 2);
  assert.ok(host.logs.some(([level, line]) => level === 'warn' && line.includes('retrying once')));

  host.calls = [];
  host.failures.push({ tag: 'outcome-unknown', val: 'reset' }, { tag: 'outcome-unknown', val: 'again' });
  const twice = policy.getContext('s').val;
  assert.deepEqual(twice, { messages: [], skipped: [], degraded: { tag: 'outcome-unknown', val: 'again' } });
  assert.equal(host.calls.length, 2);
});

test('every other store error degrades a read at once, logged', () => {
  for (const error of STORE_ERRORS.filter((e) => e.tag !== 'outcome-unknown')) {
    const { host, policy } = setup();
    host.failures.push(error, { tag: 'timeout' });
    assert.deepEqual(policy.getContext('s'), { tag: 'ok', val: { messages: [], skipped: [], degraded: error } });
    assert.equal(host.calls.length, 1, error.tag);
    assert.ok(host.logs.some(([level, line]) => level === 'warn' && line.includes(error.tag)));
  }
});

test('a write is never retried: every store error is reported as failed', () => {
  for (const error of STORE_ERRORS) {
    const { host, policy } = setup();
    host.failures.push(error);
    assert.deepEqual(policy.addMessages('s', [user('a')]), { tag: 'ok', val: { tag: 'failed', val: error } });
    assert.equal(host.calls.length, 1, error.tag);
    assert.equal(host.lists.size, 0);
  }
});

test('add-and-get-context writes and reads in one store call', () => {
  const { host, policy } = setup({ maxMessages: 2 });
  policy.addMessages('s', [user('a'), user('b')]);
  host.calls = [];
  const turn = policy.addAndGetContext('s', [user('c')]).val;
  assert.deepEqual(turn.outcome, stored(1, 1, 2));
  assert.deepEqual(contents(turn.context), ['b', 'c']);
  assert.deepEqual(host.calls, ['apply ai:memory:s']);
  assert.deepEqual(host.applied[1].at(-1), { tag: 'read', val: { start: -2n, stop: -1n } });
});

test('a failed add-and-get degrades the context with the same error, without a retry', () => {
  const { host, policy } = setup();
  host.failures.push({ tag: 'outcome-unknown', val: 'reset' });
  const turn = policy.addAndGetContext('s', [user('a')]).val;
  assert.deepEqual(turn.outcome, { tag: 'failed', val: { tag: 'outcome-unknown', val: 'reset' } });
  assert.deepEqual(turn.context, { messages: [], skipped: [], degraded: { tag: 'outcome-unknown', val: 'reset' } });
  assert.equal(host.calls.length, 1);
});

test('a read the host could not hand over degrades the context, the write still stored', () => {
  const { host, policy } = setup();
  const tooLarge = { tag: 'too-large', val: { what: 'read bytes', actual: 9n, limit: 1n } };
  host.readFailure = tooLarge;
  const turn = policy.addAndGetContext('s', [user('a')]).val;
  assert.deepEqual(turn.outcome, stored(1, 0, 1));
  assert.deepEqual(turn.context, { messages: [], skipped: [], degraded: tooLarge });
});

test('entries that are not messages are skipped with their position and problem', () => {
  const { host, policy } = setup();
  const deep = (n) => '['.repeat(n) + ']'.repeat(n);
  const entries = [
    bytes('{"role": "user", "content": "a"}'),
    bytes('{broken'),
    bytes('42'),
    new Uint8Array([0x7b, 0xff, 0x7d]),
    bytes(`{"role": "user", "n": ${'7'.repeat(4301)}}`),
    bytes(deep(1001)),
    bytes('{"role": "user", "content": "\\ud800"}'),
    new Uint8Array([...bytes('{"role": "user", "content": "'), 0xed, 0xa0, 0x80, ...bytes('"}')]),
    bytes('{"content": "no role"}'),
    bytes('{"role": 1}'),
    bytes('{"role": null, "content": "x"}'),
    bytes('[{"role": "user"}]'),
    bytes('{"role": "user", "content": "b"}'),
    bytes(`{"role": "user", "x": ${deep(999)}}`),
    bytes(`{"role": "user", "x": ${deep(1000)}}`),
    new Uint8Array(0),
  ];
  host.lists.set('ai:memory:s', entries);
  const context = policy.getContext('s').val;
  assert.deepEqual(contents(context), ['a', 'b']);
  assert.equal(context.messages.length, 3);
  assert.equal(context.messages[2].members[1].value.val, '['.repeat(999) + ']'.repeat(999));
  assert.deepEqual(context.skipped, [
    { position: 1, problem: 'not-json' },
    { position: 2, problem: 'not-an-object' },
    { position: 3, problem: 'not-json' },
    { position: 4, problem: 'not-json' },
    { position: 5, problem: 'too-deep' },
    { position: 6, problem: 'lone-surrogate' },
    { position: 7, problem: 'lone-surrogate' },
    { position: 8, problem: 'no-role' },
    { position: 9, problem: 'no-role' },
    { position: 10, problem: 'no-role' },
    { position: 11, problem: 'not-an-object' },
    { position: 14, problem: 'too-deep' },
    { position: 15, problem: 'not-json' },
  ]);
  assert.equal(context.degraded, undefined);
  const warnings = host.logs.filter(([level, line]) => level === 'warn' && line.startsWith('skipped stored entry'));
  assert.equal(warnings.length, 13);
  assert.ok(!warnings.some(([, line]) => line.includes('no role')), 'log lines hold no message contents');
});

test('a hostile entry nested a million levels deep is skipped without exhausting the stack', () => {
  const { host, policy } = setup();
  host.lists.set('ai:memory:s', [bytes('['.repeat(1_000_000)), bytes('{"role": "user", "content": "a"}')]);
  const context = policy.getContext('s').val;
  assert.deepEqual(context.skipped, [{ position: 0, problem: 'too-deep' }]);
  assert.deepEqual(contents(context), ['a']);
});

test('decoding keeps every member in its order, canonical JSON for non-strings', () => {
  const { host, policy } = setup();
  host.lists.set('ai:memory:s', [
    bytes('{"content":"first","role":"user"}'),
    bytes('{ "role" : "tool" , "tool_call_id":"c1", "content" :"18 C" }'),
    bytes('{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}],"n":1E5,"big":123456789012345678901234567890,"x":NaN}'),
    bytes('{"role": "user", "a": 1, "role": "assistant", "a": [1.0, -0, -0.0]}'),
    bytes('{"role": "user", "content": "h\\u00e9llo \\ud83d\\ude00 \\/"}'),
  ]);
  const messages = policy.getContext('s').val.messages.map((message) =>
    message.members.map((member) => [member.name, member.value.tag, member.value.val]),
  );
  assert.deepEqual(messages, [
    [['content', 'text', 'first'], ['role', 'text', 'user']],
    [['role', 'text', 'tool'], ['tool_call_id', 'text', 'c1'], ['content', 'text', '18 C']],
    [
      ['role', 'text', 'assistant'],
      ['content', 'json', 'null'],
      ['tool_calls', 'json', '[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]'],
      ['n', 'json', '100000.0'],
      ['big', 'json', '123456789012345678901234567890'],
      ['x', 'json', 'NaN'],
    ],
    [['role', 'text', 'assistant'], ['a', 'json', '[1.0, 0, -0.0]']],
    [['role', 'text', 'user'], ['content', 'text', 'h\u00e9llo \u{1f600} /']],
  ]);
});

test('encoding keeps every member where it stands and writes JSON values canonically', () => {
  const { host, policy } = setup();
  const message = (members) => ({
    members: members.map(([name, tag, val]) => ({ name, value: { tag, val } })),
  });
  policy.addMessages('s', [
    message([['role', 'text', 'tool'], ['tool_call_id', 'text', 'call_1'], ['content', 'text', '18 C']]),
    message([['content', 'text', 'first'], ['role', 'text', 'user']]),
    message([
      ['role', 'text', 'assistant'],
      ['content', 'json', 'null'],
      ['tool_calls', 'json', '[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]'],
    ]),
    message([['role', 'json', '"assistant"'], ['name', 'json', ' "x" '], ['n', 'json', '[1E5, 1e16, 1e-5, -0, 1e400]']]),
    message([['role', 'text', 'user'], ['content', 'text', 'h\u00e9llo "\\" \n\u0001\u007f \u{1f600}']]),
  ]);
  assert.deepEqual(host.lists.get('ai:memory:s').map(text), [
    '{"role": "tool", "tool_call_id": "call_1", "content": "18 C"}',
    '{"content": "first", "role": "user"}',
    '{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}',
    '{"role": "assistant", "name": "x", "n": [100000.0, 1e+16, 1e-05, 0, Infinity]}',
    '{"role": "user", "content": "h\\u00e9llo \\"\\\\\\" \\n\\u0001\\u007f \\ud83d\\ude00"}',
  ]);
});

test('an empty batch is refused, and nothing is written', () => {
  const { host, policy } = setup();
  assert.deepEqual(policy.addMessages('s', []), { tag: 'err', val: { tag: 'no-messages' } });
  assert.deepEqual(policy.addAndGetContext('s', []), { tag: 'err', val: { tag: 'no-messages' } });
  assert.deepEqual(host.calls, []);
});

test('each invalid message is refused with its index and reason, and nothing is written', () => {
  const m = (...members) => ({ members: members.map(([name, tag, val]) => ({ name, value: { tag, val } })) });
  const nest = (n) => '['.repeat(n) + ']'.repeat(n);
  const cases = [
    [m(['role', 'text', 'user'], ['content', 'text', 'a'], ['content', 'text', 'b']), { tag: 'duplicate-member', val: 'content' }],
    // A duplicate is named before anything else is checked.
    [m(['x', 'json', '{'], ['x', 'json', '{']), { tag: 'duplicate-member', val: 'x' }],
    [m(['content', 'text', 'a']), { tag: 'no-role' }],
    [m(['role', 'json', 'null'], ['content', 'text', 'a']), { tag: 'no-role' }],
    [m(['role', 'json', '["user"]']), { tag: 'no-role' }],
    [m(['role', 'json', '{broken']), { tag: 'no-role' }],
    [m(['content', 'json', '{broken']), { tag: 'no-role' }],
    [m(['role', 'text', 'user'], ['content', 'json', '{broken']), { tag: 'invalid-json', val: 'member `content` is not JSON: not JSON (at byte 1)' }],
    [m(['role', 'text', 'user'], ['content', 'json', '"\u00e9" x']), { tag: 'invalid-json', val: 'member `content` is not JSON: not JSON (at byte 5)' }],
    [m(['role', 'text', 'user'], ['content', 'json', '']), { tag: 'invalid-json', val: 'member `content` is not JSON: not JSON (at byte 0)' }],
    [m(['role', 'text', 'user'], ['content', 'json', '\ufeff1']), { tag: 'invalid-json', val: 'member `content` is not JSON: not JSON (at byte 0)' }],
    [m(['role', 'text', 'user'], ['content', 'json', '"\\ud800"']), { tag: 'invalid-json', val: 'member `content` is not JSON: a string holds a lone UTF-16 surrogate' }],
    [m(['role', 'text', 'user'], ['n', 'json', '9'.repeat(4301)]), { tag: 'invalid-json', val: 'member `n` is not JSON: an integer has more than 4300 digits' }],
    // invalid-json of any member comes before too-deep of any.
    [m(['role', 'text', 'user'], ['a', 'json', nest(500)], ['b', 'json', 'nul']), { tag: 'invalid-json', val: 'member `b` is not JSON: not JSON (at byte 0)' }],
    [m(['role', 'text', 'user'], ['a', 'json', nest(500)]), { tag: 'too-deep', val: 'a' }],
    [m(['role', 'text', 'user'], ['a', 'json', '['.repeat(100000)]), { tag: 'too-deep', val: 'a' }],
    [m(['role', 'text', 'user'], ['content', 'text', 'x'.repeat(100)]), { tag: 'too-large', val: { what: 'encoded message bytes', actual: 131n, limit: 100n } }],
    // An escaped character counts as its escape.
    [m(['role', 'text', 'user'], ['content', 'text', '\u00e9'.repeat(20)]), { tag: 'too-large', val: { what: 'encoded message bytes', actual: 151n, limit: 100n } }],
  ];
  for (const [bad, reason] of cases) {
    const { host, policy } = setup({ maxMessageBytes: 100 });
    const result = policy.addMessages('s', [user('ok'), bad]);
    assert.deepEqual(result, { tag: 'err', val: { tag: 'invalid-message', val: [1, reason] } }, reason.tag);
    assert.deepEqual(policy.addAndGetContext('s', [bad]), { tag: 'err', val: { tag: 'invalid-message', val: [0, reason] } });
    assert.deepEqual(host.calls, []);
  }
});

test('a value may nest 499 levels (the entry 500), and the size limit is exact in bytes', () => {
  const { host, policy } = setup();
  const nest = (n) => '['.repeat(n) + ']'.repeat(n);
  const deep = { members: [{ name: 'role', value: { tag: 'text', val: 'u' } }, { name: 'a', value: { tag: 'json', val: nest(499) } }] };
  assert.equal(policy.addMessage('s', deep).val.tag, 'stored');
  // {"role": "u", "content": "abcdef"} is 34 bytes.
  host.settings.maxMessageBytes = 34;
  assert.equal(policy.addMessage('s', textMessage('u', 'abcdef')).val.tag, 'stored');
  assert.deepEqual(policy.addMessage('s', textMessage('u', 'abcdefg')).val, {
    tag: 'invalid-message',
    val: [0, { tag: 'too-large', val: { what: 'encoded message bytes', actual: 35n, limit: 34n } }],
  });
});

test('counts beyond u32 saturate', () => {
  const host = new FakeHost({ maxMessages: 4294967295 });
  host.apply = () => ({ lengthAfterPush: 2n ** 40n, deleted: undefined, read: undefined });
  const policy = createWindowPolicy(host);
  assert.deepEqual(policy.addMessage('s', user('a')).val, stored(1, 4294967295, 4294967295));
});

test('describe declares no settings of its own', () => {
  const { policy } = setup();
  assert.deepEqual(policy.describeSettings(), []);
});

test('the component exports return ok values and throw errors with a payload', () => {
  const host = new FakeHost();
  const { memory, describe } = componentExports(createWindowPolicy(host));
  assert.deepEqual(memory.addMessage('s', user('a')), stored(1, 0, 1));
  assert.deepEqual(contents(memory.getContext('s')), ['a']);
  assert.deepEqual(memory.clear('s'), stored(0, 1, 0));
  assert.deepEqual(describe.settings(), []);
  assert.throws(() => memory.addMessages('s', []), (thrown) => {
    assert.deepEqual(thrown, { payload: { tag: 'no-messages' } });
    return true;
  });
  // A bug is not a store error: it propagates (the component traps).
  host.readRange = () => {
    throw new TypeError('bug');
  };
  assert.throws(() => memory.getContext('s'), TypeError);
});
