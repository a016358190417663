"""``[incidents]`` of the platform file: a file or a status page, and the page's components."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_assets.config import DEMO_CONFIG, ConfigError, load_config

DEMO_FEED = """[incidents]
statuspage = "emulator:"

[incidents.components]
moltworker = "production"
moltworker-staging = "staging"
"""


def _with_incidents(tmp_path: Path, table: str, text: str | None = None) -> Path:
    """The demo platform file with its ``[incidents]`` table replaced by ``table``."""
    text = text or DEMO_CONFIG.read_text(encoding="utf-8")
    assert DEMO_FEED in text
    path = tmp_path / "platform.toml"
    path.write_text(text.replace(DEMO_FEED, table), encoding="utf-8")
    return path


def test_the_demo_reads_its_status_page_with_both_workers_as_components():
    config = load_config(DEMO_CONFIG)
    assert config.incidents_statuspage == "emulator:"
    assert config.incidents_components == (
        ("moltworker", "production"),
        ("moltworker-staging", "staging"),
    )
    assert config.incidents_file is None


def test_a_public_page_url_is_kept_as_written(tmp_path):
    table = (
        '[incidents]\nstatuspage = "https://status.example.invalid"\n'
        '[incidents.components]\n"API gateway" = "production"\n'
    )
    config = load_config(_with_incidents(tmp_path, table))
    assert config.incidents_statuspage == "https://status.example.invalid"
    assert config.incidents_components == (("API gateway", "production"),)


def test_a_file_feed_still_works_and_resolves_against_the_platform_file(tmp_path):
    config = load_config(_with_incidents(tmp_path, '[incidents]\nfile = "feed/incidents.csv"\n'))
    assert config.incidents_file == str(tmp_path / "feed" / "incidents.csv")
    assert (config.incidents_statuspage, config.incidents_components) == (None, ())


def test_without_the_table_there_is_no_feed(tmp_path):
    config = load_config(_with_incidents(tmp_path, ""))
    assert (config.incidents_file, config.incidents_statuspage) == (None, None)


@pytest.mark.parametrize(
    "table, key, expected",
    [
        (
            '[incidents]\nfile = "a.json"\nstatuspage = "emulator:"\n',
            "incidents.statuspage",
            "exactly one of file or statuspage",
        ),
        (
            '[incidents.components]\nmoltworker = "production"\n',
            "incidents.file",
            "exactly one of file or statuspage",
        ),
        (
            '[incidents]\nfile = "a.json"\n[incidents.components]\nmoltworker = "production"\n',
            "incidents.components",
            "no components with a file",
        ),
        ('[incidents]\nstatuspage = "emulator:"\n', "incidents.components", "at least one"),
        (
            '[incidents]\nstatuspage = "emulator:"\n[incidents.components]\nmoltworker = "qa"\n',
            "incidents.components.moltworker",
            "a configured environment (development, production, staging), got 'qa'",
        ),
        (
            '[incidents]\nstatuspage = "emulator:"\n[incidents.components]\nmoltworker = 1\n',
            "incidents.components.moltworker",
            "a non-empty string",
        ),
        (
            '[incidents]\nstatuspage = "ftp://status.example.invalid"\n',
            "incidents.statuspage",
            "an http(s) URL with a host, or 'emulator:'",
        ),
        ('[incidents]\nstatuspage = ""\n', "incidents.statuspage", "a non-empty string"),
        ('[incidents]\nfeed = "a.json"\n', "incidents.feed", "known keys: file, statuspage"),
        ('[incidents]\nfile = "a.txt"\n', "incidents.file", "a .csv or .json incidents file"),
    ],
)
def test_a_bad_incidents_table_is_refused_naming_file_and_key(tmp_path, table, key, expected):
    path = _with_incidents(tmp_path, table)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_page_url_with_credentials_is_refused_without_showing_them(tmp_path):
    table = (
        '[incidents]\nstatuspage = "https://ops:hunter2@status.example.invalid"\n'
        '[incidents.components]\nmoltworker = "production"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(_with_incidents(tmp_path, table))
    assert err.value.key == "incidents.statuspage"
    assert "without credentials" in str(err.value) and "hunter2" not in str(err.value)


def test_the_demo_page_needs_an_emulator_state_folder(tmp_path):
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    text = text.replace('api_base_url = "emulator:"\n', "").replace(
        'emulator_state = "{home}/demo/emulator"\n', ""
    )
    with pytest.raises(ConfigError) as err:
        load_config(_with_incidents(tmp_path, DEMO_FEED, text))
    assert err.value.key == "incidents.statuspage"
    assert "'emulator:' only with [cloudflare] emulator_state" in str(err.value)
