"""The ``[drift]`` table: which wrangler file to compare, and the allow-list.

``wrangler_file`` is the path of the wrangler file in the repository (default:
the first of ``wrangler.json``, ``wrangler.jsonc``, ``wrangler.toml`` that the
production branch holds, as wrangler looks for them). Each ``[[drift.allow]]``
accepts one finding key (``vars.DEBUG``, ``r2_buckets.DATA``…) with a reason,
an owner and an expiry date; an expired entry accepts nothing. Differences
between git and what is deployed have keys ``deployed.<environment>.<what>``
(``deployed.staging.vars.LOG_LEVEL``); an ``unknown`` finding (an API error) is
never accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from devops_assets.toml_reader import TableReader
from devops_assets.wrangler.drift import Allowed

WRANGLER_FILES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")


@dataclass(frozen=True)
class DriftSettings:
    wrangler_file: str | None = None  # None: look for wrangler's own names
    allow: tuple[Allowed, ...] = ()


def parse_drift(root: TableReader) -> DriftSettings:
    table = root.table("drift", {}).only("wrangler_file", "allow")
    path = table.text("wrangler_file", None)
    if path is not None and any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise table.fail(
            "wrangler_file", f"a path without NUL or other control characters, got {path!r}"
        )
    if path is not None and (path.startswith(("/", "-")) or ".." in path.split("/")):
        raise table.fail("wrangler_file", f"a path inside the repository, got {path!r}")
    items = table.get("allow", list, "an array of [[drift.allow]] tables", [])
    allowed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise table.fail(f"allow[{i}]", "a table")
        entry = TableReader(table.path, item, f"drift.allow[{i}].").only(
            "key", "reason", "owner", "expires"
        )
        expires = entry.get("expires", (date, datetime), "a date such as 2027-01-31")
        if isinstance(expires, datetime):
            expires = expires.date()
        allowed.append(
            Allowed(entry.text("key"), entry.text("reason"), entry.text("owner"), expires)
        )
    return DriftSettings(path, tuple(allowed))
