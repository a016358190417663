"""Turn a played timeline into the API objects the emulator serves.

Field names and value styles follow the Builds and Workers APIs (see
``shared/reference/cloudflare-api.md``): builds with phase times in
milliseconds, versions and deployments with microseconds, one trigger per
worker, and the ``default_environment.script.tag`` of each Worker service.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from devops_assets.emulator import story
from devops_assets.emulator.buildlogs import build_log
from devops_assets.emulator.records import EnvSpec, SimBuild
from devops_assets.emulator.resources import digest, from_wrangler
from devops_assets.emulator.state import EmulatorState, iso_ms, iso_us
from devops_assets.emulator.timeline import Timeline

# The quality-gate steps of the demo's platform file, one bun script each, and the bundle.
BUILD_COMMAND = (
    "bun run lint && bun run format && bun run check && bun run test:unit && bun run build"
    " && bun run test:smoke && bun run test:e2e"
)
TOKEN_NAME = "moltworker build token"


def state_from_timeline(tl: Timeline, shas: dict[int, str], account_id: str) -> EmulatorState:
    """The account as the API shows it at the end of the simulated history."""
    envs = list(tl.envs.values())
    triggers = {env.tag: [trigger(env, tl)] for env in envs}
    builds, logs = {}, {}
    passed = {(b.env.tag, b.mark, b.created_on) for b in tl.builds if b.outcome == "success"}
    for sim in tl.builds:
        obj = build_object(sim, tl, shas, triggers[sim.env.tag][0])
        builds[sim.uuid] = obj
        rescued = any(
            (tag, mark) == (sim.env.tag, sim.mark) and when > sim.created_on
            for tag, mark, when in passed
        )
        logs[sim.uuid] = build_log(
            obj,
            worker=sim.env.worker,
            failure=sim.failure,
            version_id=sim.version_id,
            rescued=rescued,
            account_id=account_id,
        )
    versions = {env.worker: [] for env in envs}
    for v in tl.versions:
        versions[v.worker].append(version_object(v))
    deployments = {env.worker: [] for env in envs}
    for d in tl.deployments:
        deployments[d.env.worker].append(deployment_object(d))
    resources, digests = version_resources(tl)
    return EmulatorState(
        account_id=account_id,
        end=tl.end,
        scripts={env.tag: env.worker for env in envs},
        services={env.worker: service_object(env, tl) for env in envs},
        triggers=triggers,
        builds=builds,
        logs=logs,
        versions=versions,
        deployments=deployments,
        version_builds={v.id: v.build_uuid for v in tl.versions},
        environments={env.name: env.worker for env in envs},
        resources=resources,
        secret_digests=digests,
        databases=databases(tl),
    )


def seeded_secret_value(script: str, name: str) -> str:
    """The stand-in value a seeded secret was put with (only its digest is kept)."""
    return f"seeded:{script}:{name}"


def version_resources(tl: Timeline) -> tuple[dict[str, dict], dict[str, dict[str, str]]]:
    """Each version's resources, from the wrangler file of the commit its build built,
    with the secrets put before it; and the digests of those secrets per version."""
    marks = {b.uuid: b.mark for b in tl.builds}
    env_of = {env.worker: env.name for env in tl.envs.values()}
    resources, digests, secrets = {}, {}, {worker: [] for worker in env_of}
    for v in tl.versions:
        if v.secret and v.secret not in secrets[v.worker]:
            secrets[v.worker].append(v.secret)
        text = tl.trees[marks[v.build_uuid]]["wrangler.jsonc"]
        resources[v.id] = from_wrangler(text, env_of[v.worker], secrets[v.worker])
        digests[v.id] = {
            name: digest(seeded_secret_value(v.worker, name)) for name in secrets[v.worker]
        }
    return resources, digests


def databases(tl: Timeline) -> dict[str, dict]:
    """The D1 databases of the environments, created the day before the history starts."""
    created = iso_us(tl.start - timedelta(days=1))
    found = {}
    for env in tl.envs.values():
        name, database_id = story.D1_DATABASES[env.name]
        found[database_id] = {
            "uuid": database_id,
            "name": name,
            "version": "production",
            "created_at": created,
        }
    return found


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(("devops-assets", *parts))))


def trigger(env: EnvSpec, tl: Timeline) -> dict:
    """The one Builds trigger of ``env``'s worker: pushes to its branch deploy it."""
    created = iso_ms(tl.start - timedelta(days=1))
    deploy = "npx wrangler deploy" + ("" if env.name == "production" else f" --env {env.name}")
    return {
        "trigger_uuid": _uuid("trigger", env.tag),
        "trigger_name": f"Deploy {env.name}",
        "external_script_id": env.tag,
        "build_command": BUILD_COMMAND,
        "deploy_command": deploy,
        "root_directory": "/",
        "branch_includes": [env.branch],
        "branch_excludes": [],
        "path_includes": ["*"],
        "path_excludes": [],
        "build_caching_enabled": True,
        "created_on": created,
        "modified_on": created,
        "deleted_on": None,
        "repo_connection": {
            "repo_connection_uuid": _uuid("repo", story.ORG, story.REPO),
            "repo_id": "912345678",
            "repo_name": story.REPO,
            "provider_type": "github",
            "provider_account_id": "123456",
            "provider_account_name": story.ORG,
            "created_on": created,
            "modified_on": created,
            "deleted_on": None,
        },
        "build_token_uuid": _uuid("token", env.tag),
        "build_token_name": TOKEN_NAME,
    }


def build_object(sim: SimBuild, tl: Timeline, shas: dict[int, str], trig: dict) -> dict:
    """One simulated build as ``GET …/builds/builds/{uuid}`` returns it."""
    commit = tl.commits[sim.mark - 1]
    return make_build(
        sim.uuid,
        trig,
        status=sim.status,
        outcome=sim.outcome,
        phases=(sim.created_on, sim.initializing_on, sim.running_on, sim.stopped_on),
        branch=sim.env.branch,
        commit_hash=shas[sim.mark],
        message=commit.subject,
        author=commit.author.email,
        trigger_source=sim.trigger_source,
    )


def make_build(
    build_uuid: str,
    trig: dict,
    *,
    status: str,
    outcome: str | None,
    phases: tuple,
    branch: str,
    commit_hash: str,
    message: str,
    author: str,
    trigger_source: str = "push",
) -> dict:
    """A build object; ``phases`` are the created, initializing, running, stopped times."""
    metadata = {
        "build_trigger_source": trigger_source,
        "branch": branch,
        "commit_hash": commit_hash,
        "commit_message": message,
        "author": author,
        "build_command": trig["build_command"],
        "deploy_command": trig["deploy_command"],
        "root_directory": "/",
        "build_token_uuid": trig["build_token_uuid"],
        "build_token_name": trig["build_token_name"],
        "repo_name": story.REPO,
        "provider_account_name": story.ORG,
        "provider_type": "github",
        "environment_variables": {},
    }
    snapshot = {k: v for k, v in trig.items() if k not in ("build_token_uuid", "build_token_name")}
    created, initializing, running, stopped = (iso_ms(p) if p else None for p in phases)
    return {
        "build_uuid": build_uuid,
        "status": status,
        "build_outcome": outcome,
        "created_on": created,
        "initializing_on": initializing,
        "running_on": running,
        "stopped_on": stopped,
        "modified_on": iso_ms(max(p for p in phases if p is not None)),
        "build_trigger_metadata": metadata,
        "trigger": snapshot,
        "pull_request": None,
    }


def version_object(v) -> dict:
    """One version as ``GET …/workers/scripts/{name}/versions`` lists it."""
    return {
        "id": v.id,
        "number": v.number,
        "metadata": {
            "author_email": v.author_email,
            "author_id": hashlib.md5(v.author_email.encode(), usedforsecurity=False).hexdigest(),
            "created_on": iso_us(v.created_on),
            "modified_on": iso_us(v.created_on),
            "source": "wrangler",
            "hasPreview": False,
        },
        "annotations": {
            "workers/triggered_by": getattr(v, "triggered_by", "upload"),
            "workers/message": v.message[:100],
        },
    }


def deployment_object(d) -> dict:
    """One deployment as ``GET …/workers/scripts/{name}/deployments`` lists it."""
    return {
        "id": d.id,
        "source": "wrangler",
        "strategy": "percentage",
        "author_email": d.author_email,
        "created_on": iso_us(d.created_on),
        "annotations": {
            "workers/triggered_by": "rollback" if d.kind == "rollback" else "deployment",
            "workers/message": d.message[:1000],
        },
        "versions": [{"version_id": d.version_id, "percentage": 100}],
    }


def service_object(env: EnvSpec, tl: Timeline) -> dict:
    """``GET …/workers/services/{name}``: where Wrangler reads the worker's tag."""
    created = iso_us(tl.start - timedelta(days=30))
    script = {
        "id": env.worker,
        "tag": env.tag,
        "etag": hashlib.sha256(env.tag.encode()).hexdigest(),
        "handlers": ["fetch"],
        "created_on": created,
        "modified_on": created,
        "last_deployed_from": "wrangler",
        "usage_model": "standard",
    }
    default = {"environment": "production", "created_on": created, "modified_on": created}
    return {
        "id": env.worker,
        "default_environment": {**default, "script": script},
        "created_on": created,
        "modified_on": created,
    }
