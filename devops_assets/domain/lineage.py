"""Which deployment first shipped each commit, found in one walk of the commit graph.

Deployments are taken in time order. From each deployed commit the walk
follows the first-parent line back to the first commit an earlier deployment
already claimed: everything behind that commit shipped earlier. Then, oldest
first, each first-parent commit claims what its other parents bring in (a
merged branch), stopping again at claimed commits. Every commit is visited
once, however many deployments there are, and each commit learns which
first-parent commit brought it in; that is what ``branch_start`` lead times use.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from devops_assets.domain.models import Commit, Deployment


def deployment_order(deployments: Iterable[Deployment]) -> list[Deployment]:
    """Deployments sorted by ``created_on``, ties broken by ``deployment_id``."""
    return sorted(deployments, key=lambda d: (d.created_on, d.deployment_id))


class CommitGraph:
    """Commits numbered 0..n-1 with their parents as numbers, built once and
    shared by every environment's walk. Parents missing from the commits given
    (shallow or partial history) are dropped: the walk ends there."""

    def __init__(self, commits: Iterable[Commit]):
        commits = commits if isinstance(commits, list | tuple) else list(commits)
        self.shas: list[str] = [c.sha for c in commits]
        self.index: dict[str, int] = {sha: i for i, sha in enumerate(self.shas)}
        index = self.index
        self.parents: list[tuple[int, ...]] = [
            tuple(index[p] for p in c.parents if p in index) for c in commits
        ]
        self._commits = commits
        self._times: dict[str, np.ndarray] = {}
        self._sorted: list[str] | None = None
        self._reverts: list[int] | None = None
        self._codes: np.ndarray | None = None
        self._first: tuple[list[int], bytearray] | None = None

    @classmethod
    def from_arrays(
        cls,
        shas: list[str],
        parents: list[tuple[int, ...]],
        author_time: np.ndarray,
        commit_time: np.ndarray,
        patch_ids: Sequence[str | None] | None = None,
        messages: Sequence[str] | None = None,
    ) -> CommitGraph:
        """A graph already in numbers (epoch seconds, parents as commit numbers):
        what a large history or a benchmark builds without one object per commit."""
        graph = cls.__new__(cls)
        graph.shas = shas
        graph.index = {sha: i for i, sha in enumerate(shas)}
        graph.parents = parents
        graph._commits = None
        graph._times = {"author_time": author_time, "commit_time": commit_time}
        graph._patch_ids = patch_ids
        graph._messages = messages
        graph._sorted = None
        graph._reverts = None
        graph._codes = None
        graph._first = None
        return graph

    def __len__(self) -> int:
        return len(self.shas)

    def times(self, which: str) -> np.ndarray:
        """Epoch seconds of every commit's ``author_time`` or ``commit_time``."""
        if which not in self._times:
            self._times[which] = np.fromiter(
                (getattr(c, which).timestamp() for c in self._commits),
                dtype=np.float64,
                count=len(self.shas),
            )
        return self._times[which]

    def patch_ids(self) -> Sequence[str | None]:
        if self._commits is None:
            return self._patch_ids or [None] * len(self.shas)
        return [c.patch_id for c in self._commits]

    def message(self, number: int) -> str:
        """Subject and body of one commit (where a revert names what it reverts)."""
        if self._commits is None:
            return self._messages[number] if self._messages else ""
        commit = self._commits[number]
        return f"{commit.subject}\n\n{commit.body}"

    def revert_candidates(self) -> list[int]:
        """Commits whose message may say "This reverts commit …" (any case); found
        once per graph."""
        if self._reverts is None:
            says = re.compile("reverts commit", re.IGNORECASE).search
            if self._commits is None:
                texts = self._messages or ()
                self._reverts = [i for i, m in enumerate(texts) if says(m)]
            else:
                self._reverts = [
                    i for i, c in enumerate(self._commits) if says(c.body) or says(c.subject)
                ]
        return self._reverts

    def drop_caches(self) -> None:
        """Forget what was derived from the graph (first parents, patch codes, revert
        candidates, sorted shas), so the next use pays for it again (benchmarks)."""
        self._first = self._codes = self._reverts = self._sorted = None

    def first_parents(self) -> tuple[list[int], bytearray]:
        """Each commit's first parent (-1: a root) and whether it is a merge; once."""
        if self._first is None:
            self._first = (
                [above[0] if above else -1 for above in self.parents],
                bytearray(len(above) > 1 for above in self.parents),
            )
        return self._first

    def patch_codes(self) -> np.ndarray:
        """Each commit's patch id as a number (equal ids, equal numbers; -1: none)."""
        if self._codes is None:
            ids = np.asarray(self.patch_ids(), dtype=object)
            codes, _ = pd.factorize(ids, use_na_sentinel=True)
            self._codes = codes.astype(np.int64)
        return self._codes

    def resolve(self, sha: str) -> int | None:
        """The commit a full or abbreviated (unique prefix) sha names, if any."""
        found = self.index.get(sha)
        if found is not None or len(sha) >= 40:
            return found
        if self._sorted is None:
            self._sorted = sorted(self.shas)
        at = bisect_left(self._sorted, sha)
        matches = self._sorted[at : at + 2]
        hits = [m for m in matches if m.startswith(sha)]
        return self.index[hits[0]] if len(hits) == 1 else None


@dataclass(frozen=True)
class Lineage:
    """The first deployment of every deployed commit, for one environment.

    ``deployments`` is in time order; ``first_deployment`` maps a commit sha to
    an index into it. ``changesets[i]`` lists the shas deployment ``i`` shipped
    for the first time (empty for a retry or a rollback of a shipped commit).
    ``brought_by`` maps each shipped sha to the first-parent commit whose merge
    (or own landing) brought it onto the deployed line. ``baseline`` is the
    index of the first deployment whose commit is known: it ships the whole
    earlier history at once, so its changeset says nothing about lead time and
    the metrics leave it out.
    """

    deployments: tuple[Deployment, ...]
    first_deployment: Mapping[str, int]
    changesets: tuple[tuple[str, ...], ...]
    baseline: int | None
    brought_by: Mapping[str, str]

    def deployment_of(self, sha: str) -> Deployment | None:
        """The deployment that first shipped ``sha``, or None if none did."""
        index = self.first_deployment.get(sha)
        return None if index is None else self.deployments[index]


@dataclass(frozen=True)
class Claims:
    """The walk's result in commit numbers: ``deployment[c]`` is the index of the
    deployment that first shipped commit ``c`` (-1: none), ``via[c]`` the
    first-parent commit that brought it (-1: none), ``order`` the commits in the
    order they were claimed (grouped by deployment)."""

    deployment: list[int]
    via: list[int]
    order: list[int]
    starts: list[int]  # starts[i]: position in ``order`` where deployment i begins
    baseline: int | None


def claim(graph: CommitGraph, heads: Sequence[int | None]) -> Claims:
    """Walk from each deployment's head commit (its number, or None), in the order
    given, claiming every commit not claimed by an earlier one."""
    parents = graph.parents
    first_parent, merges = graph.first_parents()
    deployment = [-1] * len(graph)
    via = [-1] * len(graph)
    order: list[int] = []
    starts: list[int] = []
    baseline = None
    for number, head in enumerate(heads):
        starts.append(len(order))
        if head is None:
            continue
        if baseline is None:
            baseline = number
        landed = []  # merge commits on the line, newest first
        commit = head
        while commit >= 0 and deployment[commit] < 0:
            deployment[commit] = number
            via[commit] = commit
            order.append(commit)
            if merges[commit]:
                landed.append(commit)
            commit = first_parent[commit]
        # Oldest merge first: everything behind its first parent is claimed by now, so
        # what its other parents reach unclaimed is what this merge brought in.
        for first in reversed(landed):
            stack = list(parents[first][1:])
            while stack:
                commit = stack.pop()
                if deployment[commit] >= 0:
                    continue
                deployment[commit] = number
                via[commit] = first
                order.append(commit)
                stack.extend(parents[commit])
    return Claims(deployment, via, order, starts, baseline)


def attribute_commits(
    commits: Iterable[Commit] | CommitGraph, deployments: Iterable[Deployment]
) -> Lineage:
    """Attribute each commit to the first deployment (by time) that contains it.

    Pass the deployments of one environment. Merge commits count like any
    other commit. A deployment without a commit sha, or whose commit is not in
    ``commits`` (shallow or partial history), ships nothing.
    """
    graph = commits if isinstance(commits, CommitGraph) else CommitGraph(commits)
    ordered = tuple(deployment_order(deployments))
    heads = [graph.index.get(d.commit_sha) if d.commit_sha else None for d in ordered]
    claims = claim(graph, heads)
    shas = graph.shas
    bounds = [*claims.starts, len(claims.order)]
    changesets = tuple(
        tuple(shas[c] for c in claims.order[bounds[i] : bounds[i + 1]]) for i in range(len(ordered))
    )
    first = {shas[c]: claims.deployment[c] for c in claims.order}
    brought = {shas[c]: shas[claims.via[c]] for c in claims.order}
    return Lineage(ordered, first, changesets, claims.baseline, brought)
