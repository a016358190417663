"""Take out of a log line what always differs between two runs of the same build.

``clean`` gives the text a person sees (colours and CI fold markers gone, a redrawn
progress bar reduced to its last state); ``normalise`` further replaces times,
durations, ids, temporary paths, download progress and counters by placeholders,
so the same failure in two builds normalises to the same line.
"""

from __future__ import annotations

import re

# The last branch: a colour code whose ESC was lost (``[31mError``, ``[0m``, ``[m``) glued
# to the text after it; not the start of a bracketed word (``[mocha]``, ``[mf:err]``,
# ``[main]``, ``[5ms]``), which is the log's own text.
_ANSI = re.compile(
    r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]"
    r"|\[(?:\d+(?:;\d+)*)?m(?![\w:.-]*\])(?=\S)"
)
_CI_MARKERS = re.compile(r"(?:travis_(?:fold|time):[\w.:=,-]*|##\[(?:group|endgroup)\])")
# A leading timestamp and the one tab or space that separates it from the text: the
# indentation after it is the tool's own (a code frame's caret column) and stays.
_LEADING_STAMP = re.compile(
    r"^\s*\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?[\t ]?"
)

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"\b\d{1,2}:\d\d:\d\d(?:[.,]\d+)?(?:\s?[AP]M\b)?"), "<time>"),
    (re.compile(r"\b\d\d \d\d \d{4}\b|\b\d{4}-\d\d-\d\d\b"), "<date>"),
    (
        re.compile(
            r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.? \d{1,2},? \d{4}\b"
        ),
        "<date>",
    ),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<id>",
    ),
    (
        re.compile(
            r"(?:/tmp|/var/folders|/private/var|/var/tmp"
            r"|[A-Za-z]:\\(?:Users\\[^\\]+\\AppData\\Local\\)?Temp"
            # A GitHub Actions runner's temporary directory: /home/runner/work/_temp, D:\a\_temp.
            r"|(?<=[/\\])_temp)"
            r"[/\\][^\s'\"),:]*"
        ),
        "<tmp>",
    ),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b", re.I), "<hex>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?%(?:\s*\(\d+/\d+\))?"), "<pct>"),
    (
        re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\b", re.I),
        "<dur>",
    ),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:[kKMG]i?B|bytes|B)\b"), "<size>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:[kKMG]i?B|B)/s\b"), "<rate>"),
    # The pid first: ``(node:98765)`` would otherwise become ``(node:<n>)``.
    (re.compile(r"\(node:\d+\)"), "(node:<pid>)"),
    (re.compile(r"(?<![\w.])\d{5,}(?![\w.])"), "<n>"),
]
_SPACES = re.compile(r"\s+")


def strip_ansi(line: str) -> str:
    """``line`` without terminal colour and cursor codes."""
    return _ANSI.sub("", line)


def clean(line: str) -> str:
    """What a reader sees of ``line``: no colours, no CI markers, no leading timestamp
    (with its one separator; the indentation after it stays).

    A line redrawn with ``\\r`` keeps its last non-empty state, unless an earlier state
    carries words the last one lacks (Travis glues a whole step onto one line).
    """
    line = _CI_MARKERS.sub(" ", strip_ansi(line))
    if "\r" in line:
        parts = [part for part in line.split("\r") if part.strip()]
        if not parts:
            return ""
        # Progress states are redrawn over each other: only the last one stays on screen.
        kept = [part for part in parts[:-1] if not _PROGRESS.search(part)] + [parts[-1]]
        line = " ".join([kept[0].rstrip(), *(part.strip() for part in kept[1:])])
    line = _LEADING_STAMP.sub("", line)
    return line.rstrip()


_PROGRESS = re.compile(r"\d+(?:\.\d+)?\s?%|\(\d+/\d+\)|[#=▬█░▓>.-]{4,}|[⠁-⣿]|\d+/\d+\s")


def normalise(line: str) -> str:
    """``line`` with times, durations, ids, temporary paths and progress replaced."""
    text = clean(line)
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()
