"""The emulator's failures: error codes and envelopes, auth, rate limits, injections.

Every answer a test receives here is validated against the OpenAPI subset.
"""

from __future__ import annotations

import pytest

from devops_assets.emulator import PREFIX
from devops_assets_tests.emulator_fixtures import Api


@pytest.mark.parametrize(
    "versions, message",
    [
        ([{"version_id": "V0", "percentage": 90}], "sum to 100"),
        ([{"version_id": "V0", "percentage": 40}] * 3, "one or two"),
        ([{"version_id": "not-a-version", "percentage": 100}], "not-a-version"),
        ([{"version_id": "V0", "percentage": 0}, {"version_id": "V1", "percentage": 100}], "0.01"),
        ([{"version_id": "V0", "percentage": "100"}], "percentage"),
    ],
)
def test_invalid_deployments_are_refused_with_the_failure_envelope(api, versions, message):
    worker = "moltworker"
    items = api.call("GET", f"/accounts/{{account}}/workers/scripts/{worker}/versions")["result"]
    ids = {"V0": items["items"][0]["id"], "V1": items["items"][1]["id"]}
    body = {
        "strategy": "percentage",
        "versions": [
            {**v, "version_id": ids.get(v["version_id"], v["version_id"])} for v in versions
        ],
    }
    before = len(api.app.state.deployments[worker])
    path = f"/accounts/{{account}}/workers/scripts/{worker}/deployments"
    code, text = api.error("POST", path, 400, json=body)
    assert code == 10021 and message in text
    assert len(api.app.state.deployments[worker]) == before


def test_errors_use_the_api_codes_and_envelope(api, app, spec):
    account = app.state.account_id
    builds = "/accounts/{account}/builds/builds"
    assert api.error("GET", "/accounts/{account}/nothing/here", 404) == (
        7003,
        "No route for the URI",
    )
    assert api.error("GET", f"{builds}/no-such-build", 404) == (12000, "Not found")
    assert api.error("GET", f"{builds}/no-such-build/logs", 404)[0] == 12000
    assert api.error("DELETE", f"{builds}/x", 405)[0] == 7001
    too_many = ",".join(f"v{i}" for i in range(21))
    assert api.error("GET", builds, 400, params={"version_ids": too_many})[0] == 12002
    tag = "8ee82b3a2c0f42928b8f14dae4a97121"
    for per_page in ("0", "201", "ten"):
        path = f"/accounts/{{account}}/builds/workers/{tag}/builds"
        assert api.error("GET", path, 400, params={"per_page": per_page})[0] == 12002
    some_build = next(iter(app.state.builds))
    logs = f"{builds}/{some_build}/logs"
    assert api.error("GET", logs, 400, params={"cursor": "garbage"})[0] == 12002
    assert api.error("GET", "/accounts/{account}/workers/scripts/nope/deployments", 404)[0] == 10007
    post = "/accounts/{account}/workers/scripts/moltworker/deployments"
    assert api.error("POST", post, 400, content=b"not json")[0] == 10001
    scripts = "/accounts/{account}/workers/scripts/moltworker"
    assert api.error("GET", f"{scripts}/versions/no-such-version", 404)[0] == 10007
    assert api.error("GET", "/accounts/{account}/workers/services/nope", 404)[0] == 10007
    latest = "/accounts/{account}/builds/builds/latest"
    assert api.error("GET", latest, 400, params={"external_script_ids": ""})[0] == 12002
    other = "0" * 32
    assert api.error("GET", f"/accounts/{other}/builds/builds/x", 403)[0] == 10000
    assert account != other


def test_missing_or_unknown_tokens_are_refused_without_data(app, spec):
    anonymous = Api(app, spec, headers={})
    assert anonymous.error("GET", "/accounts/{account}/builds/builds/x", 401)[0] == 10000
    wrong = Api(app, spec, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.error("GET", "/accounts/{account}/workers/scripts/moltworker/versions", 403) == (
        10000,
        "Authentication error",
    )
    assert wrong.error("GET", "/user/tokens/verify", 401) == (1000, "Invalid API Token")


def test_the_rate_limit_answers_429_with_retry_after(api, app):
    app.set_rate_limit(3, 60)
    for remaining in (2, 1, 0):
        api.call("GET", "/user/tokens/verify")
        assert api.last.headers["Ratelimit"].startswith(f'"default";r={remaining};t=')
    code, _ = api.error("GET", "/user/tokens/verify", 429)
    assert code == 1015 and 1 <= int(api.last.headers["Retry-After"]) <= 60
    assert api.last.headers["Ratelimit-Policy"] == '"default";q=3;w=60'


def test_injected_failures_answer_then_stop(api, app):
    path = "/accounts/{account}/builds/builds/latest"
    params = {"external_script_ids": "8ee82b3a2c0f42928b8f14dae4a97121"}
    app.fail_next(r"/builds/latest$", 503, times=2, headers={"Retry-After": "2"})
    assert api.error("GET", path, 503, params=params)[0] == 10002
    assert api.last.headers["Retry-After"] == "2"
    api.error("GET", path, 503, params=params)
    api.call("GET", path, params=params)
    app.fail_next(r"/builds/latest$", 200, body="{not json")
    response = api.http.get(PREFIX + path.replace("{account}", app.state.account_id), params=params)
    assert (response.status_code, response.text) == (200, "{not json")
