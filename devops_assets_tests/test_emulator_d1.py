"""D1 in the emulator: seeded databases, the query batch, its errors and its persistence.

Every answer is validated against the OpenAPI subset. The seeded databases
are real SQLite files built from the repository's migrations.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading

import pytest

from devops_assets.emulator import load_app
from devops_assets.emulator.d1store import database_file, split_statements
from devops_assets.emulator.story import D1_DATABASES, MIGRATIONS
from devops_assets_tests.emulator_fixtures import Api

PRODUCTION_DB = D1_DATABASES["production"][1]
STAGING_DB = D1_DATABASES["staging"][1]
QUERY = "/accounts/{account}/d1/database/%s/query"


@pytest.fixture
def state(seeded, tmp_path):
    return shutil.copytree(seeded[1].state_dir, tmp_path / "state")


def query(api: Api, database: str, sql: str, params=None, expect: int = 200) -> dict:
    body = {"sql": sql} if params is None else {"sql": sql, "params": params}
    return api.call("POST", QUERY % database, expect, json=body)


def test_databases_are_listed_found_by_id_or_name_and_paged(api):
    listed = api.call("GET", "/accounts/{account}/d1/database")
    assert {(d["name"], d["uuid"]) for d in listed["result"]} == set(D1_DATABASES.values())
    assert listed["result_info"] == {"page": 1, "per_page": 1000, "count": 2, "total_count": 2}
    found = api.call("GET", "/accounts/{account}/d1/database", params={"name": "staging"})
    assert [d["uuid"] for d in found["result"]] == [STAGING_DB]
    detail = api.call("GET", f"/accounts/{{account}}/d1/database/{PRODUCTION_DB}")["result"]
    assert detail["name"] == "moltworker-db" and detail["version"] == "production"
    # devices, device_settings, sessions, d1_migrations
    assert detail["num_tables"] == 4 and detail["file_size"] > 0
    by_name = api.call("GET", "/accounts/{account}/d1/database/moltworker-db")["result"]
    assert by_name["uuid"] == PRODUCTION_DB
    assert api.error("GET", "/accounts/{account}/d1/database/nope", 404)[0] == 7404
    assert (
        api.error("GET", "/accounts/{account}/d1/database", 400, params={"per_page": 5})[0] == 7400
    )


def test_the_seeded_ledger_names_the_first_two_migrations_and_the_third_is_pending(api, seeded):
    repo = seeded[0].repository
    files = subprocess.run(
        ["git", "-C", repo, "ls-tree", "--name-only", "main", "migrations/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert files == [
        "migrations/0001_init.sql",
        "migrations/0002_sessions.sql",
        "migrations/0003_session_index.sql",
    ]
    for database in (PRODUCTION_DB, STAGING_DB):
        [rows] = query(api, database, "SELECT * FROM d1_migrations ORDER BY id")["result"]
        assert [(r["id"], r["name"]) for r in rows["results"]] == [
            (1, "0001_init.sql"),
            (2, "0002_sessions.sql"),
        ]
        assert all(r["applied_at"] == "2026-06-01 18:30:00" for r in rows["results"])
        [index] = query(
            api, database, "SELECT name FROM sqlite_master WHERE name = ?", ["sessions_by_device"]
        )["result"]
        assert index["results"] == []


def test_a_batch_answers_per_statement_and_binds_params(api):
    sql = (
        "INSERT INTO devices (id, name) VALUES (?, 'phone; tablet');\n"
        "SELECT id, name FROM devices WHERE id = ?;\n"
        "-- a trailing comment only"
    )
    result = query(api, STAGING_DB, sql, ["d1"])["result"]
    assert len(result) == 2 and all(r["success"] for r in result)
    insert, select = result
    assert insert["results"] == [] and insert["meta"]["changes"] == 1
    assert insert["meta"]["changed_db"] is True and insert["meta"]["last_row_id"] == 1
    assert select["results"] == [{"id": "d1", "name": "phone; tablet"}]
    assert select["meta"]["rows_read"] == 1 and select["meta"]["changed_db"] is False
    assert select["meta"]["size_after"] > 0


def test_a_failing_statement_rolls_the_whole_request_back(api):
    sql = (
        "CREATE TABLE audit (id INTEGER PRIMARY KEY);\n"
        "INSERT INTO d1_migrations (name) VALUES ('0003_session_index.sql');\n"
        "INSERT INTO no_such_table VALUES (1);"
    )
    code, message = api.error("POST", QUERY % PRODUCTION_DB, 400, json={"sql": sql})
    assert code == 7500 and "no such table: no_such_table" in message
    [ledger] = query(api, PRODUCTION_DB, "SELECT count(*) AS n FROM d1_migrations")["result"]
    assert ledger["results"] == [{"n": 2}]
    [table] = query(api, PRODUCTION_DB, "SELECT name FROM sqlite_master WHERE name = 'audit'")[
        "result"
    ]
    assert table["results"] == []
    # The ledger's UNIQUE name refuses a second row for an applied file.
    again = "INSERT INTO d1_migrations (name) VALUES ('0001_init.sql');"
    assert (
        "UNIQUE constraint failed"
        in api.error("POST", QUERY % PRODUCTION_DB, 400, json={"sql": again})[1]
    )
    assert api.error("POST", QUERY % PRODUCTION_DB, 400, json={"sql": "  -- nothing\n"})[0] == 7400
    assert api.error("POST", QUERY % PRODUCTION_DB, 400, json={"params": []})[0] == 7400
    assert api.error("POST", QUERY % "nope", 404, json={"sql": "SELECT 1"})[0] == 7404


def test_applying_a_migration_like_wrangler_persists_in_the_sqlite_file(state, spec):
    app = load_app(state, persist=True)
    api = Api(app, spec)
    sql = MIGRATIONS["migrations/0003_session_index.sql"]
    sql += "INSERT INTO d1_migrations (name) values ('0003_session_index.sql');"
    [create, insert] = query(api, STAGING_DB, sql)["result"]
    assert insert["meta"]["changes"] == 1
    with sqlite3.connect(database_file(state, STAGING_DB)) as db:
        names = [r[0] for r in db.execute("SELECT name FROM d1_migrations ORDER BY id")]
    db.close()
    assert names == ["0001_init.sql", "0002_sessions.sql", "0003_session_index.sql"]
    # Another process over the folder reads the same data; production is untouched.
    other = Api(load_app(state, persist=True), spec)
    [rows] = query(other, STAGING_DB, "SELECT count(*) AS n FROM d1_migrations")["result"]
    assert rows["results"] == [{"n": 3}]
    [rows] = query(other, PRODUCTION_DB, "SELECT count(*) AS n FROM d1_migrations")["result"]
    assert rows["results"] == [{"n": 2}]


def test_an_app_that_does_not_persist_leaves_the_seeded_files_alone(seeded, spec):
    path = database_file(seeded[1].state_dir, PRODUCTION_DB)
    before = path.read_bytes()
    api = Api(load_app(seeded[1].state_dir), spec)
    query(api, PRODUCTION_DB, "INSERT INTO devices (id, name) VALUES ('x', 'y')")
    [rows] = query(api, PRODUCTION_DB, "SELECT count(*) AS n FROM devices")["result"]
    assert rows["results"] == [{"n": 1}]
    assert path.read_bytes() == before
    fresh = Api(load_app(seeded[1].state_dir), spec)
    [rows] = query(fresh, PRODUCTION_DB, "SELECT count(*) AS n FROM devices")["result"]
    assert rows["results"] == [{"n": 0}]


def test_statements_split_only_where_a_statement_ends():
    trigger = (
        "CREATE TRIGGER t AFTER INSERT ON devices BEGIN\n"
        "  UPDATE devices SET name = 'a;b' WHERE id = new.id;\n"
        "END;"
    )
    assert split_statements(f"SELECT 1; {trigger}\n/* done; */") == ["SELECT 1;", trigger]
    assert split_statements("SELECT 'x;y'") == ["SELECT 'x;y'"]
    assert split_statements(";;  ;") == []


def test_two_processes_writing_one_database_lose_nothing(state, spec):
    apps = [load_app(state, persist=True), load_app(state, persist=True)]

    def insert(app, prefix: str) -> None:
        api = Api(app, spec)
        for i in range(15):
            query(
                api, STAGING_DB, "INSERT INTO devices (id, name) VALUES (?, 'x')", [f"{prefix}{i}"]
            )

    threads = [threading.Thread(target=insert, args=(app, f"p{n}-")) for n, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [rows] = query(Api(apps[0], spec), STAGING_DB, "SELECT count(*) AS n FROM devices")["result"]
    assert rows["results"] == [{"n": 30}]
