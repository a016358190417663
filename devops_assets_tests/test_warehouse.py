"""The warehouse stores every record type faithfully and re-runs change nothing.

Every test runs on SQLite and on PostgreSQL (the ``warehouse_url`` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devops_assets.domain.deploys import DeployRequest, Release, SmokeRecord
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
from devops_assets.store import Warehouse
from devops_assets_tests.test_d1_ledger import record as d1_record
from devops_assets_tests.test_secrets_ledger import fill_secrets

IST = timezone(timedelta(hours=5, minutes=30))
PDT = timezone(timedelta(hours=-7))
T0 = datetime(2026, 11, 2, 9, 15, 30, 123456, tzinfo=UTC)


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    with Warehouse(warehouse_url) as wh:
        yield wh


def commits() -> list[Commit]:
    root = Commit(
        sha="a" * 40,
        parents=(),
        author_time=datetime(2026, 11, 1, 23, 59, 59, tzinfo=IST),
        commit_time=datetime(2026, 11, 2, 0, 0, 1, 500, tzinfo=IST),
        author_email="dev@example.com",
        subject="feat: first",
    )
    merge = Commit(
        sha="b" * 40,
        parents=("a" * 40, "c" * 40),
        author_time=datetime(2026, 11, 2, 8, 0, tzinfo=PDT),
        commit_time=datetime(2026, 11, 2, 17, 0, tzinfo=UTC),
        author_email="ops@example.com",
        subject="Merge branch 'fix'",
        body="Body line one.\n\nLine two: ünïcode.",
        trailers=(("Co-authored-by", "A <a@example.com>"), ("Refs", "#12")),
    )
    return [root, merge]


def tags() -> list[Tag]:
    return [
        Tag("v1.0.0", "a" * 40, datetime(2026, 11, 2, 1, 0, tzinfo=IST), annotated=True),
        Tag("v1.0.1", "b" * 40, datetime(2026, 11, 2, 18, 0, tzinfo=UTC), annotated=False),
    ]


def build(uuid: str, minutes: int, status="stopped", outcome="success", worker="api") -> Build:
    created = T0 + timedelta(minutes=minutes)
    done = status == "stopped"
    return Build(
        build_uuid=uuid,
        worker=worker,
        branch="main",
        commit_sha="b" * 40,
        status=status,
        outcome=outcome,
        created_on=created,
        started_on=created + timedelta(seconds=5) if status != "queued" else None,
        stopped_on=created + timedelta(seconds=95) if done else None,
    )


def deployments() -> list[Deployment]:
    return [
        Deployment("d1", "api", "production", T0, "v-1", 100.0, "b" * 40, message="ship"),
        Deployment("d2", "api-staging", "staging", T0, "v-2", 50.5, None, author_email="x@y"),
        Deployment(
            "d3", "api", "production", T0 + timedelta(hours=1), "v-0", 100.0, None, "rollback"
        ),
    ]


def incidents() -> list[Incident]:
    return [
        Incident("INC-1", "production", T0, T0 + timedelta(minutes=42), "d1", "5xx spike"),
        Incident("INC-2", "production", T0.astimezone(IST) + timedelta(hours=1)),
    ]


def gate_records() -> list[GateRecord]:
    return [
        GateRecord("b" * 40, "lint", "failed", T0),
        GateRecord("b" * 40, "lint", "passed", T0 + timedelta(minutes=3)),
        GateRecord("b" * 40, "test:unit", "warning", T0.astimezone(IST)),
    ]


def metric_values() -> list[MetricValue]:
    week = (T0 - timedelta(days=7), T0)
    return [
        MetricValue("deployment_frequency", "production", *week, 3.0, "per_week"),
        MetricValue("lead_time", "production", *week, None, "seconds"),
    ]


def health() -> list[HealthRow]:
    window = (T0 - timedelta(days=30), T0)
    detail = {"builds": 41, "failed": ["u1", "u2"], "note": "über"}
    return [
        HealthRow("build_success", "production", 0.97, "ratio", ">", 0.95, "met", *window, detail),
        HealthRow("lead_time", "production", None, "seconds", "<", 3600.0, "no data", *window),
    ]


def fill(wh: Warehouse) -> None:
    wh.upsert_commits(commits())
    wh.upsert_tags(tags())
    wh.upsert_builds(
        [build("u1", 0), build("u2", 10, "running", None), build("u3", 5, "queued", None)]
    )
    wh.upsert_deployments(deployments())
    wh.replace_incidents(incidents())
    wh.record_gate(gate_records())
    wh.replace_metric_values(metric_values())
    wh.replace_pipeline_health(health())
    fill_deploys(wh)
    fill_secrets(wh)
    wh.d1.record([d1_record("0001_init.sql", "ab" * 32)])
    fill_triage(wh)


def fill_triage(wh: Warehouse) -> None:
    """One stored build log and the triage of its build, as build_failures writes them."""
    from devops_assets.store.triage_ledger import StoredLog, TriageLedger, TriageRecord

    at = datetime(2026, 11, 30, 18, tzinfo=UTC)
    ledger = TriageLedger(wh)
    ledger.store_logs([StoredLog("u1", "moltworker", 2, "$ bun run check\nerror TS2322", at)])
    ledger.record_triages(
        [
            TriageRecord(
                "u1", "moltworker", "main", "c" * 40, at, "typecheck", "check", 2, 2,
                ("error TS2322",), "typecheck in step check: error TS2322", "ab12cd34ef56",
                True, None, at,
            )
        ]
    )  # fmt: skip


def fill_deploys(wh: Warehouse) -> None:
    """One row in each deploy table, written the way the deploy job writes them."""
    at = datetime(2026, 11, 30, 18, tzinfo=UTC)
    ledger = wh.deploys
    assert ledger.acquire("production", "run-1", "ops@x.example", "c" * 40, at, bool) is None
    ledger.record_smoke(SmokeRecord("production", "v-2", "c" * 40, 10.0, True, at, "run-1"))
    ledger.record_release(
        Release(
            "v1.2.0",
            "1.2.0",
            "c" * 40,
            "production",
            at,
            "v1.1.0",
            "minor",
            "## 1.2.0",
            "v-2",
            "v-1",
            "run-1",
        )
    )
    ledger.add_request(DeployRequest("hardshell", "c" * 40, "staging", at))


def test_commits_round_trip_with_their_original_offsets(warehouse: Warehouse):
    assert warehouse.upsert_commits(commits()) == 2

    stored = warehouse.commits()

    assert stored == commits()
    for got, want in zip(stored, commits(), strict=True):
        assert got.author_time.utcoffset() == want.author_time.utcoffset()
        assert got.commit_time.utcoffset() == want.commit_time.utcoffset()
        assert got.commit_time.isoformat() == want.commit_time.isoformat()
    assert stored[0].commit_time.isoformat() == "2026-11-02T00:00:01.000500+05:30"
    assert stored[1].trailers == (("Co-authored-by", "A <a@example.com>"), ("Refs", "#12"))
    assert stored[1].is_merge and stored[0].parents == ()


def test_tags_round_trip_with_offsets(warehouse: Warehouse):
    warehouse.upsert_tags(tags())

    stored = warehouse.tags()

    assert stored == tags()
    assert [t.time.isoformat() for t in stored] == [t.time.isoformat() for t in tags()]


def test_builds_round_trip_with_missing_times_in_utc(warehouse: Warehouse):
    local = build("u9", 0)
    local = replace(local, created_on=local.created_on.astimezone(PDT))
    warehouse.upsert_builds([build("u3", 5, "queued", None), local])

    stored = warehouse.builds()

    assert stored == [local, build("u3", 5, "queued", None)]
    assert stored[1].started_on is None and stored[1].outcome is None
    assert all(b.created_on.tzinfo == UTC for b in stored)
    assert stored[0].duration_seconds == 90.0


def test_deployments_round_trip_and_filter(warehouse: Warehouse):
    warehouse.upsert_deployments(deployments())

    assert warehouse.deployments() == sorted(
        deployments(), key=lambda d: (d.created_on, d.deployment_id)
    )
    assert [d.deployment_id for d in warehouse.deployments(worker="api")] == ["d1", "d3"]
    assert [d.deployment_id for d in warehouse.deployments(environment="staging")] == ["d2"]
    assert warehouse.deployments(worker="api", environment="staging") == []
    assert warehouse.deployments(environment="staging")[0].percentage == 50.5


def test_metric_values_keep_none_and_a_recomputed_window_is_replaced_whole(
    warehouse: Warehouse,
):
    warehouse.replace_metric_values(metric_values())
    assert warehouse.metric_values() == metric_values()

    # A new computation of that window (it measured only lead_time this time).
    changed = replace(metric_values()[1], value=5400.0)
    assert warehouse.replace_metric_values([changed]) == 1

    assert warehouse.metric_values() == [changed]
    assert len(warehouse.snapshot("metric_values")) == 1


def test_pipeline_health_holds_exactly_the_latest_rows(warehouse: Warehouse):
    warehouse.replace_pipeline_health(health())
    assert warehouse.pipeline_health() == health()
    assert warehouse.pipeline_health()[0].detail == {
        "builds": 41,
        "failed": ["u1", "u2"],
        "note": "über",
    }

    assert warehouse.replace_pipeline_health(health()[1:]) == 1

    assert warehouse.pipeline_health() == health()[1:]


def test_upserting_the_same_records_again_changes_no_table(warehouse: Warehouse):
    # The audit log is the one table that only grows: each decision is a new entry.
    tables = [name for name in warehouse.table_names() if name != "audit_log"]
    fill(warehouse)
    before = {name: warehouse.snapshot(name) for name in tables}
    assert all(before.values()), "every table should hold rows"

    fill(warehouse)
    Warehouse(warehouse.url).close()  # a second process creating the tables again

    after = {name: warehouse.snapshot(name) for name in tables}
    assert after == before
    assert len(after["builds"]) == 3 and len(after["commits"]) == 2


def test_a_build_seen_running_then_stopped_is_updated(warehouse: Warehouse):
    warehouse.upsert_builds([build("u1", 0, "running", None)])
    assert warehouse.unfinished_builds("api") == ["u1"]

    warehouse.upsert_builds([build("u1", 0, "stopped", "fail")])

    (stored,) = warehouse.builds()
    assert (stored.status, stored.outcome) == ("stopped", "fail")
    assert stored.stopped_on == T0 + timedelta(seconds=95)
    assert warehouse.unfinished_builds("api") == []


def test_incremental_helpers_see_only_the_named_worker(warehouse: Warehouse):
    assert warehouse.newest_build_created_on("api") is None
    assert warehouse.unfinished_builds("api") == []

    fill(warehouse)
    warehouse.upsert_builds([build("s1", 99, "running", None, worker="api-staging")])

    assert warehouse.newest_build_created_on("api") == T0 + timedelta(minutes=10)
    assert warehouse.newest_build_created_on("api").tzinfo == UTC
    assert warehouse.newest_build_created_on("api-staging") == T0 + timedelta(minutes=99)
    assert warehouse.unfinished_builds("api") == ["u3", "u2"]
    assert [b.build_uuid for b in warehouse.builds(worker="api-staging")] == ["s1"]


def test_a_key_repeated_in_one_batch_keeps_the_last_record(warehouse: Warehouse):
    written = warehouse.upsert_builds([build("u1", 0, "running", None), build("u1", 0)])

    assert written == 1
    assert [(b.status, b.outcome) for b in warehouse.builds()] == [("stopped", "success")]


def test_empty_batches_write_nothing(warehouse: Warehouse):
    assert warehouse.upsert_commits([]) == 0
    assert warehouse.replace_metric_values([]) == 0
    assert warehouse.snapshot("commits") == []


def test_table_names_and_unknown_snapshot(warehouse: Warehouse):
    names = warehouse.table_names()

    assert {"commits", "tags", "builds", "deployments", "metric_values"} <= set(names)
    assert "pipeline_health" in names
    with pytest.raises(KeyError, match="'nope': expected one of .*builds"):
        warehouse.snapshot("nope")


def test_incidents_mirror_the_feed_an_open_one_stays_open(warehouse: Warehouse):
    warehouse.replace_incidents(incidents())
    stored = warehouse.incidents()
    assert stored == incidents()
    assert stored[1].resolved_at is None and stored[1].deployment_id is None
    resolved = replace(incidents()[1], resolved_at=T0 + timedelta(hours=3))
    warehouse.replace_incidents([resolved])  # the feed now lists only INC-2, resolved
    assert warehouse.incidents() == [resolved]
    warehouse.replace_incidents([])
    assert warehouse.incidents() == []


def test_an_incident_resolved_before_it_opened_is_refused(warehouse: Warehouse):
    bad = Incident("INC-9", "production", T0, T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match=r"incidents row 'INC-9': field 'resolved_at'"):
        warehouse.replace_incidents([bad])
    assert warehouse.count("incidents") == 0


def _old_release_warehouse(path) -> None:
    """Before the metric engine: no incidents table, deployments without status,
    metric_values keyed by (metric, environment, window)."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE deployments (deployment_id TEXT PRIMARY KEY, worker TEXT NOT NULL,"
            " environment TEXT NOT NULL, created_on DATETIME NOT NULL, version_id TEXT NOT NULL,"
            " percentage FLOAT NOT NULL, commit_sha TEXT, kind TEXT NOT NULL,"
            " author_email TEXT NOT NULL, message TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO deployments VALUES ('d1', 'api', 'production',"
            " '2026-11-02 10:15:30.123456', 'v-1', 100.0, NULL, 'deploy', '', 'ship')"
        )
        db.execute(
            "CREATE TABLE metric_values (metric TEXT, environment TEXT, window_start DATETIME,"
            " window_end DATETIME, value FLOAT, unit TEXT,"
            " PRIMARY KEY (metric, environment, window_start, window_end))"
        )
        db.execute(
            "INSERT INTO metric_values VALUES ('deployment_count', 'production',"
            " '2026-11-01 00:00:00', '2026-11-02 00:00:00', 3, 'count')"
        )


def test_a_warehouse_from_the_previous_release_is_brought_up_to_date(tmp_path):
    path = tmp_path / "old.sqlite"
    _old_release_warehouse(path)
    with Warehouse(f"sqlite:///{path}") as warehouse:
        kept = warehouse.deployments()
        assert [(d.deployment_id, d.status, d.message) for d in kept] == [("d1", "success", "ship")]
        assert warehouse.metric_values() == []  # derived: dropped, refilled by the next run
        warehouse.replace_metric_values(metric_values())
        assert warehouse.metric_values() == sorted(
            metric_values(), key=lambda m: (m.metric, m.environment, m.window_start)
        )
        assert warehouse.incidents() == []


def test_the_calendar_bucket_holding_now_is_replaced_not_repeated(warehouse: Warehouse):
    day = datetime(2026, 11, 30, tzinfo=UTC)
    early = MetricValue(
        "deployment_count", "production", day, day + timedelta(hours=6), 1.0, "count", grain="day"
    )
    window = MetricValue(
        "deployment_count",
        "production",
        day - timedelta(days=7),
        day + timedelta(hours=6),
        4.0,
        "count",
    )
    warehouse.replace_metric_values([early, window])
    later = replace(early, window_end=day + timedelta(hours=18), value=3.0)
    later_window = replace(
        window,
        window_start=day - timedelta(days=7) + timedelta(hours=12),
        window_end=day + timedelta(hours=18),
        value=5.0,
    )
    warehouse.replace_metric_values([later, later_window])
    stored = warehouse.metric_values()
    assert [(v.grain, v.value) for v in stored if v.grain == "day"] == [("day", 3.0)]
    assert sorted(v.value for v in stored if v.grain == "window") == [4.0, 5.0]  # a history


def test_a_new_computation_leaves_no_stale_bucket_or_worker_row(warehouse: Warehouse):
    end = datetime(2026, 11, 30, 18, tzinfo=UTC)
    window = (end - timedelta(days=30), end)
    utc_day = MetricValue(
        "deployment_count", "production", end - timedelta(hours=18), end, 2.0, "count", grain="day"
    )
    per_worker = MetricValue(
        "deployment_count", "production", *window, 5.0, "count", worker="old-worker"
    )
    whole = MetricValue("deployment_count", "production", *window, 12.0, "count")
    older = MetricValue(
        "deployment_count",
        "production",
        window[0] - timedelta(days=1),
        end - timedelta(days=1),
        11.0,
        "count",
    )
    warehouse.replace_metric_values([utc_day, per_worker, whole, older])
    # The next computation: another zone's day, the same window, no per-worker rows.
    la_day = replace(utc_day, window_start=end - timedelta(hours=10), value=1.0)
    warehouse.replace_metric_values([la_day, replace(whole, value=13.0)])
    stored = {(v.grain, v.worker, v.window_end, v.value) for v in warehouse.metric_values()}
    assert stored == {
        ("day", "", end, 1.0),
        ("window", "", end, 13.0),
        ("window", "", end - timedelta(days=1), 11.0),  # another window: kept as history
    }


def _open_warehouse(url: str) -> str:
    try:
        Warehouse(url).close()
        return "ok"
    except Exception as exc:  # noqa: BLE001 (reported to the test, which names it)
        return f"{type(exc).__name__}: {exc}"


def test_processes_opening_an_old_warehouse_together_migrate_it_once(tmp_path):
    import multiprocessing

    path = tmp_path / "old.sqlite"
    _old_release_warehouse(path)
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        results = pool.map(_open_warehouse, [f"sqlite:///{path}"] * 6)
    assert results == ["ok"] * 6
    with Warehouse(f"sqlite:///{path}") as warehouse:
        assert [d.status for d in warehouse.deployments()] == ["success"]


def test_a_refused_migration_changes_nothing(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    _old_release_warehouse(path)
    with sqlite3.connect(path) as db:  # tags from a release that had no "annotated" column
        db.execute("CREATE TABLE tags (name TEXT PRIMARY KEY, sha TEXT NOT NULL)")
    before = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    with pytest.raises(ValueError, match="tags row '\\(schema\\)': field 'time'"):
        Warehouse(f"sqlite:///{path}")
    after = sqlite3.connect(path).execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert after == before


def audit_entry(outcome: str = "refused", minutes: int = 0) -> AuditEntry:
    return AuditEntry(
        at=T0 + timedelta(minutes=minutes),
        actor="ada@example.invalid",
        action="deploy",
        environment="production",
        subject="c" * 40,
        outcome=outcome,
        reason="no_active_incident: open incident(s) in production: INC-7",
        run_id="run-1",
        detail={"refusals": [{"rule": "no_active_incident", "evidence": "INC-7"}]},
    )


def test_the_audit_log_keeps_every_entry_in_order_and_refuses_changes(warehouse: Warehouse):
    import sqlalchemy as sa

    warehouse.append_audit(audit_entry())
    warehouse.append_audit(audit_entry("allowed", minutes=5))
    assert [e.outcome for e in warehouse.audit_log()] == ["refused", "allowed"]
    assert warehouse.audit_log("staging") == []
    assert warehouse.audit_log()[0] == audit_entry()
    statements = ["UPDATE audit_log SET outcome = 'allowed'", "DELETE FROM audit_log"]
    if warehouse.dialect == "sqlite":  # REPLACE deletes without firing DELETE triggers
        statements.append(
            "INSERT OR REPLACE INTO audit_log (entry, at, actor, action, environment, subject, "
            "outcome, reason, run_id, detail) SELECT entry, at, actor, action, environment, "
            "subject, 'allowed', 'rewritten', run_id, detail FROM audit_log WHERE entry = 1"
        )
    for statement in statements:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with warehouse.engine.begin() as conn:
                conn.exec_driver_sql(statement)
    assert len(warehouse.audit_log()) == 2
    assert warehouse.audit_log()[0] == audit_entry()


def test_gate_records_round_trip_and_a_report_sent_twice_is_one_row(warehouse: Warehouse):
    warehouse.record_gate(gate_records())
    warehouse.record_gate(gate_records()[:1])
    stored = warehouse.gate_records("b" * 40)
    assert [(g.step, g.status) for g in stored] == [
        ("lint", "failed"),
        ("test:unit", "warning"),
        ("lint", "passed"),
    ]
    assert warehouse.gate_records("c" * 40) == []
    with pytest.raises(ValueError, match="field 'status'"):
        warehouse.record_gate([GateRecord("b" * 40, "lint", "ok", T0)])


def test_a_deploy_request_moves_only_to_a_known_state(warehouse: Warehouse):
    at = datetime(2026, 11, 30, 18, tzinfo=UTC)
    ledger = warehouse.deploys
    assert ledger.add_request(DeployRequest("hardshell", "c" * 40, "staging", at))
    with pytest.raises(ValueError, match="to_state: one of waiting, claimed"):
        ledger.move_request(f"hardshell:{'c' * 40}", "waiting", "done", "", at)
    assert ledger.move_request(f"hardshell:{'c' * 40}", "waiting", "claimed", "ok", at, "s")
    assert [(r.state, r.claimed_by) for r in ledger.requests()] == [("claimed", "s")]
