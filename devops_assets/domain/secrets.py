"""Secret rotation: requests, approvals, the checks before a rotation, and the inventory.

A rotation request is frozen when it is made: environment, worker, secret,
where the new value comes from, the policy, who asked and why, and when it
expires. ``request_hash`` digests exactly those fields; an approval records the
hash it approved, so it cannot be reused for another request nor for this one
after the request (or the policy it was made under) changed.

States of a request (one open request per worker and secret at a time):

- ``requested``: waiting for an approval until ``expires_at``;
- ``approved``: an approver (not the requester) approved it; the approval
  lives ``approval_ttl_hours``;
- ``running``: a rotation run claimed it (the approval is used up);
- ``rotated``: the new value serves 100 %;
- ``failed``: the rotation stopped with the previous version serving; the
  request stays open (no second request for the secret) until it is approved
  again and rotated, or expires;
- ``needs_attention``: the new version was promoted and then failed its
  check, and putting the previous version back failed too: a person must look;
- ``expired``: nobody approved it in time (or its failed attempt was never
  retried in time).

Nothing here holds a secret value: values exist only inside the rotation run.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets as random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

STATES = ("requested", "approved", "running", "rotated", "failed", "needs_attention", "expired")
OPEN_STATES = frozenset({"requested", "approved", "running", "failed", "needs_attention"})
ROTATABLE_STATES = frozenset({"approved"})
APPROVABLE_STATES = frozenset({"requested", "failed"})
SECRET_TYPES = frozenset({"secret_text", "secret_key"})
TRIGGERED_BY = "workers/triggered_by"
MESSAGE = "workers/message"
# The daily check asks under this name; the only identity that is not an address.
SCHEDULER = "secret_rotation_check (schedule)"
# Cloudflare Workers' limit on one secret (an environment variable of a Worker):
# 5 KiB, counted in bytes of UTF-8. A longer value would be refused by the API
# after the run had done its checks; it is refused here before anything changes.
MAX_SECRET_BYTES = 5 * 1024
# A plain ASCII address in normal form (lower case): local part, "@", a domain of
# at least two labels. Look-alike letters (Cyrillic "с" for "c"), invisible
# characters and a trailing dot are not in it, so they cannot make a second person.
_ADDRESS = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+"
)


class Refused(RuntimeError):
    """A request, approval or rotation the rules refuse; ``rule`` names the rule."""

    def __init__(self, rule: str, text: str):
        super().__init__(text)
        self.rule = rule


@dataclass(frozen=True)
class RotationRequest:
    request_id: str
    environment: str
    worker: str
    secret: str
    source: str  # generate | env:VAR | file:PATH
    max_age_days: int
    generator: str  # "<length>:<charset>" for generated values, "" otherwise
    requested_by: str
    reason: str
    requested_at: datetime
    expires_at: datetime
    state: str = "requested"
    updated_at: datetime | None = None
    detail: str = ""
    request_hash: str = ""

    def frozen(self) -> dict:
        """The fields an approval binds to."""
        keep = (
            "request_id environment worker secret source max_age_days generator requested_by reason"
        ).split()
        out = {k: getattr(self, k) for k in keep}
        out["requested_at"] = self.requested_at.isoformat()
        out["expires_at"] = self.expires_at.isoformat()
        return out

    def digest(self) -> str:
        return request_hash(self)


@dataclass(frozen=True)
class Approval:
    approval_id: str
    request_id: str
    request_hash: str
    approver: str
    approved_at: datetime
    expires_at: datetime
    used_by_run: str | None = None


@dataclass(frozen=True)
class VersionMade:
    """A version this platform made (rotation or sync), recorded by its id."""

    worker: str
    version_id: str
    based_on: str  # the version it was made from
    names: tuple[str, ...]  # the secrets it set or removed
    request_id: str  # the rotation request, or the sync run
    made_at: datetime
    outcome: str  # staged | promoted | abandoned | needs_attention


@dataclass(frozen=True)
class InventoryRow:
    environment: str
    worker: str
    secret: str
    present: bool  # False: secrets.required names it, the worker lacks it
    last_rotated_at: datetime | None  # by this platform
    changed_outside: bool  # a secret change after our last rotation that we did not make
    changed_outside_at: datetime | None
    max_age_days: int
    due_at: datetime | None  # None: age unknown, due now
    status: str  # ok | due | unknown_age | missing
    open_request: str | None = None
    # the request (or sync run) whose staged, never-promoted value the serving version
    # carries (see ``failed_values``): the value live is one no rotation promoted
    failed_rotation: str | None = None
    note: str = ""  # why the age is unknown, when the columns do not say

    def age_days(self, now: datetime) -> float | None:
        if self.last_rotated_at is None or self.changed_outside or self.failed_rotation:
            return None
        return (now - self.last_rotated_at).total_seconds() / 86400

    def as_dict(self) -> dict:
        out = asdict(self)
        for key in ("last_rotated_at", "changed_outside_at", "due_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def request_hash(request: RotationRequest) -> str:
    text = json.dumps(request.frozen(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def request_id(environment: str, secret: str, requested_at: datetime) -> str:
    """A readable, unique id: ``rot-<env>-<secret>-<UTC instant>-<6 random hex>``."""
    stamp = requested_at.strftime("%Y%m%dT%H%M%SZ")
    return f"rot-{environment}-{secret.lower().replace('_', '-')}-{stamp}-{random.token_hex(3)}"


def approval_id(request: RotationRequest, approver: str, at: datetime) -> str:
    text = f"{request.request_hash}|{approver}|{at.isoformat()}"
    return "apr-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def generate(length: int, alphabet: str) -> str:
    """A new value from the OS's CSPRNG."""
    return "".join(random.choice(alphabet) for _ in range(length))


def normalise(value: str, where: str) -> str:
    """One rule for values read from a variable or a file: trailing ASCII whitespace
    (a file's final newline) is dropped, as wrangler does; refused (the message names
    ``where``, never the value): an empty value, one that is not valid Unicode text,
    one longer than ``MAX_SECRET_BYTES``, and one holding a line break of any kind
    (whatever ``str.splitlines`` splits on: ``\\u2028``, ``\\x85``…) or a C0/C1
    control character or DEL — a value is one line of text."""
    value = value.rstrip(" \t\r\n\f\v")
    if not value:
        raise Refused("source", f"{where} is empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8
        raise Refused("source", f"{where} is not UTF-8 text") from None
    if size > MAX_SECRET_BYTES:
        raise Refused(
            "source", f"{where} is larger than {MAX_SECRET_BYTES} bytes (Cloudflare's limit)"
        )
    if any(_control(c) for c in value) or len(value.splitlines()) != 1:
        raise Refused(
            "source", f"{where} holds a line break or control character (a value is one line)"
        )
    return value


def _control(c: str) -> bool:
    code = ord(c)
    return code < 32 or 127 <= code < 160


# -- identities ------------------------------------------------------------------


def identity_form(name: str) -> str:
    """The form every identity is compared and stored in: NFKC, trimmed, case-folded
    (``CISO@Example`` and `` ciso@example`` are one person). No validation: used to
    compare names read back from storage."""
    return unicodedata.normalize("NFKC", str(name)).strip().casefold()


def is_scheduler(name: str) -> bool:
    """Whether ``name`` is the schedule's own name in any spelling that ``identity``
    takes as it (case, width, a no-break space, surrounding blanks)."""
    return identity_form(name) == SCHEDULER


def identity(name: str, role: str) -> str:
    """``name`` in normal form, or Refused (rule ``identity``): a requester, approver or
    rotation runner is a plain ASCII e-mail address (or the scheduler's own name)."""
    form = identity_form(name)
    if form == SCHEDULER:
        return form
    shown = ascii(str(name))[:120]
    if form.endswith("."):
        raise Refused("identity", f"{role} {shown} ends with a dot: write the address without it")
    if not (form.isascii() and _ADDRESS.fullmatch(form)):
        raise Refused(
            "identity",
            f"{role} {shown} is not a plain e-mail address (ASCII letters, digits, "
            "one @, a domain) nor the schedule",
        )
    return form


# -- approvals -------------------------------------------------------------------


def check_approval(
    request: RotationRequest | None,
    request_id_asked: str,
    approver: str,
    approvers: Sequence[str],
    now: datetime,
) -> RotationRequest:
    """Refuse an approval the rules do not allow; return the request. Identities are
    compared in their normal form (``identity``)."""
    approver = identity(approver, "approver")
    if request is None:
        raise Refused("request", f"no rotation request {request_id_asked!r}")
    if approver not in {identity_form(a) for a in approvers}:
        raise Refused(
            "approver",
            f"{approver} is not an approver ([secrets] approvers: {', '.join(approvers)})",
        )
    if approver == identity_form(request.requested_by):
        raise Refused(
            "two_person", f"{approver} asked for {request.request_id} and cannot approve it"
        )
    if request.state not in APPROVABLE_STATES:
        raise Refused("state", f"{request.request_id} is {request.state}, not waiting for approval")
    if now >= request.expires_at:
        raise Refused(
            "request_expired",
            f"{request.request_id} expired at {request.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    if request.digest() != request.request_hash:
        raise Refused("request_hash", f"{request.request_id} changed since it was made")
    return request


# -- rotation --------------------------------------------------------------------


def check_rotation(
    request: RotationRequest | None,
    request_id_asked: str,
    approval: Approval | None,
    approval_id_asked: str,
    approvers: Sequence[str],
    current: RotationRequest | None,
    now: datetime,
) -> tuple[RotationRequest, Approval]:
    """Every rule a rotation must pass before anything changes. ``current`` is the
    request as the platform file would make it now (policy and source), to refuse
    an approval given under another policy."""
    if request is None:
        raise Refused("request", f"no rotation request {request_id_asked!r}")
    if not approval_id_asked:
        raise Refused("approval", f"{request.request_id} has no approval: rotation needs one")
    if approval is None:
        raise Refused("approval", f"no approval {approval_id_asked!r}")
    if approval.request_id != request.request_id:
        raise Refused(
            "approval_binding",
            f"approval {approval.approval_id} is for {approval.request_id}, "
            f"not {request.request_id}",
        )
    if approval.request_hash != request.digest() or request.request_hash != request.digest():
        raise Refused(
            "approval_binding",
            f"approval {approval.approval_id} approved another version of {request.request_id}",
        )
    if approval.used_by_run is not None:
        raise Refused(
            "approval_used",
            f"approval {approval.approval_id} was used by run {approval.used_by_run}",
        )
    if now >= approval.expires_at:
        raise Refused(
            "approval_expired",
            f"approval {approval.approval_id} expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    if approval.approved_at >= request.expires_at:
        raise Refused("request_expired", f"{request.request_id} had expired when it was approved")
    approver = identity_form(approval.approver)
    if approver == identity_form(request.requested_by):
        raise Refused(
            "two_person", f"{approval.approver} asked for and approved {request.request_id}"
        )
    if approver not in {identity_form(a) for a in approvers}:
        raise Refused("approver", f"{approval.approver} is no longer an approver")
    if request.state not in ROTATABLE_STATES:
        raise Refused("state", f"{request.request_id} is {request.state}, not approved")
    if current is not None and (
        (current.source, current.max_age_days, current.generator)
        != (request.source, request.max_age_days, request.generator)
    ):
        raise Refused(
            "policy_changed",
            f"the policy of {request.secret} changed since {request.request_id} was made",
        )
    return request, approval


# -- inventory -------------------------------------------------------------------

_QUOTED = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')


def changed_names(version: dict, known: Iterable[str]) -> set[str]:
    """The secrets a ``triggered_by: secret`` version changed, from its message
    (wrangler writes ``Updated secret "NAME"``); every known one when it does not say."""
    known = set(known)
    named = set(_QUOTED.findall(str((version.get("annotations") or {}).get(MESSAGE, ""))))
    return (named & known) or known


NEVER_PROMOTED = frozenset({"abandoned", "staged"})


def failed_values(
    versions: Sequence[dict], ours: Sequence[VersionMade], carriers: Iterable[str]
) -> dict[str, VersionMade]:
    """The secrets whose value in one of the ``carriers`` (version ids) is a value this
    platform staged and never promoted, each with the version A that staged it.

    Cloudflare copies a new version's secrets from the latest version (a build's
    upload, a dashboard edit, ``versions/latest``), so a failed rotation's staged
    version A, left as the latest, hands its value to every version made after it.
    A carrier numbered above A carries A's value of NAME unless a version between
    them (A excluded, the carrier included) set NAME again: a promoted version of
    ours, or a secret change made elsewhere that names it. The newest such A per
    name is reported (an older one is covered by the same versions)."""
    number = {v["id"]: v["number"] for v in versions}
    our_ids = {made.version_id for made in ours}
    setters: list[tuple[int, set[str]]] = []  # versions that set names again
    for made in ours:
        if made.outcome == "promoted" and made.version_id in number:
            setters.append((number[made.version_id], set(made.names)))
    staged = [m for m in ours if m.outcome in NEVER_PROMOTED and m.version_id in number]
    known = {name for m in staged for name in m.names}
    for version in versions:
        notes = version.get("annotations") or {}
        if notes.get(TRIGGERED_BY) == "secret" and version["id"] not in our_ids:
            # the names its message quotes; none quoted: any of them may have changed
            named = set(_QUOTED.findall(str(notes.get(MESSAGE, ""))))
            setters.append((version["number"], named or known))
    found: dict[str, VersionMade] = {}
    for carrier in carriers:
        top = number.get(carrier)
        if top is None:
            continue
        for made in sorted(staged, key=lambda m: number[m.version_id], reverse=True):
            low = number[made.version_id]
            if low >= top:
                continue
            for name in made.names:
                if name in found and number[found[name].version_id] >= low:
                    continue
                if not any(low < n <= top and name in names for n, names in setters):
                    found[name] = made
    return found


def failed_value_note(made: VersionMade, worker: str) -> str:
    """What a row or notice says of a secret that carries ``made``'s value."""
    what = "rotation" if made.request_id.startswith("rot-") else "sync run"
    return (
        f"the value staged by failed {what} {made.request_id} (version {made.version_id}, "
        f"never promoted) is live on {worker}: a later version copied it; age unknown, "
        "rotate it again"
    )


def inventory(
    environment: str,
    worker: str,
    names: Iterable[str],
    required: Iterable[str],
    versions: Sequence[dict],
    ours: Sequence[VersionMade],
    policy_age: dict[str, int],
    open_requests: dict[str, str],
    serving: Iterable[str] = (),
) -> list[InventoryRow]:
    """The worker's secrets with their age by our records, flags for changes made
    elsewhere (``triggered_by: secret`` versions we did not make, matched by version
    id), for a failed rotation's value that a ``serving`` version carries
    (``failed_values``: age unknown, due now), due dates, and the required secrets
    the worker lacks."""
    names = set(names)
    failed = failed_values(versions, ours, serving)
    our_ids = {v.version_id for v in ours}
    rotated: dict[str, datetime] = {}
    for made in ours:
        if made.outcome == "promoted":
            for name in made.names:
                if name not in rotated or made.made_at > rotated[name]:
                    rotated[name] = made.made_at
    outside: dict[str, datetime] = {}
    for version in versions:
        notes = version.get("annotations") or {}
        if notes.get(TRIGGERED_BY) != "secret" or version["id"] in our_ids:
            continue
        for name in changed_names(version, names):
            if name not in outside or version["created_on"] > outside[name]:
                outside[name] = version["created_on"]
    rows = []
    for name in sorted(names | set(required)):
        max_age = policy_age.get(name, policy_age.get("", 90))
        if name not in names:
            rows.append(
                InventoryRow(
                    environment,
                    worker,
                    name,
                    False,
                    None,
                    False,
                    None,
                    max_age,
                    None,
                    "missing",
                    open_requests.get(name),
                )
            )
            continue
        last = rotated.get(name)
        changed_at = outside.get(name)
        changed = changed_at is not None and (last is None or changed_at > last)
        stale = failed.get(name)
        due = None if last is None or changed or stale else last + timedelta(days=max_age)
        status = "unknown_age" if due is None else "ok"
        rows.append(
            InventoryRow(
                environment,
                worker,
                name,
                True,
                last,
                changed,
                changed_at if changed else None,
                max_age,
                due,
                status,
                open_requests.get(name),
                stale.request_id if stale else None,
                failed_value_note(stale, worker) if stale else "",
            )
        )
    return rows


def is_due(row: InventoryRow, now: datetime) -> bool:
    """A secret to rotate: present, and of unknown age or past its due date."""
    return row.present and (row.due_at is None or now >= row.due_at)


def with_status(row: InventoryRow, now: datetime) -> InventoryRow:
    if row.status == "ok" and row.due_at is not None and now >= row.due_at:
        return InventoryRow(**{**row.__dict__, "status": "due"})
    return row
