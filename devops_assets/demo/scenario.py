"""The demo's deploy story, played on the seeded workspace after the history is measured.

1. A developer pushes a commit to ``hardshell``; Workers Builds (the emulator)
   builds it; ``git_push_sensor`` turns the push into a request and
   ``build_status_sensor`` starts the staging deploy once the build succeeds;
   the staging smoke tests pass.
2. CI reports the commit's quality gate; an engineer deploys the same commit to
   production: every guard passes, the version goes out 10 → 50 → 100 % with
   smoke tests between, and a release tag with its changelog is made.
3. A commit that works on staging but breaks production (its production build
   reads a setting staging does not have) goes the same way; production's
   smoke test fails at 10 % and the previous release serves 100 % again.
4. Environments (``secrets_story``, ``d1_story``, ``drift_story``): a due secret
   becomes a rotation request that a second person approves before it is
   rotated; a pending D1 migration is refused on production before staging,
   then applied to staging and production; a setting changed on the dashboard
   shows as drift until ``sync_config`` puts git's configuration back.
5. A flaky build (``flaky_story``): a staging build fails for no fault of its
   commit, ``build_failures`` triages it, a retry of the same commit passes and
   the failure counts as flaky.

The sensors are evaluated here one tick at a time against the real instance
(the daemon does the same every 30 s under ``make dev``); their runs go
through the same ``deploy`` job.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import dagster as dg

from devops_assets.config import PlatformConfig
from devops_assets.domain.guards import GateRecord
from devops_assets.store.warehouse import Warehouse

DEVELOPER = ("Mira Okafor", "mira@moltworker.example")
OPERATOR = "ops@moltworker.example"
GOOD = (
    "src/gateway/retry.ts",
    "export const RETRY_AFTER_CAP_SECONDS = 30;\n",
    "feat(gateway): cap how long a Retry-After from upstream may hold a request\n\n"
    "Upstreams that answer with Retry-After: 3600 parked sessions for an hour.",
)
BAD = (
    "src/gateway/upstream.ts",
    "export const UPSTREAM = env.PRODUCTION_UPSTREAM_URL!;\n",
    "fix(gateway): read the upstream URL from the environment\n\n"
    "Staging has no PRODUCTION_UPSTREAM_URL and keeps its default; production does.",
)


@dataclass
class Story:
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)
        print(text)


def commit_file(repo: Path, branch: str, path: str, content: str, message: str, when) -> str:
    """A commit on ``branch`` that writes one file, made without a work tree."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "GIT_INDEX_FILE": str(Path(scratch) / "index"),
            "GIT_AUTHOR_NAME": DEVELOPER[0],
            "GIT_AUTHOR_EMAIL": DEVELOPER[1],
            "GIT_AUTHOR_DATE": f"{int((when - timedelta(minutes=40)).timestamp())} +0000",
            "GIT_COMMITTER_NAME": DEVELOPER[0],
            "GIT_COMMITTER_EMAIL": DEVELOPER[1],
            "GIT_COMMITTER_DATE": f"{int(when.timestamp())} +0000",
        }

        def git(*args: str, stdin: bytes | None = None) -> str:
            done = subprocess.run(
                ["git", "-C", str(repo), *args],
                input=stdin,
                env=env,
                capture_output=True,
                check=True,
            )
            return done.stdout.decode().strip()

        parent = git("rev-parse", "--verify", f"refs/heads/{branch}")
        git("read-tree", parent)
        blob = git("hash-object", "-w", "--stdin", stdin=content.encode())
        git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        tree = git("write-tree")
        sha = git("commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode())
        git("update-ref", f"refs/heads/{branch}", sha, parent)
    return sha


def wrangler_at(repo: Path, sha: str) -> str | None:
    """The demo repository's wrangler file at ``sha``: what a build of it uploads."""
    done = subprocess.run(
        ["git", "-C", str(repo), "show", f"{sha}:wrangler.jsonc"],
        capture_output=True,
        text=True,
    )
    return done.stdout if done.returncode == 0 else None


def _tick(defs: dg.Definitions, instance, name: str, cursor: str | None):
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources, sensor_name=name
    ) as context:
        data = sensor.evaluate_tick(context)
    return data


def run_job(
    defs, instance, job_name: str, run_config: dict, tags: dict | None = None
) -> dg.ExecuteInProcessResult:
    """Run one of the code location's jobs as a launch would (its own tags), quietly."""
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        run_config={**run_config, **QUIET},
        tags={**job.tags, **(tags or {})},
        instance=instance,
        raise_on_error=False,
    )


def op_config(op: str, config: dict) -> dict:
    return {"ops": {op: {"config": config}}}


def _run(defs, instance, run_config: dict, tags: dict) -> dg.ExecuteInProcessResult:
    return run_job(defs, instance, "deploy", run_config, tags)


# The story prints each run's outcome itself; the console shows nothing of the runs
# (a refused or rolled-back deploy is an expected part of the story, not a crash).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            line = event.step_failure_data.error.message.strip().splitlines()[0]
            kind, _, text = line.partition(": ")  # "dagster…Failure: what happened"
            return text if kind.endswith(("Failure", "Error")) else line
    return "(no step failure recorded)"


def push_change(config: PlatformConfig, change: tuple[str, str, str], serves="ok") -> tuple:
    """Commit ``change`` (path, content, message) to staging's branch as the developer
    and push it: the emulator app, the commit's sha and its builds, still running."""
    from devops_assets.emulator.app import load_app

    app = load_app(config.cloudflare.emulator_state, persist=True)
    branch = config.environment("staging").branches[0]
    path, content, message = change
    repo = Path(config.repository)
    sha = commit_file(repo, branch, path, content, message, app.now())
    builds = app.push(
        branch,
        sha,
        message,
        author_email=DEVELOPER[1],
        outcome=None,
        serves=serves,
        wrangler=wrangler_at(repo, sha),
    )
    return app, sha, builds


def _push_and_deploy_staging(config, defs, instance, story: Story, cursor, change, serves) -> tuple:
    app, sha, builds = push_change(config, change, serves)
    branch = config.environment("staging").branches[0]
    message = change[2]
    story.say(f"  pushed {sha[:12]} to {branch}: {message.splitlines()[0]}")
    tick = _tick(defs, instance, "git_push_sensor", cursor)
    cursor = tick.cursor
    story.say(f"  git_push_sensor: {len(tick.run_requests)} run(s); the build is still running")
    for build in builds:
        app.finish_build(build["build_uuid"], "success")
    story.say(f"  Workers Builds: {sha[:12]} built on both workers (upload only), succeeded")
    tick = _tick(defs, instance, "build_status_sensor", None)
    for request in tick.run_requests:
        result = _run(
            defs, instance, request.run_config, {**request.tags, "dagster/run_key": request.run_key}
        )
        state = "succeeded" if result.success else f"failed: {failure_text(result)}"
        story.say(
            f"  build_status_sensor started deploy run {result.run_id[:8]} (staging): {state}"
        )
    return sha, cursor


def _report_gate(config: PlatformConfig, sha: str, now) -> None:
    records = [GateRecord(sha, step, "passed", now) for step in config.quality_gate]
    Warehouse(config.warehouse_url).record_gate(records)


def _deploy_production(config, defs, instance, story: Story, sha: str, reason: str):
    run_config = {
        "ops": {
            "deploy_commit": {
                "config": {
                    "environment": "production",
                    "commit": sha,
                    "requested_by": OPERATOR,
                    "reason": reason,
                }
            }
        }
    }
    result = _run(defs, instance, run_config, {"deploy/environment": "production"})
    if result.success:
        out = {k: v.value for k, v in _output_metadata(result).items()}
        story.say(
            f"  deploy run {result.run_id[:8]} (production, {sha[:12]}): every rule passed "
            f"({out['checked_rules']}); rolled out {out['steps']}, smoke-tested after each step"
        )
    else:
        story.say(
            f"  deploy run {result.run_id[:8]} (production, {sha[:12]}): {failure_text(result)}"
        )
    return result


def _output_metadata(result: dg.ExecuteInProcessResult) -> dict:
    for event in result.all_events:
        if event.is_successful_output:
            return event.step_output_data.metadata
    return {}


def play(config: PlatformConfig, defs: dg.Definitions, instance) -> Story:
    """Play the story (see the module docstring); returns what it printed."""
    from devops_assets.emulator.app import load_app

    story = Story()
    story.say("\nDeploy story (emulator clock, the minutes after the history ends):")
    cursor = _tick(defs, instance, "git_push_sensor", None).cursor  # first look: baseline
    story.say("1. a push to staging")
    good, cursor = _push_and_deploy_staging(config, defs, instance, story, cursor, GOOD, "ok")
    _report_gate(config, good, load_app(config.cloudflare.emulator_state).now())
    story.say(f"  CI reported {len(config.quality_gate)} quality-gate steps passed for {good[:12]}")
    story.say("2. the same commit to production")
    _deploy_production(config, defs, instance, story, good, "promote the Retry-After cap")
    release = Warehouse(config.warehouse_url).deploys.releases()[0]
    story.say(
        f"  release {release.tag} ({release.bump} after {release.previous_tag}) tagged on "
        f"{release.commit_sha[:12]}:"
    )
    for line in release.changelog.splitlines():
        story.say(f"    {line}")
    story.say("3. a commit that breaks only production")
    bad, cursor = _push_and_deploy_staging(
        config, defs, instance, story, cursor, BAD, {"moltworker": "error"}
    )
    _report_gate(config, bad, load_app(config.cloudflare.emulator_state).now())
    story.say(f"  CI reported {len(config.quality_gate)} quality-gate steps passed for {bad[:12]}")
    _deploy_production(config, defs, instance, story, bad, "ship the upstream setting")
    story.say(f"  (that version is {release.tag}'s: the release before serves again)")
    from devops_assets.demo import d1_story, drift_story, flaky_story, secrets_story

    for chapter in (secrets_story, d1_story, drift_story, flaky_story):
        story.lines.extend(chapter.play(config, defs, instance))
    return story
