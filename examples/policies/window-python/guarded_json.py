"""Python's own `json`, guarded for an interpreter running inside WebAssembly.

Entries must be exactly what `json.dumps` writes and what `json.loads` reads, so this module
calls them rather than reimplementing JSON. What it adds is protection against nesting: the C
scanner and encoder recurse once per level, and inside WebAssembly running out of stack is not
a `RecursionError` but a trap (measured with wasmtime's default 512 KiB stack: nested objects
trap at about 850 levels), which would fail the whole call over one hostile entry. So:

- nesting is measured before parsing, by a linear scan without recursion (`nesting`);
- up to `C_DEPTH` levels, the C scanner and encoder do the work (every real message);
- deeper, up to the caller's limit, json's pure-Python scanner parses: its recursion is Python
  calls, which CPython runs without growing the C stack, bounded by the recursion limit. Its
  output is written with an explicit stack around `json.dumps` of each leaf and key.
"""

import codecs
import json
import json.scanner
import re
import sys

#: Deepest nesting the C scanner and encoder are given.
C_DEPTH = 200

# The pure-Python scanner takes two Python frames per level; 1000 levels must fit.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))

# `bytes.decode` looks codecs up by name on first use, which imports a module; inside the
# component there is no filesystem after start-up (stubbed WASI), so look them all up now.
for _encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-16-le",
                  "utf-32", "utf-32-be", "utf-32-le"):
    codecs.lookup(_encoding)

#: A JSON string (possibly unterminated: it then runs to the end) or a bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


class TooDeep(Exception):
    """A JSON text nests deeper than allowed."""


class LoneSurrogate(ValueError):
    """JSON that Python loads, but with a string the host cannot hold."""


class _PythonScannerDecoder(json.JSONDecoder):
    """`json.JSONDecoder` with json's pure-Python scanner (`py_make_scanner`): same grammar,
    recursion in Python frames instead of C ones."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.scan_once = json.scanner.py_make_scanner(self)


def text_of(entry):
    """The text `json.loads(entry)` parses: its encoding detection, `surrogatepass`.

    Raises `UnicodeDecodeError` (a `ValueError`) where `json.loads` would.
    """
    return entry.decode(json.detect_encoding(entry), "surrogatepass")


def nesting(text, limit):
    """How deep `text` nests brackets outside strings (at most; `limit + 1` once deeper).

    A linear scan by the regex engine, no recursion. As long as a JSON scanner has not failed
    yet, its depth is exactly this count, so it is never taken deeper than what this returns.
    """
    brackets = text.count("[") + text.count("{")
    if brackets <= C_DEPTH:
        return brackets  # the quick answer for nearly every text: an upper bound is enough
    depth = deepest = 0
    for token in _TOKEN.finditer(text):
        char = text[token.start()]
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if depth > limit:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text, limit):
    """``json.loads(text)`` and the depth of its nesting, refusing more than `limit` levels.

    Raises `TooDeep`, `LoneSurrogate`, or `ValueError` for everything `json.loads` refuses
    (broken JSON, an integer over the 4300-digit limit): its message says why.
    """
    depth = nesting(text, limit)
    if depth > limit:
        raise TooDeep()
    value = json.loads(text, cls=None if depth <= C_DEPTH else _PythonScannerDecoder)
    if _may_hold_surrogate(text) and _has_lone_surrogate(value):
        raise LoneSurrogate("a string holds a lone UTF-16 surrogate")
    return value, depth


def dumps(value, depth):
    """``json.dumps(value)`` of a value that nests at most `depth` levels."""
    if depth <= C_DEPTH:
        return json.dumps(value)
    parts, stack = [], [(False, value)]
    while stack:
        literal, item = stack.pop()
        if literal:
            parts.append(item)
        elif isinstance(item, list) and item:
            stack.append((True, "]"))
            for index in range(len(item) - 1, -1, -1):
                stack += [(False, item[index]), (True, ", " if index else "[")]
        elif isinstance(item, dict) and item:
            stack.append((True, "}"))
            pairs = list(item.items())
            for index in range(len(pairs) - 1, -1, -1):
                key, member = pairs[index]
                stack += [(False, member), (True, f"{', ' if index else '{'}{json.dumps(key)}: ")]
        else:
            parts.append(json.dumps(item))  # a scalar, or an empty list or object
    return "".join(parts)


def _may_hold_surrogate(text):
    """Whether a value loaded from `text` can hold a surrogate: only from an escape of one or
    one in the text itself. Substring tests, so that the walk below is rarely needed."""
    return ("\\ud" in text or "\\uD" in text
            or (not text.isascii() and _SURROGATE.search(text) is not None))


def _has_lone_surrogate(value):
    """Whether any string in `value` (member names included) holds a UTF-16 surrogate.

    Python keeps them (``"\\udc00"``, or raw bytes let through by ``surrogatepass``); the
    host's strings cannot. Walks with an explicit stack: the value may nest 1000 levels.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
