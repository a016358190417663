"""Delivery and build metrics on small cases worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_assets.domain.engine import BuildArrays, History, measure
from devops_assets.domain.lineage import CommitGraph, attribute_commits
from devops_assets.domain.models import Build, Commit, Deployment, MetricValue
from devops_assets.domain.periods import Period
from devops_assets.domain.settings import MetricSettings

MAR_1 = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = 3600


def at(hours: float) -> datetime:
    return MAR_1 + timedelta(hours=hours)


def make_commit(sha: str, authored_hours: float, *parents: str) -> Commit:
    return Commit(sha, parents, at(authored_hours), at(authored_hours), "dev@x.invalid", sha)


def deploy(deployment_id, sha, hours, env="production", kind="deploy") -> Deployment:
    return Deployment(deployment_id, "api", env, at(hours), deployment_id, 100.0, sha, kind)


# a ─ b ─ c ───── m ─ g      (hours after Mar 1 00:00 UTC; author times)
#      └─ d ─ e ─┘           a 0, b 24, c 36, d 30, e 48, m 90, g 114
COMMITS = [
    make_commit("a", 0),
    make_commit("b", 24, "a"),
    make_commit("c", 36, "b"),
    make_commit("d", 30, "b"),
    make_commit("e", 48, "d"),
    make_commit("m", 90, "c", "e"),
    make_commit("g", 114, "m"),
]
# d0 ships a (baseline), d1 ships b c, d2 ships d e m, its retry nothing, d3 ships g.
DEPLOYMENTS = [
    deploy("d0", "a", 12),
    deploy("d1", "c", 48),
    deploy("d2", "m", 96),
    deploy("d2-retry", "m", 97),
    deploy("d3", "g", 168),
    deploy("staging-1", "g", 150, env="staging"),
]
# Lead times in hours: b 48-24=24, c 48-36=12, d 96-30=66, e 96-48=48, m 96-90=6,
# g 168-114=54.  Sorted: 6 12 24 48 54 66.


def over_window(
    start, end, deployments=(), env="production", builds=None, commits=COMMITS
) -> list[MetricValue]:
    """The engine's values of ``env`` (all workers) over one rolling window."""
    measured_builds = {} if builds is None else {env: BuildArrays.from_builds(builds)}
    history = History(CommitGraph(commits), list(deployments), (), measured_builds)
    values = measure(history, MetricSettings(), [Period("window", start, end)])
    return [v for v in values if v.environment == env and v.worker == ""]


DELIVERY = ("deployment_count", "deployment_frequency", "lead_time_p50", "lead_time_p90")


def measured(start: datetime, end: datetime, deployments=DEPLOYMENTS) -> dict[str, float | None]:
    return {
        v.metric: v.value
        for v in over_window(start, end, deployments)
        if v.metric in (*DELIVERY, "lead_time_mean")
    }


def test_one_week_window_hand_worked():
    # Window Mar 2 00:00 .. Mar 9 00:00 holds d1 d2 d3 (the retry of m folds into d2):
    # 3 deployments in 1 week.
    # p50: rank 5 x 0.5 = 2.5, between 24 h and 48 h -> 36 h.
    # p90: rank 5 x 0.9 = 4.5, between 54 h and 66 h -> 60 h.  Mean: 210 / 6 = 35 h.
    assert measured(at(24), at(192)) == {
        "deployment_count": 3,
        "deployment_frequency": 3.0,
        "lead_time_p50": 36 * HOUR,
        "lead_time_p90": 60 * HOUR,
        "lead_time_mean": 35 * HOUR,
    }


def test_baseline_changeset_is_left_out_even_when_inside_the_window():
    # Mar 1 .. Mar 15 also holds d0 (4 deployments in 2 weeks) but a's 12 h is not counted.
    values = measured(at(0), at(336))
    assert values["deployment_count"] == 4
    assert values["deployment_frequency"] == 2.0
    assert values["lead_time_p50"] == 36 * HOUR


def test_window_counts_commits_by_their_first_deployment_time():
    # Mar 4 00:00 .. Mar 6 00:00 holds d2 (its retry folds into it): d e m, lead times
    # 66 48 6 h. 1 deployment in 2/7 week -> 3.5 per week; median 48 h; mean 40 h.
    values = measured(at(72), at(120))
    assert values["deployment_count"] == 1
    assert values["deployment_frequency"] == pytest.approx(3.5)
    assert values["lead_time_p50"] == 48 * HOUR
    assert values["lead_time_mean"] == 40 * HOUR


def test_empty_window_has_zero_deployments_and_no_lead_time():
    values = measured(at(240), at(408))
    assert values == {
        "deployment_count": 0,
        "deployment_frequency": 0.0,
        "lead_time_p50": None,
        "lead_time_p90": None,
        "lead_time_mean": None,
    }


def test_single_deployment_is_only_a_baseline():
    values = measured(at(0), at(168), deployments=[deploy("d0", "m", 100)])
    assert values["deployment_count"] == 1
    assert values["lead_time_p50"] is None


def test_deployment_order_in_the_input_does_not_matter():
    assert measured(at(24), at(192), list(reversed(DEPLOYMENTS))) == measured(at(24), at(192))


def test_other_environments_are_measured_separately():
    values = over_window(at(0), at(336), DEPLOYMENTS, env="staging")
    by_name = {v.metric: v for v in values}
    # staging-1 is staging's only deployment, hence its baseline.
    assert by_name["deployment_count"].value == 1
    assert by_name["lead_time_p50"].value is None
    assert {v.environment for v in values} == {"staging"}
    assert by_name["deployment_frequency"].unit == "per_week"


def test_window_must_be_aware_and_non_empty():
    with pytest.raises(ValueError, match="not before end"):
        measured(at(10), at(10))
    with pytest.raises(ValueError, match="UTC offset"):
        Period("window", datetime(2024, 3, 1), at(10))


def test_rollback_rate_is_rollbacks_over_all_deployments_in_the_window():
    deployments = [
        *DEPLOYMENTS,
        deploy("back", "c", 100, kind="rollback"),
        deploy("old-back", "a", 13, kind="rollback"),  # before the window
    ]
    # Mar 2 .. Mar 9: d1 d2 back d3 (the retry folds into d2) -> 1 rollback of 4.
    rates = [
        next(v.value for v in over_window(start, end, deployments) if v.metric == "rollback_rate")
        for start, end in ((at(24), at(192)), (at(400), at(500)))
    ]
    assert rates[0] == pytest.approx(0.25)
    assert rates[1] is None


def build(uuid, outcome, start_hours, minutes, status="stopped") -> Build:
    started = at(start_hours)
    stopped = started + timedelta(minutes=minutes) if outcome else None
    return Build(uuid, "api", "main", "c", status, outcome, started, started, stopped)


def test_build_success_rate_and_durations_hand_worked():
    builds = [
        build("b1", "success", 10, 5),
        build("b2", "fail", 11, 10),
        build("b3", "success", 12, 2),
        build("b4", "cancelled", 13, 1),  # in durations, not in the success rate
        build("b5", None, 14, 0, status="running"),  # not finished: left out
        build("b6", "success", 23.9, 60),  # stops after the window
    ]
    # Rate: 2 successes of 3 rated. Durations 60 120 300 600 s:
    # p50 (120+300)/2 = 210; p90 rank 2.7 -> 300 + 0.7 x 300 = 510; mean 1080/4 = 270.
    values = {v.metric: v.value for v in over_window(at(0), at(24), builds=builds)}
    assert values["build_success_rate"] == pytest.approx(2 / 3)
    assert values["build_duration_p50"] == 210
    assert values["build_duration_p90"] == pytest.approx(510)
    assert values["build_duration_mean"] == 270


def attempt(uuid, outcome, start_hours, commit, worker="api", branch="main") -> Build:
    started = at(start_hours)
    return Build(
        uuid, worker, branch, commit, "stopped", outcome, started, started, at(start_hours + 0.1)
    )


def test_build_success_rate_without_flaky_hand_worked():
    # docs/metrics.md's example: A fails, A's retry succeeds, B fails twice, C succeeds.
    builds = [
        attempt("a1", "fail", 1, "A"),
        attempt("a2", "success", 2, "A"),
        attempt("b1", "fail", 3, "B"),
        attempt("b2", "fail", 4, "B"),
        attempt("c1", "success", 5, "C"),
    ]
    values = {v.metric: v.value for v in over_window(at(0), at(24), builds=builds)}
    assert values["build_success_rate"] == pytest.approx(2 / 5)
    assert values["build_success_rate_without_flaky"] == pytest.approx(2 / 4)


def test_only_a_later_success_of_the_same_worker_commit_and_branch_rescues():
    builds = [
        attempt("x1", "success", 1, "X"),
        attempt("x2", "fail", 2, "X"),  # after the last success: not flaky
        attempt("y1", "fail", 3, "Y"),
        attempt("y2", "success", 4, "Y", branch="hardshell"),  # another branch
        attempt("z1", "fail", 5, "Z"),
        attempt("z2", "success", 6, "Z", worker="web"),  # another worker
        attempt("w1", "fail", 7, "W"),
        attempt("w2", "cancelled", 8, "W"),  # neither: rescues nothing
    ]
    values = {
        v.metric: v.value
        for v in over_window(at(0), at(24), builds=builds)
        if v.metric.startswith("build_success_rate")
    }
    # 3 successes (x1, y2, z2) of 7 rated; no failure is flaky.
    assert values == {
        "build_success_rate": pytest.approx(3 / 7),
        "build_success_rate_without_flaky": pytest.approx(3 / 7),
    }


def test_a_rescue_after_as_of_is_not_seen_and_one_after_the_period_is():
    builds = [
        attempt("a1", "fail", 1, "A"),
        attempt("a2", "success", 30, "A"),  # rescues a1, after the first day
        attempt("b1", "success", 2, "B"),
    ]
    history = History(CommitGraph(COMMITS), [], (), {"production": BuildArrays.from_builds(builds)})
    day = [Period("window", at(0), at(24))]

    def rates(as_of):
        return {
            v.metric: v.value
            for v in measure(history, MetricSettings(), day, as_of=as_of)
            if v.metric.startswith("build_success_rate")
        }

    # Measured at the day's end the retry has not happened: a1 is a real failure.
    assert rates(at(24)) == {
        "build_success_rate": 0.5,
        "build_success_rate_without_flaky": 0.5,
    }
    # Measured later, the day's failure was rescued: left out of the second rate.
    assert rates(at(48)) == {"build_success_rate": 0.5, "build_success_rate_without_flaky": 1.0}


def test_the_rescue_is_the_earliest_stop_of_the_later_successes():
    # F fails 1-2 h; S1 starts first (3 h) but runs until 10 h; S2 starts at 4 h and
    # stops at 5 h. Measured at 6 h, S2 has rescued F: F is flaky.
    def timed(uuid, outcome, start, stop):
        return Build(uuid, "api", "main", "A", "stopped", outcome, at(start), at(start), at(stop))

    builds = [timed("f", "fail", 1, 2), timed("s1", "success", 3, 10), timed("s2", "success", 4, 5)]
    history = History(CommitGraph(COMMITS), [], (), {"production": BuildArrays.from_builds(builds)})
    values = {
        v.metric: v.value
        for v in measure(history, MetricSettings(), [Period("window", at(0), at(6))], as_of=at(6))
        if v.metric.startswith("build_success_rate")
    }
    # S1 has not stopped by 6 h: rated are F and S2.
    assert values == {"build_success_rate": 0.5, "build_success_rate_without_flaky": 1.0}


def test_an_outcome_named_failure_is_a_failure():
    builds = [attempt("a1", "failure", 1, "A"), attempt("a2", "success", 2, "A")]
    values = {v.metric: v.value for v in over_window(at(0), at(24), builds=builds)}
    assert values["build_success_rate"] == 0.5
    assert values["build_success_rate_without_flaky"] == 1.0


def test_no_finished_builds_means_no_values():
    values = over_window(at(0), at(24), builds=[build("b5", None, 1, 0, status="running")])
    assert {v.metric: v.value for v in values} == {
        "build_success_rate": None,
        "build_success_rate_without_flaky": None,
        "build_duration_p50": None,
        "build_duration_p90": None,
        "build_duration_mean": None,
    }


def test_lineage_of_the_hand_worked_graph():
    lineage = attribute_commits(COMMITS, [d for d in DEPLOYMENTS if d.environment == "production"])
    changesets = {
        d.deployment_id: set(s)
        for d, s in zip(lineage.deployments, lineage.changesets, strict=True)
    }
    expected = {"d0": {"a"}, "d1": {"b", "c"}, "d2": {"d", "e", "m"}, "d2-retry": set()}
    assert changesets == {**expected, "d3": {"g"}}
    assert lineage.deployment_of("m").deployment_id == "d2"
    assert lineage.deployment_of("g").deployment_id == "d3"
    assert lineage.deployment_of("zzz") is None
    assert lineage.baseline == 0


def test_the_dora_summary_leaves_out_an_environment_without_any_value():
    from devops_assets.defs.metrics.assets import _metrics_markdown
    from devops_assets.domain.models import MetricValue

    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)

    def value(environment: str, number: float | None) -> MetricValue:
        return MetricValue(
            "deployment_frequency", environment, start, end, number, "per_week", tier=None
        )

    table = _metrics_markdown([value("development", None), value("production", 3.5)], "2023")
    assert "| production | deployment_frequency | 3.50/week |" in table
    assert "development" not in table
