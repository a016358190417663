"""A bad record or a database failure part-way through a batch leaves every table as
it was: nothing half-written, nothing duplicated. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from devops_assets.store import Warehouse, WarehouseError, WarehouseWriteError
from devops_assets.store.warehouse import CHUNK_ROWS
from devops_assets_tests.test_warehouse import T0, build, fill, health, metric_values

SQLITE_TRIGGER = """
CREATE TRIGGER poison_{table} BEFORE INSERT ON {table}
WHEN NEW.{column} = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END
"""
PG_FUNCTION = """
CREATE FUNCTION poison_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.{column} = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF;
  RETURN NEW;
END $$
"""
PG_TRIGGER = """
CREATE TRIGGER poison_{table} BEFORE INSERT ON {table}
FOR EACH ROW EXECUTE FUNCTION poison_{table}()
"""


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    with Warehouse(warehouse_url) as wh:
        fill(wh)
        yield wh


def snapshots(wh: Warehouse) -> dict[str, list[tuple]]:
    return {name: wh.snapshot(name) for name in wh.table_names()}


def poison_inserts(wh: Warehouse, table: str, column: str) -> None:
    """A database trigger that refuses any row whose ``column`` is 'poison'."""
    if wh.dialect == "sqlite":
        statements = [SQLITE_TRIGGER]
    else:
        statements = [PG_FUNCTION, PG_TRIGGER]
    with wh.engine.begin() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql.format(table=table, column=column))


def test_a_naive_datetime_mid_batch_is_refused_before_anything_is_written(warehouse):
    before = snapshots(warehouse)
    batch = [build(f"n{i}", i) for i in range(100)]
    batch[50] = replace(batch[50], created_on=datetime(2026, 11, 3, 12, 0))
    batch.insert(0, build("u2", 10))  # would have finished an unfinished build

    with pytest.raises(WarehouseError) as caught:
        warehouse.upsert_builds(batch)

    message = str(caught.value)
    assert "builds" in message and "'n50'" in message and "'created_on'" in message
    assert "timezone-aware" in message
    assert (caught.value.table, caught.value.field) == ("builds", "created_on")
    assert snapshots(warehouse) == before


def test_a_naive_window_time_names_the_field(warehouse):
    before = snapshots(warehouse)
    naive = replace(metric_values()[0], window_end=datetime(2026, 1, 1))

    with pytest.raises(WarehouseError, match="metric_values .*'window_end'"):
        warehouse.replace_metric_values([naive])

    assert snapshots(warehouse) == before


@pytest.mark.parametrize(
    ("bad", "field", "expected"),
    [
        ({"status": "done"}, "status", "one of queued"),
        ({"outcome": "ok"}, "outcome", "one of success"),
        ({"build_uuid": ""}, "build_uuid", "a non-empty string"),
        ({"started_on": "2026-11-02"}, "started_on", "a timezone-aware datetime"),
    ],
)
def test_a_bad_build_field_is_named(warehouse, bad, field, expected):
    with pytest.raises(WarehouseError, match=f"field '{field}': expected {expected}"):
        warehouse.upsert_builds([build("ok", 1), replace(build("x", 2), **bad)])

    assert "ok" not in {b.build_uuid for b in warehouse.builds()}


def test_a_metric_value_that_is_not_a_finite_number_is_refused(warehouse):
    nan = replace(metric_values()[0], value=float("nan"))

    with pytest.raises(WarehouseError, match="'value': expected a finite number, got nan"):
        warehouse.replace_metric_values([nan])


def test_a_record_of_the_wrong_type_is_refused(warehouse):
    with pytest.raises(WarehouseError, match=r"commits row '#2': .*expected a Commit, got 'Build'"):
        warehouse.upsert_commits([*warehouse.commits(), build("u1", 0)])


def test_health_detail_that_is_not_json_is_refused(warehouse):
    odd = replace(health()[0], detail={"when": T0})

    with pytest.raises(WarehouseError, match="pipeline_health .*'detail': expected JSON"):
        warehouse.replace_pipeline_health([odd])

    assert warehouse.pipeline_health() == health()


def test_a_database_failure_in_a_later_chunk_rolls_back_the_whole_batch(warehouse):
    poison_inserts(warehouse, "builds", "build_uuid")
    before = snapshots(warehouse)
    batch = [build("u2", 10)] + [build(f"n{i}", i) for i in range(CHUNK_ROWS + 5)]
    batch.append(build("poison", 1))

    with pytest.raises(WarehouseWriteError, match=r"rows to builds failed and was rolled back"):
        warehouse.upsert_builds(batch)

    assert snapshots(warehouse) == before
    assert warehouse.unfinished_builds("api") == ["u3", "u2"]


def test_a_database_failure_while_replacing_health_keeps_the_old_rows(warehouse):
    poison_inserts(warehouse, "pipeline_health", "metric")
    poisoned = [health()[1], replace(health()[0], metric="poison")]

    with pytest.raises(WarehouseWriteError, match="pipeline_health"):
        warehouse.replace_pipeline_health(poisoned)

    assert warehouse.pipeline_health() == health()


def test_an_unsupported_url_is_named():
    with pytest.raises(ValueError, match=r"mysql://u:\*\*\*@h/db: expected a sqlite"):
        Warehouse("mysql://u:secret@h/db")


def test_upserting_8k_commits_takes_a_couple_of_seconds(warehouse):
    template = warehouse.commits()[1]
    many = [
        replace(
            template,
            sha=f"{i:040x}",
            parents=(f"{i - 1:040x}",) if i else (),
            commit_time=T0 + timedelta(minutes=i),
        )
        for i in range(8000)
    ]

    started = time.perf_counter()
    assert warehouse.upsert_commits(many) == 8000
    first = time.perf_counter() - started
    started = time.perf_counter()
    warehouse.upsert_commits(many)
    again = time.perf_counter() - started

    print(f"\n8k commits on {warehouse.dialect}: first {first:.2f} s, again {again:.2f} s")
    assert len(warehouse.snapshot("commits")) == 8002
    assert first < 30 and again < 30
    with warehouse.engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM commits")).scalar()
    assert count == 8002


def test_concurrent_health_replacements_on_postgresql_never_collide(fresh_postgres_db):
    stores = [Warehouse(fresh_postgres_db) for _ in range(4)]
    errors: list[Exception] = []

    def replace_many(store: Warehouse) -> None:
        for _ in range(15):
            try:
                store.replace_pipeline_health(health())
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=replace_many, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert stores[0].pipeline_health() == health()
    for store in stores:
        store.close()


def test_an_unparsable_warehouse_url_never_shows_its_password():
    with pytest.raises(ValueError) as caught:
        Warehouse("postgresql//someone:PGPASS-S3CRET@127.0.0.1/db")

    assert "PGPASS-S3CRET" not in str(caught.value)
    assert "does not parse" in str(caught.value)
