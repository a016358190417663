"""The config_drift asset on the demo repository: its wrangler file at main's head."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from devops_assets.config import ConfigError, load_config
from devops_assets.defs.environments.assets import config_drift
from devops_assets.defs.resources import build_resources
from devops_assets.demo.scenario import commit_file


def materialize(config) -> dg.ExecuteInProcessResult:
    return dg.materialize([config_drift], resources=build_resources(config), raise_on_error=False)


def check_passed(result) -> bool:
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation.passed


def test_the_demo_has_no_drift_and_the_check_passes(world):
    result = materialize(world.config)
    assert result.success and check_passed(result)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["file"].value == "main:wrangler.jsonc" and metadata["findings"].value == 0


def with_production_var(world) -> None:
    text = world.git("show", "main:wrangler.jsonc").splitlines()
    body = json.loads("\n".join(line for line in text if not line.lstrip().startswith("//")))
    body["vars"] = {"GATEWAY_URL": "https://gw.example.com"}
    when = world.app().now()
    commit_file(
        world.repo, "main", "wrangler.jsonc", json.dumps(body, indent=2), "chore: var", when
    )


def platform_with(world, tmp_path, extra: str):
    path = tmp_path / "platform.toml"
    path.write_text(world.config.path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return load_config(path)


# The var is committed to main but not deployed yet, so it is also drift between
# production's config in git and the deployed worker: both entries are needed.
ALLOW = """
[[drift.allow]]
key = "vars.GATEWAY_URL"
reason = "staging reaches the gateway through its default"
owner = "ops@moltworker.example"
expires = {expires}

[[drift.allow]]
key = "deployed.production.vars.GATEWAY_URL"
reason = "goes out with the next production deploy"
owner = "ops@moltworker.example"
expires = {expires}
"""


def test_a_var_only_production_has_fails_the_check_until_allowed(world, tmp_path):
    with_production_var(world)
    result = materialize(world.config)
    assert result.success and not check_passed(result)
    table = result.get_asset_materialization_events()[0].materialization.metadata["drift"].value
    assert "| `vars.GATEWAY_URL` | missing | medium | no |" in table

    allowed = platform_with(world, tmp_path, ALLOW.format(expires="2026-12-31"))
    assert check_passed(materialize(allowed))
    expired = platform_with(world, tmp_path, ALLOW.format(expires="2026-11-29"))
    assert not check_passed(materialize(expired))  # the demo's as_of is 2026-11-30


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('\n[drift]\nwrangler_file = "../outside.toml"\n', "drift.wrangler_file"),
        # a real NUL (TOML's \u0000) and other control characters, not only "\\0"
        ('\n[drift]\nwrangler_file = "wrangler\\u0000.toml"\n', "drift.wrangler_file"),
        ('\n[drift]\nwrangler_file = "wrangler\\n.toml"\n', "drift.wrangler_file"),
        ('\n[drift]\nwrangler_file = "wrangler\\u007f.toml"\n', "drift.wrangler_file"),
        ("\n[drift]\nunknown = 1\n", "drift.unknown"),
        (
            '\n[[drift.allow]]\nkey = "vars.X"\nreason = "r"\nowner = "o"\nexpires = "soon"\n',
            "drift.allow[0].expires",
        ),
    ],
)
def test_bad_drift_settings_are_refused_naming_the_key(world, tmp_path, extra, key):
    with pytest.raises(ConfigError) as caught:
        platform_with(world, tmp_path, extra)
    assert caught.value.key == key
    assert str(tmp_path / "platform.toml") in str(caught.value)
