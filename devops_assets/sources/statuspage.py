"""The team's status page: incidents from Atlassian Statuspage's public API v2.

``GET <page>/api/v2/incidents.json`` needs no credentials and lists the
page's recent incidents, each with the components it affected. A component
name maps to one of our environments (``[incidents.components]``); an
incident is in the environment of its first mapped component, and one that
affects no mapped component is none of ours and left out. An incident whose
status is ``resolved`` or ``postmortem`` ended at its ``resolved_at`` (or, when
the page left that empty, at its last update); any other status means it is
still open. Its start is ``created_at``, when the team opened it.

The page is read whole, exactly or not at all: a value that cannot be read
raises a ``StatuspageError`` naming the page, the item and the field.
Redirects are not followed (a status page that moved should be configured
anew, not guessed), and every request has a time limit.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

from devops_assets.domain.models import Incident
from devops_assets.sources._deadline import DeadlineExceeded, read_limited, within

__all__ = [
    "EMULATOR_FEED",
    "StatuspageError",
    "read_statuspage",
    "read_statuspage_at",
    "statuspage_client_for",
]

INCIDENTS_PATH = "/api/v2/incidents.json"
EMULATOR_FEED = "emulator:"
EMULATOR_PAGE_URL = "http://status.emulator.invalid"  # never resolved: the transport is in-process
TIMEOUT_SECONDS = 10.0
DEADLINE_SECONDS = 20.0  # the whole exchange, however slowly the page answers
BODY_LIMIT = 5_000_000  # bytes: a status page's recent incidents are far less
STATUSES = ("investigating", "identified", "monitoring", "resolved", "postmortem")
RESOLVED = ("resolved", "postmortem")
_TIME = "an ISO 8601 time with a UTC offset"


class StatuspageError(RuntimeError):
    """The status page cannot be read, or answered something that is not its incident list."""


def read_statuspage(
    url: str, components: Mapping[str, str], client: httpx.Client | None = None
) -> list[Incident]:
    """The incidents of the page at ``url`` that affect a component in ``components``.

    ``components`` maps a component name to an environment. The incidents
    keep the page's order (newest first).
    """
    endpoint = url.rstrip("/") + INCIDENTS_PATH
    where = f"GET {_shown(endpoint)}"
    body = _fetch(endpoint, where, client)
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise StatuspageError(f"{where}: expected a JSON object with an incidents list, got {kind}")
    items = body.get("incidents")
    if not isinstance(items, list):
        raise StatuspageError(f"{where}: field incidents: expected a list, got {_show(items)}")
    found: list[Incident] = []
    seen: set[str] = set()
    for index, raw in enumerate(items):
        incident = _incident(_Item(where, index, raw), components)
        if incident is None:
            continue
        if incident.incident_id in seen:
            raise _Item(where, index, raw).fail("id", "an id no other incident has", raw["id"])
        seen.add(incident.incident_id)
        found.append(incident)
    return found


def statuspage_client_for(
    url: str, emulator_state: str | None, *, timeout: float = TIMEOUT_SECONDS
) -> tuple[str, httpx.Client]:
    """The base URL to read and a client that reaches it; the caller closes the client.

    ``emulator:`` is the demo's status page, served in-process by the emulator
    over the state folder ``emulator_state``.
    """
    if url != EMULATOR_FEED:
        return url, httpx.Client(follow_redirects=False, timeout=timeout)
    if not emulator_state:
        raise StatuspageError(
            f"status page {url!r}: needs the emulator state folder ([cloudflare] emulator_state)"
        )
    from devops_assets.emulator.app import load_app

    try:
        app = load_app(emulator_state, persist=True)
    except (OSError, ValueError) as exc:
        raise StatuspageError(f"status page {url!r}: {exc}") from None
    transport = httpx.WSGITransport(app=app)
    client = httpx.Client(transport=transport, follow_redirects=False, timeout=timeout)
    return EMULATOR_PAGE_URL, client


def read_statuspage_at(
    url: str, components: Mapping[str, str], emulator_state: str | None = None
) -> list[Incident]:
    """``read_statuspage`` through the client ``statuspage_client_for`` gives, closed after."""
    base, client = statuspage_client_for(url, emulator_state)
    with client:
        return read_statuspage(base, components, client)


def _fetch(endpoint: str, where: str, client: httpx.Client | None):
    own = client is None
    client = client or httpx.Client(follow_redirects=False, timeout=TIMEOUT_SECONDS)

    def exchange() -> tuple[httpx.Response, bytes | None]:
        with client.stream("GET", endpoint, follow_redirects=False) as answer:
            return answer, read_limited(answer, BODY_LIMIT)

    try:
        answer, body = within(DEADLINE_SECONDS, exchange, client)
    except (httpx.TimeoutException, DeadlineExceeded):
        raise StatuspageError(f"{where}: no answer within the time limit") from None
    except httpx.HTTPError as exc:
        raise StatuspageError(f"{where}: request failed ({type(exc).__name__})") from None
    finally:
        if own:
            client.close()
    if answer.is_redirect:
        target = _shown(answer.headers.get("location", ""))
        raise StatuspageError(
            f"{where}: answered HTTP {answer.status_code}, a redirect to {target!r} that is "
            "not followed; expected 200 with the incident list (configure the new URL)"
        )
    if answer.status_code != 200:
        raise StatuspageError(
            f"{where}: answered HTTP {answer.status_code}; expected 200 with the incident list"
        )
    if body is None:
        raise StatuspageError(f"{where}: the answer is larger than {BODY_LIMIT // 1_000_000} MB")
    try:
        return json.loads(body)
    except ValueError:
        kind = answer.headers.get("content-type", "no content type")
        raise StatuspageError(f"{where}: the body is not JSON ({kind}); expected JSON") from None


class _Item:
    """One incident of the answer, read field by field; errors name its index."""

    def __init__(self, where: str, index: int, raw):
        self.where, self.index, self.raw = where, index, raw

    def fail(self, field: str, expected: str, value) -> StatuspageError:
        return StatuspageError(
            f"{self.where}: item {self.index}, field {field}: expected {expected}, "
            f"got {_show(value)}"
        )

    def text(self, field: str) -> str:
        value = self.raw.get(field)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "a non-empty string", value)
        return value

    def time(self, field: str) -> datetime:
        value = self.raw.get(field)
        try:
            when = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise self.fail(field, _TIME, value)
        return when


def _incident(item: _Item, components: Mapping[str, str]) -> Incident | None:
    if not isinstance(item.raw, dict):
        raise StatuspageError(f"{item.where}: item {item.index}: expected an object")
    incident_id, status = item.text("id"), item.raw.get("status")
    if status not in STATUSES:
        raise item.fail("status", f"one of {', '.join(STATUSES)}", status)
    name = item.raw.get("name")
    if not isinstance(name, str):
        raise item.fail("name", "a string", name)
    environment = _environment(item, components)
    if environment is None:
        return None
    created = item.time("created_at")
    resolved = None
    if status in RESOLVED:
        resolved = item.time("resolved_at" if item.raw.get("resolved_at") else "updated_at")
        if resolved < created:
            field = "resolved_at" if item.raw.get("resolved_at") else "updated_at"
            raise item.fail(field, "a time not before created_at", item.raw.get(field))
    return Incident(incident_id, environment, created, resolved, None, name)


def _environment(item: _Item, components: Mapping[str, str]) -> str | None:
    """The environment of the first affected component that ``components`` names."""
    listed = item.raw.get("components")
    if not isinstance(listed, list):
        raise item.fail("components", "a list of components", listed)
    for position, component in enumerate(listed):
        name = component.get("name") if isinstance(component, dict) else None
        if not isinstance(name, str):
            raise item.fail(f"components[{position}].name", "a component name", name)
        if name in components:
            return components[name]
    return None


def _shown(url: str) -> str:
    """A URL as errors may show it: no user part, query or fragment (they may hold secrets)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(an unreadable URL)"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def _show(value) -> str:
    """``value`` as an error quotes it: its repr, kept short."""
    return _REPR.repr(value)
