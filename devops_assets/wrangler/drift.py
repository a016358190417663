"""Configuration drift between two environments of one wrangler file.

Compares the environments as wrangler resolves them (``environments.py``):

- **bindings** (every non-inheritable binding key, by binding name): one the
  other environment lacks is ``missing`` there (``high``: code that uses it
  breaks), one only it has is ``unexpected`` (``low``);
- **vars**, by name only (values are expected to differ): ``medium``;
- keys that should match across environments (runtime, entry point, rules,
  migrations, required secret names…): ``changed`` (``high`` for the runtime
  and migrations, else ``medium``);
- **shared resources**: a binding that points both environments at the same
  database, bucket or namespace (``high``: staging writes production data).

Each finding says what would sync it. An allow-list accepts known differences;
each entry names the finding's key, a reason, an owner and an expiry, and an
expired entry allows nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from devops_assets.wrangler.environments import NON_INHERITABLE, Resolved

NOT_BINDINGS = frozenset({"vars", "define", "secrets", "unsafe", "version_metadata"})
SHOULD_MATCH = (
    "compatibility_date",
    "compatibility_flags",
    "main",
    "migrations",
    "rules",
    "build",
    "limits",
    "placement",
    "observability",
    "assets",
)
HIGH_WHEN_CHANGED = frozenset({"compatibility_date", "compatibility_flags", "main", "migrations"})
RESOURCE_FIELDS = ("database_id", "bucket_name", "id", "service", "queue", "index_name")


@dataclass(frozen=True)
class Finding:
    key: str  # e.g. "d1_databases.DB", "vars.LOG_LEVEL", "compatibility_date"
    kind: str  # missing | unexpected | changed | shared (| unknown | in_progress, deployed.py)
    severity: str  # high | medium | low (| critical | info, deployed.py)
    detail: str
    fix: str
    # Added for git-vs-deployed (deployed.py): which comparison found it, and what
    # syncs it: "edit" (the wrangler file), "redeploy" (the environment's branch
    # head), "put_secret", "retry" (an API error: read again), "none".
    comparison: str = "staging~production"
    action: str = "edit"


@dataclass(frozen=True)
class Allowed:
    key: str
    reason: str
    owner: str
    expires: date

    def allows(self, finding: Finding, today: date) -> bool:
        return finding.key == self.key and today <= self.expires


def drift(reference: Resolved, other: Resolved) -> list[Finding]:
    """What ``other`` has differently from ``reference`` (e.g. staging vs production)."""
    a, b = reference.config, other.config
    name_a, name_b = reference.environment or "(top level)", other.environment or "(top level)"
    found = []
    for kind in sorted((NON_INHERITABLE - NOT_BINDINGS) & (a.keys() | b.keys())):
        ours, theirs = _bindings(a.get(kind)), _bindings(b.get(kind))
        for binding in sorted(ours.keys() - theirs.keys()):
            found.append(
                Finding(
                    f"{kind}.{binding}",
                    "missing",
                    "high",
                    f"{name_a} binds {binding} ({kind}); {name_b} does not",
                    f"add a {kind} entry with binding {binding!r} to env {name_b}",
                )
            )
        for binding in sorted(theirs.keys() - ours.keys()):
            found.append(
                Finding(
                    f"{kind}.{binding}",
                    "unexpected",
                    "low",
                    f"{name_b} binds {binding} ({kind}); {name_a} does not",
                    f"remove it from env {name_b}, or add it to {name_a}",
                )
            )
        for binding in sorted(ours.keys() & theirs.keys()):
            shared = _same_resource(ours[binding], theirs[binding])
            if shared:
                found.append(
                    Finding(
                        f"{kind}.{binding}",
                        "shared",
                        "high",
                        f"{name_a} and {name_b} both use {shared}",
                        f"give env {name_b} its own resource for {binding}",
                    )
                )
    vars_a, vars_b = set(a.get("vars") or {}), set(b.get("vars") or {})
    for var in sorted(vars_a - vars_b):
        found.append(
            Finding(
                f"vars.{var}",
                "missing",
                "medium",
                f"{name_b} has no var {var}",
                f"add {var} to [env.{name_b}.vars]",
            )
        )
    for var in sorted(vars_b - vars_a):
        found.append(
            Finding(
                f"vars.{var}",
                "unexpected",
                "low",
                f"only {name_b} has var {var}",
                f"remove {var} from env {name_b}, or add it to {name_a}",
            )
        )
    for key in SHOULD_MATCH:
        if a.get(key) != b.get(key):
            severity = "high" if key in HIGH_WHEN_CHANGED else "medium"
            found.append(
                Finding(
                    key,
                    "changed",
                    severity,
                    f"{name_a}: {_short(a.get(key))}; {name_b}: {_short(b.get(key))}",
                    f"set {key} of env {name_b} to {name_a}'s value",
                )
            )
    required_a = set((a.get("secrets") or {}).get("required") or [])
    required_b = set((b.get("secrets") or {}).get("required") or [])
    for secret in sorted(required_a - required_b):
        found.append(
            Finding(
                f"secrets.required.{secret}",
                "missing",
                "medium",
                f"{name_b} does not require secret {secret}",
                f"add {secret} to env {name_b}'s secrets.required, then put the secret",
            )
        )
    return found


def unallowed(findings: Sequence[Finding], allow: Sequence[Allowed], today: date) -> list[Finding]:
    """The findings no unexpired allow-list entry accepts."""
    return [f for f in findings if not any(entry.allows(f, today) for entry in allow)]


# -- added for git-vs-deployed drift and the check (issue 5) -------------------------

SEVERITIES = ("critical", "high", "medium", "low", "info")
# Not drift: a rollout in progress is reported, never failed on.
INFORMATIVE = frozenset({"in_progress"})


def failing(findings: Sequence[Finding], allow: Sequence[Allowed], today: date) -> list[Finding]:
    """What fails the check: every ``unknown`` finding (an API error is never
    accepted: nothing was compared), and every other drift finding that no
    unexpired allow-list entry accepts; ``in_progress`` never fails."""
    open_ = {id(f) for f in unallowed(findings, allow, today)}
    return [
        f for f in findings if f.kind == "unknown" or (f.kind not in INFORMATIVE and id(f) in open_)
    ]


def expired(allow: Sequence[Allowed], today: date) -> list[Allowed]:
    """Allow-list entries past their expiry: they accept nothing and are reported."""
    return [entry for entry in allow if today > entry.expires]


def _bindings(entries) -> dict[str, dict]:
    if isinstance(entries, dict):  # durable_objects = {bindings = [...]}, queues = {...}
        entries = entries.get("bindings") or entries.get("producers") or []
    found = {}
    for entry in entries or []:
        if isinstance(entry, dict):
            name = entry.get("binding") or entry.get("name")
            if isinstance(name, str):
                found[name] = entry
    return found


def _same_resource(a: dict, b: dict) -> str | None:
    for field in RESOURCE_FIELDS:
        if a.get(field) is not None and a.get(field) == b.get(field):
            return f"{field} {a[field]}"
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
