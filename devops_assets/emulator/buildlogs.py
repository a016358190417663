"""The log lines a Workers Builds build prints, as ``[epoch_ms, text]`` pairs.

Each line is stamped between the build's phase times; a failed build ends
with the error of the step that broke, a running one stops mid-way. Drawn
from a ``random.Random`` seeded with the build uuid, so a build's log is the
same every time it is generated.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

FAILURES = {
    # failure kind: (share of the run at which it breaks, error lines, closing line)
    "dependency": (
        0.30,
        ["npm error code ERESOLVE", "npm error ERESOLVE could not resolve the dependency tree"],
        "Failed: error occurred while installing tools or dependencies",
    ),
    "typescript": (
        0.65,
        ["src/gateway/index.ts(42,7): error TS2322: Type 'string' is not assignable to 'number'."],
        "Failed: error occurred while running build command",
    ),
    "test": (
        0.70,
        [" FAIL  test/gateway.test.ts > retries upstream calls",
         "AssertionError: expected 503 to be 200"],
        "Failed: error occurred while running build command",
    ),
    "memory": (
        0.60,
        ["FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"],
        "Failed: build exited with an out-of-memory error",
    ),
    "deploy": (
        0.90,
        ["✘ [ERROR] A request to the Cloudflare API failed.",
         "  Authentication error [code: 10000]"],
        "Failed: error occurred while running deploy command",
    ),
}  # fmt: skip


def build_log(
    build: dict, *, worker: str, failure: str | None, version_id: str | None
) -> list[list]:
    """The lines of ``build`` (an API build object) up to where it got."""
    rng = random.Random(build["build_uuid"])
    meta = build["build_trigger_metadata"]
    created = _parse(build["created_on"])
    lines = [[_ms(created), "Initializing build environment..."]]
    if not build["running_on"]:
        return lines
    start, stop = _parse(build["running_on"]), _parse(build["stopped_on"] or build["running_on"])
    if not build["stopped_on"]:
        stop = start + timedelta(seconds=150)
    steps = _steps(rng, meta, worker, version_id)
    if build["build_outcome"] == "fail":
        share, errors, closing = FAILURES[failure or "test"]
        steps = [s for s in steps if s[0] < share] + [(share, e) for e in errors] + [(1.0, closing)]
    elif build["build_outcome"] == "cancelled":
        steps = [s for s in steps if s[0] < 0.4] + [(1.0, "Build cancelled")]
    for share, text in steps:
        when = start + (stop - start) * share
        if build["stopped_on"] or when <= start + timedelta(seconds=60):
            lines.append([_ms(when), text])
    return lines


def _steps(rng: random.Random, meta: dict, worker: str, version_id: str | None) -> list:
    packages = rng.randint(380, 460)
    return [
        (0.0, "Success: Finished initializing build environment"),
        (0.01, "Cloning repository..."),
        (0.03, f"HEAD is now at {meta['commit_hash'][:7]} {meta['commit_message']}"),
        (0.04, "Success: Finished cloning repository files"),
        (0.06, "Detected the following tools from environment: npm@10.9.2, nodejs@22.16.0"),
        (0.07, "Installing project dependencies: npm clean-install --progress=false"),
        (0.34, f"added {packages} packages, and audited {packages + 1} packages"),
        (0.36, f"Executing user build command: {meta['build_command']}"),
        (0.69, f"✓ {rng.randint(110, 160)} modules transformed."),
        (0.72, "Success: Build command completed"),
        (0.74, f"Executing user deploy command: {meta['deploy_command']}"),
        (0.86, f"Total Upload: {rng.uniform(700, 900):.2f} KiB / "
               f"gzip: {rng.uniform(150, 220):.2f} KiB"),
        (0.93, f"Uploaded {worker} ({rng.uniform(2, 6):.2f} sec)"),
        (0.96, f"Deployed {worker} triggers ({rng.uniform(0.4, 1.5):.2f} sec)"),
        (0.97, f"Current Version ID: {version_id}"),
        (1.0, "Success: Build completed"),
    ]  # fmt: skip


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)
