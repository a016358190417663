"""What the deploy and rollback ops work with, fixed when the code location loads.

The other jobs use configurable resources; a launcher can give those new
config values in the launchpad (``resources: warehouse: config: url: …``), which
for a deploy would mean another warehouse (other gate records, no lock), another
platform file or another repository: every rule skipped. So the deploy ops take
one hard-coded resource instead: its values come from the code location's own
platform file and environment, and run config cannot change them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from devops_assets.config import PlatformConfig, workspace_home
from devops_assets.defs.resources import DB_URL_ENV, _open_warehouse, _read_config
from devops_assets.delivery.runtime import Runtime, open_runtime
from devops_assets.sources import git

KEY = "deploy_parts"


@dataclass(frozen=True)
class DeployParts:
    config_path: str
    repository: str
    cache_dir: str

    def open(self, run_id: str, is_active: Callable[[str], bool | None], log) -> Runtime:
        """The runtime of one run: the platform file read now, the warehouse of
        ``$DEVOPS_ASSETS_DB_URL`` (else the file's), the token from the variable the
        file names."""
        config = _read_config(self.config_path)
        url = os.environ.get(DB_URL_ENV) or config.warehouse_url
        token = None
        if config.cloudflare.api_base_url != "emulator:":
            token = os.environ.get(config.cloudflare.api_token_env)
        repo = git.ensure_local(self.repository, Path(self.cache_dir))
        return open_runtime(config, _open_warehouse(url), token, repo, run_id, is_active, log)


def deploy_parts(config: PlatformConfig) -> dg.ResourceDefinition:
    parts = DeployParts(
        config_path=str(config.path),
        repository=config.repository,
        cache_dir=str(workspace_home() / "git-cache"),
    )
    return dg.ResourceDefinition.hardcoded_resource(
        parts, "Deploy parts fixed by the code location (not configurable at launch)."
    )
