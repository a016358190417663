"""D1 migrations: each environment's files against its database's ledger, and applying them.

What is compared (``survey``): for each environment, the wrangler file at the
head of the environment's branch is resolved for the environment whose Worker
it deploys; each ``d1_databases`` binding gives a database id, a folder, a
table and a pattern; the migration files are the blobs under that folder at the
same branch head; the ledger is the database's table, read through the query
API; the checksums are the ones the platform recorded when it applied a file
(``store/d1_ledger.py``). ``wrangler/migrations.classify`` puts each in a state.

What applying does (``apply``), as a deploy does: take the environment's lock
(the same one deploys, rotations and syncs take), read every fact fresh, check
every rule, audit the decision, and only when allowed apply the pending files
one at a time, each in one query request with its ledger row (as wrangler
does), recording its checksum once the ledger, read back, holds the file (a
success answer is not proof: a file whose ledger row did not land stops the run
unrecorded). The first error
stops the run: the ledger is read again (never inferred from the error), a file
it shows applied is recorded, later files are not sent. The outcome is audited
and the lock given back.

The rules (every one checked, every refusal audited with its evidence):

- ``no_active_incident``, ``deployment_window``, ``one_at_a_time``: the deploy
  rules (``domain/guards.decide_d1``; production only for the first two, as for
  deploys);
- ``d1_config``: the environment has D1 bindings, each with a database id; the
  two environments have the same bindings, and each binding the same
  ``migrations_dir``, ``migrations_table`` and ``migrations_pattern`` (else the
  two ledgers name different files);
- ``distinct_databases``: no database id is both staging's and production's;
- ``migrations_clean``: no file out of order, edited after apply, renamed, and
  no ledger row without its file, in this environment's database; no pending
  file its ledger row would fall into (an unterminated ``/*`` comment, string or
  quoted name, a trigger without ``END``: ``migrations.apply_sql``);
- ``staging_applied`` (production): staging applied the same set first — every
  file production would apply is in staging's ledger, with the checksum the
  platform recorded when it applied it to staging equal to the checksum of the
  file production would run.

A fact that cannot be read (git, wrangler file, Cloudflare, incident feed)
refuses the apply under ``facts``: never assumed fine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from devops_assets.config import PlatformConfig
from devops_assets.config_drift import WRANGLER_FILES
from devops_assets.delivery import audit
from devops_assets.delivery import facts as gather
from devops_assets.delivery.deployer import DeployFailed, DeployRefused, check_request
from devops_assets.delivery.runtime import Runtime
from devops_assets.domain import guards
from devops_assets.sources.cloudflare import CloudflareError, MalformedResponse
from devops_assets.sources.events import EventsError
from devops_assets.sources.git import GitError, _check_rev, _git
from devops_assets.sources.git_refs import read_blob, resolve_commit
from devops_assets.sources.statuspage import StatuspageError
from devops_assets.store.d1_ledger import ChecksumRecord
from devops_assets.store.warehouse import Warehouse, WarehouseWriteError
from devops_assets.wrangler import migrations as m
from devops_assets.wrangler.environments import load
from devops_assets.wrangler.files import WranglerConfigError

ACTION = "apply_d1_migrations"
ENVIRONMENTS = ("staging", "production")
TEXT_LIMIT = 500
D1_RULES = ("d1_config", "distinct_databases", "migrations_clean")
READ_ERRORS = (
    CloudflareError,
    GitError,
    WranglerConfigError,
    m.MigrationSettingsError,
    StatuspageError,
    EventsError,
    httpx.HTTPError,
    OSError,
)


class MigrationFailed(DeployFailed):
    """An allowed apply stopped on an error; the message says what the ledger shows."""


@dataclass
class DatabaseReport:
    """One binding's database: its files, ledger, recorded checksums and states."""

    target: m.D1Target
    files: list[m.MigrationFile]
    ledger: m.Ledger
    recorded: dict[str, str]
    status: m.MigrationStatus
    account_name: str  # the name the account gives the database id
    contents: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def pending_files(self) -> list[m.MigrationFile]:
        pending = set(self.status.pending)
        return [f for f in self.files if f.name in pending]


@dataclass
class EnvironmentReport:
    environment: str
    branch: str
    commit_sha: str
    wrangler_file: str
    databases: list[DatabaseReport]

    @property
    def where(self) -> str:
        return f"{self.branch}:{self.wrangler_file}"

    def database(self, binding: str) -> DatabaseReport | None:
        return next((d for d in self.databases if d.target.binding == binding), None)


@dataclass
class DatabaseResult:
    binding: str
    database_id: str
    applied: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    ledger_after: tuple[str, ...] | None = None  # None: could not be read


@dataclass
class D1Outcome:
    environment: str
    commit_sha: str
    decision: guards.Decision
    databases: list[DatabaseResult] = field(default_factory=list)

    @property
    def applied(self) -> list[str]:
        return [name for d in self.databases for name in d.applied]


# -- reading -----------------------------------------------------------------------


def survey(
    config: PlatformConfig, repo, client, warehouse: Warehouse, environment: str
) -> EnvironmentReport:
    """The environment's migration state, read now (raises one of ``READ_ERRORS``)."""
    try:
        env = config.environment(environment)
    except KeyError:
        raise m.MigrationSettingsError(
            f"{config.path}: no [environments.{environment}] table"
        ) from None
    branch = env.branches[0]
    sha = resolve_commit(repo, branch)
    names = (config.drift.wrangler_file,) if config.drift.wrangler_file else WRANGLER_FILES
    found = [(name, read_blob(repo, branch, name)) for name in names]
    found = [(name, data) for name, data in found if data is not None]
    if not found:
        raise WranglerConfigError(f"{branch}:{' or '.join(names)}", "(file)", "no such file")
    name, data = found[0]
    wrangler = load(f"{branch}:{name}", data)  # errors name the branch
    wrangler_env = wrangler.environment_of(env.worker or "")
    if wrangler_env is None:
        raise WranglerConfigError(
            f"{branch}:{name}", "env", f"no environment deploys Worker {env.worker}"
        )
    resolved = wrangler.resolve(wrangler_env)
    where = f"{branch}:{name}: " + (f"env.{wrangler_env}." if wrangler_env else "")
    targets = m.d1_targets(resolved.config, where)
    known = {d.get("uuid"): str(d.get("name") or "") for d in client.list_d1_databases()}
    databases = []
    for target in targets:
        if target.database_id not in known:
            raise m.MigrationSettingsError(
                f"{where}d1_databases: binding {target.binding}: database_id "
                f"{target.database_id} is not a D1 database of the account"
            )
        contents = migration_contents(repo, branch, target)
        files = m.from_contents(contents)
        ledger = read_ledger(client, target)
        recorded = warehouse.d1.recorded(environment, target.database_id)
        status = m.classify(files, ledger, recorded)
        databases.append(
            DatabaseReport(
                target, files, ledger, recorded, status, known[target.database_id], contents
            )
        )
    return EnvironmentReport(environment, branch, sha, name, databases)


def migration_contents(repo, branch: str, target: m.D1Target) -> dict[str, bytes]:
    """Name → bytes of the migration files at the head of ``branch``."""
    _check_rev(repo, branch)
    folder = target.migrations_dir
    args = ["ls-tree", "-r", "-z", "--name-only", "--end-of-options", f"refs/heads/{branch}"]
    out = _git(repo, [*args, "--", f"{folder}/" if folder else "."], "listing migrations")
    contents = {}
    for path in filter(None, out.decode("utf-8", "surrogateescape").split("\0")):
        name = path[len(folder) + 1 :] if folder else path
        if not m.matches(name, target.pattern):
            continue
        data = read_blob(repo, branch, path)
        if data is None:
            raise GitError(f"{branch}:{path} was listed but could not be read")
        contents[name] = data
    return contents


def read_ledger(client, target: m.D1Target) -> m.Ledger:
    """The database's migrations table (empty when the table does not exist yet).

    Each answer must be exactly what the statement gives: one statement result,
    whose rows have the columns asked for. Anything else (``result: []``, a row
    without its name) raises ``MalformedResponse``: never read as "no ledger",
    which would make every applied file pending again."""
    table = target.migrations_table
    endpoint = f"D1 query on {target.database_id} (does {table} exist)"
    exists = _one_result(client.d1_query(target.database_id, m.TABLE_EXISTS_SQL, [table]), endpoint)
    if len(exists) > 1:
        raise MalformedResponse(endpoint, "result[0].results", "at most one row", exists)
    for i, row in enumerate(exists):
        name = row.get("name") if isinstance(row, dict) else None
        if not isinstance(name, str) or name.lower() != table.lower():
            raise MalformedResponse(endpoint, f"result[0].results[{i}].name", repr(table), row)
    if not exists:
        return m.Ledger(())
    endpoint = f"D1 query on {target.database_id} (reading {table})"
    rows = _one_result(client.d1_query(target.database_id, m.read_ledger_sql(table)), endpoint)
    for i, row in enumerate(rows):
        if not (
            isinstance(row, dict)
            and isinstance(row.get("name"), str)
            and isinstance(row.get("id"), int)
            and not isinstance(row.get("id"), bool)
        ):
            raise MalformedResponse(
                endpoint, f"result[0].results[{i}]", "a row with an integer id and a name", row
            )
    return m.ledger_from_rows(rows)


def _one_result(answer: list[dict], endpoint: str) -> list:
    """The rows of a one-statement query's answer (exactly one statement result)."""
    if len(answer) != 1:
        raise MalformedResponse(endpoint, "result", "one statement result", answer)
    return answer[0]["results"]


# -- the rules ---------------------------------------------------------------------


def d1_refusals(environment: str, reports: Mapping[str, EnvironmentReport]) -> list[guards.Refusal]:
    """The D1 rules (see the module docstring) for an apply to ``environment``."""
    own = reports[environment]
    staging, production = reports["staging"], reports["production"]
    refusals = []
    problems = [] if own.databases else [f"{own.where}: {environment} has no D1 binding"]
    by_env = {e: {d.target.binding: d.target for d in reports[e].databases} for e in ENVIRONMENTS}
    for binding in sorted(by_env["staging"].keys() ^ by_env["production"].keys()):
        which = "staging" if binding in by_env["staging"] else "production"
        problems.append(f"binding {binding} exists in {which} only")
    for binding in sorted(by_env["staging"].keys() & by_env["production"].keys()):
        problems += m.settings_differ(by_env["staging"][binding], by_env["production"][binding])
    if problems:
        refusals.append(guards.Refusal("d1_config", "; ".join(problems)))
    shared = {d.target.database_id for d in staging.databases} & {
        d.target.database_id for d in production.databases
    }
    if shared:
        refusals.append(
            guards.Refusal(
                "distinct_databases",
                f"staging and production resolve to the same database {', '.join(sorted(shared))}",
            )
        )
    found = [
        f"binding {d.target.binding}: {f}" for d in own.databases for f in m.findings(d.status)
    ]
    for database in own.databases:  # a file that cannot be sent with its ledger row
        for migration in database.pending_files:
            data = database.contents.get(migration.name)
            problem = None if data is None else m.file_problem(migration.name, data)
            if problem:
                found.append(f"binding {database.target.binding}: {problem}")
    if found:
        refusals.append(guards.Refusal("migrations_clean", "; ".join(found)))
    if environment == "production":
        unproven = []
        for database in production.databases:
            twin = staging.database(database.target.binding)
            if twin is None:
                unproven.append(f"binding {database.target.binding} has no staging database")
                continue
            for problem in m.not_proven(database.pending_files, twin.ledger, twin.recorded):
                unproven.append(f"binding {database.target.binding}: {problem}")
        if unproven:
            refusals.append(guards.Refusal("staging_applied", "; ".join(unproven)))
    return refusals


def _checked(environment: str) -> tuple[str, ...]:
    extra = ("staging_applied",) if environment == "production" else ()
    shared = guards.D1_RULES if environment == "production" else guards.D1_STAGING_RULES
    return shared + D1_RULES + extra


# -- applying ----------------------------------------------------------------------


def apply(rt: Runtime, environment: str, requested_by: str, reason: str) -> D1Outcome:
    """Apply ``environment``'s pending migrations (see the module docstring)."""
    check_request(environment, requested_by, reason)
    try:
        branch = rt.config.environment(environment).branches[0]
        sha = resolve_commit(rt.repo, branch)
    except (GitError, KeyError) as exc:
        _refuse_unknown(rt, requested_by, environment, "", reason, exc)
    ledger = rt.warehouse.deploys
    holder = ledger.acquire(environment, rt.run_id, requested_by, sha, rt.now(), rt.is_active)
    try:
        try:
            reports = {
                e: survey(rt.config, rt.repo, rt.client, rt.warehouse, e) for e in ENVIRONMENTS
            }
            incidents = (
                gather.open_incidents(rt, environment) if environment == "production" else ()
            )
        except READ_ERRORS as exc:
            _refuse_unknown(rt, requested_by, environment, sha, reason, exc)
        own = reports[environment]
        sha = own.commit_sha
        settings = rt.config.deploy
        facts = guards.Facts(
            environment=environment,
            commit_sha=sha,
            now=rt.now(),
            timezone=rt.config.timezone,
            gate_steps=(),
            open_incidents=tuple(incidents),
            windows=settings.windows,
            freezes=settings.freezes,
            running_deploys=(holder,) if holder else (),
        )
        shared = guards.decide_d1(facts)
        refusals = shared.refusals + tuple(d1_refusals(environment, reports))
        decision = guards.Decision(not refusals, _checked(environment), refusals)
        plan = [
            {
                "binding": d.target.binding,
                "database_id": d.target.database_id,
                "database_name": d.account_name,
                "pending": list(d.status.pending),
            }
            for d in own.databases
        ]
        _decided(rt, requested_by, environment, sha, reason, decision, plan)
        if not decision.allowed:
            rt.notify(
                "migrations_refused", environment, sha, f"D1 migrations: {decision.summary()}"
            )
            raise DeployRefused(decision)
        outcome = D1Outcome(environment, sha, decision)
        for database in own.databases:
            rt.log.info(
                "%s: binding %s → database %s (%s), %d pending",
                environment,
                database.target.binding,
                database.target.database_id,
                database.account_name,
                len(database.status.pending),
            )
            result = _apply_database(rt, environment, sha, database, requested_by)
            outcome.databases.append(result)
            if result.error is not None:
                text = f"binding {result.binding}: {result.error}"[: TEXT_LIMIT * 2]
                _finished(rt, requested_by, environment, sha, "failed", text, outcome)
                rt.notify("migrations_failed", environment, sha, f"D1 migrations: {text}")
                raise MigrationFailed(f"{environment} D1 migrations stopped: {text}")
        applied = ", ".join(outcome.applied) or "nothing was pending"
        _finished(rt, requested_by, environment, sha, "succeeded", applied, outcome)
        if outcome.applied:
            rt.notify("migrations_applied", environment, sha, f"D1 migrations applied: {applied}")
        return outcome
    finally:
        if holder is None:
            ledger.release(environment, rt.run_id)


def _apply_database(
    rt: Runtime, environment: str, sha: str, database: DatabaseReport, actor: str
) -> DatabaseResult:
    target, client = database.target, rt.client
    result = DatabaseResult(target.binding, target.database_id)
    pending = database.pending_files
    if not pending:
        result.ledger_after = database.ledger.names
        return result
    try:
        client.d1_query(target.database_id, m.create_ledger_sql(target.migrations_table))
    except (CloudflareError, httpx.HTTPError) as exc:
        result.error = f"creating {target.migrations_table} failed: {exc}"
        return result
    for migration in pending:
        try:
            text = database.contents[migration.name].decode("utf-8")
        except UnicodeDecodeError:
            result.failed, result.error = migration.name, f"{migration.name} is not UTF-8 text"
            result.ledger_after = database.ledger.names + tuple(result.applied)
            return result
        try:
            sql = m.apply_sql(text, migration.name, target.migrations_table)
        except m.MigrationFileError as exc:
            result.failed, result.error = migration.name, str(exc)
            result.ledger_after = database.ledger.names + tuple(result.applied)
            return result
        try:
            client.d1_query(target.database_id, sql)
        except (CloudflareError, httpx.HTTPError) as exc:
            result.failed, result.error = migration.name, f"{migration.name} failed: {exc}"
            _after_error(rt, environment, sha, target, migration, actor, result)
            return result
        # the answer is not the proof: the ledger must now hold the file
        try:
            after = read_ledger(client, target)
        except (CloudflareError, httpx.HTTPError) as exc:
            result.failed = migration.name
            result.error = (
                f"{migration.name} was sent, but the ledger could not be read back ({exc}): "
                "state unknown, checksum not recorded"
            )
            return result
        result.ledger_after = after.names
        if migration.name not in after.names:
            result.failed = migration.name
            result.error = (
                f"{migration.name} was sent and the database answered success, but "
                f"{target.migrations_table} does not hold it (last: "
                f"{after.names[-1:] or 'none'}): not recorded; check the database by hand "
                "before running again (its SQL may have run)"
            )
            return result
        rt.log.info("%s: applied %s to %s", environment, migration.name, target.database_id)
        try:
            _record(rt, environment, sha, target, migration, actor)
        except WarehouseWriteError as exc:
            result.applied.append(migration.name)
            result.failed = migration.name
            result.error = f"{migration.name} was applied but its checksum was not recorded: {exc}"
            return result
        result.applied.append(migration.name)
    return result  # ledger_after: as read back after the last file


def _after_error(rt, environment, sha, target, migration, actor, result: DatabaseResult) -> None:
    """Read the ledger again after an error: it, not the error, says what happened."""
    try:
        after = read_ledger(rt.client, target)
    except (CloudflareError, httpx.HTTPError) as exc:
        result.error += f"; the ledger could not be read again ({exc}): state unknown"
        return
    result.ledger_after = after.names
    if migration.name in after.names:
        try:
            _record(rt, environment, sha, target, migration, actor)
        except WarehouseWriteError as exc:
            result.error += f"; the ledger shows it applied, but recording failed: {exc}"
            return
        result.applied.append(migration.name)
        result.error += "; the ledger shows it applied (checksum recorded)"
    else:
        result.error += f"; the ledger shows it not applied (last: {after.names[-1:] or 'none'})"


def _record(rt, environment, sha, target, migration: m.MigrationFile, actor) -> None:
    rt.warehouse.d1.record(
        [
            ChecksumRecord(
                environment,
                target.database_id,
                migration.name,
                migration.checksum,
                rt.now(),
                sha,
                rt.run_id,
                actor,
            )
        ]
    )


# -- audit -------------------------------------------------------------------------


def _decided(rt, actor, environment, subject, reason, decision: guards.Decision, plan) -> None:
    detail = {
        "checked": list(decision.checked),
        "refusals": [{"rule": r.rule, "evidence": r.evidence} for r in decision.refusals],
        "databases": plan,
    }
    outcome = "allowed" if decision.allowed else "refused"
    why = reason if decision.allowed else f"{reason} — {decision.summary()}"
    audit._append(rt, ACTION, actor, environment, subject, outcome, why[: TEXT_LIMIT * 4], detail)


def _finished(rt, actor, environment, subject, status, text, outcome: D1Outcome) -> None:
    detail = {
        "databases": [
            {
                "binding": d.binding,
                "database_id": d.database_id,
                "applied": d.applied,
                "failed": d.failed,
                "ledger_after": list(d.ledger_after) if d.ledger_after is not None else None,
            }
            for d in outcome.databases
        ]
    }
    audit._append(rt, ACTION, actor, environment, subject, status, text, detail)


def _refuse_unknown(rt, actor, environment, subject, reason, exc: Exception):
    refusal = guards.Refusal("facts", f"could not be read: {exc}"[:TEXT_LIMIT])
    decision = guards.Decision(False, ("facts",), (refusal,))
    _decided(rt, actor, environment, subject, reason, decision, [])
    rt.notify(
        "migrations_refused", environment, subject or "-", f"D1 migrations: {decision.summary()}"
    )
    raise DeployRefused(decision)
