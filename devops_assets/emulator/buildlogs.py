"""The log lines a Workers Builds build prints, as ``[epoch_ms, text]`` pairs.

Each line is stamped between the build's phase times; a failed build ends
with the output of the step that broke, a running one stops mid-way. Drawn
from a ``random.Random`` seeded with the build uuid, so a build's log is the
same every time it is generated (and nothing here draws from the timeline's
generator: the history's outcomes and times do not depend on the log text).

The build installs with bun, then runs the quality-gate steps of the demo's
platform file one script at a time (lint, format, check, test:unit, then the
bundle, test:smoke against ``wrangler dev`` and test:e2e), and deploys with
wrangler. A failure kind of the timeline (``story.BUILD_FIXES``) is shown as
one of its :data:`FAILURES` variants; a build that a retry of the same commit
rescued shows one of the :data:`FLAKY` ones instead (a network error, a test
that passes the next time, a Cloudflare API hiccup).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

BUN, NODE, WRANGLER = "1.2.15", "22.16.0", "4.20.0"
REPO_DIR = "/opt/buildhome/repo"
INSTALL_FAILED = "Failed: error occurred while installing tools or dependencies"
BUILD_FAILED = "Failed: error occurred while running build command"
DEPLOY_FAILED = "Failed: error occurred while running deploy command"
RULE = "━" * 60

# Where each step of the build starts, as a share of the running time.
STEP_AT = {
    "install": 0.08,
    "lint": 0.37,
    "format": 0.39,
    "check": 0.41,
    "test:unit": 0.43,
    "build": 0.55,
    "test:smoke": 0.66,
    "test:e2e": 0.69,
    "deploy": 0.75,
}


@dataclass(frozen=True)
class Failure:
    """How one kind of failure looks: the category triage should find, the step that
    broke, its lines (``{…}`` fields are filled per build) and the closing line."""

    category: str
    step: str
    lines: tuple[str, ...]
    closing: str = BUILD_FAILED
    node: str = NODE  # the Node.js version the build environment detected
    weight: int = 1


def _script(name: str, body: str) -> tuple[str, str]:
    return f"$ bun run {name}", f"$ {body}"


_E2E_TITLE = "[chromium] › e2e/chat.spec.ts:31:5 › chat › reconnects after the socket drops"
E2E_FLAKE = Failure(
    "e2e_test",
    "test:e2e",
    (
        *_script("test:e2e", "playwright test"),
        "Running 24 tests using 2 workers",
        f"  ✘   7 {_E2E_TITLE} ({{secs}}s)",
        f"  1) {_E2E_TITLE}",
        "    Error: expect(locator).toBeVisible() failed",
        "    Locator: getByTestId('connection-status')",
        "    Expected: visible",
        "    Timeout: 5000ms",
        "    Call log:",
        "      - waiting for getByTestId('connection-status')",
        f"        at {REPO_DIR}/e2e/chat.spec.ts:38:52",
        "  1 failed",
        f"    {_E2E_TITLE}",
        "  23 passed ({mins}m)",
        'error: script "test:e2e" exited with code 1',
    ),
    weight=6,
)

FAILURES: dict[str, tuple[Failure, ...]] = {
    # failure kind of the timeline → the ways it shows in a log
    "dependency": (
        Failure(
            "dependency_install",
            "install",
            (
                f"bun install v{BUN} (b4f1a9c2)",
                "Resolving dependencies",
                "error: lockfile had changes, but lockfile is frozen",
                "note: try re-running without --frozen-lockfile and commit the updated lockfile",
            ),
            INSTALL_FAILED,
            weight=3,
        ),
        Failure(
            "toolchain_version",
            "deploy",
            (
                "✘ [ERROR] Wrangler requires at least Node.js v20.0.0. You are using v18.20.8. "
                "Please update your version of Node.js.",
                "  Consider using a Node.js version manager such as https://volta.sh or "
                "https://github.com/nvm-sh/nvm.",
            ),
            DEPLOY_FAILED,
            node="18.20.8",
        ),
        Failure(
            "dependency_install",
            "install",
            (
                f"bun install v{BUN} (b4f1a9c2)",
                "Resolving dependencies",
                'error: No version matching "^4.9.2" found for specifier "hono" '
                "(but package exists)",
                "error: hono@^4.9.2 failed to resolve",
            ),
            INSTALL_FAILED,
        ),
    ),
    "typescript": (
        Failure(
            "lint",
            "lint",
            (
                *_script("lint", "biome lint ./src ./test && eslint src/client --max-warnings 0"),
                f"src/routes/admin.ts:31:9 lint/style/useConst  FIXABLE  {RULE}",
                "  ✖ This let declares a variable that is only assigned once.",
                "    30 │   const device = await findDevice(env.DB, id);",
                "  > 31 │   let paired = device?.paired_at ?? null;",
                "       │       ^^^^^^",
                "Checked {files} files in {ms}ms. No fixes applied.",
                "Found 1 error.",
                f"lint {RULE}",
                "  ✖ Some errors were emitted while running checks.",
                'error: script "lint" exited with code 1',
            ),
        ),
        Failure(
            "lint",
            "lint",
            (
                *_script("lint", "biome lint ./src ./test && eslint src/client --max-warnings 0"),
                "Checked {files} files in {ms}ms. No fixes applied.",
                f"{REPO_DIR}/src/client/App.tsx",
                "  27:11  error  'session' is assigned a value but never used  "
                "@typescript-eslint/no-unused-vars",
                "✖ 1 problem (1 error, 0 warnings)",
                'error: script "lint" exited with code 1',
            ),
        ),
        Failure(
            "format",
            "format",
            (
                *_script("format", "biome format ./src ./test"),
                f"src/gateway/retry.ts format {RULE}",
                "  ✖ File content differs from formatting output",
                "    12    │ - export const MAX_RETRIES=3",
                "       12 │ + export const MAX_RETRIES = 3;",
                "Checked {files} files in {ms}ms. No fixes applied.",
                "Found 1 error.",
                f"format {RULE}",
                "  ✖ Some errors were emitted while running checks.",
                'error: script "format" exited with code 1',
            ),
        ),
        Failure(
            "compile",
            "build",
            (
                *_script("build", "vite build"),
                "vite v6.3.5 building for production...",
                "✓ 41 modules transformed.",
                "✗ Build failed in {ms}ms",
                "error during build:",
                '[vite]: Rollup failed to resolve import "@/lib/session" from '
                f'"{REPO_DIR}/src/client/App.tsx".',
                'error: script "build" exited with code 1',
            ),
        ),
        Failure(
            "typecheck",
            "check",
            (
                *_script("check", "tsc --noEmit"),
                "src/gateway/proxy.ts(42,7): error TS2322: Type 'string' is not assignable "
                "to type 'number'.",
                "src/gateway/proxy.ts(57,19): error TS2345: Argument of type 'Headers | "
                "undefined' is not assignable to parameter of type 'HeadersInit'.",
                "Found 2 errors in the same file, starting at: src/gateway/proxy.ts:42",
                'error: script "check" exited with code 2',
            ),
            weight=2,
        ),
    ),
    "test": (
        E2E_FLAKE,
        Failure(
            "unit_test",
            "test:unit",
            (
                *_script("test:unit", "vitest run --project unit"),
                f" RUN  v3.2.4 {REPO_DIR}",
                " ✓ test/config.test.ts (12 tests) {ms}ms",
                " ❯ test/gateway.test.ts (9 tests | 1 failed) {ms}ms",
                "   × gateway > retries upstream calls on 503 {ms}ms",
                "     → expected 503 to be 200 // Object.is equality",
                "⎯⎯⎯⎯⎯⎯⎯ Failed Tests 1 ⎯⎯⎯⎯⎯⎯⎯",
                " FAIL  test/gateway.test.ts > gateway > retries upstream calls on 503",
                "AssertionError: expected 503 to be 200 // Object.is equality",
                " ❯ test/gateway.test.ts:88:27",
                " Test Files  1 failed | 13 passed (14)",
                "      Tests  1 failed | {tests} passed ({tests1})",
                'error: script "test:unit" exited with code 1',
            ),
        ),
        Failure(
            "smoke_test",
            "test:smoke",
            (
                *_script("test:smoke", "node scripts/smoke.mjs"),
                "smoke: wrangler dev ready on http://127.0.0.1:8787",
                "smoke: GET /health answered 500, expected 200",
                'smoke: body {{"ok":false,"error":"D1_ERROR: no such table: sessions"}}',
                "smoke: 1 of 4 checks failed",
                'error: script "test:smoke" exited with code 1',
            ),
        ),
    ),
    "deploy": (
        Failure(
            "deploy",
            "deploy",
            (
                "✘ [ERROR] A request to the Cloudflare API ({api}/workers/scripts/"
                "{worker}) failed.",
                "  Authentication error [code: 10000]",
                "  It looks like you are authenticating Wrangler via a custom API token set in "
                "an environment variable.",
                "  Please ensure it has the correct permissions for this operation.",
            ),
            DEPLOY_FAILED,
            weight=2,
        ),
        Failure(
            "config",
            "deploy",
            (
                "✘ [ERROR] Processing wrangler.jsonc configuration:",
                '    - "env.staging.d1_databases[0]" bindings must have a "database_id" field '
                'but got {{"binding":"DB","database_name":"moltworker-staging-db"}}.',
            ),
            DEPLOY_FAILED,
        ),
        Failure(
            "size_limit",
            "deploy",
            (
                "Total Upload: 11873.40 KiB / gzip: 3521.77 KiB",
                "✘ [ERROR] A request to the Cloudflare API ({api}/workers/scripts/"
                "{worker}/versions) failed.",
                "  Your Worker exceeded the size limit of 10 MiB. Please upgrade your plan or "
                "reduce the bundle size. [code: 10027]",
            ),
            DEPLOY_FAILED,
        ),
    ),
    "memory": (
        Failure(
            "infrastructure",
            "build",
            (
                *_script("build", "vite build"),
                "vite v6.3.5 building for production...",
                "transforming (812) src/client/pages/Settings.tsx",
                "<--- Last few GCs --->",
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                " 1: 0xb8d0a3 node::Abort() [node]",
                'error: script "build" was terminated by signal SIGABRT (Abort)',
            ),
            weight=2,
        ),
        Failure(
            "timeout",
            "test:smoke",
            (
                *_script("test:smoke", "node scripts/smoke.mjs"),
                "smoke: starting wrangler dev on 127.0.0.1:8787",
                "smoke: timed out after 2 minutes waiting for http://127.0.0.1:8787/health",
                'error: script "test:smoke" exited with code 1',
            ),
        ),
    ),
}

# A failure a retry of the same commit rescued: nothing in the commit was wrong.
FLAKY: tuple[Failure, ...] = (
    E2E_FLAKE,
    Failure(
        "infrastructure",
        "install",
        (
            f"bun install v{BUN} (b4f1a9c2)",
            "Resolving dependencies",
            "error: ConnectionRefused downloading package manifest @cloudflare/workers-types",
            "error: GET https://registry.npmjs.org/@cloudflare%2fworkers-types - 503",
        ),
        INSTALL_FAILED,
    ),
    Failure(
        "deploy",
        "deploy",
        (
            "✘ [ERROR] A request to the Cloudflare API ({api}/workers/scripts/"
            "{worker}/versions) failed.",
            "  workers.api.error.unknown [code: 10013]",
        ),
        DEPLOY_FAILED,
    ),
    Failure(
        "infrastructure",
        "build",
        (
            "Error: an internal error occurred while running the build: the build container "
            "stopped responding",
        ),
        "Failed: an internal error occurred",
    ),
)
KINDS = tuple(FAILURES)
FLAKY_KIND = "flaky"  # for the controls: fail the way a retry later rescues (FLAKY)


def failure_for(
    build_uuid: str, kind: str | None, *, rescued: bool = False, installed: bool = False
) -> Failure:
    """The variant a failed build shows: drawn with its own generator (seeded with the
    build uuid), so the same build always fails the same way. ``installed``: the
    build is past its install step (only later steps can break)."""
    choices = FLAKY if rescued else FAILURES[kind or "test"]
    if installed:
        choices = tuple(f for f in choices if f.step != "install") or choices
    pick = random.Random(f"failure:{build_uuid}")
    return pick.choices(choices, weights=[f.weight for f in choices])[0]


def build_log(
    build: dict,
    *,
    worker: str,
    failure: str | None,
    version_id: str | None,
    rescued: bool = False,
    account_id: str = "",
) -> list[list]:
    """The lines of ``build`` (an API build object) up to where it got.

    ``failure`` is the timeline's failure kind; ``rescued`` says a later build of
    the same commit passed (the log then shows a flaky failure)."""
    rng = random.Random(build["build_uuid"])
    meta = build["build_trigger_metadata"]
    created = _parse(build["created_on"])
    lines = [[_ms(created), "Initializing build environment..."]]
    if not build["running_on"]:
        return lines
    start, stop = _parse(build["running_on"]), _parse(build["stopped_on"] or build["running_on"])
    if not build["stopped_on"]:
        stop = start + timedelta(seconds=150)
    broke = None
    if build["build_outcome"] == "fail":
        broke = failure_for(build["build_uuid"], failure, rescued=rescued)
    steps = _steps(rng, meta, worker, version_id, broke.node if broke else NODE)
    fields = {
        "files": rng.randint(80, 95),
        "ms": rng.randint(20, 900),
        "secs": f"{rng.uniform(5, 30):.1f}",
        "mins": f"{rng.uniform(0.8, 2.2):.1f}",
        "packages": rng.randint(380, 460),
        "tests": (tests := rng.randint(90, 110)),
        "tests1": tests + 1,
        "worker": worker,
        "api": f"/accounts/{account_id}" if account_id else "",
    }
    if broke is not None:
        at = STEP_AT[broke.step]
        errors = [(at, text.format(**fields)) for text in broke.lines]
        steps = [s for s in steps if s[0] < at] + errors + [(1.0, broke.closing)]
    elif build["build_outcome"] == "cancelled":
        steps = [s for s in steps if s[0] < 0.4] + [(1.0, "Build cancelled")]
    for share, text in steps:
        when = start + (stop - start) * share
        if build["stopped_on"] or when <= start + timedelta(seconds=60):
            lines.append([_ms(when), text])
    return lines


def failing_lines(build: dict, kind: str, when: datetime, *, worker: str) -> list[list]:
    """The closing lines of ``build`` (an API build object past its install step, its
    build command running) failing now with ``kind``; for the app's controls."""
    rescued = kind == FLAKY_KIND
    broke = failure_for(build["build_uuid"], kind, rescued=rescued, installed=True)
    fields = {
        "files": 86,
        "ms": 412,
        "secs": "12.4",
        "mins": "1.3",
        "packages": 412,
        "tests": 96,
        "tests1": 97,
        "worker": worker,
        "api": "",
    }
    lines = [text.format(**fields) for text in broke.lines]
    if broke.step == "deploy":
        command = build["build_trigger_metadata"]["deploy_command"]
        lines = [
            "Success: Build command completed",
            f"Executing user deploy command: {command}",
            f" ⛅️ wrangler {WRANGLER}",
            *lines,
        ]
    stamp = _ms(when)
    return [[stamp, text] for text in [*lines, broke.closing]]


def _steps(rng: random.Random, meta: dict, worker: str, version_id: str | None, node: str) -> list:
    packages = rng.randint(380, 460)
    modules = rng.randint(110, 160)
    upload, gzip = rng.uniform(700, 900), rng.uniform(150, 220)
    uploaded, deployed = rng.uniform(2, 6), rng.uniform(0.4, 1.5)
    tests = rng.randint(90, 110)
    linted = f"Checked {rng.randint(80, 95)} files in {rng.randint(30, 90)}ms. No fixes applied."
    formatted = f"Checked {rng.randint(80, 95)} files in {rng.randint(15, 40)}ms. No fixes applied."
    return [
        (0.0, "Success: Finished initializing build environment"),
        (0.01, "Cloning repository..."),
        (0.03, f"HEAD is now at {meta['commit_hash'][:7]} {meta['commit_message']}"),
        (0.04, "Success: Finished cloning repository files"),
        (0.05, "Restoring from dependencies cache"),
        (0.06, f"Detected the following tools from environment: bun@{BUN}, nodejs@{node}"),
        (0.07, "Installing project dependencies: bun install --frozen-lockfile"),
        (0.08, f"bun install v{BUN} (b4f1a9c2)"),
        (0.34, f"{packages} packages installed [{rng.uniform(1.2, 4.5):.2f}s]"),
        (0.36, f"Executing user build command: {meta['build_command']}"),
        (0.37, "$ bun run lint"),
        (0.371, "$ biome lint ./src ./test && eslint src/client --max-warnings 0"),
        (0.38, linted),
        (0.39, "$ bun run format"),
        (0.391, "$ biome format ./src ./test"),
        (0.40, formatted),
        (0.41, "$ bun run check"),
        (0.411, "$ tsc --noEmit"),
        (0.43, "$ bun run test:unit"),
        (0.431, "$ vitest run --project unit"),
        (0.44, f" RUN  v3.2.4 {REPO_DIR}"),
        (0.52, " Test Files  14 passed (14)"),
        (0.53, f"      Tests  {tests} passed ({tests})"),
        (0.54, f"   Duration  {rng.uniform(2, 6):.2f}s"),
        (0.55, "$ bun run build"),
        (0.551, "$ vite build"),
        (0.56, "vite v6.3.5 building for production..."),
        (0.62, f"✓ {modules} modules transformed."),
        (0.65, f"✓ built in {rng.uniform(3, 9):.2f}s"),
        (0.66, "$ bun run test:smoke"),
        (0.661, "$ node scripts/smoke.mjs"),
        (0.665, "smoke: wrangler dev ready on http://127.0.0.1:8787"),
        (0.67, "smoke: 4 of 4 checks passed"),
        (0.69, "$ bun run test:e2e"),
        (0.691, "$ playwright test"),
        (0.695, "Running 24 tests using 2 workers"),
        (0.71, f"  24 passed ({rng.uniform(0.8, 2.2):.1f}m)"),
        (0.72, "Success: Build command completed"),
        (0.74, f"Executing user deploy command: {meta['deploy_command']}"),
        (0.745, f" ⛅️ wrangler {WRANGLER}"),
        (0.86, f"Total Upload: {upload:.2f} KiB / gzip: {gzip:.2f} KiB"),
        (0.93, f"Uploaded {worker} ({uploaded:.2f} sec)"),
        (0.96, f"Deployed {worker} triggers ({deployed:.2f} sec)"),
        (0.97, f"Current Version ID: {version_id}"),
        (1.0, "Success: Build completed"),
    ]  # fmt: skip


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)
