"""``devops-assets report`` on repositories and servers that misbehave: one line, exit 2."""

from __future__ import annotations

import json
import time

from devops_assets.sources import git as git_source
from devops_assets_tests.git_fixtures import (
    commit,
    git,
    init_repo,
    raw_commit,
    raw_tag,
    run_report,
    silent_server,
)

GOOD = "Ada <ada@x> 1704103200 +0000"  # 2024-01-01T10:00:00Z


def test_a_server_that_never_answers_exits_2_after_the_network_timeout(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("DEVOPS_ASSETS_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(git_source, "NETWORK_TIMEOUT", 1.0)
    with silent_server() as (port, _):
        started = time.monotonic()
        code, out, err = run_report(capsys, "--repo", f"http://127.0.0.1:{port}/x.git")

    assert (code, out) == (2, "")
    assert time.monotonic() - started < 10
    assert err.startswith("devops-assets report: git clone in ")
    assert err.endswith(
        f"(cloning http://127.0.0.1:{port}/x.git) did not finish within 1 s; stopped it\n"
    )


def test_a_commit_dated_after_year_9998_exits_2_naming_it(capsys, tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = raw_commit(repo, "A <a@x> 999999999999 +0000")
    git(repo, "update-ref", "refs/heads/main", sha)

    code, out, err = run_report(capsys, "--repo", str(repo), "--deploy-branch", "main")
    assert (code, out) == (2, "")
    assert err == (
        f"devops-assets report: author date of commit {sha} in {repo} "
        "is after 9998, too late to be stored: '999999999999 +0000'\n"
    )


def test_a_tag_with_an_impossible_time_zone_exits_2_naming_it(capsys, tmp_path):
    repo = init_repo(tmp_path / "repo")
    target = raw_commit(repo, GOOD, GOOD)
    git(repo, "update-ref", "refs/heads/main", target)
    raw_tag(repo, "v1.0.0", target, "R <r@x> 1704103200 +2400")

    code, out, err = run_report(capsys, "--repo", str(repo))
    assert (code, out) == (2, "")
    assert err == (
        f"devops-assets report: tagger date of tag 'v1.0.0' in {repo} "
        "has an impossible time zone +2400: '1704103200 +2400'\n"
    )


def test_tags_whose_names_hold_unicode_line_separators_are_deployments(capsys, tmp_path):
    repo = init_repo(tmp_path / "repo")
    first = commit(repo, "feat: one", when="2024-01-01T00:00:00+00:00")
    second = commit(
        repo, "feat: two", (first,), "2024-01-02T00:00:00+00:00", "2024-01-02T01:00:00+00:00"
    )
    git(repo, "update-ref", "refs/heads/main", second)
    git(repo, "update-ref", "refs/tags/v1\u2028one", first)
    git(repo, "update-ref", "refs/tags/v2\x85two", second)

    code, out, err = run_report(capsys, "--repo", str(repo), "--format", "json")
    rows = {row["metric"]: row["value"] for row in json.loads(out)["metrics"]}
    assert (code, err) == (0, "")
    # v1 is the baseline; v2 ships "two", authored 1 h before its commit (the tag's time).
    assert (rows["deployment_count"], rows["lead_time_p50"]) == (2, 3600)
