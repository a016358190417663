"""Pipeline health: each of the team's targets against the measured value.

A target is met, missed, or has no data (nothing happened in the window to
measure). "No data" is never counted as met: a week without builds says
nothing about build success.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from devops_assets.config import Target
from devops_assets.domain.models import HealthRow, MetricValue

MET, MISSED, NO_DATA = "met", "missed", "no data"
# A target on one of these metrics also shows its companion, measured the same way.
COMPANIONS = {"build_success_rate": "build_success_rate_without_flaky"}


def evaluate_targets(
    targets: Iterable[Target],
    values: Iterable[MetricValue],
    window_start: datetime,
    window_end: datetime,
) -> list[HealthRow]:
    """One row per target, reading the metric measured over exactly this window."""
    by_key = {
        (v.metric, v.environment): v
        for v in values
        if v.window_start == window_start
        and v.window_end == window_end
        and v.grain == "window"
        and v.worker == ""
    }
    rows = []
    for target in targets:
        measured = by_key.get((target.metric, target.environment))
        value = measured.value if measured else None
        tier = measured.tier if measured else None
        if value is None:
            status = NO_DATA
        else:
            status = MET if target.is_met(value) else MISSED
        detail: dict = {"tier": tier} if tier else {}
        companion = by_key.get((COMPANIONS.get(target.metric), target.environment))
        if companion is not None and companion.value is not None:
            detail[companion.metric] = companion.value
        rows.append(
            HealthRow(
                metric=target.metric,
                environment=target.environment,
                value=value,
                unit=target.unit,
                comparator=target.comparator,
                target=target.value,
                status=status,
                window_start=window_start,
                window_end=window_end,
                detail=detail,
            )
        )
    return rows


def latest_window(
    values: Iterable[MetricValue], length: timedelta
) -> tuple[datetime, datetime] | None:
    """The most recent window of exactly ``length`` that any value was measured over.

    ``pipeline_health`` reads the window ``dora_metrics`` last wrote rather than
    recomputing "now", so the two never disagree by the time between them."""
    ends = [
        v.window_end
        for v in values
        if v.grain == "window" and v.window_end - v.window_start == length
    ]
    if not ends:
        return None
    end = max(ends)
    return end - length, end


def human(value: float | None, unit: str) -> str:
    """A number as an ops engineer reads it: ``97.5 %``, ``4.2 min``, ``1.3 d``."""
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "seconds":
        return _duration(value)
    if unit == "per_week":
        return f"{value:.2f}/week"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:g} {unit}"


def value_text(row: HealthRow) -> str:
    """A health row's measured value, and its companion (the rate without flaky
    failures) when there is one: ``87.5 % (93.3 % without flaky failures)``."""
    value = human(row.value, row.unit)
    without = row.detail.get(COMPANIONS.get(row.metric))
    if without is not None:
        value += f" ({human(without, row.unit)} without flaky failures)"
    return value


def _duration(seconds: float) -> str:
    for size, label in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {label}"
    return f"{seconds:.0f} s"


DORA_SUMMARY = (
    "deployment_frequency",
    "deployment_days_per_week",
    "lead_time_p50",
    "change_failure_rate",
    "failed_deployment_recovery_time_p50",
    "time_to_restore_p50",
    "rework_rate",
    "rollback_rate",
)


def render_dora(
    values: Iterable[MetricValue], environment: str, start: datetime, end: datetime
) -> str:
    """The headline DORA metrics of one environment over one rolling window, with tiers."""
    found = {
        v.metric: v
        for v in values
        if v.environment == environment
        and v.worker == ""
        and v.grain == "window"
        and (v.window_start, v.window_end) == (start, end)
    }
    lines = [("metric", "value", "DORA tier")]
    for metric in DORA_SUMMARY:
        if metric in found:
            v = found[metric]
            lines.append((metric, human(v.value, v.unit), v.tier or "—"))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    out = [_pad(line, widths) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _pad(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()


def render_table(rows: Iterable[HealthRow]) -> str:
    """The pipeline-health table as aligned plain text, one line per target."""
    header = ("metric", "environment", "value", "target", "status")
    lines = [header]
    for row in rows:
        target = f"{row.comparator} {human(row.target, row.unit)}"
        lines.append((row.metric, row.environment, value_text(row), target, row.status.upper()))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [_pad(line, widths) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
