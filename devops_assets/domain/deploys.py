"""The records deploys leave behind: smoke runs, releases and pushed commits
waiting for their build. The warehouse keeps them (``store/ledger.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

REQUEST_STATES = ("waiting", "claimed", "launched", "build_failed", "superseded")


@dataclass(frozen=True)
class SmokeRecord:
    """One smoke run against ``version_id`` while it served ``percentage`` of
    ``environment`` (the checks asked that version by the version-override header)."""

    environment: str
    version_id: str
    commit_sha: str
    percentage: float
    passed: bool
    at: datetime
    run_id: str
    results: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Release:
    """A production release: the annotated tag on the deployed commit."""

    tag: str
    version: str
    commit_sha: str
    environment: str
    released_at: datetime
    previous_tag: str | None
    bump: str
    changelog: str
    version_id: str
    rollback_target: str | None
    run_id: str
    pushed: bool = False


@dataclass(frozen=True)
class DeployRequest:
    """A commit pushed to an environment's branch, and where its deploy stands."""

    branch: str
    commit_sha: str
    environment: str
    requested_at: datetime
    state: str = "waiting"
    detail: str = ""
    updated_at: datetime | None = None
    claimed_by: str = ""  # the sensor that starts its run, once the build succeeded

    @property
    def request_id(self) -> str:
        return f"{self.branch}:{self.commit_sha}"
