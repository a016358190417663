"""The UI launchpad launches ``deploy`` and the run page shows it succeed.

A real ``dagster dev`` (webserver and daemon: the instance's QueuedRunCoordinator
needs the daemon to start the run) serves a freshly seeded demo workspace on a
free 127.0.0.1 port; Debian's headless Chromium, driven by Playwright, types the
run config into the launchpad's editor, clicks Launch Run and follows the run.
The run page is saved as ``test-artifacts/launchpad-deploy-run.png``; when the
test fails, the page it was on and the ``dagster dev`` log are saved beside it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from devops_assets.config import DEMO_CONFIG
from devops_assets_tests.browser_fixtures import (
    ARTIFACTS,
    LOCATION,
    chromium_page,
    dagster_dev,
    require_chromium,
)
from devops_assets_tests.pipeline_fixtures import open_pipeline

pytestmark = pytest.mark.browser

STAGING_WORKER = "moltworker-staging"
DEPLOY_TAG = "devops_assets/deploy"
RUN_WAIT_S = 120
SCREENSHOT = ARTIFACTS / "launchpad-deploy-run.png"
FAILURE_SCREENSHOT = ARTIFACTS / "launchpad-deploy-failure.png"
FAILURE_LOG = ARTIFACTS / "launchpad-deploy-dagster-dev.log"
RUN_URL = re.compile(r"/runs/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
# The status tag in the run page's header once the run is over.
FINISHED = re.compile(r"^(Success|Failure|Canceled)$")


@pytest.fixture
def demo_ui(tmp_path: Path, postgres_server):
    """A seeded demo workspace with its own Dagster database, served by ``dagster dev``."""
    chromium = require_chromium()
    pipeline, close = open_pipeline(tmp_path / "home", postgres_server)
    try:
        env = {**os.environ, "DEVOPS_ASSETS_CONFIG": str(DEMO_CONFIG)}
        home = Path(os.environ["DAGSTER_HOME"])
        with dagster_dev(home, env, tmp_path / "dagster-dev.log") as server:
            yield pipeline, server, chromium
    finally:
        close()  # after dagster dev has stopped: drops the database


def newest_successful_build(history, worker: str) -> str:
    """The commit of the worker's newest successful build in the seeded history."""
    builds = [b for b in history.builds if b["worker"] == worker and b["outcome"] == "success"]
    assert builds, f"the seeded demo has no successful build on {worker}"
    return max(builds, key=lambda b: b["created_on"])["commit_sha"]


def launch_from_launchpad(page, server, job: str, run_config: str) -> str:
    """Type ``run_config`` into the job's launchpad, launch, and return the run id."""
    from playwright.sync_api import expect

    page.goto(server.url(f"locations/{LOCATION}/jobs/{job}/playground"))
    editor = page.locator(".CodeMirror").first
    editor.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.insert_text(run_config)  # as a paste: no auto-indent on each line
    typed = page.evaluate("() => document.querySelector('.CodeMirror').CodeMirror.getValue()")
    assert typed == run_config, f"the config editor holds {typed!r}"
    launch = page.get_by_role("button", name="Launch Run")
    expect(launch).to_be_enabled()  # the launchpad has validated the config
    launch.click()
    page.wait_for_url(RUN_URL)
    return RUN_URL.search(page.url).group(1)


def wait_for_finished_status(page) -> str:
    """The run page's status once the run is over (``Success`` etc.), waited for at most
    ``RUN_WAIT_S``; the run page keeps itself up to date."""
    from playwright.sync_api import expect

    status = page.get_by_text(FINISHED).first
    expect(status).to_be_visible(timeout=RUN_WAIT_S * 1000)
    return status.inner_text().strip()


def run_errors(instance: dg.DagsterInstance, run_id: str) -> str:
    """The error messages of the run's failed steps and of the run itself (the stack
    traces are in the ``dagster dev`` log kept beside the failure screenshot)."""
    messages = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.is_failure:
            continue
        error = getattr(event.event_specific_data, "error", None)
        messages.append(
            f"{event.event_type_value}: {error.message.strip() if error else event.message}"
        )
    return "\n".join(messages) or "(no failure event)"


def save_failure(page, server) -> None:
    """Keep what the browser showed and what dagster dev logged, for the one debugging."""
    try:
        page.screenshot(path=FAILURE_SCREENSHOT, full_page=True)
    except Exception as exc:  # the browser may be what broke; keep the first error
        print(f"no failure screenshot: {exc}")
    shutil.copyfile(server.log_path, FAILURE_LOG)


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
            save_failure(page, server)
            raise

    run = pipeline.instance.get_run_by_id(run_id)
    assert run is not None and run.job_name == "deploy"
    assert run.status == dg.DagsterRunStatus.SUCCESS, run_errors(pipeline.instance, run_id)
    assert DEPLOY_TAG in run.tags, run.tags
    assert run.run_config["ops"]["deploy_commit"]["config"] == deploy
    assert SCREENSHOT.stat().st_size > 10_000  # a rendered page, not a blank one
