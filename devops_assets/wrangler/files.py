"""Reading ``wrangler.toml``, ``wrangler.json`` and ``wrangler.jsonc``.

JSONC is JSON with ``//`` and ``/* */`` comments and trailing commas before a
closing bracket, as wrangler accepts it. Comments are removed outside strings
only (a URL ``"https://x"`` keeps its slashes), then trailing commas, and what
is left must be JSON. Every refusal names the file, the place and the reason.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

FORMATS = {".toml": "toml", ".json": "json", ".jsonc": "jsonc"}


class WranglerConfigError(ValueError):
    """A wrangler file that cannot be read or that wrangler would reject."""

    def __init__(self, path: Path | str, key: str, reason: str):
        super().__init__(f"{path}: {key}: {reason}")
        self.path, self.key, self.reason = Path(path), key, reason


def read_file(path: Path | str) -> dict:
    """The file's top-level table (a dict), whatever its format."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise WranglerConfigError(path, "(file)", "no such file") from None
    return parse(path, text)


def parse(path: Path | str, data: bytes) -> dict:
    """A wrangler file's content; ``path`` names it (its suffix gives the format),
    also for a file read from git rather than from disk."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise WranglerConfigError(path, "(file)", "a .toml, .json or .jsonc file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WranglerConfigError(path, "(file)", "not UTF-8 text") from None
    if kind == "toml":
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise WranglerConfigError(path, "(file)", f"not valid TOML ({exc})") from None
    else:
        table = _json(path, text)
    if not isinstance(table, dict):
        raise WranglerConfigError(path, "(file)", "a table (an object) at the top")
    return table


def _json(path: Path, text: str) -> object:
    # wrangler reads .json with the same JSONC parser, so comments are taken in both
    cleaned = strip_jsonc(text)
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise WranglerConfigError(
            path, f"line {exc.lineno} column {exc.colno}", f"not valid JSON ({exc.msg})"
        ) from None
    except RecursionError:
        raise WranglerConfigError(path, "(file)", "nested too deep") from None


def strip_jsonc(text: str) -> str:
    """``text`` without comments and trailing commas, everything else kept in place
    (comments become spaces or newlines, so error positions stay right)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return _drop_trailing_commas("".join(out))


def _drop_trailing_commas(text: str) -> str:
    out = list(text)
    in_string, i = False, 0
    while i < len(out):
        c = out[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            in_string = c != '"'
        elif c == '"':
            in_string = True
        elif c == ",":
            j = i + 1
            while j < len(out) and out[j] in " \t\r\n":
                j += 1
            if j < len(out) and out[j] in "]}":
                out[i] = " "
        i += 1
    return "".join(out)
