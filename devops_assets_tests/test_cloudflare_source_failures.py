"""The Cloudflare source when the API misbehaves: retries and the errors that end them.

Requests are counted in the emulator's log; waits are recorded by the
client's ``sleep`` so the tests stay fast, except one that really waits.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from devops_assets.sources.cloudflare import CloudflareClient, CloudflareError
from devops_assets_tests.emulator_fixtures import LIST, SECRET, TAG, WORKER


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(secured_app, secured_url, waits):
    return CloudflareClient(
        secured_app.state.account_id,
        SECRET,
        secured_url,
        max_retries=3,
        backoff_seconds=0.01,
        sleep=waits.append,
    )


def test_a_429_is_retried_after_its_retry_after(client, secured_app, waits):
    secured_app.fail_next(LIST, 429, headers={"Retry-After": "7"})
    assert len(client.list_builds(WORKER, TAG, per_page=200)) > 200
    assert secured_app.count(LIST) == 3 and waits == [7.0]


def test_a_429_retry_after_is_really_waited(secured_app, secured_url):
    client = CloudflareClient(
        secured_app.state.account_id, SECRET, secured_url, backoff_seconds=0.01
    )
    secured_app.fail_next(LIST, 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    client.list_builds(WORKER, TAG, per_page=200)
    assert time.monotonic() - started >= 1.0 and secured_app.count(LIST) == 3


def test_a_429_without_retry_after_backs_off_and_a_long_one_fails_at_once(
    client, secured_app, waits
):
    secured_app.fail_next(LIST, 429, headers={})
    client.list_builds(WORKER, TAG, per_page=200)
    assert waits == [0.01]
    secured_app.clear_requests()
    secured_app.fail_next(LIST, 429, headers={"Retry-After": "3600"})
    with pytest.raises(CloudflareError, match="HTTP 429: API error 1015"):
        client.list_builds(WORKER, TAG)
    assert secured_app.count(LIST) == 1


def test_a_5xx_is_retried_with_growing_waits_then_succeeds(client, secured_app, waits):
    secured_app.fail_next(LIST, 502, times=2)
    client.list_builds(WORKER, TAG, per_page=200)
    assert waits == [0.01, 0.02] and secured_app.count(LIST) == 4


def test_a_5xx_that_persists_fails_after_max_retries_naming_the_endpoint(
    client, secured_app, waits
):
    secured_app.fail_next(r"/builds/builds/[^/]+$", 503, times=10)
    with pytest.raises(CloudflareError) as caught:
        client.get_build("some-build", WORKER)
    assert str(caught.value) == (
        "GET /accounts/{account_id}/builds/builds/{build_uuid} build_uuid=some-build "
        "failed with HTTP 503: API error 10002: Injected failure (503)"
    )
    assert (caught.value.status, caught.value.code) == (503, 10002)
    assert secured_app.count(r"/builds/builds/") == 4 and waits == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("status, code", [(400, 10004), (404, 10007), (408, 10013), (409, 10018)])
def test_other_4xx_fail_at_once_naming_endpoint_and_code(client, secured_app, waits, status, code):
    secured_app.fail_next(r"/deployments$", status)
    with pytest.raises(CloudflareError) as caught:
        client.list_deployments("moltworker")
    assert str(caught.value).startswith(
        "GET /accounts/{account_id}/workers/scripts/{script_name}/deployments "
        f"script_name=moltworker failed with HTTP {status}: API error {code}"
    )
    assert secured_app.count(r"/deployments$") == 1 and waits == []


def test_a_real_404_names_the_builds_error(client, secured_app):
    with pytest.raises(
        CloudflareError,
        match=r"build_uuid=missing failed with HTTP 404: API error 12000: Not found",
    ):
        client.get_build("missing", WORKER)


def test_a_post_is_not_retried_after_a_5xx(client, secured_app, waits):
    version = client.list_versions("moltworker")[0]["id"]
    secured_app.fail_next(r"/deployments$", 500)
    with pytest.raises(
        CloudflareError, match="POST .*/deployments script_name=moltworker .*HTTP 500"
    ):
        client.create_deployment("moltworker", [(version, 100)])
    assert secured_app.count(r"/deployments$", method="POST") == 1 and waits == []


def test_a_huge_api_error_message_is_cut_to_a_readable_size(secured_app, client):
    huge = {
        "success": False,
        "errors": [{"code": 10000, "message": "x" * 5_000_000}],
        "messages": [],
        "result": None,
    }
    secured_app.fail_next(LIST, 400, body=huge)

    with pytest.raises(CloudflareError) as caught:
        client.list_builds(WORKER, TAG)

    assert len(str(caught.value)) < 1000
    assert "(5000000 characters)" in str(caught.value)


@pytest.fixture
def dripping_server():
    """A server on 127.0.0.1 that sends headers, then one byte of its body every 0.2 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                body = b'{"success": true, "errors": [], "messages": [], "result": []}'
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body))
                for byte in body:
                    if stop.wait(0.2):
                        return
                    conn.sendall(bytes([byte]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/client/v4"
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_an_answer_dripped_slower_than_the_deadline_is_cut_off(dripping_server):
    client = CloudflareClient(
        "0" * 32, SECRET, dripping_server, max_retries=0, timeout=5, deadline=1.0
    )
    started = time.monotonic()

    with pytest.raises(CloudflareError) as caught:
        client.list_versions("moltworker")

    assert time.monotonic() - started < 4
    assert "not complete within 1 s" in str(caught.value)
    assert "GET /accounts/{account_id}/workers/scripts/{script_name}/versions" in str(caught.value)
