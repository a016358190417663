"""``devops-assets``: the console script ops engineers and CI steps call."""

from __future__ import annotations

import argparse
import os
import sys

from devops_assets.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    from devops_assets import gate, report
    from devops_assets.demo import commands as demo
    from devops_assets.emulator import cli as emulator_cli
    from devops_assets.triage import cli as triage_cli

    parser = argparse.ArgumentParser(
        prog="devops-assets",
        description="Run and measure the delivery pipeline of a Cloudflare Workers team.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parsers(commands)
    report.add_parser(commands)
    gate.add_parser(commands)
    emulator_cli.add_parser(commands)
    triage_cli.add_parser(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("devops_assets")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"devops-assets: config error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (``| head``) has gone: stop quietly, as other command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
