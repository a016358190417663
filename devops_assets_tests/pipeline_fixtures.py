"""A seeded demo workspace and a Dagster instance built from the repo's dagster.yaml.

The instance stores runs and events in a fresh PostgreSQL database of the
session's server, exactly as ``make demo`` sets it up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from devops_assets.config import DEMO_CONFIG, PlatformConfig, load_config
from devops_assets.defs import build_definitions
from devops_assets.demo.commands import prepare
from devops_assets.emulator import SimulatedHistory, load_history
from devops_assets.store import Warehouse

INSTANCE_ENV = tuple(f"DAGSTER_PG_{k}" for k in ("HOST", "PORT", "USER", "PASSWORD", "DB", "URL"))
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Pipeline:
    config: PlatformConfig
    history: SimulatedHistory
    instance: dg.DagsterInstance
    defs: dg.Definitions
    warehouse: Warehouse

    def run(self, *assets: str) -> dg.ExecuteInProcessResult:
        """Run the refresh job on the instance, optionally for some assets only."""
        job = self.defs.resolve_job_def("refresh_pipeline_health")
        selection = [dg.AssetKey(a) for a in assets] or None
        return job.execute_in_process(
            instance=self.instance, asset_selection=selection, run_config=QUIET
        )


def open_pipeline(home: Path, postgres_server, platform_file: Path = DEMO_CONFIG):
    """Seed ``home`` as the demo does and return the pipeline plus a cleanup function."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DEVOPS_ASSETS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    for name in ("DEVOPS_ASSETS_DB_URL", *INSTANCE_ENV):
        monkeypatch.delenv(name, raising=False)  # so undo() removes what prepare() sets
    database = f"test_dagster_{uuid.uuid4().hex[:12]}"

    config = load_config(platform_file)
    prepare(config, dagster_db=database)
    instance = dg.DagsterInstance.get()
    history = load_history(config.cloudflare.emulator_state)
    pipeline = Pipeline(
        config, history, instance, build_definitions(config), Warehouse(config.warehouse_url)
    )

    def close() -> None:
        instance.dispose()
        pipeline.warehouse.close()
        postgres_server.drop_database(database)
        monkeypatch.undo()

    return pipeline, close
