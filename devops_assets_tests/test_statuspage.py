"""The status page reader on hand-made answers, and the incidents asset that uses it.

Answers come through ``httpx.MockTransport``; the asset reads the emulator's
page (its own tests are in test_emulator_edge.py) or a loopback server's.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import dagster as dg
import httpx
import pytest

from devops_assets.config import DEMO_CONFIG, load_config
from devops_assets.defs.ingest.assets import incidents as incidents_asset
from devops_assets.defs.resources import build_resources
from devops_assets.domain.models import Incident
from devops_assets.emulator import PREFIX, STATUS_PATH, load_app, running_server
from devops_assets.sources.events import read_incidents
from devops_assets.sources.statuspage import (
    StatuspageError,
    read_statuspage,
    statuspage_client_for,
)
from devops_assets.store import Warehouse

PAGE = "https://status.example.invalid"
COMPONENTS = {"moltworker": "production", "moltworker-staging": "staging"}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


# -- the reader on hand-made answers ---------------------------------------------


def _incident(number: int, status: str = "resolved", components=("moltworker",), **fields):
    body = {
        "id": f"inc{number}",
        "name": f"Incident {number}",
        "status": status,
        "impact": "major",
        "created_at": "2026-11-02T10:00:00.000-05:00",
        "updated_at": "2026-11-02T12:30:00.000-05:00",
        "monitoring_at": None,
        "resolved_at": "2026-11-02T11:45:00.000-05:00",
        "started_at": "2026-11-02T09:55:00.000-05:00",
        "components": [
            {"id": f"c{i}", "name": n, "status": "operational"} for i, n in enumerate(components)
        ],
    }
    return {**body, **fields}


def _client(*answers: httpx.Response) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def _page(*incidents: dict) -> httpx.Response:
    return httpx.Response(200, json={"page": {"id": "p1"}, "incidents": list(incidents)})


def test_resolved_postmortem_and_open_incidents_map_to_their_environments():
    client, seen = _client(
        _page(
            _incident(1),
            _incident(2, "postmortem", resolved_at=None),
            _incident(3, "monitoring", components=("docs", "moltworker-staging", "moltworker")),
            _incident(4, "investigating", components=("billing",)),
            _incident(5, "identified", components=()),
        )
    )

    found = read_statuspage(PAGE + "/", COMPONENTS, client)

    assert str(seen[0].url) == PAGE + "/api/v2/incidents.json"
    minus_five = datetime.fromisoformat("2026-11-02T10:00:00-05:00").tzinfo
    opened = datetime(2026, 11, 2, 10, tzinfo=minus_five)
    assert found == [
        Incident(
            "inc1",
            "production",
            opened,
            datetime(2026, 11, 2, 16, 45, tzinfo=UTC),
            None,
            "Incident 1",
        ),
        Incident(
            "inc2",
            "production",
            opened,
            datetime(2026, 11, 2, 17, 30, tzinfo=UTC),
            None,
            "Incident 2",
        ),
        Incident("inc3", "staging", opened, None, None, "Incident 3"),
    ]


@pytest.mark.parametrize(
    "incident, message",
    [
        (
            _incident(2, created_at="yesterday"),
            "field created_at: expected an ISO 8601 time with a UTC offset, got 'yesterday'",
        ),
        (
            _incident(2, created_at="2026-11-02T10:00:00"),
            "item 1, field created_at: expected an ISO 8601 time with a UTC offset",
        ),
        (_incident(2, status="degraded"), "item 1, field status: expected one of investigating"),
        (_incident(2, id=7), "item 1, field id: expected a non-empty string, got 7"),
        (
            {**_incident(2), "components": None},
            "item 1, field components: expected a list of components",
        ),
        (
            _incident(2, resolved_at="2026-11-01T00:00:00Z"),
            "item 1, field resolved_at: expected a time not before created_at",
        ),
        (_incident(1), "item 1, field id: expected an id no other incident has, got 'inc1'"),
    ],
)
def test_a_malformed_incident_is_refused_naming_the_page_item_and_field(incident, message):
    client, _ = _client(_page(_incident(1), incident))
    with pytest.raises(StatuspageError) as err:
        read_statuspage(PAGE, COMPONENTS, client)
    assert str(err.value).startswith(f"GET {PAGE}/api/v2/incidents.json: ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "answer, message",
    [
        (
            httpx.Response(500, text="oops"),
            "answered HTTP 500; expected 200 with the incident list",
        ),
        (
            httpx.Response(
                200, text="<html>maintenance</html>", headers={"content-type": "text/html"}
            ),
            "the body is not JSON (text/html); expected JSON",
        ),
        (httpx.Response(200, json={"incidents": {}}), "field incidents: expected a list, got {}"),
        (
            httpx.Response(200, json=[1, 2]),
            "expected a JSON object with an incidents list, got list",
        ),
    ],
)
def test_an_answer_that_is_not_an_incident_list_is_refused(answer, message):
    client, _ = _client(answer)
    with pytest.raises(StatuspageError, match="^GET https://status.example.invalid/api/v2/") as err:
        read_statuspage(PAGE, COMPONENTS, client)
    assert message in str(err.value)


def test_a_redirect_is_not_followed():
    moved = httpx.Response(
        301, headers={"location": "https://elsewhere.invalid/api/v2/incidents.json?k=s3cr3t"}
    )
    client, seen = _client(moved, _page(_incident(1)))
    with pytest.raises(StatuspageError) as err:
        read_statuspage(PAGE, COMPONENTS, client)
    assert len(seen) == 1
    assert (
        "answered HTTP 301, a redirect to 'https://elsewhere.invalid/api/v2/incidents.json'"
        in str(err.value)
    )
    assert "s3cr3t" not in str(err.value)


def test_a_page_that_does_not_answer_in_time_fails_with_a_time_limit_message():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = httpx.Client(transport=httpx.MockTransport(slow))
    with pytest.raises(StatuspageError) as err:
        read_statuspage("https://ops:pw@status.example.invalid", COMPONENTS, client)
    assert str(err.value) == (
        "GET https://status.example.invalid/api/v2/incidents.json: no answer within the time limit"
    )


def test_the_demo_page_needs_the_emulator_state_folder():
    with pytest.raises(StatuspageError, match=r"needs the emulator state folder"):
        statuspage_client_for("emulator:", None)
    base, client = statuspage_client_for(PAGE, None)
    with client:
        assert base == PAGE and client.follow_redirects is False


# -- the incidents asset ---------------------------------------------------------


@pytest.fixture
def home(seeded, tmp_path, monkeypatch):
    """``DEVOPS_ASSETS_HOME`` in tmp_path, holding the seeded state where the demo file looks."""
    monkeypatch.setenv("DEVOPS_ASSETS_HOME", str(tmp_path))
    monkeypatch.delenv("DEVOPS_ASSETS_DB_URL", raising=False)
    shutil.copytree(seeded[1].state_dir, tmp_path / "demo" / "emulator")
    return tmp_path


def _materialize(config) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [incidents_asset],
        resources=build_resources(config),
        instance=dg.DagsterInstance.ephemeral(),
        run_config=QUIET,
        raise_on_error=False,
    )


def test_the_incidents_asset_reads_the_demo_status_page(home):
    config = load_config(DEMO_CONFIG)
    assert config.warehouse_url == f"sqlite:///{home / 'warehouse.sqlite'}"

    result = _materialize(config)

    assert result.success
    stored = Warehouse(config.warehouse_url).incidents()
    assert list(stored) == list(read_incidents(home / "demo" / "emulator" / "incidents.json"))
    metadata = result.asset_materializations_for_node("incidents")[0].metadata
    assert (metadata["incidents"].value, metadata["open_incidents"].value) == (6, 0)
    assert metadata["feed"].value == "emulator:"


def test_a_page_answering_500_fails_the_asset_naming_the_key_and_keeps_the_table(home, seeded):
    assert _materialize(load_config(DEMO_CONFIG)).success
    app = load_app(seeded[1].state_dir)
    app.fail_next("^" + STATUS_PATH + "$", 500, body="down", times=5)
    with running_server(app) as base_url:
        page = base_url.removesuffix(PREFIX)
        text = DEMO_CONFIG.read_text(encoding="utf-8")
        path = home / "platform.toml"
        path.write_text(text.replace('statuspage = "emulator:"', f'statuspage = "{page}"'))
        config = load_config(path)
        result = _materialize(config)

    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert f"{path}: key 'incidents.statuspage': GET {page}/api/v2/incidents.json" in error.message
    assert "answered HTTP 500; expected 200" in error.message
    assert len(Warehouse(config.warehouse_url).incidents()) == 6
