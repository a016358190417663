"""sync_config on the seeded demo (the emulator is the only stand-in): what a drift
finding says, what the job does with it, which rules hold it, what it audits."""

from __future__ import annotations

import hashlib

import dagster as dg
import httpx
import pytest

from devops_assets.config import load_config
from devops_assets.defs import build_definitions
from devops_assets.defs.environments.assets import config_drift
from devops_assets.defs.resources import build_resources
from devops_assets.delivery import deployer, sync
from devops_assets.emulator import EMULATOR_TOKEN
from devops_assets.sources.cloudflare import EMULATOR_URL, CloudflareClient
from devops_assets_tests.deploy_fixtures import GOOD

OPS = "ops@moltworker.example"
STAGING = "moltworker-staging"
DATE_KEY = "deployed.staging.compatibility_date"
KEY_KEY = "deployed.staging.secrets.ANTHROPIC_API_KEY"
TOKEN_KEY = "deployed.staging.secrets.MOLTBOT_GATEWAY_TOKEN"
SOURCE = "MOLTWORKER_NEXT_ANTHROPIC_API_KEY"  # the demo's [[secrets.policy]] source
VALUE = "gw-token-sync-test-7f3a9c1e5b2d"  # the test's secret value: must never show


def found(findings) -> list[tuple[str, str, str, str]]:
    return [(f.key, f.kind, f.severity, f.action) for f in findings]


def staged_head(world) -> str:
    """A new head of hardshell, built and deployed to staging by the deploy policy."""
    sha = world.push(GOOD)
    deployer.deploy(world.runtime("run-staging"), "staging", sha, OPS, "try")
    return sha


def view(world, environment="staging", client=None):
    client = client or world.runtime().client
    return sync.deployed_view(world.config, world.repo, client, environment)


def drift_check(config) -> tuple[bool, dict]:
    result = dg.materialize([config_drift], resources=build_resources(config))
    [evaluation] = result.get_asset_check_evaluations()
    [event] = result.get_asset_materialization_events()
    return evaluation.passed, event.materialization.metadata


def run_sync(world, keys, environment="staging", config=None, **extra):
    defs = build_definitions(config or world.config)
    job = defs.resolve_job_def("sync_config")
    run_config = {
        "environment": environment,
        "keys": keys,
        "requested_by": OPS,
        "reason": "git is the source of truth",
        **extra,
    }
    return job.execute_in_process(
        run_config={"ops": {"sync_findings": {"config": run_config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def failure_text(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message


def failing_client(world, path: str, status: int = 403) -> CloudflareClient:
    """A client of an emulator app that refuses ``path`` (a permission error)."""
    app = world.app()
    app.fail_next(path, status, times=50)
    transport = httpx.WSGITransport(app=app)
    account = world.config.cloudflare.account_id
    return CloudflareClient(account, EMULATOR_TOKEN, EMULATOR_URL, transport=transport)


def test_a_setting_changed_in_the_dashboard_is_synced_from_git(world):
    staged_head(world)
    assert view(world).findings == []
    edited = world.app().change_setting(STAGING, compatibility_date="2026-06-15")

    assert found(view(world).findings) == [(DATE_KEY, "changed", "high", "redeploy")]
    passed, metadata = drift_check(world.config)
    assert not passed and metadata["staging_vs_deployed"].value == 1
    assert metadata["high"].value == 1 and metadata["not_allowed"].value == 1

    result = run_sync(world, [DATE_KEY])

    assert result.success
    assert view(world).findings == []
    assert drift_check(world.config)[0]
    serving = world.deployments(STAGING)[-1]["versions"]
    assert serving == [{"version_id": result.output_for_node("sync_findings"), "percentage": 100}]
    assert serving[0]["version_id"] != edited["id"]
    rows = [(r.action, r.outcome) for r in world.warehouse.audit_log("staging")]
    assert rows[-4:] == [
        ("sync_config", "allowed"),
        ("rollback", "allowed"),  # the head's own upload served again
        ("rollback", "succeeded"),
        ("sync_config", "succeeded"),
    ]
    assert world.warehouse.audit_log("staging")[-1].detail["keys"] == [DATE_KEY]
    assert world.notices()[-1] == "synced" and "sync_started" in world.notices()


ALLOW = """
[[drift.allow]]
key = "deployed.staging.compatibility_date"
reason = "trying the new runtime on staging before changing git"
owner = "jonah@moltworker.example"
expires = {expires}
"""


def test_the_allow_list_accepts_a_deployed_difference_until_it_expires(world, tmp_path):
    world.app().change_setting(STAGING, compatibility_date="2026-06-15")
    path = tmp_path / "platform.toml"
    base = world.config.path.read_text(encoding="utf-8")

    path.write_text(base + ALLOW.format(expires="2026-12-31"), encoding="utf-8")
    passed, metadata = drift_check(load_config(path))
    assert passed and metadata["allowed"].value == 1 and metadata["not_allowed"].value == 0
    assert "| `deployed.staging.compatibility_date` | changed | high | yes |" in (
        metadata["drift"].value
    )

    path.write_text(base + ALLOW.format(expires="2026-11-29"), encoding="utf-8")
    passed, metadata = drift_check(load_config(path))  # the demo's as_of is 2026-11-30
    assert not passed and metadata["not_allowed"].value == 1
    assert metadata["expired_allow_entries"].value == f"{DATE_KEY} (2026-11-29)"


def test_a_secret_changed_after_the_heads_version_refuses_the_redeploy(world):
    staged_head(world)
    app = world.app()
    app.change_setting(STAGING, compatibility_date="2026-06-15")
    secret = app.put_secret_outside(STAGING, "ANTHROPIC_API_KEY", "another-key", "mara@x.example")
    deployments = len(world.deployments(STAGING))

    result = run_sync(world, [DATE_KEY])

    assert not result.success
    assert "findings: secrets of moltworker-staging changed after version" in failure_text(result)
    assert secret["id"] in failure_text(result) and "push a commit instead" in failure_text(result)
    assert len(world.deployments(STAGING)) == deployments  # nothing served
    row = world.warehouse.audit_log("staging")[-1]
    assert (row.action, row.outcome) == ("sync_config", "refused")
    assert [r["rule"] for r in row.detail["refusals"]] == ["findings"]


def delete_secret(world, name: str) -> None:
    """``wrangler secret delete`` by someone: a new version without it, deployed."""
    auth = {"Authorization": f"Bearer {EMULATOR_TOKEN}"}
    account = world.config.cloudflare.account_id
    url = f"{EMULATOR_URL}/accounts/{account}/workers/scripts/{STAGING}/secrets/{name}"
    with httpx.Client(transport=httpx.WSGITransport(app=world.app()), headers=auth) as http:
        assert http.delete(url).status_code == 200


def test_after_a_secret_put_on_the_heads_version_that_version_is_served_again(world):
    """A secret changed through the API (derived from the head's upload), then a
    dashboard edit: the secret's version still matches git and is the one served."""
    staged_head(world)
    app = world.app()
    secret = app.put_secret_outside(STAGING, "ANTHROPIC_API_KEY", "rotated-key", "mara@x.example")
    app.change_setting(STAGING, compatibility_date="2026-06-15")

    result = run_sync(world, [DATE_KEY])

    assert result.success, failure_text(result)
    assert result.output_for_node("sync_findings") == secret["id"]
    assert view(world).findings == []


def test_a_missing_required_secret_is_put_from_its_source_staged_and_promoted(world, monkeypatch):
    staged_head(world)
    delete_secret(world, "ANTHROPIC_API_KEY")
    assert found(view(world).findings) == [(KEY_KEY, "missing", "critical", "put_secret")]
    monkeypatch.delenv(SOURCE, raising=False)
    refused = run_sync(world, [KEY_KEY])
    assert not refused.success
    assert f"environment variable {SOURCE} is not set" in failure_text(refused)

    monkeypatch.setenv(SOURCE, VALUE)
    result = run_sync(world, [KEY_KEY])

    assert result.success, failure_text(result)
    version = result.output_for_node("sync_findings")
    assert view(world).findings == []
    expected = hashlib.sha256(VALUE.encode()).hexdigest()
    assert world.app().secret_digest(STAGING, version, "ANTHROPIC_API_KEY") == expected
    row = world.warehouse.audit_log("staging")[-1]
    assert (row.action, row.outcome) == ("sync_config", "succeeded")
    assert row.detail["secrets_put"] == ["ANTHROPIC_API_KEY"]
    # the value is nowhere: audit rows, notices, run events
    everything = repr(world.warehouse.audit_log()) + repr(result.all_events)
    everything += world.home.joinpath("notifications.jsonl").read_text(encoding="utf-8")
    assert VALUE not in everything


def test_a_generated_secret_is_not_made_up_by_a_sync(world):
    staged_head(world)
    delete_secret(world, "MOLTBOT_GATEWAY_TOKEN")
    result = run_sync(world, [TOKEN_KEY])
    assert not result.success
    assert "sync_config puts values from env: or file: only" in failure_text(result)


def test_an_api_error_is_unknown_never_missing_and_is_not_synced(world):
    staged_head(world)
    client = failing_client(world, r"/workers/scripts/[^/]+/settings$")
    findings = view(world, client=client).findings
    assert found(findings) == [("deployed.staging.settings", "unknown", "high", "retry")]
    assert "403" in findings[0].detail
    client = failing_client(world, r"/workers/scripts/[^/]+/secrets$")
    assert found(view(world, client=client).findings) == [
        ("deployed.staging.secrets", "unknown", "high", "retry")
    ]

    rt = world.runtime("run-sync")
    rt.client = failing_client(world, r"/workers/scripts/[^/]+/settings$")
    with pytest.raises(deployer.DeployRefused) as refused:
        sync.sync(rt, "staging", ["deployed.staging.settings"], OPS, "r")
    assert "deployed.staging.settings is not synced by this job (retry)" in str(refused.value)


def test_production_is_held_by_the_incident_rule_and_the_window(world, tmp_path):
    app = world.app()
    app.change_setting("moltworker", compatibility_date="2026-06-15")
    app.open_incident("production", "Sessions drop")
    key = "deployed.production.compatibility_date"
    text = world.config.path.read_text(encoding="utf-8").replace(
        'days = ["monday", "tuesday", "wednesday", "thursday", "friday"]',
        'days = ["saturday", "sunday"]',
    )
    path = tmp_path / "weekend-only.toml"
    path.write_text(text, encoding="utf-8")

    result = run_sync(world, [key], environment="production", config=load_config(path))

    assert not result.success
    row = world.warehouse.audit_log("production")[-1]
    assert (row.action, row.outcome) == ("sync_config", "refused")
    rules = [r["rule"] for r in row.detail["refusals"]]
    assert rules[:2] == ["no_active_incident", "deployment_window"]


def test_one_sync_or_deploy_at_a_time_per_environment(world):
    staged_head(world)
    world.app().change_setting(STAGING, compatibility_date="2026-06-15")
    now = world.app().now()
    assert world.warehouse.deploys.acquire("staging", "other-run", OPS, "", now, bool) is None
    rt = world.runtime("run-sync", active=("other-run",))

    with pytest.raises(deployer.DeployRefused) as refused:
        sync.sync(rt, "staging", [DATE_KEY], OPS, "r")

    assert "one_at_a_time: another deploy to staging is running: other-run" in str(refused.value)
    assert world.warehouse.deploys.holder("staging") == "other-run"


def test_keys_the_job_does_not_sync_are_refused_saying_why(world):
    staged_head(world)
    world.app().change_setting(STAGING, compatibility_date="2026-06-15")
    rt = world.runtime("run-sync")
    with pytest.raises(deployer.DeployRefused) as refused:
        sync.sync(rt, "staging", ["vars.GATEWAY_URL", "deployed.staging.vars.NOPE"], OPS, "r")
    text = str(refused.value)
    assert (
        "vars.GATEWAY_URL: a difference between staging and production in git is synced "
        "by editing the wrangler file" in text
    )
    assert "deployed.staging.vars.NOPE is not a finding of staging now" in text
    with pytest.raises(deployer.DeployInputError, match="keys: at least one finding key"):
        sync.sync(rt, "staging", [], OPS, "r")


def test_the_job_takes_literal_config_only_and_runs_in_the_deploy_lane(world, monkeypatch):
    monkeypatch.setenv("SOMEONE", OPS)
    result = run_sync(world, [DATE_KEY], requested_by={"env": "SOMEONE"})
    assert not result.success
    assert "requested_by: a literal value" in failure_text(result)
    job = build_definitions(world.config).resolve_job_def("sync_config")
    assert job.tags["devops_assets/deploy"] == "lane"
    assert all(node.retry_policy is None for node in job.graph.node_defs)


def test_the_demo_story_shows_drift_then_syncs_it(world, capsys):
    from devops_assets.demo import drift_story

    staged_head(world)
    instance = dg.DagsterInstance.ephemeral()
    lines = drift_story.play(world.config, build_definitions(world.config), instance)
    text = "\n".join(lines)
    assert text.count("config_drift: 0 finding(s)") == 2
    assert f"check FAILS on {DATE_KEY}" in text
    assert f"synced {DATE_KEY}; version" in text
    assert text.rstrip().endswith("check passes")


def test_after_a_failed_rotation_the_heads_own_version_is_served_again(world):
    """The failed rotation's abandoned version (made from the dashboard's, mapped to
    the head's build) is neither served nor counted as a secret change to lose."""
    from devops_assets_tests.test_secrets_rotation import GATEWAY, fail_rotation, serving

    staged_head(world)
    upload = serving(world)
    old = world.app().secret_digest(STAGING, upload, GATEWAY)
    world.app().change_setting(STAGING, compatibility_date="2026-06-15")
    _, abandoned = fail_rotation(world)

    result = run_sync(world, [DATE_KEY])

    assert result.success, failure_text(result)
    assert result.output_for_node("sync_findings") == upload != abandoned
    assert serving(world) == upload
    assert world.app().secret_digest(STAGING, upload, GATEWAY) == old
    assert view(world).findings == []


def test_a_refusal_after_a_failed_rotation_says_to_retry_it_before_pushing(world):
    """Secrets changed after the head's versions: a push is the way, but not while a
    failed rotation's version is the latest (the build would copy its value)."""
    from devops_assets_tests.test_secrets_rotation import fail_rotation

    staged_head(world)
    app = world.app()
    app.change_setting(STAGING, compatibility_date="2026-06-15")
    put = app.put_secret_outside(STAGING, "ANTHROPIC_API_KEY", "another-key", "mara@x.example")
    req, abandoned = fail_rotation(world)

    result = run_sync(world, [DATE_KEY])

    assert not result.success
    text = failure_text(result)
    assert put["id"] in text and abandoned not in text.split("but first")[0]
    assert "push a commit instead (its build copies the latest version's secrets)" in text
    assert f"but first retry {req.request_id}: the latest version {abandoned} holds" in text
    assert text.rstrip().endswith("its never-promoted value")  # whole, not cut short


# -- what sync_config puts on record, and how --------------------------------------------


@pytest.mark.parametrize("kind", ["ascii", "non-ascii"])
def test_a_long_value_the_api_quotes_back_during_a_put_shows_nowhere(world, monkeypatch, kind):
    from devops_assets_tests.test_secrets_rotation import (
        everything_stored,
        long_value,
        pieces_shown,
        quoting_client,
    )

    value = long_value(kind)
    staged_head(world)
    delete_secret(world, "ANTHROPIC_API_KEY")
    monkeypatch.setenv(SOURCE, value)
    rt = world.runtime("run-sync")
    rt.client.close()
    rt.client = quoting_client(world, value)
    with pytest.raises(deployer.DeployFailed) as caught:
        sync.sync(rt, "staging", [KEY_KEY], OPS, "put the key")
    error = f"{caught.value} {caught.value!r}"
    assert "Invalid secret text: ***" in error
    assert pieces_shown(value, error) == []
    row = world.warehouse.audit_log("staging")[-1]
    assert (row.action, row.outcome) == ("sync_config", "failed")
    assert "sync_failed" in world.notices()
    assert pieces_shown(value, everything_stored(world)) == []


def test_an_unreadable_fact_refuses_the_sync_with_a_sync_notice(world):
    from devops_assets_tests.test_d1_apply import commit

    staged_head(world)
    world.app().change_setting(STAGING, compatibility_date="2026-06-15")
    commit(world, "hardshell", "wrangler.jsonc", "{ this is not json", "break the file")
    before = len(world.notices())
    with pytest.raises(deployer.DeployRefused) as caught:
        sync.sync(world.runtime("run-sync"), "staging", [DATE_KEY], OPS, "sync the date")
    assert [r.rule for r in caught.value.decision.refusals] == ["facts"]
    row = world.warehouse.audit_log("staging")[-1]
    assert (row.action, row.outcome) == ("sync_config", "refused")
    assert world.notices()[before:] == ["sync_refused"]


@pytest.mark.parametrize(
    "who",
    ["not an address", "ops@moltworker.example.", "оps@moltworker.example", "Ops Team"],
    ids=ascii,
)
def test_a_requester_that_is_no_plain_address_is_refused_and_audited(world, who):
    staged_head(world)
    world.app().change_setting(STAGING, compatibility_date="2026-06-15")
    deployments = len(world.deployments(STAGING))
    before = len(world.notices())
    with pytest.raises(deployer.DeployRefused) as caught:
        sync.sync(world.runtime("run-sync"), "staging", [DATE_KEY], who, "sync the date")
    assert [r.rule for r in caught.value.decision.refusals] == ["identity"]
    row = world.warehouse.audit_log("staging")[-1]
    assert (row.action, row.outcome, row.actor) == ("sync_config", "refused", ascii(who)[1:-1])
    assert world.notices()[before:] == ["sync_refused"]
    assert len(world.deployments(STAGING)) == deployments
    # refused before the lock: the next sync is not held by this one
    assert sync.sync(world.runtime("run-next"), "staging", [DATE_KEY], OPS, "again").remaining == []


def test_the_requester_is_kept_in_identity_normal_form(world):
    staged_head(world)
    world.app().change_setting(STAGING, compatibility_date="2026-06-15")
    sync.sync(world.runtime("run-sync"), "staging", [DATE_KEY], " OPS@Moltworker.Example", "r")
    rows = [r for r in world.warehouse.audit_log("staging") if r.run_id == "run-sync"]
    assert rows and {r.actor for r in rows} == {OPS}
