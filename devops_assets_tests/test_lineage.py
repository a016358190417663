"""Commits are attributed to the first deployment that contains them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devops_assets.domain.lineage import attribute_commits
from devops_assets.domain.models import Commit, Deployment

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def make_commit(sha: str, *parents: str, hours: float = 0) -> Commit:
    when = T0 + timedelta(hours=hours)
    return Commit(sha, parents, when, when, "dev@example.invalid", f"change {sha}")


def deploy(deployment_id: str, sha: str | None, hours: float, env="production") -> Deployment:
    when = T0 + timedelta(hours=hours)
    return Deployment(deployment_id, "api", env, when, deployment_id, 100.0, sha)


# a ─ b ─ c ───── m ─ g       m merges c (first parent) and e
#      └─ d ─ e ─┘
GRAPH = [
    make_commit("a"),
    make_commit("b", "a"),
    make_commit("c", "b"),
    make_commit("d", "b"),
    make_commit("e", "d"),
    make_commit("m", "c", "e"),
    make_commit("g", "m"),
]


def changesets_by_id(lineage) -> dict[str, set[str]]:
    return {
        d.deployment_id: set(s)
        for d, s in zip(lineage.deployments, lineage.changesets, strict=True)
    }


def test_each_commit_goes_to_the_first_deployment_containing_it_merges_included():
    deployments = [deploy("d0", "a", 12), deploy("d1", "c", 48), deploy("d2", "m", 96)]
    lineage = attribute_commits(GRAPH, deployments)

    assert changesets_by_id(lineage) == {"d0": {"a"}, "d1": {"b", "c"}, "d2": {"d", "e", "m"}}
    assert lineage.deployment_of("m").deployment_id == "d2"
    assert lineage.deployment_of("g") is None
    assert lineage.baseline == 0


def test_deployments_given_out_of_order_are_taken_in_time_order():
    deployments = [deploy("d2", "m", 96), deploy("d0", "a", 12), deploy("d1", "c", 48)]
    lineage = attribute_commits(reversed(GRAPH), deployments)

    assert [d.deployment_id for d in lineage.deployments] == ["d0", "d1", "d2"]
    assert changesets_by_id(lineage)["d1"] == {"b", "c"}


def test_a_later_deployment_of_an_older_commit_ships_nothing():
    deployments = [deploy("d0", "a", 12), deploy("d1", "m", 48), deploy("retry", "m", 49)]
    rollback = deploy("rollback", "c", 50)
    lineage = attribute_commits(GRAPH, [*deployments, rollback])

    assert changesets_by_id(lineage)["retry"] == set()
    assert changesets_by_id(lineage)["rollback"] == set()
    assert lineage.deployment_of("c").deployment_id == "d1"


def test_shallow_history_ends_the_walk_and_the_first_known_deployment_is_baseline():
    shallow = GRAPH[2:]  # a and b are missing; c and d name b as parent
    deployments = [deploy("d0", "a", 12), deploy("d1", "c", 48), deploy("d2", "m", 96)]
    lineage = attribute_commits(shallow, [*deployments, deploy("no-sha", None, 60)])

    assert changesets_by_id(lineage) == {
        "d0": set(),
        "d1": {"c"},
        "no-sha": set(),
        "d2": {"d", "e", "m"},
    }
    assert lineage.deployments[lineage.baseline].deployment_id == "d1"


def test_no_deployments_attributes_nothing():
    lineage = attribute_commits(GRAPH, [])
    assert (lineage.first_deployment, lineage.baseline) == ({}, None)


@st.composite
def dags_with_deployments(draw):
    """Commits 0..n-1 whose parents are earlier commits, and deployments of them."""
    size = draw(st.integers(1, 25))
    commits = []
    for index in range(size):
        pool = st.sampled_from(range(index)) if index else st.nothing()
        parents = draw(st.lists(pool, max_size=3 if index else 0, unique=True))
        authored, committed = draw(st.integers(-50, 50)), draw(st.integers(-50, 50))
        commits.append(
            Commit(
                str(index),
                tuple(map(str, parents)),
                T0 + timedelta(hours=authored),
                T0 + timedelta(hours=committed),
                "dev@example.invalid",
                f"change {index}",
            )
        )
    targets = st.tuples(st.integers(0, 50), st.integers(0, size - 1))
    picks = draw(st.lists(targets, max_size=10))
    deployments = [deploy(f"dep{i}", str(sha), hours) for i, (hours, sha) in enumerate(picks)]
    return commits, deployments


def ancestors_of(sha: str, parents: dict[str, tuple[str, ...]]) -> set[str]:
    seen, todo = set(), [sha]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(parents[current])
    return seen


@settings(max_examples=300, deadline=None)
@given(dags_with_deployments())
def test_attribution_matches_a_brute_force_ancestry_check(case):
    commits, deployments = case
    parents = {c.sha: c.parents for c in commits}
    in_time_order = sorted(deployments, key=lambda d: (d.created_on, d.deployment_id))
    expected = {}
    for commit in commits:
        for deployment in in_time_order:
            if commit.sha in ancestors_of(deployment.commit_sha, parents):
                expected[commit.sha] = deployment.deployment_id
                break

    lineage = attribute_commits(commits, deployments)
    found = {
        sha: lineage.deployments[i].deployment_id for sha, i in lineage.first_deployment.items()
    }
    assert found == expected


@settings(max_examples=300, deadline=None)
@given(dags_with_deployments())
def test_each_commit_is_brought_by_the_first_parent_commit_that_merged_it(case):
    """``brought_by[c]`` lies on the deployed first-parent line, holds ``c`` in its
    ancestry, and its own first parent does not (so that commit's landing brought c)."""
    commits, deployments = case
    parents = {c.sha: c.parents for c in commits}
    lineage = attribute_commits(commits, deployments)
    for sha, index in lineage.first_deployment.items():
        head = lineage.deployments[index].commit_sha
        line, current = [], head
        while current is not None:
            line.append(current)
            current = parents[current][0] if parents[current] else None
        bringer = lineage.brought_by[sha]
        assert bringer in line, (sha, bringer, line)
        assert sha in ancestors_of(bringer, parents)
        first_parent = parents[bringer][0] if parents[bringer] else None
        assert first_parent is None or sha not in ancestors_of(first_parent, parents)


@settings(max_examples=200, deadline=None)
@given(dags_with_deployments(), st.sampled_from(["author_time", "commit_time", "branch_start"]))
def test_every_lead_time_is_a_deployed_change_measured_once(case, start):
    """Whatever the start point, the engine's lead times are exactly: for each change
    (a commit, or a first-parent commit with what it brought), its first deployment's
    time minus its start, for every change not shipped by the baseline."""
    from devops_assets.domain.engine import History, measure
    from devops_assets.domain.lineage import CommitGraph
    from devops_assets.domain.periods import Period
    from devops_assets.domain.settings import MetricSettings

    commits, deployments = case
    settings = MetricSettings(lead_time_start=start, cherry_picks="off")
    period = Period("window", T0 - timedelta(days=30), T0 + timedelta(days=30))
    measured = measure(History(CommitGraph(commits), deployments), settings, [period])
    got = {v.metric: v.value for v in measured if v.worker == ""}

    lineage = attribute_commits(commits, [d for d in deployments if d.status == "success"])
    by_sha = {c.sha: c for c in commits}
    served = {}  # first deployment of each sha, skipping retries folded by the engine
    expected = []
    for sha, index in lineage.first_deployment.items():
        if index == lineage.baseline:
            continue
        served[sha] = lineage.deployments[index].created_on
    if start == "branch_start":
        for head in {lineage.brought_by[s] for s in served}:
            brought = [s for s in served if lineage.brought_by[s] == head]
            begin = min(by_sha[s].author_time for s in brought)
            expected.append((served[head] - begin).total_seconds())
    else:
        for sha, when in served.items():
            expected.append((when - getattr(by_sha[sha], start)).total_seconds())
    if expected:
        assert got["lead_time_mean"] == pytest.approx(sum(expected) / len(expected))
    else:
        assert got.get("lead_time_mean") is None  # no deployment: nothing measured
