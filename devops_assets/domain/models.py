"""The records every layer passes around.

Times are always timezone-aware ``datetime`` values; the offset a commit was
written with is kept beside the instant so nothing about the original clock is
lost. Sources build these, the warehouse stores them, the domain measures them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

BUILD_STATUSES = ("queued", "initializing", "running", "stopped")
BUILD_OUTCOMES = ("success", "fail", "skipped", "cancelled", "terminated")
DEPLOYMENT_KINDS = ("deploy", "rollback", "hotfix")
DEPLOYMENT_STATUSES = ("success", "failure")


@dataclass(frozen=True)
class Commit:
    """One git commit; parents are listed first parent first."""

    sha: str
    parents: tuple[str, ...]
    author_time: datetime
    commit_time: datetime
    author_email: str
    subject: str
    body: str = ""
    trailers: tuple[tuple[str, str], ...] = ()
    patch_id: str | None = None  # ``git patch-id --stable`` of its diff, when read

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


@dataclass(frozen=True)
class Tag:
    """A git tag peeled to its commit.

    ``time`` is the tagger date of an annotated tag, else the committer date of
    the commit it points to.
    """

    name: str
    sha: str
    time: datetime
    annotated: bool


@dataclass(frozen=True)
class Build:
    """One Workers Builds build of one worker.

    ``outcome`` is ``None`` until ``status`` is ``stopped``; such a build is
    fetched again on the next ingest because its outcome will still change.
    """

    build_uuid: str
    worker: str
    branch: str
    commit_sha: str
    status: str
    outcome: str | None
    created_on: datetime
    started_on: datetime | None = None
    stopped_on: datetime | None = None
    trigger_source: str = "push"

    @property
    def finished(self) -> bool:
        return self.status == "stopped" and self.outcome is not None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from the build starting to run to it stopping."""
        if self.started_on is None or self.stopped_on is None:
            return None
        return (self.stopped_on - self.started_on).total_seconds()


@dataclass(frozen=True)
class Deployment:
    """One deployment of a worker: a set of versions with traffic percentages.

    ``version_id`` is the version that got the largest share; ``commit_sha`` is
    the commit that version was built from, when a build names it. A rollback
    is a new 100 % deployment of a version that served earlier; a hotfix is a
    deployment made to repair the one before it. ``created_on`` is when the
    deployment took effect (finished). A deployment whose ``status`` is
    ``failure`` never served traffic: the metrics do not count it as deployed.
    """

    deployment_id: str
    worker: str
    environment: str
    created_on: datetime
    version_id: str
    percentage: float
    commit_sha: str | None
    kind: str = "deploy"
    author_email: str = ""
    message: str = ""
    status: str = "success"


@dataclass(frozen=True)
class Incident:
    """A production (or other environment's) incident, opened and maybe resolved.

    ``deployment_id`` names the deployment that caused it when the source knows;
    otherwise the engine attributes it (see docs/metrics.md).
    """

    incident_id: str
    environment: str
    created_at: datetime
    resolved_at: datetime | None = None
    deployment_id: str | None = None
    title: str = ""


@dataclass(frozen=True)
class MetricValue:
    """One number over one window: what ``dora_metrics`` and ``report`` emit.

    ``value`` is ``None`` when the window holds nothing to measure (for
    example a lead time with no deployed commits); that is not zero.
    """

    metric: str
    environment: str
    window_start: datetime
    window_end: datetime
    value: float | None
    unit: str
    worker: str = ""  # "" means every worker of the environment
    grain: str = "window"  # "window" (rolling), or a calendar "day", "week", "month"
    tier: str | None = None  # DORA tier ("elite" … "low") where the metric has one


@dataclass(frozen=True)
class HealthRow:
    """One line of the pipeline-health table: a metric against its target."""

    metric: str
    environment: str
    value: float | None
    unit: str
    comparator: str
    target: float
    status: str  # "met" | "missed" | "no data"
    window_start: datetime
    window_end: datetime
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    """One decision or action, allowed or refused: who asked for what, when, and why.

    ``subject`` is what it acted on (a commit, a version, a request id);
    ``detail`` holds the evidence (for a refusal: each rule and what it saw).
    Never a secret value: the audit table is read by people.
    """

    at: datetime
    actor: str
    action: str  # e.g. deploy, rollback, rotate_secret, approve
    environment: str
    subject: str
    outcome: str  # allowed | refused | succeeded | failed
    reason: str
    run_id: str = ""
    detail: dict = field(default_factory=dict)
