"""Read a build log: plain text, gzipped text, or a Workers Builds logs JSON response.

Lines are 1-based and count ``"\\n"`` only: a ``\\r`` (a redrawn progress bar) stays
inside its line, so the numbers agree with ``text.split("\\n")``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import zlib
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


MAX_TEXT_BYTES = 200 * 1024 * 1024  # a log (after gunzip) longer than this is refused
_CHUNK = 1024 * 1024


# No database stores a NUL or a lone UTF-16 surrogate (JSON can spell both: "\\u0000",
# "\\ud800"): each becomes U+FFFD, as bytes that are not UTF-8 do.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_BOM = b"\xef\xbb\xbf"


def _text_only(text: str, replaced: int = 0) -> str:
    """``text`` with every NUL and lone surrogate replaced by U+FFFD; refused as binary
    when more than a quarter of its characters are such or were not UTF-8 (``replaced``).
    One rule for every size of log: a stray NUL in a log of three lines is shown, a file
    of NULs is refused."""
    unstorable = len(_UNSTORABLE.findall(text))
    if (unstorable + replaced) * 4 > len(text):
        raise LogError("binary content (NUL bytes or bytes that are not UTF-8), not a text log")
    return _UNSTORABLE.sub("\ufffd", text) if unstorable else text


def _decode(raw: bytes) -> str:
    # Never open in text mode: universal newlines would turn every "\r" into a break.
    raw = raw.removeprefix(_BOM)
    text = raw.decode("utf-8", errors="replace")
    return _text_only(text, text.count("\ufffd") - raw.count("\ufffd".encode()))


def _entry_text(entry: object) -> str:
    if isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[1], str):
        return entry[1]
    raise LogError("each log line must be [timestamp, text] with text a string")


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        if error.get("message"):
            return str(error["message"])
        if "code" in error:
            return f"code {error['code']}"
        return json.dumps(error)
    return str(error)


def _page_lines(page: object, last: bool) -> Iterable[str]:
    if not isinstance(page, dict):
        raise LogError("a Workers Builds logs page must be a JSON object")
    if page.get("success") is False:
        errors = page.get("errors")
        errors = errors if isinstance(errors, list) else [] if errors is None else [errors]
        said = "; ".join(_error_text(error) for error in errors if error not in (None, "", {}))
        if not said:
            raise LogError("an API error answer (success: false) without errors, not a log")
        raise LogError(f"the API answered with an error, not a log: {said}")
    result = page.get("result", page)
    if not isinstance(result, dict) or not isinstance(result.get("lines"), list):
        raise LogError("not a Workers Builds logs response: it needs result.lines, a list")
    if last and result.get("truncated") is True:
        raise LogError(
            "the last page says truncated: true; fetch the remaining pages (by cursor) too"
        )
    return [_entry_text(entry) for entry in result["lines"]]


def text_from_json(document: object) -> str:
    """A Workers Builds logs response (one page or a list of pages) → the log text."""
    pages = document if isinstance(document, list) else [document]
    if not pages:
        raise LogError("not a Workers Builds logs response: an empty list of pages")
    last = len(pages) - 1
    return "\n".join(line for i, page in enumerate(pages) for line in _page_lines(page, i == last))


def _gunzip(raw: bytes) -> bytes:
    """``raw`` gunzipped as a stream, refused once it passes ``MAX_TEXT_BYTES``."""
    out, size = [], 0
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > MAX_TEXT_BYTES:
                raise LogError(f"unpacks to more than {MAX_TEXT_BYTES // 2**20} MB of text")
            out.append(chunk)
    return b"".join(out)


def parse_log(raw: bytes) -> str:
    """Bytes of a log in any accepted form → its text."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = _gunzip(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise LogError("not a readable gzip file") from exc
    # A byte order mark (an editor saving the logs response) does not hide the JSON.
    stripped = raw.removeprefix(_BOM).lstrip()
    if stripped[:1] in (b"{", b"["):
        text = _decode(raw)
        try:
            document = json.loads(text)
        except RecursionError as exc:
            raise LogError("JSON nested too deeply to read") from exc
        except ValueError:
            return text  # text that merely starts like JSON ("[INFO] ...")
        try:
            return _text_only(text_from_json(document))
        except RecursionError as exc:
            raise LogError("JSON nested too deeply to read") from exc
    return _decode(raw)


def _read_capped(path: Path) -> bytes:
    """The bytes of ``path``, a regular file of at most ``MAX_TEXT_BYTES``."""
    with path.open("rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise LogError("not a regular file")
        raw = handle.read(MAX_TEXT_BYTES + 1)
    if len(raw) > MAX_TEXT_BYTES:
        raise LogError(f"larger than {MAX_TEXT_BYTES // 2**20} MB")
    return raw


def read_log(path: str | Path) -> LogText:
    """Read ``path`` (plain, gzipped, or Workers Builds logs JSON) into a :class:`LogText`.

    Every :class:`LogError` message starts with the path. An empty file gives an
    empty text (the triage says ``unknown``; the CLI refuses it)."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # before open: a FIFO would block
            raise LogError("not a regular file")
        if info.st_size > MAX_TEXT_BYTES:
            raise LogError(f"larger than {MAX_TEXT_BYTES // 2**20} MB")
        raw = _read_capped(path)
    except OSError as exc:
        raise LogError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except LogError as exc:
        raise LogError(f"{path}: {exc}") from exc
    try:
        return LogText(parse_log(raw), str(path))
    except LogError as exc:
        raise LogError(f"{path}: {exc}") from exc
