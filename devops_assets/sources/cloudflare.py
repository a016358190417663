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

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from devops_assets.config import CloudflareSettings
from devops_assets.domain.models import Build, Deployment
from devops_assets.sources._cloudflare_answers import (
    CloudflareError,
    MalformedResponse,
    PageGuard,
    deployment_kinds,
    deployment_record,
    get_field,
    read_build,
    read_deployment,
    read_log_line,
    read_version,
    rolled_out,
)
from devops_assets.sources._cloudflare_http import (
    CloudflareHttp,
    RetryPolicy,
    check_token,
    hide_token_in_errors,
)

__all__ = ["CloudflareClient", "CloudflareError", "MalformedResponse", "client_from_settings"]

log = logging.getLogger(__name__)

BUILDS = "/accounts/{account_id}/builds/workers/{worker_tag}/builds"
BUILD = "/accounts/{account_id}/builds/builds/{build_uuid}"
BUILD_LOGS = "/accounts/{account_id}/builds/builds/{build_uuid}/logs"
BUILDS_BY_VERSION = "/accounts/{account_id}/builds/builds"
VERSIONS = "/accounts/{account_id}/workers/scripts/{script_name}/versions"
DEPLOYMENTS = "/accounts/{account_id}/workers/scripts/{script_name}/deployments"
EMULATOR_BASE = "emulator:"
EMULATOR_URL = "http://emulator.invalid/client/v4"  # never resolved: the transport is in-process
VERSION_BATCH = 20
VERSIONS_PER_PAGE = 100
MAX_PAGES = 10_000  # 500,000 builds at 50 a page: far beyond any real worker


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
        """Every ``(epoch_ms, text)`` line of a build, following the cursor."""
        lines: list[tuple[int, str]] = []
        cursor, seen = None, set()
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

        The commit is the one the build of the deployment's largest-share
        version names. ``worker_tag`` is kept for the worker's identity:
        these endpoints address the worker by name.
        """
        deployments = sorted(self.list_deployments(worker), key=lambda d: d["created_on"])
        numbers = {v["id"]: v["number"] for v in self.list_versions(worker)}
        majors = [rolled_out(d, numbers) for d in deployments]
        builds = self.builds_for_versions(sorted({vid for vid, _ in majors}), worker=worker)
        kinds = deployment_kinds(deployments, majors, numbers)
        records = []
        for raw, kind, major in zip(deployments, kinds, majors, strict=True):
            version_id = major[0]
            build = builds.get(version_id)
            sha = build.commit_sha if build else None
            records.append(deployment_record(raw, worker, environment, kind, sha, major))
        rollbacks = kinds.count("rollback")
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
