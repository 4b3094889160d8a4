"""A deliberately misbehaving policy, for the host's containment tests. Never deploy it.

Its behaviour is chosen by the prefix of the session id of any `memory` call:

| prefix            | behaviour                                                            |
|-------------------|----------------------------------------------------------------------|
| `loop`            | loops forever (the host's compute budget or timeout must stop it)    |
| `alloc`           | allocates 64 MiB at a time until memory runs out (`MemoryError`,     |
|                   | uncaught, so a trap), or the host's memory limit traps first         |
| `raise`           | raises an exception out of the export (a trap)                       |
| `bad-output-json` | returns a message whose `content` is a `json` value that is not JSON |
| `bad-output`      | returns a message without a `role`                                   |
| anything else     | the window policy, unchanged                                         |

A bad message is returned where each call returns messages: `get-context` and
`add-and-get-context` in the context, and the write calls in `stored.evicted` (nothing is
written). `describe` behaves.
"""

from window import Window

#: How much `alloc` takes at a time.
ALLOC_STEP = 64 << 20


class Hostile(Window):
    """The window policy, unless the session id asks for misbehaviour."""

    def misbehave(self, session_id):
        """Loop, allocate or raise as `session_id` asks; else the bad message it asks for."""
        wit = self.wit
        if session_id.startswith("loop"):
            while True:
                pass
        if session_id.startswith("alloc"):
            hoard = []
            while True:
                hoard.append(bytearray(ALLOC_STEP))
        if session_id.startswith("raise"):
            raise RuntimeError("hostile policy: raising out of the export, as asked")
        if session_id.startswith("bad-output-json"):
            return wit.Message([wit.Member("role", wit.MemberValue_Text("assistant")),
                                wit.Member("content", wit.MemberValue_Json("{not json"))])
        if session_id.startswith("bad-output"):
            return wit.Message([wit.Member("content", wit.MemberValue_Text("who said this?"))])
        return None

    def _bad_context(self, bad):
        return self.wit.Context(messages=[bad], skipped=[], degraded=None)

    def _bad_write(self, bad):
        return self.wit.WriteOutcome_Stored(self.wit.Stored(
            appended=1, trimmed=0, length=1, evicted=[bad]))

    def get_context(self, session_id):
        bad = self.misbehave(session_id)
        return self._bad_context(bad) if bad else super().get_context(session_id)

    def add_messages(self, session_id, messages):
        bad = self.misbehave(session_id)
        return self._bad_write(bad) if bad else super().add_messages(session_id, messages)

    def add_and_get_context(self, session_id, messages):
        bad = self.misbehave(session_id)
        if bad:
            return self.wit.Turn(outcome=self._bad_write(bad), context=self._bad_context(bad))
        return super().add_and_get_context(session_id, messages)

    def clear(self, session_id):
        bad = self.misbehave(session_id)
        return self._bad_write(bad) if bad else super().clear(session_id)
