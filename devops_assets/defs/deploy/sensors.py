"""Sensors that start deploys: a push to an environment's branch, then its build.

``git_push_sensor`` reads the branch heads of the team's repository. Its cursor
holds the last head seen per branch; with no cursor (first start, or after a
reset) it takes today's heads as seen and deploys nothing, so history is never
re-deployed. A new head becomes a deploy request in the warehouse, waiting for
the environment worker's build of that commit. An older request of the same
branch still waiting is superseded: only the newest push deploys.

``build_status_sensor`` watches the waiting requests' builds. A successful
build starts the ``deploy`` run (run key ``<branch>:<sha>``, so a sha deploys
once); a failed one sends a ``build_failed`` notice, with the triage of its log
(``defs/ingest/build_failures.py``), and stops the request.
``git_push_sensor`` starts the run itself when the build had already finished.
A sensor claims a request (waiting → claimed, one compare-and-set in the
warehouse) before asking for its run, so the two sensors never both start it;
a claimed request whose run does not exist yet (the tick failed after the
claim) is asked for again by the same sensor on its next tick, and marked
launched once its run exists.
"""

import json
from datetime import timedelta

import dagster as dg

from devops_assets.defs.deploy.jobs import deploy_job
from devops_assets.defs.ingest.build_failures import notice_text, triage_build
from devops_assets.defs.resources import (
    CloudflareResource,
    GitResource,
    PlatformResource,
    WarehouseResource,
)
from devops_assets.delivery.runtime import open_runtime
from devops_assets.domain.deploys import DeployRequest
from devops_assets.sources.cloudflare import CloudflareError
from devops_assets.sources.git import read_branches
from devops_assets.store.triage_ledger import TriageLedger
from devops_assets.store.warehouse import WarehouseWriteError

INTERVAL = 30
BUILD_SLACK = timedelta(days=1)


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


def _run_exists(instance, run_key: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
    return bool(runs)


def launch_ready(
    rt, instance, sensor: str, branches: set[str] | None = None
) -> list[dg.RunRequest]:
    """Run requests of this sensor: requests it claimed earlier whose run does not
    exist yet (a tick that failed after claiming; Dagster drops a run key it has
    started, so asking again is safe), then waiting requests (of ``branches``, if
    given) whose build succeeded, claimed now. A claimed request whose run exists
    is marked launched; a failed build stops its request with a notice; builds
    still running keep waiting."""
    ledger, runs, now = rt.warehouse.deploys, [], rt.now()
    for request in ledger.requests("claimed"):
        if request.claimed_by != sensor:
            continue
        if _run_exists(instance, request.request_id):
            detail = f"{request.detail}; run started"
            ledger.move_request(request.request_id, "claimed", "launched", detail, now)
        else:
            runs.append(_run_request(request))
    waiting = [r for r in ledger.requests("waiting") if branches is None or r.branch in branches]
    # a build starts when the push lands, before a tick sees it: a day of slack
    since = min((r.requested_at for r in waiting), default=now) - BUILD_SLACK
    by_worker: dict[str, list] = {}
    for request in waiting:
        worker = rt.config.environment(request.environment).worker
        if worker not in by_worker:
            tag = rt.config.worker(worker).tag
            by_worker[worker] = rt.client.list_builds(worker, tag, newer_than=since)
        builds = [b for b in by_worker[worker] if b.commit_sha == request.commit_sha]
        if not builds:
            continue
        build = max(builds, key=lambda b: b.created_on)
        if not build.finished:
            continue
        if build.outcome == "success":
            detail = f"build {build.build_uuid} succeeded"
            claimed = ledger.move_request(
                request.request_id, "waiting", "claimed", detail, now, claimed_by=sensor
            )
            if claimed:
                runs.append(_run_request(request))
        else:
            detail = f"build {build.build_uuid} ended {build.outcome}"
            if ledger.move_request(request.request_id, "waiting", "build_failed", detail, now):
                text = f"{detail}; the deploy to {request.environment} is stopped"
                if build.outcome == "fail":
                    text += _triage_note(rt, build, by_worker[worker])
                rt.notify("build_failed", request.environment, request.commit_sha, text)
    return runs


def _triage_note(rt, build, builds) -> str:
    """``; triage: …`` (category, step, evidence lines, masked summary) for a failed
    build's notice; empty when its log cannot be read (the notice goes out anyway)."""
    try:
        record = triage_build(
            TriageLedger(rt.warehouse), rt.client, build, builds, rt.config.quality_gate, rt.now()
        )
    except (CloudflareError, WarehouseWriteError, ValueError) as exc:
        rt.log.warning("No triage of build %s for its notice: %s", build.build_uuid, exc)
        return ""
    return f"; {notice_text(record)}" if record is not None else ""


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
    claimed = warehouse.warehouse.deploys.requests("claimed")
    if not pushed and not any(r.claimed_by == "git_push_sensor" for r in claimed):
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new commit on " + ", ".join(watched)),
            cursor=json.dumps({**seen, **cursor}, sort_keys=True),
        )
    rt = _runtime(context, platform, warehouse, cloudflare, git_repo, "git_push_sensor")
    try:
        ledger, now = rt.warehouse.deploys, rt.now()
        for branch in pushed:
            head = heads[branch]
            for old in ledger.requests("waiting"):
                if old.branch == branch and old.commit_sha != head:
                    detail = f"superseded by {head[:12]}"
                    ledger.move_request(old.request_id, "waiting", "superseded", detail, now)
            request = DeployRequest(branch, head, watched[branch], now)
            if ledger.add_request(request):
                context.log.info("%s pushed to %s: waiting for its build", head, branch)
            elif ledger.move_request(
                request.request_id, "superseded", "waiting", "pushed again", now
            ):  # a branch moved back to a commit a later push had superseded
                context.log.info("%s is %s's head again: waiting for its build", head, branch)
        runs = launch_ready(rt, context.instance, "git_push_sensor", set(pushed))
    finally:
        rt.client.close()
    skip = None if runs or pushed else dg.SkipReason("no new commit on " + ", ".join(watched))
    return dg.SensorResult(
        run_requests=runs, skip_reason=skip, cursor=json.dumps({**seen, **cursor}, sort_keys=True)
    )


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
    ledger = warehouse.warehouse.deploys
    if not ledger.requests("waiting") and not ledger.requests("claimed"):
        return dg.SkipReason("no pushed commit is waiting for its build")
    rt = _runtime(context, platform, warehouse, cloudflare, git_repo, "build_status_sensor")
    try:
        runs = launch_ready(rt, context.instance, "build_status_sensor")
    finally:
        rt.client.close()
    if runs:
        return dg.SensorResult(run_requests=runs)
    left = len(warehouse.warehouse.deploys.requests("waiting"))
    if left:
        return dg.SkipReason(f"{left} pushed commit(s) still waiting for a build")
    return dg.SkipReason("no pushed commit is waiting for its build")
