"""Cross-check against Apache DevLake's e2e fixtures (cases D1–D5 of
``../shared/data/peer-fixtures/devlake/expected-values.md``).

Where DevLake's definition is ours, DevLake's expected values are reproduced
value by value through our code. Where the definitions differ, each test
asserts both numbers, ours and DevLake's, and says why they differ.
Naive fixture times are UTC (the fixtures' README).
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from devops_assets.domain.engine import History, deployed, measure, outcomes_of
from devops_assets.domain.lineage import CommitGraph, attribute_commits
from devops_assets.domain.models import Deployment, Incident
from devops_assets.domain.periods import Period
from devops_assets.domain.settings import MetricSettings
from devops_assets_tests.devlake_fixtures import (
    ENVIRONMENTS,
    GENERATOR,
    INCIDENTS,
    LEAD_TIME,
    PREV_SUCCESS,
    REFDIFF,
    STATUSES,
    ceil_minutes,
    deployment_of_row,
    devlake_csv,
    in_project,
    lead_time_commits,
    project_of,
    refdiff_commits,
    utc,
)


def by_id(deployments: list[Deployment]) -> list[str]:
    return [d.deployment_id for d in deployments]


# ---------------------------------------------------------------- D5: refdiff


def test_d5_our_changesets_are_devlakes_commits_diffs():
    projects = project_of(devlake_csv(*REFDIFF, "project_mapping.csv"))
    rows = devlake_csv(*REFDIFF, "cicd_deployment_commits.csv")
    # The refdiff rows have no finished_date: started_date orders them (times only order here).
    mine = [
        deployment_of_row(r, "started_date") for r in rows if in_project(r, projects, "project1")
    ]
    lineage = attribute_commits(refdiff_commits(), mine)

    assert by_id(list(lineage.deployments)) == ["1", "2", "3"]
    # Ours lists a changeset from the deployed commit back, as DevLake's sorting_index does.
    assert lineage.changesets == (
        ("commit_sha1", "commit_sha6"),
        ("commit_sha2",),
        ("commit_sha4", "commit_sha7"),
    )
    # The same rows as DevLake's commits_diffs: (new, old = previous deployment, commit).
    ours = {}
    for i, (deployment, changeset) in enumerate(
        zip(lineage.deployments, lineage.changesets, strict=True)
    ):
        old = lineage.deployments[i - 1].commit_sha if i else ""
        ours[(deployment.commit_sha, old)] = list(changeset)
    devlake: dict[tuple[str, str], list[str]] = {}
    for row in sorted(
        devlake_csv(*REFDIFF, "commits_diffs.csv"), key=lambda r: int(r["sorting_index"])
    ):
        devlake.setdefault((row["new_commit_sha"], row["old_commit_sha"]), []).append(
            row["commit_sha"]
        )
    assert (
        ours
        == devlake
        == {
            ("commit_sha1", ""): ["commit_sha1", "commit_sha6"],
            ("commit_sha2", "commit_sha1"): ["commit_sha2"],
            ("commit_sha4", "commit_sha2"): ["commit_sha4", "commit_sha7"],
        }
    )
    finished = devlake_csv(*REFDIFF, "_tool_refdiff_finished_commits_diffs.csv")
    assert set(ours) == {(r["new_commit_sha"], r["old_commit_sha"]) for r in finished}

    # DevLake's first deployment (no previous) holds all its ancestors and D1 then leaves it
    # out of lead time; ours is the baseline, the same changeset, also left out of lead time.
    assert lineage.baseline == 0
    assert dict(lineage.first_deployment) == {
        "commit_sha1": 0,
        "commit_sha6": 0,
        "commit_sha2": 1,
        "commit_sha4": 2,
        "commit_sha7": 2,
    }
    # In the graph but shipped by no project1 deployment: side commits and project2's chain
    # (project2's deployment rows are not produced).
    graph = {c.sha for c in refdiff_commits()}
    assert graph - set(lineage.first_deployment) == {
        "commit_sha3",
        "commit_sha5",
        "commit_sha10",
        "commit_sha11",
        "commit_sha12",
    }


# ------------------------------------------ D2: previous successful deployment


def test_d2_previous_success_per_scope_repo_environment():
    projects = project_of(devlake_csv(*PREV_SUCCESS, "project_mapping.csv"))
    before = devlake_csv(*PREV_SUCCESS, "cicd_deployment_commits_before.csv")
    after = {r["id"]: r for r in devlake_csv(*PREV_SUCCESS, "cicd_deployment_commits_after.csv")}
    rows = [r for r in before if in_project(r, projects, "project1")]
    assert sorted(int(r["id"]) for r in rows) == list(range(1, 14))
    deployments = [deployment_of_row(r) for r in rows]

    # Ours keeps the successful deployments of an environment in time order and drops
    # failures (id 11). DevLake chains per (scope, repo, env); we group per (env, worker)
    # with worker = "scope/repo", so the previous kept deployment of the same worker is
    # DevLake's previous successful deployment.
    prev: dict[str, str] = {r["id"]: "" for r in rows}
    for env in ("production", "staging"):
        last: dict[str, str] = {}
        for d in deployed(deployments, env):
            prev[d.deployment_id] = last.get(d.worker, "")
            last[d.worker] = d.deployment_id
    expected = {i: after[i]["prev_success_deployment_commit_id"] for i in prev}
    assert prev == expected
    assert expected == {
        "1": "",
        "2": "",
        "3": "",
        "4": "",
        "5": "1",
        "6": "2",
        "7": "",
        "8": "7",
        "9": "5",
        "10": "6",
        "11": "",
        "12": "4",
        "13": "3",
    }
    # Project2's rows are left untouched by DevLake (and are not ours to chain).
    assert [after[i]["prev_success_deployment_commit_id"] for i in ("14", "15", "16")] == [""] * 3

    # Where the grouping differs: our lineage walks one graph per environment, so what a
    # deployment ships is measured against every earlier deployment of the environment,
    # whatever the worker: its "previous" is the previous kept deployment overall.
    production = by_id(deployed(deployments, "production"))
    assert production == ["1", "2", "3", "4", "5", "6", "9", "10", "12", "13"]
    assert by_id(deployed(deployments, "staging")) == ["7", "8"]
    env_prev = dict(zip(production[1:], production[:-1], strict=True))
    assert env_prev == {
        "2": "1",
        "3": "2",
        "4": "3",
        "5": "4",
        "6": "5",
        "9": "6",
        "10": "9",
        "12": "10",
        "13": "12",
    }


# ------------------------------------------------ D3: incident -> deployment


@pytest.fixture(scope="module")
def d3():
    """(project1 successful production deployment-commit rows, project1 incidents)."""
    projects = project_of(devlake_csv(*INCIDENTS, "raw_tables", "project_mapping.csv"))
    rows = devlake_csv(
        *INCIDENTS, "prev_success_deployment_commit", "cicd_deployment_commits_after.csv"
    )
    rows = [
        r
        for r in rows
        if in_project(r, projects, "project1")
        and r["result"] == "SUCCESS"
        and r["environment"] == "PRODUCTION"
    ]
    incidents = [
        # updated_date is not a resolution time: the incidents stay open.
        Incident(r["id"], "production", utc(r["created_date"]))
        for r in devlake_csv(*INCIDENTS, "raw_tables", "incidents.csv")
        if projects.get((r["table"], r["scope_id"])) == "project1"
    ]
    return rows, incidents


def attributed(deployments: list[Deployment], incidents: list[Incident]) -> dict[str, str]:
    """incident id -> deployment id, through our engine."""
    history = History(CommitGraph([]), deployments, incidents)
    mine, outcomes = outcomes_of(history, "production", MetricSettings())
    return {
        i.incident_id: d.deployment_id
        for d, o in zip(mine, outcomes, strict=True)
        for i in o.incidents
    }


def test_d3_incidents_of_other_projects_get_no_row(d3):
    _, incidents = d3
    expected = devlake_csv(
        *INCIDENTS, "snapshot_tables", "project_incident_deployment_relationships.csv"
    )
    raw = {r["id"]: r for r in devlake_csv(*INCIDENTS, "raw_tables", "incidents.csv")}
    projects = project_of(devlake_csv(*INCIDENTS, "raw_tables", "project_mapping.csv"))
    # repos/repo3 is in no project of this folder's mapping (not even project2's), so its
    # incident is not project1's: DevLake writes no row, and ours is never given it.
    repo3 = raw["github:GithubIssue:1:1373792477"]
    assert (repo3["table"], repo3["scope_id"]) == ("repos", "repo3")
    assert ("repos", "repo3") not in projects
    assert len(raw) == 7
    assert repo3["id"] not in {r["id"] for r in expected}
    assert {i.incident_id for i in incidents} == {r["id"] for r in expected}
    assert len(incidents) == 6


def test_d3_pipeline_deployments_differ_from_devlakes_connector_on_one_incident(d3):
    rows, incidents = d3
    # One deployment per cicd_deployment_id at its latest finish: DevLake's DORA SQL rule.
    finished: dict[str, datetime] = {}
    for r in rows:
        at = utc(r["finished_date"])
        finished[r["cicd_deployment_id"]] = max(at, finished.get(r["cicd_deployment_id"], at))
    assert finished == {
        "pipeline1": datetime(2022, 9, 12, 6, 51, 47, tzinfo=UTC),
        "pipeline2": datetime(2022, 9, 15, 6, 51, 47, tzinfo=UTC),
        "pipeline4": datetime(2022, 9, 17, 6, 51, 47, tzinfo=UTC),
        "pipeline6": datetime(2022, 9, 21, 6, 51, 47, tzinfo=UTC),
        "pipeline7": datetime(2022, 9, 24, 6, 51, 47, tzinfo=UTC),
    }
    pipelines = [
        Deployment(p, "project1", "production", at, p, 100.0, None) for p, at in finished.items()
    ]
    ours = attributed(pipelines, incidents)
    devlake = {
        r["id"]: r["deployment_id"]
        for r in devlake_csv(
            *INCIDENTS, "snapshot_tables", "project_incident_deployment_relationships.csv"
        )
    }
    board_incident = "github:GithubIssue:1:1373792478"  # opened 2022-09-15 01:56:16
    # Five incidents opened in November land on pipeline7 in both.
    assert {k: v for k, v in ours.items() if k != board_incident} == {
        k: v for k, v in devlake.items() if k != board_incident
    }
    assert set(ours.values()) - {"pipeline1"} == {"pipeline7"}
    # Differs: DevLake's connector compares the incident with each deployment *commit
    # row*: row 3 of pipeline2 finished 09-14 06:51:47, before the incident. As one
    # deployment, pipeline2 finished 09-15 06:51:47 (row 4), after it, so ours takes the
    # latest deployment finished strictly before: pipeline1 (09-12 06:51:47).
    assert devlake[board_incident] == "pipeline2"
    assert ours[board_incident] == "pipeline1"
    # So the change failure rate is 2 of 5 deployments in both, on different deployments.
    assert sorted(set(ours.values())) == ["pipeline1", "pipeline7"]
    assert sorted(set(devlake.values())) == ["pipeline2", "pipeline7"]


def test_d3_row_deployments_reproduce_devlakes_connector(d3):
    rows, incidents = d3
    # One deployment per deployment-commit row (the connector's granularity), named by
    # its pipeline: ours then lands every incident where DevLake does.
    rows_as_deployments = [
        Deployment(
            r["id"],
            "project1",
            "production",
            utc(r["finished_date"]),
            r["id"],
            100.0,
            r["commit_sha"],
        )
        for r in rows
    ]
    pipeline = {r["id"]: r["cicd_deployment_id"] for r in rows}
    ours = {i: pipeline[d] for i, d in attributed(rows_as_deployments, incidents).items()}
    devlake = {
        r["id"]: r["deployment_id"]
        for r in devlake_csv(
            *INCIDENTS, "snapshot_tables", "project_incident_deployment_relationships.csv"
        )
    }
    assert ours == devlake
    assert sorted(devlake.values()) == ["pipeline2"] + ["pipeline7"] * 5
    # The rows they land on: board1's on row 3 (09-14 06:51:47), the rest on row 13.
    landed = attributed(rows_as_deployments, incidents)
    assert landed["github:GithubIssue:1:1373792478"] == "3"
    assert set(landed.values()) == {"3", "13"}


# ------------------------------------------------------ D1: lead time per PR


@pytest.fixture(scope="module")
def d1():
    projects = project_of(devlake_csv(*LEAD_TIME, "project_mapping.csv"))
    rows = devlake_csv(*LEAD_TIME, "cicd_deployment_commits.csv")
    project_rows = [r for r in rows if in_project(r, projects, "project1")]
    deployments = [deployment_of_row(r) for r in project_rows]
    commits = lead_time_commits()
    return project_rows, deployments, commits


def devlake_pr_rows() -> dict[str, dict[str, object]]:
    """DevLake's rule worked from the inputs: spans ceil'd to minutes, negatives dropped,
    deployment = earliest successful PRODUCTION row with a previous success whose diff
    (prev commit -> its commit) holds the PR's merge sha."""
    rows = devlake_csv(*LEAD_TIME, "cicd_deployment_commits.csv")
    row_by_id = {r["id"]: r for r in rows}
    diffs = {
        (d["old_commit_sha"], d["new_commit_sha"], d["commit_sha"])
        for d in devlake_csv(*LEAD_TIME, "commits_diffs.csv")
    }
    first_authored: dict[str, datetime] = {}
    for c in devlake_csv(*LEAD_TIME, "pull_request_commits.csv"):
        at = utc(c["commit_authored_date"])
        first_authored[c["pull_request_id"]] = min(at, first_authored.get(c["pull_request_id"], at))
    found = {}
    for pr in devlake_csv(*LEAD_TIME, "pull_requests.csv"):
        if not pr["merged_date"]:
            continue  # unmerged: no row
        created, merged = utc(pr["created_date"]), utc(pr["merged_date"])
        linked = [
            r
            for r in rows
            if r["result"] == "SUCCESS"
            and r["environment"] == "PRODUCTION"
            and r["prev_success_deployment_commit_id"]
            and (
                row_by_id[r["prev_success_deployment_commit_id"]]["commit_sha"],
                r["commit_sha"],
                pr["merge_commit_sha"],
            )
            in diffs
        ]
        deployment = min(linked, key=lambda r: utc(r["started_date"])) if linked else None
        deployed_at = utc(deployment["finished_date"]) if deployment else None
        coding = ceil_minutes(first_authored[pr["id"]], created)
        review = ceil_minutes(created, merged)
        deploy = ceil_minutes(merged, deployed_at) if deployed_at else None
        found[pr["id"]] = {
            "pr_coding_time": coding,
            "deployment_commit_id": deployment["id"] if deployment else None,
            "pr_deployed_date": deployed_at,
            "pr_deploy_time": deploy,
            "pr_cycle_time": sum(x for x in (coding, review, deploy) if x is not None),
        }
    return found


def test_d1_devlakes_expected_pr_metrics_follow_its_rule():
    expected = {r["id"]: r for r in devlake_csv(*LEAD_TIME, "project_pr_metrics.csv")}
    worked = devlake_pr_rows()
    assert set(worked) == set(expected) == {"pr0", "pr1", "pr2", "pr3", "pr4", "pr5"}
    for pr, got in worked.items():
        row = expected[pr]
        assert got == {
            "pr_coding_time": int(row["pr_coding_time"]) if row["pr_coding_time"] else None,
            "deployment_commit_id": row["deployment_commit_id"] or None,
            "pr_deployed_date": utc(row["pr_deployed_date"]),
            "pr_deploy_time": int(row["pr_deploy_time"]) if row["pr_deploy_time"] else None,
            "pr_cycle_time": int(row["pr_cycle_time"]),
        }, pr
    assert {pr: got["pr_cycle_time"] for pr, got in worked.items()} == {
        "pr0": 44640,
        "pr1": 4478,
        "pr2": 1598,
        "pr3": 10203,
        "pr4": 11764,
        "pr5": 13204,
    }


MERGES = {f"pr{n}": f"pr_merge_commit{n}" for n in range(6)}
D1_PR_COMMITS = {
    "pr1": (
        "08d2f2b6de0fa8de4d0e2b55b4b9a2e244214029",
        "0edd5d0e0d18516d3309fec90553c3ee7380c149",
        "209168a4b12d91a7ad1f3711fe05b39d5bd8e260",
    ),
    "pr2": (
        "2537845559d8db99e9cda6190f32b50ec979c722",
        "3aba559962e04949a1731f7d5155c7aac2e900ce",
        "3ec3e113ed36a5a8978af295683085054e4dfdd9",
    ),
    "pr3": (
        "55f445997abbd5918da59d202d28762cd56fbd44",
        "4f8cdefc9a9d53af16dd482c61623312eb9e9b5e",
        "4b71faf666833c0c7b915a512811e2c5e746d3de",
    ),
}
# Our lead time of each PR commit (first production deployment - author time), worked by
# hand: row 5 finished 2023-04-13 07:29:14, row 6 07:30:34; merge commits authored at merge.
OUR_PR_LEADS = {
    # pr1 -> row 5; merged 04-11 05:51:47; commits authored 04-10/11/12 04:51:47
    "pr_merge_commit1": timedelta(days=2, hours=1, minutes=37, seconds=27),  # 2977.45 min
    "08d2f2b6de0fa8de4d0e2b55b4b9a2e244214029": timedelta(days=3, hours=2, minutes=37, seconds=27),
    "0edd5d0e0d18516d3309fec90553c3ee7380c149": timedelta(days=2, hours=2, minutes=37, seconds=27),
    "209168a4b12d91a7ad1f3711fe05b39d5bd8e260": timedelta(days=1, hours=2, minutes=37, seconds=27),
    # pr2 -> row 5; merged 04-12 05:51:47; commits authored 04-13/14/15 04:51:47
    "pr_merge_commit2": timedelta(days=1, hours=1, minutes=37, seconds=27),  # 1537.45 min
    "2537845559d8db99e9cda6190f32b50ec979c722": timedelta(hours=2, minutes=37, seconds=27),
    "3aba559962e04949a1731f7d5155c7aac2e900ce": -timedelta(hours=21, minutes=22, seconds=33),
    "3ec3e113ed36a5a8978af295683085054e4dfdd9": -timedelta(
        days=1, hours=21, minutes=22, seconds=33
    ),
    # pr3 -> row 6; merged 04-14 06:53:51, after row 6 finished; commits 04-07/08/09 04:51:47
    "pr_merge_commit3": -timedelta(hours=23, minutes=23, seconds=17),  # -1403.28 min
    "55f445997abbd5918da59d202d28762cd56fbd44": timedelta(days=6, hours=2, minutes=38, seconds=47),
    "4f8cdefc9a9d53af16dd482c61623312eb9e9b5e": timedelta(days=5, hours=2, minutes=38, seconds=47),
    "4b71faf666833c0c7b915a512811e2c5e746d3de": timedelta(days=4, hours=2, minutes=38, seconds=47),
}
# Every deployed head commit other than the baseline's is authored at its row's start: 60 s.
HEADS = ("commit2", "commit3", "commit4", "commit5", "commit6", "commit9", "commit10")
HEADS += ("commit12", "commit13")


def our_leads(commits, lineage) -> dict[str, timedelta]:
    """Our lead time of every commit a non-baseline deployment shipped first."""
    author = {c.sha: c.author_time for c in commits}
    return {
        sha: lineage.deployments[i].created_on - author[sha]
        for sha, i in lineage.first_deployment.items()
        if i != lineage.baseline
    }


def test_d1_our_merge_commits_land_on_devlakes_deployments(d1):
    _, deployments, commits = d1
    production = attribute_commits(commits, deployed(deployments, "production"))
    expected = {r["id"]: r for r in devlake_csv(*LEAD_TIME, "project_pr_metrics.csv")}
    ours = {pr: production.deployment_of(sha) for pr, sha in MERGES.items()}
    for pr in ("pr1", "pr2", "pr3"):
        assert ours[pr].deployment_id == expected[pr]["deployment_commit_id"], pr
    assert {pr: d.deployment_id for pr, d in ours.items() if d} == {
        "pr0": "1",
        "pr1": "5",
        "pr2": "5",
        "pr3": "6",
    }
    # pr0: DevLake links no deployment (row 1 has no previous success); ours links row 1,
    # the baseline, whose changeset is left out of lead time. Excluded in both.
    assert expected["pr0"]["deployment_commit_id"] == ""
    assert production.first_deployment["pr_merge_commit0"] == production.baseline == 0
    assert "pr_merge_commit0" not in our_leads(commits, production)
    # pr4 went to staging only (row 8), pr5 only to a FAILURE (row 11): no production
    # deployment in either (ours drops failed deployments in deployed()).
    assert expected["pr4"]["deployment_commit_id"] == expected["pr5"]["deployment_commit_id"] == ""
    assert ours["pr4"] is None and ours["pr5"] is None
    staging = attribute_commits(commits, deployed(deployments, "staging"))
    assert staging.deployment_of("pr_merge_commit4").deployment_id == "8"


def test_d1_lead_times_ours_per_commit_devlakes_per_pr(d1):
    _, deployments, commits = d1
    production = attribute_commits(commits, deployed(deployments, "production"))
    leads = our_leads(commits, production)
    assert leads == {**OUR_PR_LEADS, **{h: timedelta(seconds=60) for h in HEADS}}
    devlake = {r["id"]: r for r in devlake_csv(*LEAD_TIME, "project_pr_metrics.csv")}

    def minutes(delta: timedelta) -> float:
        return delta / timedelta(minutes=1)

    # Same definition: the deploy span (merge -> deployment finished). Ours on the merge
    # commit, ceil'd to minutes, is DevLake's pr_deploy_time.
    assert minutes(leads["pr_merge_commit1"]) == pytest.approx(2977.45)
    assert math.ceil(minutes(leads["pr_merge_commit1"])) == 2978
    assert int(devlake["pr1"]["pr_deploy_time"]) == 2978
    assert minutes(leads["pr_merge_commit2"]) == pytest.approx(1537.45)
    assert math.ceil(minutes(leads["pr_merge_commit2"])) == 1538
    assert int(devlake["pr2"]["pr_deploy_time"]) == 1538

    # pr1: no span is negative, so DevLake's cycle (1440 + 60 + 2978) is, to the minute,
    # ours from the first commit authored: 3 d 2 h 37 min 27 s = 4477.45 min.
    first_pr1 = leads["08d2f2b6de0fa8de4d0e2b55b4b9a2e244214029"]
    assert minutes(first_pr1) == pytest.approx(4477.45)
    assert math.ceil(minutes(first_pr1)) == 4478
    assert int(devlake["pr1"]["pr_cycle_time"]) == 4478

    # pr2 differs: its first commit was authored after the PR opened. DevLake drops the
    # negative coding span, cycle = 60 + 1538 = 1598 (PR created -> deployed). Ours has no
    # PR: the earliest commit's lead is 157.45 min, and two later commits are negative.
    assert int(devlake["pr2"]["pr_cycle_time"]) == 1598
    assert devlake["pr2"]["pr_coding_time"] == ""
    assert minutes(leads["2537845559d8db99e9cda6190f32b50ec979c722"]) == pytest.approx(157.45)
    assert minutes(leads["3aba559962e04949a1731f7d5155c7aac2e900ce"]) == pytest.approx(-1282.55)
    assert minutes(leads["3ec3e113ed36a5a8978af295683085054e4dfdd9"]) == pytest.approx(-2722.55)

    # pr3 differs: its deployment (row 6) finished before the merge. DevLake still links
    # row 6 but drops the negative deploy span: cycle = 5883 + 4320 = 10203. Ours keeps the
    # merge commit's negative lead (-1403.28 min, docs/metrics.md keeps negatives) and the
    # first commit's lead is deployment - authored = 8798.78 min.
    assert devlake["pr3"]["pr_deploy_time"] == "" and devlake["pr3"]["deployment_commit_id"] == "6"
    assert int(devlake["pr3"]["pr_cycle_time"]) == 10203
    assert minutes(leads["pr_merge_commit3"]) == pytest.approx(-1403 - 17 / 60)
    assert minutes(leads["55f445997abbd5918da59d202d28762cd56fbd44"]) == pytest.approx(
        8798 + 47 / 60
    )

    # pr0, pr4, pr5 differ: DevLake gives every merged PR a cycle time, deployed or not
    # (coding + open: 44640, 11764, 13204); ours has no production lead for their commits.
    assert [int(devlake[p]["pr_cycle_time"]) for p in ("pr0", "pr4", "pr5")] == [
        44640,
        11764,
        13204,
    ]
    for pr in ("pr0", "pr4", "pr5"):
        assert MERGES[pr] not in leads
    assert not {"pr0_commit0", "62535543802631a0d3daf0b0b78c6a7e05e508fb"} & set(leads)


def test_d1_engine_measures_these_leads_and_counts_deployments_not_pipelines(d1):
    rows, deployments, commits = d1
    history = History(CommitGraph(commits), deployments)
    window = Period("window", datetime(2023, 4, 1, tzinfo=UTC), datetime(2023, 5, 1, tzinfo=UTC))
    values = {
        (v.metric, v.environment): v.value
        for v in measure(history, MetricSettings(), [window])
        if v.worker == ""
    }
    seconds = [d.total_seconds() for d in OUR_PR_LEADS.values()] + [60.0] * len(HEADS)
    assert len(seconds) == 21
    assert values[("lead_time_mean", "production")] == pytest.approx(statistics.fmean(seconds))
    assert values[("lead_time_p50", "production")] == pytest.approx(60.0)  # 11th of 21
    p90 = statistics.quantiles(seconds, n=10, method="inclusive")[8]
    assert values[("lead_time_p90", "production")] == pytest.approx(p90)
    # Staging (row 7 baseline; row 8 ships pr4): DevLake measures production only.
    staging = [
        -timedelta(hours=1, minutes=17, seconds=31),  # pmc4: merged 08:55:01, staged 07:37:30
        timedelta(days=8, hours=2, minutes=45, seconds=43),  # 5ad0…, authored 04-05
        timedelta(days=7, hours=2, minutes=45, seconds=43),  # 56b8…, authored 04-06
        timedelta(seconds=60),  # commit8
    ]
    assert values[("lead_time_mean", "staging")] == pytest.approx(
        statistics.fmean(d.total_seconds() for d in staging)
    )
    # Ours counts a deployment per (worker, event): 10 successful production rows, the
    # FAILURE row 11 left out. DevLake counts cicd_deployment_ids with a SUCCESS row: 5.
    assert values[("deployment_count", "production")] == 10.0
    devlake_deployments = {
        r["cicd_deployment_id"]
        for r in rows
        if r["result"] == "SUCCESS" and r["environment"] == "PRODUCTION"
    }
    assert sorted(devlake_deployments) == [
        "pipeline1",
        "pipeline2",
        "pipeline4",
        "pipeline6",
        "pipeline7",
    ]


# ---------------------------------------------- D4: which pipelines deploy


def devlake_generated_rows() -> set[tuple]:
    """DevLake's generator rule worked from its inputs: a SUCCESS or FAILURE pipeline of
    type DEPLOYMENT or with a non-skipped DEPLOYMENT task; environment its own, else the
    first of PRODUCTION, STAGING, TESTING among its non-skipped tasks; started = finished
    - duration (the pipelines carry no start); one row per pipeline commit."""
    tasks: dict[str, list[dict[str, str]]] = {}
    for task in devlake_csv(*GENERATOR, "cicd_tasks.csv"):
        if task["result"] != "SKIPPED":
            tasks.setdefault(task["pipeline_id"], []).append(task)
    commits = {}
    for c in devlake_csv(*GENERATOR, "cicd_pipeline_commits.csv"):
        commits.setdefault(c["pipeline_id"], []).append(c)
    found = set()
    for p in devlake_csv(*GENERATOR, "cicd_pipelines.csv"):
        own = tasks.get(p["id"], [])
        if p["result"] not in ("SUCCESS", "FAILURE"):
            continue
        if p["type"] != "DEPLOYMENT" and not any(t["type"] == "DEPLOYMENT" for t in own):
            continue
        envs = {t["environment"] for t in own}
        inferred = next((e for e in ("PRODUCTION", "STAGING", "TESTING") if e in envs), "")
        finished = utc(p["finished_date"])
        started = finished - timedelta(seconds=int(p["duration_sec"])) if finished else None
        for c in commits[p["id"]]:
            found.add(
                (
                    p["id"],
                    c["commit_sha"],
                    p["result"],
                    p["environment"] or inferred,
                    started,
                    finished,
                )
            )
    return found


def test_d4_devlake_keeps_failed_pipelines_as_rows_ours_counts_successes_only():
    expected = devlake_csv(*GENERATOR, "cicd_deployment_commits.csv")
    as_rows = {
        (
            r["cicd_deployment_id"],
            r["commit_sha"],
            r["result"],
            r["environment"],
            utc(r["started_date"]),
            utc(r["finished_date"]),
        )
        for r in expected
    }
    assert devlake_generated_rows() == as_rows
    assert len(as_rows) == 6
    assert sorted((r["cicd_deployment_id"][-9:], r["result"]) for r in expected) == [
        ("457475337", "FAILURE"),
        ("485811050", "FAILURE"),
        ("485813816", "FAILURE"),
        ("485814501", "FAILURE"),
        ("485877118", "FAILURE"),
        ("485932863", "SUCCESS"),
    ]
    started = {r[0][-9:]: r[4] for r in as_rows}
    assert started["485877118"] == datetime(2022, 3, 7, 8, 22, 49, 364000, tzinfo=UTC)

    # Ours: a deployment needs the time it took effect, so 457475337 (no finish) cannot be
    # one. Of the other five, deployed() keeps successes only: no production deployment
    # (DevLake's DORA SQL, SUCCESS + PRODUCTION, also finds none). The one SUCCESS row has
    # no environment in DevLake; in ours it stays in an environment named "".
    ours = [
        Deployment(
            r["cicd_deployment_id"][-9:],
            "snowflake_spend",
            ENVIRONMENTS[r["environment"]],
            utc(r["finished_date"]),
            r["cicd_deployment_id"][-9:],
            100.0,
            r["commit_sha"],
            status=STATUSES[r["result"]],
        )
        for r in expected
        if r["finished_date"]
    ]
    assert len(ours) == 5
    assert deployed(ours, "production") == []
    assert by_id(deployed(ours, "")) == ["485932863"]
    assert sum(d.status == "failure" and d.environment == "production" for d in ours) == 4
