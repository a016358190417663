"""The ``build_failed`` notice carries the triage of the failed build's log: its
category, step, evidence line range and masked summary, read from the log fetched
once and stored for ``build_failures``."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from devops_assets.defs import build_definitions
from devops_assets.demo.scenario import commit_file
from devops_assets.emulator.buildlogs import FAILURES
from devops_assets.store.triage_ledger import TriageLedger
from devops_assets_tests.deploy_fixtures import GOOD

PUSH = "git_push_sensor"


def tick(defs, instance, name: str, cursor: str | None = None):
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources, sensor_name=name
    ) as context:
        return sensor.evaluate_tick(context)


def notice_texts(world) -> list[tuple[str, str]]:
    path = Path(world.config.deploy.notify_file)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    found = []
    for line in lines:
        body = json.loads(line)
        found.append((body["metadata"]["event_type"], body["text"]))
    return found


@pytest.mark.parametrize("kind", ["test", "dependency"])
def test_a_failed_build_notice_names_its_category_step_and_evidence(world, kind):
    defs = build_definitions(world.config)
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = tick(defs, instance, PUSH).cursor
        app = world.app()
        path, content, message = GOOD
        sha = commit_file(world.repo, "hardshell", path, content, message, app.now())
        builds = app.push("hardshell", sha, message, outcome="fail", failure=kind)

        pushed = tick(defs, instance, PUSH, cursor)

    assert pushed.run_requests == []
    [(event, text)] = notice_texts(world)
    assert event == "build_failed"
    ledger = TriageLedger(world.warehouse)
    # only the build of the pushed branch's environment (staging) was triaged
    [record] = [r for r in (ledger.triage(b["build_uuid"]) for b in builds) if r is not None]
    assert record.worker == world.config.environment("staging").worker
    assert record.category in {f.category for f in FAILURES[kind]}
    assert f"triage: {record.category} in step {record.step}" in text
    assert f"log lines {record.evidence_start}-{record.evidence_end}" in text
    assert record.evidence_start >= 1 and record.evidence_end >= record.evidence_start
    # the failed build's log was read once, page by page, and is kept
    log = ledger.log(record.build_uuid)
    assert log is not None and log.line_count >= record.evidence_end
    assert len(text) < 600 and "\n" not in text


def test_a_cancelled_build_notice_carries_no_triage(world):
    defs = build_definitions(world.config)
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = tick(defs, instance, PUSH).cursor
        app = world.app()
        path, content, message = GOOD
        sha = commit_file(world.repo, "hardshell", path, content, message, app.now())
        app.push("hardshell", sha, message, outcome="cancelled")
        tick(defs, instance, PUSH, cursor)

    [(event, text)] = notice_texts(world)
    assert event == "build_failed" and "ended cancelled" in text and "triage" not in text
