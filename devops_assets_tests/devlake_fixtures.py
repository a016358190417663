"""Apache DevLake's e2e CSV fixtures, read from ``../shared`` and turned into our records.

The CSVs live in ``../shared/data/peer-fixtures/devlake`` (Apache-2.0, see the
README there); tests read them in place and never copy them. Without that folder
the tests are skipped, except on CI (``CI`` set) where they fail.

DevLake rows carry no git graph and few of the times our records need, so a
few things are made up here; each is named where it is made:

- D5: commit times (the graph comes from ``commit_parents.csv``; times do not
  matter to which deployment ships a commit).
- D1: the graph shape (built so that each deployment's ancestry holds exactly
  the merge commits ``commits_diffs.csv`` gives it), the author time of each
  PR's merge commit (= the PR's ``merged_date``) and of each deployed head
  commit (= its row's ``started_date``, 60 s before it finished).
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta

from devops_assets.domain.models import Commit, Deployment
from devops_assets_tests.git_fixtures import shared_data

DEVLAKE = ("peer-fixtures", "devlake")
LEAD_TIME = ("dora", "e2e", "change_lead_time")
PREV_SUCCESS = ("dora", "e2e", "prev_success_deployment_commit")
INCIDENTS = ("dora", "e2e", "connect_incident_to_deployment")
GENERATOR = ("dora", "e2e", "deployment_generator")
REFDIFF = ("refdiff", "e2e", "deployment_commit_diff")

# DevLake's environment names to ours; an empty environment stays empty.
ENVIRONMENTS = {"PRODUCTION": "production", "STAGING": "staging", "": ""}
STATUSES = {"SUCCESS": "success", "FAILURE": "failure"}


def devlake_csv(*parts: str) -> list[dict[str, str]]:
    """The rows of one fixture CSV (skipped when ../shared is absent, failed on CI)."""
    path = shared_data(*DEVLAKE, *parts)
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def utc(text: str) -> datetime | None:
    """A fixture time: ISO with an offset, or ``YYYY-M-D H:MM:SS`` read as UTC; "" is None."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")  # unpadded month/day/hour
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def project_of(mapping: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    """(table, row id) -> project name, from a ``project_mapping.csv``."""
    return {(row["table"], row["row_id"]): row["project_name"] for row in mapping}


def in_project(row: dict[str, str], projects: dict[tuple[str, str], str], name: str) -> bool:
    """Whether a deployment-commit row's CI scope belongs to project ``name``."""
    return projects.get(("cicd_scopes", row["cicd_scope_id"])) == name


def worker_of(row: dict[str, str]) -> str:
    """Our worker for a DevLake (scope, repo): DevLake chains deployments per
    (cicd_scope, repo_url, environment); we group by (environment, worker)."""
    return f"{row['cicd_scope_id']}/{row['repo_url']}"


def deployment_of_row(row: dict[str, str], time_column: str = "finished_date") -> Deployment:
    """One deployment-commit row as our Deployment: id = row id, worker = scope/repo,
    created_on = the row's finish time (when it took effect)."""
    return Deployment(
        deployment_id=row["id"],
        worker=worker_of(row),
        environment=ENVIRONMENTS[row["environment"]],
        created_on=utc(row[time_column]),
        version_id=row["id"],
        percentage=100.0,
        commit_sha=row["commit_sha"] or None,
        status=STATUSES[row["result"]],
    )


def ceil_minutes(start: datetime, end: datetime) -> int | None:
    """A DevLake span: whole minutes rounded up; a negative span is None (dropped)."""
    minutes = (end - start) / timedelta(minutes=1)
    return None if minutes < 0 else math.ceil(minutes)


def synthetic_commit(sha: str, author_time: datetime, *parents: str) -> Commit:
    return Commit(sha, parents, author_time, author_time, "dev@devlake.invalid", sha)


def refdiff_commits() -> list[Commit]:
    """D5's graph from ``commit_parents.csv`` (child -> parent). The times are
    synthetic (one hour apart, in first-seen order); nothing here reads them."""
    edges = devlake_csv(*REFDIFF, "commit_parents.csv")
    parents: dict[str, list[str]] = {}
    for edge in edges:
        for sha in (edge["commit_sha"], edge["parent_commit_sha"]):
            parents.setdefault(sha, [])
        parents[edge["commit_sha"]].append(edge["parent_commit_sha"])
    start = datetime(2023, 4, 1, tzinfo=UTC)
    return [
        synthetic_commit(sha, start + timedelta(hours=n), *above)
        for n, (sha, above) in enumerate(parents.items())
    ]


def lead_time_commits() -> list[Commit]:
    """D1's graph, synthetic but faithful to ``commits_diffs.csv``.

    Each PR is a branch of its commits (authored order, real authored dates)
    merged by its ``pr_merge_commitN`` (authored at the PR's merged date). Heads
    of deployment rows are their own commits (authored at the row's
    started_date)::

        cicd1/REPO111 prod:  pr0 ─ pmc0 ─ commit1 ─ pmc1 ─ pmc2 ─ commit5 ─ commit9
                                               └ pr1 ┘    └ pr2 ┘  (forks: commit1, pmc1)
        cicd1/REPO111 stage:                         commit5 ─ commit7 ─ pmc4 ─ commit8  (+ pr4)
        cicd1/REPO222 prod:  commit2 ─ pmc3 ─ commit6 ─ commit10                         (+ pr3)
        cicd2/REPO111:       commit3 ─ commit13;   pr5 ─ pmc5 ─ commit11 (FAILURE)
        cicd2/REPO333:       commit4 ─ commit12

    So commit1 holds pmc0; commit5 over commit1 holds pmc1 and pmc2; commit6 over
    commit2 holds pmc3; commit8 over commit7 holds pmc4; commit11 holds pmc5, as
    the fixture's diffs say, and no other production head reaches a PR's merge.
    """
    prs = {row["id"]: row for row in devlake_csv(*LEAD_TIME, "pull_requests.csv")}
    rows = {
        row["commit_sha"]: row for row in devlake_csv(*LEAD_TIME, "cicd_deployment_commits.csv")
    }
    by_pr: dict[str, list[tuple[datetime, str]]] = {}
    for row in devlake_csv(*LEAD_TIME, "pull_request_commits.csv"):
        by_pr.setdefault(row["pull_request_id"], []).append(
            (utc(row["commit_authored_date"]), row["commit_sha"])
        )
    commits: list[Commit] = []

    def head(sha: str, *parents: str) -> str:
        commits.append(synthetic_commit(sha, utc(rows[sha]["started_date"]), *parents))
        return sha

    def merged(pr: str, fork: str | None, mainline: str | None) -> str:
        """The PR's commits chained from ``fork``, merged onto ``mainline``."""
        tip = fork
        for authored, sha in sorted(by_pr[pr]):
            commits.append(synthetic_commit(sha, authored, *((tip,) if tip else ())))
            tip = sha
        sha = prs[pr]["merge_commit_sha"]
        parents = tuple(p for p in (mainline, tip) if p)
        commits.append(synthetic_commit(sha, utc(prs[pr]["merged_date"]), *parents))
        return sha

    head("commit1", merged("pr0", None, None))
    head(
        "commit9",
        head("commit5", merged("pr2", "pr_merge_commit1", merged("pr1", "commit1", "commit1"))),
    )
    head("commit8", merged("pr4", "commit7", head("commit7", "commit5")))
    head("commit10", head("commit6", merged("pr3", "commit2", head("commit2"))))
    head("commit13", head("commit3"))
    head("commit11", merged("pr5", None, None))
    head("commit12", head("commit4"))
    return commits
