"""The Workers endpoints (versions, deployments, services) and token verification.

Versions and deployments are listed newest first. A new deployment holds one
or two versions of the script whose percentages sum to 100; it is marked
``workers/triggered_by: rollback`` when its single version is older than the
one serving now (the emulator's reading of a rollback; the API keeps that
annotation read-only).
"""

from __future__ import annotations

import json
import math
import uuid

from devops_assets.emulator.builds_api import ACCOUNT
from devops_assets.emulator.secrets_api import version_detail
from devops_assets.emulator.state import iso_us
from devops_assets.emulator.wire import (
    BAD_BODY,
    INVALID_DEPLOYMENT,
    NOT_FOUND_WORKERS,
    ApiError,
    Reply,
    Request,
    int_arg,
    ok,
    page_info,
)

TOKEN_ID = "5f0e9c1d7b2a4e63a8d1c0b9e7f6a5d4"
ROLLBACK_WINDOW = 100  # versions a deployment may still go back to
SCRIPT = ACCOUNT + r"/workers/scripts/(?P<script>[^/]+)"


def list_versions(app, req: Request, account_id: str, script: str) -> Reply:
    """``result.items`` newest first; ``deployable=true`` ignores paging."""
    versions = list(reversed(_versions(app.state, script)))
    if (req.arg("deployable") or "").lower() == "true":
        return ok({"items": versions[:ROLLBACK_WINDOW]})
    page = int_arg(req, "page", 1, 1, 1_000_000, BAD_BODY)
    per_page = int_arg(req, "per_page", 10, 1, 100, BAD_BODY)
    chunk = versions[(page - 1) * per_page : page * per_page]
    return ok({"items": chunk}, page_info(page, per_page, len(chunk), len(versions)))


def get_version(app, req: Request, account_id: str, script: str, version_id: str) -> Reply:
    _versions(app.state, script)
    version = app.state.version(script, version_id)
    if version is None:
        raise ApiError(404, NOT_FOUND_WORKERS, f"Version {version_id} not found")
    return ok(version_detail(app.state, version))


def list_deployments(app, req: Request, account_id: str, script: str) -> Reply:
    _versions(app.state, script)
    return ok({"deployments": list(reversed(app.state.deployments.get(script, [])))})


def create_deployment(app, req: Request, account_id: str, script: str) -> Reply:
    """Serve versions at the given percentages from now on."""
    _versions(app.state, script)
    body = _json_body(req)
    versions = _checked_versions(app.state, script, body)
    annotations = body.get("annotations") or {}
    message = str(annotations.get("workers/message", "")).encode()[:1000].decode(errors="ignore")
    deployment = {
        "id": str(uuid.uuid4()),
        "source": "api",
        "strategy": "percentage",
        "author_email": app.user_email,
        "created_on": iso_us(app.now()),
        "annotations": {
            "workers/triggered_by": _triggered_by(app.state, script, versions),
            "workers/message": message,
        },
        "versions": versions,
    }
    app.state.record_deployment(script, deployment)
    return ok(deployment)


def get_service(app, req: Request, account_id: str, script: str) -> Reply:
    service = app.state.services.get(script)
    if service is None:
        raise ApiError(404, NOT_FOUND_WORKERS, "Worker not found")
    return ok(service)


def verify_token(app, req: Request) -> Reply:
    message = {"code": 10000, "message": "This API Token is valid and active"}
    return ok({"id": TOKEN_ID, "status": "active"}, messages=[message])


def _versions(state, script: str) -> list[dict]:
    if script not in state.services:
        raise ApiError(404, NOT_FOUND_WORKERS, "Worker not found")
    return state.versions.get(script, [])


def _json_body(req: Request) -> dict:
    try:
        body = json.loads(req.body or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, BAD_BODY, "The request body must be a JSON object")
    return body


def _checked_versions(state, script: str, body: dict) -> list[dict]:
    """``body.versions`` when it is 1–2 known versions at 0.01–100 % summing to 100."""
    if body.get("strategy") != "percentage":
        raise ApiError(400, INVALID_DEPLOYMENT, "strategy must be 'percentage'")
    items = body.get("versions")
    if not isinstance(items, list) or not 1 <= len(items) <= 2:
        raise ApiError(400, INVALID_DEPLOYMENT, "versions must list one or two versions")
    checked = []
    for item in items:
        version_id = item.get("version_id") if isinstance(item, dict) else None
        share = item.get("percentage") if isinstance(item, dict) else None
        if not isinstance(version_id, str) or state.version(script, version_id) is None:
            raise ApiError(400, INVALID_DEPLOYMENT, f"version {version_id!r} is not in {script}")
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not 0.01 <= share <= 100
        ):
            raise ApiError(400, INVALID_DEPLOYMENT, f"percentage of {version_id} must be 0.01–100")
        checked.append({"version_id": version_id, "percentage": share})
    if len({v["version_id"] for v in checked}) != len(checked):
        raise ApiError(400, INVALID_DEPLOYMENT, "a version may appear only once")
    if not math.isclose(sum(v["percentage"] for v in checked), 100):
        raise ApiError(400, INVALID_DEPLOYMENT, "percentages must sum to 100")
    return checked


def _triggered_by(state, script: str, versions: list[dict]) -> str:
    current = state.deployments.get(script, [])
    if len(versions) != 1 or not current:
        return "deployment"
    serving = max(current[-1]["versions"], key=lambda v: v["percentage"])["version_id"]
    number = state.version(script, versions[0]["version_id"])["number"]
    older = number < (state.version(script, serving) or {"number": 0})["number"]
    return "rollback" if older else "deployment"


ROUTES = (
    ("GET", SCRIPT + r"/versions", list_versions),
    ("GET", SCRIPT + r"/versions/(?P<version_id>[^/]+)", get_version),
    ("GET", SCRIPT + r"/deployments", list_deployments),
    ("POST", SCRIPT + r"/deployments", create_deployment),
    ("GET", ACCOUNT + r"/workers/services/(?P<script>[^/]+)", get_service),
    ("GET", r"/user/tokens/verify", verify_token),
)
