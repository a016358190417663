# ruff: noqa: E501 (log lines are quoted verbatim, as long as the tools print them)
"""Hand-made Workers Builds logs, one per failure category, for the triage tests.

Each log follows the shape of a Cloudflare Workers Builds run: environment set-up,
``Installing project dependencies``, ``Executing user build command``, ``Executing user
deploy command``, and a closing ``Failed: …`` line. The tool output inside is written in
the style of the real tools (wrangler, bun, npm, tsc, Biome, ESLint, Prettier, Vitest,
Playwright). ``CASES`` maps a category to (log text, the line that must be in the evidence).
"""

from __future__ import annotations

PRELUDE = [
    "2025-06-02T09:14:03.512Z Initializing build environment...",
    "2025-06-02T09:14:07.881Z Success: Finished initializing build environment",
    "2025-06-02T09:14:08.102Z Cloning repository...",
    "2025-06-02T09:14:09.447Z Detected the following tools from environment: npm@10.8.2, nodejs@22.16.0",
]
INSTALL_OK = [
    "Installing project dependencies: npm clean-install --progress=false",
    "added 312 packages, and audited 313 packages in 9s",
    "found 0 vulnerabilities",
]
FAILED_BUILD = "Failed: error occurred while running build command"
FAILED_DEPLOY = "Failed: error occurred while running deploy command"


def workers_log(*body: str, install: bool = True) -> str:
    lines = [*PRELUDE, *(INSTALL_OK if install else []), *body]
    return "\n".join(lines) + "\n"


CASES: dict[str, tuple[str, str]] = {
    "dependency_install": (
        workers_log(
            "Installing project dependencies: bun install --frozen-lockfile",
            "bun install v1.2.15 (df017990)",
            "Resolving dependencies",
            "error: lockfile had changes, but lockfile is frozen",
            "note: try re-running without --frozen-lockfile and commit the updated lockfile",
            "Failed: error occurred while installing tools or dependencies",
            install=False,
        ),
        "error: lockfile had changes, but lockfile is frozen",
    ),
    "config": (
        workers_log(
            "Executing user deploy command: npx wrangler deploy",
            "",
            " ⛅️ wrangler 4.19.1",
            "───────────────────",
            "",
            "✘ [ERROR] Processing wrangler.jsonc configuration:",
            "",
            '    - "d1_databases[0]" bindings should have a string "binding" field but got {"database_name":"app-db"}.',
            "",
            FAILED_DEPLOY,
        ),
        "✘ [ERROR] Processing wrangler.jsonc configuration:",
    ),
    "compile": (
        workers_log(
            "Executing user build command: npm run build",
            "",
            "> edge-api@1.4.0 build",
            "> wrangler deploy --dry-run --outdir dist",
            "",
            '✘ [ERROR] Could not resolve "./routes/health"',
            "",
            "    src/index.ts:3:26:",
            '      3 │ import { health } from "./routes/health";',
            "        ╵                           ~~~~~~~~~~~~~~~~~",
            "",
            "✘ [ERROR] Build failed with 1 error:",
            FAILED_BUILD,
        ),
        '✘ [ERROR] Could not resolve "./routes/health"',
    ),
    "typecheck": (
        workers_log(
            "Executing user build command: npm run typecheck && npm run build",
            "",
            "> edge-api@1.4.0 typecheck",
            "> tsc --noEmit",
            "",
            "src/routes/users.ts(41,11): error TS2322: Type 'string' is not assignable to type 'number'.",
            "src/routes/users.ts(57,3): error TS2345: Argument of type 'undefined' is not assignable"
            " to parameter of type 'Env'.",
            "npm error Lifecycle script `typecheck` failed with error:",
            "npm error code 2",
            FAILED_BUILD,
        ),
        "src/routes/users.ts(41,11): error TS2322: Type 'string' is not assignable to type 'number'.",
    ),
    "lint": (
        workers_log(
            "Executing user build command: npm run lint && npm run build",
            "",
            "> edge-api@1.4.0 lint",
            "> biome lint ./src",
            "",
            "src/index.ts:12:9 lint/correctness/noUnusedVariables  FIXABLE  ━━━━━━━━━━━━━━━━━━━━━━━━━",
            "",
            "  ✖ This variable is unused.",
            "",
            "    11 │ export default {",
            "  > 12 │   const retries = 3;",
            "       │         ^^^^^^^",
            "",
            "Checked 14 files in 22ms. No fixes applied.",
            "Found 1 error.",
            "lint ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━",
            "",
            "  ✖ Some errors were emitted while running checks.",
            FAILED_BUILD,
        ),
        "  ✖ This variable is unused.",
    ),
    "format": (
        workers_log(
            "Executing user build command: npm run format:check && npm run build",
            "",
            "> edge-api@1.4.0 format:check",
            "> prettier --check .",
            "",
            "Checking formatting...",
            "[warn] src/routes/users.ts",
            "[warn] Code style issues found in the above file. Run Prettier with --write to fix.",
            FAILED_BUILD,
        ),
        "[warn] Code style issues found in the above file. Run Prettier with --write to fix.",
    ),
    "unit_test": (
        workers_log(
            "Executing user build command: npm test && npm run build",
            "",
            "> edge-api@1.4.0 test",
            "> vitest run",
            "",
            " RUN  v3.2.1 /opt/buildhome/repo",
            "",
            " ✓ test/env.test.ts (2 tests) 4ms",
            " ❯ test/index.test.ts (3 tests | 1 failed) 31ms",
            "   × worker > answers /hello with a greeting 18ms",
            "     → expected 'Hello' to be 'Hello World' // Object.is equality",
            "",
            " FAIL  test/index.test.ts > worker > answers /hello with a greeting",
            "AssertionError: expected 'Hello' to be 'Hello World' // Object.is equality",
            "",
            " ❯ test/index.test.ts:22:24",
            "",
            " Test Files  1 failed | 1 passed (2)",
            "      Tests  1 failed | 4 passed (5)",
            FAILED_BUILD,
        ),
        " FAIL  test/index.test.ts > worker > answers /hello with a greeting",
    ),
    "e2e_test": (
        workers_log(
            "Executing user build command: npm run build && npx playwright test",
            "",
            "Running 4 tests using 2 workers",
            "",
            "  ✘  2 [chromium] › tests/home.spec.ts:8:5 › home page shows the title (5.2s)",
            "",
            "  1) [chromium] › tests/home.spec.ts:8:5 › home page shows the title ─────────────",
            "",
            "    Error: Timed out 5000ms waiting for expect(locator).toHaveText(expected)",
            "",
            "    Locator: getByRole('heading', { level: 1 })",
            '    Expected string: "Edge API"',
            "",
            "  1 failed",
            "    [chromium] › tests/home.spec.ts:8:5 › home page shows the title ──────────────",
            "  3 passed (11.8s)",
            FAILED_BUILD,
        ),
        "    Error: Timed out 5000ms waiting for expect(locator).toHaveText(expected)",
    ),
    "smoke_test": (
        workers_log(
            "Executing user deploy command: npx wrangler deploy && npm run smoke",
            "Uploaded edge-api (3.21 sec)",
            "Deployed edge-api triggers (0.41 sec)",
            "  https://edge-api.example.workers.dev",
            "Current Version ID: 5b0c2f4e-8f7a-4d0e-9c1b-2a6f3e9d7c10",
            "",
            "> edge-api@1.4.0 smoke",
            "> node scripts/smoke.mjs https://edge-api.example.workers.dev",
            "",
            "smoke: GET /health -> 500 (expected 200)",
            "Error: smoke test failed: /health answered 500",
            FAILED_DEPLOY,
        ),
        "Error: smoke test failed: /health answered 500",
    ),
    "deploy": (
        workers_log(
            "Executing user deploy command: npx wrangler deploy",
            "Total Upload: 48.20 KiB / gzip: 11.02 KiB",
            "",
            "✘ [ERROR] A request to the Cloudflare API (/accounts/8d1e0a/workers/scripts/edge-api)"
            " failed.",
            "",
            "  Authentication error [code: 10000]",
            "",
            FAILED_DEPLOY,
        ),
        "  Authentication error [code: 10000]",
    ),
    "timeout": (
        workers_log(
            "Executing user build command: npm run build",
            "> edge-api@1.4.0 build",
            "> node scripts/prerender.mjs",
            "prerendering 1200 pages...",
            "Error: The build exceeded the maximum build time of 20 minutes and was stopped.",
            FAILED_BUILD,
        ),
        "Error: The build exceeded the maximum build time of 20 minutes and was stopped.",
    ),
    "infrastructure": (
        workers_log(
            "Installing project dependencies: npm clean-install --progress=false",
            "npm error code E503",
            "npm error 503 Service Unavailable - GET https://registry.npmjs.org/hono - Service Unavailable",
            "npm error A complete log of this run can be found in: /opt/buildhome/.npm/_logs/debug-0.log",
            "Failed: error occurred while installing tools or dependencies",
            install=False,
        ),
        "npm error code E503",
    ),
    "size_limit": (
        workers_log(
            "Executing user deploy command: npx wrangler deploy",
            "Total Upload: 11204.55 KiB / gzip: 3391.10 KiB",
            "",
            "✘ [ERROR] A request to the Cloudflare API (/accounts/8d1e0a/workers/scripts/edge-api)"
            " failed.",
            "",
            "  Your Worker exceeded the size limit of 3 MiB. Please upgrade to a paid plan to deploy"
            " Workers up to 10 MiB. [code: 10027]",
            "",
            FAILED_DEPLOY,
        ),
        "✘ [ERROR] A request to the Cloudflare API (/accounts/8d1e0a/workers/scripts/edge-api) failed.",
    ),
    "toolchain_version": (
        workers_log(
            "Executing user deploy command: npx wrangler deploy",
            "",
            "Wrangler requires at least Node.js v20.0.0. You are using v18.20.4."
            " Please update your version of Node.js.",
            "Error: Wrangler requires a newer version of Node.js",
            FAILED_DEPLOY,
        ),
        "Error: Wrangler requires a newer version of Node.js",
    ),
    "unknown": (
        workers_log(
            "Executing user build command: ./ci.sh",
            "collecting release notes",
            "writing CHANGELOG entry",
            FAILED_BUILD,
        ),
        "writing CHANGELOG entry",
    ),
}
