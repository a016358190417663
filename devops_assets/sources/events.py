"""Read a team's own delivery history from CSV or JSON files in one folder.

A team whose deployments do not come from the Cloudflare API (another
platform, or a history older than the API keeps) exports its events itself
and runs ``devops-assets report --events DIR``. These files are then the only
source, so nothing is guessed: a value that cannot be read exactly stops the
load with an ``EventsError`` naming the file, the row and the column. The
schema is in docs/events.md.
"""

from __future__ import annotations

import csv
import json
import os
import re
import reprlib
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import IO, Any

from devops_assets.domain.models import (
    DEPLOYMENT_KINDS,
    DEPLOYMENT_STATUSES,
    Build,
    Commit,
    Deployment,
    Incident,
)
from devops_assets.sources.git import parse_trailers

__all__ = ["EventHistory", "EventsError", "load_events", "read_incidents"]

_TIME = "an ISO 8601 time with a UTC offset"
# Times outside these bounds are no real delivery history, and near datetime's own limits
# (years 1 and 9999) the arithmetic of later steps overflows.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_IN_RANGE = "a time from 1970 to 2999"
# C0 control characters but tab, and DEL: in an identifier they would reach CSV and table
# output as line breaks or terminal escapes. (``str.split`` and ``strip`` count some as spaces.)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NO_CONTROL = "no control characters"
_SHOWN = 80  # at most this many characters of a value in a message
_SHA = "a sha of 4 to 64 hex characters"
_HEX = "0123456789abcdef"
_BUILD_OUTCOMES = {"success": "success", "failure": "fail", "cancelled": "cancelled"}
_BUILD_STATUSES = tuple(_BUILD_OUTCOMES)
_BOM = b"\xef\xbb\xbf"


class EventsError(ValueError):
    """An events file is missing, ambiguous, or holds a value that cannot be read exactly."""


@dataclass(frozen=True)
class EventHistory:
    """Everything one events folder holds; each file's records keep the file's order."""

    commits: tuple[Commit, ...]
    deployments: tuple[Deployment, ...]
    incidents: tuple[Incident, ...]
    builds: tuple[Build, ...]


class _Row:
    """The record being read: its cells, where each column sits, and where the record is.

    A reader refills one ``_Row`` per file (``values`` and ``number``) for each record:
    at a million rows, a new object and dict per record would cost seconds.
    """

    __slots__ = ("values", "index", "file", "unit", "number")

    def __init__(self, index: dict[str, int], file: str, unit: str):
        self.index, self.file, self.unit = index, file, unit
        self.values: Sequence[str] = ()
        self.number = 0

    def where(self, column: str) -> str:
        return f"{self.file}, {self.unit} {self.number}, column {column}"

    def fail(self, column: str, expected: str, value: object) -> EventsError:
        return EventsError(f"{self.where(column)}: {expected}, got {_show(value)}")

    def cell(self, column: str) -> str:
        """The cell without surrounding spaces; empty for an optional column left out."""
        position = self.index.get(column)
        return "" if position is None else self.values[position].strip()

    def label(self, column: str) -> str:
        """An optional identifier (a worker, a version, an email); empty when left out."""
        value = self.cell(column)
        if not value.isprintable():
            self.no_control(column, value)
        return value

    def no_control(self, column: str, value: str) -> None:
        """Refuse a control character (``isprintable`` is the fast test that one may be there)."""
        if _CONTROL.search(value):
            raise self.fail(column, _NO_CONTROL, value)

    # The readers below are for required columns, which every record has; they index
    # directly instead of calling cell(), which is measurable at a million rows.

    def text(self, column: str) -> str:
        """A required identifier (an id, an environment, a branch)."""
        value = self.values[self.index[column]].strip()
        if not value:
            raise self.fail(column, "a non-empty value", value)
        if not value.isprintable():
            self.no_control(column, value)
        return value

    def choice(self, column: str, allowed: tuple[str, ...], empty: str = "") -> str:
        value = self.values[self.index[column]].strip()
        if (value or empty) not in allowed:
            self.no_control(column, value)
            raise self.fail(column, f"one of {' '.join(allowed)}", value)
        return value or empty

    def time(self, column: str) -> datetime:
        return self.time_of(column, self.values[self.index[column]].strip())

    def optional_time(self, column: str) -> datetime | None:
        value = self.cell(column)
        return self.time_of(column, value) if value else None

    def time_of(self, column: str, value: str) -> datetime:
        """An instant with its offset as written; a time without one would be a guess."""
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(column, _TIME, value) from None
        if parsed.tzinfo is None:
            raise self.fail(column, _TIME, value)
        if ("." in value or "," in value) and _finer_than_microseconds(value):
            raise self.fail(column, f"{_TIME} and at most 6 decimals of a second", value)
        year = parsed.year  # an offset is under a day: only the edge years need the exact test
        if (year <= 1970 or year >= 2999) and not _EARLIEST <= parsed < _LATEST:
            raise self.fail(column, _IN_RANGE, value)
        return parsed

    def sha(self, column: str) -> str:
        return self._hex(column, self.values[self.index[column]].strip())

    def optional_sha(self, column: str) -> str | None:
        value = self.cell(column)
        return self._hex(column, value) if value else None

    def shas(self, column: str) -> tuple[str, ...]:
        """Shas separated by spaces; a line break would split them too, so it is refused."""
        value = self.values[self.index[column]].strip()
        if not value.isprintable():
            self.no_control(column, value)
        return tuple(self._hex(column, part) for part in value.split())

    def _hex(self, column: str, value: str) -> str:
        """Lower case, as git prints it, so ``ABCD`` and ``abcd`` are the same commit."""
        lowered = value.lower()
        if 4 <= len(lowered) <= 64 and not lowered.strip(_HEX):
            return lowered
        self.no_control(column, value)
        raise self.fail(column, _SHA, value)


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxdict = 8
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 40


def _show(value: object) -> str:
    """``value`` as a message shows it: its repr, cut to about 80 characters.

    A cut string ends in ``…`` and says how long it was, so a 5 MB cell gives a short
    line that still tells what was there.
    """
    if not isinstance(value, str):
        text = _REPR.repr(value)  # bounded in depth and length, unlike repr()
        return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
    head = value[:_SHOWN]
    text = repr(head)
    if len(head) == len(value) and len(text) <= _SHOWN:
        return text
    while len(text) > _SHOWN - 1:  # escapes make a repr longer than its string
        head = head[:-1]
        text = repr(head)
    return f"{text[:-1]}…{text[-1]} ({len(value)} characters)"


def _name(text: str) -> str:
    """A column name from the file as a message shows it: as is when short and printable."""
    return text if len(text) <= _SHOWN and text.isprintable() else _show(text)


def _finer_than_microseconds(value: str) -> bool:
    """More than 6 decimals of a second, which ``fromisoformat`` would silently cut off."""
    start = max(value.find("."), value.find(",")) + 1
    end = start
    while end < len(value) and value[end].isdigit():
        end += 1
    return end - start > 6


# --- one function per file: a row's cells to a record -------------------------------------


def _deployment(row: _Row) -> Deployment:
    deployment_id = row.text("id")
    environment = row.text("environment")
    finished = row.time("finished_at")
    status = row.choice("status", DEPLOYMENT_STATUSES)
    commit_sha = row.optional_sha("commit_sha")
    kind = row.choice("kind", DEPLOYMENT_KINDS, empty="deploy")
    return Deployment(
        deployment_id=deployment_id,
        worker=row.label("worker"),
        environment=environment,
        created_on=finished,
        version_id=row.label("version") or commit_sha or deployment_id,
        percentage=100.0,
        commit_sha=commit_sha,
        kind=kind,
        author_email=row.label("author_email"),
        message=row.cell("message"),
        status=status,
    )


def _commit(row: _Row) -> Commit:
    sha = row.sha("sha")
    parents = row.shas("parents")
    if sha in parents:
        raise row.fail("parents", "shas of other commits", row.cell("parents"))
    if len(parents) > 1 and len(set(parents)) < len(parents):
        raise row.fail("parents", "each parent once", row.cell("parents"))
    author_time = row.time("author_time")
    commit_time = row.time("commit_time")
    subject, body = _subject_and_body(row)
    return Commit(
        sha=sha,
        parents=parents,
        author_time=author_time,
        commit_time=commit_time,
        author_email=row.label("author_email"),
        subject=subject,
        body=body,
        trailers=parse_trailers(body) if body else (),
        patch_id=row.optional_sha("patch_id"),
    )


def _subject_and_body(row: _Row) -> tuple[str, str]:
    """From their own columns, or split from ``message`` the way git shows one."""
    message = row.cell("message")
    if not message:
        return row.cell("subject"), row.cell("body")
    if row.cell("subject") or row.cell("body"):
        raise row.fail("message", "empty when subject or body is given", message)
    subject, _, rest = message.partition("\n")
    lines = rest.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)  # the blank line(s) between subject and body are layout, not text
    return subject.rstrip("\r"), "\n".join(lines)


def _incident(row: _Row) -> Incident:
    incident_id = row.text("id")
    environment = row.text("environment")
    created = row.time("created_at")
    resolved = row.optional_time("resolved_at")
    if resolved is not None and resolved < created:
        expected = f"a time not before created_at ({row.cell('created_at')})"
        raise row.fail("resolved_at", expected, row.cell("resolved_at"))
    return Incident(
        incident_id=incident_id,
        environment=environment,
        created_at=created,
        resolved_at=resolved,
        deployment_id=row.label("deployment_id") or None,
        title=row.cell("title"),
    )


def _build(row: _Row) -> Build:
    build_uuid = row.text("id")
    commit_sha = row.sha("commit_sha")
    branch = row.text("branch")
    status = row.choice("status", _BUILD_STATUSES)
    created = row.time("created_at")
    started = _build_time(row, "started_at", status)
    finished = _build_time(row, "finished_at", status)
    if started is not None and finished is not None and finished < started:
        expected = f"a time not before started_at ({row.cell('started_at')})"
        raise row.fail("finished_at", expected, row.cell("finished_at"))
    return Build(
        build_uuid=build_uuid,
        worker=row.label("worker"),
        branch=branch,
        commit_sha=commit_sha,
        status="stopped",
        outcome=_BUILD_OUTCOMES[status],
        created_on=created,
        started_on=started,
        stopped_on=finished,
    )


def _no_parent_cycle(
    commits: tuple[Commit, ...], rows: dict[str, int], file: str, unit: str
) -> None:
    """Refuse commits that are their own ancestors, which no git history can hold.

    Parents that are not in the file are allowed (a shallow history) and end the walk.
    A cycle has a parent below its child in the file and one above, so a file in the
    order of ``git log`` (or its reverse) needs only one pass. Otherwise one depth-first
    walk over the parents, on an explicit stack rather than recursion (a linear history
    is as deep as it is long), visits every commit and parent once. On a cycle, the
    commit of the cycle that comes first in the file is named.
    """
    position = {commit.sha: index for index, commit in enumerate(commits)}
    if _one_way(commits, position):
        return
    get = position.get
    state = bytearray(len(commits))  # 0 not seen, 1 on the current path, 2 done
    for root, commit in enumerate(commits):
        if state[root]:
            continue
        state[root] = 1
        path = [root]
        pending = [iter(commit.parents)]
        while pending:
            for parent in pending[-1]:
                index = get(parent)
                if index is None:
                    continue
                seen = state[index]
                if seen == 2:
                    continue
                if seen == 1:
                    sha = commits[min(path[path.index(index) :])].sha
                    raise EventsError(
                        f"{file}, {unit} {rows[sha]}, column parents: "
                        f"no cycle through its parents, got a cycle through {sha}"
                    )
                state[index] = 1
                path.append(index)
                pending.append(iter(commits[index].parents))
                break
            else:
                state[path.pop()] = 2
                pending.pop()


def _one_way(commits: tuple[Commit, ...], position: dict[str, int]) -> bool:
    """Whether every parent in the file is below its child, or every one above."""
    get = position.get
    below = above = False
    for index, commit in enumerate(commits):
        for parent in commit.parents:
            at = get(parent)
            if at is None:
                continue
            if at > index:
                below = True
            else:
                above = True
            if below and above:
                return False
    return True


def _build_time(row: _Row, column: str, status: str) -> datetime | None:
    """A cancelled build may never have started, so only its times may be empty."""
    value = row.cell(column)
    if value:
        return row.time_of(column, value)
    if status == "cancelled":
        return None
    raise row.fail(column, f"{_TIME} (only a cancelled build may leave it empty)", "")


@dataclass(frozen=True)
class _Table:
    """One events file: its columns, how a row becomes a record, and the record's id."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    make: Callable[[_Row], Any]
    id_column: str
    id_of: Callable[[Any], str]
    # Checks the records together once all are read: (records, row of each id, file, unit).
    finish: Callable[[tuple[Any, ...], dict[str, int], str, str], None] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


_TABLES = {
    table.name: table
    for table in (
        _Table(
            "deployments",
            ("id", "environment", "finished_at", "status", "commit_sha", "kind"),
            ("worker", "version", "message", "author_email"),
            _deployment,
            "id",
            attrgetter("deployment_id"),
        ),
        _Table(
            "commits",
            ("sha", "parents", "author_time", "commit_time"),
            ("author_email", "subject", "body", "message", "patch_id"),
            _commit,
            "sha",
            attrgetter("sha"),
            _no_parent_cycle,
        ),
        _Table(
            "incidents",
            ("id", "environment", "created_at", "resolved_at"),
            ("deployment_id", "title"),
            _incident,
            "id",
            attrgetter("incident_id"),
        ),
        _Table(
            "builds",
            ("id", "commit_sha", "branch", "status", "created_at", "started_at", "finished_at"),
            ("worker",),
            _build,
            "id",
            attrgetter("build_uuid"),
        ),
    )
}


# --- reading the folder and its files ------------------------------------------------------


def load_events(directory: str | os.PathLike[str]) -> EventHistory:
    """Read every events file in ``directory``; only ``deployments`` is required.

    Each file is ``<name>.csv`` or ``<name>.json``. Every file is read and checked
    before anything is returned, so a report never measures half a history.
    """
    folder = Path(directory)
    if not folder.exists():
        raise EventsError(f"events folder {folder} does not exist")
    if not folder.is_dir():
        raise EventsError(f"events folder {folder} is not a folder")
    paths = {name: _find(folder, name) for name in _TABLES}
    deployments = paths["deployments"]
    if deployments is None:
        raise EventsError(
            f"events folder {folder} has no deployments.csv or deployments.json; "
            "deployments are required (commits, incidents and builds are optional)"
        )
    records: dict[str, tuple[Any, ...]] = {}
    for name, path in paths.items():  # deployments first: incidents name them
        check = None
        if name == "incidents":
            check = _caused_by_a_deployment(records["deployments"], deployments.name)
        records[name] = _read(path, _TABLES[name], check) if path else ()
    return EventHistory(**records)


def _caused_by_a_deployment(
    deployments: tuple[Deployment, ...], file: str
) -> Callable[[Incident, _Row], None]:
    """In a folder, an incident's ``deployment_id`` must name one of its deployments:
    the engine would otherwise fall back to guessing the deployment that caused it."""
    ids = {deployment.deployment_id for deployment in deployments}
    expected = f"the id of a deployment in {file}"

    def check(incident: Incident, row: _Row) -> None:
        if incident.deployment_id is not None and incident.deployment_id not in ids:
            raise row.fail("deployment_id", expected, incident.deployment_id)

    return check


def read_incidents(path: str | os.PathLike[str]) -> tuple[Incident, ...]:
    """One incidents file (``.csv`` or ``.json``, the ``incidents`` schema): the
    incident feed ``[incidents] file`` of the platform file names."""
    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise EventsError(f"incident feed {path}: a .csv or .json file in the incidents schema")
    if not path.is_file():
        raise EventsError(f"incident feed {path} does not exist or is not a file")
    return _read(path, _TABLES["incidents"])


def _find(folder: Path, name: str) -> Path | None:
    found = [path for path in (folder / f"{name}.csv", folder / f"{name}.json") if path.exists()]
    if len(found) > 1:
        raise EventsError(
            f"events folder {folder} has both {name}.csv and {name}.json; "
            "keep one (which to read would be a guess)"
        )
    return found[0] if found else None


def _read(
    path: Path, table: _Table, check: Callable[[Any, _Row], None] | None = None
) -> tuple[Any, ...]:
    """Every record of one file, refusing an id that an earlier record already has.

    ``check`` sees each record with its row, to refuse it for what other files hold.
    """
    json_file = path.suffix == ".json"
    rows = _json_rows(path, table) if json_file else _csv_rows(path, table)
    make, id_of = table.make, table.id_of
    records: list[Any] = []
    first_of: dict[str, int] = {}
    with closing(rows):
        for row in rows:
            record = make(row)
            key = id_of(record)
            first = first_of.setdefault(key, row.number)
            if first != row.number:
                raise EventsError(
                    f"{row.where(table.id_column)}: a unique {table.id_column}, "
                    f"got {_show(key)} again (first on {row.unit} {first})"
                )
            if check is not None:
                check(record, row)
            records.append(record)
    result = tuple(records)
    if table.finish is not None:
        table.finish(result, first_of, path.name, "item" if json_file else "row")
    return result


def _csv_rows(path: Path, table: _Table) -> Generator[_Row, None, None]:
    """The file's records, each numbered by the line it starts on (the header's too)."""
    name = path.name
    with _open_text(path) as handle:
        reader = csv.reader(handle, strict=True)
        start = 1
        try:
            header = next(reader, None)
            while header == []:  # blank lines before the header, as after it, hold nothing
                start = reader.line_num + 1
                header = next(reader, None)
            if header is None:
                raise EventsError(f"{name}: empty; expected a header row naming the columns")
            row = _Row(_header(name, start, header, table), name, "row")
            width, start = len(header), reader.line_num + 1
            for cells in reader:
                row.number, start = start, reader.line_num + 1
                if not cells:
                    continue  # a blank line holds no record
                if len(cells) != width:
                    count = f"{len(cells)} cells where the header has {width}"
                    raise EventsError(f"{name}, row {row.number}: {count}")
                row.values = cells
                yield row
        except csv.Error as exc:
            raise EventsError(f"{name}, row {start}: not valid CSV ({exc})") from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _header(file: str, number: int, header: list[str], table: _Table) -> dict[str, int]:
    """Where each column of ``table`` the header (on row ``number``) names sits; refuses a
    missing or repeated one."""
    position: dict[str, int] = {}
    for index, cell in enumerate(header):
        column = cell.strip()
        if column in position:
            raise EventsError(
                f"{file}, row {number}, column {_name(column)}: named twice in the header"
            )
        position[column] = index
    for column in table.required:
        if column not in position:
            raise EventsError(
                f"{file}, column {column}: missing from the header; "
                f"{file} needs {', '.join(table.required)}"
            )
    return {column: position[column] for column in table.columns if column in position}


def _open_text(path: Path) -> IO[str]:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise EventsError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _not_utf8(path: Path) -> EventsError:
    """Name the first line that is not UTF-8 (the text decoder reads in chunks, so it cannot)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(_BOM)
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = line[exc.start : exc.start + 1].hex()
                return EventsError(f"{path.name}, line {number}: not UTF-8 text (byte 0x{bad})")
    return EventsError(f"{path.name}: not UTF-8 text")


def _json_rows(path: Path, table: _Table) -> Generator[_Row, None, None]:
    """The array's items, numbered from 0; a missing key is refused like a missing column."""
    row = _Row({column: index for index, column in enumerate(table.columns)}, path.name, "item")
    for number, item in enumerate(_json_array(path)):
        if isinstance(item, _RepeatedKey):
            raise EventsError(
                f"{path.name}, item {number}, column {_name(item.key)}: given twice in one object"
            )
        if not isinstance(item, dict):
            raise EventsError(f"{path.name}, item {number}: a JSON object, got {_kind(item)}")
        for column in table.required:
            if column not in item:
                raise EventsError(
                    f"{path.name}, item {number}, column {column}: missing; "
                    f"every item needs {', '.join(table.required)}"
                )
        row.number = number
        row.values = [_json_cell(row, column, item.get(column)) for column in table.columns]
        yield row


def _json_array(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except OSError as exc:
        raise EventsError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise EventsError(
            f"{path.name}, line {exc.lineno}: not valid JSON ({exc.msg} at character {exc.colno})"
        ) from None
    except RecursionError:  # the decoder recurses once per level of [ and {
        raise EventsError(f"{path.name}: not valid JSON (nested too deeply)") from None
    if not isinstance(data, list):
        raise EventsError(f"{path.name}: a JSON array of objects, got {_kind(data)}")
    return data


def _json_cell(row: _Row, column: str, value: object) -> str:
    """A JSON value as the text a CSV cell would hold; null (or no key) is an empty cell."""
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if column != "parents":
        raise row.fail(column, "a JSON string or null", value)
    if isinstance(value, list) and all(isinstance(p, str) and len(p.split()) == 1 for p in value):
        return " ".join(parent.strip() for parent in value)
    raise row.fail(column, "a list of shas or a space-separated string", value)


class _LongNumber:
    """A JSON integer too long for ``int`` (Python refuses over 4300 digits): no column takes
    a number, and an ignored key's value must not stop the load."""

    __slots__ = ("digits",)

    def __init__(self, digits: str):
        self.digits = digits

    def __repr__(self) -> str:
        return f"{self.digits[:20]}… ({len(self.digits)} digits)"


def _json_int(digits: str) -> int | _LongNumber:
    try:
        return int(digits)
    except ValueError:
        return _LongNumber(digits)


class _RepeatedKey:
    """Stands in for a JSON object that names a key twice (``json`` would keep only the last)."""

    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key

    def __repr__(self) -> str:
        return f"<an object naming {_show(self.key)} twice>"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _RepeatedKey:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            return _RepeatedKey(key)
        obj[key] = value
    return obj


_JSON_KINDS = {
    dict: "an object",
    _RepeatedKey: "an object",
    _LongNumber: "a number",
    list: "an array",
    str: "a string",
    bool: "true or false",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _kind(value: object) -> str:
    """What a JSON value is, in the words of the JSON format."""
    return _JSON_KINDS.get(type(value), type(value).__name__)
