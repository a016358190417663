"""``devops-assets gate record``: a CI step reports its quality-gate result.

The step must be one the platform file's ``[quality_gate] steps`` names, so a
typo cannot pass for a step; the result goes to the warehouse, where the deploy
policy reads the latest report of each step of the commit being deployed.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime

from devops_assets.domain.guards import GATE_STATUSES, GateRecord

_SHA = re.compile(r"[0-9a-f]{7,64}")


class GateError(ValueError):
    """A report the gate cannot take; the message names the option."""


def record(commit: str, step: str, status: str, at: datetime | None = None) -> GateRecord:
    """Check one report against the platform file and store it; returns what was stored."""
    from devops_assets.config import load_config
    from devops_assets.store import Warehouse

    config = load_config()
    commit = commit.strip().lower()
    if not _SHA.fullmatch(commit):
        raise GateError(f"--commit: a commit sha of 7 to 64 hex characters, got {commit!r}")
    if step not in config.quality_gate:
        steps = ", ".join(config.quality_gate)
        raise GateError(f"--step: one of the quality gate's steps ({steps}), got {step!r}")
    if status not in GATE_STATUSES:
        raise GateError(f"--status: one of {', '.join(GATE_STATUSES)}, got {status!r}")
    report = GateRecord(commit, step, status, at or datetime.now(UTC))
    with Warehouse(config.warehouse_url) as warehouse:
        warehouse.record_gate([report])
    return report


def run(args: argparse.Namespace) -> int:
    try:
        stored = record(args.commit, args.step, args.status)
    except GateError as exc:
        print(f"devops-assets gate record: {exc}", file=sys.stderr)
        return 2
    print(f"recorded {stored.step} {stored.status} for {stored.commit_sha[:12]}")
    return 0


def add_parser(subparsers) -> None:
    """Add ``gate record``; sets ``args.run``."""
    gate = subparsers.add_parser("gate", help="report quality-gate results (for CI steps)")
    verbs = gate.add_subparsers(dest="verb", required=True, metavar="VERB")
    parser = verbs.add_parser(
        "record",
        help="record one step's result for a commit",
        description="Record one quality-gate step's result for a commit in the warehouse of "
        "the platform file ($DEVOPS_ASSETS_CONFIG); production deploys need every step passed.",
    )
    parser.add_argument("--commit", required=True, help="the commit sha the step checked")
    parser.add_argument("--step", required=True, help="a step of [quality_gate] steps")
    parser.add_argument("--status", required=True, choices=GATE_STATUSES)
    parser.set_defaults(run=run)
