"""Native tests of `guarded_json`: the deep path gives what `json` itself gives."""

import json
import random
import unittest

import guarded_json
from guarded_json import C_DEPTH, LoneSurrogate, TooDeep


def nest(depth, leaf, rng):
    """A value nesting `depth` levels, with objects and lists mixed and siblings around."""
    value = leaf
    for level in range(depth):
        if rng.random() < 0.5:
            value = {"k\u00e9y": value, "n": level, "f": [1.5, float("nan")], "s": "\"\\\n"}
        else:
            value = [value, None, True, -(10 ** 40), "\U0001F600", {}, []]
    return value


class GuardedJsonTest(unittest.TestCase):
    def test_deep_values_are_written_as_json_dumps_writes_them(self):
        rng = random.Random(7)
        for depth in (C_DEPTH - 1, C_DEPTH + 1, 600):
            value = nest(depth, "leaf", rng)
            self.assertEqual(guarded_json.dumps(value, depth), json.dumps(value))

    def test_the_python_scanner_reads_what_the_c_scanner_reads(self):
        rng = random.Random(11)
        text = json.dumps(nest(C_DEPTH - 1, {"a": 1, "a": 2}, rng))
        deep_text = "[" * (C_DEPTH + 1) + text + "]" * (C_DEPTH + 1)
        value, depth = guarded_json.loads(deep_text, 1000)
        self.assertEqual(depth, 2 * C_DEPTH + 1)
        self.assertEqual(json.dumps(value), json.dumps(json.loads(deep_text)))

    def test_the_python_scanner_refuses_what_the_c_scanner_refuses_and_says_the_same(self):
        pad = "[" * (C_DEPTH + 1)
        for broken in ["{", "[1,]", '{"a" 1}', "[NaN, nan]", "[01]", '["\x01"]', "[1.]",
                       "[" + "9" * 4301 + "]", "[] x", '["\\x"]', "[-]", "[tru]"]:
            with self.subTest(broken=broken):
                with self.assertRaises(ValueError) as c_error:
                    json.loads(pad + broken)
                with self.assertRaises(ValueError) as py_error:
                    guarded_json.loads(pad + broken, 1000)
                self.assertEqual(str(py_error.exception), str(c_error.exception))

    def test_nesting_is_measured_outside_strings_and_stops_past_the_limit(self):
        # Up to C_DEPTH brackets the count of them is answer enough; past it, the exact depth.
        text = '["' + "[" * 300 + '", ' + "[" * 250 + "]" * 250 + "]"
        self.assertEqual(guarded_json.nesting(text, 1000), 251)
        self.assertEqual(guarded_json.nesting("[" * 100_000, 1000), 1001)
        with self.assertRaises(TooDeep):
            guarded_json.loads("{" * 100_000, 1000)

    def test_lone_surrogates_are_found_wherever_they_are(self):
        for text in ['"\\udc00"', '{"\\uD800": 1}', '[[["\ud800"]]]']:
            with self.assertRaises(LoneSurrogate):
                guarded_json.loads(text, 1000)
        self.assertEqual(guarded_json.loads('"\\ud83d\\ude00"', 1000), ("\U0001F600", 0))


if __name__ == "__main__":
    unittest.main()
