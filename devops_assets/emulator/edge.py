"""The workers themselves, answered as Cloudflare's edge would on workers.dev.

A request whose Host is ``<script>.<WORKERS_DEV_SUBDOMAIN>.workers.dev`` (and
whose path is not the API's) reaches the script's latest deployment. The
version that answers is the one the ``Cloudflare-Workers-Version-Overrides``
header names, when that version is in the deployment (how smoke tests reach
the new version during a gradual rollout); otherwise the deployment's
versions take turns in proportion to their percentages. The turns are a
smooth weighted round robin, so a 10/90 deployment serves exactly 10 of every
100 requests with its first version: deterministic, unlike Cloudflare's
random split, so tests can count. No token is needed: the edge is public.
"""

from __future__ import annotations

import json
import re

from devops_assets.emulator.wire import Reply, Request

WORKERS_DEV_SUBDOMAIN = "moltworker"
OVERRIDES_HEADER = "cloudflare-workers-version-overrides"
VERSION_HEADER = "Cf-Worker-Version"
_HOST = re.compile(
    rf"(?P<script>[a-z0-9][a-z0-9_-]*)\.{re.escape(WORKERS_DEV_SUBDOMAIN)}\.workers\.dev"
)
_OVERRIDE = re.compile(r'\s*(?P<script>[a-z0-9_*.-]+)\s*=\s*"(?P<version>[^"]*)"\s*')


def workers_dev_url(script: str) -> str:
    """Where ``script`` answers on workers.dev, e.g. ``https://moltworker.moltworker.workers.dev``."""
    return f"https://{script}.{WORKERS_DEV_SUBDOMAIN}.workers.dev"


def script_of_host(host: str) -> str | None:
    """The script a workers.dev Host header names (any port dropped), else None."""
    match = _HOST.fullmatch(host.strip().lower().rsplit(":", 1)[0] if host else "")
    return match["script"] if match else None


class Edge:
    """Picks the answering version and answers as the deployed worker.

    ``_served`` counts, per deployment id, how many requests each version
    answered; a new deployment starts its own count.
    """

    def __init__(self):
        self._served: dict[str, dict[str, int]] = {}

    def answer(self, state, req: Request, script: str) -> Reply:
        deployments = state.deployments.get(script) if script in state.services else None
        if not deployments:
            host = f"{script}.{WORKERS_DEV_SUBDOMAIN}.workers.dev"
            return _text(404, f"No worker is deployed at {host}")
        deployment = deployments[-1]
        version_id = _override(req, script, deployment) or self._turn(deployment)
        if req.method not in ("GET", "HEAD"):
            reply = _text(405, "Method not allowed")
            reply.headers["Allow"] = "GET, HEAD"
        elif req.path == "/health":
            reply = _health(state, version_id, script)
        elif req.path == "/":
            reply = _text(200, f"{script}: a Cloudflare Worker, version {version_id}")
        else:
            reply = _text(404, "Not found")
        reply.headers[VERSION_HEADER] = version_id
        return reply

    def _turn(self, deployment: dict) -> str:
        """The version whose share of the requests so far lags its percentage most."""
        served = self._served.setdefault(deployment["id"], {})
        total = sum(served.values()) + 1
        shares = [(v["version_id"], v["percentage"]) for v in deployment["versions"]]
        version_id = max(shares, key=lambda s: s[1] * total / 100 - served.get(s[0], 0))[0]
        served[version_id] = served.get(version_id, 0) + 1
        return version_id


def _override(req: Request, script: str, deployment: dict) -> str | None:
    """The version the override header names for ``script``, if the deployment serves it."""
    deployed = {v["version_id"] for v in deployment["versions"]}
    for item in req.headers.get(OVERRIDES_HEADER, "").split(","):
        match = _OVERRIDE.fullmatch(item)
        if match and match["script"] == script and match["version"] in deployed:
            return match["version"]
    return None


def _health(state, version_id: str, script: str) -> Reply:
    """``{"status","version","commit"}``: 200 ``ok``, or 500 ``error`` for a bad version
    or one holding a secret value its provider refuses (then with ``error``:
    ``credential rejected: NAME``)."""
    build = state.builds.get(state.version_builds.get(version_id, ""), {})
    commit = build.get("build_trigger_metadata", {}).get("commit_hash") or ""
    status = state.serves.get(version_id, "ok")
    body = {"status": status, "version": version_id, "commit": commit}
    digests = state.secret_digests.get(version_id, {})
    refused = [
        name
        for name, accepted in sorted(state.refusals.get(script, {}).items())
        if digests.get(name) != accepted
    ]
    if refused:
        body.update(status="error", error=f"credential rejected: {', '.join(refused)}")
    return Reply(
        200 if body["status"] == "ok" else 500,
        json.dumps(body, separators=(",", ":")).encode(),
        {"Content-Type": "application/json"},
    )


def _text(status: int, text: str) -> Reply:
    return Reply(status, (text + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8"})
