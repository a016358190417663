"""How the simulated team answers a bad deployment: incident, rollback, hotfix.

A production incident opens some minutes after the bad deployment. Most are
ended by a rollback (a new 100 % deployment of the version that served
before) followed by a hotfix on hardshell; one is fixed forward, and ends
when the fix runs in production. Mixed into :class:`Timeline`, whose records
and clock these methods use.
"""

from __future__ import annotations

from datetime import datetime

from devops_assets.emulator import story
from devops_assets.emulator.records import PlannedIncident, SimDeployment, SimIncident


class IncidentResponse:
    """Incident handling for :class:`~devops_assets.emulator.timeline.Timeline`."""

    def _open_incident(self, when: datetime, plan: PlannedIncident, bad: SimDeployment) -> None:
        # The last title names staging: production incidents take one of the others.
        production_titles = story.INCIDENT_TITLES[:-1]
        title = production_titles[len(self.incidents) % len(production_titles)]
        if plan.environment == "staging":
            title = story.INCIDENT_TITLES[-1]
        incident = SimIncident(
            f"INC-{len(self.incidents) + 1:03d}",
            plan.environment,
            when.replace(microsecond=0),
            None,
            bad.id,
            title,
        )
        self.incidents.append(incident)
        if plan.rollback:
            self.at(when + self.minutes(5, 25), self._rollback, incident, bad)
        else:
            self.at(when + self.minutes(20, 60), self.hotfix, incident)

    def _rollback(self, when: datetime, incident: SimIncident, bad: SimDeployment) -> None:
        """Serve the version that ran before the bad deployment again, at 100 %."""
        same_env = [d for d in self.deployments if d.env == bad.env]
        previous = same_env[same_env.index(bad) - 1]
        number = next(v.number for v in self.versions if v.id == previous.version_id)
        message = f"Rollback to version {number} ({incident.id})"
        self._add_deployment(
            bad.env,
            when,
            previous.version_id,
            previous.mark,
            "rollback",
            message,
            story.RELEASER.email,
        )
        incident.resolved_at = (when + self.minutes(10, 45)).replace(microsecond=0)
        self.at(when + self.minutes(30, 180), self.hotfix, None)

    def hotfix(self, when: datetime, incident: SimIncident | None) -> None:
        """A fix straight on hardshell, built and staged, then rushed to production."""
        subject = story.HOTFIXES[len(self.incidents) % len(story.HOTFIXES)]
        head = self.tips[self.staging_branch]
        path = f"src/{subject.split('(')[1].split(')')[0]}/index.ts"
        text = self.trees[head].get(path, "") + f"// {subject}\n"
        made = self.commit(
            self.staging_branch,
            (head,),
            story.pick_author(self.rng),
            when,
            subject,
            files={path: text},
        )
        if incident is not None:
            self.pending_fixes.append((incident, made.mark))
        promote = incident is None or incident.environment == "production"
        self.start_build(self.envs["staging"], made.mark, when, force="success", hotfix=promote)

    def _resolve_fixed(self, environment: str, mark: int, when: datetime) -> None:
        """An incident fixed forward ends once its fix runs in its environment."""
        for incident, fix_mark in list(self.pending_fixes):
            if incident.environment == environment and mark >= fix_mark:
                incident.resolved_at = (when + self.minutes(5, 20)).replace(microsecond=0)
                self.pending_fixes.remove((incident, fix_mark))
