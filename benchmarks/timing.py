"""Best-of-N wall time, Python allocation peak and process peak memory of one step.

Wall time is the fastest of ``repeat`` runs, each after its setup and a garbage
collection. The allocation peak comes from one more run of our side under
``tracemalloc`` (kept apart because tracing slows Python code down); it counts
Python allocations only, not git's or the database's. The process peak is
``ru_maxrss``, the high-water mark of this whole process so far.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


class ResultMismatch(RuntimeError):
    """Our side and the reference disagree, so their times are not comparable."""


@dataclass(frozen=True)
class Row:
    """One step of the benchmark: seconds of each side, memory of ours."""

    step: str
    ours_s: float
    reference_s: float
    peak_mib: float
    rss_mib: float

    @property
    def ratio(self) -> float:
        """Ours / reference; above 1 means our code is slower."""
        return self.ours_s / self.reference_s


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (sizes, repeats)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def _noop() -> None:
    return None


def best_time(
    run: Callable[[], Any], repeat: int, setup: Callable[[], None] = _noop
) -> tuple[float, Any]:
    """The fastest of ``repeat`` timed runs (seconds), and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        setup()
        gc.collect()
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def traced_peak_mib(run: Callable[[], Any], setup: Callable[[], None] = _noop) -> float:
    """Peak of Python allocations made during one run, in MiB."""
    setup()
    gc.collect()
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / MIB


def process_peak_mib() -> float:
    """This process's peak resident memory so far (kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


@dataclass(frozen=True)
class Sides:
    """Our side and the reference of one step, each with the setup it needs per run."""

    ours: Callable[[], Any]
    reference: Callable[[], Any]
    ours_setup: Callable[[], None] = _noop
    reference_setup: Callable[[], None] = _noop


def compare(step: str, sides: Sides, repeat: int) -> tuple[Row, Any, Any]:
    """Time both sides, trace ours once; return the row and each side's last result."""
    ours_s, ours = best_time(sides.ours, repeat, sides.ours_setup)
    reference_s, reference = best_time(sides.reference, repeat, sides.reference_setup)
    peak = traced_peak_mib(sides.ours, sides.ours_setup)
    return Row(step, ours_s, reference_s, peak, process_peak_mib()), ours, reference
