"""Releases from Conventional Commits: the version bump and the changelog.

A commit message is read as the Conventional Commits 1.0.0 specification
writes it: ``type(scope)!: description`` on the first line (type in any case,
scope right after it, one or more spaces after the colon), a breaking change
marked by ``!`` or by a line starting ``BREAKING CHANGE:`` or
``BREAKING-CHANGE:`` (upper case, as the specification requires) after the
first line. Text that merely mentions breaking changes in
prose, a table or a pasted release note does not count. A message that does
not follow the form (``Merge pull request …``, ``fixup! …``, ``feat:no
space``) is not a release note at all.

Between two releases a revert cancels the commit it reverts: neither counts.
A revert of a commit released earlier is a fix (it changes what users get).
The bump is the largest of: breaking → major, ``feat`` → minor, ``fix`` or
``perf`` (or such a revert) → patch. Before 1.0.0 a breaking change bumps the
minor version (semver's 0.y.z is "anything may change") unless asked otherwise.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from devops_assets.domain.failures import reverted_shas

_HEADER = re.compile(
    r"(?P<type>[A-Za-z][A-Za-z0-9-]*)(?:\((?P<scope>[^()\r\n]*)\))?(?P<bang>!)?: +(?P<text>\S.*)"
)
_GIT_REVERT = re.compile(r'Revert "(?P<subject>.+)"(?: *\(#\d+\))?')
_BREAKING = re.compile(r"^BREAKING[ -]CHANGE: ?\S", re.MULTILINE)
BUMPS = ("none", "patch", "minor", "major")
SECTIONS = (
    ("breaking", "Breaking changes"),
    ("feat", "Features"),
    ("fix", "Bug fixes"),
    ("perf", "Performance"),
    ("revert", "Reverts"),
)


@dataclass(frozen=True)
class Change:
    """One commit read as a Conventional Commit; ``kind`` is None when it is not one."""

    sha: str
    kind: str | None
    scope: str | None
    breaking: bool
    text: str
    reverts: tuple[str, ...] = ()

    @property
    def bump(self) -> str:
        if self.breaking:
            return "major"
        if self.kind == "feat":
            return "minor"
        if self.kind in ("fix", "perf"):
            return "patch"
        return "none"


def parse(sha: str, message: str) -> Change:
    """Read one commit message (subject, blank line, body, footers)."""
    subject, _, rest = message.partition("\n")
    subject = subject.strip()
    reverts = tuple(reverted_shas(message))
    header = _HEADER.fullmatch(subject)
    if header is None:
        git_revert = _GIT_REVERT.fullmatch(subject)
        if git_revert is not None:
            return Change(sha, "revert", None, False, git_revert["subject"], reverts)
        return Change(sha, None, None, False, subject, reverts)
    breaking = bool(header["bang"]) or bool(_BREAKING.search(rest))
    scope = header["scope"].strip() if header["scope"] is not None else None
    kind = header["type"].lower()
    return Change(sha, kind, scope or None, breaking, header["text"].strip(), reverts)


def effective(changes: Sequence[Change]) -> list[Change]:
    """The changes a release ships: a revert and the commit it reverts, both in
    ``changes``, cancel out; a revert of something released earlier stays."""
    ordered = sorted(c.sha for c in changes)

    def inside(target: str, reverting: str) -> str | None:
        """The one commit of the release ``target`` (a full or abbreviated sha) names."""
        at = bisect_left(ordered, target)
        hits = []
        while at < len(ordered) and ordered[at].startswith(target) and len(hits) < 3:
            if ordered[at] != reverting:
                hits.append(ordered[at])
            at += 1
        return hits[0] if len(hits) == 1 else None

    cancelled: set[str] = set()
    for change in reversed(changes):  # a later revert of a revert restores the original
        if change.sha in cancelled or change.kind != "revert":
            continue
        found = (inside(r, change.sha) for r in change.reverts)
        targets = [t for t in found if t is not None]
        if targets:
            cancelled.add(change.sha)
            cancelled.update(targets)
    return [c for c in changes if c.sha not in cancelled]


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bumped(self, bump: str, major_on_zero: bool = False) -> Version:
        if bump == "major" and (self.major > 0 or major_on_zero):
            return Version(self.major + 1, 0, 0)
        if bump in ("major", "minor"):
            return Version(self.major, self.minor + 1, 0)
        if bump == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        return self


_VERSION = re.compile(r"(?:.*[@/-])?v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")


def version_of(tag: str) -> Version | None:
    """The version a release tag names: ``v1.2.3``, ``1.2.3``, ``wrangler@3.1.0``,
    ``name-v1.2.3`` (a pre-release or build suffix is ignored); None for others."""
    found = _VERSION.fullmatch(tag.strip())
    return Version(*(int(found[i]) for i in (1, 2, 3))) if found else None


def bump_of(changes: Iterable[Change], earlier: set[str] | None = None) -> str:
    """The largest bump among the changes a release ships (see ``effective``);
    a revert counts as a fix when what it reverts was released (``earlier``)."""
    largest = "none"
    for change in changes:
        bump = change.bump
        if change.kind == "revert" and change.reverts and bump == "none":
            bump = "patch" if earlier is None or _any_in(change.reverts, earlier) else "none"
        if BUMPS.index(bump) > BUMPS.index(largest):
            largest = bump
    return largest


def _any_in(prefixes: Iterable[str], shas: set[str]) -> bool:
    return any(any(s.startswith(p) for s in shas) for p in prefixes)


def next_version(
    previous: Version | None,
    changes: Sequence[Change],
    *,
    major_on_zero: bool = False,
    released: set[str] | None = None,
) -> tuple[Version, str]:
    """The next version after ``previous`` (0.0.0 when there is none) and the bump
    that made it, from the commits since ``previous`` in history order."""
    shipped = effective(changes)
    bump = bump_of(shipped, released)
    start = previous or Version(0, 0, 0)
    return start.bumped(bump, major_on_zero), bump


def _inline(text: str) -> str:
    """Commit text shown as text in markdown: no link, image or HTML from a subject
    (the UI renders the changelog, and an image there would be fetched by every
    browser that opens it)."""
    for char in "\\[]<>":
        text = text.replace(char, "\\" + char)
    return text


def changelog(version: Version, date: str, changes: Sequence[Change]) -> str:
    """A markdown section: the version and date, then each group with the commits'
    descriptions (scope first) and short shas. Commits that are not Conventional
    Commits, or of other types (docs, chore, ci…), are left out."""
    shipped = effective(changes)
    lines = [f"## {version} ({date})"]
    for key, title in SECTIONS:
        if key == "breaking":
            group = [c for c in shipped if c.breaking]
        else:
            group = [c for c in shipped if c.kind == key and not c.breaking]
        if not group:
            continue
        lines += ["", f"### {title}", ""]
        for change in group:
            scope = f"**{_inline(change.scope)}:** " if change.scope else ""
            lines.append(f"- {scope}{_inline(change.text)} ({change.sha[:7]})")
    if len(lines) == 1:
        lines += ["", "No user-facing changes."]
    return "\n".join(lines)
