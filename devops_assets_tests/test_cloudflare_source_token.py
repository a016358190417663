"""The API token stays out of every error, and an unusable token is refused up front.

A server or proxy may echo the token in an answer; whichever step then
fails (a malformed body, an HTTP error, a lost connection), the error, its
``repr`` and the exceptions chained to it show ``***`` instead.
"""

from __future__ import annotations

import dataclasses
import logging
import socket

import pytest

from devops_assets.sources.cloudflare import CloudflareClient, CloudflareError, client_from_settings
from devops_assets_tests.emulator_fixtures import LIST, SECRET, TAG, WORKER

LIST_ENDPOINT = (
    f"GET /accounts/{{account_id}}/builds/workers/{{worker_tag}}/builds worker_tag={TAG}"
)


@pytest.fixture
def client(secured_app, secured_url):
    return CloudflareClient(
        secured_app.state.account_id,
        SECRET,
        secured_url,
        backoff_seconds=0.001,
        sleep=lambda _: None,
    )


def _chain(exc: BaseException | None) -> list[BaseException]:
    """The exception and every exception chained to it, suppressed or not."""
    found = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _texts(exc: BaseException) -> list[str]:
    return [text for e in _chain(exc) for text in (str(e), repr(e))]


def _build_echoing_the_token() -> dict:
    return {
        "build_uuid": "b1",
        "status": f"Bearer {SECRET}",
        "build_outcome": None,
        "created_on": "2026-11-01T10:00:00.000Z",
        "build_trigger_metadata": {"branch": "hardshell", "commit_hash": "c" * 40},
    }


ECHOED = [
    (
        200,
        f"<html>proxy saw Authorization: Bearer {SECRET}</html>",
        f"{LIST_ENDPOINT}: malformed answer: '(body)': expected a JSON object, "
        "got '<html>proxy saw Authorization: Bearer ***</html>'",
    ),
    (
        200,
        {"success": True, "result": [_build_echoing_the_token()]},
        f"{LIST_ENDPOINT}: malformed answer: 'result[0].status': "
        "expected a documented value, got 'Bearer ***'",
    ),
    (
        500,
        f"<html>upstream refused Bearer {SECRET}</html>",
        f"{LIST_ENDPOINT} failed with HTTP 500: no API error in the answer",
    ),
    (
        502,
        {"success": False, "errors": [{"code": 10002, "message": f"bad token {SECRET}"}]},
        f"{LIST_ENDPOINT} failed with HTTP 502: API error 10002: bad token ***",
    ),
]


@pytest.mark.parametrize("status, body, message", ECHOED)
def test_a_token_echoed_in_an_answer_is_hidden_in_the_error_and_its_causes(
    client, secured_app, status, body, message
):
    secured_app.fail_next(LIST, status, body=body, times=10)
    with pytest.raises(CloudflareError) as caught:
        client.list_builds(WORKER, TAG)
    assert str(caught.value) == message
    assert [t for t in _texts(caught.value) if SECRET[:12] in t] == []
    assert _chain(caught.value) == [caught.value]


def test_a_lost_connection_names_its_cause_without_chaining_it(secured_app):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CloudflareClient(
        secured_app.state.account_id, SECRET, f"http://127.0.0.1:{port}", max_retries=0
    )
    with pytest.raises(CloudflareError) as caught:
        client.verify_token()
    assert str(caught.value).startswith(
        "GET /user/tokens/verify: no answer after 1 attempts (ConnectError: "
    )
    assert _chain(caught.value) == [caught.value]


def test_the_token_never_appears_in_errors_reprs_or_logs(client, secured_app, secured_url, caplog):
    caplog.set_level(logging.DEBUG)
    failures = []
    secured_app.fail_next(
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
    secured_app.fail_next(r"/deployments$", 200, body="not json")
    wrong = CloudflareClient(
        secured_app.state.account_id, SECRET + "-wrong", secured_url, max_retries=0
    )
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


UNUSABLE = [
    ("tok-0123456789\n", "contains whitespace (a trailing newline copied along with it?)"),
    ("tok-0123456789 ", "contains whitespace (a trailing newline copied along with it?)"),
    ("tök-0123456789", "contains a character that is not printable ASCII"),
]


@pytest.mark.parametrize("token, problem", UNUSABLE)
def test_an_unusable_token_is_refused_naming_the_environment_variable(seeded, token, problem):
    settings = dataclasses.replace(
        seeded[0].cloudflare, api_base_url="http://127.0.0.1:9/client/v4"
    )
    with pytest.raises(CloudflareError) as caught:
        client_from_settings(settings, token)
    assert str(caught.value) == (
        f"CloudflareClient: the environment variable CLOUDFLARE_API_TOKEN {problem}; "
        "it cannot be sent as a token"
    )
    assert token.strip() not in repr(caught.value)


@pytest.mark.parametrize("token, problem", UNUSABLE)
def test_an_unusable_token_given_directly_is_refused_naming_the_argument(
    secured_app, token, problem
):
    with pytest.raises(CloudflareError) as caught:
        CloudflareClient(secured_app.state.account_id, token, "http://127.0.0.1:9/client/v4")
    assert (
        str(caught.value) == f"CloudflareClient: api_token {problem}; it cannot be sent as a token"
    )


def test_a_token_with_a_backslash_and_quotes_is_hidden_where_an_error_quotes_it(seeded):
    from devops_assets.emulator import load_app, running_server

    odd = "brk-SEC\\RET-'q\"-0123456789abcdef"
    app = load_app(seeded[1].state_dir, api_tokens=(odd,))
    body = {"success": True, "result": [{**_build_echoing_the_token(), "status": f"x {odd}"}]}
    with running_server(app) as url:
        client = CloudflareClient(app.state.account_id, odd, url, max_retries=0)
        app.fail_next(LIST, 200, body=body, times=1)
        with pytest.raises(CloudflareError) as caught:
            client.list_builds(WORKER, TAG)
    texts = _texts(caught.value)
    assert "***" in str(caught.value)
    assert [t for t in texts if "SEC" in t] == []
