"""The platform file: the demo's loads, a bad one names file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_assets.config import DEMO_CONFIG, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platform.toml"
    path.write_text(text, encoding="utf-8")
    return path


def demo_text() -> str:
    return DEMO_CONFIG.read_text(encoding="utf-8")


def test_demo_config_describes_the_moltworker_pipeline():
    config = load_config(DEMO_CONFIG)

    assert config.environment("staging").branches == ("hardshell",)
    assert config.environment("staging").worker == "moltworker-staging"
    assert config.environment("production").worker == "moltworker"
    assert config.environment("development").branches == ("feature/*",)
    assert config.quality_gate == (
        "lint",
        "check",
        "format",
        "test:backend",
        "test:e2e",
        "test:smoke",
        "test:unit",
    )
    targets = {(t.metric, t.environment): (t.comparator, t.value) for t in config.targets}
    assert targets[("build_success_rate", "production")] == (">", 0.95)
    assert targets[("build_duration_p50", "staging")] == ("<", 300.0)
    assert targets[("deployment_frequency", "production")] == (">=", 1.0)
    assert targets[("lead_time_p50", "production")] == ("<", 86400.0)
    assert targets[("rollback_rate", "production")] == ("<", 0.05)


def test_config_env_var_chooses_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, demo_text().replace('name = "moltworker"', 'name = "other"', 1))
    monkeypatch.setenv("DEVOPS_ASSETS_CONFIG", str(path))

    assert load_config().project == "other"


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        (
            'comparator = ">"',
            'comparator = "=>"',
            "targets.build_success_rate.comparator",
            "one of > >= < <=",
        ),
        ("value = 0.95", 'value = "high"', "targets.build_success_rate.value", "a number"),
        (
            'worker = "moltworker"',
            'worker = "nope"',
            "environments.production.worker",
            "the name of a [[workers]] entry",
        ),
        ('timezone = "UTC"', 'timezone = "Mars/Olympus"', "project.timezone", "IANA time zone"),
        (
            'account_id = "0d5c4b3a29180716f5e4d3c2b1a09f8e"',
            'account_id = "xyz"',
            "cloudflare.account_id",
            "32 lowercase hex",
        ),
        (
            'branches = ["hardshell"]',
            "branches = []",
            "environments.staging.branches",
            "at least one branch",
        ),
        (
            'branches = ["hardshell"]',
            'branches = "hardshell"',
            "environments.staging.branches",
            "a list of strings",
        ),
        (
            "health_window_days = 30",
            "health_window_days = 0",
            "project.health_window_days",
            "a whole number from 1 to 3660",
        ),
        ("as_of = 2026-11-30T20:00:00Z", "as_of = 2026-11-30T20:00:00", "project.as_of", "offset"),
        ('week_start = "monday"', 'week_start = "mon"', "metrics.week_start", "one of monday"),
        (
            'lead_time_start = "author_time"',
            'lead_time_start = "merged"',
            "metrics.lead_time_start",
            "one of author_time, commit_time, branch_start",
        ),
        ('cherry_picks = "patch_id"', 'cherry_picks = "yes"', "metrics.cherry_picks", "off"),
        (
            'failure_sources = ["rollback", "hotfix", "revert", "incident"]',
            'failure_sources = ["rollback", "pager"]',
            "metrics.failure_sources",
            "got 'pager'",
        ),
        (
            'failure_sources = ["rollback", "hotfix", "revert", "incident"]',
            'failure_sources = ["rollback", "rollback"]',
            "metrics.failure_sources",
            "each source once",
        ),
        (
            "remediation_window_hours = 24",
            "remediation_window_hours = -1",
            "metrics.remediation_window_hours",
            "hours above 0",
        ),
        (
            "remediation_window_hours = 24",
            "remediation_window_hours = true",
            "metrics.remediation_window_hours",
            "hours above 0",
        ),
        ('tiers = "2023"', 'tiers = "2025"', "metrics.tiers", "one of 2023, 2024"),
        ('tiers = "2023"', 'hotfix_pattern = "(unclosed"', "metrics.hotfix_pattern", "regular"),
        ('tiers = "2023"', 'tiers = "2023"\nmedian = "lower"', "metrics.median", None),
        ("[incidents]\nstatuspage =", "[incidents]\npath =", "incidents.path", None),
        (
            "rollout_percentages = [10, 50, 100]",
            "rollout_percentages = [50, 10, 100]",
            "deploy.rollout_percentages",
            "rising whole percentages ending at 100",
        ),
        (
            "rollout_percentages = [10, 50, 100]",
            "rollout_percentages = [10, 50]",
            "deploy.rollout_percentages",
            "ending at 100",
        ),
        ('days = ["monday",', 'days = ["mon",', "deploy.windows[0].days", "weekday names"),
        ('start = "08:00"', 'start = "8am"', "deploy.windows[0].start", "wall-clock time"),
        ('end = "20:00"', 'end = "07:00"', "deploy.windows[0].end", "a time after start"),
        (
            "start = 2026-12-21T00:00:00",
            "start = 2026-12-21T00:00:00Z",
            "deploy.freezes[0].start",
            "without an offset",
        ),
        (
            "end = 2027-01-04T00:00:00",
            "end = 2026-12-01T00:00:00",
            "deploy.freezes[0].end",
            "a time after start",
        ),
        ('path = "/health"', 'path = "health"', "deploy.smoke[0].(table)", "must start with '/'"),
        ("push_tags = false", 'push_tags = "no"', "deploy.push_tags", "true or false"),
        (
            "push_tags = false",
            'push_tags = false\n[deploy.urls]\nqa = "https://qa.example.invalid"',
            "deploy.urls.qa",
            "a configured environment",
        ),
        (
            "push_tags = false",
            'push_tags = false\n[deploy.urls]\nstaging = "https://u:pw@x.invalid"',
            "deploy.urls.staging",
            "no user or password",
        ),
        (
            'statuspage = "emulator:"',
            'file = "/etc/passwd"',
            "incidents.file",
            "a .csv or .json incidents file",
        ),
        (
            'failure_sources = ["rollback", "hotfix", "revert", "incident"]',
            "failure_sources = []",
            "metrics.failure_sources",
            "at least one of",
        ),
        (
            "remediation_window_hours = 24",
            "remediation_window_hours = 1e-12",
            "metrics.remediation_window_hours",
            "from one minute to a year",
        ),
    ],
)
def test_bad_value_is_refused_naming_file_and_key(tmp_path, old, new, key, expected):
    assert old in demo_text()
    path = write(tmp_path, demo_text().replace(old, new, 1))

    with pytest.raises(ConfigError) as err:
        load_config(path)

    assert err.value.key == key
    assert str(path) in str(err.value)
    if expected:
        assert expected in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        (
            "health_window_days = 30",
            "health_window_dayz = 30",
            "project.health_window_dayz",
            "no such key here",
        ),
        ("[environments.staging]", "[enviroments.staging]", "enviroments", "no such key here"),
        (
            "[targets.rollback_rate]",
            "[targets.rollback_rat]",
            "targets.rollback_rat",
            "a metric the engine measures",
        ),
        (
            'value = 86400\nunit = "seconds"',
            'value = 1\nunit = "fortnights"',
            "targets.lead_time_p50.unit",
            "a unit of lead_time_p50 (seconds, minutes, hours, days)",
        ),
        (
            'tag = "8ee82b3a2c0f42928b8f14dae4a97121"',
            'tag = "moltworker"',
            "workers[1].tag",
            "32-hex external_script_id",
        ),
        (
            'name = "moltworker"\ntag',
            'name = "moltworker-staging"\ntag',
            "workers[1].name",
            "a name no other [[workers]] entry has",
        ),
    ],
)
def test_typos_unknown_metrics_and_units_are_refused(tmp_path, old, new, key, expected):
    assert old in demo_text()
    path = write(tmp_path, demo_text().replace(old, new, 1))

    with pytest.raises(ConfigError) as err:
        load_config(path)

    assert (err.value.key, str(path)) == (key, err.value.path)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ("value = 0.05", "value = nan", "targets.rollback_rate.value", "a finite number"),
        ("value = 0.05", "value = inf", "targets.rollback_rate.value", "a finite number"),
        (
            'environments = ["staging", "production"]',
            'environments = ["staging", "staging"]',
            "targets.build_success_rate.environments",
            "each environment once",
        ),
        (
            "health_window_days = 30",
            "health_window_days = 1000000",
            "project.health_window_days",
            "from 1 to 3660",
        ),
        (
            "as_of = 2026-11-30T20:00:00Z",
            "as_of = 0001-03-01T00:00:00Z",
            "project.as_of",
            "between the years 2000 and 2999",
        ),
        (
            'worker = "moltworker-staging"',
            'worker = "moltworker"',
            "environments.production.worker",
            "a worker no other environment serves",
        ),
        ("value = 0.05", "value = 5", "targets.rollback_rate.value", "a ratio from 0 to 1"),
        (
            'environments = ["staging", "production"]',
            "environments = []",
            "targets.build_success_rate.environments",
            "each environment once",
        ),
        (
            "[targets.rollback_rate]",
            '[targets.rollback_rate]\nenvironments = ["development"]',
            "targets.rollback_rate.environments",
            "an environment a worker serves",
        ),
        (
            'tag = "8ee82b3a2c0f42928b8f14dae4a97121"',
            'tag = "5a0e7f3c9b2d4e61a8c7f0b3d2e1c4a9"',
            "workers[1].tag",
            "a tag no other [[workers]] entry has",
        ),
        (
            'repository = "{home}/demo/repo"',
            'repository = "https://x-access-token:hunter2@127.0.0.1/repo.git"',
            "project.repository",
            "a URL without credentials",
        ),
        (
            "[cloudflare]",
            '[warehouse]\nurl = "postgresql://ops@127.0.0.1/wh?password=hunter2"\n\n[cloudflare]',
            "warehouse.url",
            "DEVOPS_ASSETS_DB_URL",
        ),
        (
            'value = 86400\nunit = "seconds"',
            'value = 1e308\nunit = "days"',
            "targets.lead_time_p50.value",
            "a finite number in seconds",
        ),
        (
            'api_base_url = "emulator:"',
            'api_base_url = "http://[::1/client/v4"',
            "cloudflare.api_base_url",
            "with a host",
        ),
        (
            'api_base_url = "emulator:"',
            'api_base_url = "http://"',
            "cloudflare.api_base_url",
            "with a host",
        ),
        (
            'api_token_env = "CLOUDFLARE_API_TOKEN"',
            'api_token_env = "A=B"',
            "cloudflare.api_token_env",
            "an environment variable name",
        ),
        (
            "[cloudflare]",
            '[warehouse]\nurl = "mysql://db/wh"\n\n[cloudflare]',
            "warehouse.url",
            "a sqlite:/// or postgresql:// URL",
        ),
        (
            "[cloudflare]",
            '[warehouse]\nurl = "postgresql://ops:hunter2@127.0.0.1/wh"\n\n[cloudflare]',
            "warehouse.url",
            "DEVOPS_ASSETS_DB_URL",
        ),
    ],
)
def test_values_that_would_fail_later_are_refused_when_read(
    tmp_path, monkeypatch, old, new, key, expected
):
    monkeypatch.delenv("DEVOPS_ASSETS_DB_URL", raising=False)
    assert old in demo_text()
    path = write(tmp_path, demo_text().replace(old, new, 1))

    with pytest.raises(ConfigError) as err:
        load_config(path)

    assert err.value.key == key
    assert expected in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_directory_or_absurdly_nested_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="a TOML file, got a directory"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match=r"key '\(file\)'"):
        load_config(write(tmp_path, "x = " + "[" * 5000))


def test_a_target_written_in_friendlier_units_is_converted_once(tmp_path):
    text = demo_text().replace('value = 86400\nunit = "seconds"', 'value = 1.5\nunit = "days"')
    text = text.replace('value = 0.05\nunit = "ratio"', 'value = 5\nunit = "percent"')
    targets = {(t.metric, t.environment): t for t in load_config(write(tmp_path, text)).targets}

    lead = targets[("lead_time_p50", "production")]
    assert (lead.value, lead.unit) == (129600.0, "seconds")
    rollback = targets[("rollback_rate", "production")]
    assert (rollback.value, rollback.unit) == (0.05, "ratio")
    assert rollback.is_met(0.049) and not rollback.is_met(0.05)


def test_missing_section_is_named(tmp_path):
    gate = '[quality_gate]\nsteps = ["lint", "check", "format", "test:backend", "test:e2e", '
    gate += '"test:smoke", "test:unit"]\n'
    assert gate in demo_text()
    path = write(tmp_path, demo_text().replace(gate, ""))

    with pytest.raises(ConfigError, match="key 'quality_gate'"):
        load_config(path)


def test_broken_toml_and_missing_file_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="valid TOML"):
        load_config(write(tmp_path, "[project\nname = 1"))
    with pytest.raises(ConfigError, match="an existing TOML file"):
        load_config(tmp_path / "absent.toml")


def test_home_placeholder_and_warehouse_override(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVOPS_ASSETS_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("DEVOPS_ASSETS_DB_URL", raising=False)
    config = load_config(DEMO_CONFIG)
    assert config.repository == str(tmp_path / "state" / "demo" / "repo")
    assert config.warehouse_url == f"sqlite:///{tmp_path / 'state' / 'warehouse.sqlite'}"

    monkeypatch.setenv("DEVOPS_ASSETS_DB_URL", "postgresql://postgres@127.0.0.1/wh")
    assert load_config(DEMO_CONFIG).warehouse_url == "postgresql://postgres@127.0.0.1/wh"


def test_a_warehouse_url_from_the_environment_must_be_sql(monkeypatch):
    monkeypatch.setenv("DEVOPS_ASSETS_DB_URL", "mysql://ops:hunter2@127.0.0.1/wh")
    with pytest.raises(ConfigError) as err:
        load_config(DEMO_CONFIG)
    assert "a sqlite:/// or postgresql:// URL" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_metric_switches_are_read_and_default_when_absent(tmp_path):
    demo = load_config(DEMO_CONFIG)
    assert demo.metrics.tiers == "2023" and demo.metrics.lead_time_start == "author_time"
    assert demo.incidents_statuspage == "emulator:"
    text = (
        demo_text()
        .replace('tiers = "2023"', "tiers = 2024")
        .replace("remediation_window_hours = 24", "remediation_window_hours = 1.5")
    )
    text = text.replace('timezone = "UTC"', 'timezone = "Europe/Berlin"')
    changed = load_config(write(tmp_path, text))
    assert changed.metrics.tiers == "2024"
    assert changed.metrics.remediation_window.total_seconds() == 5400
    assert changed.metrics.timezone == "Europe/Berlin"
    bare = text[: text.index("# How the metric engine")]
    defaults = load_config(write(tmp_path, bare))
    assert defaults.metrics.failure_sources == ("rollback", "hotfix", "revert", "incident")
    assert defaults.metrics.week_start == "monday"
    assert defaults.incidents_file is None


def test_freezes_are_local_times_of_the_team_zone_and_windows_wall_clock(tmp_path):
    from datetime import UTC, datetime, time

    text = demo_text().replace('timezone = "UTC"', 'timezone = "Europe/Berlin"')
    deploy = load_config(write(tmp_path, text)).deploy
    assert deploy.rollout_percentages == (10, 50, 100) and deploy.push_tags is False
    [freeze] = deploy.freezes
    assert freeze.start.astimezone(UTC) == datetime(2026, 12, 20, 23, tzinfo=UTC)  # +01:00
    [window] = deploy.windows
    assert (window.weekdays, window.start, window.end) == (
        frozenset({0, 1, 2, 3, 4}),
        time(8),
        time(20),
    )
    assert [c.name for c in deploy.smoke] == ["health"] and deploy.url("production") is None
    bare = text[: text.index("# How production deploys go out")]
    assert load_config(write(tmp_path, bare)).deploy.windows == ()  # no window: nothing opens


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ('start = "08:00"', 'start = "08:00+05:00"', "deploy.windows[0].start", "no offset"),
        ('end = "20:00"', 'end = "20:00Z"', "deploy.windows[0].end", "no offset"),
        (
            'steps = ["lint", "check",',
            'steps = ["lint", "lint",',
            "quality_gate.steps",
            "different",
        ),
        (
            'steps = ["lint", "check", "format", "test:backend", "test:e2e", "test:smoke", '
            '"test:unit"]',
            "steps = []",
            "quality_gate.steps",
            "one or more",
        ),
        ("[[deploy.smoke]]", "[[deploy.nothing]]", "deploy.nothing", "no such key"),
        (
            "push_tags = false",
            'push_tags = false\n[deploy.urls]\nstaging = "https://token@x.invalid"',
            "deploy.urls.staging",
            "no user or password",
        ),
    ],
)
def test_deploy_settings_that_would_weaken_a_rule_are_refused(tmp_path, old, new, key, expected):
    assert old in demo_text()
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, demo_text().replace(old, new, 1)))
    assert err.value.key == key and expected in str(err.value)


def test_a_deploy_table_without_smoke_checks_is_refused(tmp_path):
    text = demo_text()
    cut = text[: text.index("[[deploy.smoke]]")]
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, cut))
    assert err.value.key == "deploy.smoke" and "at least one" in str(err.value)


def test_freeze_edges_on_daylight_saving_days_take_the_longer_reading(tmp_path):
    from datetime import UTC, datetime

    text = demo_text().replace('timezone = "UTC"', 'timezone = "Europe/Berlin"')
    text = text.replace("start = 2026-12-21T00:00:00", "start = 2027-03-28T02:30:00")  # skipped
    text = text.replace("end = 2027-01-04T00:00:00", "end = 2027-10-31T02:30:00")  # repeated
    [freeze] = load_config(write(tmp_path, text)).deploy.freezes
    assert freeze.start.astimezone(UTC) == datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    assert freeze.end.astimezone(UTC) == datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
