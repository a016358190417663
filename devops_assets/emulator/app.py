"""The emulator as a WSGI application: Cloudflare's v4 API under ``/client/v4``.

Every request is logged (method, path, query, host), counted against a rate
limit and answered with the API's envelope. The order of checks: injected
failures, the rate limit (429 with ``Retry-After``), the route (404, code
7003), the token (401/403, code 10000), the account (403), then the handler.
Two public answers need no token and use no quota: the workers themselves
for a ``<script>.<subdomain>.workers.dev`` Host (``edge.py``), and the team's
status page at ``/api/v2/incidents.json`` on any other Host (``statusfeed.py``).
Tests steer the app through its Python methods; none of them is reachable
over HTTP.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

from devops_assets.emulator import builds_api, d1_api, secrets_api, settings_api, workers_api
from devops_assets.emulator.account_controls import AccountControls
from devops_assets.emulator.controls import BuildControls
from devops_assets.emulator.d1store import D1Store
from devops_assets.emulator.edge import Edge, script_of_host
from devops_assets.emulator.state import EmulatorState
from devops_assets.emulator.statusfeed import STATUS_PATH, IncidentControls, incidents_page
from devops_assets.emulator.wire import (
    AUTH_ERROR,
    INTERNAL,
    INVALID_TOKEN,
    METHOD_NOT_ALLOWED,
    NO_ROUTE,
    NOT_FOUND_WORKERS,
    RATE_LIMITED,
    ApiError,
    Reply,
    Request,
    error,
)

PREFIX = "/client/v4"
EMULATOR_TOKEN = "devops-assets-emulator-token"  # a public placeholder, not a secret
ROUTES = tuple(
    (method, re.compile(pattern), handler)
    for method, pattern, handler in builds_api.ROUTES
    + workers_api.ROUTES
    + secrets_api.ROUTES
    + settings_api.ROUTES
    + d1_api.ROUTES
)
DEFAULT_ERRORS = {
    400: 10004,
    401: AUTH_ERROR,
    403: AUTH_ERROR,
    404: NOT_FOUND_WORKERS,
    408: 10013,
    409: 10018,
    429: RATE_LIMITED,
}


@dataclass(frozen=True)
class LoggedRequest:
    """One request the app received: what tests count."""

    method: str
    path: str
    query: dict[str, list[str]]
    host: str = ""


@dataclass
class _Failure:
    pattern: re.Pattern
    status: int
    body: object
    headers: dict[str, str] | None
    remaining: int


class EmulatorApp(BuildControls, AccountControls, IncidentControls):
    """Serves an :class:`EmulatorState`; see the module docstring for the checks."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        api_tokens: tuple[str, ...] = (EMULATOR_TOKEN,),
        rate_limit: tuple[int, float] = (1200, 300.0),
        clock: Callable[[], datetime] | None = None,
    ):
        self.state = state
        self.user_email = "ops@moltworker.example"
        self.log_page_lines = 10
        self._tokens = frozenset(api_tokens)
        self._lock = threading.RLock()
        self._requests: list[LoggedRequest] = []
        self._failures: list[_Failure] = []
        self._edge = Edge()
        self.d1 = D1Store(state.folder, persist=state.journal is not None)
        self.set_rate_limit(*rate_limit)
        self.now = clock or _history_clock(state)

    def __repr__(self) -> str:
        return f"EmulatorApp(account_id={self.state.account_id!r})"

    # -- test controls ---------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count(self, path_regex: str = "", method: str | None = None) -> int:
        """How many logged requests have a path matching ``path_regex``."""
        found = [r for r in self.requests if re.search(path_regex, r.path)]
        return sum(1 for r in found if method is None or r.method == method)

    def fail_next(self, path_regex: str, status: int, body=None, times: int = 1, headers=None):
        """Answer the next ``times`` requests whose path matches with ``status``.

        ``body`` may be a dict (sent as JSON), str or bytes (sent as is, to
        fake a malformed answer), or None for the API's error envelope.
        """
        with self._lock:
            rule = _Failure(re.compile(path_regex), status, body, headers, times)
            self._failures.append(rule)

    def set_rate_limit(self, quota: int, window_seconds: float) -> None:
        """Allow ``quota`` requests per fixed window; the count restarts now."""
        with self._lock:
            self.rate_quota, self.rate_window = quota, window_seconds
            self._window_start, self._window_used = time.monotonic(), 0

    # -- WSGI ------------------------------------------------------------------

    def __call__(self, environ, start_response):
        reply = self.handle(_read_request(environ))
        body = reply.body if isinstance(reply.body, bytes) else _encode(reply.body)
        headers = {"Content-Type": "application/json", **reply.headers}
        headers["Content-Length"] = str(len(body))
        start_response(f"{reply.status} {_phrase(reply.status)}", [*headers.items()])
        return [body] if environ["REQUEST_METHOD"] != "HEAD" else [b""]

    def handle(self, req: Request) -> Reply:
        """Answer one request (thread-safe: requests are served one at a time)."""
        with self._lock:
            host = req.headers.get("host", "")
            self._requests.append(LoggedRequest(req.method, req.path, req.query, host))
            public = self._public(req, host)
            if public is not None:
                return self._injected(req.path) or public()
            remaining, reset = self._take_quota()
            reply = self._injected(req.path) or self._answer(req, remaining, reset)
            reply.headers.setdefault("Ratelimit", f'"default";r={max(remaining, 0)};t={reset}')
            policy = f'"default";q={self.rate_quota};w={math.ceil(self.rate_window)}'
            reply.headers.setdefault("Ratelimit-Policy", policy)
            return reply

    def _public(self, req: Request, host: str) -> Callable[[], Reply] | None:
        """The answer of the edge or the status page, when the request is for either."""
        if req.path == PREFIX or req.path.startswith(PREFIX + "/"):
            return None
        script = script_of_host(host)
        if script is not None:
            return lambda: self._edge.answer(self.state, req, script)
        if req.path == STATUS_PATH and req.method in ("GET", "HEAD"):
            return lambda: incidents_page(self.state, req)
        return None

    def _answer(self, req: Request, remaining: int, reset: int) -> Reply:
        if remaining < 0:
            reply = error(429, RATE_LIMITED, "Rate limited: too many requests, slow down")
            reply.headers["Retry-After"] = str(reset)
            return reply
        handler, params = self._route(req)
        if isinstance(handler, Reply):
            return handler
        refused = self._refuse(req, params)
        if refused is not None:
            return refused
        try:
            return handler(self, req, **params)
        except ApiError as exc:
            return error(exc.status, exc.code, exc.message)

    def _route(self, req: Request):
        path = req.path.removeprefix(PREFIX) if req.path.startswith(PREFIX + "/") else None
        matches = [(m, h, p.fullmatch(path)) for m, p, h in ROUTES] if path else []
        for method, handler, match in matches:
            if match and method == req.method:
                return handler, match.groupdict()
        if any(match for _, _, match in matches):
            return error(405, METHOD_NOT_ALLOWED, f"Method {req.method} not allowed"), {}
        return error(404, NO_ROUTE, "No route for the URI"), {}

    def _refuse(self, req: Request, params: dict) -> Reply | None:
        """401 without a bearer token, 403 for an unknown token or another account."""
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return error(401, AUTH_ERROR, "Authentication error")
        if token.strip() not in self._tokens:
            if req.path.endswith("/user/tokens/verify"):
                return error(401, INVALID_TOKEN, "Invalid API Token")
            return error(403, AUTH_ERROR, "Authentication error")
        if params.get("account_id", self.state.account_id) != self.state.account_id:
            return error(403, AUTH_ERROR, "Authentication error")
        return None

    def _take_quota(self) -> tuple[int, int]:
        now = time.monotonic()
        if now - self._window_start >= self.rate_window:
            self._window_start, self._window_used = now, 0
        self._window_used += 1
        reset = max(1, math.ceil(self.rate_window - (now - self._window_start)))
        return self.rate_quota - self._window_used, reset

    def _injected(self, path: str) -> Reply | None:
        for rule in self._failures:
            if rule.remaining > 0 and rule.pattern.search(path):
                rule.remaining -= 1
                if rule.body is None:
                    code = DEFAULT_ERRORS.get(rule.status, INTERNAL)
                    reply = error(rule.status, code, f"Injected failure ({rule.status})")
                else:
                    body = rule.body.encode() if isinstance(rule.body, str) else rule.body
                    reply = Reply(rule.status, body)
                if rule.headers is None and rule.status == 429:
                    reply.headers["Retry-After"] = "1"
                reply.headers.update(rule.headers or {})
                return reply
        return None


def load_app(state_dir: Path | str, *, persist: bool = False, **options) -> EmulatorApp:
    """An app serving the state folder; ``persist`` journals what changes to it, and
    keeps its clock from going back between the processes that load the folder."""
    state = EmulatorState.load(state_dir, persist=persist)
    if persist and "clock" not in options:
        options["clock"] = _shared_clock(Path(state_dir) / CLOCK_FILE, _history_clock(state))
    return EmulatorApp(state, **options)


CLOCK_FILE = "clock.txt"
_CLOCK_LOCK = threading.Lock()


def _shared_clock(path: Path, inner: Callable[[], datetime]) -> Callable[[], datetime]:
    """``inner``, but never earlier than the latest instant any process handed out
    for this folder (kept in ``path``): a process that records nothing (a sensor
    tick) would otherwise restart time at the newest recorded event."""

    def now() -> datetime:
        with _CLOCK_LOCK:
            moment = inner()
            try:
                floor = datetime.fromisoformat(path.read_text(encoding="ascii").strip())
            except (OSError, ValueError):
                floor = None
            if floor is not None and floor.tzinfo is not None and moment <= floor:
                moment = floor + timedelta(microseconds=1)
            partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_text(moment.isoformat(), encoding="ascii")
            partial.replace(path)
            return moment

    return now


def _history_clock(state: EmulatorState) -> Callable[[], datetime]:
    """Time runs on from the end of the history, or from the newest thing journaled
    (deployment, build change, version, incident), so a later process never goes back."""
    stamps = [d["created_on"] for ds in state.deployments.values() for d in ds[-1:]]
    stamps += [v["metadata"]["created_on"] for vs in state.versions.values() for v in vs[-1:]]
    stamps += [b["modified_on"] for b in state.builds.values()]
    stamps += [i.get("resolved_at") or i.get("created_at") for i in state.incidents.values()]
    latest = [state.end] + [when for when in map(_instant, stamps) if when is not None]
    base, started = max(latest), time.monotonic()
    return lambda: base + timedelta(seconds=time.monotonic() - started + 1)


def _instant(text) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else None


def _read_request(environ) -> Request:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), query, headers, body)


def _encode(body) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body, separators=(",", ":")).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
