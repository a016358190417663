"""The Cloudflare source when the API misbehaves: retries, final errors, bad answers.

Requests are counted in the emulator's log; waits are recorded by the
client's ``sleep`` so the tests stay fast, except one that really waits.
"""

from __future__ import annotations

import logging
import time

import pytest

from devops_assets.emulator import load_app, running_server
from devops_assets.sources.cloudflare import CloudflareClient, CloudflareError, MalformedResponse

SECRET = "cf-test-token-0123456789abcdef-do-not-print"
TAG = "5a0e7f3c9b2d4e61a8c7f0b3d2e1c4a9"
WORKER = "moltworker-staging"
LIST = r"/builds/workers/[^/]+/builds$"
LIST_ENDPOINT = "GET /accounts/{account_id}/builds/workers/{worker_tag}/builds"


@pytest.fixture
def app(seeded):
    return load_app(seeded[1].state_dir, api_tokens=(SECRET,))


@pytest.fixture
def server(app):
    with running_server(app) as base_url:
        yield base_url


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(app, server, waits):
    return CloudflareClient(
        app.state.account_id,
        SECRET,
        server,
        max_retries=3,
        backoff_seconds=0.01,
        sleep=waits.append,
    )


def test_a_429_is_retried_after_its_retry_after(client, app, waits):
    app.fail_next(LIST, 429, headers={"Retry-After": "7"})
    assert len(client.list_builds(WORKER, TAG, per_page=200)) > 200
    assert app.count(LIST) == 3 and waits == [7.0]


def test_a_429_retry_after_is_really_waited(app, server):
    client = CloudflareClient(app.state.account_id, SECRET, server, backoff_seconds=0.01)
    app.fail_next(LIST, 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    client.list_builds(WORKER, TAG, per_page=200)
    assert time.monotonic() - started >= 1.0 and app.count(LIST) == 3


def test_a_429_without_retry_after_backs_off_and_a_long_one_fails_at_once(client, app, waits):
    app.fail_next(LIST, 429, headers={})
    client.list_builds(WORKER, TAG, per_page=200)
    assert waits == [0.01]
    app.clear_requests()
    app.fail_next(LIST, 429, headers={"Retry-After": "3600"})
    with pytest.raises(CloudflareError, match="HTTP 429: API error 1015"):
        client.list_builds(WORKER, TAG)
    assert app.count(LIST) == 1


def test_a_5xx_is_retried_with_growing_waits_then_succeeds(client, app, waits):
    app.fail_next(LIST, 502, times=2)
    client.list_builds(WORKER, TAG, per_page=200)
    assert waits == [0.01, 0.02] and app.count(LIST) == 4


def test_a_5xx_that_persists_fails_after_max_retries_naming_the_endpoint(client, app, waits):
    app.fail_next(r"/builds/builds/[^/]+$", 503, times=10)
    with pytest.raises(CloudflareError) as caught:
        client.get_build("some-build", WORKER)
    assert str(caught.value) == (
        "GET /accounts/{account_id}/builds/builds/{build_uuid} build_uuid=some-build "
        "failed with HTTP 503: API error 10002: Injected failure (503)"
    )
    assert (caught.value.status, caught.value.code) == (503, 10002)
    assert app.count(r"/builds/builds/") == 4 and waits == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("status, code", [(400, 10004), (404, 10007), (408, 10013), (409, 10018)])
def test_other_4xx_fail_at_once_naming_endpoint_and_code(client, app, waits, status, code):
    app.fail_next(r"/deployments$", status)
    with pytest.raises(CloudflareError) as caught:
        client.list_deployments("moltworker")
    assert str(caught.value).startswith(
        "GET /accounts/{account_id}/workers/scripts/{script_name}/deployments "
        f"script_name=moltworker failed with HTTP {status}: API error {code}"
    )
    assert app.count(r"/deployments$") == 1 and waits == []


def test_a_real_404_names_the_builds_error(client, app):
    with pytest.raises(
        CloudflareError,
        match=r"build_uuid=missing failed with HTTP 404: API error 12000: Not found",
    ):
        client.get_build("missing", WORKER)


def test_a_post_is_not_retried_after_a_5xx(client, app, waits):
    version = client.list_versions("moltworker")[0]["id"]
    app.fail_next(r"/deployments$", 500)
    with pytest.raises(
        CloudflareError, match="POST .*/deployments script_name=moltworker .*HTTP 500"
    ):
        client.create_deployment("moltworker", [(version, 100)])
    assert app.count(r"/deployments$", method="POST") == 1 and waits == []


def _envelope(result) -> dict:
    return {"success": True, "errors": [], "messages": [], "result": result}


def _build(**changes) -> dict:
    build = {
        "build_uuid": "b1",
        "status": "stopped",
        "build_outcome": "success",
        "created_on": "2026-11-01T10:00:00.000Z",
        "running_on": None,
        "stopped_on": None,
        "build_trigger_metadata": {"branch": "hardshell", "commit_hash": "c" * 40},
    }
    build.update(changes)
    return {k: v for k, v in build.items() if v != "-"}


@pytest.mark.parametrize(
    "body, field, expected",
    [
        ("<html>bad gateway</html>", "(body)", "a JSON object"),
        ({"success": True, "errors": [], "messages": []}, "result", "present"),
        (_envelope({"builds": []}), "result", "an array"),
        (_envelope([_build(build_uuid="-")]), "result[0].build_uuid", "a string"),
        (_envelope([_build(created_on="yesterday")]), "result[0].created_on", "ISO 8601"),
        (_envelope([_build(status="done")]), "result[0].status", "a documented value"),
        (
            _envelope([_build(build_trigger_metadata={"branch": "x"})]),
            "result[0].build_trigger_metadata.commit_hash",
            "a string",
        ),
    ],
)
def test_a_malformed_answer_names_the_endpoint_and_field(client, app, body, field, expected):
    app.fail_next(LIST, 200, body=body)
    with pytest.raises(MalformedResponse) as caught:
        client.list_builds(WORKER, TAG)
    message = str(caught.value)
    assert message.startswith(f"{LIST_ENDPOINT} worker_tag={TAG}: malformed answer: '{field}'")
    assert expected in message and caught.value.field == field


def test_a_log_whose_cursor_never_moves_is_malformed(client, app):
    page = _envelope({"lines": [[1, "x"]], "truncated": True, "cursor": "same"})
    app.fail_next(r"/logs$", 200, body=page, times=2)
    with pytest.raises(MalformedResponse, match="'result.cursor': expected a new cursor"):
        client.build_log("b1")


def test_the_token_never_appears_in_errors_reprs_or_logs(client, app, server, caplog):
    caplog.set_level(logging.DEBUG)
    failures = []
    app.fail_next(
        LIST,
        500,
        times=10,
        body={
            "success": False,
            "errors": [{"code": 10002, "message": f"echoing {SECRET}"}],
            "messages": [],
            "result": None,
        },
    )
    app.fail_next(r"/deployments$", 200, body="not json")
    wrong = CloudflareClient(app.state.account_id, SECRET + "-wrong", server, max_retries=0)
    for call in (
        lambda: client.list_builds(WORKER, TAG),
        lambda: client.list_deployments("x"),
        lambda: client.get_build("nope", WORKER),
        lambda: wrong.verify_token(),
        lambda: wrong.list_versions("moltworker"),
    ):
        with pytest.raises(CloudflareError) as caught:
            call()
        failures.append(caught.value)
    texts = [str(e) for e in failures] + [repr(e) for e in failures] + [repr(client), caplog.text]
    assert [t for t in texts if SECRET in t] == []
    assert "***" in str(failures[0]) and "API error 10000" in str(failures[4])
