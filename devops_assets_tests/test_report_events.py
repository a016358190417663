"""``devops-assets report --events DIR``: event files in, the engine's numbers out."""

from __future__ import annotations

import json

import pytest

from devops_assets.cli import main

HOUR = 3600.0

DEPLOYMENTS = """id,environment,finished_at,status,commit_sha,kind,message
d1,production,2024-03-01T00:00:00Z,success,aaaa,deploy,
d2,production,2024-03-02T00:00:00Z,success,bbbb,deploy,
r1,production,2024-03-02T02:00:00Z,success,aaaa,rollback,
d3,production,2024-03-03T00:00:00Z,success,cccc,deploy,
h1,production,2024-03-03T02:00:00Z,success,dddd,deploy,Hotfix for INC-1
d4,production,2024-03-05T04:00:00Z,success,eeee,deploy,
d5,production,2024-03-06T00:00:00+01:00,success,ffff,deploy,
d5b,production,2024-03-05T23:30:00Z,success,ffff,deploy,retry of the same commit
x1,production,2024-03-05T23:40:00Z,failure,ffff,deploy,never served
s1,staging,2024-03-01T12:00:00Z,success,bbbb,deploy,
"""
COMMITS = """sha,parents,author_time,commit_time
aaaa,,2024-02-29T14:00:00Z,2024-02-29T14:00:00Z
bbbb,aaaa,2024-03-01T20:00:00Z,2024-03-01T20:00:00Z
cccc,bbbb,2024-03-02T16:00:00Z,2024-03-02T16:00:00Z
dddd,cccc,2024-03-03T01:00:00Z,2024-03-03T01:00:00Z
eeee,dddd,2024-03-04T18:00:00Z,2024-03-04T18:00:00Z
ffff,eeee,2024-03-05T14:00:00+00:00,2024-03-05T14:00:00+00:00
"""
INCIDENTS = """id,environment,created_at,resolved_at,title
INC-1,production,2024-03-03T01:00:00Z,2024-03-03T03:00:00Z,5xx
INC-2,production,2024-03-05T05:00:00Z,2024-03-05T14:00:00Z,slow
"""
BUILDS = """id,commit_sha,branch,status,created_at,started_at,finished_at
b1,bbbb,main,success,2024-03-01T20:00:00Z,2024-03-01T20:01:00Z,2024-03-01T20:04:00Z
b2,cccc,main,failure,2024-03-02T16:00:00Z,2024-03-02T16:01:00Z,2024-03-02T16:03:00Z
b3,cccc,hardshell,cancelled,2024-03-02T16:00:00Z,,
b4,dddd,hardshell,success,2024-03-03T01:00:00Z,2024-03-03T01:00:00Z,2024-03-03T01:10:00Z
"""


@pytest.fixture
def events(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    for name, text in (
        ("deployments", DEPLOYMENTS),
        ("commits", COMMITS),
        ("incidents", INCIDENTS),
        ("builds", BUILDS),
    ):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def report(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def rows(capsys, *argv: str) -> list[dict]:
    code, out, err = report(capsys, *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)["metrics"]


def test_the_hand_worked_week_from_event_files(capsys, events):
    found = rows(capsys, "--events", str(events), "--since", "2024-03-01", "--until", "2024-03-08")
    prod = {r["metric"]: r for r in found if r["environment"] == "production"}
    value = {m: r["value"] for m, r in prod.items()}
    # Served: d1 d2 r1 d3 h1 d4 d5 (d5b folds into d5, x1 never served).
    assert value["deployment_count"] == 7
    assert value["change_failure_rate"] == pytest.approx(3 / 7)
    assert value["rework_rate"] == pytest.approx(2 / 7)
    assert value["rollback_rate"] == pytest.approx(1 / 7)
    assert value["failed_deployment_recovery_time_p50"] == 2 * HOUR
    assert value["time_to_restore_mean"] == 5.5 * HOUR
    assert value["lead_time_p50"] == 8 * HOUR
    assert prod["lead_time_p50"]["tier"] == "elite"
    assert prod["change_failure_rate"]["tier"] == "low"  # 43 % is above 15 %
    staging = {r["metric"]: r["value"] for r in found if r["environment"] == "staging"}
    assert staging["deployment_count"] == 1
    builds = {r["metric"]: r["value"] for r in found if r["environment"] == "all"}
    assert builds["build_success_rate"] == pytest.approx(2 / 3)  # the cancelled one is out
    assert builds["build_duration_p50"] == 3 * 60


def test_builds_can_be_mapped_to_environments_by_branch(capsys, events):
    found = rows(
        capsys,
        "--events",
        str(events),
        "--build-env",
        "main=production",
        "--build-env",
        "hard*=staging",
    )
    rate = {r["environment"]: r["value"] for r in found if r["metric"] == "build_success_rate"}
    assert rate == {"production": 0.5, "staging": 1.0}


def test_weekly_buckets_follow_the_week_start_and_zone(capsys, events):
    found = rows(
        capsys,
        "--events",
        str(events),
        "--since",
        "2024-03-01",
        "--until",
        "2024-03-08",
        "--by",
        "week",
        "--week-start",
        "sunday",
        "--timezone",
        "America/New_York",
    )
    weeks = sorted(
        (r["window_start"], r["value"])
        for r in found
        if r["grain"] == "week"
        and r["metric"] == "deployment_count"
        and r["environment"] == "production"
    )
    # Sunday weeks in New York (-05:00): Feb 25 .. Mar 3 holds d1 d2 r1 d3 h1;
    # Mar 3 05:00 UTC .. holds d4 d5.
    assert weeks == [("2024-02-25T05:00:00+00:00", 5), ("2024-03-03T05:00:00+00:00", 2)]


def test_a_broken_file_is_refused_naming_file_row_and_column(capsys, events):
    text = DEPLOYMENTS.replace("d3,production,2024-03-03T00:00:00Z", "d3,production,03/03/2024")
    (events / "deployments.csv").write_text(text, encoding="utf-8")
    code, out, err = report(capsys, "--events", str(events))
    assert code == 2 and out == ""
    assert "deployments.csv, row 5, column finished_at" in err


def test_options_of_the_other_source_are_refused(capsys, events):
    code, _, err = report(capsys, "--events", str(events), "--deploy-tags", "v*")
    assert code == 2 and "--deploy-tags and --deploy-branch apply to --repo" in err
    code, _, err = report(capsys, "--events", str(events), "--timezone", "Mars/Base")
    assert code == 2 and "--timezone: an IANA time zone name" in err


def test_nothing_after_until_is_seen(capsys, events):
    # Until Mar 5 06:00: INC-2 (opened 05:00, resolved 14:00) is still open then, so d4
    # (04:00) has failed but not recovered; INC-1 alone is restored.
    found = rows(
        capsys, "--events", str(events), "--since", "2024-03-01", "--until", "2024-03-05T06:00Z"
    )
    value = {r["metric"]: r["value"] for r in found if r["environment"] == "production"}
    assert value["change_failure_rate"] == pytest.approx(3 / 6)  # d2 d3 d4 of d1 d2 r1 d3 h1 d4
    assert value["failed_deployment_recovery_time_mean"] == 2 * HOUR  # d2 and d3 only
    assert value["time_to_restore_mean"] == 2 * HOUR


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--since", "0001-01-01T00:00:00+01:00"], "--since: a time from 1970 to 2999"),
        (["--until", "9999-12-31"], "--until: a time from 1970 to 2999"),
        (["--since", "1970-01-02", "--by", "day"], "would be over 100,000 periods"),
    ],
)
def test_absurd_windows_are_refused_before_any_work(capsys, events, argv, said):
    if "--by" in argv:
        (events / "deployments.csv").write_text(
            DEPLOYMENTS + "late,production,2999-01-01T00:00:00Z,success,ffff,deploy,\n",
            encoding="utf-8",
        )
    code, out, err = report(capsys, "--events", str(events), *argv)
    assert code == 2 and out == ""
    assert said in err


def test_a_reader_that_goes_away_ends_the_report_quietly(events):
    import subprocess
    import sys

    command = [sys.executable, "-m", "devops_assets.cli", "report", "--events", str(events)]
    # Days since 2000: far more output than a pipe buffers, so writing must fail.
    command += ["--since", "2000-01-01", "--by", "day", "--format", "csv"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:  # noqa: S603
        proc.stdout.readline()
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert code == 0 and b"Traceback" not in err
