"""Script settings in the emulator: what the serving version carries, and dashboard edits.

Answers are validated against the OpenAPI subset, except the settings
failure, which the subset documents with a success-only schema (its 4XX
points at ``workers_api-response-common``), so that one is checked by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from devops_assets.emulator import EMULATOR_TOKEN, PREFIX, load_app
from devops_assets.emulator.resources import parse_jsonc
from devops_assets.emulator.wire import ApiError, Request
from devops_assets_tests.emulator_fixtures import Api

PRODUCTION, STAGING = "moltworker", "moltworker-staging"
SETTINGS = "/accounts/{account}/workers/scripts/%s/settings"
DEPLOYMENTS = "/accounts/{account}/workers/scripts/%s/deployments"


@pytest.fixture
def state(seeded, tmp_path):
    return shutil.copytree(seeded[1].state_dir, tmp_path / "state")


def deployed_wrangler(seeded, app, script: str) -> dict:
    """The wrangler file of the commit the serving version was built from."""
    serving = app.state.serving_version(script)
    build = app.state.builds[app.state.version_builds[serving["id"]]]
    sha = build["build_trigger_metadata"]["commit_hash"]
    repo = seeded[0].repository
    text = subprocess.run(
        ["git", "-C", repo, "show", f"{sha}:wrangler.jsonc"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_jsonc(text)


def test_settings_match_the_wrangler_file_of_the_deployed_commit(api, app, seeded):
    for script, environment in ((PRODUCTION, None), (STAGING, "staging")):
        result = api.call("GET", SETTINGS % script)["result"]
        top = deployed_wrangler(seeded, app, script)
        env = top["env"][environment] if environment else top
        assert result["compatibility_date"] == top["compatibility_date"]
        assert result["compatibility_flags"] == top["compatibility_flags"]
        assert (result["usage_model"], result["limits"]) == ("standard", {"cpu_ms": 30000})
        assert (result["logpush"], result["placement"], result["tail_consumers"]) == (False, {}, [])
        [bucket] = env["r2_buckets"]
        [database] = env["d1_databases"]
        assert result["bindings"] == [
            {"name": "MOLTBOT_BUCKET", "type": "r2_bucket", "bucket_name": bucket["bucket_name"]},
            {
                "name": "DB",
                "type": "d1",
                "id": database["database_id"],
                "binding": "DB",
                "database_name": database["database_name"],
            },
        ]
        tags = ["cf:service=moltworker"] + (
            [f"cf:environment={environment}"] if environment else []
        )
        assert result["tags"] == tags


def test_settings_are_those_of_the_version_serving_the_most_traffic(state, spec):
    app = load_app(state, persist=True)
    api = Api(app, spec)
    old = app.state.serving_version(STAGING)
    changed = app.change_setting(STAGING, compatibility_date="2026-11-29", logpush=True)
    assert changed["metadata"]["source"] == "dash"
    result = api.call("GET", SETTINGS % STAGING)["result"]
    assert (result["compatibility_date"], result["logpush"]) == ("2026-11-29", True)
    detail = api.call(
        "GET", f"/accounts/{{account}}/workers/scripts/{STAGING}/versions/{changed['id']}"
    )["result"]
    assert detail["resources"]["script_runtime"]["compatibility_date"] == "2026-11-29"
    secrets = [b for b in detail["resources"]["bindings"] if b["type"] == "secret_text"]
    assert [b["name"] for b in secrets] == ["ANTHROPIC_API_KEY", "MOLTBOT_GATEWAY_TOKEN"]
    assert app.state.version_builds[changed["id"]] == app.state.version_builds[old["id"]]

    split = {
        "strategy": "percentage",
        "versions": [
            {"version_id": changed["id"], "percentage": 40},
            {"version_id": old["id"], "percentage": 60},
        ],
    }
    api.call("POST", DEPLOYMENTS % STAGING, json=split)
    assert api.call("GET", SETTINGS % STAGING)["result"]["compatibility_date"] != "2026-11-29"
    # Another process sees the edit (journaled).
    reloaded = Api(load_app(state), spec)
    split["versions"] = [{"version_id": changed["id"], "percentage": 100}]
    reloaded.call("POST", DEPLOYMENTS % STAGING, json=split)
    assert reloaded.call("GET", SETTINGS % STAGING)["result"]["logpush"] is True


def test_change_setting_replaces_bindings_but_keeps_secrets_and_refuses_unknown_keys(state):
    app = load_app(state, persist=True)
    bindings = [{"name": "MOLTBOT_BUCKET", "type": "r2_bucket", "bucket_name": "moltbot-data"}]
    version = app.change_setting(STAGING, bindings=bindings, tags=["cf:service=moltworker"])
    stored = app.state.resources[version["id"]]
    assert [b["name"] for b in stored["bindings"]] == [
        "MOLTBOT_BUCKET",
        "ANTHROPIC_API_KEY",
        "MOLTBOT_GATEWAY_TOKEN",
    ]
    with pytest.raises(ValueError, match="unknown setting 'routes'"):
        app.change_setting(STAGING, routes=[])
    with pytest.raises(ApiError) as unknown:
        app.change_setting("nope", logpush=True)
    assert unknown.value.code == 10007


def test_settings_of_an_unknown_worker_is_10007(app):
    path = PREFIX + f"/accounts/{app.state.account_id}/workers/scripts/nope/settings"
    auth = {"authorization": f"Bearer {EMULATOR_TOKEN}"}
    reply = app.handle(Request("GET", path, {}, auth))
    body = reply.body if isinstance(reply.body, dict) else json.loads(reply.body)
    assert reply.status == 404 and body["success"] is False and body["result"] is None
    assert body["errors"][0]["code"] == 10007


def test_a_pushed_build_uploads_the_settings_of_its_commit_not_a_dashboard_edit(state, seeded):
    app = load_app(state, persist=True)
    edited = app.change_setting(STAGING, compatibility_date="2026-06-15")
    sha = app.state.builds[app.state.version_builds[edited["id"]]]["build_trigger_metadata"][
        "commit_hash"
    ]
    text = subprocess.run(
        ["git", "-C", seeded[0].repository, "show", f"{sha}:wrangler.jsonc"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    in_git = parse_jsonc(text)["compatibility_date"]
    assert in_git != "2026-06-15"

    with_file = app.push("hardshell", "a" * 40, "chore: rebuild", wrangler=text)
    without = app.push("hardshell", "b" * 40, "chore: rebuild again")

    def uploaded(build) -> dict:
        version = next(v for v, b in app.state.version_builds.items() if b == build["build_uuid"])
        return app.state.resources[version]

    staging = [
        b for b in with_file if app.state.scripts[b["trigger"]["external_script_id"]] == STAGING
    ]
    assert len(staging) == 1
    made = uploaded(staging[0])
    assert made["script_runtime"]["compatibility_date"] == in_git
    names = [b["name"] for b in made["bindings"] if b["type"] == "secret_text"]
    assert names == ["ANTHROPIC_API_KEY", "MOLTBOT_GATEWAY_TOKEN"]  # secrets carry over
    # the next push names no file: its upload copies the latest version, git's again
    again = [b for b in without if app.state.scripts[b["trigger"]["external_script_id"]] == STAGING]
    assert uploaded(again[0])["script_runtime"]["compatibility_date"] == in_git
