"""Build failure triage: which step failed, why, and the few lines that show it.

``triage(text)`` reads a failed build's log and returns a :class:`Triage`: a category
(see :data:`CATEGORIES`), the step, the evidence span (1-based line numbers counting
``\\n`` only), the masked evidence lines, a one-line summary and a stable signature.
Given the log of a passing build of the same branch, the lines both logs share (after
:func:`normalise`) are never taken as the cause. See docs/triage.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from devops_assets.triage.evidence import MAX_LINES, Span, choose_span, clean_lines, is_command
from devops_assets.triage.logs import LogError, LogText, read_log, split_lines
from devops_assets.triage.mask import mask_lines
from devops_assets.triage.normalise import clean, normalise
from devops_assets.triage.rules import (
    BANNER,
    CATEGORIES,
    NOISE,
    STEP_OF_CATEGORY,
    TERMINAL,
    categorise,
    decisive_tier,
)
from devops_assets.triage.signature import signature

__all__ = [
    "CATEGORIES",
    "MAX_LINES",
    "LogError",
    "LogText",
    "Triage",
    "normalise",
    "read_log",
    "triage",
]

# Workers Builds announces each stage with one of these lines.
_HEADERS = (
    ("install", ("installing project dependencies",)),
    ("deploy", ("executing user deploy command",)),
    ("build", ("executing user build command",)),
)


@dataclass(frozen=True)
class Triage:
    category: str
    step: str
    evidence_start: int  # 1-based, counting "\n" only; 0 when the log is empty
    evidence_end: int
    evidence: tuple[str, ...]
    summary: str
    signature: str
    certain: bool

    def as_json(self) -> dict:
        """The CLI's JSON object: every field (``certain`` too, false for a guess)."""
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        return data


# A package-manager script line (``$ bun run build``) names the step it starts; a
# script that is no quality-gate step maps to the stage it belongs to.
_SCRIPT = re.compile(r"^[$>]\s*(?:bun|npm|pnpm|yarn)\s+(?:run\s+)?([\w:.-]+)")
_SCRIPT_STAGES = {
    "build": "build",
    "bundle": "build",
    "compile": "build",
    "deploy": "deploy",
    "publish": "deploy",
    "install": "install",
    "ci": "install",
}
_STEP_PREFIXES = ("$", ">", "run ", "step", "==>", "executing", "running", "▶")


def _step(cleaned: list[str], span: Span, category: str, steps: Sequence[str]) -> str:
    """The step whose header comes last before the decisive line: a quality-gate step
    (a line starting it, naming exactly one step: a chain such as ``bun run lint &&
    bun run check`` names none), a package script outside the gate (its stage), or
    a Workers Builds stage line."""
    upto = span.decisive if span.decisive is not None else span.end
    before = [line.lower() for line in cleaned[: upto + 1]]
    # The platform failing under a step (a lost container, the network) is not that
    # step's check failing: it is reported against the stage (install / build / deploy).
    gate = {} if category == "infrastructure" else {name.lower(): name for name in steps}
    needles = {low: re.compile(r"(?<![\w:-])" + re.escape(low) + r"(?![\w:-])") for low in gate}
    marks: list[tuple[int, str]] = []
    for index, line in enumerate(before):
        stripped = line.strip()
        named = [low for low, needle in needles.items() if needle.search(line)]
        if len(named) == 1 and (stripped.startswith(_STEP_PREFIXES) or stripped == named[0]):
            marks.append((index, gate[named[0]]))
            continue
        script = _SCRIPT.match(stripped)
        if script and script.group(1) not in gate and script.group(1) in _SCRIPT_STAGES:
            marks.append((index, _SCRIPT_STAGES[script.group(1)]))
            continue
        for stage, words in _HEADERS:
            if any(word in line for word in words):
                marks.append((index, stage))
    latest = max(marks)[1] if marks else None
    # The step the log states wins; the category (certain or a guess) names the stage
    # only when the log states none.
    return latest or STEP_OF_CATEGORY.get(category, "unknown")


# A ruler ("-----", "[INFO] ------", "⎯⎯⎯⎯") says nothing.
_RULER = re.compile(r"^\s*(?:\[\w+\]\s*)?[^\w\s]*\s*$")


def _informative(line: str) -> bool:
    """A line that says something of its own: not blank or a ruler, not a step's closing
    line or boilerplate, not a command line."""
    return not (
        _RULER.match(line) or TERMINAL.search(line) or NOISE.search(line) or is_command(line)
    )


def _headline(
    evidence: Sequence[str], decisive: int | None, new: Sequence[bool] | None = None
) -> str:
    """The line the summary quotes: the most informative one of the evidence.

    The decisive line, unless it only says that something failed (a :data:`BANNER`):
    then the first error-shaped line after it, the cause. A line ending in ``:`` (a
    header such as "Processing wrangler.jsonc configuration:") is joined to the detail
    it introduces. Without a decisive line, the last informative line before the
    step's closing lines (never the boilerplate "Failed: error occurred while …").
    ``new``: which lines the passing log lacks; the cause is then taken from those."""
    if not evidence:
        return ""
    compared = new is not None and any(new)
    fresh = list(new) if compared else [True] * len(evidence)
    if decisive is None:
        said = [line for line, is_new in zip(evidence, fresh, strict=True) if is_new]
        said = [line for line in said if _informative(line)] or [
            line for line in evidence if _informative(line)
        ]
        if said:
            return said[-1].strip()
        said = [line for line in evidence if line.strip() and not TERMINAL.search(line)]
        return (said or list(evidence))[-1].strip()
    index = decisive
    if BANNER.search(evidence[index]):
        stop = next(
            (i for i in range(decisive + 1, len(evidence)) if _ends_cause_search(evidence[i])),
            len(evidence),
        )
        after = [
            i for i in range(decisive + 1, stop) if fresh[i] and not BANNER.search(evidence[i])
        ]
        cause = next((i for i in after if decisive_tier(evidence[i]) in (1, 2, 3)), None)
        if cause is None and compared:
            # No new error-shaped line: a new line says more than the banner.
            cause = next((i for i in after if _informative(evidence[i])), None)
        index = index if cause is None else cause
    head = evidence[index].strip()
    if head.endswith(":"):
        detail = next((line for line in evidence[index + 1 :] if line.strip()), "")
        if _informative(detail) and not BANNER.search(detail):
            head = f"{head} {detail.strip()}"
    return head


def _ends_cause_search(line: str) -> bool:
    return bool(TERMINAL.search(line) or is_command(line))


def triage(text: str, *, passing: str | None = None, steps: Sequence[str] = ()) -> Triage:
    """Triage one failed build log (``passing``: a passing log of the same branch)."""
    lines = split_lines(text)
    # Each line cleaned once, and cut at MATCH_CHARS: rules read no more of a line.
    cleaned_all = clean_lines(lines)
    span = choose_span(
        lines, None if passing is None else split_lines(passing), cleaned=cleaned_all
    )
    if span.end < span.start:
        return Triage("unknown", "unknown", 0, 0, (), "unknown: the log is empty", "", False)
    category, certain = categorise(cleaned_all[span.start : span.end + 1], span.command)
    # Certain only when a rule read the category off a line that states an error outright
    # (and, with a passing log, one that log lacks).
    certain = certain and span.decisive is not None and span.tier == 1
    if span.nothing_new:
        category, certain = "unknown", False
    step = _step(cleaned_all, span, category, steps)
    # The evidence as a reader sees it; masking cuts a line over 2000 characters (the
    # cut word dropped, " [...]" added).
    shown = [clean(line)[:4000] for line in lines[span.start : span.end + 1]]
    evidence = tuple(mask_lines(shown, before=cleaned_all[: span.start]))
    head = _headline(
        evidence, None if span.decisive is None else span.decisive - span.start, span.new
    )
    head = head[:157] + "..." if len(head) > 160 else head
    if span.nothing_new:
        summary = (
            f"unknown: the failing log has no line the passing one lacks; nearest lines: {head}"
        )
    elif category == "unknown":
        summary = f"unknown: no rule recognised the failure; nearest lines: {head}"
    elif certain:
        summary = f"{category} in step {step}: {head}"
    else:
        summary = f"probably {category} in step {step} (not certain): {head}"
    return Triage(
        category=category,
        step=step,
        evidence_start=span.start + 1,
        evidence_end=span.end + 1,
        evidence=evidence,
        summary=summary,
        signature=signature(category, evidence),
        certain=certain,
    )
