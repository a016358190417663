"""``d1_migrations``: every environment's migration files and ledger rows, each in a state.

Read only: the ledger is read through the query API (a database without the
table has an empty ledger; nothing is created). An environment whose state
cannot be read is shown as unknown and fails the check: an error is never
taken for "nothing pending".
"""

import dagster as dg

from devops_assets.defs.resources import (
    CloudflareResource,
    GitResource,
    PlatformResource,
    WarehouseResource,
)
from devops_assets.delivery import d1
from devops_assets.wrangler import migrations as m

CHECK = "migrations_consistent"
KEY = dg.AssetKey("d1_migrations")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def environment_markdown(report: d1.EnvironmentReport) -> str:
    parts = [f"Files at `{report.where}` ({report.commit_sha[:12]})."]
    if not report.databases:
        parts.append("No D1 binding.")
    for database in report.databases:
        t = database.target
        parts.append(
            f"\n**{t.binding}** → `{t.database_id}` ({_cell(database.account_name or '?')}), "
            f"`{t.migrations_dir}/{t.pattern}`, table `{t.migrations_table}`\n"
        )
        checksums = {f.name: f.checksum for f in database.files}
        rows = [
            "| migration | state | file checksum | recorded at apply |",
            "| --- | --- | --- | --- |",
        ]
        for name, state in m.states(database.files, database.ledger, database.status):
            file_sum = checksums.get(name, "")[:12] or "—"
            recorded = database.recorded.get(name, "")[:12] or "—"
            rows.append(f"| `{_cell(name)}` | {state} | `{file_sum}` | `{recorded}` |")
        parts.append("\n".join(rows))
    return "\n".join(parts)


def survey_metadata(reports: dict, errors: dict[str, str]) -> tuple[dict, list[str]]:
    """Asset metadata for every environment, and the problems that fail the check."""
    metadata: dict = {}
    problems: list[str] = []
    for environment in d1.ENVIRONMENTS:
        if environment in errors:
            metadata[f"{environment}_state"] = dg.MetadataValue.md(
                f"Unknown: {_cell(errors[environment])}"
            )
            problems.append(f"{environment}: unknown ({errors[environment]})")
            continue
        report = reports[environment]
        counts = {
            "applied": 0,
            "pending": 0,
            "out_of_order": 0,
            "edited": 0,
            "renamed": 0,
            "missing": 0,
        }
        for database in report.databases:
            s = database.status
            counts["applied"] += len(s.applied)
            counts["pending"] += len(s.pending)
            counts["out_of_order"] += len(s.out_of_order)
            counts["edited"] += len(s.edited)
            counts["renamed"] += len(s.renamed)
            counts["missing"] += len(s.missing)
            problems += [f"{environment} {database.target.binding}: {f}" for f in m.findings(s)]
        for state, count in counts.items():
            metadata[f"{environment}_{state}"] = count
        metadata[f"{environment}_state"] = dg.MetadataValue.md(environment_markdown(report))
    if not errors:
        for refusal in d1.d1_refusals("staging", reports):
            if refusal.rule in ("d1_config", "distinct_databases"):
                problems.append(f"{refusal.rule}: {refusal.evidence}")
    return metadata, problems


@dg.asset(
    key=KEY,
    group_name="environments",
    owners=["team:platform"],
    kinds={"cloudflare", "git", "sql"},
    description="D1 migrations per environment: the files under migrations_dir at the head "
    "of the environment's branch (wrangler's naming and order, checksums the platform "
    "records when it applies them) against the d1_migrations table of the environment's "
    "database, read by database id through the query API. Each file is applied, pending, "
    "out of order, edited after apply, renamed or missing.",
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset=KEY,
            description="Fails on a file out of order, edited after apply, renamed, or a "
            "ledger row without its file; on an environment that cannot be read; and when "
            "the environments' D1 settings differ or share a database.",
        )
    ],
)
def d1_migrations(
    context: dg.AssetExecutionContext,
    platform: PlatformResource,
    git_repo: GitResource,
    cloudflare: CloudflareResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    config = platform.config
    repo = git_repo.local_path()
    client = cloudflare.client()
    reports, errors = {}, {}
    try:
        for environment in d1.ENVIRONMENTS:
            try:
                reports[environment] = d1.survey(
                    config, repo, client, warehouse.warehouse, environment
                )
            except d1.READ_ERRORS as exc:
                errors[environment] = str(exc)[:500]
                context.log.warning("%s: D1 state unknown: %s", environment, exc)
    finally:
        client.close()
    metadata, problems = survey_metadata(reports, errors)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=not problems,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")
                },
            )
        ],
    )
