"""Build logs and their triage in the warehouse.

``build_logs`` keeps one row per build whose log was fetched: the log text with
secret-looking values already masked (``devops_assets.triage.mask``), so no
value a build printed reaches a table. A log never changes once its build has
stopped, so it is fetched once: the asset asks only for builds without a row.
``build_triages`` keeps the triage of each failed build, rewritten on every run
(re-triaging a stored log costs nothing and picks up better rules). Both are
written with upserts keyed by build uuid, each batch in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from devops_assets.store import tables as t

BUILD_LOGS = sa.Table(
    "build_logs",
    t.METADATA,
    t._text("build_uuid", primary_key=True),
    t._text("worker"),
    sa.Column("line_count", sa.Integer, nullable=False),
    t._text("text"),  # masked; lines joined with "\n"
    t._instant("fetched_at"),
)

BUILD_TRIAGES = sa.Table(
    "build_triages",
    t.METADATA,
    t._text("build_uuid", primary_key=True),
    t._text("worker"),
    t._text("branch"),
    t._text("commit_sha"),
    t._instant("created_on"),
    t._text("category"),
    t._text("step"),
    sa.Column("evidence_start", sa.Integer, nullable=False),
    sa.Column("evidence_end", sa.Integer, nullable=False),
    t._text("evidence"),  # JSON list of the masked evidence lines
    t._text("summary"),
    t._text("signature"),
    sa.Column("certain", sa.Boolean, nullable=False),
    t._text("passing_build", nullable=True),  # the passing build compared with, if any
    t._instant("triaged_at"),
    sa.Index("ix_build_triages_signature", "signature"),
)


@dataclass(frozen=True)
class StoredLog:
    build_uuid: str
    worker: str
    line_count: int
    text: str
    fetched_at: datetime


@dataclass(frozen=True)
class TriageRecord:
    """The triage of one failed build, as stored."""

    build_uuid: str
    worker: str
    branch: str
    commit_sha: str
    created_on: datetime
    category: str
    step: str
    evidence_start: int
    evidence_end: int
    evidence: tuple[str, ...]
    summary: str
    signature: str
    certain: bool
    passing_build: str | None
    triaged_at: datetime


class TriageLedger:
    """Reads and writes the build-log and triage tables of one warehouse."""

    def __init__(self, warehouse):
        self._warehouse = warehouse
        self.engine = warehouse.engine

    def _write(self, table: sa.Table, rows: list[dict]) -> int:
        return self._warehouse.upsert_rows(table, rows)

    # -- logs -------------------------------------------------------------------------

    def store_logs(self, logs: Iterable[StoredLog]) -> int:
        """Store fetched logs (already masked); a build stored again is rewritten."""
        return self._write(BUILD_LOGS, [dict(vars(log)) for log in logs])

    def logged_builds(self) -> set[str]:
        """The uuids of builds whose log is stored."""
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(BUILD_LOGS.c.build_uuid)).scalars())

    def log(self, build_uuid: str) -> StoredLog | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(BUILD_LOGS).where(BUILD_LOGS.c.build_uuid == build_uuid)
            ).one_or_none()
        return StoredLog(**row._asdict()) if row is not None else None

    # -- triages ----------------------------------------------------------------------

    def record_triages(self, records: Iterable[TriageRecord]) -> int:
        rows = []
        for record in records:
            row = dict(vars(record))
            row["evidence"] = json.dumps(list(record.evidence), ensure_ascii=False)
            rows.append(row)
        return self._write(BUILD_TRIAGES, rows)

    def triage(self, build_uuid: str) -> TriageRecord | None:
        found = self._triages(BUILD_TRIAGES.c.build_uuid == build_uuid)
        return found[0] if found else None

    def triages(self, worker: str | None = None) -> list[TriageRecord]:
        """Every stored triage (of one worker when given), oldest build first."""
        where = [] if worker is None else [BUILD_TRIAGES.c.worker == worker]
        return self._triages(*where)

    def _triages(self, *where) -> list[TriageRecord]:
        query = sa.select(BUILD_TRIAGES).where(*where)
        query = query.order_by(BUILD_TRIAGES.c.created_on, BUILD_TRIAGES.c.build_uuid)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            TriageRecord(**{**row._asdict(), "evidence": tuple(json.loads(row.evidence))})
            for row in rows
        ]
