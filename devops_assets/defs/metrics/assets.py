"""Measure: DORA-style metrics per environment, and the team's targets as checks."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from devops_assets.config import PlatformConfig, Target
from devops_assets.defs.resources import PlatformResource, WarehouseResource
from devops_assets.domain.health import (
    COMPANIONS,
    evaluate_targets,
    human,
    latest_window,
    value_text,
)
from devops_assets.domain.measure import measure_environments, periods_ending
from devops_assets.domain.models import HealthRow, MetricValue

OWNERS = ["team:platform"]
ROLLING_WINDOWS_DAYS = (7, 30, 90)


def window_end(config: PlatformConfig) -> datetime:
    """Windows end at the configured ``as_of`` instant, else at the start of this minute
    (so runs within one minute measure the same windows)."""
    return config.as_of or datetime.now(UTC).replace(second=0, microsecond=0)


def window_days(config: PlatformConfig) -> list[int]:
    """The rolling windows measured, in days; the health window included."""
    return sorted({*ROLLING_WINDOWS_DAYS, config.health_window_days})


@dg.asset(
    group_name="metrics",
    owners=OWNERS,
    kinds={"numpy", "sql"},
    deps=["git_commits", "workers_builds", "worker_deployments", "incidents"],
    automation_condition=dg.AutomationCondition.eager(),
    description="Every DORA metric and build metric per environment and worker, over rolling "
    "windows and calendar days, weeks and months, with the DORA tier of each.",
)
def dora_metrics(
    context: dg.AssetExecutionContext, platform: PlatformResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per (metric, environment, worker, grain, period): the value in its
    unit, or null when the period held nothing to measure, and its DORA tier.
    Windows roll (7, 30, 90 days and the health window, ending now or at the
    configured ``as_of``); calendar days, weeks and months of the team's time zone
    cover the longest window. Recomputed whole from the stored records, so a
    re-run writes the same rows. Definitions: docs/metrics.md."""
    config, store = platform.config, warehouse.warehouse
    end = window_end(config)
    periods = periods_ending(end, window_days(config), config.metrics)
    values = measure_environments(
        config,
        config.metrics,
        store.commits(),
        store.deployments(),
        store.builds(),
        store.incidents(),
        periods,
        as_of=end,
    )
    store.replace_metric_values(values)
    context.log.info(
        "Computed %d metric values over %d periods ending %s",
        len(values),
        len(periods),
        end.isoformat(),
    )
    start = end - timedelta(days=config.health_window_days)
    in_health = [
        v for v in values if (v.window_start, v.window_end) == (start, end) and v.grain == "window"
    ]
    # The table people read first; then each number (canonical units) for the plots.
    metadata: dict[str, object] = {
        "summary": dg.MetadataValue.md(_metrics_markdown(in_health, config.metrics.tiers)),
        "window_days": config.health_window_days,
        "tier_table": f"DORA {config.metrics.tiers}",
    }
    metadata.update(dict(_plotted(v) for v in in_health if v.value is not None))
    return dg.MaterializeResult(metadata=metadata)


# Units people read at a glance, for the plotted numbers (the table keeps seconds).
_DISPLAY = {
    "seconds": ("h", 1 / 3600, 3),
    "ratio": ("%", 100.0, 2),
    "per_week": ("per week", 1.0, 3),
}


def _plotted(v: MetricValue) -> tuple[str, int | float]:
    """``production/lead_time_p50 [h]`` -> 41.263: one number per metric, in a
    readable unit named in its key, so each plots as its own series across runs."""
    scope = f"{v.environment}/{v.worker}" if v.worker else v.environment
    if v.unit == "count":
        return f"{scope}/{v.metric}", int(v.value)
    label, scale, digits = _DISPLAY[v.unit]
    return f"{scope}/{v.metric} [{label}]", round(v.value * scale, digits)


def check_name(target: Target) -> str:
    return f"{target.environment}_{target.metric}_target"


def _target_text(target: Target) -> str:
    return f"{target.metric} {target.comparator} {human(target.value, target.unit)}"


TIER_MARK = {"elite": "🟢 elite", "high": "🔵 high", "medium": "🟡 medium", "low": "🔴 low"}


def _metrics_markdown(values: list[MetricValue], table: str) -> str:
    """Environment by environment, the metrics DORA rates first, each with its tier;
    an environment with no value at all (no worker, nothing deployed) is left out."""
    lines = [
        f"| environment | metric | value | DORA {table} tier |",
        "| --- | --- | --- | --- |",
    ]
    measured = {v.environment for v in values if v.value is not None}
    shown = [v for v in values if v.environment in measured]  # no all-empty environment
    rated = sorted(shown, key=lambda v: (v.environment, v.worker, v.tier is None, v.metric))
    for v in rated:
        scope = f"{v.environment} ({v.worker})" if v.worker else v.environment
        tier = TIER_MARK.get(v.tier, "") if v.tier else ""
        lines.append(f"| {scope} | {v.metric} | {human(v.value, v.unit)} | {tier} |")
    return "\n".join(lines)


STATUS_MARK = {"met": "✅ met", "missed": "❌ missed", "no data": "⚪ no data"}


def _health_markdown(rows: list[HealthRow]) -> str:
    """Status first, so it stays in view when the UI's metadata panel is narrow."""
    lines = [
        "| status | metric | environment | value | target | DORA tier |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        target = f"{r.comparator} {human(r.target, r.unit)}"
        value = value_text(r)
        tier = TIER_MARK.get(r.detail.get("tier"), "")
        lines.append(
            f"| {STATUS_MARK[r.status]} | {r.metric} | {r.environment} | {value} | {target} "
            f"| {tier} |"
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
    companion = COMPANIONS.get(row.metric)
    return dg.AssetCheckResult(
        check_name=check_name(target),
        passed=row.status == "met",
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{value_text(row)} ({row.status}); target {_target_text(target)}",
        metadata={
            **({"value": row.value} if row.value is not None else {}),
            **({companion: row.detail[companion]} if companion in row.detail else {}),
            "target": target.value,
            "status": row.status,
        },
    )
