"""The team's targets in the platform file: ``[targets.<metric>]`` tables.

A target is read once, converted to the metric's own unit, and checked against
what can be measured, so a run never fails later on a target it cannot use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devops_assets.domain.units import UnitError, canonical_unit, to_canonical
from devops_assets.toml_reader import TableReader

if TYPE_CHECKING:
    from devops_assets.config import Environment

COMPARATORS = (">", ">=", "<", "<=")
BUILD_METRICS = frozenset(
    (
        "build_success_rate",
        "build_success_rate_without_flaky",
        "build_duration_p50",
        "build_duration_p90",
        "build_duration_mean",
    )
)


@dataclass(frozen=True)
class Target:
    """A seed target such as build success > 95 %; ``value`` is in ``unit``."""

    metric: str
    comparator: str
    value: float
    unit: str
    environment: str

    def is_met(self, measured: float) -> bool:
        return {
            ">": measured > self.value,
            ">=": measured >= self.value,
            "<": measured < self.value,
            "<=": measured <= self.value,
        }[self.comparator]


def parse_targets(root: TableReader, environments: tuple[Environment, ...]) -> tuple[Target, ...]:
    """Every ``[targets.<metric>]`` table, one Target per environment it names."""
    table = root.table("targets")
    targets = []
    for metric in table.data:
        t = table.table(metric).only("comparator", "value", "unit", "environments")
        try:
            unit = canonical_unit(metric)
        except UnitError as exc:
            raise table.fail(metric, str(exc)) from None
        comparator = t.text("comparator")
        if comparator not in COMPARATORS:
            raise t.fail("comparator", f"one of {' '.join(COMPARATORS)}, got {comparator!r}")
        value = _target_value(t, metric, unit)
        names = _target_environments(t, metric, environments)
        targets.extend(Target(metric, comparator, value, unit, e) for e in names)
    return tuple(targets)


def _target_value(t: TableReader, metric: str, unit: str) -> float:
    """The threshold in the metric's own unit: finite, and a ratio within 0..1."""
    written = t.get("value", (int, float), "a number")
    try:
        value = to_canonical(metric, float(written), t.text("unit", unit))
    except UnitError as exc:
        raise t.fail("unit", str(exc)) from None
    if not math.isfinite(value):
        raise t.fail("value", f"a finite number in {unit}, got {written!r}")
    if unit == "ratio" and not 0 <= value <= 1:
        raise t.fail("value", f"a ratio from 0 to 1 (or 0 to 100 percent), got {written!r}")
    return value


def _target_environments(
    t: TableReader, metric: str, environments: tuple[Environment, ...]
) -> tuple[str, ...]:
    """Configured environments, each once; delivery metrics need one a worker serves."""
    names = t.strings("environments", ("production",))
    if not names or len(set(names)) != len(names):
        raise t.fail("environments", f"each environment once, got {list(names)!r}")
    served = {e.name for e in environments if e.worker is not None}
    for name in names:
        if name not in {e.name for e in environments}:
            raise t.fail("environments", f"configured environment names, got {name!r}")
        if metric not in BUILD_METRICS and name not in served:
            raise t.fail(
                "environments", f"an environment a worker serves ({metric} needs deployments)"
            )
    return names
