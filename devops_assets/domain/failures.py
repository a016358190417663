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
from datetime import UTC, datetime

import numpy as np

from devops_assets.domain.models import Deployment, Incident
from devops_assets.domain.settings import MetricSettings

REVERT = re.compile(r"\bthis reverts commit ([0-9a-f]{4,64})\b", re.IGNORECASE)


SOURCES = ("rollback", "hotfix", "revert", "incident")
BIT = {source: 1 << n for n, source in enumerate(SOURCES)}


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


@dataclass
class Outcomes:
    """What became of each deployment, as arrays (one entry per deployment): the
    failure causes and unplanned reasons as bits of ``BIT``, recovery as epoch
    seconds (NaN while failing or not failed), and the incidents attributed."""

    causes: np.ndarray
    unplanned: np.ndarray
    recovered_at: np.ndarray
    incidents: dict[int, list[Incident]]

    @property
    def failed(self) -> np.ndarray:
        return self.causes != 0

    def outcome(self, i: int) -> Outcome:
        """One deployment's outcome as names and times (for people and tests)."""
        recovered = self.recovered_at[i]
        return Outcome(
            {s for s in SOURCES if self.causes[i] & BIT[s]},
            {s for s in SOURCES if self.unplanned[i] & BIT[s]},
            None if np.isnan(recovered) else datetime.fromtimestamp(recovered, UTC),
            list(self.incidents.get(i, [])),
        )


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
    kinds: Sequence[str] | None = None,
) -> Outcomes:
    """The outcome of each deployment of ``deployments`` (successful, in time order).

    ``reverts`` maps a deployment's index to the indexes of earlier deployments
    whose commits it reverts (from ``lineage``); incidents are those of this
    environment; ``kinds`` are the deployments' ``effective_kind`` when known.
    """
    sources = set(settings.failure_sources)
    window = settings.remediation_window.total_seconds()
    kinds = kinds if kinds is not None else [effective_kind(d, settings) for d in deployments]
    times = [d.created_on.timestamp() for d in deployments]
    causes = bytearray(len(deployments))
    unplanned = bytearray(len(deployments))
    # Per worker: the deployments no rollback has undone yet, and the latest one that
    # was not a rollback (what a hotfix repairs).
    standing: dict[str, _Standing] = {}
    latest: dict[str, int] = {}
    for i, (deployment, kind) in enumerate(zip(deployments, kinds, strict=True)):
        mine = standing.get(deployment.worker)
        if mine is None:
            mine = standing[deployment.worker] = _Standing()
        if kind == "rollback":
            unplanned[i] |= BIT["rollback"]
            for undone in mine.undo(deployment):
                if "rollback" in sources:
                    causes[undone] |= BIT["rollback"]
            continue
        if kind == "hotfix":
            unplanned[i] |= BIT["hotfix"]
            repaired = latest.get(deployment.worker)
            if (
                "hotfix" in sources
                and repaired is not None
                and times[i] - times[repaired] <= window
            ):
                causes[repaired] |= BIT["hotfix"]
        mine.push(i, deployment)
        latest[deployment.worker] = i
    for i, earlier in (reverts or {}).items():
        unplanned[i] |= BIT["revert"]
        for e in earlier:
            if "revert" in sources and times[i] - times[e] <= window:
                causes[e] |= BIT["revert"]
    attached = _attach_incidents(
        deployments, times, incidents, causes, unplanned, "incident" in sources
    )
    recovered = _recover(times, causes, attached)
    return Outcomes(
        np.frombuffer(bytes(causes), dtype=np.uint8),
        np.frombuffer(bytes(unplanned), dtype=np.uint8),
        recovered,
        attached,
    )


class _Standing:
    """One worker's deployments that no rollback has undone, oldest first, with where
    each version and commit last stands, so a rollback finds its target at once.
    Each entry remembers what its version and commit pointed to before it, to put
    back when a rollback removes it."""

    __slots__ = ("commits", "stack", "versions")

    def __init__(self) -> None:
        self.stack: list[tuple] = []
        self.versions: dict[str, int] = {}
        self.commits: dict[str, int] = {}

    def push(self, index: int, deployment: Deployment) -> None:
        depth, version, sha = len(self.stack), deployment.version_id, deployment.commit_sha
        self.stack.append((index, version, self.versions.get(version), sha, self.commits.get(sha)))
        if version:
            self.versions[version] = depth
        if sha:
            self.commits[sha] = depth

    def undo(self, rollback: Deployment) -> list[int]:
        """Everything after the last standing deployment of the version (or commit) the
        rollback returns to; without one, the newest standing deployment alone."""
        found = [
            where.get(key, -1)
            for where, key in (
                (self.versions, rollback.version_id),
                (self.commits, rollback.commit_sha),
            )
            if key
        ]
        target = max(found, default=-1)
        if target < 0:
            target = len(self.stack) - 2
        undone = []
        while len(self.stack) > max(target + 1, 0):
            index, version, old_version, sha, old_sha = self.stack.pop()
            _put_back(self.versions, version, old_version)
            _put_back(self.commits, sha, old_sha)
            undone.append(index)
        return undone[::-1]


def _put_back(where: dict[str, int], key: str | None, previous: int | None) -> None:
    if not key:
        return
    if previous is None:
        where.pop(key, None)
    else:
        where[key] = previous


def _attach_incidents(
    deployments: Sequence[Deployment],
    times: Sequence[float],
    incidents: Sequence[Incident],
    causes: bytearray,
    unplanned: bytearray,
    counts_as_failure: bool,
) -> dict[int, list[Incident]]:
    """Link each incident to its deployment; an incident open while a deployment
    went out makes that deployment unplanned (an incident-linked fix)."""
    by_id = {d.deployment_id: i for i, d in enumerate(deployments)}
    attached: dict[int, list[Incident]] = {}
    during = [0] * (len(deployments) + 1)  # +1 where an open incident starts, -1 past its end
    for incident in incidents:
        opened = incident.created_at.timestamp()
        named = by_id.get(incident.deployment_id) if incident.deployment_id else None
        cause = named if named is not None else bisect_left(times, opened) - 1
        if cause >= 0:
            attached.setdefault(cause, []).append(incident)
            if counts_as_failure:
                causes[cause] |= BIT["incident"]
        open_from = bisect_left(times, opened)
        open_to = (
            len(times)
            if incident.resolved_at is None
            else bisect_right(times, incident.resolved_at.timestamp())
        )
        if open_from < open_to:
            during[open_from] += 1
            during[open_to] -= 1
    depth = 0
    for j in range(len(deployments)):
        depth += during[j]
        if depth > 0:
            unplanned[j] |= BIT["incident"]
    return attached


def _recover(
    times: Sequence[float], causes: bytearray, attached: Mapping[int, list[Incident]]
) -> np.ndarray:
    """Each failed deployment's recovery: the next healthy deployment or the
    resolution of an incident attributed to it, whichever comes first."""
    recovered = np.full(len(times), np.nan)
    next_healthy = None
    for i in range(len(times) - 1, -1, -1):
        if causes[i]:
            ends = [next_healthy] if next_healthy is not None else []
            ends += [x.resolved_at.timestamp() for x in attached.get(i, ()) if x.resolved_at]
            ends = [e for e in ends if e >= times[i]]
            if ends:
                recovered[i] = min(ends)
        else:
            next_healthy = times[i]
    return recovered
