"""The Workers Builds endpoints (cloudflare-api.md §3), served from the state.

Builds are listed newest first with page-based paging; logs page with an
opaque cursor; the two batch look-ups accept at most 20 ids.
"""

from __future__ import annotations

import base64
import binascii
import json

from devops_assets.emulator.wire import (
    INVALID_BUILDS_REQUEST,
    NOT_FOUND_BUILDS,
    ApiError,
    Reply,
    Request,
    int_arg,
    ok,
    page_info,
)

MAX_IDS = 20
ACCOUNT = r"/accounts/(?P<account_id>[^/]+)"


def builds_of(state, tag: str) -> list[dict]:
    """The builds of one worker tag, newest first."""
    mine = [b for b in state.builds.values() if b["trigger"]["external_script_id"] == tag]
    return sorted(mine, key=lambda b: b["created_on"], reverse=True)


def list_builds(app, req: Request, account_id: str, tag: str) -> Reply:
    page = int_arg(req, "page", 1, 1, 1_000_000, INVALID_BUILDS_REQUEST)
    per_page = int_arg(req, "per_page", 25, 1, 200, INVALID_BUILDS_REQUEST)
    builds = builds_of(app.state, tag)
    chunk = builds[(page - 1) * per_page : page * per_page]
    info = page_info(page, per_page, len(chunk), len(builds))
    info["next_page"] = page * per_page < len(builds)
    return ok(chunk, info)


def get_build(app, req: Request, account_id: str, build_uuid: str) -> Reply:
    return ok(_build(app.state, build_uuid))


def build_logs(app, req: Request, account_id: str, build_uuid: str) -> Reply:
    """One page of log lines; ``truncated`` says whether to ask again with ``cursor``."""
    _build(app.state, build_uuid)
    lines = app.state.logs.get(build_uuid, [])
    offset = _decode_cursor(req.arg("cursor"))
    chunk = lines[offset : offset + app.log_page_lines]
    end = offset + len(chunk)
    return ok({"lines": chunk, "truncated": end < len(lines), "cursor": _encode_cursor(end)})


def builds_by_versions(app, req: Request, account_id: str) -> Reply:
    """``result.builds``: version id → the build that uploaded it (unknown ids left out)."""
    ids = _ids(req, "version_ids")
    found = {}
    for version_id in ids:
        build_uuid = app.state.version_builds.get(version_id)
        if build_uuid in app.state.builds:
            found[version_id] = app.state.builds[build_uuid]
    return ok({"builds": found})


def latest_builds(app, req: Request, account_id: str) -> Reply:
    """``result.builds``: worker tag → its newest build."""
    found = {}
    for tag in _ids(req, "external_script_ids"):
        builds = builds_of(app.state, tag)
        if builds:
            found[tag] = builds[0]
    return ok({"builds": found})


def list_triggers(app, req: Request, account_id: str, tag: str) -> Reply:
    return ok(app.state.triggers.get(tag, []))


def _build(state, build_uuid: str) -> dict:
    build = state.builds.get(build_uuid)
    if build is None:
        raise ApiError(404, NOT_FOUND_BUILDS, "Not found")
    return build


def _ids(req: Request, name: str) -> list[str]:
    ids = [part.strip() for part in (req.arg(name) or "").split(",") if part.strip()]
    if not 1 <= len(ids) <= MAX_IDS:
        message = f"Invalid request: {name} must hold 1 to {MAX_IDS} ids, got {len(ids)}"
        raise ApiError(400, INVALID_BUILDS_REQUEST, message)
    return ids


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise ApiError(400, INVALID_BUILDS_REQUEST, "Invalid request: unknown cursor")
    return offset


ROUTES = (
    ("GET", ACCOUNT + r"/builds/workers/(?P<tag>[^/]+)/builds", list_builds),
    ("GET", ACCOUNT + r"/builds/workers/(?P<tag>[^/]+)/triggers", list_triggers),
    ("GET", ACCOUNT + r"/builds/builds", builds_by_versions),
    ("GET", ACCOUNT + r"/builds/builds/latest", latest_builds),
    ("GET", ACCOUNT + r"/builds/builds/(?P<build_uuid>[^/]+)", get_build),
    ("GET", ACCOUNT + r"/builds/builds/(?P<build_uuid>[^/]+)/logs", build_logs),
)
