"""``python -m benchmarks`` on a 300-commit slice of workers-sdk: every step, finite ratios;
and ``python -m benchmarks engine --small`` on a tiny synthetic history.

The full benchmark is run by hand (``make bench``); this keeps its entry point
working. Without ../shared/data the slice test is skipped, except on CI.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devops_assets_tests.git_fixtures import shared_data

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADER = "step"
STEPS = ("git read", "attribution", "upsert sqlite first", "upsert sqlite re-write")
POSTGRES_STEPS = ("upsert postgres first", "upsert postgres re-write")
ENGINE_STEPS = ("attribution production", "attribution staging", "metrics")


def run_benchmarks(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (argument list, no shell)
        [sys.executable, "-m", "benchmarks", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def table(stdout: str) -> dict[str, list[str]]:
    """Step → its cells (ours, reference, ratio, peak MiB, rss MiB), from the final table."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith(HEADER))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        step, *cells = re.split(r"\s{2,}", line.strip())
        rows[step] = cells
    return rows


def test_benchmark_on_a_slice_prints_every_step_with_a_finite_ratio():
    shared_data("git-histories", "workers-sdk")

    done = run_benchmarks("--commits", "300", "--repeat", "1")

    assert done.returncode == 0, done.stderr
    assert "git read: 300 commits" in done.stdout
    rows = table(done.stdout)
    postgres_skipped = "upsert postgres: skipped" in done.stdout
    assert list(rows) == [*STEPS, *(() if postgres_skipped else POSTGRES_STEPS)]
    for step, cells in rows.items():
        ours, reference, ratio, peak, rss = map(float, cells)
        assert ours > 0 and reference > 0, step
        assert math.isfinite(ratio) and ratio > 0, step
        assert peak >= 0 and rss > 0, step


def test_benchmark_exits_2_naming_the_missing_history(tmp_path):
    done = run_benchmarks("--data", str(tmp_path / "absent"))

    assert done.returncode == 2
    assert str(tmp_path / "absent" / "git-histories" / "workers-sdk") in done.stderr
    assert done.stdout == ""


def test_engine_benchmark_on_a_tiny_history_prints_ratios_and_agrees_with_duckdb():
    pytest.importorskip("duckdb")

    done = run_benchmarks("engine", "--small", "--repeat", "1")

    assert done.returncode == 0, done.stderr
    assert re.search(r"^cross-check: all [\d,]+ values agree with DuckDB", done.stdout, re.M)
    for step in ENGINE_STEPS:
        printed = re.search(rf"^{step}: .* ratio (\d+\.\d+)", done.stdout, re.M)
        assert printed and float(printed.group(1)) > 0, step
    rows = table(done.stdout)
    assert list(rows) == list(ENGINE_STEPS)
    for step, cells in rows.items():
        ours, reference, ratio, peak, rss = map(float, cells)
        assert ours > 0 and reference > 0, step
        assert math.isfinite(ratio) and ratio > 0, step
        assert peak >= 0 and rss > 0, step
