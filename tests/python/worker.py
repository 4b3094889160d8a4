"""A long-lived driver of the Python original for property tests: one JSON request per line on
stdin, one JSON reply per line on stdout, so thousands of cases do not pay for starting Python.

Requests (JSON text travels as JSON strings, so NaN and lone surrogates survive the pipe):

    {"op": "add", "session": S, "texts": [T, ...]}   original.add_messages(S, [json.loads(T)...])
    {"op": "get", "session": S}                       -> {"text": json.dumps(original.get_context(S))}
    {"op": "entries", "session": S}                   -> {"entries": [latin-1 of each raw entry]}
    {"op": "canonical", "text": T}                    -> {"text": json.dumps(json.loads(T))}
    {"op": "loads_equal", "session": S, "texts": [T]} -> {"equal": [json.loads(entry) == json.loads(T)]}
    {"op": "lone", "text": T}                         -> {"lone": whether json.loads(T) holds a lone surrogate}
    {"op": "canonical_many", "texts": [T, ...]}       -> {"texts": [json.dumps(json.loads(T)), ...]}
    {"op": "judge", "text": T}                        -> {"lone": ..., "message": ..., "result": ...}
        what json.loads(T) is, judged in Python: whether it holds a lone surrogate, whether it
        is a message (a dict with a str "role"), and whether it carries tool results (an
        OpenAI "tool" message, or a "user" message with Anthropic "tool_result" blocks)

Every reply is {"ok": true, ...} or {"ok": false, "error": "..."}.
"""

import json
import sys

from original import RedisMemoryRepository, client_from_url


def same(a, b):
    """Equality that also holds for NaN (json.loads makes a new float object each time)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        # 0.0 == -0.0 in Python; the sign is part of the value we keep.
        return a == b and str(a) == str(b)
    return a == b


def has_lone_surrogate(value):
    """Whether any string in `value` (names included) holds a surrogate code point: Python
    keeps lone surrogates, which no UTF-8 string can hold."""
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, list):
        return any(has_lone_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    return False


def is_message(value):
    return isinstance(value, dict) and isinstance(value.get("role"), str)


def carries_tool_results(value):
    if not is_message(value):
        return False
    if value["role"] == "tool":
        return True
    content = value.get("content")
    return value["role"] == "user" and isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def handle(repository, client, request):
    op = request["op"]
    if op == "add":
        repository.add_messages(request["session"], [json.loads(t) for t in request["texts"]])
        return {}
    if op == "get":
        return {"text": json.dumps(repository.get_context(request["session"]))}
    if op == "entries":
        raw = client.lrange(repository._key(request["session"]), 0, -1)
        return {"entries": [entry.decode("latin-1") for entry in raw]}
    if op == "lone":
        return {"lone": has_lone_surrogate(json.loads(request["text"]))}
    if op == "judge":
        value = json.loads(request["text"])
        return {
            "lone": has_lone_surrogate(value),
            "message": is_message(value),
            "result": carries_tool_results(value),
        }
    if op == "canonical_many":
        return {"texts": [json.dumps(json.loads(text)) for text in request["texts"]]}
    if op == "canonical":
        return {"text": json.dumps(json.loads(request["text"]))}
    if op == "loads_equal":
        raw = client.lrange(repository._key(request["session"]), 0, -1)
        return {
            "equal": [
                same(json.loads(entry), json.loads(text))
                for entry, text in zip(raw, request["texts"])
            ]
        }
    raise ValueError(f"unknown op {op}")


def main():
    client = client_from_url(sys.argv[1])
    repository = RedisMemoryRepository(client)
    for line in sys.stdin:
        try:
            reply = {"ok": True, **handle(repository, client, json.loads(line))}
        except Exception as error:  # reported to the test, which fails with it
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
