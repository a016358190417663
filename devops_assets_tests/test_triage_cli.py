"""``devops-assets triage``: plain, gzipped and Workers Builds JSON logs; both formats;
line numbers that count "\\n" only, also in a log whose progress bars redraw with "\\r"."""

from __future__ import annotations

import gzip
import json
import os
import zlib

import pytest

from devops_assets.cli import main
from devops_assets.triage import read_log
from devops_assets.triage.logs import MAX_TEXT_BYTES
from devops_assets_tests.triage_logs import CASES

# The issue's keys, and ``certain`` (false for a guess or ``unknown``).
ISSUE_KEYS = {
    "category",
    "step",
    "evidence_start",
    "evidence_end",
    "evidence",
    "summary",
    "signature",
}
KEYS = ISSUE_KEYS | {"certain"}

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
    assert out["certain"] is True
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


def refusal(capsys, path) -> str:
    """The CLI's error for ``path``: exit 2, no traceback, a message starting with the path."""
    assert main(["triage", str(path), "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"devops-assets triage: {path}: ")
    assert "Traceback" not in captured.err
    return captured.err


def page(lines, **result) -> dict:
    return {"success": True, "errors": [], "result": {"lines": lines, **result}}


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the log is empty"),
        (b"\n  \n", "the log is empty"),
        (json.dumps(page([])).encode(), "the log is empty"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffnot deflate at all", "gzip"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"foo": 1}', "result.lines"),
        (b'{"result": null}', "result.lines"),
        (b"[1, 2, 3]", "JSON object"),
        (b"[]", "empty list of pages"),
        (b'{"result": {"lines": [[1, null]]}}', "[timestamp, text]"),
        (b'{"result": {"lines": [[1]]}}', "[timestamp, text]"),
        (
            json.dumps({**page([[1, "x"]]), "success": False, "errors": [{"message": "no"}]}),
            "the API answered with an error, not a log: no",
        ),
        (json.dumps(page([[1, "a"]], truncated=True, cursor="c")).encode(), "truncated: true"),
        (b'{"success": false}', "an API error answer (success: false) without errors"),
        (
            b'{"success": false, "errors": []}',
            "an API error answer (success: false) without errors",
        ),
        (bytes(range(256)) * 64, "binary content"),
        (b"Error: x\n" + b"\x00" * 500, "binary content"),
    ],
)
def test_a_log_that_is_not_one_is_refused_naming_the_file(tmp_path, capsys, content, said):
    path = tmp_path / "odd.log"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    assert said in refusal(capsys, path)


def test_a_few_bytes_that_are_not_utf8_are_still_a_log(tmp_path):
    path = tmp_path / "latin1.log"
    path.write_bytes(b"Error: caf\xe9 \xff\xfe failed\nnpm ERR! code ELIFECYCLE\n")
    assert read_log(path).lines[1] == "npm ERR! code ELIFECYCLE"


def test_the_python_api_reads_an_empty_log_as_empty_text(tmp_path):
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert read_log(path).text == ""


def test_a_gzip_bomb_is_refused_without_unpacking_it_whole(tmp_path, capsys):
    path = tmp_path / "bomb.log.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"A" * (1 << 20)
    path.write_bytes(b"".join(packer.compress(chunk) for _ in range(300)) + packer.flush())
    assert "more than 200 MB" in refusal(capsys, path)


def test_a_plain_log_over_the_limit_is_refused(tmp_path, capsys):
    path = tmp_path / "huge.log"
    with path.open("wb") as handle:
        handle.truncate(MAX_TEXT_BYTES + 1)  # sparse: no disk used
    assert "larger than 200 MB" in refusal(capsys, path)


def test_a_fifo_or_a_device_is_refused_before_it_is_read(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: opening it to read would block forever
    assert "not a regular file" in refusal(capsys, fifo)
    assert "not a regular file" in refusal(capsys, "/dev/zero")
    assert "not a regular file" in refusal(capsys, tmp_path)


# --- fresh-user review (issue 6): a timestamp goes, the indentation after it stays ------

FRAME_LOG = [
    "Executing user build command: bun run build",
    "$ wrangler deploy --dry-run --outdir dist",
    '✘ [ERROR] Expected ";" but found "}"',
    "",
    "    src/index.ts:12:4:",
    "      12 │   return new Response(body)}",
    "         │                            ^",
    "         ╵                            ;",
    "",
    'error: script "build" exited with code 1',
    "Failed: error occurred while running build command",
]


@pytest.mark.parametrize("separator", ["\t", " "], ids=["tab", "space"])
def test_a_timestamped_plain_log_keeps_the_indentation_after_the_stamp(tmp_path, capsys, separator):
    stamped = [
        f"2026-12-04T10:14:{15 + i:02d}.{i:03d}Z{separator}{t}" for i, t in enumerate(FRAME_LOG)
    ]
    plain = tmp_path / "build.log"
    plain.write_text("\n".join(stamped) + "\n")
    pages = tmp_path / "build.json"
    pages.write_text(json.dumps(page([[i, t] for i, t in enumerate(FRAME_LOG)])))

    from_plain, from_json = run_json(capsys, str(plain)), run_json(capsys, str(pages))
    # The JSON form carries no stamps; the plain form, its stamps taken off, is the same.
    assert from_plain == from_json
    start, end = from_plain["evidence_start"], from_plain["evidence_end"]
    assert from_plain["evidence"] == FRAME_LOG[start - 1 : end]  # numbers and text agree
    assert "         │                            ^" in from_plain["evidence"]  # caret column


# --- breaker findings (issue 6) ------------------------------------------------------------

PAGE_LINES = [[1, "$ npm test"], [2, "Error: inside json"], [3, "npm ERR! code ELIFECYCLE"]]


def test_a_logs_json_file_with_a_byte_order_mark_is_read_as_json(tmp_path):
    path = tmp_path / "build.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(page(PAGE_LINES)).encode())
    assert read_log(path).lines == [text for _, text in PAGE_LINES]


def test_a_text_log_with_a_byte_order_mark_starts_with_its_first_word(tmp_path):
    path = tmp_path / "build.log"
    path.write_bytes(b"\xef\xbb\xbfError: first line\n")
    assert read_log(path).lines == ["Error: first line"]


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\udfff"])
def test_a_nul_or_lone_surrogate_in_json_lines_becomes_a_replacement_character(
    tmp_path, capsys, escape
):
    path = tmp_path / "build.json"
    lines = [[1, "$ npm test"], [2, f"Error: bad {escape} char"], [3, "npm ERR! code ELIFECYCLE"]]
    # json.dumps escapes the backslash; undo that, so the file holds the escape itself.
    path.write_text(json.dumps(page(lines)).replace("\\\\u", "\\u"))
    assert read_log(path).lines[1] == "Error: bad \ufffd char"
    out = run_json(capsys, str(path))  # no traceback: a JSON answer
    assert "Error: bad \ufffd char" in out["evidence"]


@pytest.mark.parametrize("lines", [3, 100_000], ids=["small", "large"])
def test_one_nul_byte_is_shown_as_a_replacement_character_whatever_the_log_size(tmp_path, lines):
    # One rule for every size: a log is binary when more than a quarter of its characters
    # are NULs or not UTF-8; a stray NUL in a real log is shown as U+FFFD.
    path = tmp_path / "build.log"
    body = b"".join(b"line %d ok\n" % i for i in range(lines))
    path.write_bytes(b"$ npm test\n" + body + b"Error: has\x00nul\nnpm ERR! code ELIFECYCLE\n")
    assert read_log(path).lines[-2] == "Error: has\ufffdnul"


def test_a_json_log_of_mostly_nul_characters_is_binary(tmp_path, capsys):
    path = tmp_path / "build.json"
    path.write_text(json.dumps(page([[1, "\x00" * 100], [2, "Error: x"]])))
    assert "binary content" in refusal(capsys, path)


def test_the_json_answer_says_whether_the_category_is_certain(tmp_path, capsys):
    path = tmp_path / "build.log"
    path.write_text(
        "Executing user build command: npm test\n> node scripts/run-tests.mjs\n"
        "Failed: error occurred while running build command\n"
    )
    out = run_json(capsys, str(path))
    assert (out["category"], out["certain"]) == ("unit_test", False)
    assert out["summary"].startswith("probably unit_test")
