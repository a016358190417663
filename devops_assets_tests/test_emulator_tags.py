"""The releaser's hand-made tags in the simulated repository, checked against git itself."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest

from devops_assets.emulator import load_history
from devops_assets.emulator.gitwrite import git
from devops_assets.emulator.simulator import SimulationError
from devops_assets_tests.emulator_fixtures import seeded_config

VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
REF_FORMAT = "%(refname:short)|%(objecttype)|%(taggeremail)|%(taggerdate:iso-strict)"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    _, seeded = seeded_config(tmp_path_factory.mktemp("tags"))
    return seeded


def _annotated(history) -> list[dict]:
    return [t for t in history.tags if t["annotated"]]


def _production_deploys(history) -> list[dict]:
    return [
        d for d in history.deployments if d["environment"] == "production" and d["kind"] == "deploy"
    ]


def _refs(history) -> dict[str, list[str]]:
    """Tag name → object type, tagger email and tagger date, as git reports them."""
    out = git(history.repo, "for-each-ref", f"--format={REF_FORMAT}", "refs/tags")
    return {line.split("|")[0]: line.split("|")[1:] for line in out.splitlines()}


def test_the_demo_has_one_annotated_tag_per_production_deploy_and_one_lightweight(history):
    annotated = _annotated(history)
    assert len(history.tags) == 76
    assert len(annotated) == len(_production_deploys(history)) == 75
    assert [t["name"] for t in history.tags if not t["annotated"]] == ["baseline"]
    assert sorted(_refs(history)) == sorted(t["name"] for t in history.tags)


def test_versions_increase_from_one_and_the_breaking_change_bumps_major(history):
    versions = [tuple(map(int, VERSION.match(t["name"]).groups())) for t in _annotated(history)]
    assert versions[:3] == [(1, 0, 0), (1, 0, 1), (1, 0, 2)]
    assert versions == sorted(set(versions))
    assert [v for v in versions if v[1:] == (0, 0)] == [(1, 0, 0), (2, 0, 0)]
    assert versions[-1] == (2, 29, 1)


def test_each_annotated_tag_is_a_tag_object_on_its_deployed_commit(history):
    deploys = {d["id"]: d for d in _production_deploys(history)}
    refs = _refs(history)
    names = [t["name"] for t in _annotated(history)]
    peeled = git(history.repo, "rev-parse", *(f"{n}^{{commit}}" for n in names)).splitlines()
    for tag, sha in zip(_annotated(history), peeled, strict=True):
        deploy = deploys[tag["deployment_id"]]
        kind, email, tagged = refs[tag["name"]]
        assert (kind, email) == ("tag", "<mara@moltworker.example>")
        assert sha == tag["sha"] == deploy["commit_sha"]
        assert datetime.fromisoformat(tagged) == tag["time"]
        delay = tag["time"] - deploy["created_on"]
        assert timedelta(minutes=1) < delay < timedelta(minutes=26), tag["name"]
    assert git(history.repo, "cat-file", "-t", "v2.0.0") == "tag"


def test_no_tag_marks_a_rollback_or_a_staging_deployment(history):
    others = {d["id"] for d in history.deployments} - {
        d["id"] for d in _production_deploys(history)
    }
    assert len(others) > 200
    assert others.isdisjoint(t["deployment_id"] for t in history.tags)


def test_the_baseline_tag_is_lightweight_on_the_imported_commit(history):
    root = history.commits[0]
    baseline = history.tags[0]
    assert baseline == {
        "name": "baseline",
        "sha": root["sha"],
        "annotated": False,
        "time": root["commit_time"],
        "deployment_id": None,
    }
    assert git(history.repo, "cat-file", "-t", "baseline") == "commit"
    assert git(history.repo, "rev-parse", "baseline") == root["sha"]
    assert _refs(history)["baseline"] == ["commit", "", ""]


def test_the_annotated_tag_message_names_the_worker_and_the_deployment(history):
    message = git(history.repo, "tag", "-l", "--format=%(contents)", "v2.0.0")
    assert re.fullmatch(
        r"moltworker v2\.0\.0\n\nDeployed to production \d{4}-\d\d-\d\d \d\d:\d\d UTC; "
        r"\d+ new commits\.",
        message,
    )


def test_an_events_file_from_before_tags_reads_back_without_tags(history, tmp_path):
    body = json.loads((history.state_dir / "events.json").read_text(encoding="utf-8"))
    del body["tags"]
    (tmp_path / "events.json").write_text(json.dumps(body), encoding="utf-8")
    older = load_history(tmp_path)
    assert older.tags == []
    assert older.commits == history.commits


def test_an_events_file_without_commits_is_refused_naming_the_file(history, tmp_path):
    body = json.loads((history.state_dir / "events.json").read_text(encoding="utf-8"))
    del body["commits"]
    (tmp_path / "events.json").write_text(json.dumps(body), encoding="utf-8")
    with pytest.raises(SimulationError, match=r"events\.json: expected the lists \['commits'\]"):
        load_history(tmp_path)
