"""The events loader: a folder of CSV or JSON files read back into exact records, or refused
with a message naming the file, the row (or item) and the column."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from devops_assets.domain.models import Build, Commit, Deployment, Incident
from devops_assets.sources.events import EventHistory, EventsError, load_events, read_incidents

IST = timezone(timedelta(hours=5, minutes=30))
PST = timezone(timedelta(hours=-8))


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


DEPLOYMENTS_CSV = lines(
    "id,worker,environment,finished_at,status,commit_sha,kind,version,message,region",
    "d1,api,production,2026-01-02T10:00:00Z,success,B2C3D4E5,deploy,v1,first release,eu",
    "d2,api,production,2026-01-02T12:30:00+01:00,failure,,rollback,,,eu",
    "d3, api ,staging,2026-01-03T09:00:00-05:00,success,c3d4e5f6,,,,us",
)
COMMITS_CSV = lines(
    "sha,parents,author_time,commit_time,author_email,message,patch_id",
    "a1b2c3d4,,2026-01-01T09:00:00Z,2026-01-01T09:00:00Z,ada@example.com,init,",
    "b2c3d4e5,a1b2c3d4,2026-01-01T15:00:00+05:30,2026-01-01T15:05:00+05:30,bob@example.com,"
    '"feat: add cache\n\nCaches responses.\n\nRefs: 12",DEADBEEF',
    "c3d4e5f6,a1b2c3d4 b2c3d4e5,2026-01-02T08:00:00-08:00,2026-01-02T08:00:00-08:00,"
    "ada@example.com,Merge branch 'cache',",
)
INCIDENTS_CSV = lines(
    "id,environment,created_at,resolved_at,deployment_id,title",
    'i1,production,2026-01-02T12:00:00Z,2026-01-02T13:15:00Z,d1,"Errors, 5xx"',
    "i2,production,2026-01-03T08:00:00+02:00,,,",
)
BUILDS_CSV = lines(
    "id,worker,commit_sha,branch,status,created_at,started_at,finished_at",
    "b1,api,b2c3d4e5,main,success,2026-01-02T09:00:00Z,2026-01-02T09:00:05Z,2026-01-02T09:03:05Z",
    "b2,api,c3d4e5f6,main,failure,2026-01-02T10:00:00Z,2026-01-02T10:00:10Z,2026-01-02T10:01:00Z",
    "b3,api,c3d4e5f6,feature/x,cancelled,2026-01-02T11:00:00Z,,",
)
ALL_CSV = {
    "deployments.csv": DEPLOYMENTS_CSV,
    "commits.csv": COMMITS_CSV,
    "incidents.csv": INCIDENTS_CSV,
    "builds.csv": BUILDS_CSV,
}


def at(day: int, hour: int, minute: int = 0, second: int = 0, tz: timezone = UTC) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=tz)


EXPECTED = EventHistory(
    commits=(
        Commit("a1b2c3d4", (), at(1, 9), at(1, 9), "ada@example.com", "init"),
        Commit(
            sha="b2c3d4e5",
            parents=("a1b2c3d4",),
            author_time=at(1, 15, tz=IST),
            commit_time=at(1, 15, 5, tz=IST),
            author_email="bob@example.com",
            subject="feat: add cache",
            body="Caches responses.\n\nRefs: 12",
            trailers=(("Refs", "12"),),
            patch_id="deadbeef",
        ),
        Commit(
            sha="c3d4e5f6",
            parents=("a1b2c3d4", "b2c3d4e5"),
            author_time=at(2, 8, tz=PST),
            commit_time=at(2, 8, tz=PST),
            author_email="ada@example.com",
            subject="Merge branch 'cache'",
        ),
    ),
    deployments=(
        Deployment(
            deployment_id="d1",
            worker="api",
            environment="production",
            created_on=at(2, 10),
            version_id="v1",
            percentage=100.0,
            commit_sha="b2c3d4e5",
            kind="deploy",
            message="first release",
            status="success",
        ),
        Deployment(
            deployment_id="d2",
            worker="api",
            environment="production",
            created_on=at(2, 12, 30, tz=timezone(timedelta(hours=1))),
            version_id="d2",
            percentage=100.0,
            commit_sha=None,
            kind="rollback",
            status="failure",
        ),
        Deployment(
            deployment_id="d3",
            worker="api",
            environment="staging",
            created_on=at(3, 9, tz=timezone(timedelta(hours=-5))),
            version_id="c3d4e5f6",
            percentage=100.0,
            commit_sha="c3d4e5f6",
            kind="deploy",
            status="success",
        ),
    ),
    incidents=(
        Incident("i1", "production", at(2, 12), at(2, 13, 15), "d1", "Errors, 5xx"),
        Incident("i2", "production", at(3, 8, tz=timezone(timedelta(hours=2)))),
    ),
    builds=(
        Build(
            build_uuid="b1",
            worker="api",
            branch="main",
            commit_sha="b2c3d4e5",
            status="stopped",
            outcome="success",
            created_on=at(2, 9),
            started_on=at(2, 9, 0, 5),
            stopped_on=at(2, 9, 3, 5),
        ),
        Build(
            build_uuid="b2",
            worker="api",
            branch="main",
            commit_sha="c3d4e5f6",
            status="stopped",
            outcome="fail",
            created_on=at(2, 10),
            started_on=at(2, 10, 0, 10),
            stopped_on=at(2, 10, 1),
        ),
        Build("b3", "api", "feature/x", "c3d4e5f6", "stopped", "cancelled", at(2, 11)),
    ),
)

VALID_DEPLOYMENTS = lines(
    "id,environment,finished_at,status,commit_sha,kind",
    "d1,production,2026-01-02T10:00:00Z,success,abcd1234,deploy",
)


def events_folder(tmp_path: Path, files: dict[str, str | bytes], deployments: bool = True) -> Path:
    """A folder holding ``files``, plus a valid deployments.csv unless one is given."""
    folder = tmp_path / "events"
    folder.mkdir(parents=True)
    given = any(name.startswith("deployments.") for name in files)
    if deployments and not given:
        files = {"deployments.csv": VALID_DEPLOYMENTS, **files}
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    return folder


def refusal(folder: Path) -> str:
    with pytest.raises(EventsError) as caught:
        load_events(folder)
    return str(caught.value)


# --- reading ------------------------------------------------------------------------------


def test_complete_csv_folder_is_read_into_the_exact_records(tmp_path):
    history = load_events(events_folder(tmp_path, ALL_CSV))

    assert history == EXPECTED
    # datetimes compare as instants: the reprs show the offsets were kept as written
    assert repr(history) == repr(EXPECTED)


def test_offsets_are_kept_as_written_not_converted_to_utc(tmp_path):
    history = load_events(events_folder(tmp_path, ALL_CSV))

    cache = history.commits[1]
    assert cache.author_time.isoformat() == "2026-01-01T15:00:00+05:30"
    assert cache.commit_time.utcoffset() == timedelta(hours=5, minutes=30)
    assert history.commits[2].author_time.utcoffset() == timedelta(hours=-8)
    assert history.deployments[1].created_on.isoformat() == "2026-01-02T12:30:00+01:00"
    assert history.deployments[0].created_on.utcoffset() == timedelta(0)


def test_json_folder_gives_the_same_records_as_csv(tmp_path):
    deployments = [
        {
            "id": "d1",
            "worker": "api",
            "environment": "production",
            "finished_at": "2026-01-02T10:00:00Z",
            "status": "success",
            "commit_sha": "B2C3D4E5",
            "kind": "deploy",
            "version": "v1",
            "message": "first release",
            "region": "eu",
        },
        {
            "id": "d2",
            "worker": "api",
            "environment": "production",
            "finished_at": "2026-01-02T12:30:00+01:00",
            "status": "failure",
            "commit_sha": None,
            "kind": "rollback",
            "version": None,
        },
        {
            "id": "d3",
            "worker": " api ",
            "environment": "staging",
            "finished_at": "2026-01-03T09:00:00-05:00",
            "status": "success",
            "commit_sha": "c3d4e5f6",
            "kind": "",
        },
    ]
    commits = [
        {
            "sha": "a1b2c3d4",
            "parents": [],
            "author_time": "2026-01-01T09:00:00Z",
            "commit_time": "2026-01-01T09:00:00Z",
            "author_email": "ada@example.com",
            "message": "init",
        },
        {
            "sha": "b2c3d4e5",
            "parents": "a1b2c3d4",
            "author_time": "2026-01-01T15:00:00+05:30",
            "commit_time": "2026-01-01T15:05:00+05:30",
            "author_email": "bob@example.com",
            "message": "feat: add cache\n\nCaches responses.\n\nRefs: 12",
            "patch_id": "DEADBEEF",
        },
        {
            "sha": "c3d4e5f6",
            "parents": ["a1b2c3d4", "b2c3d4e5"],
            "author_time": "2026-01-02T08:00:00-08:00",
            "commit_time": "2026-01-02T08:00:00-08:00",
            "author_email": "ada@example.com",
            "message": "Merge branch 'cache'",
            "patch_id": None,
        },
    ]
    incidents = [
        {
            "id": "i1",
            "environment": "production",
            "created_at": "2026-01-02T12:00:00Z",
            "resolved_at": "2026-01-02T13:15:00Z",
            "deployment_id": "d1",
            "title": "Errors, 5xx",
        },
        {
            "id": "i2",
            "environment": "production",
            "created_at": "2026-01-03T08:00:00+02:00",
            "resolved_at": None,
        },
    ]
    builds = [
        dict(zip(BUILDS_CSV.splitlines()[0].split(","), row.split(","), strict=True))
        for row in BUILDS_CSV.splitlines()[1:]
    ]
    files = {
        "deployments.json": json.dumps(deployments, indent=2),
        "commits.json": json.dumps(commits),
        "incidents.json": json.dumps(incidents),
        "builds.json": json.dumps(builds),
    }

    from_json = load_events(events_folder(tmp_path / "json", files))
    from_csv = load_events(events_folder(tmp_path / "csv", ALL_CSV))

    assert from_json == from_csv == EXPECTED
    assert repr(from_json) == repr(from_csv)


def test_only_deployments_are_required(tmp_path):
    history = load_events(events_folder(tmp_path, {}))

    assert [d.deployment_id for d in history.deployments] == ["d1"]
    assert history.commits == history.incidents == history.builds == ()


def test_utf8_with_a_byte_order_mark_and_crlf_line_ends_is_read(tmp_path):
    text = DEPLOYMENTS_CSV.replace("\n", "\r\n").encode("utf-8-sig")
    history = load_events(events_folder(tmp_path, {"deployments.csv": text}))

    assert repr(history.deployments) == repr(EXPECTED.deployments)


def test_subject_and_body_may_come_in_their_own_columns(tmp_path):
    commits = lines(
        "sha,parents,author_time,commit_time,subject,body",
        'abcd1234,,2026-01-01T09:00:00Z,2026-01-01T09:00:00Z,fix: retry,"Twice.\n\nFixes: 7"',
    )
    (commit,) = load_events(events_folder(tmp_path, {"commits.csv": commits})).commits

    assert (commit.subject, commit.body) == ("fix: retry", "Twice.\n\nFixes: 7")
    assert commit.trailers == (("Fixes", "7"),)
    assert (commit.author_email, commit.patch_id) == ("", None)


# --- refusing the folder -------------------------------------------------------------------


def test_missing_folder_is_refused_naming_it(tmp_path):
    missing = tmp_path / "nowhere"

    assert refusal(missing) == f"events folder {missing} does not exist"


def test_folder_without_deployments_is_refused_naming_the_expected_files(tmp_path):
    folder = events_folder(tmp_path, {"commits.csv": COMMITS_CSV}, deployments=False)

    assert refusal(folder) == (
        f"events folder {folder} has no deployments.csv or deployments.json; "
        "deployments are required (commits, incidents and builds are optional)"
    )


def test_both_csv_and_json_of_one_file_are_refused_as_ambiguous(tmp_path):
    folder = events_folder(tmp_path, {"builds.csv": BUILDS_CSV, "builds.json": "[]"})

    assert refusal(folder) == (
        f"events folder {folder} has both builds.csv and builds.json; "
        "keep one (which to read would be a guess)"
    )


# --- refusing a CSV file -------------------------------------------------------------------

HEADER = "id,environment,finished_at,status,commit_sha,kind"
GOOD = "d1,production,2026-01-02T10:00:00Z,success,abcd1234,deploy"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            [GOOD, "d2,production,2026-01-02 10:00,success,abcd1234,deploy"],
            "deployments.csv, row 3, column finished_at: "
            "an ISO 8601 time with a UTC offset, got '2026-01-02 10:00'",
            id="naive time",
        ),
        pytest.param(
            ["d1,production,yesterday,success,abcd1234,deploy"],
            "deployments.csv, row 2, column finished_at: "
            "an ISO 8601 time with a UTC offset, got 'yesterday'",
            id="bad time",
        ),
        pytest.param(
            ["d1,production,2026-01-02T10:00:00.1234567Z,success,abcd1234,deploy"],
            "deployments.csv, row 2, column finished_at: an ISO 8601 time with a UTC offset "
            "and at most 6 decimals of a second, got '2026-01-02T10:00:00.1234567Z'",
            id="nanoseconds would be cut off",
        ),
        pytest.param(
            ["d1,production,2026-01-02T10:00:00Z,ok,abcd1234,deploy"],
            "deployments.csv, row 2, column status: one of success failure, got 'ok'",
            id="bad status",
        ),
        pytest.param(
            ["d1,production,2026-01-02T10:00:00Z,Success,abcd1234,deploy"],
            "deployments.csv, row 2, column status: one of success failure, got 'Success'",
            id="status in another case",
        ),
        pytest.param(
            ["d1,production,2026-01-02T10:00:00Z,success,abcd1234,redeploy"],
            "deployments.csv, row 2, column kind: one of deploy rollback hotfix, got 'redeploy'",
            id="bad kind",
        ),
        pytest.param(
            [GOOD, GOOD.replace("d1,", "d2,"), GOOD],
            "deployments.csv, row 4, column id: a unique id, got 'd1' again (first on row 2)",
            id="repeated id",
        ),
        pytest.param(
            ["d1,production,2026-01-02T10:00:00Z,success,abc,deploy"],
            "deployments.csv, row 2, column commit_sha: a sha of 4 to 64 hex characters, got 'abc'",
            id="sha too short",
        ),
        pytest.param(
            ["d1,production,2026-01-02T10:00:00Z,success,main,deploy"],
            "deployments.csv, row 2, column commit_sha: "
            "a sha of 4 to 64 hex characters, got 'main'",
            id="sha not hex",
        ),
        pytest.param(
            ["d1, ,2026-01-02T10:00:00Z,success,abcd1234,deploy"],
            "deployments.csv, row 2, column environment: a non-empty value, got ''",
            id="empty required cell",
        ),
        pytest.param(
            [GOOD, "d2,production"],
            "deployments.csv, row 3: 2 cells where the header has 6",
            id="short row",
        ),
        pytest.param(
            [GOOD, "d2,production,2026-01-02T10:00:00Z,success,abcd1234,deploy,fix, again"],
            "deployments.csv, row 3: 8 cells where the header has 6",
            id="unquoted comma",
        ),
    ],
)
def test_bad_deployment_row_is_refused_naming_file_row_and_column(tmp_path, rows, message):
    folder = events_folder(tmp_path, {"deployments.csv": lines(HEADER, *rows)})

    assert refusal(folder) == message


def test_missing_column_is_refused_naming_it_and_the_required_ones(tmp_path):
    folder = events_folder(tmp_path, {"deployments.csv": lines(HEADER.removesuffix(",kind"))})

    assert refusal(folder) == (
        "deployments.csv, column kind: missing from the header; "
        "deployments.csv needs id, environment, finished_at, status, commit_sha, kind"
    )


def test_repeated_column_is_refused(tmp_path):
    folder = events_folder(tmp_path, {"deployments.csv": lines(HEADER + ",status", GOOD + ",x")})

    assert refusal(folder) == "deployments.csv, row 1, column status: named twice in the header"


def test_empty_file_is_refused(tmp_path):
    folder = events_folder(tmp_path, {"deployments.csv": ""})

    assert refusal(folder) == "deployments.csv: empty; expected a header row naming the columns"


def test_multi_line_quoted_field_before_a_bad_row_still_gives_its_line(tmp_path):
    deployments = lines(
        HEADER + ",message",
        GOOD + ',"line one',
        "line two",
        'line three"',
        "d2,production,2026-01-02T11:00:00Z,done,abcd1234,deploy,",
    )
    folder = events_folder(tmp_path, {"deployments.csv": deployments})

    assert refusal(folder) == (
        "deployments.csv, row 5, column status: one of success failure, got 'done'"
    )


def test_unclosed_quote_is_refused_at_the_row_it_opens(tmp_path):
    deployments = lines(HEADER, GOOD, 'd2,production,"2026-01-02T11:00:00Z,success,abcd1234,deploy')
    folder = events_folder(tmp_path, {"deployments.csv": deployments})

    assert refusal(folder).startswith("deployments.csv, row 3: not valid CSV (")


def test_text_that_is_not_utf8_is_refused_at_its_line(tmp_path):
    deployments = lines(HEADER, GOOD).encode() + b"d2,caf\xe9,2026-01-02T11:00:00Z,success,,\n"
    folder = events_folder(tmp_path, {"deployments.csv": deployments})

    assert refusal(folder) == "deployments.csv, line 3: not UTF-8 text (byte 0xe9)"


def test_incident_resolved_before_it_was_created_is_refused(tmp_path):
    incidents = lines(
        "id,environment,created_at,resolved_at",
        "i1,production,2026-01-02T12:00:00Z,2026-01-02T13:00:00+02:00",
    )
    folder = events_folder(tmp_path, {"incidents.csv": incidents})

    assert refusal(folder) == (
        "incidents.csv, row 2, column resolved_at: a time not before created_at "
        "(2026-01-02T12:00:00Z), got '2026-01-02T13:00:00+02:00'"
    )


def test_build_that_finished_before_it_started_is_refused(tmp_path):
    builds = lines(
        "id,commit_sha,branch,status,created_at,started_at,finished_at",
        "b1,abcd1234,main,success,2026-01-02T09:00:00Z,2026-01-02T09:05:00Z,2026-01-02T09:04:00Z",
    )
    folder = events_folder(tmp_path, {"builds.csv": builds})

    assert refusal(folder) == (
        "builds.csv, row 2, column finished_at: a time not before started_at "
        "(2026-01-02T09:05:00Z), got '2026-01-02T09:04:00Z'"
    )


def test_only_a_cancelled_build_may_leave_its_start_empty(tmp_path):
    builds = lines(
        "id,commit_sha,branch,status,created_at,started_at,finished_at",
        "b1,abcd1234,main,cancelled,2026-01-02T09:00:00Z,,2026-01-02T09:01:00Z",
        "b2,abcd1234,main,failure,2026-01-02T09:00:00Z,,2026-01-02T09:04:00Z",
    )
    folder = events_folder(tmp_path, {"builds.csv": builds})

    assert refusal(folder) == (
        "builds.csv, row 3, column started_at: an ISO 8601 time with a UTC offset "
        "(only a cancelled build may leave it empty), got ''"
    )


def test_build_status_outside_the_choices_is_refused(tmp_path):
    builds = lines(
        "id,commit_sha,branch,status,created_at,started_at,finished_at",
        "b1,abcd1234,main,fail,2026-01-02T09:00:00Z,2026-01-02T09:00:01Z,2026-01-02T09:04:00Z",
    )
    folder = events_folder(tmp_path, {"builds.csv": builds})

    assert refusal(folder) == (
        "builds.csv, row 2, column status: one of success failure cancelled, got 'fail'"
    )


def test_commit_with_a_bad_parent_sha_is_refused_naming_the_parent(tmp_path):
    commits = lines(
        "sha,parents,author_time,commit_time",
        "abcd1234,abcd0000 HEAD~1,2026-01-01T09:00:00Z,2026-01-01T09:00:00Z",
    )
    folder = events_folder(tmp_path, {"commits.csv": commits})

    assert refusal(folder) == (
        "commits.csv, row 2, column parents: a sha of 4 to 64 hex characters, got 'HEAD~1'"
    )


def test_commit_sha_repeated_in_another_case_is_refused(tmp_path):
    commits = lines(
        "sha,parents,author_time,commit_time",
        "abcd1234,,2026-01-01T09:00:00Z,2026-01-01T09:00:00Z",
        "ABCD1234,,2026-01-01T09:00:00Z,2026-01-01T09:00:00Z",
    )
    folder = events_folder(tmp_path, {"commits.csv": commits})

    assert refusal(folder) == (
        "commits.csv, row 3, column sha: a unique sha, got 'abcd1234' again (first on row 2)"
    )


def test_commit_with_both_a_message_and_a_subject_is_refused(tmp_path):
    commits = lines(
        "sha,parents,author_time,commit_time,subject,message",
        "abcd1234,,2026-01-01T09:00:00Z,2026-01-01T09:00:00Z,fix,fix: retry",
    )
    folder = events_folder(tmp_path, {"commits.csv": commits})

    assert refusal(folder) == (
        "commits.csv, row 2, column message: empty when subject or body is given, got 'fix: retry'"
    )


# --- refusing a JSON file ------------------------------------------------------------------

GOOD_ITEM = {
    "id": "d1",
    "environment": "production",
    "finished_at": "2026-01-02T10:00:00Z",
    "status": "success",
    "commit_sha": "abcd1234",
    "kind": "deploy",
}


def test_invalid_json_is_refused_naming_the_line(tmp_path):
    text = '[\n  {"id": "d1"},\n  {"id" "d2"}\n]\n'
    folder = events_folder(tmp_path, {"deployments.json": text})

    assert refusal(folder).startswith(
        "deployments.json, line 3: not valid JSON (Expecting ':' delimiter at character "
    )


def test_json_that_is_not_an_array_is_refused(tmp_path):
    folder = events_folder(tmp_path, {"deployments.json": json.dumps(GOOD_ITEM)})

    assert refusal(folder) == "deployments.json: a JSON array of objects, got an object"


def test_json_item_that_is_not_an_object_is_refused_naming_the_item(tmp_path):
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([GOOD_ITEM, "d2"])})

    assert refusal(folder) == "deployments.json, item 1: a JSON object, got a string"


def test_json_item_without_a_required_key_is_refused(tmp_path):
    item = {key: value for key, value in GOOD_ITEM.items() if key != "kind"}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([GOOD_ITEM, item])})

    assert refusal(folder) == (
        "deployments.json, item 1, column kind: missing; "
        "every item needs id, environment, finished_at, status, commit_sha, kind"
    )


def test_json_item_naming_a_key_twice_is_refused(tmp_path):
    text = json.dumps([GOOD_ITEM])[:-2] + ', "status": "failure"}]'
    folder = events_folder(tmp_path, {"deployments.json": text})

    assert refusal(folder) == "deployments.json, item 0, column status: given twice in one object"


def test_json_value_that_is_not_text_is_refused(tmp_path):
    item = {**GOOD_ITEM, "id": 7}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([item])})

    assert refusal(folder) == "deployments.json, item 0, column id: a JSON string or null, got 7"


def test_json_bad_time_is_refused_naming_the_item_and_column(tmp_path):
    item = {**GOOD_ITEM, "id": "d2", "finished_at": "2026-01-02T10:00:00"}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([GOOD_ITEM, item])})

    assert refusal(folder) == (
        "deployments.json, item 1, column finished_at: "
        "an ISO 8601 time with a UTC offset, got '2026-01-02T10:00:00'"
    )


def test_json_parents_that_are_not_shas_in_a_list_or_string_are_refused(tmp_path):
    commit = {
        "sha": "abcd1234",
        "parents": ["abcd0000", 7],
        "author_time": "2026-01-01T09:00:00Z",
        "commit_time": "2026-01-01T09:00:00Z",
    }
    folder = events_folder(tmp_path, {"commits.json": json.dumps([commit])})

    assert refusal(folder) == (
        "commits.json, item 0, column parents: "
        "a list of shas or a space-separated string, got ['abcd0000', 7]"
    )


def test_commit_listed_as_its_own_parent_is_refused(tmp_path):
    commits = lines(
        "sha,parents,author_time,commit_time",
        "abcd1234,ABCD1234,2026-01-01T09:00:00Z,2026-01-01T09:00:00Z",
    )
    folder = events_folder(tmp_path, {"commits.csv": commits})

    assert refusal(folder) == (
        "commits.csv, row 2, column parents: shas of other commits, got 'ABCD1234'"
    )


def test_a_file_given_as_the_folder_is_refused(tmp_path):
    not_a_folder = tmp_path / "deployments.csv"
    not_a_folder.write_text(VALID_DEPLOYMENTS, encoding="utf-8")

    assert refusal(not_a_folder) == f"events folder {not_a_folder} is not a folder"


# --- times outside any real history ----------------------------------------------------------

TIME_COLUMNS = [
    ("deployments", "finished_at"),
    ("commits", "author_time"),
    ("commits", "commit_time"),
    ("incidents", "created_at"),
    ("incidents", "resolved_at"),
    ("builds", "created_at"),
    ("builds", "started_at"),
    ("builds", "finished_at"),
]


def one_row_csv(name: str, column: str, value: str) -> dict[str, str]:
    """The example file ``name`` cut to its header and first row, ``column`` set to ``value``."""
    header, first = ALL_CSV[f"{name}.csv"].splitlines()[:2]
    columns = header.split(",")
    cells = first.split(",", len(columns) - 1)
    cells[columns.index(column)] = value
    return {f"{name}.csv": lines(header, ",".join(cells))}


@pytest.mark.parametrize(("name", "column"), TIME_COLUMNS)
@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T04:59:59+05:00",
        "3000-01-01T00:00:00Z",
        "2999-12-31T19:00:00-05:00",
    ],
)
def test_time_before_1970_or_from_3000_is_refused_in_every_time_column(
    tmp_path, name, column, value
):
    folder = events_folder(tmp_path, one_row_csv(name, column, value))

    assert refusal(folder) == (
        f"{name}.csv, row 2, column {column}: a time from 1970 to 2999, got {value!r}"
    )


@pytest.mark.parametrize(
    "value",
    [
        "1970-01-01T00:00:00Z",
        "1970-01-01T05:00:00+05:00",
        "1969-12-31T16:00:00-08:00",
        "2999-12-31T23:59:59.999999Z",
        "3000-01-01T04:59:59+05:00",
    ],
)
def test_times_at_the_edges_of_the_range_are_read(tmp_path, value):
    files = one_row_csv("deployments", "finished_at", value)

    (deployment,) = load_events(events_folder(tmp_path, files)).deployments

    assert deployment.created_on == datetime.fromisoformat(value)


def test_json_time_outside_the_range_is_refused(tmp_path):
    item = {**GOOD_ITEM, "finished_at": "0001-01-01T00:00:00+05:00"}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([item])})

    assert refusal(folder) == (
        "deployments.json, item 0, column finished_at: "
        "a time from 1970 to 2999, got '0001-01-01T00:00:00+05:00'"
    )


# --- JSON that Python's decoder cannot hold ------------------------------------------------


def test_json_nested_too_deeply_is_refused(tmp_path):
    folder = events_folder(tmp_path, {"deployments.json": "[" * 100_000})

    assert refusal(folder) == "deployments.json: not valid JSON (nested too deeply)"


def test_json_nesting_within_the_limit_is_shown_cut_to_its_outer_levels(tmp_path):
    item = {**GOOD_ITEM, "id": json.loads("[" * 500 + "]" * 500)}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([item])})

    assert refusal(folder) == (
        "deployments.json, item 0, column id: a JSON string or null, got [[[[...]]]]"
    )


def test_json_number_too_long_for_python_is_ignored_in_an_ignored_key(tmp_path):
    text = json.dumps([GOOD_ITEM])[:-2] + ', "region": ' + "7" * 5000 + "}]"
    history = load_events(events_folder(tmp_path, {"deployments.json": text}))

    assert [d.deployment_id for d in history.deployments] == ["d1"]


def test_json_number_too_long_for_python_is_refused_in_a_column(tmp_path):
    text = json.dumps([GOOD_ITEM])[:-2] + ', "worker": ' + "7" * 5000 + "}]"
    folder = events_folder(tmp_path, {"deployments.json": text})

    assert refusal(folder) == (
        "deployments.json, item 0, column worker: a JSON string or null, "
        "got 77777777777777777777… (5000 digits)"
    )


# --- oversized values in messages ----------------------------------------------------------


def test_oversized_csv_cell_is_shown_cut_with_its_length(tmp_path):
    value = "2026-01-" + "9" * 129_992
    folder = events_folder(tmp_path, one_row_csv("deployments", "finished_at", value))

    message = refusal(folder)

    assert message == (
        "deployments.csv, row 2, column finished_at: an ISO 8601 time with a UTC offset, "
        f"got '{value[:77]}…' (130000 characters)"
    )
    assert len(message) < 200


def test_oversized_json_string_is_shown_cut_with_its_length(tmp_path):
    value = "ok" * 2_500_000
    item = {**GOOD_ITEM, "status": value}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([item])})

    assert refusal(folder) == (
        "deployments.json, item 0, column status: one of success failure, "
        f"got '{value[:77]}…' (5000000 characters)"
    )


def test_oversized_repeated_id_is_shown_cut_with_its_length(tmp_path):
    long_id = "d" * 1000
    row = GOOD.replace("d1,", f"{long_id},")
    folder = events_folder(tmp_path, {"deployments.csv": lines(HEADER, row, row)})

    assert refusal(folder) == (
        f"deployments.csv, row 3, column id: a unique id, got '{'d' * 77}…' (1000 characters) "
        "again (first on row 2)"
    )


def test_cut_value_with_escapes_stays_within_80_characters(tmp_path):
    value = "\x1b" * 1000
    item = {**GOOD_ITEM, "environment": value}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([item])})

    assert refusal(folder) == (
        "deployments.json, item 0, column environment: no control characters, "
        "got '" + "\\x1b" * 19 + "…' (1000 characters)"
    )


def test_oversized_non_string_json_value_is_shown_cut(tmp_path):
    item = {**GOOD_ITEM, "id": ["x" * 100] * 100_000}
    folder = events_folder(tmp_path, {"deployments.json": json.dumps([item])})

    message = refusal(folder)

    assert message == (
        "deployments.json, item 0, column id: a JSON string or null, got "
        f"['{'x' * 17}...{'x' * 18}', '{'x' * 17}...{'x' * 15}…"
    )


def test_oversized_column_names_are_shown_cut(tmp_path):
    name = "c" * 100
    csv_file = lines(f"{HEADER},{name},{name}", f"{GOOD},1,2")
    json_file = json.dumps([GOOD_ITEM])[:-2] + f', "{name}": 1, "{name}": 2}}]'

    from_csv = refusal(events_folder(tmp_path / "csv", {"deployments.csv": csv_file}))
    from_json = refusal(events_folder(tmp_path / "json", {"deployments.json": json_file}))

    shown = f"'{'c' * 77}…' (100 characters)"
    assert from_csv == f"deployments.csv, row 1, column {shown}: named twice in the header"
    assert from_json == f"deployments.json, item 0, column {shown}: given twice in one object"


# --- blank lines before the CSV header ------------------------------------------------------


def test_blank_lines_before_the_header_are_skipped(tmp_path):
    text = "\n\r\n" + DEPLOYMENTS_CSV
    history = load_events(events_folder(tmp_path, {"deployments.csv": text}))

    assert repr(history.deployments) == repr(EXPECTED.deployments)


def test_rows_after_blank_lines_before_the_header_keep_their_line_numbers(tmp_path):
    text = "\n\n" + lines(HEADER, GOOD, "", "d2,production,2026-01-02T10:00:00Z,ok,,deploy")
    folder = events_folder(tmp_path, {"deployments.csv": text})

    assert (
        refusal(folder) == "deployments.csv, row 6, column status: one of success failure, got 'ok'"
    )


def test_header_after_blank_lines_is_named_by_its_line(tmp_path):
    folder = events_folder(tmp_path, {"deployments.csv": "\n\n" + lines(HEADER + ",kind", GOOD)})

    assert refusal(folder) == "deployments.csv, row 3, column kind: named twice in the header"


def test_file_of_blank_lines_is_refused_as_empty(tmp_path):
    folder = events_folder(tmp_path, {"deployments.csv": "\n\r\n\n"})

    assert refusal(folder) == "deployments.csv: empty; expected a header row naming the columns"


# --- impossible commit graphs --------------------------------------------------------------

COMMIT_HEADER = "sha,parents,author_time,commit_time"
WHEN = "2026-01-01T09:00:00Z,2026-01-01T09:00:00Z"


def commits_csv(*rows: tuple[str, str]) -> dict[str, str]:
    return {
        "commits.csv": lines(COMMIT_HEADER, *(f"{sha},{parents},{WHEN}" for sha, parents in rows))
    }


@pytest.mark.parametrize("parents", ["aaaa aaaa", "bbbb AAAA aaaa"])
def test_commit_naming_a_parent_twice_is_refused(tmp_path, parents):
    folder = events_folder(tmp_path, commits_csv(("cccc", "bbbb"), ("dddd", parents)))

    assert refusal(folder) == (
        f"commits.csv, row 3, column parents: each parent once, got {parents!r}"
    )


def test_json_commit_naming_a_parent_twice_is_refused(tmp_path):
    commit = {"sha": "cccc", "parents": ["aaaa", "AAAA"], "author_time": "2026-01-01T09:00:00Z"}
    commit["commit_time"] = commit["author_time"]
    folder = events_folder(tmp_path, {"commits.json": json.dumps([commit])})

    assert refusal(folder) == (
        "commits.json, item 0, column parents: each parent once, got 'aaaa AAAA'"
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            [("aaaa", "cccc"), ("bbbb", "aaaa"), ("cccc", "bbbb")],
            "commits.csv, row 2, column parents: "
            "no cycle through its parents, got a cycle through aaaa",
            id="a-c-b-a",
        ),
        pytest.param(
            [
                ("1111", ""),
                ("eeee", "cccc"),
                ("cccc", "bbbb 1111"),
                ("bbbb", "aaaa"),
                ("aaaa", "ffff cccc"),
            ],
            "commits.csv, row 4, column parents: "
            "no cycle through its parents, got a cycle through cccc",
            id="entered from a child off the cycle",
        ),
        pytest.param(
            [("aaaa", "bbbb"), ("bbbb", "aaaa")],
            "commits.csv, row 2, column parents: "
            "no cycle through its parents, got a cycle through aaaa",
            id="two commits",
        ),
    ],
)
def test_parent_cycle_is_refused_naming_the_first_commit_on_it(tmp_path, rows, message):
    assert refusal(events_folder(tmp_path, commits_csv(*rows))) == message


def test_json_parent_cycle_is_refused_naming_the_item(tmp_path):
    commits = [
        {
            "sha": sha,
            "parents": parents,
            "author_time": "2026-01-01T09:00:00Z",
            "commit_time": "2026-01-01T09:00:00Z",
        }
        for sha, parents in [("1111", []), ("aaaa", ["1111", "bbbb"]), ("bbbb", ["AAAA"])]
    ]
    folder = events_folder(tmp_path, {"commits.json": json.dumps(commits)})

    assert refusal(folder) == (
        "commits.json, item 1, column parents: "
        "no cycle through its parents, got a cycle through aaaa"
    )


def test_parents_missing_from_the_file_and_any_order_without_a_cycle_are_read(tmp_path):
    rows = [("bbbb", "aaaa"), ("dddd", "bbbb cccc"), ("cccc", "bbbb 9999"), ("eeee", "dddd")]
    history = load_events(events_folder(tmp_path, commits_csv(*rows)))

    assert [(c.sha, c.parents) for c in history.commits] == [
        ("bbbb", ("aaaa",)),
        ("dddd", ("bbbb", "cccc")),
        ("cccc", ("bbbb", "9999")),
        ("eeee", ("dddd",)),
    ]


def test_deep_linear_history_is_walked_without_recursion(tmp_path):
    depth = 200_000
    shas = [f"{index:08x}" for index in range(1, depth + 1)]
    newest_first = [(shas[i], shas[i - 1] if i else "") for i in range(depth - 1, -1, -1)]
    # one parent above its child makes the single pass undecided, so the walk runs
    extra = ("ffffffff", shas[-1])
    history = load_events(events_folder(tmp_path / "ok", commits_csv(*newest_first, extra)))
    assert len(history.commits) == depth + 1

    newest_first[-1] = (shas[0], shas[-1])  # the root now descends from the newest commit
    folder = events_folder(tmp_path / "cycle", commits_csv(*newest_first, extra))
    assert refusal(folder) == (
        f"commits.csv, row 2, column parents: "
        f"no cycle through its parents, got a cycle through {shas[-1]}"
    )


# --- control characters in identifiers -----------------------------------------------------

BASE_ITEMS = {
    name: dict(zip(text.splitlines()[0].split(","), text.splitlines()[1].split(","), strict=True))
    for name, text in (
        ("deployments", DEPLOYMENTS_CSV),
        ("commits", lines(COMMIT_HEADER, f"abcd1234,,{WHEN}")),
        (
            "incidents",
            lines("id,environment,created_at,resolved_at", "i1,production,2026-01-02T12:00:00Z,"),
        ),
        ("builds", BUILDS_CSV),
    )
}
IDENTIFIERS = [
    (name, column)
    for name, columns in (
        ("deployments", "id environment worker version commit_sha kind status author_email"),
        ("commits", "sha parents patch_id author_email"),
        ("incidents", "id environment deployment_id"),
        ("builds", "id worker branch commit_sha status"),
    )
    for column in columns.split()
]


@pytest.mark.parametrize(("name", "column"), IDENTIFIERS)
@pytest.mark.parametrize("control", ["\n", "\r", "\x1b", "\x00", "\x1f", "\x7f"])
def test_control_character_in_an_identifier_is_refused(tmp_path, name, column, control):
    value = f"abcd{control}1234"
    item = {**BASE_ITEMS[name], column: value}
    folder = events_folder(tmp_path, {f"{name}.json": json.dumps([item])})

    assert refusal(folder) == (
        f"{name}.json, item 0, column {column}: no control characters, got {value!r}"
    )


def test_line_break_in_a_quoted_csv_identifier_is_refused(tmp_path):
    row = 'd1,"prod\nuction",2026-01-02T10:00:00Z,success,abcd1234,deploy'
    folder = events_folder(
        tmp_path, {"deployments.csv": lines(HEADER, GOOD.replace("d1", "d0"), row)}
    )

    assert refusal(folder) == (
        "deployments.csv, row 3, column environment: no control characters, got 'prod\\nuction'"
    )


def test_tab_in_an_identifier_and_line_breaks_in_free_text_are_kept(tmp_path):
    item = {**BASE_ITEMS["incidents"], "environment": "prod\teu", "title": "Errors\n\x1b 5xx"}
    history = load_events(events_folder(tmp_path, {"incidents.json": json.dumps([item])}))

    (incident,) = history.incidents
    assert (incident.environment, incident.title) == ("prod\teu", "Errors\n\x1b 5xx")


# --- incidents name deployments of the folder -----------------------------------------------


@pytest.mark.parametrize("deployments", ["deployments.csv", "deployments.json"])
def test_incident_naming_no_deployment_of_the_folder_is_refused(tmp_path, deployments):
    incidents = lines(
        "id,environment,created_at,resolved_at,deployment_id",
        "i1,production,2026-01-02T12:00:00Z,,d1",
        "i2,production,2026-01-02T12:00:00Z,,",
        "i3,production,2026-01-02T12:00:00Z,,zzz",
    )
    files = {"incidents.csv": incidents}
    if deployments.endswith(".json"):
        files[deployments] = json.dumps([GOOD_ITEM])

    assert refusal(events_folder(tmp_path, files)) == (
        f"incidents.csv, row 4, column deployment_id: "
        f"the id of a deployment in {deployments}, got 'zzz'"
    )


def test_incident_feed_file_alone_accepts_any_deployment_id(tmp_path):
    feed = tmp_path / "incidents.csv"
    feed.write_text(
        lines(
            "id,environment,created_at,resolved_at,deployment_id",
            "i1,production,2026-01-02T12:00:00Z,,zzz",
        ),
        encoding="utf-8",
    )

    (incident,) = read_incidents(feed)

    assert incident.deployment_id == "zzz"
