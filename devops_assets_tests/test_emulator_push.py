"""Pushes that build: one build per script, a version per successful build, all journaled.

Every answer read through the API here is validated against the OpenAPI subset;
every state folder is a copy of the module's seeded one under ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from devops_assets.emulator import load_app
from devops_assets.emulator.state import JOURNAL_FILE
from devops_assets_tests.emulator_fixtures import Api

SHA = "3f9c2a7d4e1b8c6a5d0e9f8b7a6c5d4e3f2a1b0c"
STAGING_TAG = "5a0e7f3c9b2d4e61a8c7f0b3d2e1c4a9"
PRODUCTION_TAG = "8ee82b3a2c0f42928b8f14dae4a97121"
TAGS = {"moltworker-staging": STAGING_TAG, "moltworker": PRODUCTION_TAG}


@pytest.fixture
def state(seeded, tmp_path):
    """A copy of the seeded state folder this test may change."""
    return shutil.copytree(seeded[1].state_dir, tmp_path / "state")


def _versions(api: Api, script: str) -> list[dict]:
    path = f"/accounts/{{account}}/workers/scripts/{script}/versions"
    return api.call("GET", path, params={"per_page": 100})["result"]["items"]


def _newest_version_numbers(seeded) -> dict[str, int]:
    history = seeded[1]
    return {
        worker: max(d["version_number"] for d in history.deployments if d["worker"] == worker)
        for worker in TAGS
    }


def test_a_successful_push_builds_every_script_and_uploads_one_version_each(seeded, state, spec):
    app = load_app(state, persist=True)
    before = _newest_version_numbers(seeded)

    builds = app.push("main", SHA, "feat(gateway): stream responses\n\nLonger body.")

    assert [TAGS[w] for w in TAGS] == [b["trigger"]["external_script_id"] for b in builds]
    for build in builds:
        meta = build["build_trigger_metadata"]
        assert (build["status"], build["build_outcome"]) == ("stopped", "success")
        assert (meta["build_trigger_source"], meta["branch"], meta["commit_hash"]) == (
            "push",
            "main",
            SHA,
        )
        assert meta["commit_message"] == "feat(gateway): stream responses\n\nLonger body."
        assert meta["deploy_command"].startswith("npx wrangler versions upload")
    api = Api(app, spec)
    for worker, build in zip(TAGS, builds, strict=True):
        newest = _versions(api, worker)[0]
        assert newest["number"] == before[worker] + 1
        assert newest["annotations"] == {
            "workers/triggered_by": "version_upload",
            "workers/message": "feat(gateway): stream responses",
        }
        assert newest["metadata"]["author_email"] == "dev@moltworker.example"
        assert newest["metadata"]["created_on"][:19] == build["stopped_on"][:19]
        found = api.call(
            "GET", "/accounts/{account}/builds/builds", params={"version_ids": newest["id"]}
        )["result"]["builds"]
        assert found[newest["id"]]["build_uuid"] == build["build_uuid"]
        listed = api.call("GET", f"/accounts/{{account}}/builds/workers/{TAGS[worker]}/builds")
        assert listed["result"][0] == build


def test_a_second_process_sees_the_pushed_builds_versions_and_logs(seeded, state, spec):
    first = load_app(state, persist=True)
    builds = first.push("hardshell", SHA, "fix(auth): restore the session cookie path")
    first_versions = {w: first.state.versions[w][-1] for w in TAGS}

    again = Api(load_app(state, persist=True), spec)

    for worker, build in zip(TAGS, builds, strict=True):
        assert _versions(again, worker)[0] == first_versions[worker]
        path = f"/accounts/{{account}}/builds/builds/{build['build_uuid']}"
        assert again.call("GET", path)["result"] == build
        lines = [text for _, text in again.call("GET", f"{path}/logs")["result"]["lines"]]
        assert lines[-3:] == [
            f"Executing user deploy command: {build['build_trigger_metadata']['deploy_command']}",
            f"Worker Version ID: {first_versions[worker]['id']}",
            "Success: Build completed",
        ]
    triggers = again.call("GET", f"/accounts/{{account}}/builds/workers/{STAGING_TAG}/triggers")
    assert triggers["result"][0]["deploy_command"] == "npx wrangler versions upload --env staging"


def test_a_running_build_finished_in_another_process_is_seen_finished_after_reload(
    seeded, state, spec
):
    before = _newest_version_numbers(seeded)
    pusher = load_app(state, persist=True)
    running = pusher.push("main", SHA, "perf: batch KV reads", outcome=None, serves="error")
    assert [(b["status"], b["build_outcome"], b["stopped_on"]) for b in running] == [
        ("running", None, None)
    ] * 2
    assert {w: pusher.state.versions[w][-1]["number"] for w in TAGS} == before

    finisher = load_app(state, persist=True)
    production = running[1]["build_uuid"]
    finisher.finish_build(production, "success")
    finisher.finish_build(running[0]["build_uuid"], "fail")

    reloaded = Api(load_app(state), spec)
    done = reloaded.call("GET", f"/accounts/{{account}}/builds/builds/{production}")["result"]
    assert (done["status"], done["build_outcome"]) == ("stopped", "success")
    assert done["running_on"] < done["stopped_on"]
    newest = _versions(reloaded, "moltworker")[0]
    assert newest["number"] == before["moltworker"] + 1
    assert reloaded.app.state.version_builds[newest["id"]] == production
    assert reloaded.app.state.serves[newest["id"]] == "error"
    assert _versions(reloaded, "moltworker-staging")[0]["number"] == before["moltworker-staging"]


def test_a_failed_push_uploads_no_version(seeded, state):
    app = load_app(state, persist=True)
    before = _newest_version_numbers(seeded)
    builds = app.push("main", SHA, "test: cover auth edge cases", outcome="fail")
    reloaded = load_app(state)
    assert [reloaded.state.builds[b["build_uuid"]]["build_outcome"] for b in builds] == [
        "fail",
        "fail",
    ]
    assert {w: reloaded.state.versions[w][-1]["number"] for w in TAGS} == before
    assert reloaded.state.logs[builds[0]["build_uuid"]][-1][1] == "Build fail"


def test_added_and_finished_builds_are_journaled_when_the_state_persists(state):
    app = load_app(state, persist=True)
    added = app.add_build("moltworker", "main", "a" * 40)
    assert load_app(state).state.builds[added["build_uuid"]]["status"] == "running"

    load_app(state, persist=True).finish_build(added["build_uuid"], "cancelled")

    final = load_app(state)
    assert final.state.builds[added["build_uuid"]]["build_outcome"] == "cancelled"
    assert [text for _, text in final.state.logs[added["build_uuid"]]] == [
        "Initializing build environment...",
        "Build cancelled",
    ]
    entries = [json.loads(line) for line in (state / JOURNAL_FILE).read_text().splitlines()]
    assert [sorted(e) for e in entries] == [["build", "uploads"], ["log"], ["build"], ["log"]]


def test_an_app_that_does_not_persist_writes_no_journal(state):
    app = load_app(state)
    app.push("main", SHA, "chore: tidy the eslint config")
    app.open_incident("staging", "Websocket connections drop on staging")
    assert not (state / JOURNAL_FILE).exists()
    assert len(load_app(state).state.builds) == len(app.state.builds) - 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"branch": ""}, "push: branch must be a git branch name, got ''"),
        ({"branch": "two words"}, "push: branch must be a git branch name, got 'two words'"),
        ({"commit_sha": "abc123"}, "push: commit_sha must be 40 lowercase hex digits"),
        (
            {"commit_sha": SHA.upper()},
            f"push: commit_sha must be 40 lowercase hex digits, got '{SHA.upper()}'",
        ),
        ({"message": "  \n"}, "push: message must be a non-empty commit message"),
        ({"author_email": "nobody"}, "push: author_email must be an email address"),
        ({"outcome": "passed"}, "push: outcome must be one of success, fail, skipped"),
        ({"serves": "maybe"}, "push: serves must be one of ok, error, got 'maybe'"),
        (
            {"serves": {"moltworker-prod": "error"}},
            "push: serves names no script 'moltworker-prod'; known: moltworker-staging, moltworker",
        ),
        (
            {"serves": {"moltworker": "down"}},
            "push: serves['moltworker'] must be one of ok, error, got 'down'",
        ),
    ],
)
def test_push_refuses_a_bad_argument_naming_it(state, change, message):
    app = load_app(state, persist=True)
    count = len(app.state.builds)
    arguments = {"branch": "main", "commit_sha": SHA, "message": "feat: x", **change}
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        app.push(
            arguments.pop("branch"),
            arguments.pop("commit_sha"),
            arguments.pop("message"),
            **arguments,
        )
    assert len(app.state.builds) == count
    assert not (state / JOURNAL_FILE).exists()


def test_finish_build_refuses_an_unknown_outcome(state):
    app = load_app(state)
    added = app.add_build("moltworker", "main", "a" * 40)
    with pytest.raises(ValueError, match="finish_build: outcome must be one of success"):
        app.finish_build(added["build_uuid"], "green")
    assert app.state.builds[added["build_uuid"]]["status"] == "running"
