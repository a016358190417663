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

from devops_assets.triage.evidence import MAX_LINES, Span, choose_span
from devops_assets.triage.logs import LogError, LogText, read_log, split_lines
from devops_assets.triage.mask import mask
from devops_assets.triage.normalise import clean, normalise
from devops_assets.triage.rules import CATEGORIES, STEP_OF_CATEGORY, categorise
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
        """The CLI's JSON object (``certain`` is folded into the summary)."""
        data = asdict(self)
        data.pop("certain")
        data["evidence"] = list(self.evidence)
        return data


def _step(cleaned: list[str], span: Span, category: str, steps: Sequence[str]) -> str:
    upto = span.decisive if span.decisive is not None else span.end
    before = [line.lower() for line in cleaned[: upto + 1]]
    # The platform failing under a step (a lost container, the network) is not that
    # step's check failing: it is reported against the stage (install / build / deploy).
    if steps and category != "infrastructure":
        found: tuple[int, str] | None = None
        for name in steps:
            needle = re.compile(r"(?<![\w:-])" + re.escape(name.lower()) + r"(?![\w:-])")
            for index in range(len(before) - 1, -1, -1):
                line = before[index]
                if needle.search(line) and (
                    line.lstrip().startswith(
                        ("$", ">", "run ", "step", "==>", "executing", "running", "▶")
                    )
                    or line.strip() == needle
                ):
                    if found is None or index > found[0]:
                        found = (index, name)
                    break
        if found is not None:
            return found[1]
    header: tuple[int, str] | None = None
    for step, needles in _HEADERS:
        for index in range(len(before) - 1, -1, -1):
            if any(needle in before[index] for needle in needles):
                if header is None or index > header[0]:
                    header = (index, step)
                break
    if category in STEP_OF_CATEGORY and (header is None or category in ("deploy", "smoke_test")):
        return STEP_OF_CATEGORY[category]
    if header is not None:
        return header[1]
    return STEP_OF_CATEGORY.get(category, "unknown")


def triage(text: str, *, passing: str | None = None, steps: Sequence[str] = ()) -> Triage:
    """Triage one failed build log (``passing``: a passing log of the same branch)."""
    lines = split_lines(text)
    span = choose_span(lines, None if passing is None else split_lines(passing))
    if span.end < span.start:
        return Triage("unknown", "unknown", 0, 0, (), "unknown: the log is empty", "", False)
    shown = [clean(line)[:4000] for line in lines[span.start : span.end + 1]]
    cleaned_all = [clean(line) for line in lines]
    category, certain = categorise(shown, span.command)
    # Certain only when a rule read the category off a line that states an error outright.
    certain = certain and span.decisive is not None and span.tier == 1
    step = _step(cleaned_all, span, category, steps)
    evidence = tuple(mask(line) for line in shown)
    head_index = (span.decisive if span.decisive is not None else span.end) - span.start
    head = evidence[head_index].strip() if evidence else ""
    head = head[:157] + "..." if len(head) > 160 else head
    if category == "unknown":
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
        signature=signature(category, shown),
        certain=certain,
    )
