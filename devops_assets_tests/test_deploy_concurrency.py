"""Two production deploys at once: the run queue runs one at a time, the warehouse
lock refuses a run that escaped the queue, and the lock has exactly one winner.

Everything is real: PostgreSQL holds the Dagster instance and the warehouse, the
demo's emulator and git repository serve the deploys, and ``dagster-daemon``
(the repo's workspace.yaml and dagster.yaml) works the queue. What makes the
overlap observable is a PostgreSQL table lock the test holds (``TableBarrier``):
a deploy that took the environment's lock and rolled out its first step waits
there to record that step's smoke run until the test lets go. Nothing in the
product is mocked. The runs that skip the queue run in two processes, not two
threads: Dagster's in-process execution can deadlock on logging's lock when two
threads of one process start runs together (see ``concurrency_fixtures.py``).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from devops_assets.domain import rollout
from devops_assets.store.warehouse import Warehouse
from devops_assets_tests.concurrency_fixtures import (
    ACTIVE,
    DEPLOY_TAG,
    OPS,
    QUEUE_CHECK,
    child_deploys,
    dagster_daemon,
    deploy_bed,
    deploy_run_config,
    queue_submitter,
    table_barrier,
    wait_for,
)
from devops_assets_tests.pipeline_fixtures import QUIET

QUEUED = dg.DagsterRunStatus.QUEUED
STARTED = dg.DagsterRunStatus.STARTED
SUCCESS = dg.DagsterRunStatus.SUCCESS
FAILURE = dg.DagsterRunStatus.FAILURE
FINISHED = frozenset({SUCCESS, FAILURE, dg.DagsterRunStatus.CANCELED})
WORKER = "moltworker"
RUNS_TIMEOUT_S = 90
POLL_S = 0.05
BUSY = "another deploy to production is running: {}"


@pytest.fixture
def bed(tmp_path: Path, postgres_server, fresh_postgres_db):
    """A seeded demo workspace, its Dagster instance and its warehouse on PostgreSQL."""
    with deploy_bed(tmp_path / "home", postgres_server, fresh_postgres_db) as made:
        yield made


def shares(deployments: list[dict]) -> list[list[tuple[str, float]]]:
    return [[(v["version_id"], v["percentage"]) for v in d["versions"]] for d in deployments]


def decisions(bed) -> list[tuple[str, str]]:
    return [(a.run_id, a.outcome) for a in bed.warehouse.audit_log("production")]


class RunWatch:
    """The statuses of two runs, polled from the instance and kept with the time."""

    def __init__(self, instance: dg.DagsterInstance, run_ids: tuple[str, str]):
        self.instance, self.run_ids = instance, run_ids
        self.polls: list[tuple[float, dg.DagsterRunStatus, dg.DagsterRunStatus]] = []
        self.marks: list[tuple[float, str]] = []

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic(), what))

    def poll(self) -> tuple[dg.DagsterRunStatus, dg.DagsterRunStatus]:
        found = self.instance.get_runs(dg.RunsFilter(run_ids=list(self.run_ids)))
        status = {run.run_id: run.status for run in found}
        self.polls.append((time.monotonic(), *(status[r] for r in self.run_ids)))
        return self.polls[-1][1:]

    def until_finished(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(s in FINISHED for s in self.poll()):
            assert time.monotonic() < deadline, f"not finished in {timeout_s} s: {self.polls[-1]}"
            time.sleep(POLL_S)

    def states(self) -> list[tuple[dg.DagsterRunStatus, dg.DagsterRunStatus]]:
        return [(a, b) for _, a, b in self.polls]

    def timeline(self) -> str:
        """Each change of the pair of statuses, and each mark, in seconds from the
        first poll."""
        lines, last = [], None
        for at, a, b in self.polls:
            if (a, b) != last:
                lines.append((at, f"{a.value:<8} {b.value}"))
                last = (a, b)
        lines += [(at, f"({what})") for at, what in self.marks]
        return "\n".join(f"{at - self.polls[0][0]:6.2f} s  {text}" for at, text in sorted(lines))


# -- 1. through the queue: the daemon starts one deploy, the other waits ---------------


def test_two_queued_production_deploys_of_one_commit_run_one_after_the_other(bed, tmp_path):
    """Both runs are QUEUED before the daemon starts, so its first look at the queue
    could take both; the tag limit of dagster.yaml lets it take one. That one is
    held mid-rollout until the daemon has looked at the queue again; then both end."""
    sha = bed.staged()
    instance, ledger = bed.instance, bed.warehouse.deploys
    before = bed.world.deployments(WORKER)
    old = rollout.serving({"versions": shares(before[-1:])[0]})

    with table_barrier(bed.warehouse_url, "smoke_runs") as barrier:
        with queue_submitter(instance, bed.deploy_job) as submit:
            first = submit(deploy_run_config(sha, "first of two"))
            second = submit(deploy_run_config(sha, "second of two"))
        watch = RunWatch(instance, (first, second))
        assert watch.poll() == (QUEUED, QUEUED)
        with dagster_daemon(Path(instance.root_directory), tmp_path / "daemon.log") as daemon:
            try:
                wait_for(
                    "a deploy held at the barrier",
                    lambda: watch.poll() and barrier.waiting_writers(),
                    60,
                )
                watch.mark("first run held at the barrier")
                held_from = len(daemon.log())
                held = {
                    "statuses": watch.poll(),
                    "holder": ledger.holder("production"),
                    "audit": decisions(bed),
                    "deployments": shares(bed.world.deployments(WORKER)[len(before) :]),
                    "smoke": ledger.smoke_runs("production"),
                }
                # The queue daemon looks at the queue again while that deploy runs...
                wait_for(
                    "the queue daemon's next look at the queue",
                    lambda: watch.poll() and QUEUE_CHECK in daemon.log()[held_from:],
                    15,
                )
                for _ in range(10):  # ...and, after that look, the other run still waits
                    watch.poll()
                    time.sleep(POLL_S)
                during_hold = daemon.log()[held_from:]
                barrier.release()
                watch.mark("barrier released")
                watch.until_finished(RUNS_TIMEOUT_S)
            except BaseException:
                print(f"dagster-daemon log, last lines:\n{daemon.tail(60)}")
                raise
            log = daemon.log()
        watch.mark("daemon stopped")
    print(f"run statuses ({len(watch.polls)} polls):\n{watch.timeline()}")

    # Held: the first run holds the environment's lock, has decided and rolled out 10 %.
    version = held["deployments"][0][0][0]
    assert held["statuses"] == (STARTED, QUEUED)
    assert held["holder"] == first
    assert held["audit"] == [(first, "allowed")]
    assert held["deployments"] == [[(version, 10), (old, 90)]]
    assert [s.run_id for s in held["smoke"]] == []  # its 10 % smoke run waits to be stored
    assert "Launched" not in during_hold and watch.polls[-1][1:] == (SUCCESS, SUCCESS)

    # Never both running; the first left the queue while the second waited in it,
    # and the second left it only once the first had finished.
    states = watch.states()
    assert not [s for s in states if s[0] in ACTIVE and s[1] in ACTIVE], watch.timeline()
    dequeued = next(s for s in states if s != (QUEUED, QUEUED))
    assert dequeued[0] in ACTIVE and dequeued[1] == QUEUED, watch.timeline()
    assert all(b == QUEUED for a, b in states if a not in FINISHED), watch.timeline()
    assert states[-1] == (SUCCESS, SUCCESS)
    one, two = (instance.get_run_record_by_id(r) for r in (first, second))
    assert one.end_time <= two.start_time, (one.end_time, two.start_time)
    assert log.count("Launched 1 runs.") == 2 and "Launched 2 runs." not in log
    assert {r.run_id for r in instance.get_runs()} == {first, second}  # no sensor launched one
    for record in (one, two):
        assert record.dagster_run.tags[DEPLOY_TAG] == bed.deploy_job.tags[DEPLOY_TAG]

    # The audit log: both decisions, in order, the second after the first had ended.
    audit = bed.warehouse.audit_log("production")
    assert [(a.run_id, a.outcome, a.reason) for a in audit] == [
        (first, "allowed", "first of two"),
        (first, "succeeded", "first of two"),
        (second, "allowed", "second of two"),
        (second, "succeeded", "second of two"),
    ]
    assert all(a.actor == OPS and a.subject == sha for a in audit)
    assert audit[1].at < audit[2].at
    assert ledger.holder("production") is None

    # The second deploy of the same commit: the same version once more, straight to
    # 100 % (it serves 100 % already), smoke-tested, and the first run's release reused.
    release = audit[1].detail["release"]
    assert release == "v2.30.0"
    assert (audit[1].detail["version"], audit[1].detail["steps"]) == (version, [10, 50, 100])
    assert (audit[3].detail["version"], audit[3].detail["steps"]) == (version, [100])
    assert audit[3].detail["release"] == release and audit[3].detail["rolled_back_to"] is None
    assert shares(bed.world.deployments(WORKER)[len(before) :]) == [
        [(version, 10), (old, 90)],
        [(version, 50), (old, 50)],
        [(version, 100)],
        [(version, 100)],
    ]
    smoke = bed.warehouse.deploys.smoke_runs("production")
    assert [(s.run_id, s.version_id, s.percentage, s.passed) for s in smoke[-4:]] == [
        (first, version, 10, True),
        (first, version, 50, True),
        (first, version, 100, True),
        (second, version, 100, True),
    ]
    released = [r for r in ledger.releases() if r.commit_sha == sha]
    assert [(r.tag, r.run_id, r.version_id) for r in released] == [(release, first, version)]
    assert bed.world.git("tag", "--points-at", sha) == release
    assert bed.world.notices()[-4:] == ["deploy_started", "promoted"] * 2


# -- 2. outside the queue: the warehouse lock -------------------------------------------


def execute(bed, sha: str, reason: str) -> dg.ExecuteInProcessResult:
    """The ``deploy`` job executed in this process on the instance: no queue."""
    run_config = {**deploy_run_config(sha, reason), **QUIET}
    return bed.deploy_job.execute_in_process(
        run_config=run_config, instance=bed.instance, raise_on_error=False
    )


def refusal(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """The failed step's metadata, as text."""
    (failure,) = result.get_step_failure_events()
    return {k: v.value for k, v in failure.step_failure_data.user_failure_data.metadata.items()}


def test_two_in_process_deploys_at_once_the_warehouse_lock_refuses_one(bed, tmp_path):
    sha = bed.staged()
    instance, ledger = bed.instance, bed.warehouse.deploys
    before = len(bed.world.deployments(WORKER))

    # Two processes, each with the deploy job loaded, start it in process on the same
    # instance and warehouse at one signal; neither goes through the queue.
    with table_barrier(bed.warehouse_url, "smoke_runs") as barrier:
        with child_deploys(tmp_path / "children", sha, ("a", "b")) as children:
            wait_for("both processes ready", children.ready, 60)
            children.go()
            # One is refused and ends while the other is held at the barrier.
            wait_for(
                "one run ended and the other held at the barrier",
                lambda: len(children.outcomes()) == 1 and barrier.waiting_writers(),
                60,
            )
            ((loser_name, loser),) = children.outcomes().items()
            winner_id = ledger.holder("production")
            held_status = instance.get_run_by_id(winner_id).status
            held_audit = decisions(bed)
            barrier.release()
            outcomes = wait_for(
                "both runs ended", lambda: len(children.outcomes()) == 2 and children.outcomes(), 60
            )
    winner = outcomes["b" if loser_name == "a" else "a"]

    assert winner["run_id"] == winner_id and held_status == STARTED
    assert winner["success"] and not loser["success"]
    busy = BUSY.format(winner_id)
    assert loser["failure"] == {
        "description": f"Refused by the deploy policy: one_at_a_time: {busy}",
        "metadata": {"refused_rules": "one_at_a_time", "one_at_a_time": busy},
    }
    # Both ran at once: they carry the queue's tag, but nothing queued them.
    one, two = (instance.get_run_record_by_id(o["run_id"]) for o in (winner, loser))
    assert one.start_time < two.end_time and two.start_time < one.end_time
    assert one.dagster_run.tags[DEPLOY_TAG] == two.dagster_run.tags[DEPLOY_TAG]
    assert (one.dagster_run.status, two.dagster_run.status) == (SUCCESS, FAILURE)

    # One decision each, the refusal naming the run that held the lock.
    assert sorted(held_audit) == sorted([(winner_id, "allowed"), (loser["run_id"], "refused")])
    audit = bed.warehouse.audit_log("production")
    assert sorted((a.run_id, a.outcome) for a in audit) == sorted(
        [(winner_id, "allowed"), (winner_id, "succeeded"), (loser["run_id"], "refused")]
    )
    (refused_row,) = [a for a in audit if a.outcome == "refused"]
    assert refused_row.detail["refusals"] == [{"rule": "one_at_a_time", "evidence": busy}]
    assert [d[0][1] for d in shares(bed.world.deployments(WORKER)[before:])] == [10, 50, 100]
    assert ledger.holder("production") is None
    assert sorted(bed.world.notices()[-3:]) == ["deploy_refused", "deploy_started", "promoted"]


def test_a_lock_held_for_a_started_run_refuses_until_that_run_has_ended(bed):
    sha = bed.staged()
    instance, ledger, job = bed.instance, bed.warehouse.deploys, bed.deploy_job
    # A real run of the instance, left STARTED, holds production's lock.
    other = instance.create_run_for_job(
        job_def=job, run_config=deploy_run_config(sha, "elsewhere"), tags=dict(job.tags)
    ).run_id
    start = dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=job.name)
    instance.report_dagster_event(start, run_id=other)
    assert instance.get_run_by_id(other).status == STARTED
    now = bed.world.app().now()
    assert ledger.acquire("production", other, OPS, sha, now, lambda r: True) is None

    refused = execute(bed, sha, "while another run holds the lock")
    assert not refused.success
    assert refusal(refused) == {
        "refused_rules": "one_at_a_time",
        "one_at_a_time": BUSY.format(other),
    }
    assert ledger.holder("production") == other
    assert decisions(bed) == [(refused.run_id, "refused")]

    # That run ends (cancelled here; a crash ends the same way): its lock is taken over.
    instance.report_run_canceled(instance.get_run_by_id(other))
    assert instance.get_run_by_id(other).status == dg.DagsterRunStatus.CANCELED
    taken = execute(bed, sha, "after the other run ended")
    assert taken.success
    assert decisions(bed) == [
        (refused.run_id, "refused"),
        (taken.run_id, "allowed"),
        (taken.run_id, "succeeded"),
    ]
    assert ledger.holder("production") is None


# -- 3. the lock itself: eight threads, one winner ---------------------------------------

THREADS = 8
ROUNDS = 10
ENDED = "run-that-ended"


@pytest.mark.parametrize("stale", [False, True], ids=["free-lock", "lock-of-an-ended-run"])
def test_threads_racing_for_the_lock_on_postgresql_have_exactly_one_winner(
    fresh_postgres_db, stale
):
    warehouse = Warehouse(fresh_postgres_db)
    ledger = warehouse.deploys
    now = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)

    def is_active(run_id: str) -> bool:
        return run_id != ENDED

    try:
        for round_no in range(ROUNDS):
            if stale:  # a lock left behind by a run the instance shows ended
                assert ledger.acquire("production", ENDED, OPS, "", now, is_active) is None
            run_ids = [f"run-{round_no}-{i}" for i in range(THREADS)]
            start = threading.Barrier(THREADS)
            answers: dict[str, object] = {}

            def race(run_id: str, start=start, answers=answers) -> None:
                try:
                    start.wait(timeout=30)
                    answers[run_id] = ledger.acquire(
                        "production", run_id, OPS, "c0ffee", now, is_active
                    )
                except BaseException as exc:  # shown by the assertions below
                    answers[run_id] = exc

            # Even rounds: every thread's INSERT waits on a table lock the test holds,
            # so all eight hit the row at once when it lets go. Odd rounds: only the
            # thread barrier lines them up.
            gate = round_no % 2 == 0
            with table_barrier(fresh_postgres_db, "deploy_locks") as barrier:
                if not gate:
                    barrier.release()
                threads = [threading.Thread(target=race, args=(r,), daemon=True) for r in run_ids]
                for thread in threads:
                    thread.start()
                if gate:
                    wait_for(
                        f"{THREADS} INSERTs waiting",
                        lambda b=barrier: len(b.waiting_writers()) == THREADS,
                        30,
                    )
                    barrier.release()
                for thread in threads:
                    thread.join(timeout=30)
            assert sorted(answers) == sorted(run_ids), answers
            winners = [r for r in run_ids if answers[r] is None]
            assert len(winners) == 1, answers
            (winner,) = winners
            assert {answers[r] for r in run_ids if r != winner} == {winner}, answers
            assert ledger.holder("production") == winner
            ledger.release("production", winner)
            assert ledger.holder("production") is None
    finally:
        warehouse.close()
