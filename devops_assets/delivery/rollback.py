"""Roll an environment back: the known-good (or a chosen) version at 100 %.

A rollback is how an incident ends, so only ``one_at_a_time`` and
``rollback_target`` hold it (``domain/guards.py``); the target is smoke-tested
and a failed smoke test fails the run.
"""

from __future__ import annotations

import re
from dataclasses import replace

from devops_assets.delivery import audit
from devops_assets.delivery import facts as gather
from devops_assets.delivery.deployer import (
    FACT_ERRORS,
    DeployFailed,
    DeployInputError,
    DeployRefused,
    Outcome,
    check_request,
    refuse_unknown,
    smoke_test,
)
from devops_assets.delivery.releasing import RELEASE_TAG
from devops_assets.delivery.runtime import Runtime
from devops_assets.domain import guards

VERSION_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}")


def _release_version(rt: Runtime, environment: str, tag: str) -> str:
    """The Workers version a recorded release of ``environment`` deployed."""
    for release in rt.warehouse.deploys.releases():
        if release.tag == tag and release.environment == environment:
            return release.version_id
    raise DeployInputError(
        f"to_version: no release {tag} of {environment} is recorded (the release_notes "
        "asset lists them); give its Workers version id instead"
    )


def rollback(
    rt: Runtime, environment: str, to_version: str | None, requested_by: str, reason: str
) -> Outcome:
    """Serve ``to_version`` (default: the known-good version) at 100 %."""
    check_request(environment, requested_by, reason)
    if to_version is not None and to_version.strip():
        to_version = to_version.strip()
        if RELEASE_TAG.fullmatch(to_version):
            to_version = _release_version(rt, environment, to_version)
        elif not VERSION_ID.fullmatch(to_version):
            raise DeployInputError(
                "to_version: a Workers version id (letters, digits, '-') or a release tag "
                f"such as v2.29.1, got {to_version[:80]!r}"
            )
    ledger = rt.warehouse.deploys
    holder = ledger.acquire(environment, rt.run_id, requested_by, "", rt.now(), rt.is_active)
    try:
        try:
            state = gather.worker_state(rt, environment)
        except FACT_ERRORS as exc:
            refuse_unknown(rt, "rollback", requested_by, environment, "", reason, exc)
        target = to_version.strip() if to_version else state.known_good(exclude=state.serving)
        known = {v for d in state.deployments for v, _ in d["versions"]}
        if to_version and (target == state.serving or target not in known):
            target = None  # not something this worker served before, or serving already
        facts = guards.Facts(
            environment=environment,
            commit_sha=state.serving or "",
            now=rt.now(),
            timezone=rt.config.timezone,
            gate_steps=(),
            running_deploys=(holder,) if holder else (),
            known_good_version=target,
            worker=state.worker,
        )
        decision = guards.decide_rollback(facts)
        if to_version and target is None:
            evidence = (
                f"version {to_version[:80]} serves {environment} already"
                if to_version.strip() == state.serving
                else f"version {to_version[:80]} never served {state.worker}"
            )
            refusals = [r for r in decision.refusals if r.rule != "rollback_target"]
            decision = replace(
                decision, refusals=(*refusals, guards.Refusal("rollback_target", evidence))
            )
        audit.decided(
            rt, "rollback", requested_by, environment, state.serving or "", reason, decision, facts
        )
        if not decision.allowed:
            rt.notify("deploy_refused", environment, state.serving or "-", decision.summary())
            raise DeployRefused(decision)
        rt.client.create_deployment(
            state.worker, [(target, 100.0)], message=f"rollback: {reason}"[:100]
        )
        outcome = Outcome("rollback", environment, None, target, decision, [100.0])
        outcome.rolled_back_to = target
        checked = smoke_test(rt, environment, state.worker, target, None, 100.0)
        outcome.smoke.append(checked)
        if not checked.passed:
            failed = "; ".join(
                f"{r['name']}: {r['reason']}" for r in checked.results if not r["passed"]
            )
            text = (
                f"version {target} serves 100 % of {state.worker} but fails its smoke "
                f"test: {failed}"
            )
            audit.finished(
                rt, "rollback", requested_by, environment, target, "failed", text, outcome
            )
            rt.notify("deploy_failed", environment, target, text)
            raise DeployFailed(text)
        text = f"version {target} serves 100 % of {state.worker} ({reason})"
        audit.finished(
            rt, "rollback", requested_by, environment, target, "succeeded", text, outcome
        )
        rt.notify("rolled_back", environment, target, text)
        return outcome
    finally:
        if holder is None:
            ledger.release(environment, rt.run_id)
