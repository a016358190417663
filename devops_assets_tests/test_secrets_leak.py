"""No secret value anywhere: rotations run through a real Dagster instance whose run
and event storage is PostgreSQL, with compute logs on disk and the warehouse on
PostgreSQL; then every place a value could land is scanned.

Places: every table of the Dagster database (event log, runs with their config…),
every file under DAGSTER_HOME (compute logs), every warehouse table (all of
METADATA), the notices file, the workspace (emulator state, git), and what the
test captured (file descriptors 1 and 2, including the step subprocesses, and
log records at DEBUG).

A value from a variable is known: it is searched for directly. A generated value
is not: every run of the policy's charset at least the policy's length is cut
into windows of that length, each window hashed, and the hashes compared with
the digest the emulator stored for the new version: 0 matches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets as random
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from devops_assets.config_secrets import CHARSETS
from devops_assets.defs import build_definitions
from devops_assets.domain.secrets import generate
from devops_assets.store.tables import METADATA
from devops_assets_tests.concurrency_fixtures import deploy_bed

GATEWAY, ANTHROPIC = "MOLTBOT_GATEWAY_TOKEN", "ANTHROPIC_API_KEY"
NEXT_KEY = "MOLTWORKER_NEXT_ANTHROPIC_API_KEY"
CISO, LEAD = "ciso@moltworker.example", "security-lead@moltworker.example"
OPS = "ops@moltworker.example"
WORKERS = {"staging": "moltworker-staging", "production": "moltworker"}
LOUD = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


# Jobs rebuilt in each step process (multiprocess executor: compute logs on disk).
def request_job():
    return build_definitions().resolve_job_def("request_secret_rotation")


def approve_job():
    return build_definitions().resolve_job_def("approve_secret_rotation")


def rotate_job():
    return build_definitions().resolve_job_def("rotate_secrets")


def _launch(instance, job_fn, op: str, config: dict) -> dg.ExecutionResult | None:
    run_config = {"ops": {op: {"config": config}}, **LOUD}
    job = job_fn()
    with dg.execute_job(
        dg.reconstructable(job_fn), instance, run_config=run_config, tags=dict(job.tags)
    ) as result:
        assert result.success, [
            e.step_failure_data.error.message for e in result.all_events if e.is_step_failure
        ]
        return result.output_for_node(op)


def _rotate(bed, environment: str, secret: str, in_process: bool = False) -> str:
    """Request, approve and rotate one secret through the jobs; the new version id."""
    instance = bed.instance
    asked = {"requested_by": OPS, "environment": environment, "secret": secret, "reason": "leak"}
    [request_id] = _launch(instance, request_job, "request_due_rotations", asked)
    approval = _launch(
        instance, approve_job, "approve_rotation", {"request_id": request_id, "approver": CISO}
    )
    config = {"request_id": request_id, "approval_id": approval, "requested_by": LEAD}
    if in_process:
        job = bed.defs.resolve_job_def("rotate_secrets")
        result = job.execute_in_process(
            run_config={"ops": {"rotate_secret": {"config": config}}, **LOUD},
            instance=instance,
            tags=dict(job.tags),
        )
        assert result.success
        return result.output_for_node("rotate_secret")
    return _launch(instance, rotate_job, "rotate_secret", config)


# -- the scan ------------------------------------------------------------------------


def _dagster_database() -> dict[str, str]:
    engine = sa.create_engine(os.environ["DAGSTER_PG_URL"], poolclass=sa.pool.NullPool)
    found = {}
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ).scalars()
        for table in list(tables):
            rows = conn.exec_driver_sql(f'SELECT CAST(t AS text) FROM "{table}" AS t').scalars()
            found[f"dagster:{table}"] = "\n".join(rows)
    engine.dispose()
    assert "dagster:event_logs" in found and found["dagster:event_logs"]
    return found


def _files(root: Path, label: str) -> dict[str, bytes]:
    return {
        f"{label}:{path.relative_to(root)}": path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _warehouse(bed) -> dict[str, str]:
    return {
        f"warehouse:{name}": "\n".join(map(repr, bed.warehouse.snapshot(name)))
        for name in sorted(METADATA.tables)
    }


def _text(blob: str | bytes) -> str:
    return blob.decode("latin-1") if isinstance(blob, bytes) else blob


def value_hits(places: dict[str, str | bytes], value: str) -> list[str]:
    return [where for where, blob in places.items() if value in _text(blob)]


def digest_hits(places: dict[str, str | bytes], alphabet: str, length: int, digests) -> list[str]:
    """Places holding a window of ``length`` characters of ``alphabet`` whose sha256
    is one of ``digests``."""
    run = re.compile(f"[{re.escape(alphabet)}]{{{length},}}")
    hits = []
    for where, blob in places.items():
        for match in run.finditer(_text(blob)):
            token = match.group()
            for i in range(len(token) - length + 1):
                if hashlib.sha256(token[i : i + length].encode()).hexdigest() in digests:
                    hits.append(where)
    return hits


def test_the_scanner_finds_what_it_looks_for():
    alphabet = CHARSETS["alphanumeric"]
    value = generate(48, alphabet)
    digest = hashlib.sha256(value.encode()).hexdigest()
    places = {"a": f"x{value}y", "b": b"nothing", "c": f"..{value[:47]}.."}
    assert digest_hits(places, alphabet, 48, {digest}) == ["a"]
    assert value_hits(places, value) == ["a"]


@pytest.fixture
def bed(tmp_path: Path, postgres_server, fresh_postgres_db):
    with deploy_bed(tmp_path / "home", postgres_server, fresh_postgres_db) as made:
        yield made


def test_no_rotated_value_reaches_any_log_event_table_or_notice(bed, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    settings = bed.config.secrets
    app = bed.world.app

    # 1. a generated value (staging gateway token), in step subprocesses
    generated_version = _rotate(bed, "staging", GATEWAY)
    generated_digest = app().secret_digest(WORKERS["staging"], generated_version, GATEWAY)
    assert generated_digest

    # 2. values from a variable, known to the test: one in subprocesses, one in process
    known = []
    for environment, in_process in (("staging", False), ("production", True)):
        value = random.token_urlsafe(36)
        known.append(value)
        monkeypatch.setenv(NEXT_KEY, value)
        version = _rotate(bed, environment, ANTHROPIC, in_process=in_process)
        stored = app().secret_digest(WORKERS[environment], version, ANTHROPIC)
        assert stored == hashlib.sha256(value.encode()).hexdigest()
    monkeypatch.delenv(NEXT_KEY)

    # the rotation jobs refreshed the inventory: each rotated secret has a known age
    rows = {(r.environment, r.secret): r for r in bed.warehouse.secrets.inventory()}
    for key in (("staging", GATEWAY), ("staging", ANTHROPIC), ("production", ANTHROPIC)):
        assert rows[key].status == "ok" and rows[key].last_rotated_at is not None, key
    assert rows[("production", GATEWAY)].status == "unknown_age"
    assert len(bed.warehouse.secrets.requests("rotated")) == 3

    dagster_home = Path(os.environ["DAGSTER_HOME"])
    compute_logs = _files(dagster_home, "dagster_home")
    assert any("compute_logs" in k or k.endswith((".err", ".out")) for k in compute_logs), sorted(
        compute_logs
    )[:20]
    captured = [v for k, v in compute_logs.items() if k.endswith(".err") and b"rotate_secret" in v]
    assert captured, "the rotation's step logs are in compute log files"
    notices = Path(bed.config.deploy.notify_file)
    assert notices.exists()
    out, err = capfd.readouterr()
    places: dict[str, str | bytes] = {
        **_dagster_database(),
        **compute_logs,
        **_warehouse(bed),
        "notices": notices.read_bytes(),
        **_files(bed.world.home, "workspace"),
        "stdout": out,
        "stderr": err,
        "caplog": caplog.text,
    }
    assert len(places) > 40
    assert "staged version" in places["dagster:event_logs"]  # the run's own log lines

    for value in known:
        assert value_hits(places, value) == []
    digests = {generated_digest} | {hashlib.sha256(v.encode()).hexdigest() for v in known}
    length, alphabet = settings.generator_length, CHARSETS[settings.generator_charset]
    assert digest_hits(places, alphabet, length, digests) == []
    urlsafe = CHARSETS["urlsafe"]
    for value in known:
        assert digest_hits(places, urlsafe, len(value), digests) == []
    # what the audit and the inventory did record
    actions = [(e.action, e.outcome) for e in bed.warehouse.audit_log()]
    assert actions.count(("rotate_secret", "succeeded")) == 3
