"""The metric engine: every metric of every environment (and worker) over every period.

One call measures a whole history: the commit graph is walked once per
environment, each deployment's outcome is decided once, and each period is a
pair of binary searches into time-sorted arrays, so adding day, week and month
buckets costs little. Definitions: docs/metrics.md; the names are in ``METRICS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from devops_assets.domain.failures import Outcome, classify, effective_kind, reverted_shas
from devops_assets.domain.lineage import Claims, CommitGraph, claim, deployment_order
from devops_assets.domain.models import Build, Deployment, Incident, MetricValue
from devops_assets.domain.periods import Period
from devops_assets.domain.settings import MetricSettings
from devops_assets.domain.tiers import tier
from devops_assets.domain.units import METRIC_UNITS

DELIVERY = (
    "deployment_count",
    "deployment_frequency",
    "deployment_days_per_week",
    "time_between_deployments_p50",
    "lead_time_p50",
    "lead_time_p90",
    "lead_time_mean",
    "change_failure_rate",
    "failed_deployment_recovery_time_p50",
    "failed_deployment_recovery_time_p90",
    "failed_deployment_recovery_time_mean",
    "rework_rate",
    "rollback_rate",
)
RESTORE = ("time_to_restore_p50", "time_to_restore_p90", "time_to_restore_mean")
BUILD = (
    "build_success_rate",
    "build_success_rate_without_flaky",
    "build_duration_p50",
    "build_duration_p90",
    "build_duration_mean",
)
METRICS = DELIVERY + RESTORE + BUILD
RATED = {"success": 1, "fail": 0, "failure": 0}  # an events file's "failure" is "fail"


@dataclass(frozen=True)
class BuildArrays:
    """Finished builds as arrays: stop time (epoch s), outcome (1 success, 0 fail,
    -1 neither: cancelled, skipped, terminated), duration (s, NaN unknown) and,
    for a failure, when a retry rescued it: the stop time of the first later
    success of the same worker, commit and branch (NaN: never rescued). A failure
    is flaky as soon as its rescue has happened (docs/metrics.md)."""

    stopped: np.ndarray
    outcome: np.ndarray
    duration: np.ndarray
    rescued: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rescued is None:
            object.__setattr__(self, "rescued", np.full(self.stopped.shape, np.nan))

    @classmethod
    def from_builds(cls, builds: Iterable[Build]) -> BuildArrays:
        done = [b for b in builds if b.finished and b.stopped_on is not None]
        durations = [b.duration_seconds for b in done]
        rescued = _rescues(done)
        return cls.sorted(
            np.array([b.stopped_on.timestamp() for b in done], dtype=np.float64),
            np.array([RATED.get(b.outcome, -1) for b in done], dtype=np.int8),
            np.array([np.nan if d is None else d for d in durations], dtype=np.float64),
            np.array([rescued.get(id(b), np.nan) for b in done], dtype=np.float64),
        )

    @classmethod
    def sorted(
        cls,
        stopped: np.ndarray,
        outcome: np.ndarray,
        duration: np.ndarray,
        rescued: np.ndarray | None = None,
    ) -> BuildArrays:
        order = np.argsort(stopped, kind="stable")
        if rescued is None:
            rescued = np.full(stopped.shape, np.nan)
        return cls(stopped[order], outcome[order], duration[order], rescued[order])

    def before(self, cut: float) -> BuildArrays:
        """The builds that stopped before ``cut``, with only the rescues seen by then."""
        keep = self.stopped < cut
        rescued = self.rescued[keep]
        return BuildArrays(
            self.stopped[keep],
            self.outcome[keep],
            self.duration[keep],
            np.where(rescued < cut, rescued, np.nan),
        )


def _rescues(builds: Sequence[Build]) -> dict[int, float]:
    """id(build) → when a retry rescued it: the earliest stop among the successes that
    started after it (ordered by start, else creation, then uuid) on its worker,
    commit and branch, for each failed build such a success exists for."""
    groups: dict[tuple[str, str, str], list[Build]] = {}
    for b in builds:
        groups.setdefault((b.worker, b.commit_sha, b.branch), []).append(b)
    rescued: dict[int, float] = {}
    for group in groups.values():
        group.sort(key=lambda b: (b.started_on or b.created_on, b.build_uuid))
        earliest = np.inf  # of the successes after the build at hand
        for b in reversed(group):
            if b.outcome == "success":
                earliest = min(earliest, b.stopped_on.timestamp())
            elif RATED.get(b.outcome) == 0 and earliest < np.inf:
                rescued[id(b)] = earliest
    return rescued


@dataclass(frozen=True)
class History:
    """Everything measured: the commit graph, deployments of every environment
    (any status), incidents, and finished builds grouped by environment."""

    graph: CommitGraph
    deployments: Sequence[Deployment]
    incidents: Sequence[Incident] = ()
    builds: Mapping[str, BuildArrays] = field(default_factory=dict)


def deployed(deployments: Iterable[Deployment], environment: str) -> list[Deployment]:
    """The environment's deployments that served traffic, in time order, a retry
    or a further rollout step of the commit (or version) a worker already runs
    folded into the first one. Rollbacks are never folded."""
    return served_and_folded(deployments, environment)[0]


def served_and_folded(
    deployments: Iterable[Deployment], environment: str
) -> tuple[list[Deployment], dict[str, str]]:
    """``deployed()``, and the id of the deployment each folded one was folded into."""
    kept: list[Deployment] = []
    folded: dict[str, str] = {}
    running: dict[str, tuple[str | None, str]] = {}
    for d in deployment_order(x for x in deployments if x.environment == environment):
        if d.status != "success":
            continue
        key = d.commit_sha or d.version_id
        now = running.get(d.worker)
        if d.kind != "rollback" and now is not None and now[0] == key:
            folded[d.deployment_id] = now[1]
            continue
        running[d.worker] = (key, d.deployment_id)
        kept.append(d)
    return kept, folded


def _named(incidents: Sequence[Incident], folded: Mapping[str, str]) -> list[Incident]:
    """Incidents that name a folded deployment name the one it was folded into."""
    return [
        replace(i, deployment_id=folded[i.deployment_id]) if i.deployment_id in folded else i
        for i in incidents
    ]


def measure(
    history: History,
    settings: MetricSettings,
    periods: Sequence[Period],
    as_of: datetime | None = None,
) -> list[MetricValue]:
    """Every metric for every environment (and every worker of an environment
    served by several) over every period. Nothing at or after ``as_of`` is seen:
    an incident resolved later is still open."""
    deployments = [d for d in history.deployments if as_of is None or d.created_on < as_of]
    incidents = [i for i in history.incidents if as_of is None or i.created_at < as_of]
    if as_of is not None:
        incidents = [_open_at(i, as_of) for i in incidents]
    environments = sorted(
        {d.environment for d in deployments}
        | {i.environment for i in incidents}
        | set(history.builds)
    )
    cut = None if as_of is None else as_of.timestamp()
    values: list[MetricValue] = []
    for env in environments:
        scopes = _delivery_scopes(history.graph, deployments, incidents, env, settings)
        builds = history.builds.get(env)
        if builds is not None and cut is not None:
            builds = builds.before(cut)
        for period in periods:
            for worker, scope in scopes.items():
                values += _delivery_values(scope, env, worker, period, settings)
            if builds is not None:
                values += _build_values(builds, env, period)
    return values


def _open_at(incident: Incident, as_of: datetime) -> Incident:
    """The incident as it stood at ``as_of``: a resolution after it has not happened."""
    if incident.resolved_at is not None and incident.resolved_at >= as_of:
        return replace(incident, resolved_at=None)
    return incident


@dataclass
class _Scope:
    """Time-sorted arrays of one environment (or one worker of it)."""

    times: np.ndarray
    days: np.ndarray  # local calendar day number of each deployment
    gaps: np.ndarray  # seconds since the previous deployment (NaN for the first)
    failed: np.ndarray
    unplanned: np.ndarray
    rollback: np.ndarray
    recovery: np.ndarray  # seconds to recovery of a failed deployment; NaN otherwise/open
    lead_at: np.ndarray  # deployment time of each change, sorted
    lead: np.ndarray  # lead time of each change (s)
    restored_at: np.ndarray | None  # resolution time of each resolved incident, sorted
    restore: np.ndarray | None


def _delivery_scopes(
    graph: CommitGraph,
    deployments: Sequence[Deployment],
    incidents: Sequence[Incident],
    env: str,
    settings: MetricSettings,
) -> dict[str, _Scope]:
    mine, folded = served_and_folded(deployments, env)
    env_incidents = _named([i for i in incidents if i.environment == env], folded)
    if not mine and not env_incidents:
        return {}
    heads = [graph.index.get(d.commit_sha) if d.commit_sha else None for d in mine]
    claims = claim(graph, heads)
    kinds = [effective_kind(d, settings) for d in mine]
    outcomes = classify(mine, env_incidents, settings, _reverts(graph, claims), kinds)
    times = np.array([d.created_on.timestamp() for d in mine], dtype=np.float64)
    units = _lead_units(graph, claims, times, settings)
    whole = _Scope(
        times=times,
        days=_local_days(times, settings),
        gaps=np.diff(times, prepend=np.nan),
        failed=outcomes.failed,
        unplanned=outcomes.unplanned != 0,
        rollback=np.array([k == "rollback" for k in kinds], dtype=bool),
        recovery=outcomes.recovered_at - times,
        lead_at=units[0],
        lead=units[1],
        restored_at=None,
        restore=None,
    )
    scopes = {"": whole}
    whole.restored_at, whole.restore = _restores(env_incidents)
    workers = np.array([d.worker for d in mine], dtype=object)
    names = sorted(set(workers.tolist()))
    if len(names) > 1:
        unit_workers = workers[units[2]]
        for name in names:
            scopes[name] = _worker_scope(whole, workers == name, unit_workers == name)
    return scopes


def _worker_scope(whole: _Scope, mine: np.ndarray, my_units: np.ndarray) -> _Scope:
    """The arrays of one worker: its deployments, and the changes they shipped."""
    times = whole.times[mine]
    return _Scope(
        times=times,
        days=whole.days[mine],
        gaps=np.diff(times, prepend=np.nan),
        failed=whole.failed[mine],
        unplanned=whole.unplanned[mine],
        rollback=whole.rollback[mine],
        recovery=whole.recovery[mine],
        lead_at=whole.lead_at[my_units],
        lead=whole.lead[my_units],
        restored_at=None,
        restore=None,
    )


def _reverts(graph: CommitGraph, claims: Claims) -> dict[int, list[int]]:
    """Deployment index -> earlier deployments whose commits it reverts."""
    found: dict[int, list[int]] = {}
    for number in graph.revert_candidates():
        shipped = claims.deployment[number]
        if shipped < 0:
            continue
        for sha in reverted_shas(graph.message(number)):
            target = graph.resolve(sha)
            earlier = claims.deployment[target] if target is not None else -1
            if 0 <= earlier < shipped and earlier not in found.get(shipped, []):
                found.setdefault(shipped, []).append(earlier)
    return found


def _lead_units(
    graph: CommitGraph, claims: Claims, times: np.ndarray, settings: MetricSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deployment time, lead time (s) and deployment index of each change, sorted
    by deployment time.

    A change is a commit, or with ``branch_start`` a first-parent commit and all
    it brought in. The baseline deployment's changes are left out. With
    ``cherry_picks = "patch_id"`` changes with one patch id count once, at the
    first deployment of any of them, from the earliest start among them.
    """
    order = np.asarray(claims.order, dtype=np.int64)
    if order.size == 0:
        return np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
    shipped = np.asarray(claims.deployment, dtype=np.int64)[order]
    if settings.lead_time_start == "branch_start":
        via = np.asarray(claims.via, dtype=np.int64)[order]
        starts = np.full(len(graph), np.inf)
        np.minimum.at(starts, via, graph.times("author_time")[order])
        heads = order[via == order]
        start = starts[heads]
        shipped = np.asarray(claims.deployment, dtype=np.int64)[heads]
        order = heads
    else:
        start = graph.times(settings.lead_time_start)[order]
    if settings.cherry_picks == "patch_id":
        order, shipped, start = _fold_cherry_picks(graph, order, shipped, start)
    keep = shipped != (-1 if claims.baseline is None else claims.baseline)
    shipped = shipped[keep]
    deployed_at = times[shipped]
    lead = deployed_at - start[keep]
    by_time = np.argsort(deployed_at, kind="stable")
    return deployed_at[by_time], lead[by_time], shipped[by_time]


def _fold_cherry_picks(graph: CommitGraph, order, shipped, start):
    """Changes sharing a patch id become one: the first deployment, the earliest start."""
    codes = graph.patch_codes()[order]
    picked = np.nonzero(codes >= 0)[0]
    if picked.size == 0:
        return order, shipped, start
    # Within each patch id, earliest deployment first; the first row of each group stays.
    by_group = picked[np.lexsort((shipped[picked], codes[picked]))]
    group = codes[by_group]
    firsts = np.r_[True, group[1:] != group[:-1]]
    keepers = by_group[firsts]
    start = start.copy()
    start[keepers] = np.minimum.reduceat(start[by_group], np.nonzero(firsts)[0])
    keep = np.ones(order.size, dtype=bool)
    keep[by_group[~firsts]] = False
    return order[keep], shipped[keep], start[keep]


def _restores(incidents: Sequence[Incident]) -> tuple[np.ndarray, np.ndarray]:
    resolved = [i for i in incidents if i.resolved_at is not None]
    at = np.array([i.resolved_at.timestamp() for i in resolved], dtype=np.float64)
    took = np.array(
        [(i.resolved_at - i.created_at).total_seconds() for i in resolved], dtype=np.float64
    )
    order = np.argsort(at, kind="stable")
    return at[order], took[order]


def _local_days(times: np.ndarray, settings: MetricSettings) -> np.ndarray:
    """The calendar day (days since 1970-01-01, local) each instant falls on."""
    if times.size == 0:
        return np.empty(0, dtype=np.int64)
    import pandas as pd

    local = pd.to_datetime(times, unit="s", utc=True).tz_convert(settings.zone)
    return local.tz_localize(None).to_numpy().astype("datetime64[D]").astype(np.int64)


def _slice(times: np.ndarray, period: Period) -> slice:
    lo, hi = np.searchsorted(times, [period.start.timestamp(), period.end.timestamp()])
    return slice(int(lo), int(hi))


def _stats(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None, None, None
    p50, p90 = np.percentile(values, [50, 90])
    return float(p50), float(p90), float(values.mean())


def _ratio(flags: np.ndarray) -> float | None:
    return float(flags.sum()) / flags.size if flags.size else None


def _delivery_values(
    scope: _Scope, env: str, worker: str, period: Period, settings: MetricSettings
) -> list[MetricValue]:
    window = _slice(scope.times, period)
    count = window.stop - window.start
    weeks = period.weeks
    gap = scope.gaps[window]
    gap = gap[~np.isnan(gap)]
    lead = scope.lead[_slice(scope.lead_at, period)]
    failed = scope.failed[window]
    recovery_p50, recovery_p90, recovery_mean = _stats(scope.recovery[window][failed])
    lead_p50, lead_p90, lead_mean = _stats(lead)
    figures = {
        "deployment_count": float(count),
        "deployment_frequency": count / weeks,
        # At most every day: a period may touch more calendar days than it is long.
        "deployment_days_per_week": min(np.unique(scope.days[window]).size / weeks, 7.0),
        "time_between_deployments_p50": float(np.median(gap)) if gap.size else None,
        "lead_time_p50": lead_p50,
        "lead_time_p90": lead_p90,
        "lead_time_mean": lead_mean,
        "change_failure_rate": _ratio(failed),
        "failed_deployment_recovery_time_p50": recovery_p50,
        "failed_deployment_recovery_time_p90": recovery_p90,
        "failed_deployment_recovery_time_mean": recovery_mean,
        "rework_rate": _ratio(scope.unplanned[window]),
        "rollback_rate": _ratio(scope.rollback[window]),
    }
    if scope.restore is not None:
        restore = scope.restore[_slice(scope.restored_at, period)]
        figures.update(zip(RESTORE, _stats(restore), strict=True))
    return [_value(m, v, env, worker, period, settings) for m, v in figures.items()]


@dataclass(frozen=True)
class BuildCounts:
    """The rated builds that stopped in a period: successes, failures, and the
    failures a retry rescued (flaky)."""

    successes: int
    failures: int
    flaky: int

    @property
    def success_rate(self) -> float | None:
        rated = self.successes + self.failures
        return self.successes / rated if rated else None

    @property
    def success_rate_without_flaky(self) -> float | None:
        rated = self.successes + self.failures - self.flaky
        return self.successes / rated if rated else None


def build_counts(builds: BuildArrays, period: Period) -> BuildCounts:
    """What the two build success rates of ``period`` are made of."""
    window = _slice(builds.stopped, period)
    outcome = builds.outcome[window]
    failed = outcome == 0
    return BuildCounts(
        successes=int((outcome == 1).sum()),
        failures=int(failed.sum()),
        flaky=int((failed & ~np.isnan(builds.rescued[window])).sum()),
    )


def _build_values(builds: BuildArrays, env: str, period: Period) -> list[MetricValue]:
    window = _slice(builds.stopped, period)
    counts = build_counts(builds, period)
    p50, p90, average = _stats(builds.duration[window])
    figures = {
        "build_success_rate": counts.success_rate,
        "build_success_rate_without_flaky": counts.success_rate_without_flaky,
        "build_duration_p50": p50,
        "build_duration_p90": p90,
        "build_duration_mean": average,
    }
    return [_value(m, v, env, "", period, None) for m, v in figures.items()]


def _value(
    metric: str,
    value: float | None,
    env: str,
    worker: str,
    period: Period,
    settings: MetricSettings | None,
) -> MetricValue:
    value = None if value is None else float(value)
    rated = None
    if settings is not None and period.rateable:
        rated = tier(metric, value, settings.tiers)
    return MetricValue(
        metric,
        env,
        period.start,
        period.end,
        value,
        METRIC_UNITS[metric],
        worker=worker,
        grain=period.grain,
        tier=rated,
    )


def outcomes_of(
    history: History, env: str, settings: MetricSettings
) -> tuple[list[Deployment], list[Outcome]]:
    """Each deployment of ``env`` that served, with what became of it (for tables
    and tests that want the reasons behind a change failure rate)."""
    mine, folded = served_and_folded(history.deployments, env)
    heads = [history.graph.index.get(d.commit_sha) if d.commit_sha else None for d in mine]
    claims = claim(history.graph, heads)
    incidents = _named([i for i in history.incidents if i.environment == env], folded)
    outcomes = classify(mine, incidents, settings, _reverts(history.graph, claims))
    return mine, [outcomes.outcome(i) for i in range(len(mine))]
