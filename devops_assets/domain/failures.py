"""Which deployments of one environment failed, which were unplanned, and when
each failure was recovered.

A deployment fails when (each source switchable, docs/metrics.md):

- ``rollback``: a later rollback undid it;
- ``hotfix``: a hotfix followed it within the remediation window;
- ``revert``: a later deployment, within the window, shipped a commit that
  reverts one of the commits it shipped first;
- ``incident``: an incident is attributed to it: the deployment the incident
  names, else the latest deployment that finished before the incident opened.

A failure is recovered at the earlier of the next healthy (not failed)
deployment and the resolution of an incident attributed to it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from devops_assets.domain.models import Deployment, Incident
from devops_assets.domain.settings import MetricSettings

REVERT = re.compile(r"\bthis reverts commit ([0-9a-f]{4,64})\b", re.IGNORECASE)


@dataclass
class Outcome:
    """What became of one deployment; ``recovered_at`` is None while still failing."""

    causes: set[str] = field(default_factory=set)
    unplanned: set[str] = field(default_factory=set)
    recovered_at: datetime | None = None
    incidents: list[Incident] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.causes)


def effective_kind(deployment: Deployment, settings: MetricSettings) -> str:
    """The deployment's kind, a plain deploy read as a hotfix when its message says so."""
    if deployment.kind == "deploy" and re.search(settings.hotfix_pattern, deployment.message):
        return "hotfix"
    return deployment.kind


def reverted_shas(message: str) -> list[str]:
    """The commits (full or abbreviated shas, lower-cased) a commit message says it
    reverts, in git's own revert wording."""
    return [sha.lower() for sha in REVERT.findall(message)]


def classify(
    deployments: Sequence[Deployment],
    incidents: Sequence[Incident],
    settings: MetricSettings,
    reverts: Mapping[int, Sequence[int]] | None = None,
) -> list[Outcome]:
    """The outcome of each deployment of ``deployments`` (successful, in time order).

    ``reverts`` maps a deployment's index to the indexes of earlier deployments
    whose commits it reverts (from ``lineage``); incidents are those of this
    environment.
    """
    sources = set(settings.failure_sources)
    window = settings.remediation_window
    kinds = [effective_kind(d, settings) for d in deployments]
    outcomes = [Outcome() for _ in deployments]
    # Per worker: the deployments no rollback has undone yet, and the latest one that
    # was not a rollback (what a hotfix repairs).
    standing: dict[str, _Standing] = {}
    latest: dict[str, int] = {}
    for i, (deployment, kind) in enumerate(zip(deployments, kinds, strict=True)):
        mine = standing.setdefault(deployment.worker, _Standing())
        if kind == "rollback":
            outcomes[i].unplanned.add("rollback")
            for undone in mine.undo(deployment):
                if "rollback" in sources:
                    outcomes[undone].causes.add("rollback")
            continue
        if kind == "hotfix":
            outcomes[i].unplanned.add("hotfix")
            repaired = latest.get(deployment.worker)
            if (
                "hotfix" in sources
                and repaired is not None
                and deployment.created_on - deployments[repaired].created_on <= window
            ):
                outcomes[repaired].causes.add("hotfix")
        mine.push(i, deployment)
        latest[deployment.worker] = i
    for i, earlier in (reverts or {}).items():
        outcomes[i].unplanned.add("revert")
        for e in earlier:
            if "revert" in sources and (
                deployments[i].created_on - deployments[e].created_on <= window
            ):
                outcomes[e].causes.add("revert")
    _attach_incidents(deployments, incidents, outcomes, "incident" in sources)
    _recover(deployments, outcomes)
    return outcomes


class _Standing:
    """One worker's deployments that no rollback has undone, oldest first, with where
    each version and commit last stands, so a rollback finds its target at once."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, list[tuple[str, str]]]] = []
        self.depths: dict[tuple[str, str], list[int]] = {}

    def push(self, index: int, deployment: Deployment) -> None:
        keys = _keys(deployment)
        for key in keys:
            self.depths.setdefault(key, []).append(len(self.stack))
        self.stack.append((index, keys))

    def undo(self, rollback: Deployment) -> list[int]:
        """Everything after the last standing deployment of the version (or commit) the
        rollback returns to; without one, the newest standing deployment alone."""
        found = [self.depths[k][-1] for k in _keys(rollback) if self.depths.get(k)]
        target = max(found) if found else len(self.stack) - 2
        undone = []
        while len(self.stack) > max(target + 1, 0):
            index, keys = self.stack.pop()
            for key in keys:
                self.depths[key].pop()  # its depth is the newest of its key
            undone.append(index)
        return undone[::-1]


def _keys(deployment: Deployment) -> list[tuple[str, str]]:
    keys = [("version", deployment.version_id)] if deployment.version_id else []
    return keys + ([("commit", deployment.commit_sha)] if deployment.commit_sha else [])


def _attach_incidents(
    deployments: Sequence[Deployment],
    incidents: Sequence[Incident],
    outcomes: list[Outcome],
    counts_as_failure: bool,
) -> None:
    """Link each incident to its deployment; an incident open while a deployment
    went out makes that deployment unplanned (an incident-linked fix)."""
    times = [d.created_on for d in deployments]
    by_id = {d.deployment_id: i for i, d in enumerate(deployments)}
    during = [0] * (len(deployments) + 1)  # +1 where an open incident starts, -1 past its end
    for incident in incidents:
        named = by_id.get(incident.deployment_id) if incident.deployment_id else None
        cause = named if named is not None else bisect_left(times, incident.created_at) - 1
        if cause >= 0:
            outcomes[cause].incidents.append(incident)
            if counts_as_failure:
                outcomes[cause].causes.add("incident")
        open_from = bisect_left(times, incident.created_at)
        open_to = (
            len(times)
            if incident.resolved_at is None
            else bisect_right(times, incident.resolved_at)
        )
        if open_from < open_to:
            during[open_from] += 1
            during[open_to] -= 1
    depth = 0
    for j, outcome in enumerate(outcomes):
        depth += during[j]
        if depth > 0:
            outcome.unplanned.add("incident")


def _recover(deployments: Sequence[Deployment], outcomes: list[Outcome]) -> None:
    """Each failed deployment's recovery: the next healthy deployment or the
    resolution of an incident attributed to it, whichever comes first."""
    next_healthy: datetime | None = None
    for i in range(len(deployments) - 1, -1, -1):
        outcome = outcomes[i]
        if outcome.failed:
            ends = [next_healthy] if next_healthy is not None else []
            ends += [x.resolved_at for x in outcome.incidents if x.resolved_at is not None]
            ends = [e for e in ends if e >= deployments[i].created_on]
            outcome.recovered_at = min(ends) if ends else None
        else:
            next_healthy = deployments[i].created_on
