"""The ``apply_d1_migrations`` job: typed launchpad config over ``delivery/d1.py``.

Guarded as the deploy job is (``defs/deploy/jobs.py``): the config has three
fields and no switch (an unknown key is refused before the run starts), each
field takes literal values only, the resource is the hard-coded
``deploy_parts``, the run carries the deploy lane tag the queue limits to one
run at a time, and a failure is never retried. After an apply, finished or
stopped by an error, the ``d1_migrations`` asset is materialized again from a
fresh read.
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from devops_assets.defs.d1.assets import KEY as D1_MIGRATIONS
from devops_assets.defs.d1.assets import survey_metadata
from devops_assets.defs.deploy.jobs import DEPLOY_LANE, job_failure, job_runtime
from devops_assets.defs.deploy.parts import KEY
from devops_assets.delivery import d1, deployer

OP = "apply_migrations"


class D1Config(dg.Config):
    environment: Literal["staging", "production"] = Field(
        default="staging",
        description="Whose database to migrate. Production only after staging applied the "
        "same files (same names, same checksums).",
    )
    requested_by: str = Field(description="Who asks for this apply; kept in the audit log.")
    reason: str = Field(description="Why; kept in the audit log and sent with the notices.")


def _survey(rt) -> dg.AssetMaterialization | None:
    reports, errors = {}, {}
    for environment in d1.ENVIRONMENTS:
        try:
            reports[environment] = d1.survey(
                rt.config, rt.repo, rt.client, rt.warehouse, environment
            )
        except d1.READ_ERRORS as exc:
            errors[environment] = str(exc)[:500]
    metadata, _ = survey_metadata(reports, errors)
    return dg.AssetMaterialization(D1_MIGRATIONS, metadata=metadata)


@dg.op(
    name=OP,
    description="Check every rule (incident, window and lock as for a deploy; staging first, "
    "clean ledger, distinct databases), then apply the environment's pending D1 migrations "
    "one file at a time, recording each file's checksum; the first error stops the run.",
    tags={"kind": "cloudflare"},
    required_resource_keys={KEY},
)
def apply_migrations(context: dg.OpExecutionContext, config: D1Config):
    rt = job_runtime(context, OP)
    try:
        try:
            outcome = d1.apply(rt, config.environment, config.requested_by, config.reason)
        except (deployer.DeployInputError, deployer.DeployRefused, deployer.DeployFailed) as exc:
            failure = job_failure(exc)
            if isinstance(exc, d1.MigrationFailed):
                context.log_event(_survey(rt))
            raise failure from None
        context.log_event(_survey(rt))
    finally:
        rt.client.close()
    metadata = {
        "environment": outcome.environment,
        "commit": outcome.commit_sha,
        "applied": ", ".join(outcome.applied) or "none",
        "applied_count": len(outcome.applied),
        "databases": ", ".join(f"{d.binding}={d.database_id}" for d in outcome.databases),
        "checked_rules": ", ".join(outcome.decision.checked),
    }
    return dg.Output(len(outcome.applied), metadata=metadata)


@dg.job(
    name="apply_d1_migrations",
    description="Apply pending D1 migrations to staging, or to production once staging "
    "applied the same files; guarded and audited like a deploy.",
    tags=DEPLOY_LANE,
)
def apply_d1_migrations_job():
    apply_migrations()
