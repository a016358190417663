"""Flaky failures: a hand-worked history, and the GitHub Actions re-run data
(../shared/data/gha-workflow-reruns/), each real figure computed a second way with pandas."""

from __future__ import annotations

import ast
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from devops_assets.domain.engine import BuildArrays, History, measure
from devops_assets.domain.lineage import CommitGraph
from devops_assets.domain.models import Build
from devops_assets.domain.periods import Period
from devops_assets.domain.settings import MetricSettings
from devops_assets.triage.flaky import (
    Attempt,
    attempts_from_builds,
    flaky_attempts,
    flaky_groups,
    retry_groups,
    signature_stats,
    success_rates,
)
from devops_assets_tests.git_fixtures import shared_data

DAY = datetime(2024, 5, 6, tzinfo=UTC)


def at(hh_mm: str) -> datetime:
    hours, minutes = hh_mm.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes))


# The history of docs/triage-flaky.md: (build, pipeline, commit, branch, time, outcome, signature)
HISTORY = [
    ("b1", "web", "c1", "main", "09:00", "fail", "A"),
    ("b2", "web", "c1", "main", "09:10", "success", None),
    ("b3", "web", "c2", "main", "10:00", "fail", "A"),
    ("b4", "web", "c2", "main", "10:05", "fail", "B"),
    ("b5", "web", "c2", "main", "10:20", "success", None),
    ("b6", "web", "c3", "main", "11:00", "fail", "A"),
    ("b7", "web", "c3", "main", "11:10", "fail", "A"),
    ("b8", "web", "c4", "main", "12:00", "success", None),
    ("b9", "web", "c4", "main", "12:30", "fail", None),
    ("b10", "web", "c4", "main", "12:40", "cancelled", None),
    ("b11", "web", "c4", "main", "13:00", "success", None),
    ("b12", "web", "c5", "main", "14:00", "fail", "B"),
    ("b13", "web", "c5", "main", "14:10", "success", None),
    ("b14", "web", "c5", "main", "14:20", "fail", "B"),
    ("b15", "web", "c1", "feature/x", "15:00", "fail", "A"),
    ("b16", "api", "c3", "main", "16:00", "success", None),
]


def hand_worked() -> list[Attempt]:
    attempts = [
        Attempt(commit, branch, build, at(time), outcome, signature, pipeline)
        for build, pipeline, commit, branch, time, outcome, signature in HISTORY
    ]
    random.Random(6).shuffle(attempts)  # order comes from the times, not the input
    return attempts


def test_flaky_failures_of_the_hand_worked_history():
    assert [a.build_id for a in flaky_attempts(hand_worked())] == ["b1", "b3", "b4", "b9", "b12"]
    groups = flaky_groups(hand_worked())
    assert sorted(groups) == [("web", commit, "main") for commit in ("c1", "c2", "c4", "c5")]
    # c3 never passed on web (api's success is another pipeline); c1 on feature/x
    # is another branch; b14 failed after c5's last success.
    ordered = retry_groups(hand_worked())[("web", "c4", "main")]
    assert [a.build_id for a in ordered] == ["b8", "b9", "b10", "b11"]


def test_signature_figures_of_the_hand_worked_history():
    stats = signature_stats(hand_worked())
    assert [(s.signature, s.failures, s.flaky_failures, s.commits) for s in stats] == [
        ("A", 5, 2, 4),
        ("B", 3, 2, 2),
        (None, 1, 1, 1),
    ]
    a, b, unknown = stats
    assert a.flaky_rate == pytest.approx(0.4)
    assert b.flaky_rate == pytest.approx(2 / 3)
    assert unknown.flaky_rate == 1.0
    assert (a.first_seen, a.last_seen) == (at("09:00"), at("15:00"))
    assert (b.first_seen, b.last_seen) == (at("10:05"), at("14:20"))
    assert a.builds == ("b1", "b3", "b6", "b7", "b15")
    assert b.builds == ("b4", "b12", "b14")
    assert unknown.builds == ("b9",)


def test_success_rate_with_and_without_flaky_failures():
    rates = success_rates(hand_worked())
    assert (rates.successes, rates.failures, rates.flaky_failures) == (6, 9, 5)
    assert rates.with_flaky == pytest.approx(6 / 15)
    assert rates.without_flaky == pytest.approx(6 / 10)
    # Counting a window: b1..b5 started before 10:30; b9 is flaky thanks to b11 at 13:00.
    morning = success_rates(hand_worked(), until=at("10:30"))
    assert (morning.successes, morning.failures, morning.flaky_failures) == (2, 3, 3)
    noon = success_rates(hand_worked(), since=at("12:00"), until=at("12:45"))
    assert (noon.successes, noon.failures, noon.flaky_failures) == (1, 1, 1)
    assert (noon.with_flaky, noon.without_flaky) == (0.5, 1.0)
    empty = success_rates([])
    assert (empty.with_flaky, empty.without_flaky) == (None, None)
    only_cancelled = success_rates([Attempt("c", "main", "x", DAY, "cancelled")])
    assert only_cancelled.with_flaky is None


def test_ties_in_time_are_broken_by_build_id_and_failure_is_fail():
    same = DAY
    attempts = [
        Attempt("c", "main", "2", same, "success"),
        Attempt("c", "main", "1", same, "failure", "S"),  # GitHub's name for a failure
        Attempt("c", "main", "3", same, "fail", "S"),
    ]
    assert [a.build_id for a in flaky_attempts(attempts)] == ["1"]
    assert success_rates(attempts).without_flaky == pytest.approx(1 / 2)


MINUTES_3 = timedelta(minutes=3)


def test_engine_build_success_rate_is_the_rate_with_flaky_failures():
    builds = [
        Build(build, worker, branch, commit, "stopped", outcome, at(t), at(t), at(t) + MINUTES_3)
        for build, worker, commit, branch, t, outcome, _ in HISTORY
    ]
    builds.append(Build("queued", "web", "main", "c9", "queued", None, at("17:00")))
    signatures = {build: sig for build, *_, sig in HISTORY if sig}
    attempts = attempts_from_builds(builds, signatures)
    assert len(attempts) == len(HISTORY)  # the queued build has no outcome yet
    assert {a.build_id: a.signature for a in attempts if a.signature} == signatures
    history = History(CommitGraph([]), [], (), {"all": BuildArrays.from_builds(builds)})
    values = measure(history, MetricSettings(), [Period("window", DAY, DAY + timedelta(days=1))])
    engine = {v.metric: v.value for v in values}
    rates = success_rates(attempts)
    assert engine["build_success_rate"] == pytest.approx(rates.with_flaky)
    assert rates.without_flaky == pytest.approx(0.6)
    assert engine["build_success_rate_without_flaky"] == pytest.approx(0.6)


# ---------------------------------------------------------------------------
# The GitHub Actions re-run data. It has no commit shas and no times: a re-run
# set IS one commit of one workflow on one branch, and the order of its run ids
# in the file is its time order (the order the flakiness file follows too).

RERUNS = "gha-workflow-reruns"
ORIGIN = datetime(2023, 1, 1, tzinfo=UTC)


def _read(name: str, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(shared_data(RERUNS, name), index_col=None)
    for column in columns:
        frame[column] = frame[column].map(ast.literal_eval)
    return frame


@pytest.fixture(scope="module")
def workflow_sets() -> pd.DataFrame:
    """One row per distinct re-run set: repo, workflow, branch, ids, last conclusion.

    The file repeats sets (28 rows are copies but for the first column, more rows
    share sets) and 49 times a set lists a run id twice (likely two attempts of one
    run, whose conclusions the file does not give): a set is kept once, each id once
    in it (its first place)."""
    frame = _read(
        "dataframe_workflow_rerun_totalduration_distinct.csv.gz",
        ["reruns ids", "last rerun's conclusion"],
    )
    columns = ["repo path", "workflow file path", "branch", "reruns ids", "last rerun's conclusion"]
    rows = [
        (repo, workflow, branch, tuple(dict.fromkeys(ids)), last)
        for repo, workflow, branch, sets, lasts in frame[columns].itertuples(index=False)
        for ids, last in zip(sets, lasts, strict=True)
    ]
    sets = pd.DataFrame(rows, columns=["repo", "workflow", "branch", "ids", "last"])
    return sets.drop_duplicates(["repo", "workflow", "branch", "ids"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def flakiness() -> pd.DataFrame:
    frame = _read("flakiness_workflow_rerun.csv", ["ids"])
    frame["repo"] = frame["repo_url"].str.extract(r"github\.com/([^/]+/[^/]+)/actions/runs/$")[0]
    return frame


def _per_run_outcomes(flakiness: pd.DataFrame) -> dict[tuple, str]:
    """What the files say of each run: a flakiness row's ids failed but the last,
    which succeeded; a set's last run has its conclusion; the rest is unknown."""
    known: dict[tuple, str] = {}
    for row in flakiness.itertuples():
        key = (row.repo, row.workflow, row.branch)
        for run in row.ids[:-1]:
            known[(*key, run)] = "failure"
        known[(*key, row.ids[-1])] = "success"
    return known


@pytest.fixture(scope="module")
def workflow_attempts(workflow_sets, flakiness) -> list[Attempt]:
    known = _per_run_outcomes(flakiness)
    attempts = []
    for number, row in enumerate(workflow_sets.itertuples()):
        key = (row.repo, row.workflow, row.branch)
        last = row.last if isinstance(row.last, str) else "unknown"  # two sets say None
        for place, run in enumerate(row.ids):
            outcome = known.get((*key, run))
            if place == len(row.ids) - 1:
                assert outcome in (None, last), (key, run)  # the two files agree
                outcome = last
            outcome = outcome or "unknown"
            attempts.append(
                Attempt(
                    commit_sha=f"set-{number}",
                    branch=row.branch,
                    build_id=str(run),
                    started_at=ORIGIN + timedelta(seconds=len(attempts)),
                    outcome=outcome,
                    # No logs: the failing workflow of a repo stands for the signature.
                    signature=f"{row.repo}:{row.workflow}" if outcome == "failure" else None,
                    pipeline=f"{row.repo}:{row.workflow}",
                )
            )
    return attempts


def test_the_workflow_file_gives_only_each_sets_last_conclusion(workflow_sets):
    # 1,436 rows of 6,554 sets (57,465 ids); 6,343 distinct sets of 56,045 distinct runs.
    assert len(workflow_sets) == 6343
    assert workflow_sets["ids"].map(len).sum() == 56045
    assert workflow_sets["ids"].explode().is_unique  # a run id belongs to one set
    # A set is two runs or more, but for 43 that listed one id twice.
    assert (workflow_sets["ids"].map(len) == 1).sum() == 43
    lasts = workflow_sets["last"].map(lambda v: v if isinstance(v, str) else "none")
    assert lasts.value_counts().to_dict() == {
        "failure": 3911,
        "success": 2135,
        "skipped": 223,
        "cancelled": 70,
        "startup_failure": 2,
        "none": 2,
    }
    # Run ids are not always ascending within a set; the file's order is kept.
    assert (workflow_sets["ids"].map(lambda ids: list(ids) != sorted(ids))).sum() == 84


def test_every_flakiness_row_is_a_failure_streak_inside_one_set(workflow_sets, flakiness):
    place = {}
    for number, row in enumerate(workflow_sets.itertuples()):
        for index, run in enumerate(row.ids):
            place[run] = (number, index)
    assert len(flakiness) == 3598
    assert (flakiness["ids"].map(len) == flakiness["#_failures_before_succeed"] + 1).all()
    ends_set = 0
    for row in flakiness.itertuples():
        number, start = place[row.ids[0]]
        found = workflow_sets.loc[number]
        assert (found.repo, found.workflow, found.branch) == (row.repo, row.workflow, row.branch)
        assert found.ids[start : start + len(row.ids)] == tuple(row.ids)
        ends_set += start + len(row.ids) == len(found.ids)
    assert ends_set == 1028


def test_flaky_figures_of_the_workflow_reruns(workflow_attempts, workflow_sets, flakiness):
    attempts = workflow_attempts
    rates = success_rates(attempts)
    flaky = flaky_attempts(attempts)
    groups = flaky_groups(attempts)
    ordered = retry_groups(attempts)
    ended_in_success = {k for k, group in ordered.items() if group[-1].succeeded}
    # The module's figures: of 56,045 runs, 41,529 have no conclusion in the files.
    assert sum(a.outcome == "unknown" for a in attempts) == 41529
    assert len(ordered) == 6343
    assert len(ended_in_success) == 2135
    assert len(flaky) == 5605
    assert len(groups) == 2343  # sets with a failure later retried to success
    assert len(groups.keys() & ended_in_success) == 2060  # ... that ended in success
    assert (rates.successes, rates.failures) == (4705, 9516)
    assert rates.with_flaky == pytest.approx(4705 / 14221)  # 0.331
    assert rates.without_flaky == pytest.approx(4705 / 8616)  # 0.546

    # The metric engine's two rates over the same runs as builds (its own grouping).
    builds = [
        Build(
            a.build_id,
            a.pipeline,
            a.branch,
            a.commit_sha,
            "stopped",
            {"failure": "fail"}.get(a.outcome, a.outcome),
            a.started_at,
            a.started_at,
            a.started_at + timedelta(milliseconds=500),
        )
        for a in attempts
    ]
    history = History(CommitGraph([]), [], (), {"all": BuildArrays.from_builds(builds)})
    everything = Period("window", ORIGIN, ORIGIN + timedelta(days=7))
    engine = {v.metric: v.value for v in measure(history, MetricSettings(), [everything])}
    assert engine["build_success_rate"] == pytest.approx(4705 / 14221)
    assert engine["build_success_rate_without_flaky"] == pytest.approx(4705 / 8616)

    # The same figures a second way, from the files alone with pandas.
    assert len(flaky) == flakiness["#_failures_before_succeed"].sum()
    runs = workflow_sets.assign(run=workflow_sets["ids"]).explode("run")
    set_of = dict(zip(runs["run"], runs.index, strict=True))
    streak_set = flakiness["ids"].map(lambda ids: set_of[ids[0]])
    assert streak_set.nunique() == len(groups)
    ends_success = workflow_sets["last"] == "success"
    assert ends_success[streak_set.unique()].sum() == len(groups.keys() & ended_in_success)
    assert ends_success.sum() == len(ended_in_success)
    # Failures: every streak's failures plus every set's last run that failed (a
    # streak never ends a set with a failure); successes: every streak's last run
    # plus the sets ending in success that no streak ends.
    streak_last = flakiness["ids"].map(lambda ids: ids[-1])
    last_runs = workflow_sets["ids"].map(lambda ids: ids[-1])
    assert rates.failures == len(flaky) + (workflow_sets["last"] == "failure").sum()
    assert (
        rates.successes
        == streak_last.nunique() + (ends_success & ~last_runs.isin(set(streak_last))).sum()
    )

    # Why 3,598 flakiness rows but 2,060 sets ending in success after a failure:
    # a row is a failure streak, not a set. 1,028 streaks end their set (the set's
    # final success came right after failures); 1,973 more streaks sit earlier in
    # sets that also ended in success (a set holds up to 107 streaks); 597 streaks
    # sit in the 283 sets that ended otherwise (failure, skipped, cancelled).
    ends_its_set = streak_last.isin(set(last_runs))
    in_success_set = streak_set.map(ends_success)
    assert pd.crosstab(ends_its_set, in_success_set).to_dict() == {
        False: {False: 597, True: 0},
        True: {False: 1973, True: 1028},
    }
    assert streak_set.value_counts().max() == 107
    assert streak_set.nunique() - ends_success[streak_set.unique()].sum() == 283


def test_signature_flaky_rate_per_workflow_matches_the_flakiness_file(
    workflow_attempts, workflow_sets, flakiness
):
    ranked = signature_stats(workflow_attempts)
    stats = {s.signature: s for s in ranked}
    # Second way: flaky failures per workflow = its streaks' failures; failures =
    # those plus its sets whose last run failed.
    name = flakiness["repo"] + ":" + flakiness["workflow"]
    flaky = flakiness.groupby(name)["#_failures_before_succeed"].sum()
    sets = workflow_sets[workflow_sets["last"] == "failure"]
    failed_last = (sets["repo"] + ":" + sets["workflow"]).value_counts()
    failures = flaky.add(failed_last, fill_value=0)
    assert {k: v.failures for k, v in stats.items()} == failures.astype(int).to_dict()
    assert {k: v.flaky_failures for k, v in stats.items() if v.flaky_failures} == flaky.to_dict()
    assert len(stats) == 1127
    top = ranked[0]
    assert top.signature == "Creators-of-Create/Create:.github/workflows/label_issues.yml"
    assert (top.failures, top.flaky_failures, top.commits) == (296, 277, 19)
    assert top.flaky_failures == flaky.max()
    assert top.flaky_rate == pytest.approx(277 / 296)  # 0.936


@pytest.fixture(scope="module")
def job_runs() -> pd.DataFrame:
    """One row per distinct workflow run of the job-level file with its per-attempt
    conclusions (runs whose list is empty, 2,949 of them, carry none)."""
    frame = _read(
        "dataframe_job_rerun_distinct_with_conclusion.csv.gz",
        ["reruns ids", "reruns", "last rerun's conclusion", "rerun conclusion"],
    )
    columns = ["repo path", "workflow file path", "branch", "reruns ids", "reruns"]
    columns += ["last rerun's conclusion", "rerun conclusion"]
    rows = [
        (repo, workflow, branch, run, reruns, last, tuple(conclusions))
        for repo, workflow, branch, *per_set in frame[columns].itertuples(index=False)
        for run, reruns, last, conclusions in zip(*per_set, strict=True)
    ]
    runs = pd.DataFrame(
        rows, columns=["repo", "workflow", "branch", "run", "reruns", "last", "attempts"]
    )
    return runs.drop_duplicates(["repo", "workflow", "branch", "run"]).reset_index(drop=True)


def test_flaky_figures_of_the_job_level_reruns(job_runs):
    given = job_runs[job_runs["attempts"].map(len) > 0]
    assert (len(job_runs), len(given)) == (16968, 14023)
    # The list is attempt by attempt: "reruns" re-runs after the first attempt (but
    # for 8 runs), ending with the run's last conclusion (but for 4).
    assert (given["attempts"].map(len) == given["reruns"] + 1).sum() == len(given) - 8
    assert (given["attempts"].map(lambda a: a[-1]) == given["last"]).sum() == len(given) - 4
    attempts = [
        Attempt(
            commit_sha=str(row.run),
            branch=row.branch,
            build_id=f"{row.run}#{number}",
            started_at=ORIGIN + timedelta(seconds=number),
            outcome=outcome or "unknown",
            signature=f"{row.repo}:{row.workflow}" if outcome == "failure" else None,
            pipeline=f"{row.repo}:{row.workflow}",
        )
        for row in given.itertuples()
        for number, outcome in enumerate(row.attempts, start=1)
    ]
    rates = success_rates(attempts)
    flaky = flaky_attempts(attempts)
    assert (rates.successes, rates.failures, len(flaky)) == (10913, 14336, 8030)
    assert len(flaky_groups(attempts)) == 5739  # runs a re-run rescued after a failure
    assert rates.with_flaky == pytest.approx(10913 / 25249)  # 0.432
    assert rates.without_flaky == pytest.approx(10913 / 17219)  # 0.634

    # A second way: per run, the failures before its last success.
    def before_last_success(outcomes: tuple) -> int:
        if "success" not in outcomes:
            return 0
        last = len(outcomes) - 1 - outcomes[::-1].index("success")
        return outcomes[:last].count("failure")

    counted = given["attempts"].map(before_last_success)
    assert counted.sum() == len(flaky)
    assert (counted > 0).sum() == len(flaky_groups(attempts))
    exploded = given["attempts"].explode()
    assert (exploded == "success").sum() == rates.successes
    assert (exploded == "failure").sum() == rates.failures
    assert rates.without_flaky > rates.with_flaky
