"""Sensors that start deploys: a push to an environment's branch, then its build.

``git_push_sensor`` reads the branch heads of the team's repository. Its cursor
holds the last head seen per branch; with no cursor (first start, or after a
reset) it takes today's heads as seen and deploys nothing, so history is never
re-deployed. A new head becomes a deploy request in the warehouse, waiting for
the environment worker's build of that commit. An older request of the same
branch still waiting is superseded: only the newest push deploys.

``build_status_sensor`` watches the waiting requests' builds. A successful
build starts the ``deploy`` run (run key ``<branch>:<sha>``, so a sha deploys
once); a failed one sends a ``build_failed`` notice and stops the request.
``git_push_sensor`` starts the run itself when the build had already finished.
Moving a request from waiting to launched is one compare-and-set in the
warehouse, so the two sensors never both start it.
"""

import json

import dagster as dg

from devops_assets.defs.deploy.jobs import deploy_job
from devops_assets.defs.resources import (
    CloudflareResource,
    GitResource,
    PlatformResource,
    WarehouseResource,
)
from devops_assets.delivery.runtime import open_runtime
from devops_assets.domain.deploys import DeployRequest
from devops_assets.sources.git import read_branches

INTERVAL = 30


def watched_branches(config) -> dict[str, str]:
    """Branch → environment for environments with a worker (globs are not watched:
    a deploy needs one branch that is the environment's)."""
    found = {}
    for env in config.environments:
        if env.worker is None:
            continue
        for branch in env.branches:
            if not any(c in branch for c in "*?["):
                found[branch] = env.name
    return found


def _runtime(context, platform, warehouse, cloudflare, git_repo, name):
    return open_runtime(
        platform.config,
        warehouse.warehouse,
        cloudflare.api_token,
        git_repo.local_path(),
        f"sensor:{name}",
        lambda run_id: True,
        context.log,
    )


def _run_request(request: DeployRequest) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=request.request_id,
        run_config={
            "ops": {
                "deploy_commit": {
                    "config": {
                        "environment": request.environment,
                        "commit": request.commit_sha,
                        "requested_by": "git_push_sensor",
                        "reason": f"push to {request.branch}",
                    }
                }
            }
        },
        tags={
            "deploy/environment": request.environment,
            "git/branch": request.branch,
            "git/sha": request.commit_sha,
        },
    )


def launch_ready(rt, requests: list[DeployRequest]) -> list[dg.RunRequest]:
    """Run requests for the waiting requests whose build finished well; a failed
    build stops its request with a notice. Builds still running keep waiting."""
    ledger, runs = rt.warehouse.deploys, []
    by_worker: dict[str, list] = {}
    for request in requests:
        worker = rt.config.environment(request.environment).worker
        if worker not in by_worker:
            by_worker[worker] = rt.client.list_builds(worker, rt.config.worker(worker).tag)
        builds = [b for b in by_worker[worker] if b.commit_sha == request.commit_sha]
        if not builds:
            continue
        build = max(builds, key=lambda b: b.created_on)
        if not build.finished:
            continue
        now = rt.now()
        if build.outcome == "success":
            detail = f"build {build.build_uuid} succeeded"
            if ledger.move_request(request.request_id, "waiting", "launched", detail, now):
                runs.append(_run_request(request))
        else:
            detail = f"build {build.build_uuid} ended {build.outcome}"
            if ledger.move_request(request.request_id, "waiting", "build_failed", detail, now):
                text = f"{detail}; the deploy to {request.environment} is stopped"
                rt.notify("build_failed", request.environment, request.commit_sha, text)
    return runs


@dg.sensor(
    name="git_push_sensor",
    job=deploy_job,
    minimum_interval_seconds=INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A new commit on an environment's branch becomes a deploy request; it "
    "deploys once the worker's build of it succeeds (staging: deploy and smoke-test; "
    "production: the full deploy policy).",
)
def git_push_sensor(
    context: dg.SensorEvaluationContext,
    platform: PlatformResource,
    warehouse: WarehouseResource,
    cloudflare: CloudflareResource,
    git_repo: GitResource,
):
    config = platform.config
    seen = json.loads(context.cursor) if context.cursor else None
    heads = read_branches(git_repo.local_path())
    watched = {b: e for b, e in watched_branches(config).items() if b in heads}
    cursor = {branch: heads[branch] for branch in watched}
    if seen is None:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"first look: {', '.join(f'{b} at {s[:12]}' for b, s in cursor.items())} "
                "taken as deployed history"
            ),
            cursor=json.dumps(cursor, sort_keys=True),
        )
    pushed = [b for b in watched if seen.get(b) != heads[b]]
    if not pushed:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new commit on " + ", ".join(watched)),
            cursor=json.dumps({**seen, **cursor}, sort_keys=True),
        )
    rt = _runtime(context, platform, warehouse, cloudflare, git_repo, "git_push_sensor")
    try:
        ledger, now, fresh = rt.warehouse.deploys, rt.now(), []
        for branch in pushed:
            for old in ledger.requests("waiting"):
                if old.branch == branch:
                    detail = f"superseded by {heads[branch][:12]}"
                    ledger.move_request(old.request_id, "waiting", "superseded", detail, now)
            request = DeployRequest(branch, heads[branch], watched[branch], now)
            if ledger.add_request(request):
                context.log.info(
                    "%s pushed to %s: waiting for its build", request.commit_sha, branch
                )
                fresh.append(request)
        runs = launch_ready(rt, fresh)
    finally:
        rt.client.close()
    return dg.SensorResult(run_requests=runs, cursor=json.dumps({**seen, **cursor}, sort_keys=True))


@dg.sensor(
    name="build_status_sensor",
    job=deploy_job,
    minimum_interval_seconds=INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the deploy a push is waiting on when its build succeeds; a failed "
    "build sends a notice and stops that deploy.",
)
def build_status_sensor(
    context: dg.SensorEvaluationContext,
    platform: PlatformResource,
    warehouse: WarehouseResource,
    cloudflare: CloudflareResource,
    git_repo: GitResource,
):
    waiting = warehouse.warehouse.deploys.requests("waiting")
    if not waiting:
        return dg.SkipReason("no pushed commit is waiting for its build")
    rt = _runtime(context, platform, warehouse, cloudflare, git_repo, "build_status_sensor")
    try:
        runs = launch_ready(rt, waiting)
    finally:
        rt.client.close()
    if not runs:
        return dg.SkipReason(f"{len(waiting)} pushed commit(s) still waiting for a build")
    return dg.SensorResult(run_requests=runs)
