"""git_push_sensor and build_status_sensor, one tick at a time, on the real definitions.

Each test evaluates the sensors of ``build_definitions(world.config)`` against an
ephemeral Dagster instance, as the daemon would every 30 s: the git repository,
the emulator's Workers Builds and the warehouse's ``deploy_requests`` are the
seeded demo's (a copy per test). A run a sensor asks for is executed with the
``deploy`` job on the same instance, with the request's run config and tags.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from devops_assets.defs import build_definitions
from devops_assets.demo.scenario import commit_file
from devops_assets_tests.deploy_fixtures import BAD, GOOD

PUSH = "git_push_sensor"
BUILDS = "build_status_sensor"
# A third change, for a push on top of GOOD and BAD.
DOCS = ("docs/retry.md", "# Retry-After\n\nCapped at 30 s.\n", "docs: the Retry-After cap")


class Sensors:
    """The world's definitions, an ephemeral instance, and every tick's run keys."""

    def __init__(self, world, instance: dg.DagsterInstance):
        self.world = world
        self.instance = instance
        self.defs = build_definitions(world.config)
        self.run_keys: list[str] = []

    def tick(self, name: str, cursor: str | None = None):
        sensor = self.defs.resolve_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance, cursor=cursor, resources=self.defs.resources, sensor_name=name
        ) as context:
            data = sensor.evaluate_tick(context)
        self.run_keys += [r.run_key for r in data.run_requests]
        return data

    def baseline(self) -> str:
        """The first look's cursor: today's heads taken as history."""
        return self.tick(PUSH).cursor

    def push(self, change=GOOD, branch="hardshell", outcome="success", serves="ok"):
        """Commit ``change`` on ``branch`` and let Workers Builds build it; the sha and
        the builds (one per worker), running when ``outcome`` is None."""
        app = self.world.app()
        path, content, message = change
        sha = commit_file(self.world.repo, branch, path, content, message, app.now())
        return sha, app.push(branch, sha, message, outcome=outcome, serves=serves)

    def finish(self, builds: list[dict], outcome: str) -> None:
        app = self.world.app()
        for build in builds:
            app.finish_build(build["build_uuid"], outcome)

    def execute(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def("deploy")
        return job.execute_in_process(
            run_config=request.run_config,
            tags={**job.tags, **request.tags, "dagster/run_key": request.run_key},
            instance=self.instance,
            raise_on_error=False,
        )

    def requests(self) -> dict[str, tuple[str, str]]:
        """Every deploy request: its id → (environment, state)."""
        rows = self.world.warehouse.deploys.requests()
        return {r.request_id: (r.environment, r.state) for r in rows}


@pytest.fixture
def sensors(world):
    with dg.DagsterInstance.ephemeral() as instance:
        yield Sensors(world, instance)


def expected_request(branch: str, sha: str, environment: str, sensor: str) -> tuple:
    """What a run request of a push holds: run key, run config and tags (Dagster adds
    the sensor's name)."""
    config = {
        "environment": environment,
        "commit": sha,
        "requested_by": "git_push_sensor",
        "reason": f"push to {branch}",
    }
    return (
        f"{branch}:{sha}",
        {"ops": {"deploy_commit": {"config": config}}},
        {
            "deploy/environment": environment,
            "git/branch": branch,
            "git/sha": sha,
            "dagster/sensor_name": sensor,
        },
    )


def described(request: dg.RunRequest) -> tuple:
    return (request.run_key, request.run_config, request.tags)


def test_the_first_look_takes_todays_heads_as_history(sensors):
    heads = {b: sensors.world.git("rev-parse", f"refs/heads/{b}") for b in ("hardshell", "main")}

    first = sensors.tick(PUSH)

    assert first.run_requests == []
    assert first.skip_message == (
        f"first look: hardshell at {heads['hardshell'][:12]}, main at {heads['main'][:12]} "
        "taken as deployed history"
    )
    assert json.loads(first.cursor) == heads
    assert sensors.requests() == {}
    assert sensors.tick(BUILDS).skip_message == "no pushed commit is waiting for its build"
    again = sensors.tick(PUSH, first.cursor)
    assert again.run_requests == [] and again.skip_message == "no new commit on hardshell, main"
    assert json.loads(again.cursor) == heads


def test_a_push_waits_for_its_build_then_deploys_to_staging_once(sensors):
    world = sensors.world
    cursor = sensors.baseline()
    sha, builds = sensors.push(GOOD, outcome=None)
    assert {b["build_outcome"] for b in builds} == {None} and len(builds) == 2

    pushed = sensors.tick(PUSH, cursor)

    assert pushed.run_requests == []
    assert json.loads(pushed.cursor)["hardshell"] == sha
    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "waiting")}
    waiting = sensors.tick(BUILDS)
    assert waiting.run_requests == []
    assert waiting.skip_message == "1 pushed commit(s) still waiting for a build"
    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "waiting")}

    sensors.finish(builds, "success")
    built = sensors.tick(BUILDS)

    assert [described(r) for r in built.run_requests] == [
        expected_request("hardshell", sha, "staging", BUILDS)
    ]
    assert built.run_requests[0].run_key == f"hardshell:{sha}"
    (row,) = world.warehouse.deploys.requests()
    assert (row.request_id, row.state) == (f"hardshell:{sha}", "claimed")
    assert row.detail.startswith("build ") and row.detail.endswith(" succeeded")
    result = sensors.execute(built.run_requests[0])  # what the daemon does with the request
    again = sensors.tick(BUILDS)
    assert again.run_requests == []
    assert again.skip_message == "no pushed commit is waiting for its build"
    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "launched")}
    later = sensors.tick(PUSH, pushed.cursor)
    assert later.run_requests == [] and later.skip_message == "no new commit on hardshell, main"

    assert result.success
    run = sensors.instance.get_run_by_id(result.run_id)
    assert run.tags["dagster/run_key"] == f"hardshell:{sha}"
    assert run.tags["git/sha"] == sha and run.tags["deploy/environment"] == "staging"
    smoke = world.warehouse.deploys.smoke_runs("staging")
    assert [(s.commit_sha, s.passed, s.percentage, s.run_id) for s in smoke] == [
        (sha, True, 100.0, result.run_id)
    ]
    audit = [(a.outcome, a.actor, a.subject) for a in world.warehouse.audit_log("staging")]
    assert [(o, actor) for o, actor, _ in audit] == [
        ("allowed", "git_push_sensor"),
        ("succeeded", "git_push_sensor"),
    ]
    assert world.notices() == ["deploy_started", "deployed"]
    assert sensors.run_keys == [f"hardshell:{sha}"]


def test_a_push_whose_build_already_finished_is_started_by_git_push_sensor(sensors):
    cursor = sensors.baseline()
    sha, builds = sensors.push(GOOD, outcome="success")
    assert {b["build_outcome"] for b in builds} == {"success"}

    pushed = sensors.tick(PUSH, cursor)

    assert [described(r) for r in pushed.run_requests] == [
        expected_request("hardshell", sha, "staging", PUSH)
    ]
    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "claimed")}
    after = sensors.tick(BUILDS)
    assert after.run_requests == []
    assert after.skip_message == "no pushed commit is waiting for its build"
    assert sensors.execute(pushed.run_requests[0]).success
    assert sensors.run_keys == [f"hardshell:{sha}"]


def test_a_failed_build_stops_the_request_with_a_notice(sensors):
    world = sensors.world
    cursor = sensors.baseline()
    sha, builds = sensors.push(GOOD, outcome=None)
    sensors.tick(PUSH, cursor)
    sensors.finish(builds, "fail")

    failed = sensors.tick(BUILDS)

    assert failed.run_requests == []
    (row,) = world.warehouse.deploys.requests()
    assert (row.request_id, row.state) == (f"hardshell:{sha}", "build_failed")
    assert row.detail.endswith(" ended fail")
    assert world.notices()[-1] == "build_failed"
    assert world.notices() == ["build_failed"]
    # stopped for good: later ticks neither start it nor notify again
    assert sensors.tick(BUILDS).skip_message == "no pushed commit is waiting for its build"
    assert world.notices() == ["build_failed"]
    assert world.warehouse.audit_log() == [] and sensors.run_keys == []


def test_a_build_that_failed_before_the_tick_is_stopped_by_git_push_sensor(sensors):
    cursor = sensors.baseline()
    sha, _ = sensors.push(GOOD, outcome="fail")

    pushed = sensors.tick(PUSH, cursor)

    assert pushed.run_requests == []
    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "build_failed")}
    assert sensors.world.notices() == ["build_failed"]


def test_two_pushes_before_a_tick_request_only_the_newest(sensors):
    cursor = sensors.baseline()
    older, _ = sensors.push(GOOD)
    newer, _ = sensors.push(BAD)
    assert sensors.world.git("rev-parse", f"{newer}^") == older

    pushed = sensors.tick(PUSH, cursor)

    assert [r.run_key for r in pushed.run_requests] == [f"hardshell:{newer}"]
    assert described(pushed.run_requests[0]) == expected_request(
        "hardshell", newer, "staging", PUSH
    )
    assert sensors.requests() == {f"hardshell:{newer}": ("staging", "claimed")}


def test_a_newer_push_supersedes_the_waiting_one_of_its_branch(sensors):
    world = sensors.world
    cursor = sensors.baseline()
    older, older_builds = sensors.push(GOOD, outcome=None)
    cursor = sensors.tick(PUSH, cursor).cursor
    newer, newer_builds = sensors.push(BAD, outcome=None)

    pushed = sensors.tick(PUSH, cursor)

    assert pushed.run_requests == []
    assert sensors.requests() == {
        f"hardshell:{older}": ("staging", "superseded"),
        f"hardshell:{newer}": ("staging", "waiting"),
    }
    superseded = world.warehouse.deploys.requests("superseded")[0]
    assert superseded.detail == f"superseded by {newer[:12]}"
    # the older build finishing well changes nothing: only the newest push deploys
    sensors.finish(older_builds, "success")
    assert sensors.tick(BUILDS).run_requests == []
    sensors.finish(newer_builds, "success")
    built = sensors.tick(BUILDS)
    assert [described(r) for r in built.run_requests] == [
        expected_request("hardshell", newer, "staging", BUILDS)
    ]
    assert sensors.requests() == {
        f"hardshell:{older}": ("staging", "superseded"),
        f"hardshell:{newer}": ("staging", "claimed"),
    }
    assert sensors.run_keys == [f"hardshell:{newer}"]


def test_a_cursor_reset_after_deploys_deploys_nothing_from_history(sensors):
    world = sensors.world
    cursor = sensors.baseline()
    first, builds = sensors.push(GOOD, outcome=None)
    cursor = sensors.tick(PUSH, cursor).cursor
    sensors.finish(builds, "success")
    (run,) = sensors.tick(BUILDS).run_requests
    assert sensors.execute(run).success
    second, _ = sensors.push(DOCS)
    (run,) = sensors.tick(PUSH, cursor).run_requests
    assert sensors.execute(run).success
    rows_before = sensors.requests()
    deploys_before = len(world.deployments("moltworker-staging"))

    reset = sensors.tick(PUSH)  # as after "reset cursor" in the UI

    assert reset.run_requests == []
    assert reset.skip_message.startswith(f"first look: hardshell at {second[:12]}, main at ")
    assert json.loads(reset.cursor)["hardshell"] == second
    assert sensors.tick(BUILDS).run_requests == []
    assert sensors.tick(PUSH, reset.cursor).run_requests == []
    assert sensors.tick(PUSH, None).run_requests == []
    assert (
        sensors.requests()
        == {k: (env, "launched") for k, (env, _) in rows_before.items()}
        == {
            f"hardshell:{first}": ("staging", "launched"),
            f"hardshell:{second}": ("staging", "launched"),
        }
    )
    assert len(world.deployments("moltworker-staging")) == deploys_before
    # a push after the reset deploys as usual, under its own key
    third, _ = sensors.push(BAD)
    (run,) = sensors.tick(PUSH, reset.cursor).run_requests
    assert run.run_key == f"hardshell:{third}"
    assert sensors.run_keys == [f"hardshell:{first}", f"hardshell:{second}", f"hardshell:{third}"]
    assert len(set(sensors.run_keys)) == len(sensors.run_keys)


def test_a_push_to_main_asks_production_and_the_policy_refuses_an_unstaged_commit(sensors):
    world = sensors.world
    cursor = sensors.baseline()
    sha, _ = sensors.push(GOOD, branch="main")
    world.gate(sha)  # every quality-gate step passed: only staging is missing
    production_before = len(world.deployments("moltworker"))

    pushed = sensors.tick(PUSH, cursor)

    assert [described(r) for r in pushed.run_requests] == [
        expected_request("main", sha, "production", PUSH)
    ]
    assert pushed.run_requests[0].run_key == f"main:{sha}"
    assert sensors.requests() == {f"main:{sha}": ("production", "claimed")}

    result = sensors.execute(pushed.run_requests[0])

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "Refused by the deploy policy" in failure.step_failure_data.error.message
    row = world.warehouse.audit_log("production")[-1]
    assert (row.action, row.outcome, row.actor) == ("deploy", "refused", "git_push_sensor")
    assert [r["rule"] for r in row.detail["refusals"]] == ["staging_verified"]
    assert len(world.deployments("moltworker")) == production_before
    assert world.warehouse.deploys.releases() == []
    assert world.notices() == ["deploy_refused"]
    assert world.warehouse.deploys.holder("production") is None


@pytest.mark.parametrize(
    ("branch", "environment"), [("hardshell", "staging"), ("main", "production")]
)
def test_the_run_key_is_branch_and_sha_and_a_sha_is_requested_once(sensors, branch, environment):
    cursor = sensors.baseline()
    sha, _ = sensors.push(GOOD, branch=branch)
    pushed = sensors.tick(PUSH, cursor)
    (request,) = pushed.run_requests
    assert request.run_key == f"{branch}:{sha}"
    assert request.tags["deploy/environment"] == environment
    sensors.execute(request)  # the daemon starts the run before the next tick

    # the same head seen again (an old cursor, as a tick whose cursor was lost)
    assert sensors.tick(PUSH, cursor).run_requests == []
    assert sensors.tick(BUILDS).run_requests == []
    assert sensors.requests() == {f"{branch}:{sha}": (environment, "launched")}
    assert sensors.run_keys == [f"{branch}:{sha}"]


# -- ticks seen again, and ticks whose runs were never created -------------------------


def test_a_head_seen_again_keeps_its_waiting_request(sensors):
    cursor = sensors.baseline()
    sha, builds = sensors.push(GOOD, outcome=None)
    sensors.tick(PUSH, cursor)  # the request waits; this tick's cursor is lost

    sensors.tick(PUSH, cursor)

    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "waiting")}
    sensors.finish(builds, "success")
    assert [r.run_key for r in sensors.tick(BUILDS).run_requests] == [f"hardshell:{sha}"]


def test_a_claimed_request_whose_run_was_never_created_is_asked_for_again(sensors):
    """The daemon lost a tick's answer (it crashed, or the tick failed after the claim):
    the same sensor asks for the same run key again until the run exists, and only
    then marks the request launched; the other sensor never asks for it."""
    cursor = sensors.baseline()
    sha, builds = sensors.push(GOOD, outcome=None)
    cursor = sensors.tick(PUSH, cursor).cursor
    sensors.finish(builds, "success")
    lost = sensors.tick(BUILDS)  # its run request is dropped, never executed
    assert [r.run_key for r in lost.run_requests] == [f"hardshell:{sha}"]
    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "claimed")}
    assert sensors.tick(PUSH, cursor).run_requests == []

    again = sensors.tick(BUILDS)

    assert [r.run_key for r in again.run_requests] == [f"hardshell:{sha}"]
    sensors.execute(again.run_requests[0])
    assert sensors.tick(BUILDS).run_requests == []
    assert sensors.requests() == {f"hardshell:{sha}": ("staging", "launched")}


def test_a_branch_moved_back_to_a_superseded_commit_deploys_it(sensors):
    cursor = sensors.baseline()
    first, first_builds = sensors.push(GOOD, outcome=None)
    cursor = sensors.tick(PUSH, cursor).cursor
    second, _ = sensors.push(DOCS, outcome=None)
    cursor = sensors.tick(PUSH, cursor).cursor
    assert sensors.requests()[f"hardshell:{first}"] == ("staging", "superseded")
    sensors.world.git("update-ref", "refs/heads/hardshell", first)  # a force-push back

    sensors.tick(PUSH, cursor)
    sensors.finish(first_builds, "success")

    assert [r.run_key for r in sensors.tick(BUILDS).run_requests] == [f"hardshell:{first}"]
    assert sensors.requests()[f"hardshell:{second}"] == ("staging", "superseded")
