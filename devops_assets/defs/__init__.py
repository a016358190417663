"""Dagster wiring: thin assets, checks, jobs and schedules over domain and sources."""

from __future__ import annotations

import dagster as dg

from devops_assets.config import PlatformConfig, load_config
from devops_assets.defs.d1.assets import d1_migrations
from devops_assets.defs.d1.jobs import apply_d1_migrations_job
from devops_assets.defs.deploy.assets import deploy_audit, release_notes
from devops_assets.defs.deploy.jobs import deploy_job, rollback_job
from devops_assets.defs.deploy.parts import KEY, deploy_parts
from devops_assets.defs.deploy.sensors import build_status_sensor, git_push_sensor
from devops_assets.defs.environments.assets import config_drift
from devops_assets.defs.environments.jobs import sync_config_job
from devops_assets.defs.ingest.assets import (
    git_commits,
    git_tags,
    incidents,
    worker_deployments,
    workers_builds,
)
from devops_assets.defs.ingest.build_failures import build_failures
from devops_assets.defs.metrics.assets import build_pipeline_health, dora_metrics
from devops_assets.defs.resources import build_resources
from devops_assets.defs.secrets.assets import secret_inventory
from devops_assets.defs.secrets.jobs import (
    approve_rotation_job,
    request_rotation_job,
    rotate_secrets_job,
    rotation_check_schedule,
)

ALL_ASSETS = dg.AssetSelection.all()


def build_definitions(config: PlatformConfig | None = None) -> dg.Definitions:
    """Everything the code location serves, for the platform file given (or the default)."""
    config = config or load_config()
    pipeline_health = build_pipeline_health(config)
    refresh = dg.define_asset_job(
        "refresh_pipeline_health",
        selection=ALL_ASSETS,
        description="Ingest git and Cloudflare history, recompute metrics and targets.",
        tags={"devops_assets/kind": "measure"},
    )
    daily = dg.ScheduleDefinition(
        name="daily_metrics",
        job=refresh,
        cron_schedule="0 6 * * *",
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Refresh every asset once a day, in the team's time zone.",
    )
    follow = dg.AutomationConditionSensorDefinition(
        "metrics_automation",
        target=dg.AssetSelection.groups("metrics"),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Recompute metrics and targets whenever an ingest asset is refreshed.",
    )
    return dg.Definitions(
        assets=[
            git_commits,
            git_tags,
            workers_builds,
            build_failures,
            worker_deployments,
            incidents,
            dora_metrics,
            pipeline_health,
            release_notes,
            deploy_audit,
            config_drift,
            d1_migrations,
            secret_inventory,
        ],
        jobs=[
            refresh,
            deploy_job,
            rollback_job,
            apply_d1_migrations_job,
            request_rotation_job,
            approve_rotation_job,
            rotate_secrets_job,
            sync_config_job,
        ],
        schedules=[daily, rotation_check_schedule(config.timezone)],
        sensors=[follow, git_push_sensor, build_status_sensor],
        resources={**build_resources(config), KEY: deploy_parts(config)},
    )
