"""One window, one environment: the engine's numbers for callers that want a few.

``delivery_metrics``, ``rollback_rate`` and ``build_metrics`` measure a single
half-open window ``[start, end)`` through ``engine.measure``; a value is
``None`` when the window holds nothing to measure, a count is 0, never
``None``. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from devops_assets.domain.engine import BuildArrays, History, measure
from devops_assets.domain.lineage import CommitGraph
from devops_assets.domain.models import Build, Commit, Deployment, Incident, MetricValue
from devops_assets.domain.periods import Period
from devops_assets.domain.settings import MetricSettings

DELIVERY_METRICS = (
    "deployment_count",
    "deployment_frequency",
    "lead_time_p50",
    "lead_time_p90",
    "lead_time_mean",
)


def check_window(start: datetime, end: datetime) -> None:
    """Raise ValueError unless ``start`` and ``end`` are aware and ``start < end``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError(f"window times must carry a UTC offset: start={start}, end={end}")
    if not start < end:
        raise ValueError(f"window start {start.isoformat()} is not before end {end.isoformat()}")


def window_metrics(
    commits: Sequence[Commit] | CommitGraph,
    deployments: Iterable[Deployment],
    start: datetime,
    end: datetime,
    environment: str = "production",
    incidents: Sequence[Incident] = (),
    settings: MetricSettings | None = None,
) -> list[MetricValue]:
    """Every delivery metric of ``environment`` over ``[start, end)`` (all workers)."""
    check_window(start, end)
    graph = commits if isinstance(commits, CommitGraph) else CommitGraph(commits)
    mine = [d for d in deployments if d.environment == environment]
    history = History(graph, mine, [i for i in incidents if i.environment == environment])
    values = measure(history, settings or MetricSettings(), [Period("window", start, end)])
    found = [v for v in values if v.worker == ""]
    if not found:  # nothing deployed: the engine measures no scope
        return _empty(environment, start, end)
    return found


def _empty(environment: str, start: datetime, end: datetime) -> list[MetricValue]:
    from devops_assets.domain.engine import DELIVERY
    from devops_assets.domain.units import METRIC_UNITS

    return [
        MetricValue(
            m,
            environment,
            start,
            end,
            0.0 if m.startswith("deployment_") else None,
            METRIC_UNITS[m],
        )
        for m in DELIVERY
    ]


def delivery_metrics(
    commits: Sequence[Commit] | CommitGraph,
    deployments: Iterable[Deployment],
    start: datetime,
    end: datetime,
    environment: str = "production",
    settings: MetricSettings | None = None,
) -> list[MetricValue]:
    """The five ``DELIVERY_METRICS`` of ``environment`` over ``[start, end)``."""
    values = window_metrics(commits, deployments, start, end, environment, settings=settings)
    return [v for v in values if v.metric in DELIVERY_METRICS]


def rollback_rate(
    deployments: Iterable[Deployment],
    start: datetime,
    end: datetime,
    environment: str = "production",
) -> MetricValue:
    """Rollback deployments ÷ all deployments that served in ``[start, end)`` (0–1)."""
    values = window_metrics([], deployments, start, end, environment)
    return next(v for v in values if v.metric == "rollback_rate")


def build_metrics(
    builds: Iterable[Build], start: datetime, end: datetime, environment: str = "all"
) -> list[MetricValue]:
    """Build success rate and duration over builds that stopped in ``[start, end)``.

    ``environment`` only labels the values: pass the builds you mean.
    """
    check_window(start, end)
    history = History(CommitGraph([]), [], (), {environment: BuildArrays.from_builds(builds)})
    return measure(history, MetricSettings(), [Period("window", start, end)])
