"""Steps 1 and 2: reading the history, and attributing its commits to deployments.

References are plain ``git`` subprocesses whose output is read in full:

* reading: ``git rev-list --all --parents``, the cheapest full walk of the
  same refs. It reads no message, so the ratio is what our parsing of dates,
  messages and trailers costs on top of git's own walk.
* attribution: for each deployment in time order, ``git rev-list <commit>
  --not <every earlier deployment's commit>``. That is the exact definition of
  a changeset (what no earlier deployment contained), so both sides must give
  the same sets and the benchmark checks that they do. ``tagN ^tagN-1`` would
  be cheaper but wrong whenever a tag sits on a side branch or tags are not in
  time order; reading ``rev-list --all --parents`` once and walking it in
  Python would time a second copy of our own algorithm, not a reference.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.timing import ResultMismatch, Row, Sides, compare
from devops_assets.domain.lineage import Lineage, attribute_commits, deployment_order
from devops_assets.domain.models import Commit, Deployment
from devops_assets.report import tag_deployments
from devops_assets.sources.git import read_commits
from devops_assets_tests.git_fixtures import GIT_ENV

_ENV = {**GIT_ENV, "LC_ALL": "C"}  # no user or system git config, as our source runs


def git_output(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Stdout of ``git -C repo ARGS``, read in full; a failure names the command."""
    done = subprocess.run(  # noqa: S603 (argument list, no shell)
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, env=_ENV, check=False
    )
    if done.returncode:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {stderr}")
    return done.stdout


def _count_rev_list(repo: Path) -> int:
    return git_output(repo, "rev-list", "--all", "--parents").count(b"\n")


def bench_git_read(repo: Path, repeat: int) -> tuple[Row, list[Commit]]:
    """Time ``read_commits`` against ``git rev-list --all --parents``; check the counts."""
    sides = Sides(ours=lambda: read_commits(repo), reference=lambda: _count_rev_list(repo))
    row, commits, listed = compare("git read", sides, repeat)
    if len(commits) != listed:
        raise ResultMismatch(f"read_commits found {len(commits)} commits, rev-list {listed}")
    print(
        f"git read: {len(commits)} commits; ours {row.ours_s:.3f} s, "
        f"git rev-list --all --parents {row.reference_s:.3f} s, ratio {row.ratio:.2f}"
    )
    return row, commits


def _changesets_by_git(repo: Path, deployments: list[Deployment]) -> list[frozenset[str]]:
    """What each deployment shipped first, asking git once per deployment."""
    changesets: list[frozenset[str]] = []
    earlier: dict[str, None] = {}  # an ordered set of the commits deployed so far
    for deployment in deployment_order(deployments):
        revs = [deployment.commit_sha, *(f"^{sha}" for sha in earlier)]
        out = git_output(repo, "rev-list", "--stdin", stdin="\n".join(revs).encode() + b"\n")
        changesets.append(frozenset(out.decode().split()))
        earlier[deployment.commit_sha] = None
    return changesets


def _check_same_changesets(lineage: Lineage, by_git: list[frozenset[str]]) -> None:
    pairs = zip(lineage.deployments, lineage.changesets, by_git, strict=True)
    for deployment, ours, theirs in pairs:
        if frozenset(ours) != theirs:
            raise ResultMismatch(
                f"deployment {deployment.deployment_id}: attribute_commits shipped "
                f"{len(ours)} commits, git rev-list {len(theirs)}"
            )


def bench_attribution(repo: Path, commits: list[Commit], tags: str, repeat: int) -> Row:
    """Time ``attribute_commits`` against one ``git rev-list`` per deployment range."""
    deployments = tag_deployments(repo, tags)
    sides = Sides(
        ours=lambda: attribute_commits(commits, deployments),
        reference=lambda: _changesets_by_git(repo, deployments),
    )
    row, lineage, by_git = compare("attribution", sides, repeat)
    _check_same_changesets(lineage, by_git)
    print(
        f"attribution: {len(deployments)} deployments ({tags} tags), "
        f"{len(lineage.first_deployment)} commits attributed; ours {row.ours_s:.4f} s, "
        f"git rev-list per deployment {row.reference_s:.3f} s, ratio {row.ratio:.4f}"
    )
    return row
