"""The UI launchpad launches ``deploy`` and the run page shows it succeed.

A real ``dagster dev`` (webserver and daemon: the instance's QueuedRunCoordinator
needs the daemon to start the run) serves a freshly seeded demo workspace on a
free 127.0.0.1 port; Debian's headless Chromium, driven by Playwright, types the
run config into the launchpad's editor, clicks Launch Run and follows the run.
The run page is saved as ``test-artifacts/launchpad-deploy-run.png``; when the
test fails, the page it was on and the ``dagster dev`` log are saved beside it.
"""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from devops_assets_tests.browser_fixtures import (
    ARTIFACTS,
    chromium_page,
    launch_from_launchpad,
    run_errors,
    save_failure,
    wait_for_finished_status,
)

pytestmark = pytest.mark.browser

STAGING_WORKER = "moltworker-staging"
DEPLOY_TAG = "devops_assets/deploy"
SCREENSHOT = ARTIFACTS / "launchpad-deploy-run.png"
FAILURE_SCREENSHOT = ARTIFACTS / "launchpad-deploy-failure.png"
FAILURE_LOG = ARTIFACTS / "launchpad-deploy-dagster-dev.log"


def newest_successful_build(history, worker: str) -> str:
    """The commit of the worker's newest successful build in the seeded history."""
    builds = [b for b in history.builds if b["worker"] == worker and b["outcome"] == "success"]
    assert builds, f"the seeded demo has no successful build on {worker}"
    return max(builds, key=lambda b: b["created_on"])["commit_sha"]


def test_deploy_launched_from_the_launchpad_succeeds(demo_ui):
    pipeline, server, chromium = demo_ui
    commit = newest_successful_build(pipeline.history, STAGING_WORKER)
    deploy = {
        "environment": "staging",
        "commit": commit,
        "requested_by": "browser-test",
        "reason": "launchpad check from the browser test",
    }
    run_config = yaml.safe_dump({"ops": {"deploy_commit": {"config": deploy}}}, sort_keys=False)
    ARTIFACTS.mkdir(exist_ok=True)
    for old in (SCREENSHOT, FAILURE_SCREENSHOT, FAILURE_LOG):
        old.unlink(missing_ok=True)

    with chromium_page(chromium) as page:
        run_id = None
        try:
            run_id = launch_from_launchpad(page, server, "deploy", run_config)
            status = wait_for_finished_status(page)
            assert status == "Success", (
                f"the run page shows {status}; the run's errors:\n"
                f"{run_errors(pipeline.instance, run_id)}"
            )
            page.screenshot(path=SCREENSHOT, full_page=True)
        except BaseException:
            save_failure(page, server, FAILURE_SCREENSHOT, FAILURE_LOG)
            raise

    run = pipeline.instance.get_run_by_id(run_id)
    assert run is not None and run.job_name == "deploy"
    assert run.status == dg.DagsterRunStatus.SUCCESS, run_errors(pipeline.instance, run_id)
    assert DEPLOY_TAG in run.tags, run.tags
    assert run.run_config["ops"]["deploy_commit"]["config"] == deploy
    assert SCREENSHOT.stat().st_size > 10_000  # a rendered page, not a blank one
