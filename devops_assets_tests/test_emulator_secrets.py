"""Worker secrets in the emulator: list, put, delete, versions/latest, the edge's refusal.

Every answer is validated against the OpenAPI subset (the versions/latest
path is not in it: its answers are checked against the common envelope).
Folders that a test changes are copies of the module's seeded one.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from devops_assets.emulator import load_app
from devops_assets.emulator.edge import OVERRIDES_HEADER
from devops_assets.emulator.state import JOURNAL_FILE
from devops_assets.emulator.story import RELEASER, REQUIRED_SECRETS
from devops_assets.emulator.wire import ApiError
from devops_assets_tests.emulator_fixtures import Api

PRODUCTION, STAGING = "moltworker", "moltworker-staging"
SECRETS = "/accounts/{account}/workers/scripts/%s/secrets"
LATEST = "/accounts/{account}/workers/workers/%s/versions/latest"
VALUE = "sk-new-value-that-must-never-be-stored"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def state(seeded, tmp_path):
    return shutil.copytree(seeded[1].state_dir, tmp_path / "state")


def versions(api: Api, script: str) -> list[dict]:
    path = f"/accounts/{{account}}/workers/scripts/{script}/versions"
    return api.call("GET", path, params={"per_page": 100})["result"]["items"]


def deployments(api: Api, script: str) -> list[dict]:
    path = f"/accounts/{{account}}/workers/scripts/{script}/deployments"
    return api.call("GET", path)["result"]["deployments"]


def detail(api: Api, script: str, version_id: str) -> dict:
    path = f"/accounts/{{account}}/workers/scripts/{script}/versions/{version_id}"
    return api.call("GET", path)["result"]


def health(app, script: str, version_id: str | None = None):
    headers = {"Host": f"{script}.moltworker.workers.dev"}
    if version_id:
        headers[OVERRIDES_HEADER] = f'{script}="{version_id}"'
    from devops_assets.emulator.wire import Request

    reply = app.handle(Request("GET", "/health", {}, {k.lower(): v for k, v in headers.items()}))
    return reply.status, json.loads(reply.body)


def test_seeded_secrets_are_listed_by_name_and_type_and_were_put_by_the_releaser(api, app):
    for script in (PRODUCTION, STAGING):
        listed = api.call("GET", SECRETS % script)["result"]
        assert listed == [{"name": n, "type": "secret_text"} for n in REQUIRED_SECRETS]
        oldest = app.state.versions[script][:5]
        assert [(v["number"], v["annotations"]["workers/triggered_by"]) for v in oldest] == [
            (1, "upload"),
            (2, "secret"),
            (3, "secret"),
            (4, "upload"),
            (5, "upload"),
        ]
        for v in oldest[1:3]:
            assert v["metadata"]["author_email"] == RELEASER.email
        first = detail(api, script, oldest[0]["id"])["resources"]["bindings"]
        assert [b["type"] for b in first] == ["r2_bucket", "d1"]  # before the secrets
        fourth = detail(api, script, oldest[3]["id"])["resources"]["bindings"]
        assert [b["name"] for b in fourth if b["type"] == "secret_text"] == list(REQUIRED_SECRETS)


def test_version_detail_bindings_follow_each_environment(api, app):
    for script, bucket, database in (
        (PRODUCTION, "moltbot-data", "moltworker-db"),
        (STAGING, "moltbot-staging", "moltworker-staging-db"),
    ):
        serving = app.state.serving_version(script)
        bindings = detail(api, script, serving["id"])["resources"]["bindings"]
        assert {"name": "MOLTBOT_BUCKET", "type": "r2_bucket", "bucket_name": bucket} in bindings
        [d1] = [b for b in bindings if b["type"] == "d1"]
        assert (d1["name"], d1["binding"], d1["database_name"]) == ("DB", "DB", database)
        assert d1["id"] == next(
            db["uuid"] for db in app.state.databases.values() if db["name"] == database
        )


def test_put_makes_a_deployed_version_keeping_code_and_other_secrets(state, spec):
    app = load_app(state, persist=True)
    api = Api(app, spec)
    before = versions(api, PRODUCTION)[0]
    commit = health(app, PRODUCTION)[1]["commit"]
    other = app.secret_digest(PRODUCTION, before["id"], "MOLTBOT_GATEWAY_TOKEN")

    body = {"name": "ANTHROPIC_API_KEY", "text": VALUE, "type": "secret_text"}
    put = api.call("PUT", SECRETS % PRODUCTION, json=body)
    assert put["result"] == {"name": "ANTHROPIC_API_KEY", "type": "secret_text"}

    new = versions(api, PRODUCTION)[0]
    assert new["number"] == before["number"] + 1
    assert new["annotations"]["workers/triggered_by"] == "secret"
    assert new["metadata"]["author_email"] == app.user_email
    [deployment] = deployments(api, PRODUCTION)[:1]
    assert deployment["versions"] == [{"version_id": new["id"], "percentage": 100}]
    assert deployment["annotations"]["workers/triggered_by"] == "secret"
    assert app.secret_digest(PRODUCTION, new["id"], "ANTHROPIC_API_KEY") == sha(VALUE)
    assert app.secret_digest(PRODUCTION, new["id"], "MOLTBOT_GATEWAY_TOKEN") == other
    assert health(app, PRODUCTION) == (
        200,
        {"status": "ok", "version": new["id"], "commit": commit},
    )

    # Only the digest is kept: nowhere in the folder is the value.
    for path in state.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path
    reloaded = load_app(state)
    assert reloaded.secret_digest(PRODUCTION, new["id"], "ANTHROPIC_API_KEY") == sha(VALUE)
    assert reloaded.state.deployments[PRODUCTION][-1]["versions"][0]["version_id"] == new["id"]


def test_delete_removes_the_secret_and_an_unknown_one_is_10056(state, spec):
    app = load_app(state, persist=True)
    api = Api(app, spec)
    api.call("DELETE", (SECRETS % STAGING) + "/MOLTBOT_GATEWAY_TOKEN")
    assert api.call("GET", SECRETS % STAGING)["result"] == [
        {"name": "ANTHROPIC_API_KEY", "type": "secret_text"}
    ]
    newest = versions(api, STAGING)[0]
    assert app.secret_digest(STAGING, newest["id"], "MOLTBOT_GATEWAY_TOKEN") is None
    assert api.error("DELETE", (SECRETS % STAGING) + "/MOLTBOT_GATEWAY_TOKEN", 404)[0] == 10056


def test_put_and_delete_are_refused_while_the_latest_version_is_not_deployed(state, spec):
    app = load_app(state, persist=True)
    api = Api(app, spec)
    patched = api.call(
        "PATCH",
        LATEST % PRODUCTION,
        content=json.dumps({"env": {"ANTHROPIC_API_KEY": {"type": "secret_text", "text": VALUE}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )["result"]
    body = {"name": "ANTHROPIC_API_KEY", "text": "x", "type": "secret_text"}
    code, message = api.error("PUT", SECRETS % PRODUCTION, 400, json=body)
    assert (code, message) == (10215, "Secret edit failed. Latest version not deployed.")
    assert api.error("DELETE", (SECRETS % PRODUCTION) + "/ANTHROPIC_API_KEY", 400)[0] == 10215
    with pytest.raises(ApiError) as refused:
        app.put_secret_outside(PRODUCTION, "ANTHROPIC_API_KEY", "y", "lena@moltworker.example")
    assert refused.value.code == 10215
    assert versions(api, PRODUCTION)[0]["id"] == patched["id"]


def test_patch_latest_makes_an_undeployed_version_with_the_bindings_of_the_latest(state, spec):
    app = load_app(state, persist=True)
    api = Api(app, spec)
    latest = versions(api, STAGING)[0]
    serving = deployments(api, STAGING)[0]
    body = {
        "env": {"MOLTBOT_GATEWAY_TOKEN": {"type": "secret_text", "text": VALUE}},
        "annotations": {"workers/message": "Rotate the gateway token"},
    }
    result = api.call(
        "PATCH",
        LATEST % STAGING,
        content=json.dumps(body),
        headers={"Content-Type": "application/merge-patch+json"},
    )["result"]
    assert VALUE not in json.dumps(result)
    assert result["number"] == latest["number"] + 1
    assert result["annotations"] == {
        "workers/triggered_by": "secret",
        "workers/message": "Rotate the gateway token",
    }
    assert result["metadata"]["author_email"] == app.user_email
    assert (
        result["resources"]["bindings"]
        == detail(api, STAGING, latest["id"])["resources"]["bindings"]
    )
    assert deployments(api, STAGING)[0] == serving  # not deployed
    assert app.secret_digest(STAGING, result["id"], "MOLTBOT_GATEWAY_TOKEN") == sha(VALUE)
    assert app.secret_digest(STAGING, result["id"], "ANTHROPIC_API_KEY") == app.secret_digest(
        STAGING, latest["id"], "ANTHROPIC_API_KEY"
    )
    # The same build, so /health reports the same commit once it serves.
    assert app.state.version_builds[result["id"]] == app.state.version_builds[latest["id"]]
    journal = (state / JOURNAL_FILE).read_text(encoding="utf-8")
    assert VALUE not in journal and sha(VALUE) in journal


def test_errors_name_the_documented_codes(api, app):
    merge = {"Content-Type": "application/merge-patch+json"}
    assert api.error("GET", SECRETS % "nope", 404)[0] == 10007
    assert api.error("PUT", SECRETS % "nope", 404, json={"name": "A", "text": "b"})[0] == 10007
    assert api.error("PATCH", LATEST % "nope", 404, content=b"{}", headers=merge)[0] == 10007
    bound = {"name": "MOLTBOT_BUCKET", "text": "b", "type": "secret_text"}
    code, message = api.error("PUT", SECRETS % PRODUCTION, 400, json=bound)
    assert code == 10053 and "MOLTBOT_BUCKET" in message
    patch = {"env": {"DB": {"type": "secret_text", "text": "b"}}}
    assert api.error("PATCH", LATEST % PRODUCTION, 400, json=patch, headers=merge)[0] == 10053
    gone = {"env": {"NEVER_SET": None}}
    assert api.error("PATCH", LATEST % PRODUCTION, 404, json=gone, headers=merge)[0] == 10056
    assert api.error("PUT", SECRETS % PRODUCTION, 400, json={"name": "A"})[0] == 10001
    wrong = {"env": {"A": {"type": "plain_text", "text": "b"}}}
    assert api.error("PATCH", LATEST % PRODUCTION, 400, json=wrong, headers=merge)[0] == 10001
    app.state.versions["moltworker-staging"] = []  # a Worker without versions (this app only)
    assert api.error("PATCH", LATEST % STAGING, 400, json={"env": {}}, headers=merge)[0] == 10222


def test_put_secret_outside_is_a_person_running_wrangler_secret_put(state, spec):
    app = load_app(state, persist=True)
    version = app.put_secret_outside(STAGING, "ANTHROPIC_API_KEY", VALUE, "lena@moltworker.example")
    assert version["metadata"]["author_email"] == "lena@moltworker.example"
    assert version["metadata"]["source"] == "wrangler"
    assert version["annotations"]["workers/triggered_by"] == "secret"
    assert app.state.deployments[STAGING][-1]["versions"] == [
        {"version_id": version["id"], "percentage": 100}
    ]
    assert app.secret_digest(STAGING, version["id"], "ANTHROPIC_API_KEY") == sha(VALUE)
    with pytest.raises(KeyError):
        app.secret_digest(STAGING, "no-such-version", "ANTHROPIC_API_KEY")


def test_a_refused_secret_fails_health_for_any_version_holding_another_value(state, spec):
    app = load_app(state, persist=True)
    api = Api(app, spec)
    old = app.state.serving_version(PRODUCTION)
    accepted = app.refuse_secret(PRODUCTION, "ANTHROPIC_API_KEY")
    assert accepted == app.secret_digest(PRODUCTION, old["id"], "ANTHROPIC_API_KEY")
    assert health(app, PRODUCTION)[0] == 200

    staged = api.call(
        "PATCH",
        LATEST % PRODUCTION,
        json={"env": {"ANTHROPIC_API_KEY": {"type": "secret_text", "text": VALUE}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )["result"]
    two = {
        "strategy": "percentage",
        "versions": [
            {"version_id": staged["id"], "percentage": 0.01},
            {"version_id": old["id"], "percentage": 99.99},
        ],
    }
    api.call("POST", f"/accounts/{{account}}/workers/scripts/{PRODUCTION}/deployments", json=two)
    status, body = health(app, PRODUCTION, staged["id"])
    assert (status, body["status"], body["version"]) == (500, "error", staged["id"])
    assert body["error"] == "credential rejected: ANTHROPIC_API_KEY"
    assert health(app, PRODUCTION, old["id"])[0] == 200
    # Another process over the folder sees the refusal too.
    assert health(load_app(state), PRODUCTION, staged["id"])[0] == 500
    assert health(app, STAGING)[0] == 200  # only that script's credential is refused
