"""D1 migration files against a database's ledger, checked as Flyway and Atlas check.

wrangler applies the files of ``migrations_dir`` whose name (the path relative
to that folder) is not in the ``d1_migrations`` table, in its order: by the
leading integer of each path segment, numerically (``9_`` before ``10_``), ties
and unnumbered names by text, unnumbered after numbered. It keeps no checksum
and never notices an applied file edited, renamed or applied out of order. So
the platform records the checksum of each file it applies and classifies every
file and ledger row:

- ``applied``: in the ledger, file present, checksum as recorded (or none recorded);
- ``pending``: not in the ledger, ordered after every applied file;
- ``out_of_order``: not in the ledger, ordered before an applied file (wrangler
  would apply it silently; it may depend on a schema that moved on);
- ``edited``: applied, but the file's checksum differs from the one recorded;
- ``missing``: in the ledger with no file of that name;
- ``renamed``: a ``missing`` row whose recorded checksum is a pending file's (wrangler
  would run that file a second time).

Below ``classify``: what a ``d1_databases`` binding says (``d1_targets``: by
database id only), the SQL wrangler sends (ledger table, one file plus its
ledger row per request), and the judgements an apply needs (``findings`` that
block it, ``not_proven``: whether staging applied the same files production
would, ``settings_differ`` between the environments). ``docs/d1.md`` tells the
whole flow.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_LEADING_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class MigrationFile:
    name: str  # path relative to migrations_dir, with '/' separators
    checksum: str  # sha256 of the file's bytes


@dataclass(frozen=True)
class Ledger:
    """The rows of a database's migrations table, in ``id`` order."""

    names: tuple[str, ...]


@dataclass
class MigrationStatus:
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (ledger name, file name)

    @property
    def clean(self) -> bool:
        """Nothing but applied and pending: safe to apply what is pending."""
        return not (self.out_of_order or self.edited or self.missing or self.renamed)


def order_key(name: str) -> tuple:
    """wrangler's order of migration names (see the module docstring)."""
    key = []
    for segment in name.split("/"):
        found = _LEADING_NUMBER.match(segment)
        key.append((0, int(found.group(1)), segment) if found else (1, 0, segment))
    return tuple(key)


def discover(folder: Path | str, pattern: str = "*.sql") -> list[MigrationFile]:
    """The migration files under ``folder`` matching ``pattern``, in wrangler's order."""
    folder = Path(folder)
    files = [
        MigrationFile(
            path.relative_to(folder).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest()
        )
        for path in folder.glob(pattern)
        if path.is_file()
    ]
    return sorted(files, key=lambda f: order_key(f.name))


def classify(
    files: Iterable[MigrationFile], ledger: Ledger, recorded: Mapping[str, str]
) -> MigrationStatus:
    """Every file and ledger row in one of the states above. ``recorded`` maps a
    migration name to the checksum the platform recorded when it applied it."""
    files = sorted(files, key=lambda f: order_key(f.name))
    by_name = {f.name: f for f in files}
    in_ledger = set(ledger.names)
    status = MigrationStatus()
    applied_keys = [order_key(n) for n in ledger.names if n in by_name]
    highest = max(applied_keys, default=None)
    unapplied = [f for f in files if f.name not in in_ledger]
    renamed_to: dict[str, str] = {}
    for name in ledger.names:
        if name in by_name:
            known = recorded.get(name)
            if known is not None and known != by_name[name].checksum:
                status.edited.append(name)
            else:
                status.applied.append(name)
            continue
        same = [f.name for f in unapplied if recorded.get(name) == f.checksum]
        if same and recorded.get(name) is not None:
            renamed_to[same[0]] = name
            status.renamed.append((name, same[0]))
        else:
            status.missing.append(name)
    for migration in unapplied:
        if migration.name in renamed_to:
            continue
        if highest is not None and order_key(migration.name) < highest:
            status.out_of_order.append(migration.name)
        else:
            status.pending.append(migration.name)
    return status


# -- what a D1 binding says, and the SQL wrangler sends --------------------------------

DEFAULT_DIR = "migrations"
DEFAULT_TABLE = "d1_migrations"
DEFAULT_PATTERN = "*.sql"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class MigrationSettingsError(ValueError):
    """A ``d1_databases`` entry the platform cannot migrate; the message names the key."""


@dataclass(frozen=True)
class D1Target:
    """One ``d1_databases`` binding of an environment's effective config.

    ``pattern`` is a glob relative to ``migrations_dir`` (``*`` and ``?`` stay
    inside one path segment, ``**`` crosses them), as ``discover`` reads it.
    """

    binding: str
    database_name: str
    database_id: str
    migrations_dir: str = DEFAULT_DIR
    migrations_table: str = DEFAULT_TABLE
    pattern: str = DEFAULT_PATTERN

    def path_of(self, name: str) -> str:
        """The repository path of migration ``name``."""
        return f"{self.migrations_dir}/{name}" if self.migrations_dir else name


def d1_targets(config: Mapping, where: str = "") -> list[D1Target]:
    """The D1 bindings of one effective environment config (``Resolved.config``),
    each with a ``database_id`` (the platform addresses databases by id only: a
    binding without one would be looked up by name, the way a wrong environment
    reaches production)."""
    found = []
    for index, entry in enumerate(config.get("d1_databases") or ()):
        key = f"{where}d1_databases[{index}]"
        binding = entry.get("binding")
        if not isinstance(binding, str) or not binding:
            raise MigrationSettingsError(f"{key}.binding: a binding name")
        database_id = entry.get("database_id")
        if not isinstance(database_id, str) or not database_id.strip():
            raise MigrationSettingsError(
                f"{key}.database_id: the database's id (binding {binding} has none; the "
                "platform never resolves a database by name)"
            )
        table = entry.get("migrations_table", DEFAULT_TABLE)
        if not isinstance(table, str) or not _IDENTIFIER.fullmatch(table):
            raise MigrationSettingsError(
                f"{key}.migrations_table: a plain table name (letters, digits, _), got {table!r}"
            )
        folder = entry.get("migrations_dir", DEFAULT_DIR)
        if not isinstance(folder, str):
            raise MigrationSettingsError(f"{key}.migrations_dir: a folder path")
        folder = _folder(folder, f"{key}.migrations_dir")
        pattern = entry.get("migrations_pattern", DEFAULT_PATTERN)
        if not isinstance(pattern, str) or not pattern or pattern.startswith("/"):
            raise MigrationSettingsError(f"{key}.migrations_pattern: a relative glob")
        found.append(
            D1Target(
                binding,
                str(entry.get("database_name") or ""),
                database_id.strip(),
                folder,
                table,
                pattern,
            )
        )
    return found


def _folder(text: str, key: str) -> str:
    parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".")]
    if text.startswith("/") or ".." in parts:
        raise MigrationSettingsError(f"{key}: a folder inside the repository, got {text!r}")
    return "/".join(parts)


def matches(name: str, pattern: str = DEFAULT_PATTERN) -> bool:
    """Whether migration ``name`` (relative to the folder) fits ``pattern``."""
    regex, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex.append(".*")
            i += 2
        elif pattern[i] == "*":
            regex.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            regex.append("[^/]")
            i += 1
        else:
            regex.append(re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(regex), name) is not None


def from_contents(contents: Mapping[str, bytes]) -> list[MigrationFile]:
    """Migration files from their names and bytes (read from git), in wrangler's order."""
    files = [MigrationFile(n, hashlib.sha256(data).hexdigest()) for n, data in contents.items()]
    return sorted(files, key=lambda f: order_key(f.name))


def settings_differ(staging: D1Target, production: D1Target) -> list[str]:
    """What differs between the two environments' bindings of one name that changes
    which files run or where they are recorded (each a short sentence)."""
    problems = []
    for key in ("migrations_dir", "migrations_table", "pattern"):
        a, b = getattr(staging, key), getattr(production, key)
        if a != b:
            problems.append(
                f"binding {staging.binding}: {key} is {a!r} in staging, {b!r} in production"
            )
    return problems


def create_ledger_sql(table: str) -> str:
    """wrangler's ledger table, created when absent."""
    return (
        f'CREATE TABLE IF NOT EXISTS "{_checked(table)}" (id INTEGER PRIMARY KEY AUTOINCREMENT, '
        "name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
    )


def read_ledger_sql(table: str) -> str:
    return f'SELECT id, name, applied_at FROM "{_checked(table)}" ORDER BY id'


# SQLite compares table names without regard to case (``D1_MIGRATIONS`` is ``d1_migrations``)
TABLE_EXISTS_SQL = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE"


class MigrationFileError(ValueError):
    """A migration file the platform will not send; the message names the file and why."""


def sql_problem(text: str) -> str | None:
    """Why the SQL ``text`` cannot be followed by its ledger row in one request: an
    unterminated ``/*`` comment, string or quoted name would swallow the row (SQLite
    reads an open comment to the end of the request). None when it can."""
    problem, _ = _scan(text)
    return problem


def _scan(text: str) -> tuple[str | None, bool]:
    """(problem, whether ``text`` holds anything but comments and blanks)."""
    i, n, significant = 0, len(text), False
    while i < n:
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1  # the newline apply_sql adds ends a last one
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return _unterminated("/* comment", text, i), significant
            i = end + 2
            continue
        significant = significant or not text[i].isspace()
        if text[i] not in "'\"`[":
            i += 1
            continue
        close = "]" if text[i] == "[" else text[i]
        end = text.find(close, i + 1)
        while end >= 0 and close != "]" and text.startswith(close * 2, end):
            end = text.find(close, end + 2)  # a doubled quote stays inside
        if end < 0:
            return _unterminated("string" if close == "'" else "quoted name", text, i), True
        i = end + 1
    return None, significant


def _unterminated(what: str, text: str, at: int) -> str:
    line = text.count("\n", 0, at) + 1
    return f"an unterminated {what} (line {line}) would swallow its ledger row"


def apply_sql(text: str, name: str, table: str) -> str:
    """One migration as wrangler sends it: the file's SQL, then the ledger row, in one
    query request (so the file and its row stand or fall together).

    The file's SQL is ended with a newline (ending a last ``--`` comment) and, unless
    it already ends a statement, a ``;``, so the ledger row is a statement of its own.
    A file the row would still fall into (an unterminated ``/*`` comment, string or
    quoted name, a ``CREATE TRIGGER`` without ``END``) raises ``MigrationFileError``
    naming the file: it is never sent."""
    problem, significant = _scan(text)
    if problem is None and significant:
        body = text.rstrip() + "\n"
        if not sqlite3.complete_statement(body):
            body += ";\n"
        if not sqlite3.complete_statement(body):
            problem = "its last statement is unfinished (a CREATE TRIGGER without END?)"
    elif problem is None:
        body = ""  # only comments: nothing but the ledger row
    if problem is not None:
        raise MigrationFileError(f"{name}: {problem}; not sent")
    quoted = name.replace("'", "''")
    return f"{body}INSERT INTO \"{_checked(table)}\" (name) VALUES ('{quoted}');"


def file_problem(name: str, data: bytes) -> str | None:
    """Why migration ``name`` with bytes ``data`` would not be sent (None: it would)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{name} is not UTF-8 text"
    try:
        apply_sql(text, name, DEFAULT_TABLE)
    except MigrationFileError as exc:
        return str(exc)
    return None


def ledger_from_rows(rows: Iterable[Mapping]) -> Ledger:
    """The ledger from the rows of ``read_ledger_sql`` (in ``id`` order)."""
    ordered = sorted(rows, key=lambda r: r.get("id") or 0)
    return Ledger(tuple(str(r["name"]) for r in ordered))


def _checked(table: str) -> str:
    if not _IDENTIFIER.fullmatch(table):
        raise MigrationSettingsError(f"migrations_table: a plain table name, got {table!r}")
    return table


def not_proven(
    production_pending: Iterable[MigrationFile],
    staging_ledger: Ledger,
    staging_recorded: Mapping[str, str],
) -> list[str]:
    """Why staging has not applied the set production would apply (empty when it has).

    "The same set": every file production would apply is in staging's ledger, and
    the checksum the platform recorded when it applied that file to staging equals
    the checksum of the file production would run. A file staging applied outside
    the platform (no recorded checksum) proves nothing."""
    problems = []
    in_staging = set(staging_ledger.names)
    for migration in production_pending:
        if migration.name not in in_staging:
            problems.append(f"{migration.name} is not applied in staging")
            continue
        recorded = staging_recorded.get(migration.name)
        if recorded is None:
            problems.append(
                f"{migration.name} was applied to staging outside the platform (no checksum "
                "recorded)"
            )
        elif recorded != migration.checksum:
            problems.append(
                f"{migration.name} differs from what staging applied (checksum "
                f"{migration.checksum[:12]}, staging ran {recorded[:12]})"
            )
    return problems


def findings(status: MigrationStatus) -> list[str]:
    """The findings that block an apply, as short sentences."""
    found = [f"{n} is out of order (numbered before an applied file)" for n in status.out_of_order]
    found += [f"{n} was edited after it was applied" for n in status.edited]
    found += [
        f"{old} was renamed to {new} (wrangler would run it again)" for old, new in status.renamed
    ]
    found += [f"{n} is in the ledger but no file has that name" for n in status.missing]
    return found


def states(
    files: Iterable[MigrationFile], ledger: Ledger, status: MigrationStatus
) -> list[tuple[str, str]]:
    """Every file and ledger row with its state, in wrangler's order."""
    state: dict[str, str] = {}
    for name in status.applied:
        state[name] = "applied"
    for name in status.pending:
        state[name] = "pending"
    for name in status.out_of_order:
        state[name] = "out_of_order"
    for name in status.edited:
        state[name] = "edited"
    for name in status.missing:
        state[name] = "missing"
    for old, new in status.renamed:
        state[old] = f"renamed to {new}"
        state[new] = f"renamed from {old}"
    names = {f.name for f in files} | set(ledger.names)
    return [(n, state.get(n, "unknown")) for n in sorted(names, key=order_key)]
