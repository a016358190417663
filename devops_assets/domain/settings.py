"""The switches of the metric engine, where reasonable definitions differ.

Every default is the definition docs/metrics.md gives first; the platform
file's ``[metrics]`` table (or ``report`` options) may change each one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LEAD_TIME_STARTS = ("author_time", "commit_time", "branch_start")
CHERRY_PICK_MODES = ("patch_id", "off")
FAILURE_SOURCES = ("rollback", "hotfix", "revert", "incident")
TIER_TABLES = ("2023", "2024")
DEFAULT_HOTFIX_PATTERN = r"(?i)\bhot-?fix"


@dataclass(frozen=True)
class MetricSettings:
    """How the engine measures.

    ``timezone`` and ``week_start`` place day, week and month buckets.
    ``lead_time_start`` is where a change's clock starts: each commit's author
    time, its committer time, or (``branch_start``) the earliest author time of
    the commits a first-parent commit brought in, counting that first-parent
    commit (a merged branch, a squash, a direct push) as one change.
    ``cherry_picks = "patch_id"`` counts commits with the same patch id as one
    change, delivered when the first of them was. ``failure_sources`` are the
    signals that mark a production deployment failed; ``remediation_window`` is
    how soon a hotfix or revert must follow a deployment to mark it.
    ``hotfix_pattern`` marks a deployment as a hotfix when its source does not
    say so (matched against the deployment's message). ``tiers`` picks the DORA
    report whose performance table labels the values.
    """

    timezone: str = "UTC"
    week_start: str = "monday"
    lead_time_start: str = "author_time"
    cherry_picks: str = "patch_id"
    failure_sources: tuple[str, ...] = FAILURE_SOURCES
    remediation_window: timedelta = timedelta(hours=24)
    hotfix_pattern: str = DEFAULT_HOTFIX_PATTERN
    tiers: str = "2023"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _choice("week_start", self.week_start, WEEKDAYS)
        _choice("lead_time_start", self.lead_time_start, LEAD_TIME_STARTS)
        _choice("cherry_picks", self.cherry_picks, CHERRY_PICK_MODES)
        _choice("tiers", self.tiers, TIER_TABLES)
        for source in self.failure_sources:
            _choice("failure_sources", source, FAILURE_SOURCES)
        if len(set(self.failure_sources)) != len(self.failure_sources):
            raise ValueError(f"failure_sources: each source once, got {self.failure_sources!r}")
        if self.remediation_window <= timedelta(0):
            raise ValueError(
                f"remediation_window: a positive duration, got {self.remediation_window}"
            )
        try:
            re.compile(self.hotfix_pattern)
        except re.error as exc:
            raise ValueError(f"hotfix_pattern: a regular expression ({exc})") from None
        try:
            zone = ZoneInfo(self.timezone)
        except (KeyError, ValueError, OSError):
            raise ValueError(f"timezone: an IANA time zone name, got {self.timezone!r}") from None
        object.__setattr__(self, "zone", zone)

    @property
    def week_start_index(self) -> int:
        """0 for Monday … 6 for Sunday, as ``datetime.weekday()`` counts."""
        return WEEKDAYS.index(self.week_start)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: one of {', '.join(allowed)}, got {value!r}")
