"""The code location: the names users see, and Dagster's own validation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from devops_assets.config import DEMO_CONFIG, load_config
from devops_assets.defs import build_definitions

REPO = Path(__file__).resolve().parents[1]


def test_definitions_expose_the_interface_names():
    defs = build_definitions(load_config(DEMO_CONFIG))
    repo = defs.get_repository_def()

    assets = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {
        "git_commits",
        "git_tags",
        "workers_builds",
        "worker_deployments",
        "dora_metrics",
        "pipeline_health",
    } <= assets

    checks = {key.name for key in repo.asset_graph.asset_check_keys}
    assert checks == {
        "staging_build_success_rate_target",
        "production_build_success_rate_target",
        "staging_build_duration_p50_target",
        "production_build_duration_p50_target",
        "production_deployment_frequency_target",
        "production_lead_time_p50_target",
        "production_rollback_rate_target",
        "no_unallowed_drift",
        "no_missing_required_secret",
        "migrations_consistent",
        "every_failed_build_triaged",
    }
    assert "refresh_pipeline_health" in {job.name for job in repo.get_all_jobs()}
    assert {s.name for s in repo.schedule_defs} >= {"daily_metrics"}
    assert {s.name for s in repo.sensor_defs} >= {"metrics_automation"}


def test_every_asset_has_a_description_owner_group_and_kind():
    defs = build_definitions(load_config(DEMO_CONFIG))
    graph = defs.get_repository_def().asset_graph
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.owners == ["team:platform"], key
        assert node.group_name in {"ingest", "metrics", "deploy", "environments"}, key
        assert any(tag.startswith("dagster/kind/") for tag in node.tags), key


def test_dagster_definitions_validate_passes_on_the_postgres_instance(tmp_path, postgres_server):
    database = f"test_validate_{uuid.uuid4().hex[:10]}"
    postgres_server.create_database(database)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(postgres_server.dagster_env(database), DAGSTER_HOME=str(home))
    try:
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("dagster")),
                "definitions",
                "validate",
                "-w",
                str(REPO / "workspace.yaml"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        postgres_server.drop_database(database)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Validation successful for code location devops_assets" in output
