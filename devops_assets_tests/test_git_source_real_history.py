"""The git reader on workers-sdk's 8k-commit monorepo history, rebuilt locally."""

from __future__ import annotations

import csv
import json
import time
from fnmatch import fnmatchcase

import pytest

from devops_assets.sources.git import first_parent_chain, read_commits, read_tags
from devops_assets_tests.git_fixtures import rebuild_history, shared_data


@pytest.fixture(scope="module")
def workers_sdk(tmp_path_factory):
    folder = shared_data("git-histories", "workers-sdk")
    repo = tmp_path_factory.mktemp("workers-sdk") / "workers-sdk.git"
    new_sha = rebuild_history("workers-sdk", repo)
    with (folder / "tags.csv").open(encoding="utf-8", newline="") as handle:
        tags = [t for t in csv.DictReader(handle) if t["reachable_from_head"] == "true"]
    rows = [json.loads(line) for line in (folder / "commits.jsonl").open(encoding="utf-8")]
    return repo, new_sha, rows, tags


def test_all_8179_commits_are_read_in_one_quick_call(workers_sdk):
    repo, new_sha, _, _ = workers_sdk
    started = time.perf_counter()
    commits = read_commits(repo)
    elapsed = time.perf_counter() - started

    assert {c.sha for c in commits} == set(new_sha.values())
    assert len(commits) == 8179
    assert elapsed < 5, f"reading 8179 commits took {elapsed:.1f} s"


def test_scoped_package_tags_match_globs_across_the_slash(workers_sdk):
    repo, new_sha, _, tags = workers_sdk
    for pattern in ("wrangler@*", "@cloudflare/*", "*"):
        expected = {
            (t["tag"], new_sha[t["target_sha"]]) for t in tags if fnmatchcase(t["tag"], pattern)
        }
        assert {(t.name, t.sha) for t in read_tags(repo, pattern)} == expected
        assert expected, pattern


def test_mainline_is_the_first_parent_chain(workers_sdk):
    repo, new_sha, rows, _ = workers_sdk
    chain = first_parent_chain(repo, "main")
    assert set(chain) == {new_sha[r["sha"]] for r in rows if r["first_parent"]}
    assert chain[-1] == new_sha[rows[0]["sha"]]
