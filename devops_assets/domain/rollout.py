"""Rollout plans and the version to fall back to.

A production deploy shifts traffic to the new version by steps (10 → 50 → 100 %
in the demo): each step is one Workers deployment of two versions whose shares
sum to 100. The version to fall back to, the *known-good* version, is the
newest one that served all of production and was never found broken: its
latest production smoke run (if any) passed and it was not rolled back from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

Step = tuple[tuple[str, float], ...]  # (version id, percentage), new version first


def plan(new: str, old: str | None, percentages: Sequence[int]) -> list[Step]:
    """The deployments that take traffic from ``old`` to ``new`` step by step;
    one 100 % step when there is nothing to share with (or ``new`` serves already)."""
    if old is None or old == new:
        return [((new, 100.0),)]
    steps = []
    for share in percentages:
        steps.append(((new, float(share)),) if share >= 100 else ((new, share), (old, 100 - share)))
    return [tuple((v, float(p)) for v, p in step) for step in steps]


def serving(deployment: dict) -> str:
    """The version a deployment serves most (the first such one on a tie)."""
    return max(deployment["versions"], key=lambda v: v[1])[0]


def full_versions(deployments: Sequence[dict]) -> list[str]:
    """Versions that served 100 % of traffic, newest deployment first (each once)."""
    seen: list[str] = []
    for deployment in sorted(deployments, key=lambda d: d["created_on"], reverse=True):
        versions = deployment["versions"]
        if len(versions) == 1 and versions[0][1] >= 100 and versions[0][0] not in seen:
            seen.append(versions[0][0])
    return seen


def broken_versions(smoke: Sequence[tuple[str, bool]], rolled_back_from: set[str]) -> set[str]:
    """Versions whose latest smoke run (``(version, passed)`` oldest first) failed,
    or that a rollback replaced."""
    latest: dict[str, bool] = {}
    for version, passed in smoke:
        latest[version] = passed
    return {v for v, passed in latest.items() if not passed} | rolled_back_from


def known_good(
    deployments: Sequence[dict], broken: set[str], exclude: str | None = None
) -> str | None:
    """The newest version that served 100 % and is not ``broken`` (nor ``exclude``)."""
    for version in full_versions(deployments):
        if version != exclude and version not in broken:
            return version
    return None


def rolled_back_from(deployments: Sequence[dict]) -> set[str]:
    """Versions a rollback replaced (see ``rollbacks``)."""
    return set(rollbacks(deployments))


def rollbacks(deployments: Sequence[dict]) -> dict[str, datetime]:
    """Each version a rollback replaced, with when the latest such rollback happened.
    A deployment is a rollback when the API marks it ``triggered_by: rollback`` or
    when it serves 100 % of a version that first appeared before the version serving
    just before it (traffic went back in time); the versions of the deployment
    before it are then rolled back from."""
    ordered = sorted(deployments, key=lambda d: d["created_on"])
    first_seen: dict[str, int] = {}
    for at, deployment in enumerate(ordered):
        for version, _ in deployment["versions"]:
            first_seen.setdefault(version, at)
    found: dict[str, datetime] = {}
    for before, after in zip(ordered, ordered[1:], strict=False):
        target = serving(after)
        newest_before = max(first_seen[v] for v, _ in before["versions"])
        back = len(after["versions"]) == 1 and first_seen[target] < newest_before
        if after.get("triggered_by") == "rollback" or back:
            for version, _ in before["versions"]:
                if version != target:
                    found[version] = after["created_on"]
    return found
