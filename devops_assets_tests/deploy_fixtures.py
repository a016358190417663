"""A seeded demo workspace per test, and the moves a deploy test makes in it.

The workspace (git repository and emulator state) is seeded once per session
and copied for each test, so a test may push, deploy and tag freely. The
warehouse is a SQLite file inside the copy; the emulator is the demo's,
in-process, with its journal in the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from devops_assets.config import DEMO_CONFIG, PlatformConfig, load_config
from devops_assets.delivery.runtime import Runtime, open_runtime
from devops_assets.demo.scenario import BAD, GOOD, commit_file
from devops_assets.domain.guards import GateRecord
from devops_assets.emulator import seed_workspace
from devops_assets.emulator.app import load_app
from devops_assets.store.warehouse import Warehouse

__all__ = ["BAD", "GOOD", "World", "seeded_template", "world"]


@dataclass
class World:
    config: PlatformConfig
    home: Path

    @property
    def repo(self) -> Path:
        return Path(self.config.repository)

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.config.warehouse_url)

    def app(self):
        return load_app(self.config.cloudflare.emulator_state, persist=True)

    def runtime(self, run_id: str = "run-1", active: tuple[str, ...] = ()) -> Runtime:
        return open_runtime(
            self.config, self.warehouse, None, self.repo, run_id, lambda r: r in active
        )

    def push(self, change=GOOD, serves="ok", outcome: str | None = "success") -> str:
        app = self.app()
        path, content, message = change
        sha = commit_file(self.repo, "hardshell", path, content, message, app.now())
        app.push("hardshell", sha, message, outcome=outcome, serves=serves)
        return sha

    def gate(self, sha: str, status: str = "passed", at: datetime | None = None) -> None:
        at = at or self.app().now()
        self.warehouse.record_gate(
            [GateRecord(sha, s, status, at) for s in self.config.quality_gate]
        )

    def deployments(self, worker: str) -> list[dict]:
        app = self.app()
        return sorted(app.state.deployments.get(worker, []), key=lambda d: d["created_on"])

    def notices(self) -> list[str]:
        path = Path(self.config.deploy.notify_file)
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["metadata"]["event_type"] for line in lines]

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.repo), *args], capture_output=True, check=True, text=True
        )
        return done.stdout.strip()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("deploy-template")
    patch = pytest.MonkeyPatch()
    patch.setenv("DEVOPS_ASSETS_HOME", str(home))
    patch.delenv("DEVOPS_ASSETS_DB_URL", raising=False)
    try:
        seed_workspace(load_config(DEMO_CONFIG))
    finally:
        patch.undo()
    return home


@pytest.fixture
def world(seeded_template, tmp_path, monkeypatch) -> World:
    home = tmp_path / "home"
    shutil.copytree(seeded_template, home, symlinks=True)
    monkeypatch.setenv("DEVOPS_ASSETS_HOME", str(home))
    monkeypatch.delenv("DEVOPS_ASSETS_DB_URL", raising=False)
    return World(load_config(DEMO_CONFIG), home)
