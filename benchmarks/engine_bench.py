"""``python -m benchmarks engine``: the metric engine on a large synthetic history.

The history (``benchmarks.synthetic``, seeded) is generated into arrays, not
timed. Two steps, each timed against a reference in this process:

1. attribution: ``lineage.claim`` over the graph with the heads of one
   environment's deployments (deployed order, heads computed beforehand), per
   environment. The reference runs on the same graph written as a real bare
   repository with ``git fast-import`` and then ``git gc`` (repacked, with a
   commit-graph, as a maintained repository is; fast-import's own pack makes
   git's walk about three times slower), neither timed: a plain
   ``git rev-list --parents <main tip>``, timed from spawning git to having its
   whole output split into a dict of sha -> parent shas in Python. It walks
   the graph once, as each environment's claim does. git alone (spawn, walk,
   output read as bytes) is printed too. It is checked (not timed) that git's
   dict is our graph, and that each environment claimed exactly the commits
   ``git rev-list --count`` finds behind its heads.
2. metrics: ``measure()`` for every metric of both environments over the
   7/30/90-day windows ending at the history's end and every calendar week and
   month of it, against the same figures in DuckDB SQL (``benchmarks.engine_sql``,
   which takes our lineage and failure flags as inputs and says why). Every
   value is compared (relative 1e-9); a mismatch exits 1 naming metric and period.
   For reading the ratio, also printed (information only): ``measure()`` with
   the cyclic garbage collector off, and DuckDB on one thread and on its own
   tables instead of pandas frames.

Memory: "peak" is tracemalloc's peak of Python allocations (numpy's included)
during one more run of our side; git's is its own peak RSS in one more run,
started from a fresh small interpreter (``RUSAGE_CHILDREN``; a child forked from
this large process would report this process's size). DuckDB's allocations
are native, so for both metric sides the process's RSS high-water mark during
one run is printed (Linux: reset through /proc/self/clear_refs), beside what
was resident before it.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import engine_sql
from benchmarks.git_steps import git_output
from benchmarks.synthetic import ENVIRONMENTS, SMALL, Sizes, Synthetic, generate
from benchmarks.table import render
from benchmarks.timing import (
    MIB,
    ResultMismatch,
    Row,
    best_time,
    positive_int,
    process_peak_mib,
    traced_peak_mib,
)
from devops_assets.domain.engine import METRICS, deployed, measure
from devops_assets.domain.lineage import CommitGraph, claim
from devops_assets.domain.models import MetricValue
from devops_assets.domain.periods import Period, calendar_buckets, rolling_windows
from devops_assets.domain.settings import MetricSettings
from devops_assets_tests.git_fixtures import GIT_ENV

WINDOWS = (7, 30, 90)
GRAINS = ("week", "month")
REL_TOL = 1e-9
ATTRIBUTION_GOAL, METRICS_GOAL, SECONDS_GOAL, PEAK_GOAL_BYTES = 1.5, 2.0, 2.0, 10**9
_CHUNK = 20_000  # commits per write to git fast-import
_ENV = {**GIT_ENV, "LC_ALL": "C"}  # no user or system git config, as git_steps runs git


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    full = Sizes()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks engine",
        description="The metric engine on a seeded synthetic history, against git and DuckDB.",
    )
    parser.add_argument("--commits", type=positive_int, help=f"commits ({full.commits:,})")
    parser.add_argument(
        "--deployments",
        type=positive_int,
        help=f"deployments, both environments ({full.deployments:,})",
    )
    parser.add_argument("--builds", type=positive_int, help=f"builds ({full.builds:,})")
    parser.add_argument("--incidents", type=positive_int, help=f"incidents ({full.incidents:,})")
    parser.add_argument(
        "--small",
        action="store_true",
        help=f"tiny defaults for a smoke run ({SMALL.commits:,} commits, "
        f"{SMALL.deployments} deployments, {SMALL.builds:,} builds, {SMALL.incidents} incidents)",
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (1)")
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed runs per side (3)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also cProfile one measure() run and print its N costliest functions",
    )
    args = parser.parse_args(argv)
    preset = SMALL if args.small else full
    args.sizes = Sizes(
        *(getattr(args, name) or getattr(preset, name) for name in Sizes.__dataclass_fields__)
    )
    return args


def bench_periods(synthetic: Synthetic, settings: MetricSettings) -> list[Period]:
    """Rolling windows ending at the history's end, then every calendar week and month of it."""
    periods = rolling_windows(synthetic.end, WINDOWS)
    for grain in GRAINS:
        periods += calendar_buckets(grain, synthetic.start, synthetic.end, settings)
    return periods


# --- memory -------------------------------------------------------------------------------


def _status_mib(field: str) -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def rss_high_water(run: Callable[[], Any]) -> tuple[float, float] | None:
    """(resident MiB before, RSS high-water MiB during) one run of ``run``; None where
    the high-water mark cannot be reset (not Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _status_mib("VmRSS")
    run()
    during = _status_mib("VmHWM")
    return None if before is None or during is None else (before, during)


def _rss_text(measured: tuple[float, float] | None) -> str:
    if measured is None:
        return "n/a (no /proc/self/clear_refs)"
    before, during = measured
    return f"{during:,.0f} MiB ({before:,.0f} MiB resident before)"


# --- step 1: attribution ------------------------------------------------------------------


def _fast_import_stream(synthetic: Synthetic) -> Iterator[bytes]:
    """The graph as a fast-import stream: commit c is mark c + 1, every tree empty."""
    graph = synthetic.graph
    author = graph.times("author_time").astype("int64").tolist()
    committed = graph.times("commit_time").astype("int64").tolist()
    chunk: list[str] = []
    for c, above in enumerate(graph.parents):
        message = graph.message(c)
        links = "".join(
            [f"from :{above[0] + 1}\n", *(f"merge :{p + 1}\n" for p in above[1:])] if above else []
        )
        chunk.append(
            ("" if above else "reset refs/heads/main\n")
            + f"commit refs/heads/main\nmark :{c + 1}\n"
            f"author Ada <ada@example.invalid> {author[c]} +0000\n"
            f"committer Bob <bob@example.invalid> {committed[c]} +0000\n"
            f"data {len(message.encode())}\n{message}\n{links}\n"
        )
        if len(chunk) == _CHUNK:
            yield "".join(chunk).encode()
            chunk = []
    chunk.append(f"reset refs/heads/main\nfrom :{int(synthetic.main[-1]) + 1}\n\n")
    yield "".join(chunk).encode()


def write_repository(synthetic: Synthetic, dest: Path) -> list[str]:
    """Write the graph as a bare repository at ``dest``; git's sha of each commit number."""
    dest.mkdir(parents=True)
    git_output(dest, "init", "--quiet", "--bare", "--initial-branch=main")
    marks = dest / "marks"
    with tempfile.TemporaryFile() as errors:
        importer = subprocess.Popen(  # noqa: S603 (argument list, no shell)
            ["git", "-C", str(dest), "fast-import", "--quiet", f"--export-marks={marks}"],
            stdin=subprocess.PIPE,
            stderr=errors,
            env=_ENV,
        )
        for block in _fast_import_stream(synthetic):
            importer.stdin.write(block)
        importer.stdin.close()
        if importer.wait():
            errors.seek(0)
            raise RuntimeError(f"git fast-import failed: {errors.read().decode(errors='replace')}")
    shas = [""] * len(synthetic.graph)
    for line in marks.read_text().splitlines():
        mark, sha = line.split()
        shas[int(mark[1:]) - 1] = sha
    return shas


def rev_list_parents(repo: Path, tip: str) -> dict[str, list[str]]:
    """The reference: ``git rev-list --parents <tip>`` read in full and split into
    sha -> parent shas."""
    out = git_output(repo, "rev-list", "--parents", tip)
    parents: dict[str, list[str]] = {}
    for line in out.decode("ascii").splitlines():
        sha, *above = line.split(" ")
        parents[sha] = above
    return parents


# A fresh small interpreter starts git, so git's peak RSS is its own: a child forked
# from this large process would report this process's resident size as its peak.
_CHILD_PEAK = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def git_peak_mib(repo: Path, *args: str) -> float:
    """Peak resident memory (MiB) of one ``git -C repo ARGS`` run, output discarded."""
    done = subprocess.run(  # noqa: S603 (argument list, no shell)
        [sys.executable, "-c", _CHILD_PEAK, "git", "-C", str(repo), *args],
        capture_output=True,
        env=_ENV,
        check=True,
    )
    peak = int(done.stdout)
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def _check_same_graph(graph: CommitGraph, shas: list[str], by_git: dict[str, list[str]]) -> None:
    if len(by_git) != len(graph):
        raise ResultMismatch(f"git rev-list listed {len(by_git)} commits, graph {len(graph)}")
    for c, above in enumerate(graph.parents):
        if by_git.get(shas[c]) != [shas[p] for p in above]:
            raise ResultMismatch(f"commit {c}: git's parents differ from the graph's")


def _check_claimed(repo: Path, shas: list[str], heads: list[int | None], claimed: int) -> None:
    """Our claim took exactly the commits git finds behind the environment's heads."""
    wanted = {shas[h] for h in heads if h is not None}
    listed = git_output(repo, "rev-list", "--count", "--stdin", stdin="\n".join(wanted).encode())
    if int(listed) != claimed:
        raise ResultMismatch(f"claim attributed {claimed} commits, git finds {int(listed)}")


def bench_attribution(synthetic: Synthetic, workdir: Path, repeat: int) -> list[Row]:
    """Write the repository (not timed), time the git reference once for both
    environments and ``claim`` per environment; one row per environment."""
    graph = synthetic.graph
    start = time.perf_counter()
    repo = workdir / "synthetic.git"
    shas = write_repository(synthetic, repo)
    written = time.perf_counter() - start
    start = time.perf_counter()
    git_output(repo, "gc", "--quiet")
    graph_file = (repo / "objects" / "info" / "commit-graph").exists()
    print(
        f"wrote it with git fast-import in {written:.1f} s, git gc in "
        f"{time.perf_counter() - start:.1f} s (commit-graph: {'yes' if graph_file else 'no'}); "
        "not timed"
    )
    tip = shas[int(synthetic.main[-1])]
    bare_s, _ = best_time(lambda: git_output(repo, "rev-list", "--parents", tip), repeat)
    reference_s, by_git = best_time(lambda: rev_list_parents(repo, tip), repeat)
    _check_same_graph(graph, shas, by_git)
    del by_git
    parse_peak = traced_peak_mib(lambda: rev_list_parents(repo, tip))
    git_peak = git_peak_mib(repo, "rev-list", "--parents", tip)
    print(
        f"reference: git rev-list --parents <main tip> + split into a dict of {len(graph):,} "
        f"shas -> parents, {reference_s:.3f} s (spawn to dict; git alone {bare_s:.3f} s); "
        f"git peak RSS {git_peak:,.0f} MiB (own run, output discarded), the dict's "
        f"tracemalloc peak {parse_peak:,.0f} MiB"
    )
    rows = []
    for env in ENVIRONMENTS:
        mine = deployed(synthetic.history.deployments, env)
        heads = [graph.index.get(d.commit_sha) if d.commit_sha else None for d in mine]
        ours_s, claims = best_time(lambda heads=heads: _cold_claim(graph, heads), repeat)
        claimed = len(claims.order)
        del claims
        _check_claimed(repo, shas, heads, claimed)
        peak = traced_peak_mib(lambda heads=heads: _cold_claim(graph, heads))
        row = Row(f"attribution {env}", ours_s, reference_s, peak, process_peak_mib())
        print(
            f"attribution {env}: claim() of {len(heads):,} deployed heads, {claimed:,} commits "
            f"claimed (= git rev-list --count of the heads); ours {ours_s:.3f} s, "
            f"tracemalloc peak {peak:,.0f} MiB; reference {reference_s:.3f} s; "
            f"ratio {row.ratio:.2f} (to git alone {ours_s / bare_s:.2f})"
        )
        rows.append(row)
    return rows


# --- step 2: metrics ----------------------------------------------------------------------


def _describe(period: Period) -> str:
    return f"{period.grain} {period.start:%Y-%m-%d %H:%M}..{period.end:%Y-%m-%d %H:%M}"


def _same(ours: float | None, theirs: float | None) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return math.isclose(ours, theirs, rel_tol=REL_TOL, abs_tol=0.0)


def cross_check(
    ours: list[MetricValue], theirs: dict[tuple[str, int, str], Any], periods: list[Period]
) -> tuple[int, int]:
    """Compare every value; (values compared, values None on both sides). Raises
    ResultMismatch naming each metric, environment and period that disagree, or
    that one side gives and the other does not."""
    number = {(p.grain, p.start, p.end): i for i, p in enumerate(periods)}
    mismatches, empty, seen = [], 0, set()
    for value in ours:
        key = (value.environment, number[(value.grain, value.window_start, value.window_end)])
        where = f"{value.metric} {value.environment} {_describe(periods[key[1]])}"
        seen.add((*key, value.metric))
        other = theirs.get((*key, value.metric), "absent")
        if other == "absent" or not _same(value.value, other):
            mismatches.append(f"{where}: ours {value.value!r}, DuckDB {other!r}")
        empty += value.value is None
    for env, pid, metric in sorted(set(theirs) - seen):
        mismatches.append(f"{metric} {env} {_describe(periods[pid])}: ours absent, DuckDB gives it")
    if mismatches:
        shown = "\n  ".join(mismatches[:20])
        more = f"\n  … and {len(mismatches) - 20} more" if len(mismatches) > 20 else ""
        raise ResultMismatch(f"{len(mismatches)} values differ:\n  {shown}{more}")
    return len(ours), empty


def _cold_claim(graph, heads):
    """``claim`` with the graph's derived lists (first parents) built again inside it."""
    graph.drop_caches()
    return claim(graph, heads)


def bench_metrics(synthetic: Synthetic, repeat: int) -> tuple[Row, dict[str, Any]]:
    """Time ``measure()`` and the DuckDB query on the same periods; check they agree."""
    settings = MetricSettings()
    periods = bench_periods(synthetic, settings)

    def ours() -> list[MetricValue]:
        synthetic.history.graph.drop_caches()  # each run derives everything, as a run does
        return measure(synthetic.history, settings, periods)

    ours_s, values = best_time(ours, repeat)
    peak = traced_peak_mib(ours)
    ours_rss = rss_high_water(ours)
    gc.disable()
    try:
        no_gc_s, _ = best_time(ours, repeat)
    finally:
        gc.enable()

    start = time.perf_counter()
    connection = engine_sql.connect(engine_sql.frames(synthetic, settings, periods))
    print(f"DuckDB input frames built in {time.perf_counter() - start:.1f} s (not timed)")
    sql_s, result = best_time(lambda: engine_sql.run(connection), repeat)
    sql_rss = rss_high_water(lambda: engine_sql.run(connection))
    threads = connection.execute("SELECT current_setting('threads')").fetchone()[0]
    compared, empty = cross_check(values, engine_sql.by_key(result), periods)
    connection.execute("SET threads = 1")
    one_thread_s, _ = best_time(lambda: engine_sql.run(connection), repeat)
    connection.execute(f"SET threads = {threads}")
    engine_sql.copy_to_tables(connection)
    native_s, _ = best_time(lambda: engine_sql.run(connection), repeat)
    connection.close()

    row = Row("metrics", ours_s, sql_s, peak, process_peak_mib())
    counts = {g: sum(p.grain == g for p in periods) for g in ("window", *GRAINS)}
    print(
        f"metrics: {len(periods)} periods ({counts['window']} rolling windows, "
        f"{counts['week']} weeks, {counts['month']} months) x {len(ENVIRONMENTS)} environments "
        f"x {len(METRICS)} metrics; ours measure() {ours_s:.3f} s, DuckDB SQL {sql_s:.3f} s "
        f"({threads} threads); ratio {row.ratio:.2f}"
    )
    print(
        f"metrics memory: measure() tracemalloc peak {peak:,.0f} MiB; process RSS high-water "
        f"during one run: ours {_rss_text(ours_rss)}, DuckDB {_rss_text(sql_rss)}"
    )
    print(
        f"information: measure() with the garbage collector off {no_gc_s:.3f} s; DuckDB on "
        f"1 thread {one_thread_s:.3f} s, on its own tables (copied from the frames, not timed) "
        f"{native_s:.3f} s"
    )
    print(
        f"cross-check: all {compared:,} values agree with DuckDB within rel {REL_TOL:g} "
        f"({empty:,} are None on both sides)"
    )
    return row, {"periods": periods, "settings": settings}


def print_goals(rows: list[Row]) -> None:
    """Each goal of the benchmark, met or missed (missing one is reported, not an error)."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print("goals:")
    for row in rows:
        if row.step.startswith("attribution"):
            ok = row.ratio <= ATTRIBUTION_GOAL
            print(f"  {row.step}: ours/git {row.ratio:.2f} <= {ATTRIBUTION_GOAL}: {verdict(ok)}")
        else:
            ok = row.ratio <= METRICS_GOAL
            print(f"  metrics: ours/DuckDB {row.ratio:.2f} <= {METRICS_GOAL:g}: {verdict(ok)}")
            ok = row.ours_s <= SECONDS_GOAL
            print(f"  metrics: measure() {row.ours_s:.2f} s <= {SECONDS_GOAL:g} s: {verdict(ok)}")
            limit = PEAK_GOAL_BYTES / MIB
            ok = row.peak_mib <= limit
            print(
                f"  metrics: measure() tracemalloc peak {row.peak_mib:,.0f} MiB <= 1 GB "
                f"({limit:,.0f} MiB): {verdict(ok)}"
            )


def print_profile(synthetic: Synthetic, context: dict[str, Any], top: int) -> None:
    """cProfile one ``measure()`` run: the ``top`` functions by own time and by cumulative."""
    profiler = cProfile.Profile()
    profiler.runcall(measure, synthetic.history, context["settings"], context["periods"])
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(top)
        lines = text.getvalue().splitlines()
        first = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(f"\nprofile of one measure() run, by {order}:")
        print("\n".join(line for line in lines[first:] if line.strip()))


def main(argv: list[str] | None = None) -> int:
    """Generate, time both steps, print the table and the goals; 1 when the sides disagree."""
    args = parse_args(argv)
    sizes = args.sizes
    start = time.perf_counter()
    synthetic = generate(sizes, args.seed)
    print(
        f"synthetic history (seed {args.seed}): {sizes.commits:,} commits "
        f"({synthetic.merges():,} merges, {synthetic.main.size:,} on the main line), "
        f"{sizes.deployments:,} deployments, {sizes.builds:,} builds, "
        f"{sizes.incidents:,} incidents, {synthetic.start:%Y-%m-%d} to "
        f"{synthetic.end:%Y-%m-%d}; generated in {time.perf_counter() - start:.1f} s "
        f"(not timed) at {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="devops-assets-engine-bench-") as workdir:
            rows = bench_attribution(synthetic, Path(workdir), args.repeat)
        metrics_row, context = bench_metrics(synthetic, args.repeat)
    except ResultMismatch as exc:
        print(f"benchmarks engine: the sides disagree, not comparable: {exc}", file=sys.stderr)
        return 1
    rows.append(metrics_row)
    print()
    print(render(rows))
    print(
        "references: attribution = git rev-list --parents <main tip> read into a dict "
        "(spawn to dict); metrics = DuckDB SQL (benchmarks/engine_sql.py)."
    )
    print()
    print_goals(rows)
    if args.profile:
        print_profile(synthetic, context, args.profile)
    return 0
