"""Read commits, tags and branches from a git repository, without a shell.

Every call runs the ``git`` binary with an argument list, NUL-separated output
and user/system git config switched off, so the result depends only on the
repository. One ``git log`` call reads the whole history, however long.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devops_assets.domain.models import Commit, Tag

_LOG_FIELDS = ("%H", "%P", "%aI", "%cI", "%ae", "%B")
_TAG_FIELDS = (
    "%(refname)",
    "%(objecttype)",
    "%(objectname)",
    "%(*objecttype)",
    "%(*objectname)",
    "%(taggerdate:iso-strict)",
    "%(creatordate:iso-strict)",
    "%(*committerdate:iso-strict)",
)
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_TRAILER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)")
_ALL_REFS = ["--branches", "--tags", "--remotes"]


class GitError(RuntimeError):
    """A git command failed, or a repository, URL or ref is not what was expected."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_NO_REPLACE_OBJECTS="1",
        LC_ALL="C",
    )
    return env


def _redact(text: str) -> str:
    """Drop the user-info part of any URL so a token never reaches an error."""
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", text)


def _git(repo: str | Path, args: Sequence[str], what: str) -> bytes:
    """Run ``git -C repo args``; raise GitError naming the repo and ``what``."""
    cmd = ["git", "-C", str(repo), *args]
    try:
        # An argument list, never a shell: revs and URLs cannot become commands.
        done = subprocess.run(cmd, capture_output=True, env=_env(), check=False)  # noqa: S603
    except OSError as exc:
        raise GitError(f"cannot run git for {_redact(str(repo))} ({what}): {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = _redact(detail[-1]) if detail else f"exit code {done.returncode}"
        raise GitError(f"git {args[0]} failed in {_redact(str(repo))} ({what}): {reason}")
    return done.stdout


def _check_rev(repo: str | Path, rev: str) -> None:
    if not rev or rev.startswith("-") or "\0" in rev:
        raise GitError(f"invalid revision {rev!r} for {repo}")


def _split_message(message: str) -> tuple[str, str]:
    """Subject = first line; body = the rest without leading/trailing blank lines."""
    subject, _, rest = message.partition("\n")
    lines = rest.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return subject.rstrip("\r"), "\n".join(lines).rstrip("\r")


def parse_trailers(body: str) -> tuple[tuple[str, str], ...]:
    """``Key: value`` pairs of the body's last paragraph, when every line is one.

    Indented lines continue the previous value. A last paragraph with any other
    line is prose, and yields no trailers.
    """
    paragraphs = re.split(r"\n[ \t\r]*\n", body.replace("\r\n", "\n").strip())
    last = paragraphs[-1] if paragraphs and paragraphs[-1] else ""
    trailers: list[list[str]] = []
    for line in last.split("\n"):
        match = _TRAILER.fullmatch(line.rstrip())
        if match:
            trailers.append([match.group(1), match.group(2)])
        elif line[:1] in (" ", "\t") and trailers:
            trailers[-1][1] += " " + line.strip()
        else:
            return ()
    return tuple((key, value) for key, value in trailers)


def _commit_from_fields(fields: list[str], repo: str | Path) -> Commit:
    sha, parents, author_time, commit_time, email, message = fields
    if not _SHA.fullmatch(sha):
        raise GitError(f"unexpected git log output in {repo} near {sha[:50]!r}")
    subject, body = _split_message(message)
    return Commit(
        sha=sha,
        parents=tuple(parents.split()),
        author_time=datetime.fromisoformat(author_time),
        commit_time=datetime.fromisoformat(commit_time),
        author_email=email,
        subject=subject,
        body=body,
        trailers=parse_trailers(body),
    )


def read_commits(repo: str | Path, revs: list[str] | None = None) -> list[Commit]:
    """Every commit reachable from ``revs`` (default: all branches, tags, remotes).

    Newest first in git's default order. Times keep the offsets they were
    written with. An empty repository yields an empty list.
    """
    for rev in revs or []:
        _check_rev(repo, rev)
    targets = ["--end-of-options", *revs] if revs else _ALL_REFS
    fmt = "%x00".join(_LOG_FIELDS)
    args = ["log", "-z", "--no-color", "--no-show-signature", f"--format={fmt}", *targets, "--"]
    out = _git(repo, args, f"reading commits of {' '.join(revs) if revs else 'all refs'}")
    parts = out.decode("utf-8", "replace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    width = len(_LOG_FIELDS)
    if len(parts) % width:
        raise GitError(f"unexpected git log output in {repo}: {len(parts)} fields")
    return [_commit_from_fields(parts[i : i + width], repo) for i in range(0, len(parts), width)]


def _peel(repo: str | Path, refname: str) -> str | None:
    """The commit a nested tag finally points to, or None for a tree or blob."""
    try:
        out = _git(repo, ["rev-parse", "--verify", "--quiet", f"{refname}^{{commit}}"], refname)
    except GitError:
        return None
    return out.decode().strip() or None


def _committer_date(repo: str | Path, sha: str) -> str:
    args = ["log", "-1", "--no-show-signature", "--format=%cI", sha, "--"]
    return _git(repo, args, f"date of {sha}").decode().strip()


def _tag_from_line(repo: str | Path, line: str) -> Tag | None:
    refname, kind, sha, peeled_kind, peeled_sha, tagger, created, peeled_date = line.split("\0")
    name = refname.removeprefix("refs/tags/")
    if kind == "commit":
        return Tag(name=name, sha=sha, time=datetime.fromisoformat(created), annotated=False)
    if kind != "tag":
        return None
    target = peeled_sha if peeled_kind == "commit" else _peel(repo, refname)
    if target is None:
        return None
    when = tagger or peeled_date or _committer_date(repo, target)
    return Tag(name=name, sha=target, time=datetime.fromisoformat(when), annotated=True)


def read_tags(repo: str | Path, pattern: str = "*") -> list[Tag]:
    """Tags whose short name matches the glob ``pattern``, peeled to their commit.

    ``*`` also matches ``/``, so ``@scope/pkg@*`` works. ``time`` is the tagger
    date of an annotated tag, else the committer date of its commit. Tags on
    trees or blobs are skipped. Sorted by time, then name.
    """
    fmt = "%00".join(_TAG_FIELDS)
    out = _git(repo, ["for-each-ref", f"--format={fmt}", "refs/tags"], f"reading tags {pattern}")
    tags = []
    for line in out.decode("utf-8", "replace").splitlines():
        if fnmatchcase(line.split("\0", 1)[0].removeprefix("refs/tags/"), pattern):
            tag = _tag_from_line(repo, line)
            if tag is not None:
                tags.append(tag)
    return sorted(tags, key=lambda tag: (tag.time, tag.name))


def read_branches(repo: str | Path) -> dict[str, str]:
    """Local branch name (without ``refs/heads/``) → the commit sha at its head."""
    out = _git(
        repo, ["for-each-ref", "--format=%(refname)%00%(objectname)", "refs/heads"], "branches"
    )
    branches = {}
    for line in out.decode("utf-8", "replace").splitlines():
        refname, sha = line.split("\0")
        branches[refname.removeprefix("refs/heads/")] = sha
    return branches


def first_parent_chain(repo: str | Path, branch: str) -> list[str]:
    """Shas on the first-parent chain of ``branch``, oldest first (the mainline)."""
    _check_rev(repo, branch)
    try:
        _git(repo, ["rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}"], branch)
    except GitError:
        raise GitError(f"no branch or commit named {branch!r} in {_redact(str(repo))}") from None
    args = ["rev-list", "--first-parent", "--reverse", "--end-of-options", branch, "--"]
    return _git(repo, args, f"first-parent chain of {branch}").decode().split()


def _is_url(text: str) -> bool:
    return "://" in text or bool(re.match(r"[\w.-]+@[\w.-]+:", text))


def _cache_name(url: str) -> str:
    parts = urlsplit(url)
    clean = urlunsplit(parts._replace(netloc=parts.hostname or "")) if parts.scheme else url
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", clean.rstrip("/").rsplit("/", 1)[-1]) or "repo"
    return f"{stem.removesuffix('.git')}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"


def ensure_local(repo_or_url: str, cache_dir: Path) -> Path:
    """A local repository path, checked; or a URL mirrored into ``cache_dir``.

    A URL is cloned with ``--mirror`` the first time and fetched (with prune)
    afterwards, so a re-run only transfers what is new.
    """
    if not _is_url(repo_or_url):
        path = Path(repo_or_url)
        if not path.is_dir():
            raise GitError(f"not a git repository: {repo_or_url} (no such directory)")
        _git(path, ["rev-parse", "--git-dir"], "checking it is a git repository")
        return path
    dest = (Path(cache_dir) / _cache_name(repo_or_url)).resolve()
    if dest.is_dir():
        _git(dest, ["fetch", "--prune", "--quiet", "origin"], f"fetching {_redact(repo_or_url)}")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    args = ["clone", "--mirror", "--quiet", "--", repo_or_url, str(dest)]
    _git(dest.parent, args, f"cloning {_redact(repo_or_url)}")
    return dest
