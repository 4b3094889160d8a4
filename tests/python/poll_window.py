"""Poll one session's stored list while others write it, and judge every sample as an LLM API
would: the list must be a window that can be sent as it is.

    poll_window.py URL KEY SECONDS MAX_MESSAGES MAX_TOKENS|- STOP_FILE

Each sample is `MULTI; LRANGE key 0 -1; TTL key; EXEC` (one atomic view). A sample is invalid
when:
- a tool result answers a call that is not before it in the list (OpenAI `tool` messages with
  `tool_call_id`, Anthropic `tool_result` blocks in a `user` message), or has no id;
- a call in the list lacks a result that an earlier sample showed for it (a call kept without
  all its results once they exist);
- the list holds more than MAX_MESSAGES entries, or, with a budget, more approximate tokens
  (bytes / 4, rounded up) than MAX_TOKENS besides a lone pinned system message;
- the list exists without a TTL;
- the first entry is a system message whose bytes differ from the first one seen.

Polls until SECONDS have passed or STOP_FILE exists, then prints one JSON object:
{"samples": n, "invalid": n, "first_invalid": [...], "cut_to_pin": n, "max_length": n}.
"""

import json
import math
import os
import sys
import time

import redis


def calls_of(message):
    """The call ids a message makes, and the ids it answers (None: not a result)."""
    role = message.get("role")
    calls, answers = [], None
    if role == "assistant":
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                calls.append(call["id"])
        content = message.get("content")
        if isinstance(content, list):
            calls += [
                block["id"]
                for block in content
                if isinstance(block, dict) and block.get("type") == "tool_use"
            ]
    elif role == "tool":
        answer = message.get("tool_call_id")
        answers = [answer] if isinstance(answer, str) else []
    elif role == "user" and isinstance(message.get("content"), list):
        blocks = [
            block
            for block in message["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]
        if blocks:
            answers = [block.get("tool_use_id") for block in blocks]
    return calls, answers


def judge(entries, ttl, pin, results_seen, max_messages, max_tokens):
    """Why the sample is not a valid window, or None."""
    if not entries:
        return None
    if ttl < 0:
        return "no TTL"
    if len(entries) > max_messages:
        return f"{len(entries)} entries, over the window of {max_messages}"
    messages = [json.loads(entry) for entry in entries]
    pinned = messages[0].get("role") == "system"
    if pinned and pin is not None and entries[0] != pin:
        return "the pinned system message changed"
    if max_tokens is not None:
        tokens = sum(math.ceil(len(entry) / 4) for entry in entries)
        if tokens > max_tokens and len(entries) > 1:
            return f"{tokens} tokens, over the budget of {max_tokens}"
    declared = set()
    kept_calls = set()
    for position, message in enumerate(messages):
        calls, answers = calls_of(message)
        if answers is not None:
            if not answers or any(answer not in declared for answer in answers):
                return f"entry {position} is a tool result without its call: {answers}"
        declared.update(calls)
        kept_calls.update(calls)
    present = set(entries)
    for call in kept_calls:
        for entry in results_seen.get(call, ()):
            if entry not in present:
                return f"call {call} is kept without a result it had"
    return None


def main():
    url, key, seconds, max_messages, max_tokens, stop_file = sys.argv[1:7]
    max_messages = int(max_messages)
    max_tokens = None if max_tokens == "-" else int(max_tokens)
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + float(seconds)
    samples = invalid = cut_to_pin = max_length = 0
    first_invalid = []
    pin = None
    results_seen = {}
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        pipe = client.pipeline(transaction=True)
        pipe.lrange(key, 0, -1)
        pipe.ttl(key)
        entries, ttl = pipe.execute()
        samples += 1
        max_length = max(max_length, len(entries))
        if entries and pin is None and json.loads(entries[0]).get("role") == "system":
            pin = entries[0]
        if len(entries) == 1 and pin is not None:
            cut_to_pin += 1
        problem = judge(entries, ttl, pin, results_seen, max_messages, max_tokens)
        if problem is not None:
            invalid += 1
            if len(first_invalid) < 3:
                first_invalid.append({"problem": problem, "entries": [e.decode() for e in entries]})
            continue
        for entry in entries:
            _, answers = calls_of(json.loads(entry))
            for answer in answers or ():
                results_seen.setdefault(answer, set()).add(entry)
    print(
        json.dumps(
            {
                "samples": samples,
                "invalid": invalid,
                "first_invalid": first_invalid,
                "cut_to_pin": cut_to_pin,
                "max_length": max_length,
            }
        )
    )


if __name__ == "__main__":
    main()
