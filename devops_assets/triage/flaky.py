"""Flaky failures: builds that failed and then passed on a retry of the same commit.

Pure functions over :class:`Attempt` records (one record per build attempt).
Definitions, with a worked example: docs/triage-flaky.md.

- A **retry group** is every attempt of one pipeline (worker, workflow) on one
  commit and branch, in time order (``started_at``, then ``build_id``).
- A failed attempt is **flaky** when a *later* attempt of its retry group
  succeeded: a retry rescued it, so the commit itself builds. A failure after
  the group's last success is not flaky (no retry rescued it).
- Outcomes use the metric engine's names: ``success`` and ``fail`` are rated
  (``failure`` is read as ``fail``); anything else (``cancelled``, ``skipped``,
  unknown ...) is neither, is left out of the rates and neither makes nor
  breaks a retry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from devops_assets.domain.models import Build

SUCCESS = "success"
FAILED = frozenset({"fail", "failure"})


@dataclass(frozen=True)
class Attempt:
    """One build attempt. ``signature`` is the triage signature of a failure
    (``None`` when unknown or when the attempt did not fail); ``pipeline`` names
    what was built (the worker, the workflow) so that two pipelines building the
    same commit are not each other's retries."""

    commit_sha: str
    branch: str
    build_id: str
    started_at: datetime
    outcome: str
    signature: str | None = None
    pipeline: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED

    @property
    def succeeded(self) -> bool:
        return self.outcome == SUCCESS


GroupKey = tuple[str, str, str]  # (pipeline, commit_sha, branch)


@dataclass(frozen=True)
class SignatureStats:
    """The failures of one signature (``None``: failures without a signature)."""

    signature: str | None
    failures: int
    flaky_failures: int
    first_seen: datetime
    last_seen: datetime
    builds: tuple[str, ...]  # build ids of the failures, in time order
    commits: int  # distinct retry groups the signature failed in

    @property
    def flaky_rate(self) -> float:
        return self.flaky_failures / self.failures


@dataclass(frozen=True)
class SuccessRates:
    """``build_success_rate`` with and without flaky failures over the same attempts.

    with_flaky = successes / (successes + failures)  (the metric engine's rate);
    without_flaky = successes / (successes + failures - flaky_failures).
    """

    successes: int
    failures: int
    flaky_failures: int

    @property
    def with_flaky(self) -> float | None:
        rated = self.successes + self.failures
        return self.successes / rated if rated else None

    @property
    def without_flaky(self) -> float | None:
        rated = self.successes + self.failures - self.flaky_failures
        return self.successes / rated if rated else None


def _order(attempt: Attempt) -> tuple[datetime, str]:
    return (attempt.started_at, attempt.build_id)


def retry_groups(attempts: Iterable[Attempt]) -> dict[GroupKey, list[Attempt]]:
    """Attempts per (pipeline, commit, branch), each list in time order."""
    groups: dict[GroupKey, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        groups[(attempt.pipeline, attempt.commit_sha, attempt.branch)].append(attempt)
    return {key: sorted(group, key=_order) for key, group in groups.items()}


def _flaky_in(group: Sequence[Attempt]) -> list[Attempt]:
    """The failures of a time-ordered group that a later success follows."""
    last_success = max((i for i, a in enumerate(group) if a.succeeded), default=None)
    if last_success is None:
        return []
    return [a for a in group[:last_success] if a.failed]


def flaky_attempts(attempts: Iterable[Attempt]) -> list[Attempt]:
    """Every failed attempt later retried to success on its commit, in time order."""
    found = [a for group in retry_groups(attempts).values() for a in _flaky_in(group)]
    return sorted(found, key=_order)


def flaky_groups(attempts: Iterable[Attempt]) -> dict[GroupKey, list[Attempt]]:
    """Retry groups with at least one flaky failure → those failures."""
    out = {}
    for key, group in retry_groups(attempts).items():
        flaky = _flaky_in(group)
        if flaky:
            out[key] = flaky
    return out


def signature_stats(attempts: Iterable[Attempt]) -> list[SignatureStats]:
    """Per signature of the failed attempts: failures, flaky failures, first and
    last seen, builds. Most flaky failures first, then most failures, then the
    signature (``None`` last among equals)."""
    attempts = list(attempts)
    flaky = {id(a) for a in flaky_attempts(attempts)}
    by_signature: dict[str | None, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        if attempt.failed:
            by_signature[attempt.signature].append(attempt)
    stats = []
    for signature, failed in by_signature.items():
        failed.sort(key=_order)
        stats.append(
            SignatureStats(
                signature=signature,
                failures=len(failed),
                flaky_failures=sum(id(a) in flaky for a in failed),
                first_seen=failed[0].started_at,
                last_seen=failed[-1].started_at,
                builds=tuple(a.build_id for a in failed),
                commits=len({(a.pipeline, a.commit_sha, a.branch) for a in failed}),
            )
        )
    stats.sort(
        key=lambda s: (-s.flaky_failures, -s.failures, s.signature is None, s.signature or "")
    )
    return stats


def success_rates(
    attempts: Iterable[Attempt], since: datetime | None = None, until: datetime | None = None
) -> SuccessRates:
    """Build success rate with and without the flaky failures (see :class:`SuccessRates`)
    of the attempts that started in [since, until). Flakiness is judged on every
    attempt given: a retry after ``until`` still makes a failure before it flaky."""
    attempts = list(attempts)
    flaky = {id(a) for a in flaky_attempts(attempts)}
    counted = [
        a
        for a in attempts
        if (since is None or a.started_at >= since) and (until is None or a.started_at < until)
    ]
    return SuccessRates(
        successes=sum(a.succeeded for a in counted),
        failures=sum(a.failed for a in counted),
        flaky_failures=sum(id(a) in flaky for a in counted),
    )


def attempts_from_builds(
    builds: Iterable[Build], signatures: Mapping[str, str] | None = None
) -> list[Attempt]:
    """Finished Workers Builds builds as attempts (pipeline = worker; time = the
    build's start, else its creation); ``signatures`` maps a build uuid to the
    triage signature of its failure."""
    signatures = signatures or {}
    return [
        Attempt(
            commit_sha=b.commit_sha,
            branch=b.branch,
            build_id=b.build_uuid,
            started_at=b.started_on or b.created_on,
            outcome=b.outcome,
            signature=signatures.get(b.build_uuid),
            pipeline=b.worker,
        )
        for b in builds
        if b.finished
    ]
