// Workarounds for two defects of the bindings ComponentizeJS (0.22.0, also 0.23.0) generates, used
// by the component entry points only (policy.js, ../hostile-js/hostile.js); the native tests call
// the policy directly and need neither.

/**
 * ComponentizeJS issue #343: a component traps (`unreachable`, "Internal bindgen error in
 * coreabi_from_bigint64 validation") when it passes a negative `s64` as a direct argument of an
 * imported function: the bindings lower it as a negative BigInt, which the engine's
 * `coreabi_from_bigint64` refuses. They run in a realm of their own, out of the policy's reach.
 * `store.read-range(key, {start: -N, stop: -1})` is such a call.
 *
 * An s64 inside a list-op is written to memory instead, which works, so a read of a range with a
 * negative bound goes as a transaction holding only that read: `store.apply(key, [read(range)])`.
 * Same entries, one round trip as before (MULTI/LRANGE/EXEC instead of LRANGE on Redis), the same
 * read caps (the host checks a transaction's read as it checks read-range), the same errors, and
 * the same retry rule, since it writes nothing.
 */
export function readRangeVia(readRange, apply) {
  return (key, range) => {
    if (range.start >= 0n && range.stop >= 0n) return readRange(key, range);
    const applied = apply(key, [{ tag: 'read', val: range }]);
    if (applied.read === undefined) return [];
    if (applied.read.tag === 'err') throw { payload: applied.read.val };
    return applied.read.val;
  };
}

/**
 * The bindings lift every string the host hands over (session ids, settings, member names and
 * text) with `new TextDecoder()`, whose default strips a leading U+FEFF as if it were a byte-order
 * mark: "\ufeffhi" arrives as "hi". They take `TextDecoder` from the policy's global, so the
 * prototype they call is the policy's: a decoder made that way (UTF-8, not fatal, BOM not
 * ignored) decodes with `ignoreBOM` instead. Nothing else in the policy makes such a decoder.
 * Left alone if the engine's TextDecoder cannot keep a BOM.
 */
export function keepLeadingBom() {
  const Decoder = globalThis.TextDecoder;
  if (typeof Decoder !== 'function') return false;
  const proto = Decoder.prototype;
  if (proto.decode.keepsLeadingBom) return true;
  const nativeDecode = proto.decode;
  let keeper;
  try {
    keeper = new Decoder('utf-8', { ignoreBOM: true });
    if (nativeDecode.call(keeper, new Uint8Array([0xef, 0xbb, 0xbf, 0x61])) !== '\ufeffa') return false;
  } catch {
    return false;
  }
  const decode = function decode(input, options) {
    if (this.ignoreBOM === false && this.fatal === false && this.encoding === 'utf-8' && !(options && options.stream)) {
      return nativeDecode.call(keeper, input);
    }
    return nativeDecode.call(this, input, options);
  };
  decode.keepsLeadingBom = true;
  proto.decode = decode;
  return true;
}

let codepointCountSkipped = false;

/**
 * The bindings lower every string the policy returns with `_utf8AllocateAndEncode`, which also
 * computes `codepoints: [...s].length`, a value nothing reads: spreading the string into an array
 * of one-character strings costs some 10,000 wasm instructions (host fuel) per character in the
 * interpreter, so a policy could return only about 10 KB of text within the host's default
 * compute budget. The spread runs in the bindings' own realm, whose `String.prototype` the policy
 * reaches through any object the bindings made (`bindingsObject`, such as the settings record):
 * there, iterating a string yields nothing, so the spread is free and the unused count is 0. The
 * bindings iterate strings nowhere else (ComponentizeJS 0.22.0, checked by the component tests,
 * which compare every string the component returns). Once per instance; a no-op if the bindings
 * share the policy's realm or cannot be reached.
 */
export function skipUnusedCodepointCount(bindingsObject) {
  if (codepointCountSkipped) return;
  codepointCountSkipped = true;
  try {
    const BindingsObject = Object.getPrototypeOf(bindingsObject).constructor;
    if (BindingsObject === Object) return;
    const BindingsFunction = BindingsObject.constructor;
    const stringProto = BindingsFunction('return String.prototype')();
    const empty = BindingsFunction('return function () { return [][Symbol.iterator](); }')();
    Object.defineProperty(stringProto, Symbol.iterator, { value: empty, writable: true, configurable: true });
  } catch {
    // Left as it is: slower, never wrong.
  }
}
