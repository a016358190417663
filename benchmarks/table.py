"""The summary table printed at the end of a benchmark run."""

from __future__ import annotations

from benchmarks.timing import Row

HEADER = ("step", "ours (s)", "reference (s)", "ratio", "peak MiB", "rss MiB")
_WIDTHS = (24, 10, 15, 9, 10, 9)
LEGEND = (
    "ratio = ours / reference (above 1: ours is slower); times are the best of the runs.",
    "peak MiB = tracemalloc peak of our side's Python allocations (not git's, not the database's);",
    "rss MiB = ru_maxrss, this process's peak resident memory up to the end of the step.",
)


def _line(cells: tuple[str, ...]) -> str:
    first = f"{cells[0]:<{_WIDTHS[0]}}"
    rest = (f"{cell:>{width}}" for cell, width in zip(cells[1:], _WIDTHS[1:], strict=True))
    return first + "".join(rest)


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.step,
        f"{row.ours_s:.4f}",
        f"{row.reference_s:.4f}",
        f"{row.ratio:.3g}",
        f"{row.peak_mib:.2f}",
        f"{row.rss_mib:.1f}",
    )


def render(rows: list[Row]) -> str:
    """A fixed-width table, one line per step, with the legend below it."""
    lines = [_line(HEADER), *(_line(_cells(row)) for row in rows)]
    return "\n".join([*lines, "", *LEGEND])
