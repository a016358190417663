"""The Cloudflare source against the emulator over loopback HTTP: records and paging."""

from __future__ import annotations

import dataclasses
import math

import pytest

from devops_assets.emulator import EMULATOR_TOKEN, running_server
from devops_assets.sources.cloudflare import CloudflareClient, CloudflareError, client_from_settings
from devops_assets_tests.emulator_fixtures import worker_tag


@pytest.fixture
def client(app):
    with running_server(app) as base_url:
        yield CloudflareClient(
            app.state.account_id, EMULATOR_TOKEN, base_url, backoff_seconds=0.001
        )


def _truth(build: dict) -> tuple:
    return (
        build["uuid"],
        build["worker"],
        build["branch"],
        build["commit_sha"],
        build["status"],
        build["outcome"],
        build["created_on"],
        build["running_on"],
        build["stopped_on"],
    )


def _record(build) -> tuple:
    return (
        build.build_uuid,
        build.worker,
        build.branch,
        build.commit_sha,
        build.status,
        build.outcome,
        build.created_on,
        build.started_on,
        build.stopped_on,
    )


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_list_builds_returns_the_ground_truth_newest_first(client, seeded, environment):
    config, history = seeded
    worker, tag = worker_tag(config, environment)
    builds = client.list_builds(worker, tag, per_page=200)
    expected = [_truth(b) for b in history.builds if b["worker"] == worker][::-1]
    assert [_record(b) for b in builds] == expected


def test_an_incremental_listing_stops_paging_at_the_last_known_build(client, app, seeded):
    config, history = seeded
    worker, tag = worker_tag(config, "staging")
    newest_first = [b for b in history.builds if b["worker"] == worker][::-1]
    app.clear_requests()
    everything = client.list_builds(worker, tag, per_page=5)
    assert app.count("/builds$") == math.ceil(len(newest_first) / 5) and len(everything) > 200

    app.clear_requests()
    new = client.list_builds(worker, tag, newer_than=newest_first[7]["created_on"], per_page=5)
    assert [b.build_uuid for b in new] == [b["uuid"] for b in newest_first[:7]]
    assert [r.query["page"] for r in app.requests] == [["1"], ["2"]]

    app.clear_requests()
    assert client.list_builds(worker, tag, newer_than=newest_first[0]["created_on"]) == []
    assert app.count("/builds$") == 1


def test_a_running_build_is_seen_running_then_fetched_again_finished(client, app, seeded):
    config, history = seeded
    worker, tag = worker_tag(config, "production")
    newest = max(b["created_on"] for b in history.builds if b["worker"] == worker)
    added = app.add_build(worker, "main", "b" * 40)
    [running] = client.list_builds(worker, tag, newer_than=newest)
    assert (running.build_uuid, running.status, running.outcome, running.finished) == (
        added["build_uuid"],
        "running",
        None,
        False,
    )
    app.finish_build(added["build_uuid"], "success")
    done = client.get_build(added["build_uuid"], worker)
    assert (done.status, done.outcome, done.finished) == ("stopped", "success", True)
    assert done.duration_seconds > 0


def test_a_build_log_is_read_by_following_the_cursor(client, app, seeded):
    failed = next(b for b in seeded[1].builds if b["outcome"] == "fail")
    app.clear_requests()
    lines = client.build_log(failed["uuid"])
    assert lines == [tuple(line) for line in app.state.logs[failed["uuid"]]]
    assert lines[-1][1].startswith("Failed: ")
    assert app.count("/logs$") == math.ceil(len(lines) / app.log_page_lines) >= 2


def test_builds_are_looked_up_by_version_twenty_ids_at_a_time(client, app, seeded):
    history = seeded[1]
    deploys = [d for d in history.deployments if d["kind"] == "deploy"][:45]
    app.clear_requests()
    found = client.builds_for_versions([d["version_id"] for d in deploys], worker="moltworker")
    assert app.count(r"/builds/builds$") == 3
    assert {v: b.commit_sha for v, b in found.items()} == {
        d["version_id"]: d["commit_sha"] for d in deploys
    }


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_worker_deployments_carry_commits_and_rollbacks(client, seeded, environment):
    config, history = seeded
    worker, tag = worker_tag(config, environment)
    records = client.worker_deployments(worker, tag, environment)
    expected = [d for d in history.deployments if d["worker"] == worker][::-1]
    assert [
        (r.deployment_id, r.version_id, r.commit_sha, r.kind, r.created_on) for r in records
    ] == [(d["id"], d["version_id"], d["commit_sha"], d["kind"], d["created_on"]) for d in expected]
    assert {(r.environment, r.worker, r.percentage) for r in records} == {
        (environment, worker, 100.0)
    }


def test_an_older_version_at_100_percent_is_a_rollback_without_the_annotation(client, app):
    versions = client.list_versions("moltworker")
    newer, older = versions[0], versions[3]
    served = [
        _deployment("d2", "2026-12-01T10:00:00Z", older["id"], "deployment"),
        _deployment("d1", "2026-12-01T09:00:00Z", newer["id"], "deployment"),
    ]
    body = {"success": True, "errors": [], "messages": [], "result": {"deployments": served}}
    app.fail_next(r"/moltworker/deployments$", 200, body=body)
    first, second = client.worker_deployments("moltworker", "tag", "production")
    assert [(first.deployment_id, first.kind), (second.deployment_id, second.kind)] == [
        ("d2", "rollback"),
        ("d1", "deploy"),
    ]


def _deployment(id_: str, created: str, version: str, triggered_by: str) -> dict:
    return {
        "id": id_,
        "source": "api",
        "strategy": "percentage",
        "created_on": created,
        "annotations": {"workers/triggered_by": triggered_by},
        "versions": [{"version_id": version, "percentage": 100}],
    }


def test_a_new_deployment_is_created_and_listed_first(client):
    versions = client.list_versions("moltworker")
    assert [v["number"] for v in versions] == sorted((v["number"] for v in versions), reverse=True)
    created = client.create_deployment(
        "moltworker", [(versions[1]["id"], 100)], message="roll back the last deployment"
    )
    listed = client.list_deployments("moltworker")[0]
    assert listed == created
    assert (created["triggered_by"], created["message"], created["versions"]) == (
        "rollback",
        "roll back the last deployment",
        [(versions[1]["id"], 100.0)],
    )


def test_token_verification_uses_the_sdk_typed_call(client, app):
    app.clear_requests()
    assert client.verify_token() == "active"
    assert [(r.method, r.path) for r in app.requests] == [("GET", "/client/v4/user/tokens/verify")]


def test_the_demo_settings_serve_the_emulator_in_process(seeded):
    config, history = seeded
    client = client_from_settings(config.cloudflare, None)
    worker, tag = worker_tag(config, "production")
    builds = client.list_builds(worker, tag)
    assert len(builds) == sum(b["worker"] == worker for b in history.builds)
    assert "emulator.invalid" in repr(client)


def test_real_settings_without_a_token_name_the_environment_variable(seeded):
    settings = dataclasses.replace(
        seeded[0].cloudflare, api_base_url="https://api.cloudflare.com/client/v4"
    )
    with pytest.raises(CloudflareError, match="set the environment variable CLOUDFLARE_API_TOKEN"):
        client_from_settings(settings, None)
    with pytest.raises(CloudflareError, match="api_token is empty"):
        CloudflareClient("a" * 32, "", "http://127.0.0.1:9/client/v4")
