"""Small git questions a deploy asks: which commit a ref names, which commits an
abbreviation fits, a file at a branch's head, and pushing a release tag."""

from __future__ import annotations

import re
from pathlib import Path

from devops_assets.sources._git_run import _reason, _run
from devops_assets.sources.git import READ_TIMEOUT, GitError, _check_rev, _git

PUSH_TIMEOUT = 60.0


_HEX = re.compile(r"[0-9a-fA-F]{4,64}")
_REF_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/@+-]*")


def resolve_commit(repo: str | Path, ref: str) -> str:
    """The full sha of the commit ``ref`` names: a sha or an abbreviation of one
    (exactly one commit may start with it), or a branch or tag name. A name that is
    both an abbreviation and a branch or tag naming another commit is refused as
    ambiguous, as is anything that is not a plain name (``^main``, ``main~2``,
    ``HEAD:path``): a deploy names one commit, not a git expression."""
    ref = ref.strip()
    _check_rev(repo, ref)
    if len(ref) > 250 or not _REF_NAME.fullmatch(ref) or ".." in ref:
        raise GitError(f"invalid revision {ref[:80]!r} for {repo}: a sha, branch or tag name")
    by_name = _named_commit(repo, ref)
    by_sha = commits_with_prefix(repo, ref) if _HEX.fullmatch(ref) else []
    if len(by_sha) > 1:
        raise GitError(f"{ref!r} is ambiguous in {repo}: {len(by_sha)} commits start with it")
    if by_sha and by_name and by_sha[0] != by_name:
        raise GitError(
            f"{ref!r} is ambiguous in {repo}: commit {by_sha[0][:12]} and a branch or tag "
            f"naming {by_name[:12]}"
        )
    found = by_name or (by_sha[0] if by_sha else None)
    if found is None:
        raise GitError(f"no commit named {ref!r} in {repo}")
    return found


def _named_commit(repo: str | Path, name: str) -> str | None:
    """The commit a branch or tag called ``name`` points to (tags peeled), if any."""
    for full in (f"refs/heads/{name}", f"refs/tags/{name}"):
        try:
            out = _git(
                repo,
                ["rev-parse", "--verify", "--quiet", "--end-of-options", full + "^{commit}"],
                f"resolving {name}",
            )
        except GitError:
            continue
        return out.decode().strip()
    return None


def commits_with_prefix(repo: str | Path, prefix: str) -> list[str]:
    """Every commit whose sha starts with ``prefix`` (hex, 4 characters or more)."""
    if not _HEX.fullmatch(prefix):
        return []
    prefix = prefix.lower()
    cmd = ["git", "-C", str(repo), "rev-parse", f"--disambiguate={prefix}"]
    returncode, out, _ = _run(cmd, READ_TIMEOUT)
    if returncode != 0:
        return []
    objects = out.decode().split()
    if not objects:
        return []
    check = ["git", "-C", str(repo), "cat-file", "--batch-check=%(objectname) %(objecttype)"]
    returncode, out, err = _run(check, READ_TIMEOUT, "\n".join(objects).encode() + b"\n")
    if returncode != 0:
        raise GitError(f"git cat-file in {repo} failed: {_reason(err, returncode)}")
    pairs = [line.split() for line in out.decode().splitlines()]
    return sorted(sha for sha, kind in pairs if kind == "commit")


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


def read_blob(repo: str | Path, branch: str, path: str) -> bytes | None:
    """The content of ``path`` at the head of ``branch``, or None when it has none."""
    _check_rev(repo, branch)
    if path.startswith(("/", "-")) or ".." in path.split("/"):
        raise GitError(f"invalid path {path!r} for {repo}")
    cmd = ["git", "-C", str(repo), "cat-file", "blob", f"refs/heads/{branch}:{path}"]
    returncode, out, _ = _run(cmd, READ_TIMEOUT)
    return out if returncode == 0 else None
