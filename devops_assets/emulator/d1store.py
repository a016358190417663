"""The emulator's D1 databases: one real SQLite file per database in ``d1/``.

``seed_databases`` creates them when the workspace is seeded, by running
the repository's applied migrations (their real SQL) and Wrangler's ledger
table ``d1_migrations`` with one row per applied file. ``D1Store`` opens
them for the query endpoint: an app that persists works on the files (so
every process over the folder sees the same data; SQLite serialises the
writers), one that does not works on an in-memory copy taken on first use,
so a test's writes never reach the seeded folder.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from devops_assets.emulator import story

D1_DIR = "d1"
LEDGER_TABLE = "d1_migrations"
LEDGER_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "name TEXT UNIQUE, "
    "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
)
BUSY_SECONDS = 10.0
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def database_file(folder: Path, database_id: str) -> Path:
    return Path(folder) / D1_DIR / f"{database_id}.sqlite3"


def seed_databases(folder: Path, databases: dict[str, dict], applied_at: datetime) -> None:
    """Create each database with the applied migrations and their ledger rows."""
    stamp = applied_at.strftime("%Y-%m-%d %H:%M:%S")
    for database_id in databases:
        path = database_file(folder, database_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as db:
            db.execute(LEDGER_DDL)
            for name in story.APPLIED_MIGRATIONS:
                db.executescript(story.MIGRATIONS[f"migrations/{name}"])
                db.execute(
                    f"INSERT INTO {LEDGER_TABLE} (name, applied_at) VALUES (?, ?)", (name, stamp)
                )
        db.close()


def split_statements(sql: str) -> list[str]:
    """``sql`` cut at each ``;`` that ends a complete statement (not one inside a
    string literal or a trigger body); pieces holding only comments are dropped."""
    pieces, current = [], ""
    for char in sql:
        current += char
        if char == ";" and sqlite3.complete_statement(current):
            pieces.append(current)
            current = ""
    pieces.append(current)
    return [p.strip() for p in pieces if _COMMENTS.sub("", p).strip().strip(";").strip()]


class D1Store:
    """Connections to the databases of one state folder (see the module docstring)."""

    def __init__(self, folder: Path | None, persist: bool):
        self.folder, self.persist = folder, persist
        self._copies: dict[str, sqlite3.Connection] = {}
        self._lock = threading.Lock()

    def connect(self, database_id: str) -> sqlite3.Connection:
        """A connection in autocommit mode (the caller opens the transaction)."""
        if self.folder is None:
            raise FileNotFoundError("the emulator state has no folder for D1 databases")
        path = database_file(self.folder, database_id)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such D1 database file")
        if self.persist:
            db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
        else:
            with self._lock:
                if database_id not in self._copies:
                    copy = sqlite3.connect(
                        ":memory:", isolation_level=None, check_same_thread=False
                    )
                    with sqlite3.connect(path) as source:
                        source.backup(copy)
                    source.close()
                    self._copies[database_id] = copy
                db = self._copies[database_id]
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def release(self, db: sqlite3.Connection) -> None:
        if self.persist:
            db.close()
