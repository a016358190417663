"""The warehouse (SQL tables of what was ingested and measured) and its PostgreSQL."""

from devops_assets.store.postgres import (
    PostgresServer,
    PostgresUnavailable,
    find_or_start_postgres,
    normalize_url,
    start_embedded_postgres,
)
from devops_assets.store.rows import WarehouseError
from devops_assets.store.warehouse import Warehouse, WarehouseWriteError

__all__ = [
    "PostgresServer",
    "PostgresUnavailable",
    "Warehouse",
    "WarehouseError",
    "WarehouseWriteError",
    "find_or_start_postgres",
    "normalize_url",
    "start_embedded_postgres",
]
