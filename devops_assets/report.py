"""``devops-assets report``: delivery metrics of any git repository, no credentials.

Tags matching a glob (or every first-parent commit of a branch) stand for
production deployments; the numbers come from the same domain functions the
``dora_metrics`` asset uses. This module only wires the git source to them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devops_assets.config import workspace_home
from devops_assets.domain.health import human
from devops_assets.domain.metrics import delivery_metrics
from devops_assets.domain.models import Commit, Deployment, MetricValue
from devops_assets.sources.git import (
    GitError,
    ensure_local,
    first_parent_chain,
    read_commits,
    read_tags,
)

ENVIRONMENT = "production"
COLUMNS = ("metric", "environment", "window_start", "window_end", "value", "unit")


class ReportError(ValueError):
    """The report's input (repository, dates, tag glob, branch) is unusable."""


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 date or time; one without an offset is taken as UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{option}: not an ISO 8601 date or time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


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
    commits: list[Commit], deployments: list[Deployment]
) -> tuple[datetime, datetime]:
    """The whole history: the earliest author or committer time, to one second
    after the latest commit or deployment time (so the last one is inside the
    half-open window)."""
    times = [t for c in commits for t in (c.author_time, c.commit_time)]
    times += [d.created_on for d in deployments]
    return min(times).astimezone(UTC), max(times).astimezone(UTC) + timedelta(seconds=1)


def measure_repository(
    repo: str | Path,
    deploy_tags: str | None = None,
    deploy_branch: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[MetricValue]:
    """The five delivery metrics of ``repo`` for ``[since, until)``, production only.

    Deployments are the tags matching ``deploy_tags`` (default ``v*``) or the
    first-parent commits of ``deploy_branch``. A missing bound defaults to the
    edge of the whole history (see ``default_window``).
    """
    if deploy_tags is not None and deploy_branch is not None:
        raise ReportError("give either deploy_tags or deploy_branch, not both")
    if deploy_branch is None:
        deployments = tag_deployments(repo, "v*" if deploy_tags is None else deploy_tags)
        commits = read_commits(repo)
    else:
        chain = first_parent_chain(repo, deploy_branch)
        commits = read_commits(repo, [deploy_branch])
        deployments = _branch_deployments(commits, chain, repo)
    first, last = default_window(commits, deployments)
    start, end = since or first, until or last
    if not start < end:
        raise ReportError(f"window start {start.isoformat()} is not before end {end.isoformat()}")
    return delivery_metrics(commits, deployments, start, end, ENVIRONMENT)


def _rows(values: list[MetricValue]) -> list[dict]:
    return [
        {
            "metric": v.metric,
            "environment": v.environment,
            "window_start": v.window_start.isoformat(),
            "window_end": v.window_end.isoformat(),
            "value": _number(v),
            "unit": v.unit,
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
    """The metrics as ``json``, ``csv`` or a ``table`` for people."""
    if fmt == "json":
        return json.dumps({"metrics": _rows(values)}, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_rows(values))
        return out.getvalue().rstrip("\n")
    width = max(len(v.metric) for v in values)
    head = values[0]
    start, end = (t.astimezone(UTC).isoformat() for t in (head.window_start, head.window_end))
    lines = [f"{ENVIRONMENT}, {start} → {end}"]
    lines += [f"{v.metric:<{width}}  {human(v.value, v.unit)}" for v in values]
    return "\n".join(lines)


def _refuse_empty(args: argparse.Namespace) -> None:
    """An empty ``--repo`` would mean the current folder, an empty glob no tag: say so."""
    given = (
        ("--repo", args.repo),
        ("--deploy-tags", args.deploy_tags),
        ("--deploy-branch", args.deploy_branch),
    )
    for option, value in given:
        if value is not None and not value.strip():
            raise ReportError(f"{option}: must not be empty")


def run(args: argparse.Namespace) -> int:
    """Measure, print; exit code 2 with one line on stderr for bad input."""
    try:
        _refuse_empty(args)
        since = parse_time(args.since, "--since") if args.since else None
        until = parse_time(args.until, "--until") if args.until else None
        repo = ensure_local(args.repo, workspace_home() / "git-cache")
        values = measure_repository(repo, args.deploy_tags, args.deploy_branch, since, until)
    except (ReportError, GitError) as exc:
        print(f"devops-assets report: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    print(render(values, args.format))
    return 0


def add_parser(subparsers) -> None:
    """Add the ``report`` subcommand; sets ``args.run``."""
    parser = subparsers.add_parser(
        "report",
        help="delivery metrics (deployments, lead time) of a git repository",
        description="Delivery metrics of any git repository, with no credentials: tags (or "
        "the first-parent commits of a branch) are the production deployments. "
        "Definitions: docs/metrics.md.",
    )
    parser.add_argument("--repo", required=True, help="git repository path or clone URL")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--deploy-tags", metavar="GLOB", help="tags that are deployments (default: v*)"
    )
    source.add_argument(
        "--deploy-branch",
        metavar="NAME",
        help="every first-parent commit of this branch is a deployment, at its committer time",
    )
    parser.add_argument(
        "--since", metavar="ISO", help="window start, included (default: the earliest commit)"
    )
    parser.add_argument(
        "--until",
        metavar="ISO",
        help="window end, excluded (default: just after the latest commit or deployment)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (human units), json or csv (seconds, ratios); default: table",
    )
    parser.set_defaults(run=run)
