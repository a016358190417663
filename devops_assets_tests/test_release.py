"""Conventional Commits, version bumps and changelogs: hand-worked cases, then real
messages from five projects (``../shared/data/commit-messages``)."""

from __future__ import annotations

import json

import pytest

from devops_assets.domain.release import (
    Change,
    Version,
    changelog,
    effective,
    next_version,
    parse,
    version_of,
)
from devops_assets_tests.git_fixtures import shared_data


def sha(n: int) -> str:
    return f"{n:040x}"


@pytest.mark.parametrize(
    ("message", "kind", "scope", "breaking"),
    [
        ("feat(api): add tokens", "feat", "api", False),
        ("Fix: typo in a log line", "fix", None, False),  # the type is case-insensitive
        ("feat(api)!: drop v1", "feat", "api", True),
        ("refactor: x\n\nBREAKING CHANGE: config moved", "refactor", None, True),
        ("chore: y\n\nBREAKING-CHANGE: z", "chore", None, True),
        ("docs: say it\n\nmentions a BREAKING CHANGE: in prose", "docs", None, False),
        ("feat: z\n\nbreaking change: lower case is not the token", "feat", None, False),
        ("feat(changelog, config)!: both", "feat", "changelog, config", True),
        ("feat:  two spaces", "feat", None, False),
        ("feat:no space", None, None, False),
        ("feat (C3): space before the scope", None, None, False),
        ("Merge pull request #28 from org/branch", None, None, False),
        ("fixup! feat: squash me", None, None, False),
    ],
)
def test_a_message_is_read_as_the_specification_writes_it(message, kind, scope, breaking):
    change = parse(sha(1), message)
    assert (change.kind, change.scope, change.breaking) == (kind, scope, breaking)


def test_gits_own_revert_wording_is_a_revert_of_the_named_commit():
    change = parse(sha(9), f'Revert "feat: a" (#12)\n\nThis reverts commit {sha(3)}.')
    assert (change.kind, change.text, change.reverts) == ("revert", "feat: a", (sha(3),))


def changes(*messages: str) -> list[Change]:
    return [parse(sha(i + 1), m) for i, m in enumerate(messages)]


@pytest.mark.parametrize(
    ("previous", "messages", "version", "bump"),
    [
        (Version(1, 2, 3), ["fix: a", "docs: b"], "1.2.4", "patch"),
        (Version(1, 2, 3), ["perf: a"], "1.2.4", "patch"),
        (Version(1, 2, 3), ["fix: a", "feat: b"], "1.3.0", "minor"),
        (Version(1, 2, 3), ["feat: b", "fix!: c"], "2.0.0", "major"),
        (Version(1, 2, 3), ["chore: a", "ci: b"], "1.2.3", "none"),
        (Version(0, 4, 1), ["feat!: c"], "0.5.0", "major"),  # 0.y.z: breaking bumps minor
        (None, ["feat: first"], "0.1.0", "minor"),
    ],
)
def test_the_bump_is_the_largest_change_shipped(previous, messages, version, bump):
    found, kind = next_version(previous, changes(*messages))
    assert (str(found), kind) == (version, bump)


def test_major_on_zero_is_a_choice():
    found, _ = next_version(Version(0, 4, 1), changes("feat!: c"), major_on_zero=True)
    assert str(found) == "1.0.0"


def test_a_revert_cancels_what_it_reverts_within_the_release():
    shipped = changes(
        "feat: new thing",  # sha 1
        "fix: small",  # sha 2
        f'Revert "feat: new thing"\n\nThis reverts commit {sha(1)}.',  # sha 3
    )
    assert [c.sha for c in effective(shipped)] == [sha(2)]
    assert next_version(Version(1, 0, 0), shipped) == (Version(1, 0, 1), "patch")


def test_reverting_a_revert_restores_the_original():
    shipped = changes(
        "feat: back and forth",
        f'Revert "feat: back and forth"\n\nThis reverts commit {sha(1)}.',
        f'Revert "Revert "feat: back and forth""\n\nThis reverts commit {sha(2)}.',
    )
    assert [c.sha for c in effective(shipped)] == [sha(1)]
    assert next_version(Version(1, 0, 0), shipped)[1] == "minor"


def test_a_revert_of_something_released_earlier_is_a_fix():
    released = "7" * 40
    shipped = [parse(sha(5), f'Revert "feat: x"\n\nThis reverts commit {released[:10]}.')]
    assert next_version(Version(2, 1, 0), shipped, released={released}) == (
        Version(2, 1, 1),
        "patch",
    )


def test_the_changelog_groups_by_type_breaking_first():
    shipped = changes(
        "feat(api): add tokens",
        "fix: crash on empty body",
        "feat(ui)!: new navigation",
        "docs: readme",
        "perf: cache the parser",
    )
    assert changelog(Version(2, 0, 0), "2026-12-04", shipped) == "\n".join(
        [
            "## 2.0.0 (2026-12-04)",
            "",
            "### Breaking changes",
            "",
            f"- **ui:** new navigation ({sha(3)[:7]})",
            "",
            "### Features",
            "",
            f"- **api:** add tokens ({sha(1)[:7]})",
            "",
            "### Bug fixes",
            "",
            f"- crash on empty body ({sha(2)[:7]})",
            "",
            "### Performance",
            "",
            f"- cache the parser ({sha(5)[:7]})",
        ]
    )
    assert changelog(Version(2, 0, 1), "2026-12-05", changes("chore: x")).endswith(
        "No user-facing changes."
    )


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.2.3", "1.2.3"),
        ("1.2.3", "1.2.3"),
        ("wrangler@3.114.0", "3.114.0"),
        ("create-cloudflare@2.0.0", "2.0.0"),
        ("release-v0.8.1", "0.8.1"),
        ("v2.2.0-rc.0", "2.2.0"),
        ("nightly", None),
    ],
)
def test_release_tags_name_their_version(tag, version):
    found = version_of(tag)
    assert (str(found) if found else None) == version


# What each selection of real messages must read as (see the data's README: the
# selection tags are regex heuristics; these are our decisions, checked by hand).
EXPECTED = {
    "breaking_footer_spec": {"breaking": True},
    "bang_subject": {"breaking": True},
    "bang_with_breaking_footer": {"breaking": True},
    "breaking_text_not_a_footer": {"breaking": False},
    "merge_commit": {"conventional": None},  # "Merge pull request" is not; "chore(pull)" is
    "fixup_squash": {"conventional": False},
    "non_conforming": {"conventional": False},
    "revert": {"reverts_or_revert": True},
}


def test_real_messages_read_as_decided():
    folder = shared_data("commit-messages")
    rows = [json.loads(line) for line in (folder / "tricky_messages.jsonl").open()]
    assert len(rows) == 206
    wrong = []
    for row in rows:
        want = EXPECTED.get(row["selected_as"])
        if want is None:
            continue
        change = parse(row["sha"], row["message"])
        if "breaking" in want and change.breaking != want["breaking"]:
            wrong.append((row["id"], "breaking", change.breaking))
        if want.get("conventional") is False and change.kind is not None:
            wrong.append((row["id"], "kind", change.kind))
        if "reverts_or_revert" in want and not (change.reverts or change.kind == "revert"):
            wrong.append((row["id"], "revert", change))
        if row["message"].startswith("Merge ") and change.kind is not None:
            wrong.append((row["id"], "merge", change.kind))
    assert wrong == []


def test_the_nonspec_breaking_footer_counts_only_through_its_bang():
    """git-cliff's ``BREAKING:`` footer is not the specification's token; the commit
    is breaking anyway because its subject says ``!``."""
    folder = shared_data("commit-messages")
    rows = {r["id"]: r for r in map(json.loads, (folder / "tricky_messages.jsonl").open())}
    message = rows["M015"]["message"]
    assert "\nBREAKING: " in message
    assert parse("x", message).breaking
    assert not parse("x", message.replace(")!:", "):", 1)).breaking


def test_a_subject_cannot_put_a_link_an_image_or_html_in_the_changelog():
    change = parse("a" * 40, "fix(ui): show ![px](http://127.0.0.1:9/x) and <img src=x> [here](y)")
    section = changelog(Version(1, 2, 4), "2026-12-04", [change])
    line = section.splitlines()[-1]
    assert line == (
        "- **ui:** show !\\[px\\](http://127.0.0.1:9/x) and \\<img src=x\\> \\[here\\](y) (aaaaaaa)"
    )
