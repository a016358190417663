"""Shared fixtures: a PostgreSQL server, a fresh database per test, and a warehouse
URL on each backend so warehouse tests run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devops_assets.store.postgres import PostgresServer, PostgresUnavailable, find_or_start_postgres


@pytest.fixture(scope="session")
def pg_state_dir_factory() -> Iterator[Callable[[str], Path]]:
    """Folders for embedded PostgreSQL data, outside pytest's temporary root.

    Run as root, pgserver starts PostgreSQL as its own system user, who must be
    able to reach the data folder; every pytest session resets its temporary
    root to mode 0700, which would lock that user out mid-run. Removed at the end.
    """
    made: list[Path] = []

    def make(label: str) -> Path:
        made.append(Path(tempfile.mkdtemp(prefix=f"devops-assets-{label}-")))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(pg_state_dir_factory: Callable[[str], Path]) -> Iterator[PostgresServer]:
    """127.0.0.1:5432 when it answers, else an embedded pgserver stopped at the end.

    With no server at all the test is skipped on a workstation but fails in CI
    (``CI`` set), so the PostgreSQL half of the suite can never silently vanish.
    """
    try:
        server = find_or_start_postgres(pg_state_dir_factory("postgres"))
    except PostgresUnavailable as exc:
        reason = f"no PostgreSQL for the tests: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield server
    server.stop()


@pytest.fixture
def postgres_url_factory(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """Makes uniquely named databases on the test server; all dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        postgres_server.create_database(name)
        created.append(name)
        return postgres_server.url(name)

    yield make
    for name in created:
        postgres_server.drop_database(name)


@pytest.fixture
def fresh_postgres_db(postgres_url_factory: Callable[[], str]) -> str:
    """The URL of an empty database that only this test uses."""
    return postgres_url_factory()


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty warehouse, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse' / 'warehouse.sqlite'}"
    return request.getfixturevalue("fresh_postgres_db")


@pytest.fixture(scope="module")
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The demo platform file and its simulated history, seeded once per test module."""
    from devops_assets_tests.emulator_fixtures import seeded_config

    return seeded_config(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))


@pytest.fixture(scope="session")
def spec():
    """Checks emulator answers against the OpenAPI subset in ../shared/reference."""
    from devops_assets_tests.emulator_fixtures import SpecValidator

    return SpecValidator()


@pytest.fixture
def secured_app(seeded):
    """The seeded emulator, accepting only the test token ``SECRET``."""
    from devops_assets.emulator import load_app
    from devops_assets_tests.emulator_fixtures import SECRET

    return load_app(seeded[1].state_dir, api_tokens=(SECRET,))


@pytest.fixture
def secured_url(secured_app):
    """The base URL of ``secured_app`` served on 127.0.0.1 for the test."""
    from devops_assets.emulator import running_server

    with running_server(secured_app) as base_url:
        yield base_url


@pytest.fixture
def app(seeded):
    """The emulator app over the module's seeded history (in-process)."""
    from devops_assets.emulator import load_app

    return load_app(seeded[1].state_dir)


@pytest.fixture
def api(app, spec):
    """Calls into ``app`` whose every answer is checked against the OpenAPI subset."""
    from devops_assets_tests.emulator_fixtures import Api

    return Api(app, spec)


# A seeded demo workspace per test, for deploy tests (see deploy_fixtures.py).
# The demo served by `dagster dev`, for the browser tests (see browser_fixtures.py).
from devops_assets_tests.browser_fixtures import demo_ui  # noqa: E402, F401
from devops_assets_tests.deploy_fixtures import seeded_template, world  # noqa: E402, F401
