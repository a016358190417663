"""``devops-assets report`` on a small repository whose numbers are worked out by hand."""

from __future__ import annotations

import json

import pytest

from devops_assets.report import ReportError, measure_repository
from devops_assets_tests.git_fixtures import commit, git, init_repo, run_report

# main: c1 ─ c2 ─ c3 ─ c4 ─ c5, committed one hour after being authored.
AUTHORED = {
    "c1": "2024-01-01T00:00:00+00:00",
    "c2": "2024-01-02T00:00:00+00:00",
    "c3": "2024-01-03T03:00:00+03:00",  # 00:00 UTC, written in another zone
    "c4": "2024-01-05T00:00:00+00:00",
    "c5": "2024-01-06T00:00:00+00:00",
}
COMMITTED = {
    "c1": "2024-01-01T01:00:00+00:00",
    "c2": "2024-01-02T01:00:00+00:00",
    "c3": "2024-01-03T01:00:00+00:00",
    "c4": "2024-01-05T01:00:00+00:00",
    "c5": "2024-01-06T01:00:00+00:00",
}
# Annotated tags, dated by their tagger: v0.1.0 on c1 is the baseline;
# v0.2.0 on c3 ships c2 (48 h) and c3 (24 h); v0.3.0 on c4 ships c4 (12 h).
TAGS = {
    "v0.1.0": ("c1", "2024-01-01T06:00:00+00:00"),
    "v0.2.0": ("c3", "2024-01-04T00:00:00+00:00"),
    "v0.3.0": ("c4", "2024-01-05T12:00:00+00:00"),
    "docs-1": ("c5", "2024-01-06T02:00:00+00:00"),
}
HOUR = 3600


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = init_repo(tmp_path_factory.mktemp("report") / "repo")
    sha, parents = {}, ()
    for name, authored in AUTHORED.items():
        sha[name] = commit(path, f"feat: {name}", parents, authored, COMMITTED[name])
        parents = (sha[name],)
    git(path, "update-ref", "refs/heads/main", sha["c5"])
    for tag, (target, when) in TAGS.items():
        git(path, "tag", "-a", "-m", tag, tag, sha[target], GIT_COMMITTER_DATE=when)
    return path


def metrics_json(capsys, *argv: str) -> dict[str, dict]:
    code, out, err = run_report(capsys, *argv, "--format", "json")
    assert (code, err) == (0, "")
    return {row["metric"]: row for row in json.loads(out)["metrics"]}


def test_default_window_is_the_whole_history(capsys, repo):
    rows = metrics_json(capsys, "--repo", str(repo))
    # From c1's author time to one second after the last deployment (v0.3.0 at Jan 5
    # 12:00; commits after it do not stretch the window): 4 d 12 h 1 s.
    assert rows["deployment_count"]["window_start"] == "2024-01-01T00:00:00+00:00"
    assert rows["deployment_count"]["window_end"] == "2024-01-05T12:00:01+00:00"
    assert rows["deployment_count"]["value"] == 3
    weeks = (4 * 86400 + 12 * HOUR + 1) / (7 * 86400)
    assert rows["deployment_frequency"]["value"] == pytest.approx(3 / weeks)
    # Lead times 48 h, 24 h, 12 h: median 24 h; p90 at rank 1.8 is 24 + 0.8 x 24 = 43.2 h.
    assert rows["lead_time_p50"] == {
        "metric": "lead_time_p50",
        "environment": "production",
        "window_start": "2024-01-01T00:00:00+00:00",
        "window_end": "2024-01-05T12:00:01+00:00",
        "value": 24 * HOUR,
        "unit": "seconds",
        "worker": "",
        "grain": "window",
        "tier": None,  # a window under a week long gets no DORA tier
    }
    assert rows["lead_time_p90"]["value"] == pytest.approx(43.2 * HOUR)
    assert rows["lead_time_mean"]["value"] == 28 * HOUR


def test_since_and_until_bound_the_window(capsys, repo):
    # Only v0.2.0 falls in Jan 3 .. Jan 5 (2/7 week): 3.5 per week; median of 48 h and 24 h.
    rows = metrics_json(
        capsys, "--repo", str(repo), "--since", "2024-01-03", "--until", "2024-01-05"
    )
    assert rows["deployment_count"]["value"] == 1
    assert rows["deployment_frequency"]["value"] == pytest.approx(3.5)
    assert rows["lead_time_p50"]["value"] == 36 * HOUR


def test_until_alone_starts_at_the_first_commit(capsys, repo):
    rows = metrics_json(capsys, "--repo", str(repo), "--until", "2024-01-04T00:00:01Z")
    assert rows["deployment_count"]["window_start"] == "2024-01-01T00:00:00+00:00"
    assert rows["deployment_count"]["value"] == 2


def test_deploy_branch_deploys_each_first_parent_commit_at_its_commit_time(capsys, repo):
    rows = metrics_json(capsys, "--repo", str(repo), "--deploy-branch", "main")
    # c1 is the baseline; c2..c5 are each deployed 1 h after being authored.
    assert rows["deployment_count"]["value"] == 5
    assert rows["lead_time_p50"]["value"] == HOUR
    assert rows["lead_time_mean"]["value"] == HOUR


def test_table_uses_human_units(capsys, repo):
    code, out, _ = run_report(capsys, "--repo", str(repo), "--deploy-tags", "v0.[23].*")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "production, 2024-01-01T00:00:00+00:00 → 2024-01-05T12:00:01+00:00"
    # v0.2.0 is now the baseline, leaving c4's 12 h; 2 deployments / (388,801 s / 604,800 s).
    shown = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert shown["deployment_count"] == ["2"]
    # 4.5 days: too short a window for DORA tiers.
    assert shown["deployment_frequency"] == ["3.11/week"]
    assert shown["lead_time_p50"] == ["12.0", "h"]
    assert shown["lead_time_p90"] == ["12.0", "h"]
    assert shown["lead_time_mean"] == ["12.0", "h"]
    # No incidents or failures in a tag history: no recovery, nothing failed.
    assert shown["change_failure_rate"] == ["0.0", "%"]
    assert shown["failed_deployment_recovery_time_p50"] == ["—"]
    assert shown["time_to_restore_p50"] == ["—"]  # no incidents: nothing to measure


def test_csv_has_the_json_columns(capsys, repo):
    code, out, _ = run_report(
        capsys, "--repo", str(repo), "--since", "2024-01-05", "--format", "csv"
    )
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "metric,environment,worker,grain,window_start,window_end,value,unit,tier"
    window = "2024-01-05T00:00:00+00:00,2024-01-05T12:00:01+00:00"
    assert lines[1] == f"deployment_count,production,,window,{window},1,count,"
    rows = {line.split(",")[0]: line for line in lines[1:]}
    lead = f"lead_time_p50,production,,window,{window},43200.0,seconds,"
    assert rows["lead_time_p50"] == lead


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--since", "yesterday"], "--since"),
        (["--until", "2024-13-01"], "--until"),
        (["--deploy-tags", "release-*"], "release-*"),
        (["--deploy-branch", "nope"], "nope"),
        (["--since", "2030-01-01"], "2030-01-01"),
        (["--deploy-tags", ""], "--deploy-tags: must not be empty"),
        (["--deploy-branch", " "], "--deploy-branch: must not be empty"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(capsys, repo, argv, named):
    code, out, err = run_report(capsys, "--repo", str(repo), *argv)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert named in err


def test_an_empty_repo_option_exits_2_instead_of_measuring_the_current_folder(
    capsys, repo, monkeypatch
):
    monkeypatch.chdir(repo)  # a repository that an empty path would silently measure
    code, out, err = run_report(capsys, "--repo", "")
    assert (code, out, err) == (2, "", "devops-assets report: --repo: must not be empty\n")


def test_an_empty_tag_glob_is_refused_not_replaced_by_the_default(repo):
    with pytest.raises(ReportError, match=r"^no tag matches '' in "):
        measure_repository(repo, deploy_tags="")


def test_a_folder_that_is_no_repository_exits_2(capsys, tmp_path):
    code, _, err = run_report(capsys, "--repo", str(tmp_path))
    assert code == 2
    assert str(tmp_path) in err


def test_a_clone_url_is_mirrored_into_the_workspace_cache_and_reused(
    capsys, repo, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVOPS_ASSETS_HOME", "state")  # relative, as a user might set it
    url = f"file://{repo}"
    from_path = metrics_json(capsys, "--repo", str(repo))

    first = metrics_json(capsys, "--repo", url)
    second = metrics_json(capsys, "--repo", url)

    assert first == second == from_path
    mirrors = list((tmp_path / "state" / "git-cache").iterdir())
    assert len(mirrors) == 1 and mirrors[0].name.endswith(".git")
