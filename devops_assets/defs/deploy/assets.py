"""What the deploy work shows in the asset catalog: releases and the audit log."""

import dagster as dg

from devops_assets.defs.deploy.jobs import RELEASE_NOTES, release_metadata
from devops_assets.defs.resources import WarehouseResource
from devops_assets.domain.models import AuditEntry

OWNERS = ["team:platform"]
AUDIT_ROWS = 30


@dg.asset(
    key=RELEASE_NOTES,
    group_name="deploy",
    owners=OWNERS,
    kinds={"git", "sql"},
    description="Every production release: version, tag, changelog and rollback target. "
    "The deploy job records a release when a production deploy succeeds.",
)
def release_notes(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=release_metadata(warehouse.warehouse.deploys.releases()))


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_markdown(entries: list[AuditEntry]) -> str:
    rows = ["| when (UTC) | who | action | environment | subject | outcome | why |"]
    rows.append("| --- | --- | --- | --- | --- | --- | --- |")
    for e in reversed(entries[-AUDIT_ROWS:]):
        rows.append(
            f"| {e.at:%Y-%m-%d %H:%M:%S} | {_cell(e.actor, 60)} | {e.action} | {e.environment} "
            f"| `{e.subject[:12]}` | {e.outcome} | {_cell(e.reason)} |"
        )
    return "\n".join(rows)


@dg.asset(
    group_name="deploy",
    owners=OWNERS,
    kinds={"sql"},
    description="The deploy audit log: every deploy and rollback decision, allowed or "
    "refused, with who, what, when and why (the table itself is append-only).",
)
def deploy_audit(warehouse: WarehouseResource) -> dg.MaterializeResult:
    entries = warehouse.warehouse.audit_log()
    refused = [e for e in entries if e.outcome == "refused"]
    return dg.MaterializeResult(
        metadata={
            "entries": len(entries),
            "refused": len(refused),
            "rolled_back": sum(e.outcome == "rolled_back" for e in entries),
            "latest": dg.MetadataValue.md(audit_markdown(entries) if entries else "No entry yet."),
        }
    )
