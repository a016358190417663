"""What the deploy concurrency tests share: a demo workspace whose warehouse and
Dagster instance are both on PostgreSQL, a table lock the test holds as a barrier,
deploy runs submitted through the instance's queue, and a real ``dagster-daemon``.

The barrier is PostgreSQL's own: ``LOCK TABLE ... IN SHARE MODE`` on a connection
of the test lets every reader through and makes a writer of that table wait until
the test lets go. Locking ``smoke_runs`` holds a production deploy after it took
the environment's lock, audited its decision and rolled out the first step, and
before it records that step's smoke run: nothing in the product is replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from devops_assets.config import DEMO_CONFIG, PlatformConfig, load_config
from devops_assets.defs import build_definitions
from devops_assets.delivery import deployer
from devops_assets.delivery.runtime import open_runtime
from devops_assets.demo.commands import REPO_ROOT
from devops_assets.domain.guards import GateRecord
from devops_assets.store.warehouse import Warehouse
from devops_assets_tests.deploy_fixtures import GOOD, World
from devops_assets_tests.pipeline_fixtures import QUIET, open_pipeline
from devops_assets_tests.process_groups import stop_group

OPS = "ops@moltworker.example"
DEPLOY_TAG = "devops_assets/deploy"
LOCATION = "devops_assets"
ACTIVE = frozenset({dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED})
STOP_TIMEOUT_S = 30
# What the queue daemon logs each time it looks at queued runs (dagster 1.13).
QUEUE_CHECK = "Priority sorting and checking tag concurrency limits for queued runs."


@dataclass
class Bed:
    """A seeded demo workspace: Dagster instance and warehouse on PostgreSQL."""

    config: PlatformConfig
    instance: dg.DagsterInstance
    defs: dg.Definitions
    warehouse: Warehouse  # one engine for the test (each Warehouse() runs its DDL again)
    warehouse_url: str
    world: World  # push commits and read the emulator

    @property
    def deploy_job(self) -> dg.JobDefinition:
        return self.defs.resolve_job_def("deploy")

    def runtime(self, run_id: str):
        """What a deploy works with, outside Dagster; no other run is active."""
        return open_runtime(
            self.config, self.warehouse, None, self.world.repo, run_id, lambda _: False
        )

    def staged(self) -> str:
        """A commit every production rule allows: pushed to hardshell (its builds
        succeed), deployed to staging and smoke-tested there, every gate step passed."""
        sha = self.world.push(GOOD)
        staging = deployer.deploy(self.runtime("run-staging"), "staging", sha, OPS, "try it")
        assert [s.passed for s in staging.smoke] == [True]
        at = self.world.app().now()
        self.warehouse.record_gate(
            [GateRecord(sha, step, "passed", at) for step in self.config.quality_gate]
        )
        return sha


@contextmanager
def deploy_bed(home: Path, postgres_server, warehouse_url: str) -> Iterator[Bed]:
    """``open_pipeline``'s workspace and instance, with the warehouse at ``warehouse_url``
    (``DEVOPS_ASSETS_DB_URL``, read by the platform file and the resources alike)."""
    pipeline, close = open_pipeline(home, postgres_server)
    patch = pytest.MonkeyPatch()
    warehouse = None
    try:
        patch.setenv("DEVOPS_ASSETS_DB_URL", warehouse_url)
        patch.setenv("DEVOPS_ASSETS_CONFIG", str(DEMO_CONFIG))
        config = load_config(DEMO_CONFIG)
        assert config.warehouse_url == warehouse_url
        warehouse = Warehouse(warehouse_url)
        defs = build_definitions(config)
        yield Bed(config, pipeline.instance, defs, warehouse, warehouse_url, World(config, home))
    finally:
        if warehouse is not None:
            warehouse.close()
        patch.undo()
        close()


def deploy_run_config(sha: str, reason: str) -> dict:
    config = {"environment": "production", "commit": sha, "requested_by": OPS, "reason": reason}
    return {"ops": {"deploy_commit": {"config": config}}}


# -- the barrier ------------------------------------------------------------------------


class TableBarrier:
    """``LOCK TABLE <table> IN SHARE MODE`` held on its own connection until released."""

    def __init__(self, url: str, table: str):
        self.table = table
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._conn = self._engine.connect()
        self._tx = self._conn.begin()
        self._conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE MODE")
        self._watch = self._engine.connect()  # autocommit reads of pg_stat_activity
        self.held = True

    def waiting_writers(self) -> list[str]:
        """The statements of other sessions waiting for a lock to write the table."""
        rows = self._watch.execute(
            sa.text(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' "
                "AND query ILIKE :insert"
            ),
            {"insert": f"INSERT INTO {self.table}%"},
        )
        self._watch.commit()
        return [row.query for row in rows]

    def release(self) -> None:
        if self.held:
            self._tx.rollback()
            self.held = False

    def close(self) -> None:
        self.release()
        self._conn.close()
        self._watch.close()
        self._engine.dispose()


@contextmanager
def table_barrier(url: str, table: str) -> Iterator[TableBarrier]:
    barrier = TableBarrier(url, table)
    try:
        yield barrier
    finally:
        barrier.close()


def wait_for(what: str, check: Callable[[], object], timeout_s: float, every_s: float = 0.05):
    """``check()``'s first truthy value, asked every ``every_s``; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(every_s)


# -- runs through the queue ---------------------------------------------------------------


@contextmanager
def queue_submitter(instance: dg.DagsterInstance, job_def: dg.JobDefinition):
    """A function that creates a ``deploy`` run with the job's tags and submits it to
    the instance's run coordinator (dagster.yaml's QueuedRunCoordinator), so it waits
    QUEUED for the daemon; returns the run id.

    The run names the job as the daemon's workspace does (location ``devops_assets``,
    module ``devops_assets.definitions``, loaded here in process, as a webserver
    would before it submits a launchpad run).
    """
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name="devops_assets.definitions",
            working_directory=str(REPO_ROOT),
        ),
        location_name=LOCATION,
    )
    module = origin.loadable_target_origin.module_name
    imported_before = module in sys.modules
    try:
        with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
            request = context.create_request_context()
            (repository,) = request.get_code_location(LOCATION).get_repositories().values()
            remote_job = repository.get_full_job(job_def.name)

            def submit(run_config: dict) -> str:
                run = instance.create_run_for_job(
                    job_def=job_def,
                    run_config=run_config,
                    tags=dict(job_def.tags),
                    remote_job_origin=remote_job.get_remote_origin(),
                    job_code_origin=remote_job.get_python_origin(),
                )
                instance.submit_run(run.run_id, request)
                return run.run_id

            yield submit
    finally:
        if not imported_before:  # its definitions were built for this test's workspace
            sys.modules.pop(module, None)


# -- deploys in child processes ---------------------------------------------------------

# Two ``execute_in_process`` runs in two threads of one process can deadlock inside
# Dagster (each run's log manager calls ``logging.config.dictConfig``, which closes
# every handler of the process while holding logging's lock), so each racing run
# gets a process of its own.
CHILD = "from devops_assets_tests.concurrency_fixtures import deploy_in_child; deploy_in_child()"


def deploy_in_child() -> None:
    """In a child process (argv: folder, name, sha, reason): load the ``deploy`` job,
    say ``<name>.ready``, wait for ``go``, execute the job in process on the
    instance of ``$DAGSTER_HOME``, and write the outcome to ``<name>.json``."""
    folder, name, sha, reason = Path(sys.argv[1]), *sys.argv[2:5]
    job = build_definitions(load_config()).resolve_job_def("deploy")
    instance = dg.DagsterInstance.get()
    (folder / f"{name}.ready").touch()
    wait_for("the go file", (folder / "go").exists, 60, every_s=0.002)
    run_config = {**deploy_run_config(sha, reason), **QUIET}
    result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    outcome = {"run_id": result.run_id, "success": result.success, "failure": None}
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        outcome["failure"] = {
            "description": user.description if user else data.error.message,
            "metadata": {k: v.value for k, v in user.metadata.items()} if user else {},
        }
    partial = folder / f"{name}.json.part"
    partial.write_text(json.dumps(outcome), encoding="utf-8")
    partial.rename(folder / f"{name}.json")


@dataclass
class ChildDeploys:
    folder: Path
    processes: dict[str, subprocess.Popen]

    def ready(self) -> bool:
        return all((self.folder / f"{n}.ready").exists() for n in self.processes)

    def go(self) -> None:
        (self.folder / "go").touch()

    def outcomes(self) -> dict[str, dict]:
        found = {}
        for name, process in self.processes.items():
            path = self.folder / f"{name}.json"
            if path.exists():
                found[name] = json.loads(path.read_text(encoding="utf-8"))
            elif process.poll() is not None:
                raise AssertionError(
                    f"deploy {name} exited {process.returncode}:\n{self.log(name)}"
                )
        return found

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")


@contextmanager
def child_deploys(folder: Path, sha: str, names: tuple[str, ...]) -> Iterator[ChildDeploys]:
    """One process per name, each deploying ``sha`` to production in process once
    ``go()`` is called; every process (in its own session) is ended on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in names:
            with open(folder / f"{name}.log", "wb") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-c", CHILD, str(folder), name, sha, f"in process, {name}"],
                    cwd=REPO_ROOT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        yield ChildDeploys(folder, processes)
    finally:
        for process in processes.values():
            stop_group(process, 10)


# -- the daemon ---------------------------------------------------------------------------


@dataclass
class Daemon:
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the daemon's process group (daemon, code server, run workers);
        SIGKILL to what is left after ``STOP_TIMEOUT_S``."""
        stop_group(self.process, STOP_TIMEOUT_S)


@contextmanager
def dagster_daemon(dagster_home: Path, log_path: Path) -> Iterator[Daemon]:
    """``dagster-daemon run`` over the repo's workspace.yaml, from ``dagster_home``
    (where ``prepare`` put dagster.yaml) with this process's environment, as
    ``devops-assets dev`` runs ``dagster dev``; in its own session, stopped on exit."""
    argv = [str(Path(sys.executable).with_name("dagster-daemon")), "run"]
    argv += ["-w", str(REPO_ROOT / "workspace.yaml")]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=dagster_home,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = Daemon(process, log_path)
    try:
        yield daemon
    finally:
        daemon.stop()
