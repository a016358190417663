"""The D1 endpoints (cloudflare-api.md §8): list, details and query.

``POST …/query`` runs ``sql`` against the database's SQLite file: the text is
cut into statements at ``;`` and they run as one batch in a transaction,
all or nothing. ``params`` bind to every statement with a ``?``. A SQL error
answers 400 with the envelope naming SQLite's message; nothing of the batch
stays. Error codes are the emulator's choice (the reference documents none
for D1): 7400 bad request, 7404 unknown database, 7500 SQL error.
"""

from __future__ import annotations

import json
import sqlite3
import time

from devops_assets.emulator.builds_api import ACCOUNT
from devops_assets.emulator.d1store import split_statements
from devops_assets.emulator.wire import ApiError, Reply, Request, int_arg, ok

D1_BAD_REQUEST = 7400
D1_NOT_FOUND = 7404
D1_SQL_ERROR = 7500
DATABASE = ACCOUNT + r"/d1/database/(?P<database_id>[^/]+)"


def list_databases(app, req: Request, account_id: str) -> Reply:
    """``result`` in creation order, filtered by ``name`` (a substring), paged."""
    page = int_arg(req, "page", 1, 1, 1_000_000, D1_BAD_REQUEST)
    per_page = int_arg(req, "per_page", 1000, 10, 10000, D1_BAD_REQUEST)
    wanted = req.arg("name") or ""
    found = [dict(db) for db in app.state.databases.values() if wanted in db["name"]]
    chunk = found[(page - 1) * per_page : page * per_page]
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(found)}
    return ok(chunk, info)


def get_database(app, req: Request, account_id: str, database_id: str) -> Reply:
    """Details with ``file_size`` and ``num_tables``; a database name is accepted too."""
    database = _database(app, database_id)
    db = _connect(app, database["uuid"])
    try:
        size = _size(db)
        tables = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'"
        ).fetchone()[0]
    finally:
        app.d1.release(db)
    return ok({**database, "file_size": size, "num_tables": tables})


def query(app, req: Request, account_id: str, database_id: str) -> Reply:
    """One ``{results, success, meta}`` per statement, or a 400 and nothing changed."""
    database = _database(app, database_id)
    sql, params = _query_body(req)
    statements = split_statements(sql)
    if not statements:
        raise ApiError(400, D1_BAD_REQUEST, "No SQL statements to run")
    db = _connect(app, database["uuid"])
    try:
        return ok(_run_batch(db, statements, params))
    finally:
        app.d1.release(db)


def _run_batch(db: sqlite3.Connection, statements: list[str], params: list) -> list[dict]:
    results = []
    db.execute("BEGIN IMMEDIATE")  # take the write lock now: two processes never deadlock
    try:
        for statement in statements:
            started, before = time.perf_counter(), db.total_changes
            cursor = db.execute(statement, params if "?" in statement else [])
            columns = [c[0] for c in cursor.description or []]
            rows = [dict(zip(columns, map(_json_value, row), strict=True)) for row in cursor]
            changes = db.total_changes - before
            results.append(
                {
                    "results": rows,
                    "success": True,
                    "meta": {
                        "changed_db": changes > 0 or not columns and _writes(statement),
                        "changes": changes,
                        "duration": round((time.perf_counter() - started) * 1000, 3),
                        "last_row_id": cursor.lastrowid or 0,
                        "rows_read": len(rows),
                        "rows_written": changes,
                        "size_after": 0,
                    },
                }
            )
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise ApiError(400, D1_SQL_ERROR, f"{exc}: SQLITE_ERROR") from None
    size = _size(db)
    for result in results:
        result["meta"]["size_after"] = size
    return results


def _writes(statement: str) -> bool:
    """Whether a statement that returned no rows changed the schema or data."""
    head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    return head in {"CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE", "REPLACE"}


def _json_value(value):
    return list(value) if isinstance(value, bytes) else value


def _size(db: sqlite3.Connection) -> int:
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    return pages * db.execute("PRAGMA page_size").fetchone()[0]


def _database(app, database_id: str) -> dict:
    databases = app.state.databases
    found = databases.get(database_id) or next(
        (db for db in databases.values() if db["name"] == database_id), None
    )
    if found is None:
        raise ApiError(404, D1_NOT_FOUND, f"The database {database_id} could not be found")
    return dict(found)


def _connect(app, database_id: str) -> sqlite3.Connection:
    try:
        return app.d1.connect(database_id)
    except FileNotFoundError:
        raise ApiError(
            404, D1_NOT_FOUND, f"The database {database_id} could not be found"
        ) from None


def _query_body(req: Request) -> tuple[str, list]:
    try:
        body = json.loads(req.body or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
        raise ApiError(400, D1_BAD_REQUEST, "The request body must be a JSON object with 'sql'")
    params = body.get("params") or []
    scalar = (str, int, float, bool, type(None))
    if not isinstance(params, list) or not all(isinstance(p, scalar) for p in params):
        raise ApiError(400, D1_BAD_REQUEST, "'params' must be a list of strings or numbers")
    return body["sql"], params


ROUTES = (
    ("GET", ACCOUNT + r"/d1/database", list_databases),
    ("GET", DATABASE, get_database),
    ("POST", DATABASE + r"/query", query),
)
