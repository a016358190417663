"""Each environment of a wrangler file, resolved as wrangler resolves it.

Three kinds of keys (wrangler's ``EnvironmentInheritable`` /
``EnvironmentNonInheritable`` interfaces and its top-level-only fields): an
inheritable key an environment omits falls back to the top level (``name``
gets ``-<env>`` appended); a non-inheritable one — every binding, ``vars``,
``define``, ``secrets`` — does not: the environment gets nothing, and wrangler
warns. Top-level-only keys hold for every environment. The top level itself is
the environment ``""``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from devops_assets.wrangler.files import WranglerConfigError, parse, read_file

TOP_LEVEL_ONLY = frozenset(
    "send_metrics dependencies_instrumentation dev site wasm_modules text_blobs data_blobs "
    "alias keep_vars addresses $schema legacy_env pages_build_output_dir".split()
)
INHERITABLE = frozenset(
    "name account_id compatibility_date compatibility_flags main find_additional_modules "
    "preserve_file_names base_dir workers_dev preview_urls routes route tsconfig jsx_factory "
    "jsx_fragment migrations exports triggers limits rules build no_bundle minify keep_names "
    "first_party_worker logfwdr logpush upload_source_maps placement assets observability "
    "access cache compliance_region python_modules previews usage_model node_compat".split()
)
NON_INHERITABLE = frozenset(
    "define vars secrets durable_objects workflows cloudchamber containers kv_namespaces "
    "send_email queues connect r2_buckets d1_databases vectorize ai_search_namespaces "
    "ai_search agent_memory websearch hyperdrive services analytics_engine_datasets browser "
    "ai images media stream version_metadata unsafe mtls_certificates tail_consumers "
    "streaming_tail_consumers dispatch_namespaces pipelines secrets_store_secrets artifacts "
    "unsafe_hello_world flagship ratelimits worker_loaders vpc_services vpc_networks".split()
)
# The shape each non-inheritable key must have (others are taken as they are).
TABLES = frozenset({"define", "vars", "secrets", "durable_objects", "unsafe", "queues"})
LISTS = frozenset(
    "kv_namespaces r2_buckets d1_databases services analytics_engine_datasets vectorize "
    "hyperdrive mtls_certificates tail_consumers dispatch_namespaces pipelines workflows "
    "send_email secrets_store_secrets ratelimits containers".split()
)
WORKER_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]{0,62}", re.IGNORECASE)


@dataclass(frozen=True)
class Resolved:
    """One environment as wrangler would deploy it, and what wrangler would warn."""

    environment: str  # "" for the top level
    worker: str | None
    config: dict
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class WranglerFile:
    path: Path
    raw: dict
    environments: tuple[str, ...] = field(default=())

    def resolve(self, environment: str) -> Resolved:
        return resolve(self.path, self.raw, environment)

    def environment_of(self, worker: str) -> str | None:
        """The environment whose Worker is ``worker`` (the top level is "")."""
        for environment in self.environments:
            if self.resolve(environment).worker == worker:
                return environment
        return None


def load(path: Path | str, data: bytes | None = None) -> WranglerFile:
    """Read and check a wrangler file (``data`` when given, e.g. read from git, else
    the file at ``path``); every environment is resolved once here, so a file
    wrangler would reject is refused whole, naming the key."""
    path = Path(path)
    raw = read_file(path) if data is None else parse(path, data)
    envs = raw.get("env", {})
    if not isinstance(envs, dict):
        raise WranglerConfigError(path, "env", "a table of environments")
    for name, body in envs.items():
        if not isinstance(body, dict):
            raise WranglerConfigError(path, f"env.{name}", "a table")
    found = WranglerFile(path, raw, ("", *envs))
    for environment in found.environments:
        found.resolve(environment)
    return found


def resolve(path: Path, raw: dict, environment: str) -> Resolved:
    """The effective config of ``environment`` (see the module docstring)."""
    envs = raw.get("env") or {}
    if environment and environment not in envs:
        raise WranglerConfigError(path, f"env.{environment}", "no such environment in the file")
    own = envs.get(environment, {}) if environment else raw
    where = f"env.{environment}." if environment else ""
    effective: dict = {}
    warnings: list[str] = []
    for key, value in raw.items():
        if key in TOP_LEVEL_ONLY:
            effective[key] = value
        elif key in INHERITABLE:
            effective[key] = value
    for key, value in own.items():
        if key == "env" and not environment:
            continue
        if key in TOP_LEVEL_ONLY and environment:
            warnings.append(f'"{where}{key}" is a top-level-only key; wrangler ignores it here')
            continue
        if key in INHERITABLE or key in NON_INHERITABLE:
            effective[key] = value
    if environment:
        for key in NON_INHERITABLE:
            if key in raw and key not in own:
                warnings.append(f'"{key}" exists at the top level, but not on "env.{environment}"')
    for key in NON_INHERITABLE & effective.keys():
        _check_shape(path, f"{where}{key}", key, effective[key])
    worker = _worker(path, raw, own, environment)
    if worker is not None:
        effective["name"] = worker
    return Resolved(environment, worker, effective, tuple(warnings))


def _worker(path: Path, raw: dict, own: dict, environment: str) -> str | None:
    if environment and "name" in own:
        name, key = own["name"], f"env.{environment}.name"
    elif "name" in raw:
        name, key = raw["name"], "name"
        if environment and isinstance(name, str):
            name = f"{name}-{environment}"
    else:
        return None
    if not isinstance(name, str) or not WORKER_NAME.fullmatch(name):
        raise WranglerConfigError(
            path, key, f"a Worker name of letters, digits, '-' and '_' (at most 63), got {name!r}"
        )
    return name


def _check_shape(path: Path, where: str, key: str, value) -> None:
    if key in TABLES and not isinstance(value, dict):
        raise WranglerConfigError(path, where, f"a table, got {type(value).__name__}")
    if key == "secrets" and "required" in value:
        required = value["required"]
        if not isinstance(required, list):
            raise WranglerConfigError(
                path,
                f"{where}.required",
                f"a list of secret names, got {type(required).__name__} {required!r}"[:200],
            )
        for i, name in enumerate(required):
            if not isinstance(name, str) or not name.strip():
                raise WranglerConfigError(
                    path, f"{where}.required[{i}]", f"a non-empty secret name, got {name!r}"[:200]
                )
    if key in LISTS:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise WranglerConfigError(path, where, "a list of tables (one per binding)")
        names = [v.get("binding") or v.get("name") for v in value]
        repeated = sorted({n for n in names if n and names.count(n) > 1})
        if repeated:
            raise WranglerConfigError(
                path, where, f"each binding name once, got {', '.join(repeated)} more than once"
            )
