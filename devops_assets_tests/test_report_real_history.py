"""``report`` on commitizen's real history, rebuilt with git fast-import.

The window Dec 2018 .. May 2019 holds ten release tags, one of them
(v1.0.0b1) on a side branch merged later, and true merge commits. The
expected numbers come from a brute force that asks ``git merge-base
--is-ancestor`` for every (commit, tag) pair, with no lineage code involved.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
from datetime import datetime

import pytest

from devops_assets.sources.git import read_commits, read_tags
from devops_assets_tests.git_fixtures import GIT_ENV, git, rebuild_history, run_report, shared_data

NAME = "commitizen"
SINCE = datetime.fromisoformat("2018-12-01T00:00:00+00:00")
UNTIL = datetime.fromisoformat("2019-05-01T00:00:00+00:00")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """(rebuilt repo, original → rebuilt sha, original commit rows, reachable tag rows)."""
    folder = shared_data("git-histories", NAME)
    repo = tmp_path_factory.mktemp("history") / f"{NAME}.git"
    new_sha = rebuild_history(NAME, repo)
    rows = [json.loads(line) for line in (folder / "commits.jsonl").open(encoding="utf-8")]
    with (folder / "tags.csv").open(encoding="utf-8", newline="") as handle:
        tags = [t for t in csv.DictReader(handle) if t["reachable_from_head"] == "true"]
    return repo, new_sha, rows, tags


def test_rebuilt_history_has_the_original_graph_times_and_subjects(history):
    repo, new_sha, rows, tags = history
    old_sha = {new: old for old, new in new_sha.items()}
    read = {old_sha[c.sha]: c for c in read_commits(repo)}

    assert len(set(new_sha.values())) == len(rows) == len(read) == 2541
    for row in rows:
        got = read[row["sha"]]
        assert " ".join(old_sha[p] for p in got.parents) == row["parents"]
        assert got.author_time.isoformat() == row["author_time"]
        assert got.commit_time.isoformat() == row["commit_time"]
        assert got.subject == row["subject"].rstrip("\r")
    assert sum(len(c.parents) > 1 for c in read.values()) == 207
    assert {(t.name, old_sha[t.sha]) for t in read_tags(repo)} == {
        (t["tag"], t["target_sha"]) for t in tags
    }


def is_ancestor(repo, commit: str, descendant: str) -> bool:
    done = subprocess.run(  # noqa: S603 (argument list, no shell)
        ["git", "-C", str(repo), "merge-base", "--is-ancestor", commit, descendant],
        env=GIT_ENV,
        check=False,
    )
    assert done.returncode in (0, 1), f"merge-base failed for {commit} {descendant}"
    return done.returncode == 0


def brute_force_lead_times(history) -> tuple[int, list[float]]:
    """Deployments in the window, and lead times (s) of the commits they first shipped."""
    repo, new_sha, rows, tags = history
    authored = {new_sha[r["sha"]]: datetime.fromisoformat(r["author_time"]) for r in rows}
    releases = [
        (datetime.fromisoformat(t["tag_date"]), t["tag"], new_sha[t["target_sha"]])
        for t in tags
        if t["tag"].startswith("v")
    ]
    releases = sorted(r for r in releases if r[0] < UNTIL)  # time order, then name
    in_window = [r for r in releases if r[0] >= SINCE]
    # Only an ancestor of a tag in the window can be first shipped by one.
    candidates = git(repo, "rev-list", *(sha for _, _, sha in in_window)).split()
    spans = []
    for commit in candidates:
        for index, (when, _, sha) in enumerate(releases):
            if is_ancestor(repo, commit, sha):
                if index > 0 and when >= SINCE:  # index 0 is the baseline
                    spans.append((when - authored[commit]).total_seconds())
                break
    return len(in_window), spans


def test_report_matches_brute_force_ancestry_in_the_window(history, capsys):
    repo = history[0]
    argv = ["--repo", str(repo), "--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
    code, out, err = run_report(capsys, *argv, "--format", "json")
    assert (code, err) == (0, "")
    values = {row["metric"]: row["value"] for row in json.loads(out)["metrics"]}

    count, spans = brute_force_lead_times(history)
    assert (count, len(spans)) == (10, 49)
    assert values["deployment_count"] == count
    assert values["lead_time_p50"] == statistics.median(spans) == 6164.0
    assert values["lead_time_mean"] == pytest.approx(statistics.fmean(spans))
