"""Test controls that change the builds an emulator app serves.

A test adds a build that is still running, lets the code under test see it,
then finishes it and checks the outcome is fetched again. These are Python
methods of the app object only; nothing here is reachable over HTTP.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from devops_assets.emulator.apistate import make_build
from devops_assets.emulator.state import iso_ms


class BuildControls:
    """Mixed into the app, which provides ``state``, ``now`` and ``_lock``."""

    def add_build(
        self,
        worker: str,
        branch: str,
        commit_sha: str,
        *,
        status: str = "running",
        outcome: str | None = None,
        created_on: datetime | None = None,
        commit_message: str = "chore: emulator test build",
        trigger_source: str = "push",
        build_uuid: str | None = None,
    ) -> dict:
        """Add a build of ``worker`` (a script name); returns the build object."""
        tag = self.state.tag_of(worker)
        if tag is None:
            raise KeyError(f"add_build: no worker named {worker!r} in the emulator state")
        created = created_on or self.now() - timedelta(seconds=20)
        started = created + timedelta(seconds=12) if status in ("running", "stopped") else None
        stopped = started + timedelta(seconds=150) if status == "stopped" else None
        initializing = created + timedelta(seconds=1) if status != "queued" else None
        build = make_build(
            build_uuid or str(uuid.uuid4()),
            self.state.triggers[tag][0],
            status=status,
            outcome=outcome if status == "stopped" else None,
            phases=(created, initializing, started, stopped),
            branch=branch,
            commit_hash=commit_sha,
            message=commit_message,
            author="dev@moltworker.example",
            trigger_source=trigger_source,
        )
        with self._lock:
            self.state.builds[build["build_uuid"]] = build
            self.state.logs[build["build_uuid"]] = [
                [_ms(created), "Initializing build environment..."]
            ]
        return build

    def finish_build(
        self, build_uuid: str, outcome: str, stopped_on: datetime | None = None
    ) -> dict:
        """Stop a queued or running build with ``outcome``; returns the build object."""
        with self._lock:
            build = self.state.builds[build_uuid]
            running = build["running_on"] and datetime.fromisoformat(build["running_on"])
            stopped = stopped_on or max(self.now(), (running or self.now()) + timedelta(seconds=1))
            build["running_on"] = build["running_on"] or iso_ms(stopped - timedelta(seconds=60))
            build["initializing_on"] = build["initializing_on"] or build["created_on"]
            build.update(status="stopped", build_outcome=outcome, stopped_on=iso_ms(stopped))
            build["modified_on"] = build["stopped_on"]
            closing = "Success: Build completed" if outcome == "success" else f"Build {outcome}"
            self.state.logs.setdefault(build_uuid, []).append([_ms(stopped), closing])
            return build


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)
