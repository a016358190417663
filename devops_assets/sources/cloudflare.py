"""The Cloudflare API: Workers Builds, versions and deployments of our workers.

Built on the official ``cloudflare`` SDK. Token verification uses its typed
method; everything else goes through its raw request method
(``client.get(path, cast_to=httpx.Response)``), because the SDK (5.9) has no
Workers Builds resource, its typed deployments list reads ``result.items``
while the API answers ``result.deployments``, and its typed models are built
without validation, so a malformed answer would pass unnoticed.

Retries are ours (the SDK's are turned off): a 429 is retried after its
``Retry-After`` (or the backoff), a 5xx or a lost connection on a read after
``backoff_seconds * 2**attempt``; a POST is retried only on 429. Every other
4xx, 408 and 409 included, fails at once. Errors name the endpoint's path
template, its ids and the API's error code, never the token. Lists come back
newest first, as the API serves them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from urllib.parse import quote

import cloudflare
import httpx

from devops_assets.config import CloudflareSettings
from devops_assets.domain.models import BUILD_OUTCOMES, BUILD_STATUSES, Build, Deployment

log = logging.getLogger(__name__)

BUILDS = "/accounts/{account_id}/builds/workers/{worker_tag}/builds"
BUILD = "/accounts/{account_id}/builds/builds/{build_uuid}"
BUILD_LOGS = "/accounts/{account_id}/builds/builds/{build_uuid}/logs"
BUILDS_BY_VERSION = "/accounts/{account_id}/builds/builds"
VERSIONS = "/accounts/{account_id}/workers/scripts/{script_name}/versions"
DEPLOYMENTS = "/accounts/{account_id}/workers/scripts/{script_name}/deployments"
EMULATOR_BASE = "emulator:"
EMULATOR_URL = "http://emulator.invalid/client/v4"  # never resolved: the transport is in-process
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After fails at once, as Wrangler does
VERSION_BATCH = 20
VERSIONS_PER_PAGE = 100
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


class CloudflareClient:
    """Reads (and creates deployments in) one Cloudflare account."""

    def __init__(
        self,
        account_id: str,
        api_token: str,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        timeout: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not api_token:
            raise CloudflareError("CloudflareClient: api_token is empty; a token is required")
        self.account_id, self.base_url = account_id, base_url.rstrip("/")
        self.max_retries, self.backoff_seconds, self._sleep = max_retries, backoff_seconds, sleep
        http = httpx.Client(transport=transport, timeout=timeout)
        self._sdk = cloudflare.Cloudflare(
            api_token=api_token,
            base_url=self.base_url,
            http_client=http,
            max_retries=0,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"CloudflareClient(account_id={self.account_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._sdk.close()

    # -- Workers Builds --------------------------------------------------------

    def list_builds(
        self,
        worker: str,
        worker_tag: str,
        *,
        newer_than: datetime | None = None,
        per_page: int = 50,
    ) -> list[Build]:
        """Builds of one worker created after ``newer_than`` (all when None).

        Pages newest first and stops at the first page that reaches a build
        created at or before ``newer_than``, so an incremental run asks only
        for what is new. A naive ``newer_than`` is taken as UTC.
        """
        if newer_than is not None and newer_than.tzinfo is None:
            newer_than = newer_than.replace(tzinfo=UTC)
        found: dict[str, Build] = {}
        page = 1
        while True:
            params = {"page": page, "per_page": per_page}
            endpoint, body = self._request("GET", BUILDS, params, worker_tag=worker_tag)
            items = _get(endpoint, body, "result", list)
            builds = [_build(endpoint, raw, f"result[{i}]", worker) for i, raw in enumerate(items)]
            fresh = [b for b in builds if newer_than is None or b.created_on > newer_than]
            for build in fresh:
                found.setdefault(build.build_uuid, build)
            if len(fresh) < len(builds) or not _more_pages(body, page, per_page, len(items)):
                break
            page += 1
        log.info(
            "Fetched %d builds of %s in %d pages (newer than %s)",
            len(found),
            worker,
            page,
            newer_than,
        )
        return sorted(found.values(), key=lambda b: b.created_on, reverse=True)

    def get_build(self, build_uuid: str, worker: str) -> Build:
        endpoint, body = self._request("GET", BUILD, build_uuid=build_uuid)
        return _build(endpoint, _get(endpoint, body, "result", dict), "result", worker)

    def build_log(self, build_uuid: str) -> list[tuple[int, str]]:
        """Every ``(epoch_ms, text)`` line of a build, following the cursor."""
        lines: list[tuple[int, str]] = []
        cursor, seen = None, set()
        while True:
            params = {"cursor": cursor} if cursor else None
            endpoint, body = self._request("GET", BUILD_LOGS, params, build_uuid=build_uuid)
            result = _get(endpoint, body, "result", dict)
            for i, line in enumerate(_get(endpoint, result, "lines", list, "result")):
                lines.append(_log_line(endpoint, line, f"result.lines[{i}]"))
            if result.get("truncated") is not True:
                return lines
            cursor = result.get("cursor")
            if not isinstance(cursor, str) or cursor in seen:
                raise MalformedResponse(endpoint, "result.cursor", "a new cursor", cursor)
            seen.add(cursor)

    def builds_for_versions(self, version_ids: list[str], *, worker: str = "") -> dict[str, Build]:
        """Version id → the build that uploaded it, asked 20 ids at a time.

        ``worker`` names the builds' worker; without it the build's worker tag
        (``trigger.external_script_id``) stands in.
        """
        found: dict[str, Build] = {}
        unique = list(dict.fromkeys(version_ids))
        for start in range(0, len(unique), VERSION_BATCH):
            params = {"version_ids": ",".join(unique[start : start + VERSION_BATCH])}
            endpoint, body = self._request("GET", BUILDS_BY_VERSION, params)
            result = _get(endpoint, body, "result", dict)
            for version_id, raw in _get(endpoint, result, "builds", dict, "result").items():
                name = worker or str((raw.get("trigger") or {}).get("external_script_id", ""))
                found[version_id] = _build(endpoint, raw, f"result.builds.{version_id}", name)
        return found

    # -- Workers versions and deployments --------------------------------------

    def list_versions(self, script_name: str) -> list[dict]:
        """Versions of a script: id, number, created_on, source, author_email, annotations."""
        records, page = [], 1
        while True:
            params = {"page": page, "per_page": VERSIONS_PER_PAGE}
            endpoint, body = self._request("GET", VERSIONS, params, script_name=script_name)
            items = _get(endpoint, _get(endpoint, body, "result", dict), "items", list, "result")
            records += [_version(endpoint, v, f"result.items[{i}]") for i, v in enumerate(items)]
            if not _more_pages(body, page, VERSIONS_PER_PAGE, len(items)):
                return records
            page += 1

    def list_deployments(self, script_name: str) -> list[dict]:
        """Deployments of a script: id, created_on, source, author_email, message,
        triggered_by and versions as ``(version_id, percentage)``."""
        endpoint, body = self._request("GET", DEPLOYMENTS, script_name=script_name)
        result = _get(endpoint, body, "result", dict)
        items = _get(endpoint, result, "deployments", list, "result")
        return [_deployment(endpoint, d, f"result.deployments[{i}]") for i, d in enumerate(items)]

    def worker_deployments(
        self, worker: str, worker_tag: str, environment: str
    ) -> list[Deployment]:
        """Deployments of ``worker`` with the commit each one serves, newest first.

        The commit is the one the build of the deployment's largest-share
        version names. A deployment is a rollback when the API annotates it so,
        or when its 100 % version is older (lower number) than the version that
        served just before it. ``worker_tag`` is kept for the worker's identity:
        these endpoints address the worker by name.
        """
        deployments = sorted(self.list_deployments(worker), key=lambda d: d["created_on"])
        numbers = {v["id"]: v["number"] for v in self.list_versions(worker)}
        majors = [max(d["versions"], key=lambda v: v[1]) for d in deployments]
        builds = self.builds_for_versions(sorted({vid for vid, _ in majors}), worker=worker)
        records, previous = [], None
        for raw, (version_id, share) in zip(deployments, majors, strict=True):
            number = numbers.get(version_id)
            older = share >= 100 and None not in (number, previous) and number < previous
            kind = "rollback" if raw["triggered_by"] == "rollback" or older else "deploy"
            build = builds.get(version_id)
            sha = build.commit_sha if build else None
            records.append(_deployment_record(raw, worker, environment, kind, sha))
            previous = number
        rollbacks = sum(r.kind == "rollback" for r in records)
        log.info(
            "%s (%s, tag %s): %d deployments, %d rollbacks",
            worker,
            environment,
            worker_tag,
            len(records),
            rollbacks,
        )
        return records[::-1]

    def create_deployment(
        self,
        script_name: str,
        versions: list[tuple[str, float]],
        *,
        message: str = "",
        force: bool = False,
    ) -> dict:
        """Serve ``versions`` (id, percentage) from now on; returns the new deployment."""
        body = {
            "strategy": "percentage",
            "versions": [{"version_id": v, "percentage": p} for v, p in versions],
            "annotations": {"workers/message": message},
        }
        params = {"force": "true"} if force else None
        endpoint, answer = self._request("POST", DEPLOYMENTS, params, body, script_name=script_name)
        return _deployment(endpoint, _get(endpoint, answer, "result", dict), "result")

    def verify_token(self) -> str:
        """The token's status (``active``, ``disabled``, ``expired``), by the SDK's typed call."""
        endpoint = "GET /user/tokens/verify"
        result = self._call(endpoint, "GET", self._sdk.user.tokens.verify)
        status = getattr(result, "status", None)
        if status not in ("active", "disabled", "expired"):
            raise MalformedResponse(
                endpoint, "result.status", "active, disabled or expired", status
            )
        return status

    # -- transport -------------------------------------------------------------

    def _request(self, method: str, template: str, params=None, body=None, **ids: str):
        """One call with retries; returns (endpoint label, checked envelope)."""
        label = " ".join([method, template, *(f"{k}={v}" for k, v in ids.items())])
        path = template.format(
            account_id=self.account_id, **{k: quote(v, safe="") for k, v in ids.items()}
        )
        options = {"params": params or {}}
        if method == "GET":
            send = partial(self._sdk.get, path, cast_to=httpx.Response, options=options)
        else:
            send = partial(self._sdk.post, path, cast_to=httpx.Response, body=body, options=options)
        return label, self._envelope(label, self._call(label, method, send))

    def _call(self, endpoint: str, method: str, send: Callable):
        attempt = 0
        while True:
            try:
                answer = send()
                log.debug("%s answered (attempt %d)", endpoint, attempt + 1)
                return answer
            except cloudflare.APIStatusError as exc:
                wait = self._retry_wait(method, exc.status_code, exc.response.headers, attempt)
                if wait is None:
                    raise self._status_error(endpoint, exc.status_code, exc.body) from None
                reason = f"HTTP {exc.status_code}"
            except cloudflare.APIConnectionError:
                wait = self._backoff(attempt) if method == "GET" else None
                if wait is None or attempt >= self.max_retries:
                    raise CloudflareError(
                        f"{endpoint}: no answer after {attempt + 1} attempts", endpoint=endpoint
                    ) from None
                reason = "no answer"
            attempt += 1
            log.warning(
                "%s: %s; retry %d of %d in %.2fs", endpoint, reason, attempt, self.max_retries, wait
            )
            self._sleep(wait)

    def _retry_wait(self, method: str, status: int, headers, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when this answer is final."""
        if attempt >= self.max_retries:
            return None
        if status == 429:
            after = _retry_after(headers.get("retry-after"))
            if after is None:
                return self._backoff(attempt)
            return after if after <= MAX_RETRY_AFTER else None
        return self._backoff(attempt) if status >= 500 and method == "GET" else None

    def _backoff(self, attempt: int) -> float:
        return self.backoff_seconds * 2**attempt

    def _envelope(self, endpoint: str, response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise MalformedResponse(endpoint, "(body)", "a JSON object", response.text) from None
        if not isinstance(body, dict):
            raise MalformedResponse(endpoint, "(body)", "a JSON object", body)
        if body.get("success") is False:
            raise self._status_error(endpoint, response.status_code, body)
        if "result" not in body:
            raise MalformedResponse(endpoint, "result", "present in the envelope")
        return body

    def _status_error(self, endpoint: str, status: int, body: object) -> CloudflareError:
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else {}
        code, message = (
            (first.get("code"), first.get("message")) if isinstance(first, dict) else (None, None)
        )
        detail = f"API error {code}: {message}" if code or message else "no API error in the answer"
        text = f"{endpoint} failed with HTTP {status}: {detail}"
        token = self._sdk.api_token or ""
        return CloudflareError(
            text.replace(token, "***") if token else text,
            endpoint=endpoint,
            status=status,
            code=code,
        )


def client_from_settings(settings: CloudflareSettings, token: str | None) -> CloudflareClient:
    """The client the platform file asks for.

    ``api_base_url = "emulator:"`` serves the emulator state in-process (the
    demo; ``token`` is ignored and a public placeholder is sent). Otherwise
    ``token`` must hold the value of ``settings.api_token_env``.
    """
    if settings.api_base_url == EMULATOR_BASE:
        from devops_assets.emulator.app import EMULATOR_TOKEN, load_app

        app = load_app(settings.emulator_state, persist=True)
        transport = httpx.WSGITransport(app=app)
        return CloudflareClient(
            settings.account_id, EMULATOR_TOKEN, EMULATOR_URL, transport=transport
        )
    if not token:
        raise CloudflareError(
            f"no Cloudflare API token: set the environment variable {settings.api_token_env} "
            f"to reach {settings.api_base_url}"
        )
    return CloudflareClient(settings.account_id, token, settings.api_base_url)


# -- reading answers -----------------------------------------------------------


def _get(endpoint: str, obj: dict, key: str, kind, where: str = "", *, nullable: bool = False):
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


def _time(endpoint: str, obj: dict, key: str, where: str, *, nullable: bool = False):
    text = _get(endpoint, obj, key, str, where, nullable=nullable)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise MalformedResponse(endpoint, f"{where}.{key}", "an ISO 8601 time with a zone", text)
    return value


def _build(endpoint: str, raw: dict, where: str, worker: str) -> Build:
    meta = _get(endpoint, raw, "build_trigger_metadata", dict, where)
    meta_where = f"{where}.build_trigger_metadata"
    status = _get(endpoint, raw, "status", str, where)
    outcome = _get(endpoint, raw, "build_outcome", str, where, nullable=True)
    if status not in BUILD_STATUSES or outcome not in (*BUILD_OUTCOMES, None):
        field, value = (
            ("status", status) if status not in BUILD_STATUSES else ("build_outcome", outcome)
        )
        raise MalformedResponse(endpoint, f"{where}.{field}", "a documented value", value)
    return Build(
        build_uuid=_get(endpoint, raw, "build_uuid", str, where),
        worker=worker,
        branch=_get(endpoint, meta, "branch", str, meta_where),
        commit_sha=_get(endpoint, meta, "commit_hash", str, meta_where),
        status=status,
        outcome=outcome,
        created_on=_time(endpoint, raw, "created_on", where),
        started_on=_time(endpoint, raw, "running_on", where, nullable=True),
        stopped_on=_time(endpoint, raw, "stopped_on", where, nullable=True),
        trigger_source=meta.get("build_trigger_source") or "push",
    )


def _log_line(endpoint: str, line: object, where: str) -> tuple[int, str]:
    if not (
        isinstance(line, list)
        and len(line) == 2
        and isinstance(line[1], str)
        and isinstance(line[0], int | float)
        and not isinstance(line[0], bool)
    ):
        raise MalformedResponse(endpoint, where, "[epoch_ms, text]", line)
    return int(line[0]), line[1]


def _version(endpoint: str, raw: dict, where: str) -> dict:
    meta = _get(endpoint, raw, "metadata", dict, where)
    return {
        "id": _get(endpoint, raw, "id", str, where),
        "number": int(_get(endpoint, raw, "number", (int, float), where)),
        "created_on": _time(endpoint, meta, "created_on", f"{where}.metadata"),
        "source": meta.get("source") or "",
        "author_email": meta.get("author_email") or "",
        "annotations": _get(endpoint, raw, "annotations", dict, where, nullable=True) or {},
    }


def _deployment(endpoint: str, raw: dict, where: str) -> dict:
    notes = _get(endpoint, raw, "annotations", dict, where, nullable=True) or {}
    versions = _get(endpoint, raw, "versions", list, where)
    if not versions:
        raise MalformedResponse(endpoint, f"{where}.versions", "one or two versions", versions)
    pairs = [
        (
            _get(endpoint, v, "version_id", str, f"{where}.versions[{i}]"),
            float(_get(endpoint, v, "percentage", (int, float), f"{where}.versions[{i}]")),
        )
        for i, v in enumerate(versions)
    ]
    return {
        "id": _get(endpoint, raw, "id", str, where),
        "created_on": _time(endpoint, raw, "created_on", where),
        "source": raw.get("source") or "",
        "author_email": raw.get("author_email") or "",
        "message": notes.get("workers/message") or "",
        "triggered_by": notes.get("workers/triggered_by") or "",
        "versions": pairs,
    }


def _deployment_record(
    raw: dict, worker: str, environment: str, kind: str, commit_sha: str | None
) -> Deployment:
    """A Deployment from a listed deployment; its version is the largest share."""
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


def _more_pages(body: dict, page: int, per_page: int, count: int) -> bool:
    """Whether a page-based list goes on: ``next_page``, else ``total_count``, else a full page."""
    info = body.get("result_info")
    if isinstance(info, dict) and isinstance(info.get("next_page"), bool):
        return info["next_page"]
    if isinstance(info, dict) and isinstance(info.get("total_count"), int):
        return page * per_page < info["total_count"]
    return count >= per_page > 0


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
