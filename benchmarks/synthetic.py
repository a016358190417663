"""A seeded synthetic delivery history of any size, generated straight into arrays.

No real history at hand has a million commits and a hundred thousand
deployments, and building one ``Commit`` or ``Build`` object each would time
the objects rather than the engine. So commits go straight into
``CommitGraph.from_arrays`` and builds into ``BuildArrays``; only deployments
and incidents, a hundred times fewer, are records.

Shape, over ``SPAN_DAYS`` days: a first-parent main line of which about half
the commits merge a feature branch (one commit, or several: geometric, mean 2)
forked a few main-line commits back, so about a quarter of all commits are
merges. Commits are numbered parents first (each branch just before its merge),
which is also the order ``git fast-import`` needs. Non-merge commits carry a
patch id, a few of them copied (cherry-picks); a few main-line commits revert
an earlier one in git's own wording. Deployments to production and staging
point at main-line commits and include rollbacks, hotfixes (by kind and by
message), retries of the same commit and failed ones. Every deployment and
incident time is a whole second and deployment times are all distinct, so no
tie-break rule decides a figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from devops_assets.domain.engine import BuildArrays, History
from devops_assets.domain.lineage import CommitGraph
from devops_assets.domain.models import Deployment, Incident

SPAN_DAYS = 730
START = datetime(2023, 1, 2, tzinfo=UTC)  # a Monday
DAY = 86_400
ENVIRONMENTS = ("production", "staging")
WORKERS = {"production": "api", "staging": "api-staging"}
PRODUCTION_SHARE = 0.4  # of deployments; the rest go to staging
MERGE_SHARE_OF_MAIN = 0.5  # main-line commits that merge a branch: ~25 % of all commits
MAX_BRANCH = 30
CHERRY_PICK_SHARE = 0.005  # of main-line non-merge commits
REVERT_SHARE = 0.002  # of main-line non-merge commits
# Cumulative thresholds of one uniform draw per deployment.
ROLLBACK, HOTFIX_KIND, HOTFIX_MESSAGE, RETRY, FAILED = 0.02, 0.035, 0.05, 0.10, 0.11
RESOLVED_SHARE, NAMED_SHARE, PRODUCTION_INCIDENTS = 0.92, 0.3, 0.8
BUILD_OUTCOMES, BUILD_ODDS = np.array([1, 0, -1], dtype=np.int8), [0.85, 0.10, 0.05]
COMMIT_MESSAGE, MERGE_MESSAGE = "change", "Merge feature branch"


@dataclass(frozen=True)
class Sizes:
    """How much history to generate."""

    commits: int = 1_000_000
    deployments: int = 100_000
    builds: int = 1_000_000
    incidents: int = 10_000


SMALL = Sizes(commits=4_000, deployments=400, builds=4_000, incidents=60)


@dataclass(frozen=True)
class Synthetic:
    """The generated history, its main line (commit numbers, oldest first) and its
    extent: ``start`` the earliest commit time, ``end`` one second after the last event."""

    history: History
    main: np.ndarray
    start: datetime
    end: datetime

    @property
    def graph(self) -> CommitGraph:
        return self.history.graph

    def merges(self) -> int:
        return sum(1 for above in self.graph.parents if len(above) > 1)


def generate(sizes: Sizes, seed: int = 1) -> Synthetic:
    """The whole synthetic history; the same ``sizes`` and ``seed`` give the same one."""
    rng = np.random.default_rng(seed)
    origin = int(START.timestamp())
    span = SPAN_DAYS * DAY
    graph, main, main_time = _commits(rng, sizes.commits, origin, span)
    deployments, deployed_at = _deployments(rng, sizes.deployments, graph, main, main_time)
    incidents, opened = _incidents(rng, sizes.incidents, deployments, deployed_at, origin, span)
    builds, stopped = _builds(rng, sizes.builds, origin, span)
    author = graph.times("author_time")
    last = max(main_time.max(), deployed_at.max(), np.ceil(stopped.max()), opened.max())
    return Synthetic(
        History(graph, deployments, incidents, builds),
        main,
        _instant(min(author.min(), origin)),
        _instant(last + 1),
    )


def _instant(epoch: float) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC)


def _hex_ids(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` random 40-digit hex strings (shas, patch ids)."""
    pool = rng.bytes(20 * count).hex()
    return [pool[i : i + 40] for i in range(0, 40 * count, 40)]


def _branch_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Commits of the branch each main-line commit merges (0: not a merge), so that
    the main line and its branches hold exactly ``n`` commits."""
    merges = rng.random(n) < MERGE_SHARE_OF_MAIN
    merges[0] = False
    length = np.where(merges, np.minimum(rng.geometric(0.5, n), MAX_BRANCH), 0)
    ends = np.cumsum(length + 1)
    blocks = int(np.searchsorted(ends, n)) + 1
    length = length[:blocks].copy()
    length[-1] -= ends[blocks - 1] - n
    return length


def _commits(
    rng: np.random.Generator, n: int, origin: int, span: int
) -> tuple[CommitGraph, np.ndarray, np.ndarray]:
    """The commit graph, the main line's commit numbers and their commit times."""
    length = _branch_lengths(rng, n)
    blocks = length.size
    size = length + 1
    main = np.cumsum(size) - 1  # each block: its branch commits, then the main-line commit
    block = np.repeat(np.arange(blocks), size)
    number = np.arange(n)
    pos = number - (main - length)[block]
    on_main = pos == length[block]
    back = np.minimum(rng.geometric(0.25, blocks), np.arange(blocks))
    fork = main[np.arange(blocks) - back]
    previous = np.concatenate(([-1], main[:-1]))
    first = np.where(on_main, previous[block], np.where(pos == 0, fork[block], number - 1))
    second = np.where(on_main & (length[block] > 0), number - 1, -1)

    steps = np.cumsum(rng.exponential(1.0, blocks))
    spread = (steps - steps[0]) / (steps[-1] - steps[0]) if blocks > 1 else np.zeros(1)
    main_time = origin + DAY + np.floor(spread * (span - 8 * DAY))
    landed = main_time[block]
    direct_age = np.minimum(np.floor(rng.lognormal(np.log(7200), 1.5, n)), 30 * DAY)
    step = np.minimum(np.floor(rng.lognormal(np.log(4 * 3600), 1.0, blocks)), 3 * DAY)
    branch_age = (length[block] - pos) * step[block]
    merge = on_main & (length[block] > 0)
    author = np.where(on_main, np.where(merge, landed, landed - direct_age), landed - branch_age)
    committed = np.where(
        on_main, landed, np.minimum(author + rng.integers(0, 3600, n), landed)
    ).astype(np.float64)

    shas = _hex_ids(rng, n)
    patch_ids: list[str | None] = _hex_ids(rng, n)
    messages = [COMMIT_MESSAGE] * n
    for c in np.flatnonzero(merge).tolist():
        patch_ids[c] = None
        messages[c] = MERGE_MESSAGE
    plain_main = np.flatnonzero(on_main & ~merge)
    plain_main = plain_main[plain_main >= 100]
    for c in rng.choice(plain_main, int(plain_main.size * CHERRY_PICK_SHARE), replace=False):
        source = max(0, int(c - rng.integers(1, 2000)))
        if patch_ids[source] is not None:
            patch_ids[int(c)] = patch_ids[source]
    for c in rng.choice(plain_main, int(plain_main.size * REVERT_SHARE), replace=False):
        target = int(main[max(0, block[c] - int(rng.integers(1, 20)))])
        messages[int(c)] = f'Revert "{COMMIT_MESSAGE}"\n\nThis reverts commit {shas[target]}.\n'

    parents = [
        () if a < 0 else (a,) if b < 0 else (a, b)
        for a, b in zip(first.tolist(), second.tolist(), strict=True)
    ]
    graph = CommitGraph.from_arrays(
        shas, parents, author.astype(np.float64), committed, patch_ids, messages
    )
    return graph, main, main_time


def _deployments(
    rng: np.random.Generator,
    n: int,
    graph: CommitGraph,
    main: np.ndarray,
    main_time: np.ndarray,
) -> tuple[list[Deployment], np.ndarray]:
    """Deployments in time order, each of the newest main-line commit a little
    before it (staging sooner than production), some of them rollbacks, hotfixes,
    retries of the previous commit or failures; and their times."""
    first, last = int(main_time[0]) + 60, int(main_time[-1]) + DAY
    if last - first < 2 * n:
        raise ValueError(f"{n} deployments do not fit in {SPAN_DAYS} days at one a second")
    at = np.sort(rng.integers(first, last - n, n)) + np.arange(n)  # distinct whole seconds
    production = rng.random(n) < PRODUCTION_SHARE
    lag = np.where(production, rng.integers(0, 6 * 3600, n), rng.integers(0, 1800, n))
    head = main[np.maximum(np.searchsorted(main_time, at - lag, "right") - 1, 0)]
    draw = rng.random(n)
    back = rng.integers(2, 5, n)
    served: dict[str, list[tuple[str, str]]] = {env: [] for env in ENVIRONMENTS}
    deployments = []
    for i in range(n):
        env = ENVIRONMENTS[0] if production[i] else ENVIRONMENTS[1]
        earlier = served[env]
        sha, version = graph.shas[head[i]], f"v{i:07d}"
        kind, status, message = "deploy", "success", "deploy"
        r = draw[i]
        if r < ROLLBACK and len(earlier) > back[i]:
            (sha, version), kind, message = earlier[-back[i]], "rollback", "rollback"
        elif ROLLBACK <= r < HOTFIX_KIND:
            kind = "hotfix"
        elif HOTFIX_KIND <= r < HOTFIX_MESSAGE:
            message = "Hotfix: restore checkout"
        elif HOTFIX_MESSAGE <= r < RETRY and earlier:
            sha = earlier[-1][0]
        elif RETRY <= r < FAILED:
            status = "failure"
        if status == "success":
            earlier.append((sha, version))
        deployments.append(
            Deployment(
                f"dep-{i:07d}",
                WORKERS[env],
                env,
                datetime.fromtimestamp(int(at[i]), UTC),
                version,
                100.0,
                sha,
                kind=kind,
                message=message,
                status=status,
            )
        )
    return deployments, at.astype(np.float64)


def _incidents(
    rng: np.random.Generator,
    n: int,
    deployments: list[Deployment],
    deployed_at: np.ndarray,
    origin: int,
    span: int,
) -> tuple[list[Incident], np.ndarray]:
    """Incidents (most in production, most resolved, some naming the deployment that
    caused them) and their opening times."""
    opened = rng.integers(origin + 2 * DAY, origin + span, n)
    took = np.maximum(60, np.floor(rng.lognormal(np.log(7200), 1.2, n))).astype(np.int64)
    resolved = rng.random(n) < RESOLVED_SHARE
    named = rng.random(n) < NAMED_SHARE
    production = rng.random(n) < PRODUCTION_INCIDENTS
    back = rng.integers(0, 3, n)
    environment = np.array([d.environment for d in deployments])
    by_env = {env: np.flatnonzero(environment == env) for env in ENVIRONMENTS}
    times = {env: deployed_at[mine] for env, mine in by_env.items()}
    incidents = []
    for j in range(n):
        env = ENVIRONMENTS[0] if production[j] else ENVIRONMENTS[1]
        cause = None
        if named[j]:
            before = int(np.searchsorted(times[env], opened[j])) - 1 - int(back[j])
            cause = deployments[by_env[env][before]].deployment_id if before >= 0 else None
        incidents.append(
            Incident(
                f"inc-{j:06d}",
                env,
                datetime.fromtimestamp(int(opened[j]), UTC),
                datetime.fromtimestamp(int(opened[j] + took[j]), UTC) if resolved[j] else None,
                cause,
            )
        )
    return incidents, opened.astype(np.float64)


def _builds(
    rng: np.random.Generator, n: int, origin: int, span: int
) -> tuple[dict[str, BuildArrays], np.ndarray]:
    """Finished builds split over both environments (1-10 minutes, a few of unknown
    duration), and every build's stop time."""
    stopped = origin + rng.uniform(DAY, span, n)
    outcome = rng.choice(BUILD_OUTCOMES, n, p=BUILD_ODDS)
    duration = rng.uniform(60.0, 600.0, n)
    duration[rng.random(n) < 0.002] = np.nan
    # about a third of the failures rescued by a retry within the hour: flaky
    rescued = np.where(
        (outcome == 0) & (rng.random(n) < 0.3), stopped + rng.uniform(60.0, 3600.0, n), np.nan
    )
    production = rng.random(n) < 0.5
    builds = {
        env: BuildArrays.sorted(stopped[keep], outcome[keep], duration[keep], rescued[keep])
        for env, keep in zip(ENVIRONMENTS, (production, ~production), strict=True)
    }
    return builds, stopped
