"""A native stand-in for the component's imports, for tests: WIT types and a list store.

``WIT`` mirrors the names and fields componentize-py generates for `agent-memory:policy`
(only what the policies use). ``FakeHost`` keeps lists in a dict with Redis semantics (LRANGE,
RPUSH, LPUSH, LTRIM, EXPIRE, DEL, MULTI/EXEC all-or-nothing) and fails calls on demand.
"""

import enum
from dataclasses import dataclass, make_dataclass
from types import SimpleNamespace

_RECORDS = {
    "Range": "start stop", "Applied": "length_after_push deleted read",
    "Settings": "max_messages ttl_seconds key_prefix max_message_bytes extra",
    "Member": "name value", "Message": "members", "SizeLimit": "what actual limit",
    "Replication": "wanted acknowledged", "SkippedEntry": "position problem",
    "Context": "messages skipped degraded", "Stored": "appended trimmed length evicted",
    "Turn": "outcome context", "SettingSpec": "name accepts description",
    "IntegerRange": "min max", "WindowOverflow": "limit needed allowed",
}
_VARIANTS = {
    "StoreError": {"Unavailable": 1, "Timeout": 0, "OutcomeUnknown": 1, "OutOfMemory": 0,
                   "DiskFull": 1, "Damaged": 1, "WrongType": 0, "TooLarge": 1, "Denied": 1,
                   "Rejected": 1, "NotReplicated": 1, "Conflict": 0},
    "MemberValue": {"Text": 1, "Json": 1},
    "WriteOutcome": {"Stored": 1, "Failed": 1},
    "InvalidMessage": {"TooLarge": 1, "DuplicateMember": 1, "NoRole": 0, "InvalidJson": 1,
                       "TooDeep": 1},
    "MemoryError": {"NoMessages": 0, "InvalidMessage": 1, "InvalidSessionId": 1,
                    "RequestTooLarge": 1, "DoesNotFit": 1, "PolicyFailed": 1},
    "ListOp": {"Expect": 1, "Push": 1, "PushFront": 1, "Trim": 1, "Expire": 1, "Delete": 0,
               "Read": 1},
    "SettingKind": {"Boolean": 0, "Integer": 1, "OneOf": 1, "Text": 0},
    "WindowRefusal": {"Overflow": 1, "OrphanResult": 1, "PolicyRule": 1},
}


@dataclass
class Ok:
    """A `result` that succeeded (as in `componentize_py_types`)."""
    value: object


@dataclass(frozen=True)
class Err(Exception):
    """A `result` that failed; raised by calls whose WIT result is an error."""
    value: object


def _namespace():
    names = {name: make_dataclass(name, fields.split()) for name, fields in _RECORDS.items()}
    for variant, cases in _VARIANTS.items():
        for case, has_value in cases.items():
            name = f"{variant}_{case}"
            names[name] = make_dataclass(name, ["value"] if has_value else [])
    names["EntryProblem"] = enum.Enum(
        "EntryProblem", "NOT_JSON TOO_DEEP LONE_SURROGATE NOT_AN_OBJECT NO_ROLE", start=0)
    names["Level"] = enum.Enum("Level", "DEBUG INFO WARN ERROR", start=0)
    names["WindowLimit"] = enum.Enum("WindowLimit", "MESSAGES TOKENS", start=0)
    return SimpleNamespace(Ok=Ok, Err=Err, **names)


WIT = _namespace()


def settings(max_messages=50, ttl_seconds=3600, key_prefix="ai:memory:",
             max_message_bytes=1 << 20, extra=()):
    """Settings as a handle would give them, with the defaults of the Python original."""
    return WIT.Settings(max_messages, ttl_seconds, key_prefix, max_message_bytes, list(extra))


def _span(length, start, stop):
    """The Python slice LRANGE / LTRIM take: negative indexes from the tail, clamped."""
    start = max(start + length if start < 0 else start, 0)
    stop = stop + length if stop < 0 else stop
    return slice(start, max(start, min(stop, length - 1) + 1))


class FakeHost:
    """An in-memory list store with Redis semantics, the settings and a log, for one policy.

    `failures` is a list of store errors: each store call takes the first one, if any, and
    fails with it (before touching anything, as a refused transaction does).
    """

    def __init__(self, **overrides):
        self.config = settings(**overrides)
        self.lists = {}
        self.ttls = {}
        self.failures = []
        self.calls = []
        self.logs = []

    def settings(self):
        return self.config

    def log(self, level, message):
        self.logs.append((level, message))

    def _fail(self):
        if self.failures:
            raise Err(self.failures.pop(0))

    def read_range(self, key, range_):
        self.calls.append(("read-range", key))
        self._fail()
        entries = self.lists.get(key, [])
        return entries[_span(len(entries), range_.start, range_.stop)]

    def apply(self, key, ops):
        self.calls.append(("apply", key))
        self._fail()
        entries = list(self.lists.get(key, []))
        exists = key in self.lists
        ttl = self.ttls.get(key)
        applied = WIT.Applied(None, None, None)
        for op in ops:
            kind = type(op).__name__.removeprefix("ListOp_")
            if kind == "Expect":
                if entries != list(op.value):
                    raise Err(WIT.StoreError_Conflict())
            elif kind in ("Push", "PushFront"):
                if not op.value:
                    raise Err(WIT.StoreError_Denied("a push of no values"))
                entries = entries + list(op.value) if kind == "Push" else list(op.value) + entries
                exists = True
                applied.length_after_push = len(entries)
            elif kind == "Trim":
                entries = entries[_span(len(entries), op.value.start, op.value.stop)]
            elif kind == "Expire":
                if op.value == 0:
                    raise Err(WIT.StoreError_Denied("an expire of 0 seconds"))
                ttl = op.value if exists else None
            elif kind == "Delete":
                applied.deleted = len(entries)
                entries, exists, ttl = [], False, None
            elif kind == "Read":
                applied.read = Ok(entries[_span(len(entries), op.value.start, op.value.stop)])
            # Redis removes a list that becomes empty.
            exists = exists and bool(entries)
        if exists:
            self.lists[key], self.ttls[key] = entries, ttl
        else:
            self.lists.pop(key, None)
            self.ttls.pop(key, None)
        return applied
