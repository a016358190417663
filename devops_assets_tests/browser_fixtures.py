"""A real ``dagster dev`` on a loopback port, and Debian's Chromium driven by Playwright.

``make test`` installs ``/usr/bin/chromium`` (see the Makefile); Playwright is
pointed at it with ``executable_path`` and never downloads a browser of its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from devops_assets.config import DEMO_CONFIG
from devops_assets.demo.commands import REPO_ROOT
from devops_assets_tests.pipeline_fixtures import open_pipeline
from devops_assets_tests.process_groups import stop_group

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
LOCATION = "devops_assets"
# Flags for Chromium as root in a container: no sandbox (it needs user namespaces),
# no GPU, and none of the background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
RUN_WAIT_S = 120
RUN_URL = re.compile(r"/runs/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
# The status tag in the run page's header once the run is over.
FINISHED = re.compile(r"^(Success|Failure|Canceled)$")

LOCATION_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


def missing(reason: str) -> None:
    """Skip on a workstation; fail under CI, where the browser test must always run."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def require_chromium() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        missing(
            f"{CHROMIUM} is missing: `make test` (or `make chromium`) installs Debian's package"
        )
    return CHROMIUM


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterDev:
    """A running ``dagster dev`` (webserver and daemon) in its own process group."""

    process: subprocess.Popen
    base_url: str
    log_path: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def graphql(self, query: str) -> dict:
        body = json.dumps({"query": query}).encode()
        request = urllib.request.Request(
            self.url("graphql"), data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_until_loaded(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait for the webserver to answer and the code location to be loaded."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                entries = self.graphql(LOCATION_QUERY)["data"]["workspaceOrError"]
                entry = {e["name"]: e for e in entries.get("locationEntries", [])}.get(LOCATION)
            except (OSError, KeyError, ValueError) as exc:
                last = repr(exc)
            else:
                if entry and entry["loadStatus"] == "LOADED":
                    loaded = entry["locationOrLoadError"] or {}
                    if loaded.get("__typename") == "PythonError":
                        raise AssertionError(
                            f"code location {LOCATION} failed to load: {loaded['message']}"
                        )
                    return
                last = f"location entry: {entry}"
            time.sleep(0.5)
        raise AssertionError(
            f"dagster dev at {self.base_url} not ready in {timeout_s:.0f} s ({last}):\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it has not exited in time."""
        stop_group(self.process, STOP_TIMEOUT_S)


@contextmanager
def dagster_dev(dagster_home: Path, env: dict[str, str], log_path: Path):
    """Start ``dagster dev`` as ``make dev`` does, with the repo's workspace.yaml and
    the dagster.yaml that ``prepare`` copied into ``dagster_home``; stop it on exit.

    It runs from ``dagster_home`` in a new session, so one signal to its process
    group reaches the webserver, the daemon and the code servers.
    """
    nux = dagster_home / ".nux"
    nux.mkdir(parents=True, exist_ok=True)
    (nux / "nux.yaml").write_text("seen: 1\n", encoding="utf-8")  # no first-visit pop-up
    port = free_port()
    dagster = Path(sys.executable).with_name("dagster")
    argv = [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(port)]
    argv += ["-w", str(REPO_ROOT / "workspace.yaml")]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=dagster_home,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = DagsterDev(process, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_until_loaded()
        yield server
    finally:
        server.stop()


@contextmanager
def chromium_page(executable: Path):
    """A page of a fresh headless Chromium, closed (with the browser) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


@contextmanager
def served_demo(tmp_path: Path, postgres_server, platform_file: Path = DEMO_CONFIG):
    """A freshly seeded demo workspace (platform file ``platform_file``) with its own
    Dagster database, served by ``dagster dev``: yields the pipeline, the server and
    the Chromium to drive. The database is dropped after dagster dev has stopped."""
    chromium = require_chromium()
    pipeline, close = open_pipeline(tmp_path / "home", postgres_server, platform_file)
    try:
        env = {**os.environ, "DEVOPS_ASSETS_CONFIG": str(platform_file)}
        home = Path(os.environ["DAGSTER_HOME"])
        with dagster_dev(home, env, tmp_path / "dagster-dev.log") as server:
            yield pipeline, server, chromium
    finally:
        close()


def launch_from_launchpad(page, server: DagsterDev, job: str, run_config: str) -> str:
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


def save_failure(page, server: DagsterDev, screenshot: Path, log: Path) -> None:
    """Keep what the browser showed and what dagster dev logged, for the one debugging."""
    try:
        page.screenshot(path=screenshot, full_page=True)
    except Exception as exc:  # the browser may be what broke; keep the first error
        print(f"no failure screenshot: {exc}")
    shutil.copyfile(server.log_path, log)


@pytest.fixture
def demo_ui(tmp_path: Path, postgres_server):
    """A seeded demo workspace with its own Dagster database, served by ``dagster dev``:
    (pipeline, server, chromium)."""
    with served_demo(tmp_path, postgres_server) as parts:
        yield parts
