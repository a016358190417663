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
"""

from __future__ import annotations

import hashlib
import re
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
