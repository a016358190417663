"""The demo's deploy story, end to end on the real instance (PostgreSQL) and
emulator, and what it does to the numbers users see.

Before the story production counts D deployments and R rollbacks in the health
window; the story adds three deployments as the engine reads them (the good
release, its three rollout steps folded into one; the bad commit at 10 %; the
rollback) of which one is a rollback and one a failed change. So after it:
rollback_rate = (R + 1) / (D + 3) and change_failure_rate = (F + 1) / (D + 3).
"""

from __future__ import annotations

import re

import pytest

from devops_assets.demo import scenario
from devops_assets_tests.pipeline_fixtures import open_pipeline


def production_window(pipeline) -> dict[str, float]:
    rows = [r for r in pipeline.warehouse.pipeline_health() if r.environment == "production"]
    window = (rows[0].window_start, rows[0].window_end)
    return {
        v.metric: v.value
        for v in pipeline.warehouse.metric_values()
        if v.environment == "production"
        and v.worker == ""
        and v.grain == "window"
        and (v.window_start, v.window_end) == window
    }


@pytest.fixture(scope="module")
def story(tmp_path_factory, postgres_server):
    pipeline, close = open_pipeline(tmp_path_factory.mktemp("story"), postgres_server)
    assert pipeline.run().success
    before = production_window(pipeline)
    told = scenario.play(pipeline.config, pipeline.defs, pipeline.instance)
    assert pipeline.run().success
    yield pipeline, before, production_window(pipeline), told
    close()


def test_the_story_deploys_staging_from_a_push_then_production_then_rolls_back(story):
    pipeline, _, _, told = story
    lines = "\n".join(told.lines)
    assert lines.count("(staging): succeeded") == 2
    assert "git_push_sensor: 0 run(s); the build is still running" in lines
    assert "release v2.30.0 (minor after v2.29.1)" in lines
    assert "production smoke failed at 10 % (health: expected HTTP 200, got 500)" in lines
    runs = pipeline.instance.get_runs()
    deploys = [r for r in runs if r.job_name == "deploy"]
    assert sorted(r.status.value for r in deploys) == ["FAILURE", "SUCCESS", "SUCCESS", "SUCCESS"]
    assert all(r.tags["devops_assets/deploy"] == "lane" for r in deploys)
    sensor_runs = [r for r in deploys if r.tags.get("dagster/run_key", "").startswith("hardshell:")]
    assert len(sensor_runs) == 2


def test_the_rollback_shows_in_rollback_rate_and_change_failure_rate(story):
    _, before, after, _ = story
    count = round(before["deployment_count"])
    rollbacks = round(before["rollback_rate"] * count)
    failed = round(before["change_failure_rate"] * count)
    assert after["deployment_count"] == count + 3
    assert after["rollback_rate"] == pytest.approx((rollbacks + 1) / (count + 3))
    assert after["change_failure_rate"] == pytest.approx((failed + 1) / (count + 3))
    assert (count, rollbacks, failed) == (12, 1, 1)  # the demo's history, as printed


def test_the_warehouse_holds_the_bad_deploy_at_10_percent_then_its_rollback(story):
    pipeline, _, _, _ = story
    production = sorted(
        (d for d in pipeline.warehouse.deployments() if d.environment == "production"),
        key=lambda d: d.created_on,
    )
    release = pipeline.warehouse.deploys.releases()[0]
    tail = [(d.kind, d.commit_sha, d.percentage) for d in production[-5:]]
    bad = tail[3][1]
    assert tail == [
        ("deploy", release.commit_sha, 10.0),
        ("deploy", release.commit_sha, 50.0),
        ("deploy", release.commit_sha, 100.0),
        ("deploy", bad, 10.0),
        ("rollback", release.commit_sha, 100.0),
    ]
    audit = [
        (a.action, a.environment, a.outcome)
        for a in pipeline.warehouse.audit_log("production")
        if a.action in ("deploy", "rollback")
    ]
    assert audit[-2:] == [
        ("deploy", "production", "allowed"),
        ("deploy", "production", "rolled_back"),
    ]


def test_the_environments_chapters_rotate_migrate_and_sync(story):
    pipeline, _, _, told = story
    lines = "\n".join(told.lines)
    assert "4 request(s); notified the approvers" in lines
    assert "Refused (approval)" in lines  # a rotation without an approval
    assert "staging MOLTBOT_GATEWAY_TOKEN: ok; 0.0 days old" in lines
    assert "Refused by the deploy policy: staging_applied" in lines
    assert lines.index("(staging): applied 0003_session_index.sql") < lines.index(
        "(production): applied 0003_session_index.sql"
    )
    assert "check FAILS on deployed.staging.compatibility_date" in lines
    drift = lines[lines.index("Config drift story") : lines.index("Flaky build story")]
    assert drift.rstrip().endswith("check passes")
    by_action = {}
    for row in pipeline.warehouse.audit_log():
        by_action.setdefault(row.action, []).append((row.environment, row.outcome))
    assert by_action["apply_d1_migrations"] == [
        ("production", "refused"),
        ("staging", "allowed"),
        ("staging", "succeeded"),
        ("production", "allowed"),
        ("production", "succeeded"),
    ]
    assert by_action["sync_config"][-1] == ("staging", "succeeded")


def test_the_flaky_chapter_triages_a_failure_a_retry_rescues(story):
    """A staging build fails for no fault of its commit; once a retry of the same
    commit passes, the failure is flaky and the rate without flaky failures leaves it
    out — the same figures pipeline_health shows after the story."""
    from devops_assets.emulator.buildlogs import FLAKY
    from devops_assets.store.triage_ledger import TriageLedger

    pipeline, _, _, told = story
    chapter = told.lines[told.lines.index("Flaky build story (a failure a retry rescues):") :]
    failed_line = next(line for line in chapter if line.startswith("1. pushed "))
    short = failed_line.split("'s build ")[1].split()[0]
    builds = pipeline.warehouse.builds()
    [failed] = [b for b in builds if b.build_uuid.startswith(short)]
    [retry] = [
        b
        for b in builds
        if b.commit_sha == failed.commit_sha
        and b.worker == failed.worker
        and b.outcome == "success"
        and b.trigger_source == "manual"
    ]
    assert retry.started_on > failed.started_on
    triage = TriageLedger(pipeline.warehouse).triage(failed.build_uuid)
    assert (triage.category, triage.step) in {(f.category, f.step) for f in FLAKY}
    assert chapter[2].startswith(f"2. build_failures: {triage.category} in step {triage.step}")
    # before the retry both rates are equal; after it the second leaves the failure out
    before = [float(x) for x in re.findall(r"([\d.]+) %", chapter[3])]
    after = [float(x) for x in re.findall(r"([\d.]+) %", chapter[5])]
    assert before[0] == before[1] and after[1] > after[0]
    [health] = [
        r
        for r in pipeline.warehouse.pipeline_health()
        if (r.metric, r.environment) == ("build_success_rate", "staging")
    ]
    assert after == [
        round(100 * health.value, 2),
        round(100 * health.detail["build_success_rate_without_flaky"], 2),
    ]
