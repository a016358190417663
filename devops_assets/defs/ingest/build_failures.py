"""Build failure triage: every failed Workers build, its log and why it failed.

A failed build's log is fetched once (the logs endpoint pages with a cursor; the
client follows it) and kept in the warehouse with secret-looking values masked.
Each run triages every stored failure again (``devops_assets.triage``): the
failing step, a category, the evidence lines and a signature that groups the same
failure across builds. When a passing build of the same worker and branch exists
(the newest one before the failure, else the first after it), its log is fetched
once too and given to the triage, so lines both logs share are never the cause.
Failures a retry of the same commit rescued are marked flaky
(``devops_assets.triage.flaky``).
"""

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg

from devops_assets.defs.resources import CloudflareResource, PlatformResource, WarehouseResource
from devops_assets.domain.engine import BuildArrays, build_counts
from devops_assets.domain.measure import builds_by_environment
from devops_assets.domain.models import Build
from devops_assets.domain.periods import Period
from devops_assets.sources.cloudflare import CloudflareError
from devops_assets.store.triage_ledger import StoredLog, TriageLedger, TriageRecord
from devops_assets.triage import CATEGORIES, triage
from devops_assets.triage.flaky import attempts_from_builds, flaky_attempts, signature_stats
from devops_assets.triage.mask import mask_lines

OWNERS = ["team:platform"]
SHOWN_FAILURES = 20  # failures written out in full in the metadata, newest first
REFUSED = frozenset({401, 403})  # the token may not read logs: no build's log is readable
TRIAGED_CHECK = "every_failed_build_triaged"

log = logging.getLogger(__name__)


def fetch_log(ledger: TriageLedger, client, build: Build, now: datetime) -> StoredLog | None:
    """The build's stored log, fetched (and stored, masked) when it is not stored yet.
    None when the API no longer has the build (404)."""
    stored = ledger.log(build.build_uuid)
    if stored is not None:
        return stored
    try:
        lines = client.build_log(build.build_uuid)
    except CloudflareError as exc:
        if exc.status != 404:
            raise
        return None
    # Masked as a whole: a private key's body lines are masked with its BEGIN line.
    text = "\n".join(mask_lines([_storable(line) for _, line in lines]))
    stored = StoredLog(build.build_uuid, build.worker, len(lines), text, now)
    ledger.store_logs([stored])
    return stored


# What no database text column takes: NUL (PostgreSQL refuses it) and lone UTF-16
# surrogates (not encodable as UTF-8), which a JSON log page may carry as escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(line: str) -> str:
    """The line with each unstorable character replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", line)


def triage_record(
    build: Build,
    failed_log: StoredLog,
    passing: tuple[Build, StoredLog] | None,
    steps: Sequence[str],
    now: datetime,
) -> TriageRecord:
    """The triage of one failed build from its stored log."""
    found = triage(
        failed_log.text, passing=passing[1].text if passing else None, steps=tuple(steps)
    )
    return TriageRecord(
        build_uuid=build.build_uuid,
        worker=build.worker,
        branch=build.branch,
        commit_sha=build.commit_sha,
        created_on=build.created_on,
        category=found.category,
        step=found.step,
        evidence_start=found.evidence_start,
        evidence_end=found.evidence_end,
        evidence=tuple(found.evidence),
        summary=found.summary,
        signature=found.signature,
        certain=found.certain,
        passing_build=passing[0].build_uuid if passing else None,
        triaged_at=now,
    )


def passing_build(build: Build, builds: Sequence[Build]) -> Build | None:
    """A passing build of the same worker and branch: the newest before ``build``,
    else the first after it."""
    passed = [
        b
        for b in builds
        if b.outcome == "success" and b.worker == build.worker and b.branch == build.branch
    ]
    before = [b for b in passed if b.created_on < build.created_on]
    if before:
        return max(before, key=lambda b: b.created_on)
    return min(passed, key=lambda b: b.created_on, default=None)


def triage_failures(
    ledger: TriageLedger,
    client,
    builds: Sequence[Build],
    steps: Sequence[str],
    now: Callable[[], datetime],
    warn: Callable[..., None] = log.warning,
) -> tuple[list[TriageRecord], int, list[str], dict[str, str]]:
    """Triage every failed build of ``builds``: the records, how many logs were fetched,
    the uuids of failed builds whose log the API no longer has, and build uuid → the
    API error for each build whose log could not be read this run (nothing of it is
    stored, so the next run asks again).

    Raises :class:`LogsRefused` when the API refused (401/403) every log this run
    asked for and gave none: the token, not a build, is at fault."""
    before = ledger.logged_builds()
    records, gone, unreadable, refused = [], [], {}, []
    for build in sorted((b for b in builds if b.outcome == "fail"), key=lambda b: b.created_on):
        try:
            record = triage_build(ledger, client, build, builds, steps, now(), warn)
        except CloudflareError as exc:
            unreadable[build.build_uuid] = str(exc)
            if exc.status in REFUSED:
                refused.append(exc)
            continue
        if record is None:
            gone.append(build.build_uuid)
        else:
            records.append(record)
    fetched = len(ledger.logged_builds() - before)
    if refused and len(refused) == len(unreadable) and fetched == 0 and not gone:
        raise LogsRefused(len(refused), refused[0])
    return records, fetched, gone, unreadable


class LogsRefused(Exception):
    """Every build log asked for was refused (401/403): the API token cannot read them."""

    def __init__(self, count: int, first: CloudflareError):
        super().__init__(
            f"Cloudflare refused all {count} build logs this run asked for "
            f"(HTTP {first.status}): the API token cannot read Workers Builds logs; "
            f"give it read access to Workers Builds, then materialize build_failures again. "
            f"First refusal: {first}"
        )


def triage_build(
    ledger: TriageLedger,
    client,
    build: Build,
    builds: Sequence[Build],
    steps: Sequence[str],
    now: datetime,
    warn: Callable[..., None] = log.warning,
) -> TriageRecord | None:
    """Triage one failed build now (its log and a passing one's fetched only when not
    stored yet) and store the record; None when the API no longer has its log."""
    failed_log = fetch_log(ledger, client, build, now)
    if failed_log is None:
        return None
    passing, other = None, passing_build(build, builds)
    if other is not None:
        try:
            passing_log = fetch_log(ledger, client, other, now)
        except CloudflareError as exc:
            # the failure is still triaged, on its own log; the next run asks again
            warn(
                "build %s: the passing build %s's log could not be read, triaged without it: %s",
                build.build_uuid,
                other.build_uuid,
                exc,
            )
            passing_log = None
        passing = (other, passing_log) if passing_log is not None else None
    record = triage_record(build, failed_log, passing, steps, now)
    stored = ledger.triage(build.build_uuid)
    if stored is not None and replace(stored, triaged_at=now) == record:
        return stored  # unchanged: the row (and when it was triaged) stays as it is
    ledger.record_triages([record])
    return record


def short_summary(record: TriageRecord) -> str:
    """The summary without the ``<category> in step <step>: `` it may start with."""
    prefix = f"{record.category} in step {record.step}: "
    summary = record.summary
    summary = summary[len(prefix) :] if summary.startswith(prefix) else summary
    return summary if len(summary) <= 160 else summary[:157] + "..."


def notice_text(record: TriageRecord) -> str:
    """The triage in one short line for a notice: category, step, evidence range and
    the summary (masked, like the evidence it quotes)."""
    return (
        f"triage: {record.category} in step {record.step}, log lines "
        f"{record.evidence_start}-{record.evidence_end}: {short_summary(record)}"
    )


@dg.asset(
    group_name="ingest",
    owners=OWNERS,
    kinds={"cloudflare", "sql"},
    deps=["workers_builds"],
    description="Each failed Workers build triaged from its log (fetched once): the failing "
    "step, a category, the evidence lines, a summary and a signature grouping the same "
    "failure across builds, with flaky failures marked.",
    check_specs=[
        dg.AssetCheckSpec(
            TRIAGED_CHECK,
            asset="build_failures",
            description="Every failed build's log was read and triaged (a build the API "
            "no longer has, 404, is reported but not held against it).",
        )
    ],
)
def build_failures(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    cloudflare: CloudflareResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """One row per failed build (build_uuid) in ``build_triages`` and one per fetched log
    in ``build_logs``. Only builds whose log is not stored are fetched."""
    config, store = platform.config, warehouse.warehouse
    ledger = TriageLedger(store)
    builds = [b for w in config.workers for b in store.builds(w.name)]
    client = cloudflare.client()
    try:
        records, fetched, gone, unreadable = triage_failures(
            ledger,
            client,
            builds,
            config.quality_gate,
            lambda: datetime.now(UTC),
            context.log.warning,
        )
    except LogsRefused as exc:
        raise dg.Failure(str(exc)) from None
    finally:
        client.close()
    for uuid in gone:
        context.log.warning("build %s is gone from the API (404): its log cannot be read", uuid)
    for uuid, error in unreadable.items():
        context.log.warning(
            "build %s: its log could not be read (next run tries again): %s", uuid, error
        )
    context.log.info("Triaged %d failed builds; fetched %d logs", len(records), fetched)
    end = config.as_of or datetime.now(UTC)
    health = Period("window", end - timedelta(days=config.health_window_days), end)
    metadata = _metadata(records, builds, fetched, len(gone), len(unreadable))
    metadata.update(_success_rates(builds_by_environment(config, builds), health))
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[_triaged_check(len(records), unreadable)],
    )


def _triaged_check(triaged: int, unreadable: dict[str, str]) -> dg.AssetCheckResult:
    if not unreadable:
        return dg.AssetCheckResult(
            check_name=TRIAGED_CHECK, passed=True, metadata={"triaged": triaged}
        )
    shown = sorted(unreadable.items())[:10]
    return dg.AssetCheckResult(
        check_name=TRIAGED_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(unreadable)} failed build log(s) could not be read this run; "
        "the next materialization asks again",
        metadata={
            "triaged": triaged,
            "unreadable": len(unreadable),
            "errors": dg.MetadataValue.md(
                "\n".join(f"- `{uuid}`: {error}" for uuid, error in shown)
            ),
        },
    )


def _metadata(
    records: list[TriageRecord],
    builds: list[Build],
    fetched: int,
    gone: int,
    unreadable: int = 0,
) -> dict:
    signatures = {r.build_uuid: r.signature for r in records}
    attempts = attempts_from_builds(builds, signatures)
    flaky = {a.build_id for a in flaky_attempts(attempts)}
    stats = [s for s in signature_stats(attempts) if s.signature is not None]
    counts = Counter(r.category for r in records)
    metadata: dict = {
        "failed_builds": len(records) + gone + unreadable,
        "triaged": len(records),
        "logs_fetched": fetched,
        "logs_missing": gone,
        "logs_unreadable": unreadable,
        "flaky_failures": sum(r.build_uuid in flaky for r in records),
        "signatures": len(stats),
    }
    # one number per category, so the UI plots each across materializations
    metadata.update({f"category.{c}": counts.get(c, 0) for c in CATEGORIES})
    metadata["by_category"] = dg.MetadataValue.md(_categories_md(counts))
    metadata["signature_table"] = dg.MetadataValue.md(_signatures_md(stats, records))
    if records:  # short enough for the UI to show inline, above the long tables
        newest = max(records, key=lambda r: (r.created_on, r.build_uuid))
        metadata["newest_failure"] = dg.MetadataValue.md(
            f"**{newest.category}** in step **{newest.step}** of {newest.worker} "
            f"`{newest.build_uuid[:8]}` ({newest.created_on:%Y-%m-%d %H:%M} UTC): "
            f"{short_summary(newest)}"
        )
    metadata["failures"] = dg.MetadataValue.md(_failures_md(records, flaky, stats))
    return metadata


def _success_rates(by_environment: dict[str, list[Build]], health: Period) -> dict:
    """Each environment's build success rate over the health window, with and without
    the failures a retry of the same commit rescued: the metric engine's own counts
    (``build_counts``), so they are the figures dora_metrics and pipeline_health show
    for the same window (docs/metrics.md)."""
    rows = [
        f"Build success rate, {health.start:%Y-%m-%d %H:%M} → {health.end:%Y-%m-%d %H:%M} UTC "
        "(builds counted when they stopped)",
        "",
        "| environment | builds | failures | flaky | with flaky | without flaky |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    metadata: dict = {}
    for env, builds in sorted(by_environment.items()):
        counts = build_counts(
            BuildArrays.from_builds(builds).before(health.end.timestamp()), health
        )
        rate, without = counts.success_rate, counts.success_rate_without_flaky
        if rate is None:
            continue
        # percentages, short keys: the UI's metadata table plots them and shows them whole
        metadata[f"{env} success [%]"] = round(rate * 100, 2)
        if without is not None:
            metadata[f"{env} without flaky [%]"] = round(without * 100, 2)
        rows.append(
            f"| {env} | {counts.successes + counts.failures} | {counts.failures} "
            f"| {counts.flaky} | {rate:.1%} | {'—' if without is None else f'{without:.1%}'} |"
        )
    metadata["build_success_rate"] = dg.MetadataValue.md("\n".join(rows))
    return metadata


def _categories_md(counts: Counter) -> str:
    if not counts:
        return "No failed build."
    rows = ["| category | failures | |", "|---|---:|---|"]
    for category, n in counts.most_common():
        rows.append(f"| {category} | {n} | {'█' * n} |")
    return "\n".join(rows)


def _signatures_md(stats, records: list[TriageRecord]) -> str:
    if not stats:
        return "No failure signature yet."
    by_signature = {r.signature: r for r in records}
    rows = [
        "| signature | category | step | seen | flaky | flaky rate | first seen | first build "
        "| last seen |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for s in stats:
        r = by_signature.get(s.signature)
        rows.append(
            f"| `{s.signature}` | {r.category if r else ''} | {r.step if r else ''} "
            f"| {s.failures} | {s.flaky_failures} | {s.flaky_rate:.0%} | {s.first_seen:%Y-%m-%d} "
            f"| `{s.builds[0]}` | {s.last_seen:%Y-%m-%d} |"
        )
    return "\n".join(rows)


def _failures_md(records: list[TriageRecord], flaky: set[str], stats) -> str:
    """The newest failures in full. "Seen N times since …, first in build …" comes from
    the signature table's own figures, so the two never name different first builds."""
    if not records:
        return "No failed build."
    seen = {s.signature: s for s in stats}
    parts = []
    for r in sorted(records, key=lambda r: (r.created_on, r.build_uuid), reverse=True)[
        :SHOWN_FAILURES
    ]:
        group = seen.get(r.signature)
        if group is None:  # not a finished build (never the case for a stored triage)
            continue
        mark = " — **flaky** (a retry of the same commit passed)" if r.build_uuid in flaky else ""
        code = "\n".join(
            f"{n:>5} | {line}".replace("```", "'''")
            for n, line in enumerate(r.evidence, start=r.evidence_start)
        )
        parts.append(
            f"### {r.worker} `{r.build_uuid}` ({r.branch} at {r.commit_sha[:12]}, "
            f"{r.created_on:%Y-%m-%d %H:%M} UTC){mark}\n\n"
            f"**{r.category}** in step **{r.step}**: {short_summary(r)}\n\n"
            f"Signature `{r.signature}`: seen {_times(group.failures)} since "
            f"{group.first_seen:%d %b %Y}, first in build `{group.builds[0]}`.\n\n"
            f"Evidence, log lines {r.evidence_start}-{r.evidence_end}:\n\n```\n{code}\n```"
        )
    return "\n\n".join(parts)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")
