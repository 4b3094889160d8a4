"""The default window policy, in Python: the newest `max-messages` messages of a session.

The logic is written against a small host interface so that it runs natively under CPython
with a fake store (see `fake_host.py`) as well as inside the component (see `wit_adapter.py`):

- ``host.settings()`` -> Settings (`config.get-settings`)
- ``host.read_range(key, range)`` -> list of bytes, raises ``wit.Err(store_error)``
- ``host.apply(key, ops)`` -> Applied, raises ``wit.Err(store_error)``
- ``host.log(level, text)``

and a namespace ``wit`` holding the WIT types under the names componentize-py gives them
(``Context``, ``MemberValue_Text``, ``ListOp_Push``, ``Level``, ``Ok``, ``Err``, ...). This
module imports no generated bindings.

Entries are exactly what the Python original writes and reads: ``json.dumps`` of a dict with
default arguments, and ``json.loads``. Using Python's own ``json`` is what makes the format
exact (separators, ``ensure_ascii``, float repr, ``NaN``, big integers, a repeated key keeping
its first position and last value); `guarded_json` only keeps deep nesting away from its
recursive C code, which cannot fail gracefully inside WebAssembly.
"""

import guarded_json
from guarded_json import LoneSurrogate, TooDeep

#: Deepest nesting read from the store (the entry's object is level 1).
READ_DEPTH = 1000
#: Deepest nesting written: half of what Python readers take, as the Rust guest does.
WRITE_DEPTH = 500


class Refused(Exception):
    """A message cannot be stored; `reason` is the WIT `invalid-message`."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Window:
    """The default window policy: keep the newest `max-messages`, renew the TTL on each write.

    One object serves every call of an instance; it keeps nothing between calls (settings are
    read anew on every call, since a swap may change them).
    """

    ROLE = "role"

    def __init__(self, host, wit):
        self.host = host
        self.wit = wit

    # --- Hooks for policies built on this one -------------------------------------------------

    def setting_specs(self):
        """`describe.settings`: the window reads no extra settings."""
        return []

    def prepare(self, values, settings):
        """The dict about to be stored, after validation; a subclass may rewrite it."""
        return values

    # --- memory exports -----------------------------------------------------------------------

    def get_context(self, session_id):
        """The newest messages of the window; a store fault degrades to an empty history."""
        wit = self.wit
        settings = self.host.settings()
        if settings.max_messages == 0:
            return wit.Context(messages=[], skipped=[], degraded=None)
        key = settings.key_prefix + session_id
        window = self._window(settings)
        for attempt in (1, 2):
            try:
                entries = self.host.read_range(key, window)
                break
            except wit.Err as failure:
                error = failure.value
                # A dropped connection: a read is safe to repeat (on a new connection). Any
                # other fault would only fail the same way again, or the host backs off.
                if attempt == 1 and isinstance(error, wit.StoreError_OutcomeUnknown):
                    self.host.log(wit.Level.WARN, f"read failed, retrying once: {error!r}")
                    continue
                return self._degraded(error)
        return self._context(entries)

    def add_message(self, session_id, message):
        """A batch of one."""
        return self.add_messages(session_id, [message])

    def add_messages(self, session_id, messages):
        """Validate and encode every message, then push, trim and expire in one transaction."""
        settings = self.host.settings()
        ops, pushed, dropped = self._plan(self._encode_all(messages, settings), settings)
        key = settings.key_prefix + session_id
        try:
            applied = self._write(key, ops)
        except self.wit.Err as failure:
            return self.wit.WriteOutcome_Failed(failure.value)
        return self.wit.WriteOutcome_Stored(self._report(applied, pushed, dropped, settings))

    def add_and_get_context(self, session_id, messages):
        """`add_messages` plus the read of the window, in the same transaction."""
        wit = self.wit
        settings = self.host.settings()
        ops, pushed, dropped = self._plan(self._encode_all(messages, settings), settings)
        if settings.max_messages > 0:
            ops.append(wit.ListOp_Read(self._window(settings)))
        key = settings.key_prefix + session_id
        try:
            applied = self._write(key, ops)
        except wit.Err as failure:
            return wit.Turn(outcome=wit.WriteOutcome_Failed(failure.value),
                            context=self._degraded(failure.value))
        if applied.read is None:
            # A window of 0 reads nothing and keeps nothing.
            context = wit.Context(messages=[], skipped=[], degraded=None)
        elif isinstance(applied.read, wit.Err):
            context = self._degraded(applied.read.value)
        else:
            context = self._context(applied.read.value)
        stored = self._report(applied, pushed, dropped, settings)
        return wit.Turn(outcome=wit.WriteOutcome_Stored(stored), context=context)

    def clear(self, session_id):
        """Delete the session's list; `trimmed` counts what it held."""
        wit = self.wit
        settings = self.host.settings()
        try:
            applied = self._write(settings.key_prefix + session_id, [wit.ListOp_Delete()])
        except wit.Err as failure:
            return wit.WriteOutcome_Failed(failure.value)
        return wit.WriteOutcome_Stored(
            wit.Stored(appended=0, trimmed=applied.deleted or 0, length=0, evicted=[]))

    # --- The window rule ----------------------------------------------------------------------

    def _window(self, settings):
        """The newest `max-messages` entries: the tail, bounded even if the list grew longer."""
        return self.wit.Range(start=-settings.max_messages, stop=-1)

    def _plan(self, encoded, settings):
        """(ops, pushed, dropped): the transaction for one append, and what it will mean.

        A window of 0 deletes (``LTRIM key -0 -1`` would keep everything); a batch larger than
        the window pushes only its newest entries, the rest are reported as trimmed.
        """
        wit = self.wit
        limit = settings.max_messages
        if limit == 0:
            return [wit.ListOp_Delete()], 0, len(encoded)
        kept = encoded[-limit:]
        ops = [wit.ListOp_Push(kept), wit.ListOp_Trim(self._window(settings)),
               wit.ListOp_Expire(settings.ttl_seconds)]
        return ops, len(kept), len(encoded) - len(kept)

    def _report(self, applied, pushed, dropped, settings):
        """What an applied append did: appended, trimmed (stored and of the batch), length."""
        after_push = applied.length_after_push or 0
        length = min(after_push, settings.max_messages)
        trimmed = (after_push - length) + (applied.deleted or 0) + dropped
        return self.wit.Stored(appended=pushed, trimmed=min(trimmed, 2**32 - 1),
                               length=length, evicted=[])

    def _write(self, key, ops):
        """`store.apply`, never retried: a write whose outcome is unknown may have applied."""
        try:
            return self.host.apply(key, ops)
        except self.wit.Err as failure:
            self.host.log(self.wit.Level.WARN, f"write failed: {failure.value!r}")
            raise

    def _degraded(self, error):
        """An empty history, degraded by `error` (logged)."""
        self.host.log(self.wit.Level.WARN, f"read failed, history degraded to empty: {error!r}")
        return self.wit.Context(messages=[], skipped=[], degraded=error)

    # --- Entries <-> messages -----------------------------------------------------------------

    def _context(self, entries):
        """Every entry decoded, oldest first; those that are not messages skipped and counted."""
        wit = self.wit
        messages, skipped = [], []
        for position, entry in enumerate(entries):
            decoded = self.decode(entry)
            if isinstance(decoded, wit.EntryProblem):
                self.host.log(wit.Level.WARN, f"skipped stored entry {position} "
                              f"({len(entry)} bytes): {decoded.name.lower().replace('_', '-')}")
                skipped.append(wit.SkippedEntry(position=position, problem=decoded))
            else:
                messages.append(decoded)
        return wit.Context(messages=messages, skipped=skipped, degraded=None)

    def decode(self, entry):
        """One stored entry as `json.loads(entry)` reads it: a Message, or an EntryProblem.

        Decoding first, as `json.loads(bytes)` does it (its encoding detection, `surrogatepass`),
        so that nesting can be measured on the text before the scanner sees it.
        """
        wit = self.wit
        try:
            value, depth = guarded_json.loads(guarded_json.text_of(bytes(entry)), READ_DEPTH)
        except TooDeep:
            return wit.EntryProblem.TOO_DEEP
        except LoneSurrogate:
            return wit.EntryProblem.LONE_SURROGATE
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, an int over 4300 digits
            return wit.EntryProblem.NOT_JSON
        if not isinstance(value, dict):
            return wit.EntryProblem.NOT_AN_OBJECT
        if not isinstance(value.get(self.ROLE), str):
            return wit.EntryProblem.NO_ROLE
        return wit.Message(members=[wit.Member(name=name, value=self._member_value(item, depth))
                                    for name, item in value.items()])

    def _member_value(self, item, depth):
        """A str is text; anything else is its canonical JSON text (`json.dumps`)."""
        if isinstance(item, str):
            return self.wit.MemberValue_Text(item)
        return self.wit.MemberValue_Json(guarded_json.dumps(item, depth))

    def _encode_all(self, messages, settings):
        """Every message encoded, or `Err(no-messages / invalid-message)` raised: all or none."""
        wit = self.wit
        if not messages:
            raise wit.Err(wit.MemoryError_NoMessages())
        encoded = []
        for index, message in enumerate(messages):
            try:
                encoded.append(self.encode(message, settings))
            except Refused as refused:
                raise wit.Err(wit.MemoryError_InvalidMessage((index, refused.reason))) from None
        return encoded

    def encode(self, message, settings):
        """The entry the Python original stores for `message`: `json.dumps` of its dict.

        Refusals, in this order: a repeated name, no text `role`, a json value `json.loads`
        refuses, a json value nesting past the write depth, the size limit.
        """
        wit = self.wit
        members = message.members
        seen = set()
        for member in members:
            if member.name in seen:
                raise Refused(wit.InvalidMessage_DuplicateMember(member.name))
            seen.add(member.name)
        if not any(m.name == self.ROLE and self._is_text(m.value) for m in members):
            raise Refused(wit.InvalidMessage_NoRole())
        values, too_deep, depth = {}, None, 1
        for member in members:
            if isinstance(member.value, wit.MemberValue_Text):
                values[member.name] = member.value.value
                continue
            try:
                # The message object is level 1, so a member's value may nest one less.
                values[member.name], nested = guarded_json.loads(member.value.value,
                                                                 WRITE_DEPTH - 1)
                depth = max(depth, 1 + nested)
            except TooDeep:
                too_deep = too_deep or member.name
            except ValueError as error:
                raise Refused(wit.InvalidMessage_InvalidJson(
                    f"member `{member.name}` is not JSON: {error}")) from None
        if too_deep is not None:
            raise Refused(wit.InvalidMessage_TooDeep(too_deep))
        data = guarded_json.dumps(self.prepare(values, settings), depth).encode()
        if len(data) > settings.max_message_bytes:
            raise Refused(wit.InvalidMessage_TooLarge(wit.SizeLimit(
                what="encoded message bytes", actual=len(data),
                limit=settings.max_message_bytes)))
        return data

    def _is_text(self, value):
        """Text, or a json value holding a JSON string (which readers take as that text)."""
        if isinstance(value, self.wit.MemberValue_Text):
            return True
        try:
            return isinstance(guarded_json.loads(value.value, WRITE_DEPTH - 1)[0], str)
        except (TooDeep, ValueError):
            return False
