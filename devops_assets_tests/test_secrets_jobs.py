"""The secret jobs as launched: typed config without any value field, literal values
only, the deploy lane on rotations, the daily schedule, refusals failing the run."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest

from devops_assets.defs import build_definitions
from devops_assets.defs.deploy.jobs import DEPLOY_LANE
from devops_assets.defs.secrets.jobs import ApproveConfig, RotateConfig, RotationCheckConfig
from devops_assets.delivery import secrets
from devops_assets.domain.secrets import Refused
from devops_assets_tests.test_secrets_rotation import CISO, GATEWAY, OPS, request

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def run(defs, instance, job_name: str, op: str, config: dict):
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        run_config={"ops": {op: {"config": config}}, **QUIET},
        instance=instance,
        tags=dict(job.tags),
        raise_on_error=False,
    )


def failure(result) -> str:
    return next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message


def test_config_carries_ids_and_names_only():
    assert set(RotateConfig.model_fields) == {"request_id", "approval_id", "requested_by"}
    assert set(ApproveConfig.model_fields) == {"request_id", "approver"}
    assert set(RotationCheckConfig.model_fields) == {
        "requested_by",
        "environment",
        "secret",
        "reason",
    }
    for model in (RotateConfig, ApproveConfig, RotationCheckConfig):
        assert all(f.description for f in model.model_fields.values())


def test_jobs_schedule_and_lane(world):
    defs = build_definitions(world.config)
    assert defs.resolve_job_def("rotate_secrets").tags == DEPLOY_LANE
    schedule = defs.resolve_schedule_def("secret_rotation_check")
    assert schedule.cron_schedule == "0 7 * * *"
    assert schedule.job_name == "request_secret_rotation"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    spec = defs.resolve_assets_def("secret_inventory")
    key = dg.AssetKey("secret_inventory")
    assert spec.group_names_by_key[key] == "environments"
    assert spec.owners_by_key[key] and spec.descriptions_by_key[key]


def test_a_reference_instead_of_a_literal_is_refused_before_it_is_read(world, monkeypatch):
    monkeypatch.setenv("SOMEONE", CISO)
    req = request(world, by=OPS)
    with dg.instance_for_test() as instance:
        defs = build_definitions(world.config)
        result = run(
            defs,
            instance,
            "approve_secret_rotation",
            "approve_rotation",
            {"request_id": req.request_id, "approver": {"env": "SOMEONE"}},
        )
    assert not result.success
    assert "approver: a literal value" in failure(result)
    assert world.warehouse.secrets.request(req.request_id).state == "requested"


def test_refusals_fail_the_run_with_their_rule_and_an_audit_row(world):
    req = request(world, by=CISO)
    with dg.instance_for_test() as instance:
        defs = build_definitions(world.config)
        own = run(
            defs,
            instance,
            "approve_secret_rotation",
            "approve_rotation",
            {"request_id": req.request_id, "approver": CISO},
        )
        bare = run(
            defs,
            instance,
            "rotate_secrets",
            "rotate_secret",
            {"request_id": req.request_id, "requested_by": OPS},
        )
    assert "Refused (two_person)" in failure(own)
    assert "Refused (approval)" in failure(bare)
    refused = [(e.action, e.subject) for e in world.warehouse.audit_log() if e.outcome == "refused"]
    assert refused == [
        ("approve_secret_rotation", req.request_id),
        ("rotate_secret", req.request_id),
    ]
    assert req.secret == GATEWAY


def test_one_person_cannot_request_approve_and_rotate_by_changing_case(world):
    """Through the launchpad: asked as ``CISO@…``, approved as ``ciso@…``: the same
    person, refused; the rotation then has no approval to run on."""
    with dg.instance_for_test() as instance:
        defs = build_definitions(world.config)
        asked = run(
            defs,
            instance,
            "request_secret_rotation",
            "request_due_rotations",
            {
                "requested_by": "CISO@moltworker.example",
                "environment": "production",
                "secret": GATEWAY,
                "reason": "suspected leak",
            },
        )
        [request_id] = asked.output_for_node("request_due_rotations")
        own = run(
            defs,
            instance,
            "approve_secret_rotation",
            "approve_rotation",
            {"request_id": request_id, "approver": CISO},
        )
        rotation = run(
            defs,
            instance,
            "rotate_secrets",
            "rotate_secret",
            {"request_id": request_id, "requested_by": CISO},
        )
    assert asked.success and not own.success and not rotation.success
    assert "Refused (two_person)" in failure(own)
    assert "Refused (approval)" in failure(rotation)
    assert world.warehouse.secrets.request(request_id).requested_by == CISO
    assert world.warehouse.secrets.request(request_id).state == "requested"


def test_a_sync_reads_a_file_source_with_the_rotations_bounded_reader(world, tmp_path):
    """sync_config's file: source: a FIFO is refused at once, naming the file."""
    from devops_assets.config import load_config
    from devops_assets_tests.test_sync_config import (
        KEY_KEY,
        delete_secret,
        failure_text,
        run_sync,
        staged_head,
    )

    path = tmp_path / "key.fifo"
    os.mkfifo(path)
    text = world.config.path.read_text(encoding="utf-8")
    old = 'source = "env:MOLTWORKER_NEXT_ANTHROPIC_API_KEY"'
    assert old in text
    platform = tmp_path / "platform.toml"
    platform.write_text(text.replace(old, f'source = "file:{path}"'), encoding="utf-8")
    config = load_config(platform)
    staged_head(world)
    delete_secret(world, "ANTHROPIC_API_KEY")
    started = time.monotonic()
    result = run_sync(world, [KEY_KEY], config=config)
    assert time.monotonic() - started < 60
    assert not result.success
    assert f"file {path} is not a regular file" in failure_text(result)


def test_only_the_schedule_asks_under_its_own_name_and_each_request_id_is_logged(world):
    """A person who types the schedule's name is refused (who asks can never approve,
    so asking as nobody would dodge the rule); the schedule's own tick asks, and the
    run's log names every request id the approvers need."""
    from devops_assets.delivery.secrets import SCHEDULER

    with dg.instance_for_test() as instance:
        defs = build_definitions(world.config)
        posing = run(
            defs,
            instance,
            "request_secret_rotation",
            "request_due_rotations",
            {"requested_by": SCHEDULER},
        )
        assert not posing.success
        assert "is the schedule's own name" in failure(posing)
        assert world.warehouse.secrets.requests("requested") == []

        schedule = defs.resolve_schedule_def("secret_rotation_check")
        with dg.build_schedule_context(instance=instance) as context:
            [tick] = schedule.evaluate_tick(context).run_requests
        job = defs.resolve_job_def(schedule.job_name)
        ran = job.execute_in_process(
            run_config=tick.run_config,
            instance=instance,
            tags={**job.tags, "dagster/schedule_name": schedule.name},
        )
        made = world.warehouse.secrets.requests("requested")
        assert made and {r.requested_by for r in made} == {SCHEDULER}
        logged = " ".join(
            e.message
            for e in instance.all_logs(ran.run_id)
            if e.dagster_event is None and e.user_message
        )
        for request in made:
            assert f"requested {request.request_id}" in logged


# Spellings identity() reads as the schedule's own name: case, fullwidth letters,
# a no-break space, blanks around it.
POSING = [
    secrets.SCHEDULER.upper(),
    "Secret_Rotation_Check (Schedule)",
    "\uff53\uff45cret_rotation_check (schedule)",
    "secret_rotation_check\u00a0(schedule)",
    f"  {secrets.SCHEDULER}\t",
]


def run_tagged(defs, instance, config: dict, tags: dict):
    job = defs.resolve_job_def("request_secret_rotation")
    return job.execute_in_process(
        run_config={"ops": {"request_due_rotations": {"config": config}}, **QUIET},
        instance=instance,
        tags={**job.tags, **tags},
        raise_on_error=False,
    )


@pytest.mark.parametrize("who", POSING, ids=ascii)
def test_a_person_spelling_the_schedules_name_otherwise_is_refused(world, who):
    """Compared in identity form: each spelling is the schedule, so only the
    schedule's own run may use it."""
    with dg.instance_for_test() as instance:
        posing = run(
            build_definitions(world.config),
            instance,
            "request_secret_rotation",
            "request_due_rotations",
            {"requested_by": who},
        )
    assert not posing.success
    assert "is the schedule's own name" in failure(posing)
    assert world.warehouse.secrets.requests() == []


@pytest.mark.parametrize("who", [secrets.SCHEDULER, *POSING], ids=ascii)
def test_the_schedules_name_never_asks_one_secret_now_even_in_a_tagged_run(world, who):
    """An emergency request under the schedule's name would have no person as its
    requester, so its approver could be anyone, the one who asked included."""
    with dg.instance_for_test() as instance:
        asked = run_tagged(
            build_definitions(world.config),
            instance,
            {
                "requested_by": who,
                "environment": "production",
                "secret": GATEWAY,
                "reason": "emergency",
            },
            {"dagster/schedule_name": "secret_rotation_check"},
        )
    assert not asked.success
    assert "only sweeps for due secrets" in failure(asked)
    assert world.warehouse.secrets.requests() == []


@pytest.mark.parametrize("who", [secrets.SCHEDULER, POSING[0], POSING[3]], ids=ascii)
def test_check_due_refuses_the_schedules_name_for_one_secret_and_audits_it(world, who):
    """Defence in depth below the job: the delivery function refuses it too."""
    with pytest.raises(Refused) as caught:
        secrets.check_due(world.runtime("run-request"), who, "emergency", "production", GATEWAY)
    assert caught.value.rule == "identity"
    assert world.warehouse.secrets.requests() == []
    [row] = [e for e in world.warehouse.audit_log() if e.action == secrets.REQUEST]
    assert (row.outcome, row.actor, row.subject) == (
        "refused",
        secrets.SCHEDULER,
        f"production:{GATEWAY}",
    )
    assert "secret_rotation_refused" in world.notices()


def test_the_schedules_tagged_sweep_asks_only_what_is_due(world):
    """The residual limit (docs/secrets.md): a launcher may set the schedule's tag, and
    then makes exactly the due sweep the schedule makes, nothing chosen."""
    with dg.instance_for_test() as instance:
        swept = run_tagged(
            build_definitions(world.config),
            instance,
            {"requested_by": POSING[0]},
            {"dagster/schedule_name": "secret_rotation_check"},
        )
    assert swept.success
    made = world.warehouse.secrets.requests("requested")
    assert {r.requested_by for r in made} == {secrets.SCHEDULER}
    assert all(r.reason.endswith("age unknown") for r in made)
