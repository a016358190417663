"""The emulator's public answers: the workers on workers.dev, and the status page.

On workers.dev the deployed version answers, or the one a request asks for.
The status page must list the simulated incidents exactly as ``incidents.json``
does, so switching the demo's feed changes no metric. Requests go through
``httpx.WSGITransport`` (httpx sets Host from the URL) and, once, through the
real loopback server with an explicit Host header.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from devops_assets.emulator import (
    PREFIX,
    STATUS_PATH,
    WORKERS_DEV_SUBDOMAIN,
    load_app,
    running_server,
    workers_dev_url,
)
from devops_assets.sources.events import read_incidents
from devops_assets.sources.statuspage import read_statuspage
from devops_assets_tests.emulator_fixtures import Api

SHA = "0123456789abcdef0123456789abcdef01234567"
COMPONENTS = {"moltworker": "production", "moltworker-staging": "staging"}
OVERRIDE = "Cloudflare-Workers-Version-Overrides"
DEPLOY = "/accounts/{account}/workers/scripts/moltworker/deployments"


@pytest.fixture
def state(seeded, tmp_path):
    """A copy of the seeded state folder this test may change."""
    return shutil.copytree(seeded[1].state_dir, tmp_path / "state")


@pytest.fixture
def app(state):
    return load_app(state)


@pytest.fixture
def edge(app):
    """A client of the app with no token: the edge is public."""
    return httpx.Client(transport=httpx.WSGITransport(app=app))


def _deploy(app, spec, shares: list[tuple[str, float]]) -> None:
    body = {
        "strategy": "percentage",
        "versions": [{"version_id": v, "percentage": p} for v, p in shares],
    }
    Api(app, spec).call("POST", DEPLOY, json=body)


def test_workers_dev_urls_name_the_script_and_the_subdomain():
    assert WORKERS_DEV_SUBDOMAIN == "moltworker"
    assert workers_dev_url("moltworker-staging") == (
        "https://moltworker-staging.moltworker.workers.dev"
    )


def test_health_answers_the_version_of_the_latest_deployment_and_its_commit(seeded, edge):
    history = seeded[1]
    serving = [d for d in history.deployments if d["worker"] == "moltworker"][-1]

    answer = edge.get(workers_dev_url("moltworker") + "/health")

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.text == (
        f'{{"status":"ok","version":"{serving["version_id"]}","commit":"{serving["commit_sha"]}"}}'
    )
    assert answer.headers["Cf-Worker-Version"] == serving["version_id"]
    staging = [d for d in history.deployments if d["worker"] == "moltworker-staging"][-1]
    other = edge.get(workers_dev_url("moltworker-staging") + "/health")
    assert other.json()["version"] == staging["version_id"]


def test_the_root_names_the_worker_and_other_paths_are_not_found(seeded, edge):
    serving = [d for d in seeded[1].deployments if d["worker"] == "moltworker"][-1]
    root = edge.get(workers_dev_url("moltworker") + "/")
    assert root.status_code == 200 and root.headers["content-type"].startswith("text/plain")
    assert root.text == f"moltworker: a Cloudflare Worker, version {serving['version_id']}\n"
    missing = edge.get(workers_dev_url("moltworker") + "/admin")
    assert (missing.status_code, missing.headers["Cf-Worker-Version"]) == (
        404,
        serving["version_id"],
    )


def test_an_unknown_script_or_one_never_deployed_is_not_found(app, edge):
    unknown = edge.get(workers_dev_url("nothing-here") + "/health")
    assert unknown.status_code == 404
    assert unknown.text == "No worker is deployed at nothing-here.moltworker.workers.dev\n"
    assert "Cf-Worker-Version" not in unknown.headers
    app.state.deployments["moltworker-staging"] = []
    assert edge.get(workers_dev_url("moltworker-staging") + "/health").status_code == 404


def test_the_override_header_reaches_the_new_version_during_a_gradual_rollout(app, edge, spec):
    old = app.state.deployments["moltworker"][-1]["versions"][0]["version_id"]
    app.push("main", SHA, "feat(chat): stream replies")
    new = app.state.versions["moltworker"][-1]["id"]
    _deploy(app, spec, [(new, 10), (old, 90)])

    asked = edge.get(
        workers_dev_url("moltworker") + "/health", headers={OVERRIDE: f'moltworker="{new}"'}
    )

    assert asked.json() == {"status": "ok", "version": new, "commit": SHA}
    other_script = {OVERRIDE: f'moltworker-staging="{new}"'}
    assert (
        edge.get(workers_dev_url("moltworker") + "/health", headers=other_script).json()["version"]
        == old
    )  # the first answer of a 10/90 split is the 90 % version
    not_deployed = app.state.versions["moltworker"][0]["id"]
    header = {OVERRIDE: f'moltworker-staging="x", moltworker="{not_deployed}"'}
    served = [
        edge.get(workers_dev_url("moltworker") + "/", headers=header).headers["Cf-Worker-Version"]
        for _ in range(9)
    ]
    assert not_deployed not in served and set(served) <= {new, old}


def test_a_version_pushed_to_serve_errors_answers_500_at_health(app, edge, spec):
    app.push("main", SHA, "fix(gateway): revert pooling", serves="error")
    broken = app.state.versions["moltworker"][-1]["id"]
    _deploy(app, spec, [(broken, 100)])

    answer = edge.get(workers_dev_url("moltworker") + "/health")

    assert answer.status_code == 500
    assert answer.json() == {"status": "error", "version": broken, "commit": SHA}
    assert '"status":"ok"' not in answer.text


def test_a_push_may_break_one_script_only(app, edge, spec):
    app.push(
        "hardshell", SHA, "feat(config): read the upstream setting", serves={"moltworker": "error"}
    )
    for script in ("moltworker-staging", "moltworker"):
        newest = app.state.versions[script][-1]["id"]
        body = {"strategy": "percentage", "versions": [{"version_id": newest, "percentage": 100}]}
        Api(app, spec).call(
            "POST", f"/accounts/{{account}}/workers/scripts/{script}/deployments", json=body
        )

    staging = edge.get(workers_dev_url("moltworker-staging") + "/health")
    production = edge.get(workers_dev_url("moltworker") + "/health")

    assert (staging.status_code, staging.json()["status"]) == (200, "ok")
    assert (production.status_code, production.json()["status"]) == (500, "error")


def test_a_10_90_deployment_serves_one_request_in_ten_with_the_first_version(app, edge, spec):
    old = app.state.deployments["moltworker"][-1]["versions"][0]["version_id"]
    app.push("main", SHA, "feat(cdp): add request tracing")
    new = app.state.versions["moltworker"][-1]["id"]
    _deploy(app, spec, [(new, 10), (old, 90)])

    served = Counter(
        edge.get(workers_dev_url("moltworker") + "/health").json()["version"] for _ in range(100)
    )

    assert served == {new: 10, old: 90}


def test_edge_requests_need_no_token_and_use_none_of_the_api_quota(app, edge, spec):
    app.set_rate_limit(2, 300)
    for _ in range(5):
        assert edge.get(workers_dev_url("moltworker") + "/health").status_code == 200
    api = Api(app, spec)
    api.call("GET", "/user/tokens/verify")
    assert api.last.headers["Ratelimit"].startswith('"default";r=1;')
    assert app.count(r"^/health$") == 5
    assert {r.host for r in app.requests if r.path == "/health"} == {
        "moltworker.moltworker.workers.dev"
    }


def test_the_loopback_server_serves_the_edge_by_host_header(app):
    expected = app.state.deployments["moltworker"][-1]["versions"][0]["version_id"]
    with running_server(app) as base_url:
        root = base_url.removesuffix(PREFIX)
        host = workers_dev_url("moltworker").removeprefix("https://")
        answer = httpx.get(f"{root}/health", headers={"Host": host}, timeout=5)
        plain = httpx.get(f"{root}/health", timeout=5)
    assert (answer.status_code, answer.json()["version"]) == (200, expected)
    assert answer.headers["Cf-Worker-Version"] == expected
    assert plain.status_code == 404 and plain.json()["errors"][0]["code"] == 7003


def test_an_injected_failure_reaches_the_edge_too(app, edge):
    app.fail_next(r"^/health$", 503, body="upstream connect error", times=1)
    failed = edge.get(workers_dev_url("moltworker") + "/health")
    assert (failed.status_code, failed.text) == (503, "upstream connect error")
    assert edge.get(workers_dev_url("moltworker") + "/health").status_code == 200


# -- the status page ----------------------------------------------------------


def _feed(app) -> dict:
    client = httpx.Client(transport=httpx.WSGITransport(app=app))
    answer = client.get("http://status.test" + STATUS_PATH)
    assert answer.status_code == 200
    return answer.json()


def test_the_page_lists_the_incidents_of_the_file_with_the_same_ids_times_and_titles(state):
    filed = json.loads((state / "incidents.json").read_text(encoding="utf-8"))
    body = _feed(load_app(state))

    listed = body["incidents"]
    assert [i["id"] for i in listed] == [i["id"] for i in filed][::-1]  # newest first
    by_id = {i["id"]: i for i in listed}
    for item in filed:
        shown = by_id[item["id"]]
        assert shown["name"] == item["title"]
        assert datetime.fromisoformat(shown["created_at"]) == datetime.fromisoformat(
            item["created_at"]
        )
        assert datetime.fromisoformat(shown["resolved_at"]) == datetime.fromisoformat(
            item["resolved_at"]
        )
        assert shown["status"] == "resolved"
        component = {"production": "moltworker", "staging": "moltworker-staging"}
        assert [c["name"] for c in shown["components"]] == [component[item["environment"]]]
    assert body["page"]["name"] == "moltworker" and body["page"]["time_zone"] == "Etc/UTC"
    assert listed[0]["created_at"] == "2026-11-17T16:11:10.000+00:00"


def test_reading_the_page_gives_the_incidents_the_file_gives(state):
    client = httpx.Client(transport=httpx.WSGITransport(app=load_app(state)))
    from_page = read_statuspage("http://status.test", COMPONENTS, client)
    from_file = read_incidents(state / "incidents.json")
    assert len(from_page) == len(from_file) == 6
    assert sorted(from_page, key=lambda i: i.incident_id) == list(from_file)


def test_incidents_opened_and_resolved_by_the_controls_show_after_a_reload(state):
    opener = load_app(state, persist=True)
    opened = opener.open_incident("staging", "  Admin UI shows a blank page ")
    assert opened == "INC-007"

    shown = _feed(load_app(state))["incidents"][0]
    assert (shown["id"], shown["status"], shown["resolved_at"]) == (opened, "investigating", None)
    assert shown["name"] == "Admin UI shows a blank page"
    assert [(c["name"], c["status"]) for c in shown["components"]] == [
        ("moltworker-staging", "major_outage")
    ]

    load_app(state, persist=True).resolve_incident(opened)
    client = httpx.Client(transport=httpx.WSGITransport(app=load_app(state)))
    [newest] = [
        i for i in read_statuspage("http://s", COMPONENTS, client) if i.incident_id == opened
    ]
    assert newest.environment == "staging" and newest.resolved_at is not None
    assert newest.resolved_at >= newest.created_at >= datetime(2026, 11, 30, 18, tzinfo=UTC)


def test_the_incident_controls_refuse_what_they_cannot_do(state):
    app = load_app(state)
    with pytest.raises(ValueError, match="open_incident: environment must be one of production"):
        app.open_incident("qa", "anything")
    with pytest.raises(ValueError, match="open_incident: title must be a non-empty text"):
        app.open_incident("production", " ")
    with pytest.raises(ValueError, match="resolve_incident: incident_id 'INC-999' is not in"):
        app.resolve_incident("INC-999")
    with pytest.raises(ValueError, match="incident_id 'INC-001' was resolved already"):
        app.resolve_incident("INC-001")
