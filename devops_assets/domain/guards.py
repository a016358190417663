"""The deploy policy: every rule a production deploy must pass, in one place.

``decide`` checks every rule (it does not stop at the first refusal), so an
audit row says all that was wrong, each refusal naming its rule and the
evidence. Nothing here can be switched off: there is no parameter, tag or
setting that skips a rule; callers supply facts, not exceptions.

Rules for every deploy:

- ``build``: the environment's worker built the commit, the build succeeded
  and uploaded a version (there is something proven to deploy);
- ``one_at_a_time``: no other deploy to the environment is running.

And for production:

- ``quality_gate``: every configured gate step has a record for the commit,
  and none failed or reported warnings;
- ``staging_verified``: the same commit was deployed to staging and its
  staging smoke tests passed (the latest smoke run of that commit decides);
- ``no_active_incident``: no incident of production is open;
- ``deployment_window``: now is inside a deployment window and outside every
  change freeze, both read in the team's time zone (so a window stays at the
  same wall-clock hours across daylight-saving changes);
- ``rollback_target``: a known-good version exists to roll back to.

Staging is where commits prove themselves: only the two rules for every deploy
hold it. A rollback (``decide_rollback``) is held by ``one_at_a_time`` and
``rollback_target`` alone: it is what ends an incident, so neither an open
incident nor a closed window may stop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

GATE_STATUSES = ("passed", "failed", "warning")
RULES = (
    "build",
    "quality_gate",
    "staging_verified",
    "no_active_incident",
    "deployment_window",
    "one_at_a_time",
    "rollback_target",
)
STAGING_RULES = ("build", "one_at_a_time")
ROLLBACK_RULES = ("one_at_a_time", "rollback_target")
# A D1 migration apply changes the environment like a deploy: the deploy rules that
# concern the moment (incident, window, lock) hold it; its own rules (staging first,
# clean ledger, distinct databases) are checked by ``delivery/d1.py``.
D1_RULES = ("no_active_incident", "deployment_window", "one_at_a_time")
D1_STAGING_RULES = ("one_at_a_time",)
# A configuration sync changes what serves, like a deploy of the same code.
SYNC_RULES = {"production": D1_RULES, "staging": D1_STAGING_RULES}


@dataclass(frozen=True)
class GateRecord:
    """One quality-gate step's result for one commit, as a CI step reported it."""

    commit_sha: str
    step: str
    status: str  # passed | failed | warning
    recorded_at: datetime


@dataclass(frozen=True)
class SmokeRun:
    """One run of an environment's smoke tests against a deployed commit."""

    environment: str
    commit_sha: str
    passed: bool
    at: datetime


@dataclass(frozen=True)
class Window:
    """Deployments allowed on ``weekdays`` (0 Monday … 6 Sunday) from ``start`` to
    ``end`` wall-clock time in the team's zone (``end`` excluded)."""

    weekdays: frozenset[int]
    start: time
    end: time

    def holds(self, local: datetime) -> bool:
        return local.weekday() in self.weekdays and self.start <= local.time() < self.end


@dataclass(frozen=True)
class Freeze:
    """No production deploys from ``start`` to ``end`` (aware instants)."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class Facts:
    """What is known when a deploy is requested."""

    environment: str
    commit_sha: str
    now: datetime
    timezone: str
    gate_steps: Sequence[str]
    gate: Sequence[GateRecord] = ()
    staging_deployed: frozenset[str] = frozenset()  # commits deployed to staging
    smoke_runs: Sequence[SmokeRun] = ()
    open_incidents: Sequence[str] = ()  # ids of open incidents of the environment
    windows: Sequence[Window] = ()
    freezes: Sequence[Freeze] = ()
    running_deploys: Sequence[str] = ()  # run ids of other deploys to the environment
    known_good_version: str | None = None
    worker: str = ""
    build_uuid: str | None = None  # the newest build of the commit on the worker
    build_state: str | None = None  # success, fail, cancelled…, or running/queued
    version_id: str | None = None  # the version that build uploaded


@dataclass(frozen=True)
class Refusal:
    rule: str
    evidence: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    checked: tuple[str, ...]
    refusals: tuple[Refusal, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        if self.allowed:
            return f"allowed: {', '.join(self.checked)} passed"
        return "refused: " + "; ".join(f"{r.rule}: {r.evidence}" for r in self.refusals)


def decide(facts: Facts) -> Decision:
    """Check every rule that applies to ``facts.environment``; allowed only when none
    refuses."""
    rules = RULES if facts.environment == "production" else STAGING_RULES
    return _apply(facts, rules)


def decide_rollback(facts: Facts) -> Decision:
    """Check the rules a rollback must pass (``known_good_version`` is its target)."""
    return _apply(facts, ROLLBACK_RULES)


def decide_d1(facts: Facts) -> Decision:
    """Check the deploy rules a D1 migration apply shares with a deploy."""
    return _apply(facts, D1_RULES if facts.environment == "production" else D1_STAGING_RULES)


def decide_sync(facts: Facts) -> Decision:
    """Check the deploy rules a configuration sync shares with a deploy."""
    return _apply(facts, SYNC_RULES.get(facts.environment, D1_STAGING_RULES))


def _apply(facts: Facts, rules: tuple[str, ...]) -> Decision:
    if facts.now.tzinfo is None:
        raise ValueError(f"facts.now must carry a UTC offset, got {facts.now.isoformat()}")
    refusals = []
    for rule in rules:
        problem = _CHECKS[rule](facts)
        if problem is not None:
            refusals.append(Refusal(rule, problem))
    return Decision(not refusals, rules, tuple(refusals))


def _build(facts: Facts) -> str | None:
    short, worker = facts.commit_sha[:12], facts.worker or facts.environment
    if facts.build_uuid is None:
        return f"worker {worker} has no build of commit {short}"
    if facts.build_state != "success":
        state = facts.build_state or "unknown"
        return f"build {facts.build_uuid} of commit {short} on {worker}: {state}, not success"
    if facts.version_id is None:
        return f"build {facts.build_uuid} of commit {short} on {worker} uploaded no version"
    return None


def _quality_gate(facts: Facts) -> str | None:
    latest: dict[str, GateRecord] = {}
    for record in sorted(facts.gate, key=lambda r: r.recorded_at):
        if record.commit_sha == facts.commit_sha:
            latest[record.step] = record
    missing = [s for s in facts.gate_steps if s not in latest]
    bad = [f"{s} {latest[s].status}" for s in facts.gate_steps if s in latest]
    bad = [b for b in bad if not b.endswith(" passed")]
    if not missing and not bad:
        return None
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [", ".join(bad)] if bad else []
    return f"commit {facts.commit_sha[:12]}: {'; '.join(parts)}"


def _staging_verified(facts: Facts) -> str | None:
    if facts.commit_sha not in facts.staging_deployed:
        return f"commit {facts.commit_sha[:12]} was never deployed to staging"
    runs = [
        r
        for r in facts.smoke_runs
        if r.environment == "staging" and r.commit_sha == facts.commit_sha
    ]
    if not runs:
        return f"commit {facts.commit_sha[:12]} has no staging smoke run"
    latest = max(runs, key=lambda r: r.at)
    if not latest.passed:
        return f"the latest staging smoke run ({latest.at.isoformat()}) failed"
    return None


def _no_active_incident(facts: Facts) -> str | None:
    if facts.open_incidents:
        return f"open incident(s) in {facts.environment}: {', '.join(facts.open_incidents)}"
    return None


def _deployment_window(facts: Facts) -> str | None:
    local = facts.now.astimezone(ZoneInfo(facts.timezone))
    for freeze in facts.freezes:
        if freeze.start <= facts.now < freeze.end:
            return (
                f"change freeze until {freeze.end.astimezone(local.tzinfo).isoformat()} "
                f"({freeze.reason})"
            )
    if not any(window.holds(local) for window in facts.windows):
        return f"{local.strftime('%A %H:%M')} {facts.timezone} is outside every deployment window"
    return None


def _one_at_a_time(facts: Facts) -> str | None:
    if facts.running_deploys:
        return (
            f"another deploy to {facts.environment} is running: {', '.join(facts.running_deploys)}"
        )
    return None


def _rollback_target(facts: Facts) -> str | None:
    if facts.known_good_version is None:
        return f"no known-good version of {facts.environment} to roll back to"
    return None


_CHECKS = {
    "build": _build,
    "quality_gate": _quality_gate,
    "staging_verified": _staging_verified,
    "no_active_incident": _no_active_incident,
    "deployment_window": _deployment_window,
    "one_at_a_time": _one_at_a_time,
    "rollback_target": _rollback_target,
}
