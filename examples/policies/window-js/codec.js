// Stored entries <-> messages, as the Python original stores them: an entry is `json.dumps` of a
// dict whose members are the message's, in the message's order.
//
// A message is { members: [{ name, value: { tag: 'text' | 'json', val } }] } (the WIT record as
// ComponentizeJS hands it over); an entry is a Uint8Array.

import {
  JsonError,
  PyDict,
  describeError,
  dumps,
  escapeString,
  loadsBytes,
  loadsText,
  MAX_READ_DEPTH,
} from './pyjson.js';

/**
 * Deepest nesting an entry may have when we write it, the message object being level 1: Python
 * reads about 993 levels from a shallow stack but fewer from deep inside a service, so writes
 * stay at half of that.
 */
export const MAX_WRITE_DEPTH = 500;

const ROLE = 'role';

const encoder = typeof TextEncoder === 'function' ? new TextEncoder() : null;

/** An ASCII string's bytes. */
function asciiBytes(text) {
  if (encoder !== null) return encoder.encode(text);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/**
 * Encode one message as `json.dumps` would write the dict of its members, or say why not.
 * Returns { ok: Uint8Array } or { err: invalid-message } (the WIT variant). Refusals, checked in
 * this order: duplicate-member, no-role, invalid-json, too-deep, too-large.
 */
export function encodeMessage(message, maxBytes) {
  const members = message.members;
  const seen = new Set();
  for (const member of members) {
    if (seen.has(member.name)) return { err: { tag: 'duplicate-member', val: member.name } };
    seen.add(member.name);
  }
  // Every JSON value read once, as Python's json.loads reads it (up to its own nesting limit,
  // so that a value too deep for the write rule is told apart from one that is not JSON).
  const parsed = members.map((member) => {
    if (member.value.tag === 'text') return null;
    const text = member.value.val;
    try {
      return loadsText(text, MAX_READ_DEPTH);
    } catch (error) {
      if (!(error instanceof JsonError)) throw error;
      return { error, text };
    }
  });
  const roleAt = members.findIndex((member) => member.name === ROLE);
  if (roleAt < 0) return { err: { tag: 'no-role' } };
  if (members[roleAt].value.tag !== 'text') {
    // A JSON string is the same as text of its text.
    const role = parsed[roleAt];
    if (role.error !== undefined || typeof role.value !== 'string') return { err: { tag: 'no-role' } };
  }
  for (let i = 0; i < members.length; i += 1) {
    const result = parsed[i];
    if (result !== null && result.error !== undefined && result.error.kind !== 'too-deep') {
      const why = describeError(result.error, result.text);
      return { err: { tag: 'invalid-json', val: `member \`${members[i].name}\` is not JSON: ${why}` } };
    }
  }
  for (let i = 0; i < members.length; i += 1) {
    const result = parsed[i];
    if (result !== null && (result.error !== undefined || result.depth > MAX_WRITE_DEPTH - 1)) {
      return { err: { tag: 'too-deep', val: members[i].name } };
    }
  }
  const parts = new Array(members.length);
  for (let i = 0; i < members.length; i += 1) {
    const member = members[i];
    const value = member.value.tag === 'text' ? escapeString(member.value.val) : dumps(parsed[i].value);
    parts[i] = escapeString(member.name) + ': ' + value;
  }
  const text = '{' + parts.join(', ') + '}';
  // ensure_ascii: the text is ASCII, one byte a character.
  if (text.length > maxBytes) {
    return {
      err: {
        tag: 'too-large',
        val: { what: 'encoded message bytes', actual: BigInt(text.length), limit: BigInt(maxBytes) },
      },
    };
  }
  return { ok: asciiBytes(text) };
}

/**
 * Decode one stored entry: { ok: message } or { err: entry-problem } (the WIT enum's string).
 * Every member in its order; a str value is text, any other value its `json.dumps` text.
 */
export function decodeEntry(bytes) {
  let value;
  try {
    value = loadsBytes(bytes, MAX_READ_DEPTH);
  } catch (error) {
    if (!(error instanceof JsonError)) throw error;
    switch (error.kind) {
      case 'too-deep':
        return { err: 'too-deep' };
      case 'lone-surrogate':
        return { err: 'lone-surrogate' };
      default:
        return { err: 'not-json' };
    }
  }
  if (!(value instanceof PyDict)) return { err: 'not-an-object' };
  const roleAt = value.keys.indexOf(ROLE);
  if (roleAt < 0 || typeof value.values[roleAt] !== 'string') return { err: 'no-role' };
  const members = new Array(value.keys.length);
  for (let i = 0; i < value.keys.length; i += 1) {
    const v = value.values[i];
    members[i] = {
      name: value.keys[i],
      value: typeof v === 'string' ? { tag: 'text', val: v } : { tag: 'json', val: dumps(v) },
    };
  }
  return { ok: { members } };
}

/** A message of `role` with text `content`, in the original's order. */
export function textMessage(role, content) {
  return {
    members: [
      { name: 'role', value: { tag: 'text', val: role } },
      { name: 'content', value: { tag: 'text', val: content } },
    ],
  };
}
