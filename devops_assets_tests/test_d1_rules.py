"""D1 rules on hand-made files, ledgers and recorded checksums with known answers."""

from __future__ import annotations

import hashlib
import re

import pytest

from devops_assets.delivery.d1 import DatabaseReport, EnvironmentReport, d1_refusals
from devops_assets.wrangler import migrations as m
from devops_assets.wrangler.migrations import Ledger, MigrationFile, classify


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


INIT = MigrationFile("0001_init.sql", sha("create table a"))
SESSIONS = MigrationFile("0002_sessions.sql", sha("create table s"))
INDEX = MigrationFile("0003_session_index.sql", sha("create index i"))
FILES = [INIT, SESSIONS, INDEX]
STAGING_DB = "11111111-1111-4111-8111-111111111111"
PRODUCTION_DB = "22222222-2222-4222-8222-222222222222"


def database(db_id, files, ledger, recorded, **target) -> DatabaseReport:
    t = m.D1Target("DB", "db", db_id, **target)
    ledger = Ledger(tuple(ledger))
    return DatabaseReport(t, files, ledger, recorded, classify(files, ledger, recorded), "db")


def reports(staging: DatabaseReport, production: DatabaseReport) -> dict:
    return {
        "staging": EnvironmentReport("staging", "hardshell", "a" * 40, "wrangler.jsonc", [staging]),
        "production": EnvironmentReport(
            "production", "main", "b" * 40, "wrangler.jsonc", [production]
        ),
    }


def rules(refusals) -> dict[str, str]:
    return {r.rule: r.evidence for r in refusals}


APPLIED_BOTH = ["0001_init.sql", "0002_sessions.sql"]


def test_production_is_refused_until_staging_applied_the_same_files():
    before = reports(
        database(STAGING_DB, FILES, APPLIED_BOTH, {}),
        database(PRODUCTION_DB, FILES, APPLIED_BOTH, {}),
    )
    assert rules(d1_refusals("staging", before)) == {}
    assert rules(d1_refusals("production", before)) == {
        "staging_applied": "binding DB: 0003_session_index.sql is not applied in staging"
    }
    after = reports(
        database(STAGING_DB, FILES, [*APPLIED_BOTH, INDEX.name], {INDEX.name: INDEX.checksum}),
        database(PRODUCTION_DB, FILES, APPLIED_BOTH, {}),
    )
    assert rules(d1_refusals("production", after)) == {}


def test_staging_applied_other_bytes_or_outside_the_platform_proves_nothing():
    changed = MigrationFile(INDEX.name, sha("create index i on s(user)"))
    staged_other = reports(
        database(STAGING_DB, FILES, [*APPLIED_BOTH, INDEX.name], {INDEX.name: INDEX.checksum}),
        database(PRODUCTION_DB, [INIT, SESSIONS, changed], APPLIED_BOTH, {}),
    )
    evidence = rules(d1_refusals("production", staged_other))["staging_applied"]
    assert "0003_session_index.sql differs from what staging applied" in evidence
    outside = reports(
        database(STAGING_DB, FILES, [*APPLIED_BOTH, INDEX.name], {}),
        database(PRODUCTION_DB, FILES, APPLIED_BOTH, {}),
    )
    evidence = rules(d1_refusals("production", outside))["staging_applied"]
    assert "applied to staging outside the platform" in evidence


def test_the_same_database_for_both_environments_is_refused_both_ways():
    same = reports(
        database(STAGING_DB, FILES, APPLIED_BOTH, {}),
        database(STAGING_DB, FILES, APPLIED_BOTH, {}),
    )
    for environment in ("staging", "production"):
        found = rules(d1_refusals(environment, same))
        assert found["distinct_databases"] == (
            f"staging and production resolve to the same database {STAGING_DB}"
        )


def test_folder_table_or_pattern_differing_between_environments_is_refused():
    differ = reports(
        database(STAGING_DB, FILES, APPLIED_BOTH, {}, migrations_dir="db/migrations"),
        database(PRODUCTION_DB, FILES, APPLIED_BOTH, {}, migrations_table="schema_log"),
    )
    evidence = rules(d1_refusals("staging", differ))["d1_config"]
    assert "migrations_dir is 'db/migrations' in staging, 'migrations' in production" in evidence
    assert "migrations_table is 'd1_migrations' in staging, 'schema_log' in production" in evidence


@pytest.mark.parametrize(
    ("files", "ledger", "finding"),
    [
        (FILES, ["0001_init.sql", INDEX.name], "0002_sessions.sql is out of order"),
        (
            [INIT, MigrationFile(SESSIONS.name, sha("edited")), INDEX],
            APPLIED_BOTH,
            "0002_sessions.sql was edited after it was applied",
        ),
        (
            [INIT, MigrationFile("0002_user_sessions.sql", SESSIONS.checksum), INDEX],
            APPLIED_BOTH,
            "0002_sessions.sql was renamed to 0002_user_sessions.sql",
        ),
        ([INIT, INDEX], APPLIED_BOTH, "0002_sessions.sql is in the ledger but no file"),
    ],
    ids=["out_of_order", "edited", "renamed", "missing"],
)
def test_findings_in_the_environments_own_database_block_its_apply(files, ledger, finding):
    recorded = {f.name: f.checksum for f in FILES}
    found = reports(
        database(STAGING_DB, files, ledger, recorded),
        database(PRODUCTION_DB, FILES, APPLIED_BOTH, {}),
    )
    assert finding in rules(d1_refusals("staging", found))["migrations_clean"]
    assert "migrations_clean" not in rules(d1_refusals("production", found))


def test_states_name_every_file_and_row():
    renamed = [INIT, MigrationFile("0002_user_sessions.sql", SESSIONS.checksum), INDEX]
    ledger = Ledger(tuple(APPLIED_BOTH))
    status = classify(renamed, ledger, {f.name: f.checksum for f in FILES})
    assert m.states(renamed, ledger, status) == [
        ("0001_init.sql", "applied"),
        ("0002_sessions.sql", "renamed to 0002_user_sessions.sql"),
        ("0002_user_sessions.sql", "renamed from 0002_sessions.sql"),
        ("0003_session_index.sql", "pending"),
    ]


def test_bindings_give_a_database_by_id_or_are_refused():
    config = {
        "d1_databases": [
            {
                "binding": "DB",
                "database_name": "x",
                "database_id": STAGING_DB,
                "migrations_dir": "./db/",
            }
        ]
    }
    (target,) = m.d1_targets(config)
    assert (target.database_id, target.migrations_dir, target.migrations_table) == (
        STAGING_DB,
        "db",
        "d1_migrations",
    )
    assert target.path_of("0001_a.sql") == "db/0001_a.sql"
    with pytest.raises(
        m.MigrationSettingsError, match=r"database_id: .*never resolves a database by name"
    ):
        m.d1_targets({"d1_databases": [{"binding": "DB", "database_name": "x"}]}, "env.staging.")
    with pytest.raises(m.MigrationSettingsError, match="migrations_table: a plain table name"):
        m.d1_targets(
            {"d1_databases": [{"binding": "DB", "database_id": "x", "migrations_table": "a;b"}]}
        )
    with pytest.raises(m.MigrationSettingsError, match="inside the repository"):
        m.d1_targets(
            {"d1_databases": [{"binding": "DB", "database_id": "x", "migrations_dir": "../x"}]}
        )


def test_patterns_stay_inside_one_folder_unless_they_say_otherwise():
    assert m.matches("0001_a.sql") and not m.matches("0001_a/migration.sql")
    assert m.matches("0001_a/migration.sql", "*/migration.sql")
    assert m.matches("x/y/0001.sql", "**.sql") and not m.matches("0001_a.sql.bak")


def test_a_file_goes_out_with_its_ledger_row_in_one_request():
    assert m.apply_sql("CREATE TABLE a (x);\n\n", "0001_a.sql", "d1_migrations") == (
        "CREATE TABLE a (x);\nINSERT INTO \"d1_migrations\" (name) VALUES ('0001_a.sql');"
    )
    assert m.apply_sql("CREATE TABLE a (x)", "0002_o'brien.sql", "d1_migrations").endswith(
        "VALUES ('0002_o''brien.sql');"
    )
    assert m.ledger_from_rows([{"id": 2, "name": "b"}, {"id": 1, "name": "a"}]) == Ledger(
        ("a", "b")
    )


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        # a last line comment without a newline would hold the `;` added after it
        ("CREATE TABLE a (x) -- the table", "CREATE TABLE a (x) -- the table\n;\n"),
        ("CREATE TABLE a (x); -- done", "CREATE TABLE a (x); -- done\n"),
        ("CREATE TABLE a (x) /* closed */", "CREATE TABLE a (x) /* closed */\n;\n"),
        (
            "INSERT INTO a VALUES ('/* not a comment')",
            "INSERT INTO a VALUES ('/* not a comment')\n;\n",
        ),
        ("-- only a comment\n", ""),
    ],
)
def test_the_files_sql_ends_before_its_ledger_row(text, sent):
    row = "INSERT INTO \"d1_migrations\" (name) VALUES ('0004_a.sql');"
    assert m.apply_sql(text, "0004_a.sql", "d1_migrations") == sent + row


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("CREATE TABLE a (x);\n/* trailing note", "unterminated /* comment (line 2)"),
        ("INSERT INTO a VALUES ('open", "unterminated string (line 1)"),
        ('CREATE TABLE "open (x);', "unterminated quoted name"),
        ("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;", "unfinished"),
    ],
)
def test_a_file_its_ledger_row_would_fall_into_is_never_sent(text, why):
    with pytest.raises(m.MigrationFileError, match=r"^0004_a\.sql: .*" + re.escape(why)):
        m.apply_sql(text, "0004_a.sql", "d1_migrations")
    assert why in m.file_problem("0004_a.sql", text.encode())
    assert m.file_problem("0004_a.sql", b"\xff") == "0004_a.sql is not UTF-8 text"


def test_a_pending_file_that_cannot_be_sent_blocks_its_environment():
    bad = b"CREATE TABLE b (x);\n/* note"
    staging = database(STAGING_DB, FILES, APPLIED_BOTH, {})
    staging.contents = {INDEX.name: bad}
    production = database(PRODUCTION_DB, FILES, APPLIED_BOTH, {})
    found = rules(d1_refusals("staging", reports(staging, production)))
    assert f"binding DB: {INDEX.name}: an unterminated /* comment" in found["migrations_clean"]
    assert "migrations_clean" not in rules(d1_refusals("production", reports(staging, production)))
