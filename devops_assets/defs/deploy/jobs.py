"""The ``deploy`` and ``rollback`` jobs: typed launchpad config over ``delivery``.

Nothing a launcher controls skips a rule: the config has no such field (an
unknown key is refused by Dagster before the run starts), its fields take
literal values only (an ``{env: …}`` reference is refused before it is read, so
no variable of the run's process can be smuggled into a message), the
resources are fixed by the code location (``parts.py``), and the ops read no
tag and no environment variable. Both jobs carry one tag that the run queue limits
to one run at a time (``dagster.yaml``); the warehouse lock holds the same
rule for runs that reach the instance some other way or with edited tags. No
op has a retry policy and the instance has run retries off: a failed deploy
waits for a person or a new push.
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from devops_assets.defs.deploy.parts import KEY
from devops_assets.delivery import deployer, rollback
from devops_assets.domain.deploys import Release

# One tag the run queue limits to one run at a time; and a run that the process
# running it left behind (a crash) is failed by run monitoring after 15 minutes,
# which frees the queue and the environment's lock for the rollback that follows.
DEPLOY_LANE = {"devops_assets/deploy": "lane", "dagster/max_runtime": "900"}
RELEASE_NOTES = dg.AssetKey("release_notes")


class DeployConfig(dg.Config):
    environment: Literal["staging", "production"] = Field(
        default="staging",
        description="Where to deploy. Production checks every guard and rolls out by steps.",
    )
    commit: str = Field(
        description="The commit to deploy: a sha (full or abbreviated), a branch or a tag."
    )
    requested_by: str = Field(description="Who asks for this deploy; kept in the audit log.")
    reason: str = Field(description="Why; kept in the audit log and sent with the notices.")


class RollbackConfig(dg.Config):
    environment: Literal["staging", "production"] = Field(
        default="production", description="Which environment to roll back."
    )
    to_version: str = Field(
        default="",
        description="What to serve at 100 %: a release tag (v2.29.1, see release_notes) "
        "or a Workers version id; empty means the last known-good version.",
    )
    requested_by: str = Field(description="Who asks for this rollback; kept in the audit log.")
    reason: str = Field(description="Why; kept in the audit log and sent with the notices.")


def _literal(value) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return isinstance(value, str | int | float | bool)


def job_runtime(context: dg.OpExecutionContext, op_name: str):
    """The run's runtime, after checking every config field was written literally
    (a list only of strings); every job that changes Cloudflare opens it so."""
    raw = (context.run.run_config.get("ops") or {}).get(op_name) or {}
    for field, value in (raw.get("config") or {}).items():
        if not _literal(value):
            raise dg.Failure(
                description=f"{field}: a literal value; references such as {{env: …}} are "
                f"not taken by {context.job_name}",
                allow_retries=False,
            )
    instance = context.instance

    def is_active(run_id: str) -> bool | None:
        """Whether a lock holder's run still runs; None when this instance does not
        know the run (the ledger then trusts the lock for an hour)."""
        run = instance.get_run_by_id(run_id)
        return None if run is None else not run.is_finished

    return context.resources.deploy_parts.open(context.run_id, is_active, context.log)


def job_failure(exc: Exception) -> dg.Failure:
    if isinstance(exc, deployer.DeployRefused):
        rules = {r.rule: r.evidence for r in exc.decision.refusals}
        return dg.Failure(
            description=f"Refused by the deploy policy: {str(exc).removeprefix('refused: ')}",
            metadata={"refused_rules": ", ".join(rules), **rules},
            allow_retries=False,
        )
    return dg.Failure(description=str(exc), allow_retries=False)


def release_metadata(releases: list[Release]) -> dict:
    """What the UI shows of the releases: the latest changelog and a table."""
    if not releases:
        return {"releases": 0, "changelog": dg.MetadataValue.md("No release yet.")}
    latest = releases[0]
    rows = [
        "| tag | commit | released | bump | rollback target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in releases[:20]:
        rows.append(
            f"| {r.tag} | `{r.commit_sha[:12]}` | {r.released_at:%Y-%m-%d %H:%M} UTC | {r.bump} "
            f"| `{r.version_id}` "
            f"| `{r.rollback_target or '—'}` |"
        )
    return {
        "releases": len(releases),
        "latest_tag": latest.tag,
        "latest_commit": latest.commit_sha,
        "changelog": dg.MetadataValue.md(latest.changelog),
        "recent_releases": dg.MetadataValue.md("\n".join(rows)),
    }


def _outcome_metadata(outcome: deployer.Outcome) -> dict:
    return {
        "environment": outcome.environment,
        "commit": outcome.commit_sha or "",
        "version": outcome.version_id or "",
        "steps": ", ".join(f"{s:g} %" for s in outcome.steps),
        "checked_rules": ", ".join(outcome.decision.checked),
        "release": outcome.release.tag if outcome.release else "",
    }


@dg.op(
    description="Check every deploy rule, deploy the commit's build (by steps in "
    "production), smoke-test it, roll back on a failed production smoke test, and "
    "tag a release for a production deploy.",
    tags={"kind": "cloudflare"},
    required_resource_keys={KEY},
)
def deploy_commit(context: dg.OpExecutionContext, config: DeployConfig):
    rt = job_runtime(context, "deploy_commit")
    try:
        outcome = deployer.deploy(
            rt, config.environment, config.commit, config.requested_by, config.reason
        )
    except (deployer.DeployInputError, deployer.DeployRefused, deployer.DeployFailed) as exc:
        raise job_failure(exc) from None
    finally:
        rt.client.close()
    if outcome.release is not None:
        releases = rt.warehouse.deploys.releases()
        yield dg.AssetMaterialization(
            RELEASE_NOTES,
            description=f"{outcome.release.tag} on {outcome.commit_sha[:12]}",
            metadata=release_metadata(releases),
        )
    yield dg.Output(outcome.version_id, metadata=_outcome_metadata(outcome))


@dg.op(
    description="Serve the chosen (default: last known-good) version at 100 % and smoke-test it.",
    tags={"kind": "cloudflare"},
    required_resource_keys={KEY},
)
def roll_back(context: dg.OpExecutionContext, config: RollbackConfig):
    rt = job_runtime(context, "roll_back")
    try:
        outcome = rollback.rollback(
            rt, config.environment, config.to_version or None, config.requested_by, config.reason
        )
    except (deployer.DeployInputError, deployer.DeployRefused, deployer.DeployFailed) as exc:
        raise job_failure(exc) from None
    finally:
        rt.client.close()
    return dg.Output(outcome.version_id, metadata=_outcome_metadata(outcome))


@dg.job(
    name="deploy",
    description="Deploy a commit to staging or production through the deploy policy.",
    tags=DEPLOY_LANE,
)
def deploy_job():
    deploy_commit()


@dg.job(
    name="rollback",
    description="Roll an environment back to its last known-good (or a chosen) version.",
    tags=DEPLOY_LANE,
)
def rollback_job():
    roll_back()
