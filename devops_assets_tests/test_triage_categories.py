# ruff: noqa: E501 (log lines are quoted verbatim, as long as the tools print them)
"""Triage on hand-made Workers Builds logs: every category recognised, from the right lines.

Each log in ``triage_logs.CASES`` is written in the style of the real tool (wrangler, bun,
npm, tsc, Biome, Prettier, Vitest, Playwright); the triage must name the category, put
the decisive line in a short evidence span, and say which step failed.
"""

from __future__ import annotations

import pytest

from devops_assets.triage import CATEGORIES, MAX_LINES, triage
from devops_assets_tests.triage_logs import CASES, FAILED_BUILD, workers_log

STEPS = {
    "dependency_install": "install",
    "infrastructure": "install",
    "config": "deploy",
    "deploy": "deploy",
    "smoke_test": "deploy",
    "size_limit": "deploy",
    "toolchain_version": "deploy",
}


def test_every_category_has_a_hand_made_log():
    assert set(CASES) == set(CATEGORIES)


@pytest.mark.parametrize("category", sorted(CASES))
def test_category_step_and_evidence(category):
    text, decisive = CASES[category]
    result = triage(text)
    lines = text.split("\n")

    assert result.category == category
    assert result.step == STEPS.get(category, "build")
    assert decisive in result.evidence
    assert 1 <= result.evidence_start <= result.evidence_end <= len(lines)
    assert len(result.evidence) == result.evidence_end - result.evidence_start + 1 <= MAX_LINES
    # The evidence is the log's own lines (timestamps and colours aside), at those numbers.
    assert lines[result.evidence_start - 1 + result.evidence.index(decisive)] == decisive
    assert result.certain is (category != "unknown")
    assert len(result.signature) == 12


def test_unknown_is_said_and_never_dressed_up_as_certain():
    result = triage(CASES["unknown"][0])
    assert result.category == "unknown"
    assert not result.certain
    assert result.summary.startswith("unknown:")


def test_a_guess_from_the_command_alone_is_marked_uncertain():
    text = workers_log(
        "Executing user build command: npm test",
        "> edge-api@1.4.0 test",
        "> node scripts/run-tests.mjs",
        "Failed: error occurred while running build command",
    )
    result = triage(text)
    assert result.category == "unit_test"
    assert not result.certain
    assert result.summary.startswith("probably unit_test")


def test_quality_gate_step_named_when_the_log_shows_it():
    text, _ = CASES["lint"]
    assert triage(text, steps=("typecheck", "lint", "test")).step == "lint"
    text, _ = CASES["typecheck"]
    assert triage(text, steps=("typecheck", "lint", "test")).step == "typecheck"
    # A step the log never runs is not reported.
    assert triage(text, steps=("e2e",)).step == "build"


def test_eslint_and_biome_format_styles():
    eslint = workers_log(
        "Executing user build command: npm run lint",
        "> edge-api@1.4.0 lint",
        "> eslint src",
        "",
        "/opt/buildhome/repo/src/index.ts",
        "  14:7  error  'unused' is assigned a value but never used  @typescript-eslint/no-unused-vars",
        "",
        "✖ 1 problem (1 error, 0 warnings)",
        "Failed: error occurred while running build command",
    )
    result = triage(eslint)
    assert result.category == "lint"
    assert "/opt/buildhome/repo/src/index.ts" in result.evidence

    biome_format = workers_log(
        "Executing user build command: npx biome format ./src",
        "src/index.ts format ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━",
        "",
        "  ✖ Formatter would have printed the following content:",
        "",
        "    12    │ - const a = {b:1}",
        "       12 │ + const a = { b: 1 };",
        "",
        "Checked 3 files in 4ms. No fixes applied.",
        "Failed: error occurred while running build command",
    )
    assert triage(biome_format).category == "format"


def test_empty_log():
    result = triage("")
    assert (result.category, result.evidence_start, result.evidence) == ("unknown", 0, ())


def test_a_chain_of_commands_names_no_category_when_the_log_says_nothing():
    from devops_assets.triage import triage

    text = "\n".join(
        [
            "Initializing build environment...",
            "Success: Finished cloning repository files",
            "Installing project dependencies: bun install --frozen-lockfile",
            "Executing user build command: bun run lint && bun run format && bun run check",
            "Build fail",
        ]
    )
    found = triage(text)
    assert (found.category, found.certain) == ("unknown", False)


def test_a_smoke_test_run_by_the_build_command_fails_the_build_step():
    from devops_assets.triage import triage

    text = "\n".join(
        [
            "Installing project dependencies: bun install --frozen-lockfile",
            "Executing user build command: bun run build && node scripts/smoke.mjs",
            "smoke: wrangler dev ready on http://127.0.0.1:8787",
            "smoke: GET /health answered 500, expected 200",
            "smoke: 1 of 4 checks failed",
            "Failed: error occurred while running build command",
        ]
    )
    found = triage(text)
    assert (found.category, found.step) == ("smoke_test", "build")


@pytest.mark.parametrize(
    "lines",
    [
        [
            "$ npm test",
            "PASS src/a.test.ts",
            "Tests: 0 failed, 12 passed, 12 total",
            "Segmentation fault (core dumped)",
            "npm ERR! code ELIFECYCLE",
        ],
        [
            "$ npm test",
            "  12 passing (2s)",
            "  0 failing",
            "Segmentation fault (core dumped)",
            "npm ERR! code ELIFECYCLE",
        ],
        [
            "$ npx vitest run",
            " Test Files  0 failed | 4 passed (4)",
            "      Tests  0 failed | 12 passed (12)",
            "Killed",
            "Error: Process completed with exit code 137.",
        ],
    ],
)
def test_a_test_summary_with_no_failure_is_not_a_certain_test_failure(lines):
    found = triage("\n".join(lines) + "\n")
    assert not (found.certain and found.category == "unit_test")
    assert not found.certain
    assert not found.summary.startswith("unit_test in step")


@pytest.mark.parametrize(
    ("failed", "passed"),
    [
        ("Tests: 1 failed, 11 passed, 12 total", "Tests: 0 failed, 12 passed, 12 total"),
        ("  10 failing", "  0 failing"),
        (" Test Files  2 failed | 4 passed (6)", " Test Files  0 failed | 6 passed (6)"),
    ],
)
def test_only_a_count_of_one_or_more_makes_a_test_summary_decisive(failed, passed):
    from devops_assets.triage.rules import categorise, decisive_tier

    assert decisive_tier(failed) in (1, 3)
    assert categorise([failed]) == ("unit_test", True)
    assert decisive_tier(passed) not in (1, 3)
    assert categorise([passed])[0] != "unit_test"


@pytest.mark.parametrize(
    "check",
    [
        "smoke: GET /health answered 500, expected 200",
        "  ✗ /api/status: expected 200 but got 503",
        "smoke: GET https://edge-api.example.workers.dev/health -> 502",
    ],
)
def test_the_smoke_check_that_failed_is_the_decisive_line(check):
    # The checker prints the response body and its summary after the failing check:
    # the evidence starts at (or just before) the check, which the summary quotes.
    text = "\n".join(
        [
            "Executing user build command: bun run build && bun run test:smoke",
            "$ bun run test:smoke",
            "$ node scripts/smoke.mjs",
            "smoke: wrangler dev ready on http://127.0.0.1:8787",
            check,
            'smoke: body {"ok":false,"error":"D1_ERROR: no such table: sessions"}',
            "smoke: 1 of 4 checks failed",
            'error: script "test:smoke" exited with code 1',
            "Failed: error occurred while running build command",
        ]
    )
    found = triage(text, steps=("test:smoke",))
    assert (found.category, found.step, found.certain) == ("smoke_test", "test:smoke", True)
    assert check in found.evidence
    assert check.strip() in found.summary


# --- fresh-user review (issue 6) --------------------------------------------------------

BUN_CLOSING = 'error: script "build" exited with code 1'


@pytest.mark.parametrize(
    "closing", [[FAILED_BUILD], [BUN_CLOSING, FAILED_BUILD]], ids=["workers", "bun+workers"]
)
def test_an_unknown_failure_quotes_the_line_before_the_closing_boilerplate(closing):
    text = workers_log(
        "Executing user build command: ./ci.sh",
        "generating the route table",
        "route table checksum mismatch, refusing to continue",
        *closing,
    )
    found = triage(text)
    assert (found.category, found.certain) == ("unknown", False)
    assert found.summary == (
        "unknown: no rule recognised the failure; "
        "nearest lines: route table checksum mismatch, refusing to continue"
    )
    assert found.evidence[-1] == closing[0]  # the evidence still shows how the step ended


def test_the_hand_made_unknown_quotes_its_last_informative_line():
    found = triage(CASES["unknown"][0])
    assert found.summary.endswith("nearest lines: writing CHANGELOG entry")


@pytest.mark.parametrize(
    ("body", "category", "certain"),
    [
        (
            # the command names a kind (a guess); the stage line says the build command ran
            [
                "Executing user build command: wrangler deploy --dry-run --outdir dist",
                "route table checksum mismatch, refusing to continue",
            ],
            "deploy",
            False,
        ),
        (
            [
                "Executing user build command: bun run build",
                "$ wrangler deploy --dry-run --outdir dist",
                "route table checksum mismatch, refusing to continue",
                BUN_CLOSING,
            ],
            "deploy",
            False,
        ),
        (
            # a deploy the build command runs fails the build stage, even when certain
            [
                "Executing user build command: bun run build && wrangler deploy",
                "✘ [ERROR] A request to the Cloudflare API (/accounts/8d1e0a/workers/scripts/edge-api) failed.",
                "  Authentication error [code: 10000]",
            ],
            "deploy",
            True,
        ),
    ],
    ids=["guess-from-stage-command", "guess-from-script", "certain"],
)
def test_the_category_never_overrides_the_stage_the_log_states(body, category, certain):
    found = triage(workers_log(*body, FAILED_BUILD))
    assert (found.category, found.certain, found.step) == (category, certain, "build")
    if not certain:
        assert found.summary.startswith(f"probably {category} in step build (not certain): ")


def test_without_a_stage_line_the_category_names_the_stage():
    found = triage(
        "$ npx wrangler deploy\n"
        "✘ [ERROR] A request to the Cloudflare API (/accounts/8d1e0a/workers/scripts/edge-api) failed.\n"
        "  Authentication error [code: 10000]\n"
    )
    assert (found.category, found.step) == ("deploy", "deploy")


@pytest.mark.parametrize(
    ("lines", "banner", "cause"),
    [
        (
            [
                "$ vite build",
                "vite v6.3.5 building for production...",
                "✓ 41 modules transformed.",
                "✗ Build failed in 412ms",
                "error during build:",
                '[vite]: Rollup failed to resolve import "@/lib/session" from "/opt/buildhome/repo/src/client/App.tsx".',
                BUN_CLOSING,
            ],
            "✗ Build failed in 412ms",
            '[vite]: Rollup failed to resolve import "@/lib/session"',
        ),
        (
            [
                "$ npx wrangler deploy",
                "✘ [ERROR] A request to the Cloudflare API (/accounts/8d1e0a/workers/scripts/edge-api/versions) failed.",
                "",
                "  Your Worker exceeded the size limit of 3 MiB. [code: 10027]",
            ],
            "A request to the Cloudflare API",
            "Your Worker exceeded the size limit of 3 MiB. [code: 10027]",
        ),
        (
            [
                "$ mvn -B test",
                "[ERROR] COMPILATION ERROR : ",
                "[INFO] -------------------------------------------------------------",
                "[ERROR] /app/src/main/java/Foo.java:[27,12] cannot find symbol",
                "[INFO] 1 error",
            ],
            "COMPILATION ERROR",
            "[ERROR] /app/src/main/java/Foo.java:[27,12] cannot find symbol",
        ),
        (
            [
                "$ python scripts/notify.py",
                "Traceback (most recent call last):",
                '  File "scripts/notify.py", line 23, in <module>',
                "    client = Github(token)",
                "NameError: name 'Github' is not defined",
            ],
            "Traceback",
            "NameError: name 'Github' is not defined",
        ),
    ],
    ids=["vite", "wrangler-api", "maven", "python"],
)
def test_the_summary_quotes_the_cause_not_the_banner_before_it(lines, banner, cause):
    found = triage("\n".join([*lines, FAILED_BUILD]) + "\n")
    assert any(banner in line for line in found.evidence)  # the evidence keeps the banner
    assert f": {cause}" in found.summary
    assert banner not in found.summary


def test_a_header_ending_in_a_colon_is_quoted_with_the_detail_it_introduces():
    found = triage(CASES["config"][0])
    assert found.summary == (
        "config in step deploy: ✘ [ERROR] Processing wrangler.jsonc configuration: "
        '- "d1_databases[0]" bindings should have a string "binding" field but got '
        '{"database_name":"app-db"}.'
    )


def _emulator_log(failure) -> str:
    """The whole log the emulator writes for a build that breaks as ``failure`` shows."""
    from devops_assets.emulator import buildlogs

    build = {
        "build_uuid": "",
        "build_outcome": "fail",
        "created_on": "2026-11-30T18:00:00+00:00",
        "running_on": "2026-11-30T18:00:05+00:00",
        "stopped_on": "2026-11-30T18:03:05+00:00",
        "build_trigger_metadata": {
            "commit_hash": "c3fe91c8aae90cba41303f651fda70e594a794b4",
            "commit_message": "chat: resume sessions",
            "build_command": "bun run build",
            "deploy_command": "bunx wrangler deploy",
        },
    }
    for n in range(2000):
        build["build_uuid"] = f"4002af16-aab2-4b1e-89ec-{n:012d}"
        if buildlogs.failure_for(build["build_uuid"], "typescript") is failure:
            lines = buildlogs.build_log(
                build, worker="edge-api", failure="typescript", version_id=None
            )
            return "\n".join(text for _, text in lines)
    raise AssertionError("no build uuid draws the variant")


def test_demo_push_build_fail_summary_quotes_the_rollup_error():
    # `devops-assets demo-push --build fail` pushes a build failing as one of the
    # "typescript" variants; the vite one printed "✗ Build failed in 412ms" first.
    from devops_assets.emulator import buildlogs

    [vite] = [f for f in buildlogs.FAILURES["typescript"] if f.category == "compile"]
    found = triage(_emulator_log(vite), steps=tuple(buildlogs.STEP_AT))
    assert (found.category, found.step, found.certain) == ("compile", "build", True)
    assert found.summary.startswith(
        'compile in step build: [vite]: Rollup failed to resolve import "@/lib/session" from '
    )


# --- breaker findings (issue 6): categories that were confidently wrong ------------------

INSTALL = "Installing project dependencies: bun install --frozen-lockfile"


@pytest.mark.parametrize(
    "lines",
    [
        [
            "$ pnpm install --frozen-lockfile",
            " ERR_PNPM_FETCH_500  GET https://registry.npmjs.org/hono: Internal Server Error - 500",
            "",
            "error Command failed with exit code 1.",
        ],
        [
            "$ pnpm install",
            " ERR_PNPM_FETCH_502  GET https://registry.npmjs.org/hono: Bad Gateway - 502",
            "error Command failed with exit code 1.",
        ],
        [
            "$ pnpm install",
            " ERR_PNPM_META_FETCH_FAIL  GET https://registry.npmjs.org/hono: request to https://registry.npmjs.org/hono failed, reason: socket timeout",
            "error Command failed with exit code 1.",
        ],
        [
            "$ yarn install --frozen-lockfile",
            "[2/4] Fetching packages...",
            'error An unexpected error occurred: "https://registry.yarnpkg.com/react/-/react-18.2.0.tgz: ESOCKETTIMEDOUT".',
            "info Visit https://yarnpkg.com/en/docs/cli/install for documentation about this command.",
            "error Command failed with exit code 1.",
        ],
        [
            INSTALL,
            "bun install v1.1.0",
            "error: ConnectionClosed downloading package manifest hono",
            "error: hono@^4.0.0 failed to resolve",
            "Failed: error occurred while installing tools or dependencies",
        ],
        [
            "$ npm ci",
            "npm ERR! code ERR_SOCKET_TIMEOUT",
            "npm ERR! network Socket timeout",
            "npm ERR! A complete log of this run can be found in: /root/.npm/_logs/x.log",
        ],
    ],
    ids=[
        "pnpm-500",
        "pnpm-502",
        "pnpm-socket-timeout",
        "yarn-esockettimedout",
        "bun-closed",
        "npm-socket",
    ],
)
def test_a_registry_failing_during_install_is_infrastructure(lines):
    found = triage("\n".join(lines) + "\n")
    assert (found.category, found.step) == ("infrastructure", "install")


def test_an_eslint_report_is_lint_whatever_its_message_names():
    found = triage(
        workers_log(
            "Executing user build command: npm run lint",
            "> eslint src",
            "",
            "/opt/buildhome/repo/src/a.ts",
            '  3:1  error  Do not use "@ts-ignore" because it alters compilation errors (TS2578 is hidden)  @typescript-eslint/ban-ts-comment',
            "",
            "✖ 1 problem (1 error, 0 warnings)",
            "Failed: error occurred while running build command",
        )
    )
    assert (found.category, found.certain) == ("lint", True)


def vitest(title: str, *detail: str) -> str:
    return workers_log(
        "Executing user build command: npm test",
        "> vitest run",
        f" FAIL  {title}",
        *detail,
        " Test Files  1 failed (1)",
        "Failed: error occurred while running build command",
    )


def jest(path: str, title: str, *detail: str) -> str:
    return workers_log(
        "Executing user build command: npm test",
        "> jest",
        f" FAIL  {path}",
        f"  ● {title}",
        *detail,
        " Tests:  1 failed, 3 passed",
        "Failed: error occurred while running build command",
    )


@pytest.mark.parametrize(
    "text",
    [
        vitest("src/a.test.ts > parses [en-US]", "AssertionError: expected 'x' to be 'y'"),
        jest(
            "src/headers.test.ts",
            "sets cache header",
            "    Expected: no-cache",
            "    Received: public",
        ),
        vitest("src/lint/rules.test.ts > flags unused", "AssertionError: expected 2 to be 3"),
        jest(
            "src/load.test.ts",
            "loads fixture",
            "    ENOENT: no such file or directory, open 'fixtures/data.json'",
        ),
        vitest(
            "src/config.test.ts > reads wrangler.toml vars",
            "AssertionError: expected undefined to be 'prod'",
        ),
        vitest("src/tsc.test.ts > tsc reports error", "AssertionError: expected 0 to be 1"),
        vitest(
            "src/retry.test.ts > gives up when upstream timed out after 3 minutes",
            "AssertionError: expected 'ok' to be 'gave up'",
        ),
    ],
    ids=[
        "title-[en-US]",
        "no-cache",
        "src/lint",
        "fixture-enoent",
        "wrangler.toml",
        "tsc.test",
        "timed-out-after",
    ],
)
def test_a_unit_test_report_is_unit_test_whatever_its_titles_and_paths_say(text):
    found = triage(text)
    assert (found.category, found.step, found.certain) == ("unit_test", "build", True)


def test_a_wrangler_warning_before_a_compile_error_does_not_make_it_config():
    found = triage(
        workers_log(
            "Executing user build command: npx wrangler deploy --dry-run",
            "▲ [WARNING] Processing wrangler.toml configuration:",
            '    - Unexpected fields found in top-level field: "vars2"',
            "✘ [ERROR] Build failed with 1 error:",
            '  src/index.ts:3:7: ERROR: Expected ";" but found "x"',
            "Failed: error occurred while running build command",
        )
    )
    assert (found.category, found.certain) == ("compile", True)
