"""The embedded PostgreSQL (pgserver) path works even where a real server runs, and
the environment ``dagster_env`` gives really configures dagster-postgres."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devops_assets.store import (
    PostgresServer,
    Warehouse,
    find_or_start_postgres,
    start_embedded_postgres,
)
from devops_assets_tests.test_postgres import closed_port
from devops_assets_tests.test_warehouse import commits, fill, health

DAGSTER_YAML_URL = """
storage:
  postgres:
    postgres_url: {env: DAGSTER_PG_URL}
"""
DAGSTER_YAML_DB = """
storage:
  postgres:
    postgres_db:
      username: {env: DAGSTER_PG_USER}
      password: {env: DAGSTER_PG_PASSWORD}
      hostname: {env: DAGSTER_PG_HOST}
      port: {env: DAGSTER_PG_PORT}
      db_name: {env: DAGSTER_PG_DB}
      scheme: postgresql+psycopg2
"""


@pytest.fixture(scope="module")
def embedded(pg_state_dir_factory) -> Iterator[PostgresServer]:
    """An embedded server reached through the fallback: the TCP port given is dead."""
    started = time.perf_counter()
    server = find_or_start_postgres(pg_state_dir_factory("embedded"), port=closed_port())
    print(f"\nembedded PostgreSQL up in {time.perf_counter() - started:.2f} s")
    yield server
    server.stop()


def test_a_dead_port_falls_back_to_an_embedded_server_on_a_socket(embedded: PostgresServer):
    assert embedded.embedded and embedded.uses_socket
    assert (Path(embedded.host) / f".s.PGSQL.{embedded.port}").is_socket()
    assert embedded.answers()
    assert embedded.dagster_env("d")["DAGSTER_PG_URL"].endswith(
        f"/d?host={embedded.host.replace('/', '%2F')}"
    )


def test_the_embedded_server_holds_a_warehouse(embedded: PostgresServer):
    embedded.create_database("warehouse_probe")
    try:
        with Warehouse(embedded.url("warehouse_probe")) as wh:
            fill(wh)
            assert wh.dialect == "postgresql"
            assert wh.commits() == commits()
            assert [c.commit_time.utcoffset() for c in wh.commits()] == [
                c.commit_time.utcoffset() for c in commits()
            ]
            assert wh.pipeline_health() == health()
    finally:
        embedded.drop_database("warehouse_probe")


def test_starting_again_reuses_the_running_server(embedded: PostgresServer):
    pid_file = embedded.data_dir / "postmaster.pid"
    pid = pid_file.read_text().split()[0]

    again = start_embedded_postgres(embedded.data_dir.parent)

    assert again == embedded
    assert pid_file.read_text().split()[0] == pid


def test_a_stopped_server_starts_again_on_the_same_data(pg_state_dir_factory):
    state_dir = pg_state_dir_factory("restart")
    server = start_embedded_postgres(state_dir)
    server.create_database("kept")
    server.stop()
    assert not server.answers()

    restarted = start_embedded_postgres(state_dir)
    try:
        assert restarted.answers()
        with Warehouse(restarted.url("kept")) as wh:
            assert wh.snapshot("commits") == []
    finally:
        restarted.stop()


def dagster_run_storage(home: Path, yaml: str, env: dict[str, str], monkeypatch) -> str:
    """Open a Dagster instance from ``yaml`` with ``env`` set; name its run storage."""
    from dagster import DagsterInstance

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    instance = DagsterInstance.from_config(str(home))
    try:
        assert instance.get_runs() == []
        return type(instance.run_storage).__name__
    finally:
        instance.dispose()


def test_dagster_postgres_runs_on_the_embedded_server_via_postgres_url(
    embedded: PostgresServer, tmp_path: Path, monkeypatch
):
    embedded.create_database("dagster_probe")
    env = embedded.dagster_env("dagster_probe")

    storage = dagster_run_storage(tmp_path / "home", DAGSTER_YAML_URL, env, monkeypatch)

    assert storage == "PostgresRunStorage"


def test_dagster_postgres_db_block_works_on_a_tcp_server(
    postgres_server: PostgresServer, postgres_url_factory, tmp_path: Path, monkeypatch
):
    if postgres_server.uses_socket:
        pytest.skip("the postgres_db block cannot reach a unix socket: use postgres_url")
    dbname = postgres_url_factory().rsplit("/", 1)[1]
    env = postgres_server.dagster_env(dbname)

    storage = dagster_run_storage(tmp_path / "home", DAGSTER_YAML_DB, env, monkeypatch)

    assert storage == "PostgresRunStorage"
