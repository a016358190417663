"""Deploy notices: the Slack-compatible body, the demo's file, a live webhook on
127.0.0.1, and the webhook URL (a secret) kept out of every error."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest

from devops_assets.emulator.server import running_server
from devops_assets.sources.notify import Notice, NotifyError, payload, to_file, to_webhook

NOTICE = Notice(
    "rolled_back",
    "production",
    "d" * 40,
    "smoke check health failed at 50 %: back to v-41",
    datetime(2026, 12, 4, 12, 0, tzinfo=UTC),
)
HOOK_ENV = "DEVOPS_ASSETS_TEST_HOOK"


def test_the_body_is_what_a_slack_incoming_webhook_takes():
    body = payload(NOTICE)
    assert body["text"] == (
        "rolled_back production dddddddddddd: smoke check health failed at 50 %: back to v-41"
    )
    [block] = body["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert block["text"]["text"].startswith(":rewind: *rolled back* · production")
    assert body["metadata"]["event_payload"]["subject"] == "d" * 40


def test_a_request_id_is_shown_whole_for_the_approver_must_name_it():
    request_id = "rot-staging-moltbot-gateway-token-20261130T180007Z-a7bbe5"
    notice = Notice("secret_rotation_requested", "staging", request_id, "due", NOTICE.at)
    body = payload(notice)
    assert body["text"].startswith(f"secret_rotation_requested staging {request_id}: ")
    assert f"`{request_id}`" in body["blocks"][0]["text"]["text"]


def test_the_demo_appends_one_json_line_per_notice(tmp_path):
    path = tmp_path / "notices" / "deploys.jsonl"
    to_file(path, NOTICE)
    to_file(path, NOTICE)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [payload(NOTICE)] * 2


def test_a_live_webhook_receives_the_body(monkeypatch):
    received = []

    def hook(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        received.append(json.loads(environ["wsgi.input"].read(size)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with running_server(hook) as base:
        monkeypatch.setenv(HOOK_ENV, base + "/services/T0/B0/s3cr3t-path")
        to_webhook(HOOK_ENV, NOTICE)
    assert received == [payload(NOTICE)]


def test_a_failing_webhook_is_reported_without_its_url(monkeypatch):
    def refuse(environ, start_response):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"invalid_token"]

    with running_server(refuse) as base:
        monkeypatch.setenv(HOOK_ENV, base + "/services/T0/B0/s3cr3t-path")
        with pytest.raises(NotifyError) as refused:
            to_webhook(HOOK_ENV, NOTICE)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(HOOK_ENV, f"http://127.0.0.1:{port}/services/s3cr3t-path")
    with pytest.raises(NotifyError) as unreachable:
        to_webhook(HOOK_ENV, NOTICE)
    monkeypatch.delenv(HOOK_ENV)
    with pytest.raises(NotifyError) as unset:
        to_webhook(HOOK_ENV, NOTICE)
    messages = [str(e.value) for e in (refused, unreachable, unset)]
    assert messages == [
        f"the webhook in ${HOOK_ENV} answered HTTP 403",
        f"posting to the webhook in ${HOOK_ENV} failed (ConnectError)",
        f"${HOOK_ENV} must hold the webhook's http(s) URL; it is unset or not one",
    ]
    assert all("s3cr3t" not in m for m in messages)
    chained = [(e.value.__cause__, e.value.__context__) for e in (refused, unreachable, unset)]
    assert chained == [(None, None)] * 3  # no chained httpx error carries the URL


def test_an_unknown_event_is_refused():
    with pytest.raises(ValueError, match="notice event: one of deploy_started"):
        Notice("shipped", "production", "x", "y", NOTICE.at)


def test_slack_control_characters_in_a_notice_are_shown_not_obeyed():
    from dataclasses import replace

    body = payload(replace(NOTICE, text="<!channel> see <http://x.example|SSO> & more"))
    shown = "&lt;!channel&gt; see &lt;http://x.example|SSO&gt; &amp; more"
    assert body["text"].endswith(shown)
    assert body["blocks"][0]["text"]["text"].endswith(shown)


def test_a_notices_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "notices.fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotifyError, match="not a regular file"):
        to_file(fifo, NOTICE)  # opening a FIFO to append would wait for a reader forever
    with pytest.raises(NotifyError, match="not a regular file"):
        to_file(tmp_path, NOTICE)


@pytest.mark.parametrize("url", ["https://hooks.example/T0/B0/secret\n", "http://[::1/secret"])
def test_a_malformed_webhook_url_fails_as_a_notice_error_without_the_url(monkeypatch, url):
    monkeypatch.setenv(HOOK_ENV, url)
    with pytest.raises(NotifyError) as caught:
        to_webhook(HOOK_ENV, NOTICE)
    assert "secret" not in str(caught.value) and HOOK_ENV in str(caught.value)
