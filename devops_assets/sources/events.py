"""Read a team's own delivery history from CSV or JSON files in one folder.

A team whose deployments do not come from the Cloudflare API (another
platform, or a history older than the API keeps) exports its events itself
and runs ``devops-assets report --events DIR``. These files are then the only
source, so nothing is guessed: a value that cannot be read exactly stops the
load with an ``EventsError`` naming the file, the row and the column. The
schema is in docs/events.md.

This module holds the public API, the four tables and how a row of each
becomes a record. ``_events_row`` reads one record's cells (and defines
``EventsError``), ``_events_files`` reads a CSV or JSON file into records and
``_events_graph`` checks the commit graph.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from devops_assets.domain.models import (
    DEPLOYMENT_KINDS,
    DEPLOYMENT_STATUSES,
    Build,
    Commit,
    Deployment,
    Incident,
)
from devops_assets.sources._events_files import _read, _Table
from devops_assets.sources._events_graph import _no_parent_cycle, _parents_of
from devops_assets.sources._events_row import _TIME, EventsError, _Row
from devops_assets.sources.git import parse_trailers

__all__ = ["EventHistory", "EventsError", "load_events", "read_incidents"]

_BUILD_OUTCOMES = {"success": "success", "failure": "fail", "cancelled": "cancelled"}
_BUILD_STATUSES = tuple(_BUILD_OUTCOMES)


@dataclass(frozen=True)
class EventHistory:
    """Everything one events folder holds; each file's records keep the file's order."""

    commits: tuple[Commit, ...]
    deployments: tuple[Deployment, ...]
    incidents: tuple[Incident, ...]
    builds: tuple[Build, ...]


# --- one function per file: a row's cells to a record -------------------------------------


def _deployment(row: _Row) -> Deployment:
    deployment_id = row.text("id")
    environment = row.text("environment")
    finished = row.time("finished_at")
    status = row.choice("status", DEPLOYMENT_STATUSES)
    commit_sha = row.optional_sha("commit_sha")
    kind = row.choice("kind", DEPLOYMENT_KINDS, empty="deploy")
    return Deployment(
        deployment_id=deployment_id,
        worker=row.label("worker"),
        environment=environment,
        created_on=finished,
        version_id=row.label("version") or commit_sha or deployment_id,
        percentage=100.0,
        commit_sha=commit_sha,
        kind=kind,
        author_email=row.label("author_email"),
        message=row.cell("message"),
        status=status,
    )


def _commit(row: _Row) -> Commit:
    sha = row.sha("sha")
    parents = _parents_of(row, sha)
    author_time = row.time("author_time")
    commit_time = row.time("commit_time")
    subject, body = _subject_and_body(row)
    return Commit(
        sha=sha,
        parents=parents,
        author_time=author_time,
        commit_time=commit_time,
        author_email=row.label("author_email"),
        subject=subject,
        body=body,
        trailers=parse_trailers(body) if body else (),
        patch_id=row.optional_sha("patch_id"),
    )


def _subject_and_body(row: _Row) -> tuple[str, str]:
    """From their own columns, or split from ``message`` the way git shows one."""
    message = row.cell("message")
    if not message:
        return row.cell("subject"), row.cell("body")
    if row.cell("subject") or row.cell("body"):
        raise row.fail("message", "empty when subject or body is given", message)
    subject, _, rest = message.partition("\n")
    lines = rest.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)  # the blank line(s) between subject and body are layout, not text
    return subject.rstrip("\r"), "\n".join(lines)


def _incident(row: _Row) -> Incident:
    incident_id = row.text("id")
    environment = row.text("environment")
    created = row.time("created_at")
    resolved = row.optional_time("resolved_at")
    if resolved is not None and resolved < created:
        expected = f"a time not before created_at ({row.cell('created_at')})"
        raise row.fail("resolved_at", expected, row.cell("resolved_at"))
    return Incident(
        incident_id=incident_id,
        environment=environment,
        created_at=created,
        resolved_at=resolved,
        deployment_id=row.label("deployment_id") or None,
        title=row.cell("title"),
    )


def _build(row: _Row) -> Build:
    build_uuid = row.text("id")
    commit_sha = row.sha("commit_sha")
    branch = row.text("branch")
    status = row.choice("status", _BUILD_STATUSES)
    created = row.time("created_at")
    started = _build_time(row, "started_at", status)
    finished = _build_time(row, "finished_at", status)
    if started is not None and finished is not None and finished < started:
        expected = f"a time not before started_at ({row.cell('started_at')})"
        raise row.fail("finished_at", expected, row.cell("finished_at"))
    return Build(
        build_uuid=build_uuid,
        worker=row.label("worker"),
        branch=branch,
        commit_sha=commit_sha,
        status="stopped",
        outcome=_BUILD_OUTCOMES[status],
        created_on=created,
        started_on=started,
        stopped_on=finished,
    )


def _build_time(row: _Row, column: str, status: str) -> datetime | None:
    """A cancelled build may never have started, so only its times may be empty."""
    value = row.cell(column)
    if value:
        return row.time_of(column, value)
    if status == "cancelled":
        return None
    raise row.fail(column, f"{_TIME} (only a cancelled build may leave it empty)", "")


_TABLES = {
    table.name: table
    for table in (
        _Table(
            "deployments",
            ("id", "environment", "finished_at", "status", "commit_sha", "kind"),
            ("worker", "version", "message", "author_email"),
            _deployment,
            "id",
            attrgetter("deployment_id"),
        ),
        _Table(
            "commits",
            ("sha", "parents", "author_time", "commit_time"),
            ("author_email", "subject", "body", "message", "patch_id"),
            _commit,
            "sha",
            attrgetter("sha"),
            _no_parent_cycle,
        ),
        _Table(
            "incidents",
            ("id", "environment", "created_at", "resolved_at"),
            ("deployment_id", "title"),
            _incident,
            "id",
            attrgetter("incident_id"),
        ),
        _Table(
            "builds",
            ("id", "commit_sha", "branch", "status", "created_at", "started_at", "finished_at"),
            ("worker",),
            _build,
            "id",
            attrgetter("build_uuid"),
        ),
    )
}


# --- reading the folder -------------------------------------------------------------------


def load_events(directory: str | os.PathLike[str]) -> EventHistory:
    """Read every events file in ``directory``; only ``deployments`` is required.

    Each file is ``<name>.csv`` or ``<name>.json``. Every file is read and checked
    before anything is returned, so a report never measures half a history.
    """
    folder = Path(directory)
    if not folder.exists():
        raise EventsError(f"events folder {folder} does not exist")
    if not folder.is_dir():
        raise EventsError(f"events folder {folder} is not a folder")
    paths = {name: _find(folder, name) for name in _TABLES}
    deployments = paths["deployments"]
    if deployments is None:
        raise EventsError(
            f"events folder {folder} has no deployments.csv or deployments.json; "
            "deployments are required (commits, incidents and builds are optional)"
        )
    records: dict[str, tuple[Any, ...]] = {}
    for name, path in paths.items():  # deployments first: incidents name them
        check = None
        if name == "incidents":
            check = _caused_by_a_deployment(records["deployments"], deployments.name)
        records[name] = _read(path, _TABLES[name], check) if path else ()
    return EventHistory(**records)


def _caused_by_a_deployment(
    deployments: tuple[Deployment, ...], file: str
) -> Callable[[Incident, _Row], None]:
    """In a folder, an incident's ``deployment_id`` must name one of its deployments:
    the engine would otherwise fall back to guessing the deployment that caused it."""
    ids = {deployment.deployment_id for deployment in deployments}
    expected = f"the id of a deployment in {file}"

    def check(incident: Incident, row: _Row) -> None:
        if incident.deployment_id is not None and incident.deployment_id not in ids:
            raise row.fail("deployment_id", expected, incident.deployment_id)

    return check


def read_incidents(path: str | os.PathLike[str]) -> tuple[Incident, ...]:
    """One incidents file (``.csv`` or ``.json``, the ``incidents`` schema): the
    incident feed ``[incidents] file`` of the platform file names."""
    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise EventsError(f"incident feed {path}: a .csv or .json file in the incidents schema")
    if not path.is_file():
        raise EventsError(f"incident feed {path} does not exist or is not a file")
    return _read(path, _TABLES["incidents"])


def _find(folder: Path, name: str) -> Path | None:
    found = [path for path in (folder / f"{name}.csv", folder / f"{name}.json") if path.exists()]
    if len(found) > 1:
        raise EventsError(
            f"events folder {folder} has both {name}.csv and {name}.json; "
            "keep one (which to read would be a guess)"
        )
    return found[0] if found else None
