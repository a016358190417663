"""The commit graph of a commits file: what a commit's parents may be.

A commit names each parent once and never itself (checked per row, by
``_parents_of``), and no commit is its own ancestor (checked once the whole
file is read, by ``_no_parent_cycle``). No git history can break either.
"""

from __future__ import annotations

from devops_assets.domain.models import Commit
from devops_assets.sources._events_row import EventsError, _Row


def _parents_of(row: _Row, sha: str) -> tuple[str, ...]:
    """The ``parents`` of the commit ``sha``: shas of other commits, each given once."""
    parents = row.shas("parents")
    if sha in parents:
        raise row.fail("parents", "shas of other commits", row.cell("parents"))
    if len(parents) > 1 and len(set(parents)) < len(parents):
        raise row.fail("parents", "each parent once", row.cell("parents"))
    return parents


def _no_parent_cycle(
    commits: tuple[Commit, ...], rows: dict[str, int], file: str, unit: str
) -> None:
    """Refuse commits that are their own ancestors, which no git history can hold.

    Parents that are not in the file are allowed (a shallow history) and end the walk.
    A cycle has a parent below its child in the file and one above, so a file in the
    order of ``git log`` (or its reverse) needs only one pass. Otherwise one depth-first
    walk over the parents, on an explicit stack rather than recursion (a linear history
    is as deep as it is long), visits every commit and parent once. On a cycle, the
    commit of the cycle that comes first in the file is named.
    """
    position = {commit.sha: index for index, commit in enumerate(commits)}
    if _one_way(commits, position):
        return
    get = position.get
    state = bytearray(len(commits))  # 0 not seen, 1 on the current path, 2 done
    for root, commit in enumerate(commits):
        if state[root]:
            continue
        state[root] = 1
        path = [root]
        pending = [iter(commit.parents)]
        while pending:
            for parent in pending[-1]:
                index = get(parent)
                if index is None:
                    continue
                seen = state[index]
                if seen == 2:
                    continue
                if seen == 1:
                    sha = commits[min(path[path.index(index) :])].sha
                    raise EventsError(
                        f"{file}, {unit} {rows[sha]}, column parents: "
                        f"no cycle through its parents, got a cycle through {sha}"
                    )
                state[index] = 1
                path.append(index)
                pending.append(iter(commits[index].parents))
                break
            else:
                state[path.pop()] = 2
                pending.pop()


def _one_way(commits: tuple[Commit, ...], position: dict[str, int]) -> bool:
    """Whether every parent in the file is below its child, or every one above."""
    get = position.get
    below = above = False
    for index, commit in enumerate(commits):
        for parent in commit.parents:
            at = get(parent)
            if at is None:
                continue
            if at > index:
                below = True
            else:
                above = True
            if below and above:
                return False
    return True
