"""Typed reading of a parsed TOML table, naming the file and the key in every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The platform file is missing a key or holds a value of the wrong kind."""

    def __init__(self, path: Path | str, key: str, expected: str):
        super().__init__(f"{path}: key '{key}': expected {expected}")
        self.path, self.key, self.expected = str(path), key, expected


class TableReader:
    """Typed access to a parsed TOML table that names the file in every error."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = ""):
        self.path, self.data, self.prefix = path, data, prefix

    def key_name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(self.path, self.key_name(key), expected)

    def get(self, key: str, kind: type | tuple[type, ...], expected: str, default: Any = ...):
        if key not in self.data:
            if default is ...:
                raise self.fail(key, f"{expected} (the key is missing)")
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise self.fail(key, f"{expected}, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(key, f"{expected}, got {value!r}")
        return value

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, "a non-empty string", default)
        if value is not None and value == "":
            raise self.fail(key, "a non-empty string, got ''")
        return value

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, "a list of strings", default)
        if any(not isinstance(v, str) or not v for v in value):
            raise self.fail(key, f"a list of non-empty strings, got {value!r}")
        return tuple(value)

    def table(self, key: str, default: Any = ...) -> TableReader:
        value = self.get(key, dict, "a table", default)
        return TableReader(self.path, value, f"{self.key_name(key)}.")

    def only(self, *keys: str) -> TableReader:
        """Refuse a key this table does not know (a typo would otherwise be ignored)."""
        for key in self.data:
            if key not in keys:
                raise self.fail(key, f"no such key here; known keys: {', '.join(keys)}")
        return self


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
