"""The ``sync_config`` job: an engineer syncs chosen drift findings of one environment.

Never automatic: no schedule or sensor targets it. Guarded like a deploy
(``delivery/sync.py``): the same hard-coded ``deploy_parts`` resource, the same
run-queue tag (one deploy-lane run at a time), the environment's deploy lock,
the production rules, audit rows, no retries. The launchpad config is typed and
takes literal values only (no ``{env: …}`` reference).
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from devops_assets.defs.deploy.jobs import DEPLOY_LANE, _failure
from devops_assets.defs.deploy.parts import KEY
from devops_assets.delivery import deployer, sync


class SyncConfig(dg.Config):
    environment: Literal["staging", "production"] = Field(
        default="staging", description="Which environment's deployed config to sync."
    )
    keys: list[str] = Field(
        description="Finding keys to sync, as config_drift shows them "
        "(e.g. deployed.staging.vars.LOG_LEVEL, deployed.staging.secrets.API_KEY)."
    )
    requested_by: str = Field(description="Who asks for this sync; kept in the audit log.")
    reason: str = Field(description="Why; kept in the audit log and sent with the notices.")


def _literal(value) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return isinstance(value, str | int | float | bool)


def _runtime(context: dg.OpExecutionContext, op_name: str):
    """The run's runtime, after checking every config field was written literally."""
    raw = (context.run.run_config.get("ops") or {}).get(op_name) or {}
    for name, value in (raw.get("config") or {}).items():
        if not _literal(value):
            raise dg.Failure(
                description=f"{name}: a literal value; references such as {{env: …}} are "
                "not taken by sync_config",
                allow_retries=False,
            )
    instance = context.instance

    def is_active(run_id: str) -> bool | None:
        run = instance.get_run_by_id(run_id)
        return None if run is None else not run.is_finished

    return context.resources.deploy_parts.open(context.run_id, is_active, context.log)


@dg.op(
    description="Read the drift of the environment again, check the deploy rules, then "
    "put the missing required secrets (staged and smoke-tested) or redeploy the branch "
    "head, and check the findings are gone.",
    tags={"kind": "cloudflare"},
    required_resource_keys={KEY},
)
def sync_findings(context: dg.OpExecutionContext, config: SyncConfig):
    rt = _runtime(context, "sync_findings")
    try:
        outcome = sync.sync(
            rt, config.environment, list(config.keys), config.requested_by, config.reason
        )
    except (deployer.DeployInputError, deployer.DeployRefused, deployer.DeployFailed) as exc:
        raise _failure(exc) from None
    finally:
        rt.client.close()
    return dg.Output(
        outcome.version_id,
        metadata={
            "environment": outcome.environment,
            "keys": ", ".join(outcome.keys),
            "secrets_put": ", ".join(outcome.put) or "none",
            "version": outcome.version_id or "",
        },
    )


@dg.job(
    name="sync_config",
    description="Sync chosen config_drift findings of one environment (launched by an "
    "engineer, guarded like a deploy, audited).",
    tags=DEPLOY_LANE,
)
def sync_config_job():
    sync_findings()
