"""Find a PostgreSQL server for the Dagster instance and the warehouse.

The machine's server on 127.0.0.1:5432 is used when it answers a real query;
otherwise an embedded PostgreSQL 16 from the ``pgserver`` wheel is started with
its data under a state folder and left running, so later processes (the
``dagster dev`` daemons, the next test session) reuse it instead of starting
another. The embedded server listens on a unix socket only, never on TCP.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

DRIVER = "postgresql+psycopg2"
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
LOCAL_USER = "postgres"
CONNECT_TIMEOUT_S = 2
STOP_TIMEOUT_S = 30
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BARE_SCHEMES = ("postgresql://", "postgres://")


class PostgresUnavailable(RuntimeError):
    """Neither a running server nor the embedded one could be had."""


def normalize_url(url: str) -> str:
    """Name the psycopg2 driver in a PostgreSQL URL; leave any other URL alone.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, which this
    project does not install (dagster-postgres brings psycopg2).
    """
    for scheme in _BARE_SCHEMES:
        if url.startswith(scheme):
            return f"{DRIVER}://{url[len(scheme) :]}"
    return url


@dataclass(frozen=True)
class PostgresServer:
    """Where a PostgreSQL server answers.

    ``host`` is a hostname, or for the embedded server the directory holding its
    unix socket (it starts with ``/``). ``data_dir`` is set only for a server
    this module started; only such a server is ever stopped by :meth:`stop`.
    """

    host: str
    port: int
    user: str
    password: str = ""
    data_dir: Path | None = None

    @property
    def uses_socket(self) -> bool:
        return self.host.startswith("/")

    @property
    def embedded(self) -> bool:
        return self.data_dir is not None

    def url(self, dbname: str = "postgres") -> str:
        """A SQLAlchemy URL naming the psycopg2 driver; a socket goes in ``?host=``."""
        on_socket = self.uses_socket
        return URL.create(
            DRIVER,
            username=self.user,
            password=self.password or None,
            host=None if on_socket else self.host,
            port=self.port,
            database=dbname,
            query={"host": self.host} if on_socket else {},
        ).render_as_string(hide_password=False)

    def dagster_env(self, dbname: str) -> dict[str, str]:
        """Environment for a ``dagster.yaml`` storage block reading ``{env: ...}``.

        ``DAGSTER_PG_HOST`` .. ``DAGSTER_PG_DB`` fill a ``postgres_db`` block (set
        ``scheme: postgresql+psycopg2`` there). dagster-postgres pastes ``hostname``
        into the URL's host part, where a socket directory does not work, so
        for the embedded server use ``postgres_url: {env: DAGSTER_PG_URL}``;
        that key works for both kinds of server.
        """
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": dbname,
            "DAGSTER_PG_URL": self.url(dbname),
        }

    def answers(self) -> bool:
        """True when the server runs ``SELECT 1`` within a couple of seconds."""
        if not self.uses_socket and not _port_open(self.host, self.port):
            return False
        try:
            return _scalar(self.url(), "SELECT 1") == 1
        except sa.exc.SQLAlchemyError as exc:
            log.info("PostgreSQL at %s:%s does not answer: %s", self.host, self.port, exc)
            return False

    def create_database(self, name: str) -> None:
        """Create database ``name``; an existing one is left as it is."""
        quoted = _quoted_name(name)
        exists = "SELECT 1 FROM pg_database WHERE datname = :name"
        if _scalar(self.url(), exists, name=name) is None:
            try:
                _admin(self.url(), f"CREATE DATABASE {quoted}")
            except sa.exc.DBAPIError:
                if _scalar(self.url(), exists, name=name) is None:
                    raise  # not a concurrent creator winning the race: a real failure
        log.info("Database %s is ready on %s", name, self.host)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, closing its connections; a missing one is fine."""
        _admin(self.url(), f"DROP DATABASE IF EXISTS {_quoted_name(name)} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the embedded server; a server this module did not start is left alone.

        The postmaster gets SIGINT, PostgreSQL's "fast" shutdown, as ``pg_ctl stop -m
        fast`` would send; signalling directly also works when pgserver runs the
        server as its own system user and that user can no longer reach the folder.
        """
        if self.data_dir is None or not _postmaster_up(self.data_dir):
            return
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return  # a stale pid file from a crash: nothing is running
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _postmaster_up(self.data_dir):
            if time.monotonic() > deadline:
                raise PostgresUnavailable(
                    f"embedded PostgreSQL in {self.data_dir} did not stop within {STOP_TIMEOUT_S} s"
                )
            time.sleep(0.05)
        log.info("Stopped the embedded PostgreSQL in %s", self.data_dir)


def find_or_start_postgres(
    state_dir: Path,
    *,
    host: str = LOCAL_HOST,
    port: int = LOCAL_PORT,
    user: str = LOCAL_USER,
) -> PostgresServer:
    """The server at ``host:port`` when it answers, else the embedded one in ``state_dir``."""
    server = PostgresServer(host=host, port=port, user=user)
    if server.answers():
        log.info("Using PostgreSQL at %s:%s", host, port)
        return server
    return start_embedded_postgres(state_dir)


def start_embedded_postgres(state_dir: Path) -> PostgresServer:
    """Start (or reuse) the ``pgserver`` PostgreSQL whose data is ``state_dir/pgdata``.

    The server keeps running after this process exits so that every process of
    the workspace shares it; :meth:`PostgresServer.stop` ends it. Re-running is
    safe: a server already running on that data folder is reused as it is.
    """
    data_dir = Path(state_dir).expanduser().resolve() / "pgdata"
    handle = _pgserver_handle(data_dir)
    info = handle.get_postmaster_info()
    if info.socket_dir is None:
        raise PostgresUnavailable(f"embedded PostgreSQL in {data_dir} reports no unix socket")
    server = PostgresServer(
        host=str(info.socket_dir),
        port=info.port or LOCAL_PORT,
        user=handle.postgres_user,
        data_dir=data_dir,
    )
    if not server.answers():
        raise PostgresUnavailable(f"embedded PostgreSQL in {data_dir} does not answer SELECT 1")
    log.info("Using embedded PostgreSQL in %s (socket %s)", data_dir, info.socket_dir)
    return server


def _pgserver_handle(data_dir: Path) -> Any:
    """pgserver's handle on a running server for ``data_dir``, started if need be."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise PostgresUnavailable(f"no server answers and pgserver is missing: {exc}") from exc
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = pgserver.get_server(data_dir, cleanup_mode=None)
        if not _postmaster_up(data_dir):
            handle.ensure_postgres_running()  # stopped earlier in this same process
    except (OSError, RuntimeError, AssertionError, subprocess.SubprocessError) as exc:
        raise PostgresUnavailable(
            f"embedded PostgreSQL in {data_dir} did not start ({exc}); see {data_dir / 'log'}"
        ) from exc
    return handle


def _postmaster_up(data_dir: Path) -> bool:
    """PostgreSQL removes ``postmaster.pid`` on a clean stop. (A process check is not
    enough: the stopped postmaster can linger as a zombie, which counts as running.)"""
    return (data_dir / "postmaster.pid").exists()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _engine(url: str, **options: Any) -> sa.Engine:
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
    return sa.create_engine(url, connect_args=connect_args, poolclass=sa.NullPool, **options)


def _scalar(url: str, sql: str, **params: Any) -> Any:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def _admin(url: str, sql: str) -> None:
    """Run a statement that cannot run inside a transaction (CREATE/DROP DATABASE)."""
    engine = _engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def _quoted_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise ValueError(
            f"database name {name!r}: expected letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters"
        )
    return f'"{name}"'
