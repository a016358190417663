"""build_failures on the seeded demo, over loopback HTTP against the emulator, with
the warehouse on SQLite and PostgreSQL: every failed build gets a triage whose
evidence is in its stored log, each log is fetched once, and the same failure in
two builds shares a signature."""

from __future__ import annotations

import json
from collections import Counter

import dagster as dg
import pytest

from devops_assets.config import load_config
from devops_assets.defs import build_definitions
from devops_assets.emulator import EMULATOR_TOKEN
from devops_assets.emulator.buildlogs import FAILURES, FLAKY
from devops_assets.sources.cloudflare import MAX_LOG_PAGES
from devops_assets.store import Warehouse
from devops_assets.store.triage_ledger import TriageLedger
from devops_assets.triage import CATEGORIES
from devops_assets.triage.flaky import attempts_from_builds, success_rates
from devops_assets_tests.emulator_fixtures import demo_over_http

LOGS = r"/builds/builds/[0-9a-f-]+/logs$"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SHOWN = {f.category for kind in FAILURES.values() for f in kind} | {f.category for f in FLAKY}


@pytest.fixture
def served(tmp_path, monkeypatch, warehouse_url):
    """The demo history served on 127.0.0.1 and a platform file pointing at it."""
    with demo_over_http(tmp_path, monkeypatch, warehouse_url) as (_, app, history, text):
        platform = tmp_path / "platform.toml"
        platform.write_text(text, encoding="utf-8")
        yield load_config(platform), app, history, warehouse_url


def materialize(config, *assets: str) -> dg.ExecuteInProcessResult:
    job = build_definitions(config).resolve_job_def("refresh_pipeline_health")
    return job.execute_in_process(
        asset_selection=[dg.AssetKey(a) for a in assets],
        run_config=QUIET,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def metadata_of(result: dg.ExecuteInProcessResult) -> dict:
    [mat] = result.asset_materializations_for_node("build_failures")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_each_failed_build_is_triaged_from_its_log_fetched_once(served):
    config, app, history, url = served
    assert materialize(config, "workers_builds").success
    app.clear_requests()

    first = materialize(config, "build_failures")

    assert first.success
    failed = {b["uuid"] for b in history.builds if b["outcome"] == "fail"}
    assert len(failed) >= 5
    warehouse = Warehouse(url)
    ledger = TriageLedger(warehouse)
    triages = {t.build_uuid: t for t in ledger.triages()}
    assert set(triages) == failed
    # every failed log, and the passing log each is compared with, were read whole
    logged = ledger.logged_builds()
    assert failed <= logged
    assert {t.passing_build for t in triages.values()} <= logged
    assert all(t.passing_build for t in triages.values())  # each branch has a green build
    pages = sum(-(-ledger.log(u).line_count // app.log_page_lines) for u in logged)
    assert app.count(LOGS) == pages
    for t in triages.values():
        assert t.category in CATEGORIES and t.category != "unknown", t
        assert t.category in SHOWN
        assert t.step in (*config.quality_gate, "install", "build", "deploy"), t
        lines = ledger.log(t.build_uuid).text.split("\n")
        assert 1 <= t.evidence_start <= t.evidence_end <= len(lines)
        assert list(t.evidence) == lines[t.evidence_start - 1 : t.evidence_end]
        assert t.summary and "\n" not in t.summary
        assert len(t.signature) >= 8
    meta = metadata_of(first)
    assert meta["triaged"] == len(failed) == meta["failed_builds"]
    assert meta["logs_fetched"] == len(logged)
    assert sum(meta[f"category.{c}"] for c in CATEGORIES) == len(failed)
    assert "```" in meta["failures"] and "seen " in meta["failures"]

    # a second run fetches nothing: every log it needs is stored
    app.clear_requests()
    second = materialize(config, "build_failures")
    assert second.success
    assert app.count(LOGS) == 0
    assert metadata_of(second)["logs_fetched"] == 0
    assert {t.build_uuid: t for t in ledger.triages()} == triages  # nothing rewritten
    warehouse.close()


def test_the_same_failure_in_two_builds_shares_a_signature_and_a_rescued_one_is_flaky(served):
    config, app, history, url = served
    assert materialize(config, "workers_builds").success
    result = materialize(config, "build_failures")
    assert result.success
    warehouse = Warehouse(url)
    triages = TriageLedger(warehouse).triages()
    warehouse.close()
    by_signature = Counter(t.signature for t in triages)
    shared = [s for s, n in by_signature.items() if n >= 2]
    assert shared, by_signature
    for signature in shared:
        group = [t for t in triages if t.signature == signature]
        assert len({t.category for t in group}) == 1
        assert len({t.build_uuid for t in group}) == len(group)
    # the demo's production failure was re-run on the same commit and passed
    rescued = [
        b
        for b in history.builds
        if b["outcome"] == "fail"
        and any(
            o["outcome"] == "success"
            and o["worker"] == b["worker"]
            and o["commit_sha"] == b["commit_sha"]
            and o["created_on"] > b["created_on"]
            for o in history.builds
        )
    ]
    assert rescued
    meta = metadata_of(result)
    assert meta["flaky_failures"] == len(rescued)
    assert "**flaky**" in meta["failures"]
    table = meta["signature_table"]
    assert all(f"`{s}`" in table for s in by_signature)
    # each rescued failure's signature row: its flaky failures and rate of all its failures
    signature_of = {t.build_uuid: t.signature for t in triages}
    flaky = Counter(signature_of[b["uuid"]] for b in rescued)
    for signature, n in flaky.items():
        [row] = [r for r in table.splitlines() if r.startswith(f"| `{signature}` |")]
        seen = by_signature[signature]
        assert f"| {seen} | {n} | {n / seen:.0%} |" in row


def test_a_secret_a_build_printed_is_masked_before_it_is_stored(served):
    config, app, history, url = served
    leaked = "cfut_9Q2xLr7VmT4kWzA1bN8cYe5"
    failed = next(b for b in history.builds if b["outcome"] == "fail")
    stamp = app.state.logs[failed["uuid"]][-1][0]
    app.state.record_log(failed["uuid"], [[stamp, f"export CLOUDFLARE_API_TOKEN={leaked}"]])
    assert materialize(config, "workers_builds", "build_failures").success
    warehouse = Warehouse(url)
    stored = TriageLedger(warehouse).log(failed["uuid"])
    assert stored is not None and stored.text.endswith("export CLOUDFLARE_API_TOKEN=***")
    for table in ("build_logs", "build_triages"):
        dumped = json.dumps(warehouse.snapshot(table), default=str)
        assert leaked not in dumped and EMULATOR_TOKEN not in dumped
    warehouse.close()


def test_a_build_whose_log_is_gone_is_reported_and_fetched_again_next_time(served):
    config, app, history, url = served
    assert materialize(config, "workers_builds").success
    failed = {b["uuid"] for b in history.builds if b["outcome"] == "fail"}
    app.fail_next(LOGS, 404, times=1)

    first = materialize(config, "build_failures")

    assert first.success
    meta = metadata_of(first)
    assert (meta["logs_missing"], meta["triaged"]) == (1, len(failed) - 1)
    app.clear_requests()
    second = materialize(config, "build_failures")
    assert metadata_of(second)["triaged"] == len(failed)
    assert 1 <= metadata_of(second)["logs_fetched"] <= 2  # the missing log (and its passing one)
    warehouse = Warehouse(url)
    assert {t.build_uuid for t in TriageLedger(warehouse).triages()} == failed
    warehouse.close()


def test_success_rates_are_the_health_figures_and_agree_with_the_retry_groups(served):
    """The asset's rates per environment over the health window are the figures
    pipeline_health shows (the engine's counts), and a second way — triage.flaky's
    retry groups over the warehouse's builds, counted by start time — gives the same."""
    config, _, history, url = served
    run = materialize(config, "workers_builds", "dora_metrics", "pipeline_health")
    assert run.success
    meta = metadata_of(materialize(config, "build_failures"))
    warehouse = Warehouse(url)
    rows = warehouse.pipeline_health()
    builds = warehouse.builds()
    warehouse.close()
    health = {r.environment: r for r in rows if r.metric == "build_success_rate"}
    assert set(health) == {"staging", "production"}
    for env, row in health.items():
        shown = meta[f"{env} success [%]"]
        without = meta[f"{env} without flaky [%]"]
        assert shown == pytest.approx(100 * row.value, abs=0.005)
        assert without == pytest.approx(
            100 * row.detail["build_success_rate_without_flaky"], abs=0.005
        )
        mine = [b for b in builds if config.environment_of_branch(b.branch) == env]
        rates = success_rates(attempts_from_builds(mine), row.window_start, row.window_end)
        assert shown == pytest.approx(100 * rates.with_flaky, abs=0.005)
        assert without == pytest.approx(100 * rates.without_flaky, abs=0.005)
        assert (
            f"| {env} | {rates.successes + rates.failures} | {rates.failures} "
            in (meta["build_success_rate"])
        )
    assert "| with flaky | without flaky |" in meta["build_success_rate"]


@pytest.mark.parametrize(("status", "asks"), [(500, 4), (403, 1)])
def test_an_unreadable_log_is_reported_and_the_others_are_still_triaged(served, status, asks):
    config, app, history, url = served
    assert materialize(config, "workers_builds").success
    failed = {b["uuid"] for b in history.builds if b["outcome"] == "fail"}
    app.fail_next(LOGS, status, times=asks)  # a 500 is tried 4 times, a 403 once

    first = materialize(config, "build_failures")

    assert first.success
    meta = metadata_of(first)
    assert meta["logs_unreadable"] == 1
    assert meta["triaged"] == len(failed) - 1
    assert meta["failed_builds"] == len(failed)
    warehouse = Warehouse(url)
    ledger = TriageLedger(warehouse)
    [unread] = failed - {t.build_uuid for t in ledger.triages()}
    assert ledger.log(unread) is None  # nothing half-read is stored
    [check] = first.get_asset_check_evaluations()
    assert check.check_name == "every_failed_build_triaged"
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert unread in check.metadata["errors"].value
    assert str(status) in check.metadata["errors"].value
    app._failures.clear()
    second = materialize(config, "build_failures")
    assert metadata_of(second)["logs_unreadable"] == 0
    [check] = second.get_asset_check_evaluations()
    assert check.passed and check.metadata["triaged"].value == len(failed)
    assert {t.build_uuid for t in ledger.triages()} == failed
    warehouse.close()


def test_a_log_paging_forever_with_fresh_cursors_is_refused_alone(served):
    config, app, history, url = served
    assert materialize(config, "workers_builds").success
    failed = {b["uuid"] for b in history.builds if b["outcome"] == "fail"}
    endless = sorted(failed)[0]
    for i in range(700):
        page = {"lines": [[1733356800000, "still going"]], "truncated": True, "cursor": f"c{i}"}
        body = {"success": True, "errors": [], "result": page}
        app.fail_next(rf"/builds/builds/{endless}/logs$", 200, body=body)
    app.clear_requests()

    result = materialize(config, "build_failures")

    assert result.success
    # stopped at the page limit, not after every page offered
    assert app.count(rf"/builds/builds/{endless}/logs$") == MAX_LOG_PAGES
    assert metadata_of(result)["logs_unreadable"] == 1
    warehouse = Warehouse(url)
    ledger = TriageLedger(warehouse)
    assert all("still going" not in ledger.log(u).text for u in ledger.logged_builds())
    assert {t.build_uuid for t in ledger.triages()} == failed - {endless}
    warehouse.close()


def test_a_token_refused_every_log_fails_the_run_and_keeps_nothing(served):
    """401/403 on every log asked for is the token's fault, not the builds': the run
    fails saying so (no "succeeded with every log unreadable"); the next run, the
    token mended, triages them all."""
    config, app, history, url = served
    assert materialize(config, "workers_builds").success
    failed = {b["uuid"] for b in history.builds if b["outcome"] == "fail"}
    app.fail_next(LOGS, 403, times=10 * len(failed))

    refused = materialize(config, "build_failures")

    assert not refused.success
    [failure] = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert f"refused all {len(failed)} build logs" in message
    assert "HTTP 403" in message and "read access to Workers Builds" in message
    warehouse = Warehouse(url)
    ledger = TriageLedger(warehouse)
    assert ledger.triages() == [] and ledger.logged_builds() == set()
    app._failures.clear()
    assert materialize(config, "build_failures").success
    assert {t.build_uuid for t in ledger.triages()} == failed
    warehouse.close()


def test_the_failure_list_and_the_signature_table_name_the_same_first_build():
    """Two failures of one signature at the same instant: the list's "first in build"
    is the signature table's, whichever order the records come in."""
    from datetime import UTC, datetime

    from devops_assets.defs.ingest.build_failures import _metadata
    from devops_assets.domain.models import Build
    from devops_assets.store.triage_ledger import TriageRecord

    when = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

    def build(uuid: str) -> Build:
        return Build(uuid, "api", "main", f"sha-{uuid}", "stopped", "fail", when, when, when)

    def record(uuid: str) -> TriageRecord:
        return TriageRecord(
            uuid, "api", "main", f"sha-{uuid}", when, "unit_test", "test", 3, 4,
            ("FAIL a.test.ts", "1 failed"), "unit_test in step test: 1 failed", "sig1",
            True, None, when,
        )  # fmt: skip

    for order in (["bbb", "aaa"], ["aaa", "bbb"]):
        meta = _metadata([record(u) for u in order], [build(u) for u in order], 0, 0)
        table = meta["signature_table"].value
        failures = meta["failures"].value
        assert "| `sig1` | unit_test | test | 2 | 0 | 0% | 2026-11-02 | `aaa` |" in table
        assert failures.count("seen twice since 02 Nov 2026, first in build `aaa`") == 2
        assert meta["newest_failure"].value == (
            "**unit_test** in step **test** of api `bbb` (2026-11-02 09:30 UTC): 1 failed"
        )


def test_an_unreadable_passing_log_leaves_the_failure_triaged_on_its_own_log(served):
    """The passing build's log only sharpens a triage: when the API cannot give it,
    the failure is triaged without it (nothing blamed on the failed build), and the
    next run compares the two."""
    from devops_assets.defs.ingest.build_failures import passing_build

    config, app, history, url = served
    assert materialize(config, "workers_builds").success
    warehouse = Warehouse(url)
    builds = warehouse.builds()
    failed = [b for b in builds if b.outcome == "fail"]
    compared = Counter(p.build_uuid for b in failed if (p := passing_build(b, builds)))
    passing, sharing = compared.most_common(1)[0]
    app.fail_next(rf"/builds/builds/{passing}/logs$", 500, times=100)

    first = materialize(config, "build_failures")

    assert first.success
    meta = metadata_of(first)
    assert (meta["triaged"], meta["logs_unreadable"]) == (len(failed), 0)
    [check] = first.get_asset_check_evaluations()
    assert check.passed
    ledger = TriageLedger(warehouse)
    alone = [t for t in ledger.triages() if t.passing_build is None]
    assert len(alone) >= sharing
    app._failures.clear()
    assert materialize(config, "build_failures").success
    assert sum(t.passing_build == passing for t in ledger.triages()) == sharing
    warehouse.close()


@pytest.mark.parametrize("odd", ["\u0000", "\ud800"], ids=["nul", "lone_surrogate"])
def test_a_character_no_database_stores_is_replaced_not_fatal(served, odd):
    config, app, history, url = served
    failed = next(b for b in history.builds if b["outcome"] == "fail")
    stamp = app.state.logs[failed["uuid"]][-1][0]
    app.state.record_log(failed["uuid"], [[stamp, f"a tool printed {odd} here"]])

    result = materialize(config, "workers_builds", "build_failures")

    assert result.success
    meta = metadata_of(result)
    assert meta["triaged"] == meta["failed_builds"]
    warehouse = Warehouse(url)
    text = TriageLedger(warehouse).log(failed["uuid"]).text
    warehouse.close()
    assert "a tool printed \ufffd here" in text and odd not in text
