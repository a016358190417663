"""The incident feed read at decision time (the ``incidents`` asset keeps a copy for
the metrics; a deploy must not trust a copy that may be hours old)."""

from __future__ import annotations

from devops_assets.delivery.runtime import Runtime
from devops_assets.domain.models import Incident
from devops_assets.sources.events import read_incidents
from devops_assets.sources.statuspage import read_statuspage_at


def current_incidents(rt: Runtime) -> list[Incident]:
    """The configured feed now: a Statuspage page or a file; without a feed, the
    warehouse's copy (what an operator may have loaded some other way)."""
    config = rt.config
    if config.incidents_statuspage:
        return read_statuspage_at(
            config.incidents_statuspage,
            dict(config.incidents_components),
            config.cloudflare.emulator_state,
        )
    if config.incidents_file:
        return read_incidents(config.incidents_file)
    return rt.warehouse.incidents()
