"""Shared helpers for the emulator and Cloudflare source tests.

``seeded_config`` points the demo platform file at a temporary workspace and
seeds it; ``SpecValidator`` checks an answer against the OpenAPI subset in
``../shared/reference`` (skipped when the file is absent, failed in CI).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from devops_assets.config import DEMO_CONFIG, PlatformConfig, load_config
from devops_assets.emulator import EMULATOR_TOKEN, PREFIX, SimulatedHistory, seed_workspace

SPEC_PATH = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "reference"
    / "cloudflare-openapi-subset.json"
)
# A token the secured emulator accepts; tests check it never shows in an error.
SECRET = "cf-test-token-0123456789abcdef-do-not-print"
TAG = "5a0e7f3c9b2d4e61a8c7f0b3d2e1c4a9"  # moltworker-staging's external_script_id
WORKER = "moltworker-staging"
LIST = r"/builds/workers/[^/]+/builds$"  # the list-builds path
AUTH = {"Authorization": f"Bearer {EMULATOR_TOKEN}"}
SMALL_END = datetime.fromisoformat("2026-11-30T18:00:00+00:00")


def demo_config(root: Path) -> PlatformConfig:
    """The demo platform file with its repository and emulator state under ``root``."""
    config = load_config(DEMO_CONFIG)
    settings = dataclasses.replace(config.cloudflare, emulator_state=str(root / "emulator"))
    return dataclasses.replace(
        config,
        repository=str(root / "repo"),
        cloudflare=settings,
        incidents_file=str(root / "emulator" / "incidents.json"),
    )


HTTP_TOKEN_ENV = "DEVOPS_ASSETS_TEST_CF_TOKEN"


@contextmanager
def demo_over_http(root: Path, monkeypatch, warehouse_url: str):
    """The seeded demo served by the emulator on 127.0.0.1: yields the seeded config,
    the app, the history and the demo platform file's text rewritten to reach it
    (API URL, a token variable set for the test, the seeded repository)."""
    from devops_assets.emulator import load_app
    from devops_assets.emulator.server import running_server

    seeded = demo_config(root)
    history = seed_workspace(seeded)
    app = load_app(seeded.cloudflare.emulator_state)
    monkeypatch.setenv(HTTP_TOKEN_ENV, EMULATOR_TOKEN)
    monkeypatch.setenv("DEVOPS_ASSETS_DB_URL", warehouse_url)
    with running_server(app) as base_url:
        text = seeded.path.read_text(encoding="utf-8")
        text = text.replace('api_base_url = "emulator:"', f'api_base_url = "{base_url}"')
        text = text.replace('"CLOUDFLARE_API_TOKEN"', f'"{HTTP_TOKEN_ENV}"')
        text = text.replace('"{home}/demo/repo"', f'"{history.repo}"')
        yield seeded, app, history, text


def seeded_config(root: Path, **options) -> tuple[PlatformConfig, SimulatedHistory]:
    config = demo_config(root)
    return config, seed_workspace(config, **options)


def worker_tag(config: PlatformConfig, environment: str) -> tuple[str, str]:
    worker = config.worker(config.environment(environment).worker)
    return worker.name, worker.tag


class SpecValidator:
    """Validates emulator answers against the OpenAPI subset's response schemas."""

    def __init__(self):
        if not SPEC_PATH.exists():
            reason = f"the OpenAPI subset is missing: {SPEC_PATH}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        self.spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
        self.routes = [
            (re.compile("/client/v4" + re.sub(r"\{[^}]+\}", "[^/]+", path)), path)
            for path in self.spec["paths"]
        ]
        self.checked: list[tuple[str, str, int]] = []

    def schema_for(self, method: str, path: str, status: int) -> dict:
        """The response schema the spec gives this path and status.

        Paths the subset lacks (the services look-up, unknown routes) and
        statuses an operation does not list (401/403/429 on a Builds path)
        fall back to the family's documented failure envelope.
        """
        template = next((t for regex, t in self.routes if regex.fullmatch(path)), None)
        operation = self.spec["paths"].get(template, {}).get(method.lower(), {})
        responses = operation.get("responses", {})
        response = responses.get(str(status)) or (responses.get("4XX") if status < 500 else None)
        builds = "/builds/" in path
        if response is None and status >= 400:
            name = "builds_ErrorResponse" if builds else "workers_api-response-common-failure"
            return {"$ref": f"#/components/schemas/{name}"}
        if response is None:
            return {"$ref": "#/components/schemas/workers_api-response-common"}
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[-1]
            response = self.spec["components"]["responses"][name]
        return response["content"]["application/json"]["schema"]

    def validate(self, method: str, path: str, status: int, body: dict) -> None:
        schema = {**self.schema_for(method, path, status), "components": self.spec["components"]}
        OAS30ReadValidator(schema, format_checker=oas30_format_checker).validate(body)
        self.checked.append((method, path, status))


class Api:
    """An in-process client that validates every answer against the spec."""

    def __init__(self, app, spec, headers=AUTH):
        self.app, self.spec = app, spec
        transport = httpx.WSGITransport(app=app)
        self.http = httpx.Client(
            transport=transport, base_url="http://emulator.test", headers=headers
        )
        self.account = app.state.account_id

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        path = PREFIX + path.replace("{account}", self.account)
        response = self.http.request(method, path, **kwargs)
        body = response.json()
        assert response.status_code == expect, body
        self.spec.validate(method, path, response.status_code, body)
        self.last = response
        return body

    def error(self, method: str, path: str, status: int, **kwargs) -> tuple[int, str]:
        body = self.call(method, path, status, **kwargs)
        assert body["success"] is False and body["result"] is None
        return body["errors"][0]["code"], body["errors"][0]["message"]
