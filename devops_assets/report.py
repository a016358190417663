"""``devops-assets report``: delivery metrics of any git repository or event files.

With ``--repo``, tags matching a glob (or every first-parent commit of a
branch) stand for production deployments. With ``--events DIR``, deployments,
commits, incidents and builds come from files in the schema of docs/events.md.
Either way the numbers come from the metric engine ``dora_metrics`` uses; this
module only wires the sources to it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path

from devops_assets.config import workspace_home
from devops_assets.domain.engine import BuildArrays, History, measure
from devops_assets.domain.health import human
from devops_assets.domain.lineage import CommitGraph
from devops_assets.domain.models import Build, Commit, Deployment, Incident, MetricValue
from devops_assets.domain.periods import GRAINS, Period, calendar_buckets
from devops_assets.domain.settings import (
    CHERRY_PICK_MODES,
    LEAD_TIME_STARTS,
    TIER_TABLES,
    WEEKDAYS,
    MetricSettings,
)
from devops_assets.sources.events import EventsError, load_events
from devops_assets.sources.git import (
    GitError,
    ensure_local,
    first_parent_chain,
    read_commits,
    read_patch_ids,
    read_tags,
)

ENVIRONMENT = "production"
ALL_BUILDS = "all"
COLUMNS = (
    "metric",
    "environment",
    "worker",
    "grain",
    "window_start",
    "window_end",
    "value",
    "unit",
    "tier",
)


class ReportError(ValueError):
    """The report's input (repository, dates, tag glob, branch) is unusable."""


EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)
MOST_PERIODS = 100_000  # --by day over 270 years; beyond that a typo is likelier than a wish


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 date or time from 1970 to 2999; one without an offset is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{option}: not an ISO 8601 date or time: {text!r}") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    try:
        inside = EARLIEST <= when < LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise ReportError(f"{option}: a time from 1970 to 2999, got {text!r}")
    return when


def tag_deployments(repo: str | Path, pattern: str) -> list[Deployment]:
    tags = read_tags(repo, pattern)
    if not tags:
        raise ReportError(f"no tag matches {pattern!r} in {repo}")
    worker = Path(repo).name
    return [
        Deployment(tag.name, worker, ENVIRONMENT, tag.time, tag.name, 100.0, tag.sha)
        for tag in tags
    ]


def _branch_deployments(commits: list[Commit], chain: list[str], repo) -> list[Deployment]:
    """Each first-parent commit is deployed at its committer time."""
    by_sha = {commit.sha: commit for commit in commits}
    worker = Path(repo).name
    return [
        Deployment(sha, worker, ENVIRONMENT, by_sha[sha].commit_time, sha, 100.0, sha)
        for sha in chain
    ]


def default_window(
    commits: list[Commit],
    deployments: list[Deployment],
    incidents: list[Incident] = (),
    builds: list[Build] = (),
) -> tuple[datetime, datetime]:
    """The whole history: from the earliest time of anything (the first commit, often),
    to one second after the latest deployment, incident or build (so the last one is
    inside the half-open window)."""
    events = [d.created_on for d in deployments]
    events += [t for i in incidents for t in (i.created_at, i.resolved_at) if t is not None]
    events += [t for b in builds for t in (b.created_on, b.stopped_on) if t is not None]
    if not events:
        raise ReportError("nothing to measure: no deployments, incidents or builds")
    times = events + [t for c in commits for t in (c.author_time, c.commit_time)]
    # A commit's clock may run ahead; the window ends after the last thing that happened.
    return min(times).astimezone(UTC), max(events).astimezone(UTC) + timedelta(seconds=1)


def report_periods(
    start: datetime, end: datetime, by: str | None, settings: MetricSettings
) -> list[Period]:
    """The whole window, then (with ``by``) each calendar day, week or month of it."""
    if not start < end:
        raise ReportError(f"window start {start.isoformat()} is not before end {end.isoformat()}")
    periods = [Period("window", start, end)]
    if by is not None:
        days = {"day": 1, "week": 7, "month": 28}[by]
        if (end - start).days / days > MOST_PERIODS:
            raise ReportError(
                f"--by {by} from {start.date()} to {end.date()} would be over {MOST_PERIODS:,} "
                "periods; narrow it with --since and --until"
            )
        periods += calendar_buckets(by, start, end, settings)
    return periods


def measure_repository(
    repo: str | Path,
    deploy_tags: str | None = None,
    deploy_branch: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    settings: MetricSettings | None = None,
    by: str | None = None,
) -> list[MetricValue]:
    """Every delivery metric of ``repo`` for ``[since, until)``, production only.

    Deployments are the tags matching ``deploy_tags`` (default ``v*``) or the
    first-parent commits of ``deploy_branch``. A missing bound defaults to the
    edge of the whole history (see ``default_window``). A repository has no
    incidents: failures come from reverts alone.
    """
    settings = settings or MetricSettings()
    if deploy_tags is not None and deploy_branch is not None:
        raise ReportError("give either deploy_tags or deploy_branch, not both")
    if deploy_branch is None:
        deployments = tag_deployments(repo, "v*" if deploy_tags is None else deploy_tags)
        commits = read_commits(repo)
    else:
        chain = first_parent_chain(repo, deploy_branch)
        commits = read_commits(repo, [deploy_branch])
        deployments = _branch_deployments(commits, chain, repo)
    if settings.cherry_picks == "patch_id":
        patch_ids = read_patch_ids(repo, [deploy_branch] if deploy_branch else None)
        commits = [replace(c, patch_id=patch_ids.get(c.sha)) for c in commits]
    first, last = default_window(commits, deployments)
    periods = report_periods(since or first, until or last, by, settings)
    history = History(CommitGraph(commits), deployments)
    values = measure(history, settings, periods, as_of=periods[0].end)
    return values or _nothing(periods)


def measure_events(
    directory: str | Path,
    since: datetime | None = None,
    until: datetime | None = None,
    settings: MetricSettings | None = None,
    by: str | None = None,
    build_environments: list[tuple[str, str]] = (),
) -> list[MetricValue]:
    """Every metric of every environment in the event files of ``directory``.

    Builds carry a branch, not an environment: ``build_environments`` maps branch
    globs to environments (first match wins); without it every build is measured
    under ``all``.
    """
    settings = settings or MetricSettings()
    events = load_events(directory)
    builds = list(events.builds)
    first, last = default_window(
        list(events.commits), list(events.deployments), list(events.incidents), builds
    )
    periods = report_periods(since or first, until or last, by, settings)
    grouped: dict[str, list[Build]] = {}
    for build in builds:
        env = _build_environment(build.branch, build_environments)
        if env is not None:
            grouped.setdefault(env, []).append(build)
    history = History(
        CommitGraph(events.commits),
        events.deployments,
        events.incidents,
        {env: BuildArrays.from_builds(found) for env, found in grouped.items()},
    )
    values = measure(history, settings, periods, as_of=periods[0].end)
    return values or _nothing(periods)


def _build_environment(branch: str, mapping: list[tuple[str, str]]) -> str | None:
    if not mapping:
        return ALL_BUILDS
    for glob, env in mapping:
        if fnmatchcase(branch, glob):
            return env
    return None


def _nothing(periods: list[Period]) -> list[MetricValue]:
    raise ReportError(
        f"nothing was deployed, built or opened between {periods[0].start.isoformat()} "
        f"and {periods[0].end.isoformat()}"
    )


def _rows(values: list[MetricValue]) -> list[dict]:
    return [
        {
            "metric": v.metric,
            "environment": v.environment,
            "worker": v.worker,
            "grain": v.grain,
            "window_start": v.window_start.isoformat(),
            "window_end": v.window_end.isoformat(),
            "value": _number(v),
            "unit": v.unit,
            "tier": v.tier,
        }
        for v in values
    ]


def _number(v: MetricValue) -> float | int | None:
    """Counts as whole numbers; other values rounded to the microsecond / 1e-9 ratio."""
    if v.value is None:
        return None
    if v.unit == "count":
        return int(v.value)
    return round(v.value, 9 if v.unit in ("ratio", "per_week") else 6)


def render(values: list[MetricValue], fmt: str) -> str:
    """The metrics as ``json``, ``csv`` or a ``table`` for people (one block per
    environment, worker and period, the DORA tier beside the value)."""
    if fmt == "json":
        return json.dumps({"metrics": _rows(values)}, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_rows(values))
        return out.getvalue().rstrip("\n")
    width = max(len(v.metric) for v in values)
    blocks: dict[tuple, list[MetricValue]] = {}
    for v in values:
        blocks.setdefault((v.environment, v.worker, v.window_start, v.window_end), []).append(v)
    lines: list[str] = []
    for (env, worker, start, end), block in blocks.items():
        scope = f"{env} ({worker})" if worker else env
        span = " → ".join(t.astimezone(UTC).isoformat() for t in (start, end))
        grain = block[0].grain
        label = f"{scope}, {span}" if grain == "window" else f"{scope}, {grain} {span}"
        lines += ([""] if lines else []) + [label]
        for v in block:
            tier = f"  [{v.tier}]" if v.tier else ""
            lines.append(f"  {v.metric:<{width}}  {human(v.value, v.unit)}{tier}")
    return "\n".join(lines)


def _refuse_empty(args: argparse.Namespace) -> None:
    """An empty ``--repo`` would mean the current folder, an empty glob no tag: say so."""
    given = (
        ("--repo", args.repo),
        ("--events", args.events),
        ("--deploy-tags", args.deploy_tags),
        ("--deploy-branch", args.deploy_branch),
    )
    for option, value in given:
        if value is not None and not value.strip():
            raise ReportError(f"{option}: must not be empty")
    if args.events is not None and (args.deploy_tags or args.deploy_branch):
        raise ReportError("--deploy-tags and --deploy-branch apply to --repo, not --events")
    if args.repo is not None and args.build_env:
        raise ReportError("--build-env applies to --events, not --repo")


def settings_from(args: argparse.Namespace) -> MetricSettings:
    """The engine's switches from the command line (docs/metrics.md)."""
    try:
        return MetricSettings(
            timezone=args.timezone,
            week_start=args.week_start,
            lead_time_start=args.lead_time_start,
            cherry_picks=args.cherry_picks,
            tiers=args.tiers,
        )
    except ValueError as exc:
        raise ReportError(f"--{str(exc).replace('_', '-')}") from None


def _build_env(text: str) -> tuple[str, str]:
    glob, sep, env = text.partition("=")
    if not sep or not glob.strip() or not env.strip():
        raise argparse.ArgumentTypeError(f"expected BRANCH_GLOB=ENVIRONMENT, got {text!r}")
    return glob.strip(), env.strip()


def run(args: argparse.Namespace) -> int:
    """Measure, print; exit code 2 with one line on stderr for bad input."""
    try:
        _refuse_empty(args)
        settings = settings_from(args)
        since = parse_time(args.since, "--since") if args.since else None
        until = parse_time(args.until, "--until") if args.until else None
        if args.events is not None:
            values = measure_events(
                args.events, since, until, settings, args.by, args.build_env or []
            )
        else:
            repo = ensure_local(args.repo, workspace_home() / "git-cache")
            values = measure_repository(
                repo, args.deploy_tags, args.deploy_branch, since, until, settings, args.by
            )
    except (ReportError, GitError, EventsError) as exc:
        print(f"devops-assets report: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    print(render(values, args.format))
    return 0


def add_parser(subparsers) -> None:
    """Add the ``report`` subcommand; sets ``args.run``."""
    parser = subparsers.add_parser(
        "report",
        help="DORA metrics of a git repository or of event files",
        description="Delivery metrics with no credentials: of a git repository (tags, or the "
        "first-parent commits of a branch, are the production deployments) or of event files "
        "(deployments, commits, incidents, builds; docs/events.md). Definitions: "
        "docs/metrics.md.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--repo", help="git repository path or clone URL")
    source.add_argument(
        "--events",
        metavar="DIR",
        help="folder with deployments.csv|json and optionally commits, incidents, builds",
    )
    deploys = parser.add_mutually_exclusive_group()
    deploys.add_argument(
        "--deploy-tags", metavar="GLOB", help="with --repo: tags that are deployments (default: v*)"
    )
    deploys.add_argument(
        "--deploy-branch",
        metavar="NAME",
        help="with --repo: every first-parent commit of this branch is a deployment, at its "
        "committer time",
    )
    parser.add_argument(
        "--build-env",
        metavar="GLOB=ENV",
        type=_build_env,
        action="append",
        help="with --events: builds of branches matching GLOB belong to ENV (repeatable; "
        "default: every build under 'all')",
    )
    parser.add_argument(
        "--since", metavar="ISO", help="window start, included (default: the earliest event)"
    )
    parser.add_argument(
        "--until",
        metavar="ISO",
        help="window end, excluded (default: just after the latest event)",
    )
    parser.add_argument(
        "--by", choices=GRAINS, help="also measure each calendar day, week or month of the window"
    )
    parser.add_argument("--timezone", default="UTC", help="IANA zone of days (default: UTC)")
    parser.add_argument("--week-start", choices=WEEKDAYS, default="monday")
    parser.add_argument(
        "--lead-time-start",
        choices=LEAD_TIME_STARTS,
        default="author_time",
        help="where a change's lead time starts (default: author_time)",
    )
    parser.add_argument(
        "--cherry-picks",
        choices=CHERRY_PICK_MODES,
        default="patch_id",
        help="count commits with one patch id as one change (default: patch_id)",
    )
    parser.add_argument(
        "--tiers", choices=TIER_TABLES, default="2023", help="DORA report of the tier labels"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (human units), json or csv (seconds, ratios); default: table",
    )
    parser.set_defaults(run=run)
