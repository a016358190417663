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

from devops_assets.defs.deploy.jobs import DEPLOY_LANE, job_failure, job_runtime
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


@dg.op(
    description="Read the drift of the environment again, check the deploy rules, then "
    "put the missing required secrets (staged and smoke-tested) or redeploy the branch "
    "head, and check the findings are gone.",
    tags={"kind": "cloudflare"},
    required_resource_keys={KEY},
)
def sync_findings(context: dg.OpExecutionContext, config: SyncConfig):
    rt = job_runtime(context, "sync_findings")
    try:
        outcome = sync.sync(
            rt, config.environment, list(config.keys), config.requested_by, config.reason
        )
    except (deployer.DeployInputError, deployer.DeployRefused, deployer.DeployFailed) as exc:
        raise job_failure(exc) from None
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
