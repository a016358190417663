"""Turn the Cloudflare API's JSON answers into records, or refuse them by name.

Every reader takes the endpoint label and the path of the object inside the
answer (``result.items[3]``), so a ``MalformedResponse`` says which endpoint
sent which field, what was expected and what came instead: a wrong type, a
number that is not finite, a time that does not exist in UTC. ``PageGuard``
ends a listing whose pages repeat themselves; ``deployment_kinds`` tells a
deployment from a rollback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from devops_assets.domain.models import BUILD_OUTCOMES, BUILD_STATUSES, Build, Deployment

_KINDS = {
    str: "a string",
    int: "an integer",
    dict: "an object",
    list: "an array",
    (int, float): "a number",
    bool: "true or false",
}


class CloudflareError(Exception):
    """A Cloudflare API call failed; the message names the endpoint and the API's error.

    ``quoted`` is what the API said (its error message), kept whole and shown after
    ``message`` cut at ``cap`` characters. The cut is made again after every ``hide``,
    so a secret the API quoted is hidden whole, never cut first and then missed.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        code=None,
        quoted: str | None = None,
        cap: int | None = None,
    ):
        super().__init__(message)
        self.endpoint, self.status, self.code = endpoint, status, code
        self.quoted, self._lead, self._cap = quoted, message, cap
        if quoted is not None:
            self.args = (self._text(),)

    def _text(self) -> str:
        said = self.quoted
        if self._cap is not None and len(said) > self._cap:
            said = f"{said[: self._cap]}… ({len(said)} characters)"
        return self._lead + said

    def hide(self, *secrets: str) -> None:
        """Write ``***`` for each of ``secrets`` in the text, and for any run of
        ``PIECE`` characters or more that is part of one (a value cut short by the
        API, or by a cap), and drop the exceptions chained to this one.

        The chained exceptions come from the SDK and httpx and may quote the
        answer; what they said that matters is already in this message.
        """
        secrets = tuple(s for s in secrets if s)
        if secrets:
            self.args = tuple(_hidden(arg, secrets) for arg in self.args)
            for name, value in list(vars(self).items()):
                setattr(self, name, _hidden(value, secrets))
            if self.quoted is not None:
                self.args = (self._text(),)
        self.__cause__ = self.__context__ = None
        self.__suppress_context__ = True


class MalformedResponse(CloudflareError):
    """An answer without the shape the API documents; names the endpoint and field."""

    def __init__(self, endpoint: str, field: str, expected: str, got: object = ...):
        self.field, self.expected = field, expected
        self.got = None if got is ... else repr(got)  # in full, so hide() sees a whole secret
        super().__init__(self._describe(endpoint), endpoint=endpoint)

    def _describe(self, endpoint: str) -> str:
        seen = "" if self.got is None else f", got {_short(self.got)}"
        return f"{endpoint}: malformed answer: '{self.field}': expected {self.expected}{seen}"

    def hide(self, *secrets: str) -> None:
        super().hide(*secrets)
        self.args = (self._describe(self.endpoint),)


def get_field(endpoint: str, obj: dict, key: str, kind, where: str = "", *, nullable=False):
    """``obj[key]`` when it has type ``kind``; else a MalformedResponse naming the field."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None and nullable:
        return None
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        field = f"{where}.{key}" if where else key
        present = isinstance(obj, dict) and key in obj
        raise MalformedResponse(
            endpoint, field, _KINDS.get(kind, str(kind)), value if present else ...
        )
    return value


def text_field(endpoint: str, obj: dict, key: str, where: str, default: str = "") -> str:
    """An optional string field; ``default`` when it is absent, null or empty."""
    return get_field(endpoint, obj, key, str, where, nullable=True) or default


def whole_number(endpoint: str, obj: dict, key: str, where: str) -> int:
    """An integer field; a fraction, NaN or infinity is refused."""
    value = get_field(endpoint, obj, key, (int, float), where)
    if isinstance(value, float) and not value.is_integer():
        raise MalformedResponse(endpoint, f"{where}.{key}", "a whole number", value)
    return int(value)


def percentage(endpoint: str, obj: dict, key: str, where: str) -> float:
    """A share of traffic from 0 to 100; NaN fails the comparison and is refused too."""
    value = get_field(endpoint, obj, key, (int, float), where)
    if not 0 <= value <= 100:
        raise MalformedResponse(endpoint, f"{where}.{key}", "a percentage from 0 to 100", value)
    return float(value)


def time_field(endpoint: str, obj: dict, key: str, where: str, *, nullable: bool = False):
    """An aware datetime from an ISO 8601 string field; a time without a zone is refused."""
    text = get_field(endpoint, obj, key, str, where, nullable=nullable)
    if text is None:
        return None
    value = _aware_time(text)
    if value is None:
        expected = "an ISO 8601 time with a zone, within the years 1 to 9999 in UTC"
        raise MalformedResponse(endpoint, f"{where}.{key}", expected, text)
    return value


def _aware_time(text: str) -> datetime | None:
    """``text`` as an aware datetime that also exists in UTC (year 1 +01:00 does not)."""
    try:
        value = datetime.fromisoformat(text)
        in_utc = value.astimezone(UTC) if value.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
    return value if in_utc is not None else None


def read_build(endpoint: str, raw: dict, where: str, worker: str) -> Build:
    """A Workers Builds build; ``worker`` names it, as the answer holds only its tag."""
    meta = get_field(endpoint, raw, "build_trigger_metadata", dict, where)
    meta_where = f"{where}.build_trigger_metadata"
    status, outcome = _build_state(endpoint, raw, where)
    return Build(
        build_uuid=get_field(endpoint, raw, "build_uuid", str, where),
        worker=worker,
        branch=get_field(endpoint, meta, "branch", str, meta_where),
        commit_sha=get_field(endpoint, meta, "commit_hash", str, meta_where),
        status=status,
        outcome=outcome,
        created_on=time_field(endpoint, raw, "created_on", where),
        started_on=time_field(endpoint, raw, "running_on", where, nullable=True),
        stopped_on=time_field(endpoint, raw, "stopped_on", where, nullable=True),
        trigger_source=text_field(endpoint, meta, "build_trigger_source", meta_where, "push"),
    )


def _build_state(endpoint: str, raw: dict, where: str) -> tuple[str, str | None]:
    """A build's status and outcome, each one of the documented values."""
    status = get_field(endpoint, raw, "status", str, where)
    outcome = get_field(endpoint, raw, "build_outcome", str, where, nullable=True)
    if status not in BUILD_STATUSES:
        raise MalformedResponse(endpoint, f"{where}.status", "a documented value", status)
    if outcome not in (*BUILD_OUTCOMES, None):
        raise MalformedResponse(endpoint, f"{where}.build_outcome", "a documented value", outcome)
    return status, outcome


def read_log_line(endpoint: str, line: object, where: str) -> tuple[int, str]:
    """One ``[epoch_ms, text]`` line of a build log."""
    if not (
        isinstance(line, list)
        and len(line) == 2
        and isinstance(line[1], str)
        and isinstance(line[0], int | float)
        and not isinstance(line[0], bool)
        and math.isfinite(line[0])
    ):
        raise MalformedResponse(endpoint, where, "[epoch_ms, text]", line)
    return int(line[0]), line[1]


def read_version(endpoint: str, raw: dict, where: str) -> dict:
    """A Worker version: id, number, created_on, source, author_email, annotations."""
    meta = get_field(endpoint, raw, "metadata", dict, where)
    meta_where = f"{where}.metadata"
    return {
        "id": get_field(endpoint, raw, "id", str, where),
        "number": whole_number(endpoint, raw, "number", where),
        "created_on": time_field(endpoint, meta, "created_on", meta_where),
        "source": text_field(endpoint, meta, "source", meta_where),
        "author_email": text_field(endpoint, meta, "author_email", meta_where),
        "annotations": get_field(endpoint, raw, "annotations", dict, where, nullable=True) or {},
    }


@dataclass(frozen=True)
class VersionDetail:
    """One Worker version with what it binds: ``GET …/versions/{id}`` read.

    ``bindings`` are the API's binding objects (``name``, ``type`` and the
    kind's fields; a secret has no value); ``triggered_by`` and ``message``
    are its ``workers/triggered_by`` and ``workers/message`` annotations.
    """

    id: str
    number: int
    created_on: datetime
    author_email: str
    source: str
    triggered_by: str
    message: str
    bindings: tuple[dict, ...]
    compatibility_date: str
    compatibility_flags: tuple[str, ...]


def read_version_detail(endpoint: str, raw: dict, where: str) -> VersionDetail:
    """A version with its ``resources``: bindings each with a string ``name`` and ``type``."""
    version = read_version(endpoint, raw, where)
    resources = get_field(endpoint, raw, "resources", dict, where)
    res_where = f"{where}.resources"
    items = get_field(endpoint, resources, "bindings", list, res_where, nullable=True) or []
    bindings = []
    for i, item in enumerate(items):
        item_where = f"{res_where}.bindings[{i}]"
        if not isinstance(item, dict):
            raise MalformedResponse(endpoint, item_where, "an object", item)
        get_field(endpoint, item, "name", str, item_where)
        get_field(endpoint, item, "type", str, item_where)
        bindings.append(dict(item))
    runtime = get_field(endpoint, resources, "script_runtime", dict, res_where, nullable=True)
    run_where = f"{res_where}.script_runtime"
    flags = get_field(
        endpoint, runtime or {}, "compatibility_flags", list, run_where, nullable=True
    )
    for i, flag in enumerate(flags or []):
        if not isinstance(flag, str):
            raise MalformedResponse(
                endpoint, f"{run_where}.compatibility_flags[{i}]", "a string", flag
            )
    notes = version["annotations"]
    return VersionDetail(
        id=version["id"],
        number=version["number"],
        created_on=version["created_on"],
        author_email=version["author_email"],
        source=version["source"],
        triggered_by=str(notes.get("workers/triggered_by") or ""),
        message=str(notes.get("workers/message") or ""),
        bindings=tuple(bindings),
        compatibility_date=text_field(endpoint, runtime or {}, "compatibility_date", run_where),
        compatibility_flags=tuple(flags or ()),
    )


# the settings fields other than bindings, each of this type when the answer holds it
SETTINGS_FIELDS = {
    "compatibility_date": str,
    "compatibility_flags": list,
    "usage_model": str,
    "limits": dict,
    "logpush": bool,
    "placement": dict,
    "tags": list,
    "tail_consumers": list,
}


def read_settings(endpoint: str, raw: dict, where: str) -> dict:
    """A Worker's settings: ``bindings`` must be a list of objects, each with a string
    ``type``, and every other field it holds (``SETTINGS_FIELDS``) of its type, flags
    and tags lists of strings. An answer without them is malformed, never "no
    bindings": read as empty, every binding of git would look missing."""
    bindings = get_field(endpoint, raw, "bindings", list, where)
    for i, item in enumerate(bindings):
        item_where = f"{where}.bindings[{i}]"
        if not isinstance(item, dict):
            raise MalformedResponse(endpoint, item_where, "an object", item)
        get_field(endpoint, item, "type", str, item_where)
    for key, kind in SETTINGS_FIELDS.items():
        value = get_field(endpoint, raw, key, kind, where, nullable=True)
        if key in ("compatibility_flags", "tags") and value is not None:
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise MalformedResponse(endpoint, f"{where}.{key}[{i}]", "a string", item)
    return raw


def read_deployment(endpoint: str, raw: dict, where: str) -> dict:
    """A Worker deployment; ``versions`` as ``(version_id, percentage)`` pairs."""
    notes = get_field(endpoint, raw, "annotations", dict, where, nullable=True) or {}
    notes_where = f"{where}.annotations"
    return {
        "id": get_field(endpoint, raw, "id", str, where),
        "created_on": time_field(endpoint, raw, "created_on", where),
        "source": text_field(endpoint, raw, "source", where),
        "author_email": text_field(endpoint, raw, "author_email", where),
        "message": text_field(endpoint, notes, "workers/message", notes_where),
        "triggered_by": text_field(endpoint, notes, "workers/triggered_by", notes_where),
        "versions": _version_shares(endpoint, raw, where),
    }


def _version_shares(endpoint: str, raw: dict, where: str) -> list[tuple[str, float]]:
    versions = get_field(endpoint, raw, "versions", list, where)
    if not versions:
        raise MalformedResponse(endpoint, f"{where}.versions", "one or two versions", versions)
    return [
        (
            get_field(endpoint, v, "version_id", str, f"{where}.versions[{i}]"),
            percentage(endpoint, v, "percentage", f"{where}.versions[{i}]"),
        )
        for i, v in enumerate(versions)
    ]


def rolled_out(raw: dict, numbers: dict[str, int]) -> tuple[str, float]:
    """The version a deployment is about, with its share: the only one, or of two
    (a gradual rollout step) the newer upload, which is the change going out even
    while it serves 10 %. Versions of unknown number fall back to the larger share."""
    versions = raw["versions"]
    if len(versions) == 1 or any(v not in numbers for v, _ in versions):
        return max(versions, key=lambda v: v[1])
    return max(versions, key=lambda v: numbers[v[0]])


def code_versions(versions: list[dict]) -> dict[str, str]:
    """For each version a secret change made (annotation ``workers/triggered_by:
    secret``), the version whose code it carries: the newest version below it
    that was not itself a secret change. ``versions/latest`` and ``secret put``
    copy the latest version, and version numbers count up by one per version."""
    code: dict[str, str] = {}
    last = None
    for version in sorted(versions, key=lambda v: v["number"]):
        if version["annotations"].get("workers/triggered_by") == "secret" and last is not None:
            code[version["id"]] = last
        else:
            last = version["id"]
    return code


def deployment_record(
    raw: dict,
    worker: str,
    environment: str,
    kind: str,
    commit_sha: str | None,
    rolled: tuple[str, float] | None = None,
) -> Deployment:
    """A Deployment from a read deployment; its version is ``rolled`` (see
    ``rolled_out``), else the largest share."""
    version_id, share = rolled or max(raw["versions"], key=lambda v: v[1])
    return Deployment(
        deployment_id=raw["id"],
        worker=worker,
        environment=environment,
        created_on=raw["created_on"],
        version_id=version_id,
        percentage=share,
        commit_sha=commit_sha,
        kind=kind,
        author_email=raw["author_email"],
        message=raw["message"],
    )


def deployment_kinds(
    deployments: list[dict], majors: list[tuple[str, float]], numbers: dict[str, int]
) -> list[str]:
    """``deploy`` or ``rollback`` for each deployment, oldest first.

    A rollback is what the API annotates so, or a deployment whose 100 %
    version is older (lower number) than the version that served just before.
    """
    kinds, previous = [], None
    for raw, (version_id, share) in zip(deployments, majors, strict=True):
        number = numbers.get(version_id)
        older = share >= 100 and None not in (number, previous) and number < previous
        kinds.append("rollback" if raw["triggered_by"] == "rollback" or older else "deploy")
        previous = number
    return kinds


class PageGuard:
    """Ends a page-based listing that would never end.

    A page that announces more but brings no item not already seen (the API
    repeating itself) is malformed; so many pages that ``max_pages`` is
    reached is refused as well.
    """

    def __init__(self, max_pages: int):
        self.max_pages, self.seen = max_pages, set()

    def more(self, endpoint: str, body: dict, page: int, per_page: int, ids: list[str]) -> bool:
        """Whether to ask for page ``page + 1``, after page ``page`` brought ``ids``."""
        new = set(ids) - self.seen
        self.seen |= new
        if not more_pages(body, page, per_page, len(ids)):
            return False
        if not new:
            expected = f"no further page after page {page}, which brought no new item"
            raise MalformedResponse(endpoint, "result_info", expected)
        if page >= self.max_pages:
            raise CloudflareError(
                f"{endpoint}: more pages announced after {self.max_pages} pages; stopped paging "
                "(the limit is CloudflareClient's max_pages)",
                endpoint=endpoint,
            )
        return True


def more_pages(body: dict, page: int, per_page: int, count: int) -> bool:
    """Whether a page-based list goes on: ``next_page``, else ``total_count``, else a full page."""
    info = body.get("result_info")
    if isinstance(info, dict) and isinstance(info.get("next_page"), bool):
        return info["next_page"]
    if isinstance(info, dict) and isinstance(info.get("total_count"), int):
        return page * per_page < info["total_count"]
    return count >= per_page > 0


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


PIECE = 8  # characters: a run this long that is part of a secret is hidden too


def _forms(secret: str) -> set[str]:
    """``secret`` as written, and as quoted in a Python or JSON string literal (a
    backslash, quote or non-ASCII letter is escaped there), and in a repr of that."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    forms |= {json.dumps(secret, ensure_ascii=False)[1:-1]}
    return forms | {repr(form)[1:-1] for form in list(forms)}


def _hidden(value, secrets: tuple[str, ...]):
    """``value`` with each secret written ``***`` (in any of its ``_forms``), then every
    run of ``PIECE`` characters or more whose windows of ``PIECE`` characters are all
    part of a secret (a prefix or fragment of a value that was cut) written ``***``."""
    if not isinstance(value, str):
        return value
    forms = set().union(*(_forms(s) for s in secrets))
    for form in sorted(forms, key=len, reverse=True):
        value = value.replace(form, "***")
    pieces = {f[i : i + PIECE] for f in forms for i in range(len(f) - PIECE + 1)}
    if not pieces:
        return value
    covered = [False] * len(value)
    for i in range(len(value) - PIECE + 1):
        if value[i : i + PIECE] in pieces:
            covered[i : i + PIECE] = [True] * PIECE
    if not any(covered):
        return value
    out, i = [], 0
    while i < len(value):
        if covered[i]:
            while i < len(value) and covered[i]:
                i += 1
            out.append("***")
        else:
            out.append(value[i])
            i += 1
    return "".join(out)
