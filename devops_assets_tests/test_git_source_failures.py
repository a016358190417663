"""The git reader when git hangs, fails, or meets dates and names other tools choke on."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from devops_assets.sources import git as git_source
from devops_assets.sources.git import (
    GitError,
    ensure_local,
    read_branches,
    read_commits,
    read_tags,
)
from devops_assets_tests.git_fixtures import (
    closed_by_peer,
    commit,
    git,
    init_repo,
    raw_commit,
    raw_tag,
    silent_server,
)

GOOD = "Ada <ada@x> 1704103200 +0000"  # 2024-01-01T10:00:00Z


# --- time limits ---------------------------------------------------------------------------


def test_clone_from_a_server_that_never_answers_is_stopped_at_the_timeout(tmp_path):
    cache = tmp_path / "cache"
    with silent_server() as (port, accepted):
        url = f"http://ada:s3cret@127.0.0.1:{port}/x.git"
        started = time.monotonic()
        with pytest.raises(GitError) as caught:
            ensure_local(url, cache, timeout=1)
        elapsed = time.monotonic() - started
        # git's http helper held the connection; it was killed with git, so the socket closes.
        assert len(accepted) == 1
        assert closed_by_peer(accepted[0])

    shown = f"http://***@127.0.0.1:{port}/x.git"
    assert str(caught.value) == (
        f"git clone in {cache.resolve()} (cloning {shown}) did not finish within 1 s; stopped it"
    )
    assert 1 <= elapsed < 10
    assert list(cache.iterdir()) == []  # no half-made mirror to be fetched next time


def test_fetch_from_a_server_that_never_answers_is_stopped_at_the_timeout(tmp_path):
    origin = init_repo(tmp_path / "origin")
    git(origin, "update-ref", "refs/heads/main", commit(origin, "feat: one"))
    mirror = ensure_local(origin.as_uri(), tmp_path / "cache")
    with silent_server() as (port, _):
        git(mirror, "remote", "set-url", "origin", f"http://127.0.0.1:{port}/x.git")
        with pytest.raises(GitError, match=r"^git fetch in .* did not finish within 0.5 s"):
            ensure_local(origin.as_uri(), tmp_path / "cache", timeout=0.5)


def test_a_local_read_that_blocks_is_stopped_at_the_read_timeout(tmp_path, monkeypatch):
    # A FIFO in place of HEAD: git opens it and waits forever for a writer.
    repo = init_repo(tmp_path / "blocked")
    (repo / ".git" / "HEAD").unlink()
    os.mkfifo(repo / ".git" / "HEAD")
    monkeypatch.setattr(git_source, "READ_TIMEOUT", 0.5)

    with pytest.raises(GitError) as caught:
        ensure_local(str(repo), tmp_path / "cache")
    assert str(caught.value) == (
        f"git rev-parse in {repo} (checking it is a git repository) "
        "did not finish within 0.5 s; stopped it"
    )


# --- git's own error messages --------------------------------------------------------------


def test_error_quotes_every_fatal_line_not_only_the_last(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(GitError) as caught:
        ensure_local("file:///nonexistent/x.git", cache)
    assert str(caught.value) == (
        f"git clone in {cache.resolve()} (cloning file:///nonexistent/x.git) failed: "
        "fatal: '/nonexistent/x.git' does not appear to be a git repository; "
        "fatal: Could not read from remote repository."
    )


def test_error_never_shows_a_password_even_one_holding_an_at_sign(tmp_path):
    with pytest.raises(GitError) as caught:
        ensure_local("file://ada:p@ss@localhost/nonexistent/x.git", tmp_path / "cache")
    assert "(cloning file://***@localhost/nonexistent/x.git)" in str(caught.value)
    assert "ss@" not in str(caught.value)


def test_quoted_git_output_is_capped(tmp_path):
    repo = init_repo(tmp_path / "repo")
    git(repo, "update-ref", "refs/heads/main", commit(repo, "feat: one"))
    with pytest.raises(GitError) as caught:
        read_commits(repo, ["x" * 2000])
    reason = str(caught.value).split(" failed: ", 1)[1]
    assert reason.startswith("fatal: bad revision 'xxx")
    assert (len(reason), reason[-1]) == (500, "…")


def test_a_password_where_the_quote_is_capped_is_still_hidden(tmp_path):
    repo = init_repo(tmp_path / "repo")
    git(repo, "update-ref", "refs/heads/main", commit(repo, "feat: one"))
    # git quotes the revision; the cap falls inside the password.
    with pytest.raises(GitError) as caught:
        read_commits(repo, ["x" * 470 + "http://ada:s3cret@host/"])
    assert "http://***@host/" in str(caught.value)
    assert "ada" not in str(caught.value) and "s3c" not in str(caught.value)
    reason = str(caught.value).split(" failed: ", 1)[1]
    assert (len(reason), reason[-12:]) == (500, "xxxhttp://*…")


def test_dubious_ownership_says_global_config_is_not_read(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a repository owned by another user (nobody) needs root")
    repo = init_repo(tmp_path / "theirs")
    subprocess.run(["chown", "-R", "nobody", str(repo)], check=True)  # noqa: S603, S607

    with pytest.raises(GitError) as caught:
        ensure_local(str(repo), tmp_path / "cache")
    assert str(caught.value) == (
        f"git rev-parse in {repo} (checking it is a git repository) failed: "
        f"fatal: detected dubious ownership in repository at '{repo}' "
        "(the repository is owned by another user; git's global and system config, where a "
        "safe.directory exception would live, are deliberately not read: run as its owner)"
    )


def test_git_dir_in_the_environment_does_not_redirect_reads(tmp_path, monkeypatch):
    # git hooks export GIT_DIR; the repository asked for must still be the one read.
    ours, other = init_repo(tmp_path / "ours"), init_repo(tmp_path / "other")
    head = commit(ours, "feat: ours")
    git(ours, "update-ref", "refs/heads/main", head)
    git(other, "update-ref", "refs/heads/elsewhere", commit(other, "feat: other"))
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert read_branches(ours) == {"main": head}


# --- dates git stores but a datetime cannot hold -------------------------------------------


@pytest.mark.parametrize(
    ("author", "problem"),
    [
        (
            "A <a@x> 999999999999 +0000",
            "is after 9998, too late to be stored: '999999999999 +0000'",
        ),
        (
            "A <a@x> 18446744073709551617 +0000",
            "is after 9998, too late to be stored: '18446744073709551617 +0000'",
        ),
        ("A <a@x> 1704103200 +2400", "has an impossible time zone +2400: '1704103200 +2400'"),
        ("A <a@x> 1704103200 +9959", "has an impossible time zone +9959: '1704103200 +9959'"),
        ("A <a@x> 1704103200 +0060", "has an impossible time zone +0060: '1704103200 +0060'"),
        ("A <a@x>", "is missing or unreadable: ''"),
        ("A <a@x> -5 +0000", "is missing or unreadable: ''"),
    ],
)
def test_unusable_author_date_raises_naming_the_commit_and_field(tmp_path, author, problem):
    repo = init_repo(tmp_path / "repo")
    sha = raw_commit(repo, author)
    git(repo, "update-ref", "refs/heads/main", sha)
    with pytest.raises(GitError) as caught:
        read_commits(repo)
    assert str(caught.value) == f"author date of commit {sha} in {repo} {problem}"


def test_unusable_committer_date_raises_naming_the_field(tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = raw_commit(repo, GOOD, "C <c@x> 1704103200 -2500")
    git(repo, "update-ref", "refs/heads/main", sha)
    with pytest.raises(GitError, match=rf"^committer date of commit {sha} .* -2500"):
        read_commits(repo)


def test_extreme_but_valid_dates_and_offsets_are_read_exactly(tmp_path):
    repo = init_repo(tmp_path / "repo")
    last_second = int(datetime(9998, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
    sha = raw_commit(repo, f"A <a@x> {last_second} +2359", "C <c@x> 0 -1200")
    git(repo, "update-ref", "refs/heads/main", sha)

    (read,) = read_commits(repo)
    east, west = timezone(timedelta(hours=23, minutes=59)), timezone(timedelta(hours=-12))
    assert read.author_time == datetime(9999, 1, 1, 23, 58, 59, tzinfo=east)
    assert read.author_time.utcoffset() == timedelta(hours=23, minutes=59)
    assert read.commit_time == datetime(1969, 12, 31, 12, 0, tzinfo=west)


# --- tags: names with line separators, unusable dates --------------------------------------


def test_tag_and_branch_names_with_unicode_line_separators_are_read_whole(tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = raw_commit(repo, GOOD, GOOD)
    names = ["v1\u2028two", "v2\x85next", "v3\u2029para"]
    for name in names:
        git(repo, "update-ref", f"refs/tags/{name}", sha)
    git(repo, "update-ref", "refs/heads/main\u2028x", sha)

    assert [(t.name, t.sha, t.annotated) for t in read_tags(repo)] == [
        (name, sha, False) for name in names
    ]
    assert [t.name for t in read_tags(repo, "v2*")] == ["v2\x85next"]
    assert read_branches(repo) == {"main\u2028x": sha}


@pytest.mark.parametrize(
    ("tagger", "problem"),
    [
        ("R <r@x> 999999999999 +0000", "is after 9998"),
        ("R <r@x> 1704103200 +2400", "has an impossible time zone +2400"),
        ("R <r@x>", "is missing or unreadable: ''"),
    ],
)
def test_unusable_tagger_date_raises_naming_the_tag(tmp_path, tagger, problem):
    repo = init_repo(tmp_path / "repo")
    raw_tag(repo, "v1.0.0", raw_commit(repo, GOOD, GOOD), tagger)
    with pytest.raises(GitError) as caught:
        read_tags(repo)
    assert str(caught.value).startswith(f"tagger date of tag 'v1.0.0' in {repo} {problem}")


def test_tag_on_a_commit_with_an_unusable_date_raises_naming_commit_and_tag(tmp_path):
    repo = init_repo(tmp_path / "repo")
    sha = raw_commit(repo, GOOD, "C <c@x> 1704103200 +9959")
    git(repo, "update-ref", "refs/tags/v1", sha)
    raw_tag(repo, "v2", sha, None)  # a tag from before git recorded taggers
    for pattern, tag in (("v1", "'v1'"), ("v2", "'v2'")):
        with pytest.raises(GitError) as caught:
            read_tags(repo, pattern)
        assert str(caught.value) == (
            f"committer date of commit {sha} (tag {tag} in {repo}) "
            "has an impossible time zone +9959: '1704103200 +9959'"
        )


def test_an_empty_repository_argument_is_refused_not_taken_as_the_current_folder(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(init_repo(tmp_path / "cwd"))
    with pytest.raises(GitError, match="^no repository given: the path or URL is empty$"):
        ensure_local("", tmp_path / "cache")
