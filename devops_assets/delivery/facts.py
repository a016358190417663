"""What the deploy policy decides on, read fresh for each decision.

Builds, versions and deployments come from the Cloudflare API (never from a
copy an asset made earlier: a decision must see the worker as it is now);
gate records, smoke runs and incidents from the warehouse and the feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from devops_assets.delivery.runtime import Runtime
from devops_assets.domain import guards, rollout
from devops_assets.domain.models import Build
from devops_assets.sources.git_refs import commits_with_prefix

CLOCK_SLACK = timedelta(minutes=10)


@dataclass(frozen=True)
class WorkerState:
    """A worker's deployments (oldest first), the version serving most now, and
    the versions found broken."""

    worker: str
    deployments: list[dict]
    serving: str | None
    broken: set[str]

    def known_good(self, exclude: str | None) -> str | None:
        return rollout.known_good(self.deployments, self.broken, exclude)


def worker_state(rt: Runtime, environment: str) -> WorkerState:
    worker = rt.config.environment(environment).worker
    deployments = sorted(rt.client.list_deployments(worker), key=lambda d: d["created_on"])
    smoke = [(s.version_id, s.passed) for s in rt.warehouse.deploys.smoke_runs(environment)]
    broken = rollout.broken_versions(smoke, rollout.rolled_back_from(deployments))
    serving = rollout.serving(deployments[-1]) if deployments else None
    return WorkerState(worker, deployments, serving, broken)


def commit_build(rt: Runtime, environment: str, sha: str) -> tuple[Build | None, str | None]:
    """The newest build of ``sha`` on the environment's worker, and its version: the
    newest version mapped to the build (None unless the build succeeded and a version
    names it). A secret change keeps the build's mapping, so a version this platform
    staged and did not promote (a failed rotation's, recorded as abandoned, staged or
    needing attention) is mapped too: it is never picked, its value was never proven."""
    worker = rt.config.environment(environment).worker
    tag = rt.config.worker(worker).tag
    builds = [b for b in rt.client.list_builds(worker, tag) if b.commit_sha == sha]
    if not builds:
        return None, None
    build = max(builds, key=lambda b: b.created_on)
    if build.outcome != "success":
        return build, None
    # a build uploads its version while it runs: only versions made since it started
    # can be its own (a few minutes of slack for clocks), so only those are looked up
    since = build.created_on - CLOCK_SLACK
    versions = [v for v in rt.client.list_versions(worker) if v["created_on"] >= since]
    by_version = rt.client.builds_for_versions([v["id"] for v in versions], worker=worker)
    unproven = not_promoted(rt, worker)
    for version in sorted(versions, key=lambda v: v["number"], reverse=True):
        if version["id"] in unproven:
            continue
        made = by_version.get(version["id"])
        if made is not None and made.build_uuid == build.build_uuid:
            return build, version["id"]
    return build, None


def not_promoted(rt: Runtime, worker: str) -> set[str]:
    """Ids of the versions this platform made on ``worker`` and never promoted."""
    return {v.version_id for v in rt.warehouse.secrets.versions(worker) if v.outcome != "promoted"}


def gate_records(rt: Runtime, sha: str) -> list[guards.GateRecord]:
    """Gate reports of the commit. A report a CI step sent with an abbreviated sha
    counts only when no other commit of the repository starts with it."""
    found, prefixes = [], {}
    for record in rt.warehouse.gate_records():
        reported = record.commit_sha.lower()
        if reported != sha:
            if len(reported) < 7 or not sha.startswith(reported):
                continue
            if reported not in prefixes:
                prefixes[reported] = commits_with_prefix(rt.repo, reported) == [sha]
            if not prefixes[reported]:
                continue
        found.append(guards.GateRecord(sha, record.step, record.status, record.recorded_at))
    return found


def staging_evidence(rt: Runtime) -> tuple[frozenset[str], list[guards.SmokeRun]]:
    """Commits deployed to staging, and staging's smoke runs. A version staging was
    rolled back from counts as a failed smoke run at the time of that rollback: a
    commit someone pulled out of staging is not proven there."""
    runs = rt.warehouse.deploys.smoke_runs("staging")
    deployed = {r.commit_sha for r in runs}
    deployed |= {d.commit_sha for d in rt.warehouse.deployments() if d.environment == "staging"}
    smoke = [guards.SmokeRun("staging", r.commit_sha, r.passed, r.at) for r in runs]
    worker = rt.config.environment("staging").worker
    pulled = rollout.rollbacks(rt.client.list_deployments(worker)) if worker else {}
    for run in runs:
        if run.version_id in pulled:
            smoke.append(guards.SmokeRun("staging", run.commit_sha, False, pulled[run.version_id]))
    return frozenset(s for s in deployed if s), smoke


def open_incidents(rt: Runtime, environment: str) -> list[str]:
    """Ids of the environment's open incidents: the feed read now when one is
    configured, else the last copy the ``incidents`` asset stored."""
    from devops_assets.delivery.incident_feed import current_incidents

    incidents = current_incidents(rt)
    return sorted(
        i.incident_id for i in incidents if i.environment == environment and i.resolved_at is None
    )
