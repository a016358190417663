"""Smoke checks against a real HTTP server on 127.0.0.1 that answers each way a
deployed worker might."""

from __future__ import annotations

import socket
import time

import pytest

from devops_assets.emulator.server import running_server
from devops_assets.sources.smoke import CheckResult, SmokeCheck, run_smoke


def worker(environ, start_response):
    """A stand-in deployed version: /health ok, /broken 503, /slow too slow, /moved 302."""
    path = environ["PATH_INFO"]
    if path == "/slow":
        time.sleep(1.0)
    answers = {
        "/health": ("200 OK", b'{"status":"ok","version":"v-42"}'),
        "/broken": ("503 Service Unavailable", b"upstream error"),
        "/slow": ("200 OK", b"late"),
        "/moved": ("302 Found", b""),
    }
    status, body = answers.get(path, ("404 Not Found", b"no"))
    headers = [("Content-Type", "text/plain")]
    if path == "/moved":
        headers.append(("Location", "/health"))
    start_response(status, headers)
    return [body]


@pytest.fixture(scope="module")
def url():
    with running_server(worker) as base:
        yield base.removesuffix("/client/v4")


def outcomes(results: list[CheckResult]) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.passed, r.reason) for r in results}


def test_each_way_a_check_can_fail_is_named(url):
    checks = [
        SmokeCheck("health", "/health", contains='"status":"ok"'),
        SmokeCheck("version", "/health", contains="v-43"),
        SmokeCheck("broken", "/broken"),
        SmokeCheck("slow", "/slow", timeout_s=0.3),
        SmokeCheck("moved", "/moved"),
        SmokeCheck("missing", "/nope", status=404),
    ]
    assert outcomes(run_smoke(url, checks)) == {
        "health": (True, "ok"),
        "version": (False, "body lacks 'v-43'"),
        "broken": (False, "expected HTTP 200, got 503"),
        "slow": (False, "no answer within 0.3 s"),
        "moved": (False, "expected HTTP 200, got 302"),  # redirects are not followed
        "missing": (True, "ok"),
    }


def test_a_server_that_is_not_there_fails_the_check_without_raising():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    [result] = run_smoke(f"http://127.0.0.1:{port}", [SmokeCheck("health", "/health")])
    assert (result.passed, result.reason) == (False, "request failed (ConnectError)")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "health"}, "path must start with '/'"),
        ({"path": "/h", "status": 42}, "status 100-599"),
        ({"path": "/h", "timeout_s": 0}, "timeout from 0 to 120 s"),
    ],
)
def test_a_bad_check_is_refused_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SmokeCheck("health", **kwargs)
