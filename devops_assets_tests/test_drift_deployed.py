"""Drift between git and what is deployed: hand-made pairs with known answers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from devops_assets.emulator import EMULATOR_TOKEN
from devops_assets.sources.cloudflare import EMULATOR_URL, CloudflareClient, VersionDetail
from devops_assets.wrangler.deployed import Deployed, compare, read_deployed, version_settings
from devops_assets.wrangler.drift import Allowed, drift, expired, failing
from devops_assets.wrangler.environments import load

GIT = """
name = "moltworker"
main = "src/index.ts"
compatibility_date = "2026-05-01"
compatibility_flags = ["nodejs_compat"]

[vars]
LOG_LEVEL = "warn"
[[r2_buckets]]
binding = "MOLTBOT_BUCKET"
bucket_name = "moltbot-data"
[[d1_databases]]
binding = "DB"
database_name = "moltworker-db"
database_id = "00000000-0000-4000-8000-000000000001"
[secrets]
required = ["ANTHROPIC_API_KEY", "MOLTBOT_GATEWAY_TOKEN"]

[env.staging]
[env.staging.vars]
LOG_LEVEL = "debug"
[[env.staging.r2_buckets]]
binding = "MOLTBOT_BUCKET"
bucket_name = "moltbot-staging"
[[env.staging.d1_databases]]
binding = "DB"
database_name = "moltworker-staging-db"
database_id = "00000000-0000-4000-8000-000000000002"
[env.staging.secrets]
required = ["ANTHROPIC_API_KEY", "MOLTBOT_GATEWAY_TOKEN"]
"""

SECRETS = (("ANTHROPIC_API_KEY", "secret_text"), ("MOLTBOT_GATEWAY_TOKEN", "secret_text"))


def staging_settings(**changes) -> dict:
    """What the API would say of a staging Worker deployed exactly from GIT."""
    settings = {
        "bindings": [
            {"name": "MOLTBOT_BUCKET", "type": "r2_bucket", "bucket_name": "moltbot-staging"},
            {
                "binding": "DB",
                "name": "moltworker-staging-db",
                "type": "d1",
                "id": "00000000-0000-4000-8000-000000000002",
            },
            {"name": "LOG_LEVEL", "type": "plain_text", "text": "debug"},
            {"name": "ANTHROPIC_API_KEY", "type": "secret_text"},
            {"name": "MOLTBOT_GATEWAY_TOKEN", "type": "secret_text"},
        ],
        "compatibility_date": "2026-05-01",
        "compatibility_flags": ["nodejs_compat"],
        "usage_model": "standard",
        "tags": ["cf:service=moltworker", "cf:environment=staging"],
    }
    settings.update(changes)
    return settings


def wrangler(tmp_path, text: str = GIT):
    path = tmp_path / "wrangler.toml"
    path.write_text(text, encoding="utf-8")
    return load(path)


def found(findings) -> list[tuple[str, str, str, str]]:
    return [(f.key, f.kind, f.severity, f.action) for f in findings]


def staging(tmp_path, text: str = GIT):
    return wrangler(tmp_path, text).resolve("staging")


def deployed(settings=None, secrets=SECRETS, deployment=(("v2", 100.0),), errors=None):
    return Deployed("moltworker-staging", settings, secrets, deployment, errors or {})


def test_a_worker_deployed_from_git_has_no_drift(tmp_path):
    # compatibility_date and _flags are inherited from the top level in git: the
    # deployed values match the inherited ones, so no finding
    assert compare(staging(tmp_path), deployed(staging_settings()), "staging") == []


def test_missing_binding_changed_var_and_missing_secret_give_exactly_these(tmp_path):
    settings = staging_settings()
    settings["bindings"] = [b for b in settings["bindings"] if b.get("binding") != "DB"]
    for b in settings["bindings"]:
        if b["name"] == "LOG_LEVEL":
            b["text"] = "info"
    secrets = (("ANTHROPIC_API_KEY", "secret_text"),)
    findings = compare(staging(tmp_path), deployed(settings, secrets), "staging")
    assert found(findings) == [
        ("deployed.staging.d1_databases.DB", "missing", "high", "redeploy"),
        ("deployed.staging.vars.LOG_LEVEL", "changed", "medium", "redeploy"),
        ("deployed.staging.secrets.MOLTBOT_GATEWAY_TOKEN", "missing", "critical", "put_secret"),
    ]
    by_key = {f.key: f for f in findings}
    var = by_key["deployed.staging.vars.LOG_LEVEL"]
    assert var.detail == "var LOG_LEVEL: git sets 'debug'; the deployed value differs"
    assert "info" not in var.detail  # the deployed value is never shown
    assert by_key["deployed.staging.secrets.MOLTBOT_GATEWAY_TOKEN"].fix == (
        "put secret MOLTBOT_GATEWAY_TOKEN on moltworker-staging (sync_config puts it from its "
        "[[secrets.policy]] source)"
    )
    assert all(f.comparison == "staging~deployed" for f in findings)


def test_an_inherited_key_changed_at_the_top_level_is_drift_of_the_environment(tmp_path):
    text = GIT.replace('compatibility_date = "2026-05-01"', 'compatibility_date = "2026-06-01"')
    findings = compare(staging(tmp_path, text), deployed(staging_settings()), "staging")
    assert found(findings) == [
        ("deployed.staging.compatibility_date", "changed", "high", "redeploy")
    ]
    assert (
        findings[0].detail
        == "compatibility_date: git '2026-06-01'; moltworker-staging '2026-05-01'"
    )


def test_bindings_only_deployed_another_resource_and_a_shadowed_secret(tmp_path):
    settings = staging_settings()
    settings["bindings"][0]["bucket_name"] = "moltbot-data"  # production's bucket
    settings["bindings"].append({"name": "CACHE", "type": "kv_namespace", "namespace_id": "k1"})
    settings["bindings"].append({"name": "DEBUG", "type": "plain_text", "text": "1"})
    text = GIT.replace('LOG_LEVEL = "debug"', 'LOG_LEVEL = "debug"\nANTHROPIC_API_KEY = "x"')
    findings = compare(staging(tmp_path, text), deployed(settings), "staging")
    assert found(findings) == [
        ("deployed.staging.kv_namespaces.CACHE", "unexpected", "medium", "redeploy"),
        ("deployed.staging.r2_buckets.MOLTBOT_BUCKET", "changed", "high", "redeploy"),
        ("deployed.staging.vars.DEBUG", "unexpected", "low", "redeploy"),
        ("deployed.staging.vars.ANTHROPIC_API_KEY", "changed", "high", "edit"),
    ]


def test_in_production_a_medium_difference_is_high(tmp_path):
    top = wrangler(tmp_path).resolve("")
    settings = staging_settings()
    settings["bindings"] = [
        {"name": "MOLTBOT_BUCKET", "type": "r2_bucket", "bucket_name": "moltbot-data"},
        {"binding": "DB", "type": "d1", "id": "00000000-0000-4000-8000-000000000001"},
        {"name": "LOG_LEVEL", "type": "plain_text", "text": "debug"},
    ]
    there = Deployed("moltworker", settings, SECRETS, (("v9", 100.0),))
    assert found(compare(top, there, "production")) == [
        ("deployed.production.vars.LOG_LEVEL", "changed", "high", "redeploy")
    ]


def test_an_api_error_is_unknown_for_exactly_that_part_never_missing(tmp_path):
    error = "GET /accounts/a/workers/scripts/moltworker-staging/settings: 500 (code 10013)"
    unread_settings = deployed(
        None, (("ANTHROPIC_API_KEY", "secret_text"),), errors={"settings": error}
    )
    findings = compare(staging(tmp_path), unread_settings, "staging")
    # the bindings, vars and runtime keys are unknown; the secret list was read and
    # still says what it says
    assert found(findings) == [
        ("deployed.staging.settings", "unknown", "high", "retry"),
        ("deployed.staging.secrets.MOLTBOT_GATEWAY_TOKEN", "missing", "critical", "put_secret"),
    ]
    assert error in findings[0].detail

    unread_secrets = deployed(staging_settings(), None, errors={"secrets": error})
    assert found(compare(staging(tmp_path), unread_secrets, "staging")) == [
        ("deployed.staging.secrets", "unknown", "high", "retry")
    ]
    nothing = deployed(None, None, None, {p: error for p in ("settings", "secrets", "deployments")})
    findings = compare(staging(tmp_path), nothing, "staging")
    assert [f.kind for f in findings] == ["unknown"] * 3


def test_a_rollout_in_progress_is_reported_not_drift(tmp_path):
    there = deployed(staging_settings(), deployment=(("v3", 10.0), ("v2", 90.0)))
    findings = compare(staging(tmp_path), there, "staging")
    assert found(findings) == [("deployed.staging.deployment", "in_progress", "info", "none")]
    assert failing(findings, (), date(2026, 11, 30)) == []


def test_allow_list_accepts_until_expiry_and_never_accepts_unknown(tmp_path):
    settings = staging_settings()
    settings["bindings"][2]["text"] = "info"
    error = "settings: 503"
    part = deployed(settings)
    findings = compare(staging(tmp_path), part, "staging") + compare(
        staging(tmp_path), deployed(None, SECRETS, errors={"settings": error}), "staging"
    )
    today = date(2026, 11, 30)
    allow = [
        Allowed(
            "deployed.staging.vars.LOG_LEVEL",
            "debugging a gateway issue",
            "ops",
            date(2026, 12, 31),
        ),
        Allowed("deployed.staging.settings", "flaky API", "ops", date(2026, 12, 31)),
    ]
    assert [f.key for f in failing(findings, allow, today)] == ["deployed.staging.settings"]
    lapsed = [Allowed("deployed.staging.vars.LOG_LEVEL", "r", "ops", date(2026, 11, 29))]
    assert [f.key for f in failing(findings, lapsed, today)] == [
        "deployed.staging.vars.LOG_LEVEL",
        "deployed.staging.settings",
    ]
    assert expired(lapsed, today) == lapsed and expired(allow, today) == []


def test_environment_pair_findings_keep_their_keys_and_edit_action(tmp_path):
    config = wrangler(tmp_path)
    findings = drift(config.resolve(""), config.resolve("staging"))
    assert findings == []  # the two environments agree in git
    text = GIT.replace(
        '[[env.staging.d1_databases]]\nbinding = "DB"',
        '[[env.staging.d1_databases]]\nbinding = "DB2"',
    )
    config = wrangler(tmp_path, text)
    assert [
        (f.key, f.kind, f.action, f.comparison)
        for f in drift(config.resolve(""), config.resolve("staging"))
    ] == [
        ("d1_databases.DB", "missing", "edit", "staging~production"),
        ("d1_databases.DB2", "unexpected", "edit", "staging~production"),
    ]


VERSION = VersionDetail(
    id="v7",
    number=7,
    created_on=datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
    author_email="ops@moltworker.example",
    source="workersci",
    triggered_by="version_upload",
    message="feat: x",
    bindings=(
        {"name": "MOLTBOT_BUCKET", "type": "r2_bucket", "bucket_name": "moltbot-staging"},
        {"name": "DB", "type": "d1", "id": "00000000-0000-4000-8000-000000000002"},
        {"name": "LOG_LEVEL", "type": "plain_text", "text": "debug"},
        {"name": "ANTHROPIC_API_KEY", "type": "secret_text"},
    ),
    compatibility_date="2026-05-01",
    compatibility_flags=("nodejs_compat",),
)


def test_a_version_is_compared_like_settings(tmp_path):
    there = deployed(version_settings(VERSION), None, None, {})
    assert compare(staging(tmp_path), there, "staging") == []


def emulator_client(app, seeded) -> CloudflareClient:
    account = seeded[0].cloudflare.account_id
    transport = httpx.WSGITransport(app=app)
    return CloudflareClient(account, EMULATOR_TOKEN, EMULATOR_URL, transport=transport)


def test_the_emulator_answers_are_read_and_a_refused_part_stays_unknown(app, seeded):
    client = emulator_client(app, seeded)
    read = read_deployed(client, "moltworker-staging")
    assert read.errors == {}
    assert {name for name, _ in read.secrets} == {"ANTHROPIC_API_KEY", "MOLTBOT_GATEWAY_TOKEN"}
    assert {b["name"] for b in read.settings["bindings"]} == {"MOLTBOT_BUCKET", "DB"}

    app.fail_next(r"/workers/scripts/moltworker-staging/secrets$", 403, times=10)
    app.fail_next(r"/workers/scripts/moltworker-staging/deployments$", 503, times=10)
    read = read_deployed(emulator_client(app, seeded), "moltworker-staging")
    assert read.secrets is None and read.deployment is None
    assert sorted(read.errors) == ["deployments", "secrets"]
    assert read.settings is not None  # the part that answered is still compared


@pytest.mark.parametrize("result", [{}, {"bindings": None}, {"bindings": [{"name": "DB"}]}])
def test_a_settings_answer_without_bindings_is_unknown_never_every_binding_missing(
    tmp_path, app, seeded, result
):
    body = {"success": True, "errors": [], "messages": [], "result": result}
    app.fail_next(r"/workers/scripts/moltworker-staging/settings$", 200, body=body)
    read = read_deployed(emulator_client(app, seeded), "moltworker-staging")
    assert read.settings is None and "malformed answer" in read.errors["settings"]
    findings = compare(staging(tmp_path), read, "staging")
    assert [(f.key, f.kind, f.action) for f in findings] == [
        ("deployed.staging.settings", "unknown", "retry")
    ]
