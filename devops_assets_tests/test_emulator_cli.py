"""``devops-assets emulator serve`` and the loopback server helpers."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import httpx
import pytest

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
