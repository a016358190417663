"""The warehouse: what was ingested and measured, in SQL tables keyed by natural ids.

A SQLite file by default, PostgreSQL when given a PostgreSQL URL. Every write
is one transaction: records are checked first, then upserted by key (or, for
the pipeline-health table, swapped in whole). Re-running an ingest therefore
rewrites the same rows, and a failure part-way leaves every table as it was.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from devops_assets.domain.guards import GateRecord
from devops_assets.domain.models import (
    AuditEntry,
    Build,
    Commit,
    Deployment,
    HealthRow,
    Incident,
    MetricValue,
    Tag,
)
from devops_assets.store import d1_ledger as _d1_ledger  # noqa: F401 (its table)
from devops_assets.store import rows as r
from devops_assets.store import secrets_ledger as _secret_tables  # noqa: F401  (its tables)
from devops_assets.store import triage_ledger as _triage_tables  # noqa: F401  (its tables)
from devops_assets.store.postgres import normalize_url
from devops_assets.store.rows import WarehouseError
from devops_assets.store.tables import APPEND_ONLY_DDL, BUILDS, DERIVED, METADATA

log = logging.getLogger(__name__)

# Rows per executemany call. Each row is bound on its own (SQLite) or packed into
# multi-row VALUES pages by SQLAlchemy (PostgreSQL), so no bound-variable limit is hit.
CHUNK_ROWS = 2000
SQLITE_BUSY_TIMEOUT_S = 30
_DDL_LOCK_KEY = 0x5EED_DA7A  # pg advisory lock: one process creates the tables at a time


class WarehouseWriteError(RuntimeError):
    """The database refused a write; the whole batch was rolled back."""


class Warehouse:
    """Tables of commits, tags, builds, deployments, metric values and pipeline health.

    ``url`` is a SQLAlchemy URL: ``sqlite:///path`` (parent folders are created)
    or ``postgresql://...`` (read with the psycopg2 driver). The tables are
    created on first use; creating them again is a no-op.
    """

    def __init__(self, url: str):
        self.url = normalize_url(url)
        self.engine = _create_engine(self.url)
        self.create_all()

    @property
    def deploys(self):
        """The deploy tables: locks, smoke runs, releases, pushed commits."""
        from devops_assets.store.ledger import DeployLedger

        return DeployLedger(self)

    @property
    def secrets(self):
        """The secret-rotation tables: requests, approvals, versions made, inventory."""
        from devops_assets.store.secrets_ledger import SecretsLedger

        return SecretsLedger(self)

    @property
    def d1(self):
        """The checksums of the D1 migrations the platform applied."""
        from devops_assets.store.d1_ledger import D1Ledger

        return D1Ledger(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Warehouse({self.engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections; the object can still be used afterwards."""
        self.engine.dispose()

    def create_all(self) -> None:
        """Create missing tables and indexes and bring older ones up to date (see
        ``_migrate``); one process at a time does it."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            with _sqlite_schema_lock(self.engine.url.database):
                self._create_all()
        else:
            self._create_all()

    def _create_all(self) -> None:
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DDL_LOCK_KEY)))
            _migrate(conn)
            for table in METADATA.sorted_tables:
                conn.execute(CreateTable(table, if_not_exists=True))
                for index in sorted(table.indexes, key=lambda i: i.name):
                    conn.execute(CreateIndex(index, if_not_exists=True))
            # Replacing a PostgreSQL trigger locks audit_log until every transaction
            # that wrote to it ends: only create it where it is missing.
            installed = (
                self.dialect == "postgresql"
                and conn.exec_driver_sql(
                    "SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_append_only'"
                ).first()
            )
            for statement in () if installed else APPEND_ONLY_DDL.get(self.dialect, ()):
                conn.exec_driver_sql(statement)

    # -- writes -------------------------------------------------------------------

    def upsert_commits(self, commits: Iterable[Commit]) -> int:
        """Store commits by sha; a commit seen again is rewritten, never duplicated."""
        return self._upsert(r.COMMITS, r.COMMITS.rows(commits))

    def upsert_tags(self, tags: Iterable[Tag]) -> int:
        """Store tags by name; a moved tag points at its new commit afterwards."""
        return self._upsert(r.TAGS, r.TAGS.rows(tags))

    def upsert_builds(self, builds: Iterable[Build]) -> int:
        """Store builds by uuid; a build fetched again replaces its earlier state."""
        return self._upsert(r.BUILDS, r.BUILDS.rows(builds))

    def upsert_deployments(self, deployments: Iterable[Deployment]) -> int:
        """Store deployments by id; re-ingesting the same history changes nothing."""
        return self._upsert(r.DEPLOYMENTS, r.DEPLOYMENTS.rows(deployments))

    def replace_incidents(self, incidents: Iterable[Incident]) -> int:
        """Make the table hold exactly the feed's incidents (it is read whole, so an
        incident it no longer lists is gone); old rows go in the same transaction."""
        return self._replace(r.INCIDENTS, r.INCIDENTS.rows(incidents))

    def record_gate(self, records: Iterable[GateRecord]) -> int:
        """Store quality-gate step results; the same report sent twice is one row."""
        return self._upsert(r.GATE_RECORDS, r.GATE_RECORDS.rows(records))

    def gate_records(self, commit_sha: str | None = None) -> list[GateRecord]:
        table = r.GATE_RECORDS.table
        return self._read(r.GATE_RECORDS, *_equal(table, commit_sha=commit_sha))

    def append_audit(self, entry: AuditEntry) -> None:
        """Add one entry to the audit log. Entries are never changed or removed: the
        database refuses UPDATE and DELETE on that table."""
        row = r.AUDIT_LOG.to_row(entry)
        with self._writing("audit_log", 1) as conn:
            conn.execute(r.AUDIT_LOG.table.insert(), [row])

    def audit_log(self, environment: str | None = None) -> list[AuditEntry]:
        """The audit log oldest first, optionally of one environment."""
        table = r.AUDIT_LOG.table
        return self._read(r.AUDIT_LOG, *_equal(table, environment=environment))

    def replace_metric_values(self, values: Iterable[MetricValue]) -> int:
        """Store one computation of metric values, in one transaction. Calendar
        buckets (days, weeks, months) are replaced whole: only the latest
        computation's buckets stay, so a bucket measured again later, or in another
        time zone or week start, is never beside an older self. Rolling windows
        accumulate as a history of each metric, but a window measured again is
        replaced whole, every worker's row with it. No computation time is kept, so
        recomputing the same periods from the same records leaves the table exactly
        as it was (the Dagster event log says when each run computed it)."""
        rows = r.METRIC_VALUES.rows(values)
        table = r.METRIC_VALUES.table
        windows = {
            (row["window_start"], row["window_end"]) for row in rows if row["grain"] == "window"
        }
        deletes = [table.delete().where(table.c.grain != "window")]
        deletes += [
            table.delete().where(
                table.c.grain == "window", table.c.window_start == start, table.c.window_end == end
            )
            for start, end in windows
        ]
        return self._replace(r.METRIC_VALUES, rows, deletes)

    def replace_pipeline_health(self, health: Iterable[HealthRow]) -> int:
        """Make the table hold exactly ``health``: old rows go in the same transaction."""
        return self._replace(r.PIPELINE_HEALTH, r.PIPELINE_HEALTH.rows(health))

    def _replace(
        self, spec: r.RecordTable, rows: list[dict[str, Any]], deletes: list | None = None
    ) -> int:
        """Delete (every row, or what ``deletes`` select) and insert ``rows`` in one
        transaction. On PostgreSQL writers queue on a table lock, so two replacements
        cannot interleave their DELETE and INSERT; readers are not blocked."""
        table = spec.table
        with self._writing(table.name, len(rows)) as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))
            for statement in deletes if deletes is not None else [table.delete()]:
                conn.execute(statement)
            for chunk in _chunks(rows, CHUNK_ROWS):
                conn.execute(table.insert(), chunk)
        log.info("Replaced rows of %s with %d rows", table.name, len(rows))
        return len(rows)

    def _upsert(self, spec: r.RecordTable, rows: list[dict[str, Any]]) -> int:
        return self.upsert_rows(spec.table, rows)

    def upsert_rows(self, table: sa.Table, rows: list[dict[str, Any]]) -> int:
        """Write ``rows`` into ``table`` in one transaction, a row with a stored primary
        key rewriting it; a database error rolls the whole batch back and names the
        table (:class:`WarehouseWriteError`)."""
        if not rows:
            return 0
        statement = self.upsert_statement(table)
        with self._writing(table.name, len(rows)) as conn:
            for chunk in _chunks(rows, CHUNK_ROWS):
                conn.execute(statement, chunk)
        log.info("Upserted %d rows into %s", len(rows), table.name)
        return len(rows)

    def insert(self, table: sa.Table) -> Any:
        """An INSERT in this warehouse's dialect (it offers ON CONFLICT clauses)."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def upsert_statement(self, table: sa.Table) -> Any:
        """An INSERT that rewrites the row with the same primary key."""
        statement = self.insert(table)
        keys = [c.name for c in table.primary_key]
        changes = {c.name: statement.excluded[c.name] for c in table.c if not c.primary_key}
        return statement.on_conflict_do_update(index_elements=keys, set_=changes)

    @contextmanager
    def _writing(self, table: str, count: int) -> Iterator[sa.Connection]:
        """One transaction; a database error rolls it back and names the table."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise WarehouseWriteError(
                f"writing {count} rows to {table} failed and was rolled back: {exc.orig}"
            ) from exc

    # -- reads --------------------------------------------------------------------

    def commits(self) -> list[Commit]:
        """All commits, oldest commit time first, with their original offsets."""
        return self._read(r.COMMITS)

    def patch_ids(self) -> dict[str, str]:
        """Stored commits' patch ids (commits without one are left out)."""
        table = r.COMMITS.table
        query = sa.select(table.c.sha, table.c.patch_id).where(table.c.patch_id.is_not(None))
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def tags(self) -> list[Tag]:
        return self._read(r.TAGS)

    def builds(self, worker: str | None = None) -> list[Build]:
        """Builds (of one worker when given), oldest first."""
        table = r.BUILDS.table
        return self._read(r.BUILDS, *_equal(table, worker=worker))

    def deployments(
        self, worker: str | None = None, environment: str | None = None
    ) -> list[Deployment]:
        """Deployments (filtered by worker and/or environment when given), oldest first."""
        table = r.DEPLOYMENTS.table
        return self._read(r.DEPLOYMENTS, *_equal(table, worker=worker, environment=environment))

    def incidents(self) -> list[Incident]:
        return self._read(r.INCIDENTS)

    def metric_values(self) -> list[MetricValue]:
        return self._read(r.METRIC_VALUES)

    def pipeline_health(self) -> list[HealthRow]:
        return self._read(r.PIPELINE_HEALTH)

    def newest_build_created_on(self, worker: str) -> datetime | None:
        """When the newest stored build of ``worker`` was created; None before any."""
        query = sa.select(sa.func.max(BUILDS.c.created_on)).where(BUILDS.c.worker == worker)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def unfinished_builds(self, worker: str) -> list[str]:
        """Uuids of ``worker``'s builds whose outcome can still change: fetch them again."""
        c = BUILDS.c
        query = (
            sa.select(c.build_uuid)
            .where(c.worker == worker, sa.or_(c.status != "stopped", c.outcome.is_(None)))
            .order_by(c.created_on, c.build_uuid)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def count(self, table_name: str) -> int:
        """How many rows a table holds."""
        table = self._table(table_name)
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    def snapshot(self, table_name: str) -> list[tuple]:
        """Every row of a table as a tuple, sorted, to compare states in tests."""
        table = self._table(table_name)
        ordered = [*table.primary_key.columns, *(c for c in table.c if not c.primary_key)]
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.select(table).order_by(*ordered))]

    def table_names(self) -> list[str]:
        return sorted(METADATA.tables)

    def _table(self, table_name: str) -> sa.Table:
        if table_name not in METADATA.tables:
            known = ", ".join(self.table_names())
            raise KeyError(f"table {table_name!r}: expected one of {known}")
        return METADATA.tables[table_name]

    def _read(self, spec: r.RecordTable, *where: sa.ColumnElement[bool]) -> list[Any]:
        order = [spec.table.c[name] for name in spec.order_by]
        query = sa.select(spec.table).where(*where).order_by(*order)
        with self.engine.connect() as conn:
            return [spec.from_row(row) for row in conn.execute(query)]


def _migrate(conn: sa.Connection) -> None:
    """Bring tables an older release created to today's shape: derived tables
    whose columns differ are dropped (``create_all`` makes them again, the next
    run refills them); a source table gets each missing column that has a
    default. Anything else is refused, naming the table and column, before any
    table is touched."""
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    drops, additions = [], []
    for table in METADATA.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        if have == {c.name for c in table.columns}:
            continue
        if table.name in DERIVED:
            drops.append(table)
            continue
        for column in table.columns:
            if column.name in have:
                continue
            if not (column.nullable or column.server_default is not None):
                raise WarehouseError(
                    table.name, "(schema)", column.name, "a column this warehouse lacks"
                )
            additions.append((table, column))
    for table in drops:
        table.drop(conn)
    for table, column in additions:
        kind = column.type.compile(dialect=conn.dialect)
        default = ""
        if column.server_default is not None:
            default = f" DEFAULT '{column.server_default.arg}'"
        null = "" if column.nullable else " NOT NULL"
        conn.exec_driver_sql(
            f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}{null}{default}'
        )


@contextmanager
def _sqlite_schema_lock(database: str | None) -> Iterator[None]:
    """An exclusive lock beside a SQLite file while its tables are created or
    migrated: Dagster runs several steps at once, each opening the warehouse."""
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.schema-lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _equal(table: sa.Table, **values: str | None) -> list[sa.ColumnElement[bool]]:
    return [table.c[name] == value for name, value in values.items() if value is not None]


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _create_engine(url: str) -> sa.Engine:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        # The text may hold a password, so only its scheme is shown.
        scheme = url.split(":", 1)[0] if ":" in url else "(none)"
        raise ValueError(
            f"warehouse URL: expected a SQLAlchemy URL such as sqlite:///path or "
            f"postgresql://user@host/db; the value given (scheme {scheme!r}) does not parse"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True)
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    shown = parsed.render_as_string(hide_password=True)
    raise ValueError(f"warehouse URL {shown}: expected a sqlite:/// or postgresql:// URL")
