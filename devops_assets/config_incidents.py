"""The ``[incidents]`` table: where the incident feed is.

Either ``file`` (the events format, docs/events.md) or ``statuspage`` (a
Statuspage page's base URL, or ``"emulator:"`` for the demo's in-process page)
with ``[incidents.components]`` naming the environment of each component.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from devops_assets.toml_reader import TableReader


def parse_incidents(root: TableReader, environments: set[str]):
    """``[incidents]``: a ``file``, or a ``statuspage`` with ``[incidents.components]``."""
    table = root.table("incidents", {}).only("file", "statuspage", "components")
    file, page = table.text("file", None), table.text("statuspage", None)
    if not table.data:
        return None, None, ()
    if (file is None) == (page is None):
        key = "file" if file is None else "statuspage"
        raise table.fail(key, "exactly one of file or statuspage as the incident feed")
    if file is not None:
        if not file.endswith((".csv", ".json")):
            raise table.fail("file", f"a .csv or .json incidents file, got {file!r}")
        if "components" in table.data:
            raise table.fail("components", "no components with a file (only with statuspage)")
        return file, None, ()
    _check_statuspage(root, table, page)
    components = table.table("components", {})
    pairs = tuple((name, components.text(name)) for name in components.data)
    if not pairs:
        raise table.fail("components", "a table of component name = environment (at least one)")
    for name, environment in pairs:
        if environment not in environments:
            known = ", ".join(sorted(environments))
            raise components.fail(name, f"a configured environment ({known}), got {environment!r}")
    return None, page, pairs


def _check_statuspage(root: TableReader, table: TableReader, page: str) -> None:
    if page == "emulator:":
        cloudflare = root.data.get("cloudflare")
        if not (isinstance(cloudflare, dict) and cloudflare.get("emulator_state")):
            raise table.fail("statuspage", "'emulator:' only with [cloudflare] emulator_state")
        return
    try:
        parts = urlsplit(page)
        web = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        web = False
    if not web:
        raise table.fail("statuspage", f"an http(s) URL with a host, or 'emulator:', got {page!r}")
    if "@" in parts.netloc or parts.query:
        raise table.fail(
            "statuspage", "a public page's URL, without credentials or a query (it shows in logs)"
        )
