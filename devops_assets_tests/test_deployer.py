"""Deploys and rollbacks against the demo's emulator, git repository and a warehouse.

Each test starts from the seeded demo (production serves the history's last
release, v2.29.1) and pushes its own commits to ``hardshell``; nothing here is
mocked: the emulator serves the API and the workers' edge, git tags for real,
the warehouse is a SQLite file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_assets.delivery import deployer, rollback
from devops_assets.domain import rollout
from devops_assets.domain.deploys import SmokeRecord
from devops_assets.domain.guards import GateRecord
from devops_assets_tests.deploy_fixtures import BAD, GOOD

OPS = "ops@moltworker.example"


def staged(world, change=GOOD, serves="ok") -> str:
    """A commit pushed, deployed to staging and smoke-tested there, and gated."""
    sha = world.push(change, serves)
    deployer.deploy(world.runtime("run-staging"), "staging", sha, "mira@moltworker.example", "try")
    world.gate(sha)
    return sha


def test_staging_then_production_by_steps_ends_in_a_tagged_release(world):
    before = world.deployments("moltworker")
    old = rollout.serving(
        {"versions": [(v["version_id"], v["percentage"]) for v in before[-1]["versions"]]}
    )
    sha = world.push(GOOD)

    first = deployer.deploy(world.runtime("run-s"), "staging", sha[:10], "mira@x.example", "try it")
    assert first.steps == [100.0] and [s.passed for s in first.smoke] == [True]
    world.gate(sha)
    out = deployer.deploy(world.runtime("run-p"), "production", "hardshell", OPS, "promote")

    assert out.commit_sha == sha and out.steps == [10.0, 50.0, 100.0]
    assert [(s.percentage, s.passed, s.version_id) for s in out.smoke] == [
        (10.0, True, out.version_id),
        (50.0, True, out.version_id),
        (100.0, True, out.version_id),
    ]
    new = world.deployments("moltworker")[len(before) :]
    shares = [[(v["version_id"], v["percentage"]) for v in d["versions"]] for d in new]
    assert shares == [
        [(out.version_id, 10), (old, 90)],
        [(out.version_id, 50), (old, 50)],
        [(out.version_id, 100)],
    ]
    release = out.release
    assert (release.tag, release.previous_tag, release.bump) == ("v2.30.0", "v2.29.1", "minor")
    assert release.rollback_target == old and release.version_id == out.version_id
    assert release.changelog.splitlines()[:5] == [
        "## 2.30.0 (2026-11-30)",
        "",
        "### Features",
        "",
        f"- **gateway:** cap how long a Retry-After from upstream may hold a request ({sha[:7]})",
    ]
    assert world.git("rev-parse", "v2.30.0^{commit}") == sha
    assert world.git("cat-file", "-t", "v2.30.0") == "tag"
    assert "### Features" in world.git("tag", "-l", "--format=%(contents)", "v2.30.0")
    assert world.warehouse.deploys.releases()[0] == release
    audit = [(a.action, a.environment, a.outcome, a.actor) for a in world.warehouse.audit_log()]
    assert audit == [
        ("deploy", "staging", "allowed", "mira@x.example"),
        ("deploy", "staging", "succeeded", "mira@x.example"),
        ("deploy", "production", "allowed", OPS),
        ("deploy", "production", "succeeded", OPS),
    ]
    assert world.notices() == ["deploy_started", "deployed", "deploy_started", "promoted"]
    assert world.warehouse.deploys.holder("production") is None


def test_deploying_a_released_commit_again_reuses_its_release(world):
    sha = staged(world)
    one = deployer.deploy(world.runtime("run-1"), "production", sha, OPS, "promote")
    two = deployer.deploy(world.runtime("run-2"), "production", sha, OPS, "again")
    assert two.release == one.release and two.steps == [100.0]
    assert world.git("tag", "--points-at", sha) == "v2.30.0"


def test_a_failed_production_smoke_test_rolls_back_to_the_known_good_version(world):
    good = staged(world)
    released = deployer.deploy(world.runtime("run-1"), "production", good, OPS, "promote").release
    bad = staged(world, BAD, {"moltworker": "error"})

    with pytest.raises(deployer.DeployFailed) as failed:
        deployer.deploy(world.runtime("run-2"), "production", bad, OPS, "ship it")

    assert str(failed.value) == (
        "production smoke failed at 10 % (health: expected HTTP 200, got 500); "
        f"version {released.version_id} serves 100 % again"
    )
    latest = world.deployments("moltworker")[-1]
    assert [(v["version_id"], v["percentage"]) for v in latest["versions"]] == [
        (released.version_id, 100)
    ]
    # what the ingest (and so every metric) reads: the bad version went out at 10 %,
    # then a rollback
    rt = world.runtime()
    tag = world.config.worker("moltworker").tag
    read = rt.client.worker_deployments("moltworker", tag, "production")
    assert [(d.kind, d.commit_sha, d.percentage) for d in read[:2]] == [
        ("rollback", good, 100.0),
        ("deploy", bad, 10.0),
    ]
    assert rollout.rolled_back_from(rt.client.list_deployments("moltworker")) >= {
        read[1].version_id
    }
    smoke = [(s.percentage, s.passed) for s in world.warehouse.deploys.smoke_runs("production")]
    assert smoke[-2:] == [(10.0, False), (100.0, True)]
    audit = [(a.action, a.outcome) for a in world.warehouse.audit_log("production")]
    assert audit[-2:] == [("deploy", "allowed"), ("deploy", "rolled_back")]
    assert world.notices()[-2:] == ["deploy_started", "rolled_back"]
    assert [r.tag for r in world.warehouse.deploys.releases()] == ["v2.30.0"]  # no release
    assert world.warehouse.deploys.holder("production") is None


def test_a_failed_staging_smoke_test_fails_the_deploy_without_a_rollback(world):
    sha = world.push(BAD, "error")
    with pytest.raises(deployer.DeployFailed, match="staging smoke tests of version .* failed"):
        deployer.deploy(world.runtime(), "staging", sha, "mira@x.example", "try")
    staging = world.warehouse.deploys.smoke_runs("staging")
    assert [(s.commit_sha, s.passed) for s in staging] == [(sha, False)]
    assert world.notices() == ["deploy_started", "deploy_failed"]


# -- one test per rule: the refusal, its evidence and its audit row ---------------------


def refused(world, run, rule: str, evidence: str, environment: str = "production"):
    count = len(world.deployments(world.config.environment(environment).worker))
    with pytest.raises(deployer.DeployRefused) as caught:
        run()
    found = {r.rule: r.evidence for r in caught.value.decision.refusals}
    assert list(found) == [rule] and evidence in found[rule], found
    row = world.warehouse.audit_log(environment)[-1]
    assert (row.action, row.outcome) == ("deploy", "refused")
    assert [r["rule"] for r in row.detail["refusals"]] == [rule]
    assert evidence in row.reason
    assert len(world.deployments(world.config.environment(environment).worker)) == count
    assert world.notices()[-1] == "deploy_refused"
    assert world.warehouse.deploys.holder(environment) is None or rule == "one_at_a_time"


def test_rule_build_refuses_a_commit_whose_build_failed(world):
    sha = world.push(GOOD, outcome="fail")
    world.gate(sha)
    run = lambda: deployer.deploy(world.runtime(), "staging", sha, OPS, "try")  # noqa: E731
    refused(world, run, "build", "fail, not success", "staging")


def test_rule_quality_gate_refuses_missing_and_warning_steps(world):
    sha = world.push(GOOD)
    deployer.deploy(world.runtime("run-s"), "staging", sha, OPS, "try")
    run = lambda: deployer.deploy(world.runtime(), "production", sha, OPS, "go")  # noqa: E731
    refused(world, run, "quality_gate", "missing lint, check, format, test:backend")
    now = world.app().now()
    world.gate(sha, "passed", now)
    late = GateRecord(sha[:9], "test:e2e", "warning", now + timedelta(minutes=1))
    world.warehouse.record_gate([late])  # an abbreviated sha counts for the commit
    refused(world, run, "quality_gate", "test:e2e warning")


def test_rule_staging_verified_refuses_a_commit_staging_never_ran(world):
    sha = world.push(GOOD)
    world.gate(sha)
    run = lambda: deployer.deploy(world.runtime(), "production", sha, OPS, "go")  # noqa: E731
    refused(world, run, "staging_verified", "was never deployed to staging")


def test_rule_no_active_incident_refuses_while_production_is_on_fire(world):
    sha = staged(world)
    incident = world.app().open_incident("production", "Gateway answers 502")
    run = lambda: deployer.deploy(world.runtime(), "production", sha, OPS, "go")  # noqa: E731
    refused(world, run, "no_active_incident", f"open incident(s) in production: {incident}")
    world.app().resolve_incident(incident)
    assert deployer.deploy(world.runtime(), "production", sha, OPS, "go").release is not None


@pytest.mark.parametrize(
    ("now", "evidence"),
    [
        (datetime(2026, 12, 5, 12, 0, tzinfo=UTC), "Saturday 12:00 UTC is outside every"),
        (datetime(2026, 12, 1, 7, 59, tzinfo=UTC), "Tuesday 07:59 UTC is outside every"),
        (datetime(2026, 12, 22, 10, 0, tzinfo=UTC), "change freeze until 2027-01-04T00:00:00"),
    ],
)
def test_rule_deployment_window_refuses_outside_windows_and_inside_freezes(world, now, evidence):
    sha = staged(world)
    rt = world.runtime()
    rt.now = lambda: now

    refused(
        world,
        lambda: deployer.deploy(rt, "production", sha, OPS, "go"),
        "deployment_window",
        evidence,
    )


def test_rule_one_at_a_time_refuses_while_another_run_holds_the_environment(world):
    sha = staged(world)
    ledger = world.warehouse.deploys
    assert (
        ledger.acquire("production", "run-other", OPS, sha, world.app().now(), lambda r: True)
        is None
    )
    rt = world.runtime("run-mine", active=("run-other",))
    run = lambda: deployer.deploy(rt, "production", sha, OPS, "go")  # noqa: E731
    refused(world, run, "one_at_a_time", "another deploy to production is running: run-other")
    assert ledger.holder("production") == "run-other"
    # once that run has ended its lock is taken over
    assert deployer.deploy(world.runtime("run-mine"), "production", sha, OPS, "go").release
    assert ledger.holder("production") is None


def test_rule_rollback_target_refuses_when_no_version_is_known_good(world):
    sha = staged(world)
    ledger = world.warehouse.deploys
    now = world.app().now()
    for version in rollout.full_versions(world.runtime().client.list_deployments("moltworker")):
        ledger.record_smoke(SmokeRecord("production", version, "", 100.0, False, now, "run-x"))
    run = lambda: deployer.deploy(world.runtime(), "production", sha, OPS, "go")  # noqa: E731
    refused(world, run, "rollback_target", "no known-good version of production")


@pytest.mark.parametrize(
    ("field", "kwargs", "message"),
    [
        ("environment", {"environment": "prod"}, "environment: one of staging, production"),
        ("commit", {"commit": "no-such-branch"}, "commit: no commit named 'no-such-branch'"),
        ("commit", {"commit": "--upload-pack=x"}, "commit: invalid revision"),
        ("requested_by", {"requested_by": " "}, "requested_by: one line"),
        ("reason", {"reason": "two\nlines"}, "reason: one line"),
    ],
)
def test_bad_requests_are_refused_naming_the_field_before_anything_happens(
    world, field, kwargs, message
):
    request = {"environment": "staging", "commit": "hardshell", "requested_by": OPS, "reason": "r"}
    with pytest.raises(deployer.DeployInputError, match=message):
        deployer.deploy(world.runtime(), **{**request, **kwargs})
    assert world.warehouse.audit_log() == [] and world.notices() == []


# -- rollbacks ---------------------------------------------------------------------------


def test_a_rollback_goes_back_to_the_version_before_the_release_even_during_an_incident(world):
    sha = staged(world)
    release = deployer.deploy(world.runtime("run-1"), "production", sha, OPS, "promote").release
    world.app().open_incident("production", "Chats lose their history")
    rt = world.runtime("run-2")
    rt.now = lambda: datetime(2026, 12, 5, 3, 0, tzinfo=UTC)  # Saturday night: no window
    out = rollback.rollback(rt, "production", None, OPS, "INC-007")
    assert out.rolled_back_to == release.rollback_target and out.smoke[0].passed
    latest = world.deployments("moltworker")[-1]
    assert [(v["version_id"], v["percentage"]) for v in latest["versions"]] == [
        (release.rollback_target, 100)
    ]
    row = world.warehouse.audit_log("production")[-1]
    assert (row.action, row.outcome, row.subject) == (
        "rollback",
        "succeeded",
        release.rollback_target,
    )
    # the released version is now known to be rolled back from: not a fallback any more
    assert world.runtime().client and rollout.rolled_back_from(
        world.runtime().client.list_deployments("moltworker")
    ) >= {release.version_id}


def test_a_rollback_to_a_version_the_worker_never_served_is_refused(world):
    with pytest.raises(deployer.DeployRefused) as caught:
        rollback.rollback(world.runtime(), "production", "0000-not-a-version", OPS, "test")
    assert caught.value.decision.refusals[0].evidence == (
        "version 0000-not-a-version never served moltworker"
    )
    assert world.warehouse.audit_log()[-1].outcome == "refused"


def test_a_rollback_with_nothing_to_go_back_to_is_refused(world):
    ledger, now = world.warehouse.deploys, world.app().now()
    for version in rollout.full_versions(world.runtime().client.list_deployments("moltworker")):
        ledger.record_smoke(SmokeRecord("production", version, "", 100.0, False, now, "run-x"))
    with pytest.raises(deployer.DeployRefused, match="no known-good version of production"):
        rollback.rollback(world.runtime(), "production", None, OPS, "test")
