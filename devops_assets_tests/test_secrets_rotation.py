"""Rotation end to end on the seeded demo workspace (in-process emulator, SQLite
warehouse): due secret → request → second person approves → rotation → the
inventory shows the new age; each refusal with its audit row; expiry; a failed
smoke test of the new version; latest ≠ deployed; variable and file sources."""

from __future__ import annotations

import hashlib
import os
import secrets as random
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from devops_assets.config_secrets import SecretPolicy
from devops_assets.delivery import secrets
from devops_assets.delivery.runtime import open_runtime
from devops_assets.delivery.staged_version import TEST_SHARE, serving_alone
from devops_assets.domain import secrets as domain
from devops_assets.domain.secrets import Refused
from devops_assets.emulator.app import CLOCK_FILE, EMULATOR_TOKEN, load_app
from devops_assets.emulator.secrets_api import derive_version
from devops_assets.sources.cloudflare import EMULATOR_URL, CloudflareClient
from devops_assets.store.warehouse import WarehouseWriteError

GATEWAY, ANTHROPIC = "MOLTBOT_GATEWAY_TOKEN", "ANTHROPIC_API_KEY"
CISO, LEAD = "ciso@moltworker.example", "security-lead@moltworker.example"
OPS = "ops@moltworker.example"
STAGING = "moltworker-staging"
NEXT_KEY = "MOLTWORKER_NEXT_ANTHROPIC_API_KEY"


def advance(world, hours: float) -> None:
    """Move the emulator's clock on (its shared clock never goes back)."""
    state = Path(world.config.cloudflare.emulator_state)
    later = world.app().now() + timedelta(hours=hours)
    (state / CLOCK_FILE).write_text(later.isoformat(), encoding="ascii")


def request(world, environment="staging", secret=GATEWAY, by=OPS):
    """One rotation asked now by a person (the schedule only sweeps for due secrets)."""
    done = secrets.check_due(world.runtime("run-request"), by, "test", environment, secret)
    assert len(done.requested) == 1, done
    return done.requested[0]


def audit(world, action: str, outcome: str | None = None):
    rows = [e for e in world.warehouse.audit_log() if e.action == action]
    return [e for e in rows if outcome is None or e.outcome == outcome]


def serving(world, worker=STAGING) -> str:
    rt = world.runtime("run-read")
    return serving_alone(rt.client.list_deployments(worker))


def test_a_due_secret_is_requested_approved_rotated_and_the_inventory_shows_its_age(world):
    done = secrets.check_due(world.runtime("run-check"))
    asked = {(r.environment, r.secret) for r in done.requested}
    assert asked == {(e, s) for e in ("staging", "production") for s in (GATEWAY, ANTHROPIC)}
    assert "secret_rotation_requested" in world.notices()
    assert len(audit(world, secrets.REQUEST, "allowed")) == 4
    # asked again: the open requests stand, no second one
    again = secrets.check_due(world.runtime("run-check-2"))
    assert again.requested == [] and len(again.already_open) == 4

    req = next(r for r in done.requested if (r.environment, r.secret) == ("staging", GATEWAY))
    assert req.requested_by == secrets.SCHEDULER and req.reason.endswith("age unknown")
    before = serving(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    outcome = secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)

    assert outcome.promoted and outcome.previous_version == before
    assert serving(world) == outcome.staged_version != before
    app = world.app()
    old = app.secret_digest(STAGING, before, GATEWAY)
    new = app.secret_digest(STAGING, outcome.staged_version, GATEWAY)
    assert new and new != old
    # the other secret is carried over unchanged
    assert app.secret_digest(STAGING, outcome.staged_version, ANTHROPIC) == app.secret_digest(
        STAGING, before, ANTHROPIC
    )
    assert [s.percentage for s in outcome.smoke] == [TEST_SHARE, 100.0]
    assert world.warehouse.secrets.request(req.request_id).state == "rotated"
    assert [e.outcome for e in audit(world, secrets.ROTATE)] == ["allowed", "succeeded"]
    assert "secret_rotated" in world.notices()

    rows = {(r.environment, r.secret): r for r in secrets.inventory(world.runtime("run-inv"))}
    rotated = rows[("staging", GATEWAY)]
    now = world.app().now()
    assert rotated.status == "ok" and not rotated.changed_outside
    assert rotated.age_days(now) < 0.01 and rotated.due_at == rotated.last_rotated_at + timedelta(
        days=30
    )
    assert rows[("staging", ANTHROPIC)].status == "unknown_age"
    assert rows[("production", GATEWAY)].status == "unknown_age"
    stored = {(r.environment, r.secret): r for r in world.warehouse.secrets.inventory()}
    assert stored[("staging", GATEWAY)].last_rotated_at == rotated.last_rotated_at
    # the rotated secret is no longer due: the next check asks nothing new for it
    assert ("staging", GATEWAY) not in {
        (r.environment, r.secret) for r in secrets.check_due(world.runtime("r3")).requested
    }


def test_the_requester_cannot_approve_their_own_request(world):
    req = request(world, by=CISO)
    with pytest.raises(Refused) as caught:
        secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    assert caught.value.rule == "two_person"
    [row] = audit(world, secrets.APPROVE, "refused")
    assert (row.actor, row.subject, row.environment) == (CISO, req.request_id, "staging")
    assert "two_person" in row.reason
    assert world.warehouse.secrets.request(req.request_id).state == "requested"
    # the other approver may
    secrets.approve(world.runtime("run-approve-2"), req.request_id, LEAD)
    assert world.warehouse.secrets.request(req.request_id).state == "approved"


def test_someone_outside_the_approvers_cannot_approve(world):
    req = request(world)
    with pytest.raises(Refused) as caught:
        secrets.approve(world.runtime("run-approve"), req.request_id, OPS)
    assert caught.value.rule == "approver"
    assert len(audit(world, secrets.APPROVE, "refused")) == 1


def test_no_approval_is_refused(world):
    req = request(world)
    before = serving(world)
    with pytest.raises(Refused) as caught:
        secrets.rotate(world.runtime("run-rotate"), req.request_id, "", OPS)
    assert caught.value.rule == "approval"
    [row] = audit(world, secrets.ROTATE, "refused")
    assert row.subject == req.request_id and "approval" in row.reason
    assert serving(world) == before
    assert "secret_rotation_refused" in world.notices()


def test_an_approval_for_another_request_is_refused(world):
    staging = request(world, "staging")
    production = request(world, "production")
    approval = secrets.approve(world.runtime("run-approve"), production.request_id, CISO)
    with pytest.raises(Refused) as caught:
        secrets.rotate(world.runtime("run-rotate"), staging.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "approval_binding"
    [row] = audit(world, secrets.ROTATE, "refused")
    assert row.subject == staging.request_id and production.request_id in row.reason
    # the approval stays unused for its own request
    assert world.warehouse.secrets.approval(approval.approval_id).used_by_run is None


def test_an_expired_approval_is_refused(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    advance(world, world.config.secrets.approval_ttl_hours + 1)
    before = serving(world)
    with pytest.raises(Refused) as caught:
        secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "approval_expired"
    [row] = audit(world, secrets.ROTATE, "refused")
    assert "expired" in row.reason and row.detail["approval"] == approval.approval_id
    assert serving(world) == before


def test_an_approval_runs_one_rotation(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    with pytest.raises(Refused) as caught:
        secrets.rotate(world.runtime("run-again"), req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "approval_used"


def test_a_request_expires_unapproved_and_a_new_one_follows(world):
    req = request(world)
    advance(world, world.config.secrets.request_ttl_hours + 1)
    with pytest.raises(Refused) as caught:
        secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    assert caught.value.rule == "request_expired"
    done = secrets.check_due(world.runtime("run-check"))
    assert req.request_id in done.expired
    assert world.warehouse.secrets.request(req.request_id).state == "expired"
    assert [e.outcome for e in audit(world, secrets.REQUEST) if e.subject == req.request_id] == [
        "allowed",
        "expired",
    ]
    assert ("staging", GATEWAY) in {(r.environment, r.secret) for r in done.requested}


def test_a_failed_smoke_test_keeps_the_old_version_and_the_request_open(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    before = serving(world)
    world.app().refuse_secret(STAGING, GATEWAY)  # the provider rejects any new value
    with pytest.raises(secrets.RotationFailed, match="smoke"):
        secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert serving(world) == before
    deployments = world.runtime("r").client.list_deployments(STAGING)
    newest = max(deployments, key=lambda d: d["created_on"])
    assert newest["versions"] == [(before, 100.0)]
    stored = world.warehouse.secrets.request(req.request_id)
    assert stored.state == "failed"
    assert world.warehouse.secrets.open_requests(STAGING)[GATEWAY] == req.request_id
    assert [e.outcome for e in audit(world, secrets.ROTATE)] == ["allowed", "failed"]
    assert "secret_rotation_failed" in world.notices()
    made = {v.version_id: v for v in world.warehouse.secrets.versions(STAGING)}
    abandoned = [v for v in made.values() if v.outcome == "abandoned"]
    assert len(abandoned) == 1 and abandoned[0].based_on == before
    # no second request for the same secret while this one is open
    assert secrets.check_due(world.runtime("r2")).already_open.count(req.request_id) == 1


def test_a_retry_rolls_forward_over_its_own_abandoned_version(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    world.app().refuse_secret(STAGING, GATEWAY)
    with pytest.raises(secrets.RotationFailed):
        secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    # approved again after the failure: the retry builds on its own abandoned version
    again = secrets.approve(world.runtime("run-approve-2"), req.request_id, LEAD)
    with pytest.raises(secrets.RotationFailed):  # the provider still refuses
        secrets.rotate(world.runtime("run-rotate-2"), req.request_id, again.approval_id, OPS)
    assert [e.outcome for e in audit(world, secrets.ROTATE)] == [
        "allowed",
        "failed",
        "allowed",
        "failed",
    ]


def test_latest_not_deployed_is_refused(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    before = serving(world)
    world.push()  # a build uploads a version nobody deployed yet
    with pytest.raises(Refused) as caught:
        secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "latest_is_deployed"
    assert "undeployed code" in str(caught.value)
    [row] = audit(world, secrets.ROTATE, "refused")
    assert "latest_is_deployed" in row.reason
    assert serving(world) == before
    # nothing was used up: the request is still approved
    assert world.warehouse.secrets.request(req.request_id).state == "approved"
    assert world.warehouse.secrets.approval(approval.approval_id).used_by_run is None


def test_a_held_deploy_lock_refuses_the_rotation(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    now = world.app().now()
    world.warehouse.deploys.acquire("staging", "run-deploy", OPS, "abc", now, lambda r: True)
    rt = world.runtime("run-rotate", active=("run-deploy",))
    with pytest.raises(Refused) as caught:
        secrets.rotate(rt, req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "one_at_a_time" and "run-deploy" in str(caught.value)


def test_a_value_from_a_variable(world, monkeypatch):
    value = random.token_urlsafe(40)
    monkeypatch.setenv(NEXT_KEY, value + "\n")
    req = request(world, secret=ANTHROPIC)
    assert req.source == f"env:{NEXT_KEY}"
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, LEAD)
    outcome = secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    stored = world.app().secret_digest(STAGING, outcome.staged_version, ANTHROPIC)
    assert stored == hashlib.sha256(value.encode()).hexdigest()  # trailing newline dropped


def test_an_unset_variable_refuses_before_anything_changes(world, monkeypatch):
    monkeypatch.delenv(NEXT_KEY, raising=False)
    req = request(world, secret=ANTHROPIC)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, LEAD)
    with pytest.raises(Refused) as caught:
        secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "source" and NEXT_KEY in str(caught.value)
    assert world.warehouse.secrets.request(req.request_id).state == "approved"


def test_a_value_from_a_file(world, tmp_path):
    value = random.token_hex(32)
    path = tmp_path / "gateway-token.txt"
    path.write_text(value + "\n", encoding="utf-8")
    settings = world.config.secrets
    policies = tuple(
        SecretPolicy(p.name, p.max_age_days, f"file:{path}") if p.name == GATEWAY else p
        for p in settings.policies
    )
    config = replace(world.config, secrets=replace(settings, policies=policies))

    def runtime(run_id):
        return open_runtime(config, world.warehouse, None, world.repo, run_id, lambda r: False)

    done = secrets.check_due(runtime("run-request"), CISO, "rotate from file", "staging", GATEWAY)
    [req] = done.requested
    approval = secrets.approve(runtime("run-approve"), req.request_id, LEAD)
    outcome = secrets.rotate(runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    stored = world.app().secret_digest(STAGING, outcome.staged_version, GATEWAY)
    assert stored == hashlib.sha256(value.encode()).hexdigest()
    # the policy the demo file says now differs from the one approved: refused
    other = request(world, "production", GATEWAY)
    ok = secrets.approve(runtime("run-approve-p"), other.request_id, LEAD)
    with pytest.raises(Refused) as caught:
        secrets.rotate(runtime("run-rotate-p"), other.request_id, ok.approval_id, OPS)
    assert caught.value.rule == "policy_changed"


def test_a_request_for_a_secret_the_worker_lacks_is_refused_and_audited(world):
    with pytest.raises(Refused) as caught:
        secrets.check_due(world.runtime("r"), CISO, "why", "staging", "NO_SUCH_SECRET")
    assert caught.value.rule == "secret"
    [row] = audit(world, secrets.REQUEST, "refused")
    assert (row.environment, row.subject) == ("staging", "staging:NO_SUCH_SECRET")


def test_no_rotation_without_its_audit_row(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    before = serving(world)
    wh = world.warehouse
    with wh.engine.begin() as conn:  # the audit table refuses every new row from now on
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END"
        )
    with pytest.raises(WarehouseWriteError, match="audit_log"):
        secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert serving(world) == before
    assert wh.secrets.request(req.request_id).state == "approved"
    assert wh.secrets.approval(approval.approval_id).used_by_run is None
    assert wh.deploys.holder("staging") is None  # the lock was given back


def test_an_unreadable_worker_refuses_the_rotation(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    rt = world.runtime("run-rotate")
    rt.client.close()
    app = load_app(world.config.cloudflare.emulator_state, persist=True)
    app.fail_next(r"/deployments", 500, times=20)
    rt.client = CloudflareClient(
        world.config.cloudflare.account_id,
        EMULATOR_TOKEN,
        EMULATOR_URL,
        transport=httpx.WSGITransport(app=app),
    )
    with pytest.raises(Refused) as caught:
        secrets.rotate(rt, req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "facts"
    [row] = audit(world, secrets.ROTATE, "refused")
    assert "could not be read" in row.reason
    assert world.warehouse.secrets.request(req.request_id).state == "approved"


# -- one person, one identity ---------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "CISO@moltworker.example",
        " ciso@moltworker.example",
        "ciso@moltworker.example ",
        "Ciso@Moltworker.Example",
    ],
)
def test_a_requester_spelled_differently_still_cannot_approve(world, spelling):
    req = request(world, by=spelling)
    assert req.requested_by == CISO  # kept in normal form
    before = serving(world)
    with pytest.raises(Refused) as caught:
        secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    assert caught.value.rule == "two_person"
    [row] = audit(world, secrets.APPROVE, "refused")
    assert row.subject == req.request_id and "two_person" in row.reason
    assert world.warehouse.secrets.request(req.request_id).state == "requested"
    assert serving(world) == before


@pytest.mark.parametrize(
    "spelling",
    [
        "ciso@moltworker.example.",  # the same domain, written fully qualified
        "\u0441iso@moltworker.example",  # a Cyrillic letter that looks like "c"
        "ciso@moltworker.example\u200b",  # an invisible character
        "nobody",
    ],
)
def test_a_requester_that_is_not_a_plain_address_is_refused_and_audited(world, spelling):
    with pytest.raises(Refused) as caught:
        secrets.check_due(world.runtime("run-request"), spelling, "test", "staging", GATEWAY)
    assert caught.value.rule == "identity"
    [row] = audit(world, secrets.REQUEST, "refused")
    assert (row.environment, row.subject) == ("staging", f"staging:{GATEWAY}")
    assert row.actor.isascii() and "identity" in row.reason
    assert world.warehouse.secrets.open_requests(STAGING) == {}


def test_an_approver_is_recorded_in_normal_form_and_a_look_alike_is_refused(world):
    req = request(world, by=OPS)
    with pytest.raises(Refused) as caught:
        secrets.approve(
            world.runtime("run-approve"), req.request_id, "\u0441iso@moltworker.example"
        )
    assert caught.value.rule == "identity"
    assert world.warehouse.secrets.request(req.request_id).state == "requested"
    approval = secrets.approve(
        world.runtime("run-approve-2"), req.request_id, " CISO@moltworker.example"
    )
    assert approval.approver == CISO
    assert world.warehouse.secrets.approval(approval.approval_id).approver == CISO
    assert [e.actor for e in audit(world, secrets.APPROVE)] == [
        "\\u0441iso@moltworker.example",
        CISO,
    ]


def test_a_rotation_runner_that_is_not_a_plain_address_is_refused_before_anything(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    before = serving(world)
    with pytest.raises(Refused) as caught:
        secrets.rotate(world.runtime("run-rotate"), req.request_id, approval.approval_id, "ops")
    assert caught.value.rule == "identity"
    [row] = audit(world, secrets.ROTATE, "refused")
    assert row.subject == req.request_id and "identity" in row.reason
    assert serving(world) == before
    assert world.warehouse.secrets.approval(approval.approval_id).used_by_run is None


# -- where a value comes from -----------------------------------------------------------


def file_policy_runtime(world, path):
    """Runtimes of a platform file whose gateway token comes from ``path``."""
    settings = world.config.secrets
    policies = tuple(
        SecretPolicy(p.name, p.max_age_days, f"file:{path}") if p.name == GATEWAY else p
        for p in settings.policies
    )
    config = replace(world.config, secrets=replace(settings, policies=policies))
    return lambda run_id, active=(): open_runtime(
        config, world.warehouse, None, world.repo, run_id, lambda r: r in active
    )


def approved_from(world, path):
    runtime = file_policy_runtime(world, path)
    done = secrets.check_due(runtime("run-request"), OPS, "from a file", "staging", GATEWAY)
    [req] = done.requested
    approval = secrets.approve(runtime("run-approve"), req.request_id, CISO)
    return runtime, req, approval


def fifo(tmp_path):
    path = tmp_path / "token.fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (fifo, "is not a regular file"),  # would block until someone writes
        (lambda tmp_path: Path("/dev/zero"), "is not a regular file"),  # would never end
        (lambda tmp_path: tmp_path, "is not a regular file"),
        (lambda tmp_path: tmp_path / "absent.txt", "cannot be read"),
    ],
)
def test_a_file_source_that_is_not_a_regular_file_is_refused_at_once(world, tmp_path, make, says):
    path = make(tmp_path)
    runtime, req, approval = approved_from(world, path)
    before = serving(world)
    started = time.monotonic()
    with pytest.raises(Refused) as caught:
        secrets.rotate(runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert time.monotonic() - started < 5
    assert caught.value.rule == "source"
    assert f"file {path} {says}" in str(caught.value)
    [row] = audit(world, secrets.ROTATE, "refused")
    assert f"file {path}" in row.reason
    assert serving(world) == before
    assert world.warehouse.deploys.holder("staging") is None
    assert world.warehouse.secrets.request(req.request_id).state == "approved"


def test_a_file_over_cloudflares_secret_size_is_refused_and_one_at_it_is_rotated(world, tmp_path):
    cap = domain.MAX_SECRET_BYTES
    big = tmp_path / "big.txt"
    big.write_bytes(b"A" * (20 * 1024 * 1024))
    runtime, req, approval = approved_from(world, big)
    with pytest.raises(Refused) as caught:
        secrets.rotate(runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "source" and f"larger than {cap} bytes" in str(caught.value)
    assert "AAAA" not in str(caught.value)
    assert world.warehouse.secrets.request(req.request_id).state == "approved"

    value = random.token_hex(cap // 2)  # exactly the limit, with a final newline
    big.write_text(value + "\n", encoding="ascii")
    outcome = secrets.rotate(runtime("run-rotate-2"), req.request_id, approval.approval_id, OPS)
    assert outcome.promoted
    stored = world.app().secret_digest(STAGING, outcome.staged_version, GATEWAY)
    assert stored == hashlib.sha256(value.encode()).hexdigest()


@pytest.mark.parametrize(
    "content", [b"\xe2\x80\xa8x\xe2\x80\xa8", b"a\xc2\x85b", b"a\xc2\x9bb", b"line1\nline2"]
)
def test_a_file_value_with_any_line_break_or_control_is_refused(world, tmp_path, content):
    path = tmp_path / "value.txt"
    path.write_bytes(content)
    runtime, req, approval = approved_from(world, path)
    with pytest.raises(Refused) as caught:
        secrets.rotate(runtime("run-rotate"), req.request_id, approval.approval_id, OPS)
    assert caught.value.rule == "source" and f"file {path}" in str(caught.value)
    assert world.warehouse.secrets.request(req.request_id).state == "approved"


def test_the_value_is_read_before_the_deploy_lock_is_taken(world, monkeypatch):
    monkeypatch.delenv(NEXT_KEY, raising=False)
    req = request(world, secret=ANTHROPIC)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, LEAD)
    now = world.app().now()
    world.warehouse.deploys.acquire("staging", "run-deploy", OPS, "abc", now, lambda r: True)
    rt = world.runtime("run-rotate", active=("run-deploy",))
    with pytest.raises(Refused) as caught:
        secrets.rotate(rt, req.request_id, approval.approval_id, OPS)
    # the source was refused first: the lock (held by another run) was never asked for
    assert caught.value.rule == "source"
    assert world.warehouse.deploys.holder("staging") == "run-deploy"


def test_the_emulator_refuses_a_secret_over_the_size_limit_like_cloudflare(world):
    from devops_assets.sources.cloudflare import CloudflareError

    client = world.runtime("run-api").client
    versions = len(client.list_versions(STAGING))
    over = "x" * (domain.MAX_SECRET_BYTES + 1)
    with pytest.raises(CloudflareError) as caught:
        client.put_version_secrets(STAGING, {GATEWAY: over}, "too big")
    assert caught.value.code == 10001 and "too large" in str(caught.value)
    assert over not in str(caught.value)
    assert len(client.list_versions(STAGING)) == versions  # nothing was made


# -- an answer lost on the way back ------------------------------------------------------


class LosesAnswers(httpx.BaseTransport):
    """The network between the client and the emulator app: requests reach the app,
    which does what they ask; the answer to the first ``times`` ``method`` requests
    whose path ends with ``suffix`` is lost on the way back (a 502 from a proxy in
    between, or the connection dropped)."""

    def __init__(self, app, method: str, suffix: str, how: str, times: int = 1):
        self.inner = httpx.WSGITransport(app=app)
        self.method, self.suffix, self.how, self.times = method, suffix, how, times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method != self.method or not request.url.path.endswith(self.suffix):
            return response
        if self.times <= 0:
            return response
        self.times -= 1
        response.read()
        if self.how == "dropped":
            raise httpx.RemoteProtocolError("connection closed with no answer", request=request)
        body = {"success": False, "errors": [{"code": 10013, "message": "bad gateway"}]}
        return httpx.Response(502, json={**body, "messages": [], "result": None}, request=request)


@pytest.mark.parametrize("how", ["502", "dropped"])
def test_a_lost_answer_to_the_staging_patch_does_not_block_the_retry(world, how):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    before = serving(world)
    count = len(world.runtime("r").client.list_versions(STAGING))
    rt = world.runtime("run-rotate")
    rt.client.close()
    app = load_app(world.config.cloudflare.emulator_state, persist=True)
    transport = LosesAnswers(app, "PATCH", "/versions/latest", how)
    account = world.config.cloudflare.account_id
    rt.client = CloudflareClient(account, EMULATOR_TOKEN, EMULATOR_URL, transport=transport)
    with pytest.raises(secrets.RotationFailed, match="recorded as abandoned"):
        secrets.rotate(rt, req.request_id, approval.approval_id, OPS)

    # Cloudflare made the version; the platform recognised it by its message
    versions = world.runtime("r").client.list_versions(STAGING)
    assert len(versions) == count + 1
    lost = max(versions, key=lambda v: v["number"])
    assert req.request_id in lost["annotations"]["workers/message"]
    made = {v.version_id: v for v in world.warehouse.secrets.versions(STAGING)}
    assert made[lost["id"]].outcome == "abandoned" and made[lost["id"]].based_on == before
    assert serving(world) == before
    assert world.warehouse.secrets.request(req.request_id).state == "failed"

    again = secrets.approve(world.runtime("run-approve-2"), req.request_id, LEAD)
    outcome = secrets.rotate(world.runtime("run-rotate-2"), req.request_id, again.approval_id, OPS)
    assert outcome.promoted and serving(world) == outcome.staged_version != lost["id"]
    assert world.warehouse.secrets.request(req.request_id).state == "rotated"


def test_a_version_someone_else_made_after_a_failed_patch_is_not_taken_as_ours(world):
    req = request(world)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    rt = world.runtime("run-rotate")
    rt.client.close()
    app = load_app(world.config.cloudflare.emulator_state, persist=True)

    class Interleaved(LosesAnswers):
        def handle_request(self, request):
            if request.method == "PATCH" and self.times > 0:
                # a person's undeployed change lands, then our PATCH is refused
                self.times -= 1
                derive_version(
                    app,
                    STAGING,
                    app.state.latest_version(STAGING),
                    {GATEWAY: "0" * 64},
                    author="lena@moltworker.example",
                    message='Updated secret "MOLTBOT_GATEWAY_TOKEN"',
                    source="wrangler",
                )
                body = {"success": False, "errors": [{"code": 10013, "message": "busy"}]}
                return httpx.Response(500, json={**body, "messages": [], "result": None})
            return super().handle_request(request)

    account = world.config.cloudflare.account_id
    rt.client = CloudflareClient(
        account, EMULATOR_TOKEN, EMULATOR_URL, transport=Interleaved(app, "", "", "502")
    )
    with pytest.raises(secrets.RotationFailed, match="is not ours"):
        secrets.rotate(rt, req.request_id, approval.approval_id, OPS)
    assert [v.outcome for v in world.warehouse.secrets.versions(STAGING)] == []


def test_rotations_are_no_new_deployments_and_a_withdrawn_test_is_no_rollback(world):
    """What the metric engine reads of a rotation: its 0.01 % test and its promotion
    carry the serving commit (folded into the deployment already serving it), and a
    test that fails, whose previous version is put back, is not a rollback of code."""
    from devops_assets.domain.engine import deployed

    tag = next(w.tag for w in world.config.workers if w.name == STAGING)

    def read():
        records = world.runtime("r").client.worker_deployments(STAGING, tag, "staging")
        return records, deployed(records, "staging")

    before, served_before = read()
    ok = request(world)
    approval = secrets.approve(world.runtime("run-approve"), ok.request_id, CISO)
    secrets.rotate(world.runtime("run-rotate"), ok.request_id, approval.approval_id, OPS)
    after, served_after = read()
    assert len(after) == len(before) + 2  # the test step and the promotion
    assert {r.commit_sha for r in after[:2]} == {before[0].commit_sha}
    assert len(served_after) == len(served_before)

    world.app().refuse_secret(STAGING, GATEWAY)  # the provider takes no newer value
    bad = request(world)
    approval = secrets.approve(world.runtime("run-approve-2"), bad.request_id, CISO)
    with pytest.raises(secrets.RotationFailed):
        secrets.rotate(world.runtime("run-rotate-2"), bad.request_id, approval.approval_id, OPS)
    failed, served_failed = read()
    assert len(failed) == len(after) + 2  # the test step and the restore
    assert [r.kind for r in failed[:2]] == ["deploy", "deploy"]
    assert len(served_failed) == len(served_before)


# -- after a failed rotation: its staged value must not go live unnoticed --------------


def fail_rotation(world, secret=GATEWAY):
    """A rotation whose test deployment is made but its answer lost: the previous
    version serves again and the staged version V' stays the latest, abandoned.
    Returns the request and V'."""
    req = request(world, secret=secret)
    approval = secrets.approve(world.runtime("run-approve-f"), req.request_id, CISO)
    rt = world.runtime("run-rotate-f")
    rt.client.close()
    app = load_app(world.config.cloudflare.emulator_state, persist=True)
    transport = LosesAnswers(app, "POST", "/deployments", "502")
    account = world.config.cloudflare.account_id
    rt.client = CloudflareClient(account, EMULATOR_TOKEN, EMULATOR_URL, transport=transport)
    before = serving(world)
    with pytest.raises(secrets.RotationFailed):
        secrets.rotate(rt, req.request_id, approval.approval_id, OPS)
    assert serving(world) == before
    versions = world.runtime("r").client.list_versions(STAGING)
    staged = max(versions, key=lambda v: v["number"])["id"]
    made = {v.version_id: v.outcome for v in world.warehouse.secrets.versions(STAGING)}
    assert made[staged] == "abandoned"
    return req, staged


def test_a_build_after_a_failed_rotation_carries_its_value_flagged_and_a_retry_clears_it(world):
    from devops_assets.delivery import deployer
    from devops_assets_tests.deploy_fixtures import GOOD

    before = serving(world)
    req, abandoned = fail_rotation(world)
    app = world.app()
    old = app.secret_digest(STAGING, before, GATEWAY)
    never_promoted = app.secret_digest(STAGING, abandoned, GATEWAY)
    assert never_promoted != old

    # a build pushed now copies the latest version's secrets (Cloudflare's model):
    # the deploy goes on, but the audit log and a notice name the secret and request
    sha = world.push(GOOD)
    out = deployer.deploy(world.runtime("run-deploy"), "staging", sha, OPS, "ship")
    assert serving(world) == out.version_id
    assert world.app().secret_digest(STAGING, out.version_id, GATEWAY) == never_promoted
    [warning] = [e for e in audit(world, "deploy") if e.outcome == "warning"]
    assert warning.detail == {
        "version": out.version_id,
        "failed_rotation_values": [
            {"secret": GATEWAY, "request_id": req.request_id, "staged_version": abandoned}
        ],
    }
    assert GATEWAY in warning.reason and req.request_id in warning.reason
    notices = Path(world.config.deploy.notify_file).read_text(encoding="utf-8").splitlines()
    assert world.notices()[-3:] == ["deploy_started", "secret_rotation_failed", "deployed"]
    assert GATEWAY in notices[-2] and req.request_id in notices[-2] and sha[:12] in notices[-2]

    # the inventory says the failed rotation's value is live: age unknown, due now
    rows = {(r.environment, r.secret): r for r in secrets.inventory(world.runtime("run-inv"))}
    row = rows[("staging", GATEWAY)]
    assert (row.status, row.due_at, row.failed_rotation) == ("unknown_age", None, req.request_id)
    assert req.request_id in row.note and abandoned in row.note and "never promoted" in row.note
    assert row.age_days(world.app().now()) is None and domain.is_due(row, world.app().now())
    assert rows[("staging", ANTHROPIC)].failed_rotation is None
    assert rows[("production", GATEWAY)].failed_rotation is None
    from devops_assets.defs.secrets.assets import inventory_markdown

    shown = inventory_markdown(list(rows.values()), world.app().now())
    assert f"- `{GATEWAY}` on {STAGING}: {row.note}" in shown.split("**Notes:**")[1]
    # the failed request is still open: the next check asks no second one
    assert req.request_id in secrets.check_due(world.runtime("run-check")).already_open

    # retried, the rotation promotes a new value on the deployed build: flag gone
    again = secrets.approve(world.runtime("run-approve-2"), req.request_id, LEAD)
    outcome = secrets.rotate(world.runtime("run-rotate-2"), req.request_id, again.approval_id, OPS)
    assert outcome.promoted and outcome.previous_version == out.version_id
    rows = {(r.environment, r.secret): r for r in secrets.inventory(world.runtime("run-inv-2"))}
    assert rows[("staging", GATEWAY)].failed_rotation is None
    assert rows[("staging", GATEWAY)].status == "ok"


def test_the_flag_is_cleared_only_by_a_later_change_of_that_secret():
    """``failed_values`` on version lists: what clears a failed rotation's value."""
    from datetime import UTC, datetime

    at = datetime(2026, 12, 1, tzinfo=UTC)

    def version(number, trigger="upload", message=""):
        notes = {domain.TRIGGERED_BY: trigger, domain.MESSAGE: message}
        return {"id": f"v{number}", "number": number, "created_on": at, "annotations": notes}

    def made(number, outcome, names=(GATEWAY,), request="rot-x"):
        return domain.VersionMade(STAGING, f"v{number}", "v1", names, request, at, outcome)

    versions = [version(1), version(2, "secret", "ours"), version(3)]
    ours = [made(2, "abandoned")]
    assert domain.failed_values(versions, ours, ["v3"]) == {GATEWAY: ours[0]}
    assert domain.failed_values(versions, ours, ["v1"]) == {}  # below it: not carried
    assert domain.failed_values(versions, [made(2, "promoted")], ["v3"]) == {}
    # a promoted rotation of the same secret between them clears it; of another, not
    promoted = [*ours, made(3, "promoted")]
    more = [*versions, version(4)]
    assert domain.failed_values(more, promoted, ["v4"]) == {}
    other = [*ours, made(3, "promoted", (ANTHROPIC,))]
    assert domain.failed_values(more, other, ["v4"]) == {GATEWAY: ours[0]}
    # a person's `wrangler secret put` of that secret clears it; of another, not
    put = [*versions, version(4, "secret", f'Updated secret "{GATEWAY}"'), version(5)]
    assert domain.failed_values(put, ours, ["v5"]) == {}
    put = [*versions, version(4, "secret", f'Updated secret "{ANTHROPIC}"'), version(5)]
    assert domain.failed_values(put, ours, ["v5"]) == {GATEWAY: ours[0]}
    # of two failed attempts, the newer one's value is the one carried
    twice = [version(1), version(2, "secret"), version(3, "secret"), version(4)]
    both = [made(2, "abandoned", request="rot-a"), made(3, "abandoned", request="rot-b")]
    assert domain.failed_values(twice, both, ["v4"])[GATEWAY].request_id == "rot-b"


# -- an API answer that quotes a long value back ------------------------------------------

LATEST = r"/workers/workers/[^/]+/versions/latest$"


def long_value(kind: str) -> str:
    """600 characters (over the client's 500-character cut of an API message)."""
    if kind == "ascii":
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
        return "".join(random.choice(alphabet) for _ in range(600))
    letters = "äöüßéèñçøåжщфыяλπΩ漢字"
    return "".join(random.choice(letters) for _ in range(600))


def quoting_client(world, value: str) -> CloudflareClient:
    """The emulator answering the next PATCH with an error that quotes ``value`` whole."""
    app = load_app(world.config.cloudflare.emulator_state, persist=True)
    error = {"code": 10021, "message": f"Invalid secret text: {value} (rejected)"}
    body = {"success": False, "errors": [error], "messages": [], "result": None}
    app.fail_next(LATEST, 400, body=body)
    account = world.config.cloudflare.account_id
    return CloudflareClient(
        account, EMULATOR_TOKEN, EMULATOR_URL, transport=httpx.WSGITransport(app=app)
    )


def pieces_shown(value: str, text: str, size: int = 8) -> list[str]:
    """Runs of ``size`` characters of ``value`` found in ``text``."""
    return sorted(
        {value[i : i + size] for i in range(len(value) - size + 1)}
        & {text[i : i + size] for i in range(len(text) - size + 1)}
    )


def everything_stored(world) -> str:
    from devops_assets.store.tables import METADATA

    tables = [repr(world.warehouse.snapshot(name)) for name in sorted(METADATA.tables)]
    notices = world.home.joinpath("notifications.jsonl")
    text = notices.read_text(encoding="utf-8") if notices.exists() else ""
    return "\n".join([*tables, text])


@pytest.mark.parametrize("kind", ["ascii", "non-ascii"])
def test_a_long_value_the_api_quotes_back_shows_nowhere(world, monkeypatch, caplog, kind):
    """The error that quotes the value is hidden before it is cut: no run of 8
    characters of the value in the exception, audit rows, notices, any warehouse
    table (the request row included) or the log."""
    value = long_value(kind)
    monkeypatch.setenv(NEXT_KEY, value)
    req = request(world, secret=ANTHROPIC)
    approval = secrets.approve(world.runtime("run-approve"), req.request_id, CISO)
    rt = world.runtime("run-rotate")
    rt.client.close()
    rt.client = quoting_client(world, value)
    with pytest.raises(secrets.RotationFailed) as caught:
        secrets.rotate(rt, req.request_id, approval.approval_id, OPS)
    error = f"{caught.value} {caught.value.args!r} {caught.value!r}"
    assert "Invalid secret text: ***" in error and "10021" in error
    assert pieces_shown(value, error) == []
    assert world.warehouse.secrets.request(req.request_id).state == "failed"
    assert [e.outcome for e in audit(world, secrets.ROTATE)] == ["allowed", "failed"]
    assert pieces_shown(value, everything_stored(world)) == []
    assert pieces_shown(value, caplog.text) == []
