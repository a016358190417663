"""Ingest: git history and the Cloudflare records of every configured worker.

Each asset writes its table with idempotent upserts, so materializing it again
changes nothing unless the outside system changed.
"""

from dataclasses import replace
from datetime import timedelta

import dagster as dg

from devops_assets.defs.resources import (
    CloudflareResource,
    GitResource,
    PlatformResource,
    WarehouseResource,
)
from devops_assets.domain.models import Build
from devops_assets.sources import git
from devops_assets.sources.cloudflare import CloudflareError
from devops_assets.sources.events import EventsError, read_incidents
from devops_assets.sources.statuspage import EMULATOR_FEED, StatuspageError, read_statuspage_at

OWNERS = ["team:platform"]
BUILDS_LOOKBACK = timedelta(hours=1)


@dg.asset(
    group_name="ingest",
    owners=OWNERS,
    kinds={"git", "sql"},
    description="Every commit reachable from the repository's branches and tags.",
)
def git_commits(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    git_repo: GitResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """One row per commit (sha): parents, author and committer time with offsets, message,
    and (when cherry-picks are matched by patch id) the patch id of its diff.

    Commits never change, so a re-run only adds what was pushed since.
    """
    path = git_repo.local_path()
    commits = git.read_commits(path)
    if platform.config.metrics.cherry_picks == "patch_id":
        # Diffs are read only for commits whose patch id is not stored yet (new ones,
        # and merges or empty commits, which have none); the rest keep theirs.
        patch_ids = warehouse.warehouse.patch_ids()
        unknown = [c.sha for c in commits if c.sha not in patch_ids and not c.is_merge]
        patch_ids.update(git.read_patch_ids(path, shas=unknown))
        commits = [replace(c, patch_id=patch_ids.get(c.sha)) for c in commits]
    before = warehouse.warehouse.count("commits")
    warehouse.warehouse.upsert_commits(commits)
    added = warehouse.warehouse.count("commits") - before
    context.log.info("Read %d commits from %s; %d new", len(commits), path, added)
    newest = max((c.commit_time for c in commits), default=None)
    return dg.MaterializeResult(
        metadata={
            "commits": len(commits),
            "new_commits": added,
            "merge_commits": sum(c.is_merge for c in commits),
            "commits_with_patch_id": sum(c.patch_id is not None for c in commits),
            "newest_commit": dg.MetadataValue.timestamp(newest) if newest else None,
        }
    )


@dg.asset(
    group_name="ingest",
    owners=OWNERS,
    kinds={"git", "sql"},
    description="Every tag of the repository, peeled to its commit.",
)
def git_tags(
    context: dg.AssetExecutionContext, git_repo: GitResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per tag name: the commit it points to and its time (tagger or commit date)."""
    tags = git.read_tags(git_repo.local_path())
    warehouse.warehouse.upsert_tags(tags)
    context.log.info("Read %d tags", len(tags))
    return dg.MaterializeResult(
        metadata={"tags": len(tags), "annotated_tags": sum(t.annotated for t in tags)}
    )


@dg.asset(
    group_name="ingest",
    owners=OWNERS,
    kinds={"cloudflare", "sql"},
    description="Workers Builds history of every configured worker, fetched incrementally.",
)
def workers_builds(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    cloudflare: CloudflareResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """One row per build (build_uuid): branch, commit, status, outcome and phase times.

    A run asks the API only for builds created since an hour before the newest
    stored one (the hour catches builds listed late or created in the same
    instant), plus the builds that were still queued or running last time,
    because their outcome changes after we first saw them. Upserts make the
    overlap harmless.
    """
    client, store = cloudflare.client(), warehouse.warehouse
    fetched: list[Build] = []
    metadata: dict[str, int] = {}
    for worker in platform.config.workers:
        newest = store.newest_build_created_on(worker.name)
        since = newest - BUILDS_LOOKBACK if newest else None
        new = client.list_builds(worker.name, worker.tag, newer_than=since)
        pending = set(store.unfinished_builds(worker.name)) - {b.build_uuid for b in new}
        refreshed = _refresh(context, client, worker.name, sorted(pending))
        fetched += new + refreshed
        context.log.info(
            "%s: %d builds created since %s, %d unfinished refreshed",
            worker.name,
            len(new),
            since,
            len(refreshed),
        )
        metadata[f"{worker.name}.fetched_builds"] = len(new)
        metadata[f"{worker.name}.refreshed_builds"] = len(refreshed)

    store.upsert_builds(fetched)
    metadata["builds_stored"] = store.count("builds")
    metadata["builds_unfinished"] = sum(
        len(store.unfinished_builds(w.name)) for w in platform.config.workers
    )
    return dg.MaterializeResult(metadata=metadata)


def _refresh(context, client, worker: str, uuids: list[str]) -> list[Build]:
    """Fetch builds again that were unfinished last time. A build the API no longer
    knows (404) keeps its last stored state and is reported, not allowed to block
    every later ingest."""
    builds = []
    for uuid in uuids:
        try:
            builds.append(client.get_build(uuid, worker))
        except CloudflareError as exc:
            if exc.status != 404:
                raise
            context.log.warning(
                "%s: build %s is gone from the API (404); kept as stored", worker, uuid
            )
    return builds


@dg.asset(
    group_name="ingest",
    owners=OWNERS,
    kinds={"cloudflare", "sql"},
    description="Deployments of every worker that serves an environment, with their commits.",
)
def worker_deployments(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    cloudflare: CloudflareResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """One row per deployment id: when, which version at what share, which commit, and
    whether it was a rollback (a new 100 % deployment of an older version)."""
    client, config = cloudflare.client(), platform.config
    deployments = []
    for env in config.environments:
        if env.worker is None:
            continue
        worker = config.worker(env.worker)
        found = client.worker_deployments(worker.name, worker.tag, env.name)
        context.log.info("%s (%s): %d deployments", worker.name, env.name, len(found))
        deployments += found

    warehouse.warehouse.upsert_deployments(deployments)
    metadata = {"deployments": len(deployments)}
    for env in {d.environment for d in deployments}:
        in_env = [d for d in deployments if d.environment == env]
        metadata[f"{env}.deployments"] = len(in_env)
        metadata[f"{env}.rollbacks"] = sum(d.kind == "rollback" for d in in_env)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name="ingest",
    owners=OWNERS,
    kinds={"json", "sql"},
    description="Incidents from the team's incident feed (a status page or an events file).",
)
def incidents(
    context: dg.AssetExecutionContext, platform: PlatformResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per incident id: environment, opened, resolved (empty while open) and,
    when the feed knows it, the deployment that caused it. The feed is the platform
    file's ``[incidents] statuspage`` (a Statuspage page; its components name the
    environment) or ``[incidents] file`` (the events format), read whole each run, so
    an incident the feed no longer lists is gone; the metric engine attributes
    incidents that name no deployment (docs/metrics.md)."""
    config = platform.config
    if config.incidents_statuspage is not None:
        key, feed = "incidents.statuspage", config.incidents_statuspage
        shown = dg.MetadataValue.text(feed) if feed == EMULATOR_FEED else dg.MetadataValue.url(feed)
    elif config.incidents_file is not None:
        key, feed = "incidents.file", config.incidents_file
        shown = dg.MetadataValue.path(feed)
    else:
        context.log.info("No [incidents] feed configured: incident metrics stay empty")
        return dg.MaterializeResult(metadata={"incidents": 0, "feed": "none configured"})

    try:
        if key == "incidents.statuspage":
            components = dict(config.incidents_components)
            found = read_statuspage_at(feed, components, config.cloudflare.emulator_state)
        else:
            found = read_incidents(feed)
    except (EventsError, StatuspageError) as exc:
        raise dg.Failure(f"{config.path}: key '{key}': {exc}", allow_retries=False) from None

    warehouse.warehouse.replace_incidents(found)
    still_open = [i for i in found if i.resolved_at is None]
    context.log.info("Read %d incidents from %s; %d open", len(found), feed, len(still_open))
    return dg.MaterializeResult(
        metadata={"incidents": len(found), "open_incidents": len(still_open), "feed": shown}
    )
