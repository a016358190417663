"""The main job end to end on the demo: Dagster instance on PostgreSQL, every asset,
and pipeline health equal to a recomputation from the simulator's raw events."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.storage.runs import RunStorage

from devops_assets.config import DEMO_CONFIG, load_config
from devops_assets.defs import build_definitions
from devops_assets_tests.pipeline_fixtures import QUIET, open_pipeline

TABLES = (
    "commits",
    "tags",
    "builds",
    "deployments",
    "incidents",
    "metric_values",
    "pipeline_health",
)
ASSETS = (
    "git_commits",
    "git_tags",
    "workers_builds",
    "build_failures",
    "worker_deployments",
    "incidents",
    "dora_metrics",
    "pipeline_health",
    "release_notes",
    "deploy_audit",
    "config_drift",
    "secret_inventory",
    "d1_migrations",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, postgres_server):
    pipeline, close = open_pipeline(tmp_path_factory.mktemp("demo"), postgres_server)
    first = pipeline.run()
    pipeline.first_result = first
    pipeline.first_snapshots = {t: pipeline.warehouse.snapshot(t) for t in TABLES}
    for asset in ASSETS:
        pipeline.run(asset)
        pipeline.run(asset)
    pipeline.second_snapshots = {t: pipeline.warehouse.snapshot(t) for t in TABLES}
    yield pipeline
    close()


def test_the_run_is_stored_in_postgresql_through_dagster_yaml(demo):
    storage: RunStorage = demo.instance.run_storage
    assert type(storage).__name__ == "PostgresRunStorage"
    assert demo.first_result.success
    stored = demo.instance.get_run_by_id(demo.first_result.run_id)
    assert stored.job_name == "refresh_pipeline_health"
    materialized = {
        e.asset_key.to_user_string() for e in demo.first_result.get_asset_materialization_events()
    }
    assert materialized == set(ASSETS)


def test_each_target_check_agrees_with_the_health_table(demo):
    evaluations = {
        e.check_name: e.passed
        for e in demo.first_result.get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey("pipeline_health")
    }
    table = {
        f"{r.environment}_{r.metric}_target": r.status == "met"
        for r in demo.warehouse.pipeline_health()
    }
    assert len(evaluations) == len(demo.config.targets) == 7
    assert evaluations == table


@pytest.mark.parametrize("table", TABLES)
def test_materializing_every_asset_again_leaves_the_table_unchanged(demo, table):
    assert demo.first_snapshots[table], f"{table} is empty after the demo run"
    assert demo.second_snapshots[table] == demo.first_snapshots[table]


def test_pipeline_health_equals_an_independent_recomputation_from_raw_events(demo):
    expected = recompute_health(demo.history, demo.config.as_of, demo.config.health_window_days)
    measured = {(r.metric, r.environment): r.value for r in demo.warehouse.pipeline_health()}

    assert set(measured) == set(expected)
    for key, value in expected.items():
        assert measured[key] == pytest.approx(value, rel=1e-9), key


def test_failure_metrics_equal_a_recomputation_from_the_simulators_ground_truth(demo):
    """Change failure rate, rework, recovery and restore times of production over the
    health window, recomputed with plain loops from the simulator's own record of which
    deployment each incident came from (the engine only sees the feed, which does not
    say, and attributes each incident to the deployment before it)."""
    end = demo.config.as_of
    start = end - timedelta(days=demo.config.health_window_days)
    expected = recompute_failures(demo.history, start, end)
    measured = {
        v.metric: v.value
        for v in demo.warehouse.metric_values()
        if v.environment == "production"
        and v.grain == "window"
        and (v.window_start, v.window_end) == (start, end)
    }
    assert expected["failed"] > 0 and expected["incidents"] > 0  # the demo has both
    for metric in (
        "change_failure_rate",
        "rework_rate",
        "failed_deployment_recovery_time_p50",
        "time_to_restore_p50",
        "time_to_restore_mean",
    ):
        assert measured[metric] == pytest.approx(expected[metric], rel=1e-9), metric


def recompute_failures(history, start, end) -> dict[str, float]:
    served = []
    for d in sorted(
        (d for d in history.deployments if d["environment"] == "production"),
        key=lambda d: (d["created_on"], d["id"]),
    ):
        retry = served and d["kind"] != "rollback" and served[-1]["commit_sha"] == d["commit_sha"]
        if not retry:
            served.append(d)
    incidents = [i for i in history.incidents if i["environment"] == "production"]
    by_id = {d["id"]: n for n, d in enumerate(served)}
    failed: dict[int, list] = {}
    for incident in incidents:
        failed.setdefault(by_id[incident["deployment_id"]], []).append(incident)
    for n, d in enumerate(served):
        if d["kind"] == "rollback":
            failed.setdefault(n - 1, [])
        hotfix = "hotfix" in (d.get("message") or "").lower()
        if hotfix and d["created_on"] - served[n - 1]["created_on"] <= timedelta(hours=24):
            failed.setdefault(n - 1 if served[n - 1]["kind"] != "rollback" else n - 2, [])
    window = [n for n, d in enumerate(served) if start <= d["created_on"] < end]
    recoveries = []
    for n in window:
        if n not in failed:
            continue
        healthy = next((m for m in range(n + 1, len(served)) if m not in failed), None)
        ends = [served[healthy]["created_on"]] if healthy is not None else []
        ends += [i["resolved_at"] for i in failed[n] if i["resolved_at"]]
        if ends:
            recoveries.append((min(ends) - served[n]["created_on"]).total_seconds())

    def unplanned(d) -> bool:
        during = any(
            i["opened_at"] <= d["created_on"]
            and (i["resolved_at"] is None or d["created_on"] <= i["resolved_at"])
            for i in incidents
        )
        hotfix = "hotfix" in (d.get("message") or "").lower()
        return d["kind"] == "rollback" or hotfix or during

    restored = [
        (i["resolved_at"] - i["opened_at"]).total_seconds()
        for i in incidents
        if i["resolved_at"] and start <= i["resolved_at"] < end
    ]
    return {
        "failed": sum(n in failed for n in window),
        "incidents": len(restored),
        "change_failure_rate": sum(n in failed for n in window) / len(window),
        "rework_rate": sum(unplanned(served[n]) for n in window) / len(window),
        "failed_deployment_recovery_time_p50": statistics.median(recoveries),
        "time_to_restore_p50": statistics.median(restored),
        "time_to_restore_mean": statistics.mean(restored),
    }


def recompute_health(history, end, days: int) -> dict[tuple[str, str], float | None]:
    """The seven target values over the ``days`` before ``end``, computed straight from
    the simulator's events with plain loops, ``statistics`` and a brute-force ancestry
    walk."""
    start = end - timedelta(days=days)
    values = {}
    for env in ("staging", "production"):
        stopped = [
            b
            for b in history.builds
            if b["environment"] == env and b["stopped_on"] and start <= b["stopped_on"] < end
        ]
        rated = [b for b in stopped if b["outcome"] in ("success", "fail")]
        ok = [b for b in rated if b["outcome"] == "success"]
        values[("build_success_rate", env)] = len(ok) / len(rated)
        durations = [(b["stopped_on"] - b["running_on"]).total_seconds() for b in stopped]
        values[("build_duration_p50", env)] = statistics.median(durations)

    prod = sorted(
        (d for d in history.deployments if d["environment"] == "production"),
        key=lambda d: (d["created_on"], d["id"]),
    )
    window = [d for d in prod if start <= d["created_on"] < end]
    values[("deployment_frequency", "production")] = len(window) / (days / 7)
    rollbacks = [d for d in window if d["kind"] == "rollback"]
    values[("rollback_rate", "production")] = len(rollbacks) / len(window)
    values[("lead_time_p50", "production")] = statistics.median(
        brute_force_lead_times(history.commits, prod, start, end)
    )
    return values


def brute_force_lead_times(commits, deployments, start, end) -> list[float]:
    """For every commit, the first deployment (in time order) whose commit has it as an
    ancestor; the first deployment ever is the baseline and is not counted."""
    parents = {c["sha"]: c["parents"] for c in commits}
    author_time = {c["sha"]: c["author_time"] for c in commits}

    def ancestors(sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(parents.get(current, []))
        return seen

    contained = [ancestors(d["commit_sha"]) for d in deployments]
    spans = []
    for sha in parents:
        first = next((i for i, found in enumerate(contained) if sha in found), None)
        if first is None or first == 0:
            continue
        deployed = deployments[first]["created_on"]
        if start <= deployed < end:
            spans.append((deployed - author_time[sha]).total_seconds())
    return spans


def test_without_as_of_the_health_window_ends_now_and_every_target_has_a_value(
    tmp_path, postgres_server
):
    platform = tmp_path / "platform.toml"
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    platform.write_text(text.replace("as_of = 2026-11-30T20:00:00Z\n", ""), encoding="utf-8")
    pipeline, close = open_pipeline(tmp_path / "home", postgres_server, platform)
    try:
        assert pipeline.config.as_of is None
        before = datetime.now(UTC)
        assert pipeline.run().success
        rows = pipeline.warehouse.pipeline_health()
    finally:
        close()

    assert len(rows) == 7
    assert {r.status for r in rows} <= {"met", "missed"}
    end = rows[0].window_end
    assert before - timedelta(minutes=1) <= end <= datetime.now(UTC)
    assert end - rows[0].window_start == timedelta(days=30)


def test_health_follows_the_configured_as_of_even_after_a_run_with_another(
    tmp_path, postgres_server
):
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    typo = tmp_path / "typo.toml"
    typo.write_text(text.replace("as_of = 2026-11-30", "as_of = 2062-11-30"), encoding="utf-8")
    pipeline, close = open_pipeline(tmp_path / "home", postgres_server, typo)
    try:
        assert pipeline.run().success  # a window 36 years ahead is stored
        fixed = build_definitions(load_config(DEMO_CONFIG))
        job = fixed.resolve_job_def("refresh_pipeline_health")
        assert job.execute_in_process(instance=pipeline.instance, run_config=QUIET).success
        rows = pipeline.warehouse.pipeline_health()
    finally:
        close()

    assert {r.window_end for r in rows} == {datetime(2026, 11, 30, 20, tzinfo=UTC)}
    assert {r.status for r in rows} <= {"met", "missed"}


def test_patch_ids_are_stored_for_every_commit_with_a_diff(demo):
    from devops_assets.sources.git import read_patch_ids

    stored = demo.warehouse.patch_ids()
    assert stored and stored == read_patch_ids(demo.config.repository)
