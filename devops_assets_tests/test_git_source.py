"""The git reader on a repository of awkward cases built in a temporary folder."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from devops_assets.sources.git import (
    GitError,
    create_release_tag,
    ensure_local,
    first_parent_chain,
    parse_trailers,
    read_branches,
    read_commits,
    read_patch_ids,
    read_tags,
)
from devops_assets_tests.git_fixtures import (
    HUGE_BODY,
    UNICODE_SUBJECT,
    build_odd_repo,
    commit,
    git,
    init_repo,
)


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    path = tmp_path_factory.mktemp("odd")
    return path, build_odd_repo(path)


@pytest.fixture(scope="module")
def commits(odd):
    path, _ = odd
    return {c.sha: c for c in read_commits(path)}


def test_default_reads_every_branch_including_the_orphan(odd, commits):
    _, sha = odd
    names = ("root", "unicode", "empty", "huge", "crlf", "side1", "side2", "third1", "octopus")
    assert set(commits) == {sha[name] for name in (*names, "orphan")}


def test_revs_restrict_the_history_to_their_ancestors(odd):
    path, sha = odd
    assert {c.sha for c in read_commits(path, ["side"])} == {sha["root"], sha["unicode"]} | {
        sha["side1"],
        sha["side2"],
    }


def test_unicode_subject_body_and_trailers_are_read(odd, commits):
    unicode = commits[odd[1]["unicode"]]
    assert unicode.subject == UNICODE_SUBJECT
    assert unicode.body.startswith("Body text.\n\nSigned-off-by:")
    assert unicode.trailers == (
        ("Signed-off-by", "Ada <ada@example.invalid>"),
        ("Co-authored-by", "Bé <be@example.invalid>"),
    )


def test_empty_and_one_megabyte_messages_are_read(odd, commits):
    empty = commits[odd[1]["empty"]]
    assert (empty.subject, empty.body, empty.trailers) == ("", "", ())
    huge = commits[odd[1]["huge"]]
    assert huge.subject == "docs: huge"
    assert huge.body == HUGE_BODY


def test_crlf_body_keeps_its_line_endings_and_trailers_lose_the_cr(odd, commits):
    crlf = commits[odd[1]["crlf"]]
    assert crlf.subject == "fix: windows line endings"
    assert crlf.body == "line one\r\nline two\r\n\r\nReviewed-by: Cy"
    assert crlf.trailers == (("Reviewed-by", "Cy"),)


def test_octopus_merge_lists_three_parents_first_parent_first(odd, commits):
    _, sha = odd
    octopus = commits[sha["octopus"]]
    assert octopus.parents == (sha["crlf"], sha["side2"], sha["third1"])
    assert octopus.is_merge
    assert commits[sha["root"]].parents == ()


def test_author_and_committer_offsets_are_kept(odd, commits):
    root = commits[odd[1]["root"]]
    assert root.author_time == datetime.fromisoformat("2024-01-01T10:00:00+02:00")
    assert root.author_time.utcoffset() == timedelta(hours=2)
    assert root.commit_time.utcoffset() == timedelta(hours=-5)
    assert root.commit_time - root.author_time == timedelta(hours=9, minutes=30)
    assert commits[odd[1]["unicode"]].author_time.utcoffset() == timedelta(hours=5, minutes=30)
    assert root.author_email == "ada@example.invalid"


def test_tags_are_peeled_and_dated_by_tagger_or_commit(odd):
    path, sha = odd
    tags = {tag.name: tag for tag in read_tags(path)}
    assert set(tags) == {"v1.0.0-rc1", "v1.0.0", "v1.0.0-nested"}
    rc1 = tags["v1.0.0-rc1"]
    assert (rc1.sha, rc1.annotated) == (sha["side1"], True)
    assert rc1.time == datetime.fromisoformat("2024-02-01T08:00:00-03:00")
    assert tags["v1.0.0-nested"].sha == sha["side1"]
    light = tags["v1.0.0"]
    assert (light.sha, light.annotated) == (sha["octopus"], False)
    assert light.time == datetime.fromisoformat("2024-01-06T09:00:00+00:00")


def test_tag_pattern_is_a_glob_on_the_short_name(odd):
    path, _ = odd
    assert [t.name for t in read_tags(path, "v1.0.0")] == ["v1.0.0"]
    assert [t.name for t in read_tags(path, "*-rc*")] == ["v1.0.0-rc1"]
    assert read_tags(path, "tree-*") == []


def test_branches_map_names_to_heads(odd):
    path, sha = odd
    assert read_branches(path) == {
        "main": sha["octopus"],
        "side": sha["side2"],
        "third": sha["third1"],
        "gh-pages": sha["orphan"],
    }


def test_first_parent_chain_is_oldest_first_and_skips_merged_branches(odd):
    path, sha = odd
    names = ["root", "unicode", "empty", "huge", "crlf", "octopus"]
    assert first_parent_chain(path, "main") == [sha[name] for name in names]


def test_unknown_branch_raises_git_error_naming_repo_and_branch(odd):
    path, _ = odd
    with pytest.raises(GitError, match="no-such-branch") as caught:
        first_parent_chain(path, "no-such-branch")
    assert str(path) in str(caught.value)
    with pytest.raises(GitError, match="invalid revision '--all'"):
        read_commits(path, ["--all"])


def test_not_a_repository_raises_git_error_naming_the_path(tmp_path):
    with pytest.raises(GitError, match="not a git repository"):
        ensure_local(str(tmp_path / "missing"), tmp_path)
    with pytest.raises(GitError, match=str(tmp_path)):
        ensure_local(str(tmp_path), tmp_path / "cache")


def test_empty_repository_has_no_commits_or_tags(tmp_path):
    repo = init_repo(tmp_path / "empty")
    assert (read_commits(repo), read_tags(repo), read_branches(repo)) == ([], [], {})


def test_url_is_mirrored_once_then_fetched(tmp_path):
    origin = init_repo(tmp_path / "origin")
    first = commit(origin, "feat: one")
    git(origin, "update-ref", "refs/heads/main", first)
    cache = tmp_path / "cache"

    mirror = ensure_local(origin.as_uri(), cache)
    assert mirror.parent == cache
    assert read_branches(mirror) == {"main": first}

    second = commit(origin, "feat: two", (first,), when="2024-01-02T10:00:00+00:00")
    git(origin, "update-ref", "refs/heads/main", second)
    assert ensure_local(origin.as_uri(), cache) == mirror
    assert [c.sha for c in read_commits(mirror)] == [second, first]


def test_trailers_come_only_from_a_last_paragraph_of_key_value_lines():
    assert parse_trailers("Text.\n\nAcked-by: A\n  continued\nCc: B") == (
        ("Acked-by", "A continued"),
        ("Cc", "B"),
    )
    assert parse_trailers("Fixes: the bug\nand more prose") == ()
    assert parse_trailers("") == ()


def test_old_style_tags_without_a_tagger_take_the_commit_date(tmp_path):
    repo = init_repo(tmp_path / "old")
    target = commit(repo, "feat: x", when="2024-01-01T00:00:00+01:00")
    write = ("hash-object", "-t", "tag", "-w", "--stdin", "--literally")
    inner = git(repo, *write, stdin=f"object {target}\ntype commit\ntag inner\n\nx\n".encode())
    outer = git(repo, *write, stdin=f"object {inner}\ntype tag\ntag outer\n\nx\n".encode())
    git(repo, "update-ref", "refs/tags/inner", inner)
    git(repo, "update-ref", "refs/tags/outer", outer)

    expected_time = datetime.fromisoformat("2024-01-01T00:00:00+01:00")
    assert [(t.name, t.sha, t.time) for t in read_tags(repo)] == [
        ("inner", target, expected_time),
        ("outer", target, expected_time),
    ]


def test_a_cherry_pick_has_the_patch_id_of_its_original_and_merges_have_none(tmp_path):
    repo = init_repo(tmp_path / "picks")
    (repo / "app.txt").write_text("one\n")
    git(repo, "add", "app.txt")
    git(repo, "commit", "--quiet", "-m", "base")
    git(repo, "checkout", "--quiet", "-b", "release")
    git(repo, "checkout", "--quiet", "main")
    (repo / "app.txt").write_text("one\ntwo\n")
    git(repo, "commit", "--quiet", "-am", "fix: two")
    fix = git(repo, "rev-parse", "HEAD")
    (repo / "other.txt").write_text("x\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "--quiet", "-m", "feat: other")
    git(repo, "checkout", "--quiet", "release")
    git(repo, "cherry-pick", "-x", fix, GIT_COMMITTER_DATE="2024-02-01T00:00:00+00:00")
    picked = git(repo, "rev-parse", "HEAD")
    git(repo, "merge", "--quiet", "--no-ff", "-m", "merge main", "main")
    merge = git(repo, "rev-parse", "HEAD")

    ids = read_patch_ids(repo)

    assert picked != fix
    assert ids[picked] == ids[fix]
    assert len(set(ids.values())) == 3  # base, the fix (twice), feat
    assert merge not in ids
    assert read_patch_ids(repo, shas=[picked, fix]) == {picked: ids[fix], fix: ids[fix]}
    assert read_patch_ids(repo, shas=[merge]) == {} and read_patch_ids(repo, shas=[]) == {}
    assert read_patch_ids(repo, ["main"]).keys() == {
        git(repo, "rev-parse", "main~2"),
        fix,
        git(repo, "rev-parse", "main"),
    }


def test_a_release_tag_is_annotated_with_its_changelog_and_never_moved(tmp_path):
    repo = init_repo(tmp_path / "rel")
    first = commit(repo, "feat: one")
    second = commit(repo, "fix: two", (first,), "2024-01-02T10:00:00+00:00")
    changelog = "## 1.1.0 (2026-12-04)\n\n### Features\n\n- one (abc1234)\n"

    tag = create_release_tag(repo, "v1.1.0", first, changelog, "devops-assets", "ops@x.invalid")

    assert (tag.name, tag.sha, tag.annotated) == ("v1.1.0", first, True)
    assert git(repo, "tag", "-l", "--format=%(contents)", "v1.1.0").rstrip() == changelog.rstrip()
    assert git(repo, "tag", "-l", "--format=%(taggeremail)", "v1.1.0") == "<ops@x.invalid>"
    again = create_release_tag(repo, "v1.1.0", first, changelog, "devops-assets", "o@x.invalid")
    assert again == tag  # the same release again: kept as it is
    with pytest.raises(GitError, match="already names commit .* a release tag is never moved"):
        create_release_tag(repo, "v1.1.0", second, changelog, "devops-assets", "o@x.invalid")
    for bad in ("-d", "v1..2", "a b", ""):
        with pytest.raises(GitError, match="invalid"):
            create_release_tag(repo, bad, first, changelog, "devops-assets", "o@x.invalid")
