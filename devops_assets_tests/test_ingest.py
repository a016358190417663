"""Incremental ingest against the emulator over loopback HTTP, with the warehouse on
PostgreSQL and the API token taken from an environment variable."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from devops_assets.config import load_config
from devops_assets.defs import build_definitions
from devops_assets.defs.ingest.assets import BUILDS_LOOKBACK
from devops_assets.emulator import EMULATOR_TOKEN
from devops_assets.store import Warehouse
from devops_assets_tests.emulator_fixtures import demo_over_http

BUILDS_LIST = r"/builds/workers/[0-9a-f]+/builds$"
BUILD_GET = r"/builds/builds/[0-9a-f-]+$"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@pytest.fixture
def served(tmp_path, monkeypatch, fresh_postgres_db):
    """The demo history served on 127.0.0.1 and a platform file pointing at it."""
    with demo_over_http(tmp_path, monkeypatch, fresh_postgres_db) as (seeded, app, history, text):
        feed = Path(seeded.cloudflare.emulator_state) / "incidents.json"
        text = text.replace('statuspage = "emulator:"', f'file = "{feed}"')
        components = (
            '[incidents.components]\nmoltworker = "production"\nmoltworker-staging = "staging"\n'
        )
        text = text.replace(components, "")
        platform = tmp_path / "platform.toml"
        platform.write_text(text, encoding="utf-8")
        config = load_config(platform)
        yield config, app, history


def materialize(config, *assets: str) -> dg.ExecuteInProcessResult:
    job = build_definitions(config).resolve_job_def("refresh_pipeline_health")
    return job.execute_in_process(
        asset_selection=[dg.AssetKey(a) for a in assets or ("workers_builds",)],
        run_config=QUIET,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_second_run_asks_only_for_what_is_new_and_what_was_unfinished(served):
    config, app, history = served
    assert config.cloudflare.api_base_url.startswith("http://127.0.0.1:")
    running = app.add_build(
        "moltworker",
        "main",
        history.commits[-1]["sha"],
        status="running",
        created_on=history.end - timedelta(days=30),  # well before the newest build
    )
    assert materialize(config).success
    assert app.count(BUILDS_LIST) > 2  # every page of both workers' history
    newest = {
        w: max(b["created_on"] for b in history.builds if b["worker"] == w)
        for w in ("moltworker", "moltworker-staging")
    }
    unfinished = [b for b in history.builds if b["status"] != "stopped"]
    assert all(b["created_on"] > newest[b["worker"]] - BUILDS_LOOKBACK for b in unfinished)

    app.clear_requests()
    assert materialize(config).success

    # One page per worker covers the last hour (which re-lists the demo's running
    # build); only the older running build is asked for on its own.
    assert app.count(BUILDS_LIST) == 2
    assert [r.path.rsplit("/", 1)[-1] for r in app.requests if re.search(BUILD_GET, r.path)] == [
        running["build_uuid"]
    ]
    assert len(app.requests) == 3


def test_a_build_seen_running_is_stored_with_its_final_outcome_next_run(served):
    config, app, history = served
    warehouse = Warehouse(config.warehouse_url)
    head = history.commits[-1]["sha"]
    running = app.add_build("moltworker", "main", head, status="running")
    assert materialize(config).success
    stored = {b.build_uuid: b for b in warehouse.builds()}
    assert stored[running["build_uuid"]].status == "running"
    assert stored[running["build_uuid"]].outcome is None

    app.finish_build(running["build_uuid"], "fail")
    assert materialize(config).success

    final = {b.build_uuid: b for b in warehouse.builds()}[running["build_uuid"]]
    assert (final.status, final.outcome) == ("stopped", "fail")
    assert final.stopped_on is not None and final.duration_seconds > 0
    assert len(warehouse.builds()) == len(history.builds) + 1


def test_a_malformed_answer_fails_the_run_naming_endpoint_and_field(served):
    config, app, _ = served
    assert materialize(config).success
    warehouse = Warehouse(config.warehouse_url)
    before = warehouse.snapshot("builds")
    broken = {"success": True, "errors": [], "messages": [], "result": [{"status": "stopped"}]}
    # The second worker's answer is broken: the first worker's builds must not be written.
    app.fail_next(BUILDS_LIST, 200, body=broken, times=1)
    app.add_build("moltworker-staging", "hardshell", "a" * 40, status="stopped", outcome="success")

    result = materialize(config)

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    message = failure.message + "".join(c.message for c in _causes(failure))
    assert "GET /accounts/{account_id}/builds/workers/{worker_tag}/builds" in message
    assert "'result[0].build_trigger_metadata': expected an object" in message
    assert EMULATOR_TOKEN not in message
    assert warehouse.snapshot("builds") == before


def _causes(error):
    while error.cause is not None:
        error = error.cause
        yield error


def test_a_build_that_vanished_from_the_api_does_not_block_later_ingests(served):
    config, app, history = served
    warehouse = Warehouse(config.warehouse_url)
    running = app.add_build("moltworker", "main", history.commits[-1]["sha"], status="running")
    assert materialize(config).success
    del app.state.builds[running["build_uuid"]]  # the API forgets it: GET answers 404

    result = materialize(config)

    assert result.success
    kept = {b.build_uuid: b for b in warehouse.builds()}[running["build_uuid"]]
    assert (kept.status, kept.outcome) == ("running", None)
    assert app.count(BUILD_GET) >= 1


def test_a_build_created_in_the_same_instant_as_the_newest_stored_one_is_not_lost(served):
    config, app, history = served
    warehouse = Warehouse(config.warehouse_url)
    assert materialize(config).success
    newest = max(b.created_on for b in warehouse.builds(worker="moltworker"))
    twin = app.add_build(
        "moltworker",
        "main",
        history.commits[-1]["sha"],
        status="stopped",
        outcome="fail",
        created_on=newest,
    )
    late = app.add_build(
        "moltworker",
        "main",
        history.commits[-1]["sha"],
        status="stopped",
        outcome="success",
        created_on=newest - timedelta(minutes=20),
    )

    assert materialize(config).success

    stored = {b.build_uuid for b in warehouse.builds()}
    assert {twin["build_uuid"], late["build_uuid"]} <= stored
    assert len(stored) == len(history.builds) + 2


def test_the_incident_feed_is_stored_and_a_bad_row_changes_nothing(served):
    config, _, history = served
    assert materialize(config, "incidents").success
    warehouse = Warehouse(config.warehouse_url)
    stored = warehouse.incidents()
    assert [i.incident_id for i in stored] == [i["id"] for i in history.incidents]
    assert all(
        i.deployment_id is None for i in stored
    )  # the feed does not say; the engine finds it
    before = warehouse.snapshot("incidents")

    feed = config.incidents_file
    assert feed.startswith(str(history.repo.parent))  # the test's own copy, never the demo's
    text = open(feed, encoding="utf-8").read()
    with open(
        feed, "w", encoding="utf-8"
    ) as handle:  # the last incident "resolved" before it opened
        handle.write(text.replace('"resolved_at": "2026', '"resolved_at": "1999', 1))
    result = materialize(config, "incidents")

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    message = failure.message + "".join(c.message for c in _causes(failure))
    assert "key 'incidents.file': " in message
    assert "incidents.json, item 0, column resolved_at: a time not before created_at" in message
    assert warehouse.snapshot("incidents") == before


def test_an_incident_the_feed_no_longer_lists_is_gone_after_the_next_run(served):
    import json

    config, _, history = served
    assert materialize(config, "incidents").success
    feed = json.loads(open(config.incidents_file, encoding="utf-8").read())
    with open(config.incidents_file, "w", encoding="utf-8") as handle:
        json.dump(feed[1:], handle)  # the first incident was filed by mistake and withdrawn
    assert materialize(config, "incidents").success
    stored = [i.incident_id for i in Warehouse(config.warehouse_url).incidents()]
    assert stored == [i["id"] for i in history.incidents[1:]]
