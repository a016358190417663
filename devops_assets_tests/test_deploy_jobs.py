"""The deploy job in Dagster: no run config, tag or environment variable skips a rule.

For each rule a workspace is put in the state that rule refuses, then the job
is run with every skip a launcher could try: keys in the run config (refused by
Dagster before the run starts), tags on the run and environment variables of
the process. The run still fails, and the audit log holds a refusal naming the
rule. The job's own definition is checked too: the queue tag, no retries.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from devops_assets.config import load_config
from devops_assets.defs import build_definitions
from devops_assets.delivery import deployer
from devops_assets.domain import rollout
from devops_assets.domain.deploys import SmokeRecord
from devops_assets.domain.guards import RULES, GateRecord
from devops_assets.store.warehouse import Warehouse
from devops_assets_tests.deploy_fixtures import GOOD

OPS = "ops@moltworker.example"
STEPS = ("lint", "check", "format", "test:backend", "test:e2e", "test:smoke", "test:unit")
SKIP_TAGS = {
    "devops_assets/skip_guards": "true",
    "devops_assets/force": "true",
    "deploy/force": "true",
    "deploy/guards": "off",
    "devops_assets/deploy": "unlimited",
    "dagster/priority": "100",
}
SKIP_ENV = {
    "DEVOPS_ASSETS_SKIP_GUARDS": "1",
    "DEVOPS_ASSETS_FORCE": "true",
    "DEVOPS_ASSETS_DEPLOY_WINDOW": "always",
    "SKIP_GUARDS": "1",
    "FORCE_DEPLOY": "1",
    "DEPLOY_FORCE": "yes",
    "NO_GUARDS": "1",
}
SKIP_KEYS = ("force", "skip_guards", "dry_run", "override", "ignore_window", "allow_incident")


def run_config(sha: str, environment: str = "production", **extra) -> dict:
    config = {"environment": environment, "commit": sha, "requested_by": OPS, "reason": "r"}
    return {"ops": {"deploy_commit": {"config": {**config, **extra}}}}


def staged(world) -> str:
    sha = world.push(GOOD)
    deployer.deploy(world.runtime("run-staging"), "staging", sha, OPS, "try")
    world.gate(sha)
    return sha


def refusing(world, rule: str, instance: dg.DagsterInstance, tmp_path):
    """Put the workspace in a state ``rule`` refuses; returns (definitions, commit)."""
    config = world.config
    if rule == "build":
        sha = world.push(GOOD, outcome="fail")
        world.gate(sha)
    elif rule == "quality_gate":
        sha = world.push(GOOD)
        deployer.deploy(world.runtime("run-staging"), "staging", sha, OPS, "try")
    elif rule == "staging_verified":
        sha = world.push(GOOD)
        world.gate(sha)
    else:
        sha = staged(world)
    if rule == "no_active_incident":
        world.app().open_incident("production", "Sessions drop")
    if rule == "deployment_window":  # the emulator's clock says Monday 18:00
        text = config.path.read_text(encoding="utf-8").replace(
            'days = ["monday", "tuesday", "wednesday", "thursday", "friday"]',
            'days = ["saturday", "sunday"]',
        )
        path = tmp_path / "weekend-only.toml"
        path.write_text(text, encoding="utf-8")
        config = load_config(path)
    if rule == "one_at_a_time":
        holder = DagsterRun(
            job_name="deploy", run_id="a1b2c3d4-held", status=DagsterRunStatus.STARTED
        )
        instance.add_run(holder)
        now = world.app().now()
        assert (
            world.warehouse.deploys.acquire("production", holder.run_id, OPS, sha, now, bool)
            is None
        )
    if rule == "rollback_target":
        now, ledger = world.app().now(), world.warehouse.deploys
        for version in rollout.full_versions(world.runtime().client.list_deployments("moltworker")):
            ledger.record_smoke(SmokeRecord("production", version, "", 100.0, False, now, "run-x"))
    return build_definitions(config), sha


@pytest.mark.parametrize("rule", RULES)
def test_no_tag_or_environment_variable_skips_a_rule(world, rule, tmp_path, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    defs, sha = refusing(world, rule, instance, tmp_path)
    job = defs.resolve_job_def("deploy")
    for name, value in SKIP_ENV.items():
        monkeypatch.setenv(name, value)
    deployments = len(world.deployments("moltworker"))

    result = job.execute_in_process(
        run_config=run_config(sha),
        tags={**job.tags, **SKIP_TAGS},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"Refused by the deploy policy: {rule}:" in failure.step_failure_data.error.message
    row = world.warehouse.audit_log("production")[-1]
    assert (row.action, row.outcome, row.run_id) == ("deploy", "refused", result.run_id)
    # a commit whose build failed never reached staging either: both are reported
    also = ["staging_verified"] if rule == "build" else []
    assert [r["rule"] for r in row.detail["refusals"]] == [rule, *also]
    assert len(world.deployments("moltworker")) == deployments


@pytest.mark.parametrize("rule", RULES)
def test_no_run_config_key_skips_a_rule(world, rule):
    job = build_definitions(world.config).resolve_job_def("deploy")
    sha = "c0ffee" * 6 + "c0ff"
    for key in (*SKIP_KEYS, f"skip_{rule}", rule):
        for value in (True, "true", 1):
            checked = dg.validate_run_config(job, run_config(sha)) and None
            with pytest.raises(dg.DagsterInvalidConfigError, match=key):
                dg.validate_run_config(job, run_config(sha, **{key: value}))
    assert checked is None  # the same config without the key is valid


def test_the_environment_takes_no_other_value_than_staging_or_production():
    job = build_definitions(load_config()).resolve_job_def("deploy")
    for environment in ("Production", "prod", "production ", "development", ""):
        with pytest.raises(dg.DagsterInvalidConfigError):
            dg.validate_run_config(job, run_config("abc1234", environment))


def test_both_jobs_queue_on_one_tag_and_never_retry():
    defs = build_definitions(load_config())
    for name in ("deploy", "rollback"):
        job = defs.resolve_job_def(name)
        assert job.tags["devops_assets/deploy"] == "lane"
        assert all(node.definition.retry_policy is None for node in job.graph.node_dict.values())
        assert job.op_retry_policy is None


def test_the_audit_table_in_the_ui_keeps_one_row_per_entry_whatever_the_reason_says():
    from datetime import UTC, datetime

    from devops_assets.defs.deploy.assets import audit_markdown
    from devops_assets.domain.models import AuditEntry

    at = datetime(2026, 11, 30, 18, 5, tzinfo=UTC)
    entry = AuditEntry(
        at,
        "ops | admin",
        "deploy",
        "production",
        "c" * 40,
        "refused",
        "why\n| injected | row |\n" + "x" * 300,
    )
    lines = audit_markdown([entry]).splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("| 2026-11-30 18:05:00 | ops \\| admin | deploy | production |")
    assert "why \\| injected \\| row \\|" in lines[2] and lines[2].endswith("… |")


def test_resource_config_given_at_launch_changes_nothing(world, tmp_path):
    """A launcher points the run at its own warehouse (with forged staging and gate
    rows) and its own platform file: the deploy still reads the code location's."""
    sha = world.push(GOOD)  # never staged, never gated
    forged = Warehouse(f"sqlite:///{tmp_path / 'forged.sqlite'}")
    forged.record_gate([GateRecord(sha, s, "passed", world.app().now()) for s in STEPS])
    now = world.app().now()
    forged.deploys.record_smoke(SmokeRecord("staging", "v", sha, 100.0, True, now, "r"))
    job = build_definitions(world.config).resolve_job_def("deploy")
    overrides = {
        "warehouse": {"config": {"url": f"sqlite:///{tmp_path / 'forged.sqlite'}"}},
        "platform": {"config": {"config_path": str(tmp_path / "other.toml")}},
        "deploy_parts": {"config": {"config_path": str(tmp_path / "other.toml")}},
    }

    result = job.execute_in_process(
        run_config={**run_config(sha), "resources": overrides},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )

    assert not result.success
    row = world.warehouse.audit_log("production")[-1]
    assert [r["rule"] for r in row.detail["refusals"]] == ["quality_gate", "staging_verified"]
    assert forged.audit_log() == []


def test_config_fields_take_literal_values_only(world, monkeypatch):
    monkeypatch.setenv("DEPLOY_SECRET_PROBE", "hunter2-must-not-show")
    job = build_definitions(world.config).resolve_job_def("deploy")
    config = run_config("hardshell", "staging")
    config["ops"]["deploy_commit"]["config"]["reason"] = {"env": "DEPLOY_SECRET_PROBE"}

    result = job.execute_in_process(
        run_config=config, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "reason: a literal value" in message and "hunter2" not in message
    assert world.warehouse.audit_log() == [] and world.notices() == []
    assert all("hunter2" not in str(e) for e in result.all_events)
