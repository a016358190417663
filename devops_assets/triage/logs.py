"""Read a build log: plain text, gzipped text, or a Workers Builds logs JSON response.

Lines are 1-based and count ``"\\n"`` only: a ``\\r`` (a redrawn progress bar) stays
inside its line, so the numbers agree with ``text.split("\\n")``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class LogError(ValueError):
    """The file is not a log we can read."""


@dataclass(frozen=True)
class LogText:
    """A log's text; ``lines`` splits it on ``\\n`` only."""

    text: str
    source: str = ""

    @property
    def lines(self) -> list[str]:
        return split_lines(self.text)


def split_lines(text: str) -> list[str]:
    """``text`` cut at ``\\n`` only; a final newline does not make an extra line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _decode(raw: bytes) -> str:
    # Never open in text mode: universal newlines would turn every "\r" into a break.
    return raw.decode("utf-8", errors="replace")


def _page_lines(page: object) -> Iterable[str]:
    if not isinstance(page, dict):
        raise LogError("a Workers Builds logs page must be a JSON object")
    result = page.get("result", page)
    if not isinstance(result, dict) or not isinstance(result.get("lines"), list):
        raise LogError("a Workers Builds logs page needs result.lines")
    for entry in result["lines"]:
        if isinstance(entry, list | tuple) and len(entry) >= 2:
            yield str(entry[1])
        elif isinstance(entry, str):
            yield entry
        else:
            raise LogError("each log line must be [timestamp, text]")


def text_from_json(document: object) -> str:
    """A Workers Builds logs response (one page or a list of pages) → the log text."""
    pages = document if isinstance(document, list) else [document]
    return "\n".join(line for page in pages for line in _page_lines(page))


def parse_log(raw: bytes) -> str:
    """Bytes of a log in any accepted form → its text."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    stripped = raw.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            document = json.loads(_decode(raw))
        except ValueError:
            return _decode(raw)
        if isinstance(document, dict) and "result" in document or isinstance(document, list):
            try:
                return text_from_json(document)
            except LogError:
                if isinstance(document, list):
                    return _decode(raw)
                raise
    return _decode(raw)


def read_log(path: str | Path) -> LogText:
    """Read ``path`` (plain, gzipped, or Workers Builds logs JSON) into a :class:`LogText`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LogError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return LogText(parse_log(raw), str(path))
    except (OSError, EOFError) as exc:
        raise LogError(f"{path} is not a readable gzip file") from exc
