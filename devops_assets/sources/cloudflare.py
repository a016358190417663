"""The Cloudflare API: Workers Builds, versions and deployments of our workers.

Built on the official ``cloudflare`` SDK. Token verification uses its typed
method; everything else goes through its raw request method
(``client.get(path, cast_to=httpx.Response)``), because the SDK (5.9) has no
Workers Builds resource, its typed deployments list reads ``result.items``
while the API answers ``result.deployments``, and its typed models are built
without validation, so a malformed answer would pass unnoticed.

This module holds the endpoints; ``_cloudflare_http`` sends a request with
retries and ``_cloudflare_answers`` reads the JSON into records. Lists come
back newest first, as the API serves them. A listing whose pages repeat
themselves, or run past ``max_pages``, fails instead of paging forever.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from urllib.parse import quote

import httpx

from devops_assets.config import CloudflareSettings
from devops_assets.domain.models import Build, Deployment
from devops_assets.sources._cloudflare_answers import (
    CloudflareError,
    MalformedResponse,
    PageGuard,
    VersionDetail,
    code_versions,
    deployment_kinds,
    deployment_record,
    get_field,
    read_build,
    read_deployment,
    read_log_line,
    read_settings,
    read_version,
    read_version_detail,
    rolled_out,
)
from devops_assets.sources._cloudflare_http import (
    CloudflareHttp,
    RetryPolicy,
    check_token,
    hide_token_in_errors,
)

__all__ = [
    "CloudflareClient",
    "CloudflareError",
    "MalformedResponse",
    "VersionDetail",
    "client_from_settings",
]

log = logging.getLogger(__name__)

BUILDS = "/accounts/{account_id}/builds/workers/{worker_tag}/builds"
BUILD = "/accounts/{account_id}/builds/builds/{build_uuid}"
BUILD_LOGS = "/accounts/{account_id}/builds/builds/{build_uuid}/logs"
BUILDS_BY_VERSION = "/accounts/{account_id}/builds/builds"
VERSIONS = "/accounts/{account_id}/workers/scripts/{script_name}/versions"
DEPLOYMENTS = "/accounts/{account_id}/workers/scripts/{script_name}/deployments"
VERSION = "/accounts/{account_id}/workers/scripts/{script_name}/versions/{version_id}"
LATEST_VERSION = "/accounts/{account_id}/workers/workers/{script_name}/versions/latest"
SECRETS = "/accounts/{account_id}/workers/scripts/{script_name}/secrets"
SETTINGS = "/accounts/{account_id}/workers/scripts/{script_name}/settings"
D1_DATABASES = "/accounts/{account_id}/d1/database"
D1_QUERY = "/accounts/{account_id}/d1/database/{database_id}/query"
D1_PER_PAGE = 1000
MERGE_PATCH = "application/merge-patch+json"
EMULATOR_BASE = "emulator:"
EMULATOR_URL = "http://emulator.invalid/client/v4"  # never resolved: the transport is in-process
VERSION_BATCH = 20
VERSIONS_PER_PAGE = 100
MAX_PAGES = 10_000  # 500,000 builds at 50 a page: far beyond any real worker
MAX_LOG_PAGES = 500  # pages of one build's log; past this the log is refused, not followed


@hide_token_in_errors
class CloudflareClient:
    """Reads (and creates deployments in) one Cloudflare account.

    ``token_source`` names where ``api_token`` came from (an environment
    variable) in the error that refuses an unusable token.
    """

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
        deadline: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        max_pages: int = MAX_PAGES,
        token_source: str = "api_token",
    ):
        check_token(api_token, token_source)
        self.account_id, self.base_url = account_id, base_url.rstrip("/")
        self.max_pages = max_pages
        retries = RetryPolicy(max_retries, backoff_seconds, sleep)
        self._http = CloudflareHttp(
            account_id,
            api_token,
            self.base_url,
            retries=retries,
            transport=transport,
            timeout=timeout,
            deadline=deadline,
        )

    def __repr__(self) -> str:
        return f"CloudflareClient(account_id={self.account_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

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
        page, more, guard = 0, True, PageGuard(self.max_pages)
        while more:
            page += 1
            builds, more = self._builds_page(worker, worker_tag, page, per_page, guard)
            fresh = [b for b in builds if newer_than is None or b.created_on > newer_than]
            for build in fresh:
                found.setdefault(build.build_uuid, build)
            more = more and len(fresh) == len(builds)
        log.info(
            "Fetched %d builds of %s in %d pages (newer than %s)",
            len(found),
            worker,
            page,
            newer_than,
        )
        return sorted(found.values(), key=lambda b: b.created_on, reverse=True)

    def _builds_page(
        self, worker: str, worker_tag: str, page: int, per_page: int, guard: PageGuard
    ) -> tuple[list[Build], bool]:
        """One page of builds, and whether another page follows."""
        params = {"page": page, "per_page": per_page}
        endpoint, body = self._http.request("GET", BUILDS, params, worker_tag=worker_tag)
        items = get_field(endpoint, body, "result", list)
        builds = [read_build(endpoint, raw, f"result[{i}]", worker) for i, raw in enumerate(items)]
        more = guard.more(endpoint, body, page, per_page, [b.build_uuid for b in builds])
        return builds, more

    def get_build(self, build_uuid: str, worker: str) -> Build:
        endpoint, body = self._http.request("GET", BUILD, build_uuid=build_uuid)
        return read_build(endpoint, get_field(endpoint, body, "result", dict), "result", worker)

    def build_log(self, build_uuid: str) -> list[tuple[int, str]]:
        """Every ``(epoch_ms, text)`` line of a build, following the cursor.

        A cursor seen before, or more than ``max_pages`` (at most ``MAX_LOG_PAGES``)
        pages, is refused rather than followed forever."""
        lines: list[tuple[int, str]] = []
        cursor, seen, guard = None, set(), PageGuard(min(self.max_pages, MAX_LOG_PAGES))
        while True:
            params = {"cursor": cursor} if cursor else None
            endpoint, body = self._http.request("GET", BUILD_LOGS, params, build_uuid=build_uuid)
            result = get_field(endpoint, body, "result", dict)
            for i, line in enumerate(get_field(endpoint, result, "lines", list, "result")):
                lines.append(read_log_line(endpoint, line, f"result.lines[{i}]"))
            if result.get("truncated") is not True:
                return lines
            cursor = result.get("cursor")
            if not isinstance(cursor, str) or cursor in seen:
                raise MalformedResponse(endpoint, "result.cursor", "a new cursor", cursor)
            seen.add(cursor)
            if len(seen) >= guard.max_pages:
                raise CloudflareError(
                    f"{endpoint}: more log pages announced after {guard.max_pages} pages; "
                    "stopped paging (the limit is CloudflareClient's max_pages)",
                    endpoint=endpoint,
                )

    def builds_for_versions(self, version_ids: list[str], *, worker: str = "") -> dict[str, Build]:
        """Version id → the build that uploaded it, asked 20 ids at a time.

        ``worker`` names the builds' worker; without it the build's worker tag
        (``trigger.external_script_id``) stands in.
        """
        found: dict[str, Build] = {}
        unique = list(dict.fromkeys(version_ids))
        for start in range(0, len(unique), VERSION_BATCH):
            params = {"version_ids": ",".join(unique[start : start + VERSION_BATCH])}
            endpoint, body = self._http.request("GET", BUILDS_BY_VERSION, params)
            result = get_field(endpoint, body, "result", dict)
            for version_id, raw in get_field(endpoint, result, "builds", dict, "result").items():
                name = worker or str((raw.get("trigger") or {}).get("external_script_id", ""))
                found[version_id] = read_build(endpoint, raw, f"result.builds.{version_id}", name)
        return found

    # -- Workers versions and deployments --------------------------------------

    def list_versions(self, script_name: str) -> list[dict]:
        """Versions of a script: id, number, created_on, source, author_email, annotations."""
        records, page, guard = [], 1, PageGuard(self.max_pages)
        while True:
            params = {"page": page, "per_page": VERSIONS_PER_PAGE}
            endpoint, body = self._http.request("GET", VERSIONS, params, script_name=script_name)
            result = get_field(endpoint, body, "result", dict)
            items = get_field(endpoint, result, "items", list, "result")
            found = [read_version(endpoint, v, f"result.items[{i}]") for i, v in enumerate(items)]
            records += found
            if not guard.more(endpoint, body, page, VERSIONS_PER_PAGE, [v["id"] for v in found]):
                return records
            page += 1

    def list_deployments(self, script_name: str) -> list[dict]:
        """Deployments of a script: id, created_on, source, author_email, message,
        triggered_by and versions as ``(version_id, percentage)``."""
        endpoint, body = self._http.request("GET", DEPLOYMENTS, script_name=script_name)
        result = get_field(endpoint, body, "result", dict)
        items = get_field(endpoint, result, "deployments", list, "result")
        return [
            read_deployment(endpoint, d, f"result.deployments[{i}]") for i, d in enumerate(items)
        ]

    def worker_deployments(
        self, worker: str, worker_tag: str, environment: str
    ) -> list[Deployment]:
        """Deployments of ``worker`` with the commit each one serves, newest first.

        The commit is the one the build of the deployment's rolled-out version
        names; a version made by a secret change has no build of its own and
        carries the code of the version it was copied from (``code_versions``),
        so rotating a secret is not a new deploy of new code. ``worker_tag`` is
        kept for the worker's identity: these endpoints address the worker by name.
        """
        deployments = sorted(self.list_deployments(worker), key=lambda d: d["created_on"])
        versions = self.list_versions(worker)
        numbers = {v["id"]: v["number"] for v in versions}
        code = code_versions(versions)
        majors = [rolled_out(d, numbers) for d in deployments]
        wanted = sorted({code.get(vid, vid) for vid, _ in majors})
        found = self.builds_for_versions(wanted, worker=worker)
        builds = {
            vid: found[code.get(vid, vid)] for vid, _ in majors if code.get(vid, vid) in found
        }
        kinds = deployment_kinds(deployments, majors, numbers)
        records, previous = [], None
        for raw, kind, major in zip(deployments, kinds, majors, strict=True):
            version_id = major[0]
            build = builds.get(version_id)
            sha = build.commit_sha if build else None
            if kind == "rollback" and raw["triggered_by"] != "rollback" and sha and sha == previous:
                # an older version of the same code (a secret or setting change
                # withdrawn): no code went back, so no rollback is read into it
                kind = "deploy"
            records.append(deployment_record(raw, worker, environment, kind, sha, major))
            previous = sha
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
        endpoint, answer = self._http.request(
            "POST", DEPLOYMENTS, params, body, script_name=script_name
        )
        return read_deployment(endpoint, get_field(endpoint, answer, "result", dict), "result")

    # -- secrets, versions, settings -------------------------------------------------

    def list_secrets(self, script_name: str) -> list[tuple[str, str]]:
        """``(name, type)`` of the secrets of the script's LATEST version (never values)."""
        endpoint, body = self._http.request("GET", SECRETS, script_name=script_name)
        items = get_field(endpoint, body, "result", list)
        found = []
        for i, item in enumerate(items):
            where = f"result[{i}]"
            if not isinstance(item, dict):
                raise MalformedResponse(endpoint, where, "an object", item)
            found.append(
                (
                    get_field(endpoint, item, "name", str, where),
                    get_field(endpoint, item, "type", str, where),
                )
            )
        return found

    def get_version(self, script_name: str, version_id: str) -> VersionDetail:
        """One version with its bindings and runtime."""
        endpoint, body = self._http.request(
            "GET", VERSION, script_name=script_name, version_id=version_id
        )
        return read_version_detail(endpoint, get_field(endpoint, body, "result", dict), "result")

    def put_version_secrets(
        self, script_name: str, changes: Mapping[str, str | None], message: str
    ) -> VersionDetail:
        """A new version from the latest one with ``changes`` (name → value, or None to
        delete), NOT deployed (``PATCH …/workers/workers/{name}/versions/latest``).

        The values travel only in the request body, a :class:`SealedBody` whose text
        form hides it (the SDK's debug log prints the request options); an error that
        quoted a value anyway has it written ``***``, and so has any run of 8 or more
        characters of one (a value the API quoted cut short).
        """
        values = [v for v in changes.values() if v is not None]
        for name, value in changes.items():
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"put_version_secrets: a secret name must be a non-empty string, got {name!r}"
                )
            if value is not None and not isinstance(value, str):
                raise ValueError(
                    f"put_version_secrets: the value of {name} must be a string or None, "
                    f"got {type(value).__name__}"
                )
        env = {
            name: None if value is None else {"type": "secret_text", "text": value}
            for name, value in changes.items()
        }
        content = SealedBody(json.dumps({"env": env, "annotations": {"workers/message": message}}))
        try:
            endpoint, body = self._send(
                "PATCH", LATEST_VERSION, content, MERGE_PATCH, script_name=script_name
            )
            return read_version_detail(
                endpoint, get_field(endpoint, body, "result", dict), "result"
            )
        except CloudflareError as exc:
            exc.hide(*values)  # every value at once, in the whole message, before any cut
            raise

    def script_settings(self, script_name: str) -> dict:
        """``GET …/settings``'s result: the settings of the version serving most traffic."""
        endpoint, body = self._http.request("GET", SETTINGS, script_name=script_name)
        return read_settings(endpoint, get_field(endpoint, body, "result", dict), "result")

    # -- D1 ----------------------------------------------------------------------------

    def list_d1_databases(self) -> list[dict]:
        """Every D1 database of the account: ``uuid``, ``name``, ``version``, ``created_at``."""
        found, page, guard = [], 1, PageGuard(self.max_pages)
        while True:
            params = {"page": page, "per_page": D1_PER_PAGE}
            endpoint, body = self._http.request("GET", D1_DATABASES, params)
            items = get_field(endpoint, body, "result", list)
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise MalformedResponse(endpoint, f"result[{i}]", "an object", item)
                get_field(endpoint, item, "uuid", str, f"result[{i}]")
                get_field(endpoint, item, "name", str, f"result[{i}]")
            found += items
            if not guard.more(endpoint, body, page, D1_PER_PAGE, [d["uuid"] for d in items]):
                return found
            page += 1

    def d1_query(self, database_id: str, sql: str, params: Sequence = ()) -> list[dict]:
        """Run ``sql`` (statements separated by ``;``, one batch, all or nothing): one
        ``{results, success, meta}`` per statement. A SQL error raises CloudflareError."""
        if isinstance(params, str | bytes):
            raise ValueError("d1_query: params must be a sequence of values, not a string")
        endpoint, body = self._http.request(
            "POST", D1_QUERY, None, {"sql": sql, "params": list(params)}, database_id=database_id
        )
        items = get_field(endpoint, body, "result", list)
        for i, item in enumerate(items):
            where = f"result[{i}]"
            if not isinstance(item, dict):
                raise MalformedResponse(endpoint, where, "an object", item)
            get_field(endpoint, item, "results", list, where)
        return items

    def _send(self, method: str, template: str, content: bytes, content_type: str, **ids: str):
        """A write whose body is raw ``content`` (kept out of the SDK's debug log)."""
        http = self._http
        label = " ".join([method, template, *(f"{k}={v}" for k, v in ids.items())])
        path = template.format(
            account_id=self.account_id, **{k: quote(v, safe="") for k, v in ids.items()}
        )
        options = {"headers": {"Content-Type": content_type}}
        verb = getattr(http.sdk, method.lower())
        send = partial(verb, path, cast_to=httpx.Response, content=content, options=options)
        return label, http._envelope(label, http.call(label, method, send))

    def verify_token(self) -> str:
        """The token's status (``active``, ``disabled``, ``expired``), by the SDK's typed call."""
        endpoint = "GET /user/tokens/verify"
        result = self._http.call(endpoint, "GET", self._http.sdk.user.tokens.verify)
        status = getattr(result, "status", None)
        if status not in ("active", "disabled", "expired"):
            raise MalformedResponse(
                endpoint, "result.status", "active, disabled or expired", status
            )
        return status


class SealedBody(bytes):
    """A request body that holds secret values: sent as is, never shown.

    The SDK logs every request's options at DEBUG, the body included; this
    body's ``repr`` and ``str`` name it without showing it.
    """

    def __new__(cls, text: str):
        return super().__new__(cls, text.encode("utf-8"))

    def __repr__(self) -> str:
        return f"<request body hidden, {len(self)} bytes>"

    __str__ = __repr__


def client_from_settings(settings: CloudflareSettings, token: str | None) -> CloudflareClient:
    """The client the platform file asks for.

    ``api_base_url = "emulator:"`` serves the emulator state in-process (the
    demo; ``token`` is ignored and a public placeholder is sent). Otherwise
    ``token`` must hold the value of ``settings.api_token_env``, which the
    errors name when it is missing or unusable.
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
    source = f"the environment variable {settings.api_token_env}"
    return CloudflareClient(settings.account_id, token, settings.api_base_url, token_source=source)
