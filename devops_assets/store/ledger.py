"""Deploy state in the warehouse: environment locks, smoke runs, releases, requests.

The lock is the second holder of "one deploy per environment at a time" (the
first is the run queue's tag limit, which a run launched outside the queue, or
with its tags edited, escapes). Taking it is one atomic statement: an insert
that does nothing when a row exists, or a compare-and-set over a row whose run
has ended. Two deploys racing for it cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from devops_assets.domain.deploys import REQUEST_STATES, DeployRequest, Release, SmokeRecord
from devops_assets.store import tables as t

# A lock whose run this instance does not know (another Dagster instance sharing the
# warehouse, a process outside Dagster) is trusted this long, then taken over.
UNKNOWN_HOLDER_STALE = timedelta(hours=1)


class DeployLedger:
    """Reads and writes the deploy tables of one warehouse (its engine and schema)."""

    def __init__(self, warehouse):
        self._warehouse = warehouse
        self.engine = warehouse.engine

    def _insert(self, table: sa.Table):
        return self._warehouse.insert(table)

    # -- the environment lock ---------------------------------------------------

    def acquire(
        self,
        environment: str,
        run_id: str,
        actor: str,
        commit_sha: str,
        now: datetime,
        is_active: Callable[[str], bool | None],
        _retries: int = 3,
    ) -> str | None:
        """Take ``environment``'s lock for ``run_id``. Returns None when taken (or
        already held by this run), else the run id that holds it.

        A holder is replaced when ``is_active`` says its run has ended (False), or
        when it cannot tell (None: a run of another Dagster instance, a process
        outside Dagster) and the lock is older than ``UNKNOWN_HOLDER_STALE``.
        """
        table = t.DEPLOY_LOCKS
        row = {
            "environment": environment,
            "run_id": run_id,
            "actor": actor,
            "commit_sha": commit_sha,
            "acquired_at": now,
        }
        with self.engine.begin() as conn:
            added = conn.execute(self._insert(table).values(row).on_conflict_do_nothing())
            if added.rowcount == 1:
                return None
            held = conn.execute(
                sa.select(table.c.run_id, table.c.acquired_at).where(
                    table.c.environment == environment
                )
            ).one_or_none()
        if held is None:  # released in between: try again
            if _retries == 0:
                return "(another run)"
            return self.acquire(
                environment, run_id, actor, commit_sha, now, is_active, _retries - 1
            )
        holder, since = held
        if holder == run_id:
            return None
        active = is_active(holder)
        if active or (active is None and now - since < UNKNOWN_HOLDER_STALE):
            return holder
        with self.engine.begin() as conn:
            taken = conn.execute(
                table.update()
                .where(table.c.environment == environment, table.c.run_id == holder)
                .values(row)
            )
        if taken.rowcount == 1:
            return None
        if _retries == 0:
            return self.holder(environment) or holder
        return self.acquire(environment, run_id, actor, commit_sha, now, is_active, _retries - 1)

    def release(self, environment: str, run_id: str) -> None:
        """Give the lock back (only the run that holds it can)."""
        table = t.DEPLOY_LOCKS
        with self.engine.begin() as conn:
            conn.execute(
                table.delete().where(table.c.environment == environment, table.c.run_id == run_id)
            )

    def holder(self, environment: str) -> str | None:
        table = t.DEPLOY_LOCKS
        with self.engine.connect() as conn:
            query = sa.select(table.c.run_id).where(table.c.environment == environment)
            return conn.execute(query).scalar_one_or_none()

    # -- smoke runs ---------------------------------------------------------------

    def record_smoke(self, record: SmokeRecord) -> None:
        row = {
            "environment": record.environment,
            "version_id": record.version_id,
            "at": record.at,
            "commit_sha": record.commit_sha,
            "percentage": record.percentage,
            "passed": record.passed,
            "run_id": record.run_id,
            "results": json.dumps(list(record.results), sort_keys=True),
        }
        with self.engine.begin() as conn:
            conn.execute(self._insert(t.SMOKE_RUNS).values(row).on_conflict_do_nothing())

    def smoke_runs(self, environment: str | None = None) -> list[SmokeRecord]:
        """Smoke runs, oldest first."""
        table = t.SMOKE_RUNS
        query = sa.select(table).order_by(table.c.at)
        if environment is not None:
            query = query.where(table.c.environment == environment)
        with self.engine.connect() as conn:
            return [
                SmokeRecord(
                    row.environment,
                    row.version_id,
                    row.commit_sha,
                    row.percentage,
                    bool(row.passed),
                    row.at,
                    row.run_id,
                    tuple(json.loads(row.results)),
                )
                for row in conn.execute(query)
            ]

    # -- releases -----------------------------------------------------------------

    def record_release(self, release: Release) -> None:
        """Store a release; the same tag recorded again changes nothing."""
        row = {name: getattr(release, name) for name in t.RELEASES.c.keys()}
        with self.engine.begin() as conn:
            conn.execute(self._insert(t.RELEASES).values(row).on_conflict_do_nothing())

    def releases(self) -> list[Release]:
        """Every release, newest first."""
        table = t.RELEASES
        query = sa.select(table).order_by(table.c.released_at.desc(), table.c.tag.desc())
        with self.engine.connect() as conn:
            return [Release(**row._asdict()) for row in conn.execute(query)]

    # -- pushed commits waiting for their build -------------------------------------

    def add_request(self, request: DeployRequest) -> bool:
        """Store a request unless its id is known; True when it was new."""
        row = {
            "request_id": request.request_id,
            "branch": request.branch,
            "commit_sha": request.commit_sha,
            "environment": request.environment,
            "requested_at": request.requested_at,
            "state": request.state,
            "detail": request.detail,
            "updated_at": request.updated_at or request.requested_at,
        }
        with self.engine.begin() as conn:
            added = conn.execute(
                self._insert(t.DEPLOY_REQUESTS).values(row).on_conflict_do_nothing()
            )
        return added.rowcount == 1

    def requests(self, state: str | None = None) -> list[DeployRequest]:
        """Requests oldest first, optionally in one state."""
        table = t.DEPLOY_REQUESTS
        query = sa.select(table).order_by(table.c.requested_at, table.c.request_id)
        if state is not None:
            query = query.where(table.c.state == state)
        with self.engine.connect() as conn:
            return [
                DeployRequest(
                    row.branch,
                    row.commit_sha,
                    row.environment,
                    row.requested_at,
                    row.state,
                    row.detail,
                    row.updated_at,
                    row.claimed_by or "",
                )
                for row in conn.execute(query)
            ]

    def move_request(
        self,
        request_id: str,
        from_state: str,
        to_state: str,
        detail: str,
        now: datetime,
        claimed_by: str | None = None,
    ) -> bool:
        """Move a request from one state to another (recording who claimed it);
        False when it was not in ``from_state`` (someone else moved it first)."""
        if to_state not in REQUEST_STATES:
            raise ValueError(f"to_state: one of {', '.join(REQUEST_STATES)}, got {to_state!r}")
        table = t.DEPLOY_REQUESTS
        values = {"state": to_state, "detail": detail, "updated_at": now}
        if claimed_by is not None:
            values["claimed_by"] = claimed_by
        with self.engine.begin() as conn:
            moved = conn.execute(
                table.update()
                .where(table.c.request_id == request_id, table.c.state == from_state)
                .values(**values)
            )
        return moved.rowcount == 1
