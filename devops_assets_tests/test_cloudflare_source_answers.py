"""The Cloudflare source refusing answers it cannot read, by endpoint and field.

Each bad answer is served over loopback HTTP by the emulator
(``app.fail_next`` with a body); the error must name the endpoint and the
field, and a listing must stop even when the API keeps announcing more pages.
"""

from __future__ import annotations

import pytest

from devops_assets.emulator import EMULATOR_TOKEN, running_server
from devops_assets.sources.cloudflare import CloudflareClient, CloudflareError, MalformedResponse
from devops_assets_tests.emulator_fixtures import TAG, WORKER

SCRIPT = "GET /accounts/{account_id}/workers/scripts/{script_name}"
ENDPOINTS = {
    "builds": "GET /accounts/{account_id}/builds/workers/{worker_tag}/builds worker_tag=" + TAG,
    "logs": "GET /accounts/{account_id}/builds/builds/{build_uuid}/logs build_uuid=b1",
    "versions": f"{SCRIPT}/versions script_name=moltworker",
    "deployments": f"{SCRIPT}/deployments script_name=moltworker",
}
PATHS = {
    "builds": r"/builds/workers/[^/]+/builds$",
    "logs": r"/logs$",
    "versions": r"/versions$",
    "deployments": r"/deployments$",
}
WHERE = {
    "builds": "result[0]",
    "logs": "result.lines[0]",
    "versions": "result.items[0]",
    "deployments": "result.deployments[0]",
}
CALLS = {
    "builds": lambda client: client.list_builds(WORKER, TAG),
    "logs": lambda client: client.build_log("b1"),
    "versions": lambda client: client.list_versions("moltworker"),
    "deployments": lambda client: client.list_deployments("moltworker"),
}


@pytest.fixture
def client(app):
    with running_server(app) as base_url:
        yield CloudflareClient(
            app.state.account_id, EMULATOR_TOKEN, base_url, max_retries=0, max_pages=50
        )


def _envelope(result, **info) -> dict:
    body = {"success": True, "errors": [], "messages": [], "result": result}
    return {**body, "result_info": info} if info else body


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


def _version(number=7, **metadata) -> dict:
    meta = {"created_on": "2026-11-01T10:00:00.000000Z", "source": "wrangler", **metadata}
    return {"id": "v1", "number": number, "metadata": meta, "annotations": {}}


def _deployment(share=100, **changes) -> dict:
    deployment = {
        "id": "d1",
        "source": "api",
        "created_on": "2026-11-01T10:00:00.000000Z",
        "author_email": "ops@moltworker.example",
        "annotations": {"workers/triggered_by": "deployment"},
        "versions": [{"version_id": "v1", "percentage": share}],
    }
    return {**deployment, **changes}


def _versions(**changes) -> dict:
    return _envelope({"items": [_version(**changes)]})


def _deployments(**changes) -> dict:
    return _envelope({"deployments": [_deployment(**changes)]})


def _builds(**trigger) -> dict:
    meta = {"branch": "hardshell", "commit_hash": "c" * 40, **trigger}
    return _envelope([_build(build_trigger_metadata=meta)])


MALFORMED = [
    ("builds", "<html>bad gateway</html>", "(body)", "a JSON object"),
    ("builds", {"success": True, "errors": [], "messages": []}, "result", "present"),
    ("builds", {"result": []}, "success", "true or false"),
    ("builds", {"success": "yes", "result": []}, "success", "true or false, got 'yes'"),
    ("builds", _envelope({"builds": []}), "result", "an array"),
    ("builds", _envelope([_build(build_uuid="-")]), "result[0].build_uuid", "a string"),
    ("builds", _envelope([_build(created_on="yesterday")]), "result[0].created_on", "ISO 8601"),
    ("builds", _envelope([_build(status="done")]), "result[0].status", "a documented value"),
    (
        "builds",
        _builds(commit_hash=None),
        "result[0].build_trigger_metadata.commit_hash",
        "a string",
    ),
]
YEAR_1_OR_10000 = "an ISO 8601 time with a zone, within the years 1 to 9999 in UTC"
BAD_VALUES = [
    ("versions", _versions(number=float("nan")), "number", "a whole number, got nan"),
    ("versions", _versions(number=float("inf")), "number", "a whole number, got inf"),
    ("versions", _versions(number=7.5), "number", "a whole number, got 7.5"),
    ("versions", _versions(author_email=42), "metadata.author_email", "a string, got 42"),
    ("versions", _versions(source=["ci"]), "metadata.source", "a string, got ['ci']"),
    ("deployments", _deployments(author_email={"a": 1}), "author_email", "a string, got {'a': 1}"),
    ("deployments", _deployments(created_on="0001-01-01T00:00:00+01:00"), "created_on", ""),
    ("builds", _envelope([_build(created_on="9999-12-31T23:59:59-01:00")]), "created_on", ""),
    (
        "deployments",
        _deployments(annotations={"workers/message": 3}),
        "annotations.workers/message",
        "a string, got 3",
    ),
    (
        "deployments",
        _deployments(share=float("nan")),
        "versions[0].percentage",
        "a percentage from 0 to 100, got nan",
    ),
    (
        "builds",
        _builds(build_trigger_source=7),
        "build_trigger_metadata.build_trigger_source",
        "a string, got 7",
    ),
    ("logs", _envelope({"lines": [[float("inf"), "x"]]}), "", "[epoch_ms, text], got [inf, 'x']"),
]


@pytest.mark.parametrize("call, body, field, expected", MALFORMED)
def test_a_malformed_answer_names_the_endpoint_and_field(client, app, call, body, field, expected):
    _assert_refused(client, app, call, body, field, expected)


@pytest.mark.parametrize("call, body, field, expected", BAD_VALUES)
def test_a_value_out_of_its_range_or_type_names_the_endpoint_and_field(
    client, app, call, body, field, expected
):
    full_field = f"{WHERE[call]}.{field}" if field else WHERE[call]
    _assert_refused(client, app, call, body, full_field, expected or YEAR_1_OR_10000)


def _assert_refused(client, app, call, body, field, expected) -> None:
    app.fail_next(PATHS[call], 200, body=body)
    with pytest.raises(MalformedResponse) as caught:
        CALLS[call](client)
    message = str(caught.value)
    assert message.startswith(f"{ENDPOINTS[call]}: malformed answer: '{field}': expected ")
    assert expected in message and caught.value.field == field


def test_a_log_whose_cursor_never_moves_is_malformed(client, app):
    page = _envelope({"lines": [[1, "x"]], "truncated": True, "cursor": "same"})
    app.fail_next(r"/logs$", 200, body=page, times=2)
    with pytest.raises(MalformedResponse, match="'result.cursor': expected a new cursor"):
        client.build_log("b1")


REPEATING = [
    ("builds", _envelope([_build()], page=1, per_page=50, next_page=True)),
    ("builds", _envelope([_build()], page=1, per_page=50, total_count=10**9)),
    ("versions", _envelope({"items": [_version()]}, page=1, per_page=100, next_page=True)),
    ("versions", _envelope({"items": [_version()]}, page=1, per_page=100, total_count=10**9)),
]


@pytest.mark.parametrize("call, page", REPEATING)
def test_a_listing_whose_pages_repeat_stops_at_the_first_repeat(client, app, call, page):
    app.fail_next(PATHS[call], 200, body=page, times=1000)
    with pytest.raises(MalformedResponse) as caught:
        CALLS[call](client)
    assert str(caught.value) == (
        f"{ENDPOINTS[call]}: malformed answer: 'result_info': "
        "expected no further page after page 2, which brought no new item"
    )
    assert app.count(PATHS[call]) == 2


def test_an_empty_page_that_announces_more_stops_the_listing(client, app):
    app.fail_next(PATHS["builds"], 200, body=_envelope([], next_page=True), times=1000)
    with pytest.raises(MalformedResponse, match="no further page after page 1, which brought no"):
        client.list_builds(WORKER, TAG)
    assert app.count(PATHS["builds"]) == 1


def test_a_listing_longer_than_max_pages_is_refused_naming_the_limit(app, seeded):
    worker = "moltworker-staging"
    tag = next(w.tag for w in seeded[0].workers if w.name == worker)
    with running_server(app) as base_url:
        client = CloudflareClient(app.state.account_id, EMULATOR_TOKEN, base_url, max_pages=3)
        with pytest.raises(CloudflareError) as caught:
            client.list_builds(worker, tag, per_page=5)
    assert str(caught.value) == (
        f"GET /accounts/{{account_id}}/builds/workers/{{worker_tag}}/builds worker_tag={tag}: "
        "more pages announced after 3 pages; stopped paging "
        "(the limit is CloudflareClient's max_pages)"
    )
    assert app.count(PATHS["builds"]) == 3


def _version(number: int, triggered_by: str = "upload") -> dict:
    return {
        "id": f"v{number}",
        "number": number,
        "annotations": {"workers/triggered_by": triggered_by},
    }


def test_a_secret_version_carries_the_code_of_the_version_it_was_copied_from():
    from devops_assets.sources._cloudflare_answers import code_versions

    versions = [
        _version(5, "secret"),  # copied from v4
        _version(1, "secret"),  # nothing below it: its own code
        _version(4),
        _version(6, "secret"),  # copied from v5, whose code is v4's
        _version(7),
        _version(8, "rollback"),
    ]
    assert code_versions(versions) == {"v5": "v4", "v6": "v4"}
