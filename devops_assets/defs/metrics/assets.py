"""Measure: DORA-style metrics per environment, and the team's targets as checks."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from devops_assets.config import PlatformConfig, Target
from devops_assets.defs.resources import PlatformResource, WarehouseResource
from devops_assets.domain.health import evaluate_targets, human, latest_window
from devops_assets.domain.measure import measure_environments
from devops_assets.domain.models import HealthRow

OWNERS = ["team:platform"]
ROLLING_WINDOWS_DAYS = (7, 30, 90)


def window_end(config: PlatformConfig) -> datetime:
    """Windows end at the configured ``as_of`` instant, else at the start of this minute
    (so runs within one minute measure the same windows)."""
    return config.as_of or datetime.now(UTC).replace(second=0, microsecond=0)


def windows(config: PlatformConfig, end: datetime) -> list[tuple[datetime, datetime]]:
    """The rolling windows measured, each ``[end - days, end)``; the health window included."""
    days = sorted({*ROLLING_WINDOWS_DAYS, config.health_window_days})
    return [(end - timedelta(days=d), end) for d in days]


@dg.asset(
    group_name="metrics",
    owners=OWNERS,
    kinds={"pandas", "sql"},
    deps=["git_commits", "workers_builds", "worker_deployments"],
    automation_condition=dg.AutomationCondition.eager(),
    description="Deployment frequency, lead time, build health and rollback rate per environment.",
)
def dora_metrics(
    context: dg.AssetExecutionContext, platform: PlatformResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per (metric, environment, window): the value in its unit, or null when the
    window held nothing to measure. Windows roll: 7, 30 and 90 days ending now (or at
    the configured ``as_of``). Recomputed whole from the stored records, so a re-run
    writes the same rows."""
    config, store = platform.config, warehouse.warehouse
    end = window_end(config)
    measured = windows(config, end)
    values = measure_environments(
        config, store.commits(), store.deployments(), store.builds(), measured
    )
    store.replace_metric_values(values)
    context.log.info(
        "Computed %d metric values over %d windows ending %s",
        len(values),
        len(measured),
        end.isoformat(),
    )

    start = end - timedelta(days=config.health_window_days)
    in_health = [v for v in values if (v.window_start, v.window_end) == (start, end)]
    metadata: dict[str, object] = {
        f"{v.environment}/{v.metric}": int(v.value) if v.unit == "count" else float(v.value)
        for v in in_health
        if v.value is not None
    }
    metadata["window_days"] = config.health_window_days
    metadata["summary"] = dg.MetadataValue.md(_metrics_markdown(in_health))
    return dg.MaterializeResult(metadata=metadata)


def check_name(target: Target) -> str:
    return f"{target.environment}_{target.metric}_target"


def _target_text(target: Target) -> str:
    return f"{target.metric} {target.comparator} {human(target.value, target.unit)}"


def _metrics_markdown(values) -> str:
    lines = ["| metric | environment | value |", "| --- | --- | --- |"]
    for v in sorted(values, key=lambda v: (v.environment, v.metric)):
        lines.append(f"| {v.metric} | {v.environment} | {human(v.value, v.unit)} |")
    return "\n".join(lines)


STATUS_MARK = {"met": "✅ met", "missed": "❌ missed", "no data": "⚪ no data"}


def _health_markdown(rows: list[HealthRow]) -> str:
    """Status first, so it stays in view when the UI's metadata panel is narrow."""
    lines = [
        "| status | metric | environment | value | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        target = f"{r.comparator} {human(r.target, r.unit)}"
        value = human(r.value, r.unit)
        lines.append(
            f"| {STATUS_MARK[r.status]} | {r.metric} | {r.environment} | {value} | {target} |"
        )
    return "\n".join(lines)


def build_pipeline_health(config: PlatformConfig) -> dg.AssetsDefinition:
    """The health asset, with one asset check per configured target."""
    specs = [
        dg.AssetCheckSpec(
            check_name(t),
            asset="pipeline_health",
            description=f"{_target_text(t)} in {t.environment} over "
            f"{config.health_window_days} days",
        )
        for t in config.targets
    ]

    @dg.asset(
        name="pipeline_health",
        group_name="metrics",
        owners=OWNERS,
        kinds={"sql"},
        deps=[dora_metrics],
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=specs,
        description="Each team target against its measured value, met or missed.",
    )
    def pipeline_health(
        context: dg.AssetExecutionContext, platform: PlatformResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per (metric, environment) target: value, target and status over the
        health window. A missed target fails its asset check (severity WARN) so the UI
        shows it red without stopping the run."""
        config, store = platform.config, warehouse.warehouse
        values = store.metric_values()
        window = _health_window(config, values)
        rows = evaluate_targets(config.targets, values, *window)
        store.replace_pipeline_health(rows)
        missed = [r for r in rows if r.status != "met"]
        context.log.info("%d targets, %d not met", len(rows), len(missed))
        return dg.MaterializeResult(
            metadata={
                "window_start": dg.MetadataValue.timestamp(window[0]),
                "window_end": dg.MetadataValue.timestamp(window[1]),
                "targets": len(rows),
                "targets_met": len(rows) - len(missed),
                "targets_missed": sum(r.status == "missed" for r in rows),
                "targets_without_data": sum(r.status == "no data" for r in rows),
                "table": dg.MetadataValue.md(_health_markdown(rows)),
            },
            check_results=[_check_result(t, r) for t, r in zip(config.targets, rows, strict=True)],
        )

    return pipeline_health


def _health_window(config: PlatformConfig, values) -> tuple[datetime, datetime]:
    """The health window of this configuration: ending at ``as_of`` when it is set,
    else the newest one ``dora_metrics`` stored up to now (it ends at a minute)."""
    length = timedelta(days=config.health_window_days)
    if config.as_of is not None:
        window = (config.as_of - length, config.as_of)
        known = any((v.window_start, v.window_end) == window for v in values)
    else:
        now = datetime.now(UTC)
        window = latest_window([v for v in values if v.window_end <= now], length)
        known = window is not None
    if not known:
        raise dg.Failure(
            f"no metric values over the {config.health_window_days}-day health window "
            "yet: materialize dora_metrics first",
            allow_retries=False,
        )
    return window


def _check_result(target: Target, row: HealthRow) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name(target),
        passed=row.status == "met",
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{human(row.value, row.unit)} ({row.status}); target {_target_text(target)}",
        metadata={
            **({"value": row.value} if row.value is not None else {}),
            "target": target.value,
            "status": row.status,
        },
    )
