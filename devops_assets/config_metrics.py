"""The ``[metrics]`` table of the platform file: the engine's definition switches.

Each key maps to one ``MetricSettings`` field; docs/metrics.md explains what
each choice measures. The time zone comes from ``[project] timezone``.
"""

from __future__ import annotations

from datetime import timedelta

from devops_assets.domain.settings import FAILURE_SOURCES, MetricSettings
from devops_assets.toml_reader import TableReader

KEYS = (
    "week_start",
    "lead_time_start",
    "cherry_picks",
    "failure_sources",
    "remediation_window_hours",
    "hotfix_pattern",
    "tiers",
)


def parse_metric_settings(root: TableReader, timezone: str) -> MetricSettings:
    """``MetricSettings`` from ``[metrics]``; a missing table means every default."""
    table = root.table("metrics", {}).only(*KEYS)
    defaults = MetricSettings()
    hours = table.get(
        "remediation_window_hours",
        (int, float),
        "a number of hours above 0",
        defaults.remediation_window.total_seconds() / 3600,
    )
    if isinstance(hours, bool) or not 1 / 60 <= hours <= 24 * 366:
        raise table.fail(
            "remediation_window_hours", f"hours above 0, from one minute to a year, got {hours!r}"
        )
    sources = table.strings("failure_sources", FAILURE_SOURCES)
    if not sources:
        raise table.fail(
            "failure_sources",
            f"at least one of {', '.join(FAILURE_SOURCES)} (with none, every rate would be 0)",
        )
    given = {
        "timezone": timezone,
        "week_start": table.text("week_start", defaults.week_start),
        "lead_time_start": table.text("lead_time_start", defaults.lead_time_start),
        "cherry_picks": table.text("cherry_picks", defaults.cherry_picks),
        "failure_sources": sources,
        "remediation_window": timedelta(hours=hours),
        "hotfix_pattern": table.text("hotfix_pattern", defaults.hotfix_pattern),
        "tiers": str(table.get("tiers", (str, int), "2023 or 2024", defaults.tiers)),
    }
    try:
        return MetricSettings(**given)
    except ValueError as exc:
        key, _, reason = str(exc).partition(": ")
        raise table.fail(key if key in KEYS else "(table)", reason) from None
