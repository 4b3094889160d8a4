// An in-memory store behind the policy's host interface, with Redis list semantics and the
// ComponentizeJS conventions (errors thrown with a `payload`, s64/u64 as BigInt).

/** Redis's index normalisation for LRANGE / LTRIM: [from, to) of a list of `length`. */
function span(length, range) {
  let start = Number(range.start);
  let stop = Number(range.stop);
  if (start < 0) start += length;
  if (stop < 0) stop += length;
  if (start < 0) start = 0;
  if (stop >= length) stop = length - 1;
  if (start > stop || start >= length) return [0, 0];
  return [start, stop + 1];
}

const sameBytes = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);

export class FakeHost {
  constructor(settings = {}) {
    this.settings = {
      maxMessages: 50,
      ttlSeconds: 3600,
      keyPrefix: 'ai:memory:',
      maxMessageBytes: 1 << 20,
      extra: [],
      ...settings,
    };
    /** key -> entries (Uint8Array[]) */
    this.lists = new Map();
    /** key -> seconds of the last EXPIRE */
    this.ttls = new Map();
    /** store errors the next store calls throw, one each */
    this.failures = [];
    /** 'read-range KEY' / 'apply KEY' per store call */
    this.calls = [];
    /** the ops of each apply */
    this.applied = [];
    /** [level, message] */
    this.logs = [];
    /** an error the next apply's read reports (applied.read = err), once */
    this.readFailure = undefined;
  }

  getSettings() {
    return { ...this.settings, extra: [...this.settings.extra] };
  }

  log(level, message) {
    this.logs.push([level, message]);
  }

  fail() {
    if (this.failures.length > 0) throw { payload: this.failures.shift() };
  }

  readRange(key, range) {
    this.calls.push(`read-range ${key}`);
    if (typeof range.start !== 'bigint' || typeof range.stop !== 'bigint') throw new TypeError('s64 must be BigInt');
    this.fail();
    const list = this.lists.get(key) ?? [];
    const [from, to] = span(list.length, range);
    return list.slice(from, to).map((entry) => entry.slice());
  }

  apply(key, ops) {
    this.calls.push(`apply ${key}`);
    this.applied.push(ops);
    this.fail();
    let list = [...(this.lists.get(key) ?? [])];
    let ttl = this.ttls.get(key);
    const applied = { lengthAfterPush: undefined, deleted: undefined, read: undefined };
    ops.forEach((op, index) => {
      switch (op.tag) {
        case 'expect':
          if (index !== 0) throw { payload: { tag: 'denied', val: 'expect must come first' } };
          if (op.val.length !== list.length || !op.val.every((entry, i) => sameBytes(entry, list[i]))) {
            throw { payload: { tag: 'conflict' } };
          }
          break;
        case 'push':
          if (op.val.length === 0) throw { payload: { tag: 'denied', val: 'push of no values' } };
          for (const value of op.val) {
            if (!(value instanceof Uint8Array)) throw new TypeError('list<u8> must be a Uint8Array');
            if (value.length > this.settings.maxMessageBytes) {
              throw { payload: { tag: 'too-large', val: { what: 'value bytes', actual: BigInt(value.length), limit: BigInt(this.settings.maxMessageBytes) } } };
            }
          }
          list.push(...op.val);
          applied.lengthAfterPush = BigInt(list.length);
          break;
        case 'push-front':
          list.unshift(...op.val);
          applied.lengthAfterPush = BigInt(list.length);
          break;
        case 'trim': {
          if (typeof op.val.start !== 'bigint') throw new TypeError('s64 must be BigInt');
          const [from, to] = span(list.length, op.val);
          list = list.slice(from, to);
          break;
        }
        case 'expire':
          if (op.val === 0) throw { payload: { tag: 'denied', val: 'expire of 0 seconds' } };
          ttl = op.val;
          break;
        case 'delete':
          applied.deleted = BigInt(list.length);
          list = [];
          ttl = undefined;
          break;
        case 'read': {
          if (this.readFailure !== undefined) {
            applied.read = { tag: 'err', val: this.readFailure };
            this.readFailure = undefined;
          } else {
            const [from, to] = span(list.length, op.val);
            applied.read = { tag: 'ok', val: list.slice(from, to).map((entry) => entry.slice()) };
          }
          break;
        }
        default:
          throw new TypeError(`unknown op ${op.tag}`);
      }
    });
    if (list.length === 0) {
      this.lists.delete(key);
      this.ttls.delete(key);
    } else {
      this.lists.set(key, list);
      if (ttl !== undefined) this.ttls.set(key, ttl);
    }
    return applied;
  }
}

export const bytes = (text) => new TextEncoder().encode(text);
export const text = (entry) => new TextDecoder().decode(entry);
