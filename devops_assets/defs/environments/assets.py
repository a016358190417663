"""``config_drift``: staging against production in git, and each environment's
git config against its Worker as deployed.

Three comparisons (``delivery/sync.py`` reads them, ``wrangler/`` compares):
staging~production in the wrangler file at the head of the production branch;
staging~deployed and production~deployed, each environment's wrangler config at
the head of its own branch against the Worker's settings, secret names and
active deployment read from the API now. Every finding has a severity and the
action that syncs it (an edit of the wrangler file, a redeploy, a secret to
put). The check fails on any finding no unexpired ``[[drift.allow]]`` entry
accepts, and on every ``unknown`` (a part of the API that did not answer: never
taken as "missing", never accepted by the allow-list). A rollout in progress is
shown, not failed on.
"""

from collections import Counter
from datetime import UTC, datetime

import dagster as dg

from devops_assets.defs.resources import CloudflareResource, GitResource, PlatformResource
from devops_assets.delivery.sync import DriftReadError, deployed_view, pair_findings
from devops_assets.sources.cloudflare import CloudflareError
from devops_assets.sources.git import GitError
from devops_assets.wrangler.drift import SEVERITIES, Finding, expired, failing, unallowed

CHECK = "no_unallowed_drift"
COMPARISONS = ("staging~production", "staging~deployed", "production~deployed")
TITLES = {
    "staging~production": "Staging against production (git, {file})",
    "staging~deployed": "Staging: git ({file}) against the deployed Worker",
    "production~deployed": "Production: git ({file}) against the deployed Worker",
}


def _status(f: Finding, open_keys: set[str], failing_keys: set[str]) -> str:
    if f.kind == "unknown":
        return "no (unknown)"
    if f.kind == "in_progress":
        return "n/a"
    return "no" if f.key in open_keys or f.key in failing_keys else "yes"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(groups: dict[str, tuple[str, list[Finding]]], open_keys, failing_keys) -> str:
    if not any(findings for _, findings in groups.values()):
        return "No drift between staging and production, nor between git and what is deployed."
    parts = []
    for comparison in COMPARISONS:
        if comparison not in groups:
            continue
        file, findings = groups[comparison]
        parts.append(f"### {TITLES[comparison].format(file=file)}\n")
        if not findings:
            parts.append("No drift.\n")
            continue
        rows = [
            "| key | kind | severity | allowed | detail | to sync |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for f in findings:
            allowed = _status(f, open_keys, failing_keys)
            detail, fix = _cell(f.detail), _cell(f.fix)
            rows.append(
                f"| `{f.key}` | {f.kind} | {f.severity} | {allowed} | {detail} | "
                f"{f.action}: {fix} |"
            )
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


@dg.asset(
    group_name="environments",
    owners=["team:platform"],
    kinds={"git", "cloudflare"},
    description="Configuration drift: staging against production in the wrangler file at "
    "the head of the production branch, and each environment's wrangler config (at the "
    "head of its branch) against its Worker as deployed (settings, bindings, vars, "
    "required secrets, active deployment); each finding with a severity and what syncs it.",
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="config_drift",
            description="Fails on a finding no unexpired [[drift.allow]] accepts, and on any "
            "part of the API that could not be read (unknown).",
        )
    ],
)
def config_drift(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    git_repo: GitResource,
    cloudflare: CloudflareResource,
) -> dg.MaterializeResult:
    config = platform.config
    repo = git_repo.local_path()
    groups: dict[str, tuple[str, list[Finding]]] = {}
    try:
        file, findings = pair_findings(config, repo)
        groups["staging~production"] = (file, findings)
        client = cloudflare.client()
        try:
            for environment in ("staging", "production"):
                view = deployed_view(config, repo, client, environment)
                groups[f"{environment}~deployed"] = (view.file, view.findings)
        finally:
            client.close()
    except (DriftReadError, GitError) as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    except CloudflareError as exc:  # the client could not even be made (no token…)
        raise dg.Failure(str(exc), allow_retries=False) from None
    everything = [f for _, found in groups.values() for f in found]
    today = (config.as_of or datetime.now(UTC)).date()
    open_keys = {f.key for f in unallowed(everything, config.drift.allow, today)}
    failed = failing(everything, config.drift.allow, today)
    failing_keys = {f.key for f in failed}
    lapsed = expired(config.drift.allow, today)
    drift_findings = [f for f in everything if f.kind != "in_progress"]
    allowed = [f for f in drift_findings if f.kind != "unknown" and f.key not in open_keys]
    severities = Counter(f.severity for f in drift_findings if f.kind != "unknown")
    context.log.info(
        "%d drift findings, %d failing the check, %d allowed, %d unknown",
        len(drift_findings),
        len(failed),
        len(allowed),
        sum(f.kind == "unknown" for f in everything),
    )
    metadata = {
        "file": groups["staging~production"][0],
        "findings": len(drift_findings),
        "not_allowed": len(failed),
        "allowed": len(allowed),
        "unknown": sum(f.kind == "unknown" for f in everything),
        "in_progress": sum(f.kind == "in_progress" for f in everything),
        **{severity: severities.get(severity, 0) for severity in SEVERITIES if severity != "info"},
        **{
            comparison.replace("~", "_vs_"): len(groups[comparison][1])
            for comparison in COMPARISONS
        },
        "expired_allow_entries": ", ".join(f"{e.key} ({e.expires})" for e in lapsed) or "none",
        "drift": dg.MetadataValue.md(_markdown(groups, open_keys, failing_keys)),
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "not_allowed": ", ".join(sorted(failing_keys)) or "none",
                    "unknown": ", ".join(f.key for f in failed if f.kind == "unknown") or "none",
                    "expired_allow_entries": len(lapsed),
                },
            )
        ],
    )
