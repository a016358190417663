"""The simulated history as events in time order, before anything is written.

A :class:`Timeline` holds a clock-ordered queue of actions (a developer
commits, a build stops, someone rolls back) and the records those actions
leave behind. Commits are numbered by fast-import marks until git gives them
their shas. Nothing here touches the disk or the real clock.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devops_assets.emulator import story
from devops_assets.emulator.incidents import IncidentResponse
from devops_assets.emulator.records import (
    EnvSpec,
    PlannedIncident,
    SimBuild,
    SimCommit,
    SimDeployment,
    SimIncident,
    SimTag,
    SimVersion,
    ms,
)
from devops_assets.emulator.story import Person


@dataclass
class Timeline(IncidentResponse):
    """The state of the simulated project at the current point of the queue."""

    rng: random.Random
    start: datetime
    end: datetime
    envs: dict[str, EnvSpec]
    commits: list[SimCommit] = field(default_factory=list)
    builds: list[SimBuild] = field(default_factory=list)
    versions: list[SimVersion] = field(default_factory=list)
    deployments: list[SimDeployment] = field(default_factory=list)
    incidents: list[SimIncident] = field(default_factory=list)
    tags: list[SimTag] = field(default_factory=list)
    tips: dict[str, int] = field(default_factory=dict)
    trees: dict[int, dict[str, str]] = field(default_factory=dict)
    deleted_branches: set[str] = field(default_factory=set)
    staging_deployed: list[int] = field(default_factory=list)
    pending_fixes: list[tuple[SimIncident, int]] = field(default_factory=list)
    staging_plan: list[PlannedIncident] = field(default_factory=list)
    promoted: int = 1
    # What the team does after a red staging build, and once a hotfix runs on staging.
    on_staging_failure: Callable[[datetime, str], None] | None = None
    on_hotfix_staged: Callable[[datetime], None] | None = None
    _queue: list = field(default_factory=list)
    _seq: int = 0

    @property
    def staging_branch(self) -> str:
        return self.envs["staging"].branch

    @property
    def production_branch(self) -> str:
        return self.envs["production"].branch

    # -- the clock -------------------------------------------------------------

    def at(self, when: datetime, action, *args) -> None:
        """Run ``action(when, *args)`` when the clock reaches ``when``."""
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, action, args))

    def run(self) -> None:
        """Play every queued action that happens before the end, in time order."""
        while self._queue:
            when, _, action, args = heapq.heappop(self._queue)
            if when < self.end:
                action(when, *args)
        for incident in self.incidents:
            if incident.resolved_at is not None and incident.resolved_at >= self.end:
                incident.resolved_at = None

    def minutes(self, low: float, high: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(low, high))

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def day_of(self, when: datetime) -> int:
        return (when - self.start).days

    # -- git -------------------------------------------------------------------

    def commit(
        self,
        branch: str,
        parents: tuple[int, ...],
        author: Person,
        when: datetime,
        subject: str,
        *,
        body: str = "",
        files: dict[str, str] | None = None,
        committer: Person | None = None,
        commit_time: datetime | None = None,
    ) -> SimCommit:
        """Record a commit on ``branch``; its tree is the first parent's plus ``files``."""
        committer = committer or author
        made = SimCommit(
            mark=len(self.commits) + 1,
            parents=parents,
            branch=branch,
            author=author,
            committer=committer,
            author_time=when.astimezone(author.tz).replace(microsecond=0),
            commit_time=(commit_time or when).astimezone(committer.tz).replace(microsecond=0),
            subject=subject,
            body=body,
            files=dict(files or {}),
        )
        tree = dict(self.trees[parents[0]]) if parents else {}
        tree.update(made.files)
        self.commits.append(made)
        self.trees[made.mark] = tree
        self.tips[branch] = made.mark
        return made

    # -- builds ----------------------------------------------------------------

    def start_build(
        self,
        env: EnvSpec,
        mark: int,
        when: datetime,
        *,
        force: str | None = None,
        trigger: str = "push",
        **extra,
    ) -> SimBuild | None:
        """A push (or manual trigger) at ``when`` starts a build of commit ``mark``.

        None when the build would be created after the end of the history.
        """
        rng = self.rng
        created = ms(when + timedelta(seconds=rng.uniform(3, 15)))
        if created >= self.end:
            return None
        outcome = force or self._random_outcome(env, created)
        initializing = ms(created + timedelta(seconds=rng.uniform(0.5, 3)))
        running = ms(initializing + timedelta(seconds=rng.uniform(6, 25)))
        stopped = ms(running + timedelta(seconds=story.build_seconds(rng, outcome)))
        failure = rng.choice(sorted(story.BUILD_FIXES)) if outcome == "fail" else None
        build = SimBuild(
            self.new_id(),
            env,
            mark,
            trigger,
            created,
            initializing,
            running,
            stopped,
            "stopped",
            outcome,
            failure,
            **extra,
        )
        self._settle(build)
        self.builds.append(build)
        if build.status == "stopped":
            self.at(stopped, self._build_done, build)
        return build

    def _random_outcome(self, env: EnvSpec, when: datetime) -> str:
        """Staging suffers a flaky-test spell in its last five weeks."""
        if env.name == "staging":
            p_fail = 0.12 if when > self.end - timedelta(days=35) else 0.035
        else:
            p_fail = 0.025
        draw = self.rng.random()
        if draw < p_fail:
            return "fail"
        return "cancelled" if draw < p_fail + 0.012 else "success"

    def _settle(self, build: SimBuild) -> None:
        """Blank the phases that lie after the end: such a build is still going."""
        if build.stopped_on <= self.end:
            return
        build.stopped_on, build.outcome, build.failure = None, None, None
        build.status = "running"
        if build.running_on > self.end:
            build.running_on, build.status = None, "initializing"
        if build.initializing_on > self.end:
            build.initializing_on, build.status = None, "queued"

    def _build_done(self, when: datetime, build: SimBuild) -> None:
        if build.outcome == "success":
            self._deploy(build)
        elif build.outcome == "fail" and build.env.name == "staging":
            self.at(when + self.minutes(15, 75), self.on_staging_failure, build.failure)
        elif build.outcome == "fail":
            self.at(when + self.minutes(10, 40), self._retry, build)

    def _retry(self, when: datetime, build: SimBuild) -> None:
        """Someone re-runs a failed production build by hand."""
        self.start_build(
            build.env,
            build.mark,
            when,
            force="success",
            trigger="manual",
            promoted=build.promoted,
            bad=build.bad,
            hotfix=build.hotfix,
        )

    # -- deployments -----------------------------------------------------------

    def _deploy(self, build: SimBuild) -> None:
        """A successful build uploads a version and deploys it to 100 %."""
        env, commit = build.env, self.commits[build.mark - 1]
        numbers = [v.number for v in self.versions if v.worker == env.worker]
        created = ms(build.stopped_on - timedelta(seconds=self.rng.uniform(8, 12)))
        version = SimVersion(
            self.new_id(),
            env.worker,
            max(numbers, default=0) + 1,
            created,
            build.uuid,
            commit.subject,
            commit.author.email,
        )
        self.versions.append(version)
        build.version_id = version.id
        deployment = self._add_deployment(
            env,
            build.stopped_on - timedelta(seconds=4),
            version.id,
            build.mark,
            "deploy",
            commit.subject,
            commit.author.email,
        )
        if env.name == "staging":
            self._after_staging_deploy(build, deployment)
        else:
            self._after_production_deploy(build, deployment)

    def _add_deployment(self, env: EnvSpec, when: datetime, *args) -> SimDeployment:
        earlier = [d.created_on for d in self.deployments if d.env == env]
        when = ms(max([when] + [t + timedelta(seconds=1) for t in earlier[-1:]]))
        deployment = SimDeployment(self.new_id(), env, when, *args)
        self.deployments.append(deployment)
        return deployment

    def _after_staging_deploy(self, build: SimBuild, deployment: SimDeployment) -> None:
        self.staging_deployed.append(build.mark)
        self._resolve_fixed("staging", build.mark, deployment.created_on)
        if build.hotfix:
            self.at(deployment.created_on + self.minutes(15, 45), self.on_hotfix_staged)
        plan = self.staging_plan[0] if self.staging_plan else None
        if plan and self.day_of(deployment.created_on) >= plan.day and not build.hotfix:
            self.staging_plan.pop(0)
            opened = deployment.created_on + self.minutes(10, 60)
            self.at(opened, self._open_incident, plan, deployment)

    def _after_production_deploy(self, build: SimBuild, deployment: SimDeployment) -> None:
        self._resolve_fixed("production", build.promoted or build.mark, deployment.created_on)
        if build.bad is not None:
            opened = deployment.created_on + self.minutes(15, 120)
            self.at(opened, self._open_incident, build.bad, deployment)
