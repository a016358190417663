"""``devops-assets demo`` and ``devops-assets dev``: the local instance, end to end.

Both prepare the same things: the demo workspace (a seeded git repository and
emulator state, when the platform file points at the emulator), a PostgreSQL
database for the Dagster instance (the server on 127.0.0.1:5432, or an
embedded one), and ``$DAGSTER_HOME`` holding this repository's ``dagster.yaml``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from devops_assets.config import PlatformConfig, load_config, workspace_home

REPO_ROOT = Path(__file__).resolve().parents[2]
# Show the run's INFO lines (counts per asset) and not Dagster's step-by-step DEBUG events.
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def add_parsers(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="seed the demo, materialize every asset, print pipeline health",
        description="Seed the demo workspace (when the platform file points at the emulator), "
        "run every asset on the local Dagster instance and print the pipeline-health table.",
    )
    demo.set_defaults(run=run_demo)
    dev = commands.add_parser(
        "dev",
        help="start the Dagster UI on 127.0.0.1:3000",
        description="Prepare the local instance as `demo` does, then run `dagster dev` "
        "(webserver and daemon) on 127.0.0.1. Stop it with Ctrl-C.",
    )
    dev.add_argument("--port", type=int, default=3000, help="port on 127.0.0.1 (default 3000)")
    dev.set_defaults(run=run_dev)
    push = commands.add_parser(
        "demo-push",
        help="push a commit to the demo's staging branch (try the sensors under make dev)",
        description="Commit a change to the demo repository's staging branch and let the "
        "emulator's Workers Builds build it. Under `make dev` the sensors then deploy it to "
        "staging within a minute; the deploy run shows in the UI.",
    )
    push.add_argument(
        "--breaks-production",
        action="store_true",
        help="a change whose production version fails its smoke test (staging is fine)",
    )
    push.add_argument(
        "--build",
        choices=("success", "fail", "running"),
        default="success",
        help="how the builds end (default success; running leaves them running)",
    )
    push.set_defaults(run=run_demo_push)


def dagster_database() -> str:
    """The instance's database name: one per workspace, so checkouts do not share runs."""
    digest = hashlib.sha1(str(workspace_home()).encode()).hexdigest()[:10]
    return f"devops_assets_{digest}"


def prepare(config: PlatformConfig, dagster_db: str | None = None) -> dict[str, str]:
    """Seed the demo workspace and point the Dagster instance at PostgreSQL.

    Returns the environment variables the instance needs; they are also set in
    this process. Safe to call repeatedly: everything is reused when present.
    """
    from devops_assets.store.postgres import find_or_start_postgres

    if config.cloudflare.api_base_url == "emulator:":
        from devops_assets.emulator.simulator import seed_workspace

        with _workspace_lock():  # two demos started together seed it once
            history = seed_workspace(config)
        print(f"demo workspace: {history.repo} ({len(history.commits)} commits)")

    dagster_db = dagster_db or dagster_database()
    server = find_or_start_postgres(workspace_home() / "pg")
    server.create_database(dagster_db)
    env = dict(server.dagster_env(dagster_db))
    env["DAGSTER_HOME"] = os.environ.get("DAGSTER_HOME") or str(workspace_home() / "dagster_home")
    env["DEVOPS_ASSETS_HOME"] = str(workspace_home())
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ.update(env)
    return env


@contextmanager
def _workspace_lock():
    """An exclusive lock on the workspace, held while it is seeded."""
    home = workspace_home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".seed.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_demo(args) -> int:
    import dagster as dg

    from devops_assets.defs import build_definitions
    from devops_assets.domain.health import render_dora, render_table
    from devops_assets.store.warehouse import Warehouse

    config = load_config()
    emulated = config.cloudflare.api_base_url == "emulator:"
    if emulated:
        reset_played_workspace(config)
    prepare(config)
    defs = build_definitions(config)
    job = defs.resolve_job_def("refresh_pipeline_health")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET_RUN
        )
        if result.success and emulated:
            from devops_assets.demo import scenario

            before = _failure_figures(config)
            scenario.play(config, defs, instance)
            print("\nMeasuring again, with the story's deploys")
            result = job.execute_in_process(
                instance=instance, raise_on_error=False, run_config=QUIET_RUN
            )
            after = _failure_figures(config)
            for metric, value in after.items():
                print(f"  {metric} of production: {before.get(metric, '—')} → {value}")
    if not result.success:
        print("devops-assets: the demo run failed; see the run's events above", file=sys.stderr)
        return 1

    stored = {
        (r.metric, r.environment): r for r in Warehouse(config.warehouse_url).pipeline_health()
    }
    rows = [stored[(t.metric, t.environment)] for t in config.targets]
    if not rows:
        print(f"\n{config.path} sets no [targets]; nothing to compare (see docs/configuration.md)")
        return 0
    start, end = rows[0].window_start, rows[0].window_end
    print(
        f"\nPipeline health of {config.project}, {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"
    )
    print(render_table(rows))
    print(f"\nDORA metrics of production over the same window (tiers: DORA {config.metrics.tiers})")
    print(render_dora(Warehouse(config.warehouse_url).metric_values(), "production", start, end))
    _print_build_failures(config)
    database = os.environ["DAGSTER_PG_DB"]
    print(f"\nrun {result.run_id} stored in PostgreSQL ({database}); `make dev` shows it")
    return 0


def _print_build_failures(config: PlatformConfig) -> None:
    """The failed builds the build_failures asset triaged, newest three shown."""
    from collections import Counter

    from devops_assets.store.triage_ledger import TriageLedger
    from devops_assets.store.warehouse import Warehouse

    warehouse = Warehouse(config.warehouse_url)
    triages = TriageLedger(warehouse).triages()
    warehouse.close()
    if not triages:
        return
    counts = Counter(t.category for t in triages)
    kinds = ", ".join(f"{c} {n}" for c, n in counts.most_common())
    print(f"\nFailed builds triaged (asset build_failures): {len(triages)} — {kinds}")
    for t in triages[-3:]:
        print(
            f"  {t.created_on:%Y-%m-%d} {t.worker} {t.build_uuid[:8]}: {t.summary} "
            f"(log lines {t.evidence_start}-{t.evidence_end})"
        )


def _failure_figures(config: PlatformConfig) -> dict[str, str]:
    """Production's rollback and change failure rates over the health window, as shown."""
    from devops_assets.domain.health import human
    from devops_assets.store.warehouse import Warehouse

    warehouse = Warehouse(config.warehouse_url)
    rows = [r for r in warehouse.pipeline_health() if r.environment == "production"]
    if not rows:
        return {}
    window = (rows[0].window_start, rows[0].window_end)
    found = {}
    for v in warehouse.metric_values():
        if (
            v.environment == "production"
            and v.worker == ""
            and v.grain == "window"
            and (v.window_start, v.window_end) == window
            and v.metric in ("rollback_rate", "change_failure_rate")
        ):
            found[v.metric] = human(v.value, v.unit)
    return dict(sorted(found.items(), reverse=True))


def reset_played_workspace(config: PlatformConfig) -> None:
    """Start the story from the seeded state: a workspace whose emulator has
    recorded deploys (an earlier demo, or clicks in ``make dev``) is seeded anew,
    and the demo's SQLite warehouse and notices start empty with it."""
    state = Path(config.cloudflare.emulator_state)
    journal = state / "journal.jsonl"
    if not journal.exists() or journal.stat().st_size == 0:
        return
    from devops_assets.emulator.simulator import mark_stale

    print(f"demo workspace: {state} holds earlier deploys; seeding it again")
    mark_stale(config)
    url = config.warehouse_url
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    else:
        print(f"note: the warehouse at {url.split('@')[-1]} keeps the earlier deploys' rows")
    if config.deploy.notify_file:
        Path(config.deploy.notify_file).unlink(missing_ok=True)


def run_demo_push(args) -> int:
    from devops_assets.demo import scenario
    from devops_assets.emulator.app import load_app

    config = load_config()
    if config.cloudflare.api_base_url != "emulator:":
        print("devops-assets: demo-push works on the demo's emulator only", file=sys.stderr)
        return 2
    app = load_app(config.cloudflare.emulator_state, persist=True)
    branch = config.environment("staging").branches[0]
    path, content, message = scenario.BAD if args.breaks_production else scenario.GOOD
    now = app.now()
    content += f"// pushed {now.isoformat()}\n"  # each push a new commit
    sha = scenario.commit_file(Path(config.repository), branch, path, content, message, now)
    serves = {config.environment("production").worker: "error"} if args.breaks_production else "ok"
    outcome = None if args.build == "running" else args.build
    wrangler = scenario.wrangler_at(Path(config.repository), sha)
    failure = "typescript" if args.build == "fail" else None  # a red build's realistic log
    builds = app.push(
        branch, sha, message, outcome=outcome, serves=serves, wrangler=wrangler, failure=failure
    )
    print(f"pushed {sha} to {branch}; {len(builds)} build(s) {args.build}")
    return 0


def run_dev(args) -> int:
    env = {**os.environ, **prepare(load_config())}
    dagster = Path(sys.executable).with_name("dagster")
    argv = [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(args.port)]
    argv += ["-w", str(REPO_ROOT / "workspace.yaml")]
    # Run from $DAGSTER_HOME so Dagster finds the instance file there and nowhere else.
    os.chdir(env["DAGSTER_HOME"])
    os.execve(argv[0], argv, env)
    return 0  # not reached
