"""Replace secret-looking values in evidence lines by ``***``.

Masked: values after key-ish words (token, secret, password, passphrase, api key,
...; a quoted value up to its closing quote), bearer and basic authorization, the
password of ``user:password@host`` (in a URL or without a scheme) and on ``docker login
-p`` / ``curl -u``, known token shapes (GitHub, Cloudflare's 40-character API tokens,
AWS access key ids and bare secret access keys, Slack, npm, Stripe, JWTs, the secret
part of Slack and Discord webhook URLs), long base64 values (``AccountKey=…==``), whole
private-key blocks, PEM or PGP (``mask_lines``: from the BEGIN line to the END line,
body lines behind a BuildKit or timestamp prefix too), the second half of a token
wrapped onto the next line, and long hex or base64 runs on a line that names a key-ish
word. A long run is masked only when it looks random: names (test, class, file names,
paths) and hex shas stay readable (see ``_name_like``); so do names after a key word
(``secret: DATABASE_URL``, ``secretsmanager:GetSecretValue``, ``Unexpected token:
keyword``, turbo's ``auth-service:build:``; see ``_assigned``).
Terminal colour codes are taken out before matching, so a colour change inside a
value cannot hide it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from devops_assets.triage.normalise import strip_ansi

MASK = "***"

_KEYISH = (
    r"(?:api[_-]?key|api[_-]?token|access[_-]?key(?:[_-]?id)?|secret(?:[_-]?access)?[_-]?key|"
    r"client[_-]?secret|secret|token|passw(?:or)?d|passwd|pwd|pass[_-]?phrase|auth(?:orization)?|"
    r"credentials?|private[_-]?key|signing[_-]?key|session[_-]?key|account[_-]?key|"
    r"shared[_-]?access[_-]?key|cookie)"
)
# Not a value: a masked one, a placeholder, a ``::`` scope or pytest node id, a
# parenthesised location, or the ``line:col`` after a key-ish file name.
_NOT_A_VALUE = (
    r"(?!\*\*\*|\[secure\]|<|\$\{|Bearer\b|Basic\b|[:(]"
    r"|\d+:\d+(?::\d+)?\)?(?![^\s\"',;]))"
)
# The name of a variable in capitals, told after a colon or a space (``Missing required
# secret: DATABASE_URL``, ``token: NPM_TOKEN``): no digits, and never after ``=``, where
# a value in capitals (``DB_PASSWORD=CHANGE_ME_123``) is a value.
# After a password word only letters (``server-password: GITHUB_TOKEN``; ``password:
# HUNTER_2`` is a password); after the others digits too (``secret: MY_SECRET_2``).
_CAPITALS_NAME = re.compile(r"[A-Z]{2,}\d*(?:[_-](?:[A-Z]{2,}\d*|\d+))+")
_LETTERS_NAME = re.compile(r"[A-Z]{2,}(?:[_-][A-Z]{2,})+")
_PASSWORD_WORD = re.compile(r"passw(?:or)?d|passwd|pwd|pass[_-]?phrase", re.I)
# A short password assigned with ``=`` (``password=abc``): shorter than the six
# characters other values need, still a password.
_SHORT_PASSWORD = re.compile(
    r"(?P<key>(?<![\w.-])[\w.-]{0,40}?(?:passw(?:or)?d|passwd|pwd)\s*=\s*)"
    r"(?P<value>[^\s\"',;*]{1,5})(?=[\s\"',;]|$)",
    re.I,
)
# A quoted value runs to its closing quote (``password="hunter 2 horse"``); an unquoted
# one to the next space, quote, comma or semicolon.
_QUOTED = r"(?P<quote>[\"'])" + _NOT_A_VALUE + r"(?:\\.|(?!(?P=quote))[^\\\n]){6,200}+(?P=quote)"
_UNQUOTED = r"[\"']?" + _NOT_A_VALUE + r"[^\s\"',;]{6,}+"
_ASSIGNED = re.compile(
    r"(?P<key>(?:--)?(?<![\w.-])[\w.-]{0,40}?" + _KEYISH + r"[\w.-]{0,40}+[\"']?"
    r"(?P<sep>\s*[=:]\s*|(?<=[a-z])\s+(?=\S*\d)))"
    r"(?P<value>" + _QUOTED + "|" + _UNQUOTED + ")",
    re.I,
)
# Values after a key word that are no secrets (see ``_assigned``): an IAM action after a
# service name (``secretsmanager:GetSecretValue``), an error class (``Invalid token:
# JsonWebTokenError``), a command (``secret: wrangler secret put NAME``) and a turbo task
# prefix (``auth-service:typecheck: src/a.ts``).
_IAM_ACTION = re.compile(r"(?:[A-Z][a-z0-9]+)+\*?")
_ERROR_CLASS = re.compile(r"(?:[A-Z][a-z0-9]+)+(?:Error|Exception)")
_TASK = re.compile(r"[a-z][a-z0-9-]*(?::[a-z][a-z0-9-]*)*:?")
_COMMANDS = frozenset(
    "wrangler npx pnpm yarn bunx gh aws gcloud az kubectl helm vault doppler op echo printf "
    "export heroku vercel netlify flyctl terraform".split()
)
# A name glued to its colon that names a service or package, not a secret: the key word
# inside it is followed by more (``secretsmanager``, ``auth-service``; not ``db-password``).
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]*")
_ENDS_IN_KEY_WORD = re.compile(_KEYISH + r"s?$", re.I)
_UNEXPECTED = re.compile(r"\bunexpected\s+$", re.I)
# A Slack or Discord webhook: the path's last part is the secret.
_WEBHOOK = re.compile(
    r"(?P<key>\bhooks\.slack\.com/(?:services|workflows|triggers)/(?:[A-Za-z0-9]+/){1,3}"
    r"|\bdiscord(?:app)?\.com/api/webhooks/\d+/)(?P<value>[A-Za-z0-9_-]{8,})"
)
_AUTH = re.compile(r"(?P<key>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.I)
# ``user:password@host`` with no scheme (``git clone deploy:pw@git.example.com:org/r``,
# ``redis user:pw@10.0.0.1:6379``): the host must be a host name with a dotted
# alphabetic top level, an IPv4 or IPv6 address or ``localhost``, so ``npm:pkg@1.2.3``,
# ``12:34:56@foo`` and ``image:tag@sha256:…`` are no credentials.
_HOST = (
    r"(?:\[[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}|localhost"
    r"|(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z])"
)
# A URL's password may hold a ``/`` (``postgres://bob:pa/ss@db.example.com``) when a host
# follows the ``@`` and it does not start with a port (``https://host:8080/a@b``).
_HOST_ENDS = r"(?:[\s:/\"'),;\]>]|$)"
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]*)(?::(?P<password>[^/\s@]*+"
    r"|(?!\d*/)[^\s@]{1,128}+(?=@" + _HOST + _HOST_ENDS + r")))?@",
    re.I,
)
_PLAIN_CREDENTIALS = re.compile(
    r"(?<![\w.:/@%+-])(?P<user>[A-Za-z_][\w.+-]{0,63}):(?P<password>[^\s:@/]{1,128})@"
    r"(?=" + _HOST + _HOST_ENDS + r")"
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
# A longer run is a base64 value (``AccountKey=…tq/K1SZ…GMGw==``) when it has a ``/`` or
# ``+`` or ends in ``=`` padding; see ``_base64``.
_BASE64_RUN = re.compile(
    r"(?<![A-Za-z0-9/+_.-])[A-Za-z0-9/+]{40,}+(?:={1,2}(?![\w=]))?+(?![A-Za-z0-9/+_=-]|\.\w)"
)
# PEM keys (``-----BEGIN RSA PRIVATE KEY-----``) and PGP ones (``-----BEGIN PGP PRIVATE
# KEY BLOCK-----``).
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----")
_PRIVATE_KEY = re.compile(_KEY_BEGIN.pattern + r".*?(?:" + _KEY_END.pattern + r"|$)")
# A line inside a key block: base64 (a run of 16+, or the whole line), a PEM or PGP
# armour header, a PGP checksum (``=AbCd``), blank.
_KEY_MATERIAL = re.compile(
    r"^\s*[\"']?[A-Za-z0-9+/]+={0,2}(?:\\n)?[\"']?,?\s*$|^\s*=[A-Za-z0-9+/]{4}\s*$"
    r"|^\s*(?:Proc-Type|DEK-Info|Version|Comment|Hash|Charset|MessageID):|^\s*$"
)
# What a CI tool may print before every line of a block: a BuildKit step and time
# (``#7 0.215``), a timestamp (``2024-05-01T10:00:00.123Z``, ``[10:00:00]``).
_LOG_PREFIX = re.compile(
    r"(?:\#\d+\s+\d+(?:\.\d+)?\s+"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\s+"
    r"|\[?\d\d:\d\d:\d\d(?:[.,]\d+)?\]?\s+)+"
)
_PREFIX_PART = re.compile(r"(\d+)|(\s+)|(.)", re.S)
# A base64 field ending a line (the body of a key behind some prefix), for the walk back
# in ``_state_after``.
_BASE64_FIELD = re.compile(r"[\"']?[A-Za-z0-9+/]{16,}={0,2}(?:\\n)?[\"']?,?|=[A-Za-z0-9+/]{4}")
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


def _base64(match: re.Match[str]) -> str:
    """An AWS secret access key (40 characters), or a longer base64 value: one with a
    ``/`` or ``+`` or ``=`` padding, mixing upper case, lower case and digits, that does
    not read as a path or a name."""
    run = match[0]
    if _aws_secret(run):
        return MASK
    if len(run) > 40 and (run.endswith("=") or "/" in run or "+" in run):
        body = run.rstrip("=")
        if _mixed_case(body) and not _name_like(body):
            return MASK
    return run


def _mixed_case(value: str) -> bool:
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    )


def _authorization(match: re.Match[str]) -> str:
    """``Bearer …``, ``Basic …``, ``Token …`` masked, but not the source text a parser
    did not expect (``SyntaxError: Unexpected token function``)."""
    if _UNEXPECTED.search(match.string, max(0, match.start() - 20), match.start()):
        return match[0]
    return match["key"] + MASK


def _assigned(match: re.Match[str]) -> str:
    """The value after a key word masked, unless it is no secret: the token a parser
    did not expect (``Unexpected token: keyword (const)``), an IAM action
    (``secretsmanager:GetSecretValue``), an error class (``Invalid token:
    JsonWebTokenError``), a command (``secret: wrangler secret put NAME``), a turbo task
    prefix (``auth-service:typecheck: …``)."""
    key, value = match["key"], match["value"]
    if _UNEXPECTED.search(match.string, max(0, match.start() - 20), match.start()):
        return match[0]
    quote = match["quote"]
    word = value.strip("\"'`")
    if _ERROR_CLASS.fullmatch(word) or (not quote and word.lower() in _COMMANDS):
        return match[0]
    if "=" not in match["sep"]:
        names = _LETTERS_NAME if _PASSWORD_WORD.search(key) else _CAPITALS_NAME
        if names.fullmatch(word):
            return match[0]
    name = key[:-1]
    if match["sep"] == ":" and _SERVICE_NAME.fullmatch(name) and not _ENDS_IN_KEY_WORD.search(name):
        # ``service:Action`` / ``package:task:`` (``password:Hunter`` stays a password).
        end = match.end()
        if _IAM_ACTION.fullmatch(value) or (
            _TASK.fullmatch(value) and (end == len(match.string) or match.string[end].isspace())
        ):
            return match[0]
    if quote:
        return f"{key}{quote}{MASK}{quote}"
    return key + MASK


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
    line = _WEBHOOK.sub(lambda m: m["key"] + MASK, line)
    line = _URL_CREDENTIALS.sub(_url_credentials, line)
    if "@" in line:
        line = _PLAIN_CREDENTIALS.sub(_plain_credentials, line)
    line = _AUTH.sub(_authorization, line)
    line = _SHAPES.sub(MASK, line)
    line = _ASSIGNED.sub(_assigned, line)
    line = _SHORT_PASSWORD.sub(lambda m: m["key"] + MASK, line)
    if _LOGIN.search(line):
        line = _LOGIN_PASSWORD.sub(lambda m: m["key"] + MASK, line)
    if _HTTP_CLIENT.search(line):
        line = _USER_PASSWORD.sub(lambda m: m["key"] + MASK, line)
    line = _BASE64_RUN.sub(_base64, line)
    line = _TOKEN_RUN.sub(lambda m: m[0] if _name_like(m[0]) else MASK, line)
    if _KEYWORD.search(line):
        line = _LONG_RUN.sub(_long_run, line)
    return line


@dataclass(frozen=True)
class _State:
    """What a line leaves open for the next one: a private-key block (and the prefix
    its lines carry, from the BEGIN line), or a value masked up to the end of the line
    (a token the log wrapped onto the next line)."""

    inside_key: bool = False
    prefix: re.Pattern[str] | None = None
    open_value: bool = False


_OUTSIDE = _State()


def _prefix_shape(head: str) -> re.Pattern[str] | None:
    """The text before ``-----BEGIN`` (``#7 0.215 ``, ``web-1  | ``) as a pattern the
    block's body lines start with: numbers may change, spaces may widen."""
    if not head.strip() or len(head) > 80:
        return None
    parts = []
    for digits, spaces, other in _PREFIX_PART.findall(head):
        parts.append(r"\d+" if digits else r"\s+" if spaces else re.escape(other))
    return re.compile("".join(parts))


def _key_material(plain: str, prefix: re.Pattern[str] | None) -> str | None:
    """How a line inside a key block is shown, or None when it is no key material: a
    body line behind a prefix (the BEGIN line's, or a BuildKit step or a timestamp)
    keeps that prefix."""
    if _KEY_MATERIAL.search(plain):
        return MASK
    for pattern in (prefix, _LOG_PREFIX):
        found = pattern.match(plain) if pattern is not None else None
        if found and found.end() and _KEY_MATERIAL.search(plain[found.end() :]):
            return _mask_plain(found[0]) + MASK
    return None


# A token wrapped onto the next line: that line is one word, maybe behind a prefix.
_TAIL = re.compile(r"(?P<prefix>" + _LOG_PREFIX.pattern + r")?(?P<tail>[A-Za-z0-9_+/=~.-]{4,200})")


def _wrapped_tail(plain: str) -> str | None:
    """The line masked when it is the rest of a token the line before ended with: one
    word that does not read as a name and has a digit or mixes case."""
    found = _TAIL.fullmatch(plain)
    if found is None:
        return None
    tail = found["tail"]
    has_digit = any(c.isdigit() for c in tail)
    mixed = any(c.isupper() for c in tail) and any(c.islower() for c in tail)
    if (has_digit or mixed) and not _name_like(tail):
        return (found["prefix"] or "") + MASK
    return None


def _mask_one(line: str, state: _State) -> tuple[str, _State]:
    """(masked line, what it leaves open for the next line)."""
    line = _cut(line)
    plain = strip_ansi(line)
    if state.inside_key:
        end = _KEY_END.search(plain)
        if end is None:
            shown = _key_material(plain, state.prefix)
            if shown is not None:
                return shown, state
            # No END line came (a cut log): a line that is no key material ends the block,
            # so the failure after it stays readable.
            return _mask_one(line, _OUTSIDE)
        # The block's body runs up to its END line; what follows is masked as usual.
        head = plain[: end.start()]
        kept = ""
        if head.strip() and any(
            p is not None and p.fullmatch(head) for p in (state.prefix, _LOG_PREFIX)
        ):
            kept = _mask_plain(head)
        masked, after = _mask_one(plain[end.end() :], _OUTSIDE)
        return kept + MASK + masked, after
    if state.open_value:
        shown = _wrapped_tail(plain)
        if shown is not None:
            return shown, _State(open_value=True)
    masked = _mask_plain(plain)
    begins = list(_KEY_BEGIN.finditer(plain))
    ends = list(_KEY_END.finditer(plain))
    if begins and (not ends or begins[-1].start() > ends[-1].start()):
        return masked, _State(inside_key=True, prefix=_prefix_shape(plain[: begins[-1].start()]))
    # A value masked up to the end of the line may go on on the next one.
    after = _State(open_value=masked.endswith(MASK) and not plain.endswith(MASK))
    # Colours are kept on a line with nothing to mask.
    return (line if masked == plain else masked), after


def mask_lines(lines: Iterable[str], *, before: Sequence[str] = ()) -> list[str]:
    """``lines`` masked one by one, and every line of a private-key block (from its
    ``-----BEGIN … PRIVATE KEY-----`` or ``… PRIVATE KEY BLOCK-----`` line to its END
    line) replaced by ``***`` (a prefix the lines carry, ``#7 0.215 ``, stays); a line
    that is one random-looking word right after a line ending in a masked value is the
    rest of that value and masked too.

    ``before``: the lines preceding ``lines`` in the log (only read to know whether
    the first line is inside a key block or continues a masked value).
    """
    state = _state_after(before)
    out: list[str] = []
    for line in lines:
        pieces = []
        for piece in line.split("\n"):
            masked, state = _mask_one(piece, state)
            pieces.append(masked)
        out.append("\n".join(pieces))
    return out


_WALK_BACK = 1000


def _state_after(lines: Sequence[str]) -> _State:
    """What ``lines`` leave open: walking back over what may be key material (behind a
    prefix too), the first other line opens a block or does not; the lines from there
    are then followed forward."""
    start = None
    for index in range(len(lines) - 1, max(-1, len(lines) - 1 - _WALK_BACK), -1):
        plain = strip_ansi(lines[index])
        if "-----" in plain and (_KEY_BEGIN.search(plain) or _KEY_END.search(plain)):
            start = index
            break
        if not _maybe_key_material(plain):
            break
    if start is None:
        start = max(0, len(lines) - 1)
    state = _OUTSIDE
    for line in lines[start:]:
        for piece in line.split("\n"):
            state = _mask_one(piece, state)[1]
    return state


def _maybe_key_material(plain: str) -> bool:
    """Whether a line may lie inside a key block, whatever prefix it carries."""
    if _KEY_MATERIAL.search(plain) or _LOG_PREFIX.fullmatch(plain.rstrip() + " "):
        return True
    head, _, last = plain.strip().rpartition(" ")
    return len(head) <= 80 and _BASE64_FIELD.fullmatch(last) is not None


def mask(line: str) -> str:
    """``line`` with every secret-looking value replaced by ``***``.

    A line longer than ``MAX_CHARS`` (a minified bundle, a glued CI line) is cut there
    first: evidence is for people, and the patterns stay linear. A private key's body
    on the following lines is masked only by :func:`mask_lines`.
    """
    return mask_lines([line])[0]
