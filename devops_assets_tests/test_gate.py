"""``devops-assets gate record``: CI steps report quality-gate results to the warehouse."""

from __future__ import annotations

import pytest

from devops_assets.cli import main
from devops_assets.store import Warehouse

SHA = "ab12" * 10


@pytest.fixture
def warehouse_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    monkeypatch.setenv("DEVOPS_ASSETS_DB_URL", url)
    monkeypatch.delenv("DEVOPS_ASSETS_CONFIG", raising=False)  # the demo's steps
    return url


def gate(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["gate", "record", *argv])
    except SystemExit as exc:  # argparse refusing a choice
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_each_step_a_ci_job_reports_is_stored_and_the_latest_counts(capsys, warehouse_url):
    assert gate(capsys, "--commit", SHA, "--step", "lint", "--status", "failed")[0] == 0
    code, out, _ = gate(capsys, "--commit", SHA.upper(), "--step", "lint", "--status", "passed")
    assert (code, out.strip()) == (0, f"recorded lint passed for {SHA[:12]}")
    with Warehouse(warehouse_url) as warehouse:
        stored = warehouse.gate_records(SHA)
    assert [(r.step, r.status) for r in stored] == [("lint", "failed"), ("lint", "passed")]
    assert stored[0].recorded_at < stored[1].recorded_at


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--commit", SHA, "--step", "lnt", "--status", "passed"], "--step: one of the quality"),
        (["--commit", "main", "--step", "lint", "--status", "passed"], "--commit: a commit sha"),
        (["--commit", SHA, "--step", "lint", "--status", "ok"], "invalid choice: 'ok'"),
    ],
)
def test_a_report_the_gate_cannot_take_is_refused_and_nothing_is_stored(
    capsys, warehouse_url, argv, said
):
    code, out, err = gate(capsys, *argv)
    assert code == 2 and out == "" and said in err
    with Warehouse(warehouse_url) as warehouse:
        assert warehouse.gate_records() == []
