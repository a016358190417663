"""Units of the metrics a target may name, and the units a platform file may write.

Every metric is stored in one canonical unit (seconds, ratio, per_week, count);
a target may be written in a friendlier one ("lead time < 1 days") and is
converted once, when the file is read.
"""

from __future__ import annotations

METRIC_UNITS = {
    "deployment_count": "count",
    "deployment_frequency": "per_week",
    "deployment_days_per_week": "per_week",
    "time_between_deployments_p50": "seconds",
    "change_failure_rate": "ratio",
    "failed_deployment_recovery_time_p50": "seconds",
    "failed_deployment_recovery_time_p90": "seconds",
    "failed_deployment_recovery_time_mean": "seconds",
    "time_to_restore_p50": "seconds",
    "time_to_restore_p90": "seconds",
    "time_to_restore_mean": "seconds",
    "rework_rate": "ratio",
    "lead_time_p50": "seconds",
    "lead_time_p90": "seconds",
    "lead_time_mean": "seconds",
    "rollback_rate": "ratio",
    "build_success_rate": "ratio",
    "build_success_rate_without_flaky": "ratio",
    "build_duration_p50": "seconds",
    "build_duration_p90": "seconds",
    "build_duration_mean": "seconds",
}

# How many canonical units one written unit is worth.
CONVERSIONS = {
    "seconds": {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0},
    "ratio": {"ratio": 1.0, "percent": 0.01},
    "per_week": {"per_week": 1.0, "per_day": 7.0},
    "count": {"count": 1.0},
}


class UnitError(ValueError):
    """A metric or unit name that the engine does not know."""


def canonical_unit(metric: str) -> str:
    """The unit ``metric`` is measured and stored in."""
    try:
        return METRIC_UNITS[metric]
    except KeyError:
        known = ", ".join(sorted(METRIC_UNITS))
        raise UnitError(f"a metric the engine measures ({known}), got {metric!r}") from None


def to_canonical(metric: str, value: float, unit: str) -> float:
    """``value`` written in ``unit`` as a number in the metric's canonical unit."""
    scales = CONVERSIONS[canonical_unit(metric)]
    if unit not in scales:
        raise UnitError(f"a unit of {metric} ({', '.join(scales)}), got {unit!r}")
    return value * scales[unit]
