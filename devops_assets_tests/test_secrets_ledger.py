"""The secret tables on SQLite and PostgreSQL: writes are idempotent, one open
request per secret, approvals used once, state moves compare-and-set."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from devops_assets.domain.secrets import Approval, InventoryRow, RotationRequest, VersionMade
from devops_assets.store.secrets_ledger import (
    SECRET_APPROVALS,
    SECRET_INVENTORY,
    SECRET_OPEN,
    SECRET_REQUESTS,
    SECRET_VERSIONS,
)
from devops_assets.store.warehouse import Warehouse

AT = datetime(2026, 11, 30, 18, tzinfo=UTC)
TABLES = [
    t.name
    for t in (SECRET_REQUESTS, SECRET_OPEN, SECRET_APPROVALS, SECRET_VERSIONS, SECRET_INVENTORY)
]


def request(request_id="rot-1", secret="TOKEN", requested_by="sched") -> RotationRequest:
    made = RotationRequest(
        request_id,
        "staging",
        "w",
        secret,
        "generate",
        30,
        "48:alphanumeric",
        requested_by,
        "due",
        AT,
        AT + timedelta(hours=72),
    )
    return replace(made, request_hash=made.digest())


def approval(req: RotationRequest, approval_id="apr-1") -> Approval:
    return Approval(
        approval_id,
        req.request_id,
        req.request_hash,
        "ciso@x.example",
        AT,
        AT + timedelta(hours=24),
    )


def fill_secrets(wh: Warehouse) -> None:
    """One row in each secret table, written the way the rotation jobs write them."""
    ledger = wh.secrets
    req = request()
    ledger.add_request(req)
    ledger.approve(approval(req), ("requested",), AT)
    ledger.record_version(VersionMade("w", "v-2", "v-1", ("TOKEN",), "rot-1", AT, "promoted"))
    row = InventoryRow(
        "staging", "w", "TOKEN", True, AT, False, None, 30, AT + timedelta(days=30), "ok", "rot-1"
    )
    ledger.replace_inventory([row], AT)


def test_writing_the_same_rows_again_changes_no_table(warehouse_url):
    wh = Warehouse(warehouse_url)
    fill_secrets(wh)
    before = {name: wh.snapshot(name) for name in TABLES}
    assert all(before.values())
    fill_secrets(wh)
    Warehouse(warehouse_url).close()
    assert {name: wh.snapshot(name) for name in TABLES} == before
    assert wh.secrets.request("rot-1") == replace(
        request(), state="approved", updated_at=AT, detail=wh.secrets.request("rot-1").detail
    )
    assert wh.secrets.inventory()[0].secret == "TOKEN"
    wh.close()


def test_one_open_request_per_secret(warehouse_url):
    wh = Warehouse(warehouse_url)
    ledger = wh.secrets
    assert ledger.add_request(request("rot-1")) == "rot-1"
    assert ledger.add_request(request("rot-2")) == "rot-1"  # not stored
    assert ledger.request("rot-2") is None
    assert ledger.add_request(request("rot-3", secret="OTHER")) == "rot-3"
    assert ledger.open_requests("w") == {"TOKEN": "rot-1", "OTHER": "rot-3"}
    # moved out of the open states, the secret is free again
    assert ledger.move("rot-1", ("requested",), "expired", "ttl", AT)
    assert not ledger.move("rot-1", ("requested",), "expired", "ttl", AT)  # compare-and-set
    assert ledger.add_request(request("rot-2")) == "rot-2"
    wh.close()


def test_an_approval_is_used_once_even_by_racing_runs(warehouse_url):
    wh = Warehouse(warehouse_url)
    ledger = wh.secrets
    req = request()
    ledger.add_request(req)
    assert ledger.approve(approval(req), ("requested",), AT)
    assert not ledger.approve(approval(req, "apr-2"), ("requested",), AT)  # already approved
    assert ledger.approval("apr-2") is None
    won = []
    barrier = threading.Barrier(4)

    def claim(run_id):
        barrier.wait()
        won.append((run_id, Warehouse(warehouse_url).secrets.claim("rot-1", "apr-1", run_id, AT)))

    threads = [threading.Thread(target=claim, args=(f"run-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [run for run, ok in won if ok]
    assert len(winners) == 1
    assert ledger.approval("apr-1").used_by_run == winners[0]
    assert ledger.request("rot-1").state == "running"
    wh.close()


def test_a_version_made_is_recorded_once_and_its_outcome_updated(warehouse_url):
    wh = Warehouse(warehouse_url)
    made = VersionMade("w", "v-2", "v-1", ("B", "A"), "rot-1", AT, "staged")
    wh.secrets.record_version(made)
    wh.secrets.record_version(replace(made, outcome="abandoned"))
    [stored] = wh.secrets.versions("w")
    assert stored == replace(made, names=("A", "B"), outcome="abandoned")
    wh.close()
