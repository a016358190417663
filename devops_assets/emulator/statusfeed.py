"""The team's status page: Atlassian Statuspage's public ``/api/v2/incidents.json``.

Its incidents are the simulated history's (``incidents.json`` of the state
folder: same ids, open and resolve instants and titles, so the metrics do not
change when a platform file switches from the file to the feed) plus those
opened and resolved through the controls here, which the state journals.
Each incident's one component is the script that serves its environment. Like
a public status page it needs no token and does not know the deployment that
caused an incident: the metric engine finds that.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from devops_assets.emulator.wire import Reply, Request

STATUS_PATH = "/api/v2/incidents.json"
PAGE_URL = "https://status.moltworker.example"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class IncidentControls:
    """Mixed into the app, which provides ``state``, ``now`` and ``_lock``."""

    def open_incident(self, environment: str, title: str) -> str:
        """Open an incident in ``environment`` now; returns its id (``INC-nnn``)."""
        if environment not in self.state.environments:
            known = ", ".join(sorted(self.state.environments)) or "none"
            raise ValueError(
                f"open_incident: environment must be one of {known}, got {environment!r}"
            )
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"open_incident: title must be a non-empty text, got {title!r}")
        with self._lock:
            found = (re.fullmatch(r"INC-(\d+)", known) for known in self.state.incidents)
            numbers = [int(match[1]) for match in found if match]
            incident_id = f"INC-{max(numbers, default=0) + 1:03d}"
            self.state.record_incident(
                {
                    "id": incident_id,
                    "environment": environment,
                    "created_at": _second(self.now()).isoformat(),
                    "resolved_at": "",
                    "title": title.strip(),
                }
            )
            return incident_id

    def resolve_incident(self, incident_id: str) -> None:
        """Resolve an open incident now."""
        with self._lock:
            incident = self.state.incidents.get(incident_id)
            if incident is None:
                raise ValueError(
                    f"resolve_incident: incident_id {incident_id!r} is not in the feed"
                )
            if incident.get("resolved_at"):
                raise ValueError(
                    f"resolve_incident: incident_id {incident_id!r} was resolved already"
                )
            resolved = _second(self.now()).isoformat()
            self.state.record_incident({**incident, "resolved_at": resolved})


def incidents_page(state, req: Request) -> Reply:
    """The page and its incidents, newest first."""
    page_id = _short_id("page", state.account_id)
    incidents = [_incident(state, item, page_id) for item in state.incidents.values()]
    # Every time the feed writes is UTC in one format, so the text sorts as the time.
    incidents.sort(key=lambda i: (str(i["created_at"]), i["id"]), reverse=True)
    updated = max((str(i["updated_at"]) for i in incidents), default=None)
    page = {
        "id": page_id,
        "name": _page_name(state),
        "url": PAGE_URL,
        "time_zone": "Etc/UTC",
        "updated_at": updated or _time(state.end),
    }
    return Reply(200, {"page": page, "incidents": incidents})


def _incident(state, item: dict, page_id: str) -> dict:
    """One incident as Statuspage shows it; a time it cannot read is passed on as is."""
    created, resolved = item.get("created_at"), item.get("resolved_at") or None
    status = "resolved" if resolved else "investigating"
    script = state.environments.get(item.get("environment"), item.get("environment"))
    updates = [_update(item["id"], "investigating", created, "We are investigating.")]
    if resolved:
        updates.insert(0, _update(item["id"], "resolved", resolved, "This incident is resolved."))
    component = {
        "id": _short_id("component", str(script)),
        "name": script,
        "status": "operational" if resolved else "major_outage",
        "created_at": _time_or_raw(state.services.get(script, {}).get("created_on")),
        "updated_at": _time_or_raw(resolved or created),
        "position": 1,
        "description": None,
        "showcase": True,
        "start_date": None,
        "group_id": None,
        "page_id": page_id,
        "group": False,
        "only_show_if_degraded": False,
    }
    return {
        "id": item["id"],
        "name": item.get("title", ""),
        "status": status,
        "impact": "major" if item.get("environment") == "production" else "minor",
        "created_at": _time_or_raw(created),
        "updated_at": _time_or_raw(resolved or created),
        "monitoring_at": None,
        "resolved_at": _time_or_raw(resolved) if resolved else None,
        "started_at": _time_or_raw(created),
        "shortlink": f"{PAGE_URL}/incidents/{item['id']}",
        "page_id": page_id,
        "incident_updates": updates,
        "components": [component],
    }


def _update(incident_id: str, status: str, when, body: str) -> dict:
    stamp = _time_or_raw(when)
    return {
        "id": _short_id("update", incident_id, status),
        "incident_id": incident_id,
        "status": status,
        "body": body,
        "created_at": stamp,
        "updated_at": stamp,
        "display_at": stamp,
        "affected_components": None,
    }


def _page_name(state) -> str:
    production = state.environments.get("production")
    return production or next(iter(state.services), "status")


def _short_id(*parts: str) -> str:
    """A Statuspage-style 12-character id, stable for the same parts."""
    number = int(hashlib.sha256("/".join(parts).encode()).hexdigest(), 16)
    chars = []
    for _ in range(12):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def _time(when: datetime) -> str:
    """ISO 8601 with milliseconds and an explicit offset."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _time_or_raw(text):
    """A time of the feed file in the page's style; one without an offset, as it is."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return text
    return _time(when) if when.tzinfo is not None else text


def _second(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)
