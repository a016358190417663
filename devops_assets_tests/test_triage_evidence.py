# ruff: noqa: E501 (log lines are quoted verbatim, as long as the tools print them)
"""Masking, normalising, the signature, and the diff against a passing log."""

from __future__ import annotations

import time

import pytest

from devops_assets.triage import normalise, triage
from devops_assets.triage.mask import mask

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
