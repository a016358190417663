"""Secret rotation state in the warehouse: requests, approvals, versions we made,
the last inventory. Never a value: names, ids, people, instants and states only.

Each write is one transaction and safe to repeat: a request or approval stored
again with its id changes nothing; a state moves only from the state the caller
saw (compare-and-set), so two runs cannot both claim one approval. At most one
open request per worker and secret: the ``secret_open_requests`` row, inserted in
the request's own transaction, is the guard on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from devops_assets.domain.secrets import (
    OPEN_STATES,
    STATES,
    Approval,
    InventoryRow,
    RotationRequest,
    VersionMade,
)
from devops_assets.store.tables import METADATA, UtcDateTime


def _text(name: str, nullable: bool = False, **kwargs) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=nullable, **kwargs)


def _instant(name: str, nullable: bool = False, **kwargs) -> sa.Column:
    return sa.Column(name, UtcDateTime(), nullable=nullable, **kwargs)


# One row per rotation request, its frozen fields and its state.
SECRET_REQUESTS = sa.Table(
    "secret_rotation_requests",
    METADATA,
    _text("request_id", primary_key=True),
    _text("environment"),
    _text("worker"),
    _text("secret"),
    _text("source"),  # generate | env:VAR | file:PATH — never a value
    sa.Column("max_age_days", sa.Integer, nullable=False),
    _text("generator"),
    _text("requested_by"),
    _text("reason"),
    _instant("requested_at"),
    _instant("expires_at"),
    _text("request_hash"),
    _text("state"),
    _instant("updated_at"),
    _text("detail"),
)

# The open request of each worker and secret (the one-open-rotation guard).
SECRET_OPEN = sa.Table(
    "secret_open_requests",
    METADATA,
    _text("worker", primary_key=True),
    _text("secret", primary_key=True),
    _text("request_id"),
)

# One row per approval, bound to the hash of the request it approved; used once.
SECRET_APPROVALS = sa.Table(
    "secret_approvals",
    METADATA,
    _text("approval_id", primary_key=True),
    _text("request_id"),
    _text("request_hash"),
    _text("approver"),
    _instant("approved_at"),
    _instant("expires_at"),
    _text("used_by_run", nullable=True),
    sa.Index("ix_secret_approvals_request", "request_id"),
)

# Every Worker version this platform made to change secrets, by its id: what tells
# our own changes from changes made elsewhere, and the ages of rotated secrets.
SECRET_VERSIONS = sa.Table(
    "secret_versions",
    METADATA,
    _text("worker", primary_key=True),
    _text("version_id", primary_key=True),
    _text("based_on"),
    _text("names"),  # JSON list of secret names set or removed
    _text("request_id"),
    _instant("made_at"),
    _text("outcome"),  # staged | promoted | abandoned | needs_attention
)

# The latest inventory: one row per environment and secret. Derived (rewritten whole).
SECRET_INVENTORY = sa.Table(
    "secret_inventory",
    METADATA,
    _text("environment", primary_key=True),
    _text("secret", primary_key=True),
    _text("worker"),
    sa.Column("present", sa.Boolean, nullable=False),
    _instant("last_rotated_at", nullable=True),
    sa.Column("changed_outside", sa.Boolean, nullable=False),
    _instant("changed_outside_at", nullable=True),
    sa.Column("max_age_days", sa.Integer, nullable=False),
    _instant("due_at", nullable=True),
    _text("status"),
    _text("open_request", nullable=True),
    _instant("checked_at"),
)


class SecretsLedger:
    """Reads and writes the secret tables of one warehouse."""

    def __init__(self, warehouse):
        self._warehouse = warehouse
        self.engine = warehouse.engine

    def _insert(self, table: sa.Table):
        return self._warehouse.insert(table)

    # -- requests ---------------------------------------------------------------------

    def add_request(self, request: RotationRequest) -> str:
        """Store a request and make it the secret's open one, in one transaction.
        Returns the id of the secret's open request: ``request.request_id`` when it
        was stored, another id (nothing stored) when that one is still open."""
        row = {c: getattr(request, c) for c in SECRET_REQUESTS.c.keys() if c != "updated_at"}
        row["updated_at"] = request.updated_at or request.requested_at
        try:
            with self.engine.begin() as conn:
                conn.execute(self._insert(SECRET_REQUESTS).values(row).on_conflict_do_nothing())
                claimed = conn.execute(
                    self._insert(SECRET_OPEN)
                    .values(
                        worker=request.worker, secret=request.secret, request_id=request.request_id
                    )
                    .on_conflict_do_nothing()
                )
                if claimed.rowcount != 1:
                    raise _Lost
        except _Lost:
            with self.engine.connect() as conn:
                return conn.execute(
                    sa.select(SECRET_OPEN.c.request_id).where(
                        SECRET_OPEN.c.worker == request.worker,
                        SECRET_OPEN.c.secret == request.secret,
                    )
                ).scalar_one()
        return request.request_id

    def request(self, request_id: str) -> RotationRequest | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(SECRET_REQUESTS).where(SECRET_REQUESTS.c.request_id == request_id)
            ).one_or_none()
        return _request(row) if row is not None else None

    def requests(self, state: str | None = None) -> list[RotationRequest]:
        """Requests oldest first, optionally in one state."""
        query = sa.select(SECRET_REQUESTS).order_by(
            SECRET_REQUESTS.c.requested_at, SECRET_REQUESTS.c.request_id
        )
        if state is not None:
            query = query.where(SECRET_REQUESTS.c.state == state)
        with self.engine.connect() as conn:
            return [_request(row) for row in conn.execute(query)]

    def open_requests(self, worker: str) -> dict[str, str]:
        """Secret name → its open request id, for one worker."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(SECRET_OPEN).where(SECRET_OPEN.c.worker == worker))
            return {row.secret: row.request_id for row in rows}

    def move(
        self, request_id: str, from_states: Iterable[str], to_state: str, detail: str, now: datetime
    ) -> bool:
        """Move a request from one of ``from_states``; False when it was elsewhere.
        A request that leaves the open states frees its secret for a new request."""
        if to_state not in STATES:
            raise ValueError(f"to_state: one of {', '.join(STATES)}, got {to_state!r}")
        with self.engine.begin() as conn:
            moved = conn.execute(
                SECRET_REQUESTS.update()
                .where(
                    SECRET_REQUESTS.c.request_id == request_id,
                    SECRET_REQUESTS.c.state.in_(list(from_states)),
                )
                .values(state=to_state, detail=detail[:1000], updated_at=now)
            )
            if moved.rowcount == 1 and to_state not in OPEN_STATES:
                conn.execute(SECRET_OPEN.delete().where(SECRET_OPEN.c.request_id == request_id))
        return moved.rowcount == 1

    # -- approvals ------------------------------------------------------------------

    def approve(self, approval: Approval, from_states: Iterable[str], now: datetime) -> bool:
        """Store the approval and move its request to ``approved``, in one
        transaction; False (nothing stored) when the request left ``from_states``."""
        row = {c: getattr(approval, c) for c in SECRET_APPROVALS.c.keys()}
        try:
            return self._approve(approval, from_states, now, row)
        except _Lost:
            return False

    def _approve(self, approval, from_states, now, row) -> bool:
        with self.engine.begin() as conn:
            moved = conn.execute(
                SECRET_REQUESTS.update()
                .where(
                    SECRET_REQUESTS.c.request_id == approval.request_id,
                    SECRET_REQUESTS.c.state.in_(list(from_states)),
                )
                .values(
                    state="approved",
                    detail=f"approved by {approval.approver} ({approval.approval_id})",
                    updated_at=now,
                )
            )
            if moved.rowcount != 1:
                raise _Lost
            conn.execute(self._insert(SECRET_APPROVALS).values(row).on_conflict_do_nothing())
        return True

    def approval(self, approval_id: str) -> Approval | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(SECRET_APPROVALS).where(SECRET_APPROVALS.c.approval_id == approval_id)
            ).one_or_none()
        return Approval(**row._asdict()) if row is not None else None

    def approvals(self, request_id: str) -> list[Approval]:
        query = (
            sa.select(SECRET_APPROVALS)
            .where(SECRET_APPROVALS.c.request_id == request_id)
            .order_by(SECRET_APPROVALS.c.approved_at)
        )
        with self.engine.connect() as conn:
            return [Approval(**row._asdict()) for row in conn.execute(query)]

    def claim(self, request_id: str, approval_id: str, run_id: str, now: datetime) -> bool:
        """Use the approval up and move the request to ``running``, at once; False
        when another run got there first."""
        try:
            with self.engine.begin() as conn:
                self._claim(conn, request_id, approval_id, run_id, now)
        except _Lost:
            return False
        return True

    def _claim(self, conn, request_id, approval_id, run_id, now) -> None:
        used = conn.execute(
            SECRET_APPROVALS.update()
            .where(
                SECRET_APPROVALS.c.approval_id == approval_id,
                SECRET_APPROVALS.c.used_by_run.is_(None),
            )
            .values(used_by_run=run_id)
        )
        moved = conn.execute(
            SECRET_REQUESTS.update()
            .where(
                SECRET_REQUESTS.c.request_id == request_id,
                SECRET_REQUESTS.c.state == "approved",
            )
            .values(state="running", detail=f"run {run_id}", updated_at=now)
        )
        if used.rowcount != 1 or moved.rowcount != 1:
            raise _Lost

    # -- versions we made ------------------------------------------------------------

    def record_version(self, made: VersionMade) -> None:
        """Store (or, for the same worker and version, update the outcome of) a
        version this platform made."""
        row = {
            "worker": made.worker,
            "version_id": made.version_id,
            "based_on": made.based_on,
            "names": json.dumps(sorted(made.names)),
            "request_id": made.request_id,
            "made_at": made.made_at,
            "outcome": made.outcome,
        }
        statement = self._insert(SECRET_VERSIONS).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=["worker", "version_id"], set_={"outcome": made.outcome}
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def versions(self, worker: str | None = None) -> list[VersionMade]:
        query = sa.select(SECRET_VERSIONS).order_by(SECRET_VERSIONS.c.made_at)
        if worker is not None:
            query = query.where(SECRET_VERSIONS.c.worker == worker)
        with self.engine.connect() as conn:
            return [
                VersionMade(
                    row.worker,
                    row.version_id,
                    row.based_on,
                    tuple(json.loads(row.names)),
                    row.request_id,
                    row.made_at,
                    row.outcome,
                )
                for row in conn.execute(query)
            ]

    # -- inventory --------------------------------------------------------------------

    def replace_inventory(self, rows: Iterable[InventoryRow], checked_at: datetime) -> int:
        values = []
        for row in rows:
            item = {c: getattr(row, c) for c in SECRET_INVENTORY.c.keys() if c != "checked_at"}
            item["checked_at"] = checked_at
            values.append(item)
        with self.engine.begin() as conn:
            conn.execute(SECRET_INVENTORY.delete())
            if values:
                conn.execute(SECRET_INVENTORY.insert(), values)
        return len(values)

    def inventory(self) -> list[InventoryRow]:
        query = sa.select(SECRET_INVENTORY).order_by(
            SECRET_INVENTORY.c.environment, SECRET_INVENTORY.c.secret
        )
        with self.engine.connect() as conn:
            return [
                InventoryRow(**{k: v for k, v in row._asdict().items() if k != "checked_at"})
                for row in conn.execute(query)
            ]


class _Lost(Exception):
    """Another writer moved the row first: the transaction is rolled back."""


def _request(row) -> RotationRequest:
    return RotationRequest(**row._asdict())
