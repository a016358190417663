"""The emulator's failing build logs: every failure variant renders a whole log that
stops at its step and ends with Workers Builds' closing line, and the triage reads
the category each variant was written to show. The demo's failed builds each show
one variant; the one a retry of the same commit rescued shows a flaky one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devops_assets.config import load_config
from devops_assets.emulator import load_app
from devops_assets.emulator.apistate import BUILD_COMMAND
from devops_assets.emulator.buildlogs import FAILURES, FLAKY, build_log, failure_for
from devops_assets.triage import triage

STEPS = load_config().quality_gate
VARIANTS = [(kind, f) for kind, fs in FAILURES.items() for f in fs] + [(None, f) for f in FLAKY]


def api_build(build_uuid: str, outcome: str) -> dict:
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    return {
        "build_uuid": build_uuid,
        "build_outcome": outcome,
        "created_on": start.isoformat(),
        "running_on": (start + timedelta(seconds=15)).isoformat(),
        "stopped_on": (start + timedelta(seconds=180)).isoformat(),
        "build_trigger_metadata": {
            "commit_hash": "3f" * 20,
            "commit_message": "feat(chat): resume sessions",
            "build_command": BUILD_COMMAND,
            "deploy_command": "npx wrangler deploy --env staging",
        },
    }


def uuid_showing(kind: str | None, variant) -> str:
    """A build uuid whose failure draws ``variant``."""
    for n in range(5000):
        build_uuid = f"00000000-0000-4000-8000-{n:012d}"
        if failure_for(build_uuid, kind, rescued=kind is None) is variant:
            return build_uuid
    raise AssertionError(f"no uuid draws {variant.category}")


def text_of(lines: list[list]) -> str:
    return "\n".join(text for _, text in lines)


@pytest.mark.parametrize(
    ("kind", "variant"),
    VARIANTS,
    ids=[f"{k or 'flaky'}-{v.category}-{i}" for i, (k, v) in enumerate(VARIANTS)],
)
def test_each_failure_variant_renders_a_log_the_triage_reads(kind, variant):
    build = api_build(uuid_showing(kind, variant), "fail")
    lines = build_log(
        build, worker="moltworker-staging", failure=kind, version_id=None, rescued=kind is None
    )
    texts = [text for _, text in lines]
    stamps = [stamp for stamp, _ in lines]
    assert stamps == sorted(stamps)
    assert texts[-1] == variant.closing and texts[-1].startswith("Failed: ")
    assert not any("{" in t and "}" in t and '"' not in t for t in texts), texts  # fields filled
    # the variant's lines close the log, printed together when the step broke
    broke = stamps[-len(variant.lines) - 1 : -1]
    assert len(set(broke)) == 1 and stamps[-len(variant.lines) - 2] <= broke[0]
    if variant.step != "install":
        assert "Success: Finished cloning repository files" in texts
    assert "Success: Build completed" not in texts
    passing = text_of(
        build_log(api_build("pass", "success"), worker="w", failure=None, version_id="v")
    )
    for compared in (None, passing):
        found = triage(text_of(lines), passing=compared, steps=STEPS)
        assert found.category == variant.category, (found, texts[-8:])


# For each variant, a piece of the line that states its failure (the check that got
# the wrong status, the compiler's error, the API's refusal): the evidence must show
# that line, not only what follows it. A new variant needs an entry here.
STATES = (
    "error: lockfile had changes, but lockfile is frozen",
    "Wrangler requires at least Node.js v20.0.0",
    'No version matching "^4.9.2" found for specifier "hono"',
    "src/routes/admin.ts:31:9 lint/style/useConst",
    "'session' is assigned a value but never used",
    "File content differs from formatting output",
    'Rollup failed to resolve import "@/lib/session"',
    "error TS2322: Type 'string' is not assignable to type 'number'.",
    "Error: expect(locator).toBeVisible() failed",
    "AssertionError: expected 503 to be 200",
    "smoke: GET /health answered 500, expected 200",
    "Authentication error [code: 10000]",
    'bindings must have a "database_id" field',
    "Your Worker exceeded the size limit of 10 MiB",
    "JavaScript heap out of memory",
    "smoke: timed out after 2 minutes waiting for",
    "error: ConnectionRefused downloading package manifest",
    "workers.api.error.unknown [code: 10013]",
    "the build container stopped responding",
)


def stating_piece(variant) -> str:
    """The piece of STATES found in ``variant``: on exactly one of its lines."""
    found = [piece for piece in STATES for line in variant.lines if piece in line]
    assert len(found) == 1, (variant.category, found)
    return found[0]


@pytest.mark.parametrize(
    ("kind", "variant"),
    VARIANTS,
    ids=[f"{k or 'flaky'}-{v.category}-{i}" for i, (k, v) in enumerate(VARIANTS)],
)
def test_the_evidence_of_each_variant_shows_the_line_that_states_the_failure(kind, variant):
    build = api_build(uuid_showing(kind, variant), "fail")
    lines = build_log(
        build, worker="moltworker-staging", failure=kind, version_id=None, rescued=kind is None
    )
    piece = stating_piece(variant)
    stated = next(n for n, (_, text) in enumerate(lines, 1) if piece in text)
    passing = text_of(
        build_log(api_build("pass", "success"), worker="w", failure=None, version_id="v")
    )
    for compared in (None, passing):
        found = triage(text_of(lines), passing=compared, steps=STEPS)
        assert found.evidence_start <= stated <= found.evidence_end, (found, stated)
        assert found.certain


def test_a_passing_log_runs_every_gate_step_and_deploys():
    texts = [
        t
        for _, t in build_log(
            api_build("ok", "success"), worker="moltworker", failure=None, version_id="v-1"
        )
    ]
    for step in STEPS:
        if step != "test:backend":
            assert f"$ bun run {step}" in texts, step
    assert texts[-2:] == ["Current Version ID: v-1", "Success: Build completed"]
    assert not any("error" in t.lower() for t in texts)


def test_the_demo_failures_show_variants_and_the_rescued_one_a_flaky_one(seeded):
    config, history = seeded
    app = load_app(config.cloudflare.emulator_state)
    failed = [b for b in history.builds if b["outcome"] == "fail"]
    flaky_lines = {f.lines[-1] for f in FLAKY}
    shown, rescued_seen = set(), 0
    for b in failed:
        texts = [t for _, t in app.state.logs[b["uuid"]]]
        rescued = any(
            o["outcome"] == "success"
            and o["worker"] == b["worker"]
            and o["commit_sha"] == b["commit_sha"]
            and o["created_on"] > b["created_on"]
            for o in history.builds
        )
        assert texts[-1].startswith("Failed: ")
        if rescued:
            rescued_seen += 1
            assert texts[-2] in flaky_lines
        shown.add(triage(text_of(app.state.logs[b["uuid"]]), steps=STEPS).category)
    assert rescued_seen >= 1
    assert len(shown) >= 6, shown  # the demo shows many kinds of failure
