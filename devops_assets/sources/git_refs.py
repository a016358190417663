"""Small git questions a deploy asks: which commit a ref names, whether one commit
is in another's history, and pushing a release tag."""

from __future__ import annotations

import re
from pathlib import Path

from devops_assets.sources._git_run import _reason, _run
from devops_assets.sources.git import READ_TIMEOUT, GitError, _check_rev, _git

PUSH_TIMEOUT = 60.0


def resolve_commit(repo: str | Path, ref: str) -> str:
    """The full sha of the commit ``ref`` (a sha, abbreviated sha, branch or tag)
    names; GitError naming the ref when there is no such commit."""
    ref = ref.strip()
    _check_rev(repo, ref)
    if any(c.isspace() for c in ref) or len(ref) > 250:
        raise GitError(f"invalid revision {ref[:80]!r} for {repo}")
    try:
        out = _git(
            repo,
            ["rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}"],
            f"resolving {ref}",
        )
    except GitError:
        raise GitError(f"no commit named {ref!r} in {repo}") from None
    return out.decode().strip()


def is_ancestor(repo: str | Path, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is in the history of ``descendant`` (a commit is its own)."""
    for rev in (ancestor, descendant):
        _check_rev(repo, rev)
    cmd = ["git", "-C", str(repo), "merge-base", "--is-ancestor", ancestor, descendant]
    returncode, _, err = _run(cmd, READ_TIMEOUT)
    if returncode in (0, 1):
        return returncode == 0
    raise GitError(f"git merge-base in {repo} (ancestry) failed: {_reason(err, returncode)}")


def push_tag(repo: str | Path, tag: str, remote: str = "origin") -> None:
    """Push one tag to ``remote`` (never with --force: a moved tag is refused there too)."""
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._@/+-]*", tag) or ".." in tag:
        raise GitError(f"invalid tag name {tag!r} for {repo}")
    _git(
        repo,
        ["push", "--end-of-options", remote, f"refs/tags/{tag}"],
        f"pushing tag {tag}",
        timeout=PUSH_TIMEOUT,
    )
