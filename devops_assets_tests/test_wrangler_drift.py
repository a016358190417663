"""Drift between two environments of a wrangler file, with known answers."""

from __future__ import annotations

from datetime import date

from devops_assets.wrangler.drift import Allowed, Finding, drift, unallowed
from devops_assets.wrangler.environments import load
from devops_assets_tests.git_fixtures import shared_data

PAIR = """
name = "moltworker"
main = "src/index.ts"
compatibility_date = "2025-05-06"

[env.production]
name = "moltworker"
compatibility_flags = ["nodejs_compat"]
[env.production.vars]
LOG_LEVEL = "warn"
GATEWAY_URL = "https://gw.example.com"
[[env.production.d1_databases]]
binding = "DB"
database_id = "00000000-0000-4000-8000-000000000001"
[[env.production.r2_buckets]]
binding = "DATA"
bucket_name = "moltworker-data"
[env.production.secrets]
required = ["ANTHROPIC_API_KEY", "GATEWAY_TOKEN"]

[env.staging]
compatibility_flags = ["nodejs_compat"]
[env.staging.vars]
LOG_LEVEL = "debug"
DEBUG_ROUTES = "1"
[[env.staging.d1_databases]]
binding = "DB"
database_id = "00000000-0000-4000-8000-000000000001"
[env.staging.secrets]
required = ["ANTHROPIC_API_KEY"]
"""


def pair(tmp_path):
    path = tmp_path / "wrangler.toml"
    path.write_text(PAIR, encoding="utf-8")
    config = load(path)
    return config.resolve("production"), config.resolve("staging")


def test_the_pair_gives_exactly_the_expected_findings(tmp_path):
    production, staging = pair(tmp_path)
    found = [(f.key, f.kind, f.severity) for f in drift(production, staging)]
    assert found == [
        ("d1_databases.DB", "shared", "high"),  # staging writes production's database
        ("r2_buckets.DATA", "missing", "high"),
        ("vars.GATEWAY_URL", "missing", "medium"),
        ("vars.DEBUG_ROUTES", "unexpected", "low"),
        ("secrets.required.GATEWAY_TOKEN", "missing", "medium"),
    ]
    # compatibility_date and main are inherited by both: no finding; LOG_LEVEL's value
    # differs, which environments are expected to do: no finding either


def test_each_finding_says_what_would_sync_it(tmp_path):
    production, staging = pair(tmp_path)
    fixes = {f.key: f.fix for f in drift(production, staging)}
    assert fixes["r2_buckets.DATA"] == "add a r2_buckets entry with binding 'DATA' to env staging"
    assert fixes["vars.GATEWAY_URL"] == "add GATEWAY_URL to [env.staging.vars]"
    assert fixes["d1_databases.DB"] == "give env staging its own resource for DB"


def test_a_changed_runtime_key_is_high(tmp_path):
    production, staging = pair(tmp_path)
    staging.config["compatibility_flags"] = []
    [finding] = [f for f in drift(production, staging) if f.key == "compatibility_flags"]
    assert (finding.kind, finding.severity) == ("changed", "high")
    assert finding.detail == "production: ['nodejs_compat']; staging: []"


def test_an_allow_list_entry_accepts_until_it_expires(tmp_path):
    production, staging = pair(tmp_path)
    findings = drift(production, staging)
    entry = Allowed("vars.DEBUG_ROUTES", "debug pages on staging only", "ops", date(2026, 12, 31))
    keys = {f.key for f in unallowed(findings, [entry], date(2026, 12, 31))}
    assert "vars.DEBUG_ROUTES" not in keys and len(keys) == len(findings) - 1
    expired = unallowed(findings, [entry], date(2027, 1, 1))
    assert {f.key for f in expired} == {f.key for f in findings}
    other = Finding("vars.X", "missing", "medium", "", "")
    assert unallowed([other], [entry], date(2026, 12, 1)) == [other]


def test_real_environments_that_share_one_database_are_found():
    config = load(shared_data("wrangler-configs", "07_capgo_api.wrangler.jsonc"))
    shared = [
        f for f in drift(config.resolve("prod"), config.resolve("preprod")) if f.kind == "shared"
    ]
    kinds = {f.key.split(".")[0] for f in shared}
    assert {"d1_databases", "hyperdrive"} <= kinds  # the same database ids, and the same pools
    assert all(f.severity == "high" and " both use " in f.detail for f in shared)
