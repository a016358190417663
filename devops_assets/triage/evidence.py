"""Choose the evidence span: the first decisive error line of the failing step, in context.

1. The *anchor* is the first line that ends a failed step ("The command … exited with 1",
   ``npm ERR! code ELIFECYCLE``, ``BUILD FAILURE``, ``Process completed with exit code``, …);
   without one, the end of the log. The first ``MAX_ANCHORS`` are kept, in one pass.
2. The *window* runs from the last command line before the anchor (``$ cmd``, ``Run cmd``,
   ``> pkg@1.0.0 script``, Workers Builds' "Executing user build command") to the anchor.
3. In the window, the first line that states an error outright (tier 1) wins, else the first
   weaker hint (tier 2); when nothing in the window qualifies, the whole log before the anchor
   is searched, and failing that the lines just before the anchor are shown (uncertain).
4. With a passing log of the same branch, a line whose normalised text also appears in the
   passing log is never decisive, and when no error-shaped line is new, the first new lines
   before the anchor are the evidence. With nothing new before the anchor, the search runs
   as without a passing log but its answer is never certain (tier 0); ``nothing_new`` says
   the failing log has no line the passing one lacks at all.
5. The span starts one line before the decisive line when that line introduces it (a file
   name, a test title, a browser name) and runs on while the output stays on the same
   failure: at most ``MAX_LINES`` lines, ending before a blank pair or a new command, or
   at the step's closing lines when they fall within those lines (the span is one run of
   the log's lines: a longer failure is cut at ``MAX_LINES`` and the closing lines left out).

Every step is linear in the log's length: lines are cleaned once and cut at
``MATCH_CHARS`` for the rules, command lines found once, each line's tier computed once.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from devops_assets.triage.normalise import clean, normalise
from devops_assets.triage.rules import NOISE, TERMINAL, decisive_tier, failure_summary

MAX_LINES = 15
# Lines before a step's end searched for the decisive line: bounds the work on a huge
# log (a real failure is printed well within this of where its step fails).
SCAN_WINDOW = 20_000
# The failed steps looked at: the first few (Travis runs on after a failed step). The
# search for them stops there, so a log of 160 000 "##[error]" annotations costs no more
# than one with eight.
MAX_ANCHORS = 8
# Rules read at most this many characters of a line (a minified bundle or a CI line
# glued with "\r" runs to hundreds of KB): it keeps every pattern's work bounded per
# line. Masking cuts evidence lines at the same length.
MATCH_CHARS = 2000
COMMAND = re.compile(
    r"^\s*\$\s+\S|^\s*> \S+@\S+ \S+|^\s*> Task :\S+|^\s*> (?:npm|yarn|pnpm|bunx?|node|npx|tsc|"
    r"vitest|jest|mocha|karma|eslint|biome|prettier|wrangler|playwright|gulp|grunt|webpack|vite|"
    r"run-s|run-p|npm-run-all|tsx|ts-node)\b|^\s*Run \S|^\s*Executing user (?:build|deploy) command"
    r"|"
    r"^\s*Installing (?:project )?dependencies|^\s*Running (?:custom )?(?:build|deploy|install)",
    re.I,
)


@dataclass(frozen=True)
class Span:
    start: int  # 0-based, inclusive
    end: int  # 0-based, inclusive
    decisive: int | None  # the decisive line, None when none was found
    command: str  # the failing step's command line (clean), "" when unknown
    tier: int  # 1 strong, 2 weak, 0 fallback
    # With a passing log: which evidence lines it lacks (None without one), and whether
    # the failing log has any line it lacks at all.
    new: tuple[bool, ...] | None = None
    nothing_new: bool = False


def is_command(text: str) -> bool:
    """``text`` starts a step (``$ cmd``, ``> pkg@1.0.0 script``, a Workers Builds stage)."""
    return bool(COMMAND.search(text)) and not TERMINAL.search(text)


def clean_lines(lines: Sequence[str]) -> list[str]:
    """Each line as a reader sees it (:func:`clean`), cut at ``MATCH_CHARS`` for the rules."""
    return [clean(line)[:MATCH_CHARS] for line in lines]


def _new_lines(cleaned: list[str], seen: set[str] | None) -> list[bool] | None:
    """Which lines the passing log (its lines normalised: ``seen``) lacks."""
    if seen is None:
        return None
    return [bool(line.strip()) and normalise(line) not in seen for line in cleaned]


_DIGITS = re.compile(r"\d+")


def _first_new(cleaned: list[str], new: list[bool], hi: int, seen: set[str]) -> int | None:
    """The first line before ``hi`` the passing log lacks; one that differs from a passing
    line only in its numbers ("3 routes" → "4 routes": a count that changed) is taken
    only when no line before ``hi`` is new in its words too."""
    fresh = [i for i in range(hi) if new[i]]
    if not fresh:
        return None
    counts = {_DIGITS.sub("#", line) for line in seen}
    return next(
        (i for i in fresh if _DIGITS.sub("#", normalise(cleaned[i])) not in counts), fresh[0]
    )


class _Lines:
    """The cleaned lines with what the search asks of them again and again: the command
    lines (found once, then looked up by bisection) and each line's decisive tier
    (computed once). Keeps the whole search linear in the log's length."""

    def __init__(self, cleaned: list[str]) -> None:
        self.cleaned = cleaned
        self.commands = [i for i, text in enumerate(cleaned) if is_command(text)]
        self._tiers: dict[int, int] = {}

    def tier(self, index: int) -> int:
        found = self._tiers.get(index)
        if found is None:
            found = self._tiers[index] = decisive_tier(self.cleaned[index])
        return found

    def command_before(self, index: int) -> int:
        """The last command line at or before ``index``; 0 when there is none."""
        at = bisect_right(self.commands, index) - 1
        return self.commands[at] if at >= 0 else 0


def _first_decisive(
    log: _Lines, lo: int, hi: int, new: list[bool] | None
) -> tuple[int | None, int]:
    strong: int | None = None
    weak: int | None = None
    for i in range(max(lo, hi - SCAN_WINDOW), hi):
        if new is not None and not new[i]:
            continue
        tier = log.tier(i)
        if tier == 3:
            return i, 1
        if tier == 1 and strong is None:
            strong = i
        elif tier == 2 and weak is None:
            weak = i
    if strong is not None:
        return strong, 1
    return (weak, 2) if weak is not None else (None, 0)


_CARET = re.compile(r"^\s*\^+\s*$")


def _extend(cleaned: list[str], decisive: int, hi: int) -> tuple[int, int]:
    start = decisive
    caret = next(
        (i for i in range(decisive - 1, max(-1, decisive - 4), -1) if _CARET.match(cleaned[i])),
        None,
    )
    if caret is not None and caret >= 2:
        start = caret - 2  # a code frame ("file:line", the code, "^") introduces the error
    elif decisive > 0:
        before = cleaned[decisive - 1].strip()
        if before and not is_command(before) and not TERMINAL.search(before) and len(before) < 240:
            start = decisive - 1
    end = decisive
    blanks = 0
    limit = min(len(cleaned), start + MAX_LINES, max(hi, decisive + 1))
    for i in range(decisive + 1, limit):
        text = cleaned[i]
        if TERMINAL.search(text):
            end = i  # the lines that say which step failed close the evidence
            while end + 1 < limit and TERMINAL.search(cleaned[end + 1]):
                end += 1
            break
        if is_command(text) or NOISE.search(text) and "at " not in text:
            break
        if not text.strip():
            blanks += 1
            if blanks >= 2:
                break
            continue
        blanks = 0
        end = i
    return start, end


_TRAVIS_OPEN = re.compile(r'The command "')
_TRAVIS_CLOSE = re.compile(r'" (?:exited with (\d+)|failed)')


def _anchors(cleaned: Sequence[str], limit: int = MAX_ANCHORS) -> list[int]:
    """The first ``limit`` lines that end a failed step, in order (Travis goes on after a
    failed step; its message may span lines). One pass, stopping at the ``limit``-th."""
    found: list[int] = []
    for i, text in enumerate(cleaned):
        if len(found) >= limit:
            break
        if _TRAVIS_OPEN.search(text) and not _TRAVIS_CLOSE.search(text):
            tail = " ".join(cleaned[i : i + 6])
            close = _TRAVIS_CLOSE.search(tail)
            if close and (close.group(1) is None or close.group(1) != "0"):
                found.append(i)
            continue
        if TERMINAL.search(text):
            found.append(i)
    return found


def _step_end(cleaned: list[str], anchor: int) -> int:
    """Output can trail the failure message (buffers): the step ends at the next command."""
    for i in range(anchor + 1, min(len(cleaned), anchor + 200)):
        if is_command(cleaned[i]) or cleaned[i].startswith("Done. Your build exited"):
            return i
    return min(len(cleaned), anchor + 200)


def _search(log: _Lines, hi: int, new: list[bool] | None) -> tuple[int | None, int, int]:
    """(decisive, tier, command line) for the step ending at ``hi``; earlier steps too."""
    start_cmd = log.command_before(hi - 1) if hi > 0 else 0
    starts = [start_cmd]
    while len(starts) < 4 and starts[-1] > 0:
        starts.append(log.command_before(starts[-1] - 1))
    for lo in starts:
        decisive, tier = _first_decisive(log, lo, hi, new)
        if decisive is not None:
            return decisive, tier, start_cmd
    return None, 0, start_cmd


def choose_span(
    lines: Sequence[str],
    passing: Sequence[str] | None = None,
    *,
    cleaned: list[str] | None = None,
) -> Span:
    """The evidence span of a failed build's ``lines`` (split on ``\\n``); ``cleaned``:
    those lines already through :func:`clean_lines`."""
    if cleaned is None:
        cleaned = clean_lines(lines)
    if not cleaned:
        return Span(0, -1, None, "", 0)
    seen = None if passing is None else {normalise(line) for line in clean_lines(passing)}
    new = _new_lines(cleaned, seen)
    # With a passing log, a failing log that has no line it lacks: nothing is decisive.
    nothing_new = new is not None and not any(new)
    log = _Lines(cleaned)
    anchors = _anchors(cleaned)
    ends = [_step_end(cleaned, anchor) for anchor in anchors] or [len(cleaned)]
    ends = list(dict.fromkeys(ends))

    def command_of(index: int) -> str:
        """The failing command line and the two before it (``npm test`` → ``> vitest``)."""
        found: list[str] = []
        while len(found) < 3 and is_command(cleaned[index]):
            found.insert(0, cleaned[index].strip())
            if index == 0 or not found[0].startswith(">"):  # a top-level step: stop
                break
            index = log.command_before(index - 1)
        return " | ".join(found)

    def span(start: int, end: int, decisive: int | None, command: int, tier: int) -> Span:
        flags = None if new is None else tuple(new[start : end + 1])
        return Span(start, end, decisive, command_of(command), tier, flags, nothing_new)

    if new is not None and not nothing_new:
        found = [(hi, *_search(log, hi, new)) for hi in ends]
        for wanted in (1, 2):
            for hi, decisive, tier, start_cmd in found:
                if decisive is not None and tier == wanted:
                    return span(*_extend(cleaned, decisive, hi), decisive, start_cmd, tier)
        hi = ends[0]
        first = _first_new(cleaned, new, hi, seen or set())
        if first is not None:
            return span(*_extend(cleaned, first, hi), first, found[0][3], 0)
    # Without a passing log, or with one but no new line before the failure: every line
    # may be decisive. A line the passing log also has is never certain (tier 0).
    found = [(hi, *_search(log, hi, None)) for hi in ends]
    for wanted in (1, 2):
        for hi, decisive, tier, start_cmd in found:
            if decisive is not None and tier == wanted:
                tier = tier if new is None else 0
                return span(*_extend(cleaned, decisive, hi), decisive, start_cmd, tier)
    # A test runner's failure summary anywhere (a step can print failures and still exit 0).
    for i in range(len(cleaned)):
        if failure_summary(cleaned[i]):
            return span(*_extend(cleaned, i, len(cleaned)), i, log.command_before(i), 2)
    # Nothing decisive: show the lines just before the first failure (or the end).
    hi = anchors[0] if anchors else len(cleaned) - 1
    end = min(hi, len(cleaned) - 1)
    while end > 0 and not cleaned[end].strip():
        end -= 1
    start_cmd = log.command_before(end)
    return span(max(0, end - 9, start_cmd), end, None, start_cmd, 0)
