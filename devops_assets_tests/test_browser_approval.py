"""A secret rotation is requested and approved from the UI launchpads; the requester's
own approval is refused by the two-person rule.

A real ``dagster dev`` serves a freshly seeded demo workspace on a free 127.0.0.1
port, and Debian's headless Chromium, driven by Playwright, launches three runs:
``request_secret_rotation`` (staging's ``MOLTBOT_GATEWAY_TOKEN``, asked by ops),
``approve_secret_rotation`` by the requester (the run page shows Failure, naming
``two_person``) and ``approve_secret_rotation`` by the CISO (Success). The ids come
from the workspace's warehouse and the runs' outputs, never from a guess. The last
run page is saved as ``test-artifacts/approve-secret-rotation-run.png``; when the
test fails, the page it was on and the ``dagster dev`` log are saved beside it.

The demo's ``[secrets] approvers`` are the CISO and the security lead; ops is not
one, so ops approving would be refused by the ``approver`` rule before the
two-person rule is reached. The test serves a copy of the demo platform file whose
approvers also list ops: ops may approve, only not their own request.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from devops_assets.config import DEMO_CONFIG
from devops_assets_tests.browser_fixtures import (
    ARTIFACTS,
    chromium_page,
    launch_from_launchpad,
    run_errors,
    save_failure,
    served_demo,
    wait_for_finished_status,
)

pytestmark = pytest.mark.browser

OPS = "ops@moltworker.example"
CISO = "ciso@moltworker.example"
GATEWAY = "MOLTBOT_GATEWAY_TOKEN"
APPROVE = "approve_secret_rotation"
DEMO_APPROVERS = 'approvers = ["ciso@moltworker.example", "security-lead@moltworker.example"]'
SCREENSHOT = ARTIFACTS / "approve-secret-rotation-run.png"
FAILURE_SCREENSHOT = ARTIFACTS / "approve-secret-rotation-failure.png"
FAILURE_LOG = ARTIFACTS / "approve-secret-rotation-dagster-dev.log"


@pytest.fixture
def approvals_ui(tmp_path: Path, postgres_server):
    """The demo served by ``dagster dev``, with ops among the approvers."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    assert text.count(DEMO_APPROVERS) == 1, "the demo's approvers line changed"
    platform = tmp_path / "platform.toml"
    platform.write_text(
        text.replace(DEMO_APPROVERS, DEMO_APPROVERS[:-1] + f', "{OPS}"]'), encoding="utf-8"
    )
    with served_demo(tmp_path, postgres_server, platform) as parts:
        yield parts


def op_config(op: str, config: dict) -> str:
    return yaml.safe_dump({"ops": {op: {"config": config}}}, sort_keys=False)


def output_metadata(instance: dg.DagsterInstance, run_id: str, key: str) -> str:
    """``key`` of the metadata of the run's one step output."""
    [value] = [
        record.dagster_event.event_specific_data.metadata[key].value
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
    ]
    return value


def run_status(instance: dg.DagsterInstance, run_id: str, job: str) -> dg.DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.job_name == job
    return run.status


def test_a_rotation_is_approved_by_a_second_person_from_the_launchpad(approvals_ui):
    from playwright.sync_api import expect

    pipeline, server, chromium = approvals_ui
    instance, ledger = pipeline.instance, pipeline.warehouse.secrets
    ARTIFACTS.mkdir(exist_ok=True)
    for old in (SCREENSHOT, FAILURE_SCREENSHOT, FAILURE_LOG):
        old.unlink(missing_ok=True)
    asked = {
        "requested_by": OPS,
        "environment": "staging",
        "secret": GATEWAY,
        "reason": "browser test",
    }

    with chromium_page(chromium) as page:
        try:
            # 1. The request, from its launchpad.
            run_id = launch_from_launchpad(
                page, server, "request_secret_rotation", op_config("request_due_rotations", asked)
            )
            status = wait_for_finished_status(page)
            assert status == "Success", run_errors(instance, run_id)
            [request] = [r for r in ledger.requests() if r.requested_by == OPS]
            assert (request.environment, request.secret, request.reason) == (
                "staging",
                GATEWAY,
                "browser test",
            )
            assert request.state == "requested"
            assert output_metadata(instance, run_id, "requested") == request.request_id

            # 2. The requester approves their own request: refused, two_person.
            own = {"request_id": request.request_id, "approver": OPS}
            own_run = launch_from_launchpad(
                page, server, APPROVE, op_config("approve_rotation", own)
            )
            status = wait_for_finished_status(page)
            assert status == "Failure", f"the requester's own approval shows {status}"
            expect(page.get_by_text("Refused (two_person)").first).to_be_visible()
            assert "Refused (two_person)" in run_errors(instance, own_run)
            assert run_status(instance, own_run, APPROVE) == dg.DagsterRunStatus.FAILURE
            assert ledger.approvals(request.request_id) == []
            assert ledger.request(request.request_id).state == "requested"

            # 3. A second person approves it.
            ciso = {"request_id": request.request_id, "approver": CISO}
            ciso_run = launch_from_launchpad(
                page, server, APPROVE, op_config("approve_rotation", ciso)
            )
            status = wait_for_finished_status(page)
            assert status == "Success", run_errors(instance, ciso_run)
            # 4. The final run page.
            page.screenshot(path=SCREENSHOT, full_page=True)
        except BaseException:
            save_failure(page, server, FAILURE_SCREENSHOT, FAILURE_LOG)
            raise

    assert run_status(instance, ciso_run, APPROVE) == dg.DagsterRunStatus.SUCCESS
    [approval] = ledger.approvals(request.request_id)
    assert approval.approver == CISO and approval.used_by_run is None
    assert approval.request_hash == request.request_hash
    assert output_metadata(instance, ciso_run, "approval_id") == approval.approval_id
    assert ledger.request(request.request_id).state == "approved"

    decisions = [
        (e.actor, e.outcome, e.reason.partition(":")[0], e.run_id)
        for e in pipeline.warehouse.audit_log("staging")
        if e.action == APPROVE and e.subject == request.request_id
    ]
    assert decisions == [
        (OPS, "refused", "two_person", own_run),
        (CISO, "allowed", "approved MOLTBOT_GATEWAY_TOKEN rotation", ciso_run),
    ]
    assert SCREENSHOT.stat().st_size > 10_000  # a rendered page, not a blank one
