"""Replace secret-looking values in evidence lines by ``***``.

Masked: values after key-ish words (token, secret, password, api key, ...), bearer
and basic authorization, credentials inside URLs and on ``docker login -p`` / ``curl
-u``, known token shapes (GitHub, Cloudflare's 40-character API tokens, AWS, Slack,
npm, Stripe, JWTs), whole private-key blocks (``mask_lines``: from the BEGIN line to
the END line), and long hex or base64 runs on a line that names a key-ish word.
Terminal colour codes are taken out before matching, so a colour change inside a
value cannot hide it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from devops_assets.triage.normalise import strip_ansi

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
# ``docker login -p PW`` / ``--password PW`` (only on a line that logs in: -p is also a port).
_LOGIN = re.compile(r"\blogin\b", re.I)
_LOGIN_PASSWORD = re.compile(r"(?P<key>(?<!\S)(?:-p|--password)(?:=|\s+))(?P<value>[^\s-]\S*)")
# ``curl -u user:pass`` / ``--user user:pass``: the password after the colon.
_HTTP_CLIENT = re.compile(r"\b(?:curl|wget|http)\b", re.I)
_USER_PASSWORD = re.compile(
    r"(?P<key>(?<!\S)(?:-u\s*|--user(?:=|\s+))[\"']?[^\s:\"']+:)(?P<value>[^\s\"']+)"
)
_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|"
    r"AKIA[0-9A-Z]{16}|npm_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b"
)
# A Cloudflare API token: 40 characters of [A-Za-z0-9_-], needing no key word on the
# line. Only runs mixing upper case, lower case and digits (hex shas stay readable), and
# only random-looking ones (see ``_random_case``): long test and class names stay.
_TOKEN_RUN = re.compile(
    r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*\d)"
    r"[A-Za-z0-9_-]{40,}+(?![A-Za-z0-9_-])"
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
)
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
# A line inside a key block: base64 (a run of 16+, or the whole line), a header, blank.
_KEY_MATERIAL = re.compile(
    r"^\s*[\"']?[A-Za-z0-9+/]+={0,2}(?:\\n)?[\"']?,?\s*$|^\s*(?:Proc-Type|DEK-Info):|^\s*$"
)
_KEYWORD = re.compile(_KEYISH + r"|\bkeys?\b|\bsignature\b", re.I)
_LONG_RUN = re.compile(r"(?<![\w/+=])(?:[A-Za-z0-9+/_-]{32,}+={0,2}+)(?![\w/+=])")


def _random_case(value: str) -> bool:
    """Whether a 40+ character run looks random rather than like a long name.

    A test or class name (``Java6Assertions_assertThat_with_String_Test``) has few
    digits, and is mostly lower case or made of lower-case runs of three or more
    letters; a random token rarely is both (0.07 % of random 40-character tokens)."""
    letters = [c for c in value if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    runs = _LOWER_RUNS.findall(value)
    wordy = min(upper, len(letters) - upper) < 0.25 * len(letters) or sum(
        map(len, runs)
    ) >= 3 * len(runs)
    return sum(c.isdigit() for c in value) > 2 or not wordy


_LOWER_RUNS = re.compile(r"[a-z]+")


def _has_mixed(value: str) -> bool:
    return bool(re.search(r"\d", value)) and bool(re.search(r"[A-Za-z]", value))


MAX_CHARS = 2000


def _cut(line: str) -> str:
    if len(line) > MAX_CHARS:
        # Drop the word cut in two: half a token would escape the shapes below.
        line = re.sub(r"\S*$", "", line[:MAX_CHARS]) + " [...]"
    return line


def _mask_plain(line: str) -> str:
    line = _PRIVATE_KEY.sub(MASK, line)
    line = _URL_CREDENTIALS.sub(lambda m: m["key"] + MASK + "@", line)
    line = _AUTH.sub(lambda m: m["key"] + MASK, line)
    line = _SHAPES.sub(MASK, line)
    line = _ASSIGNED.sub(lambda m: m["key"] + MASK, line)
    if _LOGIN.search(line):
        line = _LOGIN_PASSWORD.sub(lambda m: m["key"] + MASK, line)
    if _HTTP_CLIENT.search(line):
        line = _USER_PASSWORD.sub(lambda m: m["key"] + MASK, line)
    line = _TOKEN_RUN.sub(lambda m: MASK if _random_case(m[0]) else m[0], line)
    if _KEYWORD.search(line):
        line = _LONG_RUN.sub(lambda m: MASK if _has_mixed(m[0]) or len(m[0]) >= 40 else m[0], line)
    return line


def _mask_one(line: str, inside_key: bool) -> tuple[str, bool]:
    """(masked line, whether a private-key block is still open after it)."""
    line = _cut(line)
    plain = strip_ansi(line)
    ends = list(_KEY_END.finditer(plain))
    begins = list(_KEY_BEGIN.finditer(plain))
    if inside_key:
        if not ends:
            if _KEY_MATERIAL.search(plain):
                return MASK, True
            # No END line came (a cut log): a line that is no key material ends the block,
            # so the failure after it stays readable.
            return _mask_one(line, False)
        # The block's body runs up to its END line; what follows is masked as usual.
        rest = plain[ends[0].end() :]
        masked, still_inside = _mask_one(rest, False)
        return MASK + masked, still_inside
    masked = _mask_plain(plain)
    opened = bool(begins) and (not ends or begins[-1].start() > ends[-1].start())
    # Colours are kept on a line with nothing to mask.
    return (line if masked == plain else masked), opened


def mask_lines(lines: Iterable[str], *, before: Sequence[str] = ()) -> list[str]:
    """``lines`` masked one by one, and every line of a private-key block (from its
    ``-----BEGIN … PRIVATE KEY-----`` line to its END line) replaced by ``***``.

    ``before``: the lines preceding ``lines`` in the log (only read to know whether
    the first line is inside a key block).
    """
    inside = _opens_key_block(before)
    out: list[str] = []
    for line in lines:
        pieces = []
        for piece in line.split("\n"):
            masked, inside = _mask_one(piece, inside)
            pieces.append(masked)
        out.append("\n".join(pieces))
    return out


def _opens_key_block(lines: Sequence[str]) -> bool:
    """Whether a private-key block begun in ``lines`` is still open after them: walking
    back over key material, the first other line opens a block or does not."""
    for line in reversed(lines):
        plain = strip_ansi(line)
        if "-----" in plain and (_KEY_BEGIN.search(plain) or _KEY_END.search(plain)):
            return _mask_one(line, False)[1]
        if not _KEY_MATERIAL.search(plain):
            return False
    return False


def mask(line: str) -> str:
    """``line`` with every secret-looking value replaced by ``***``.

    A line longer than ``MAX_CHARS`` (a minified bundle, a glued CI line) is cut there
    first: evidence is for people, and the patterns stay linear. A private key's body
    on the following lines is masked only by :func:`mask_lines`.
    """
    return mask_lines([line])[0]
