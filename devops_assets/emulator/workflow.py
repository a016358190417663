"""What the simulated team does: features, chores, fixes and promotions.

Developers branch ``feature/...`` off ``hardshell``, commit for a few hours or
days and merge back through a pull request; every push to ``hardshell`` builds
and deploys staging. A few times a week the releaser merges ``hardshell`` into
``main``, which builds and deploys production. Six planned bad deployments
open incidents; most production ones are rolled back, one is fixed forward.
"""

from __future__ import annotations

import json
import math
import random
import re
import uuid
from datetime import date, datetime, timedelta

from devops_assets.emulator import story
from devops_assets.emulator.records import EnvSpec, PlannedIncident, SimVersion
from devops_assets.emulator.story import Feature, initial_tree, package_json
from devops_assets.emulator.tags import tag_deployments
from devops_assets.emulator.timeline import Timeline

# (share of the history elapsed, environment, rolled back?) of each bad deployment.
INCIDENT_PLAN = (
    (0.12, "production", True),
    (0.33, "production", True),
    (0.50, "staging", False),
    (0.61, "production", False),
    (0.78, "production", True),
    (0.93, "production", True),
)
FEATURES_PER_WEEKDAY = {0: 15, 1: 40, 2: 35, 3: 10}  # count: weight
COMMITS_PER_FEATURE = {1: 25, 2: 30, 3: 25, 4: 12, 5: 8}
PROMOTIONS_PER_WEEK = {2: 3, 3: 5, 4: 2}


def simulate(seed: int, end: datetime, days: int, staging: EnvSpec, production: EnvSpec):
    """Play ``days`` days of the team's work ending at ``end``; return the timeline.

    The releaser's tags are drawn once the play is over (see ``tags.py``).
    """
    timeline = Timeline(
        random.Random(seed),
        end - timedelta(days=days),
        end,
        {"staging": staging, "production": production},
    )
    flow = Workflow(timeline, days)
    flow.bootstrap()
    flow.plan()
    timeline.run()
    timeline.tags = tag_deployments(timeline)
    add_secret_versions(timeline)
    return timeline


SECRET_DELAY = timedelta(hours=1)  # after the first version, the releaser puts the secrets


def add_secret_versions(tl: Timeline) -> None:
    """The releaser puts each required secret with ``wrangler versions secret put``
    soon after the first deployment: one version per secret (``workers/triggered_by:
    secret``), built on the first upload and not deployed; the next upload inherits
    them. Added once the play is over, without drawing from the generator, so every
    commit, build and deployment stays as it was; later versions are renumbered."""
    count = len(story.REQUIRED_SECRETS)
    for env in tl.envs.values():
        mine = [v for v in tl.versions if v.worker == env.worker]
        if not mine:
            continue
        first = mine[0]
        limit = mine[1].created_on if len(mine) > 1 else tl.end
        step = min(SECRET_DELAY, (limit - first.created_on) / (count + 2))
        for v in mine[1:]:
            v.number += count
        made = [
            SimVersion(
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"devops-assets/secret/{env.worker}/{name}")),
                env.worker,
                first.number + k + 1,
                first.created_on + step * (k + 1),
                first.build_uuid,
                f'Updated secret "{name}"',
                story.RELEASER.email,
                triggered_by="secret",
                secret=name,
            )
            for k, name in enumerate(story.REQUIRED_SECRETS)
        ]
        at = tl.versions.index(first) + 1
        tl.versions[at:at] = made


class Workflow:
    """The developers' and the releaser's habits, scheduled on a timeline."""

    def __init__(self, timeline: Timeline, days: int):
        self.tl, self.rng, self.days = timeline, timeline.rng, days
        self.pr = 0
        self.slugs: set[str] = set()
        self.deps = {name: list(v) for name, v in story.DEPENDENCIES.items()}
        self.weeks: dict[date, set[date]] = {}
        self.carry_bad: PlannedIncident | None = None
        self.breaking_done = False
        plan = [PlannedIncident(int(share * days), env, rb) for share, env, rb in INCIDENT_PLAN]
        self.bad_promotions = [p for p in plan if p.environment == "production"]
        timeline.staging_plan = [p for p in plan if p.environment == "staging"]
        timeline.on_staging_failure = self.fix_build
        timeline.on_hotfix_staged = lambda when: self.promote(when, None, hotfix=True)

    def bootstrap(self) -> None:
        """The first commit on ``main``; ``hardshell`` starts there; both deploy it."""
        tl = self.tl
        files = initial_tree(tl.envs["production"].worker, tl.envs["staging"].worker)
        root = tl.commit(
            tl.production_branch,
            (),
            story.RELEASER,
            tl.start,
            "chore: import moltworker",
            files=files,
        )
        tl.tips[tl.staging_branch] = root.mark
        for env in tl.envs.values():
            tl.start_build(env, root.mark, tl.start + timedelta(minutes=2), force="success")

    def plan(self) -> None:
        """Queue every day's feature work, chores and promotions."""
        tl, rng = self.tl, self.rng
        midnight = tl.start.replace(hour=0, minute=0, second=0, microsecond=0)
        for day in range(1, self.days):
            day_start = midnight + timedelta(days=day)
            weekday = day_start.weekday() < 5
            if weekday:
                count = story.weighted(rng, FEATURES_PER_WEEKDAY)
            else:
                count = int(rng.random() < 0.08)
            for _ in range(count):
                self._plan_feature(day_start, day)
            if weekday and rng.random() < 0.3:
                tl.at(day_start + timedelta(hours=rng.uniform(9, 18)), self.chore)
            if day_start.date() in self._promotion_days(day_start.date()):
                when = day_start + timedelta(hours=rng.uniform(13, 17.5))
                tl.at(when, self.promote, self._take_bad(day))
        tl.at(tl.end - timedelta(seconds=100), self.chore)

    def _promotion_days(self, day: date) -> set[date]:
        monday = day - timedelta(days=day.weekday())
        if monday not in self.weeks:
            count = story.weighted(self.rng, PROMOTIONS_PER_WEEK)
            picked = self.rng.sample(range(5), count)
            self.weeks[monday] = {monday + timedelta(days=d) for d in picked}
        return self.weeks[monday]

    def _take_bad(self, day: int) -> PlannedIncident | None:
        if self.bad_promotions and self.bad_promotions[0].day <= day:
            return self.bad_promotions.pop(0)
        return None

    def _plan_feature(self, day_start: datetime, day: int) -> None:
        rng = self.rng
        kind = story.weighted(rng, story.TYPE_WEIGHTS)
        area, title = rng.choice(story.AREAS), rng.choice(story.TITLES[kind])
        count = story.weighted(rng, COMMITS_PER_FEATURE)
        times = [day_start + timedelta(hours=rng.uniform(7.5, 16.5))]
        for _ in range(count - 1):
            times.append(times[-1] + timedelta(minutes=rng.uniform(20, 300)))
        review = min(max(rng.lognormvariate(math.log(300), 0.9), 30), 4 * 24 * 60)
        slug = story.slugify(f"{area} {title}")
        while slug in self.slugs:
            slug = f"{slug}-{len(self.slugs)}"
        self.slugs.add(slug)
        breaking = kind == "feat" and not self.breaking_done and day >= 0.4 * self.days
        self.breaking_done |= breaking
        self.pr += 1
        feature = Feature(
            self.pr,
            kind,
            area,
            title,
            story.pick_author(rng),
            times,
            times[-1] + timedelta(minutes=review),
            f"feature/{slug}",
            breaking,
        )
        self.tl.at(times[0], self.feature_commit, feature, 0)

    def feature_commit(self, when: datetime, feature: Feature, k: int) -> None:
        """Commit ``k`` of a feature; the last one queues the merge.

        The last commit is sometimes amended a little later, so its commit
        time trails its author time (as after a rebase or a fix-up).
        """
        tl, rng = self.tl, self.rng
        parent = tl.tips[tl.staging_branch] if k == 0 else tl.tips[feature.branch]
        subject, body = self._feature_message(feature, k)
        path = feature.test_path if subject.startswith("test") else feature.path
        text = tl.trees[parent].get(path, f"// {feature.subject}\n")
        text += f"export const step{k} = {json.dumps(subject)};\n"
        last = k == len(feature.times) - 1
        amended = None
        if last and rng.random() < 0.2:
            amended = min(when + tl.minutes(5, 90), feature.merge_at - timedelta(minutes=1))
        files = {path: text}
        tl.commit(
            feature.branch,
            (parent,),
            feature.author,
            when,
            subject,
            body=body,
            files=files,
            commit_time=amended,
        )
        if last:
            tl.at(feature.merge_at, self.merge_feature, feature)
        else:
            tl.at(feature.times[k + 1], self.feature_commit, feature, k + 1)

    def _feature_message(self, feature: Feature, k: int) -> tuple[str, str]:
        """The pull request's title first, review follow-ups after; some co-authored."""
        subject, body = feature.subject, ""
        if k == 0 and feature.breaking:
            body = "BREAKING CHANGE: the gateway reads MOLTBOT_GATEWAY_URL instead of GATEWAY_URL."
        elif k > 0:
            short = " ".join(feature.title.split()[1:])
            subject = self.rng.choice(story.FOLLOW_UPS).format(area=feature.area, short=short)
        if self.rng.random() < 0.1:
            helper = self.rng.choice([p for p in story.DEVELOPERS if p != feature.author])
            body = f"{body}\n\nCo-authored-by: {helper.name} <{helper.email}>".strip()
        return subject, body

    def merge_feature(self, when: datetime, feature: Feature) -> None:
        """GitHub merges the pull request into ``hardshell``: a real merge commit."""
        tl = self.tl
        head, tip = tl.tips[tl.staging_branch], tl.tips[feature.branch]
        files = {
            p: tl.trees[tip][p] for p in (feature.path, feature.test_path) if p in tl.trees[tip]
        }
        subject = f"Merge pull request #{feature.number} from {story.ORG}/{feature.branch}"
        made = tl.commit(
            tl.staging_branch,
            (head, tip),
            story.pick_author(self.rng),
            when,
            subject,
            body=feature.subject,
            files=files,
            committer=story.GITHUB,
        )
        if when < tl.end - timedelta(days=10):
            tl.deleted_branches.add(feature.branch)
        tl.start_build(tl.envs["staging"], made.mark, when)

    def chore(self, when: datetime) -> None:
        """A small direct commit on ``hardshell``: dependencies, CI, docs, config."""
        tl, rng = self.tl, self.rng
        head = tl.tips[tl.staging_branch]
        subject, files = self._chore_change(when, tl.trees[head])
        made = tl.commit(
            tl.staging_branch, (head,), story.pick_author(rng), when, subject, files=files
        )
        tl.start_build(tl.envs["staging"], made.mark, when)

    def _chore_change(self, when: datetime, tree: dict[str, str]) -> tuple[str, dict[str, str]]:
        choice = self.rng.randrange(len(story.CHORES) + 1)
        if choice == len(story.CHORES):
            name = self.rng.choice(sorted(self.deps))
            old = ".".join(map(str, self.deps[name]))
            self.deps[name][2] += 1
            new = ".".join(map(str, self.deps[name]))
            return f"chore(deps): bump {name} from {old} to {new}", {
                "package.json": package_json(self.deps)
            }
        subject = story.CHORES[choice]
        if "compatibility date" in subject:
            day = (when - timedelta(days=2)).date().isoformat()
            text = re.sub(
                r'"compatibility_date": "[^"]*"',
                f'"compatibility_date": "{day}"',
                tree["wrangler.jsonc"],
            )
            return subject, {"wrangler.jsonc": text}
        path = (".github/workflows/deploy.yml", "README.md", "", "src/index.ts")[choice]
        mark = "//" if path.endswith(".ts") else "#"
        return subject, {path: tree[path] + f"{mark} {subject}\n"}

    def fix_build(self, when: datetime, failure: str) -> None:
        """A developer repairs a red staging build with a direct fix."""
        tl = self.tl
        head = tl.tips[tl.staging_branch]
        subject = story.BUILD_FIXES[failure]
        text = tl.trees[head]["src/config/index.ts"] + f"// {subject}\n"
        made = tl.commit(
            tl.staging_branch,
            (head,),
            story.pick_author(self.rng),
            when,
            subject,
            files={"src/config/index.ts": text},
        )
        tl.start_build(tl.envs["staging"], made.mark, when)

    def promote(self, when: datetime, bad: PlannedIncident | None, hotfix: bool = False) -> None:
        """Merge the newest commit that runs on staging into ``main`` and build it."""
        tl = self.tl
        bad, self.carry_bad = bad or self.carry_bad, None
        fresh = [mark for mark in tl.staging_deployed if mark > tl.promoted]
        if not fresh:
            self.carry_bad = bad
            return
        chosen, main = max(fresh), tl.tips[tl.production_branch]
        files = {p: c for p, c in tl.trees[chosen].items() if tl.trees[main].get(p) != c}
        body = "Hotfix promotion." if hotfix else "Promote staging to production."
        subject = f"Merge branch '{tl.staging_branch}'"
        made = tl.commit(
            tl.production_branch,
            (main, chosen),
            story.RELEASER,
            when,
            subject,
            body=body,
            files=files,
        )
        tl.promoted = chosen
        force = "success" if bad or hotfix else None
        tl.start_build(
            tl.envs["production"], made.mark, when, force=force, bad=bad, promoted=chosen
        )
