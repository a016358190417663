"""The Cloudflare client's secrets, versions, settings and D1 calls, against the emulator
served on 127.0.0.1; and that a secret value never shows in an error or a log line."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import pytest

from devops_assets.emulator.story import D1_DATABASES, REQUIRED_SECRETS
from devops_assets.sources.cloudflare import (
    CloudflareClient,
    CloudflareError,
    MalformedResponse,
    VersionDetail,
)
from devops_assets_tests.emulator_fixtures import SECRET

PRODUCTION, STAGING = "moltworker", "moltworker-staging"
VALUE = "sk-ant-rotated-0123456789-never-print-me"
LATEST = r"/workers/workers/[^/]+/versions/latest$"


def no_wait(seconds: float) -> None:
    """The client's sleep between retries: the tests do not wait."""


@pytest.fixture
def client(secured_app, secured_url):
    return CloudflareClient(
        secured_app.state.account_id,
        SECRET,
        secured_url,
        backoff_seconds=0.01,
        sleep=lambda s: None,
    )


def test_secrets_versions_and_settings_are_read(client, secured_app):
    assert client.list_secrets(STAGING) == [(name, "secret_text") for name in REQUIRED_SECRETS]
    [deployment] = client.list_deployments(PRODUCTION)[:1]
    [(version_id, share)] = deployment["versions"]
    detail = client.get_version(PRODUCTION, version_id)
    assert isinstance(detail, VersionDetail) and share == 100
    assert (detail.id, detail.triggered_by, detail.source) == (version_id, "upload", "wrangler")
    assert isinstance(detail.created_on, datetime) and detail.created_on.tzinfo is not None
    assert detail.compatibility_flags == ("nodejs_compat",)
    assert (
        detail.compatibility_date
        == secured_app.state.resources[version_id]["script_runtime"]["compatibility_date"]
    )
    kinds = [(b["name"], b["type"]) for b in detail.bindings]
    assert kinds == [
        ("MOLTBOT_BUCKET", "r2_bucket"),
        ("DB", "d1"),
        ("ANTHROPIC_API_KEY", "secret_text"),
        ("MOLTBOT_GATEWAY_TOKEN", "secret_text"),
    ]
    settings = client.script_settings(STAGING)
    assert settings["tags"] == ["cf:service=moltworker", "cf:environment=staging"]
    assert settings["bindings"][1]["id"] == D1_DATABASES["staging"][1]


def test_put_version_secrets_makes_an_undeployed_version(client, secured_app, caplog):
    caplog.set_level(logging.DEBUG)
    before = client.list_deployments(STAGING)[0]
    version = client.put_version_secrets(
        STAGING, {"ANTHROPIC_API_KEY": VALUE}, "Rotate ANTHROPIC_API_KEY"
    )
    assert (version.triggered_by, version.message) == ("secret", "Rotate ANTHROPIC_API_KEY")
    assert version.author_email == secured_app.user_email
    assert client.list_deployments(STAGING)[0] == before
    digest = hashlib.sha256(VALUE.encode()).hexdigest()
    assert secured_app.secret_digest(STAGING, version.id, "ANTHROPIC_API_KEY") == digest
    assert VALUE not in caplog.text and "PATCH" in caplog.text  # the SDK did log the request

    removed = client.put_version_secrets(STAGING, {"MOLTBOT_GATEWAY_TOKEN": None}, "Drop it")
    assert [b["name"] for b in removed.bindings if b["type"] == "secret_text"] == [
        "ANTHROPIC_API_KEY"
    ]
    with pytest.raises(ValueError, match="must be a string or None"):
        client.put_version_secrets(STAGING, {"A": 5}, "m")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, None),  # the API's own error envelope
        (
            400,
            {
                "success": False,
                "errors": [
                    {"code": 10053, "message": f"bad value {VALUE!r} for ANTHROPIC_API_KEY"}
                ],
                "messages": [],
                "result": None,
            },
        ),  # an answer that quotes the value back
        (200, {"success": True, "errors": [], "messages": [], "result": {"echo": VALUE}}),
        (503, f"<html>upstream echoed {VALUE}</html>"),
    ],
)
def test_an_error_of_put_version_secrets_never_shows_the_value(
    client, secured_app, caplog, status, body
):
    caplog.set_level(logging.DEBUG)
    secured_app.fail_next(LATEST, status, body=body)
    with pytest.raises(CloudflareError) as failed:
        client.put_version_secrets(PRODUCTION, {"ANTHROPIC_API_KEY": VALUE}, "Rotate")
    error = failed.value
    assert VALUE not in str(error) and VALUE not in repr(error)
    assert VALUE not in str(error.args) and VALUE not in caplog.text
    assert error.__cause__ is None and error.__context__ is None
    assert "versions/latest" in str(error)
    if status == 400:
        assert (error.status, error.code) in ((400, 10004), (400, 10053))


def test_the_emulator_refusals_reach_the_caller_as_errors(client):
    with pytest.raises(CloudflareError) as unknown:
        client.list_secrets("nope")
    assert (unknown.value.status, unknown.value.code) == (404, 10007)
    with pytest.raises(CloudflareError) as bound:
        client.put_version_secrets(PRODUCTION, {"MOLTBOT_BUCKET": VALUE}, "oops")
    assert bound.value.code == 10053 and VALUE not in str(bound.value)
    with pytest.raises(CloudflareError) as settings:
        client.script_settings("nope")
    assert settings.value.code == 10007


def test_d1_databases_and_queries(client):
    databases = client.list_d1_databases()
    assert {(d["name"], d["uuid"]) for d in databases} == set(D1_DATABASES.values())
    staging = D1_DATABASES["staging"][1]
    [rows] = client.d1_query(staging, "SELECT name FROM d1_migrations WHERE id > ?", ["0"])
    assert rows["success"] is True
    assert rows["results"] == [{"name": "0001_init.sql"}, {"name": "0002_sessions.sql"}]
    two = client.d1_query(staging, "SELECT 1 AS a; SELECT 2 AS b")
    assert [r["results"] for r in two] == [[{"a": 1}], [{"b": 2}]]
    with pytest.raises(CloudflareError) as failed:
        client.d1_query(staging, "SELECT * FROM nowhere")
    assert (failed.value.status, failed.value.code) == (400, 7500)
    assert "no such table: nowhere" in str(failed.value)


def test_a_deployment_pair_with_a_tiny_share_is_sent_as_given(client, secured_app):
    latest = secured_app.state.versions[STAGING][-1]["id"]
    staged = client.put_version_secrets(STAGING, {"ANTHROPIC_API_KEY": VALUE}, "stage").id
    made = client.create_deployment(STAGING, [(staged, 0.01), (latest, 99.99)], message="test")
    assert made["versions"] == [(staged, 0.01), (latest, 99.99)]
    # 0 % is sent too; the emulator refuses it as the OpenAPI subset does (minimum 0.01).
    with pytest.raises(CloudflareError) as zero:
        client.create_deployment(STAGING, [(staged, 0), (latest, 100)])
    assert zero.value.code == 10021 and "0.01" in str(zero.value)


def test_a_version_detail_without_resources_is_malformed(client, secured_app):
    version_id = secured_app.state.versions[PRODUCTION][-1]["id"]
    body = {
        "success": True,
        "errors": [],
        "messages": [],
        "result": {**secured_app.state.versions[PRODUCTION][-1], "resources": {"bindings": [7]}},
    }
    secured_app.fail_next(r"/versions/[^/]+$", 200, body=body)
    with pytest.raises(MalformedResponse, match=r"result\.resources\.bindings\[0\]"):
        client.get_version(PRODUCTION, version_id)


@pytest.mark.parametrize(
    ("result", "field"),
    [
        ({}, r"result\.bindings"),
        ({"bindings": None}, r"result\.bindings"),
        ({"bindings": {"DB": {}}}, r"result\.bindings"),
        ({"bindings": [7]}, r"result\.bindings\[0\]"),
        ({"bindings": [{"name": "DB"}]}, r"result\.bindings\[0\]\.type"),
        ({"bindings": [], "compatibility_flags": "nodejs_compat"}, r"compatibility_flags"),
        ({"bindings": [], "compatibility_flags": [1]}, r"compatibility_flags\[0\]"),
        ({"bindings": [], "compatibility_date": 20260501}, r"compatibility_date"),
        ({"bindings": [], "usage_model": ["standard"]}, r"usage_model"),
        ({"bindings": [], "limits": 50}, r"limits"),
        ({"bindings": [], "logpush": "yes"}, r"logpush"),
        ({"bindings": [], "tags": "cf:service"}, r"tags"),
    ],
)
def test_settings_without_a_bindings_list_or_of_another_shape_are_malformed(
    client, secured_app, result, field
):
    # read as given, {} would be a Worker with no bindings: every binding of git "missing"
    body = {"success": True, "errors": [], "messages": [], "result": result}
    secured_app.fail_next(r"/workers/scripts/[^/]+/settings$", 200, body=body)
    with pytest.raises(MalformedResponse, match=field):
        client.script_settings(STAGING)
    settings = client.script_settings(STAGING)  # the emulator's own answer reads
    assert {b["type"] for b in settings["bindings"]} == {"r2_bucket", "d1"}


def quoted_error(message: str) -> dict:
    error = {"code": 10021, "message": message}
    return {"success": False, "errors": [error], "messages": [], "result": None}


def runs_of(value: str, text: str, size: int = 8) -> list[str]:
    return [
        value[i : i + size] for i in range(len(value) - size + 1) if value[i : i + size] in text
    ]


ASCII, OTHERS = "abcdefghijklmnopqrstuvwxyz0123456789", "äöüßжщфыяλπΩ漢字éñ"
LONG = {  # 600 characters each: over the 500 kept of an API message
    "ascii": "".join(ASCII[(i * 7 + i // 36) % len(ASCII)] for i in range(600)),
    "non-ascii": "".join(OTHERS[(i * 5 + i // 16) % len(OTHERS)] for i in range(600)),
}


@pytest.mark.parametrize("kind", sorted(LONG))
@pytest.mark.parametrize("quoted", ["whole", "cut by the API"])
def test_a_long_value_quoted_in_an_api_error_is_hidden_before_the_message_is_cut(
    client, secured_app, caplog, kind, quoted
):
    """600 characters, over the 500 the client keeps of an API message: hidden whole
    first, and a run of 8 characters or more of it (a value the API cut) hidden too."""
    caplog.set_level(logging.DEBUG)
    value = LONG[kind]
    said = value if quoted == "whole" else value[:300]
    secured_app.fail_next(LATEST, 400, body=quoted_error(f"Invalid secret text: {said}; fix it"))
    with pytest.raises(CloudflareError) as failed:
        client.put_version_secrets(STAGING, {"ANTHROPIC_API_KEY": value, "OTHER": VALUE}, "m")
    error = failed.value
    shown = f"{error} {error!r} {error.args!r} {vars(error)!r} {caplog.text}"
    assert runs_of(value, shown) == [] and VALUE not in shown
    assert str(error).endswith("API error 10021: Invalid secret text: ***; fix it")
    assert error.code == 10021 and error.status == 400


def test_the_token_quoted_late_in_a_long_api_message_is_hidden_whole(client, secured_app):
    """The token at character 480 of a 600-character message: hidden before the cut at
    500, so no prefix of it survives the cut."""
    message = "x" * 480 + f" token {SECRET} refused " + "y" * 60
    secured_app.fail_next(r"/secrets$", 403, body=quoted_error(message))
    with pytest.raises(CloudflareError) as failed:
        client.list_secrets(STAGING)
    shown = f"{failed.value} {failed.value!r} {vars(failed.value)!r}"
    assert runs_of(SECRET, shown) == []
    assert " token *** refused " in str(failed.value)
    assert "characters)" in str(failed.value)  # still cut, after hiding


def test_a_build_log_offering_fresh_cursors_forever_stops_at_max_pages(secured_app, secured_url):
    client = CloudflareClient(
        secured_app.state.account_id, SECRET, secured_url, sleep=no_wait, max_pages=5
    )
    logs = r"/builds/builds/b-endless/logs$"
    for i in range(50):
        page = {"lines": [[1733356800000, "still going"]], "truncated": True, "cursor": f"c{i}"}
        secured_app.fail_next(logs, 200, body={"success": True, "errors": [], "result": page})
    secured_app.clear_requests()

    with pytest.raises(CloudflareError, match="after 5 pages.*max_pages"):
        client.build_log("b-endless")

    assert secured_app.count(logs) == 5
