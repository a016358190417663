"""Version bumps on three real histories, against the versions the projects released.

Each history in ``../shared/data/git-histories`` is rebuilt with git fast-import
and read back with our git reader. For every release tag whose name carries a
version (``version_of``), the commits reachable from the tag and not from the
previous release of the same tag family are read as Conventional Commits, and
``next_version(previous, changes)`` is compared with the version the tag names.

A tag family is the tag name without its version, the same rule in every
history: ``v`` for commitizen and git-cliff (every release tag is ``vX.Y.Z``,
pre-releases ``vX.Y.Z-rc.N``), ``<package>@`` for workers-sdk, where changesets
tags each package of the monorepo as ``name@X.Y.Z`` or ``@scope/name@X.Y.Z``. A
package that changed its name (``format-errors@`` then ``@cloudflare/format-errors@``)
is two families, as it is two packages to changesets.

Inside a family tags are walked in semver precedence. The previous release of a
tag is the latest final (non-pre-release) tag of the family below it; a
pre-release ``X.Y.Z-rc.N`` is compared on ``X.Y.Z``, which is how release tools
number pre-releases of the next version. Tags whose commit is not in the
exported history are not rebuilt, so they are never a previous release; the
releases after them are listed below with that reason.

No history, and no tag family with more than one release, agrees on every tag:
none follows our reading of Conventional Commits and semver to the letter. So
every disagreement is listed with its reason, and each reason is checked
against the data (a "breaking change shipped as a minor" really has our bump
major and their step minor, and so on):

- commitizen bumps itself with its own tool, whose default rules of the time
  also bump a patch for ``refactor`` and for any message line starting ``fix``,
  colon or not; its 0.x releases were cut by hand with bumpversion.
- git-cliff writes strict Conventional Commits but picks versions by hand:
  breaking changes ship in minors, features in patches, re-releases for
  packaging carry no fix at all.
- workers-sdk takes its bumps from changesets files, not commit messages, and
  with every tree empty (the export has no paths) a package's range holds every
  package's commits, so the messages cannot decide a package's version.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from devops_assets.domain.release import BUMPS, Change, Version, next_version, parse, version_of
from devops_assets.sources.git import read_commits, read_tags
from devops_assets_tests.git_fixtures import git, rebuild_history, shared_data

# The shape of ``version_of``'s pattern, with the family (all before the version) kept.
_TAG = re.compile(r"(?P<family>(?:.*[@/-])?v?)\d+\.\d+\.\d+(?P<suffix>[-+][0-9A-Za-z.+-]*)?")


def split_tag(tag: str) -> tuple[str, Version, str | None] | None:
    """(family, version, pre-release identifiers or None); None for a tag without a version."""
    version, found = version_of(tag), _TAG.fullmatch(tag.strip())
    if version is None or found is None:
        return None
    suffix = (found["suffix"] or "").partition("+")[0]
    return found["family"], version, suffix[1:] if suffix.startswith("-") else None


def precedence(version: Version, pre: str | None) -> tuple:
    """Semver precedence: a pre-release before its release, numeric identifiers as numbers."""
    if pre is None:
        return (version, 1)
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (version, 0, ids)


@dataclass(frozen=True)
class Release:
    tag: str
    family: str
    actual: Version
    pre: bool
    previous: str | None  # the previous final release of the family, None for the first
    previous_version: Version | None
    changes: tuple[Change, ...]  # what the release ships, oldest first
    messages: tuple[str, ...]  # the same commits' whole messages
    subject: str  # of the tagged commit
    ours: Version
    bump: str
    ours_on_zero: Version  # with major_on_zero=True

    @property
    def step(self) -> str:
        """How far the project moved: none, patch, minor, major, first or skip."""
        if self.previous_version is None:
            return "first"
        for bump in BUMPS:
            for on_zero in (False, True):
                if self.previous_version.bumped(bump, on_zero) == self.actual:
                    return bump
        return "skip"


def _members(bits: int) -> Iterator[int]:
    """Positions of the set bits, lowest first."""
    text = bin(bits)[:1:-1]
    at = text.find("1")
    while at != -1:
        yield at
        at = text.find("1", at + 1)


def walk(repo) -> list[Release]:
    """Every release tag of ``repo`` with a version, compared with our bump."""
    commits = read_commits(repo)
    oldest_first = [c.sha for c in reversed(commits)]  # git log order, reversed
    bit = {sha: 1 << i for i, sha in enumerate(oldest_first)}
    parents = {c.sha: c.parents for c in commits}
    ancestors: dict[str, int] = {}  # sha -> bit set of itself and all its ancestors
    for start in oldest_first:
        stack = [start]
        while stack:
            sha = stack[-1]
            todo = [p for p in parents[sha] if p not in ancestors]
            if todo:
                stack += todo
                continue
            stack.pop()
            if sha not in ancestors:
                bits = bit[sha]
                for parent in parents[sha]:
                    bits |= ancestors[parent]
                ancestors[sha] = bits
    by_sha = {c.sha: c for c in commits}
    message = {c.sha: c.subject + (f"\n\n{c.body}" if c.body else "") for c in commits}
    parsed: dict[str, Change] = {}

    def change(sha: str) -> Change:
        if sha not in parsed:
            parsed[sha] = parse(sha, message[sha])
        return parsed[sha]

    families: dict[str, list] = defaultdict(list)
    for tag in read_tags(repo):
        split = split_tag(tag.name)
        if split is not None:
            families[split[0]].append((tag, *split[1:]))
    releases = []
    for family, tags in families.items():
        previous = None
        for tag, version, pre in sorted(tags, key=lambda t: precedence(t[1], t[2])):
            bits = ancestors[tag.sha] & ~(ancestors[previous.sha] if previous else 0)
            changes = tuple(change(oldest_first[i]) for i in _members(bits))
            released: set[str] = set()
            if previous and any(c.kind == "revert" and c.reverts for c in changes):
                released = {oldest_first[i] for i in _members(ancestors[previous.sha])}
            before = version_of(previous.name) if previous else None
            ours, bump = next_version(before, changes, released=released)
            on_zero = (before or Version(0, 0, 0)).bumped(bump, major_on_zero=True)
            releases.append(
                Release(
                    tag.name,
                    family,
                    version,
                    pre is not None,
                    previous.name if previous else None,
                    before,
                    changes,
                    tuple(message[c.sha] for c in changes),
                    by_sha[tag.sha].subject,
                    ours,
                    bump,
                    on_zero,
                )
            )
            if pre is None:
                previous = tag
    return releases


def off_history(name: str) -> dict[str, list[Version]]:
    """Family -> versions of the release tags whose commit is not in the export."""
    folder = shared_data("git-histories", name)
    with (folder / "tags.csv").open(encoding="utf-8", newline="") as handle:
        rows = [r["tag"] for r in csv.DictReader(handle) if r["reachable_from_head"] == "false"]
    found = defaultdict(list)
    for family, version, _ in filter(None, map(split_tag, rows)):
        found[family].append(version)
    return found


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Callable[[str], tuple]:
    """name -> (rebuilt repo, releases, off-history versions per family); built once."""
    built: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in built:
            repo = tmp_path_factory.mktemp(name) / f"{name}.git"
            rebuild_history(name, repo)
            built[name] = repo, walk(repo), off_history(name)
        return built[name]

    return get


# Why our bump and the released version differ; each reason is checked against the data.
FIRST = "first release of its family: no earlier version to bump from"
PRERELEASE = "pre-release of a new major (changesets pre mode: -next, -rc, -alpha)"
OFF_HISTORY = "the release before it is tagged on a commit outside the exported history"
UNTAGGED = "not one bump from the previous tag: a version in between was never tagged"
DATE_BASED = "date-based minor (workerd's release date), not a semver bump"
BY_HAND = "cut by hand with bumpversion ('Bump version: …'), before cz bumped the project"
REFACTOR_PATCH = "commitizen's own bump rules: a refactor bumps the patch"
ANY_LINE_FIX = "commitizen's old bump pattern: any message line starting 'fix' is a fix"
NOTHING_AS_PATCH = "a patch with no fix, feature or breaking change: a re-release, by hand"
FEATURE_AS_PATCH = "a feature shipped in a patch release, by hand"
BREAKING_AS_MINOR = "a breaking change shipped in a minor release, by hand"
ZERO_TO_ONE = "1.0.0 declared by hand on 0.x (major_on_zero would give it, here only)"
CHANGESETS_UNDER = "changesets gave more than any commit message asks ([pkg] subjects, …)"
MONOREPO_OVER = "the messages ask for more than changesets gave (other packages' commits too)"


def _between(r: Release, off: list[Version]) -> bool:
    return any(r.previous_version < v < r.actual for v in off)


def _order(bump: str) -> int:
    return BUMPS.index(bump) if bump in BUMPS else -1


FITS: dict[str, Callable[[Release, list[Version]], bool]] = {
    FIRST: lambda r, off: r.previous is None,
    PRERELEASE: lambda r, off: r.pre and r.actual.major > r.previous_version.major,
    OFF_HISTORY: lambda r, off: r.step == "skip" and _between(r, off),
    UNTAGGED: lambda r, off: r.step == "skip" and not _between(r, off),
    DATE_BASED: lambda r, off: r.step == "skip" and r.actual.minor >= 20_000_000,
    BY_HAND: lambda r, off: r.subject.startswith("Bump version: "),
    REFACTOR_PATCH: lambda r, off: (
        (r.bump, r.step) == ("none", "patch") and any(c.kind == "refactor" for c in r.changes)
    ),
    ANY_LINE_FIX: lambda r, off: (
        (r.bump, r.step) == ("none", "patch")
        and any(re.search(r"^fix", m, re.MULTILINE) for m in r.messages)
    ),
    NOTHING_AS_PATCH: lambda r, off: (r.bump, r.step) == ("none", "patch"),
    FEATURE_AS_PATCH: lambda r, off: (r.bump, r.step) == ("minor", "patch"),
    BREAKING_AS_MINOR: lambda r, off: (r.bump, r.step) == ("major", "minor"),
    ZERO_TO_ONE: lambda r, off: (
        r.previous_version.major == 0 and r.actual == Version(1, 0, 0) == r.ours_on_zero
    ),
    CHANGESETS_UNDER: lambda r, off: 0 <= _order(r.bump) < _order(r.step),
    MONOREPO_OVER: lambda r, off: _order(r.bump) > _order(r.step) >= 0,
}


# Tag -> (why we differ, the version our bump gives). Every other tag agrees.
# commitizen: 0.x cut by hand; from 1.x on `cz bump`, whose default rules of the
# time bump a patch for ``refactor``, and read every line of a message with a
# pattern needing no colon: ``fix docs typo``, a body's ``fixes #202`` are fixes.
COMMITIZEN = {
    "v0.2.0": (FIRST, "0.1.0"),
    "v0.3.0": (BY_HAND, "0.2.0"),
    "v0.4.0": (BY_HAND, "0.3.0"),
    "v0.5.0": (BY_HAND, "0.4.0"),
    "v0.7.0": (BY_HAND, "0.6.0"),
    "v0.8.1": (BY_HAND, "0.8.0"),
    "v0.8.2": (BY_HAND, "0.8.1"),
    "v0.8.3": (BY_HAND, "0.8.2"),
    "v0.8.4": (BY_HAND, "0.8.3"),
    "v0.8.5": (BY_HAND, "0.8.4"),
    "v0.8.6": (BY_HAND, "0.8.5"),
    "v0.9.0": (BY_HAND, "0.8.6"),
    "v0.9.2": (BY_HAND, "0.9.1"),
    "v0.9.3": (BY_HAND, "0.10.0"),
    "v0.9.4": (BY_HAND, "0.10.0"),
    "v1.0.0": (BY_HAND, "0.10.0"),
    "v1.10.3": (REFACTOR_PATCH, "1.10.2"),
    "v1.12.0": (OFF_HISTORY, "1.11.0"),
    "v1.18.3": (REFACTOR_PATCH, "1.18.2"),
    "v1.22.3": (ANY_LINE_FIX, "1.22.2"),
    "v1.23.4": (REFACTOR_PATCH, "1.23.3"),
    "v2.17.5": (ANY_LINE_FIX, "2.17.4"),
    "v2.17.13": (ANY_LINE_FIX, "2.17.12"),
    "v2.21.1": (REFACTOR_PATCH, "2.21.0"),
    "v2.29.3": (REFACTOR_PATCH, "2.29.2"),
    "v2.29.4": (REFACTOR_PATCH, "2.29.3"),
    "v2.32.4": (REFACTOR_PATCH, "2.32.3"),
    "v3.5.4": (REFACTOR_PATCH, "3.5.3"),
    "v3.8.2": (REFACTOR_PATCH, "3.8.1"),
    "v3.12.0": (UNTAGGED, "3.11.0"),
    "v3.21.3": (REFACTOR_PATCH, "3.21.2"),
    "v3.25.1": (REFACTOR_PATCH, "3.25.0"),
    "v3.30.1": (REFACTOR_PATCH, "3.30.0"),
    "v4.7.2": (REFACTOR_PATCH, "4.7.1"),
    "v4.8.1": (OFF_HISTORY, "4.8.0"),
    "v4.8.2": (REFACTOR_PATCH, "4.8.1"),
    "v4.13.4": (OFF_HISTORY, "4.13.0"),
}

# git-cliff: strict Conventional Commits, versions chosen by hand.
GIT_CLIFF = {
    "v0.2.5": (FEATURE_AS_PATCH, "0.3.0"),
    "v1.0.0": (ZERO_TO_ONE, "0.11.0"),
    "v1.1.1-rc.1": (NOTHING_AS_PATCH, "1.1.0"),
    "v1.2.0": (BREAKING_AS_MINOR, "2.0.0"),
    "v1.3.0-rc.0": (BREAKING_AS_MINOR, "2.0.0"),
    "v1.3.0-rc.1": (BREAKING_AS_MINOR, "2.0.0"),
    "v1.3.0": (BREAKING_AS_MINOR, "2.0.0"),
    "v1.3.1-rc.0": (FEATURE_AS_PATCH, "1.4.0"),
    "v1.3.1": (FEATURE_AS_PATCH, "1.4.0"),
    "v1.4.0": (BREAKING_AS_MINOR, "2.0.0"),
    "v2.0.1": (NOTHING_AS_PATCH, "2.0.0"),
    "v2.0.2": (NOTHING_AS_PATCH, "2.0.1"),
    "v2.0.4": (OFF_HISTORY, "2.1.0"),
    "v2.2.2": (FEATURE_AS_PATCH, "2.3.0"),
    "v2.3.0": (BREAKING_AS_MINOR, "3.0.0"),
    "v2.6.0": (BREAKING_AS_MINOR, "3.0.0"),
    "v2.10.0-rc.0": (BREAKING_AS_MINOR, "3.0.0"),
    "v2.10.0": (BREAKING_AS_MINOR, "3.0.0"),
    "v2.10.1": (FEATURE_AS_PATCH, "2.11.0"),
    "v2.12.0": (BREAKING_AS_MINOR, "3.0.0"),
}

# workers-sdk, one line per family, reason and our bump: the released versions
# (the tag is family + version) where our version differs. Every other tag agrees.
WORKERS_SDK = """
@cloudflare/autoconfig@ first minor: 0.1.1
@cloudflare/autoconfig@ under none: 0.2.3 0.2.5 0.2.7
@cloudflare/autoconfig@ over minor: 0.1.2 0.1.4 0.1.5 0.1.6 0.2.2 0.2.6 0.2.8 0.2.9
@cloudflare/build-output-utils@ over minor: 0.1.2 0.1.3
@cloudflare/chrome-devtools-patches@ first minor: 0.1.1
@cloudflare/chrome-devtools-patches@ over minor: 0.1.2 0.1.3 0.1.5
@cloudflare/cli-shared-helpers@ under none: 0.1.3 0.1.9 0.1.10 0.1.19 0.1.21 0.1.23
@cloudflare/cli-shared-helpers@ over minor: 0.1.1 0.1.4 0.1.5 0.1.7 0.1.8 0.1.11 0.1.13 0.1.14
    0.1.15 0.1.16 0.1.18 0.1.22 0.1.24 0.1.25
@cloudflare/cli@ first minor: 1.1.2
@cloudflare/cli@ under patch: 1.4.0
@cloudflare/cli@ over minor: 1.1.3 1.1.4 1.2.1
@cloudflare/codemod@ first minor: 1.1.0
@cloudflare/config@ first minor: 0.0.0
@cloudflare/config@ untagged minor: 0.2.0
@cloudflare/config@ under patch: 0.5.0
@cloudflare/config@ over minor: 0.2.1
@cloudflare/containers-shared@ under none: 0.2.2 0.15.1
@cloudflare/containers-shared@ under patch: 0.3.0
@cloudflare/containers-shared@ over minor: 0.2.1 0.2.7 0.2.8 0.2.9 0.2.10 0.2.11 0.2.13 0.13.1
    0.14.1
@cloudflare/deploy-helpers@ under none: 0.2.1 0.2.2 0.2.4 0.3.0 0.3.2 0.4.0 0.6.4 0.6.6 0.6.7 0.6.9
@cloudflare/deploy-helpers@ over minor: 0.1.1 0.1.2 0.1.3 0.2.3 0.2.5 0.3.3 0.5.1 0.6.3 0.6.8
@cloudflare/devprod-status-bot@ first minor: 1.2.1
@cloudflare/devprod-status-bot@ over minor: 1.2.2 1.4.1 1.4.2
@cloudflare/edge-preview-authenticated-proxy@ first minor: 0.2.4
@cloudflare/edge-preview-authenticated-proxy@ over minor: 0.2.5 0.3.1 0.3.2 0.3.3
@cloudflare/eslint-config-shared@ first minor: 1.1.0
@cloudflare/eslint-config-shared@ over minor: 1.2.1
@cloudflare/format-errors@ first minor: 0.0.5
@cloudflare/format-errors@ over minor: 0.0.6 0.0.7 0.0.8 0.0.9
@cloudflare/kv-asset-handler@ first minor: 0.3.2
@cloudflare/kv-asset-handler@ over minor: 0.3.3 0.4.1 0.4.2
@cloudflare/lint-config-shared@ first minor: 1.2.1
@cloudflare/local-explorer-ui@ under patch: 0.8.0
@cloudflare/local-explorer-ui@ over minor: 0.8.1 0.8.2 0.13.1 0.13.2 0.13.3 0.14.1 0.14.2
@cloudflare/mock-npm-registry@ first minor: 0.0.0
@cloudflare/pages-shared@ first minor: 0.0.9
@cloudflare/pages-shared@ untagged patch: 0.7.0
@cloudflare/pages-shared@ untagged minor: 0.2.0 0.11.59
@cloudflare/pages-shared@ under none: 0.0.12 0.3.1 0.3.2 0.3.3 0.3.4 0.5.1 0.8.0 0.8.1 0.11.10
    0.11.17 0.11.19 0.11.23 0.11.24 0.11.25 0.11.26 0.11.32 0.11.35 0.11.36 0.11.38 0.13.14 0.13.22
    0.13.25 0.13.33 0.13.39 0.13.42 0.13.47 0.13.48 0.13.51 0.13.52 0.13.62 0.13.67 0.13.75 0.13.78
    0.13.81 0.13.83 0.13.84 0.13.91 0.13.120 0.13.133 0.13.134 0.13.138 0.13.141 0.13.145 0.13.147
    0.13.148 0.13.150 0.13.152 0.13.154 0.13.156 0.13.163 0.13.165 0.13.166 0.13.168
@cloudflare/pages-shared@ under patch: 0.5.0 0.10.0
@cloudflare/pages-shared@ over minor: 0.0.10 0.0.11 0.3.5 0.5.2 0.11.1 0.11.7 0.11.8 0.11.12
    0.11.13 0.11.14 0.11.20 0.11.21 0.11.22 0.11.28 0.11.29 0.11.41 0.11.42 0.11.43 0.11.49 0.11.50
    0.11.51 0.11.52 0.11.53 0.11.54 0.11.55 0.11.56 0.11.61 0.11.63 0.11.65 0.11.66 0.11.67 0.11.68
    0.11.69 0.11.70 0.11.71 0.11.72 0.12.1 0.13.2 0.13.3 0.13.4 0.13.6 0.13.7 0.13.9 0.13.11
    0.13.12 0.13.13 0.13.16 0.13.17 0.13.18 0.13.20 0.13.23 0.13.26 0.13.27 0.13.29 0.13.31 0.13.32
    0.13.41 0.13.43 0.13.45 0.13.46 0.13.50 0.13.56 0.13.57 0.13.58 0.13.59 0.13.60 0.13.61 0.13.63
    0.13.65 0.13.66 0.13.69 0.13.70 0.13.71 0.13.76 0.13.79 0.13.80 0.13.85 0.13.86 0.13.90 0.13.93
    0.13.94 0.13.95 0.13.96 0.13.97 0.13.98 0.13.99 0.13.101 0.13.103 0.13.104 0.13.105 0.13.106
    0.13.107 0.13.108 0.13.109 0.13.111 0.13.112 0.13.113 0.13.114 0.13.115 0.13.116 0.13.117
    0.13.119 0.13.122 0.13.123 0.13.124 0.13.125 0.13.126 0.13.127 0.13.129 0.13.130 0.13.131
    0.13.135 0.13.136 0.13.140 0.13.143 0.13.144 0.13.146 0.13.149 0.13.151 0.13.155 0.13.157
    0.13.158 0.13.159 0.13.162 0.13.167 0.13.169 0.13.171
@cloudflare/playground-preview-worker@ first minor: 0.1.6
@cloudflare/playground-preview-worker@ over minor: 0.1.7 0.3.1 0.3.2 0.3.3
@cloudflare/prerelease-registry@ first minor: 0.0.2
@cloudflare/prerelease-registry@ over minor: 0.0.3 0.0.4 0.1.1
@cloudflare/quick-edit-extension@ first minor: 0.0.1
@cloudflare/quick-edit@ first minor: 0.0.1
@cloudflare/quick-edit@ under none: 0.2.0 0.4.1 0.4.2
@cloudflare/quick-edit@ over minor: 0.0.2 0.1.1 0.2.1 0.2.2 0.2.3 0.3.1 0.3.3 0.4.3 0.4.4 0.4.5
    0.4.6 0.4.7
@cloudflare/remote-bindings@ first minor: 0.0.1
@cloudflare/remote-bindings@ under none: 0.0.5 0.0.6 0.0.8 0.0.9 0.0.11
@cloudflare/remote-bindings@ over minor: 0.0.4 0.0.10 0.0.12 0.0.14
@cloudflare/runtime-types@ first minor: 0.0.1
@cloudflare/runtime-types@ under none: 0.0.8 0.0.10 0.0.11 0.0.13
@cloudflare/runtime-types@ over minor: 0.0.2 0.0.3 0.0.4 0.0.7 0.0.12 0.0.14 0.0.16
@cloudflare/shared-ast-primitives@ first minor: 1.1.0
@cloudflare/turbo-r2-archive@ first minor: 0.0.4
@cloudflare/turbo-r2-archive@ over minor: 0.0.5
@cloudflare/unenv-preset@ first minor: 0.0.1
@cloudflare/unenv-preset@ untagged minor: 1.0.1 2.2.0
@cloudflare/unenv-preset@ under none: 2.7.0 2.7.1 2.7.7 2.7.10
@cloudflare/unenv-preset@ under minor: 2.0.0
@cloudflare/unenv-preset@ over minor: 1.1.1 1.1.2 2.3.1 2.3.2 2.3.3 2.4.1 2.6.1 2.6.2 2.6.3 2.7.3
    2.7.4 2.7.5 2.7.8 2.7.11 2.7.12 2.12.1 2.16.1
@cloudflare/vite-plugin@ first minor: 0.0.1
@cloudflare/vite-plugin@ untagged patch: 1.13.18
@cloudflare/vite-plugin@ under none: 0.0.2 0.0.8 0.1.1 0.1.11 0.1.19 1.0.0 1.0.3 1.0.4 1.0.12 1.2.2
    1.3.1 1.5.0 1.7.1 1.7.2 1.7.5 1.8.0 1.9.0 1.9.6 1.11.4 1.12.1 1.12.2 1.13.5 1.13.6 1.13.7
    1.13.10 1.13.11 1.13.13 1.13.15 1.13.16 1.14.0 1.14.1 1.16.1 1.25.4 1.30.3 1.32.1 1.32.2 1.36.2
    1.36.3 1.36.4 1.37.3 1.39.1 1.40.2 1.42.0 1.42.1 1.42.3 1.43.0 1.43.2 1.44.0 1.49.1 1.50.0
    1.51.1 1.51.2 1.52.0
@cloudflare/vite-plugin@ under patch: 1.1.0 1.2.0 1.17.0 1.22.0 1.27.0 1.31.0 1.38.0 1.47.0 1.48.0
    1.51.0 1.53.0
@cloudflare/vite-plugin@ over minor: 0.0.3 0.0.4 0.0.5 0.0.7 0.1.6 0.1.8 0.1.9 0.1.10 0.1.13 0.1.14
    0.1.15 0.1.17 0.1.18 1.0.1 1.0.5 1.0.6 1.0.8 1.0.10 1.0.11 1.7.4 1.10.1 1.10.2 1.11.1 1.11.3
    1.11.5 1.11.7 1.12.4 1.13.1 1.13.8 1.13.12 1.13.14 1.14.2 1.17.1 1.20.1 1.20.2 1.21.2 1.22.1
    1.23.1 1.25.1 1.25.2 1.25.5 1.26.1 1.29.1 1.30.2 1.31.1 1.31.2 1.32.3 1.33.1 1.37.1 1.40.1
    1.42.2 1.42.4 1.43.3 1.45.1 1.51.3 1.52.1 1.53.1
@cloudflare/vitest-plugin@ first minor: 1.0.0
@cloudflare/vitest-pool-workers@ first minor: 0.0.7
@cloudflare/vitest-pool-workers@ untagged none: 0.2.2 0.4.11
@cloudflare/vitest-pool-workers@ untagged patch: 0.2.8 0.10.3
@cloudflare/vitest-pool-workers@ untagged minor: 0.4.16 0.5.4
@cloudflare/vitest-pool-workers@ under none: 0.1.0 0.1.1 0.1.7 0.1.9 0.1.10 0.1.11 0.1.12 0.1.13
    0.1.14 0.1.15 0.1.16 0.1.17 0.2.5 0.2.9 0.2.10 0.4.3 0.5.1 0.5.2 0.5.10 0.5.13 0.5.16 0.5.18
    0.5.27 0.5.28 0.6.3 0.6.6 0.6.11 0.6.12 0.6.16 0.8.0 0.8.8 0.8.11 0.8.14 0.8.22 0.8.26 0.8.27
    0.8.30 0.8.34 0.8.36 0.8.40 0.8.41 0.8.44 0.8.45 0.8.46 0.8.47 0.8.48 0.8.49 0.8.55 0.8.63
    0.8.68 0.8.69 0.9.5 0.9.6 0.9.7 0.9.10 0.9.11 0.9.13 0.10.0 0.10.1 0.10.5 0.10.6 0.10.13
    0.12.16 0.14.0 0.14.5 0.14.6 0.16.2 0.16.3 0.16.4 0.16.8 0.16.11 0.16.15 0.16.17 0.16.18
    0.16.20 0.18.0 0.18.2 0.18.4 0.20.0 0.20.1 0.20.3 0.21.0 0.21.2
@cloudflare/vitest-pool-workers@ under patch: 0.3.0 0.4.0 0.5.0 0.7.0 0.15.0 0.19.0 0.22.0
@cloudflare/vitest-pool-workers@ over minor: 0.1.3 0.1.4 0.1.6 0.1.8 0.1.19 0.4.1 0.4.2 0.4.4 0.4.5
    0.4.14 0.4.17 0.4.18 0.4.20 0.4.23 0.4.24 0.4.25 0.4.26 0.4.28 0.4.29 0.4.30 0.4.31 0.5.8
    0.5.11 0.5.19 0.5.20 0.5.22 0.5.23 0.5.26 0.5.30 0.5.31 0.5.33 0.5.34 0.5.36 0.5.37 0.5.38
    0.5.39 0.5.40 0.5.41 0.6.2 0.6.7 0.6.8 0.6.9 0.6.13 0.6.15 0.7.3 0.7.5 0.7.6 0.7.7 0.8.2 0.8.3
    0.8.4 0.8.6 0.8.7 0.8.12 0.8.15 0.8.16 0.8.18 0.8.20 0.8.21 0.8.33 0.8.35 0.8.38 0.8.39 0.8.43
    0.8.56 0.8.57 0.8.58 0.8.59 0.8.60 0.8.62 0.8.64 0.8.66 0.8.67 0.8.71 0.9.1 0.9.8 0.9.12 0.9.14
    0.10.7 0.10.8 0.10.12 0.10.15 0.11.1 0.12.1 0.12.2 0.12.4 0.12.6 0.12.8 0.12.9 0.12.10 0.12.11
    0.12.12 0.12.13 0.12.14 0.12.17 0.12.19 0.12.20 0.13.1 0.13.2 0.13.3 0.13.5 0.14.2 0.14.3
    0.14.4 0.14.7 0.14.8 0.14.9 0.15.1 0.15.2 0.16.5 0.16.6 0.16.10 0.16.13 0.16.14 0.16.16 0.16.19
    0.18.3 0.18.5 0.18.6 0.18.7 0.19.1 0.21.1 0.21.3
@cloudflare/workers-auth@ first minor: 0.1.1
@cloudflare/workers-auth@ under none: 0.3.1 0.3.2 0.5.5 0.5.6 0.6.1 0.6.3
@cloudflare/workers-auth@ under patch: 0.6.0
@cloudflare/workers-auth@ over minor: 0.4.2 0.5.1 0.5.4 0.6.2 0.6.4 0.6.5
@cloudflare/workers-editor-shared@ over minor: 0.1.1 0.1.2
@cloudflare/workers-playground@ first minor: 0.2.5
@cloudflare/workers-playground@ over minor: 0.2.6 0.4.1 0.4.2 0.4.3 0.4.4
@cloudflare/workers-sdk-auto-triage@ first minor: 0.0.0
@cloudflare/workers-shared@ under none: 0.5.2 0.5.3 0.12.1 0.12.3 0.14.2 0.14.3 0.16.0 0.17.4
    0.18.8
@cloudflare/workers-shared@ under patch: 0.9.0 0.11.0 0.14.0
@cloudflare/workers-shared@ over minor: 0.5.4 0.7.1 0.9.1 0.11.1 0.11.2 0.12.4 0.12.5 0.13.2 0.14.1
    0.14.4 0.14.5 0.17.1 0.17.2 0.17.3 0.17.6 0.18.1 0.18.5 0.18.6 0.18.7 0.18.9 0.18.10 0.18.11
    0.19.1 0.19.2 0.19.3 0.19.4 0.19.5 0.19.7 0.19.8 0.19.9
@cloudflare/workers-utils@ untagged minor: 0.19.0
@cloudflare/workers-utils@ under none: 0.21.0 0.23.2 0.24.0 0.31.0 0.31.2 0.33.0
@cloudflare/workers-utils@ under patch: 0.2.0 0.3.0 0.12.0 0.15.0 0.20.0 0.29.0
@cloudflare/workers-utils@ over minor: 0.1.1 0.7.1 0.8.1 0.9.1 0.11.1 0.11.2 0.16.1 0.21.1 0.23.1
    0.33.1
@cloudflare/workflows-shared@ first minor: 0.1.1
@cloudflare/workflows-shared@ over minor: 0.1.2 0.2.1 0.2.2 0.2.3 0.3.1 0.3.2 0.3.3 0.3.4 0.3.5
    0.3.6 0.3.8 0.3.9 0.7.2 0.9.1 0.11.1 0.11.2 0.12.1 0.12.2
@cloudflare/wrangler-bundler@ over minor: 0.1.2 0.1.3
@cloudflare/wrangler-devtools@ first minor: 0.0.0
@cloudflare/wrangler-devtools@ over minor: 0.0.1
@vite-plugin-cloudflare/playground@ first minor: 1.0.0
cloudflare-workers-bindings-extension@ first minor: 0.0.6
cloudflare-workers-bindings-extension@ over minor: 0.0.7 0.0.8 0.0.9 0.0.10
create-cloudflare@ first minor: 2.0.3
create-cloudflare@ untagged none: 2.0.5 2.20.1
create-cloudflare@ untagged patch: 2.0.13
create-cloudflare@ untagged minor: 2.27.2
create-cloudflare@ under none: 2.0.6 2.0.14 2.1.0 2.1.1 2.2.1 2.3.0 2.3.1 2.5.0 2.6.0 2.6.1 2.8.3
    2.8.4 2.9.2 2.11.0 2.13.2 2.14.1 2.17.0 2.17.1 2.21.1 2.21.6 2.32.1 2.38.0 2.40.3 2.43.6 2.45.3
    2.46.2 2.49.0 2.49.4 2.50.2 2.51.2 2.51.3 2.52.2 2.52.3 2.54.0 2.54.3 2.54.4 2.57.1 2.66.1
    2.69.0 2.70.2 2.70.4 2.70.5 2.70.9 2.70.18 2.71.1
create-cloudflare@ under patch: 2.2.0 2.4.0 2.8.0 2.9.0 2.10.0 2.13.0 2.14.0 2.18.0 2.21.0 2.22.0
    2.37.0 2.39.0 2.41.0 2.43.0 2.44.0 2.45.0 2.46.0 2.47.0 2.50.0 2.56.0 2.58.0 2.70.0
create-cloudflare@ over minor: 2.0.9 2.2.2 2.6.2 2.7.1 2.9.1 2.9.3 2.12.1 2.15.1 2.16.1 2.18.1
    2.21.5 2.21.7 2.22.2 2.22.3 2.25.1 2.25.2 2.29.3 2.33.2 2.33.3 2.35.1 2.35.2 2.37.1 2.37.3
    2.37.4 2.37.6 2.38.1 2.38.2 2.40.1 2.40.2 2.41.2 2.42.1 2.43.1 2.43.4 2.43.7 2.43.8 2.44.1
    2.45.1 2.45.2 2.47.3 2.49.2 2.49.3 2.50.1 2.50.5 2.50.6 2.50.7 2.50.8 2.50.9 2.51.1 2.51.5
    2.51.6 2.51.7 2.54.5 2.62.1 2.62.2 2.62.3 2.62.4 2.62.5 2.62.6 2.64.1 2.64.2 2.64.3 2.64.4
    2.64.5 2.64.6 2.64.7 2.64.8 2.64.9 2.66.3 2.66.4 2.66.5 2.67.1 2.67.2 2.67.4 2.68.1 2.68.3
    2.68.4 2.70.1 2.70.3 2.70.6 2.70.7 2.70.10 2.70.11 2.70.12 2.70.13 2.70.16 2.72.2
d1-example@ first minor: 0.0.0
d1-worker-app@ first minor: 1.0.0
devprod-status-bot@ first minor: 1.0.0
devprod-status-bot@ under none: 1.1.2
devprod-status-bot@ over minor: 1.1.1 1.1.3 1.1.4 1.1.5 1.1.6 1.1.7 1.2.1
edge-preview-authenticated-proxy@ first minor: 0.1.3
edge-preview-authenticated-proxy@ over minor: 0.1.4 0.2.1 0.2.2 0.2.3 0.2.4
example-wasm-app@ first minor: 1.0.0
fixtures-shared@ first minor: 0.0.0
format-errors@ first minor: 0.0.1
format-errors@ over minor: 0.0.2 0.0.3 0.0.4 0.0.5
isomorphic-random-example@ first minor: 0.0.1
jest-environment-wrangler@ first minor: 0.0.24
jest-environment-wrangler@ untagged minor: 0.0.26 0.0.28 0.0.31
jest-environment-wrangler@ over minor: 0.0.29
legacy-site-app@ first minor: 0.0.0
local-mode-tests@ first minor: 1.0.1
miniflare@ first minor: 3.0.0-next.1 3.0.0-next.2 3.0.0-next.3 3.0.0-next.4 3.0.0-next.6
    3.0.0-next.7 3.0.0-next.8 3.0.0-next.9 3.0.0-next.10 3.0.0-next.11 3.0.0-next.12 3.0.0-next.13
    3.0.0-rc.1 3.0.0
miniflare@ pre none: 5.20260730.0-alpha
miniflare@ pre patch: 5.20260801.0-alpha 5.20260801.1-alpha 5.20260804.0-alpha
miniflare@ pre minor: 5.20260804.1-alpha 5.20260811.0-alpha 5.20260811.1-alpha 5.20260815.0-alpha
    5.20260820.0-alpha
miniflare@ date none: 3.20230628.0 3.20230710.0 3.20230717.0 3.20230724.0 3.20230801.0 3.20230807.0
    3.20230814.0 3.20230821.0 3.20230904.0 3.20230918.0 3.20230922.0 3.20231002.0 3.20231010.0
    3.20231016.0 3.20231023.0 3.20240129.0 3.20240304.0 3.20240329.0 3.20240403.0 3.20240512.0
    4.20250310.0 4.20250404.0 4.20250408.0 4.20250525.0 4.20250617.0 4.20250813.0 4.20250829.0
    4.20251004.0 4.20251105.0 4.20251109.0 4.20251202.0 4.20260329.0 4.20260520.0 4.20260529.0
    4.20260611.0 4.20260625.0 4.20260701.0 4.20260706.0
miniflare@ date patch: 3.20231025.0 3.20231218.0 3.20240223.0 3.20240419.0 3.20240524.0
    3.20240620.0 3.20240701.0 3.20240712.0 3.20240718.0 3.20240925.0 3.20241004.0 3.20250129.0
    3.20250214.0 4.20250317.0 4.20250428.0 4.20250507.0 4.20250604.0 4.20250705.0 4.20250709.0
    4.20250712.0 4.20250816.0 4.20250902.0 4.20250913.0 4.20250917.0 4.20250923.0 4.20251001.0
    4.20251118.0 4.20251125.0 4.20260116.0 4.20260124.0 4.20260401.0 4.20260424.0 4.20260507.0
    4.20260518.0 4.20260601.0
miniflare@ date minor: 3.20231030.0 3.20240208.0 3.20240314.0 3.20240320.0 3.20240605.0
    3.20240610.0 3.20240725.0 3.20240806.0 3.20240821.0 3.20240909.0 3.20240909.3 3.20241011.0
    3.20241018.0 3.20241022.0 3.20241106.0 3.20241205.0 3.20241218.0 3.20241230.0 3.20250124.0
    3.20250204.0 3.20250224.0 3.20250310.0 4.20250319.0 4.20250416.0 4.20250422.0 4.20250424.0
    4.20250523.0 4.20250612.0 4.20250726.0 4.20250730.0 4.20250803.0 4.20250823.0 4.20250906.0
    4.20250927.0 4.20251008.0 4.20251011.0 4.20251113.0 4.20251128.0 4.20251210.0 4.20251213.0
    4.20251217.0 4.20260103.0 4.20260107.0 4.20260111.0 4.20260114.0 4.20260120.0 4.20260128.0
    4.20260131.0 4.20260205.0 4.20260210.0 4.20260212.0 4.20260217.0 4.20260219.0 4.20260301.1
    4.20260305.0 4.20260310.0 4.20260312.0 4.20260317.0 4.20260405.0 4.20260409.0 4.20260415.0
    4.20260420.0 4.20260426.0 4.20260430.0 4.20260504.0 4.20260511.0 4.20260515.0 4.20260526.0
    4.20260603.0 4.20260609.0 4.20260616.0 4.20260623.0 4.20260630.0 4.20260708.0 4.20260710.0
    4.20260714.0 4.20260721.0 4.20260730.0
miniflare@ under none: 3.0.1 3.0.2 3.20230814.1 3.20231002.1 3.20240304.2 3.20240329.1 3.20240404.0
    4.20250424.1 4.20250508.2 4.20250617.1 4.20250617.4 4.20250617.5 4.20250823.1 4.20250924.0
    4.20251011.1 4.20260302.0 4.20260507.1 4.20260508.0 4.20260617.0 4.20260617.1 4.20260708.1
miniflare@ under patch: 3.20240405.0 4.20250321.0 4.20250417.0 4.20250508.0 4.20260521.0
    4.20260702.0 4.20260722.0
miniflare@ over minor: 3.20231030.1 3.20231218.2 3.20231218.3 3.20240129.2 3.20240129.3
    3.20240320.1 3.20240405.1 3.20240405.2 3.20240524.2 3.20240718.1 3.20240806.1 3.20240821.1
    3.20240821.2 3.20240909.5 3.20240925.1 3.20241106.1 3.20241106.2 3.20241230.1 3.20250124.1
    3.20250204.1 3.20250214.1 3.20250214.2 4.20250317.1 4.20250321.1 4.20250525.1 4.20250604.1
    4.20250617.3 4.20250712.1 4.20250712.2 4.20250803.1 4.20250813.1 4.20250816.1 4.20250906.1
    4.20250906.2 4.20251109.1 4.20260312.1 4.20260317.1 4.20260317.3
no-bundle-import@ first minor: 0.0.0
node-app-pages@ first minor: 0.0.0
pages-d1-shim@ first minor: 0.0.0
pages-functions-app@ first minor: 0.0.0
pages-functions-cors@ first minor: 0.0.0
pages-functions-wasm-app@ first minor: 0.0.1
pages-functions-with-routes-app@ first minor: 0.0.1
pages-plugin-example@ first minor: 0.0.0
pages-plugin-mounted-on-root-app@ first minor: 0.0.0
pages-plugin-static-forms@ first minor: 0.0.0
pages-workerjs-and-functions-app@ first minor: 0.0.1
pages-workerjs-app@ first minor: 0.0.0
pages-workerjs-wasm-app@ first minor: 0.0.1
pages-workerjs-with-routes-app@ first minor: 0.0.1
pages-ws-app@ first minor: 0.0.0
playground-preview-worker@ first minor: 0.0.2
playground-preview-worker@ over minor: 0.0.3 0.0.4 0.1.1 0.1.2 0.1.3 0.1.4 0.1.5 0.1.6
prospector@ first minor: 0.0.0
quick-edit-extension@ first minor: 0.0.1
routing-app@ first minor: 0.0.0
rules-app@ first minor: 1.0.0
sites-app@ first minor: 0.0.0
solarflare-theme@ first minor: 0.0.1
solarflare-theme@ under none: 0.0.4
solarflare-theme@ over minor: 0.0.2 0.0.3 0.0.5 0.0.6
template-worker-aws@ first minor: 0.0.0
template-worker-d1@ first minor: 1.0.0
template-worker-durable-objects@ first minor: 0.0.0
template-worker-mysql@ first minor: 0.0.0
template-worker-postgres@ first minor: 0.0.0
template-worker-r2@ first minor: 0.0.0
template-worker-router@ first minor: 0.0.0
template-worker-sites-react@ first minor: 0.0.0
template-worker-sites@ first minor: 0.0.0
template-worker-speedtest@ first minor: 0.0.0
template-worker-typescript@ first minor: 0.0.0
template-worker-websocket@ first minor: 0.0.0
template-worker-worktop@ first minor: 0.0.0
template-worker@ first minor: 0.0.0
turbo-r2-archive@ first minor: 0.0.1
turbo-r2-archive@ over minor: 0.0.2 0.0.3 0.0.4
v first minor: 2.0.8
wasm-app@ first minor: 1.0.0
worker-app@ first minor: 1.0.1
worker-example-request-scheduler@ first minor: 0.0.0
worker-example-wordle@ first minor: 0.0.0
worker-openapi@ first minor: 1.0.0
workers-analytics-engine-template@ first minor: 0.0.0
workers-chat-demo@ first minor: 1.0.0
workers-playground@ first minor: 0.0.2
workers-playground@ under none: 0.2.2
workers-playground@ over minor: 0.0.3 0.0.4 0.0.6 0.0.7 0.1.1 0.2.1 0.2.3 0.2.4 0.2.5
workers-websocket-durable-objects@ first minor: 0.0.0
workers.new@ first minor: 0.0.0
workers.new@ under none: 0.0.3 0.0.4
workers.new@ over minor: 0.0.1 0.0.2 0.0.5
wrangler-dev-api-app@ first minor: 1.0.0
wrangler@ first minor: 0.0.5
wrangler@ untagged none: 2.0.0 3.51.2
wrangler@ untagged patch: 2.0.5 2.0.11 2.0.14 2.0.21 3.55.0 4.45.3
wrangler@ untagged minor: 0.0.21 3.78.4
wrangler@ under none: 0.0.6 0.0.10 0.0.34 2.0.18 2.0.22 2.1.2 2.1.8 2.1.15 2.2.2 2.3.2 2.4.1 2.4.2
    2.4.3 2.4.4 2.6.1 2.11.0 2.11.1 2.12.0 2.12.1 2.12.2 2.13.0 2.15.0 2.15.1 2.16.0 2.18.0 3.4.0
    3.5.0 3.5.1 3.9.0 3.9.1 3.10.0 3.13.0 3.13.1 3.13.2 3.14.0 3.21.0 3.22.0 3.23.0 3.26.0 3.28.4
    3.32.0 3.34.0 3.34.1 3.39.0 3.41.0 3.42.0 3.43.0 3.44.0 3.45.0 3.46.0 3.47.0 3.47.1 3.48.0
    3.56.0 3.60.1 3.64.0 3.67.1 3.78.1 3.78.2 3.78.10 3.79.0 3.80.2 3.80.4 3.86.1 3.87.0 3.103.1
    3.105.0 3.107.2 3.107.3 3.109.1 4.0.0 4.6.0 4.7.2 4.9.1 4.13.2 4.14.3 4.14.4 4.15.2 4.18.0
    4.19.1 4.20.2 4.20.3 4.21.0 4.21.1 4.21.2 4.22.0 4.23.0 4.25.0 4.29.1 4.33.1 4.33.2 4.40.0
    4.40.1 4.40.2 4.42.0 4.42.1 4.43.0 4.45.0 4.45.1 4.46.0 4.47.0 4.52.1 4.68.0 4.79.0 4.82.1
    4.82.2 4.89.1 4.90.0 4.90.1 4.93.1 4.96.0 4.100.0 4.102.0 4.103.0 4.105.0 4.107.0 4.108.0
    4.110.0 4.117.0 4.118.0 4.120.0 4.120.1 4.122.0
wrangler@ under patch: 2.4.0 2.6.0 2.9.0 2.14.0 2.19.0 2.20.0 3.0.0 3.2.0 3.3.0 3.6.0 3.8.0 3.11.0
    3.12.0 3.18.0 3.19.0 3.20.0 3.25.0 3.27.0 3.28.0 3.30.0 3.31.0 3.33.0 3.37.0 3.49.0 3.52.0
    3.53.0 3.57.0 3.58.0 3.61.0 3.62.0 3.63.0 3.65.0 3.71.0 3.73.0 3.78.0 3.80.0 3.82.0 3.85.0
    3.88.0 3.91.0 3.94.0 3.102.0 3.104.0 3.111.0 4.1.0 4.7.0 4.9.0 4.14.0 4.15.0 4.16.0 4.24.0
    4.31.0 4.34.0 4.38.0 4.39.0 4.41.0 4.50.0 4.51.0 4.53.0 4.61.0 4.69.0 4.72.0 4.77.0 4.80.0
    4.85.0 4.89.0 4.93.0 4.94.0 4.97.0 4.114.0 4.115.0 4.119.0 4.124.0
wrangler@ over minor: 0.0.11 0.0.13 0.0.14 0.0.15 0.0.16 0.0.17 0.0.18 0.0.23 0.0.24 0.0.25 0.0.26
    0.0.27 0.0.28 0.0.29 0.0.32 2.0.3 2.0.6 2.0.7 2.0.8 2.0.12 2.0.15 2.0.16 2.0.17 2.0.19 2.0.23
    2.0.24 2.0.25 2.0.26 2.0.27 2.0.28 2.1.1 2.1.4 2.1.5 2.1.7 2.1.10 2.1.13 2.1.14 2.6.2 2.8.1
    2.12.3 3.22.5 3.28.2 3.28.3 3.60.2 3.60.3 3.72.1 3.72.2 3.72.3 3.78.8 3.78.11 3.80.5 3.105.1
    4.5.1 4.13.1 4.20.1 4.20.5 4.25.1 4.26.1 4.40.3 4.42.2 4.59.2 4.61.1 4.68.1 4.81.1 4.84.1
wranglerjs-compat-webpack-plugin@ first minor: 0.0.2
wranglerjs-compat-webpack-plugin@ untagged minor: 0.0.7
wranglerjs-compat-webpack-plugin@ over minor: 0.0.8
"""
CODES = {
    "first": FIRST,
    "pre": PRERELEASE,
    "date": DATE_BASED,
    "off": OFF_HISTORY,
    "untagged": UNTAGGED,
    "under": CHANGESETS_UNDER,
    "over": MONOREPO_OVER,
}


def table(text: str) -> dict[str, tuple[str, str]]:
    """``family code bump: versions…`` lines (indented lines continue) -> tag -> (reason, bump)."""
    found = {}
    for line in text.strip().splitlines():
        if not line.startswith(" "):
            head, _, line = line.partition(": ")
            family, code, bump = head.split()
        for version in line.split():
            found[family + version] = CODES[code], bump
    return found


def check(releases: list[Release], off, expected: dict, show: Callable[[Release], str]) -> None:
    """Our result differs exactly on the ``expected`` tags, each for a reason that fits."""
    by_tag = {r.tag: r for r in releases}
    differ = {r.tag: show(r) for r in releases if r.ours != r.actual}
    assert differ == {tag: value for tag, (_, value) in expected.items()}
    unfit = {
        tag: reason
        for tag, (reason, _) in expected.items()
        if not FITS[reason](by_tag[tag], off[by_tag[tag].family])
    }
    assert unfit == {}


def test_commitizen_agrees_on_252_of_289_releases(history):
    _, releases, off = history("commitizen")
    assert len(releases) == 289
    check(releases, off, COMMITIZEN, lambda r: str(r.ours))


def test_git_cliff_agrees_on_78_of_98_releases(history):
    _, releases, off = history("git-cliff")
    assert len(releases) == 98
    check(releases, off, GIT_CLIFF, lambda r: str(r.ours))


def test_workers_sdk_agrees_on_792_of_2409_package_releases(history):
    _, releases, off = history("workers-sdk")
    assert (len(releases), len({r.family for r in releases})) == (2409, 109)
    check(releases, off, table(WORKERS_SDK), lambda r: r.bump)


def test_major_on_zero_is_not_git_cliffs_policy_nor_anyone_elses(history):
    """On 0.x git-cliff shipped breaking changes as minors (0.5.0 … 0.8.0), then declared
    1.0.0 by hand: ``major_on_zero`` would get 1.0.0 right and the four others wrong.
    The other histories never ship a breaking change on 0.x."""
    changed = {}
    for name in ("commitizen", "git-cliff", "workers-sdk"):
        _, releases, _ = history(name)
        for r in releases:
            if r.ours_on_zero != r.ours:
                changed[r.tag] = r.ours_on_zero == r.actual
    assert changed == {
        "v0.5.0": False,
        "v0.6.0": False,
        "v0.7.0": False,
        "v0.8.0": False,
        "v1.0.0": True,
    }


@pytest.mark.parametrize(
    ("name", "family", "count"),
    [("commitizen", "v", 289), ("git-cliff", "v", 98), ("workers-sdk", "create-cloudflare@", 253)],
)
def test_each_release_ships_what_git_rev_list_says(history, name, family, count):
    """The ranges come from ancestor sets; git itself must agree (commitizen has merges)."""
    repo, releases, _ = history(name)
    checked = [r for r in releases if r.family == family]
    assert len(checked) == count
    for r in checked:
        args = [f"{r.tag}^{{commit}}", *([f"^{r.previous}^{{commit}}"] if r.previous else [])]
        assert set(git(repo, "rev-list", *args).split()) == {c.sha for c in r.changes}, r.tag


def test_tags_without_a_semver_version_are_left_out(history):
    """commitizen's PEP 440 ``v1.0.0b1`` (no hyphen) is not a semver pre-release."""
    left_out = {}
    for name in ("commitizen", "git-cliff", "workers-sdk"):
        repo, _, _ = history(name)
        left_out[name] = sorted(t.name for t in read_tags(repo) if split_tag(t.name) is None)
    assert left_out == {
        "commitizen": ["v1.0.0b1", "v1.0.0b2"],
        "git-cliff": [],
        "workers-sdk": [
            "external-durable-objects-app@undefined",
            "remix-pages-app@undefined",
            "service-bindings-app@undefined",
        ],
    }
