"""The emulator app: the API's paths, envelopes and paging, and its test controls.

Every answer a test receives here is validated against the OpenAPI subset.
"""

from __future__ import annotations

import shutil

import pytest
from jsonschema import ValidationError

from devops_assets.emulator import load_app
from devops_assets_tests.emulator_fixtures import Api, worker_tag


def test_the_spec_check_rejects_an_undocumented_shape(spec):
    path = "/client/v4/accounts/a/builds/builds/b"
    wrong = {"success": True, "errors": [], "messages": [], "result": {"status": "done"}}
    with pytest.raises(ValidationError, match="'done' is not one of"):
        spec.validate("GET", path, 200, wrong)
    low_code = {"success": False, "errors": [{"code": 12, "message": "x"}], "messages": []}
    with pytest.raises(ValidationError, match="less than the minimum of 1000"):
        spec.validate(
            "GET",
            "/client/v4/accounts/a/workers/scripts/s/versions",
            404,
            {**low_code, "result": None},
        )


def test_builds_are_listed_newest_first_with_page_info(api, seeded):
    config, history = seeded
    worker, tag = worker_tag(config, "staging")
    expected = [b["uuid"] for b in history.builds if b["worker"] == worker][::-1]
    seen, page = [], 1
    while True:
        body = api.call(
            "GET",
            f"/accounts/{{account}}/builds/workers/{tag}/builds",
            params={"page": page, "per_page": 50},
        )
        seen += [b["build_uuid"] for b in body["result"]]
        info = body["result_info"]
        assert (info["page"], info["per_page"], info["count"]) == (page, 50, len(body["result"]))
        assert (info["total_count"], info["total_pages"]) == (
            len(expected),
            -(-len(expected) // 50),
        )
        if not info["next_page"]:
            break
        page += 1
    assert seen == expected
    beyond = api.call(
        "GET",
        f"/accounts/{{account}}/builds/workers/{tag}/builds",
        params={"page": page + 1, "per_page": 50},
    )
    assert beyond["result"] == [] and beyond["result_info"]["next_page"] is False


def test_a_build_its_log_and_the_batch_lookups_answer_in_shape(api, app, seeded):
    config, history = seeded
    _, tag = worker_tag(config, "production")
    production = [b for b in history.builds if b["worker"] == "moltworker"]
    build = api.call("GET", f"/accounts/{{account}}/builds/builds/{production[-1]['uuid']}")
    assert build["result"]["build_trigger_metadata"]["commit_hash"] == production[-1]["commit_sha"]

    lines, cursor = [], None
    while True:
        page = api.call(
            "GET",
            f"/accounts/{{account}}/builds/builds/{production[-1]['uuid']}/logs",
            params={"cursor": cursor} if cursor else None,
        )["result"]
        lines += page["lines"]
        if not page["truncated"]:
            break
        cursor = page["cursor"]
    assert lines == app.state.logs[production[-1]["uuid"]] and len(lines) > 10
    assert lines[-1][1] == "Success: Build completed"

    versions = [d["version_id"] for d in history.deployments if d["worker"] == "moltworker"][:3]
    by_version = api.call(
        "GET", "/accounts/{account}/builds/builds", params={"version_ids": ",".join(versions)}
    )
    assert sorted(by_version["result"]["builds"]) == sorted(set(versions))
    latest = api.call(
        "GET", "/accounts/{account}/builds/builds/latest", params={"external_script_ids": tag}
    )
    assert latest["result"]["builds"][tag]["build_uuid"] == production[-1]["uuid"]
    triggers = api.call("GET", f"/accounts/{{account}}/builds/workers/{tag}/triggers")
    assert triggers["result"][0]["branch_includes"] == ["main"]


def test_versions_deployments_service_and_token_answer_in_shape(api, seeded):
    config, history = seeded
    worker, tag = worker_tag(config, "production")
    deployments = [d for d in history.deployments if d["worker"] == worker]
    listed = api.call(
        "GET", f"/accounts/{{account}}/workers/scripts/{worker}/versions", params={"per_page": 5}
    )
    numbers = [v["number"] for v in listed["result"]["items"]]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 5
    assert listed["result_info"]["total_count"] == max(d["version_number"] for d in deployments)
    version_id = listed["result"]["items"][0]["id"]
    detail = api.call(
        "GET", f"/accounts/{{account}}/workers/scripts/{worker}/versions/{version_id}"
    )
    assert detail["result"]["resources"]["script"]["handlers"] == ["fetch"]

    served = api.call("GET", f"/accounts/{{account}}/workers/scripts/{worker}/deployments")
    assert [d["id"] for d in served["result"]["deployments"]] == [d["id"] for d in deployments][
        ::-1
    ]
    service = api.call("GET", f"/accounts/{{account}}/workers/services/{worker}")
    assert service["result"]["default_environment"]["script"]["tag"] == tag
    verified = api.call("GET", "/user/tokens/verify")
    assert verified["result"]["status"] == "active"
    assert api.last.headers["Ratelimit-Policy"] == '"default";q=1200;w=300'


def test_a_new_deployment_is_served_first_and_older_versions_count_as_rollbacks(api, seeded):
    worker = "moltworker"
    items = api.call(
        "GET", f"/accounts/{{account}}/workers/scripts/{worker}/versions", params={"per_page": 3}
    )["result"]["items"]
    body = {
        "strategy": "percentage",
        "annotations": {"workers/message": "back to the last good"},
        "versions": [{"version_id": items[1]["id"], "percentage": 100}],
    }
    created = api.call(
        "POST", f"/accounts/{{account}}/workers/scripts/{worker}/deployments", json=body
    )
    assert created["result"]["annotations"]["workers/triggered_by"] == "rollback"
    split = {
        "strategy": "percentage",
        "versions": [
            {"version_id": items[0]["id"], "percentage": 10},
            {"version_id": items[1]["id"], "percentage": 90},
        ],
    }
    canary = api.call(
        "POST", f"/accounts/{{account}}/workers/scripts/{worker}/deployments", json=split
    )
    assert canary["result"]["annotations"]["workers/triggered_by"] == "deployment"
    served = api.call("GET", f"/accounts/{{account}}/workers/scripts/{worker}/deployments")
    newest = [d["id"] for d in served["result"]["deployments"][:2]]
    assert newest == [canary["result"]["id"], created["result"]["id"]]
    assert created["result"]["created_on"] < canary["result"]["created_on"]


def test_the_request_log_keeps_method_path_and_query(api, app):
    app.clear_requests()
    api.call("GET", "/user/tokens/verify", params={"a": "1"})
    api.error("GET", "/nowhere", 404)
    assert [(r.method, r.path, r.query) for r in app.requests] == [
        ("GET", "/client/v4/user/tokens/verify", {"a": ["1"]}),
        ("GET", "/client/v4/nowhere", {}),
    ]
    assert app.count(r"/tokens/verify$") == 1 and app.count("", method="POST") == 0


def test_an_added_build_runs_until_a_test_finishes_it(api, app):
    tag = "8ee82b3a2c0f42928b8f14dae4a97121"
    added = app.add_build("moltworker", "main", "a" * 40)
    newest = api.call("GET", f"/accounts/{{account}}/builds/workers/{tag}/builds")["result"][0]
    assert (newest["build_uuid"], newest["status"], newest["build_outcome"]) == (
        added["build_uuid"],
        "running",
        None,
    )
    app.finish_build(added["build_uuid"], "fail")
    done = api.call("GET", f"/accounts/{{account}}/builds/builds/{added['build_uuid']}")["result"]
    assert (done["status"], done["build_outcome"]) == ("stopped", "fail")
    assert done["running_on"] < done["stopped_on"]


def test_persisted_deployments_outlive_the_app(seeded, spec, tmp_path):
    state = shutil.copytree(seeded[1].state_dir, tmp_path / "state")
    first = Api(load_app(state, persist=True), spec)
    items = first.call("GET", "/accounts/{account}/workers/scripts/moltworker/versions")["result"]
    body = {
        "strategy": "percentage",
        "versions": [{"version_id": items["items"][0]["id"], "percentage": 100}],
    }
    path = "/accounts/{account}/workers/scripts/moltworker/deployments"
    created = first.call("POST", path, json=body)["result"]
    reloaded = Api(load_app(state), spec)
    assert reloaded.call("GET", path)["result"]["deployments"][0] == created
    untouched = Api(load_app(seeded[1].state_dir), spec)
    assert untouched.call("GET", path)["result"]["deployments"][0]["id"] != created["id"]
