"""The platform file: workers, environments, quality gate and targets.

One TOML file describes a team's delivery pipeline. ``DEVOPS_ASSETS_CONFIG``
names it; without it the demo's own file is used. A file that breaks the
schema stops everything with one :class:`ConfigError` naming the file, the key
and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import urlsplit

from devops_assets.config_deploy import DeploySettings, parse_deploy
from devops_assets.config_drift import DriftSettings, parse_drift
from devops_assets.config_incidents import parse_incidents
from devops_assets.config_metrics import parse_metric_settings
from devops_assets.config_secrets import SecretsSettings, parse_secrets
from devops_assets.config_targets import COMPARATORS, Target, parse_targets
from devops_assets.domain.settings import MetricSettings
from devops_assets.toml_reader import ConfigError, TableReader

__all__ = ["COMPARATORS", "ConfigError", "PlatformConfig", "Target", "load_config"]

CONFIG_ENV = "DEVOPS_ASSETS_CONFIG"
HOME_ENV = "DEVOPS_ASSETS_HOME"
DEMO_CONFIG = Path(__file__).parent / "demo" / "platform.toml"
ENVIRONMENT_NAMES = ("development", "staging", "production")


@dataclass(frozen=True)
class Worker:
    name: str
    tag: str  # the Builds API's external_script_id


@dataclass(frozen=True)
class Environment:
    name: str
    branches: tuple[str, ...]
    worker: str | None


@dataclass(frozen=True)
class CloudflareSettings:
    """Where the API is. ``api_base_url = "emulator:"`` serves it in-process
    from the simulator state in ``emulator_state`` (the demo)."""

    account_id: str
    api_base_url: str
    api_token_env: str
    emulator_state: str | None = None


@dataclass(frozen=True)
class PlatformConfig:
    path: Path
    project: str
    repository: str
    timezone: str
    health_window_days: int
    as_of: datetime | None  # the instant windows end at; None means "now"
    cloudflare: CloudflareSettings
    workers: tuple[Worker, ...]
    environments: tuple[Environment, ...]
    quality_gate: tuple[str, ...]
    targets: tuple[Target, ...]
    warehouse_url: str
    metrics: MetricSettings
    incidents_file: str | None  # events-format incidents (docs/events.md), if any
    deploy: DeploySettings
    drift: DriftSettings = DriftSettings()
    secrets: SecretsSettings = SecretsSettings()
    # A Statuspage page's base URL (or "emulator:") as the incident feed instead of a file,
    # and which of its components (name, environment) are ours.
    incidents_statuspage: str | None = None
    incidents_components: tuple[tuple[str, str], ...] = ()

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    def environment_of_branch(self, branch: str) -> str | None:
        """The first environment whose branch globs match ``branch``, if any."""
        for env in self.environments:
            if any(fnmatchcase(branch, glob) for glob in env.branches):
                return env.name
        return None

    def worker(self, name: str) -> Worker:
        for w in self.workers:
            if w.name == name:
                return w
        raise KeyError(name)


def load_config(path: str | os.PathLike | None = None) -> PlatformConfig:
    """Read and check the platform file at ``path`` (or ``$DEVOPS_ASSETS_CONFIG``)."""
    path = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "an existing TOML file") from None
    except IsADirectoryError:
        raise ConfigError(path, "(file)", "a TOML file, got a directory") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "(file)", f"valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(path, "(file)", "TOML nested to a sane depth") from None
    return _parse(path, TableReader(path, data))


def workspace_home() -> Path:
    """Where local state lives: ``$DEVOPS_ASSETS_HOME`` or ``./.devops_assets``."""
    return Path(os.environ.get(HOME_ENV) or ".devops_assets").expanduser().resolve()


def _local_path(value: str, path: Path) -> str:
    """Expand ``{home}`` and resolve a relative path against the file's folder."""
    value = value.replace("{home}", str(workspace_home()))
    if "://" in value or value.startswith("git@"):
        return value
    return str((path.parent / value).resolve())


def _parse(path: Path, root: TableReader) -> PlatformConfig:
    root.only(
        "project",
        "cloudflare",
        "workers",
        "environments",
        "quality_gate",
        "targets",
        "warehouse",
        "metrics",
        "incidents",
        "deploy",
        "drift",
        "secrets",
    )
    project = root.table("project").only(
        "name", "repository", "timezone", "health_window_days", "as_of"
    )
    workers = _workers(root)
    environments = _environments(root, {w.name for w in workers})
    repository = _local_path(project.text("repository"), path)
    if _has_credentials(repository):
        raise project.fail(
            "repository",
            "a URL without credentials (they would show in the UI's resource config); "
            "let git find them through a credential helper",
        )
    timezone = _timezone(project)
    incidents_file, statuspage, components = parse_incidents(root, {e.name for e in environments})
    return PlatformConfig(
        path=path,
        project=project.text("name"),
        repository=repository,
        timezone=timezone,
        health_window_days=_positive_int(project, "health_window_days", 30, most=3660),
        as_of=_instant(project, "as_of"),
        cloudflare=_cloudflare(root, path),
        workers=workers,
        environments=environments,
        quality_gate=_gate_steps(root),
        targets=parse_targets(root, environments),
        warehouse_url=_warehouse_url(root, path),
        metrics=parse_metric_settings(root, timezone),
        incidents_file=_local_path(incidents_file, path) if incidents_file else None,
        incidents_statuspage=statuspage,
        incidents_components=components,
        deploy=parse_deploy(
            root, timezone, {e.name for e in environments}, lambda v: _local_path(v, path)
        ),
        drift=parse_drift(root),
        secrets=parse_secrets(root, lambda v: _local_path(v, path)),
    )


def _gate_steps(root: TableReader) -> tuple[str, ...]:
    """The quality-gate steps: at least one, each once (an empty gate would pass
    every commit)."""
    gate = root.table("quality_gate").only("steps")
    steps = gate.strings("steps")
    if not steps or len(set(steps)) != len(steps):
        raise gate.fail("steps", f"one or more different step names, got {list(steps)!r}")
    return steps


def _timezone(project: TableReader) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = project.text("timezone", "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise project.fail("timezone", f"an IANA time zone name, got {name!r}") from None
    return name


def _instant(table: TableReader, key: str) -> datetime | None:
    """A TOML offset date-time (or ISO 8601 string with an offset) or nothing."""
    value = table.get(key, (datetime, str), "an ISO 8601 date-time with an offset", None)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise table.fail(key, f"an ISO 8601 date-time, got {value!r}") from None
    if value is not None and value.tzinfo is None:
        raise table.fail(key, f"a date-time with a UTC offset, got {value.isoformat()!r}")
    if value is not None and not 2000 <= value.year <= 2999:
        raise table.fail(key, f"a date-time between the years 2000 and 2999, got {value!r}")
    return value


def _positive_int(table: TableReader, key: str, default: int, most: int) -> int:
    value = table.get(key, int, f"a whole number from 1 to {most}", default)
    if not 1 <= value <= most:
        raise table.fail(key, f"a whole number from 1 to {most}, got {value!r}")
    return value


def _cloudflare(root: TableReader, path: Path) -> CloudflareSettings:
    cf = root.table("cloudflare").only(
        "account_id", "api_base_url", "api_token_env", "emulator_state"
    )
    account_id = cf.text("account_id")
    if not _is_hex32(account_id):
        raise cf.fail("account_id", f"32 lowercase hex characters, got {account_id!r}")
    base = cf.text("api_base_url", "https://api.cloudflare.com/client/v4")
    try:
        parts = urlsplit(base)
        web = parts.scheme in ("http", "https") and parts.hostname and not parts.password
    except ValueError:
        web = False
    if not (web or base == "emulator:"):
        raise cf.fail("api_base_url", f"an http(s) URL with a host, or 'emulator:', got {base!r}")
    state = cf.text("emulator_state", None)
    if base == "emulator:" and state is None:
        raise cf.fail("emulator_state", "a folder path when api_base_url is 'emulator:'")
    token_env = cf.text("api_token_env", "CLOUDFLARE_API_TOKEN")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
        raise cf.fail("api_token_env", f"an environment variable name, got {token_env!r}")
    return CloudflareSettings(
        account_id=account_id,
        api_base_url=base,
        api_token_env=token_env,
        emulator_state=_local_path(state, path) if state else None,
    )


def _is_sql_url(url: str) -> bool:
    return url.split(":", 1)[0].split("+")[0] in ("sqlite", "postgresql", "postgres")


def _has_credentials(url: str) -> bool:
    """A password in the URL's user part or in its query string (libpq reads both)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.password) or "password=" in parts.query.lower()


def _is_hex32(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def _workers(root: TableReader) -> tuple[Worker, ...]:
    items = root.get("workers", list, "an array of [[workers]] tables")
    workers = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise root.fail(f"workers[{i}]", "a table with name and tag")
        w = TableReader(root.path, item, f"workers[{i}].").only("name", "tag")
        worker = Worker(name=w.text("name"), tag=w.text("tag"))
        if worker.name in {seen.name for seen in workers}:
            raise w.fail("name", f"a name no other [[workers]] entry has, got {worker.name!r}")
        if not _is_hex32(worker.tag):
            raise w.fail("tag", f"the worker's 32-hex external_script_id, got {worker.tag!r}")
        if worker.tag in {seen.tag for seen in workers}:
            raise w.fail("tag", f"a tag no other [[workers]] entry has, got {worker.tag!r}")
        workers.append(worker)
    if not workers:
        raise root.fail("workers", "at least one [[workers]] table")
    return tuple(workers)


def _environments(root: TableReader, workers: set[str]) -> tuple[Environment, ...]:
    table = root.table("environments")
    envs = []
    for name in table.data:
        if name not in ENVIRONMENT_NAMES:
            raise table.fail(name, f"one of {', '.join(ENVIRONMENT_NAMES)}")
        env = table.table(name).only("branches", "worker")
        worker = env.text("worker", None)
        if worker is not None and worker not in workers:
            raise env.fail("worker", f"the name of a [[workers]] entry, got {worker!r}")
        if worker is not None and worker in {e.worker for e in envs}:
            raise env.fail("worker", f"a worker no other environment serves, got {worker!r}")
        branches = env.strings("branches")
        if not branches:
            raise env.fail("branches", "at least one branch name or glob")
        envs.append(Environment(name, branches, worker))
    if "production" not in {e.name for e in envs}:
        raise table.fail("production", "a [environments.production] table")
    return tuple(envs)


def _warehouse_url(root: TableReader, path: Path) -> str:
    """``$DEVOPS_ASSETS_DB_URL`` wins; else the file's ``[warehouse] url``; else SQLite."""
    from_env = os.environ.get("DEVOPS_ASSETS_DB_URL")
    if from_env:
        if not _is_sql_url(from_env):
            raise ConfigError(
                "$DEVOPS_ASSETS_DB_URL", "(value)", "a sqlite:/// or postgresql:// URL"
            )
        return from_env
    warehouse = root.table("warehouse", {}).only("url")
    url = warehouse.text("url", None)
    if url and _has_credentials(url):
        raise warehouse.fail(
            "url",
            "a URL without a password (it would show in the UI's resource config); "
            "put a URL with credentials in DEVOPS_ASSETS_DB_URL instead",
        )
    if url and not _is_sql_url(url):
        raise warehouse.fail("url", f"a sqlite:/// or postgresql:// URL, got {url!r}")
    if url:
        return url.replace("{home}", str(workspace_home()))
    return f"sqlite:///{workspace_home() / 'warehouse.sqlite'}"
