// The default window policy, written against a host object so that it runs natively in tests
// (with a fake store) and in the component (with the WIT imports, see policy.js).
//
// host: {
//   getSettings(): settings                         config.get-settings
//   readRange(key, range): Uint8Array[]             store.read-range; throws { payload: store-error }
//   apply(key, ops): applied                        store.apply; throws { payload: store-error }
//   log(level, message)                             log.log
// }
// These are the ComponentizeJS conventions: an imported function's `err` is thrown as an error
// whose `payload` is the error value; s64/u64 are BigInt; an absent option is `undefined`.
//
// Every operation returns { tag: 'ok', val } or { tag: 'err', val: memory-error }; store faults are
// values (a degraded context, a failed write), never thrown.

import { decodeEntry, encodeMessage } from './codec.js';

const U32_MAX = 0xffffffff;

/** `n` (number or BigInt, >= 0) as a u32, saturating. */
function u32(n) {
  const big = BigInt(n);
  return big > BigInt(U32_MAX) ? U32_MAX : Number(big);
}

function addU32(a, b) {
  return Math.min(U32_MAX, a + b);
}

/** The store error a call threw, or rethrow what is not one (a bug: let it trap). */
function storeError(thrown) {
  if (thrown !== null && typeof thrown === 'object' && Object.prototype.hasOwnProperty.call(thrown, 'payload')) {
    return thrown.payload;
  }
  throw thrown;
}

/** A store error for a log line, without message contents. */
export function describeStoreError(error) {
  if (error === null || typeof error !== 'object') return String(error);
  const val = error.val;
  if (val === undefined) return error.tag;
  if (typeof val === 'object' && val !== null) {
    const fields = Object.keys(val).map((name) => `${name}: ${String(val[name])}`);
    return `${error.tag}({${fields.join(', ')}})`;
  }
  return `${error.tag}(${String(val)})`;
}

/** The key of a session: the prefix and the id, as the Python original interpolates them. */
export function sessionKey(settings, sessionId) {
  return settings.keyPrefix + sessionId;
}

/** The newest `max-messages` entries, or null when the window keeps none. */
export function readRange(settings) {
  if (settings.maxMessages === 0) return null;
  return { start: -BigInt(settings.maxMessages), stop: -1n };
}

/** The transaction that appends `encoded` (oldest first), and what it means for the report. */
export function planAppend(encoded, settings) {
  const limit = settings.maxMessages;
  if (limit === 0) return { ops: [{ tag: 'delete' }], pushed: 0, dropped: encoded.length };
  const keepFrom = Math.max(0, encoded.length - limit);
  const pushed = encoded.slice(keepFrom);
  return {
    ops: [
      { tag: 'push', val: pushed },
      { tag: 'trim', val: { start: -BigInt(limit), stop: -1n } },
      { tag: 'expire', val: settings.ttlSeconds },
    ],
    pushed: pushed.length,
    dropped: keepFrom,
  };
}

/** The report of an applied append. */
export function report(plan, applied, settings) {
  const limit = BigInt(settings.maxMessages);
  const lengthAfterPush = applied.lengthAfterPush === undefined ? 0n : BigInt(applied.lengthAfterPush);
  const length = lengthAfterPush < limit ? lengthAfterPush : limit;
  const deleted = applied.deleted === undefined ? 0n : BigInt(applied.deleted);
  return {
    appended: u32(plan.pushed),
    trimmed: addU32(u32(lengthAfterPush - length + deleted), u32(plan.dropped)),
    length: u32(length),
    // The window trims blind (LTRIM), as the original does: it does not know which entries went.
    evicted: [],
  };
}

const ok = (val) => ({ tag: 'ok', val });
const err = (val) => ({ tag: 'err', val });
const emptyContext = () => ({ messages: [], skipped: [], degraded: undefined });

/** The memory operations of the default window policy over `host`. */
export function createWindowPolicy(host) {
  function degraded(error) {
    host.log('warn', `read failed, history degraded to empty: ${describeStoreError(error)}`);
    return { messages: [], skipped: [], degraded: error };
  }

  /** The history the stored `entries` hold, entries that are not messages skipped. */
  function contextOf(entries) {
    const messages = [];
    const skipped = [];
    entries.forEach((entry, position) => {
      const decoded = decodeEntry(entry);
      if (decoded.ok !== undefined) {
        messages.push(decoded.ok);
      } else {
        host.log('warn', `skipped stored entry ${position} (${entry.length} bytes): ${decoded.err}`);
        skipped.push({ position: u32(position), problem: decoded.err });
      }
    });
    return { messages, skipped, degraded: undefined };
  }

  /** Every message encoded, or the first refusal as a memory-error. */
  function encodeAll(messages, settings) {
    if (messages.length === 0) return { err: { tag: 'no-messages' } };
    const encoded = [];
    for (let index = 0; index < messages.length; index += 1) {
      const result = encodeMessage(messages[index], settings.maxMessageBytes);
      if (result.err !== undefined) return { err: { tag: 'invalid-message', val: [index, result.err] } };
      encoded.push(result.ok);
    }
    return { ok: encoded };
  }

  /** One store.apply; writes are never retried (a repeat could apply them twice). */
  function write(key, ops) {
    try {
      return { ok: host.apply(key, ops) };
    } catch (thrown) {
      const error = storeError(thrown);
      host.log('warn', `write failed: ${describeStoreError(error)}`);
      return { err: error };
    }
  }

  function getContext(sessionId) {
    const settings = host.getSettings();
    const range = readRange(settings);
    if (range === null) return ok(emptyContext());
    const key = sessionKey(settings, sessionId);
    for (let attempt = 1; ; attempt += 1) {
      try {
        return ok(contextOf(host.readRange(key, range)));
      } catch (thrown) {
        const error = storeError(thrown);
        // A read is repeated once after an unknown outcome (a broken connection: the repeat
        // runs on a new one); every other error would only meet the same failure again.
        if (error.tag === 'outcome-unknown' && attempt < 2) {
          host.log('warn', `read failed, retrying once: ${describeStoreError(error)}`);
          continue;
        }
        return ok(degraded(error));
      }
    }
  }

  function addMessages(sessionId, messages) {
    const settings = host.getSettings();
    const encoded = encodeAll(messages, settings);
    if (encoded.err !== undefined) return err(encoded.err);
    const plan = planAppend(encoded.ok, settings);
    const result = write(sessionKey(settings, sessionId), plan.ops);
    if (result.err !== undefined) return ok({ tag: 'failed', val: result.err });
    return ok({ tag: 'stored', val: report(plan, result.ok, settings) });
  }

  function addAndGetContext(sessionId, messages) {
    const settings = host.getSettings();
    const encoded = encodeAll(messages, settings);
    if (encoded.err !== undefined) return err(encoded.err);
    const plan = planAppend(encoded.ok, settings);
    const range = readRange(settings);
    if (range !== null) plan.ops.push({ tag: 'read', val: range });
    const result = write(sessionKey(settings, sessionId), plan.ops);
    if (result.err !== undefined) {
      return ok({ outcome: { tag: 'failed', val: result.err }, context: degraded(result.err) });
    }
    const applied = result.ok;
    let context;
    if (applied.read === undefined) context = emptyContext();
    else if (applied.read.tag === 'ok') context = contextOf(applied.read.val);
    else context = degraded(applied.read.val);
    return ok({ outcome: { tag: 'stored', val: report(plan, applied, settings) }, context });
  }

  function clear(sessionId) {
    const settings = host.getSettings();
    const result = write(sessionKey(settings, sessionId), [{ tag: 'delete' }]);
    if (result.err !== undefined) return ok({ tag: 'failed', val: result.err });
    const deleted = result.ok.deleted === undefined ? 0 : u32(result.ok.deleted);
    return ok({ tag: 'stored', val: { appended: 0, trimmed: deleted, length: 0, evicted: [] } });
  }

  return {
    getContext,
    addMessage: (sessionId, message) => addMessages(sessionId, [message]),
    addMessages,
    addAndGetContext,
    clear,
    describeSettings: () => [],
  };
}

/**
 * The `memory` and `describe` exports of a component over `policy` (ComponentizeJS conventions:
 * a function returning result<T, E> returns T, and throws an object whose `payload` is E).
 */
export function componentExports(policy, log = () => {}) {
  // An unexpected exception traps, which the host reports as `policy-failed`; a log line at
  // error level starting with `panicked` is what it quotes as the reason (without it, the
  // reason is lost).
  const reported = (call) => {
    let result;
    try {
      result = call();
    } catch (error) {
      // SpiderMonkey's `stack` holds the frames only; the message is in the error's string.
      const where = String(error?.stack ?? '').split('\n')[0];
      log('error', `panicked${where ? ` at ${where}` : ''}: ${error}`);
      throw error;
    }
    if (result.tag === 'err') throw { payload: result.val };
    return result.val;
  };
  return {
    memory: {
      getContext: (sessionId) => reported(() => policy.getContext(sessionId)),
      addMessage: (sessionId, message) => reported(() => policy.addMessage(sessionId, message)),
      addMessages: (sessionId, messages) => reported(() => policy.addMessages(sessionId, messages)),
      addAndGetContext: (sessionId, messages) =>
        reported(() => policy.addAndGetContext(sessionId, messages)),
      clear: (sessionId) => reported(() => policy.clear(sessionId)),
    },
    describe: {
      settings: () => reported(() => ({ tag: 'ok', val: policy.describeSettings() })),
    },
  };
}
