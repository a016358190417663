"""One record of an events file, read cell by cell, exactly or not at all.

``_Row`` holds the cells of the record being read and reads each column as what
it must be (an identifier, a time with its offset, a sha, one of a few words);
a value that does not fit raises an ``EventsError`` naming the file, the row and
the column, and ``_show`` keeps the value it quotes short. Both the file readers
(``_events_files``) and the record builders (``events``) use it, so it is its own
module, and ``EventsError`` is defined here, below both.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Sequence
from datetime import UTC, datetime

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


class EventsError(ValueError):
    """An events file is missing, ambiguous, or holds a value that cannot be read exactly."""

    __module__ = "devops_assets.sources.events"  # its public home, as tracebacks name it


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
