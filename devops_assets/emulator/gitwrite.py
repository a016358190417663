"""Write simulated commits and tags into a real git repository with one ``git fast-import``.

Every git call runs with an argument list (no shell), without the user's or
the system's git config, and with fixed identities, so the same history gives
the same commit shas on every machine.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from devops_assets.emulator.records import SimCommit, SimTag

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "devops-assets simulator",
    "GIT_AUTHOR_EMAIL": "simulator@moltworker.example",
    "GIT_AUTHOR_DATE": "1780000000 +0000",
    "GIT_COMMITTER_NAME": "devops-assets simulator",
    "GIT_COMMITTER_EMAIL": "simulator@moltworker.example",
    "GIT_COMMITTER_DATE": "1780000000 +0000",
}


class GitError(RuntimeError):
    """A git command of the simulator failed; names the command and the repository."""


def git(repo: Path, *args: str, stdin: bytes | None = None, default_branch: str = "main") -> str:
    """Run ``git -C repo args``; return its output without the trailing newline."""
    argv = ["git", "-c", f"init.defaultBranch={default_branch}", "-c", "gc.auto=0"]
    argv += ["-c", f"user.name={GIT_ENV['GIT_AUTHOR_NAME']}"]
    argv += ["-c", f"user.email={GIT_ENV['GIT_AUTHOR_EMAIL']}", "-C", str(repo), *args]
    # An argument list, never a shell: paths and messages are passed verbatim.
    done = subprocess.run(
        argv, input=stdin, capture_output=True, env={**os.environ, **GIT_ENV}, check=False
    )
    if done.returncode != 0:
        error = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise GitError(f"git {args[0]} in {repo} failed ({done.returncode}): {error}")
    return done.stdout.decode("utf-8").rstrip("\n")


def write_repository(
    repo: Path,
    commits: list[SimCommit],
    branches: dict[str, int],
    default_branch: str,
    tags: list[SimTag] | None = None,
) -> dict[int, str]:
    """Create ``repo`` holding ``commits`` and ``tags``; point ``branches`` at their marks.

    Returns the sha git gave each commit mark. The working tree is checked out
    at ``default_branch``, which HEAD names.
    """
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", default_branch=default_branch)
    marks = repo / ".git" / "simulator-marks"
    stream = b"".join(_stream(commits, branches, default_branch))
    stream += b"".join(_tag_commands(tags or []))
    git(
        repo, "fast-import", "--quiet", "--date-format=raw", f"--export-marks={marks}", stdin=stream
    )
    shas = {}
    for line in marks.read_text(encoding="ascii").splitlines():
        mark, sha = line.split()
        shas[int(mark.lstrip(":"))] = sha
    marks.unlink()
    git(repo, "reset", "-q", "--hard", default_branch)
    return shas


def _stream(commits: list[SimCommit], branches: dict[str, int], ref: str) -> Iterable[bytes]:
    """The fast-import commands: every commit on one ref, then the branch heads."""
    for commit in commits:
        yield f"commit refs/heads/{ref}\nmark :{commit.mark}\n".encode()
        yield _ident("author", commit.author, commit.author_time)
        yield _ident("committer", commit.committer, commit.commit_time)
        yield _data(commit.message)
        for i, parent in enumerate(commit.parents):
            yield f"{'from' if i == 0 else 'merge'} :{parent}\n".encode()
        for path, text in sorted(commit.files.items()):
            yield f"M 100644 inline {path}\n".encode()
            yield _data(text)
        yield b"\n"
    for branch, mark in sorted(branches.items()):
        yield f"reset refs/heads/{branch}\nfrom :{mark}\n\n".encode()


def _tag_commands(tags: list[SimTag]) -> Iterable[bytes]:
    """An annotated tag is a ``tag`` command; a lightweight one a ref ``reset`` to its commit."""
    for tag in tags:
        if tag.tagger is None:
            yield f"reset refs/tags/{tag.name}\nfrom :{tag.mark}\n\n".encode()
            continue
        yield f"tag {tag.name}\nfrom :{tag.mark}\n".encode()
        yield _ident("tagger", tag.tagger, tag.time)
        yield _data(tag.message)


def _ident(role: str, person, when) -> bytes:
    offset = int(when.utcoffset().total_seconds() // 60)
    sign, offset = ("-" if offset < 0 else "+"), abs(offset)
    stamp = f"{int(when.timestamp())} {sign}{offset // 60:02d}{offset % 60:02d}"
    return f"{role} {person.name} <{person.email}> {stamp}\n".encode()


def _data(text: str) -> bytes:
    raw = text.encode("utf-8")
    return f"data {len(raw)}\n".encode() + raw + b"\n"
