"""Resources, built in one place from the platform file.

Secrets never enter resource config as values: the Cloudflare token and a
PostgreSQL warehouse URL are bound with ``dg.EnvVar`` so the UI and the run
record show the variable's name, never its value.
"""

import os
from functools import lru_cache
from pathlib import Path

import dagster as dg
from pydantic import Field

from devops_assets.config import HOME_ENV, PlatformConfig, load_config, workspace_home
from devops_assets.sources import cloudflare, git
from devops_assets.store.warehouse import Warehouse

DB_URL_ENV = "DEVOPS_ASSETS_DB_URL"


class PlatformResource(dg.ConfigurableResource):
    """The team's platform file: workers, environments, gate and targets."""

    config_path: str = Field(description="Path of the platform TOML file.")

    @property
    def config(self) -> PlatformConfig:
        return _read_config(self.config_path)


class WarehouseResource(dg.ConfigurableResource):
    """The SQL tables every asset writes: SQLite by default, PostgreSQL when set."""

    url: str = Field(description="SQLAlchemy URL of the warehouse.")

    @property
    def warehouse(self) -> Warehouse:
        return _open_warehouse(self.url)


def _read_config(path: str) -> PlatformConfig:
    """The platform file, parsed once per process until the file or the environment
    variables it reads change."""
    env = tuple(os.environ.get(name) for name in (HOME_ENV, DB_URL_ENV))
    return _parsed_config(path, os.stat(path).st_mtime_ns, env)


@lru_cache(maxsize=8)
def _parsed_config(path: str, mtime_ns: int, env: tuple) -> PlatformConfig:
    return load_config(path)


@lru_cache(maxsize=8)
def _open_warehouse(url: str) -> Warehouse:
    """One engine per URL per process, so repeated asset steps share a pool."""
    return Warehouse(url)


class CloudflareResource(dg.ConfigurableResource):
    """The Cloudflare API (or the in-process emulator the demo points at)."""

    config_path: str = Field(description="Path of the platform TOML file.")
    api_token: str | None = Field(
        default=None, description="API token; bound to an environment variable, never typed in."
    )

    def client(self) -> cloudflare.CloudflareClient:
        settings = _read_config(self.config_path).cloudflare
        return cloudflare.client_from_settings(settings, self.api_token)


class GitResource(dg.ConfigurableResource):
    """The team's git repository: a local path, or a URL cloned into a cache."""

    repository: str = Field(description="Path or clone URL of the repository.")
    cache_dir: str = Field(description="Where clones of URLs are kept.")

    def local_path(self) -> Path:
        return git.ensure_local(self.repository, Path(self.cache_dir))


def build_resources(config: PlatformConfig) -> dict[str, dg.ConfigurableResource]:
    """Every resource the code location binds, from the platform file."""
    token = None
    if config.cloudflare.api_base_url != "emulator:":
        token = dg.EnvVar(config.cloudflare.api_token_env)
    url = dg.EnvVar(DB_URL_ENV) if os.environ.get(DB_URL_ENV) else config.warehouse_url
    return {
        "platform": PlatformResource(config_path=str(config.path)),
        "warehouse": WarehouseResource(url=url),
        "cloudflare": CloudflareResource(config_path=str(config.path), api_token=token),
        "git_repo": GitResource(
            repository=config.repository, cache_dir=str(workspace_home() / "git-cache")
        ),
    }
