"""DORA performance tiers of the 2023 and 2024 State of DevOps reports.

The reports publish each cluster's typical value, not cut-offs. A value gets
the best tier whose published figure it meets or beats, so a better value never
gets a worse label. That matters in 2024, where the high cluster's change
failure rate (20 %) is worse than the medium cluster's (10 %): any rate that
meets 10 % already meets 20 %, so "medium" is never given for that metric.
Likewise 2024's high and medium recovery times are both "less than one day".
Sources and the gaps left open are in docs/metrics.md ("Tiers").
"""

from __future__ import annotations

HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0
MONTH = 30 * DAY
# "Daily": one deployment a day, even in a week with a 25-hour day (169 hours);
# "monthly": one a month, even in a 31-day month.
PER_WEEK_DAILY, PER_WEEK_MONTHLY = 7 * 168 / 169, 7 / 31

# metric -> ((tier, bound), ...) best first; a value within a bound gets that tier.
# "at_least" metrics are better when higher.
_DEPLOYMENT_FREQUENCY = (("elite", PER_WEEK_DAILY), ("high", 1.0), ("medium", PER_WEEK_MONTHLY))
_LEAD_TIME = (("elite", DAY), ("high", WEEK), ("medium", MONTH))

TABLES: dict[str, dict[str, tuple[tuple[str, float], ...]]] = {
    "2023": {
        "deployment_frequency": _DEPLOYMENT_FREQUENCY,
        "lead_time_p50": _LEAD_TIME,
        "change_failure_rate": (("elite", 0.05), ("high", 0.10), ("medium", 0.15)),
        "failed_deployment_recovery_time_p50": (
            ("elite", HOUR),
            ("high", DAY),
            ("medium", WEEK),
        ),
    },
    "2024": {
        "deployment_frequency": _DEPLOYMENT_FREQUENCY,
        "lead_time_p50": _LEAD_TIME,
        "change_failure_rate": (("elite", 0.05), ("high", 0.20)),
        "failed_deployment_recovery_time_p50": (("elite", HOUR), ("high", DAY)),
    },
}
AT_LEAST = frozenset({"deployment_frequency"})
STRICT = frozenset({"lead_time_p50", "failed_deployment_recovery_time_p50"})


def tier(metric: str, value: float | None, table: str) -> str | None:
    """``elite``/``high``/``medium``/``low`` for a metric the table rates, else None.

    Durations must be under the bound ("less than one day"); rates at or under
    it; frequencies at or over it.
    """
    ladder = TABLES[table].get(metric)
    if ladder is None or value is None:
        return None
    for name, bound in ladder:
        if metric in AT_LEAST:
            if value >= bound:
                return name
        elif value < bound if metric in STRICT else value <= bound:
            return name
    return "low"
