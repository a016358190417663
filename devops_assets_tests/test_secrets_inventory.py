"""The secret inventory: names from the versions serving, ages from our own rotation
records, changes made elsewhere flagged (age unknown), required secrets missing."""

from __future__ import annotations

import json

import dagster as dg
import httpx
import pytest

from devops_assets.defs.deploy.parts import KEY, deploy_parts
from devops_assets.defs.secrets.assets import CHECK, secret_inventory
from devops_assets.delivery import secrets
from devops_assets.demo.scenario import commit_file
from devops_assets.emulator.app import EMULATOR_TOKEN, load_app
from devops_assets.sources.cloudflare import EMULATOR_URL, CloudflareClient, CloudflareError
from devops_assets.sources.git_refs import read_blob
from devops_assets.wrangler.files import strip_jsonc
from devops_assets_tests.test_secrets_rotation import (
    ANTHROPIC,
    CISO,
    GATEWAY,
    OPS,
    STAGING,
    request,
)

PERSON = "jonah@moltworker.example"


def rows_of(world, run_id="run-inv"):
    return {(r.environment, r.secret): r for r in secrets.inventory(world.runtime(run_id))}


def test_seeded_secrets_were_set_outside_the_platform_and_have_no_known_age(world):
    rows = rows_of(world)
    assert set(rows) == {(e, s) for e in ("staging", "production") for s in (GATEWAY, ANTHROPIC)}
    for row in rows.values():
        assert row.present and row.changed_outside and row.changed_outside_at is not None
        assert (row.status, row.due_at, row.last_rotated_at) == ("unknown_age", None, None)
    assert rows[("production", GATEWAY)].worker == "moltworker"
    assert rows[("staging", GATEWAY)].max_age_days == 30
    assert rows[("staging", ANTHROPIC)].max_age_days == 90


def test_a_change_outside_the_platform_after_a_rotation_makes_the_age_unknown(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert rows_of(world)[("staging", GATEWAY)].status == "ok"

    version = world.app().put_secret_outside(STAGING, GATEWAY, "typed-by-hand", PERSON)
    rows = rows_of(world, "run-inv-2")
    changed = rows[("staging", GATEWAY)]
    assert changed.changed_outside and changed.status == "unknown_age"
    assert changed.due_at is None and changed.last_rotated_at is not None
    assert changed.changed_outside_at.isoformat().startswith(version["metadata"]["created_on"][:19])
    # production's secret of the same name is another worker's: untouched by this
    assert rows[("production", GATEWAY)].last_rotated_at is None
    # the next check asks for a rotation of the changed secret
    done = secrets.check_due(world.runtime("run-check"))
    assert ("staging", GATEWAY) in {(r.environment, r.secret) for r in done.requested}


def _require(world, branch: str, extra: str) -> None:
    """A commit on ``branch`` whose wrangler.jsonc requires one more secret in staging."""
    repo = world.repo
    raw = json.loads(strip_jsonc(read_blob(repo, branch, "wrangler.jsonc").decode()))
    raw["env"]["staging"]["secrets"]["required"].append(extra)
    text = json.dumps(raw, indent=2) + "\n"
    commit_file(
        repo, branch, "wrangler.jsonc", text, "chore: require a signing key", world.app().now()
    )


def test_a_required_secret_the_worker_lacks_is_a_finding(world):
    _require(world, "hardshell", "SESSION_SIGNING_KEY")
    rows = rows_of(world)
    missing = rows[("staging", "SESSION_SIGNING_KEY")]
    assert (missing.present, missing.status) == (False, "missing")
    assert ("production", "SESSION_SIGNING_KEY") not in rows
    # a missing secret is not "due": there is nothing to rotate
    done = secrets.check_due(world.runtime("run-check"))
    assert "SESSION_SIGNING_KEY" not in {r.secret for r in done.requested}

    result = dg.materialize(
        [secret_inventory],
        resources={KEY: deploy_parts(world.config)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == CHECK and not check.passed
    assert check.metadata["missing"].value == "staging:SESSION_SIGNING_KEY"
    [mat] = result.asset_materializations_for_node("secret_inventory")
    assert mat.metadata["missing_required"].value == 1
    table = mat.metadata["inventory"].value
    assert "`SESSION_SIGNING_KEY` | missing" in table
    assert "unknown_age" in table


def test_an_api_error_fails_the_inventory_rather_than_reading_no_secrets(world):
    rt = world.runtime("run-inv")
    rt.client.close()
    app = load_app(world.config.cloudflare.emulator_state, persist=True)
    app.fail_next(r"/versions/", 500, times=20)  # every version detail fails
    rt.client = CloudflareClient(
        world.config.cloudflare.account_id,
        EMULATOR_TOKEN,
        EMULATOR_URL,
        transport=httpx.WSGITransport(app=app),
    )
    before = world.warehouse.secrets.inventory()
    with pytest.raises(CloudflareError):
        secrets.inventory(rt)
    assert world.warehouse.secrets.inventory() == before
