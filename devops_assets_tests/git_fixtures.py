"""Build real git repositories for tests: odd cases by hand, real histories by fast-import.

Every git call runs without user or system config, with fixed identities and
dates, so the repositories are the same on every machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from devops_assets import report

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.invalid",
    "GIT_COMMITTER_NAME": "Bob",
    "GIT_COMMITTER_EMAIL": "bob@example.invalid",
}


def git(repo: Path, *args: str, stdin: bytes | None = None, **env: str) -> str:
    """Run git in ``repo``; return stdout without its trailing newline."""
    done = subprocess.run(  # noqa: S603 (argument list, no shell)
        ["git", "-C", str(repo), *args],
        input=stdin,
        capture_output=True,
        env={**GIT_ENV, **env},
        check=False,
    )
    if done.returncode:
        raise AssertionError(f"git {' '.join(args[:3])} failed: {done.stderr.decode()}")
    return done.stdout.decode().rstrip("\n")


def init_repo(path: Path, bare: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", *(["--bare"] if bare else []), "--initial-branch=main")
    return path


def commit(
    repo: Path,
    message: str | bytes,
    parents: tuple[str, ...] = (),
    when: str = "2024-01-01T10:00:00+00:00",
    committed: str | None = None,
    email: str = "ada@example.invalid",
) -> str:
    """A commit with an empty tree, exact message bytes, author and committer dates."""
    tree = git(repo, "hash-object", "-t", "tree", "-w", "--stdin", stdin=b"")
    args = ["commit-tree", tree, "-F", "-"]
    for parent in parents:
        args += ["-p", parent]
    data = message.encode() if isinstance(message, str) else message
    return git(
        repo,
        *args,
        stdin=data,
        GIT_AUTHOR_DATE=when,
        GIT_COMMITTER_DATE=committed or when,
        GIT_AUTHOR_EMAIL=email,
    )


def raw_commit(repo: Path, author: str, committer: str = "Bob <bob@x> 1704103200 +0000") -> str:
    """A commit written byte for byte, so its dates may be ones git itself would refuse.

    ``author`` and ``committer`` are the header values: ``Name <email> <seconds> <±hhmm>``.
    """
    tree = git(repo, "hash-object", "-t", "tree", "-w", "--stdin", stdin=b"")
    data = f"tree {tree}\nauthor {author}\ncommitter {committer}\n\nodd dates\n"
    return git(
        repo, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", stdin=data.encode()
    )


def raw_tag(repo: Path, name: str, target: str, tagger: str | None) -> str:
    """An annotated tag ``name`` on commit ``target``, written byte for byte; no tagger if None."""
    header = f"object {target}\ntype commit\ntag {name}\n"
    header += f"tagger {tagger}\n" if tagger is not None else ""
    sha = git(
        repo,
        "hash-object",
        "-t",
        "tag",
        "-w",
        "--literally",
        "--stdin",
        stdin=f"{header}\nx\n".encode(),
    )
    git(repo, "update-ref", f"refs/tags/{name}", sha)
    return sha


@contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers.

    Yields its port and the list of connections accepted so far; closes all on exit.
    """
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        for conn in [*accepted, server]:
            conn.close()


def closed_by_peer(conn: socket.socket, within: float = 5.0) -> bool:
    """True when the other end closes ``conn`` within ``within`` seconds (what it sent is read)."""
    conn.settimeout(within)
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def run_report(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``devops-assets report ARGV``; return exit code, stdout and stderr."""
    parser = argparse.ArgumentParser(prog="devops-assets")
    report.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv])
    code = args.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skip when absent, except on CI where it must exist."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"shared data missing on CI: {path}")
        pytest.skip(f"shared data not present: {path}")
    return path


def _raw_date(iso: str) -> str:
    """``2024-01-02T03:04:05+05:30`` → ``<epoch> +0530`` (fast-import's raw format)."""
    when = datetime.fromisoformat(iso)
    minutes = int(when.utcoffset().total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{int(when.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _data(text: str) -> bytes:
    raw = text.encode("utf-8")
    return b"data %d\n" % len(raw) + raw + b"\n"


def _commit_block(row: dict, mark: int, marks: dict[str, int]) -> bytes:
    parents = row["parents"].split()
    message = row["subject"] + ("\n\n" + row["body"] if row.get("body") else "") + "\n"
    head = b"reset refs/heads/main\n" if not parents else b""
    author, committer = row["author"], row["committer"]
    lines = [
        f"commit refs/heads/main\nmark :{mark}\n",
        f"author {author} <{author}@example.invalid> {_raw_date(row['author_time'])}\n",
        f"committer {committer} <{committer}@example.invalid> {_raw_date(row['commit_time'])}\n",
    ]
    links = [f"from :{marks[parents[0]]}\n"] if parents else []
    links += [f"merge :{marks[p]}\n" for p in parents[1:]]
    return head + "".join(lines).encode() + _data(message) + "".join(links).encode()


def _tag_block(row: dict, marks: dict[str, int]) -> bytes:
    target = marks[row["target_sha"]]
    if row["kind"] == "lightweight":
        return f"reset refs/tags/{row['tag']}\nfrom :{target}\n\n".encode()
    head = f"tag {row['tag']}\nfrom :{target}\n"
    head += f"tagger Releaser <release@example.invalid> {_raw_date(row['tag_date'])}\n"
    return head.encode() + _data(f"Release {row['tag']}")


def rebuild_history(name: str, dest: Path) -> dict[str, str]:
    """Rebuild ``shared/data/git-histories/<name>`` as a bare repo; original → new sha.

    Same parent graph, author/committer times with offsets and messages; every
    tree is empty. Tags whose commit is not in commits.jsonl are skipped.
    """
    folder = shared_data("git-histories", name)
    rows = [json.loads(line) for line in (folder / "commits.jsonl").open(encoding="utf-8")]
    with (folder / "tags.csv").open(encoding="utf-8", newline="") as handle:
        tags = [t for t in csv.DictReader(handle) if t["reachable_from_head"] == "true"]
    marks: dict[str, int] = {}
    stream = []
    for mark, row in enumerate(reversed(rows), start=1):
        stream.append(_commit_block(row, mark, marks))
        marks[row["sha"]] = mark
    stream.append(f"reset refs/heads/main\nfrom :{marks[rows[0]['sha']]}\n\n".encode())
    stream += [_tag_block(tag, marks) for tag in tags]
    repo = init_repo(dest, bare=True)
    marks_file = dest / "marks"
    git(repo, "fast-import", "--quiet", f"--export-marks={marks_file}", stdin=b"".join(stream))
    by_mark = dict(line.split() for line in marks_file.read_text().splitlines())
    return {sha: by_mark[f":{mark}"] for sha, mark in marks.items()}


UNICODE_SUBJECT = "feat(i18n): bump → 1.1 ✨ 日本語 and émoji 🚀"
CRLF_MESSAGE = "fix: windows line endings\r\n\r\nline one\r\nline two\r\n\r\nReviewed-by: Cy\r\n"
HUGE_BODY = "x" * 1_000_000


UNICODE_MESSAGE = (
    f"{UNICODE_SUBJECT}\n\nBody text.\n\n"
    "Signed-off-by: Ada <ada@example.invalid>\nCo-authored-by: Bé <be@example.invalid>\n"
)
# name, message, parent names (first parent first), author time, committer time
ODD_COMMITS = [
    ("root", "chore: root", (), "2024-01-01T10:00:00+02:00", "2024-01-01T12:30:00-05:00"),
    ("unicode", UNICODE_MESSAGE, ("root",), "2024-01-02T09:00:00+05:30", None),
    ("empty", b"", ("unicode",), "2024-01-03T09:00:00+00:00", None),
    ("huge", f"docs: huge\n\n{HUGE_BODY}\n", ("empty",), "2024-01-04T09:00:00-08:00", None),
    ("crlf", CRLF_MESSAGE, ("huge",), "2024-01-05T09:00:00+01:00", None),
    ("side1", "feat: side one", ("unicode",), "2024-01-03T11:00:00Z", None),
    ("side2", "feat: side two", ("side1",), "2024-01-03T12:00:00Z", None),
    ("third1", "feat: third", ("empty",), "2024-01-04T12:00:00Z", None),
    ("octopus", "Merge side and third", ("crlf", "side2", "third1"), "2024-01-06T09:00:00Z", None),
    ("orphan", "docs: site", (), "2024-01-07T09:00:00+00:00", None),
]
ODD_BRANCHES = {"main": "octopus", "side": "side2", "third": "third1", "gh-pages": "orphan"}


def build_odd_repo(path: Path) -> dict[str, str]:
    """A repository of awkward cases; returns a name → sha (or object id) map.

    main:     root ─ unicode ─ empty ─ huge ─ crlf ─ octopus(crlf, side2, third1)
    side:     unicode ─ side1 ─ side2  (annotated tag ``v1.0.0-rc1`` on side1)
    third:    empty ─ third1
    gh-pages: orphan, a root commit unrelated to main
    """
    repo = init_repo(path)
    sha: dict[str, str] = {}
    for name, message, parents, when, committed in ODD_COMMITS:
        sha[name] = commit(repo, message, tuple(sha[p] for p in parents), when, committed)
    for branch, head in ODD_BRANCHES.items():
        git(repo, "update-ref", f"refs/heads/{branch}", sha[head])

    # Tags: annotated on a side branch, lightweight on main, nested, on a tree and a blob.
    tagger = {"GIT_COMMITTER_DATE": "2024-02-01T08:00:00-03:00"}
    git(repo, "tag", "-a", "-m", "release candidate", "v1.0.0-rc1", sha["side1"], **tagger)
    git(repo, "tag", "v1.0.0", sha["octopus"])
    git(repo, "tag", "-a", "-m", "nested", "v1.0.0-nested", "v1.0.0-rc1", **tagger)
    sha["tree"] = git(repo, "rev-parse", f"{sha['root']}^{{tree}}")
    sha["blob"] = git(repo, "hash-object", "-w", "--stdin", stdin=b"hello\n")
    git(repo, "tag", "tree-light", sha["tree"])
    git(repo, "tag", "-a", "-m", "a tree", "tree-annotated", sha["tree"], **tagger)
    git(repo, "tag", "blob-light", sha["blob"])
    return sha
