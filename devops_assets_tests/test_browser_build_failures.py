"""``build_failures`` materialized from the UI shows its triage as metadata.

A real ``dagster dev`` serves a freshly seeded demo workspace on a free 127.0.0.1
port. Debian's headless Chromium, driven by Playwright, opens the asset's Lineage
tab, narrows it to the asset and its upstream (``workers_builds``), clicks
Materialize all and follows the run to Success. On the asset's Events tab (the
newest materialization, naming that run) it checks the metadata against the
workspace's warehouse (``TriageLedger``): the count of every category, the
signature table and the ``failures`` markdown, where each failed build has a
heading with its uuid and a code block holding its stored evidence lines.

The ``failures`` dialog, scrolled to the newest failure, is saved as
``test-artifacts/build-failures-asset.png``; when the test fails, the page it was
on and the ``dagster dev`` log are saved beside it.
"""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest

from devops_assets.store.triage_ledger import TriageLedger, TriageRecord
from devops_assets.triage import CATEGORIES
from devops_assets_tests.browser_fixtures import (
    ARTIFACTS,
    RUN_URL,
    chromium_page,
    run_errors,
    save_failure,
    wait_for_finished_status,
)

pytestmark = pytest.mark.browser

ASSET = "build_failures"
UPSTREAM = "workers_builds"
SCREENSHOT = ARTIFACTS / "build-failures-asset.png"
FAILURE_SCREENSHOT = ARTIFACTS / "build-failures-failure.png"
FAILURE_LOG = ARTIFACTS / "build-failures-dagster-dev.log"


def materialize_with_upstream(page, server) -> str:
    """From the asset's Lineage tab, upstream only: Materialize all; the run's id, from
    the launched-run toast's View link."""
    from playwright.sync_api import expect

    page.goto(server.url(f"assets/{ASSET}?view=lineage"))
    page.get_by_role("button", name="Upstream").click()
    expect(page.get_by_text(UPSTREAM, exact=True).first).to_be_visible()
    page.get_by_role("button", name="Materialize all").click()
    view = page.get_by_role("link", name="View", exact=True)
    href = view.get_attribute("href")
    assert href is not None and RUN_URL.search(href), f"the toast links to {href!r}"
    view.click()
    page.wait_for_url(RUN_URL)
    return RUN_URL.search(page.url).group(1)


def metadata_row(page, key: str):
    """The row of ``key`` in the metadata table (its first cell is exactly ``key``;
    the markdown tables rendered inside values have no such cell)."""
    return page.locator(f"xpath=//tr[td[1][normalize-space()='{key}']]")


def metadata_value(page, key: str) -> str:
    return metadata_row(page, key).locator("xpath=td[2]").inner_text().strip()


def open_markdown(page, key: str):
    """Click ``[Show Markdown]`` of ``key``; the dialog it opens, titled ``key``."""
    from playwright.sync_api import expect

    metadata_row(page, key).get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_have_count(1)
    expect(dialog.get_by_text(key, exact=True).first).to_be_visible()
    return dialog


def close_dialog(page, dialog) -> None:
    from playwright.sync_api import expect

    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def check_signature_table(dialog, records: list[TriageRecord]) -> None:
    """One row per signature: its category and step, how often it was seen and the
    first build that showed it, as stored in the warehouse."""
    groups: dict[str, list[TriageRecord]] = {}
    for record in records:  # oldest first
        groups.setdefault(record.signature, []).append(record)
    table = dialog.get_by_role("table")
    header = [c.strip() for c in table.locator("thead th").all_inner_texts()]
    assert header[:4] == ["signature", "category", "step", "seen"], header
    assert "first build" in header, header
    first = header.index("first build")
    shown = {}
    for row in table.locator("tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        shown[cells[0]] = (cells[1], cells[2], int(cells[3]), cells[first])
    expected = {
        signature: (group[0].category, group[0].step, len(group), group[0].build_uuid)
        for signature, group in groups.items()
    }
    assert shown == expected


def check_failures_markdown(dialog, records: list[TriageRecord]) -> None:
    """A level-3 heading per failed build, newest first, naming its uuid, worker,
    branch and commit, and under it a code block with its stored evidence lines."""
    newest_first = sorted(records, key=lambda r: r.created_on, reverse=True)
    headings = dialog.get_by_role("heading", level=3)
    blocks = dialog.locator("pre code")
    assert headings.count() == len(records), headings.all_inner_texts()
    assert blocks.count() == len(records)
    text = dialog.inner_text()
    assert "###" not in text and "```" not in text, "the markdown was shown as source"
    for i, record in enumerate(newest_first):
        heading = headings.nth(i).inner_text()
        assert heading.startswith(f"{record.worker} {record.build_uuid} "), heading
        assert f"({record.branch} at {record.commit_sha[:12]}," in heading, heading
        assert headings.nth(i).locator("code").inner_text() == record.build_uuid
        code = blocks.nth(i).inner_text()
        lines = code.rstrip("\n").split("\n")
        assert len(lines) == len(record.evidence), (record.build_uuid, code)
        for n, (shown, stored) in enumerate(
            zip(lines, record.evidence, strict=True), start=record.evidence_start
        ):
            number, _, line = shown.partition(" | ")
            assert (int(number), line) == (n, stored), record.build_uuid


def test_build_failures_materialized_from_the_ui_show_the_triage(demo_ui):
    from playwright.sync_api import expect

    pipeline, server, chromium = demo_ui
    instance = pipeline.instance
    ARTIFACTS.mkdir(exist_ok=True)
    for old in (SCREENSHOT, FAILURE_SCREENSHOT, FAILURE_LOG):
        old.unlink(missing_ok=True)

    with chromium_page(chromium) as page:
        try:
            run_id = materialize_with_upstream(page, server)
            status = wait_for_finished_status(page)
            assert status == "Success", run_errors(instance, run_id)

            # What the run wrote to the workspace's warehouse.
            records = TriageLedger(pipeline.warehouse).triages()
            failed = {b["uuid"] for b in pipeline.history.builds if b["outcome"] == "fail"}
            assert {r.build_uuid for r in records} == failed
            assert 5 <= len(records) <= 20  # every failure is written out in full
            counts = Counter(r.category for r in records)

            # The newest materialization, on the asset's Events tab.
            page.goto(server.url(f"assets/{ASSET}?view=events"))
            expect(page.get_by_text("Materialized in run")).to_be_visible()
            expect(page.get_by_role("link", name=run_id[:8], exact=True)).to_be_visible()
            assert metadata_value(page, "failed_builds") == str(len(records))
            assert metadata_value(page, "triaged") == str(len(records))
            for category in CATEGORIES:
                value = metadata_value(page, f"category.{category}")
                assert value == str(counts.get(category, 0)), category
            # by_category is short enough to be rendered in the table itself
            by_category = metadata_row(page, "by_category").get_by_role("table")
            for category, n in counts.items():
                row = by_category.get_by_role("row").filter(has_text=category)
                assert row.locator("td").all_inner_texts()[:2] == [category, str(n)]

            # the newest failure in one line, shown inline without a click
            newest = max(records, key=lambda r: (r.created_on, r.build_uuid))
            inline = metadata_row(page, "newest_failure").locator("xpath=td[2]")
            expect(inline).to_contain_text(f"{newest.category} in step {newest.step}")
            expect(inline).to_contain_text(newest.build_uuid[:8])

            dialog = open_markdown(page, "signature_table")
            check_signature_table(dialog, records)
            close_dialog(page, dialog)

            dialog = open_markdown(page, "failures")
            check_failures_markdown(dialog, records)
            heading = dialog.get_by_role("heading", level=3).first
            heading.scroll_into_view_if_needed()
            expect(heading).to_contain_text(newest.build_uuid)
            page.screenshot(path=SCREENSHOT)
        except BaseException:
            save_failure(page, server, FAILURE_SCREENSHOT, FAILURE_LOG)
            raise

    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.asset_selection == {dg.AssetKey(ASSET), dg.AssetKey(UPSTREAM)}
    assert SCREENSHOT.stat().st_size > 10_000  # a rendered page, not a blank one
