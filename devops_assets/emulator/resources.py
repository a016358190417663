"""What a version carries besides its code: bindings, runtime and script settings.

A version's resources follow the wrangler file of the commit its build
built, as Wrangler would upload it for the environment: the top-level keys
for production, ``env.<name>`` for another environment (inheritable keys
fall back to the top level, bindings do not). Secrets are added as
``secret_text`` bindings; their values never reach the emulator, only
their sha256 digests (kept apart, in the state's ``secret_digests``).

Every binding is named by its variable name (``name``). A D1 binding also
carries the database's ``id`` and ``database_name``, and repeats its
variable name as ``binding``, which the OpenAPI subset requires.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable

DEFAULT_LIMITS = {"cpu_ms": 30000}
SECRET_TYPES = ("secret_text", "secret_key")
SETTINGS_KEYS = (
    "compatibility_date",
    "compatibility_flags",
    "usage_model",
    "limits",
    "logpush",
    "placement",
    "tags",
    "tail_consumers",
    "bindings",
)


def digest(value: str) -> str:
    """What the emulator keeps of a secret value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def parse_jsonc(text: str) -> dict:
    """A wrangler.jsonc as the demo repository writes it: JSON with ``//`` comment lines."""
    return json.loads("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//")))


def from_wrangler(text: str, environment: str, secrets: Iterable[str] = ()) -> dict:
    """The resources of a version uploaded from wrangler file ``text`` for ``environment``."""
    top = parse_jsonc(text)
    env = top if environment == "production" else top.get("env", {}).get(environment, {})

    def inherited(key, default):
        return env.get(key, top.get(key, default))

    bindings = [
        {"name": name, "type": "plain_text", "text": str(value)}
        for name, value in (env.get("vars") or {}).items()
    ]
    bindings += [
        {"name": b["binding"], "type": "kv_namespace", "namespace_id": b.get("id", "")}
        for b in env.get("kv_namespaces") or []
    ]
    bindings += [
        {"name": b["binding"], "type": "r2_bucket", "bucket_name": b.get("bucket_name", "")}
        for b in env.get("r2_buckets") or []
    ]
    bindings += [
        {
            "name": b["binding"],
            "type": "d1",
            "id": b.get("database_id", ""),
            "binding": b["binding"],
            "database_name": b.get("database_name", ""),
        }
        for b in env.get("d1_databases") or []
    ]
    bindings += [{"name": name, "type": "secret_text"} for name in secrets]
    service = top.get("name", "")
    tags = [f"cf:service={service}"]
    if environment != "production":
        tags.append(f"cf:environment={environment}")
    placement = inherited("placement", None)
    return {
        "bindings": bindings,
        "script_runtime": {
            "compatibility_date": inherited("compatibility_date", ""),
            "compatibility_flags": list(inherited("compatibility_flags", [])),
            "usage_model": inherited("usage_model", "standard"),
            "limits": dict(inherited("limits", DEFAULT_LIMITS)),
        },
        "settings": {
            "logpush": bool(inherited("logpush", False)),
            "placement": {"mode": placement["mode"]} if placement else {},
            "tags": tags,
            "tail_consumers": [
                {"service": t["service"]} for t in inherited("tail_consumers", []) or []
            ],
        },
    }


def secret_names(resources: dict) -> list[str]:
    return [b["name"] for b in resources["bindings"] if b["type"] in SECRET_TYPES]


def with_secret(resources: dict, name: str, present: bool) -> dict:
    """A copy of ``resources`` with secret ``name`` bound (appended when new) or removed."""
    changed = copy.deepcopy(resources)
    bound = any(b["name"] == name for b in changed["bindings"])
    if not present:
        changed["bindings"] = [b for b in changed["bindings"] if b["name"] != name]
    elif not bound:
        changed["bindings"].append({"name": name, "type": "secret_text"})
    return changed


def settings_view(resources: dict) -> dict:
    """``GET …/settings``'s result for a version with these resources.

    Secret bindings are left out: the subset's binding schema has no secret
    kinds (list them with ``GET …/secrets``).
    """
    runtime, extra = resources["script_runtime"], resources["settings"]
    return {
        "bindings": [
            copy.deepcopy(b) for b in resources["bindings"] if b["type"] not in SECRET_TYPES
        ],
        "compatibility_date": runtime["compatibility_date"],
        "compatibility_flags": list(runtime["compatibility_flags"]),
        "usage_model": runtime["usage_model"],
        "limits": dict(runtime["limits"]),
        "logpush": extra["logpush"],
        "placement": dict(extra["placement"]),
        "tags": list(extra["tags"]),
        "tail_consumers": [dict(t) for t in extra["tail_consumers"]],
    }


def changed_settings(resources: dict, changes: dict) -> dict:
    """A copy of ``resources`` with settings ``changes`` (keys of ``SETTINGS_KEYS``).

    ``bindings`` replaces the non-secret bindings; secrets stay bound.
    """
    unknown = sorted(set(changes) - set(SETTINGS_KEYS))
    if unknown:
        raise ValueError(
            f"change_setting: unknown setting {unknown[0]!r}; known: {', '.join(SETTINGS_KEYS)}"
        )
    changed = copy.deepcopy(resources)
    for key, value in changes.items():
        value = copy.deepcopy(value)
        if key == "bindings":
            secrets = [b for b in changed["bindings"] if b["type"] in SECRET_TYPES]
            changed["bindings"] = [b for b in value if b["type"] not in SECRET_TYPES] + secrets
        elif key in changed["script_runtime"]:
            changed["script_runtime"][key] = value
        else:
            changed["settings"][key] = value
    return changed
