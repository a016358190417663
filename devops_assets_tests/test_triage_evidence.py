# ruff: noqa: E501 (log lines are quoted verbatim, as long as the tools print them)
"""Masking, normalising, the signature, and the diff against a passing log."""

from __future__ import annotations

import time

import pytest

from devops_assets.triage import MAX_LINES, normalise, triage
from devops_assets.triage.mask import mask, mask_lines
from devops_assets_tests import test_build_failures_asset

# The demo served by the emulator on 127.0.0.1, as the asset's own tests use it.
served = test_build_failures_asset.served

SECRETS = [
    (
        "export CLOUDFLARE_API_TOKEN=Zx9kLm2Qp7Rt5Vw3Yb8Nc4Hd6Fg1Js0Ka",
        "Zx9kLm2Qp7Rt5Vw3Yb8Nc4Hd6Fg1Js0Ka",
    ),
    ('{"api_key": "k3y-9f8e7d6c5b4a39281706"}', "k3y-9f8e7d6c5b4a39281706"),
    (
        "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl'",
        "eyJhbGciOiJIUzI1NiJ9",
    ),
    ("Authorization: Basic dXNlcjpodW50ZXIyLXNlY3JldA==", "dXNlcjpodW50ZXIyLXNlY3JldA=="),
    (
        "git fetch https://ci-bot:ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8@github.com/acme/api.git",
        "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    ),
    ("npm error 401 https://user:s3cretPass@registry.example.com/hono", "s3cretPass"),
    ("AWS_ACCESS_KEY_ID AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("MOLTBOT_GATEWAY_TOKEN: 6f1d2c3b4a59687766554433221100aabbccddeeff", "6f1d2c3b4a5968776655"),
    (
        "signing key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "9f86d081884c7d659a2feaa0c55ad015",
    ),
    ("password=hunter2hunter2", "hunter2hunter2"),
]


@pytest.mark.parametrize(("line", "secret"), SECRETS)
def test_secret_looking_values_are_masked(line, secret):
    masked = mask(line)
    assert secret not in masked
    assert "***" in masked


@pytest.mark.parametrize(
    "line",
    [
        "Error: token expired for this session, sign in again",
        "src/auth/token.ts(12,3): error TS2322: Type 'string' is not assignable to type 'number'.",
        "Current Version ID: 5b0c2f4e-8f7a-4d0e-9c1b-2a6f3e9d7c10",
        "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "https://edge-api.example.workers.dev/health",
    ],
)
def test_ordinary_lines_are_left_alone(line):
    assert mask(line) == line


def test_very_long_lines_are_cut_and_masked_quickly():
    token = "ghp_" + "A1b2C3d4E5" * 4
    line = "x" * 1990 + " " + token + " tokenize " + "y" * 50_000
    started = time.perf_counter()
    masked = mask(line)
    assert time.perf_counter() - started < 1
    assert len(masked) <= 2010
    assert "ghp_A1b2" not in masked and masked.endswith("[...]")


def test_evidence_is_masked_in_the_triage():
    token = "Zx9kLm2Qp7Rt5Vw3Yb8Nc4Hd6Fg1Js0Ka"
    log = "\n".join(
        [
            "Executing user deploy command: npx wrangler deploy",
            f"using CLOUDFLARE_API_TOKEN={token}",
            "✘ [ERROR] A request to the Cloudflare API (/accounts/8d1e/workers/scripts/x) failed.",
            f"  Authentication error [code: 10000] for Authorization: Bearer {token}",
            "Failed: error occurred while running deploy command",
        ]
    )
    result = triage(log)
    assert result.category == "deploy"
    assert not any(token in line for line in result.evidence)
    assert token not in result.summary


def test_normalise_takes_out_what_always_differs():
    assert normalise("2025-06-02T09:14:03.512Z \x1b[31mFAIL\x1b[0m test/a.test.ts (31 ms)") == (
        "FAIL test/a.test.ts (<dur>)"
    )
    assert normalise("[10:21:57] wrote /tmp/tmp.x8Gh2/out.js in 1.52s") == (
        "[<time>] wrote <tmp> in <dur>"
    )
    assert normalise("Current Version ID: 5b0c2f4e-8f7a-4d0e-9c1b-2a6f3e9d7c10") == (
        "Current Version ID: <id>"
    )
    assert normalise("[##....] 30%\r[#####.] 80%\r[######] 100% reify") == "[######] <pct> reify"
    assert normalise("travis_time:end:0a1b2c3d:start=1,finish=2\x1b[0K$ npm test") == "$ npm test"


def _build(stamp: str, version: str, tmp: str, millis: int) -> str:
    return "\n".join(
        [
            f"{stamp} Executing user build command: npm test",
            f"{stamp} > vitest run",
            f"{stamp}  FAIL  test/kv.test.ts > cache > expires entries ({millis}ms)",
            f"{stamp} AssertionError: expected 2 to be 1 // Object.is equality",
            f"{stamp}  ❯ {tmp}/vitest-worker/test/kv.test.ts:14:5",
            f"{stamp} Current Version ID: {version}",
            f"{stamp} Failed: error occurred while running build command",
        ]
    )


def test_signature_is_stable_across_builds_differing_only_in_times_ids_paths():
    first = triage(
        _build(
            "2025-06-02T09:14:03.512Z", "5b0c2f4e-8f7a-4d0e-9c1b-2a6f3e9d7c10", "/tmp/tmp.a81Kd", 31
        )
    )
    second = triage(
        _build(
            "2025-06-09T17:02:44.090Z",
            "0d9e8f7a-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
            "/tmp/tmp.Q0zz7",
            2048,
        )
    )
    assert first.category == second.category == "unit_test"
    assert first.signature == second.signature
    other = triage(
        _build(
            "2025-06-02T09:14:03.512Z", "5b0c2f4e-8f7a-4d0e-9c1b-2a6f3e9d7c10", "/tmp/tmp.a81Kd", 31
        ).replace("expected 2 to be 1", "expected 3 to be 1")
    )
    assert other.signature != first.signature


PASSING = "\n".join(
    [
        "Executing user build command: npm run build && npm test",
        "> edge-api@1.4.0 build",
        "built dist/index.js in 412ms",
        "> edge-api@1.4.0 test",
        "> vitest run",
        "Error: KV binding CACHE missing, tests use an in-memory store",
        " Test Files  3 passed (3)",
        "Success: Build command completed",
    ]
)
FAILING = "\n".join(
    [
        "Executing user build command: npm run build && npm test",
        "> edge-api@1.4.0 build",
        "built dist/index.js in 388ms",
        "> edge-api@1.4.0 test",
        "> vitest run",
        "Error: KV binding CACHE missing, tests use an in-memory store",
        "worker answered 503 to /users after the schema change",
        " Test Files  1 failed | 2 passed (3)",
        "Failed: error occurred while running build command",
    ]
)


def test_diff_against_a_passing_log_skips_the_lines_both_share():
    alone = triage(FAILING)
    assert alone.evidence[0].startswith("Error: KV binding")  # alone, the shared line wins
    compared = triage(FAILING, passing=PASSING)
    assert not any(line.startswith("Error: KV binding") for line in compared.evidence)
    assert compared.evidence_start == 7  # the new line that explains the failure
    assert compared.category == "unit_test"


def test_diff_uses_new_lines_when_no_line_looks_like_an_error():
    failing = FAILING.replace(" Test Files  1 failed | 2 passed (3)", "stopping")
    compared = triage(failing, passing=PASSING)
    assert "worker answered 503 to /users after the schema change" in compared.evidence
    assert "worker answered 503" in compared.summary
    assert not compared.certain


# --- breaker findings (issue 5, round 6) ------------------------------------------------

# Made-up values in the shapes of real credentials.
CF_TOKEN = "Qw3rTy9uIo0pAs1dFg2hJk4lZx5cVb6nM7_-Qa8W"  # 40 characters, like a Cloudflare token
PEM_BODY = [
    "MIIEowIBAAKCAQEAz8Xk1mQ4vR7tY2uW9pL3nB6cH0jD5fG8aS1dZ4xC7vE2rT9y",
    "Ue6iO3pA0sD8fG1hJ4kL7zX2cV5bN9mQ3wE6rT0yU4iO8pA2sD5fG7hJ1kL3zX6c",
]


def test_a_private_key_block_is_masked_from_begin_to_end():
    lines = [
        "Error: could not parse the signing key",
        "-----BEGIN RSA PRIVATE KEY-----",
        *PEM_BODY,
        "-----END RSA PRIVATE KEY----- (ignored)",
        "npm ERR! code ELIFECYCLE",
    ]
    masked = mask_lines(lines)
    assert len(masked) == len(lines)
    assert masked[0] == lines[0] and masked[-1] == lines[-1]
    assert masked[1:4] == ["***", "***", "***"]
    assert masked[4] == "*** (ignored)"
    # One line carrying the whole block (a JSON value with \n escaped) is masked too.
    assert (
        mask(
            '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n"}'
        ).count("MIIEvQ")
        == 0
    )


def test_a_key_body_is_masked_when_the_begin_line_came_before():
    # ``before`` says the first line is inside a block opened earlier in the log.
    assert mask_lines(PEM_BODY[1:], before=["x", "-----BEGIN PRIVATE KEY-----", PEM_BODY[0]]) == [
        "***"
    ]
    assert mask_lines(
        ["plain line"], before=["-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"]
    ) == ["plain line"]
    # A text with newlines inside one entry keeps its line count.
    text = "\n".join(
        ["-----BEGIN EC PRIVATE KEY-----", *PEM_BODY, "-----END EC PRIVATE KEY-----", "ok"]
    )
    assert mask(text) == "***\n***\n***\n***\nok"


def test_a_private_key_in_the_evidence_is_masked_on_every_line():
    log = "\n".join(
        [
            "Executing user build command: npm run build",
            "> app@1.0.0 build",
            "-----BEGIN PRIVATE KEY-----",
            *PEM_BODY,
            "-----END PRIVATE KEY-----",
            "✘ [ERROR] Could not load the signing key for the upload",
            "Failed: error occurred while running build command",
        ]
    )
    result = triage(log)
    shown = "\n".join(result.evidence) + result.summary
    assert result.evidence and not any(part[:12] in shown for part in PEM_BODY)


def test_evidence_starting_inside_a_key_block_is_masked():
    # Nothing decisive: the evidence is the step's last ten lines, which start in the
    # middle of a key whose BEGIN line lies before them.
    body = [f"{n:02d}" + PEM_BODY[n % 2][2:] for n in range(20)]
    log = "\n".join(
        ["$ node scripts/sign.js", "-----BEGIN PRIVATE KEY-----", *body, "npm ERR! code ELIFECYCLE"]
    )
    result = triage(log)
    assert result.evidence_start > 2  # the BEGIN line is not shown
    assert set(result.evidence[:-1]) == {"***"}
    # A key with no END line (a cut log) ends at the first line that is no key material.
    assert result.evidence[-1] == "npm ERR! code ELIFECYCLE"
    assert mask_lines(["-----BEGIN PRIVATE KEY-----", PEM_BODY[0], "Error: boom", "next"]) == [
        "***",
        "***",
        "Error: boom",
        "next",
    ]


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        # a Cloudflare API token on its own, no key word on the line
        (f"✘ [ERROR] 403 Forbidden for {CF_TOKEN} [code: 10000]", CF_TOKEN),
        (f"  used {CF_TOKEN}x for the request", CF_TOKEN),
        # colour codes inside the value or the key word
        (f"Error: Authorization: Bearer \x1b[1m{CF_TOKEN[:20]}\x1b[0m", CF_TOKEN[:20]),
        ("\x1b[31mError: Authorization: Bearer \x1b[2mzXq9kLm2Nb7VcX1z\x1b[0m", "zXq9kLm2Nb7VcX1z"),
        ("Error: \x1b[1mDEPLOY_TOKEN\x1b[0m=abc123def456ghi", "abc123def456ghi"),
        # logins and clients
        ("Error: docker login -u bot -p Tr0ub4dor-and-3 registry.example.com", "Tr0ub4dor"),
        ("$ echo x | docker login --password=Tr0ub4dor3x ghcr.io", "Tr0ub4dor3x"),
        ("Error: curl -u admin:Sup3rS3cret https://api.example.com failed", "Sup3rS3cret"),
        ("curl --user 'deploy:pa55word' https://api.example.com", "pa55word"),
        # Stripe keys
        ("Error: sk_live_51HabcdefGHIJKLmnopQRSTuvwxYZ0123456789", "sk_live_51H"),
        ("Stripe: invalid key rk_test_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ],
)
def test_more_secret_shapes_are_masked(line, secret):
    masked = mask(line)
    assert secret not in masked
    assert "***" in masked


@pytest.mark.parametrize(
    "line",
    [
        # hex shas (git, integrity, Docker digests) are not tokens
        "HEAD is now at 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b fix: build",
        "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
        # a long word without digits, an all-lower run, a port flag, a uid
        "Error: Cannot_find_module_SomethingVeryLongWithoutAnyDigitsInIt_at_all",
        "docker run -p 8080:80 -u 1000:1000 app",
        "\x1b[32m✓\x1b[0m 12 tests passed",
    ],
)
def test_shas_and_ordinary_lines_survive_the_new_patterns(line):
    assert mask(line) == line


def test_normalise_dates_runner_temp_paths_and_pids():
    assert normalise("certificate expired on 2026-12-04") == "certificate expired on <date>"
    assert normalise("ENOENT /home/runner/work/_temp/3f2a1b0c-aaaa/out.js") == (
        "ENOENT /home/runner/work/<tmp>"
    )
    assert normalise(r"ENOENT D:\a\_temp\9e8d7c6b\out.js") == r"ENOENT D:\a\<tmp>"
    assert normalise("(node:98765) Warning: x") == normalise("(node:1234) Warning: x")
    assert normalise("(node:98765) Warning: x") == "(node:<pid>) Warning: x"
    assert normalise("[9:05:01 AM] failed") == normalise("[10:15:44 PM] failed")


def _one_failure(line: str) -> str:
    return "\n".join(["$ npm run build", line, "npm ERR! code ELIFECYCLE", ""])


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("(node:1234) Error: read ECONNRESET", "(node:98765) Error: read ECONNRESET"),
        (
            "Error: request failed Authorization: Bearer abcdefghijkl123456",
            "Error: request failed Authorization: Bearer zyxwvutsrq987654",
        ),
        (
            "Error: ENOENT /home/runner/work/_temp/3f2a1b0c-aaaa/out.js",
            "Error: ENOENT /home/runner/work/_temp/9e8d7c6b-bbbb/out.js",
        ),
        ("Error: certificate expired on 2026-12-04", "Error: certificate expired on 2026-12-05"),
    ],
)
def test_the_signature_ignores_pids_rotating_secrets_runner_temp_and_dates(first, second):
    a, b = triage(_one_failure(first)), triage(_one_failure(second))
    assert a.signature == b.signature


def test_the_signature_hashes_the_masked_evidence():
    from devops_assets.triage.signature import signature

    result = triage(_one_failure(f"Error: deploy refused for {CF_TOKEN}"))
    assert CF_TOKEN not in "\n".join(result.evidence)
    assert result.signature == signature(result.category, result.evidence)


def test_the_build_failures_asset_stores_and_shows_no_key_body_token_or_coloured_secret(served):
    """Over loopback HTTP against the emulator: the stored log, the triage row, the
    metadata and the notice hold no line of a private key, no bare Cloudflare token and
    no bearer token split by colour codes."""
    import json

    from devops_assets.defs.ingest.build_failures import notice_text
    from devops_assets.store import Warehouse
    from devops_assets.store.triage_ledger import TriageLedger

    config, app, history, url = served
    build = max(
        (b for b in history.builds if b["outcome"] == "fail"), key=lambda b: b["created_on"]
    )
    stamp = app.state.logs[build["uuid"]][0][0]
    lines = [
        "Executing user build command: npm run build",
        "> app@1.0.0 build",
        "✘ [ERROR] Could not load the signing key for the upload",
        "-----BEGIN PRIVATE KEY-----",
        *PEM_BODY,
        "-----END PRIVATE KEY-----",
        f"  used {CF_TOKEN} for the request",
        "\x1b[31mError: Authorization: Bearer \x1b[1mcolouredSecret123\x1b[0m",
        "Failed: error occurred while running build command",
    ]
    app.state.logs[build["uuid"]] = []
    app.state.record_log(build["uuid"], [[stamp, line] for line in lines])
    result = test_build_failures_asset.materialize(config, "workers_builds", "build_failures")
    assert result.success
    warehouse = Warehouse(url)
    record = TriageLedger(warehouse).triage(build["uuid"])
    stored = TriageLedger(warehouse).log(build["uuid"])
    assert stored.line_count == len(lines) == len(stored.text.split("\n"))
    assert record.category != "unknown"
    places = {
        "build_logs": json.dumps(warehouse.snapshot("build_logs"), default=str, ensure_ascii=False),
        "build_triages": json.dumps(
            warehouse.snapshot("build_triages"), default=str, ensure_ascii=False
        ),
        "metadata": json.dumps(
            test_build_failures_asset.metadata_of(result), default=str, ensure_ascii=False
        ),
        "notice": notice_text(record),
    }
    needles = [PEM_BODY[0][:16], PEM_BODY[1][:16], CF_TOKEN, "colouredSecret123"]
    leaks = {where: [n for n in needles if n in text] for where, text in places.items()}
    assert not any(leaks.values()), leaks


# --- fresh-user review (issue 6) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "seen"),
    [
        ("2026-12-04T10:14:19.770Z\t       |   ^", "       |   ^"),
        (
            "2026-12-04T10:14:19.770Z   Type 'undefined' is not assignable",
            "  Type 'undefined' is not assignable",
        ),
        ("2026-12-04 10:14:19,770 [INFO]  ok", "[INFO]  ok"),
        ("2026-12-04T10:14:19+01:00 x", "x"),
        ("2026-12-04T10:14:19.770Z\t", ""),
    ],
)
def test_clean_takes_off_the_stamp_and_one_separator_only(line, seen):
    from devops_assets.triage.normalise import clean

    assert clean(line) == seen


VITEST_RUN = [
    "Executing user build command: bun run test",
    "$ vitest run",
    "",
    " RUN  v3.2.4 /opt/buildhome/repo",
    "",
    " ✓ test/config.test.ts (12 tests) 8ms",
    " ❯ test/gateway.test.ts (9 tests | 1 failed) 41ms",
    "   × gateway > retries upstream calls on 503 12ms",
    "     → expected 503 to be 200 // Object.is equality",
    "",
    "⎯⎯⎯⎯⎯⎯⎯ Failed Tests 1 ⎯⎯⎯⎯⎯⎯⎯",
    "",
    " FAIL  test/gateway.test.ts > gateway > retries upstream calls on 503",
    "AssertionError: expected 503 to be 200 // Object.is equality",
    "",
    "- Expected",
    "+ Received",
    "",
    "- 200",
    "+ 503",
    "",
    " ❯ test/gateway.test.ts:88:27",
    "     86|     const res = await worker.fetch(req, env);",
    "     87|     expect(calls).toBe(3);",
    "     88|     expect(res.status).toBe(200);",
    "       |                        ^",
    "     89|   });",
    "     90| });",
    "",
    "⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯⎯[1/1]⎯",
    "",
    " Test Files  1 failed | 13 passed (14)",
    "      Tests  1 failed | 97 passed (98)",
    "   Start at  09:14:31",
    "   Duration  4.61s (transform 312ms, setup 0ms, collect 1.02s, tests 2.01s)",
    "",
    'error: script "test" exited with code 1',
    "Failed: error occurred while running build command",
]


def test_a_failure_longer_than_the_cap_keeps_its_start_and_drops_the_far_closing_lines():
    # docs/triage.md: the span holds at most 15 lines from the decisive line (or the one
    # introducing it) on; the closing lines end it only when they fall within those 15.
    # Here they come 25 lines after the FAIL line: the failure's own lines are kept.
    found = triage("\n".join(VITEST_RUN) + "\n")
    fail = VITEST_RUN.index(" FAIL  test/gateway.test.ts > gateway > retries upstream calls on 503")
    assert found.evidence_start == fail + 1
    assert len(found.evidence) == 15 == MAX_LINES
    assert found.evidence == tuple(VITEST_RUN[fail : fail + 15])
    assert "AssertionError: expected 503 to be 200 // Object.is equality" in found.evidence
    assert not any("exited with code" in line for line in found.evidence)


def test_a_failure_within_the_cap_ends_at_its_closing_lines():
    fail = VITEST_RUN.index(" FAIL  test/gateway.test.ts > gateway > retries upstream calls on 503")
    short = [*VITEST_RUN[: fail + 2], " ❯ test/gateway.test.ts:88:27", *VITEST_RUN[-2:]]
    found = triage("\n".join(short) + "\n")
    assert found.evidence[-2:] == (
        'error: script "test" exited with code 1',
        "Failed: error occurred while running build command",
    )
    assert len(found.evidence) <= MAX_LINES


# --- breaker findings (issue 6) ------------------------------------------------------------


class _CountedLines(list):
    """A list of lines that counts how many of them are read (one by one or in slices)."""

    reads = 0

    def __iter__(self):
        for line in super().__iter__():
            self.reads += 1
            yield line

    def __getitem__(self, key):
        got = super().__getitem__(key)
        self.reads += len(got) if isinstance(key, slice) else 1
        return got


def test_the_anchor_search_stops_at_the_anchors_it_keeps():
    # One "##[error]" annotation per lint error: 160 000 step-ending lines. The search
    # used to find every one (re-slicing the rest of the log each time: quadratic).
    from devops_assets.triage.evidence import _anchors

    lines = _CountedLines(["$ npm run lint", *["##[error]src/a.ts:1:1 no-unused-vars"] * 160_000])
    assert _anchors(lines)[:8] == list(range(1, 9))  # the first eight failed steps are kept
    assert lines.reads <= 8 + 2


def test_rules_read_a_line_up_to_its_first_2000_characters():
    # A CI line glued with "\r" can run to hundreds of KB; the rules read its start only
    # (the same cut masking makes), so their work per line is bounded.
    def log(prefix_words: int) -> str:
        line = "progress " * prefix_words + "ECONNRESET while fetching"
        return "\n".join(["$ npm test", line, "npm ERR! code ELIFECYCLE"]) + "\n"

    assert triage(log(100)).category == "infrastructure"  # at character 900: read
    far = triage(log(300))  # at character 2700: not read
    assert far.category != "infrastructure"
    assert far.evidence[far.evidence.index("npm ERR! code ELIFECYCLE") - 1].endswith(" [...]")


@pytest.mark.parametrize(
    ("line", "seen"),
    [
        ("[mocha] Error: connection lost", "[mocha] Error: connection lost"),
        ("[mf:err] Error: Miniflare failed", "[mf:err] Error: Miniflare failed"),
        ("[main] INFO starting", "[main] INFO starting"),
        ("✓ parses dates [12ms]", "✓ parses dates [12ms]"),
        ("[31mError[39m: boom", "Error: boom"),
        ("[2msrc/[22ma.test.ts", "src/a.test.ts"),
        ("[mError: x", "Error: x"),
    ],
)
def test_clean_tells_a_colour_code_without_its_escape_from_a_bracketed_word(line, seen):
    from devops_assets.triage.normalise import clean

    assert clean(line) == seen


def test_the_evidence_is_the_exact_text_of_bracketed_lines():
    lines = [
        "$ npm test",
        "[mocha] Error: connection lost",
        "[mf:err] Error: Miniflare failed",
        "npm ERR! code ELIFECYCLE",
    ]
    found = triage("\n".join(lines) + "\n")
    assert found.evidence == tuple(lines[found.evidence_start - 1 : found.evidence_end])
    assert "[mf:err]" in found.summary or "[mocha]" in found.summary


TYPECHECK_FAIL = [
    "$ npm run typecheck",
    "src/a.ts(1,2): error TS2322: Type 'x' is not assignable to type 'y'.",
    "npm ERR! code ELIFECYCLE",
]


def test_a_passing_log_identical_to_the_failing_one_decides_nothing():
    text = "\n".join(TYPECHECK_FAIL) + "\n"
    assert triage(text).certain  # alone, the TS error is decisive
    found = triage(text, passing=text)
    assert (found.category, found.certain) == ("unknown", False)
    assert found.summary.startswith(
        "unknown: the failing log has no line the passing one lacks; nearest lines: "
    )
    assert TYPECHECK_FAIL[1] in found.evidence  # still shown, as the nearest lines


def test_a_line_the_passing_log_also_prints_is_never_certain():
    # New lines only after the failed step: the TS error (printed by the passing build
    # too) is shown, as a guess.
    failing = [*TYPECHECK_FAIL, "$ ./scripts/upload-logs.sh", "uploaded 3 files to the bucket"]
    found = triage("\n".join(failing) + "\n", passing="\n".join(TYPECHECK_FAIL) + "\n")
    assert TYPECHECK_FAIL[1] in found.evidence
    assert not found.certain
    assert found.summary.startswith("probably typecheck")


NOISY_PASS = [
    "Executing user build command: bun run build",
    "$ node scripts/check-env.mjs && tsc --noEmit && wrangler deploy --dry-run --outdir dist",
    "Error: SENTRY_DSN not set, error reporting disabled",
    "warning: 3 routes have no handler tests",
    "Total Upload: 182.41 KiB / gzip: 38.90 KiB",
    "Success: Build command completed",
]
ROUTE = "route /v1/chat has two handlers (src/routes/chat.ts, src/routes/legacy.ts)"


@pytest.mark.parametrize(
    "body",
    [
        # Nothing error-shaped is new; a count changed ("4 routes") and one line is new.
        [
            "Error: SENTRY_DSN not set, error reporting disabled",
            "warning: 4 routes have no handler tests",
            ROUTE,
        ],
        # A new banner, then a line both logs print, then the new cause.
        ["✗ Build failed in 412ms", "Error: SENTRY_DSN not set, error reporting disabled", ROUTE],
    ],
    ids=["no-error-shaped-new-line", "banner"],
)
def test_with_a_passing_log_the_summary_quotes_a_new_line(body):
    failing = [
        *NOISY_PASS[:2],
        *body,
        'error: script "build" exited with code 1',
        "Failed: error occurred while running build command",
    ]
    found = triage("\n".join(failing) + "\n", passing="\n".join(NOISY_PASS) + "\n")
    assert ROUTE in found.summary
    assert "SENTRY_DSN" not in found.summary


def test_a_lone_surrogate_in_the_text_does_not_stop_the_triage():
    found = triage("$ npm test\nError: bad \ud800 char\nnpm ERR! code ELIFECYCLE\n")
    assert len(found.signature) == 12
