"""Deploy and roll back, with every rule checked and every decision audited.

A deploy takes the environment's lock, gathers facts and asks the policy
(``domain/guards.py``). Refused: the audit log says which rules and why, a
notice goes out, nothing is deployed. Allowed: the version goes out (by the
configured steps in production, each step smoke-tested against the new
version through the version-override header), and a production deploy ends in
a release. A failed production smoke test at any step puts the known-good
version back at 100 % at once. The lock is given back however the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from devops_assets.delivery import audit
from devops_assets.delivery import facts as gather
from devops_assets.delivery.releasing import make_release
from devops_assets.delivery.runtime import VERSION_OVERRIDE, Runtime
from devops_assets.domain import guards, rollout
from devops_assets.domain.deploys import Release, SmokeRecord
from devops_assets.domain.secrets import failed_values
from devops_assets.sources.cloudflare import CloudflareError
from devops_assets.sources.events import EventsError
from devops_assets.sources.git import GitError
from devops_assets.sources.git_refs import resolve_commit
from devops_assets.sources.smoke import run_smoke
from devops_assets.sources.statuspage import StatuspageError
from devops_assets.store.warehouse import WarehouseWriteError

ENVIRONMENTS = ("staging", "production")
TEXT_LIMIT = 500
# What reading the facts may raise: each refuses the deploy, audited.
FACT_ERRORS = (CloudflareError, StatuspageError, EventsError, GitError, httpx.HTTPError, OSError)


class DeployInputError(ValueError):
    """A request the deployer cannot read; the message names the field."""


class DeployRefused(RuntimeError):
    """The policy refused; ``decision`` holds each rule and its evidence."""

    def __init__(self, decision: guards.Decision):
        super().__init__(decision.summary())
        self.decision = decision


class DeployFailed(RuntimeError):
    """The deploy started and did not finish; the message says what was done."""


@dataclass
class Outcome:
    action: str
    environment: str
    commit_sha: str | None
    version_id: str | None
    decision: guards.Decision
    steps: list[float] = field(default_factory=list)
    smoke: list[SmokeRecord] = field(default_factory=list)
    release: Release | None = None
    rolled_back_to: str | None = None


def check_request(environment: str, requested_by: str, reason: str) -> None:
    if environment not in ENVIRONMENTS:
        raise DeployInputError(
            f"environment: one of {', '.join(ENVIRONMENTS)}, got {environment!r}"
        )
    for name, value in (("requested_by", requested_by), ("reason", reason)):
        if not value.strip() or len(value) > TEXT_LIMIT or not value.isprintable():
            raise DeployInputError(
                f"{name}: one line of 1 to {TEXT_LIMIT} printable characters, got {value[:80]!r}"
            )


def deploy(rt: Runtime, environment: str, commit: str, requested_by: str, reason: str) -> Outcome:
    """Deploy ``commit`` to ``environment`` (see the module docstring)."""
    check_request(environment, requested_by, reason)
    try:
        sha = resolve_commit(rt.repo, commit)
    except GitError as exc:  # the message names the ref and the repository
        raise DeployInputError(f"commit: {exc}") from None
    env = rt.config.environment(environment)
    ledger = rt.warehouse.deploys
    holder = ledger.acquire(environment, rt.run_id, requested_by, sha, rt.now(), rt.is_active)
    try:
        try:
            facts, state = _facts(rt, environment, sha, holder)
            carried = _failed_rotation_values(rt, state.worker, facts.version_id)
        except FACT_ERRORS as exc:
            refuse_unknown(rt, "deploy", requested_by, environment, sha, reason, exc)
        decision = guards.decide(facts)
        audit.decided(rt, "deploy", requested_by, environment, sha, reason, decision, facts)
        if not decision.allowed:
            rt.notify("deploy_refused", environment, sha, decision.summary())
            raise DeployRefused(decision)
        rt.notify("deploy_started", environment, sha, f"{requested_by}: {reason}")
        version = facts.version_id
        if carried:
            _warn_failed_rotation_values(rt, requested_by, environment, sha, version, carried)
        outcome = Outcome("deploy", environment, sha, version, decision)
        _roll_out(rt, outcome, state, facts.known_good_version, requested_by, reason)
        if environment == "production":
            outcome.release = _release(rt, outcome, facts.known_good_version, requested_by)
            text = f"{outcome.release.tag} serves 100 % of {env.worker}"
            rt.notify("promoted", environment, sha, text)
        else:
            rt.notify("deployed", environment, sha, f"version {version} passed its smoke tests")
        audit.finished(rt, "deploy", requested_by, environment, sha, "succeeded", reason, outcome)
        return outcome
    finally:
        if holder is None:
            ledger.release(environment, rt.run_id)


def _facts(
    rt: Runtime, environment: str, sha: str, holder: str | None
) -> tuple[guards.Facts, gather.WorkerState]:
    """Everything the policy decides on, read now (incidents only for production,
    the one environment the incident rule holds)."""
    build, version = gather.commit_build(rt, environment, sha)
    state = gather.worker_state(rt, environment)
    staged, smoke_runs = gather.staging_evidence(rt)
    production = environment == "production"
    settings = rt.config.deploy
    facts = guards.Facts(
        environment=environment,
        commit_sha=sha,
        now=rt.now(),
        timezone=rt.config.timezone,
        gate_steps=rt.config.quality_gate,
        gate=gather.gate_records(rt, sha) if production else (),
        staging_deployed=staged,
        smoke_runs=smoke_runs,
        open_incidents=gather.open_incidents(rt, environment) if production else (),
        windows=settings.windows,
        freezes=settings.freezes,
        running_deploys=(holder,) if holder else (),
        known_good_version=state.known_good(exclude=version),
        worker=rt.config.environment(environment).worker,
        build_uuid=build.build_uuid if build else None,
        build_state=(build.outcome or build.status) if build else None,
        version_id=version,
    )
    return facts, state


def _failed_rotation_values(rt: Runtime, worker: str, version: str | None) -> list[dict]:
    """The secrets ``version`` carries with a value a rotation of ours staged and never
    promoted (``domain.secrets.failed_values``): a build uploaded after a failed
    rotation copies the abandoned version's secrets. Names and ids only."""
    if version is None:
        return []
    found = failed_values(
        rt.client.list_versions(worker), rt.warehouse.secrets.versions(worker), [version]
    )
    return [
        {"secret": name, "request_id": made.request_id, "staged_version": made.version_id}
        for name, made in sorted(found.items())
    ]


def _warn_failed_rotation_values(
    rt: Runtime, actor: str, environment: str, sha: str, version: str, carried: list[dict]
) -> None:
    """The deploy goes on (its smoke tests exercise the worker with that value), but
    the audit log and a notice say which secret carries which failed request's value."""
    worker = rt.config.environment(environment).worker
    text = "; ".join(
        f"{c['secret']} carries the value staged by failed {c['request_id']} "
        f"(version {c['staged_version']}, never promoted)"
        for c in carried
    )
    text = f"version {version} of {worker}: {text}; rotate again"
    detail = {"version": version, "failed_rotation_values": carried}
    audit._append(rt, "deploy", actor, environment, sha, "warning", text[: TEXT_LIMIT * 2], detail)
    # the failed request's own notice kind: its approvers are the ones to act
    for request_id in dict.fromkeys(c["request_id"] for c in carried):
        mine = [c for c in carried if c["request_id"] == request_id]
        names = ", ".join(c["secret"] for c in mine)
        rt.notify(
            "secret_rotation_failed",
            environment,
            request_id,
            f"deploying {sha[:12]} (version {version} of {worker}) serves {names} with the "
            f"value staged by failed {request_id} (version {mine[0]['staged_version']}), "
            "never promoted: approve and retry that rotation",
        )


def refuse_unknown(
    rt, action, actor, environment, subject, reason, exc: Exception, event="deploy_refused"
) -> None:
    """A fact that cannot be read refuses the deploy (never assumed fine): audited
    and notified like any refusal (``event``: the notice's kind, the caller's own)."""
    refusal = guards.Refusal("facts", f"could not be read: {exc}"[:TEXT_LIMIT])
    decision = guards.Decision(False, ("facts",), (refusal,))
    facts = guards.Facts(environment, subject, rt.now(), rt.config.timezone, ())
    audit.decided(rt, action, actor, environment, subject, reason, decision, facts)
    rt.notify(event, environment, subject or "-", decision.summary())
    raise DeployRefused(decision)


def _release(rt: Runtime, outcome: Outcome, good: str | None, actor: str) -> Release:
    """The release of a deploy now serving 100 %; a release that cannot be made is
    audited and notified (the new version stays: it passed every smoke test)."""
    try:
        return make_release(
            rt, outcome.environment, outcome.commit_sha, outcome.version_id, good, actor
        )
    except (GitError, WarehouseWriteError) as exc:
        text = f"version {outcome.version_id} serves 100 % but no release was made: {exc}"
        sha = outcome.commit_sha
        audit.finished(rt, "deploy", actor, outcome.environment, sha, "failed", text, outcome)
        rt.notify("deploy_failed", outcome.environment, sha, text)
        raise DeployFailed(text) from None


def _roll_out(
    rt: Runtime,
    outcome: Outcome,
    state: gather.WorkerState,
    good: str | None,
    actor: str,
    reason: str,
) -> None:
    environment, version = outcome.environment, outcome.version_id
    percentages = rt.config.deploy.rollout_percentages
    # traffic moves from the known-good version (not from whatever serves: a rollout
    # a crash left half done must not become the fallback)
    production = environment == "production"
    latest = state.deployments[-1]["versions"] if state.deployments else []
    serves_all = latest[0][0] if len(latest) == 1 else None
    old = serves_all if serves_all == version or not production else (good or state.serving)
    steps = rollout.plan(version, old, percentages if production else [100])
    for step in steps:
        share = step[0][1]
        rt.client.create_deployment(
            state.worker, list(step), message=f"devops-assets {rt.run_id[:8]}: {reason}"[:100]
        )
        outcome.steps.append(share)
        rt.log.info("%s: version %s serves %g %%", state.worker, version, share)
        record = smoke_test(rt, environment, state.worker, version, outcome.commit_sha, share)
        outcome.smoke.append(record)
        if record.passed:
            continue
        failed = "; ".join(f"{r['name']}: {r['reason']}" for r in record.results if not r["passed"])
        if environment != "production" or good is None:
            audit.finished(
                rt, "deploy", actor, environment, outcome.commit_sha, "failed", failed, outcome
            )
            rt.notify("deploy_failed", environment, outcome.commit_sha, f"smoke failed: {failed}")
            raise DeployFailed(
                f"{environment} smoke tests of version {version} failed at {share:g} %: {failed}"
            )
        rt.log.warning(
            "smoke failed at %g %% (%s): rolling back to %s at 100 %%", share, failed, good
        )
        rt.client.create_deployment(
            state.worker, [(good, 100.0)], message=f"rollback: smoke failed at {share:g} %"[:100]
        )
        outcome.rolled_back_to = good
        after = smoke_test(rt, environment, state.worker, good, None, 100.0)
        outcome.smoke.append(after)
        text = f"smoke failed at {share:g} % ({failed}); version {good} serves 100 % again"
        if not after.passed:
            text += ", and its own smoke test failed too: look at production now"
        audit.finished(
            rt, "deploy", actor, environment, outcome.commit_sha, "rolled_back", text, outcome
        )
        rt.notify("rolled_back", environment, outcome.commit_sha, text)
        raise DeployFailed(f"production {text}")


def smoke_test(
    rt: Runtime, environment: str, worker: str, version: str, sha: str | None, share: float
) -> SmokeRecord:
    headers = {VERSION_OVERRIDE: f'{worker}="{version}"'}
    with rt.http(headers) as client:
        results = run_smoke(rt.base_url(environment), rt.config.deploy.smoke, client)
    for result in results:
        rt.log.info("smoke %s on %s: %s", result.name, environment, result.reason)
    record = SmokeRecord(
        environment=environment,
        version_id=version,
        commit_sha=sha or "",
        percentage=share,
        passed=all(r.passed for r in results),
        at=rt.now(),
        run_id=rt.run_id,
        results=tuple(
            {
                "name": r.name,
                "passed": r.passed,
                "reason": r.reason,
                "status": r.status,
                "seconds": round(r.seconds, 3),
            }
            for r in results
        ),
    )
    rt.warehouse.deploys.record_smoke(record)
    return record
