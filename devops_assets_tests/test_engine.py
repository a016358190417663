"""The metric engine on small histories worked out by hand, one rule per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devops_assets.domain.engine import History, measure, outcomes_of
from devops_assets.domain.lineage import CommitGraph
from devops_assets.domain.models import Commit, Deployment, Incident
from devops_assets.domain.periods import Period
from devops_assets.domain.settings import MetricSettings

MAR_1 = datetime(2024, 3, 1, tzinfo=UTC)
H = 3600.0


def at(hours: float) -> datetime:
    return MAR_1 + timedelta(hours=hours)


def commit(sha: str, hours: float, *parents: str, body: str = "", patch: str | None = None):
    return Commit(sha, parents, at(hours), at(hours), "dev@x.invalid", sha, body, (), patch)


def deploy(name, sha, hours, kind="deploy", worker="api", env="production", status="success"):
    return Deployment(name, worker, env, at(hours), f"v-{sha}", 100.0, sha, kind, status=status)


def incident(name, opened, resolved=None, env="production", deployment=None):
    return Incident(name, env, at(opened), None if resolved is None else at(resolved), deployment)


# a - b - c - d - e - f          (author hours: a -10, b 20, c 40, d 49, e 90, f 110)
LINE = [
    commit("a", -10),
    commit("b", 20, "a"),
    commit("c", 40, "b"),
    commit("d", 49, "c"),
    commit("e", 90, "d"),
    commit("f", 110, "e"),
]
# d2 is rolled back by r1; d3 gets a hotfix h1 2 h later and INC-1 (49 h .. 51 h);
# d4 gets INC-2 (101 h .. 110 h) and is recovered by its resolution before d5;
# d5's retry folds into d5.
DEPLOYS = [
    deploy("d1", "a", 0),
    deploy("d2", "b", 24),
    deploy("r1", "a", 26, kind="rollback"),
    deploy("d3", "c", 48),
    deploy("h1", "d", 50, kind="hotfix"),
    deploy("d4", "e", 100),
    deploy("d5", "f", 120),
    deploy("d5-retry", "f", 121),
    deploy("broken", "f", 122, status="failure"),
]
INCIDENTS = [incident("INC-1", 49, 51), incident("INC-2", 101, 110)]
WEEK = Period("window", at(0), at(168))


def values(
    deployments=DEPLOYS,
    incidents=INCIDENTS,
    commits=LINE,
    period=WEEK,
    settings=None,
    worker="",
    env="production",
) -> dict[str, float | None]:
    history = History(CommitGraph(commits), deployments, incidents)
    measured = measure(history, settings or MetricSettings(), [period])
    return {v.metric: v.value for v in measured if v.worker == worker and v.environment == env}


def test_every_delivery_metric_of_the_hand_worked_week():
    got = values()
    # Served: d1 d2 r1 d3 h1 d4 d5 (the retry folds, the failed attempt never served).
    assert got["deployment_count"] == 7
    assert got["deployment_frequency"] == 7.0
    # Days with a deployment: Mar 1, 2, 3, 5 (100 h), 6 (120 h) -> 5 in one week.
    assert got["deployment_days_per_week"] == 5.0
    # Gaps 24 2 22 2 50 20 h -> median of 2 2 20 22 24 50 is 21 h.
    assert got["time_between_deployments_p50"] == 21 * H
    # Failed: d2 (rolled back), d3 (hotfix and INC-1), d4 (INC-2): 3 of 7.
    assert got["change_failure_rate"] == pytest.approx(3 / 7)
    # Recovery: d2 by r1 after 2 h; d3 by h1 after 2 h (INC-1 resolves later, 3 h);
    # d4 by INC-2's resolution after 10 h (before d5 at 20 h).
    assert got["failed_deployment_recovery_time_p50"] == 2 * H
    assert got["failed_deployment_recovery_time_p90"] == pytest.approx(8.4 * H)  # 2 + .8 x 8
    assert got["failed_deployment_recovery_time_mean"] == pytest.approx(14 / 3 * H)
    # Unplanned: r1 (rollback) and h1 (hotfix, and made while INC-1 was open): 2 of 7.
    assert got["rework_rate"] == pytest.approx(2 / 7)
    assert got["rollback_rate"] == pytest.approx(1 / 7)
    # Restore: INC-1 2 h, INC-2 9 h.
    assert got["time_to_restore_p50"] == 5.5 * H
    assert got["time_to_restore_p90"] == pytest.approx(8.3 * H)
    assert got["time_to_restore_mean"] == 5.5 * H
    # Lead times (d1 is the baseline): b 4 h, c 8 h, d 1 h, e 10 h, f 10 h.
    assert got["lead_time_p50"] == 8 * H
    assert got["lead_time_mean"] == pytest.approx(33 / 5 * H)


def test_the_reasons_behind_each_failure_are_kept():
    history = History(CommitGraph(LINE), DEPLOYS, INCIDENTS)
    served, outcomes = outcomes_of(history, "production", MetricSettings())
    causes = {d.deployment_id: sorted(o.causes) for d, o in zip(served, outcomes, strict=True)}
    assert causes == {
        "d1": [],
        "d2": ["rollback"],
        "r1": [],
        "d3": ["hotfix", "incident"],
        "h1": [],
        "d4": ["incident"],
        "d5": [],
    }
    unplanned = {
        d.deployment_id: sorted(o.unplanned) for d, o in zip(served, outcomes, strict=True)
    }
    assert unplanned["h1"] == ["hotfix", "incident"]
    assert unplanned["r1"] == ["rollback"]


def test_each_failure_source_can_be_switched_off():
    only_rollbacks = MetricSettings(failure_sources=("rollback",))
    assert values(settings=only_rollbacks)["change_failure_rate"] == pytest.approx(1 / 7)
    no_incidents = MetricSettings(failure_sources=("rollback", "hotfix", "revert"))
    got = values(settings=no_incidents)
    assert got["change_failure_rate"] == pytest.approx(2 / 7)  # d2 and d3
    # Unplanned work does not depend on what counts as a failure.
    assert got["rework_rate"] == pytest.approx(2 / 7)


def test_a_hotfix_outside_the_remediation_window_marks_nothing():
    short = MetricSettings(
        remediation_window=timedelta(hours=1), failure_sources=("rollback", "hotfix")
    )
    # h1 came 2 h after d3: too late to mark it; only d2's rollback remains.
    assert values(settings=short)["change_failure_rate"] == pytest.approx(1 / 7)


def test_a_hotfix_is_recognised_by_its_message_when_the_source_does_not_say():
    plain = [d if d.deployment_id != "h1" else deploy("h1", "d", 50) for d in DEPLOYS]
    named = [
        d
        if d.deployment_id != "h1"
        else Deployment("h1", "api", "production", at(50), "v-d", 100.0, "d", message="HOTFIX")
        for d in DEPLOYS
    ]
    no_incidents = MetricSettings(failure_sources=("rollback", "hotfix"))
    assert values(plain, settings=no_incidents)["change_failure_rate"] == pytest.approx(1 / 7)
    assert values(named, settings=no_incidents)["change_failure_rate"] == pytest.approx(2 / 7)


def test_empty_window_counts_zero_and_measures_nothing_else():
    got = values(period=Period("window", at(500), at(668)))
    assert got["deployment_count"] == 0
    assert got["deployment_frequency"] == 0
    assert got["deployment_days_per_week"] == 0
    for metric in ("change_failure_rate", "rework_rate", "rollback_rate", "lead_time_p50"):
        assert got[metric] is None, metric
    assert got["failed_deployment_recovery_time_p50"] is None
    assert got["time_to_restore_p50"] is None
    assert got["time_between_deployments_p50"] is None


def test_a_single_deployment_is_a_baseline_with_nothing_failed():
    got = values([deploy("d1", "c", 50)], [])
    assert got["deployment_count"] == 1
    assert got["lead_time_p50"] is None  # the baseline's changeset is never a lead time
    assert got["change_failure_rate"] == 0
    assert got["time_between_deployments_p50"] is None


def test_all_deployments_failed_and_one_never_recovered():
    deployments = [deploy("d1", "a", 0), deploy("d2", "b", 24)]
    incidents = [incident("INC-1", 1, 5), incident("INC-2", 25)]  # INC-2 still open
    got = values(deployments, incidents)
    assert got["change_failure_rate"] == 1.0
    # d1 recovers at INC-1's resolution (5 h; d2 is failed, so not healthy); d2 never did.
    assert got["failed_deployment_recovery_time_p50"] == 5 * H
    assert got["time_to_restore_p50"] == 4 * H  # only resolved incidents
    assert got["rework_rate"] == 0  # d2 went out after INC-1 was resolved


def test_incidents_before_the_first_deployment_attach_to_nothing():
    deployments = [deploy("d1", "a", 10), deploy("d2", "b", 20)]
    incidents = [incident("INC-0", 1, 3)]
    got = values(deployments, incidents)
    assert got["change_failure_rate"] == 0
    assert got["time_to_restore_p50"] == 2 * H  # still an incident the team restored


def test_an_incident_naming_its_deployment_is_not_reattributed():
    incidents = [incident("INC-1", 49, 51, deployment="d1"), incident("INC-2", 101, 110)]
    history = History(CommitGraph(LINE), DEPLOYS, incidents)
    served, outcomes = outcomes_of(history, "production", MetricSettings())
    causes = {d.deployment_id: o.causes for d, o in zip(served, outcomes, strict=True)}
    assert causes["d1"] == {"incident"}
    assert causes["d3"] == {"hotfix"}


def test_a_rollback_to_an_older_version_undoes_everything_after_it():
    deployments = [
        deploy("d1", "a", 0),
        deploy("d2", "b", 10),
        deploy("d3", "c", 20),
        deploy("back", "a", 30, kind="rollback"),
    ]
    history = History(CommitGraph(LINE), deployments)
    served, outcomes = outcomes_of(history, "production", MetricSettings())
    failed = [d.deployment_id for d, o in zip(served, outcomes, strict=True) if o.failed]
    assert failed == ["d2", "d3"]
    # Both recover when the rollback (healthy) goes out: 20 h and 10 h.
    got = values(deployments, [])
    assert got["failed_deployment_recovery_time_mean"] == 15 * H


def test_a_revert_marks_the_deployment_that_shipped_the_reverted_commit():
    revert_body = "This reverts commit " + "b" * 40 + "."
    commits = [
        commit("a" * 40, 0),
        commit("b" * 40, 5, "a" * 40),
        commit("c" * 40, 30, "b" * 40, body=revert_body),
    ]
    deployments = [
        deploy("d1", "a" * 40, 1),
        deploy("d2", "b" * 40, 10),
        deploy("d3", "c" * 40, 31),
    ]
    got = values(deployments, [], commits)
    assert got["change_failure_rate"] == pytest.approx(1 / 3)  # d2
    assert got["rework_rate"] == pytest.approx(1 / 3)  # d3 is unplanned
    assert got["failed_deployment_recovery_time_p50"] == 21 * H
    late = MetricSettings(remediation_window=timedelta(hours=12))
    assert values(deployments, [], commits, settings=late)["change_failure_rate"] == 0


# main:    a --------- m ---- n        (m merges the branch x1 - x2 into main)
#           \         /
# branch:    x1 ---- x2
BRANCHY = [
    commit("a", 0),
    Commit("x1", ("a",), at(10), at(30), "dev@x.invalid", "x1"),
    Commit("x2", ("x1",), at(20), at(31), "dev@x.invalid", "x2"),
    Commit("m", ("a", "x2"), at(40), at(40), "dev@x.invalid", "merge"),
    commit("n", 44, "m"),
]
BRANCHY_DEPLOYS = [deploy("d0", "a", 1), deploy("d1", "n", 50)]


@pytest.mark.parametrize(
    ("start", "leads"),
    [
        # Each commit from its author time: x1 40, x2 30, m 10, n 6 h.
        ("author_time", [6, 10, 30, 40]),
        # Committer time: x1 20, x2 19 (rebased at 30 and 31), m 10, n 6.
        ("commit_time", [6, 10, 19, 20]),
        # Changes are first-parent commits: m brought x1 x2 (start 10 h) -> 40 h; n 6 h.
        ("branch_start", [6, 40]),
    ],
)
def test_lead_time_start_is_switchable(start, leads):
    got = values(BRANCHY_DEPLOYS, [], BRANCHY, settings=MetricSettings(lead_time_start=start))
    assert got["lead_time_mean"] == pytest.approx(sum(leads) / len(leads) * H)
    expected_p50 = (leads[len(leads) // 2 - 1] + leads[len(leads) // 2]) / 2
    if len(leads) % 2:
        expected_p50 = leads[len(leads) // 2]
    assert got["lead_time_p50"] == pytest.approx(expected_p50 * H)


def test_a_tag_on_a_side_branch_ships_only_its_own_ancestry():
    # Deploying x2 (a tag on the branch, never on main) ships x1 and x2; the later main
    # deployment ships only m and n.
    deployments = [deploy("d0", "a", 1), deploy("side", "x2", 35), deploy("d1", "n", 50)]
    got = values(deployments, [], BRANCHY)
    # x1 25 h, x2 15 h, m 10 h, n 6 h.
    assert got["lead_time_mean"] == pytest.approx((25 + 15 + 10 + 6) / 4 * H)


def test_a_cherry_pick_is_one_change_delivered_when_its_first_copy_was():
    # p is picked onto the release line as p' (same patch id); p' ships at 30 h,
    # main (holding p) at 60 h.
    commits = [
        commit("a", 0),
        commit("p", 10, "a", patch="patch-1"),
        commit("q", 20, "p"),
        commit("r", 25, "a"),
        commit("p2", 10, "r", patch="patch-1"),  # cherry-picks keep the author time
    ]
    deployments = [deploy("d0", "a", 1), deploy("rel", "p2", 30), deploy("main", "q", 60)]
    folded = values(deployments, [], commits)
    # Changes: r 5 h, {p, p2} 20 h (30 - 10), q 40 h.
    assert folded["lead_time_mean"] == pytest.approx((5 + 20 + 40) / 3 * H)
    apart = values(deployments, [], commits, settings=MetricSettings(cherry_picks="off"))
    # r 5, p2 20, p 50, q 40.
    assert apart["lead_time_mean"] == pytest.approx((5 + 20 + 50 + 40) / 4 * H)


def test_clocks_in_any_utc_offset_measure_the_same_instants():
    tokyo, pacific = timezone(timedelta(hours=9)), timezone(timedelta(hours=-8))
    moved = [
        Commit(
            c.sha,
            c.parents,
            c.author_time.astimezone(tokyo if i % 2 else pacific),
            c.commit_time.astimezone(pacific),
            c.author_email,
            c.subject,
        )
        for i, c in enumerate(LINE)
    ]
    assert values(commits=moved) == values()


def test_each_worker_of_an_environment_is_also_measured_alone():
    deployments = [
        deploy("a1", "a", 0, worker="api"),
        deploy("w1", "b", 10, worker="web"),
        deploy("a2", "c", 50, worker="api"),
        deploy("w-back", "a", 60, worker="web", kind="rollback"),
    ]
    whole = values(deployments, [])
    api, web = values(deployments, [], worker="api"), values(deployments, [], worker="web")
    assert (whole["deployment_count"], api["deployment_count"], web["deployment_count"]) == (
        4,
        2,
        2,
    )
    assert web["rollback_rate"] == 0.5 and api["rollback_rate"] == 0
    # The web rollback undid w1 (web's own latest deployment), not api's a2.
    assert web["change_failure_rate"] == 0.5 and api["change_failure_rate"] == 0
    assert "time_to_restore_p50" not in api  # incidents belong to the environment


def test_failed_attempts_and_other_environments_are_not_deployments():
    deployments = [*DEPLOYS, deploy("s1", "f", 5, env="staging")]
    assert values(deployments)["deployment_count"] == 7
    assert values(deployments, env="staging")["deployment_count"] == 1


def test_a_version_rolled_back_then_deployed_again_is_found_where_it_stands_now():
    deployments = [
        deploy("d1", "a", 0),
        deploy("d2", "b", 10),
        deploy("back1", "a", 11, kind="rollback"),  # undoes d2
        deploy("d3", "c", 20),
        deploy("d4", "b", 30),  # b again, now on top of c
        deploy("back2", "c", 31, kind="rollback"),  # back to c: undoes d4 only
        deploy("back3", "zz", 40, kind="rollback"),  # matches nothing: undoes the newest (d3)
    ]
    history = History(CommitGraph(LINE), deployments)
    served, outcomes = outcomes_of(history, "production", MetricSettings())
    failed = [d.deployment_id for d, o in zip(served, outcomes, strict=True) if o.failed]
    assert failed == ["d2", "d3", "d4"]


def test_rollbacks_that_match_nothing_each_undo_the_newest_standing_deployment():
    # 20,000 of each: the rollbacks pop the stack one by one, newest first (the search
    # for a matching version is a dictionary lookup, not a scan of the stack).
    n = 20000
    deployments = [
        Deployment(f"d{i}", "api", "production", at(i), f"v{i}", 100.0, None) for i in range(n)
    ]
    deployments += [
        Deployment(f"r{i}", "api", "production", at(n + i), f"x{i}", 100.0, None, "rollback")
        for i in range(n)
    ]
    history = History(CommitGraph([]), deployments)
    served, outcomes = outcomes_of(history, "production", MetricSettings())
    assert sum(o.failed for o in outcomes) == n
    # Recovery is the next healthy deployment: the first rollback, for every one of them.
    assert {o.recovered_at for o in outcomes[:n]} == {at(n)}


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Revert feat", "This reverts commit bbbbbbb."),  # abbreviated
        ("Revert feat", "THIS REVERTS COMMIT " + "B" * 40 + "."),  # any case
        ("Revert feat. This reverts commit " + "b" * 12, ""),  # one line, no body
    ],
)
def test_a_revert_is_found_however_git_or_a_person_wrote_it(subject, body):
    commits = [
        commit("a" * 40, 0),
        commit("b" * 40, 5, "a" * 40),
        Commit("c" * 40, ("b" * 40,), at(30), at(30), "dev@x.invalid", subject, body),
    ]
    deployments = [
        deploy("d1", "a" * 40, 1),
        deploy("d2", "b" * 40, 10),
        deploy("d3", "c" * 40, 31),
    ]
    assert values(deployments, [], commits)["change_failure_rate"] == pytest.approx(1 / 3)


def test_an_ambiguous_abbreviation_reverts_nothing():
    commits = [
        commit("abc1" + "0" * 36, 0),
        commit("abc2" + "0" * 36, 5, "abc1" + "0" * 36),
        Commit(
            "c" * 40, ("abc2" + "0" * 36,), at(30), at(30), "d@x", "x", "This reverts commit abc."
        ),
    ]
    deployments = [
        deploy("d1", "abc1" + "0" * 36, 1),
        deploy("d2", "abc2" + "0" * 36, 10),
        deploy("d3", "c" * 40, 31),
    ]
    assert values(deployments, [], commits)["change_failure_rate"] == 0


def test_an_incident_naming_a_folded_retry_lands_on_the_deployment_it_folded_into():
    deployments = [deploy("d1", "a", 0), deploy("d2", "b", 10), deploy("d2b", "b", 11)]
    deployments.append(deploy("d3", "c", 20))
    incidents = [incident("INC-1", 30, 31, deployment="d2b")]
    history = History(CommitGraph(LINE), deployments, incidents)
    served, outcomes = outcomes_of(history, "production", MetricSettings())
    causes = {d.deployment_id: o.causes for d, o in zip(served, outcomes, strict=True)}
    assert causes == {"d1": set(), "d2": {"incident"}, "d3": set()}
