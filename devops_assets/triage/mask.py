"""Replace secret-looking values in evidence lines by ``***``.

Masked: values after key-ish words (token, secret, password, api key, ...), bearer
and basic authorization, credentials inside URLs, known token shapes (GitHub,
Cloudflare, AWS, Slack, npm, JWTs, private-key blocks), and long hex or base64 runs
on a line that names a key-ish word.
"""

from __future__ import annotations

import re

MASK = "***"

_KEYISH = (
    r"(?:api[_-]?key|api[_-]?token|access[_-]?key(?:[_-]?id)?|secret(?:[_-]?access)?[_-]?key|"
    r"client[_-]?secret|secret|token|passw(?:or)?d|passwd|pwd|auth(?:orization)?|credentials?|"
    r"private[_-]?key|signing[_-]?key|session[_-]?key|cookie)"
)
_ASSIGNED = re.compile(
    r"(?P<key>(?:--)?(?<![\w.-])[\w.-]{0,40}?" + _KEYISH + r"[\w.-]{0,40}+[\"']?"
    r"(?:\s*[=:]\s*|(?<=[a-z])\s+(?=\S*\d)))"
    r"(?P<value>[\"']?(?!\*\*\*|\[secure\]|<|\$\{|Bearer\b|Basic\b)[^\s\"',;]{6,}+)",
    re.I,
)
_AUTH = re.compile(r"(?P<key>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.I)
_URL_CREDENTIALS = re.compile(
    r"(?P<key>\b[a-z][a-z0-9+.-]*://)(?P<value>[^/\s:@]+(?::[^/\s@]*)?)@", re.I
)
_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|"
    r"AKIA[0-9A-Z]{16}|npm_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b"
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
)
_KEYWORD = re.compile(_KEYISH + r"|\bkeys?\b|\bsignature\b", re.I)
_LONG_RUN = re.compile(r"(?<![\w/+=])(?:[A-Za-z0-9+/_-]{32,}+={0,2}+)(?![\w/+=])")


def _has_mixed(value: str) -> bool:
    return bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value))


MAX_CHARS = 2000


def mask(line: str) -> str:
    """``line`` with every secret-looking value replaced by ``***``.

    A line longer than ``MAX_CHARS`` (a minified bundle, a glued CI line) is cut there
    first: evidence is for people, and the patterns stay linear.
    """
    if len(line) > MAX_CHARS:
        # Drop the word cut in two: half a token would escape the shapes below.
        line = re.sub(r"\S*$", "", line[:MAX_CHARS]) + " [...]"
    line = _PRIVATE_KEY.sub(MASK, line)
    line = _URL_CREDENTIALS.sub(lambda m: m["key"] + MASK + "@", line)
    line = _AUTH.sub(lambda m: m["key"] + MASK, line)
    line = _SHAPES.sub(MASK, line)
    line = _ASSIGNED.sub(lambda m: m["key"] + MASK, line)
    if _KEYWORD.search(line):
        line = _LONG_RUN.sub(lambda m: MASK if _has_mixed(m[0]) or len(m[0]) >= 40 else m[0], line)
    return line


def mask_lines(lines: list[str]) -> list[str]:
    return [mask(line) for line in lines]
