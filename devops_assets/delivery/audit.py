"""Audit rows for deploys and rollbacks: each decision, then what was done.

Rows go to the append-only ``audit_log`` table; the reason holds the rules'
evidence for a refusal, the detail the versions, steps and smoke results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devops_assets.delivery.runtime import Runtime
from devops_assets.domain import guards
from devops_assets.domain.models import AuditEntry

if TYPE_CHECKING:
    from devops_assets.delivery.deployer import Outcome

TEXT_LIMIT = 500


def decided(
    rt: Runtime,
    action: str,
    actor: str,
    environment: str,
    subject: str,
    reason: str,
    decision: guards.Decision,
    facts: guards.Facts,
) -> None:
    """The decision, allowed or refused, with each rule's evidence."""
    detail = {
        "checked": list(decision.checked),
        "refusals": [{"rule": r.rule, "evidence": r.evidence} for r in decision.refusals],
        "version": facts.version_id or facts.known_good_version,
        "build": facts.build_uuid,
    }
    outcome = "allowed" if decision.allowed else "refused"
    why = reason if decision.allowed else f"{reason} — {decision.summary()}"
    _append(rt, action, actor, environment, subject, outcome, why, detail)


def finished(
    rt: Runtime,
    action: str,
    actor: str,
    environment: str,
    subject: str,
    status: str,
    reason: str,
    done: Outcome,
) -> None:
    """What the deploy or rollback did once allowed: succeeded, failed, rolled_back."""
    detail = {
        "version": done.version_id,
        "steps": done.steps,
        "smoke": [{"percentage": s.percentage, "passed": s.passed} for s in done.smoke],
        "release": done.release.tag if done.release else None,
        "rolled_back_to": done.rolled_back_to,
    }
    _append(rt, action, actor, environment, subject or "", status, reason[: TEXT_LIMIT * 2], detail)


def _append(
    rt: Runtime,
    action: str,
    actor: str,
    environment: str,
    subject: str,
    outcome: str,
    reason: str,
    detail: dict,
) -> None:
    rt.warehouse.append_audit(
        AuditEntry(
            rt.now(), actor, action, environment, subject, outcome, reason, rt.run_id, detail
        )
    )
