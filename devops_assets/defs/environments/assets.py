"""``config_drift``: staging against production, as the wrangler file in git says.

The file is read at the head of the production branch; each platform environment
is matched to the wrangler environment whose Worker it deploys. Findings not
accepted by an unexpired ``[[drift.allow]]`` entry fail the asset check.
"""

from datetime import UTC, datetime

import dagster as dg

from devops_assets.config_drift import WRANGLER_FILES
from devops_assets.defs.resources import GitResource, PlatformResource
from devops_assets.sources.git_refs import read_blob
from devops_assets.wrangler.drift import Finding, drift, unallowed
from devops_assets.wrangler.environments import load
from devops_assets.wrangler.files import WranglerConfigError

CHECK = "no_unallowed_drift"


def _markdown(findings: list[Finding], open_keys: set[str]) -> str:
    if not findings:
        return "No drift between staging and production."
    rows = [
        "| key | kind | severity | allowed | detail | to sync |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in findings:
        allowed = "no" if f.key in open_keys else "yes"
        rows.append(f"| `{f.key}` | {f.kind} | {f.severity} | {allowed} | {f.detail} | {f.fix} |")
    return "\n".join(rows)


@dg.asset(
    group_name="environments",
    owners=["team:platform"],
    kinds={"git", "cloudflare"},
    description="Configuration drift between staging and production in the wrangler file "
    "at the head of the production branch: bindings, vars, runtime keys, required secrets "
    "and resources the two share, each with a severity and the edit that syncs it.",
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="config_drift",
            description="Fails when a finding is not accepted by an unexpired [[drift.allow]].",
        )
    ],
)
def config_drift(
    context: dg.AssetExecutionContext, platform: PlatformResource, git_repo: GitResource
) -> dg.MaterializeResult:
    config = platform.config
    repo = git_repo.local_path()
    branch = config.environment("production").branches[0]
    names = (config.drift.wrangler_file,) if config.drift.wrangler_file else WRANGLER_FILES
    found = [(name, read_blob(repo, branch, name)) for name in names]
    found = [(name, data) for name, data in found if data is not None]
    if not found:
        raise dg.Failure(
            f"{config.path}: key 'drift.wrangler_file': no {' or '.join(names)} at the head of "
            f"{branch}",
            allow_retries=False,
        )
    name, data = found[0]
    try:
        wrangler = load(name, data)
    except WranglerConfigError as exc:
        raise dg.Failure(f"{branch}:{exc}", allow_retries=False) from None
    pair = {}
    for environment in ("production", "staging"):
        worker = config.environment(environment).worker
        pair[environment] = wrangler.environment_of(worker)
        if pair[environment] is None:
            raise dg.Failure(
                f"{branch}:{name}: no environment deploys Worker {worker} ({environment})",
                allow_retries=False,
            )
    production, staging = (wrangler.resolve(pair[e]) for e in ("production", "staging"))
    findings = drift(production, staging)
    today = (config.as_of or datetime.now(UTC)).date()
    still_open = unallowed(findings, config.drift.allow, today)
    context.log.info("%d drift findings, %d not allowed", len(findings), len(still_open))
    open_keys = {f.key for f in still_open}
    return dg.MaterializeResult(
        metadata={
            "file": f"{branch}:{name}",
            "findings": len(findings),
            "not_allowed": len(still_open),
            "drift": dg.MetadataValue.md(_markdown(findings, open_keys)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=not still_open,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"not_allowed": ", ".join(sorted(open_keys)) or "none"},
            )
        ],
    )
