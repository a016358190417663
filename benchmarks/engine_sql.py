"""The engine benchmark's reference: every metric of ``measure()`` in DuckDB SQL.

The inputs are pandas frames of the same records (numpy columns; low-cardinality
strings as categoricals). Two things SQL cannot reasonably do come from our
engine, as input columns, and this cross-check therefore does not cover them:

* lineage: SQL cannot walk a commit graph, so ``claimed`` lists, per
  environment, each commit our ``claim`` attributed with the index (in
  deployed order) of the deployment that first shipped it (the attribution
  step checks the claimed totals against git instead);
* outcomes: ``flags`` holds our ``classify``'s ``failed`` and ``unplanned``
  per deployment that served (rollback undo stacks do not fit SQL either);
* flaky builds: ``builds.rescued`` is when a retry rescued a failed build (our
  ``BuildArrays``); SQL leaves those failures out of the second success rate
  (the rule itself is cross-checked by ``triage.flaky`` in the tests).

Everything else is SQL: which environments get delivery metrics (those with a
deployment that served or an incident) and build metrics (``build_envs``: the
environments the history has builds for, even none); which deployments served
(successful, a retry of the commit the worker already runs folded into the
deployment it repeats) and their order; counts, days, gaps; the baseline and
cherry-pick folding of lead times; failure recovery (next healthy deployment or
resolution of an incident attributed to the failure: the deployment it names,
or the one that name was folded into, else the latest one before it opened, an
ASOF join); time to restore and the build metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmarks.synthetic import Synthetic
from devops_assets.domain.engine import BUILD, METRICS, outcomes_of
from devops_assets.domain.lineage import claim
from devops_assets.domain.periods import Period
from devops_assets.domain.settings import MetricSettings

QUERY = """
WITH served AS (
    SELECT *, coalesce(nullif(commit_sha, ''), version_id) AS running
    FROM deployments
    WHERE status = 'success'
), marked AS (
    SELECT *, kind = 'rollback' OR lag(running) OVER (
            PARTITION BY env, worker ORDER BY t, deployment_id) IS DISTINCT FROM running AS kept
    FROM served
), home AS (
    SELECT env, deployment_id,
        last_value(CASE WHEN kept THEN deployment_id END IGNORE NULLS) OVER (
            PARTITION BY env, worker ORDER BY t, deployment_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS into_id
    FROM marked
), kept AS (
    SELECT * FROM marked WHERE kept
), dep AS (
    SELECT k.deployment_id, k.env, k.t, k.kind, f.failed, f.unplanned,
        row_number() OVER (PARTITION BY k.env ORDER BY k.t, k.deployment_id) - 1 AS idx,
        k.t - lag(k.t) OVER (PARTITION BY k.env ORDER BY k.t, k.deployment_id) AS gap,
        min(CASE WHEN NOT f.failed THEN k.t END) OVER (
            PARTITION BY k.env ORDER BY k.t, k.deployment_id
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_healthy
    FROM kept k LEFT JOIN flags f USING (deployment_id)
), cause AS (
    SELECT i.env, i.resolved, coalesce(named.idx, prior.idx) AS idx
    FROM incidents i
    LEFT JOIN home h ON h.env = i.env AND h.deployment_id = i.deployment_id
    LEFT JOIN dep named ON named.env = i.env AND named.deployment_id = h.into_id
    ASOF LEFT JOIN dep prior ON prior.env = i.env AND i.created > prior.t
), ends AS (
    SELECT c.env, c.idx, min(c.resolved) AS resolved
    FROM cause c JOIN dep d ON d.env = c.env AND d.idx = c.idx
    WHERE c.resolved >= d.t
    GROUP BY c.env, c.idx
), rec AS (
    SELECT d.*,
        CASE WHEN d.failed THEN least(d.next_healthy, e.resolved) - d.t END AS recovery
    FROM dep d LEFT JOIN ends e ON e.env = d.env AND e.idx = d.idx
), change AS (
    SELECT c.env, c.dep_idx, m.author_time, nullif(m.patch_id, '') AS patch,
        CASE WHEN nullif(m.patch_id, '') IS NULL THEN c.commit END AS alone
    FROM claimed c JOIN commits m ON m.commit = c.commit
), units AS (
    SELECT env, min(dep_idx) AS idx, min(author_time) AS start
    FROM change
    GROUP BY env, patch, alone
), baseline AS (
    SELECT env, min(dep_idx) AS idx FROM claimed GROUP BY env
), lead AS (
    SELECT d.env, d.t, d.t - u.start AS lead
    FROM units u
    JOIN baseline b ON b.env = u.env
    JOIN dep d ON d.env = u.env AND d.idx = u.idx
    WHERE u.idx <> b.idx
), envs AS (
    SELECT DISTINCT env FROM deployments
    UNION SELECT DISTINCT env FROM incidents
    UNION SELECT env FROM build_envs
), grid AS (
    SELECT p.pid, p.start, p.stop, (p.stop - p.start) / 604800.0 AS weeks, e.env
    FROM periods p CROSS JOIN envs e
), dm AS (
    SELECT g.pid, g.env,
        count(*) AS n,
        count(DISTINCT floor(r.t / 86400)) AS days,
        quantile_cont(r.gap, 0.5) AS gap_p50,
        avg(r.failed::DOUBLE) AS cfr,
        quantile_cont(r.recovery, 0.5) AS rec_p50,
        quantile_cont(r.recovery, 0.9) AS rec_p90,
        avg(r.recovery) AS rec_mean,
        avg(r.unplanned::DOUBLE) AS rework,
        avg((r.kind = 'rollback')::DOUBLE) AS rollbacks
    FROM grid g JOIN rec r ON r.env = g.env AND r.t >= g.start AND r.t < g.stop
    GROUP BY g.pid, g.env
), lm AS (
    SELECT g.pid, g.env,
        quantile_cont(l.lead, 0.5) AS p50,
        quantile_cont(l.lead, 0.9) AS p90,
        avg(l.lead) AS mean
    FROM grid g JOIN lead l ON l.env = g.env AND l.t >= g.start AND l.t < g.stop
    GROUP BY g.pid, g.env
), tm AS (
    SELECT g.pid, g.env,
        quantile_cont(i.resolved - i.created, 0.5) AS p50,
        quantile_cont(i.resolved - i.created, 0.9) AS p90,
        avg(i.resolved - i.created) AS mean
    FROM grid g JOIN incidents i
        ON i.env = g.env AND i.resolved >= g.start AND i.resolved < g.stop
    GROUP BY g.pid, g.env
), bm AS (
    SELECT g.pid, g.env,
        avg(CASE WHEN b.outcome >= 0 THEN (b.outcome = 1)::DOUBLE END) AS success,
        avg(CASE WHEN b.outcome = 1 OR (b.outcome = 0 AND NOT coalesce(NOT isnan(b.rescued), false))
            THEN (b.outcome = 1)::DOUBLE END) AS success_solid,
        quantile_cont(b.duration, 0.5) AS p50,
        quantile_cont(b.duration, 0.9) AS p90,
        avg(b.duration) AS mean
    FROM grid g JOIN builds b ON b.env = g.env AND b.stopped >= g.start AND b.stopped < g.stop
    GROUP BY g.pid, g.env
)
SELECT g.env, g.pid,
    g.env IN (SELECT env FROM dep UNION SELECT env FROM incidents) AS delivery,
    g.env IN (SELECT env FROM build_envs) AS building,
    coalesce(dm.n, 0)::DOUBLE AS deployment_count,
    coalesce(dm.n, 0) / g.weeks AS deployment_frequency,
    coalesce(dm.days, 0) / g.weeks AS deployment_days_per_week,
    dm.gap_p50 AS time_between_deployments_p50,
    lm.p50 AS lead_time_p50,
    lm.p90 AS lead_time_p90,
    lm.mean AS lead_time_mean,
    dm.cfr AS change_failure_rate,
    dm.rec_p50 AS failed_deployment_recovery_time_p50,
    dm.rec_p90 AS failed_deployment_recovery_time_p90,
    dm.rec_mean AS failed_deployment_recovery_time_mean,
    dm.rework AS rework_rate,
    dm.rollbacks AS rollback_rate,
    tm.p50 AS time_to_restore_p50,
    tm.p90 AS time_to_restore_p90,
    tm.mean AS time_to_restore_mean,
    bm.success AS build_success_rate,
    bm.success_solid AS build_success_rate_without_flaky,
    bm.p50 AS build_duration_p50,
    bm.p90 AS build_duration_p90,
    bm.mean AS build_duration_mean
FROM grid g
LEFT JOIN dm USING (pid, env)
LEFT JOIN lm USING (pid, env)
LEFT JOIN tm USING (pid, env)
LEFT JOIN bm USING (pid, env)
"""


TABLES = (
    "deployments",
    "flags",
    "claimed",
    "commits",
    "incidents",
    "builds",
    "build_envs",
    "periods",
)


def _epoch(moment: Any) -> float:
    return np.nan if moment is None else moment.timestamp()


def _category(values: list[str]) -> pd.Categorical:
    return pd.Categorical(values, categories=sorted(set(values)))


def frames(
    synthetic: Synthetic, settings: MetricSettings, periods: list[Period]
) -> dict[str, pd.DataFrame]:
    """The SQL side's input tables (built once, not timed), including the lineage
    and outcomes our engine computed (see the module docstring)."""
    history = synthetic.history
    graph = history.graph
    deployments = history.deployments
    environments = sorted(
        {d.environment for d in deployments}
        | {i.environment for i in history.incidents}
        | set(history.builds)
    )
    env = pd.CategoricalDtype(environments)
    claimed, flags = [], []
    for name in environments:
        mine, outcomes = outcomes_of(history, name, settings)
        heads = [graph.index.get(d.commit_sha) if d.commit_sha else None for d in mine]
        shipped = np.asarray(claim(graph, heads).deployment, dtype=np.int64)
        commits = np.flatnonzero(shipped >= 0)
        claimed.append(
            pd.DataFrame(
                {
                    "env": pd.Categorical([name] * commits.size, dtype=env),
                    "commit": commits,
                    "dep_idx": shipped[commits],
                }
            )
        )
        flags.append(
            pd.DataFrame(
                {
                    "deployment_id": [d.deployment_id for d in mine],
                    "failed": [o.failed for o in outcomes],
                    "unplanned": [bool(o.unplanned) for o in outcomes],
                }
            )
        )
    builds = history.builds
    build_env = [env for env, b in builds.items() for _ in range(b.stopped.size)]
    return {
        "deployments": pd.DataFrame(
            {
                "deployment_id": [d.deployment_id for d in deployments],
                "env": pd.Categorical([d.environment for d in deployments], dtype=env),
                "worker": _category([d.worker for d in deployments]),
                "t": [d.created_on.timestamp() for d in deployments],
                "status": _category([d.status for d in deployments]),
                "kind": _category([d.kind for d in deployments]),
                "commit_sha": [d.commit_sha for d in deployments],
                "version_id": [d.version_id for d in deployments],
            }
        ),
        "flags": pd.concat(flags, ignore_index=True),
        "claimed": pd.concat(claimed, ignore_index=True),
        "commits": pd.DataFrame(
            {
                "commit": np.arange(len(graph)),
                "author_time": graph.times("author_time"),
                "patch_id": pd.Series(graph.patch_ids(), dtype=object),
            }
        ),
        "incidents": pd.DataFrame(
            {
                "env": pd.Categorical([i.environment for i in history.incidents], dtype=env),
                "created": [i.created_at.timestamp() for i in history.incidents],
                "resolved": [_epoch(i.resolved_at) for i in history.incidents],
                "deployment_id": [i.deployment_id for i in history.incidents],
            }
        ),
        "builds": pd.DataFrame(
            {
                "env": pd.Categorical(build_env, dtype=env),
                "stopped": np.concatenate([b.stopped for b in builds.values()]),
                "outcome": np.concatenate([b.outcome for b in builds.values()]),
                "duration": np.concatenate([b.duration for b in builds.values()]),
                "rescued": np.concatenate([b.rescued for b in builds.values()]),
            }
        ),
        "build_envs": pd.DataFrame({"env": pd.Categorical(list(builds), dtype=env)}),
        "periods": pd.DataFrame(
            {
                "pid": np.arange(len(periods)),
                "start": [p.start.timestamp() for p in periods],
                "stop": [p.end.timestamp() for p in periods],
            }
        ),
    }


def connect(tables: dict[str, pd.DataFrame]) -> Any:
    """An in-memory DuckDB connection with every frame registered under its name."""
    import duckdb

    connection = duckdb.connect(":memory:")
    for name, frame in tables.items():
        connection.register(name, frame)
    return connection


def copy_to_tables(connection: Any) -> None:
    """Replace each registered frame by a DuckDB table of the same name and rows, so the
    query runs on DuckDB's own storage (for information; the reference reads the frames)."""
    for name in TABLES:
        connection.execute(f"CREATE TABLE {name}_copy AS SELECT * FROM {name}")
        connection.unregister(name)
        connection.execute(f"ALTER TABLE {name}_copy RENAME TO {name}")


def run(connection: Any) -> tuple[list[str], list[tuple]]:
    """Every metric of every environment over every period: column names and rows."""
    cursor = connection.execute(QUERY)
    return [column[0] for column in cursor.description], cursor.fetchall()


def by_key(result: tuple[list[str], list[tuple]]) -> dict[tuple[str, int, str], Any]:
    """(env, period id, metric) -> value, from the result of :func:`run`; only the
    metrics the environment gets (delivery and restore ones, build ones)."""
    names, rows = result
    if names[:4] != ["env", "pid", "delivery", "building"] or names[4:] != list(METRICS):
        raise ValueError(f"the query's columns are not the engine's metrics: {names}")
    values = {}
    for env, pid, delivery, building, *figures in rows:
        for metric, value in zip(METRICS, figures, strict=True):
            if building if metric in BUILD else delivery:
                values[(env, pid, metric)] = value
    return values
