"""Drift between one environment as git resolves it and its Worker as deployed.

The deployed side is what the API says, read now (``read_deployed``):

- ``settings`` of the Worker (those of the version serving the most traffic):
  bindings by name, type and resource ids; vars as ``plain_text`` / ``json``
  bindings; ``compatibility_date``, ``compatibility_flags``, ``usage_model``;
- the Worker's **secret names** (never values: the API has none to give);
- the active **deployment**: two versions sharing traffic is a rollout in
  progress (reported as ``in_progress``, never as drift).

Each part is read on its own. A part the API did not answer gives one
``unknown`` finding for exactly that part, and every comparison that needs it
is skipped: an error is never read as "missing" (an empty list would turn
every binding and every required secret into a finding, and a sync would then
"fix" what is not broken).

Finding keys are ``deployed.<environment>.<what>`` (``deployed.staging.vars.LOG_LEVEL``,
``deployed.production.d1_databases.DB``, ``deployed.staging.secrets.API_KEY``,
``deployed.staging.settings`` …), so an allow-list entry names exactly one
environment's deployed difference. Severities:

| finding | kind | severity | sync |
| --- | --- | --- | --- |
| a required secret the Worker lacks | missing | critical | put_secret |
| a binding git has, the Worker lacks | missing | high | redeploy |
| a binding with another type or resource | changed | high | redeploy |
| `compatibility_date` / `compatibility_flags` differ | changed | high | redeploy |
| a var or binding named like a secret (a deploy replaces it) | changed | high | edit |
| a binding only the Worker has | unexpected | medium | redeploy |
| a var git sets, missing or of another value | missing / changed | medium | redeploy |
| `usage_model`, `limits`, `logpush` differ | changed | medium | redeploy |
| a var only the Worker has | unexpected | low | redeploy |
| a part of the API that did not answer | unknown | high | retry |
| two versions share traffic | in_progress | info | none |

In production, ``medium`` becomes ``high`` (a setting of production that git
does not hold). Deployed var values are never shown (someone may have typed a
credential into a plain-text var); the detail says only that they differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from devops_assets.wrangler.drift import Finding
from devops_assets.wrangler.environments import Resolved

# wrangler key -> (API binding type, [(git field, API field)] naming the resource)
BINDING_KINDS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "kv_namespaces": ("kv_namespace", (("id", "namespace_id"),)),
    "r2_buckets": ("r2_bucket", (("bucket_name", "bucket_name"), ("jurisdiction", "jurisdiction"))),
    "d1_databases": ("d1", (("database_id", "id"),)),
    "services": (
        "service",
        (("service", "service"), ("environment", "environment"), ("entrypoint", "entrypoint")),
    ),
    "durable_objects": (
        "durable_object_namespace",
        (("class_name", "class_name"), ("script_name", "script_name")),
    ),
    "queues": ("queue", (("queue", "queue_name"),)),
    "analytics_engine_datasets": ("analytics_engine", (("dataset", "dataset"),)),
    "hyperdrive": ("hyperdrive", (("id", "id"),)),
    "vectorize": ("vectorize", (("index_name", "index_name"),)),
    "mtls_certificates": ("mtls_certificate", (("certificate_id", "certificate_id"),)),
    "dispatch_namespaces": ("dispatch_namespace", (("namespace", "namespace"),)),
    "secrets_store_secrets": (
        "secrets_store_secret",
        (("store_id", "store_id"), ("secret_name", "secret_name")),
    ),
    "workflows": ("workflow", (("name", "workflow_name"), ("class_name", "class_name"))),
    "pipelines": ("pipelines", (("pipeline", "pipeline"),)),
    "send_email": ("send_email", (("destination_address", "destination_address"),)),
    "ratelimits": ("ratelimit", (("namespace_id", "namespace_id"),)),
    "ai": ("ai", ()),
    "browser": ("browser", ()),
    "images": ("images", ()),
    "media": ("media", ()),
    "version_metadata": ("version_metadata", ()),
}
KEY_OF_TYPE = {kind: key for key, (kind, _) in BINDING_KINDS.items()}
SECRET_TYPES = frozenset({"secret_text", "secret_key"})
VAR_TYPES = frozenset({"plain_text", "json"})
DEFAULT_USAGE_MODEL = "standard"


@dataclass(frozen=True)
class Deployed:
    """What the API said of one Worker; a part it did not answer is None, with
    the error in ``errors[part]`` (parts: settings, secrets, deployments)."""

    worker: str
    settings: Mapping | None = None
    secrets: tuple[tuple[str, str], ...] | None = None  # (name, type)
    deployment: tuple[tuple[str, float], ...] | None = None  # the active one's versions
    errors: Mapping[str, str] = field(default_factory=dict)


def read_deployed(client, worker: str) -> Deployed:
    """Read the three parts, each on its own; a ``CloudflareError`` leaves that
    part None (its message names the endpoint and the API's error, never a value)."""
    from devops_assets.sources.cloudflare import CloudflareError

    parts: dict = {}
    errors: dict[str, str] = {}
    readers = {
        "settings": lambda: client.script_settings(worker),
        "secrets": lambda: tuple((n, t) for n, t in client.list_secrets(worker)),
        "deployments": lambda: _active(client.list_deployments(worker)),
    }
    for part, read in readers.items():
        try:
            parts[part] = read()
        except CloudflareError as exc:
            errors[part] = str(exc)[:300]
    return Deployed(
        worker, parts.get("settings"), parts.get("secrets"), parts.get("deployments"), errors
    )


def version_settings(detail) -> dict:
    """A version (``cloudflare.VersionDetail``) seen as settings, to compare a
    version not yet deployed with git (its bindings and runtime keys)."""
    return {
        "bindings": list(detail.bindings),
        "compatibility_date": detail.compatibility_date,
        "compatibility_flags": list(detail.compatibility_flags or ()),
    }


def compare(resolved: Resolved, deployed: Deployed, environment: str) -> list[Finding]:
    """What ``deployed`` has differently from ``resolved`` (see the module docstring);
    ``environment`` is the platform's name of it (staging, production)."""
    where = _Where(environment, resolved, deployed)
    found: list[Finding] = []
    for part, error in sorted(deployed.errors.items()):
        found.append(where.unknown(part, error))
    secret_names = None
    if deployed.secrets is not None:
        secret_names = {name for name, _ in deployed.secrets}
    if deployed.settings is not None:
        bindings = [b for b in deployed.settings.get("bindings") or [] if isinstance(b, dict)]
        secret_like = {b.get("name") for b in bindings if b.get("type") in SECRET_TYPES}
        hidden = secret_like | (secret_names or set())
        found += _bindings(where, resolved.config, bindings, hidden)
        found += _vars(where, resolved.config, bindings, hidden)
        found += _runtime(where, resolved.config, deployed.settings)
    if secret_names is not None:
        found += _secrets(where, resolved.config, secret_names)
    if deployed.deployment is not None and len(deployed.deployment) > 1:
        shares = ", ".join(f"{v} at {p:g} %" for v, p in deployed.deployment)
        found.append(
            where.finding(
                "deployment",
                "in_progress",
                "info",
                f"{deployed.worker}: a rollout in progress ({shares}); settings are those "
                "of the version serving the most",
                "none: finish or roll back the rollout",
                "none",
            )
        )
    return found


@dataclass(frozen=True)
class _Where:
    environment: str
    resolved: Resolved
    deployed: Deployed

    @property
    def env_name(self) -> str:
        return f"env {self.resolved.environment}" if self.resolved.environment else "the top level"

    def finding(self, what, kind, severity, detail, fix, action) -> Finding:
        if self.environment == "production" and severity == "medium":
            severity = "high"
        return Finding(
            f"deployed.{self.environment}.{what}",
            kind,
            severity,
            detail,
            fix,
            comparison=f"{self.environment}~deployed",
            action=action,
        )

    def redeploy(self, what, kind, severity, detail) -> Finding:
        fix = (
            f"redeploy {self.environment} from git (sync_config), or adopt: change "
            f"{self.env_name} in the wrangler file"
        )
        return self.finding(what, kind, severity, detail, fix, "redeploy")

    def unknown(self, part: str, error: str) -> Finding:
        return self.finding(
            part,
            "unknown",
            "high",
            f"{self.deployed.worker}: {part} could not be read ({error}); nothing compared",
            "read again once the API answers (nothing is assumed missing)",
            "retry",
        )


def _git_bindings(config: dict) -> dict[str, tuple[str, dict]]:
    """name -> (wrangler key, entry) for every binding git gives the environment."""
    found: dict[str, tuple[str, dict]] = {}
    for key in BINDING_KINDS:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, dict) and key not in ("durable_objects", "queues"):
            entries = [value]  # ai = {binding = "AI"}, browser, images, version_metadata
        elif isinstance(value, dict):
            entries = value.get("bindings") or value.get("producers") or []
        else:
            entries = value
        for entry in entries or []:
            if isinstance(entry, dict):
                name = entry.get("binding") or entry.get("name")
                if isinstance(name, str):
                    found[name] = (key, entry)
    return found


def _api_name(binding: dict) -> str | None:
    # the OpenAPI subset's d1 binding names the binding ``binding`` and the database ``name``
    if binding.get("type") == "d1" and binding.get("binding"):
        return binding["binding"]
    name = binding.get("name")
    return name if isinstance(name, str) else None


def _bindings(where: _Where, config: dict, bindings: list[dict], hidden: set) -> list[Finding]:
    ours = {n: v for n, v in _git_bindings(config).items() if n not in hidden}
    theirs = {}
    for binding in bindings:
        name, kind = _api_name(binding), binding.get("type")
        if name and kind not in SECRET_TYPES | VAR_TYPES and name not in hidden:
            theirs[name] = binding
    found = []
    worker = where.deployed.worker
    for name in sorted(ours.keys() - theirs.keys()):
        key, _ = ours[name]
        detail = f"git binds {name} ({key}) in {where.env_name}; {worker} has no such binding"
        found.append(where.redeploy(f"{key}.{name}", "missing", "high", detail))
    for name in sorted(theirs.keys() - ours.keys()):
        kind = theirs[name].get("type")
        key = KEY_OF_TYPE.get(kind, kind)
        detail = f"{worker} binds {name} ({kind}); git does not"
        found.append(where.redeploy(f"{key}.{name}", "unexpected", "medium", detail))
    for name in sorted(ours.keys() & theirs.keys()):
        key, entry = ours[name]
        expected_type, fields = BINDING_KINDS[key]
        api = theirs[name]
        if api.get("type") != expected_type:
            detail = f"{name}: git {key} ({expected_type}); {worker}: {api.get('type')}"
            found.append(where.redeploy(f"{key}.{name}", "changed", "high", detail))
            continue
        differ = []
        for git_field, api_field in fields:
            wanted = entry.get(git_field)
            if wanted is None:  # not set in git: auto-provisioned or server default
                continue
            got = api.get(api_field)
            if got is None and api_field == "id":
                got = api.get("database_id")
            if got != wanted:
                differ.append(f"{git_field} git {wanted!r}, deployed {got!r}")
        if differ:
            detail = f"{name} ({key}): " + "; ".join(differ)
            found.append(where.redeploy(f"{key}.{name}", "changed", "high", detail))
    return found


def _vars(where: _Where, config: dict, bindings: list[dict], hidden: set) -> list[Finding]:
    ours = {n: v for n, v in (config.get("vars") or {}).items() if n not in hidden}
    theirs = {
        _api_name(b): b
        for b in bindings
        if b.get("type") in VAR_TYPES and _api_name(b) and _api_name(b) not in hidden
    }
    worker = where.deployed.worker
    found = []
    for name in sorted(ours.keys() - theirs.keys()):
        detail = f"git sets var {name} in {where.env_name}; {worker} has no such var"
        found.append(where.redeploy(f"vars.{name}", "missing", "medium", detail))
    for name in sorted(ours.keys() & theirs.keys()):
        if not _same_var(ours[name], theirs[name]):
            detail = f"var {name}: git sets {_short(ours[name])}; the deployed value differs"
            found.append(where.redeploy(f"vars.{name}", "changed", "medium", detail))
    for name in sorted(theirs.keys() - ours.keys()):
        detail = f"{worker} has var {name}; git does not set it"
        if config.get("keep_vars"):
            detail += " (keep_vars = true: a deploy keeps it, remove it by hand)"
        found.append(where.redeploy(f"vars.{name}", "unexpected", "low", detail))
    return found


def _same_var(value, binding: dict) -> bool:
    if isinstance(value, str):
        return binding.get("type") == "plain_text" and binding.get("text") == value
    return binding.get("type") == "json" and binding.get("json") == value


def _runtime(where: _Where, config: dict, settings: Mapping) -> list[Finding]:
    found = []
    worker = where.deployed.worker
    pairs = [
        ("compatibility_date", config.get("compatibility_date"), "high"),
        ("compatibility_flags", sorted(config.get("compatibility_flags") or []), "high"),
        ("usage_model", config.get("usage_model") or DEFAULT_USAGE_MODEL, "medium"),
    ]
    if config.get("limits") is not None:
        pairs.append(("limits", config["limits"], "medium"))
    if config.get("logpush") is not None:
        pairs.append(("logpush", config["logpush"], "medium"))
    for key, wanted, severity in pairs:
        if key not in settings or (wanted is None and key == "compatibility_date"):
            continue  # not said by the API (or not set in git): nothing to compare
        got = settings.get(key)
        if key == "compatibility_flags":
            got = sorted(got or [])
        if got != wanted:
            detail = f"{key}: git {_short(wanted)}; {worker} {_short(got)}"
            found.append(where.redeploy(key, "changed", severity, detail))
    return found


def _secrets(where: _Where, config: dict, names: set[str]) -> list[Finding]:
    found = []
    worker = where.deployed.worker
    required = (config.get("secrets") or {}).get("required") or []
    for name in sorted(set(required) - names):
        found.append(
            where.finding(
                f"secrets.{name}",
                "missing",
                "critical",
                f"{where.env_name} requires secret {name}; {worker} has none of that name "
                "(the next deploy is refused, code reading it fails)",
                f"put secret {name} on {worker} (sync_config puts it from its "
                "[[secrets.policy]] source)",
                "put_secret",
            )
        )
    shadows = set(config.get("vars") or {}) | set(_git_bindings(config))
    for name in sorted(shadows & names):
        found.append(
            where.finding(
                f"vars.{name}",
                "changed",
                "high",
                f"{name} is a secret of {worker} and a var or binding in {where.env_name}: "
                "the next deploy replaces the secret",
                f"rename or remove {name} in {where.env_name} of the wrangler file",
                "edit",
            )
        )
    return found


def _active(deployments: list[dict]) -> tuple[tuple[str, float], ...] | None:
    if not deployments:
        return ()
    newest = max(deployments, key=lambda d: d["created_on"])
    return tuple((v, float(p)) for v, p in newest["versions"])


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
