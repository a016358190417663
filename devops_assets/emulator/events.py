"""The ground-truth events of a played timeline, as plain dicts, and their JSON form.

These are independent of the API's shapes: what happened, with commit shas,
aware datetimes and ids. ``events.json`` stores them with ISO 8601 times.
"""

from __future__ import annotations

from datetime import datetime

from devops_assets.emulator.records import (
    SimBuild,
    SimCommit,
    SimDeployment,
    SimIncident,
    SimTag,
)
from devops_assets.emulator.timeline import Timeline

LISTS = ("commits", "builds", "deployments", "incidents", "tags")
# Lists an older events.json may lack; they read back as empty.
OPTIONAL_LISTS = frozenset(("tags",))
TIME_KEYS = frozenset(
    (
        "author_time",
        "commit_time",
        "created_on",
        "running_on",
        "stopped_on",
        "opened_at",
        "resolved_at",
        "time",
    )
)


def timeline_events(tl: Timeline, shas: dict[int, str]) -> dict[str, list[dict]]:
    """Every list of events, oldest first."""
    numbers = {v.id: v.number for v in tl.versions}
    return {
        "commits": [commit_event(c, shas) for c in tl.commits],
        "builds": sorted((build_event(b, shas) for b in tl.builds), key=lambda b: b["created_on"]),
        "deployments": [
            deployment_event(d, shas, numbers[d.version_id])
            for d in sorted(tl.deployments, key=lambda d: d.created_on)
        ],
        "incidents": [incident_event(i) for i in tl.incidents],
        "tags": [tag_event(t, shas) for t in sorted(tl.tags, key=lambda t: (t.time, t.name))],
    }


def commit_event(c: SimCommit, shas: dict[int, str]) -> dict:
    return {
        "sha": shas[c.mark],
        "parents": [shas[p] for p in c.parents],
        "branch": c.branch,
        "author_time": c.author_time,
        "commit_time": c.commit_time,
        "subject": c.subject,
        "author_email": c.author.email,
    }


def build_event(b: SimBuild, shas: dict[int, str]) -> dict:
    return {
        "uuid": b.uuid,
        "worker": b.env.worker,
        "environment": b.env.name,
        "branch": b.env.branch,
        "commit_sha": shas[b.mark],
        "status": b.status,
        "outcome": b.outcome,
        "created_on": b.created_on,
        "running_on": b.running_on,
        "stopped_on": b.stopped_on,
        "trigger_source": b.trigger_source,
    }


def deployment_event(d: SimDeployment, shas: dict[int, str], number: int) -> dict:
    return {
        "id": d.id,
        "worker": d.env.worker,
        "environment": d.env.name,
        "created_on": d.created_on,
        "version_id": d.version_id,
        "version_number": number,
        "commit_sha": shas[d.mark],
        "kind": d.kind,
        "message": d.message,
    }


def incident_event(i: SimIncident) -> dict:
    return {
        "id": i.id,
        "environment": i.environment,
        "opened_at": i.opened_at,
        "resolved_at": i.resolved_at,
        "deployment_id": i.deployment_id,
        "title": i.title,
    }


def tag_event(t: SimTag, shas: dict[int, str]) -> dict:
    """``sha`` is the tagged commit; ``time`` the tagger date, or the commit's if lightweight."""
    return {
        "name": t.name,
        "sha": shas[t.mark],
        "annotated": t.annotated,
        "time": t.time,
        "deployment_id": t.deployment_id,
    }


def to_json(event: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in event.items()}


def from_json(event: dict) -> dict:
    return {
        k: datetime.fromisoformat(v) if k in TIME_KEYS and isinstance(v, str) else v
        for k, v in event.items()
    }
