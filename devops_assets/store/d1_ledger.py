"""The checksums of the D1 migrations the platform applied, per environment and database.

D1's own ledger (``d1_migrations``) keeps names only; the platform records here
the sha256 of each file at the moment it applied it, so a file edited, renamed
or swapped afterwards is found (``wrangler/migrations.py``), and production is
only migrated with the very files staging ran. Rows are keyed by environment,
database id and migration name: recording the same file again rewrites its row
(one row, never two), and a batch is written in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from devops_assets.store import tables as t

D1_CHECKSUMS = sa.Table(
    "d1_migration_checksums",
    t.METADATA,
    t._text("environment", primary_key=True),
    t._text("database_id", primary_key=True),
    t._text("name", primary_key=True),  # the name in the database's ledger
    t._text("checksum"),  # sha256 of the file's bytes when it was applied
    t._instant("applied_at"),
    t._text("commit_sha"),  # the branch head the file was read at
    t._text("run_id"),
    t._text("actor"),
)


@dataclass(frozen=True)
class ChecksumRecord:
    environment: str
    database_id: str
    name: str
    checksum: str
    applied_at: datetime
    commit_sha: str
    run_id: str
    actor: str


class D1Ledger:
    """Reads and writes the checksum records of one warehouse."""

    def __init__(self, warehouse):
        self._warehouse = warehouse
        self.engine = warehouse.engine

    def record(self, records: Iterable[ChecksumRecord]) -> int:
        """Store records in one transaction; a name recorded again is rewritten."""
        return self._warehouse.upsert_rows(D1_CHECKSUMS, [dict(vars(r)) for r in records])

    def recorded(self, environment: str, database_id: str) -> dict[str, str]:
        """Migration name → checksum recorded when the platform applied it."""
        table = D1_CHECKSUMS
        query = sa.select(table.c.name, table.c.checksum).where(
            table.c.environment == environment, table.c.database_id == database_id
        )
        with self.engine.connect() as conn:
            return dict(conn.execute(query).all())

    def records(self, environment: str | None = None) -> list[ChecksumRecord]:
        """Every record (of one environment when given), oldest apply first."""
        table = D1_CHECKSUMS
        query = sa.select(table).order_by(table.c.applied_at, table.c.name)
        if environment is not None:
            query = query.where(table.c.environment == environment)
        with self.engine.connect() as conn:
            return [ChecksumRecord(**row._asdict()) for row in conn.execute(query)]
