"""Turn the Cloudflare API's JSON answers into records, or refuse them by name.

Every reader takes the endpoint label and the path of the object inside the
answer (``result.items[3]``), so a ``MalformedResponse`` says which endpoint
sent which field, what was expected and what came instead.
"""

from __future__ import annotations

from datetime import datetime

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
    """A Cloudflare API call failed; the message names the endpoint and the API's error."""

    def __init__(self, message: str, *, endpoint: str = "", status: int | None = None, code=None):
        super().__init__(message)
        self.endpoint, self.status, self.code = endpoint, status, code


class MalformedResponse(CloudflareError):
    """An answer without the shape the API documents; names the endpoint and field."""

    def __init__(self, endpoint: str, field: str, expected: str, got: object = ...):
        seen = "" if got is ... else f", got {_short(got)}"
        super().__init__(
            f"{endpoint}: malformed answer: '{field}': expected {expected}{seen}", endpoint=endpoint
        )
        self.field = field


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


def time_field(endpoint: str, obj: dict, key: str, where: str, *, nullable: bool = False):
    """An aware datetime from an ISO 8601 string field; a time without a zone is refused."""
    text = get_field(endpoint, obj, key, str, where, nullable=nullable)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise MalformedResponse(endpoint, f"{where}.{key}", "an ISO 8601 time with a zone", text)
    return value


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
        trigger_source=meta.get("build_trigger_source") or "push",
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
    ):
        raise MalformedResponse(endpoint, where, "[epoch_ms, text]", line)
    return int(line[0]), line[1]


def read_version(endpoint: str, raw: dict, where: str) -> dict:
    """A Worker version: id, number, created_on, source, author_email, annotations."""
    meta = get_field(endpoint, raw, "metadata", dict, where)
    return {
        "id": get_field(endpoint, raw, "id", str, where),
        "number": int(get_field(endpoint, raw, "number", (int, float), where)),
        "created_on": time_field(endpoint, meta, "created_on", f"{where}.metadata"),
        "source": meta.get("source") or "",
        "author_email": meta.get("author_email") or "",
        "annotations": get_field(endpoint, raw, "annotations", dict, where, nullable=True) or {},
    }


def read_deployment(endpoint: str, raw: dict, where: str) -> dict:
    """A Worker deployment; ``versions`` as ``(version_id, percentage)`` pairs."""
    notes = get_field(endpoint, raw, "annotations", dict, where, nullable=True) or {}
    return {
        "id": get_field(endpoint, raw, "id", str, where),
        "created_on": time_field(endpoint, raw, "created_on", where),
        "source": raw.get("source") or "",
        "author_email": raw.get("author_email") or "",
        "message": notes.get("workers/message") or "",
        "triggered_by": notes.get("workers/triggered_by") or "",
        "versions": _version_shares(endpoint, raw, where),
    }


def _version_shares(endpoint: str, raw: dict, where: str) -> list[tuple[str, float]]:
    versions = get_field(endpoint, raw, "versions", list, where)
    if not versions:
        raise MalformedResponse(endpoint, f"{where}.versions", "one or two versions", versions)
    return [
        (
            get_field(endpoint, v, "version_id", str, f"{where}.versions[{i}]"),
            float(get_field(endpoint, v, "percentage", (int, float), f"{where}.versions[{i}]")),
        )
        for i, v in enumerate(versions)
    ]


def deployment_record(
    raw: dict, worker: str, environment: str, kind: str, commit_sha: str | None
) -> Deployment:
    """A Deployment from a read deployment; its version is the largest share."""
    version_id, share = max(raw["versions"], key=lambda v: v[1])
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


def more_pages(body: dict, page: int, per_page: int, count: int) -> bool:
    """Whether a page-based list goes on: ``next_page``, else ``total_count``, else a full page."""
    info = body.get("result_info")
    if isinstance(info, dict) and isinstance(info.get("next_page"), bool):
        return info["next_page"]
    if isinstance(info, dict) and isinstance(info.get("total_count"), int):
        return page * per_page < info["total_count"]
    return count >= per_page > 0


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
