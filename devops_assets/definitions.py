"""The code location ``devops_assets``: what ``dagster dev`` and the webserver load.

The platform file is the one ``DEVOPS_ASSETS_CONFIG`` names, else the demo's.
"""

from devops_assets.defs import build_definitions

defs = build_definitions()
