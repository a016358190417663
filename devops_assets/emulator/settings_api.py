"""``GET …/workers/scripts/{name}/settings`` (cloudflare-api.md §6).

The settings of the version serving the largest share of the latest
deployment (the latest version when nothing is deployed): its non-secret
bindings, runtime (compatibility date and flags, usage model, limits) and
script settings (logpush, placement, tags ``cf:service``/``cf:environment``,
tail consumers). Secrets are listed by ``GET …/secrets``.
"""

from __future__ import annotations

from devops_assets.emulator.resources import settings_view
from devops_assets.emulator.secrets_api import SCRIPT, resources_of
from devops_assets.emulator.wire import NOT_FOUND_WORKERS, ApiError, Reply, Request, ok


def get_settings(app, req: Request, account_id: str, script: str) -> Reply:
    state = app.state
    if script not in state.services:
        raise ApiError(404, NOT_FOUND_WORKERS, f"Worker {script} not found")
    version = state.serving_version(script) or state.latest_version(script)
    if version is None:
        raise ApiError(404, NOT_FOUND_WORKERS, f"Worker {script} has no versions")
    return ok(settings_view(resources_of(state, version["id"])))


ROUTES = (("GET", SCRIPT + r"/settings", get_settings),)
