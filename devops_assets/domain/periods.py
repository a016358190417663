"""The periods metrics are measured over: rolling windows and calendar buckets.

Calendar days, weeks and months are those of the configured time zone, so a
day is 23 or 25 hours long across a daylight-saving change; weeks start on the
configured weekday. Every period is half-open ``[start, end)`` in UTC; the
bucket that contains "now" ends at "now" (its numbers are so far).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from devops_assets.domain.settings import MetricSettings

GRAINS = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    grain: str  # "window" or one of GRAINS
    start: datetime
    end: datetime
    partial: bool = False  # a calendar bucket cut at the end of the measurement

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"period times must carry a UTC offset: {self.start}, {self.end}")
        if not self.start < self.end:
            raise ValueError(
                f"period start {self.start.isoformat()} is not before end {self.end.isoformat()}"
            )

    @property
    def weeks(self) -> float:
        return (self.end - self.start).total_seconds() / (7 * 86400)

    @property
    def rateable(self) -> bool:
        """Long enough for a DORA tier: a week or more, and not a bucket cut short at
        "now" (a day, or three hours of a week, says nothing about a team's tier)."""
        return self.weeks >= 1 - 1 / 168 and not self.partial  # a 167-hour week counts


def rolling_windows(end: datetime, days: list[int] | tuple[int, ...]) -> list[Period]:
    """One ``[end - d days, end)`` window per length, shortest first."""
    return [Period("window", end - timedelta(days=d), end) for d in sorted(set(days))]


def calendar_buckets(
    grain: str, start: datetime, end: datetime, settings: MetricSettings
) -> list[Period]:
    """Every calendar ``grain`` of the time zone that overlaps ``[start, end)``; the
    first starts at its calendar boundary (possibly before ``start``), the last is
    cut at ``end``."""
    if grain not in GRAINS:
        raise ValueError(f"grain: one of {', '.join(GRAINS)}, got {grain!r}")
    zone = settings.zone
    day = start.astimezone(zone).date()
    if grain == "week":
        day -= timedelta(days=(day.weekday() - settings.week_start_index) % 7)
    elif grain == "month":
        day = day.replace(day=1)
    periods = []
    while True:
        following = _next(grain, day)
        begin, finish = _midnight(day, settings), _midnight(following, settings)
        if begin >= end:
            break
        if finish > begin:  # a calendar day a zone skipped (Samoa, 2011-12-30) is no period
            periods.append(Period(grain, begin, min(finish, end), finish > end))
        day = following
    return periods


def _next(grain: str, day: date) -> date:
    if grain == "day":
        return day + timedelta(days=1)
    if grain == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _midnight(day: date, settings: MetricSettings) -> datetime:
    """The first instant of ``day`` in the zone, in UTC. A wall time skipped by a
    daylight-saving jump is read with the offset before the jump, which lands on
    the first instant that exists (zoneinfo's fold=0 rule)."""
    return datetime(day.year, day.month, day.day, tzinfo=settings.zone).astimezone(UTC)
