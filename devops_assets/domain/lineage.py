"""Which deployment first shipped each commit, found in one walk of the commit graph.

Deployments are taken in time order. From each deployed commit the walk goes
to parents and stops at commits an earlier deployment already claimed: such a
commit's ancestors are all inside that earlier deployment, so nothing beyond
it can be new. Every commit is visited once, however many deployments there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from devops_assets.domain.models import Commit, Deployment


def deployment_order(deployments: Iterable[Deployment]) -> list[Deployment]:
    """Deployments sorted by ``created_on``, ties broken by ``deployment_id``."""
    return sorted(deployments, key=lambda d: (d.created_on, d.deployment_id))


@dataclass(frozen=True)
class Lineage:
    """The first deployment of every deployed commit, for one environment.

    ``deployments`` is in time order; ``first_deployment`` maps a commit sha to
    an index into it. ``changesets[i]`` lists the shas deployment ``i`` shipped
    for the first time (empty for a retry or a rollback of a shipped commit).
    ``baseline`` is the index of the first deployment whose commit is known:
    it ships the whole earlier history at once, so its changeset says nothing
    about lead time and the metrics leave it out.
    """

    deployments: tuple[Deployment, ...]
    first_deployment: Mapping[str, int]
    changesets: tuple[tuple[str, ...], ...]
    baseline: int | None

    def deployment_of(self, sha: str) -> Deployment | None:
        """The deployment that first shipped ``sha``, or None if none did."""
        index = self.first_deployment.get(sha)
        return None if index is None else self.deployments[index]


def _walk(
    start: str, parents: Mapping[str, Sequence[str]], claimed: dict[str, int], index: int
) -> tuple[str, ...]:
    """Claim for ``index`` every unclaimed ancestor of ``start`` (itself included)."""
    shipped = []
    stack = [start]
    while stack:
        sha = stack.pop()
        if sha in claimed or sha not in parents:
            continue
        claimed[sha] = index
        shipped.append(sha)
        stack.extend(parents[sha])
    return tuple(shipped)


def attribute_commits(commits: Iterable[Commit], deployments: Iterable[Deployment]) -> Lineage:
    """Attribute each commit to the first deployment (by time) that contains it.

    Pass the deployments of one environment. Merge commits count like any
    other commit. A deployment without a commit sha, or whose commit is not in
    ``commits`` (shallow or partial history), ships nothing; parents missing
    from ``commits`` end the walk there instead of failing.
    """
    parents = {commit.sha: commit.parents for commit in commits}
    ordered = tuple(deployment_order(deployments))
    claimed: dict[str, int] = {}
    changesets = []
    baseline = None
    for index, deployment in enumerate(ordered):
        sha = deployment.commit_sha
        if sha is not None and sha in parents and baseline is None:
            baseline = index
        changesets.append(_walk(sha, parents, claimed, index) if sha else ())
    return Lineage(ordered, claimed, tuple(changesets), baseline)
