"""``devops-assets triage``: plain, gzipped and Workers Builds JSON logs; both formats;
line numbers that count "\\n" only, also in a log whose progress bars redraw with "\\r"."""

from __future__ import annotations

import gzip
import json

import pytest

from devops_assets.cli import main
from devops_assets.triage import read_log
from devops_assets_tests.triage_logs import CASES

KEYS = {"category", "step", "evidence_start", "evidence_end", "evidence", "summary", "signature"}

# npm's progress bar redraws one line with "\r": all of it is ONE line when counting "\n".
PROGRESS = "".join(f"\r[{'#' * n}{'.' * (10 - n)}] {n * 10}% reify:hono" for n in range(11))
CR_LOG = "\n".join(
    [
        "Installing project dependencies: npm clean-install --progress=true",
        PROGRESS,
        "added 312 packages in 9s",
        "Executing user build command: npm run typecheck",
        "> edge-api@1.4.0 typecheck",
        "> tsc --noEmit",
        "src/index.ts(3,1): error TS2304: Cannot find name 'KVNamespace'.",
        "Failed: error occurred while running build command",
    ]
)


def run_json(capsys, *argv: str) -> dict:
    assert main(["triage", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_and_line_numbers_count_newlines_only(tmp_path, capsys):
    path = tmp_path / "build.log"
    path.write_bytes(CR_LOG.encode())
    out = run_json(capsys, str(path))
    assert set(out) == KEYS
    assert out["category"] == "typecheck"
    decisive = "src/index.ts(3,1): error TS2304: Cannot find name 'KVNamespace'."
    # Line 7 when counting "\n" (splitlines() would say 18: each "\r" is a break there).
    assert CR_LOG.split("\n").index(decisive) + 1 == 7
    assert out["evidence_start"] <= 7 <= out["evidence_end"]
    assert out["evidence"][7 - out["evidence_start"]] == decisive


def test_gzipped_log_gives_the_same_answer(tmp_path, capsys):
    plain, packed = tmp_path / "a.log", tmp_path / "a.log.gz"
    text, _ = CASES["unit_test"]
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    assert run_json(capsys, str(plain)) == run_json(capsys, str(packed))


def test_workers_builds_json_pages(tmp_path, capsys):
    text, decisive = CASES["size_limit"]
    lines = text.split("\n")[:-1]
    stamped = [[1748855643000 + i, line] for i, line in enumerate(lines)]
    pages = [
        {"success": True, "errors": [], "result": {"lines": stamped[:6], "cursor": "c1"}},
        {"success": True, "errors": [], "result": {"lines": stamped[6:], "truncated": False}},
    ]
    one = tmp_path / "page.json"
    one.write_text(json.dumps({"success": True, "result": {"lines": stamped}}))
    many = tmp_path / "pages.json.gz"
    many.write_bytes(gzip.compress(json.dumps(pages).encode()))

    assert read_log(one).text == read_log(many).text == "\n".join(lines)
    out = run_json(capsys, str(many))
    assert out["category"] == "size_limit"
    assert lines[out["evidence_start"] - 1] == out["evidence"][0]
    assert decisive in out["evidence"]


def test_table_format(tmp_path, capsys):
    path = tmp_path / "build.log"
    path.write_text(CASES["deploy"][0])
    assert main(["triage", str(path)]) == 0
    out = capsys.readouterr().out
    assert "category   deploy" in out
    assert "step       deploy" in out
    assert "| ✘ [ERROR] A request to the Cloudflare API" in out


def test_passing_log_option(tmp_path, capsys):
    text, _ = CASES["unit_test"]
    failing, passing = tmp_path / "fail.log", tmp_path / "pass.log"
    failing.write_text(text)
    passing.write_text(CASES["unknown"][0])
    out = run_json(capsys, str(failing), "--pass", str(passing))
    assert out["category"] == "unit_test"


@pytest.mark.parametrize("content", [None, b"\x1f\x8bnot really gzip"])
def test_unreadable_log_exits_2(tmp_path, capsys, content):
    path = tmp_path / "missing.log"
    if content is not None:
        path.write_bytes(content)
    assert main(["triage", str(path), "--format", "json"]) == 2
    assert "devops-assets triage:" in capsys.readouterr().err


def test_text_that_merely_starts_like_json_stays_text(tmp_path):
    path = tmp_path / "maven.log"
    text = "[INFO] Scanning for projects...\n[ERROR] COMPILATION ERROR :\n"
    path.write_text(text)
    assert read_log(path).text == text
    assert read_log(path).lines == [
        "[INFO] Scanning for projects...",
        "[ERROR] COMPILATION ERROR :",
    ]
