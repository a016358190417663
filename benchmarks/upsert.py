"""Step 3: upserting commits into the warehouse, on SQLite and on PostgreSQL.

Our side is ``Warehouse.upsert_commits``: checked rows, an insert-or-update by
sha, one transaction. It is timed twice, into an empty table (first write) and
over the same rows again (the idempotent re-write an ingest re-run does). The
reference is a plain ``executemany`` INSERT of the same row values, built
beforehand, into an empty bare table of the same columns and primary key, in
the same database, through the bare driver (sqlite3 / psycopg2), one commit.
psycopg2's ``executemany`` sends one statement per row, while SQLAlchemy packs
rows into multi-row VALUES pages, so on PostgreSQL ours can be the faster side.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2

from benchmarks.timing import ResultMismatch, Row, Sides, compare
from devops_assets.domain.models import Commit
from devops_assets.store import PostgresUnavailable, Warehouse, find_or_start_postgres
from devops_assets.store import rows as warehouse_rows
from devops_assets.store.tables import COMMITS

UPSERT_COMMITS = 8000
PLAIN_TABLE = "plain_commits"
COLUMNS = tuple(column.name for column in COMMITS.c)
_INTEGERS = ("author_offset_min", "commit_offset_min")
_INSTANTS = ("author_time", "commit_time")


@dataclass(frozen=True)
class Backend:
    """One database: our warehouse on it, and a bare driver connection beside it."""

    name: str
    warehouse: Warehouse
    plain: Any  # a DB-API connection
    marker: str  # the driver's parameter placeholder
    clear_sql: str  # empties a table, given its name
    instant_type: str


def _plain_ddl(backend: Backend) -> str:
    def column(name: str) -> str:
        kind = "INTEGER" if name in _INTEGERS else "TEXT"
        kind = backend.instant_type if name in _INSTANTS else kind
        null = "" if COMMITS.c[name].nullable else " NOT NULL"
        return f"{name} {kind}{null}" + (" PRIMARY KEY" if name == "sha" else "")

    return f"CREATE TABLE {PLAIN_TABLE} ({', '.join(column(name) for name in COLUMNS)})"


def _plain_value(value: Any, backend: Backend) -> Any:
    """SQLite stores an instant as naive UTC text, as SQLAlchemy writes it there."""
    if isinstance(value, datetime) and backend.name == "sqlite":
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


def _plain_rows(commits: list[Commit], backend: Backend) -> list[tuple]:
    """The warehouse's own row values for ``commits``, as tuples for the bare driver."""
    rows = warehouse_rows.COMMITS.rows(commits)
    return [tuple(_plain_value(row[name], backend) for name in COLUMNS) for row in rows]


def _execute(connection: Any, sql: str, rows: list[tuple] | None = None) -> None:
    cursor = connection.cursor()
    try:
        cursor.executemany(sql, rows) if rows is not None else cursor.execute(sql)
    finally:
        cursor.close()
    connection.commit()


def _count(connection: Any, table: str) -> int:
    cursor = connection.cursor()
    try:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]
    finally:
        cursor.close()


def _clear_ours(backend: Backend) -> None:
    with backend.warehouse.engine.begin() as conn:
        conn.exec_driver_sql(backend.clear_sql.format(COMMITS.name))


def _check_counts(backend: Backend, expected: int) -> None:
    stored = {"ours": backend.warehouse.count(COMMITS.name)}
    stored["reference"] = _count(backend.plain, PLAIN_TABLE)
    if set(stored.values()) != {expected}:
        raise ResultMismatch(f"{backend.name}: expected {expected} rows per table, got {stored}")


def bench_backend(backend: Backend, commits: list[Commit], repeat: int) -> list[Row]:
    """First write and re-write of ``commits``, each against the plain INSERT."""
    _execute(backend.plain, _plain_ddl(backend))
    rows = _plain_rows(commits, backend)
    markers = ", ".join([backend.marker] * len(COLUMNS))
    insert = f"INSERT INTO {PLAIN_TABLE} ({', '.join(COLUMNS)}) VALUES ({markers})"
    sides = Sides(
        ours=lambda: backend.warehouse.upsert_commits(commits),
        reference=lambda: _execute(backend.plain, insert, rows),
        ours_setup=lambda: _clear_ours(backend),
        reference_setup=lambda: _execute(backend.plain, backend.clear_sql.format(PLAIN_TABLE)),
    )
    first, _, _ = compare(f"upsert {backend.name} first", sides, repeat)
    # The table now holds every row: each run of ours rewrites them all.
    sides = Sides(sides.ours, sides.reference, reference_setup=sides.reference_setup)
    rewrite, _, _ = compare(f"upsert {backend.name} re-write", sides, repeat)
    _check_counts(backend, len(rows))
    for row in (first, rewrite):
        print(
            f"{row.step}: {len(rows)} commits; ours {row.ours_s:.3f} s, "
            f"plain INSERT {row.reference_s:.3f} s, ratio {row.ratio:.2f}"
        )
    return [first, rewrite]


@contextmanager
def sqlite_backend(folder: Path) -> Iterator[Backend]:
    """A fresh SQLite file in ``folder``, holding both tables."""
    path = folder / "warehouse.sqlite"
    warehouse = Warehouse(f"sqlite:///{path}")
    plain = sqlite3.connect(path)
    try:
        yield Backend("sqlite", warehouse, plain, "?", "DELETE FROM {}", "DATETIME")
    finally:
        plain.close()
        warehouse.close()


@contextmanager
def postgres_backend(state_dir: Path) -> Iterator[Backend]:
    """A fresh database on the local PostgreSQL (or an embedded one), dropped afterwards."""
    server = find_or_start_postgres(state_dir)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    try:
        warehouse = Warehouse(server.url(name))
        plain = psycopg2.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            dbname=name,
            password=server.password or None,
        )
        try:
            yield Backend("postgres", warehouse, plain, "%s", "TRUNCATE {}", "TIMESTAMPTZ")
        finally:
            plain.close()
            warehouse.close()
    finally:
        server.drop_database(name)
        server.stop()  # stops only an embedded server this run started


def bench_upserts(commits: list[Commit], workdir: Path, repeat: int) -> list[Row]:
    """Rows of both backends; PostgreSQL's are left out, saying why, when none runs."""
    with sqlite_backend(workdir) as backend:
        rows = bench_backend(backend, commits, repeat)
    # Not under workdir: run as root, pgserver's own user must reach its data folder.
    state_dir = Path(tempfile.mkdtemp(prefix="devops-assets-bench-pg-"))
    try:
        with postgres_backend(state_dir) as backend:
            rows += bench_backend(backend, commits, repeat)
    except PostgresUnavailable as exc:
        print(f"upsert postgres: skipped, no PostgreSQL server ({exc})")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return rows
