"""Configuration drift, read now, and ``sync``: what the job ``sync_config`` does.

Reading (used by the asset ``config_drift`` too):

- ``pair_findings``: staging against production in the wrangler file at the
  head of the production branch (``wrangler/drift.py``);
- ``deployed_view``: one environment's wrangler config at the head of *its*
  branch (staging: ``hardshell``, production: ``main``) against its Worker as
  the API describes it now (``wrangler/deployed.py``).

Syncing (``sync``) is launched by an engineer, for named finding keys of one
environment, never automatically. It is guarded like a deploy: the
environment's deploy lock (``one_at_a_time``; rotations, D1 applies and syncs
take the same lock as deploys), and in production ``no_active_incident`` and
``deployment_window`` too; every decision and its result are audit rows
(action ``sync_config``). The findings are read again at the start (never taken
from an asset's earlier copy): a key that is no finding now, or whose sync is
not this job's, refuses the run.

What each action does:

- ``put_secret`` (a required secret the Worker lacks): the value is read from
  the source its ``[[secrets.policy]]`` entry names (an environment variable or
  a file; config never holds a value) and put through
  ``staged_version.stage_and_promote``: a new version, smoke-tested through the
  version-override header, promoted only if it passes;
- ``redeploy`` (a deployed binding, var or runtime key that differs from git):
  the environment's branch head is served again. When the version
  ``deployer.deploy`` would pick (the newest one mapped to the head's build)
  matches git, that is the path (every deploy rule: build, and in production
  gate, staging proof, incidents, window, rollback target). When that version
  was derived from the upload (a dashboard or secret change keeps the build's
  mapping in the emulator), deploying the head would serve the drifted version again; the
  newest of the build's versions that still matches git (its upload, or a
  secret change made on it) is then served again through ``rollback.rollback``
  (smoke-tested, audited), and only if it served this environment before (no
  code the deploy policy did not let through). Either way the version to serve
  must itself match git, and no secret may have changed after it (serving it
  would put old secret values back; Cloudflare refuses that with 10220):
  otherwise the run is refused, saying to push a commit (its build copies the
  latest version's secrets). A version this platform staged and did not promote
  (a failed rotation's) is never the one picked, and an abandoned one is no secret
  change: its value never served. When the latest version is such a version, a
  build would copy its value: the refusal says to retry that rotation first.
  After a re-serve the latest version (the dashboard's) is not the deployed
  one, so secret changes are refused (10215, ``stage_and_promote``'s
  precondition) until the next build uploads a version;
- ``edit`` (staging against production in git, a var shadowing a secret): not
  synced by the job; the finding says the edit to make in the wrangler file.

A run that selects both ``put_secret`` and ``redeploy`` keys is refused: the
redeploy would serve the build's version, without the secret just put.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from devops_assets.config import PlatformConfig
from devops_assets.config_drift import WRANGLER_FILES
from devops_assets.config_secrets import SecretPolicy
from devops_assets.delivery import audit, deployer, rollback
from devops_assets.delivery import facts as gather
from devops_assets.delivery.runtime import Runtime
from devops_assets.delivery.staged_version import StageRefused, stage_and_promote
from devops_assets.domain import guards
from devops_assets.domain.secrets import SCHEDULER, Refused, VersionMade, identity, normalise
from devops_assets.sources.git import GitError
from devops_assets.sources.git_refs import read_blob, resolve_commit
from devops_assets.wrangler.deployed import Deployed, compare, read_deployed, version_settings
from devops_assets.wrangler.drift import Finding, drift
from devops_assets.wrangler.environments import Resolved, WranglerFile, load
from devops_assets.wrangler.files import WranglerConfigError

ACTION = "sync_config"
SYNCED_BY_JOB = ("put_secret", "redeploy")
KEY_LIMIT = 200


class DriftReadError(ValueError):
    """The wrangler file cannot be found or read at a branch head; the message says
    which file, branch and key."""


@dataclass(frozen=True)
class DeployedView:
    environment: str
    file: str  # "<branch>:<path>"
    commit: str
    resolved: Resolved
    deployed: Deployed
    findings: list[Finding]


@dataclass
class SyncOutcome:
    environment: str
    keys: tuple[str, ...]
    put: list[str] = field(default_factory=list)  # secret names put
    version_id: str | None = None  # the version serving after the sync
    remaining: list[str] = field(default_factory=list)  # selected keys still found after


def wrangler_at(config: PlatformConfig, repo: Path, branch: str) -> tuple[str, WranglerFile]:
    """``<branch>:<path>`` and the wrangler file at the head of ``branch``."""
    names = (config.drift.wrangler_file,) if config.drift.wrangler_file else WRANGLER_FILES
    for name in names:
        data = read_blob(repo, branch, name)
        if data is not None:
            try:
                return f"{branch}:{name}", load(name, data)
            except WranglerConfigError as exc:
                raise DriftReadError(f"{branch}:{exc}") from None
    raise DriftReadError(
        f"{config.path}: key 'drift.wrangler_file': no {' or '.join(names)} at the head of {branch}"
    )


def resolved_for(config: PlatformConfig, file: str, wrangler: WranglerFile, env: str) -> Resolved:
    """The wrangler environment that deploys the platform environment's Worker."""
    worker = config.environment(env).worker
    found = wrangler.environment_of(worker)
    if found is None:
        raise DriftReadError(f"{file}: no environment deploys Worker {worker} ({env})")
    return wrangler.resolve(found)


def pair_findings(config: PlatformConfig, repo: Path) -> tuple[str, list[Finding]]:
    """Staging against production, in git at the head of the production branch."""
    branch = config.environment("production").branches[0]
    file, wrangler = wrangler_at(config, repo, branch)
    production = resolved_for(config, file, wrangler, "production")
    staging = resolved_for(config, file, wrangler, "staging")
    return file, drift(production, staging)


def deployed_view(config: PlatformConfig, repo: Path, client, environment: str) -> DeployedView:
    """One environment: git at the head of its branch against its Worker now."""
    branch = config.environment(environment).branches[0]
    file, wrangler = wrangler_at(config, repo, branch)
    resolved = resolved_for(config, file, wrangler, environment)
    deployed = read_deployed(client, config.environment(environment).worker)
    commit = resolve_commit(repo, branch)
    return DeployedView(
        environment, file, commit, resolved, deployed, compare(resolved, deployed, environment)
    )


def sync(
    rt: Runtime, environment: str, keys: list[str], requested_by: str, reason: str
) -> SyncOutcome:
    """Sync the findings ``keys`` of ``environment`` (see the module docstring)."""
    deployer.check_request(environment, requested_by, reason)
    keys = _check_keys(keys)
    branch = rt.config.environment(environment).branches[0]
    try:
        sha = resolve_commit(rt.repo, branch)
    except GitError as exc:
        raise deployer.DeployInputError(f"branch {branch}: {exc}") from None
    requested_by = _requester(rt, environment, sha, requested_by, reason)
    ledger = rt.warehouse.deploys
    holder = ledger.acquire(environment, rt.run_id, requested_by, sha, rt.now(), rt.is_active)
    try:
        try:
            view = deployed_view(rt.config, rt.repo, rt.client, environment)
            facts = _facts(rt, environment, sha, holder)
            problems, plan = _selection_problems(rt, view, keys)
        except (*deployer.FACT_ERRORS, DriftReadError) as exc:
            deployer.refuse_unknown(
                rt, ACTION, requested_by, environment, sha, reason, exc, "sync_refused"
            )
        decision = _decide(facts, problems)
        audit.decided(rt, ACTION, requested_by, environment, sha, reason, decision, facts)
        if not decision.allowed:
            rt.notify("sync_refused", environment, sha, f"sync_config {decision.summary()}")
            raise deployer.DeployRefused(decision)
        text = f"sync_config by {requested_by}: {reason} ({', '.join(keys)})"
        rt.notify("sync_started", environment, sha, text)
        chosen = [f for f in view.findings if f.key in keys]
        outcome = SyncOutcome(environment, tuple(keys))
        try:
            _apply(rt, view, chosen, plan, outcome, requested_by, reason)
        except deployer.DeployRefused as exc:  # the deploy's own refusal, audited by it
            text = f"the redeploy was refused: {exc}"[: deployer.TEXT_LIMIT]
            _finished(rt, requested_by, environment, sha, "refused", text, outcome)
            raise
        except StageRefused as exc:  # a precondition of the staged version: nothing changed
            text = f"the secret put was refused, nothing changed: {exc}"[: deployer.TEXT_LIMIT]
            _finished(rt, requested_by, environment, sha, "refused", text, outcome)
            rt.notify("sync_refused", environment, sha, f"sync_config: {text}")
            raise deployer.DeployFailed(text) from None
        except Exception as exc:
            text = f"sync failed: {type(exc).__name__}: {exc}"[: deployer.TEXT_LIMIT]
            _finished(rt, requested_by, environment, sha, "failed", text, outcome)
            rt.notify("sync_failed", environment, sha, f"sync_config: {text}")
            raise deployer.DeployFailed(text) from None
        after = deployed_view(rt.config, rt.repo, rt.client, environment)
        outcome.remaining = [f.key for f in after.findings if f.key in keys]
        unread = [f.key for f in after.findings if f.kind == "unknown"]
        status = "failed" if outcome.remaining or unread else "succeeded"
        text = reason
        if outcome.remaining:
            text = f"still found: {', '.join(outcome.remaining)}"
        elif unread:  # gone from the findings only because the API did not answer
            text = f"done, but not verified: {', '.join(unread)} could not be read"
        _finished(rt, requested_by, environment, sha, status, text, outcome)
        event = "synced" if status == "succeeded" else "sync_failed"
        rt.notify(event, environment, sha, f"sync_config {status}: {text}")
        if status == "failed":
            raise deployer.DeployFailed(f"{environment}: {text}")
        return outcome
    finally:
        if holder is None:
            ledger.release(environment, rt.run_id)


def _requester(rt: Runtime, environment: str, sha: str, requested_by: str, reason: str) -> str:
    """``requested_by`` in identity normal form (as the rotations keep it); anything but
    a plain e-mail address refuses the run, audited and notified, before the lock."""
    try:
        form = identity(requested_by, "requested_by")
        if form == SCHEDULER:
            raise Refused("identity", "requested_by: sync_config is asked by a person")
    except Refused as exc:
        refusal = guards.Refusal("identity", str(exc)[: deployer.TEXT_LIMIT])
        decision = guards.Decision(False, ("identity",), (refusal,))
        shown = ascii(requested_by)[1:-1][:200]
        detail = {"checked": ["identity"], "refusals": [{"rule": "identity", "evidence": str(exc)}]}
        why = f"{reason} — {decision.summary()}"
        audit._append(rt, ACTION, shown, environment, sha, "refused", why, detail)
        rt.notify("sync_refused", environment, sha, f"sync_config {decision.summary()}")
        raise deployer.DeployRefused(decision) from None
    return form


def _check_keys(keys: list[str]) -> list[str]:
    cleaned = []
    for key in keys:
        if not isinstance(key, str) or not key.strip() or len(key) > KEY_LIMIT:
            raise deployer.DeployInputError(f"keys: finding keys of 1 to {KEY_LIMIT} characters")
        if not key.isprintable() or key.strip() != key:
            raise deployer.DeployInputError(f"keys: {key[:80]!r} is not a finding key")
        if key not in cleaned:
            cleaned.append(key)
    if not cleaned:
        raise deployer.DeployInputError("keys: at least one finding key (see config_drift)")
    return cleaned


def _facts(rt: Runtime, environment: str, sha: str, holder: str | None) -> guards.Facts:
    production = environment == "production"
    return guards.Facts(
        environment=environment,
        commit_sha=sha,
        now=rt.now(),
        timezone=rt.config.timezone,
        gate_steps=(),
        open_incidents=gather.open_incidents(rt, environment) if production else (),
        windows=rt.config.deploy.windows,
        freezes=rt.config.deploy.freezes,
        running_deploys=(holder,) if holder else (),
        worker=rt.config.environment(environment).worker,
    )


def _decide(facts: guards.Facts, problems: list[str]) -> guards.Decision:
    decision = guards.decide_sync(facts)
    if not problems:
        return decision
    refusal = guards.Refusal("findings", "; ".join(problems)[: deployer.TEXT_LIMIT])
    return guards.Decision(False, (*decision.checked, "findings"), (*decision.refusals, refusal))


def _selection_problems(
    rt: Runtime, view: DeployedView, keys: list[str]
) -> tuple[list[str], Redeploy | None]:
    """Why the selected keys cannot be synced by this run (empty: they can), and how
    a redeploy would go."""
    current = {f.key: f for f in view.findings}
    problems = []
    for key in keys:
        finding = current.get(key)
        if finding is None and not key.startswith("deployed."):
            problems.append(
                f"{key}: a difference between staging and production in git is synced by "
                "editing the wrangler file (config_drift says the edit), not by this job"
            )
        elif finding is None:
            problems.append(f"{key} is not a finding of {view.environment} now")
        elif finding.action not in SYNCED_BY_JOB:
            problems.append(f"{key} is not synced by this job ({finding.action}): {finding.fix}")
        elif finding.action == "put_secret":
            name = key.rsplit(".", 1)[-1]
            problem = _source_problem(rt, view.environment, name)
            if problem:
                problems.append(f"{key}: {problem}")
    actions = {current[k].action for k in keys if k in current}
    if {"put_secret", "redeploy"} <= actions:
        problems.append(
            "put_secret and redeploy keys in one run: the redeploy would serve the build's "
            "version without the secret; sync them in two runs"
        )
    plan = None
    if "redeploy" in actions and not problems:
        plan, more = _redeploy_plan(rt, view)
        problems += more
    return problems, plan


@dataclass(frozen=True)
class Redeploy:
    """How a redeploy syncs: ``deploy`` the head through ``deployer.deploy``, or
    ``reserve`` the version the head's build uploaded (``version``)."""

    how: str
    version: str | None = None


def _redeploy_plan(rt: Runtime, view: DeployedView) -> tuple[Redeploy, list[str]]:
    """How deploying the branch head again would sync the environment, or why it
    would not (see the module docstring)."""
    build, picked = gather.commit_build(rt, view.environment, view.commit)
    if picked is None:
        return Redeploy("deploy"), []  # deployer refuses it, naming the build rule
    worker = view.deployed.worker
    versions = rt.client.list_versions(worker)
    ours = rt.warehouse.secrets.versions(worker)
    if not _drifted(rt, view, picked):
        return Redeploy("deploy"), _stale_secrets(worker, versions, picked, ours)
    # the newest version the build is mapped to was derived from its upload (a
    # settings or secret change keeps the mapping): serve the newest of the build's
    # versions that still matches git (its upload, or a secret change made on it);
    # never one this platform staged and did not promote (``commit_build``)
    mapped = rt.client.builds_for_versions([v["id"] for v in versions], worker=worker)
    unproven = gather.not_promoted(rt, worker)
    own = [
        v
        for v in versions
        if (b := mapped.get(v["id"]))
        and b.build_uuid == build.build_uuid
        and v["id"] not in unproven
        and v["id"] != picked
    ]
    own.sort(key=lambda v: v["number"], reverse=True)
    candidate = next((v["id"] for v in own if not _drifted(rt, view, v["id"])), None)
    if candidate is None:
        return Redeploy("deploy"), [
            f"the version {picked} of the head {view.commit[:12]} differs from git itself "
            f"({', '.join(_drifted(rt, view, picked))}), as do the build's other versions: "
            "redeploying syncs nothing; push a commit instead"
        ]
    served = {v for d in rt.client.list_deployments(worker) for v, _ in d["versions"]}
    if candidate not in served:
        return Redeploy("reserve", candidate), [
            f"version {candidate} (the head's build) never served {worker}: deploy the head "
            "through the deploy job first"
        ]
    return Redeploy("reserve", candidate), _stale_secrets(worker, versions, candidate, ours)


def _drifted(rt: Runtime, view: DeployedView, version: str) -> list[str]:
    """The drift keys a version has against git (its bindings and runtime keys)."""
    worker = view.deployed.worker
    detail = rt.client.get_version(worker, version)
    as_built = Deployed(worker, version_settings(detail), None, None, {})
    return [f.key for f in compare(view.resolved, as_built, view.environment)]


def _stale_secrets(
    worker: str, versions: list[dict], version: str, ours: list[VersionMade]
) -> list[str]:
    """Why serving ``version`` again would put old secret values back: secret changes
    made after it. A version this platform staged and abandoned (a failed rotation)
    never served its value: it is no change to lose."""
    abandoned = {m.version_id for m in ours if m.outcome == "abandoned"}
    made = next(v for v in versions if v["id"] == version)["created_on"]
    later = [
        v["id"]
        for v in versions
        if v["created_on"] > made
        and (v.get("annotations") or {}).get("workers/triggered_by") == "secret"
        and v["id"] not in abandoned
    ]
    if not later:
        return []
    text = (
        f"secrets of {worker} changed after version {version} (versions {', '.join(later)}): "
        "serving it again would put the old secrets back; push a commit instead (its build "
        "copies the latest version's secrets)"
    )
    latest = max(versions, key=lambda v: v["number"])["id"]
    unproven = next((m for m in ours if m.version_id == latest and m.outcome != "promoted"), None)
    if unproven is not None and unproven.outcome == "abandoned":
        text += (
            f", but first retry {unproven.request_id}: the latest version {latest} holds "
            "its never-promoted value"
        )
    elif unproven is not None:
        text += (
            f", but first deploy or replace the latest version {latest}: it holds the "
            f"never-promoted value of {unproven.request_id}"
        )
    return [text]


def _secret_policy(rt: Runtime, name: str) -> SecretPolicy | None:
    """The ``[[secrets.policy]]`` entry naming secret ``name`` (no default: a secret
    put by a sync needs its source written down)."""
    for policy in rt.config.secrets.policies:
        if policy.name == name:
            return policy
    return None


def _source_problem(rt: Runtime, environment: str, name: str) -> str | None:
    policy = _secret_policy(rt, name)
    if policy is None:
        return f"no [[secrets.policy]] entry names {name}"
    try:
        _secret_value(policy)
    except Refused as exc:
        return f"[[secrets.policy]] {name}: {exc}"
    return None


def _secret_value(policy: SecretPolicy) -> str:
    """The value from the source the policy names (env:VAR or file:PATH), read now;
    errors name the source, never the value. ``generate`` is refused: a secret the
    Worker lacks was issued elsewhere (an API key, a gateway's token), a value made
    up here would not be accepted there — rotation is the way to a generated one."""
    kind, _, where = policy.source.partition(":")
    if kind == "env":
        raw = os.environ.get(where)
        if raw is None:
            raise Refused("source", f"environment variable {where} is not set")
        return normalise(raw, f"environment variable {where}")
    if kind == "file":  # the rotations' reader: regular files only, bounded
        from devops_assets.delivery.secrets import read_file_value

        return read_file_value(where)
    raise Refused(
        "source", f"source {policy.source!r}: sync_config puts values from env: or file: only"
    )


def _apply(
    rt, view: DeployedView, chosen, plan: Redeploy | None, outcome: SyncOutcome, actor, reason
):
    secrets = [f.key.rsplit(".", 1)[-1] for f in chosen if f.action == "put_secret"]
    if secrets:
        changes = {name: _secret_value(_secret_policy(rt, name)) for name in secrets}
        message = f"sync_config: put {', '.join(secrets)}"[:100]
        staged = stage_and_promote(rt, view.environment, changes, message, actor)
        changes.clear()  # values live no longer than needed
        if not staged.promoted:
            raise RuntimeError(
                f"version {staged.staged_version} was not promoted ({staged.failure}); "
                f"{staged.previous_version} serves"
            )
        outcome.put = secrets
        outcome.version_id = staged.staged_version
    if plan is not None and plan.how == "reserve":
        done = rollback.rollback(
            rt, view.environment, plan.version, actor, f"sync_config: {reason}"
        )
        outcome.version_id = done.version_id
    elif plan is not None:
        done = deployer.deploy(rt, view.environment, view.commit, actor, reason)
        outcome.version_id = done.version_id


def _finished(rt, actor, environment, sha, status, text, outcome: SyncOutcome) -> None:
    detail = {
        "keys": list(outcome.keys),
        "secrets_put": outcome.put,  # names only
        "version": outcome.version_id,
        "remaining": outcome.remaining,
    }
    audit._append(rt, ACTION, actor, environment, sha, status, text[:1000], detail)
