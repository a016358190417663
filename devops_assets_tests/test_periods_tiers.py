"""Calendar buckets in the team's time zone, and the DORA tier tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_assets.domain.engine import History, measure
from devops_assets.domain.lineage import CommitGraph
from devops_assets.domain.models import Deployment
from devops_assets.domain.periods import calendar_buckets, rolling_windows
from devops_assets.domain.settings import MetricSettings
from devops_assets.domain.tiers import DAY, HOUR, tier

BERLIN = MetricSettings(timezone="Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_days_follow_the_zone_across_the_spring_daylight_saving_change():
    # Berlin moves from +01:00 to +02:00 on 2024-03-31: that day lasts 23 hours.
    days = calendar_buckets("day", utc(2024, 3, 30, 12), utc(2024, 4, 1, 12), BERLIN)
    assert [(d.start, d.end) for d in days] == [
        (utc(2024, 3, 29, 23), utc(2024, 3, 30, 23)),
        (utc(2024, 3, 30, 23), utc(2024, 3, 31, 22)),
        (utc(2024, 3, 31, 22), utc(2024, 4, 1, 12)),  # the last one ends at "now"
    ]
    assert days[1].end - days[1].start == timedelta(hours=23)


def test_weeks_start_on_the_configured_day():
    # 2024-03-06 is a Wednesday.
    monday = calendar_buckets("week", utc(2024, 3, 6), utc(2024, 3, 7), MetricSettings())
    sunday = calendar_buckets(
        "week", utc(2024, 3, 6), utc(2024, 3, 7), MetricSettings(week_start="sunday")
    )
    assert monday[0].start == utc(2024, 3, 4)
    assert sunday[0].start == utc(2024, 3, 3)


def test_months_are_calendar_months_and_december_rolls_into_january():
    months = calendar_buckets("month", utc(2024, 11, 15), utc(2025, 2, 1), MetricSettings())
    assert [m.start for m in months] == [utc(2024, 11, 1), utc(2024, 12, 1), utc(2025, 1, 1)]
    assert months[-1].end == utc(2025, 2, 1)


def test_rolling_windows_are_shortest_first_and_each_length_once():
    end = utc(2024, 5, 1)
    windows = rolling_windows(end, [30, 7, 30, 90])
    assert [(w.end - w.start).days for w in windows] == [7, 30, 90]


def test_deployment_days_are_counted_in_the_team_zone():
    # 22:30 and 23:30 UTC on Mar 4 are Mar 4 and Mar 5 in Berlin (+01:00).
    deployments = [
        Deployment(n, "api", "production", t, n, 100.0, None)
        for n, t in (("x", utc(2024, 3, 4, 22, 30)), ("y", utc(2024, 3, 4, 23, 30)))
    ]
    week = rolling_windows(utc(2024, 3, 8), [7])
    history = History(CommitGraph([]), deployments)
    in_utc = {v.metric: v.value for v in measure(history, MetricSettings(), week)}
    in_berlin = {v.metric: v.value for v in measure(history, BERLIN, week)}
    assert in_utc["deployment_days_per_week"] == 1
    assert in_berlin["deployment_days_per_week"] == 2


def test_a_bad_setting_is_refused_with_its_name():
    with pytest.raises(ValueError, match="timezone: an IANA time zone name, got 'Mars/Base'"):
        MetricSettings(timezone="Mars/Base")
    with pytest.raises(ValueError, match="week_start: one of monday"):
        MetricSettings(week_start="Mon")
    with pytest.raises(ValueError, match="failure_sources: one of rollback"):
        MetricSettings(failure_sources=("pager",))


@pytest.mark.parametrize(
    ("metric", "value", "in_2023", "in_2024"),
    [
        ("deployment_frequency", 7.0, "elite", "elite"),  # daily on average
        ("deployment_frequency", 7 * 168 / 169, "elite", "elite"),  # daily in a DST week
        ("deployment_frequency", 6.9, "high", "high"),
        ("deployment_frequency", 1.0, "high", "high"),
        ("deployment_frequency", 0.25, "medium", "medium"),  # about monthly
        ("deployment_frequency", 7 / 31, "medium", "medium"),  # once in a 31-day month
        ("deployment_frequency", 0.2, "low", "low"),
        ("lead_time_p50", 23.9 * HOUR, "elite", "elite"),
        ("lead_time_p50", DAY, "high", "high"),  # "less than one day" is strict
        ("lead_time_p50", 29 * DAY, "medium", "medium"),
        ("lead_time_p50", 31 * DAY, "low", "low"),
        ("change_failure_rate", 0.05, "elite", "elite"),
        ("change_failure_rate", 0.10, "high", "high"),
        # 2023: 15 % is the medium cluster. 2024: high's 20 % is met, so high.
        ("change_failure_rate", 0.15, "medium", "high"),
        ("change_failure_rate", 0.20, "low", "high"),
        ("change_failure_rate", 0.21, "low", "low"),
        ("failed_deployment_recovery_time_p50", 59 * 60, "elite", "elite"),
        ("failed_deployment_recovery_time_p50", 5 * HOUR, "high", "high"),
        # 2023: under a week is medium; 2024 leaves one day to one week unassigned.
        ("failed_deployment_recovery_time_p50", 3 * DAY, "medium", "low"),
        ("rework_rate", 0.01, None, None),  # no published tiers
    ],
)
def test_tier_tables(metric, value, in_2023, in_2024):
    assert tier(metric, value, "2023") == in_2023
    assert tier(metric, value, "2024") == in_2024


def test_no_value_no_tier():
    assert tier("lead_time_p50", None, "2023") is None


def test_a_day_the_zone_skipped_is_no_period():
    # Samoa jumped from 2011-12-29 to 2011-12-31: there was no December 30 in Apia.
    apia = MetricSettings(timezone="Pacific/Apia")
    days = calendar_buckets("day", utc(2011, 12, 29, 12), utc(2011, 12, 31, 12), apia)
    # Dec 29 (-10:00), then Dec 31 (+14:00) starting where Dec 29 ended, then Jan 1 so far.
    assert [(d.start, d.end) for d in days] == [
        (utc(2011, 12, 29, 10), utc(2011, 12, 30, 10)),
        (utc(2011, 12, 30, 10), utc(2011, 12, 31, 10)),
        (utc(2011, 12, 31, 10), utc(2011, 12, 31, 12)),
    ]


def test_only_whole_periods_of_a_week_or_more_get_a_tier():
    # One deployment 3 h into a week that is cut at "now" after 13 h; and a whole week.
    deployments = [
        Deployment("x", "api", "production", utc(2024, 3, 11, 3), "x", 100.0, None),
        Deployment("y", "api", "production", utc(2024, 3, 5, 3), "y", 100.0, None),
    ]
    history = History(CommitGraph([]), deployments)
    periods = calendar_buckets("week", utc(2024, 3, 4), utc(2024, 3, 11, 13), MetricSettings())
    assert [(p.partial, p.rateable) for p in periods] == [(False, True), (True, False)]
    found = {
        (v.window_start, v.metric): v
        for v in measure(history, MetricSettings(), periods)
        if v.metric.startswith("deployment_")
    }
    so_far = found[(utc(2024, 3, 11), "deployment_frequency")]
    assert so_far.value == pytest.approx(7 * 24 / 13) and so_far.tier is None
    assert found[(utc(2024, 3, 11), "deployment_days_per_week")].value == 7.0  # at most daily
    whole = found[(utc(2024, 3, 4), "deployment_frequency")]
    assert (whole.value, whole.tier) == (1.0, "high")
    # A week with a 23-hour day (Berlin, spring) is still a week.
    spring = calendar_buckets("week", utc(2024, 3, 25), utc(2024, 4, 8), BERLIN)[0]
    assert spring.end - spring.start == timedelta(hours=167) and spring.rateable
