"""The demo's secret-rotation story, played through the real jobs on the instance.

1. The daily ``secret_rotation_check`` finds every seeded secret due (they were
   set with ``wrangler secret put`` before the platform existed: age unknown)
   and turns each into a request, notifying the approvers.
2. A rotation without an approval is refused (audited).
3. The CISO approves staging's gateway-token request; ``rotate_secrets`` stages
   a generated value on a new version, smoke-tests it, promotes it.
4. The inventory shows the token's new age and due date.

No value is printed: only names, ids and versions.
"""

from __future__ import annotations

import dagster as dg

from devops_assets.config import PlatformConfig
from devops_assets.demo.scenario import failure_text, op_config, run_job
from devops_assets.store.warehouse import Warehouse

CISO = "ciso@moltworker.example"
OPERATOR = "ops@moltworker.example"
SECRET = "MOLTBOT_GATEWAY_TOKEN"


def _scheduled_check(defs: dg.Definitions, instance):
    """One tick of the ``secret_rotation_check`` schedule, run as the daemon runs it
    (its run config, and the schedule's name among the run's tags)."""
    schedule = defs.resolve_schedule_def("secret_rotation_check")
    with dg.build_schedule_context(instance=instance) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    tags = {**request.tags, "dagster/schedule_name": schedule.name}
    return run_job(defs, instance, schedule.job_name, request.run_config, tags)


def _run(defs: dg.Definitions, instance, job_name: str, op: str, config: dict):
    return run_job(defs, instance, job_name, op_config(op, config))


def play(config: PlatformConfig, defs: dg.Definitions, instance) -> list[str]:
    """Play the story (see the module docstring); returns the lines it printed."""
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        print(text)

    warehouse = Warehouse(config.warehouse_url)
    approvers = ", ".join(config.secrets.approvers)
    say("\nSecret rotation story:")
    say("1. the daily secret_rotation_check")
    check = _scheduled_check(defs, instance)
    if not check.success:
        say(f"  the check failed: {failure_text(check)}")
        return lines
    made = warehouse.secrets.requests("requested")
    for request in made:
        say(f"  {request.request_id}: {request.secret} on {request.worker} — {request.reason}")
    say(f"  {len(made)} request(s); notified the approvers ({approvers})")
    mine = next(r for r in made if (r.environment, r.secret) == ("staging", SECRET))

    say("2. a rotation without an approval")
    refused = _run(
        defs,
        instance,
        "rotate_secrets",
        "rotate_secret",
        {"request_id": mine.request_id, "requested_by": OPERATOR},
    )
    say(f"  rotate_secrets run {refused.run_id[:8]}: {failure_text(refused)}")

    say(f"3. {CISO} approves {mine.request_id} (asked by {mine.requested_by})")
    approved = _run(
        defs,
        instance,
        "approve_secret_rotation",
        "approve_rotation",
        {"request_id": mine.request_id, "approver": CISO},
    )
    if not approved.success:
        say(f"  approval refused: {failure_text(approved)}")
        return lines
    approval = approved.output_for_node("approve_rotation")
    say(f"  approval {approval}, expires in {config.secrets.approval_ttl_hours} h")
    rotated = _run(
        defs,
        instance,
        "rotate_secrets",
        "rotate_secret",
        {"request_id": mine.request_id, "approval_id": approval, "requested_by": OPERATOR},
    )
    if not rotated.success:
        say(f"  rotate_secrets run {rotated.run_id[:8]}: {failure_text(rotated)}")
        return lines
    steps = next(
        e.step_output_data.metadata["steps"].value
        for e in rotated.all_events
        if e.is_successful_output
    )
    say(f"  rotate_secrets run {rotated.run_id[:8]}: {steps}")

    say("4. the inventory")
    from devops_assets.emulator.app import load_app

    now = load_app(config.cloudflare.emulator_state, persist=True).now()
    for row in warehouse.secrets.inventory():
        if row.environment != "staging":
            continue
        if row.last_rotated_at and not row.changed_outside:
            days = row.age_days(now)
            age = (
                f"{days:.1f} days old (rotated {row.last_rotated_at:%Y-%m-%d %H:%M} UTC), "
                f"due {row.due_at:%Y-%m-%d}"
            )
        else:
            age = "age unknown (changed outside the platform)"
        say(f"  staging {row.secret}: {row.status}; {age}")
    audit = [e for e in warehouse.audit_log() if e.action.endswith(("secret_rotation", "_secret"))]
    say(
        f"  audit log: {len(audit)} secret entries "
        f"({sum(e.outcome == 'refused' for e in audit)} refused)"
    )
    warehouse.close()
    return lines
