"""A local stand-in for the Cloudflare endpoints we use, and the history it serves.

``seed_workspace`` writes a simulated account history and a matching git
repository; ``load_app`` serves that state as a WSGI application with the
API's paths, envelopes, pagination, errors and rate limits, the workers
themselves on their workers.dev hosts (``workers_dev_url``) and the team's
status page; ``serve_in_thread`` puts it on a loopback port for tests.
Besides builds, versions and deployments it answers Worker secrets and
``versions/latest`` (``secrets_api``), script settings (``settings_api``)
and D1 (``d1_api``, real SQLite files in the state folder).
"""

from devops_assets.emulator.app import EMULATOR_TOKEN, PREFIX, EmulatorApp, load_app
from devops_assets.emulator.edge import WORKERS_DEV_SUBDOMAIN, workers_dev_url
from devops_assets.emulator.server import running_server, serve_in_thread
from devops_assets.emulator.simulator import SimulatedHistory, load_history, seed_workspace
from devops_assets.emulator.statusfeed import STATUS_PATH

__all__ = [
    "EMULATOR_TOKEN",
    "PREFIX",
    "STATUS_PATH",
    "WORKERS_DEV_SUBDOMAIN",
    "EmulatorApp",
    "SimulatedHistory",
    "load_app",
    "load_history",
    "running_server",
    "seed_workspace",
    "serve_in_thread",
    "workers_dev_url",
]
