"""Native tests of the hostile policy. Run from this directory: ``python3 -m unittest``.

`loop` and `alloc` run in a child interpreter, stopped by a timeout and an address-space
limit; the rest in this one.
"""

import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
WINDOW = HERE.parent / "window-python"
sys.path.insert(0, str(WINDOW))

import test_window  # noqa: E402
from fake_host import WIT  # noqa: E402
from hostile import Hostile  # noqa: E402
from test_window import user  # noqa: E402


class HostileWindowTest(test_window.WindowTest):
    """Any other session id: the window policy."""
    policy_class = Hostile


class HostileTest(test_window.PolicyTest):
    policy_class = Hostile

    def run_child(self, session_id, **kwargs):
        code = textwrap.dedent(f"""
            import resource, sys
            sys.path[:0] = [{str(HERE)!r}, {str(WINDOW)!r}]
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
            from fake_host import WIT, FakeHost
            from hostile import Hostile
            Hostile(FakeHost(), WIT).get_context({session_id!r})
        """)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              **kwargs)

    def test_loop_never_returns(self):
        with self.assertRaises(subprocess.TimeoutExpired):
            self.run_child("loop-1", timeout=1)

    def test_alloc_runs_out_of_memory(self):
        child = self.run_child("alloc-1", timeout=60)
        self.assertNotEqual(child.returncode, 0)
        self.assertIn("MemoryError", child.stderr)

    def test_raise_raises_out_of_every_call(self):
        calls = [lambda p: p.get_context("raise-1"), lambda p: p.add_message("raise", user("a")),
                 lambda p: p.add_and_get_context("raise", [user("a")]), lambda p: p.clear("raise")]
        for call in calls:
            with self.assertRaises(RuntimeError):
                call(self.policy)
        self.assertEqual(self.host.calls, [])

    def test_bad_output_returns_a_message_without_role(self):
        (bad,) = self.policy.get_context("bad-output-1").messages
        self.assertNotIn("role", [m.name for m in bad.members])
        (evicted,) = self.policy.add_message("bad-output", user("a")).value.evicted
        self.assertEqual(evicted, bad)
        turn = self.policy.add_and_get_context("bad-output", [user("a")])
        self.assertEqual((turn.context.messages, turn.outcome.value.evicted), ([bad], [bad]))
        self.assertEqual(self.policy.clear("bad-output").value.evicted, [bad])
        self.assertEqual(self.host.calls, [], "nothing is written")

    def test_bad_output_json_returns_a_json_member_that_is_not_json(self):
        (bad,) = self.policy.get_context("bad-output-json").messages
        self.assertEqual(bad.members[1], WIT.Member("content", WIT.MemberValue_Json("{not json")))


if __name__ == "__main__":
    unittest.main()
