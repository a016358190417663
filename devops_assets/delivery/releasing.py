"""A release for a production deploy: version, changelog, annotated tag.

The previous release is the highest ``vX.Y.Z`` tag of the repository: production
releases form one line of versions, even when the tag sits on a merge into
``main`` that the deployed staging commit does not contain. What the release
ships is what the deployed commit holds and that tag's commit does not (``git
log <sha> ^<tag>``), read as Conventional Commits (``domain/release.py``).

A deploy that ships no user-facing change still gets a release, a patch one:
every production deploy must be findable by its tag. A version whose tag
already names another commit (a release cut on a branch this history does not
hold) is skipped for the next patch. Deploying a commit
that already has a release reuses it.
"""

from __future__ import annotations

from devops_assets.delivery.runtime import Runtime
from devops_assets.domain import release as semver
from devops_assets.domain.deploys import Release
from devops_assets.sources.git import create_release_tag, read_commits, read_tags
from devops_assets.sources.git_refs import push_tag

MAX_SKIPPED = 1000


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
    earlier = [(semver.version_of(t.name), t.name, t.sha) for t in read_tags(rt.repo, "v*")]
    earlier = [e for e in earlier if e[0] is not None and e[2] != sha]
    previous = max(earlier, default=None, key=lambda e: e[0])
    revs = [sha] + ([f"^{previous[2]}"] if previous else [])
    commits = list(reversed(read_commits(rt.repo, revs)))  # history order
    changes = [semver.parse(c.sha, f"{c.subject}\n\n{c.body}") for c in commits]
    released = {c.sha for c in read_commits(rt.repo, [previous[2]])} if previous else set()
    version, bump = semver.next_version(
        previous[0] if previous else None, changes, released=released
    )
    if bump == "none":
        version, bump = version.bumped("patch"), "patch"
    taken = {t.name: t.sha for t in read_tags(rt.repo, "v*")}
    for _ in range(MAX_SKIPPED):
        if taken.get(f"v{version}", sha) == sha:
            break
        version = version.bumped("patch")
    now = rt.now()
    tag = f"v{version}"
    notes = semver.changelog(version, now.date().isoformat(), changes)
    email = actor if "@" in actor else "devops-assets@localhost"
    create_release_tag(rt.repo, tag, sha, notes + "\n", tagger=actor, email=email)
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
