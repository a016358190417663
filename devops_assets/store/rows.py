"""Turn domain records into table rows and back, refusing bad values up front.

Every record of a batch is checked before anything is written, so a bad
value stops the whole batch with one :class:`WarehouseError` naming the table,
the row's key and the field, and the table is left as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from devops_assets.domain.guards import GATE_STATUSES, GateRecord
from devops_assets.domain.models import (
    BUILD_OUTCOMES,
    BUILD_STATUSES,
    DEPLOYMENT_KINDS,
    DEPLOYMENT_STATUSES,
    AuditEntry,
    Build,
    Commit,
    Deployment,
    HealthRow,
    Incident,
    MetricValue,
    Tag,
)
from devops_assets.store import tables as t


class WarehouseError(ValueError):
    """A record cannot be stored: its table, key and field are named."""

    def __init__(self, table: str, key: object, field: str, problem: str):
        super().__init__(f"{table} row {key!r}: field '{field}': {problem}")
        self.table, self.key, self.field = table, key, field


class _Check:
    """Checks the fields of one record; every error names table, key and field."""

    def __init__(self, table: str, key: object):
        self.table, self.key = table, key

    def fail(self, field: str, expected: str, value: Any) -> WarehouseError:
        shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:77]}..."
        problem = f"expected {expected}, got {shown}"
        return WarehouseError(self.table, self.key, field, problem)

    def text(self, field: str, value: Any, *, nullable: bool = False) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise self.fail(field, "a string", value)
        return value

    def key_text(self, field: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "a non-empty string", value)
        return value

    def choice(
        self, field: str, value: Any, choices: tuple[str, ...], *, nullable: bool = False
    ) -> str | None:
        if (value is None and nullable) or value in choices:
            return value
        raise self.fail(field, f"one of {', '.join(choices)}", value)

    def moment(self, field: str, value: Any, *, nullable: bool = False) -> datetime | None:
        if value is None and nullable:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise self.fail(field, "a timezone-aware datetime", value)
        return value.astimezone(UTC)

    def offset_min(self, field: str, value: datetime) -> int:
        seconds = value.utcoffset().total_seconds()
        if seconds % 60:
            raise self.fail(field, "a UTC offset of whole minutes", value)
        return int(seconds // 60)

    def number(self, field: str, value: Any, *, nullable: bool = False) -> float | None:
        if value is None and nullable:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):
            raise self.fail(field, "a finite number", value)
        return float(value)

    def flag(self, field: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, "True or False", value)
        return value

    def json_text(self, field: str, value: Any) -> str:
        try:
            return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise self.fail(field, f"JSON-serializable data ({exc})", value) from None


def _with_offset(utc: datetime, minutes: int) -> datetime:
    return utc.astimezone(timezone(timedelta(minutes=minutes)))


def _commit_row(c: Commit) -> dict[str, Any]:
    check = _Check("commits", c.sha)
    parents = c.parents if isinstance(c.parents, tuple | list) else None
    if parents is None or any(not isinstance(p, str) or not p or " " in p for p in parents):
        raise check.fail("parents", "a tuple of shas without spaces", c.parents)
    trailers = _trailer_pairs(c.trailers)
    if trailers is None:
        raise check.fail("trailers", "a tuple of (key, value) string pairs", c.trailers)
    return {
        "sha": check.key_text("sha", c.sha),
        "parents": " ".join(parents),
        "author_time": check.moment("author_time", c.author_time),
        "author_offset_min": check.offset_min("author_time", c.author_time),
        "commit_time": check.moment("commit_time", c.commit_time),
        "commit_offset_min": check.offset_min("commit_time", c.commit_time),
        "author_email": check.text("author_email", c.author_email),
        "subject": check.text("subject", c.subject),
        "body": check.text("body", c.body),
        "trailers": check.json_text("trailers", trailers),
        "patch_id": check.text("patch_id", c.patch_id, nullable=True),
    }


def _trailer_pairs(value: Any) -> list[list[str]] | None:
    if not isinstance(value, tuple | list):
        return None
    pairs = [list(pair) if isinstance(pair, tuple | list) else [] for pair in value]
    if any(len(pair) != 2 or not all(isinstance(x, str) for x in pair) for pair in pairs):
        return None
    return pairs


def _commit(row: sa.Row) -> Commit:
    return Commit(
        sha=row.sha,
        parents=tuple(row.parents.split()),
        author_time=_with_offset(row.author_time, row.author_offset_min),
        commit_time=_with_offset(row.commit_time, row.commit_offset_min),
        author_email=row.author_email,
        subject=row.subject,
        body=row.body,
        trailers=tuple((k, v) for k, v in json.loads(row.trailers)),
        patch_id=row.patch_id,
    )


def _tag_row(tag: Tag) -> dict[str, Any]:
    check = _Check("tags", tag.name)
    return {
        "name": check.key_text("name", tag.name),
        "sha": check.key_text("sha", tag.sha),
        "time": check.moment("time", tag.time),
        "time_offset_min": check.offset_min("time", tag.time),
        "annotated": check.flag("annotated", tag.annotated),
    }


def _tag(row: sa.Row) -> Tag:
    return Tag(row.name, row.sha, _with_offset(row.time, row.time_offset_min), row.annotated)


def _build_row(b: Build) -> dict[str, Any]:
    check = _Check("builds", b.build_uuid)
    return {
        "build_uuid": check.key_text("build_uuid", b.build_uuid),
        "worker": check.key_text("worker", b.worker),
        "branch": check.text("branch", b.branch),
        "commit_sha": check.text("commit_sha", b.commit_sha),
        "status": check.choice("status", b.status, BUILD_STATUSES),
        "outcome": check.choice("outcome", b.outcome, BUILD_OUTCOMES, nullable=True),
        "created_on": check.moment("created_on", b.created_on),
        "started_on": check.moment("started_on", b.started_on, nullable=True),
        "stopped_on": check.moment("stopped_on", b.stopped_on, nullable=True),
        "trigger_source": check.text("trigger_source", b.trigger_source),
    }


def _build(row: sa.Row) -> Build:
    return Build(**row._asdict())


def _deployment_row(d: Deployment) -> dict[str, Any]:
    check = _Check("deployments", d.deployment_id)
    return {
        "deployment_id": check.key_text("deployment_id", d.deployment_id),
        "worker": check.key_text("worker", d.worker),
        "environment": check.key_text("environment", d.environment),
        "created_on": check.moment("created_on", d.created_on),
        "version_id": check.text("version_id", d.version_id),
        "percentage": check.number("percentage", d.percentage),
        "commit_sha": check.text("commit_sha", d.commit_sha, nullable=True),
        "kind": check.choice("kind", d.kind, DEPLOYMENT_KINDS),
        "author_email": check.text("author_email", d.author_email),
        "message": check.text("message", d.message),
        "status": check.choice("status", d.status, DEPLOYMENT_STATUSES),
    }


def _deployment(row: sa.Row) -> Deployment:
    return Deployment(**row._asdict())


def _incident_row(i: Incident) -> dict[str, Any]:
    check = _Check("incidents", i.incident_id)
    created = check.moment("created_at", i.created_at)
    resolved = check.moment("resolved_at", i.resolved_at, nullable=True)
    if resolved is not None and resolved < created:
        raise check.fail("resolved_at", "a time at or after created_at", i.resolved_at)
    return {
        "incident_id": check.key_text("incident_id", i.incident_id),
        "environment": check.key_text("environment", i.environment),
        "created_at": created,
        "resolved_at": resolved,
        "deployment_id": check.text("deployment_id", i.deployment_id, nullable=True),
        "title": check.text("title", i.title),
    }


def _incident(row: sa.Row) -> Incident:
    return Incident(**row._asdict())


def _gate_row(g: GateRecord) -> dict[str, Any]:
    check = _Check("gate_records", (g.commit_sha, g.step))
    return {
        "commit_sha": check.key_text("commit_sha", g.commit_sha),
        "step": check.key_text("step", g.step),
        "recorded_at": check.moment("recorded_at", g.recorded_at),
        "status": check.choice("status", g.status, GATE_STATUSES),
    }


def _gate(row: sa.Row) -> GateRecord:
    return GateRecord(**row._asdict())


def _audit_row(a: AuditEntry) -> dict[str, Any]:
    check = _Check("audit_log", (a.action, a.subject))
    if not isinstance(a.detail, dict):
        raise check.fail("detail", "a dict", a.detail)
    return {
        "at": check.moment("at", a.at),
        "actor": check.key_text("actor", a.actor),
        "action": check.key_text("action", a.action),
        "environment": check.text("environment", a.environment),
        "subject": check.text("subject", a.subject),
        "outcome": check.key_text("outcome", a.outcome),
        "reason": check.text("reason", a.reason),
        "run_id": check.text("run_id", a.run_id),
        "detail": check.json_text("detail", a.detail),
    }


def _audit(row: sa.Row) -> AuditEntry:
    fields = row._asdict()
    fields.pop("entry")
    fields["detail"] = json.loads(fields["detail"])
    return AuditEntry(**fields)


def _metric_row(m: MetricValue) -> dict[str, Any]:
    check = _Check(
        "metric_values", (m.metric, m.environment, m.worker, m.grain, str(m.window_start))
    )
    return {
        "metric": check.key_text("metric", m.metric),
        "environment": check.key_text("environment", m.environment),
        "worker": check.text("worker", m.worker),
        "grain": check.key_text("grain", m.grain),
        "tier": check.text("tier", m.tier, nullable=True),
        "window_start": check.moment("window_start", m.window_start),
        "window_end": check.moment("window_end", m.window_end),
        "value": check.number("value", m.value, nullable=True),
        "unit": check.text("unit", m.unit),
    }


def _metric(row: sa.Row) -> MetricValue:
    return MetricValue(**row._asdict())


def _health_row(h: HealthRow) -> dict[str, Any]:
    check = _Check("pipeline_health", (h.metric, h.environment))
    if not isinstance(h.detail, dict):
        raise check.fail("detail", "a dict", h.detail)
    return {
        "metric": check.key_text("metric", h.metric),
        "environment": check.key_text("environment", h.environment),
        "value": check.number("value", h.value, nullable=True),
        "unit": check.text("unit", h.unit),
        "comparator": check.text("comparator", h.comparator),
        "target": check.number("target", h.target),
        "status": check.text("status", h.status),
        "window_start": check.moment("window_start", h.window_start),
        "window_end": check.moment("window_end", h.window_end),
        "detail": check.json_text("detail", h.detail),
    }


def _health(row: sa.Row) -> HealthRow:
    fields = row._asdict()
    fields["detail"] = json.loads(fields["detail"])
    return HealthRow(**fields)


@dataclass(frozen=True)
class RecordTable:
    """How one record type maps to its table, and the order rows are read in."""

    table: sa.Table
    record: type
    to_row: Callable[[Any], dict[str, Any]]
    from_row: Callable[[sa.Row], Any]
    order_by: tuple[str, ...]

    def rows(self, records: Iterable[Any]) -> list[dict[str, Any]]:
        """Checked rows, one per key; a later record of the same key wins."""
        by_key: dict[tuple, dict[str, Any]] = {}
        for i, record in enumerate(records):
            if not isinstance(record, self.record):
                raise _Check(self.table.name, f"#{i}").fail(
                    "(record)", f"a {self.record.__name__}", type(record).__name__
                )
            row = self.to_row(record)
            by_key[tuple(row[c.name] for c in self.table.primary_key)] = row
        return list(by_key.values())


COMMITS = RecordTable(t.COMMITS, Commit, _commit_row, _commit, ("commit_time", "sha"))
TAGS = RecordTable(t.TAGS, Tag, _tag_row, _tag, ("name",))
BUILDS = RecordTable(t.BUILDS, Build, _build_row, _build, ("created_on", "build_uuid"))
DEPLOYMENTS = RecordTable(
    t.DEPLOYMENTS, Deployment, _deployment_row, _deployment, ("created_on", "deployment_id")
)
GATE_RECORDS = RecordTable(
    t.GATE_RECORDS, GateRecord, _gate_row, _gate, ("commit_sha", "recorded_at", "step")
)
AUDIT_LOG = RecordTable(t.AUDIT_LOG, AuditEntry, _audit_row, _audit, ("entry",))
INCIDENTS = RecordTable(
    t.INCIDENTS, Incident, _incident_row, _incident, ("created_at", "incident_id")
)
METRIC_VALUES = RecordTable(
    t.METRIC_VALUES,
    MetricValue,
    _metric_row,
    _metric,
    ("metric", "environment", "worker", "grain", "window_start", "window_end"),
)
PIPELINE_HEALTH = RecordTable(
    t.PIPELINE_HEALTH, HealthRow, _health_row, _health, ("metric", "environment")
)
