"""What Python's json module does with each request: one JSON object a line on stdin, one answer
a line on stdout (the property tests' oracle). Standard library only."""

import base64
import json
import sys


def has_lone(value):
    """Whether any string in `value` (keys included) holds a surrogate code point, iteratively."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if any("\ud800" <= c <= "\udfff" for c in v):
                return True
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
    return False


def canon(text):
    try:
        value = json.loads(text)
    except RecursionError:
        return {"r": "too-deep"}
    except ValueError:
        return {"r": "error"}
    if has_lone(value):
        return {"r": "lone"}
    return {"r": "ok", "t": json.dumps(value)}


def entry(data):
    try:
        value = json.loads(data)
    except RecursionError:
        return {"r": "too-deep"}
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        return {"r": "not-json"}
    if has_lone(value):
        return {"r": "lone-surrogate"}
    if not isinstance(value, dict):
        return {"r": "not-an-object"}
    if not isinstance(value.get("role"), str):
        return {"r": "no-role"}
    members = [[k, "text", v] if isinstance(v, str) else [k, "json", json.dumps(v)] for k, v in value.items()]
    return {"r": "ok", "members": members}


def encode(members):
    message = {}
    for name, kind, value in members:
        message[name] = value if kind == "text" else json.loads(value)
    return {"r": "ok", "t": json.dumps(message)}


def decode(data, encoding=None):
    """bytes.decode as json.loads(bytes) does it; surrogates stand as U+FFFD, their UTF-16 indexes
    listed (a JS string cannot tell two lone surrogates from a pair)."""
    try:
        text = data.decode(encoding or json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError:
        return {"r": "not-text"}
    out, raw, units = [], [], 0
    for c in text:
        if "\ud800" <= c <= "\udfff":
            raw.append(units)
            out.append("\ufffd")
            units += 1
        else:
            out.append(c)
            units += 2 if ord(c) > 0xFFFF else 1
    return {"r": "ok", "t": "".join(out), "raw": raw}


def main():
    out = []
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "canon":
            out.append(canon(request["text"]))
        elif op == "entry":
            out.append(entry(base64.b64decode(request["b64"])))
        elif op == "decode":
            out.append(decode(base64.b64decode(request["b64"]), request.get("encoding")))
        elif op == "encode":
            out.append(encode(request["members"]))
        else:
            raise SystemExit(f"unknown op {op}")
    sys.stdout.write("".join(json.dumps(answer) + "\n" for answer in out))


if __name__ == "__main__":
    main()
