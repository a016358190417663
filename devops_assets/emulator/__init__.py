"""A local stand-in for the Cloudflare endpoints we use, and the history it serves.

``seed_workspace`` writes a simulated account history and a matching git
repository; ``load_app`` serves that state as a WSGI application with the
API's paths, envelopes, pagination, errors and rate limits; ``serve_in_thread``
puts it on a loopback port for tests.
"""

from devops_assets.emulator.app import EMULATOR_TOKEN, PREFIX, EmulatorApp, load_app
from devops_assets.emulator.server import running_server, serve_in_thread
from devops_assets.emulator.simulator import SimulatedHistory, load_history, seed_workspace

__all__ = [
    "EMULATOR_TOKEN",
    "PREFIX",
    "EmulatorApp",
    "SimulatedHistory",
    "load_app",
    "load_history",
    "running_server",
    "seed_workspace",
    "serve_in_thread",
]
