"""Read commits, tags and branches from a git repository, without a shell.

Every call runs the ``git`` binary with an argument list, NUL-separated output
and user/system git config switched off, so the result depends only on the
repository. One ``git log`` call reads the whole history, however long. Every
call has a time limit: git and the helpers it starts are killed when it passes.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devops_assets.domain.models import Commit, Tag
from devops_assets.sources._git_run import GitError, _reason, _redact, _run

__all__ = [
    "GitError",
    "ensure_local",
    "first_parent_chain",
    "read_branches",
    "read_commits",
    "read_tags",
    "parse_trailers",
]

NETWORK_TIMEOUT = 600.0
"""Seconds a clone or fetch of a URL may take, unless ``ensure_local`` is given another."""
READ_TIMEOUT = 300.0
"""Seconds one read of a local repository may take (a whole ``git log`` included)."""

_LOG_FIELDS = ("%H", "%P", "%at", "%ad", "%ct", "%cd", "%ae", "%B")
_TAG_FIELDS = (
    "%(refname)",
    "%(objecttype)",
    "%(objectname)",
    "%(*objecttype)",
    "%(*objectname)",
    "%(tagger)",
    "%(committer)",
    "%(*committer)",
)
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_TRAILER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*)")
_RAW_DATE = re.compile(r"(\d+) ([+-])(\d\d)(\d\d)")
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_ALL_REFS = ["--branches", "--tags", "--remotes"]


def _git(
    repo: str | Path,
    args: Sequence[str],
    what: str,
    timeout: float | None = None,
    stdin: bytes | None = None,
) -> bytes:
    """Run ``git -C repo args``; raise GitError naming the repo, the command and ``what``."""
    verb = next((a for a in args if not a.startswith("-") and "=" not in a), args[0])
    where = _redact(f"git {verb} in {repo} ({what})")
    limit = READ_TIMEOUT if timeout is None else timeout
    try:
        returncode, out, err = _run(["git", "-C", str(repo), *args], limit, stdin)
    except subprocess.TimeoutExpired:
        raise GitError(f"{where} did not finish within {limit:g} s; stopped it") from None
    except OSError as exc:
        raise GitError(f"cannot run {where}: {exc}") from exc
    if returncode != 0:
        raise GitError(f"{where} failed: {_reason(err, returncode)}")
    return out


def _check_rev(repo: str | Path, rev: str) -> None:
    if not rev or rev.startswith("-") or "\0" in rev:
        raise GitError(f"invalid revision {rev!r} for {repo}")


def _lines(out: bytes) -> list[str]:
    """Lines of ref output. Ref names never hold a newline but may hold U+2028 or U+0085."""
    return [line for line in out.decode("utf-8", "replace").split("\n") if line]


def _parse_git_date(raw: str, where: str) -> datetime:
    """``<seconds since 1970> <±hhmm>``, as git stores a date, in the offset it was written with.

    A missing date, an offset of 24 h or more (or minutes of 60 or more) and a time
    after the year 9998 raise GitError naming ``where``: none is ever guessed.
    """
    match = _RAW_DATE.fullmatch(raw)
    if not match:
        raise GitError(f"{where} is missing or unreadable: {raw!r}")
    epoch, sign, hours, minutes = match.groups()
    if int(hours) > 23 or int(minutes) > 59:
        raise GitError(f"{where} has an impossible time zone {sign}{hours}{minutes}: {raw!r}")
    if int(epoch) >= _LATEST.timestamp():
        raise GitError(f"{where} is after {_LATEST.year - 1}, too late to be stored: {raw!r}")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return datetime.fromtimestamp(int(epoch), timezone(-offset if sign == "-" else offset))


def _ident_date(ident: str, where: str) -> datetime:
    """The date of a raw ``Name <email> <seconds> <±hhmm>`` author/committer/tagger line."""
    return _parse_git_date(ident.rpartition(">")[2].strip(), where)


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


def _log_date(seconds: str, raw: str, where: str) -> datetime:
    """``%at``-style seconds exactly as stored, with the offset of ``--date=raw``.

    ``--date=raw`` alone prints ``0 +0000`` for seconds git cannot hold.
    """
    return _parse_git_date(f"{seconds} {raw.rpartition(' ')[2]}".strip(), where)


def _commit_from_fields(fields: list[str], repo: str | Path) -> Commit:
    sha, parents, author_s, author_raw, commit_s, commit_raw, email, message = fields
    if not _SHA.fullmatch(sha):
        raise GitError(f"unexpected git log output in {repo} near {sha[:50]!r}")
    subject, body = _split_message(message)
    return Commit(
        sha=sha,
        parents=tuple(parents.split()),
        author_time=_log_date(author_s, author_raw, f"author date of commit {sha} in {repo}"),
        commit_time=_log_date(commit_s, commit_raw, f"committer date of commit {sha} in {repo}"),
        author_email=email,
        subject=subject,
        body=body,
        trailers=parse_trailers(body),
    )


def read_commits(repo: str | Path, revs: list[str] | None = None) -> list[Commit]:
    """Every commit reachable from ``revs`` (default: all branches, tags, remotes).

    Newest first in git's default order. Times keep the offsets they were
    written with; a commit whose date cannot be read raises GitError naming it.
    An empty repository yields an empty list.
    """
    for rev in revs or []:
        _check_rev(repo, rev)
    targets = ["--end-of-options", *revs] if revs else _ALL_REFS
    fmt = "%x00".join(_LOG_FIELDS)
    args = ["log", "-z", "--no-color", "--no-show-signature", "--date=raw", f"--format={fmt}"]
    what = f"reading commits of {' '.join(revs) if revs else 'all refs'}"
    out = _git(repo, [*args, *targets, "--"], what)
    parts = out.decode("utf-8", "replace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    width = len(_LOG_FIELDS)
    if len(parts) % width:
        raise GitError(f"unexpected git log output in {repo}: {len(parts)} fields")
    return [_commit_from_fields(parts[i : i + width], repo) for i in range(0, len(parts), width)]


def read_patch_ids(
    repo: str | Path, revs: list[str] | None = None, shas: list[str] | None = None
) -> dict[str, str]:
    """``git patch-id --stable`` of every non-merge commit reachable from ``revs``
    (default: all refs), or of exactly the commits ``shas`` when given: equal ids
    mean the same change, e.g. a cherry-pick. Commits without a diff (empty, or
    merges) get none."""
    if shas is not None and not shas:
        return {}
    args = ["log", "-p", "--no-merges", "--no-color", "--no-ext-diff", "--format=commit %H"]
    if shas is not None:
        for sha in shas:
            _check_rev(repo, sha)
        diffs = _git(
            repo,
            [*args, "--no-walk=unsorted", "--stdin", "--"],
            f"reading the diffs of {len(shas)} commits for patch ids",
            stdin="\n".join(shas).encode("ascii") + b"\n",
        )
    else:
        targets = ["--end-of-options", *revs] if revs else _ALL_REFS
        diffs = _git(repo, [*args, *targets, "--"], "reading diffs for patch ids")
    out = _git(repo, ["patch-id", "--stable"], "computing patch ids", stdin=diffs)
    ids = {}
    for line in _lines(out):
        patch, _, sha = line.partition(" ")
        ids[sha] = patch
    return ids


def create_release_tag(
    repo: str | Path, name: str, sha: str, message: str, tagger: str, email: str
) -> Tag:
    """An annotated tag ``name`` on commit ``sha`` in the local repository, with the
    changelog as its message. A tag of that name on the same commit is kept as it
    is (a re-run of the same release); on another commit it is refused, never moved.
    """
    _check_rev(repo, name)
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._@/+-]*", name) or ".." in name:
        raise GitError(f"invalid tag name {name!r} for {repo}")
    existing = {t.name: t for t in read_tags(repo, name)}
    if name in existing:
        if existing[name].sha != sha:
            raise GitError(
                f"tag {name} in {repo} already names commit {existing[name].sha[:12]}, "
                f"not {sha[:12]}; a release tag is never moved"
            )
        return existing[name]
    identity = ["-c", f"user.name={tagger}", "-c", f"user.email={email}"]
    # verbatim: the default cleanup would drop the changelog's "## 1.2.0" headings
    # as comment lines.
    tag = ["tag", "--annotate", "--cleanup=verbatim", "--file=-", "--end-of-options"]
    _git(
        repo,
        [*identity, *tag, name, sha],
        f"tagging {sha[:12]} as {name}",
        stdin=message.encode("utf-8"),
    )
    return next(t for t in read_tags(repo, name) if t.name == name)


def _peel(repo: str | Path, tag_sha: str) -> str | None:
    """The commit a nested tag finally points to, or None for a tree or blob."""
    try:
        out = _git(repo, ["rev-parse", "--verify", "--quiet", f"{tag_sha}^{{commit}}"], tag_sha)
    except GitError:
        return None
    return out.decode().strip() or None


def _committer(repo: str | Path, sha: str) -> str:
    """The raw ``committer`` line of commit ``sha``, without its keyword."""
    raw = _git(repo, ["cat-file", "commit", sha], f"committer of {sha}")
    for line in raw.split(b"\n\n", 1)[0].decode("utf-8", "replace").split("\n"):
        if line.startswith("committer "):
            return line.removeprefix("committer ")
    return ""


def _tag_from_line(repo: str | Path, line: str) -> Tag | None:
    refname, kind, sha, peeled_kind, peeled_sha, tagger, committer, peeled_committer = line.split(
        "\0"
    )
    name = refname.removeprefix("refs/tags/")
    if kind == "commit":
        when = _ident_date(committer, f"committer date of commit {sha} (tag {name!r} in {repo})")
        return Tag(name=name, sha=sha, time=when, annotated=False)
    if kind != "tag":
        return None
    target = peeled_sha if peeled_kind == "commit" else _peel(repo, sha)
    if target is None:
        return None
    if tagger:
        when = _ident_date(tagger, f"tagger date of tag {name!r} in {repo}")
    else:
        # Tags made before git recorded a tagger are dated by their commit.
        ident = peeled_committer if peeled_kind == "commit" else _committer(repo, target)
        when = _ident_date(ident, f"committer date of commit {target} (tag {name!r} in {repo})")
    return Tag(name=name, sha=target, time=when, annotated=True)


def read_tags(repo: str | Path, pattern: str = "*") -> list[Tag]:
    """Tags whose short name matches the glob ``pattern``, peeled to their commit.

    ``*`` also matches ``/``, so ``@scope/pkg@*`` works. ``time`` is the tagger
    date of an annotated tag, else the committer date of its commit; one that
    cannot be read raises GitError naming the tag. Tags on trees or blobs are
    skipped. Sorted by time, then name.
    """
    fmt = "%00".join(_TAG_FIELDS)
    out = _git(repo, ["for-each-ref", f"--format={fmt}", "refs/tags"], f"reading tags {pattern}")
    tags = []
    for line in _lines(out):
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
    for line in _lines(out):
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


def _checked_path(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise GitError(f"not a git repository: {text} (no such directory)")
    _git(path, ["rev-parse", "--git-dir"], "checking it is a git repository")
    return path


def ensure_local(repo_or_url: str, cache_dir: Path, timeout: float | None = None) -> Path:
    """A local repository path, checked; or a URL mirrored into ``cache_dir``.

    A URL is cloned with ``--mirror`` the first time and fetched (with prune)
    afterwards, so a re-run only transfers what is new. A clone or fetch taking
    longer than ``timeout`` seconds (default ``NETWORK_TIMEOUT``) is stopped and
    raises GitError.
    """
    if not repo_or_url.strip():
        raise GitError("no repository given: the path or URL is empty")
    if not _is_url(repo_or_url):
        return _checked_path(repo_or_url)
    shown, limit = _redact(repo_or_url), NETWORK_TIMEOUT if timeout is None else timeout
    dest = (Path(cache_dir) / _cache_name(repo_or_url)).resolve()
    if dest.is_dir():
        _git(dest, ["fetch", "--prune", "--quiet", "origin"], f"fetching {shown}", limit)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    _clone(repo_or_url, dest, limit)
    return dest


def _clone(url: str, dest: Path, timeout: float) -> None:
    """Mirror ``url`` beside ``dest``, then move it there: a stopped clone leaves nothing."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as scratch:
        partial = Path(scratch) / "mirror.git"
        args = ["clone", "--mirror", "--quiet", "--", url, str(partial)]
        _git(dest.parent, args, f"cloning {_redact(url)}", timeout)
        if not dest.is_dir():  # else a concurrent run finished first; keep its mirror
            partial.rename(dest)
