"""The demo's flaky-build story: a failure a retry rescues, triaged and measured.

1. A developer pushes a commit to ``hardshell``; the staging worker's build fails
   in a way nothing in the commit caused (a flaky end-to-end test, a registry
   hiccup, the build container dying: the emulator's ``flaky`` failures), the
   production worker's upload of the same commit succeeds.
2. ``build_failures`` triages the failure from its log.
3. Someone re-runs the failed build by hand; the same commit passes.
4. ``build_failures`` again: the failure is now flaky (a retry of the same commit
   passed), and staging's build success rate without flaky failures leaves it out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg

from devops_assets.config import PlatformConfig
from devops_assets.defs.ingest.build_failures import short_summary
from devops_assets.demo.scenario import QUIET, failure_text, push_change
from devops_assets.emulator.buildlogs import FLAKY_KIND

WORKER = "moltworker-staging"
CHANGE = (
    "src/gateway/timeouts.ts",
    "export const UPSTREAM_TIMEOUT_MS = 25_000;\n",
    "chore(gateway): give upstream calls 25 s before they time out",
)


def _triage(config: PlatformConfig, defs: dg.Definitions, instance) -> tuple[dict, str]:
    """Ingest the builds and triage the failures; the asset's metadata, or an error."""
    job = defs.resolve_job_def("refresh_pipeline_health")
    result = job.execute_in_process(
        asset_selection=[dg.AssetKey("workers_builds"), dg.AssetKey("build_failures")],
        run_config=QUIET,
        instance=instance,
        raise_on_error=False,
    )
    if not result.success:
        return {}, failure_text(result)
    [event] = result.asset_materializations_for_node("build_failures")
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}, ""


def _rates(metadata: dict) -> str:
    return (
        f"staging build success {metadata.get('staging success [%]', '—')} %, "
        f"{metadata.get('staging without flaky [%]', '—')} % without flaky failures"
    )


def play(config: PlatformConfig, defs: dg.Definitions, instance) -> list[str]:
    """Play the story (see the module docstring); returns the lines it printed."""
    from devops_assets.store.triage_ledger import TriageLedger
    from devops_assets.store.warehouse import Warehouse

    lines = ["", "Flaky build story (a failure a retry rescues):"]
    app, sha, builds = push_change(config, CHANGE)
    branch, message = config.environment("staging").branches[0], CHANGE[2]
    failed = None
    for script, build in zip(app.state.scripts.values(), builds, strict=True):
        if script == WORKER:
            failed = app.finish_build(build["build_uuid"], "fail", failure=FLAKY_KIND)
        else:
            app.finish_build(build["build_uuid"], "success")
    lines.append(
        f"1. pushed {sha[:12]} to {branch}; {WORKER}'s build {failed['build_uuid'][:8]} fails, "
        "the other worker's upload of it succeeds"
    )
    metadata, error = _triage(config, defs, instance)
    if error:
        lines.append(f"  build_failures failed: {error}")
        return _printed(lines)
    warehouse = Warehouse(config.warehouse_url)
    triage = TriageLedger(warehouse).triage(failed["build_uuid"])
    warehouse.close()
    lines.append(
        f"2. build_failures: {triage.category} in step {triage.step}, log lines "
        f"{triage.evidence_start}-{triage.evidence_end}: {short_summary(triage)}"
    )
    lines.append(f"  {_rates(metadata)}")
    # a minute after the failure stopped: the retry starts after it (their order decides)
    retry = app.add_build(
        WORKER,
        branch,
        sha,
        created_on=datetime.fromisoformat(failed["stopped_on"]) + timedelta(minutes=1),
        trigger_source="manual",
        commit_message=message,
    )
    app.finish_build(retry["build_uuid"], "success")
    lines.append(
        f"3. {WORKER}'s build of {sha[:12]} re-run by hand ({retry['build_uuid'][:8]}): succeeded"
    )
    metadata, error = _triage(config, defs, instance)
    if error:
        lines.append(f"  build_failures failed: {error}")
        return _printed(lines)
    lines.append(
        f"4. build_failures: {metadata['flaky_failures']} flaky failure(s) in the whole "
        f"history; over the health window {_rates(metadata)}"
    )
    return _printed(lines)


def _printed(lines: list[str]) -> list[str]:
    for line in lines:
        print(line)
    return lines
