"""The deploy policy: one passing case, then each rule refusing with its evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from devops_assets.domain.guards import (
    RULES,
    Facts,
    Freeze,
    GateRecord,
    SmokeRun,
    Window,
    decide,
    decide_rollback,
)

SHA = "c0ffee" * 6 + "abcd"
STEPS = ("lint", "check", "format", "test:backend", "test:e2e", "test:smoke", "test:unit")
# Tuesday 2026-12-01 10:00 in Berlin (+01:00 in winter).
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WORKDAYS = Window(frozenset(range(5)), time(9, 0), time(17, 0))


def gate(status="passed", steps=STEPS, sha=SHA, minutes=0):
    at = NOW - timedelta(hours=2) + timedelta(minutes=minutes)
    return [GateRecord(sha, step, status, at) for step in steps]


GOOD = Facts(
    environment="production",
    commit_sha=SHA,
    now=NOW,
    timezone="Europe/Berlin",
    gate_steps=STEPS,
    gate=gate(),
    staging_deployed=frozenset({SHA}),
    smoke_runs=[SmokeRun("staging", SHA, True, NOW - timedelta(hours=1))],
    windows=[WORKDAYS],
    known_good_version="v-41",
    worker="moltworker",
    build_uuid="b-1",
    build_state="success",
    version_id="v-42",
)


def refused(facts: Facts) -> dict[str, str]:
    return {r.rule: r.evidence for r in decide(facts).refusals}


def test_a_commit_that_passed_everything_is_allowed_and_every_rule_was_checked():
    decision = decide(GOOD)
    assert decision.allowed
    assert decision.checked == RULES
    assert decision.summary().startswith("allowed: build, quality_gate, staging_verified")


@pytest.mark.parametrize(
    ("records", "evidence"),
    [
        (gate(steps=STEPS[:-1]), "missing test:unit"),
        (gate() + [GateRecord(SHA, "lint", "failed", NOW)], "lint failed"),
        (gate() + [GateRecord(SHA, "format", "warning", NOW)], "format warning"),
        (gate(sha="f" * 40), "missing lint, check, format"),  # another commit's gate
    ],
)
def test_the_quality_gate_refuses_a_missing_failed_or_warning_step(records, evidence):
    got = refused(replace(GOOD, gate=records))
    assert list(got) == ["quality_gate"]
    assert evidence in got["quality_gate"]


def test_a_step_passed_again_after_failing_counts_as_passed():
    records = [GateRecord(SHA, "lint", "failed", NOW - timedelta(hours=3))] + gate()
    assert decide(replace(GOOD, gate=records)).allowed


@pytest.mark.parametrize(
    ("changes", "evidence"),
    [
        ({"staging_deployed": frozenset()}, "was never deployed to staging"),
        ({"smoke_runs": []}, "has no staging smoke run"),
        (
            {
                "smoke_runs": [
                    SmokeRun("staging", SHA, True, NOW - timedelta(hours=2)),
                    SmokeRun("staging", SHA, False, NOW - timedelta(hours=1)),
                ]
            },
            "latest staging smoke run",
        ),
        ({"smoke_runs": [SmokeRun("production", SHA, True, NOW)]}, "has no staging smoke run"),
    ],
)
def test_only_a_commit_staging_proved_goes_to_production(changes, evidence):
    got = refused(replace(GOOD, **changes))
    assert list(got) == ["staging_verified"] and evidence in got["staging_verified"]


def test_an_open_incident_holds_production():
    got = refused(replace(GOOD, open_incidents=["INC-007"]))
    assert got == {"no_active_incident": "open incident(s) in production: INC-007"}


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        (datetime(2026, 12, 1, 7, 59, tzinfo=UTC), False),  # 08:59 Berlin
        (datetime(2026, 12, 1, 8, 0, tzinfo=UTC), True),  # 09:00 Berlin
        (datetime(2026, 12, 1, 15, 59, tzinfo=UTC), True),  # 16:59
        (datetime(2026, 12, 1, 16, 0, tzinfo=UTC), False),  # 17:00: the end is excluded
        (datetime(2026, 12, 5, 10, 0, tzinfo=UTC), False),  # Saturday
        # Summer time (+02:00): 09:00 Berlin is 07:00 UTC, the window follows the wall clock.
        (datetime(2026, 7, 7, 7, 0, tzinfo=UTC), True),
        (datetime(2026, 7, 7, 6, 59, tzinfo=UTC), False),
    ],
)
def test_deployment_windows_are_wall_clock_hours_in_the_team_zone(now, allowed):
    smoke = [SmokeRun("staging", SHA, True, now - timedelta(hours=1))]
    records = [replace(r, recorded_at=now - timedelta(hours=2)) for r in gate()]
    got = refused(replace(GOOD, now=now, smoke_runs=smoke, gate=records))
    assert ("deployment_window" not in got) is allowed


def test_a_change_freeze_wins_over_an_open_window():
    freeze = Freeze(NOW - timedelta(days=1), NOW + timedelta(days=1), "end-of-year freeze")
    got = refused(replace(GOOD, freezes=[freeze]))
    assert list(got) == ["deployment_window"]
    assert (
        "change freeze until 2026-12-02T10:00:00+01:00 (end-of-year freeze)"
        in (got["deployment_window"])
    )


def test_one_deploy_at_a_time_and_a_rollback_target_are_required():
    got = refused(replace(GOOD, running_deploys=["run-1"], known_good_version=None))
    assert got == {
        "one_at_a_time": "another deploy to production is running: run-1",
        "rollback_target": "no known-good version of production to roll back to",
    }


def test_every_refusal_is_reported_not_only_the_first():
    bad = replace(
        GOOD,
        gate=[],
        staging_deployed=frozenset(),
        open_incidents=["INC-1"],
        windows=[],
        running_deploys=["run-9"],
        known_good_version=None,
        build_state="fail",
    )
    decision = decide(bad)
    assert not decision.allowed
    assert [r.rule for r in decision.refusals] == list(RULES)
    assert decision.summary().startswith(
        "refused: build: build b-1 of commit c0ffeec0ffee on moltworker: fail, not success; "
        "quality_gate: commit c0ffeec0ffee: missing"
    )


def test_staging_is_held_only_by_its_build_and_one_deploy_at_a_time():
    staging = replace(GOOD, environment="staging", gate=[], windows=[], open_incidents=["X"])
    assert decide(staging).allowed and decide(staging).checked == ("build", "one_at_a_time")
    assert not decide(replace(staging, running_deploys=["r"])).allowed


@pytest.mark.parametrize(
    ("changes", "evidence"),
    [
        ({"build_uuid": None, "build_state": None}, "worker moltworker has no build of commit"),
        ({"build_state": "running"}, "build b-1 of commit c0ffeec0ffee on moltworker: running"),
        ({"build_state": "cancelled"}, "cancelled, not success"),
        ({"version_id": None}, "on moltworker uploaded no version"),
    ],
)
def test_a_commit_without_a_successful_build_and_version_is_refused(changes, evidence):
    for environment in ("staging", "production"):
        found = refused(replace(GOOD, environment=environment, **changes))
        assert list(found) == ["build"] and evidence in found["build"]


def test_a_rollback_ignores_incidents_windows_and_the_gate_but_needs_a_target_and_the_lock():
    on_fire = replace(GOOD, gate=[], windows=[], open_incidents=["INC-7"], build_uuid=None)
    assert decide_rollback(on_fire).allowed
    assert decide_rollback(on_fire).checked == ("one_at_a_time", "rollback_target")
    both = decide_rollback(replace(on_fire, known_good_version=None, running_deploys=["r-2"]))
    assert [r.rule for r in both.refusals] == ["one_at_a_time", "rollback_target"]


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="UTC offset"):
        decide(replace(GOOD, now=datetime(2026, 12, 1, 9, 0)))
