"""The simulated history: deterministic, a real git repository, a believable team."""

from __future__ import annotations

import ast
import json
import re
import statistics
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from devops_assets.emulator import load_history, seed_workspace, simulator
from devops_assets.emulator.gitwrite import git
from devops_assets.emulator.simulator import SimulationError
from devops_assets_tests.emulator_fixtures import demo_config, seeded_config

CONVENTIONAL = re.compile(r"^(feat|fix|chore|docs|refactor|perf|test|ci)(\([a-z0-9-]+\))?!?: \S")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    started = time.perf_counter()
    config, history = seeded_config(root)
    return config, history, time.perf_counter() - started


def _events(history) -> tuple:
    return history.commits, history.builds, history.deployments, history.incidents, history.tags


def test_seeding_six_months_takes_seconds(seeded):
    _, history, seconds = seeded
    assert seconds < 5.0
    assert len(history.commits) > 500
    assert history.end.isoformat() == "2026-11-30T18:00:00+00:00"


def test_same_seed_gives_the_same_shas_and_events(seeded, tmp_path):
    _, first, _ = seeded
    _, again = seeded_config(tmp_path)
    assert _events(again) == _events(first)
    _, other = seeded_config(tmp_path / "other", seed=8)
    assert other.commits[-1]["sha"] != first.commits[-1]["sha"]


def test_reseeding_with_the_same_inputs_reuses_the_workspace(seeded):
    config, history, _ = seeded
    meta = history.state_dir / "meta.json"
    written = meta.stat().st_mtime_ns
    started = time.perf_counter()
    again = seed_workspace(config)
    assert time.perf_counter() - started < 0.5
    assert meta.stat().st_mtime_ns == written
    assert _events(again) == _events(history)
    assert _events(load_history(history.state_dir)) == _events(history)


def test_seeding_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    config = demo_config(tmp_path)
    foreign = tmp_path / "repo"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(SimulationError, match=re.escape(str(foreign))):
        seed_workspace(config)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_half_written_workspace_is_replaced(tmp_path):
    config = demo_config(tmp_path)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "partial").write_text("crashed here", encoding="utf-8")
    (tmp_path / "emulator").mkdir()
    claim = {"fingerprint": None, "repo": config.repository}
    (tmp_path / "emulator" / "meta.json").write_text(json.dumps(claim), encoding="utf-8")
    history = seed_workspace(config)
    assert not (tmp_path / "repo" / "partial").exists()
    last_on_main = [c["sha"] for c in history.commits if c["branch"] == "main"][-1]
    assert git(history.repo, "rev-parse", "main") == last_on_main
    assert json.loads((tmp_path / "emulator" / "meta.json").read_text())["fingerprint"]


def test_every_build_names_a_commit_of_the_repository(seeded):
    _, history, _ = seeded
    shas = sorted({b["commit_sha"] for b in history.builds})
    answer = git(history.repo, "cat-file", "--batch-check", stdin="\n".join(shas).encode())
    kinds = [line.split()[1] for line in answer.splitlines()]
    assert kinds == ["commit"] * len(shas)


def test_git_holds_exactly_the_simulated_commits(seeded):
    _, history, _ = seeded
    log = git(history.repo, "log", "--all", "--format=%H|%P|%at|%ct|%ae|%s")
    in_git = {}
    for line in log.splitlines():
        sha, parents, author_at, commit_at, email, subject = line.split("|", 5)
        in_git[sha] = (parents.split(), int(author_at), int(commit_at), email, subject)
    expected = {
        c["sha"]: (
            c["parents"],
            int(c["author_time"].timestamp()),
            int(c["commit_time"].timestamp()),
            c["author_email"],
            c["subject"],
        )
        for c in history.commits
    }
    assert in_git == expected


def test_branches_left_are_main_hardshell_and_some_features(seeded):
    _, history, _ = seeded
    heads = git(
        history.repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"
    )
    branches = dict(line.split() for line in heads.splitlines())
    last_on = {c["branch"]: c["sha"] for c in history.commits}
    assert branches["main"] == last_on["main"]
    assert branches["hardshell"] == last_on["hardshell"]
    features = [b for b in branches if b.startswith("feature/")]
    assert 2 <= len(features) <= 20
    assert git(history.repo, "symbolic-ref", "--short", "HEAD") == "main"


def test_features_merge_into_hardshell_and_hardshell_into_main(seeded):
    _, history, _ = seeded
    branch_of = {c["sha"]: c["branch"] for c in history.commits}
    merges = [c for c in history.commits if len(c["parents"]) == 2]
    into_staging = [c for c in merges if c["branch"] == "hardshell"]
    into_main = [c for c in merges if c["branch"] == "main"]
    assert all(branch_of[c["parents"][1]].startswith("feature/") for c in into_staging)
    assert all(branch_of[c["parents"][1]] == "hardshell" for c in into_main)
    assert len(into_staging) > 100 and len(into_main) > 40
    assert int(git(history.repo, "rev-list", "--merges", "--count", "main")) > 100


def test_commit_subjects_follow_conventional_commits(seeded):
    _, history, _ = seeded
    plain = [c["subject"] for c in history.commits if len(c["parents"]) < 2]
    assert [s for s in plain if not CONVENTIONAL.match(s)] == []
    assert any("!:" in s for s in plain)  # one breaking change


def test_builds_mostly_succeed_in_a_few_minutes(seeded):
    _, history, _ = seeded
    finished = [b for b in history.builds if b["outcome"] is not None]
    outcomes = Counter(b["outcome"] for b in finished)
    assert 0.93 <= outcomes["success"] / len(finished) <= 0.99
    assert outcomes["fail"] >= 5 and outcomes["cancelled"] >= 2
    seconds = [(b["stopped_on"] - b["running_on"]).total_seconds() for b in finished]
    ok = sorted(s for s, b in zip(seconds, finished, strict=True) if b["outcome"] == "success")
    assert 90 <= statistics.median(ok) <= 240
    assert 0.03 <= sum(s > 300 for s in ok) / len(ok) <= 0.2
    assert all(b["created_on"] < b["running_on"] < b["stopped_on"] for b in finished)


def test_one_build_is_still_running_at_the_end(seeded):
    _, history, _ = seeded
    running = [b for b in history.builds if b["outcome"] is None]
    assert [(b["worker"], b["status"], b["stopped_on"]) for b in running] == [
        ("moltworker-staging", "running", None)
    ]


def test_each_successful_build_deploys_its_commit_to_its_worker(seeded):
    _, history, _ = seeded
    deployed = {
        (d["worker"], d["commit_sha"]) for d in history.deployments if d["kind"] == "deploy"
    }
    for build in history.builds:
        if build["outcome"] == "success":
            assert (build["worker"], build["commit_sha"]) in deployed
    assert {d["worker"] for d in history.deployments} == {"moltworker", "moltworker-staging"}


def test_production_deploys_two_to_four_times_a_week(seeded):
    _, history, _ = seeded
    deploys = [
        d for d in history.deployments if d["environment"] == "production" and d["kind"] == "deploy"
    ]
    weeks = (history.end - history.deployments[0]["created_on"]).days / 7
    assert 2.0 <= len(deploys) / weeks <= 4.0


def test_rollbacks_serve_the_version_before_the_bad_deployment(seeded):
    _, history, _ = seeded
    production = [d for d in history.deployments if d["environment"] == "production"]
    rollbacks = [i for i, d in enumerate(production) if d["kind"] == "rollback"]
    assert len(rollbacks) == 4
    for i in rollbacks:
        rollback, bad, before = production[i], production[i - 1], production[i - 2]
        assert rollback["version_number"] < bad["version_number"]
        assert rollback["version_id"] == before["version_id"]
        assert rollback["commit_sha"] == before["commit_sha"]


def test_incidents_follow_bad_deployments_and_are_resolved(seeded):
    _, history, _ = seeded
    deployments = {d["id"]: d for d in history.deployments}
    assert Counter(i["environment"] for i in history.incidents) == {"production": 5, "staging": 1}
    for incident in history.incidents:
        bad = deployments[incident["deployment_id"]]
        assert bad["environment"] == incident["environment"]
        assert bad["created_on"] < incident["opened_at"] < incident["resolved_at"]
        assert incident["resolved_at"] - incident["opened_at"] < timedelta(hours=12)
    recent = history.end - timedelta(days=30)
    assert sum(i["opened_at"] >= recent for i in history.incidents) == 1


def test_the_fingerprint_covers_every_module_the_simulator_imports():
    """A change to any generating module must regenerate an existing demo workspace."""
    here = Path(simulator.__file__).parent
    seen, todo = set(), ["simulator.py"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((here / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "devops_assets.emulator":
                todo += [f"{alias.name}.py" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "devops_assets.emulator."
            ):
                todo.append(node.module.rsplit(".", 1)[1] + ".py")
    assert "tags.py" in seen
    assert sorted(seen) == sorted(simulator.GENERATOR_FILES)
