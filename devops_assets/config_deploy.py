"""The ``[deploy]`` table of the platform file: windows, freezes, rollout, smoke checks.

Windows are wall-clock hours on weekdays and freezes are local date-times, both
in ``[project] timezone``: a window stays 09:00-17:00 across daylight-saving
changes, and a freeze written ``2026-12-21T00:00:00`` starts at local midnight.
Every value is checked when the file is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from devops_assets.domain.guards import Freeze, Window
from devops_assets.domain.settings import WEEKDAYS
from devops_assets.sources.smoke import SmokeCheck
from devops_assets.toml_reader import TableReader

KEYS = (
    "rollout_percentages",
    "push_tags",
    "urls",
    "windows",
    "freezes",
    "smoke",
    "notify_file",
    "notify_webhook_env",
)


@dataclass(frozen=True)
class DeploySettings:
    rollout_percentages: tuple[int, ...] = (100,)
    push_tags: bool = False
    urls: tuple[tuple[str, str], ...] = ()  # (environment, base URL) for smoke checks
    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    smoke: tuple[SmokeCheck, ...] = ()
    notify_file: str | None = None  # notices appended as JSON lines (the demo)
    notify_webhook_env: str | None = None  # the variable holding a Slack webhook URL

    def url(self, environment: str) -> str | None:
        return dict(self.urls).get(environment)


def parse_deploy(
    root: TableReader,
    timezone: str,
    environments: set[str],
    local_path: Callable[[str], str] = str,
) -> DeploySettings:
    """``DeploySettings`` from ``[deploy]``; without the table nothing may deploy to
    production (no window is open), which is the safe reading of silence."""
    table = root.table("deploy", {}).only(*KEYS)
    steps = table.get("rollout_percentages", list, "a list of whole percentages", [100])
    if (
        not steps
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
        or any(not 0 < s <= 100 for s in steps)
        or steps != sorted(set(steps))
        or steps[-1] != 100
    ):
        raise table.fail(
            "rollout_percentages", f"rising whole percentages ending at 100, got {steps!r}"
        )
    return DeploySettings(
        rollout_percentages=tuple(steps),
        push_tags=table.get("push_tags", bool, "true or false", False),
        urls=_urls(table, environments),
        windows=tuple(_windows(table)),
        freezes=tuple(_freezes(table, ZoneInfo(timezone))),
        smoke=_required_smoke(table, "deploy" in root.data),
        notify_file=_path(table, "notify_file", local_path),
        notify_webhook_env=_variable(table, "notify_webhook_env"),
    )


def _path(table: TableReader, key: str, local_path: Callable[[str], str]) -> str | None:
    value = table.text(key, None)
    return local_path(value) if value is not None else None


def _required_smoke(table: TableReader, present: bool) -> tuple[SmokeCheck, ...]:
    checks = tuple(_smoke(table))
    if present and not checks:
        raise table.fail("smoke", "at least one [[deploy.smoke]] check: a deploy is proven by them")
    return checks


def _variable(table: TableReader, key: str) -> str | None:
    name = table.text(key, None)
    if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise table.fail(key, f"the name of an environment variable, got {name!r}")
    return name


def _urls(table: TableReader, environments: set[str]) -> tuple[tuple[str, str], ...]:
    urls = table.table("urls", {})
    found = []
    for env in urls.data:
        if env not in environments:
            raise urls.fail(env, f"a configured environment ({', '.join(sorted(environments))})")
        url = urls.text(env)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            raise urls.fail(env, "an http(s) URL with a host and no user or password")
        found.append((env, url))
    return tuple(found)


def _items(table: TableReader, key: str) -> list[TableReader]:
    items = table.get(key, list, f"an array of [[deploy.{key}]] tables", [])
    readers = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise table.fail(f"{key}[{i}]", "a table")
        readers.append(TableReader(table.path, item, f"deploy.{key}[{i}]."))
    return readers


def _windows(table: TableReader) -> list[Window]:
    windows = []
    for w in _items(table, "windows"):
        w.only("days", "start", "end")
        days = w.strings("days")
        unknown = [d for d in days if d not in WEEKDAYS]
        if not days or unknown:
            raise w.fail("days", f"weekday names ({', '.join(WEEKDAYS)}), got {list(days)!r}")
        start, end = _clock(w, "start"), _clock(w, "end")
        if not start < end:
            raise w.fail("end", f"a time after start ({start:%H:%M}), got {end:%H:%M}")
        windows.append(Window(frozenset(WEEKDAYS.index(d) for d in days), start, end))
    return windows


def _clock(w: TableReader, key: str) -> time:
    text = w.text(key)
    try:
        value = time.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is not None:
        raise w.fail(
            key, f"a wall-clock time such as 09:00 (no offset: the team's zone), got {text!r}"
        )
    return value


def _freezes(table: TableReader, zone: ZoneInfo) -> list[Freeze]:
    freezes = []
    for f in _items(table, "freezes"):
        f.only("start", "end", "reason")
        start, end = _local(f, "start", zone), _local(f, "end", zone)
        if not start < end:
            raise f.fail("end", f"a time after start, got {end.isoformat()}")
        freezes.append(Freeze(start, end, f.text("reason")))
    return freezes


def _local(f: TableReader, key: str, zone: ZoneInfo) -> datetime:
    """A freeze edge in the team's zone. A wall-clock time a daylight-saving change
    skips or repeats has two readings; the one that makes the freeze longer is
    taken (the earlier for ``start``, the later for ``end``)."""
    value = f.get(key, datetime, "a local date-time such as 2026-12-21T00:00:00")
    if value.tzinfo is not None:
        raise f.fail(key, f"a local date-time without an offset (the team's zone), got {value}")
    readings = [value.replace(tzinfo=zone, fold=fold) for fold in (0, 1)]
    pick = min if key == "start" else max
    return pick(readings, key=lambda r: r.astimezone(UTC)).astimezone(UTC).astimezone(zone)


def _smoke(table: TableReader) -> list[SmokeCheck]:
    checks = []
    for c in _items(table, "smoke"):
        c.only("name", "path", "status", "contains", "timeout_seconds")
        try:
            checks.append(
                SmokeCheck(
                    name=c.text("name"),
                    path=c.text("path"),
                    status=c.get("status", int, "an HTTP status", 200),
                    contains=c.text("contains", None),
                    timeout_s=float(c.get("timeout_seconds", (int, float), "seconds", 5.0)),
                )
            )
        except ValueError as exc:
            raise c.fail("(table)", str(exc)) from None
    names = [check.name for check in checks]
    if len(set(names)) != len(names):
        raise table.fail("smoke", f"checks with different names, got {names!r}")
    return checks
