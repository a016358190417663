"""Choose the evidence span: the first decisive error line of the failing step, in context.

1. The *anchor* is the first line that ends a failed step ("The command … exited with 1",
   ``npm ERR! code ELIFECYCLE``, ``BUILD FAILURE``, ``Process completed with exit code``, …);
   without one, the end of the log.
2. The *window* runs from the last command line before the anchor (``$ cmd``, ``Run cmd``,
   ``> pkg@1.0.0 script``, Workers Builds' "Executing user build command") to the anchor.
3. In the window, the first line that states an error outright (tier 1) wins, else the first
   weaker hint (tier 2); when nothing in the window qualifies, the whole log before the anchor
   is searched, and failing that the lines just before the anchor are shown (uncertain).
4. With a passing log of the same branch, a line whose normalised text also appears in the
   passing log is never decisive, and when no error-shaped line is new, the first new lines
   before the anchor are the evidence.
5. The span starts one line before the decisive line when that line introduces it (a file
   name, a test title, a browser name) and runs on while the output stays on the same
   failure: at most ``MAX_LINES`` lines, ending before a blank pair or a new command, or
   at the step's closing lines when they fall within those lines (the span is one run of
   the log's lines: a longer failure is cut at ``MAX_LINES`` and the closing lines left out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devops_assets.triage.normalise import clean, normalise
from devops_assets.triage.rules import NOISE, TERMINAL, decisive_tier

MAX_LINES = 15
# Lines before a step's end searched for the decisive line: bounds the work on a huge
# log (a real failure is printed well within this of where its step fails).
SCAN_WINDOW = 20_000
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


def is_command(text: str) -> bool:
    """``text`` starts a step (``$ cmd``, ``> pkg@1.0.0 script``, a Workers Builds stage)."""
    return bool(COMMAND.search(text)) and not TERMINAL.search(text)


def _new_lines(cleaned: list[str], passing: list[str] | None) -> list[bool] | None:
    if passing is None:
        return None
    seen = {normalise(line) for line in passing}
    return [bool(line.strip()) and normalise(line) not in seen for line in cleaned]


def _first_decisive(
    cleaned: list[str], lo: int, hi: int, new: list[bool] | None
) -> tuple[int | None, int]:
    strong: int | None = None
    weak: int | None = None
    for i in range(max(lo, hi - SCAN_WINDOW), hi):
        if new is not None and not new[i]:
            continue
        tier = decisive_tier(cleaned[i])
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


def _command_before(cleaned: list[str], index: int) -> int:
    for i in range(min(index, len(cleaned) - 1), -1, -1):
        if is_command(cleaned[i]):
            return i
    return 0


_TRAVIS_OPEN = re.compile(r'The command "')
_TRAVIS_CLOSE = re.compile(r'" (?:exited with (\d+)|failed)')


def _anchor(cleaned: list[str]) -> int | None:
    """The first line that ends a failed step (a Travis message may span lines)."""
    for i, text in enumerate(cleaned):
        if _TRAVIS_OPEN.search(text) and not _TRAVIS_CLOSE.search(text):
            tail = " ".join(cleaned[i : i + 6])
            close = _TRAVIS_CLOSE.search(tail)
            if close and (close.group(1) is None or close.group(1) != "0"):
                return i
            continue
        if TERMINAL.search(text):
            return i
    return None


def _step_end(cleaned: list[str], anchor: int) -> int:
    """Output can trail the failure message (buffers): the step ends at the next command."""
    for i in range(anchor + 1, min(len(cleaned), anchor + 200)):
        if is_command(cleaned[i]) or cleaned[i].startswith("Done. Your build exited"):
            return i
    return min(len(cleaned), anchor + 200)


def _anchors(cleaned: list[str]) -> list[int]:
    """Every line that ends a failed step, in order (Travis goes on after a failed step)."""
    found: list[int] = []
    lo = 0
    while lo < len(cleaned):
        index = _anchor(cleaned[lo:])
        if index is None:
            break
        found.append(lo + index)
        lo += index + 1
    return found


def _search(cleaned: list[str], hi: int, new: list[bool] | None) -> tuple[int | None, int, int]:
    """(decisive, tier, command line) for the step ending at ``hi``; earlier steps too."""
    start_cmd = _command_before(cleaned, hi - 1) if hi > 0 else 0
    starts = [start_cmd]
    while len(starts) < 4 and starts[-1] > 0:
        starts.append(_command_before(cleaned, starts[-1] - 1))
    for lo in starts:
        decisive, tier = _first_decisive(cleaned, lo, hi, new)
        if decisive is not None:
            return decisive, tier, start_cmd
    return None, 0, start_cmd


def choose_span(lines: list[str], passing: list[str] | None = None) -> Span:
    """The evidence span of a failed build's ``lines`` (split on ``\\n``)."""
    cleaned = [clean(line) for line in lines]
    if not cleaned:
        return Span(0, -1, None, "", 0)
    pass_clean = None if passing is None else [clean(line) for line in passing]
    new = _new_lines(cleaned, pass_clean)
    anchors = _anchors(cleaned)[:8]
    ends = [_step_end(cleaned, anchor) for anchor in anchors] or [len(cleaned)]
    ends = list(dict.fromkeys(ends))

    def command_of(index: int) -> str:
        """The failing command line and the two before it (``npm test`` → ``> vitest``)."""
        found: list[str] = []
        while len(found) < 3 and is_command(cleaned[index]):
            found.insert(0, cleaned[index].strip())
            if index == 0 or not found[0].startswith(">"):  # a top-level step: stop
                break
            index = _command_before(cleaned, index - 1)
        return " | ".join(found)

    for diff in (new,) if new is None else (new, None):
        found = [(hi, *_search(cleaned, hi, diff)) for hi in ends]
        for wanted in (1, 2):
            for hi, decisive, tier, start_cmd in found:
                if decisive is not None and tier == wanted:
                    start, end = _extend(cleaned, decisive, hi)
                    return Span(start, end, decisive, command_of(start_cmd), tier)
        if diff is not None:
            hi = ends[0]
            if any(diff[:hi]):
                first = next(i for i in range(hi) if diff[i])
                start, end = _extend(cleaned, first, hi)
                return Span(start, end, first, command_of(found[0][3]), 0)
    # A test runner's failure summary anywhere (a step can print failures and still exit 0).
    for i, text in enumerate(cleaned):
        if decisive_tier(text) == 3:
            start, end = _extend(cleaned, i, len(cleaned))
            return Span(start, end, i, command_of(_command_before(cleaned, i)), 2)
    # Nothing decisive: show the lines just before the first failure (or the end).
    hi = anchors[0] if anchors else len(cleaned) - 1
    end = min(hi, len(cleaned) - 1)
    while end > 0 and not cleaned[end].strip():
        end -= 1
    start_cmd = _command_before(cleaned, end)
    start = max(0, end - 9, start_cmd)
    return Span(start, end, None, command_of(start_cmd), 0)
