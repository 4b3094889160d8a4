"""Native tests of the window policy against an in-memory store with Redis semantics.

Run from this directory: ``python3 -m unittest``.
"""

import json
import unittest

from fake_host import WIT, Err, FakeHost
from window import Window

KEY = "ai:memory:s"


def text(name, value):
    return WIT.Member(name, WIT.MemberValue_Text(value))


def raw(name, value):
    return WIT.Member(name, WIT.MemberValue_Json(value))


def message(*members):
    return WIT.Message(list(members))


def user(content):
    return message(text("role", "user"), text("content", content))


def contents(context):
    return [next(m.value.value for m in msg.members if m.name == "content")
            for msg in context.messages]


def stored(appended, trimmed, length):
    return WIT.WriteOutcome_Stored(WIT.Stored(appended, trimmed, length, []))


class PolicyTest(unittest.TestCase):
    """A policy over a fresh fake host; subclasses set `policy_class`."""

    policy_class = Window

    def setUp(self):
        self.host = FakeHost()
        self.policy = self.policy_class(self.host, WIT)

    def refusal(self, messages):
        """The `invalid-message` payload `add_messages` refuses `messages` with."""
        with self.assertRaises(Err) as raised:
            self.policy.add_messages("s", messages)
        self.assertIsInstance(raised.exception.value, WIT.MemoryError_InvalidMessage)
        self.assertEqual(self.host.calls, [], "nothing is written")
        return raised.exception.value.value


class WindowTest(PolicyTest):
    def test_messages_are_stored_as_json_dumps_and_read_back_under_the_session_key(self):
        self.assertEqual(self.policy.add_messages("s", [user("a"), user("b")]), stored(2, 0, 2))
        self.assertEqual(self.host.lists[KEY], [b'{"role": "user", "content": "a"}',
                                                b'{"role": "user", "content": "b"}'])
        self.assertEqual(self.host.ttls[KEY], 3600)
        context = self.policy.get_context("s")
        self.assertEqual((contents(context), context.skipped, context.degraded),
                         (["a", "b"], [], None))

    def test_the_key_is_the_prefix_and_the_id_and_settings_are_read_on_every_call(self):
        self.policy.add_message("s", user("a"))
        self.host.config.key_prefix = "tenant2:"
        self.host.config.ttl_seconds = 60
        self.policy.add_message("s", user("b"))
        self.assertEqual(self.host.lists["tenant2:s"], [b'{"role": "user", "content": "b"}'])
        self.assertEqual(self.host.ttls["tenant2:s"], 60)
        self.assertEqual(contents(self.policy.get_context("s")), ["b"])

    def test_the_window_keeps_the_newest_and_counts_what_it_trimmed(self):
        self.host.config.max_messages = 2
        self.policy.add_messages("s", [user("a"), user("b")])
        self.assertEqual(self.policy.add_message("s", user("c")), stored(1, 1, 2))
        self.assertEqual(contents(self.policy.get_context("s")), ["b", "c"])

    def test_reads_ask_for_the_tail_of_a_list_that_grew_past_the_window(self):
        self.host.lists[KEY] = [json.dumps({"role": "user", "content": c}).encode() for c in "abcd"]
        self.host.config.max_messages = 3
        self.assertEqual(contents(self.policy.get_context("s")), ["b", "c", "d"])
        self.assertEqual(self.policy.add_message("s", user("e")), stored(1, 2, 3))

    def test_a_batch_larger_than_the_window_pushes_only_its_newest(self):
        self.host.config.max_messages = 2
        self.policy.add_message("s", user("old"))
        outcome = self.policy.add_messages("s", [user(c) for c in "abcde"])
        # d and e pushed; a, b, c never pushed; old trimmed.
        self.assertEqual(outcome, stored(2, 4, 2))
        self.assertEqual(contents(self.policy.get_context("s")), ["d", "e"])

    def test_a_window_of_zero_deletes_and_reads_nothing(self):
        self.host.config.max_messages = 0
        self.host.lists[KEY] = [b"old"] * 3
        self.assertEqual(self.policy.add_messages("s", [user("a"), user("b")]), stored(0, 5, 0))
        self.assertEqual(self.host.lists, {})
        self.assertEqual(self.policy.get_context("s"), WIT.Context([], [], None))
        turn = self.policy.add_and_get_context("s", [user("c")])
        self.assertEqual(turn, WIT.Turn(stored(0, 1, 0), WIT.Context([], [], None)))
        self.assertEqual(self.host.calls, [("apply", KEY)] * 2, "a zero window never reads")

    def test_add_and_get_context_writes_and_reads_in_one_transaction(self):
        self.host.config.max_messages = 2
        self.policy.add_messages("s", [user("a"), user("b")])
        self.host.calls.clear()
        turn = self.policy.add_and_get_context("s", [user("c")])
        self.assertEqual(turn.outcome, stored(1, 1, 2))
        self.assertEqual(contents(turn.context), ["b", "c"])
        self.assertEqual(self.host.calls, [("apply", KEY)])

    def test_clear_deletes_and_counts_what_the_session_held(self):
        self.policy.add_messages("s", [user("a"), user("b")])
        self.assertEqual(self.policy.clear("s"), stored(0, 2, 0))
        self.assertEqual(self.policy.clear("s"), stored(0, 0, 0))
        self.assertEqual(self.host.lists, {})

    def test_describe_declares_no_settings(self):
        self.assertEqual(self.policy.setting_specs(), [])


class ResilienceTest(PolicyTest):
    LOST = WIT.StoreError_OutcomeUnknown("connection reset")

    def test_a_read_is_retried_once_after_an_unknown_outcome(self):
        self.policy.add_message("s", user("a"))
        self.host.calls.clear()
        self.host.failures = [self.LOST]
        context = self.policy.get_context("s")
        self.assertEqual((contents(context), context.degraded), (["a"], None))
        self.assertEqual(len(self.host.calls), 2)

    def test_a_read_that_fails_twice_degrades(self):
        self.host.failures = [self.LOST, self.LOST]
        self.assertEqual(self.policy.get_context("s"), WIT.Context([], [], self.LOST))
        self.assertEqual(len(self.host.calls), 2)
        self.assertEqual(self.host.logs[-1][0], WIT.Level.WARN)

    def test_other_read_errors_degrade_at_once(self):
        errors = [WIT.StoreError_Unavailable("refused"), WIT.StoreError_Timeout(),
                  WIT.StoreError_OutOfMemory(), WIT.StoreError_DiskFull("full"),
                  WIT.StoreError_Damaged("bad"), WIT.StoreError_WrongType(),
                  WIT.StoreError_TooLarge(WIT.SizeLimit("entries read", 9, 8)),
                  WIT.StoreError_Denied("quota"), WIT.StoreError_Rejected("NOPERM"),
                  WIT.StoreError_NotReplicated(WIT.Replication(1, 0)), WIT.StoreError_Conflict()]
        for error in errors:
            with self.subTest(error=error):
                self.host.calls.clear()
                self.host.failures = [error]
                self.assertEqual(self.policy.get_context("s"), WIT.Context([], [], error))
                self.assertEqual(len(self.host.calls), 1)

    def test_writes_are_never_retried(self):
        calls = {
            "add_messages": lambda: self.policy.add_messages("s", [user("a")]),
            "clear": lambda: self.policy.clear("s"),
        }
        for name, call in calls.items():
            with self.subTest(call=name):
                self.host.calls.clear()
                self.host.failures = [self.LOST]
                self.assertEqual(call(), WIT.WriteOutcome_Failed(self.LOST))
                self.assertEqual(len(self.host.calls), 1)
        self.host.calls.clear()
        self.host.failures = [WIT.StoreError_Timeout()]
        turn = self.policy.add_and_get_context("s", [user("a")])
        self.assertEqual(turn, WIT.Turn(WIT.WriteOutcome_Failed(WIT.StoreError_Timeout()),
                                        WIT.Context([], [], WIT.StoreError_Timeout())))
        self.assertEqual(len(self.host.calls), 1)
        self.assertEqual(self.host.lists, {})

    def test_a_read_the_host_cannot_hand_over_degrades_the_turn_context_only(self):
        too_large = WIT.StoreError_TooLarge(WIT.SizeLimit("reply bytes", 10, 5))
        self.host.apply = lambda key, ops: WIT.Applied(1, None, Err(too_large))
        turn = self.policy.add_and_get_context("s", [user("a")])
        self.assertEqual(turn, WIT.Turn(stored(1, 0, 1), WIT.Context([], [], too_large)))


class DecodeTest(PolicyTest):
    def read(self, *entries):
        self.host.lists[KEY] = list(entries)
        return self.policy.get_context("s")

    def problems(self, *entries):
        context = self.read(*entries)
        return [(s.position, s.problem) for s in context.skipped]

    def test_every_entry_problem_is_skipped_with_its_position(self):
        P = WIT.EntryProblem
        cases = [
            (b"{broken", P.NOT_JSON),
            (b"\xff\xfe\xfd", P.NOT_JSON),
            (b'{"role": "user", "x": "\xc3"}', P.NOT_JSON),
            (b'{"role": "user", "n": ' + b"9" * 4301 + b"}", P.NOT_JSON),
            (b'{"role": "user", "c": ' + b"[" * 1000 + b"]" * 1000 + b"}", P.TOO_DEEP),
            (b"[" * 200_000, P.TOO_DEEP),
            (b'{"role": "user", "content": "\\udc00"}', P.LONE_SURROGATE),
            (b'{"role": "user", "\\ud800": 1}', P.LONE_SURROGATE),
            (b'{"role": "user", "c": "\\uDBFF"}', P.LONE_SURROGATE),
            (b'{"role": "user", "c": [{"d": "a\xed\xa0\x80b"}]}', P.LONE_SURROGATE),
            (b"[1, 2]", P.NOT_AN_OBJECT),
            (b'"role"', P.NOT_AN_OBJECT),
            (b'{"content": "x"}', P.NO_ROLE),
            (b'{"role": null}', P.NO_ROLE),
            (b'{"role": ["user"]}', P.NO_ROLE),
        ]
        good = b'{"role": "user", "content": "ok"}'
        context = self.read(good, *[entry for entry, _ in cases], good)
        self.assertEqual(contents(context), ["ok", "ok"])
        self.assertEqual([(s.position, s.problem) for s in context.skipped],
                         [(i + 1, problem) for i, (_, problem) in enumerate(cases)])
        self.assertEqual(len(self.host.logs), len(cases))

    def test_the_deepest_readable_entry_is_read(self):
        deep = b'{"role": "user", "c": ' + b"[" * 999 + b"]" * 999 + b"}"
        (msg,) = self.read(deep).messages
        self.assertEqual(msg.members[1].value.value, json.dumps(json.loads("[" * 999 + "]" * 999)))

    def test_brackets_inside_strings_do_not_count_as_nesting(self):
        entry = json.dumps({"role": "user", "content": "[{" * 5000 + '\\"'}).encode()
        self.assertEqual(contents(self.read(entry)), ["[{" * 5000 + '\\"'])

    def test_any_encoding_layout_and_escape_python_reads(self):
        msg = '{ "role" :"user",\n"content":"h\\u00e9llo \\ud83d\\ude00" }'
        entries = [msg.encode(enc) for enc in
                   ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                    "utf-32-le", "utf-32-be")]
        self.assertEqual(contents(self.read(*entries)), ["h\u00e9llo \U0001F600"] * 8)

    def test_a_repeated_member_keeps_its_first_position_and_last_value(self):
        (msg,) = self.read(b'{"role": "a", "x": 1, "role": "b", "x": {"y": 2}}').messages
        self.assertEqual(msg, message(text("role", "b"), raw("x", '{"y": 2}')))

    def test_an_overwritten_lone_surrogate_is_gone(self):
        (msg,) = self.read(b'{"role": "user", "x": "\\udc00", "x": "ok"}').messages
        self.assertEqual(msg, message(text("role", "user"), text("x", "ok")))

    def test_non_string_values_come_back_as_canonical_json(self):
        (msg,) = self.read(b'{"n": 1E400, "role": "tool", "c": null, "b": true, '
                           b'"f": 0.10, "l": [ 1,2 ], "o": {"k" :"v"}}').messages
        self.assertEqual(msg, message(raw("n", "Infinity"), text("role", "tool"), raw("c", "null"),
                                      raw("b", "true"), raw("f", "0.1"), raw("l", "[1, 2]"),
                                      raw("o", '{"k": "v"}')))


class EncodeTest(PolicyTest):
    def test_member_order_is_kept(self):
        tool = message(text("role", "tool"), text("tool_call_id", "c1"), text("content", "18 C"))
        calls = message(raw("tool_calls", '[{"id": "c1"}]'), text("role", "assistant"),
                        raw("content", "null"))
        self.policy.add_messages("s", [tool, calls])
        self.assertEqual(self.host.lists[KEY], [
            b'{"role": "tool", "tool_call_id": "c1", "content": "18 C"}',
            b'{"tool_calls": [{"id": "c1"}], "role": "assistant", "content": null}'])
        self.assertEqual(self.policy.get_context("s").messages, [tool, calls])

    def test_nan_big_ints_and_floats_round_trip_byte_exact(self):
        big = "-" + "7" * 4300
        entry = ('{"role": "user", "n": NaN, "i": Infinity, "j": -Infinity, "big": %s, '
                 '"f": [0.1, 1e+16, 1e-05, 123456789.125, -0.0, 5e-324]}' % big).encode()
        self.host.lists[KEY] = [entry]
        (msg,) = self.policy.get_context("s").messages
        self.assertEqual(msg.members[4], raw("big", big))
        self.host.lists.clear()
        self.policy.add_message("s", msg)
        self.assertEqual(self.host.lists[KEY], [entry])

    def test_json_text_is_stored_canonical(self):
        parts = ' [ {"type":"text" ,"text":"\\u00e9"} ] '
        self.policy.add_message("s", message(text("role", "user"), raw("content", parts)))
        self.assertEqual(self.host.lists[KEY],
                         [b'{"role": "user", "content": [{"type": "text", "text": "\\u00e9"}]}'])

    def test_a_json_string_role_is_text(self):
        self.policy.add_message("s", message(raw("role", '"user"')))
        self.assertEqual(self.host.lists[KEY], [b'{"role": "user"}'])

    def test_an_empty_batch_is_refused(self):
        with self.assertRaises(Err) as raised:
            self.policy.add_messages("s", [])
        self.assertEqual(raised.exception.value, WIT.MemoryError_NoMessages())
        with self.assertRaises(Err):
            self.policy.add_and_get_context("s", [])

    def test_every_invalid_message_case(self):
        deep = "[" * 500 + "]" * 500
        cases = [
            (message(text("role", "user"), text("x", "1"), raw("x", "2")),
             WIT.InvalidMessage_DuplicateMember("x")),
            (message(text("content", "hi")), WIT.InvalidMessage_NoRole()),
            (message(raw("role", "1"), text("content", "hi")), WIT.InvalidMessage_NoRole()),
            (message(raw("role", "{bad"), text("content", "hi")), WIT.InvalidMessage_NoRole()),
            (message(text("role", "user"), raw("c", "{bad")), WIT.InvalidMessage_InvalidJson(
                "member `c` is not JSON: Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1)")),
            (message(text("role", "user"), raw("c", "\ufeff1")), WIT.InvalidMessage_InvalidJson(
                "member `c` is not JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): "
                "line 1 column 1 (char 0)")),
            (message(text("role", "user"), raw("c", '"\\udc00"')), WIT.InvalidMessage_InvalidJson(
                "member `c` is not JSON: a string holds a lone UTF-16 surrogate")),
            (message(text("role", "user"), raw("c", deep)), WIT.InvalidMessage_TooDeep("c")),
            (message(text("role", "user"), raw("c", "{" * 100_000)),
             WIT.InvalidMessage_TooDeep("c")),
        ]
        for msg, reason in cases:
            with self.subTest(reason=reason):
                self.assertEqual(self.refusal([user("fine"), msg]), (1, reason))
        (index, reason) = self.refusal([message(text("role", "user"), raw("n", "1" * 4301))])
        self.assertEqual(index, 0)
        self.assertTrue(reason.value.startswith("member `n` is not JSON: Exceeds the limit (4300"))

    def test_refusals_are_checked_in_order(self):
        deep = "[" * 500 + "]" * 500
        self.assertEqual(self.refusal([message(raw("a", "{bad"), text("a", "x"))]),
                         (0, WIT.InvalidMessage_DuplicateMember("a")))
        self.assertEqual(self.refusal([message(raw("a", "{bad"))]),
                         (0, WIT.InvalidMessage_NoRole()))
        # Any member that is not JSON before any that nests too deep.
        self.assertEqual(
            self.refusal([message(raw("a", deep), raw("b", "{bad"), text("role", "u"))]),
            (0, WIT.InvalidMessage_InvalidJson("member `b` is not JSON: Expecting property name "
                                               "enclosed in double quotes: line 1 column 2 "
                                               "(char 1)")))

    def test_the_deepest_writable_value_is_written(self):
        self.policy.add_message("s", message(text("role", "user"), raw("c", "[" * 499 + "]" * 499)))
        self.assertEqual(len(self.host.lists[KEY]), 1)

    def test_the_size_limit_counts_encoded_bytes(self):
        self.host.config.max_message_bytes = 40
        fits = user("x" * 7)  # {"role": "user", "content": "xxxxxxx"} is 40 bytes
        self.assertEqual(self.policy.add_message("s", fits), stored(1, 0, 1))
        self.host.calls.clear()
        self.assertEqual(self.refusal([user("\u00e9" * 2)]), (0, WIT.InvalidMessage_TooLarge(
            WIT.SizeLimit("encoded message bytes", 43, 40))))


if __name__ == "__main__":
    unittest.main()
