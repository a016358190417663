"""Requests, replies and the envelope every Cloudflare v4 answer travels in.

Success: ``{"success": true, "errors": [], "messages": [], "result": …}``
plus ``result_info`` on paged lists. Failure: ``success`` false, one or more
``{"code", "message"}`` errors and ``result`` null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Error codes the emulator answers with (see cloudflare-api.md §1).
AUTH_ERROR = 10000  # missing, malformed or unknown token; another account
INVALID_TOKEN = 1000  # /user/tokens/verify with a token it does not know
NO_ROUTE = 7003
METHOD_NOT_ALLOWED = 7001
NOT_FOUND_WORKERS = 10007
BAD_BODY = 10001
INVALID_DEPLOYMENT = 10021  # emulator's choice: the API's own code is not documented
NOT_FOUND_BUILDS = 12000
INVALID_BUILDS_REQUEST = 12002
RATE_LIMITED = 1015
INTERNAL = 10002


@dataclass
class Request:
    """One HTTP request as the app sees it; ``path`` excludes the query."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    """What the app answers: a status, a JSON body (or raw bytes) and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by a handler to answer with the failure envelope."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(f"{status} [{code}] {message}")
        self.status, self.code, self.message = status, code, message


def ok(result: Any, result_info: dict | None = None, messages: list | None = None) -> Reply:
    body = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return Reply(200, body)


def error(status: int, code: int, message: str) -> Reply:
    body = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return Reply(status, body)


def int_arg(req: Request, name: str, default: int, low: int, high: int, code: int) -> int:
    """A whole-number query parameter within ``low``–``high``, else a 400."""
    raw = req.arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, code, f"{name} must be an integer from {low} to {high}, got {raw!r}")
    return value


def page_info(page: int, per_page: int, count: int, total: int) -> dict:
    """``result_info`` of a page-based list (Builds also says if a next page exists)."""
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total,
        "total_pages": -(-total // per_page),
    }
