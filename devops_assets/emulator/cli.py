"""``devops-assets emulator serve``: the emulator on a loopback port until stopped.

    devops-assets emulator serve --state DIR [--host 127.0.0.1] [--port 8787]
                                 [--seed-config PLATFORM_TOML]

The first line printed is the base URL (ending in ``/client/v4``). With
``--seed-config`` the state folder is seeded from that platform file first
(reused when already seeded). SIGINT or SIGTERM stops the server. An input
it cannot serve is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from pathlib import Path

from devops_assets.config import load_config


def add_parser(subparsers) -> None:
    """Add ``emulator`` (with its ``serve`` action) to the console script's commands."""
    emulator = subparsers.add_parser(
        "emulator",
        help="the local stand-in for the Cloudflare API",
        description="A local, faithful stand-in for the Cloudflare endpoints devops_assets "
        "uses (Workers Builds, versions, deployments), seeded by a deterministic simulator.",
    )
    actions = emulator.add_subparsers(dest="emulator_command", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve an emulator state folder over loopback HTTP",
        description="Serve a seeded state folder on a loopback address until Ctrl-C; "
        "prints the base URL to put in a platform file's [cloudflare] api_base_url.",
    )
    serve.add_argument("--state", required=True, type=Path, help="the emulator state folder")
    serve.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8787, help="TCP port; 0 picks a free one")
    serve.add_argument(
        "--seed-config",
        type=Path,
        metavar="PLATFORM_TOML",
        help="seed the state folder (and the file's repository) from this platform file first",
    )
    serve.set_defaults(run=run_serve)


class CannotServe(Exception):
    """An input ``serve`` refuses; its text is the one line printed on stderr."""


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; new deployments are journaled into the folder.

    A bad host, port or state folder, or a port already taken, is one line on
    stderr naming it, and exit code 2.
    """
    try:
        _check_inputs(args)
        tokens, accepted = _accepted_tokens(args)
        app = _load_state(args.state, tokens)
        base_url, stop = _listen(app, args.host, args.port)
    except CannotServe as exc:
        print(f"devops-assets emulator serve: {exc}", file=sys.stderr)
        return 2
    print(base_url, flush=True)
    print(f"accepts {accepted}; SIGINT or SIGTERM stops it", flush=True)
    _serve_until_signalled(stop)
    print("emulator stopped", flush=True)
    return 0


def _check_inputs(args: argparse.Namespace) -> None:
    """Refuse what can be refused before seeding or binding anything."""
    from devops_assets.emulator.server import check_address

    try:
        check_address(args.host, args.port)
    except ValueError as exc:
        raise CannotServe(str(exc)) from None
    if args.state.exists() and not args.state.is_dir():
        raise CannotServe(f"--state {args.state}: not a folder")


def _accepted_tokens(args: argparse.Namespace) -> tuple[tuple[str, ...], str]:
    """The tokens the server accepts, and how to describe them without their values."""
    from devops_assets.emulator.app import EMULATOR_TOKEN

    tokens, accepted = (EMULATOR_TOKEN,), f"the placeholder token {EMULATOR_TOKEN!r}"
    if args.seed_config is not None:
        config = _seed(args.seed_config, args.state)
        env_token = os.environ.get(config.cloudflare.api_token_env)
        if env_token:
            tokens += (env_token,)
            accepted += f" or the value of ${config.cloudflare.api_token_env}"
    return tokens, accepted


def _load_state(state: Path, tokens: tuple[str, ...]):
    from devops_assets.emulator.app import load_app

    try:
        return load_app(state, persist=True, api_tokens=tokens)
    except FileNotFoundError as exc:
        raise CannotServe(str(exc)) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CannotServe(
            f"{_unreadable(state)}: not a usable emulator state ({type(exc).__name__}: {exc}); "
            "seed it again with --seed-config"
        ) from None


def _unreadable(state: Path) -> Path:
    """The state file that is not valid JSON, or the folder when both files parse."""
    from devops_assets.emulator.state import API_FILE, LOGS_FILE

    for name in (API_FILE, LOGS_FILE):
        try:
            json.loads((state / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return state / name
    return state


def _listen(app, host: str, port: int):
    from devops_assets.emulator.server import serve_in_thread

    try:
        return serve_in_thread(app, host, port)
    except OSError as exc:
        raise CannotServe(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another --port (0 picks a free one)"
        ) from None


def _serve_until_signalled(stop) -> None:
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in _SIGNALS}
    try:
        while not stopping.wait(0.2):
            pass
    finally:
        stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _seed(config_path: Path, state: Path):
    from devops_assets.emulator.simulator import seed_workspace

    config = load_config(config_path)
    settings = dataclasses.replace(config.cloudflare, emulator_state=str(state.resolve()))
    config = dataclasses.replace(config, cloudflare=settings)
    history = seed_workspace(config)
    print(f"seeded {state} and {history.repo} ({len(history.builds)} builds)", flush=True)
    return config


def main(argv: list[str] | None = None) -> int:
    """Run the emulator commands alone: ``python -m devops_assets.emulator.cli serve …``."""
    parser = argparse.ArgumentParser(prog="devops-assets")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["emulator", *(sys.argv[1:] if argv is None else argv)])
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
