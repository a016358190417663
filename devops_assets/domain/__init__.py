"""Pure functions over plain data: no Dagster, no network, no disk."""
