"""Worker secrets (cloudflare-api.md §7, secrets-drift-migrations.md B1–B3).

Secrets are ``secret_text`` bindings of a version. ``PUT …/secrets`` and
``DELETE …/secrets/{name}`` make a new version from the latest one and deploy
it at 100 % at once (``workers/triggered_by: secret``), and are refused with
10215 while the latest version is not the one deployed alone. ``PATCH
…/workers/workers/{name}/versions/latest`` (merge-patch ``{env: {NAME:
{type, text} | null}, annotations}``) makes the new version and leaves it
undeployed. ``GET …/secrets`` lists the names of the latest version.

A new version keeps the code, and so the build and /health answer, of the
version it was made from. Of a secret value only its sha256 digest is kept.
Errors: 10007 unknown Worker, 10053 the name is bound to something that is
not a secret, 10056 no such secret, 10215 latest version not deployed, 10222
no versions; 10001 a body that is not what the endpoint takes, or a secret
text longer than Cloudflare's 5 KiB limit on one secret (``SECRET_TEXT_LIMIT``,
counted in UTF-8 bytes; nothing is changed).
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid

from devops_assets.emulator.builds_api import ACCOUNT
from devops_assets.emulator.resources import SECRET_TYPES, digest, with_secret
from devops_assets.emulator.state import iso_us
from devops_assets.emulator.wire import (
    BAD_BODY,
    NOT_FOUND_WORKERS,
    ApiError,
    Reply,
    Request,
    ok,
)

NAME_IN_USE = 10053
SECRET_NOT_FOUND = 10056
LATEST_NOT_DEPLOYED = 10215
SETTINGS_LATEST_NOT_DEPLOYED = 10214
NO_VERSIONS = 10222
SECRET_TEXT_LIMIT = 5 * 1024  # bytes of one secret's text (Workers limits: 5 KiB)
SCRIPT = ACCOUNT + r"/workers/scripts/(?P<script>[^/]+)"
EMPTY_RUNTIME = {
    "compatibility_date": "",
    "compatibility_flags": [],
    "usage_model": "standard",
    "limits": {"cpu_ms": 30000},
}


# -- endpoints -------------------------------------------------------------------


def list_secrets(app, req: Request, account_id: str, script: str) -> Reply:
    _script(app.state, script)
    latest = app.state.latest_version(script)
    if latest is None:
        return ok([])
    bindings = resources_of(app.state, latest["id"])["bindings"]
    return ok(
        [{"name": b["name"], "type": b["type"]} for b in bindings if b["type"] in SECRET_TYPES]
    )


def put_secret(app, req: Request, account_id: str, script: str) -> Reply:
    """Upsert one secret: a new version, deployed at once."""
    _script(app.state, script)
    body = _json_body(req)
    name, text, kind = body.get("name"), body.get("text"), body.get("type")
    if not isinstance(name, str) or not name or not isinstance(text, str):
        raise ApiError(400, BAD_BODY, "The body must hold the secret's 'name' and 'text'")
    if kind != "secret_text":
        raise ApiError(400, BAD_BODY, "Only secrets of type 'secret_text' are supported")
    _within_limit(name, text)
    change_deployed(app, script, {name: digest(text)}, app.user_email, source="api")
    return ok({"name": name, "type": "secret_text"})


def delete_secret(app, req: Request, account_id: str, script: str, name: str) -> Reply:
    """Remove one secret: a new version, deployed at once; ``result`` is null."""
    _script(app.state, script)
    change_deployed(app, script, {name: None}, app.user_email, source="api")
    return ok(None)


def patch_latest(app, req: Request, account_id: str, script: str) -> Reply:
    """A new version from the latest one with the secrets changed; not deployed."""
    _script(app.state, script)
    body = _json_body(req)
    env, annotations = body.get("env") or {}, body.get("annotations") or {}
    if not isinstance(env, dict) or not isinstance(annotations, dict):
        raise ApiError(400, BAD_BODY, "'env' and 'annotations' must be objects")
    changes = {}
    for name, value in env.items():
        if value is None:
            changes[name] = None
        elif (
            isinstance(value, dict)
            and value.get("type") == "secret_text"
            and isinstance(value.get("text"), str)
        ):
            _within_limit(name, value["text"])
            changes[name] = digest(value["text"])
        else:
            raise ApiError(
                400, BAD_BODY, f"env.{name}: expected {{type: secret_text, text}} or null"
            )
    latest = app.state.latest_version(script)
    if latest is None:
        raise ApiError(400, NO_VERSIONS, f"Worker {script} has no versions to build on")
    message = annotations.get("workers/message") or _default_message(changes)
    version = derive_version(
        app,
        script,
        latest,
        changes,
        author=app.user_email,
        message=str(message),
        source="api",
        tag=annotations.get("workers/tag"),
    )
    return ok(version_detail(app.state, version))


# -- shared with the controls ------------------------------------------------------


def resources_of(state, version_id: str) -> dict:
    """The stored resources of a version (an empty set for one that has none)."""
    found = state.resources.get(version_id)
    if found is not None:
        return found
    return {
        "bindings": [],
        "script_runtime": copy.deepcopy(EMPTY_RUNTIME),
        "settings": {"logpush": False, "placement": {}, "tags": [], "tail_consumers": []},
    }


def version_detail(state, version: dict) -> dict:
    """``GET …/versions/{id}``'s result: the version with its ``resources``."""
    stored = resources_of(state, version["id"])
    return {
        **version,
        "resources": {
            "bindings": copy.deepcopy(stored["bindings"]),
            "script": {
                "etag": version["id"].replace("-", ""),
                "handlers": ["fetch"],
                "last_deployed_from": version["metadata"]["source"],
            },
            "script_runtime": copy.deepcopy(stored["script_runtime"]),
        },
    }


def deployed_alone(state, script: str) -> dict | None:
    """The latest version when the latest deployment serves it alone at 100 %, else None."""
    latest = state.latest_version(script)
    deployments = state.deployments.get(script) or []
    if latest is None or not deployments:
        return None
    shares = deployments[-1]["versions"]
    if len(shares) == 1 and shares[0]["version_id"] == latest["id"]:
        return latest
    return None


def change_deployed(
    app, script: str, changes: dict[str, str | None], author: str, *, source: str
) -> dict:
    """``PUT``/``DELETE …/secrets``: a new version from the deployed latest one, with
    ``changes`` (name → digest, or None to remove), deployed at 100 % at once."""
    base = deployed_alone(app.state, script)
    if base is None:
        raise ApiError(400, LATEST_NOT_DEPLOYED, "Secret edit failed. Latest version not deployed.")
    version = derive_version(
        app, script, base, changes, author=author, message=_default_message(changes), source=source
    )
    deploy_alone(app, script, version, author, source=source, triggered_by="secret")
    return version


def derive_version(
    app,
    script: str,
    base: dict,
    changes: dict[str, str | None],
    *,
    author: str,
    message: str,
    source: str,
    triggered_by: str = "secret",
    resources: dict | None = None,
    tag: str | None = None,
) -> dict:
    """Record a new version of ``script`` made from ``base``: its bindings and runtime
    (or ``resources``), its secrets with ``changes`` applied, its build and health."""
    state = app.state
    new_resources = copy.deepcopy(resources or resources_of(state, base["id"]))
    digests = dict(state.secret_digests.get(base["id"], {}))
    bound = {b["name"]: b["type"] for b in new_resources["bindings"]}
    for name, value in changes.items():
        if name in bound and bound[name] not in SECRET_TYPES:
            raise ApiError(400, NAME_IN_USE, f"Binding name '{name}' already in use")
        if value is None and name not in bound:
            raise ApiError(404, SECRET_NOT_FOUND, f"Secret '{name}' not found on {script}")
        new_resources = with_secret(new_resources, name, value is not None)
        if value is None:
            digests.pop(name, None)
        else:
            digests[name] = value
    when = iso_us(app.now())
    numbers = [v["number"] for v in state.versions.get(script, [])]
    annotations = {"workers/triggered_by": triggered_by, "workers/message": message[:100]}
    if tag:
        annotations["workers/tag"] = str(tag)[:20]
    version = {
        "id": str(uuid.uuid4()),
        "number": max(numbers, default=0) + 1,
        "metadata": {
            "author_email": author,
            "author_id": hashlib.md5(author.encode(), usedforsecurity=False).hexdigest(),
            "created_on": when,
            "modified_on": when,
            "source": source,
            "hasPreview": False,
        },
        "annotations": annotations,
    }
    state.record_version(
        script,
        version,
        state.version_builds.get(base["id"], ""),
        state.serves.get(base["id"], "ok"),
        resources=new_resources,
        digests=digests,
    )
    return version


def deploy_alone(
    app, script: str, version: dict, author: str, *, source: str, triggered_by: str
) -> dict:
    """A deployment serving ``version`` at 100 % from now on."""
    deployment = {
        "id": str(uuid.uuid4()),
        "source": source,
        "strategy": "percentage",
        "author_email": author,
        "created_on": iso_us(app.now()),
        "annotations": {
            "workers/triggered_by": triggered_by,
            "workers/message": version["annotations"]["workers/message"],
        },
        "versions": [{"version_id": version["id"], "percentage": 100}],
    }
    app.state.record_deployment(script, deployment)
    return deployment


def _default_message(changes: dict) -> str:
    names = ", ".join(f'"{name}"' for name in changes)
    deleted = all(v is None for v in changes.values())
    if len(changes) == 1:
        return f"{'Deleted' if deleted else 'Updated'} secret {names}"
    return f"{'Deleted' if deleted else 'Updated'} secrets {names}"


def _within_limit(name: str, text: str) -> None:
    """Refuse a secret text over the size limit (the message never quotes it)."""
    if len(text.encode("utf-8", "surrogatepass")) > SECRET_TEXT_LIMIT:
        raise ApiError(
            400,
            BAD_BODY,
            f"Secret '{name}' is too large: a secret's text must be {SECRET_TEXT_LIMIT} bytes "
            "or less",
        )


def _script(state, script: str) -> None:
    if script not in state.services:
        raise ApiError(404, NOT_FOUND_WORKERS, f"Worker {script} not found")


def _json_body(req: Request) -> dict:
    try:
        body = json.loads(req.body or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, BAD_BODY, "The request body must be a JSON object")
    return body


ROUTES = (
    ("GET", SCRIPT + r"/secrets", list_secrets),
    ("PUT", SCRIPT + r"/secrets", put_secret),
    ("DELETE", SCRIPT + r"/secrets/(?P<name>[^/]+)", delete_secret),
    ("PATCH", ACCOUNT + r"/workers/workers/(?P<script>[^/]+)/versions/latest", patch_latest),
)
