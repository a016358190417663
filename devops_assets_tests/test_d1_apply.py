"""Applying D1 migrations on the seeded demo workspace (emulator databases, real git).

The seeded databases have 0001 and 0002 applied; 0003 is pending in both. Every
test goes through ``delivery.d1.apply`` with the emulator as the only stand-in.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import httpx
import pytest

from devops_assets.delivery import d1
from devops_assets.delivery.deployer import DeployRefused
from devops_assets.demo.scenario import commit_file
from devops_assets.emulator.app import EMULATOR_TOKEN
from devops_assets.sources.cloudflare import EMULATOR_URL, CloudflareClient
from devops_assets.wrangler.files import strip_jsonc

OPS = "ops@moltworker.example"
APPLIED = ("0001_init.sql", "0002_sessions.sql")
INDEX = "0003_session_index.sql"


def ledger(world, environment: str) -> tuple[str, ...]:
    rt = world.runtime("reader")
    report = d1.survey(rt.config, rt.repo, rt.client, rt.warehouse, environment)
    return report.databases[0].ledger.names


def tables(world, environment: str) -> set[str]:
    rt = world.runtime("reader")
    report = d1.survey(rt.config, rt.repo, rt.client, rt.warehouse, environment)
    answer = rt.client.d1_query(
        report.databases[0].target.database_id,
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')",
    )
    return {row["name"] for row in answer[0]["results"]}


def commit(world, branch: str, path: str, content: str, message: str) -> str:
    return commit_file(world.repo, branch, path, content, message, world.app().now())


def refused(world, environment: str, rule: str, evidence: str, rt=None) -> None:
    rt = rt or world.runtime("run-refused")
    before = {e: ledger(world, e) for e in ("staging", "production")}
    with pytest.raises(DeployRefused) as caught:
        d1.apply(rt, environment, OPS, "add the session index")
    rules = {r.rule: r.evidence for r in caught.value.decision.refusals}
    assert rule in rules and evidence in rules[rule], rules
    row = world.warehouse.audit_log(environment)[-1]
    assert (row.action, row.outcome, row.actor) == ("apply_d1_migrations", "refused", OPS)
    assert f"{rule}: " in row.reason and row.run_id == rt.run_id
    assert {e: ledger(world, e) for e in ("staging", "production")} == before
    assert world.warehouse.deploys.holder(environment) in (None, "run-other")


def test_production_is_refused_before_staging_then_both_apply_in_order(world):
    refused(
        world,
        "production",
        "staging_applied",
        f"binding DB: {INDEX} is not applied in staging",
    )

    staged = d1.apply(world.runtime("run-staging"), "staging", OPS, "add the session index")
    assert staged.applied == [INDEX]
    assert staged.databases[0].ledger_after == (*APPLIED, INDEX)
    assert "sessions_by_device" in tables(world, "staging")
    assert "sessions_by_device" not in tables(world, "production")
    recorded = world.warehouse.d1.records("staging")
    assert [(r.name, r.run_id, r.actor) for r in recorded] == [(INDEX, "run-staging", OPS)]

    done = d1.apply(world.runtime("run-production"), "production", OPS, "add the session index")
    assert done.applied == [INDEX] and ledger(world, "production") == (*APPLIED, INDEX)
    assert "sessions_by_device" in tables(world, "production")
    assert world.warehouse.d1.records("production")[0].checksum == recorded[0].checksum

    rows = [
        (e.environment, e.outcome) for e in world.warehouse.audit_log() if e.action == d1.ACTION
    ]
    assert rows == [
        ("production", "refused"),
        ("staging", "allowed"),
        ("staging", "succeeded"),
        ("production", "allowed"),
        ("production", "succeeded"),
    ]
    assert world.notices() == ["migrations_refused", "migrations_applied", "migrations_applied"]
    assert world.warehouse.deploys.holder("production") is None


def test_applying_again_changes_nothing(world):
    d1.apply(world.runtime("run-1"), "staging", OPS, "index")
    again = d1.apply(world.runtime("run-2"), "staging", OPS, "index")
    assert again.applied == [] and ledger(world, "staging") == (*APPLIED, INDEX)
    assert len(world.warehouse.d1.records("staging")) == 1
    assert world.warehouse.audit_log("staging")[-1].reason == "nothing was pending"


def test_a_failing_migration_stops_the_run_the_ledger_is_read_again_later_files_wait(world):
    commit(world, "hardshell", "migrations/0004_broken.sql", "CREATE TABLE devices (x);\n", "m4")
    commit(world, "hardshell", "migrations/0005_later.sql", "CREATE TABLE later (x);\n", "m5")

    with pytest.raises(d1.MigrationFailed) as caught:
        d1.apply(world.runtime("run-f"), "staging", OPS, "three files")

    text = str(caught.value)
    assert "0004_broken.sql failed" in text and "the ledger shows it not applied" in text
    assert ledger(world, "staging") == (*APPLIED, INDEX)
    assert "later" not in tables(world, "staging")
    assert [r.name for r in world.warehouse.d1.records("staging")] == [INDEX]
    row = world.warehouse.audit_log("staging")[-1]
    assert row.outcome == "failed"
    assert row.detail["databases"][0]["applied"] == [INDEX]
    assert row.detail["databases"][0]["failed"] == "0004_broken.sql"
    assert row.detail["databases"][0]["ledger_after"] == [*APPLIED, INDEX]
    assert world.warehouse.deploys.holder("staging") is None


def test_production_is_refused_outside_the_window_during_an_incident_and_under_lock(world):
    d1.apply(world.runtime("run-staging"), "staging", OPS, "index")
    rt = world.runtime("run-weekend")
    rt.now = lambda: datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    refused(world, "production", "deployment_window", "Saturday 12:00 UTC is outside every", rt)

    incident = world.app().open_incident("production", "Sessions drop")
    refused(world, "production", "no_active_incident", incident)
    world.app().resolve_incident(incident)

    held = world.warehouse.deploys
    assert held.acquire("production", "run-other", OPS, "x", world.app().now(), bool) is None
    refused(
        world,
        "production",
        "one_at_a_time",
        "another deploy to production is running: run-other",
        world.runtime("run-3", active=("run-other",)),
    )
    assert held.holder("production") == "run-other"


def test_staging_and_production_on_one_database_are_refused(world):
    raw = world.git("show", "refs/heads/hardshell:wrangler.jsonc")
    wrangler = json.loads(strip_jsonc(raw))
    production_id = wrangler["d1_databases"][0]["database_id"]
    wrangler["env"]["staging"]["d1_databases"][0]["database_id"] = production_id
    commit(world, "hardshell", "wrangler.jsonc", json.dumps(wrangler, indent=2), "same db")

    evidence = f"staging and production resolve to the same database {production_id}"
    refused(world, "staging", "distinct_databases", evidence)
    refused(world, "production", "distinct_databases", evidence)


def test_a_file_edited_after_staging_applied_it_blocks_staging_and_production(world):
    d1.apply(world.runtime("run-staging"), "staging", OPS, "index")
    edited = "CREATE INDEX sessions_by_device ON sessions (device_id);\n"
    commit(world, "hardshell", f"migrations/{INDEX}", edited, "edit an applied migration")
    refused(world, "staging", "migrations_clean", f"{INDEX} was edited after it was applied")
    commit(world, "main", f"migrations/{INDEX}", edited, "the edit reaches main")
    refused(world, "production", "staging_applied", f"{INDEX} differs from what staging applied")


def test_a_ledger_that_cannot_be_read_refuses_the_apply_never_assumed_empty(world):
    app = world.app()
    app.fail_next(r"/d1/database/[^/]+/query$", 500, times=20)
    rt = world.runtime("run-blind")
    rt.client = _client(world, app)
    refused(world, "staging", "facts", "could not be read", rt)
    assert world.warehouse.deploys.holder("staging") is None


def test_files_go_out_one_at_a_time_in_wranglers_numeric_order(world):
    commit(world, "hardshell", "migrations/0010_c.sql", "CREATE TABLE c (x);\n", "m10")
    commit(world, "hardshell", "migrations/9_a.sql", "CREATE TABLE a9 (x);\n", "m9")
    app = world.app()
    rt = world.runtime("run-order")
    rt.client = _client(world, app)
    app.clear_requests()

    done = d1.apply(rt, "staging", OPS, "three files")

    assert done.applied == [INDEX, "9_a.sql", "0010_c.sql"]
    assert ledger(world, "staging") == (*APPLIED, INDEX, "9_a.sql", "0010_c.sql")
    assert done.decision.checked == (
        "one_at_a_time",
        "d1_config",
        "distinct_databases",
        "migrations_clean",
    )
    decided = world.warehouse.audit_log("staging")[-2]
    assert decided.detail["databases"][0]["pending"] == [INDEX, "9_a.sql", "0010_c.sql"]
    staging_db = done.databases[0].database_id
    posts = [r for r in app.requests if r.method == "POST" and staging_db in r.path]
    # the survey's two reads, creating the table if absent, then one request per file,
    # each followed by the two reads of the ledger that confirm the file is in it
    assert len(posts) == 2 + 1 + 3 * (1 + 2)


class LoseAnswers:
    """The emulator behind a connection that drops the answer to the first request
    whose body holds ``marker``: the database did the work, the client never hears."""

    def __init__(self, app, marker: bytes):
        self.app, self.marker, self.left = app, marker, 1

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if self.left and self.marker in body:
            self.left -= 1
            b"".join(self.app(environ, lambda *args: None))
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [b"connection to the upstream lost"]
        return self.app(environ, start_response)


def _client(world, app) -> CloudflareClient:
    return CloudflareClient(
        world.config.cloudflare.account_id,
        EMULATOR_TOKEN,
        EMULATOR_URL,
        transport=httpx.WSGITransport(app=app),
        sleep=lambda seconds: None,
    )


def test_an_answer_lost_after_the_database_applied_the_file_is_found_by_reading_the_ledger(
    world,
):
    commit(world, "hardshell", "migrations/0004_later.sql", "CREATE TABLE later (x);\n", "m4")
    rt = world.runtime("run-lost")
    rt.client = _client(world, LoseAnswers(world.app(), INDEX.encode()))

    with pytest.raises(d1.MigrationFailed) as caught:
        d1.apply(rt, "staging", OPS, "index")

    assert "the ledger shows it applied (checksum recorded)" in str(caught.value)
    assert ledger(world, "staging") == (*APPLIED, INDEX)
    assert [r.name for r in world.warehouse.d1.records("staging")] == [INDEX]
    assert "later" not in tables(world, "staging")
    again = d1.apply(world.runtime("run-again"), "staging", OPS, "the rest")
    assert again.applied == ["0004_later.sql"]


def test_a_file_ending_in_an_open_block_comment_is_refused_before_anything_is_sent(world):
    # SQLite reads an open /* to the end of the request: the ledger row would vanish,
    # the run say "succeeded" and the next run apply the file again
    note = "CREATE TABLE t4 (x);\nINSERT INTO t4 VALUES ('once');\n/* trailing note"
    commit(world, "hardshell", "migrations/0004_c.sql", note, "m4")
    refused(world, "staging", "migrations_clean", "0004_c.sql: an unterminated /* comment")
    assert "t4" not in tables(world, "staging")
    assert world.warehouse.d1.records("staging") == []


def test_a_last_line_comment_cannot_swallow_the_ledger_row(world):
    commit(world, "hardshell", "migrations/0004_c.sql", "CREATE TABLE t4 (x) -- note", "m4")
    done = d1.apply(world.runtime("run-1"), "staging", OPS, "comment")
    assert done.applied == [INDEX, "0004_c.sql"]
    assert ledger(world, "staging") == (*APPLIED, INDEX, "0004_c.sql")
    assert d1.apply(world.runtime("run-2"), "staging", OPS, "again").applied == []


def test_a_file_the_database_took_but_the_ledger_lacks_fails_and_is_not_recorded(world):
    # the file's own trigger removes its ledger row: the database answers success,
    # and only reading the ledger back shows the file is not recorded as applied
    trigger = (
        "CREATE TRIGGER forget AFTER INSERT ON d1_migrations "
        "BEGIN DELETE FROM d1_migrations WHERE id = new.id; END;\n"
    )
    commit(world, "hardshell", "migrations/0004_forget.sql", trigger, "m4")
    commit(world, "hardshell", "migrations/0005_later.sql", "CREATE TABLE later (x);\n", "m5")

    with pytest.raises(d1.MigrationFailed) as caught:
        d1.apply(world.runtime("run-f"), "staging", OPS, "two files")

    text = str(caught.value)
    assert "0004_forget.sql was sent and the database answered success" in text
    assert "d1_migrations does not hold it" in text and "not recorded" in text
    assert ledger(world, "staging") == (*APPLIED, INDEX)
    assert [r.name for r in world.warehouse.d1.records("staging")] == [INDEX]
    assert "later" not in tables(world, "staging")
    row = world.warehouse.audit_log("staging")[-1]
    assert row.outcome == "failed" and row.detail["databases"][0]["applied"] == [INDEX]
    assert row.detail["databases"][0]["failed"] == "0004_forget.sql"
    assert row.detail["databases"][0]["ledger_after"] == [*APPLIED, INDEX]


def test_an_empty_answer_to_the_ledger_query_is_malformed_never_no_ledger(world):
    app = world.app()
    empty = {"success": True, "errors": [], "messages": [], "result": []}
    app.fail_next(r"/d1/database/[^/]+/query$", 200, body=empty)
    rt = world.runtime("run-empty")
    rt.client = _client(world, app)
    refused(world, "staging", "facts", "malformed answer: 'result': expected one statement", rt)
    assert d1.apply(world.runtime("run-ok"), "staging", OPS, "index").applied == [INDEX]


def with_wrangler(world, branch: str, change) -> None:
    body = json.loads(strip_jsonc(world.git("show", f"refs/heads/{branch}:wrangler.jsonc")))
    change(body)
    commit(world, branch, "wrangler.jsonc", json.dumps(body, indent=2), "wrangler")


def test_a_ledger_table_named_in_other_case_is_the_same_table(world):
    def upper(body):
        for env in (body, *body["env"].values()):
            for binding in env.get("d1_databases", []):
                binding["migrations_table"] = "D1_MIGRATIONS"

    for branch in ("hardshell", "main"):
        with_wrangler(world, branch, upper)
    rt = world.runtime("reader")
    report = d1.survey(rt.config, rt.repo, rt.client, rt.warehouse, "staging")
    assert report.databases[0].status.pending == [INDEX]
    done = d1.apply(world.runtime("run-case"), "staging", OPS, "index")
    assert done.applied == [INDEX] and ledger(world, "staging") == (*APPLIED, INDEX)


def test_secrets_required_as_a_string_is_refused_naming_branch_file_and_key(world):
    # read as given, "XYZ" would be the secrets X, Y and Z
    with_wrangler(
        world, "hardshell", lambda b: b["env"]["staging"]["secrets"].update(required="XYZ")
    )
    with pytest.raises(DeployRefused) as caught:
        d1.apply(world.runtime("run-secrets"), "staging", OPS, "index")
    [refusal] = caught.value.decision.refusals
    assert refusal.rule == "facts"
    assert (
        "hardshell:wrangler.jsonc: env.staging.secrets.required: a list of secret names, "
        "got str 'XYZ'" in refusal.evidence
    )
    assert world.warehouse.d1.records("staging") == []
