"""Rollout plans, the known-good version and how a gradual deployment is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devops_assets.domain import rollout
from devops_assets.sources._cloudflare_answers import deployment_kinds, rolled_out

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


def dep(minute: int, *versions, triggered_by: str = "deployment") -> dict:
    return {
        "created_on": T0 + timedelta(minutes=minute),
        "versions": list(versions),
        "triggered_by": triggered_by,
    }


def test_a_plan_shares_traffic_step_by_step_and_ends_with_the_new_version_alone():
    assert rollout.plan("new", "old", [10, 50, 100]) == [
        (("new", 10.0), ("old", 90.0)),
        (("new", 50.0), ("old", 50.0)),
        (("new", 100.0),),
    ]
    assert rollout.plan("new", None, [10, 50, 100]) == [(("new", 100.0),)]
    assert rollout.plan("same", "same", [10, 100]) == [(("same", 100.0),)]
    assert rollout.plan("new", "old", [100]) == [(("new", 100.0),)]


HISTORY = [
    dep(0, ("v1", 100)),
    dep(10, ("v2", 100)),
    dep(20, ("v3", 10), ("v2", 90)),
    dep(21, ("v3", 50), ("v2", 50)),
    dep(22, ("v3", 100)),
]


def test_known_good_is_the_newest_full_version_never_found_broken():
    assert rollout.full_versions(HISTORY) == ["v3", "v2", "v1"]
    assert rollout.known_good(HISTORY, set()) == "v3"
    assert rollout.known_good(HISTORY, set(), exclude="v3") == "v2"
    assert rollout.known_good(HISTORY, {"v3", "v2"}) == "v1"
    assert rollout.known_good(HISTORY, {"v1", "v2", "v3"}) is None
    assert rollout.known_good([], set()) is None


def test_broken_versions_are_those_whose_latest_smoke_failed_or_a_rollback_replaced():
    smoke = [("v2", False), ("v2", True), ("v3", True), ("v3", False), ("v4", False)]
    assert rollout.broken_versions(smoke, {"v1"}) == {"v3", "v4", "v1"}


def test_a_rollback_is_seen_by_annotation_or_by_traffic_going_back_in_time():
    back = [*HISTORY, dep(30, ("v2", 100))]
    assert rollout.rolled_back_from(back) == {"v3"}
    # straight from a 10 % step back to the old version
    halted = [*HISTORY[:3], dep(25, ("v2", 100))]
    assert rollout.rolled_back_from(halted) == {"v3"}
    marked = [*HISTORY, dep(30, ("v3", 100), triggered_by="rollback")]
    assert rollout.rolled_back_from(marked) == set()  # the same version: nothing replaced
    assert rollout.rolled_back_from(HISTORY) == set()
    assert rollout.rolled_back_from([dep(0, ("v1", 100)), dep(1, ("v1", 100))]) == set()


def test_a_gradual_step_is_read_as_the_version_it_rolls_out():
    numbers = {"v2": 2, "v3": 3}
    step = {"versions": [("v2", 90.0), ("v3", 10.0)]}
    assert rolled_out(step, numbers) == ("v3", 10.0)
    assert rolled_out({"versions": [("v3", 100.0)]}, numbers) == ("v3", 100.0)
    assert rolled_out(step, {"v2": 2}) == ("v2", 90.0)  # a number unknown: the larger share
    # a bad version at 10 %, then the old one back at 100 %: a deploy, then a rollback
    raw = [
        {"versions": [("v2", 100.0)], "triggered_by": "deployment"},
        {"versions": [("v3", 10.0), ("v2", 90.0)], "triggered_by": "deployment"},
        {"versions": [("v2", 100.0)], "triggered_by": "deployment"},
    ]
    majors = [rolled_out(d, numbers) for d in raw]
    assert majors == [("v2", 100.0), ("v3", 10.0), ("v2", 100.0)]
    assert deployment_kinds(raw, majors, numbers) == ["deploy", "deploy", "rollback"]
