"""A release for a production deploy: version, changelog, annotated tag.

The previous release is the highest release tag of the repository — exactly
``vX.Y.Z``, no pre-release or other prefix: production releases form one line
of versions, even when the tag sits on a merge into ``main`` that the deployed
staging commit does not contain. A commit that already carries a release tag
(cut by hand, or an earlier deploy) is released under that tag. What the release
ships is what the deployed commit holds and that tag's commit does not (``git
log <sha> ^<tag>``), read as Conventional Commits (``domain/release.py``).

A deploy that ships no user-facing change still gets a release, a patch one:
every production deploy must be findable by its tag. A version whose tag
already names another commit (a release cut on a branch this history does not
hold) is skipped for the next patch. Deploying a commit
that already has a release reuses it.
"""

from __future__ import annotations

import re

from devops_assets.delivery.runtime import Runtime
from devops_assets.domain import release as semver
from devops_assets.domain.deploys import Release
from devops_assets.sources.git import create_release_tag, read_commits, read_tags
from devops_assets.sources.git_refs import push_tag

MAX_SKIPPED = 1000
RELEASE_TAG = re.compile(r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
TAGGER, TAGGER_EMAIL = "devops-assets", "devops-assets@localhost"


def make_release(
    rt: Runtime,
    environment: str,
    sha: str,
    version_id: str,
    rollback_target: str | None,
    actor: str,
) -> Release:
    ledger = rt.warehouse.deploys
    for known in ledger.releases():
        if known.commit_sha == sha:
            return known
    tags = [t for t in read_tags(rt.repo, "v*") if RELEASE_TAG.fullmatch(t.name)]
    own = sorted((t for t in tags if t.sha == sha), key=lambda t: semver.version_of(t.name))
    earlier = [(semver.version_of(t.name), t.name, t.sha) for t in tags if t.sha != sha]
    if own:  # the release before the commit's own
        earlier = [e for e in earlier if e[0] < semver.version_of(own[-1].name)]
    previous = max(earlier, default=None, key=lambda e: e[0])
    revs = [sha] + ([f"^{previous[2]}"] if previous else [])
    commits = list(reversed(read_commits(rt.repo, revs)))  # history order
    changes = [semver.parse(c.sha, f"{c.subject}\n\n{c.body}") for c in commits]
    released = {c.sha for c in read_commits(rt.repo, [previous[2]])} if previous else set()
    version, bump = semver.next_version(
        previous[0] if previous else None, changes, released=released
    )
    if own:  # released already under this tag: record it, make no other
        version, bump = semver.version_of(own[-1].name), "existing"
    elif bump == "none":
        version, bump = version.bumped("patch"), "patch"
    taken = {t.name: t.sha for t in read_tags(rt.repo, "v*")}
    for _ in range(MAX_SKIPPED):
        if taken.get(f"v{version}", sha) == sha:
            break
        version = version.bumped("patch")
    now = rt.now()
    tag = f"v{version}"
    notes = semver.changelog(version, now.date().isoformat(), changes)
    # the platform tags; who asked is in the release row and the audit log (a name
    # like "." would not even be a valid tagger for git)
    create_release_tag(rt.repo, tag, sha, notes + "\n", tagger=TAGGER, email=TAGGER_EMAIL)
    pushed = False
    if rt.config.deploy.push_tags:
        push_tag(rt.repo, tag)
        pushed = True
    made = Release(
        tag=tag,
        version=str(version),
        commit_sha=sha,
        environment=environment,
        released_at=now,
        previous_tag=previous[1] if previous else None,
        bump=bump,
        changelog=notes,
        version_id=version_id,
        rollback_target=rollback_target,
        run_id=rt.run_id,
        pushed=pushed,
    )
    ledger.record_release(made)
    return made
