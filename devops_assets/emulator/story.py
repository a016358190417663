"""The people, words and numbers the simulated team's history is made of.

Everything here is drawn from a seeded ``random.Random`` handed in by the
caller, so the same seed always tells the same story.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Person:
    """A git identity; ``offset_minutes`` is the UTC offset their clock shows."""

    name: str
    email: str
    offset_minutes: int

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(minutes=self.offset_minutes))


DEVELOPERS = (
    Person("Mara Lindqvist", "mara@moltworker.example", 60),
    Person("Tomás Okafor", "tomas@moltworker.example", 0),
    Person("Priya Raman", "priya@moltworker.example", 330),
    Person("Jonah Weiss", "jonah@moltworker.example", -300),
    Person("Lena Brandt", "lena@moltworker.example", 120),
    Person("Sam Ortiz", "sam@moltworker.example", -480),
)
RELEASER = DEVELOPERS[0]  # promotes hardshell to main and runs rollbacks
GITHUB = Person("GitHub", "noreply@github.com", 0)
ORG = "example-org"
REPO = "moltworker"

AREAS = (
    "gateway", "sandbox", "r2-sync", "auth", "admin-ui",
    "cdp", "chat", "telemetry", "config", "cron",
)  # fmt: skip

TITLES = {
    "feat": (
        "add retry budget for upstream calls", "support streaming responses",
        "expose a health endpoint", "add device pairing flow", "cache tokens in KV",
        "add rate limiting per device", "persist session state to R2",
        "add an audit log", "support custom domains", "add websocket keepalive",
        "show build info", "add a scheduled backup job", "add request tracing",
        "allow multiple gateways", "add a maintenance mode switch",
    ),
    "fix": (
        "handle an empty request body", "avoid a double sync on restart",
        "correct the time zone of schedules", "retry R2 writes on 503",
        "close sockets on abort", "escape HTML in error pages",
        "respect Retry-After from upstream", "fix a race at startup",
    ),
    "refactor": (
        "extract the request router", "split the config loader",
        "simplify error mapping", "move constants to one module",
    ),
    "perf": ("stream large objects", "trim cold start with lazy imports", "batch KV reads"),
    "docs": ("document the deployment process", "explain the staging setup", "add troubleshooting"),
    "test": ("cover auth edge cases", "add an e2e smoke test", "stabilise a flaky test"),
    "chore": ("tidy the eslint config", "update type definitions", "remove dead code"),
}  # fmt: skip
TYPE_WEIGHTS = {
    "feat": 45, "fix": 24, "refactor": 10, "perf": 5, "docs": 6, "test": 6, "chore": 4,
}  # fmt: skip
FOLLOW_UPS = (
    "test({area}): cover {short}",
    "fix({area}): address review comments",
    "refactor({area}): tidy {short}",
    "docs({area}): note {short}",
    "fix({area}): handle the error path",
)
DEPENDENCIES = {"wrangler": [4, 20, 0], "hono": [4, 6, 2], "vitest": [3, 1, 0], "zod": [3, 24, 1]}
CHORES = (
    "ci: cache npm in the deploy workflow",
    "docs: update the README",
    "chore: update the compatibility date",
    "chore(lint): enable stricter rules",
)
BUILD_FIXES = {
    "typescript": "fix(types): repair the build after a type change",
    "dependency": "fix(deps): pin a transitive dependency",
    "test": "test: stabilise a flaky e2e test",
    "deploy": "fix(ci): restore the deploy token scope",
    "memory": "chore(build): lower bundler memory use",
}
HOTFIXES = (
    "fix(gateway): revert connection pooling regression",
    "fix(auth): restore the session cookie path",
    "fix(r2-sync): stop the sync loop on empty buckets",
    "fix(admin-ui): ship the missing asset manifest",
    "fix(sandbox): raise the startup timeout again",
    "fix(chat): drop the duplicate message handler",
)
INCIDENT_TITLES = (
    "Elevated 5xx on the gateway after a deployment",
    "Sessions logged out after a deployment",
    "R2 sync stalled for new devices",
    "Admin UI shows a blank page",
    "Sandbox cold starts time out",
    "Websocket connections drop on staging",
)


def weighted(rng: random.Random, weights: dict[T, int]) -> T:
    """One key of ``weights``, drawn in proportion to its weight."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def pick_author(rng: random.Random) -> Person:
    return rng.choice(DEVELOPERS)


def build_seconds(rng: random.Random, outcome: str) -> float:
    """How long a build runs (running → stopped), in seconds.

    Successful builds take 1.5–4 minutes most of the time, with a tail of slow
    ones (cold caches, big installs) that can pass ten minutes. Failed builds
    stop early, at the step that failed; cancelled ones earlier still.
    """
    if outcome == "fail":
        return rng.uniform(40, 210)
    if outcome == "cancelled":
        return rng.uniform(15, 90)
    if rng.random() < 0.09:
        return rng.uniform(300, 760)
    return min(max(rng.lognormvariate(math.log(150), 0.28), 80), 290)


def slugify(text: str) -> str:
    words = [w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split()]
    return "-".join(w for w in words if w not in {"a", "an", "the", "to", "of", "for"})[:40]


@dataclass
class Feature:
    """One pull request: its branch, its commits' times and when it merges."""

    number: int
    kind: str
    area: str
    title: str
    author: Person
    times: list[datetime]
    merge_at: datetime
    branch: str
    breaking: bool = False

    @property
    def subject(self) -> str:
        return f"{self.kind}({self.area}){'!' if self.breaking else ''}: {self.title}"

    @property
    def path(self) -> str:
        return f"src/{self.area}/{self.branch.removeprefix('feature/')}.ts"

    @property
    def test_path(self) -> str:
        return f"test/{self.branch.removeprefix('feature/')}.test.ts"


def package_json(deps: dict[str, list[int]]) -> str:
    versions = {name: "^" + ".".join(map(str, v)) for name, v in sorted(deps.items())}
    scripts = {"build": "vite build", "deploy": "wrangler deploy", "test": "vitest run"}
    body = {"name": "moltworker", "private": True, "scripts": scripts, "dependencies": versions}
    return json.dumps(body, indent=2) + "\n"


# The secrets both Workers need (``secrets.required`` of the wrangler file).
REQUIRED_SECRETS = ("ANTHROPIC_API_KEY", "MOLTBOT_GATEWAY_TOKEN")
# Each environment's D1 database: (database_name, database_id), bound as ``DB``.
D1_BINDING = "DB"
D1_DATABASES = {
    "production": ("moltworker-db", "7c1f5e2a-3b4d-4e8f-9a6b-0c2d4e6f8a10"),
    "staging": ("moltworker-staging-db", "2b9d4f6a-8c1e-4a3b-b5d7-e9f1a3c5e7b2"),
}
# The D1 migrations of the repository; the seeded databases have the first two applied.
MIGRATIONS = {
    "migrations/0001_init.sql": (
        "-- Devices paired with the gateway, and their settings.\n"
        "CREATE TABLE devices (\n"
        "  id TEXT PRIMARY KEY,\n"
        "  name TEXT NOT NULL,\n"
        "  paired_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP\n"
        ");\n"
        "CREATE TABLE device_settings (\n"
        "  device_id TEXT NOT NULL REFERENCES devices(id),\n"
        "  key TEXT NOT NULL,\n"
        "  value TEXT NOT NULL,\n"
        "  PRIMARY KEY (device_id, key)\n"
        ");\n"
    ),
    "migrations/0002_sessions.sql": (
        "-- Chat sessions kept across restarts.\n"
        "CREATE TABLE sessions (\n"
        "  id TEXT PRIMARY KEY,\n"
        "  device_id TEXT NOT NULL REFERENCES devices(id),\n"
        "  started_at TEXT NOT NULL,\n"
        "  ended_at TEXT\n"
        ");\n"
    ),
    "migrations/0003_session_index.sql": (
        "-- Sessions are looked up by device, newest first.\n"
        "CREATE INDEX sessions_by_device ON sessions (device_id, started_at);\n"
    ),
}
APPLIED_MIGRATIONS = ("0001_init.sql", "0002_sessions.sql")


def d1_binding(environment: str) -> dict:
    """The ``d1_databases`` entry of ``environment`` in the wrangler file."""
    name, database_id = D1_DATABASES[environment]
    return {
        "binding": D1_BINDING,
        "database_name": name,
        "database_id": database_id,
        "migrations_dir": "migrations",
    }


def initial_tree(production: str, staging: str) -> dict[str, str]:
    """The files of the first commit: a small Worker with a staging environment."""
    secrets = {"required": list(REQUIRED_SECRETS)}
    wrangler = {
        "name": production,
        "main": "src/index.ts",
        "compatibility_date": "2026-05-01",
        "compatibility_flags": ["nodejs_compat"],
        "r2_buckets": [{"binding": "MOLTBOT_BUCKET", "bucket_name": "moltbot-data"}],
        "d1_databases": [d1_binding("production")],
        "secrets": secrets,
        "env": {
            "staging": {
                "name": staging,
                "r2_buckets": [{"binding": "MOLTBOT_BUCKET", "bucket_name": "moltbot-staging"}],
                "d1_databases": [d1_binding("staging")],
                "secrets": secrets,
            }
        },
    }
    files = {
        "README.md": "# moltworker\n\nA Cloudflare Worker with a staging environment.\n",
        "package.json": package_json({k: list(v) for k, v in DEPENDENCIES.items()}),
        "wrangler.jsonc": "// The Worker and its staging environment.\n"
        + json.dumps(wrangler, indent=2),
        "src/index.ts": "export default { fetch: () => new Response('ok') };\n",
        "test/index.test.ts": "import { it } from 'vitest';\nit('boots', () => {});\n",
        ".github/workflows/deploy.yml": "name: checks\non: [push]\n",
    }
    files.update({f"src/{area}/index.ts": f"// {area}\n" for area in AREAS})
    files.update(MIGRATIONS)
    return files
