"""The demo's D1 story: a pending migration goes to staging first, then production.

The seeded databases have 0001 and 0002 applied; ``0003_session_index.sql`` is
in the repository and pending in both. Through the ``apply_d1_migrations`` job:

1. production is asked first and refused: staging has not applied 0003;
2. staging applies 0003 (its checksum recorded);
3. production applies 0003, the same file staging ran.
"""

from __future__ import annotations

import dagster as dg

from devops_assets.config import PlatformConfig
from devops_assets.demo.scenario import failure_text, op_config, run_job

OPERATOR = "ops@moltworker.example"
JOB = "apply_d1_migrations"


def _run(defs: dg.Definitions, instance, environment: str, reason: str):
    config = {"environment": environment, "requested_by": OPERATOR, "reason": reason}
    return run_job(defs, instance, JOB, op_config("apply_migrations", config))


def _line(result, environment: str) -> str:
    head = f"  {JOB} run {result.run_id[:8]} ({environment}): "
    if result.success:
        out = next(e for e in result.all_events if e.is_successful_output)
        applied = out.step_output_data.metadata["applied"].value
        databases = out.step_output_data.metadata["databases"].value
        return f"{head}applied {applied} to {databases}"
    return head + failure_text(result)


def play(config: PlatformConfig, defs: dg.Definitions, instance) -> list[str]:
    """Play the story (see the module docstring); returns the lines it printed."""
    lines = ["", "D1 migrations story (0003_session_index.sql pending in both databases):"]
    steps = [
        ("production", "1. production first (refused: staging has not applied it)"),
        ("staging", "2. staging"),
        ("production", "3. production, with the files staging ran"),
    ]
    for environment, title in steps:
        lines.append(title)
        result = _run(defs, instance, environment, "index sessions by device")
        lines.append(_line(result, environment))
    for line in lines:
        print(line)
    return lines
