"""The triage on every failure the emulator's Workers Builds logs can show.

``emulator/buildlogs.py`` says, for each way a build breaks, the category and the
quality-gate step a triage should find; here the triage reads the generated logs (as
the builds logs API serves them) and must agree on both, for failures and for the
flaky variants a retry rescues.
"""

from __future__ import annotations

import pytest

from devops_assets.emulator import buildlogs
from devops_assets.triage import triage
from devops_assets.triage.logs import text_from_json

STEPS = tuple(buildlogs.STEP_AT)

# Where we read a variant differently from buildlogs.py, and why. A connection refused,
# then a registry 503, while bun downloads a manifest is the network failing (the issue's
# "infrastructure: network, registry 5xx"), not the project's dependencies; buildlogs.py
# files that flaky variant under dependency_install.
READ_DIFFERENTLY = {"ConnectionRefused downloading package manifest": "infrastructure"}


def _expected_category(failure: buildlogs.Failure) -> str:
    for marker, category in READ_DIFFERENTLY.items():
        if any(marker in line for line in failure.lines):
            return category
    return failure.category


UUIDS = [f"6d0c3b7e-1f2a-4c5d-9e8f-{n:012d}" for n in range(40)]


def _build(uuid: str) -> dict:
    return {
        "build_uuid": uuid,
        "created_on": "2025-06-02T09:14:00Z",
        "running_on": "2025-06-02T09:14:05Z",
        "stopped_on": "2025-06-02T09:21:40Z",
        "build_outcome": "fail",
        "build_trigger_metadata": {
            "commit_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
            "commit_message": "gateway: retry upstream calls",
            "build_command": "bun run build",
            "deploy_command": "bunx wrangler deploy",
            "branch": "main",
        },
    }


@pytest.mark.parametrize("kind", [*buildlogs.KINDS, "rescued"])
def test_category_and_step_of_every_variant(kind):
    seen = set()
    for uuid in UUIDS:
        rescued = kind == "rescued"
        failure = kind if not rescued else "test"
        expected = buildlogs.failure_for(uuid, failure, rescued=rescued)
        lines = buildlogs.build_log(
            _build(uuid), worker="edge-api", failure=failure, version_id=None, rescued=rescued
        )
        result = triage(text_from_json({"success": True, "result": {"lines": lines}}), steps=STEPS)
        assert (result.category, result.step) == (_expected_category(expected), expected.step)
        assert result.certain
        seen.add(expected.lines)
    assert seen  # at least one variant of the kind was drawn
