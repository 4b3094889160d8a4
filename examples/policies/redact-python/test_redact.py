"""Native tests of the redacting policy. Run from this directory: ``python3 -m unittest``.

The window's own test cases run again against `Redact` (the window behaviour is unchanged),
then the redaction itself is tested.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "window-python"))

import test_window  # noqa: E402  (after the path is set)
from fake_host import WIT  # noqa: E402
from redact import Redact, redact_text  # noqa: E402
from test_window import KEY, message, raw, text, user  # noqa: E402


class RedactWindowTest(test_window.WindowTest):
    policy_class = Redact

    def test_describe_declares_no_settings(self):
        """Replaced: this policy declares one (see `RedactTest`)."""


class RedactResilienceTest(test_window.ResilienceTest):
    policy_class = Redact


class RedactDecodeTest(test_window.DecodeTest):
    policy_class = Redact


class RedactEncodeTest(test_window.EncodeTest):
    policy_class = Redact


class RedactTextTest(test_window.PolicyTest):
    def test_secrets_are_redacted(self):
        cases = {
            "key sk-proj-abcDEF1234567890abcdefXYZ ok": "key [secret] ok",
            "OPENAI_API_KEY=sk-0123456789abcdefghijklmnop": "OPENAI_API_KEY=[secret]",
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv.": "[secret].",
            "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc": "stripe [secret]",
            "aws AKIAIOSFODNN7EXAMPLE and ASIAY34FZKBOKMUTVV7A": "aws [secret] and [secret]",
            "gh 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": "gh [secret]",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv": "[secret]",
            "slack xoxb-123456789012-abcdefABCDEF": "slack [secret]",
            "g AIzaSyA-1234567890abcdefghijklmnopqrstu": "g [secret]",
            "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig": "Authorization: Bearer [secret]",
            "-H 'authorization: bearer abc123def456'": "-H 'authorization: bearer [secret]'",
        }
        for before, after in cases.items():
            with self.subTest(before=before):
                self.assertEqual(redact_text(before), after)

    def test_look_alikes_are_kept(self):
        for kept in ["risk-assessment-document-version2", "sk-short", "task-0123456789abcdefghijkl",
                     "AKIAIOSFODNN7EXAMPLEX", "the bearer of bad news", "ghp_short",
                     "user@localhost", "a @ b.com"]:
            with self.subTest(kept=kept):
                self.assertEqual(redact_text(kept), kept)

    def test_emails_are_redacted_unless_disabled(self):
        before = "Write to Jane.Doe+work@mail.example.co.uk, or <ops@example.com>."
        self.assertEqual(redact_text(before), "Write to [email], or <[email]>.")
        self.assertEqual(redact_text(before, emails=False), before)

    def test_redaction_is_linear_on_hostile_text(self):
        for hostile in ["a" * 1_000_000, "a." * 500_000, "sk-" * 300_000, "bearer " * 100_000,
                        "a@" * 500_000, "x@a." * 250_000]:
            redact_text(hostile)  # quadratic patterns would take minutes here


class RedactTest(test_window.PolicyTest):
    policy_class = Redact
    KEYED = "mail me at bob@example.com, key sk-0123456789abcdefghijklmnop"
    CLEAN = "mail me at [email], key [secret]"

    def stored_entries(self):
        return self.host.lists[KEY]

    def test_text_content_is_redacted_before_it_is_stored(self):
        self.policy.add_message("s", user(self.KEYED))
        self.assertEqual(self.stored_entries(),
                         [('{"role": "user", "content": "%s"}' % self.CLEAN).encode()])

    def test_text_parts_are_redacted_and_everything_else_kept_in_place(self):
        parts = ('[{"type": "text", "text": "%s"}, {"type": "image_url", "image_url": '
                 '{"url": "https://x/a@b.com"}}, {"type": "input_text", "text": "c@d.org"}]'
                 % self.KEYED)
        msg = message(text("role", "user"), raw("content", parts), text("name", "bob@example.com"))
        turn = self.policy.add_and_get_context("s", [msg])
        self.assertEqual(turn.context.messages, [message(
            text("role", "user"),
            raw("content", '[{"type": "text", "text": "%s"}, {"type": "image_url", "image_url": '
                           '{"url": "https://x/a@b.com"}}, {"type": "input_text", "text": '
                           '"[email]"}]' % self.CLEAN),
            text("name", "bob@example.com"))])

    def test_other_content_is_stored_as_is(self):
        for content in ["null", '{"text": "sk-0123456789abcdefghijklmnop"}', "42"]:
            assistant = message(text("role", "assistant"), raw("content", content))
            self.policy.add_message("s", assistant)
        self.assertEqual([e.decode().split('"content": ')[1][:-1] for e in self.stored_entries()],
                         ["null", '{"text": "sk-0123456789abcdefghijklmnop"}', "42"])

    def test_the_setting_is_declared_and_read_on_every_call(self):
        (spec,) = self.policy.setting_specs()
        self.assertEqual((spec.name, spec.accepts), ("redact-emails", WIT.SettingKind_Boolean()))
        self.host.config.extra = [("redact-emails", "false")]
        self.policy.add_message("s", user(self.KEYED))
        self.host.config.extra = [("redact-emails", "true")]
        self.policy.add_message("s", user(self.KEYED))
        self.assertEqual([e.decode() for e in self.stored_entries()], [
            '{"role": "user", "content": "mail me at bob@example.com, key [secret]"}',
            '{"role": "user", "content": "%s"}' % self.CLEAN])

    def test_the_size_limit_applies_to_the_redacted_entry(self):
        self.host.config.max_message_bytes = len('{"role": "user", "content": "[email]"}')
        self.policy.add_message("s", user("somebody.with.a.long.name@example.com"))
        self.assertEqual(self.stored_entries(), [b'{"role": "user", "content": "[email]"}'])


if __name__ == "__main__":
    import unittest
    unittest.main()
