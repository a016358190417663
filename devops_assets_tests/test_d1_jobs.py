"""The ``apply_d1_migrations`` job and the ``d1_migrations`` asset in Dagster."""

from __future__ import annotations

import dagster as dg
import pytest

from devops_assets.defs import build_definitions
from devops_assets.defs.deploy.jobs import DEPLOY_LANE
from devops_assets.demo import d1_story
from devops_assets.demo.scenario import commit_file

OPS = "ops@moltworker.example"


def run(defs, instance, environment: str, **extra):
    job = defs.resolve_job_def("apply_d1_migrations")
    config = {"environment": environment, "requested_by": OPS, "reason": "index", **extra}
    return job.execute_in_process(
        run_config={"ops": {"apply_migrations": {"config": config}}},
        tags=dict(job.tags),
        instance=instance,
        raise_on_error=False,
    )


def failure(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message


def latest(instance, key: str = "d1_migrations") -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    return event.asset_materialization.metadata


def test_the_job_is_in_the_deploy_lane_and_takes_no_switch(world):
    defs = build_definitions(world.config)
    job = defs.resolve_job_def("apply_d1_migrations")
    assert DEPLOY_LANE.items() <= job.tags.items()
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(dg.DagsterInvalidConfigError):
        run(defs, instance, "production", force=True)
    result = run(defs, instance, "staging", reason={"env": "HOME"})
    assert not result.success
    assert "reason: a literal value" in failure(result)
    assert world.warehouse.d1.records() == []


def test_the_story_refuses_production_then_applies_staging_then_production(world):
    defs = build_definitions(world.config)
    instance = dg.DagsterInstance.ephemeral()

    lines = d1_story.play(world.config, defs, instance)

    assert "Refused by the deploy policy: staging_applied: binding DB: " in lines[3]
    assert "0003_session_index.sql is not applied in staging" in lines[3]
    assert "(staging): applied 0003_session_index.sql to DB=" in lines[5]
    assert "(production): applied 0003_session_index.sql to DB=" in lines[7]
    metadata = latest(instance)
    assert metadata["staging_pending"].value == 0 and metadata["production_pending"].value == 0
    assert metadata["production_applied"].value == 3
    outcomes = [(e.environment, e.outcome) for e in world.warehouse.audit_log()]
    assert outcomes[-5:] == [
        ("production", "refused"),
        ("staging", "allowed"),
        ("staging", "succeeded"),
        ("production", "allowed"),
        ("production", "succeeded"),
    ]


def test_the_asset_shows_pending_files_and_its_check_passes_on_a_clean_ledger(world):
    defs = build_definitions(world.config)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [defs.get_assets_def("d1_migrations")], resources=defs.resources, instance=instance
    )
    assert result.success
    metadata = latest(instance)
    for environment in ("staging", "production"):
        assert metadata[f"{environment}_pending"].value == 1
        assert metadata[f"{environment}_applied"].value == 2
        table = metadata[f"{environment}_state"].value
        assert "| `0003_session_index.sql` | pending |" in table
        assert "| `0001_init.sql` | applied |" in table
    (check,) = result.get_asset_check_evaluations()
    assert check.passed


def test_the_check_fails_on_a_file_merged_out_of_order(world):
    defs = build_definitions(world.config)
    instance = dg.DagsterInstance.ephemeral()
    assert run(defs, instance, "staging").success
    late = "CREATE INDEX devices_by_name ON devices (id);\n"
    commit_file(
        world.repo,
        "hardshell",
        "migrations/0002_devices_index.sql",
        late,
        "late",
        world.app().now(),
    )

    result = dg.materialize(
        [defs.get_assets_def("d1_migrations")], resources=defs.resources, instance=instance
    )

    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    problems = check.metadata["problems"].value
    assert "staging DB: 0002_devices_index.sql is out of order" in problems
    metadata = latest(instance)
    assert metadata["staging_out_of_order"].value == 1 and metadata["production_pending"].value == 1
    assert "| `0002_devices_index.sql` | out_of_order |" in metadata["staging_state"].value
    refused = run(defs, instance, "staging")
    assert "migrations_clean: binding DB: 0002_devices_index.sql is out of order" in failure(
        refused
    )
