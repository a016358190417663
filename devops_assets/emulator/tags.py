"""The tags the releaser put on the repository by hand, before the platform measured deployments.

After each production deployment of kind ``deploy`` (never a rollback), the
releaser tags the deployed commit with an annotated ``vMAJOR.MINOR.PATCH`` a
few minutes later. The number follows the commits the deployment brings in:
a breaking change bumps MAJOR, a ``feat`` MINOR, anything else PATCH. The
imported code also carries one lightweight ``baseline`` tag.

Tagging happens after the timeline is played and draws from its generator
only then, so adding tags leaves every commit, build and deployment as it was.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from devops_assets.emulator import story
from devops_assets.emulator.records import SimCommit, SimDeployment, SimTag
from devops_assets.emulator.timeline import Timeline

BASELINE_TAG = "baseline"
FIRST_VERSION = (1, 0, 0)
TAG_DELAY_MINUTES = (2.0, 25.0)
BREAKING = re.compile(r"^[a-z]+(\([a-z0-9-]+\))?!:")
FEATURE = re.compile(r"^feat(\([a-z0-9-]+\))?!?:")


def tag_deployments(tl: Timeline) -> list[SimTag]:
    """Every tag of the repository at the end of the history, oldest first.

    A deployment whose tag would fall after the end has none yet: the
    releaser had not got round to it.
    """
    root = tl.commits[0]
    tags = [SimTag(BASELINE_TAG, root.mark, root.commit_time)]
    tagged: set[int] = set()
    version: tuple[int, int, int] | None = None
    for deployment in _production_deploys(tl):
        brought = _new_commits(tl, deployment.mark, tagged)
        if not brought:
            continue
        version = _bump(version, brought)
        when = deployment.created_on + tl.minutes(*TAG_DELAY_MINUTES)
        if when >= tl.end:
            break
        tags.append(_annotated(deployment, version, when, len(brought)))
    return tags


def _production_deploys(tl: Timeline) -> list[SimDeployment]:
    return sorted(
        (d for d in tl.deployments if d.env.name == "production" and d.kind == "deploy"),
        key=lambda d: d.created_on,
    )


def _new_commits(tl: Timeline, mark: int, tagged: set[int]) -> list[SimCommit]:
    """The commits reachable from ``mark`` that no earlier tag contains; marks them tagged."""
    found, todo = [], [mark]
    while todo:
        current = todo.pop()
        if current in tagged:
            continue
        tagged.add(current)
        commit = tl.commits[current - 1]
        found.append(commit)
        todo.extend(commit.parents)
    return found


def _bump(version: tuple[int, int, int] | None, brought: list[SimCommit]) -> tuple[int, int, int]:
    if version is None:
        return FIRST_VERSION
    major, minor, patch = version
    if any(BREAKING.match(c.subject) or "BREAKING CHANGE:" in c.body for c in brought):
        return major + 1, 0, 0
    if any(FEATURE.match(c.subject) for c in brought):
        return major, minor + 1, 0
    return major, minor, patch + 1


def _annotated(
    deployment: SimDeployment, version: tuple[int, int, int], when: datetime, commits: int
) -> SimTag:
    name = "v{}.{}.{}".format(*version)
    tagger = story.RELEASER
    deployed = deployment.created_on.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    message = f"{deployment.env.worker} {name}\n\nDeployed to production {deployed}; "
    message += f"{commits} new commit{'s' if commits != 1 else ''}.\n"
    when = when.replace(microsecond=0).astimezone(tagger.tz)
    return SimTag(name, deployment.mark, when, tagger, message, deployment.id)
