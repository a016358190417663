"""The records a simulated history is made of, before git gives commits their shas.

Commits are numbered by fast-import marks; times are aware datetimes. A phase
time after the history's end is None: that build was still going.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devops_assets.emulator.story import Person


@dataclass(frozen=True)
class EnvSpec:
    """One deployed environment: its worker script, Builds tag and branch."""

    name: str
    worker: str
    tag: str
    branch: str


@dataclass
class SimCommit:
    """One commit; ``files`` holds the full new text of each path it changes."""

    mark: int
    parents: tuple[int, ...]
    branch: str
    author: Person
    committer: Person
    author_time: datetime
    commit_time: datetime
    subject: str
    body: str
    files: dict[str, str]

    @property
    def message(self) -> str:
        return f"{self.subject}\n\n{self.body}\n" if self.body else f"{self.subject}\n"


@dataclass
class PlannedIncident:
    """A bad deployment to stage: on or after ``day``, fixed by rollback or not."""

    day: int
    environment: str
    rollback: bool


@dataclass
class SimBuild:
    """One Workers Builds build; phase times after the history's end are None."""

    uuid: str
    env: EnvSpec
    mark: int
    trigger_source: str
    created_on: datetime
    initializing_on: datetime | None
    running_on: datetime | None
    stopped_on: datetime | None
    status: str
    outcome: str | None
    failure: str | None = None
    version_id: str | None = None
    promoted: int | None = None  # production: the hardshell commit the merge brought in
    bad: PlannedIncident | None = None
    hotfix: bool = False


@dataclass
class SimVersion:
    id: str
    worker: str
    number: int
    created_on: datetime
    build_uuid: str
    message: str
    author_email: str
    triggered_by: str = "upload"
    secret: str | None = None  # the secret a ``secret`` version put


@dataclass
class SimDeployment:
    id: str
    env: EnvSpec
    created_on: datetime
    version_id: str
    mark: int
    kind: str  # deploy | rollback
    message: str
    author_email: str


@dataclass
class SimTag:
    """A git tag on commit ``mark``; a lightweight one has no tagger and no message.

    ``time`` is the tagger date, or for a lightweight tag its commit's
    committer date (what ``git for-each-ref`` reports for either).
    """

    name: str
    mark: int
    time: datetime
    tagger: Person | None = None
    message: str = ""
    deployment_id: str | None = None

    @property
    def annotated(self) -> bool:
        return self.tagger is not None


@dataclass
class SimIncident:
    id: str
    environment: str
    opened_at: datetime
    resolved_at: datetime | None
    deployment_id: str
    title: str


def ms(value: datetime) -> datetime:
    """``value`` cut to whole milliseconds, the precision the Builds API shows."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
