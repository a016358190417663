"""Summary statistics the metrics use; both return ``None`` on empty input."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100), interpolating linearly between closest ranks.

    Rank ``(n - 1) * q / 100`` of the sorted values; a fractional rank lies on
    the straight line between its two neighbours, so the median of an even
    count is the mean of the two middle values (like numpy's default and SQL's
    ``PERCENTILE_CONT``). Same unit as the values.
    """
    if not 0 <= q <= 100 or math.isnan(q):
        raise ValueError(f"percentile q must be between 0 and 100, got {q!r}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean, in the unit of the values."""
    items = list(values)
    if not items:
        return None
    return math.fsum(items) / len(items)
