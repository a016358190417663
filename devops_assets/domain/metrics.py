"""Delivery and build metrics over one half-open window ``[start, end)``.

Each function returns ``MetricValue`` records. A value is ``None`` when the
window holds nothing to measure; a count is 0, never ``None``. The exact
definitions, and how other tools differ, are written down in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from devops_assets.domain.lineage import Lineage, attribute_commits
from devops_assets.domain.models import Build, Commit, Deployment, MetricValue
from devops_assets.domain.stats import mean, percentile

SECONDS_PER_WEEK = 7 * 24 * 3600
DELIVERY_METRICS = (
    "deployment_count",
    "deployment_frequency",
    "lead_time_p50",
    "lead_time_p90",
    "lead_time_mean",
)
BUILD_RATED_OUTCOMES = ("success", "fail")


def check_window(start: datetime, end: datetime) -> None:
    """Raise ValueError unless ``start`` and ``end`` are aware and ``start < end``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError(f"window times must carry a UTC offset: start={start}, end={end}")
    if not start < end:
        raise ValueError(f"window start {start.isoformat()} is not before end {end.isoformat()}")


def _in_window(when: datetime | None, start: datetime, end: datetime) -> bool:
    return when is not None and start <= when < end


def _value(
    metric: str, environment: str, start: datetime, end: datetime, value: float | None, unit: str
) -> MetricValue:
    return MetricValue(metric, environment, start, end, value, unit)


def deployments_in_window(
    deployments: Iterable[Deployment], start: datetime, end: datetime, environment: str
) -> list[Deployment]:
    """Deployments to ``environment`` created in ``[start, end)``, any kind."""
    return [
        d
        for d in deployments
        if d.environment == environment and _in_window(d.created_on, start, end)
    ]


def lead_times(
    lineage: Lineage, commits: Iterable[Commit], start: datetime, end: datetime
) -> list[float]:
    """Seconds from each commit's author time to its first deployment's time.

    Only commits whose first deployment was created in ``[start, end)``, and
    not those of the baseline deployment. Values are kept as they are, so a
    commit authored after its deployment (clock skew) counts negative.
    """
    by_sha = {commit.sha: commit for commit in commits}
    seconds = []
    for index, changeset in enumerate(lineage.changesets):
        deployed = lineage.deployments[index].created_on
        if index == lineage.baseline or not _in_window(deployed, start, end):
            continue
        for sha in changeset:
            seconds.append((deployed - by_sha[sha].author_time).total_seconds())
    return seconds


def delivery_metrics(
    commits: Sequence[Commit],
    deployments: Iterable[Deployment],
    start: datetime,
    end: datetime,
    environment: str = "production",
    lineage: Lineage | None = None,
) -> list[MetricValue]:
    """The five ``DELIVERY_METRICS`` for one environment over ``[start, end)``.

    ``deployment_count`` counts deployments created in the window (retries and
    rollbacks included); ``deployment_frequency`` is that count per week of
    window; lead times are seconds, see ``lead_times``. Lineage uses every
    deployment given, before the window too, so the baseline is the first one
    ever and a commit is never credited to a later deployment than its first.
    ``lineage`` may be given when this environment's deployments were already
    attributed, so several windows share one walk of the commit graph.
    """
    check_window(start, end)
    mine = [d for d in deployments if d.environment == environment]
    count = len(deployments_in_window(mine, start, end, environment))
    weeks = (end - start).total_seconds() / SECONDS_PER_WEEK
    if lineage is None:
        lineage = attribute_commits(commits, mine)
    spans = lead_times(lineage, commits, start, end)
    figures = [
        ("deployment_count", float(count), "count"),
        ("deployment_frequency", count / weeks, "per_week"),
        ("lead_time_p50", percentile(spans, 50), "seconds"),
        ("lead_time_p90", percentile(spans, 90), "seconds"),
        ("lead_time_mean", mean(spans), "seconds"),
    ]
    return [_value(name, environment, start, end, value, unit) for name, value, unit in figures]


def rollback_rate(
    deployments: Iterable[Deployment],
    start: datetime,
    end: datetime,
    environment: str = "production",
) -> MetricValue:
    """Rollback deployments ÷ all deployments created in ``[start, end)`` (a ratio 0–1)."""
    check_window(start, end)
    window = deployments_in_window(deployments, start, end, environment)
    rollbacks = sum(1 for d in window if d.kind == "rollback")
    value = rollbacks / len(window) if window else None
    return _value("rollback_rate", environment, start, end, value, "ratio")


def build_metrics(
    builds: Iterable[Build], start: datetime, end: datetime, environment: str = "all"
) -> list[MetricValue]:
    """Build success rate and duration over builds that stopped in ``[start, end)``.

    ``build_success_rate`` = successes ÷ builds whose outcome is success or
    fail (a ratio 0–1); cancelled, skipped and terminated builds are left out
    because they say nothing about whether the code built. Durations are
    seconds from ``started_on`` to ``stopped_on`` of every finished build.
    ``environment`` only labels the values: pass the builds you mean.
    """
    check_window(start, end)
    finished = [b for b in builds if b.finished and _in_window(b.stopped_on, start, end)]
    rated = [b for b in finished if b.outcome in BUILD_RATED_OUTCOMES]
    successes = sum(1 for b in rated if b.outcome == "success")
    durations = [b.duration_seconds for b in finished if b.duration_seconds is not None]
    figures = [
        ("build_success_rate", successes / len(rated) if rated else None, "ratio"),
        ("build_duration_p50", percentile(durations, 50), "seconds"),
        ("build_duration_p90", percentile(durations, 90), "seconds"),
        ("build_duration_mean", mean(durations), "seconds"),
    ]
    return [_value(name, environment, start, end, value, unit) for name, value, unit in figures]
