"""``secret_inventory``: each environment's secrets, their age and due date.

Read fresh from Cloudflare (names only: the API never returns values), from
the wrangler file in git (``secrets.required``) and from our own rotation
records. A secret last changed by a version this platform did not make is
shown as changed outside the platform, age unknown.
"""

from datetime import datetime

import dagster as dg

from devops_assets.defs.deploy.parts import KEY
from devops_assets.delivery import secrets
from devops_assets.domain.secrets import InventoryRow

CHECK = "no_missing_required_secret"


def inventory_markdown(rows: list[InventoryRow], now: datetime) -> str:
    if not rows:
        return "No secrets found."
    lines = [
        "| environment | worker | secret | status | age (days) | last rotated (UTC) "
        "| max age | due | changed outside | open request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        age = r.age_days(now)
        shown_age = "unknown" if age is None else f"{age:.1f}"
        rotated = f"{r.last_rotated_at:%Y-%m-%d %H:%M}" if r.last_rotated_at else "—"
        due = f"{r.due_at:%Y-%m-%d}" if r.due_at else ("—" if not r.present else "now")
        outside = f"yes ({r.changed_outside_at:%Y-%m-%d %H:%M})" if r.changed_outside else "no"
        lines.append(
            f"| {r.environment} | {r.worker} | `{r.secret}` | {r.status} | {shown_age} "
            f"| {rotated} | {r.max_age_days} d | {due} | {outside} | {r.open_request or '—'} |"
        )
    notes = [f"- `{r.secret}` on {r.worker}: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", "**Notes:**", *notes]
    return "\n".join(lines)


@dg.asset(
    group_name="environments",
    owners=["team:platform"],
    kinds={"cloudflare", "git", "sql"},
    description="Per environment and worker: each secret's name (never its value), its age "
    "from our own rotation records, the policy's maximum age and the due date; secrets "
    "changed outside the platform (version metadata) are flagged with age unknown, and "
    "secrets the wrangler file's secrets.required names but the worker lacks are findings.",
    required_resource_keys={KEY},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="secret_inventory",
            description="Fails when secrets.required names a secret a worker lacks.",
        )
    ],
)
def secret_inventory(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    instance = context.instance

    def is_active(run_id: str) -> bool | None:
        run = instance.get_run_by_id(run_id)
        return None if run is None else not run.is_finished

    rt = context.resources.deploy_parts.open(context.run_id, is_active, context.log)
    try:
        rows = secrets.inventory(rt)
        now = rt.now()
    finally:
        rt.client.close()
    missing = [f"{r.environment}:{r.secret}" for r in rows if r.status == "missing"]
    return dg.MaterializeResult(
        metadata={
            "secrets": sum(r.present for r in rows),
            "due": sum(r.status in ("due", "unknown_age") for r in rows),
            "changed_outside": sum(r.changed_outside for r in rows),
            "missing_required": len(missing),
            "inventory": dg.MetadataValue.md(inventory_markdown(rows, now)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=not missing,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"missing": ", ".join(missing) or "none"},
            )
        ],
    )
