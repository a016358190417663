"""The [secrets] table: the demo's loads; every bad value names file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_assets.config import DEMO_CONFIG, ConfigError, load_config
from devops_assets.config_secrets import CHARSETS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platform.toml"
    path.write_text(text, encoding="utf-8")
    return path


def demo_text() -> str:
    return DEMO_CONFIG.read_text(encoding="utf-8")


def test_demo_secrets_table():
    settings = load_config(DEMO_CONFIG).secrets
    assert settings.approvers == ("ciso@moltworker.example", "security-lead@moltworker.example")
    assert (settings.request_ttl_hours, settings.approval_ttl_hours) == (72, 24)
    assert settings.policy("MOLTBOT_GATEWAY_TOKEN").source == "generate"
    assert settings.policy("MOLTBOT_GATEWAY_TOKEN").max_age_days == 30
    assert settings.policy("ANTHROPIC_API_KEY").source == "env:MOLTWORKER_NEXT_ANTHROPIC_API_KEY"
    other = settings.policy("UNLISTED")
    assert (other.source, other.max_age_days) == ("generate", 90)
    assert settings.alphabet == CHARSETS["alphanumeric"]


def test_a_file_source_is_taken_from_the_platform_files_folder(tmp_path):
    text = demo_text().replace('source = "generate"', 'source = "file:keys/gateway.txt"')
    settings = load_config(write(tmp_path, text)).secrets
    assert settings.policy("MOLTBOT_GATEWAY_TOKEN").source == f"file:{tmp_path}/keys/gateway.txt"


def test_approvers_are_kept_in_identity_normal_form(tmp_path):
    text = demo_text().replace('"ciso@moltworker.example"', '" CISO@Moltworker.Example "', 1)
    settings = load_config(write(tmp_path, text)).secrets
    assert settings.approvers == ("ciso@moltworker.example", "security-lead@moltworker.example")


def test_no_secrets_table_means_defaults(tmp_path):
    text = demo_text().split("\n[secrets]")[0]
    settings = load_config(write(tmp_path, text)).secrets
    assert settings.approvers == () and settings.policies == ()


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ('approvers = ["ciso', 'approvers = ["nobody", "ciso', "secrets.approvers", "e-mail"),
        ("approvers = [", 'approvers = ["ciso@moltworker.example", ', "secrets.approvers", "once"),
        # one person however spelled: case, spacing, full-width letters
        ("approvers = [", 'approvers = ["CISO@moltworker.example", ', "secrets.approvers", "once"),
        ("approvers = [", 'approvers = [" Ciso@Moltworker.Example", ', "secrets.approvers", "once"),
        (
            "approvers = [",
            'approvers = ["ｃｉｓｏ@moltworker.example", ',
            "secrets.approvers",
            "once",
        ),
        # not a plain ASCII address: a trailing dot, a look-alike letter, an invisible one
        ('approvers = ["ciso', 'approvers = ["x@y.example.", "ciso', "secrets.approvers", "e-mail"),
        ('approvers = ["ciso', 'approvers = ["\u0441iso', "secrets.approvers", "e-mail"),
        ('example", "security', 'example\u200b", "security', "secrets.approvers", "e-mail"),
        (
            "request_ttl_hours = 72",
            "request_ttl_hours = 0",
            "secrets.request_ttl_hours",
            "1 to 720",
        ),
        (
            "approval_ttl_hours = 24",
            "approval_ttl_hours = 169",
            "secrets.approval_ttl_hours",
            "1 to 168",
        ),
        (
            "approval_ttl_hours = 24",
            'approval_ttl_hours = "24"',
            "secrets.approval_ttl_hours",
            "whole",
        ),
        ("max_age_days = 90\ngen", "max_age_days = true\ngen", "secrets.max_age_days", "whole"),
        ("generator_length = 48", "generator_length = 8", "secrets.generator_length", "16 to 256"),
        (
            'generator_charset = "alphanumeric"',
            'generator_charset = "abc"',
            "secrets.generator_charset",
            "alphanumeric, hex, urlsafe",
        ),
        ('source = "generate"', 'source = "vault:x"', "secrets.policy[0].source", "env:"),
        ('source = "env:MOLTWORKER', 'source = "env:1BAD', "secrets.policy[1].source", "generate"),
        (
            'name = "MOLTBOT_GATEWAY_TOKEN"',
            'name = "bad-name"',
            "secrets.policy[0].name",
            "letters",
        ),
        (
            'name = "ANTHROPIC_API_KEY"',
            'name = "MOLTBOT_GATEWAY_TOKEN"',
            "secrets.policy[1].name",
            "no other",
        ),
        ("max_age_days = 30", "max_age_days = 0", "secrets.policy[0].max_age_days", "1 to 3650"),
        (
            "max_age_days = 30",
            'max_age_days = 30\nvalue = "x"',
            "secrets.policy[0].value",
            "no such key",
        ),
        (
            "request_ttl_hours = 72",
            "request_ttl_hours = 72\ntoken = 1",
            "secrets.token",
            "no such key",
        ),
    ],
)
def test_bad_secrets_values_name_file_and_key(tmp_path, old, new, key, expected):
    text = demo_text()
    assert old in text, old
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)
