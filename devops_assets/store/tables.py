"""The warehouse tables, keyed by the natural ids of what they hold.

Instants are stored in UTC (``timestamptz`` on PostgreSQL, ISO text on SQLite)
and always come back timezone-aware. Commits and tags also keep the offset, in
minutes, their clock was written with, so the original time round-trips.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

METADATA = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator):
    """An aware instant stored in UTC and read back as an aware UTC ``datetime``."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine:
        aware = dialect.name == "postgresql"
        return dialect.type_descriptor(sa.DateTime(timezone=aware))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: expected a timezone")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _text(name: str, **kwargs) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=kwargs.pop("nullable", False), **kwargs)


def _instant(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


def _offset(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=False)


# One row per git commit; parents space-separated, first parent first.
COMMITS = sa.Table(
    "commits",
    METADATA,
    _text("sha", primary_key=True),
    _text("parents"),
    _instant("author_time"),
    _offset("author_offset_min"),
    _instant("commit_time"),
    _offset("commit_offset_min"),
    _text("author_email"),
    _text("subject"),
    _text("body"),
    _text("trailers"),  # JSON list of [key, value] pairs, in message order
    _text("patch_id", nullable=True, server_default=None),
)

# One row per tag name, peeled to the commit it names.
TAGS = sa.Table(
    "tags",
    METADATA,
    _text("name", primary_key=True),
    _text("sha"),
    _instant("time"),
    _offset("time_offset_min"),
    sa.Column("annotated", sa.Boolean, nullable=False),
)

# One row per Workers Builds build; refreshed until it is stopped with an outcome.
BUILDS = sa.Table(
    "builds",
    METADATA,
    _text("build_uuid", primary_key=True),
    _text("worker"),
    _text("branch"),
    _text("commit_sha"),
    _text("status"),
    _text("outcome", nullable=True),
    _instant("created_on"),
    _instant("started_on", nullable=True),
    _instant("stopped_on", nullable=True),
    _text("trigger_source"),
    sa.Index("ix_builds_worker_created_on", "worker", "created_on"),
)

# One row per deployment of a worker (a deploy or a rollback).
DEPLOYMENTS = sa.Table(
    "deployments",
    METADATA,
    _text("deployment_id", primary_key=True),
    _text("worker"),
    _text("environment"),
    _instant("created_on"),
    _text("version_id"),
    sa.Column("percentage", sa.Float, nullable=False),
    _text("commit_sha", nullable=True),
    _text("kind"),
    _text("author_email"),
    _text("message"),
    _text("status", server_default="success"),
    sa.Index("ix_deployments_worker_env_created_on", "worker", "environment", "created_on"),
)

# One row per incident, as the incident feed last described it.
INCIDENTS = sa.Table(
    "incidents",
    METADATA,
    _text("incident_id", primary_key=True),
    _text("environment"),
    _instant("created_at"),
    _instant("resolved_at", nullable=True),
    _text("deployment_id", nullable=True),
    _text("title"),
)

# One row per metric, environment, worker ("" = all), grain and period; value NULL
# means nothing to measure. Derived: rebuilt whole when its shape changes.
METRIC_VALUES = sa.Table(
    "metric_values",
    METADATA,
    _text("metric", primary_key=True),
    _text("environment", primary_key=True),
    _text("worker", primary_key=True),
    _text("grain", primary_key=True),
    sa.Column("window_start", UtcDateTime(), primary_key=True),
    sa.Column("window_end", UtcDateTime(), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    _text("unit"),
    _text("tier", nullable=True),
)

# One row per quality-gate step result a CI step reported for a commit; a step
# reported again later is a new row (the latest one counts).
GATE_RECORDS = sa.Table(
    "gate_records",
    METADATA,
    _text("commit_sha", primary_key=True),
    _text("step", primary_key=True),
    sa.Column("recorded_at", UtcDateTime(), primary_key=True),
    _text("status"),
)

# Every decision and action, allowed or refused, in the order it happened. Append-only:
# the database itself refuses UPDATE and DELETE (see APPEND_ONLY_DDL).
AUDIT_LOG = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("entry", sa.Integer, sa.Identity(), primary_key=True),
    _instant("at"),
    _text("actor"),
    _text("action"),
    _text("environment"),
    _text("subject"),
    _text("outcome"),
    _text("reason"),
    _text("run_id"),
    _text("detail"),  # JSON object
    sa.Index("ix_audit_log_environment_at", "environment", "at"),
)

# The latest pipeline-health table: one row per metric and environment. Derived.
PIPELINE_HEALTH = sa.Table(
    "pipeline_health",
    METADATA,
    _text("metric", primary_key=True),
    _text("environment", primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    _text("unit"),
    _text("comparator"),
    sa.Column("target", sa.Float, nullable=False),
    _text("status"),
    _instant("window_start"),
    _instant("window_end"),
    _text("detail"),  # JSON object
)

# Tables computed from the others: a warehouse whose copy has another shape gets
# them dropped and created again (the next run fills them); source tables are
# only ever given missing columns that have a default.
DERIVED = frozenset({"metric_values", "pipeline_health"})

# Triggers that make audit_log append-only, per dialect (created if missing).
APPEND_ONLY_DDL = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        for verb in ("UPDATE", "DELETE")
    ]
    + [
        # INSERT OR REPLACE deletes the old row without firing DELETE triggers
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_replace BEFORE INSERT ON audit_log "
        "WHEN EXISTS (SELECT 1 FROM audit_log WHERE entry = NEW.entry) "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ],
}

# -- deploys ----------------------------------------------------------------------

# Who holds each environment's deploy lock: at most one row per environment. A row
# whose run has ended (crashed, cancelled) is taken over by the next deploy.
DEPLOY_LOCKS = sa.Table(
    "deploy_locks",
    METADATA,
    _text("environment", primary_key=True),
    _text("run_id"),
    _text("actor"),
    _text("commit_sha"),
    _instant("acquired_at"),
)

# One row per smoke run against a deployed version (each rollout step has its own).
SMOKE_RUNS = sa.Table(
    "smoke_runs",
    METADATA,
    _text("environment", primary_key=True),
    _text("version_id", primary_key=True),
    sa.Column("at", UtcDateTime(), primary_key=True),
    _text("commit_sha"),
    sa.Column("percentage", sa.Float, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    _text("run_id"),
    _text("results"),  # JSON list of {name, passed, reason, seconds, status}
)

# One row per production release: the tag on the deployed commit and its changelog.
RELEASES = sa.Table(
    "releases",
    METADATA,
    _text("tag", primary_key=True),
    _text("version"),
    _text("commit_sha"),
    _text("environment"),
    _instant("released_at"),
    _text("previous_tag", nullable=True),
    _text("bump"),
    _text("changelog"),
    _text("version_id"),  # the Workers version deployed
    _text("rollback_target", nullable=True),  # the Workers version to go back to
    _text("run_id"),
    sa.Column("pushed", sa.Boolean, nullable=False),
)

# Commits a sensor saw pushed, waiting for their build before they deploy.
DEPLOY_REQUESTS = sa.Table(
    "deploy_requests",
    METADATA,
    _text("request_id", primary_key=True),  # "<branch>:<sha>"
    _text("branch"),
    _text("commit_sha"),
    _text("environment"),
    _instant("requested_at"),
    _text("state"),  # waiting | claimed | launched | build_failed | superseded
    _text("detail"),
    _instant("updated_at"),
    _text("claimed_by", nullable=True),
)
