"""Every metric of every environment over every window, from stored records.

This is what ``dora_metrics`` writes: delivery metrics and rollback rate for
each environment a worker serves, build metrics for each environment whose
branches built something, each over each rolling window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from devops_assets.config import PlatformConfig
from devops_assets.domain.lineage import attribute_commits
from devops_assets.domain.metrics import build_metrics, delivery_metrics, rollback_rate
from devops_assets.domain.models import Build, Commit, Deployment, MetricValue


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


def measure_environments(
    config: PlatformConfig,
    commits: Sequence[Commit],
    deployments: Sequence[Deployment],
    builds: Iterable[Build],
    windows: Iterable[tuple[datetime, datetime]],
) -> list[MetricValue]:
    """All metric values, environment by environment, window by window; the commit
    graph is walked once per environment, whatever the number of windows."""
    grouped = builds_by_environment(config, builds)
    lineages = {
        env.name: attribute_commits(commits, [d for d in deployments if d.environment == env.name])
        for env in config.environments
        if env.worker is not None
    }
    values: list[MetricValue] = []
    for start, end in windows:
        for env in config.environments:
            if env.worker is not None:
                values += delivery_metrics(
                    commits, deployments, start, end, env.name, lineages[env.name]
                )
                values.append(rollback_rate(deployments, start, end, env.name))
            values += build_metrics(grouped[env.name], start, end, env.name)
    return values
