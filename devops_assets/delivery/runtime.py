"""What a deploy works with, bound once per run.

With the demo's in-process emulator (``api_base_url = "emulator:"``) the API,
the workers' own URLs and the clock all come from one emulator app: the
deployments it makes, the versions its edge serves and the time it tells agree.
Elsewhere the clock is the machine's and smoke checks go over the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from devops_assets.config import PlatformConfig
from devops_assets.sources import notify
from devops_assets.sources.cloudflare import (
    EMULATOR_BASE,
    EMULATOR_URL,
    CloudflareClient,
    client_from_settings,
)
from devops_assets.store.warehouse import Warehouse

VERSION_OVERRIDE = "Cloudflare-Workers-Version-Overrides"


@dataclass
class Runtime:
    config: PlatformConfig
    warehouse: Warehouse
    client: CloudflareClient
    repo: Path
    now: Callable[[], datetime]
    http: Callable[[dict[str, str]], httpx.Client]  # a client for smoke checks
    run_id: str
    is_active: Callable[[str], bool | None]  # whether a run still runs; None: unknown
    log: logging.Logger | logging.LoggerAdapter

    def base_url(self, environment: str) -> str:
        """Where the environment's worker answers: ``[deploy.urls]``, else (emulator
        only) its workers.dev address."""
        url = self.config.deploy.url(environment)
        if url is not None:
            return url
        if self.config.cloudflare.api_base_url == EMULATOR_BASE:
            from devops_assets.emulator.edge import workers_dev_url

            return workers_dev_url(self.config.environment(environment).worker)
        raise ValueError(
            f"{self.config.path}: key 'deploy.urls.{environment}': the URL smoke tests "
            f"of {environment} ask is missing"
        )

    def notify(self, event: str, environment: str, subject: str, text: str) -> None:
        """Send a notice where ``[deploy]`` says; a failed webhook is logged, never
        fatal (the deploy's own outcome stands)."""
        notice = notify.Notice(event, environment, subject, text, self.now())
        settings = self.config.deploy
        if settings.notify_file:
            try:
                notify.to_file(settings.notify_file, notice)
            except (notify.NotifyError, OSError) as exc:
                self.log.warning("Notice %s not written to the notices file: %s", event, exc)
        if settings.notify_webhook_env:
            try:
                notify.to_webhook(settings.notify_webhook_env, notice)
            except notify.NotifyError as exc:
                self.log.warning("Notice %s not delivered: %s", event, exc)


def open_runtime(
    config: PlatformConfig,
    warehouse: Warehouse,
    token: str | None,
    repo: Path,
    run_id: str,
    is_active: Callable[[str], bool | None],
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> Runtime:
    log = log or logging.getLogger("devops_assets.delivery")
    settings = config.cloudflare
    if settings.api_base_url == EMULATOR_BASE:
        from devops_assets.emulator.app import EMULATOR_TOKEN, load_app

        app = load_app(settings.emulator_state, persist=True)
        transport = httpx.WSGITransport(app=app)
        client = CloudflareClient(
            settings.account_id, EMULATOR_TOKEN, EMULATOR_URL, transport=transport
        )

        def http(headers: dict[str, str]) -> httpx.Client:
            return httpx.Client(transport=httpx.WSGITransport(app=app), headers=headers)

        return Runtime(config, warehouse, client, repo, app.now, http, run_id, is_active, log)

    def network(headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(headers=headers, follow_redirects=False)

    client = client_from_settings(settings, token)
    return Runtime(
        config, warehouse, client, repo, lambda: datetime.now(UTC), network, run_id, is_active, log
    )
