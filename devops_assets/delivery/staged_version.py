"""Change a Worker's secrets on a new version, test it, then promote it.

``stage_and_promote`` is the one way this platform changes what a deployed
Worker carries without a build (secret rotation, configuration sync):

1. precondition: the latest version is the deployed one, serving 100 %
   (``versions/latest`` copies code and config from the latest version, so an
   uploaded-but-undeployed version would otherwise ship with the change). One
   exception: a latest version this platform staged and abandoned, made from
   the version serving now, whose changed names the new change sets again —
   rolling forward over it ships nothing it did not mean to;
2. ``PATCH …/versions/latest`` → version V′, not deployed (recorded as ours). Its
   message carries the request's (or run's) tag. When the PATCH fails, the answer
   may be lost after Cloudflare made V′: the versions are listed again, and a
   single new latest version carrying the tag is recorded as ours, abandoned, so
   the retry rolls forward over it instead of being refused;
3. deployment {V′ 0.01 %, V 99.99 %}; the smoke tests run against V′ through
   the version-override header (which only reaches versions in the current
   deployment). The API's smallest share is 0.01 % (the OpenAPI schema's minimum,
   and the emulator refuses 0 with 10021): for the seconds the test takes, one
   request in ten thousand may meet V′ before it is proven — the price of a test
   through the real edge;
4. passed: deployment {V′ 100 %}, smoke-tested again; failed (or any error):
   V serves 100 % again and V′ is recorded as abandoned.

The changes' values are never logged, recorded or put in an error message:
only names and version ids leave this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from devops_assets.delivery.deployer import smoke_test
from devops_assets.delivery.runtime import Runtime
from devops_assets.domain.deploys import SmokeRecord
from devops_assets.domain.secrets import VersionMade
from devops_assets.sources.cloudflare import CloudflareError

TEST_SHARE = 0.01  # percent of traffic the staged version gets while it is tested
MESSAGE_LIMIT = 100  # characters of ``workers/message`` Cloudflare keeps


class StageRefused(RuntimeError):
    """A precondition failed; nothing was changed."""


@dataclass
class StagedOutcome:
    environment: str
    worker: str
    previous_version: str
    staged_version: str | None = None
    promoted: bool = False
    smoke: list[SmokeRecord] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    failure: str = ""
    needs_attention: bool = False


def serving_alone(deployments: list[dict]) -> str | None:
    """The version the newest deployment serves at 100 %, if exactly one."""
    if not deployments:
        return None
    newest = max(deployments, key=lambda d: d["created_on"])
    shares = [(v, p) for v, p in newest["versions"] if p > 0]
    if len(shares) == 1 and shares[0][1] >= 100:
        return shares[0][0]
    return None


def precondition(rt: Runtime, worker: str, names: set[str]) -> str:
    """The version serving 100 %, after checking the latest version may be built
    on (see the module docstring); raises StageRefused otherwise."""
    return _precondition(rt, worker, names)[0]


def _precondition(rt: Runtime, worker: str, names: set[str]) -> tuple[str, int]:
    """``precondition``'s serving version, and the number of the latest version."""
    deployments = rt.client.list_deployments(worker)
    serving = serving_alone(deployments)
    if serving is None:
        raise StageRefused(
            f"{worker}: no single version serves 100 % (a rollout in progress?); "
            "a change now would be built on a version not fully deployed"
        )
    versions = rt.client.list_versions(worker)
    if not versions:
        raise StageRefused(f"{worker}: no versions")
    newest = max(versions, key=lambda v: v["number"])
    latest, number = newest["id"], newest["number"]
    if latest == serving:
        return serving, number
    ours = {v.version_id: v for v in rt.warehouse.secrets.versions(worker)}
    made = ours.get(latest)
    if (
        made is not None
        and made.outcome == "abandoned"
        and made.based_on == serving
        and set(made.names) <= names
    ):
        rt.log.info(
            "%s: latest version %s is an abandoned attempt on %s; rolling forward over it",
            worker,
            latest,
            serving,
        )
        return serving, number
    raise StageRefused(
        f"{worker}: the latest version {latest} is not the deployed one ({serving} serves "
        "100 %); a new version would ship its undeployed code. Deploy that version, or "
        "push a commit and deploy its build, then try again"
    )


def stage_and_promote(
    rt: Runtime,
    environment: str,
    changes: Mapping[str, str | None],
    message: str,
    actor: str,
    request_id: str = "",
) -> StagedOutcome:
    """Stage ``changes`` (name → new value, None removes) on a new version of the
    environment's worker, smoke-test it at 0.01 % and promote it (module docstring).
    Raises StageRefused before any change; otherwise returns the outcome, with
    ``promoted`` False when the previous version serves again."""
    worker = rt.config.environment(environment).worker
    names = set(changes)
    previous, latest_number = _precondition(rt, worker, names)
    outcome = StagedOutcome(environment, worker, previous)
    tag = request_id or rt.run_id
    mark = tag_mark(tag)
    try:
        staged = rt.client.put_version_secrets(worker, changes, tagged(message, mark))
    except CloudflareError as exc:
        outcome.failure = f"staging the new version failed: {_api(exc)}"
        _claim_lost(rt, outcome, names, tag, mark, latest_number)
        return outcome
    outcome.staged_version = staged.id
    rt.warehouse.secrets.record_version(
        VersionMade(worker, staged.id, previous, tuple(sorted(names)), tag, rt.now(), "staged")
    )
    outcome.steps.append(f"staged {staged.id} (not deployed)")
    rt.log.info(
        "%s: staged version %s for %s (by %s)", worker, staged.id, ", ".join(sorted(names)), actor
    )
    try:
        rt.client.create_deployment(
            worker,
            [(staged.id, TEST_SHARE), (previous, 100.0 - TEST_SHARE)],
            message=f"test {tag}"[:100],
        )
        outcome.steps.append(f"deployed {staged.id} at {TEST_SHARE:g} % beside {previous}")
        test = smoke_test(rt, environment, worker, staged.id, None, TEST_SHARE)
        outcome.smoke.append(test)
        if not test.passed:
            outcome.failure = "smoke tests of the staged version failed: " + _failed(test)
            _restore(rt, outcome, tag)
            return outcome
        rt.client.create_deployment(worker, [(staged.id, 100.0)], message=f"promote {tag}"[:100])
        outcome.steps.append(f"promoted {staged.id} to 100 %")
        after = smoke_test(rt, environment, worker, staged.id, None, 100.0)
        outcome.smoke.append(after)
        if not after.passed:
            outcome.failure = "smoke tests after promotion failed: " + _failed(after)
            _restore(rt, outcome, tag, force=True)
            return outcome
    except (CloudflareError, httpx.HTTPError) as exc:
        outcome.failure = f"testing or promoting {staged.id} failed: {_api(exc)}"
        _restore(rt, outcome, tag, force=True)
        return outcome
    outcome.promoted = True
    rt.warehouse.secrets.record_version(
        VersionMade(worker, staged.id, previous, tuple(sorted(names)), tag, rt.now(), "promoted")
    )
    return outcome


def tag_mark(tag: str) -> str:
    """How a version's message names the request or run that made it: ``(tag)``, or
    for a tag too long to leave room for the message, ``(#`` its digest ``)``."""
    if len(tag) <= 64:
        return f"({tag})"
    return f"(#{hashlib.sha256(tag.encode()).hexdigest()[:16]})"


def tagged(message: str, mark: str) -> str:
    """``message`` within Cloudflare's limit, ending with ``mark`` unless it holds it."""
    if mark in message and len(message) <= MESSAGE_LIMIT:
        return message
    room = MESSAGE_LIMIT - len(mark) - 1
    return f"{message[:room].rstrip()} {mark}".lstrip()


def _claim_lost(
    rt: Runtime, outcome: StagedOutcome, names: set[str], tag: str, mark: str, latest: int
) -> None:
    """After a failed PATCH: if Cloudflare made the version anyway (the answer was
    lost), it is the one new version since ``latest``, made by a secret change
    whose message carries ``mark``. Record it as ours, abandoned (it is not
    deployed), so the next attempt may roll forward over it."""
    worker = outcome.worker
    try:
        versions = rt.client.list_versions(worker)
    except (CloudflareError, httpx.HTTPError) as exc:
        outcome.failure += f"; the versions could not be read again: {_api(exc)}"
        return
    newer = [v for v in versions if v["number"] > latest]
    if len(newer) != 1:
        if newer:
            outcome.failure += f"; {len(newer)} versions were made meanwhile: none is taken as ours"
        return
    notes = newer[0].get("annotations") or {}
    message = str(notes.get("workers/message") or "")
    if notes.get("workers/triggered_by") != "secret" or mark not in message:
        outcome.failure += f"; the new latest version {newer[0]['id']} is not ours"
        return
    made = newer[0]["id"]
    outcome.staged_version = made
    outcome.steps.append(f"staged {made} (its answer was lost; not deployed)")
    outcome.failure += f"; Cloudflare made {made} anyway: recorded as abandoned"
    rt.warehouse.secrets.record_version(
        VersionMade(
            worker, made, outcome.previous_version, tuple(sorted(names)), tag, rt.now(), "abandoned"
        )
    )


def _restore(rt: Runtime, outcome: StagedOutcome, tag: str, force: bool = False) -> None:
    """The previous version back at 100 %; the staged one recorded as abandoned (or,
    when even that fails, as needing attention)."""
    worker, previous, staged = outcome.worker, outcome.previous_version, outcome.staged_version
    try:
        rt.client.create_deployment(
            worker, [(previous, 100.0)], message=f"restore after {tag}"[:100], force=force
        )
        outcome.steps.append(f"{previous} serves 100 % again")
        state = "abandoned"
    except CloudflareError as exc:
        outcome.failure += f"; putting {previous} back failed too: {_api(exc)}"
        outcome.needs_attention = True
        state = "needs_attention"
    rt.warehouse.secrets.record_version(
        VersionMade(worker, staged, previous, _names(rt, worker, staged), tag, rt.now(), state)
    )


def _names(rt: Runtime, worker: str, version_id: str) -> tuple[str, ...]:
    for made in rt.warehouse.secrets.versions(worker):
        if made.version_id == version_id:
            return made.names
    return ()


def _failed(record: SmokeRecord) -> str:
    return "; ".join(f"{r['name']}: {r['reason']}" for r in record.results if not r["passed"])


def _api(exc: Exception) -> str:
    """What an API error says, for an audit row: code and status, never a body sent."""
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__} (code {code}, HTTP {status}): {str(exc)[:300]}"
