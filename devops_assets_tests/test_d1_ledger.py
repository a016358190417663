"""The recorded checksums of applied D1 migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_assets.store.d1_ledger import ChecksumRecord
from devops_assets.store.warehouse import Warehouse, WarehouseWriteError

AT = datetime(2026, 11, 30, 18, 5, tzinfo=UTC)


def record(name: str, checksum: str, environment="staging", db="db-s", at=AT) -> ChecksumRecord:
    return ChecksumRecord(environment, db, name, checksum, at, "c" * 40, "run-1", "ops")


def test_recording_again_keeps_one_row_per_environment_database_and_name(warehouse_url):
    ledger = Warehouse(warehouse_url).d1
    assert ledger.record([record("0001_a.sql", "aa"), record("0002_b.sql", "bb")]) == 2
    ledger.record([record("0001_a.sql", "aa")])
    ledger.record([record("0001_a.sql", "aa", "production", "db-p", AT + timedelta(hours=1))])
    assert ledger.recorded("staging", "db-s") == {"0001_a.sql": "aa", "0002_b.sql": "bb"}
    assert ledger.recorded("production", "db-p") == {"0001_a.sql": "aa"}
    assert ledger.recorded("production", "db-s") == {}
    rows = ledger.records()
    assert [(r.environment, r.name) for r in rows] == [
        ("staging", "0001_a.sql"),
        ("staging", "0002_b.sql"),
        ("production", "0001_a.sql"),
    ]
    assert rows[0].applied_at == AT and ledger.records("production")[0].database_id == "db-p"


def test_a_batch_is_one_transaction(warehouse_url):
    ledger = Warehouse(warehouse_url).d1
    ledger.record([record("0001_a.sql", "aa")])
    broken = ChecksumRecord("staging", "db-s", "0002_b.sql", None, AT, "c", "r", "o")  # type: ignore[arg-type]
    with pytest.raises(WarehouseWriteError, match="d1_migration_checksums"):
        ledger.record([record("0003_c.sql", "cc"), broken])
    assert ledger.recorded("staging", "db-s") == {"0001_a.sql": "aa"}
