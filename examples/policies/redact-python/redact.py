"""The window policy, redacting e-mail addresses and secrets from `content` before storing it.

What an agent was told (a pasted API key, a customer's address) should not outlive the
conversation in a shared store. The window's code is reused as is (`window.Window`, from
`../window-python`); only its `prepare` hook, which sees the message after validation and
before `json.dumps`, is overridden. Stored history is not rewritten: redaction applies to what
is written from now on.

Redacted, in `content` when it is text, and in each part ``{"type": "text", "text": ...}`` (also
``input_text`` / ``output_text``) when it is a list of parts:
- secrets with a recognisable shape: OpenAI / Anthropic keys (``sk-...``), Stripe keys
  (``sk_live_...``), AWS access key ids (``AKIA...``, ``ASIA...``), GitHub tokens (``ghp_...``,
  ``github_pat_...``), Slack tokens (``xoxb-...``), Google API keys (``AIza...``), and the token
  of ``Bearer ...``: replaced by ``[secret]``;
- e-mail addresses, unless the setting ``redact-emails`` is ``false``: replaced by ``[email]``.

The patterns are linear-time (anchored starts, bounded or possessive runs), and skipped on a text
that cannot match: content may be megabytes, and a policy's compute is budgeted.
"""

import re

from window import Window

SECRET = "[secret]"
EMAIL = "[email]"

_TOKEN_CHARS = "A-Za-z0-9_-"
_SECRETS = re.compile(rf"(?<![{_TOKEN_CHARS}])(?:"
                      r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"
                      r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"
                      r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
                      r"|gh[pousr]_[A-Za-z0-9]{30,}"
                      r"|github_pat_[A-Za-z0-9_]{22,}"
                      r"|xox[abeprs]-[A-Za-z0-9-]{10,}"
                      r"|AIza[0-9A-Za-z_-]{35}"
                      rf")(?![{_TOKEN_CHARS}])")
#: Strings every match of `_SECRETS` contains: a text with none of them is not scanned.
_SECRET_MARKERS = ("sk-", "sk_", "rk_", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
                   "github_pat_", "xox", "AIza")
# Spelled out rather than (?i): a literal start lets the regex engine skip ahead quickly.
_BEARER = re.compile(r"([Bb][Ee][Aa][Rr][Ee][Rr]\s+)[A-Za-z0-9._~+/=-]{8,}")
_EMAILS = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}+@"
                     r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
                     r"(?![A-Za-z0-9-])")

#: Part types whose `text` is redacted in a list of content parts.
TEXT_PARTS = ("text", "input_text", "output_text")


def redact_text(text, emails=True):
    """`text` with every secret (and e-mail address, if `emails`) replaced.

    Each pattern runs only on a text holding a string its matches must hold: a substring test
    costs a small fraction of a regex scan, and most texts hold none.
    """
    if any(marker in text for marker in _SECRET_MARKERS):
        text = _SECRETS.sub(SECRET, text)
    text = _BEARER.sub(lambda match: match.group(1) + SECRET, text)
    if emails and "@" in text:
        text = _EMAILS.sub(EMAIL, text)
    return text


def redact_content(content, emails=True):
    """`content` (a str, or a list of parts) with its texts redacted; anything else as is."""
    if isinstance(content, str):
        return redact_text(content, emails)
    if isinstance(content, list):
        return [
            {**part, "text": redact_text(part["text"], emails)}
            if isinstance(part, dict) and part.get("type") in TEXT_PARTS
            and isinstance(part.get("text"), str) else part
            for part in content
        ]
    return content


class Redact(Window):
    """The window policy with `content` redacted on the way in."""

    EMAILS_SETTING = "redact-emails"

    def setting_specs(self):
        wit = self.wit
        return [wit.SettingSpec(
            name=self.EMAILS_SETTING, accepts=wit.SettingKind_Boolean(),
            description="Replace e-mail addresses in stored content by [email] "
                        "(default true; secrets are always redacted).")]

    def prepare(self, values, settings):
        """Redact `content`, keeping its place among the members."""
        if "content" in values:
            emails = dict(settings.extra).get(self.EMAILS_SETTING, "true") != "false"
            values["content"] = redact_content(values["content"], emails)
        return values
