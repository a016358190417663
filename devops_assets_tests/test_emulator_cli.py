"""``devops-assets emulator serve`` and the loopback server helpers."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from devops_assets import cli
from devops_assets.config import DEMO_CONFIG
from devops_assets.emulator import EMULATOR_TOKEN, load_app, running_server, serve_in_thread
from devops_assets.emulator import cli as emulator_cli
from devops_assets_tests.emulator_fixtures import AUTH


def test_the_serve_subcommand_parses_with_loopback_defaults(tmp_path):
    parser = argparse.ArgumentParser()
    emulator_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["emulator", "serve", "--state", str(tmp_path)])
    assert (args.host, args.port, args.state, args.seed_config) == (
        "127.0.0.1",
        8787,
        tmp_path,
        None,
    )
    assert args.run is emulator_cli.run_serve


def test_serve_without_a_seeded_state_explains_how_to_seed(tmp_path, capsys):
    assert emulator_cli.main(["serve", "--state", str(tmp_path / "empty"), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'empty'}: no emulator state (api.json is missing)" in error
    assert "seed_workspace" in error


def test_the_thread_server_serves_on_a_free_loopback_port_until_stopped(seeded):
    app = load_app(seeded[1].state_dir)
    base_url, stop = serve_in_thread(app)
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/client/v4")
    answer = httpx.get(f"{base_url}/user/tokens/verify", headers=AUTH)
    assert answer.json()["result"]["status"] == "active"
    stop()
    stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/user/tokens/verify", headers=AUTH, timeout=2)


def test_the_server_refuses_hosts_other_than_loopback(seeded):
    app = load_app(seeded[1].state_dir)
    with pytest.raises(ValueError, match="'0.0.0.0': expected a loopback address"):
        serve_in_thread(app, host="0.0.0.0")  # noqa: S104 (refusing it is the point)
    with running_server(app, host="localhost") as base_url:
        assert httpx.get(f"{base_url}/nowhere", headers=AUTH).json()["errors"][0]["code"] == 7003


def test_serve_seeds_prints_the_url_and_stops_on_sigterm(tmp_path):
    platform = tmp_path / "platform.toml"
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("{home}/demo", str(tmp_path / "demo"))
    platform.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "devops_assets.emulator.cli", "serve", "--state", str(state)]
    argv += ["--port", "0", "--seed-config", str(platform)]
    env = {**os.environ, "CLOUDFLARE_API_TOKEN": "token-from-the-environment"}
    server = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        seeded_line = server.stdout.readline()
        base_url = server.stdout.readline().strip()
        accepts = server.stdout.readline()
        assert seeded_line.startswith(f"seeded {state}")
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/client/v4")
        assert "$CLOUDFLARE_API_TOKEN" in accepts and "token-from-the-environment" not in accepts
        for token in (EMULATOR_TOKEN, "token-from-the-environment"):
            headers = {"Authorization": f"Bearer {token}"}
            verified = httpx.get(f"{base_url}/user/tokens/verify", headers=headers, timeout=5)
            assert verified.json()["result"]["status"] == "active"
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=10)
    finally:
        server.kill()
    assert server.returncode == 0, err
    assert out.strip().endswith("emulator stopped")
    assert (tmp_path / "demo" / "repo" / ".git").is_dir()


@pytest.fixture
def refusal_within_ten_seconds():
    """Bounds a test that expects ``serve`` to refuse: were it to serve instead, SIGALRM
    ends the wait with an error (and ``serve`` still stops its server on the way out)."""

    def expire(*_) -> None:
        raise TimeoutError("emulator serve served instead of refusing its input")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 10)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def _refusal(capsys, *args: str) -> str:
    """The one stderr line of ``devops-assets emulator serve ARGS``, which must exit 2."""
    assert cli.main(["emulator", "serve", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    return err.removeprefix("devops-assets emulator serve: ").rstrip("\n")


def test_serve_refuses_a_host_that_is_not_loopback(seeded, capsys, refusal_within_ten_seconds):
    state = str(seeded[1].state_dir)
    error = _refusal(capsys, "--state", state, "--host", "0.0.0.0")  # noqa: S104 (refused)
    assert error == "emulator host '0.0.0.0': expected a loopback address such as 127.0.0.1"


def test_serve_refuses_a_port_outside_tcp_range(seeded, capsys, refusal_within_ten_seconds):
    error = _refusal(capsys, "--state", str(seeded[1].state_dir), "--port", "99999")
    assert error == "emulator port 99999: expected 0 to 65535 (0 picks a free one)"


def test_serve_refuses_a_state_that_is_a_file(tmp_path, capsys, refusal_within_ten_seconds):
    state = tmp_path / "api.json"
    state.write_text("{}", encoding="utf-8")
    assert (
        _refusal(capsys, "--state", str(state), "--port", "0") == f"--state {state}: not a folder"
    )


def test_serve_refuses_a_corrupt_api_json_naming_the_file(
    seeded, tmp_path, capsys, refusal_within_ten_seconds
):
    state = shutil.copytree(seeded[1].state_dir, tmp_path / "state")
    (state / "api.json").write_text('{"account_id": ', encoding="utf-8")
    error = _refusal(capsys, "--state", str(state), "--port", "0")
    assert error == (
        f"{state / 'api.json'}: not a usable emulator state (JSONDecodeError: Expecting value: "
        "line 1 column 16 (char 15)); seed it again with --seed-config"
    )


def test_serve_refuses_a_port_already_taken(seeded, capsys, refusal_within_ten_seconds):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = _refusal(capsys, "--state", str(seeded[1].state_dir), "--port", str(port))
    assert error == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another --port (0 picks a free one)"
    )
