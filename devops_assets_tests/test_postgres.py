"""Finding PostgreSQL: URLs name psycopg2, databases come and go, a dead port is skipped."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

from devops_assets.store import PostgresServer, normalize_url


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgres://u@h/db?sslmode=require", "postgresql+psycopg2://u@h/db?sslmode=require"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///tmp/w.sqlite", "sqlite:///tmp/w.sqlite"),
        ("sqlite:///postgresql://odd", "sqlite:///postgresql://odd"),
    ],
)
def test_normalize_url_names_the_psycopg2_driver(url, expected):
    assert normalize_url(url) == expected


def test_urls_and_dagster_env_for_a_tcp_server():
    server = PostgresServer(host="127.0.0.1", port=5433, user="ops", password="p@ss")

    assert server.url("dw") == "postgresql+psycopg2://ops:p%40ss@127.0.0.1:5433/dw"
    assert server.dagster_env("dagster") == {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5433",
        "DAGSTER_PG_USER": "ops",
        "DAGSTER_PG_PASSWORD": "p@ss",
        "DAGSTER_PG_DB": "dagster",
        "DAGSTER_PG_URL": "postgresql+psycopg2://ops:p%40ss@127.0.0.1:5433/dagster",
    }


def test_a_socket_directory_goes_in_the_host_query_parameter():
    server = PostgresServer(host="/run/pg sock", port=5432, user="postgres")

    assert server.url("dw") == "postgresql+psycopg2://postgres@:5432/dw?host=%2Frun%2Fpg+sock"
    assert sa.make_url(server.url("dw")).query == {"host": "/run/pg sock"}
    assert server.dagster_env("d")["DAGSTER_PG_HOST"] == "/run/pg sock"


def test_a_port_nobody_listens_on_does_not_answer():
    assert not PostgresServer(host="127.0.0.1", port=closed_port(), user="postgres").answers()


def test_a_database_is_created_once_and_dropped(postgres_server: PostgresServer):
    name = "test_create_twice"
    postgres_server.drop_database(name)

    postgres_server.create_database(name)
    postgres_server.create_database(name)  # exists already: fine

    engine = sa.create_engine(postgres_server.url(name), poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == name
    postgres_server.drop_database(name)
    postgres_server.drop_database(name)  # gone already: fine
    with pytest.raises(sa.exc.OperationalError, match=f'database "{name}" does not exist'):
        engine.connect()


def test_a_database_name_that_needs_quoting_is_refused(postgres_server: PostgresServer):
    with pytest.raises(ValueError, match="database name 'x; DROP'"):
        postgres_server.create_database("x; DROP")


def test_fresh_databases_are_distinct_and_empty(postgres_url_factory):
    first, second = postgres_url_factory(), postgres_url_factory()

    assert first != second
    engine = sa.create_engine(first, poolclass=sa.NullPool)
    with engine.connect() as conn:
        tables = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname='public'"))
        assert tables.scalar() == 0
