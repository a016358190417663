"""Secret inventory, rotation requests, approvals and rotations, each audited.

- ``inventory``: per environment, the secrets of the versions its worker serves
  (and of the latest version), their age by our own rotation records, changes
  made elsewhere, due dates, and required secrets the worker lacks.
- ``check_due``: expires stale requests, then turns each due secret (or the one
  asked for: an emergency rotation) into a request and notifies the approvers.
- ``approve``: an approver who is not the requester approves one request.
- ``rotate``: with a valid approval bound to the request, reads or generates
  the new value, takes the environment's deploy lock, and stages,
  tests and promotes it (``staged_version``). The deploy window, change freezes
  and open incidents do not hold a rotation: rotating a leaked credential is
  what an incident may need, at any hour. The lock, the two-person approval and
  the latest-is-deployed precondition do.

Every request, approval, refusal and rotation is a row of the audit log
(written before anything changes: a failed audit write stops the run). A value
lives only in ``rotate``'s memory: no log line, row, notice or message holds it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import timedelta

import httpx

from devops_assets.config_drift import WRANGLER_FILES
from devops_assets.delivery.audit import _append
from devops_assets.delivery.runtime import Runtime
from devops_assets.delivery.staged_version import (
    StagedOutcome,
    StageRefused,
    precondition,
    stage_and_promote,
)
from devops_assets.domain import secrets as domain
from devops_assets.domain.secrets import Approval, InventoryRow, Refused, RotationRequest
from devops_assets.sources.cloudflare import CloudflareError
from devops_assets.sources.git_refs import read_blob
from devops_assets.wrangler.environments import load

SCHEDULER = domain.SCHEDULER
REQUEST, APPROVE, ROTATE = "request_secret_rotation", "approve_secret_rotation", "rotate_secret"
ENVIRONMENTS = ("staging", "production")
# A value file may hold a value at Cloudflare's limit and its line ending ("\r\n").
FILE_CAP = domain.MAX_SECRET_BYTES + 2


class RotationFailed(RuntimeError):
    """The rotation started and did not finish; the previous version serves."""


@dataclass(frozen=True)
class CheckOutcome:
    requested: list[RotationRequest]
    already_open: list[str]  # request ids of due secrets that already had one
    expired: list[str]
    inventory: list[InventoryRow]


# -- inventory ----------------------------------------------------------------------


def inventory(rt: Runtime, store: bool = True) -> list[InventoryRow]:
    """The inventory now, read from Cloudflare, git and our records (stored as the
    ``secret_inventory`` table unless ``store`` is False)."""
    now = rt.now()
    settings = rt.config.secrets
    rows: list[InventoryRow] = []
    for environment in ENVIRONMENTS:
        try:
            worker = rt.config.environment(environment).worker
        except KeyError:
            continue
        if worker is None:
            continue
        versions = rt.client.list_versions(worker)
        deployments = rt.client.list_deployments(worker)
        look, serving = set(), set()
        if deployments:
            newest = max(deployments, key=lambda d: d["created_on"])
            look |= {v for v, _ in newest["versions"]}
            serving = {v for v, share in newest["versions"] if share > 0}
        if versions:
            look.add(max(versions, key=lambda v: v["number"])["id"])
        names: set[str] = set()
        for version_id in sorted(look):
            detail = rt.client.get_version(worker, version_id)
            names |= {b["name"] for b in detail.bindings if b.get("type") in domain.SECRET_TYPES}
        required = required_secrets(rt, environment, worker)
        ages = {p.name: p.max_age_days for p in settings.policies}
        ages[""] = settings.max_age_days
        found = domain.inventory(
            environment,
            worker,
            names,
            required,
            versions,
            rt.warehouse.secrets.versions(worker),
            ages,
            rt.warehouse.secrets.open_requests(worker),
            serving,
        )
        rows += [domain.with_status(row, now) for row in found]
    if store:
        rt.warehouse.secrets.replace_inventory(rows, now)
    return rows


def required_secrets(rt: Runtime, environment: str, worker: str) -> tuple[str, ...]:
    """``secrets.required`` of the wrangler environment that deploys ``worker``, in
    the file at the head of the environment's first branch ((): no wrangler file)."""
    branch = rt.config.environment(environment).branches[0]
    files = (rt.config.drift.wrangler_file,) if rt.config.drift.wrangler_file else WRANGLER_FILES
    for name in files:
        data = read_blob(rt.repo, branch, name)
        if data is None:
            continue
        wrangler = load(f"{branch}:{name}", data)
        env = wrangler.environment_of(worker)
        if env is None:
            return ()
        required = (wrangler.resolve(env).config.get("secrets") or {}).get("required") or []
        return tuple(str(n) for n in required)
    rt.log.warning("no wrangler file at the head of %s: no required secrets known", branch)
    return ()


# -- requests -----------------------------------------------------------------------


def make_request(
    rt: Runtime, environment: str, worker: str, secret: str, requested_by: str, reason: str
) -> RotationRequest:
    """A request as the platform file's policy makes it now (hash included)."""
    settings = rt.config.secrets
    policy = settings.policy(secret)
    now = rt.now().replace(microsecond=0)
    generator = (
        f"{settings.generator_length}:{settings.generator_charset}"
        if policy.source == "generate"
        else ""
    )
    request = RotationRequest(
        request_id=domain.request_id(environment, secret, now),
        environment=environment,
        worker=worker,
        secret=secret,
        source=policy.source,
        max_age_days=policy.max_age_days,
        generator=generator,
        requested_by=requested_by,
        reason=reason[:500],
        requested_at=now,
        expires_at=now + timedelta(hours=settings.request_ttl_hours),
    )
    return RotationRequest(**{**request.__dict__, "request_hash": request.digest()})


def check_due(
    rt: Runtime,
    requested_by: str = SCHEDULER,
    reason: str = "",
    environment: str = "",
    secret: str = "",
) -> CheckOutcome:
    """Expire stale requests, then request a rotation of every due secret (or of
    ``secret`` in ``environment`` only, due or not); notify the approvers. The
    requester must be a plain e-mail address or the schedule, kept in normal form; the
    schedule only sweeps for due secrets (one secret asked now is a person's request)."""
    try:
        requested_by = domain.identity(requested_by, "requested_by")
        if requested_by == SCHEDULER and (environment or secret):
            raise Refused(
                "identity",
                f"requested_by {SCHEDULER!r} only makes the due sweep; a rotation of one "
                "secret now is asked by a person, under their e-mail address",
            )
    except Refused as exc:
        subject = f"{environment}:{secret}" if environment and secret else "-"
        _refused(rt, REQUEST, _shown(requested_by), None, subject, exc, {})
        raise
    expired = expire(rt)
    rows = inventory(rt)
    now = rt.now()
    ledger = rt.warehouse.secrets
    approvers = ", ".join(rt.config.secrets.approvers) or "(no approvers configured)"
    made, already = [], []
    for row in rows:
        if secret:
            if (row.environment, row.secret) != (environment, secret) or not row.present:
                continue
        elif not domain.is_due(row, now):
            continue
        why = reason or _due_reason(row)
        request = make_request(rt, row.environment, row.worker, row.secret, requested_by, why)
        open_id = ledger.add_request(request)
        if open_id != request.request_id:
            already.append(open_id)
            continue
        made.append(request)
        _audit(
            rt,
            REQUEST,
            requested_by,
            request,
            "allowed",
            why,
            {
                "secret": request.secret,
                "worker": request.worker,
                "source": request.source.split(":", 1)[0],
                "request_hash": request.request_hash,
                "expires_at": request.expires_at.isoformat(),
                "approvers": list(rt.config.secrets.approvers),
            },
        )
        rt.notify(
            "secret_rotation_requested",
            request.environment,
            request.request_id,
            f"{request.secret} on {request.worker}: {why}. Asked by {requested_by}. "
            f"Approvers: {approvers}. The request expires "
            f"{request.expires_at:%Y-%m-%d %H:%M} UTC.",
        )
    if secret and not made and not already:
        exc = Refused("secret", f"{environment} has no secret {secret!r} to rotate")
        _refused(rt, REQUEST, requested_by, None, f"{environment}:{secret}", exc, {})
        raise exc
    return CheckOutcome(made, already, expired, rows)


def _due_reason(row: InventoryRow) -> str:
    if row.failed_rotation:
        return row.note
    if row.changed_outside:
        return "changed outside the platform: age unknown"
    if row.due_at is None:
        return "never rotated by the platform: age unknown"
    return f"older than {row.max_age_days} days (due {row.due_at:%Y-%m-%d})"


def expire(rt: Runtime) -> list[str]:
    """Requests past their TTL with no usable approval become ``expired`` (audited)."""
    now = rt.now()
    ledger = rt.warehouse.secrets
    gone = []
    for request in ledger.requests("running"):
        runs = [a.used_by_run for a in ledger.approvals(request.request_id) if a.used_by_run]
        if runs and rt.is_active(runs[-1]) is False:
            text = f"run {runs[-1]} ended without finishing the rotation"
            if ledger.move(request.request_id, ("running",), "failed", text, now):
                _audit(rt, ROTATE, SCHEDULER, request, "failed", text, {"run": runs[-1]})
    for request in ledger.requests():
        if request.state not in ("requested", "approved", "failed") or now < request.expires_at:
            continue
        usable = [
            a
            for a in ledger.approvals(request.request_id)
            if a.used_by_run is None and now < a.expires_at and request.state == "approved"
        ]
        if usable:
            continue
        if ledger.move(request.request_id, (request.state,), "expired", "TTL passed", now):
            gone.append(request.request_id)
            _audit(
                rt,
                REQUEST,
                SCHEDULER,
                request,
                "expired",
                f"no approval or rotation before {request.expires_at:%Y-%m-%d %H:%M} UTC",
                {},
            )
    return gone


# -- approvals ----------------------------------------------------------------------


def approve(rt: Runtime, request_id: str, approver: str) -> Approval:
    """Approve one request (refusals audited and raised as Refused); the approver is
    compared and recorded in identity normal form."""
    ledger = rt.warehouse.secrets
    request = ledger.request(request_id)
    now = rt.now()
    try:
        domain.check_approval(request, request_id, approver, rt.config.secrets.approvers, now)
    except Refused as exc:
        _refused(rt, APPROVE, _shown(approver), request, request_id, exc, {})
        raise
    approver = domain.identity(approver, "approver")
    approval = Approval(
        approval_id=domain.approval_id(request, approver, now),
        request_id=request.request_id,
        request_hash=request.request_hash,
        approver=approver,
        approved_at=now,
        expires_at=now + timedelta(hours=rt.config.secrets.approval_ttl_hours),
    )
    if not ledger.approve(approval, domain.APPROVABLE_STATES, now):
        exc = Refused("state", f"{request_id} changed state while it was being approved")
        _refused(rt, APPROVE, approver, request, request_id, exc, {})
        raise exc
    _audit(
        rt,
        APPROVE,
        approver,
        request,
        "allowed",
        f"approved {request.secret} rotation",
        {
            "approval": approval.approval_id,
            "request_hash": approval.request_hash,
            "expires_at": approval.expires_at.isoformat(),
            "requested_by": request.requested_by,
        },
    )
    return approval


# -- rotation -----------------------------------------------------------------------


def rotate(rt: Runtime, request_id: str, approval_id: str, run_by: str) -> StagedOutcome:
    """Rotate the secret of an approved request (see the module docstring). The new
    value is read before the deploy lock is taken: a slow or refused source never
    holds the environment."""
    ledger = rt.warehouse.secrets
    request = ledger.request(request_id)
    approval = ledger.approval(approval_id) if approval_id else None
    now = rt.now()
    detail = {"approval": approval_id or None}
    try:
        run_by = domain.identity(run_by, "rotation runner (requested_by)")
    except Refused as exc:
        _refused(rt, ROTATE, _shown(run_by), request, request_id, exc, detail)
        raise
    try:
        current = (
            make_request(rt, request.environment, request.worker, request.secret, "-", "-")
            if request is not None
            else None
        )
        domain.check_rotation(
            request, request_id, approval, approval_id, rt.config.secrets.approvers, current, now
        )
    except Refused as exc:
        _refused(rt, ROTATE, run_by, request, request_id, exc, detail)
        raise
    environment, worker, name = request.environment, request.worker, request.secret
    try:
        value = new_value(rt, request)
    except Refused as exc:
        _refused(rt, ROTATE, run_by, request, request_id, exc, detail)
        raise
    lock = rt.warehouse.deploys
    holder = lock.acquire(environment, rt.run_id, run_by, f"secret:{name}", now, rt.is_active)
    try:
        if holder is not None:
            exc = Refused("one_at_a_time", f"run {holder} holds {environment}'s deploy lock")
            _refused(rt, ROTATE, run_by, request, request_id, exc, detail)
            raise exc
        try:
            precondition(rt, worker, {name})
        except StageRefused as exc:
            refusal = Refused("latest_is_deployed", str(exc))
            _refused(rt, ROTATE, run_by, request, request_id, refusal, detail)
            raise refusal from None
        except (CloudflareError, httpx.HTTPError) as exc:  # unknown is never "fine"
            refusal = Refused("facts", f"{worker}'s versions could not be read: {exc}"[:500])
            _refused(rt, ROTATE, run_by, request, request_id, refusal, detail)
            raise refusal from None
        _audit(
            rt,
            ROTATE,
            run_by,
            request,
            "allowed",
            f"approved by {approval.approver}; rotating {name}",
            {**detail, "approver": approval.approver, "source": request.source.split(":")[0]},
        )
        if not ledger.claim(request_id, approval_id, rt.run_id, rt.now()):
            exc = Refused("approval_used", f"approval {approval_id} was used by another run")
            _refused(rt, ROTATE, run_by, request, request_id, exc, detail)
            raise exc
        message = f'Rotated secret "{name}" ({request_id})'
        try:
            outcome = stage_and_promote(rt, environment, {name: value}, message, run_by, request_id)
        except StageRefused as exc:
            outcome = StagedOutcome(environment, worker, "", failure=str(exc))
        _finish(rt, request, run_by, outcome)
        return outcome
    finally:
        value = ""  # the value lives no longer than the run needs it
        if holder is None:
            lock.release(environment, rt.run_id)


def _finish(rt: Runtime, request: RotationRequest, run_by: str, outcome: StagedOutcome) -> None:
    ledger = rt.warehouse.secrets
    detail = {
        "previous_version": outcome.previous_version,
        "staged_version": outcome.staged_version,
        "steps": outcome.steps,
        "smoke": [{"percentage": s.percentage, "passed": s.passed} for s in outcome.smoke],
    }
    now = rt.now()
    if outcome.promoted:
        ledger.move(
            request.request_id,
            ("running",),
            "rotated",
            f"version {outcome.staged_version} serves 100 %",
            now,
        )
        text = f"{request.secret} rotated: version {outcome.staged_version} serves 100 %"
        _audit(rt, ROTATE, run_by, request, "succeeded", text, detail)
        rt.notify("secret_rotated", request.environment, request.request_id, text)
        return
    state = "needs_attention" if outcome.needs_attention else "failed"
    ledger.move(request.request_id, ("running",), state, outcome.failure, now)
    serving = outcome.previous_version or "the previous version"
    text = f"{request.secret} not rotated ({outcome.failure}); {serving} serves"
    _audit(rt, ROTATE, run_by, request, "failed", text, detail)
    rt.notify("secret_rotation_failed", request.environment, request.request_id, text)
    raise RotationFailed(text)


def new_value(rt: Runtime, request: RotationRequest) -> str:
    """The new value, from the request's frozen source; never logged or returned
    anywhere but to the caller."""
    kind, _, rest = request.source.partition(":")
    if kind == "generate":
        length, _, charset = request.generator.partition(":")
        from devops_assets.config_secrets import CHARSETS

        return domain.generate(int(length), CHARSETS[charset])
    return read_source(request.source)


def read_source(source: str) -> str:
    """The value of an ``env:VAR`` or ``file:PATH`` source, under ``domain.normalise``'s
    rule; refusals (rule ``source``) name the source, never the value. Shared by
    rotations and ``sync_config``."""
    kind, _, rest = source.partition(":")
    if kind == "env":
        raw = os.environ.get(rest)
        if raw is None:
            raise Refused("source", f"environment variable {rest} is not set")
        return domain.normalise(raw, f"environment variable {rest}")
    if kind == "file":
        return read_file_value(rest)
    raise Refused("source", f"unknown source kind {kind!r}")


def read_file_value(path: str) -> str:
    """The value in a file, under ``domain.normalise``'s rule (``file:`` sources of
    rotations and ``sync_config``)."""
    return domain.normalise(_read_file(path), f"file {path}")


def _read_file(path: str) -> str:
    """A regular file's text, read without waiting and without reading past the cap:
    a FIFO, device (``/dev/zero``), socket or folder is refused before it is read; a
    file holding more than ``FILE_CAP`` bytes is refused after at most one byte more."""
    where = f"file {path}"
    too_big = Refused(
        "source", f"{where} is larger than {domain.MAX_SECRET_BYTES} bytes (Cloudflare's limit)"
    )
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise Refused("source", f"{where} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise Refused("source", f"{where} cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced between the two looks
            raise Refused("source", f"{where} is not a regular file")
        if info.st_size > FILE_CAP:
            raise too_big
        data = b""
        while len(data) <= FILE_CAP:
            chunk = os.read(fd, FILE_CAP + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise Refused("source", f"{where} cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > FILE_CAP:
        raise too_big
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("source", f"{where} is not UTF-8 text") from None


def _shown(name: str) -> str:
    """A refused identity as the audit log's actor: printable, bounded."""
    return ascii(str(name))[1:-1][:200]


# -- audit --------------------------------------------------------------------------


def _audit(
    rt: Runtime,
    action: str,
    actor: str,
    request: RotationRequest,
    outcome: str,
    reason: str,
    detail: dict,
) -> None:
    _append(
        rt,
        action,
        actor,
        request.environment,
        request.request_id,
        outcome,
        reason,
        {"secret": request.secret, "worker": request.worker, **detail},
    )


def _refused(
    rt: Runtime,
    action: str,
    actor: str,
    request: RotationRequest | None,
    request_id: str,
    exc: Refused,
    detail: dict,
) -> None:
    environment = request.environment if request else request_id.partition(":")[0] or "-"
    environment = environment if environment in ENVIRONMENTS else "-"
    extra = {"rule": exc.rule, **detail}
    if request is not None:
        extra |= {"secret": request.secret, "worker": request.worker}
    _append(rt, action, actor, environment, request_id, "refused", f"{exc.rule}: {exc}", extra)
    rt.notify("secret_rotation_refused", environment, request_id or "-", f"{action} refused: {exc}")
