"""Reading one events file, CSV or JSON, into records.

``_read`` turns a file into the records of its ``_Table`` and refuses a repeated
id; ``_csv_rows`` and ``_json_rows`` yield its records as ``_Row`` cells. They
check the file's shape (UTF-8 with an optional byte order mark, a header or keys
naming every required column, one value per column, valid CSV or JSON with no
key given twice) and name the file, row or item, and column of what they refuse.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devops_assets.sources._events_row import EventsError, _name, _Row, _show

_BOM = b"\xef\xbb\xbf"


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
