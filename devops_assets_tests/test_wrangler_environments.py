"""Wrangler files read and each environment resolved as wrangler resolves it:
hand-made files with known answers, and every real file in ../shared/data."""

from __future__ import annotations

import json

import pytest

from devops_assets.wrangler.environments import load
from devops_assets.wrangler.files import WranglerConfigError, read_file, strip_jsonc
from devops_assets_tests.git_fixtures import shared_data

TOML = """
name = "moltworker"
main = "src/index.ts"
compatibility_date = "2025-05-06"
compatibility_flags = ["nodejs_compat"]
routes = [{ pattern = "bot.example.com", custom_domain = true }]
keep_vars = true

[vars]
LOG_LEVEL = "warn"

[[d1_databases]]
binding = "DB"
database_name = "moltworker-db"
database_id = "00000000-0000-4000-8000-000000000001"

[env.staging]
routes = []
workers_dev = true
keep_vars = false

[env.staging.vars]
LOG_LEVEL = "debug"

[env.production]
name = "moltworker"
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_inheritable_keys_fall_back_and_bindings_and_vars_do_not(tmp_path):
    config = load(write(tmp_path, "wrangler.toml", TOML))
    assert config.environments == ("", "staging", "production")
    top, staging, production = (config.resolve(e) for e in config.environments)

    assert (top.worker, staging.worker, production.worker) == (
        "moltworker",
        "moltworker-staging",
        "moltworker",
    )
    assert staging.config["compatibility_date"] == "2025-05-06"  # inherited
    assert staging.config["routes"] == []  # its own
    assert production.config["routes"] == [
        {"pattern": "bot.example.com", "custom_domain": True}
    ]  # inherited
    assert staging.config["vars"] == {"LOG_LEVEL": "debug"}
    assert "vars" not in production.config and "d1_databases" not in production.config
    assert "d1_databases" not in staging.config
    assert staging.config["keep_vars"] is True  # top-level only: the env's value is ignored
    assert staging.warnings == (
        '"env.staging.keep_vars" is a top-level-only key; wrangler ignores it here',
        '"d1_databases" exists at the top level, but not on "env.staging"',
    )
    assert set(production.warnings) == {
        '"vars" exists at the top level, but not on "env.production"',
        '"d1_databases" exists at the top level, but not on "env.production"',
    }


def test_jsonc_comments_and_trailing_commas_go_but_strings_stay(tmp_path):
    text = """/* header */ {
      // a comment
      "name": "w", "main": "https://x//y/* not a comment */",
      "vars": {"Q": "a \\" // still a string",},
      "routes": [ "a.example.com/*", ], /* trailing */
    }"""
    assert json.loads(strip_jsonc(text)) == {
        "name": "w",
        "main": "https://x//y/* not a comment */",
        "vars": {"Q": 'a " // still a string'},
        "routes": ["a.example.com/*"],
    }
    assert read_file(write(tmp_path, "wrangler.jsonc", text))["name"] == "w"


@pytest.mark.parametrize(
    ("name", "text", "key", "reason"),
    [
        ("wrangler.jsonc", '{\n  "name": "w",\n  "vars": {"A": 1\n}', "line 4 column 2", "JSON"),
        ("wrangler.toml", "name = ", "(file)", "not valid TOML"),
        ("wrangler.yaml", "name: w", "(file)", ".toml, .json or .jsonc"),
        ("wrangler.toml", 'name = "w"\nvars = ["A"]', "vars", "a table, got list"),
        ("wrangler.toml", 'name = "w"\nenv = 3', "env", "a table of environments"),
        ("wrangler.toml", 'name = "w"\n[env]\nstaging = 1', "env.staging", "a table"),
        ("wrangler.toml", 'name = "bad name!"', "name", "a Worker name"),
        (
            "wrangler.toml",
            'name = "w"\n[env.s]\n[[env.s.kv_namespaces]]\nbinding = "K"\nid = "1"\n'
            '[[env.s.kv_namespaces]]\nbinding = "K"\nid = "2"',
            "env.s.kv_namespaces",
            "K more than once",
        ),
        # a string would be read letter by letter (secrets X, Y, Z "missing")
        (
            "wrangler.jsonc",
            '{"name": "w", "env": {"staging": {"secrets": {"required": "XYZ"}}}}',
            "env.staging.secrets.required",
            "a list of secret names, got str 'XYZ'",
        ),
        ("wrangler.toml", 'name = "w"\n[secrets]\nrequired = "ABC"', "secrets.required", "list"),
        (
            "wrangler.toml",
            'name = "w"\n[secrets]\nrequired = ["A", 3]',
            "secrets.required[1]",
            "a non-empty secret name, got 3",
        ),
        (
            "wrangler.toml",
            'name = "w"\n[secrets]\nrequired = ["A", " "]',
            "secrets.required[1]",
            "a non-empty secret name",
        ),
        ("wrangler.toml", 'name = "w"\nsecrets = ["A"]', "secrets", "a table, got list"),
    ],
)
def test_a_file_wrangler_would_reject_is_refused_with_file_key_and_reason(
    tmp_path, name, text, key, reason
):
    path = write(tmp_path, name, text)
    with pytest.raises(WranglerConfigError) as caught:
        load(path)
    assert caught.value.key == key and reason in caught.value.reason
    assert str(path) in str(caught.value)


def test_an_environment_the_file_does_not_have_is_refused(tmp_path):
    config = load(write(tmp_path, "wrangler.toml", TOML))
    with pytest.raises(WranglerConfigError, match="env.preview: no such environment"):
        config.resolve("preview")


def test_every_real_wrangler_file_is_read_and_each_environment_resolved():
    folder = shared_data("wrangler-configs")
    files = sorted(p for p in folder.iterdir() if ".wrangler." in p.name)
    assert len(files) == 17
    workers = {}
    for path in files:
        config = load(path)
        for environment in config.environments:
            workers[(path.name[:2], environment)] = config.resolve(environment).worker
    # a name of its own, the top-level name with the environment appended, and none
    assert workers[("04", "staging")] == "mcp-cloudflare-workers-builds-staging"
    assert workers[("01", "fed-prod")] == "asset-worker-fed-prod"
    assert workers[("07", "prod")] == "capgo_api-prod"
    assert workers[("08", "")] is None  # no top-level name in that version of the file
    assert workers[("13", "")] == "orange-meets-production"
    assert len([k for k in workers if k[0] == "09"]) == 13  # top level and 12 environments


def test_real_files_environments_keep_their_own_vars_and_account():
    config = load(
        shared_data("wrangler-configs", "04_mcp-server-cloudflare_workers-builds.wrangler.jsonc")
    )
    top, staging = config.resolve(""), config.resolve("staging")
    assert "CLOUDFLARE_CLIENT_ID" in top.config["vars"]
    assert "CLOUDFLARE_CLIENT_ID" not in staging.config["vars"]  # vars are not inherited
    assert staging.config["account_id"] == "6702657b6aa048cf3081ff3ff3c9c52f"
    assert [k["binding"] for k in staging.config["kv_namespaces"]] == ["OAUTH_KV"]
