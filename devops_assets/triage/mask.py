"""Replace secret-looking values in evidence lines by ``***``.

Masked: values after key-ish words (token, secret, password, api key, ...), bearer
and basic authorization, the password of ``user:password@host`` (in a URL or
without a scheme) and on ``docker login -p`` / ``curl -u``, known token shapes
(GitHub, Cloudflare's 40-character API tokens, AWS access key ids and bare secret
access keys, Slack, npm, Stripe, JWTs), whole private-key blocks (``mask_lines``:
from the BEGIN line to the END line), and long hex or base64 runs on a line that
names a key-ish word. A long run is masked only when it looks random: names (test,
class, file names, paths) and hex shas stay readable (see ``_name_like``).
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
    # Not a value: a masked one, a placeholder, a ``::`` scope or pytest node id, a
    # parenthesised location, or the ``line:col`` after a key-ish file name.
    r"(?P<value>[\"']?(?!\*\*\*|\[secure\]|<|\$\{|Bearer\b|Basic\b|[:(]"
    r"|\d+:\d+(?::\d+)?\)?(?![^\s\"',;]))[^\s\"',;]{6,}+)",
    re.I,
)
_AUTH = re.compile(r"(?P<key>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.I)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]*)(?::(?P<password>[^/\s@]*))?@", re.I
)
# ``user:password@host`` with no scheme (``git clone deploy:pw@git.example.com:org/r``,
# ``redis user:pw@10.0.0.1:6379``): the host must be a host name with a dotted
# alphabetic top level, an IPv4 or IPv6 address or ``localhost``, so ``npm:pkg@1.2.3``,
# ``12:34:56@foo`` and ``image:tag@sha256:…`` are no credentials.
_HOST = (
    r"(?:\[[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}|localhost"
    r"|(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z])"
)
_PLAIN_CREDENTIALS = re.compile(
    r"(?<![\w.:/@%+-])(?P<user>[A-Za-z_][\w.+-]{0,63}):(?P<password>[^\s:@/]{1,128})@"
    r"(?=" + _HOST + r"(?:[\s:/\"'),;\]>]|$))"
)
# ``Email:ann@example.com``, ``mailto:ann@…``, ``remote:git@github.com``: a label, then
# an address (its local part is no password).
_LABELS = frozenset(
    "mailto email e-mail mail from to cc bcc author committer maintainer contact sender "
    "reply-to owner by remote origin url uri repo repository host ssh sip sips xmpp tel".split()
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
    r"(?:AKIA|ASIA)[0-9A-Z]{16}|npm_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b"
)
# A Cloudflare API token: 40 characters of [A-Za-z0-9_-], needing no key word on the
# line. Only runs mixing upper case, lower case and digits (hex shas stay readable), and
# only random-looking ones (see ``_name_like``): long test and class names stay.
_TOKEN_RUN = re.compile(
    r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]*[A-Z])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*\d)"
    r"[A-Za-z0-9_-]{40,}+(?![A-Za-z0-9_-])"
)
# An AWS secret access key: exactly 40 characters of [A-Za-z0-9/+], alone on the line
# or after any key name. A run of that alphabet, checked in ``_aws_secret``; a run
# glued to a dotted or snake-case name (``a.b``, ``x_y``) or ending a file name is none.
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9/+_.-])[A-Za-z0-9/+]{40,}+(?![A-Za-z0-9/+_=-]|\.\w)")
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


# The pieces a name is made of: a word (``Mutation``, ``step``), a number, or a lone
# capital; a segment between separators written in capitals only (``HTTP2``) is one.
_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]|\d+")
_SEPARATORS = re.compile(r"[/+_.=-]+")
_CAPITALS = re.compile(r"[A-Z]{2,}\d*")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def _name_like(run: str) -> bool:
    """Whether a long run reads as a name (a test, class or file name, a path) rather
    than a random token: split at separators, case changes and digits, its pieces
    average three characters or more.

    ``test_rollout_step_2_of_4_handles_timeout`` averages 4.1,
    ``ShouldRetryUpstreamCallsOn503WhenGatewayTimesOut`` 4.8; a random 40-character
    token averages about 1.6 (3 or more for about 1 in 10,000), digits or not."""
    pieces = chars = 0
    for segment in _SEPARATORS.split(run):
        found = [segment] if _CAPITALS.fullmatch(segment) else _PIECE.findall(segment)
        pieces += len(found)
        chars += sum(map(len, found))
    return pieces > 0 and chars >= 3 * pieces


def _aws_secret(run: str) -> bool:
    """A 40-character run of [A-Za-z0-9/+] mixing upper case, lower case and digits
    (hex shas have no upper case) that does not read as a path or a name."""
    return (
        len(run) == 40
        and any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
        and not _name_like(run)
    )


def _token_like(user: str) -> bool:
    """A URL's user part that is a token (``https://<token>@github.com``)."""
    return len(user) >= 16 and _has_mixed(user)


def _url_credentials(match: re.Match[str]) -> str:
    user, password = match["user"], match["password"]
    shown = MASK if _token_like(user) else user
    if password is None:
        return f"{match['scheme']}{shown}@"
    return f"{match['scheme']}{shown}:{MASK if password else ''}@"


def _plain_credentials(match: re.Match[str]) -> str:
    user = match["user"]
    if user.lower() in _LABELS:
        return match[0]
    return f"{MASK if _token_like(user) else user}:{MASK}@"


def _long_run(match: re.Match[str]) -> str:
    """A 32+ character run on a line naming a key word: masked when it is a hex or
    base64 value; a name or path (``org/objectweb/asm/signature/SignatureReader``,
    ``test_auth_step_2_of_4_handles_timeout``) stays."""
    run = match[0]
    if not (_has_mixed(run) or len(run) >= 40):
        return run
    return MASK if _HEX.fullmatch(run) or not _name_like(run) else run


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
    line = _URL_CREDENTIALS.sub(_url_credentials, line)
    if "@" in line:
        line = _PLAIN_CREDENTIALS.sub(_plain_credentials, line)
    line = _AUTH.sub(lambda m: m["key"] + MASK, line)
    line = _SHAPES.sub(MASK, line)
    line = _ASSIGNED.sub(lambda m: m["key"] + MASK, line)
    if _LOGIN.search(line):
        line = _LOGIN_PASSWORD.sub(lambda m: m["key"] + MASK, line)
    if _HTTP_CLIENT.search(line):
        line = _USER_PASSWORD.sub(lambda m: m["key"] + MASK, line)
    line = _TOKEN_RUN.sub(lambda m: m[0] if _name_like(m[0]) else MASK, line)
    line = _BASE64_RUN.sub(lambda m: MASK if _aws_secret(m[0]) else m[0], line)
    if _KEYWORD.search(line):
        line = _LONG_RUN.sub(_long_run, line)
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
