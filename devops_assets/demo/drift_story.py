"""The demo's drift story: a setting changed outside git, seen, then synced from git.

1. ``config_drift`` on the seeded workspace: what is deployed matches git;
2. someone edits ``compatibility_date`` of ``moltworker-staging`` in the dashboard
   (a new version, deployed at once): ``config_drift`` shows the finding and its
   check fails;
3. an engineer launches ``sync_config`` for that finding: staging's branch head is
   deployed again through the deploy policy;
4. ``config_drift`` again: the drift is gone, the check passes.
"""

from __future__ import annotations

import dagster as dg

from devops_assets.config import PlatformConfig
from devops_assets.defs.environments.assets import config_drift
from devops_assets.defs.resources import build_resources
from devops_assets.demo.scenario import QUIET, failure_text, op_config, run_job
from devops_assets.emulator.app import load_app

OPERATOR = "ops@moltworker.example"
JOB = "sync_config"
WORKER = "moltworker-staging"
EDITED = {"compatibility_date": "2026-06-15"}
# The story prints each run's outcome itself (a refusal is part of it, not a crash).


def _drift(config: PlatformConfig, instance) -> tuple[list[str], list[str]]:
    """Lines saying what config_drift found, and the keys failing its check."""
    result = dg.materialize(
        [config_drift],
        resources=build_resources(config),
        instance=instance,
        run_config=QUIET,
        raise_on_error=False,
    )
    if not result.success:
        return [f"  config_drift failed: {failure_text(result)}"], []
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    [check] = result.get_asset_check_evaluations()
    failing = check.metadata["not_allowed"].value
    keys = [] if failing == "none" else failing.split(", ")
    state = "passes" if check.passed else f"FAILS on {failing}"
    line = (
        f"  config_drift: {metadata['findings'].value} finding(s) "
        f"({metadata['staging_vs_deployed'].value} staging~deployed, "
        f"{metadata['production_vs_deployed'].value} production~deployed, "
        f"{metadata['staging_vs_production'].value} staging~production); check {state}"
    )
    return [line], keys


def _sync(defs: dg.Definitions, instance, keys: list[str]) -> str:
    config = {
        "environment": "staging",
        "keys": keys,
        "requested_by": OPERATOR,
        "reason": "undo a dashboard edit: git is the source of truth",
    }
    result = run_job(defs, instance, JOB, op_config("sync_findings", config))
    head = f"  {JOB} run {result.run_id[:8]} (staging): "
    if result.success:
        out = next(e for e in result.all_events if e.is_successful_output)
        version = out.step_output_data.metadata["version"].value
        return f"{head}synced {', '.join(keys)}; version {version} serves"
    return head + failure_text(result)


def play(config: PlatformConfig, defs: dg.Definitions, instance) -> list[str]:
    """Play the story (see the module docstring); returns the lines it printed."""
    lines = ["", "Config drift story (git is the source of truth):"]
    lines.append("1. config_drift: git against what is deployed")
    found, _ = _drift(config, instance)
    lines += found
    app = load_app(config.cloudflare.emulator_state, persist=True)
    version = app.change_setting(WORKER, **EDITED)
    lines.append(
        f"2. {version['metadata']['author_email']} sets compatibility_date = "
        f"{EDITED['compatibility_date']} on {WORKER} in the dashboard (version {version['id']})"
    )
    found, keys = _drift(config, instance)
    lines += found
    lines.append("3. an engineer launches sync_config for those findings")
    lines.append(_sync(defs, instance, keys) if keys else "  nothing to sync")
    lines.append("4. config_drift again")
    found, _ = _drift(config, instance)
    lines += found
    for line in lines:
        print(line)
    return lines
