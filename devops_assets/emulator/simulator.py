"""Seed the demo workspace: a real git repository and the emulator's account.

``seed_workspace`` plays about six months of a Workers team's delivery (see
``workflow.py``), writes the commits and the releaser's tags (``tags.py``)
into a git repository whose shas the builds name, saves the API objects the
emulator serves, and keeps the raw ground truth in ``events.json``.
Everything follows from the seed and the end instant: no real clock is
read, so two runs give the same shas and events. A second call with the
same inputs reuses the workspace and returns at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devops_assets.config import PlatformConfig
from devops_assets.emulator.apistate import state_from_timeline
from devops_assets.emulator.d1store import seed_databases
from devops_assets.emulator.events import (
    LISTS,
    OPTIONAL_LISTS,
    from_json,
    timeline_events,
    to_json,
)
from devops_assets.emulator.gitwrite import write_repository
from devops_assets.emulator.records import EnvSpec
from devops_assets.emulator.state import INCIDENTS_FILE  # the feed, in the events format
from devops_assets.emulator.timeline import Timeline
from devops_assets.emulator.workflow import simulate

log = logging.getLogger(__name__)

DEFAULT_END = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
EVENTS_FILE = "events.json"
META_FILE = "meta.json"
REPO_MARKER = "devops-assets-simulated"
GENERATOR_FILES = (
    "story.py",
    "records.py",
    "timeline.py",
    "incidents.py",
    "workflow.py",
    "tags.py",
    "gitwrite.py",
    "apistate.py",
    "events.py",
    "buildlogs.py",
    "state.py",
    "simulator.py",
    "resources.py",
    "d1store.py",
)
D1_APPLIED_AFTER = timedelta(minutes=30)  # the seeded migrations ran just after the first deploy


class SimulationError(RuntimeError):
    """The workspace cannot be seeded; names the path or config key at fault."""


@dataclass
class SimulatedHistory:
    """The ground truth the emulator serves, as plain events.

    ``commits``: sha, parents, author_time, commit_time, branch (where it was
    made), subject, author_email. ``builds``: uuid, worker, environment,
    branch, commit_sha, status, outcome (None while running), created_on,
    running_on, stopped_on, trigger_source. ``deployments``: id, worker,
    environment, created_on, version_id, version_number, commit_sha, kind
    (``deploy`` or ``rollback``). ``incidents``: id, environment, opened_at,
    resolved_at, deployment_id (the bad deployment), title. ``tags``: name,
    sha (the tagged commit), annotated, time (tagger date, or the commit's
    committer date for a lightweight tag), deployment_id (the production
    deployment an annotated tag marks; None for a lightweight one). Times are
    aware datetimes; each list is oldest first.
    """

    repo: Path
    state_dir: Path
    end: datetime
    commits: list[dict] = field(default_factory=list)
    builds: list[dict] = field(default_factory=list)
    deployments: list[dict] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)
    tags: list[dict] = field(default_factory=list)


def seed_workspace(
    config: PlatformConfig, *, seed: int = 7, end: datetime | None = None, days: int = 182
) -> SimulatedHistory:
    """Write the repository at ``config.repository`` and the emulator state folder."""
    end = (end or DEFAULT_END).astimezone(UTC)
    repo, state_dir = Path(config.repository), _state_dir(config)
    staging, production = _env_spec(config, "staging"), _env_spec(config, "production")
    fingerprint = _fingerprint(config, seed, end, days)
    if _reusable(repo, state_dir, fingerprint):
        log.info("Reusing the simulated workspace in %s (seed %d)", state_dir, seed)
        return load_history(state_dir)

    # Claim both folders first, so a crash half-way leaves something a re-run may clear.
    started = time.perf_counter()
    _clear_workspace(repo, state_dir)
    _write(state_dir / META_FILE, {"fingerprint": None, "repo": str(repo)})

    timeline = simulate(seed, end, days, staging, production)
    shas = write_repository(
        repo, timeline.commits, _branches(timeline), production.branch, timeline.tags
    )
    events = timeline_events(timeline, shas)
    history = SimulatedHistory(repo, state_dir, end, **events)
    state = state_from_timeline(timeline, shas, config.cloudflare.account_id)
    state.save(state_dir)
    seed_databases(state_dir, state.databases, timeline.start + D1_APPLIED_AFTER)
    _save_events(history)

    # Only now is the workspace complete: the fingerprint marks it reusable.
    meta = {"fingerprint": fingerprint, "seed": seed, "days": days, "end": end.isoformat()}
    _write(state_dir / META_FILE, {**meta, "repo": str(repo)})
    (repo / ".git" / REPO_MARKER).write_text(fingerprint + "\n", encoding="ascii")
    log.info(
        "Seeded %d commits, %d builds, %d deployments, %d incidents and %d tags in %.2fs",
        *(len(getattr(history, name)) for name in LISTS),
        time.perf_counter() - started,
    )
    return history


def load_history(state_dir: Path | str) -> SimulatedHistory:
    """Read ``events.json`` of a seeded state folder back into a history."""
    state_dir = Path(state_dir)
    try:
        body = json.loads((state_dir / EVENTS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SimulationError(f"{state_dir}: no {EVENTS_FILE}; seed the workspace first") from None
    missing = [n for n in LISTS if n not in body and n not in OPTIONAL_LISTS]
    if missing:
        raise SimulationError(f"{state_dir / EVENTS_FILE}: expected the lists {missing}")
    lists = {name: [from_json(e) for e in body.get(name, [])] for name in LISTS}
    return SimulatedHistory(
        Path(body["repo"]), state_dir, datetime.fromisoformat(body["end"]), **lists
    )


def _save_events(history: SimulatedHistory) -> None:
    body = {name: [to_json(e) for e in getattr(history, name)] for name in LISTS}
    where = {"repo": str(history.repo), "end": history.end.isoformat()}
    _write(history.state_dir / EVENTS_FILE, {**where, **body})
    feed = [
        {
            "id": i["id"],
            "environment": i["environment"],
            "created_at": i["opened_at"].isoformat(),
            "resolved_at": i["resolved_at"].isoformat() if i["resolved_at"] else "",
            "title": i["title"],
        }  # like a real status feed it does not know the deployment: the engine finds it
        for i in history.incidents
    ]
    _write(history.state_dir / INCIDENTS_FILE, feed)


def _state_dir(config: PlatformConfig) -> Path:
    if not config.cloudflare.emulator_state:
        raise SimulationError(f"{config.path}: key 'cloudflare.emulator_state': expected a folder")
    return Path(config.cloudflare.emulator_state)


def _env_spec(config: PlatformConfig, name: str) -> EnvSpec:
    try:
        env = config.environment(name)
        worker = config.worker(env.worker or "")
    except KeyError:
        raise SimulationError(
            f"{config.path}: key 'environments.{name}': expected a table naming a [[workers]] entry"
        ) from None
    return EnvSpec(name, worker.name, worker.tag, env.branches[0])


def _fingerprint(config: PlatformConfig, seed: int, end: datetime, days: int) -> str:
    """What the workspace depends on: inputs, config and the generator's own code."""
    here = Path(__file__).parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in GENERATOR_FILES))
    inputs = {
        "seed": seed,
        "end": end.isoformat(),
        "days": days,
        "code": code.hexdigest(),
        "account": config.cloudflare.account_id,
        "repo": str(config.repository),
        "workers": [[w.name, w.tag] for w in config.workers],
        "environments": [[e.name, list(e.branches), e.worker] for e in config.environments],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def mark_stale(config: PlatformConfig) -> None:
    """Make the next ``seed_workspace`` seed anew (the demo does this once its story
    has played): the workspace stays marked as the simulator's, so it may be
    replaced, but no fingerprint matches it any more."""
    state_dir = _state_dir(config)
    try:
        meta = json.loads((state_dir / META_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return  # not a seeded workspace: seed_workspace decides what to do with it
    _write(state_dir / META_FILE, {**meta, "fingerprint": None})


def _reusable(repo: Path, state_dir: Path, fingerprint: str) -> bool:
    try:
        meta = json.loads((state_dir / META_FILE).read_text(encoding="utf-8"))
        marker = (repo / ".git" / REPO_MARKER).read_text(encoding="ascii").strip()
    except (FileNotFoundError, ValueError):
        return False
    return meta.get("fingerprint") == fingerprint == marker


def _clear_workspace(repo: Path, state_dir: Path) -> None:
    """Remove an earlier simulated workspace; refuse to touch folders it did not make."""
    try:
        meta = json.loads((state_dir / META_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        meta = {}
    repo_ours = (repo / ".git" / REPO_MARKER).exists() or meta.get("repo") == str(repo)
    _clear(repo, "repository", repo_ours, REPO_MARKER)
    _clear(state_dir, "emulator state", bool(meta), META_FILE)


def _clear(path: Path, what: str, ours: bool, marker: str) -> None:
    if not path.exists() or not any(path.iterdir()):
        return
    if not ours:
        raise SimulationError(
            f"{path}: refusing to replace this {what}: it is not empty and was not made by "
            f"the simulator (no {marker})"
        )
    shutil.rmtree(path)


def _branches(tl: Timeline) -> dict[str, int]:
    """The refs left at the end: main, hardshell and the recent or open features."""
    return {b: mark for b, mark in tl.tips.items() if b not in tl.deleted_branches}


def _write(path: Path, body: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
