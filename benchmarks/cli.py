"""Run every step and print the table; exit 2 when the shared history is missing.

``python -m benchmarks engine [...]`` runs the metric engine on a synthetic history
instead (see ``benchmarks.engine_bench``; ``engine --help`` lists its options).
``python -m benchmarks triage`` measures build-failure triage on the labelled CI logs
(see ``benchmarks.triage_bench``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import engine_bench, triage_bench
from benchmarks.git_steps import bench_attribution, bench_git_read
from benchmarks.history import DEFAULT_DATA, DataMissing, history_folder, prepare_repository
from benchmarks.table import render
from benchmarks.timing import ResultMismatch, Row, positive_int
from benchmarks.upsert import UPSERT_COMMITS, bench_upserts
from devops_assets.report import ReportError

DEPLOY_TAGS = "wrangler@*"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--commits", type=positive_int, help="rebuild only the N oldest commits")
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed runs per side (3)")
    parser.add_argument("--deploy-tags", default=DEPLOY_TAGS, help=f"deployments ({DEPLOY_TAGS})")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    return parser.parse_args(argv)


def run_steps(folder: Path, workdir: Path, args: argparse.Namespace) -> list[Row]:
    """Rebuild the history (not timed), then time the three steps on it."""
    start = time.perf_counter()
    repo = prepare_repository(folder, workdir, args.commits)
    print(f"rebuilt {folder.name} in {time.perf_counter() - start:.1f} s (not timed)")

    git_row, commits = bench_git_read(repo, args.repeat)
    attribution_row = bench_attribution(repo, commits, args.deploy_tags, args.repeat)
    upsert_rows = bench_upserts(commits[:UPSERT_COMMITS], workdir, args.repeat)
    return [git_row, attribution_row, *upsert_rows]


def main(argv: list[str] | None = None) -> int:
    """Print each step as it finishes, then the table; 0 on success."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["engine"]:
        return engine_bench.main(argv[1:])
    if argv[:1] == ["triage"]:
        return triage_bench.main(argv[1:])
    args = parse_args(argv)
    try:
        folder = history_folder(args.data)
    except DataMissing as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="devops-assets-bench-") as workdir:
            rows = run_steps(folder, Path(workdir), args)
    except ReportError as exc:
        print(f"benchmarks: {exc} (try another --deploy-tags or more --commits)", file=sys.stderr)
        return 2
    except ResultMismatch as exc:
        print(f"benchmarks: the sides disagree, times not comparable: {exc}", file=sys.stderr)
        return 1
    print()
    print(render(rows))
    return 0
