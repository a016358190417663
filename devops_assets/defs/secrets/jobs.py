"""Secret rotation jobs: the daily check that makes requests, approval, rotation.

Launchpad config carries ids and names only, never a value, and takes literal
values only (an ``{env: …}`` reference is refused before it is read). The
rotation job carries the deploy lane tag (one such run at a time) and takes the
environment's deploy lock. No op retries: a failed rotation leaves the request
open for a person.
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from devops_assets.defs.deploy.jobs import DEPLOY_LANE, job_runtime
from devops_assets.defs.deploy.parts import KEY
from devops_assets.delivery import secrets
from devops_assets.domain.secrets import Refused, is_scheduler
from devops_assets.sources.cloudflare import CloudflareError

SECRET_INVENTORY = dg.AssetKey("secret_inventory")


SCHEDULE = "secret_rotation_check"


class RotationCheckConfig(dg.Config):
    requested_by: str = Field(
        description="Who asks (your e-mail address); kept in the audit log. Only the "
        f"{SCHEDULE} schedule asks as itself.",
    )
    environment: Literal["", "staging", "production"] = Field(
        default="",
        description="With secret: request this one rotation now, due or not (an emergency "
        "rotation). Empty: request every due secret.",
    )
    secret: str = Field(default="", description="A secret name (never a value), with environment.")
    reason: str = Field(default="", description="Why; empty says why the secret is due.")


class ApproveConfig(dg.Config):
    request_id: str = Field(description="The rotation request to approve (rot-…).")
    approver: str = Field(
        description="Who approves: one of [secrets] approvers, not the requester."
    )


class RotateConfig(dg.Config):
    request_id: str = Field(description="The approved rotation request (rot-…).")
    approval_id: str = Field(default="", description="The approval of that very request (apr-…).")
    requested_by: str = Field(description="Who runs the rotation; kept in the audit log.")


def _failure(exc: Exception) -> dg.Failure:
    if isinstance(exc, Refused):
        return dg.Failure(
            description=f"Refused ({exc.rule}): {exc}",
            metadata={"refused_rule": exc.rule},
            allow_retries=False,
        )
    return dg.Failure(description=str(exc), allow_retries=False)


def _refreshed_inventory(rt, description: str):
    """The inventory read again and stored; a read that fails is logged (the rotation
    itself stands) and the next check or materialization refreshes it."""
    from devops_assets.defs.secrets.assets import inventory_markdown

    try:
        rows = secrets.inventory(rt)
    except (CloudflareError, OSError, ValueError) as exc:
        rt.log.warning("inventory not refreshed: %s", exc)
        return
    yield dg.AssetMaterialization(
        SECRET_INVENTORY,
        description=description,
        metadata={"inventory": dg.MetadataValue.md(inventory_markdown(rows, rt.now()))},
    )


@dg.op(
    description="Expire stale requests; turn each due secret (or the one asked for) into a "
    "rotation request and notify the approvers.",
    tags={"kind": "cloudflare"},
    required_resource_keys={KEY},
)
def request_due_rotations(context: dg.OpExecutionContext, config: RotationCheckConfig):
    if bool(config.environment) != bool(config.secret):
        raise dg.Failure("environment and secret: both or neither", allow_retries=False)
    if is_scheduler(config.requested_by):
        # Compared in identity form: any spelling identity() reads as the schedule is it.
        # Under that name only the due sweep, and only in a run carrying the schedule's
        # tag (see docs/secrets.md, Limits: a launcher can set tags too).
        if config.environment or config.secret:
            raise dg.Failure(
                f"requested_by: the schedule ({secrets.SCHEDULER!r}) only sweeps for due "
                "secrets; a rotation of one secret now is asked under your e-mail address",
                allow_retries=False,
            )
        if context.run.tags.get("dagster/schedule_name") != SCHEDULE:
            raise dg.Failure(
                f"requested_by: {secrets.SCHEDULER!r} is the schedule's own name; a person "
                "asks under their e-mail address (who asks can never approve)",
                allow_retries=False,
            )
    rt = job_runtime(context, "request_due_rotations")
    try:
        done = secrets.check_due(
            rt, config.requested_by, config.reason, config.environment, config.secret
        )
        for request in done.requested:
            context.log.info(
                "requested %s: %s on %s (%s), expires %s UTC; approve it with "
                "approve_secret_rotation",
                request.request_id,
                request.secret,
                request.worker,
                request.environment,
                f"{request.expires_at:%Y-%m-%d %H:%M}",
            )
        for request_id in done.already_open:
            context.log.info("already open, not requested again: %s", request_id)
        if not done.requested and not done.already_open:
            context.log.info("no secret is due")
        yield from _refreshed_inventory(rt, "inventory after the rotation check")
    except Refused as exc:
        raise _failure(exc) from None
    finally:
        rt.client.close()
    yield dg.Output(
        [r.request_id for r in done.requested],
        metadata={
            "requested": ", ".join(r.request_id for r in done.requested) or "none",
            "already_open": ", ".join(done.already_open) or "none",
            "expired": ", ".join(done.expired) or "none",
        },
    )


@dg.op(
    description="Approve one rotation request: an approver from [secrets] approvers who did "
    "not ask for it. The approval binds to the request's hash and expires.",
    required_resource_keys={KEY},
)
def approve_rotation(context: dg.OpExecutionContext, config: ApproveConfig):
    rt = job_runtime(context, "approve_rotation")
    try:
        approval = secrets.approve(rt, config.request_id, config.approver)
    except Refused as exc:
        raise _failure(exc) from None
    finally:
        rt.client.close()
    context.log.info(
        "approval %s of %s by %s, valid until %s UTC; rotate with rotate_secrets "
        "(request_id %s, approval_id %s)",
        approval.approval_id,
        approval.request_id,
        approval.approver,
        f"{approval.expires_at:%Y-%m-%d %H:%M}",
        approval.request_id,
        approval.approval_id,
    )
    return dg.Output(
        approval.approval_id,
        metadata={
            "approval_id": approval.approval_id,
            "request_id": approval.request_id,
            "approver": approval.approver,
            "expires_at": approval.expires_at.isoformat(),
        },
    )


@dg.op(
    description="Rotate the secret of an approved request: stage the new value on a new "
    "version, smoke-test it at 0.01 %, promote it; the previous version serves on any failure.",
    tags={"kind": "cloudflare"},
    required_resource_keys={KEY},
)
def rotate_secret(context: dg.OpExecutionContext, config: RotateConfig):
    rt = job_runtime(context, "rotate_secret")
    try:
        outcome = secrets.rotate(rt, config.request_id, config.approval_id, config.requested_by)
        yield from _refreshed_inventory(rt, "inventory after the rotation")
    except (Refused, secrets.RotationFailed) as exc:
        raise _failure(exc) from None
    finally:
        rt.client.close()
    yield dg.Output(
        outcome.staged_version,
        metadata={
            "environment": outcome.environment,
            "worker": outcome.worker,
            "previous_version": outcome.previous_version,
            "new_version": outcome.staged_version or "",
            "steps": "; ".join(outcome.steps),
        },
    )


@dg.job(
    name="request_secret_rotation",
    description="Request rotations of due secrets (daily) or of one secret now.",
    tags={"devops_assets/kind": "secrets"},
)
def request_rotation_job():
    request_due_rotations()


@dg.job(
    name="approve_secret_rotation",
    description="Approve one secret rotation request (second person, from the approvers list).",
    tags={"devops_assets/kind": "secrets"},
)
def approve_rotation_job():
    approve_rotation()


@dg.job(
    name="rotate_secrets",
    description="Rotate an approved secret: staged version, smoke test, promotion.",
    tags=DEPLOY_LANE,
)
def rotate_secrets_job():
    rotate_secret()


def rotation_check_schedule(timezone: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=SCHEDULE,
        job=request_rotation_job,
        cron_schedule="0 7 * * *",
        execution_timezone=timezone,
        run_config={
            "ops": {"request_due_rotations": {"config": {"requested_by": secrets.SCHEDULER}}}
        },
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Each day: turn every due secret into a rotation request and notify the "
        "approvers; expire requests nobody approved in time.",
    )
