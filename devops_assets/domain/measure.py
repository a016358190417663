"""Every metric of every environment over every period, from stored records.

This is what ``dora_metrics`` writes: the engine's metrics for each environment
a worker serves, build metrics for each environment whose branches built
something, over each rolling window and each calendar day, week and month of
the longest window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from devops_assets.config import PlatformConfig
from devops_assets.domain.engine import BuildArrays, History, measure
from devops_assets.domain.lineage import CommitGraph
from devops_assets.domain.models import Build, Commit, Deployment, Incident, MetricValue
from devops_assets.domain.periods import GRAINS, Period, calendar_buckets, rolling_windows
from devops_assets.domain.settings import MetricSettings


def builds_by_environment(
    config: PlatformConfig, builds: Iterable[Build]
) -> dict[str, list[Build]]:
    """Builds grouped by the environment their branch belongs to; others are dropped."""
    grouped: dict[str, list[Build]] = {env.name: [] for env in config.environments}
    for build in builds:
        env = config.environment_of_branch(build.branch)
        if env is not None:
            grouped[env].append(build)
    return grouped


def periods_ending(end: datetime, days: Sequence[int], settings: MetricSettings) -> list[Period]:
    """The rolling windows of ``days`` ending at ``end``, then every calendar day,
    week and month that overlaps the longest of them."""
    windows = rolling_windows(end, days)
    longest = windows[-1].start
    return windows + [p for g in GRAINS for p in calendar_buckets(g, longest, end, settings)]


def measure_environments(
    config: PlatformConfig,
    settings: MetricSettings,
    commits: Sequence[Commit],
    deployments: Sequence[Deployment],
    builds: Iterable[Build],
    incidents: Sequence[Incident],
    periods: Sequence[Period],
    as_of: datetime | None = None,
) -> list[MetricValue]:
    """All metric values of the configured environments (delivery metrics only
    where a worker deploys), period by period."""
    served = {env.name for env in config.environments if env.worker is not None}
    history = History(
        CommitGraph(commits),
        [d for d in deployments if d.environment in served],
        [i for i in incidents if i.environment in served],
        {
            env: BuildArrays.from_builds(found)
            for env, found in builds_by_environment(config, builds).items()
        },
    )
    return measure(history, settings, periods, as_of)
