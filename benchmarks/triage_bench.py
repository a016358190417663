"""``python -m benchmarks triage``: build-failure triage measured on real labelled logs.

Two sets under ``../shared/data/ci-failure-logs``: LogChunks (Travis CI failed builds with
the chunk a person marked as the reason; line numbers count ``\\n`` only) and the CiDiff
breakages (pass/fail pairs with labelled error lines; line numbers from
``str.splitlines()``, so our ``\\n`` spans are converted before comparing).

For each set it prints: logs, hit@1 (the evidence overlaps the labelled lines), recall of
the labelled lines, and the median evidence length, for the triage and for two baselines on
the same logs — the last 20 lines, and every line matching ``error|fail|exception``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.history import DEFAULT_DATA
from devops_assets.triage import triage
from devops_assets.triage.logs import split_lines

GREP = re.compile(r"error|fail|exception", re.I)
HELPER_CATEGORY = {
    "build_compile": "compile",
    "config_error": "config",
    "other_check": "unknown",
}


@dataclass
class Score:
    logs: int = 0
    hits: int = 0
    recall: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    def add(self, shown: set[int], labelled: set[int]) -> None:
        self.logs += 1
        self.hits += bool(shown & labelled)
        self.recall.append(len(shown & labelled) / len(labelled) if labelled else 0.0)
        self.lengths.append(len(shown))

    @property
    def hit_rate(self) -> float:
        return self.hits / self.logs if self.logs else 0.0

    @property
    def mean_recall(self) -> float:
        return statistics.fmean(self.recall) if self.recall else 0.0

    @property
    def median_length(self) -> float:
        return statistics.median(self.lengths) if self.lengths else 0.0


@dataclass
class SetResult:
    name: str
    ours: Score = field(default_factory=Score)
    alone: Score | None = None  # CiDiff: the triage without the passing log
    last20: Score = field(default_factory=Score)
    grep: Score = field(default_factory=Score)
    misses: list[str] = field(default_factory=list)
    agree: int = 0
    labelled: int = 0


def _text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")


def _baselines(result: SetResult, lines: list[str], labelled: set[int]) -> None:
    total = len(lines)
    result.last20.add(set(range(max(1, total - 19), total + 1)), labelled)
    result.grep.add({i for i, line in enumerate(lines, 1) if GREP.search(line)}, labelled)


def logchunks(folder: Path) -> SetResult:
    """LogChunks: the labelled chunk per present log; categories beside the helper's labels."""
    result = SetResult("logchunks")
    spans = folder / "chunk-spans.csv"
    helper = {}
    labels_path = folder / "helper-triage-labels.csv"
    if labels_path.exists():
        with labels_path.open(newline="") as handle:
            helper = {row["log"]: row["triage_category"] for row in csv.DictReader(handle)}
    with spans.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["log_gz_in_this_copy"] == "true"]
    for row in rows:
        path = folder / "logs" / (row["log"] + ".gz")
        text = _text(path)
        labelled = set(range(int(row["start_line"]), int(row["end_line"]) + 1))
        found = triage(text)
        shown = set(range(found.evidence_start, found.evidence_end + 1))
        result.ours.add(shown, labelled)
        if not shown & labelled:
            result.misses.append(f"{row['log']} {found.evidence_start}-{found.evidence_end}")
        _baselines(result, split_lines(text), labelled)
        expected = helper.get(row["log"] + ".gz")
        if expected:
            result.labelled += 1
            result.agree += HELPER_CATEGORY.get(expected, expected) == found.category
    return result


def _groundtruth(path: Path) -> set[int]:
    lines: set[int] = set()
    for entry in path.read_text().splitlines()[1:]:
        kind, _, ranges = entry.partition(" ")
        if kind != "E" or not ranges.strip():
            continue
        low, _, high = ranges.strip().partition("-")
        lines.update(range(int(low), int(high or low) + 1))
    return lines


def to_splitlines(lines: list[str], start: int, end: int) -> set[int]:
    """A 1-based span over ``\\n`` lines → the same lines numbered as ``str.splitlines()``."""
    offset = 0
    shown: set[int] = set()
    for number, line in enumerate(lines, 1):
        count = max(1, len(line.splitlines()))
        if start <= number <= end:
            shown.update(range(offset + 1, offset + count + 1))
        offset += count
        if number > end:
            break
    return shown


def cidiff(folder: Path) -> SetResult:
    """CiDiff breakages: the failing log triaged against its passing log."""
    result = SetResult("cidiff")
    for case in sorted(p for p in folder.iterdir() if (p / "groundtruth").exists()):
        fail, passing = _text(case / "fail.log.gz"), _text(case / "pass.log.gz")
        labelled = _groundtruth(case / "groundtruth")
        found = triage(fail, passing=passing)
        shown = to_splitlines(split_lines(fail), found.evidence_start, found.evidence_end)
        result.ours.add(shown, labelled)
        alone = triage(fail)
        result.alone = result.alone or Score()
        result.alone.add(
            to_splitlines(split_lines(fail), alone.evidence_start, alone.evidence_end), labelled
        )
        if not shown & labelled:
            result.misses.append(f"{case.name} {found.evidence_start}-{found.evidence_end}")
        split = fail.splitlines()
        total = len(split)
        result.last20.add(set(range(max(1, total - 19), total + 1)), labelled)
        result.grep.add({i for i, line in enumerate(split, 1) if GREP.search(line)}, labelled)
    return result


def render(results: Iterable[SetResult]) -> str:
    head = f"{'set':<10} {'method':<10} {'logs':>5} {'hit@1':>7} {'recall':>7} {'median lines':>13}"
    rows = [head, "-" * len(head)]
    for result in results:
        methods = [("triage", result.ours)]
        if result.alone is not None:
            methods.append(("no --pass", result.alone))
        methods += [("last-20", result.last20), ("grep", result.grep)]
        for method, score in methods:
            rows.append(
                f"{result.name:<10} {method:<10} {score.logs:>5} {score.hit_rate:>7.1%} "
                f"{score.mean_recall:>7.1%} {score.median_length:>13g}"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks triage", description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"the shared folder or its data folder (default {DEFAULT_DATA})",
    )
    parser.add_argument("--misses", action="store_true", help="list the logs the triage missed")
    args = parser.parse_args(argv)
    candidates = [args.data / "ci-failure-logs", args.data / "data" / "ci-failure-logs"]
    root = next((c for c in candidates if c.is_dir()), None)
    if root is None:
        print(
            f"benchmarks: no labelled logs at {candidates[0]}; point --data at the shared "
            'folder (make bench BENCH_ARGS="triage --data /path/to/shared")',
            file=sys.stderr,
        )
        return 2
    results = [logchunks(root / "logchunks"), cidiff(root / "cidiff-breakages")]
    print(render(results))
    for result in results:
        if result.labelled:
            print(
                f"{result.name}: category agrees with the helper's labels on "
                f"{result.agree}/{result.labelled}"
            )
        if args.misses:
            for miss in result.misses:
                print(f"  miss {result.name}: {miss}")
    return 0
