"""Test controls that change the builds and versions an emulator app serves.

A test adds a build that is still running, lets the code under test see it,
then finishes it and checks the outcome is fetched again. ``push`` models
Workers Builds set to upload versions only (deploy command ``npx wrangler
versions upload``): every script builds the pushed commit and a successful
build uploads a new version, which the platform, not the build, deploys.
These are Python methods of the app object only; nothing here is reachable
over HTTP. Every change goes through the state, which journals it when the
app persists, so another process that loads the folder sees it.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from devops_assets.emulator.apistate import make_build, version_object
from devops_assets.emulator.buildlogs import FLAKY_KIND, KINDS, failing_lines
from devops_assets.emulator.records import SimVersion
from devops_assets.emulator.resources import from_wrangler, secret_names
from devops_assets.emulator.state import iso_ms

BUILD_OUTCOMES = ("success", "fail", "skipped", "cancelled", "terminated")
HEALTH = ("ok", "error")  # what a pushed version answers at /health
PUSH_AUTHOR = "dev@moltworker.example"
UPLOAD_COMMAND = "npx wrangler versions upload"
PUSH_BUILD_SECONDS = 150  # how long a pushed build has been going when it stops


class BuildControls:
    """Mixed into the app, which provides ``state``, ``now`` and ``_lock``."""

    def add_build(
        self,
        worker: str,
        branch: str,
        commit_sha: str,
        *,
        status: str = "running",
        outcome: str | None = None,
        created_on: datetime | None = None,
        commit_message: str = "chore: emulator test build",
        trigger_source: str = "push",
        build_uuid: str | None = None,
    ) -> dict:
        """Add a build of ``worker`` (a script name); returns the build object.

        A build stopped with ``success`` uploads a version, as a pushed one does.
        """
        tag = self.state.tag_of(worker)
        if tag is None:
            raise KeyError(f"add_build: no worker named {worker!r} in the emulator state")
        created = created_on or self.now() - timedelta(seconds=20)
        started = created + timedelta(seconds=12) if status in ("running", "stopped") else None
        stopped = started + timedelta(seconds=150) if status == "stopped" else None
        initializing = created + timedelta(seconds=1) if status != "queued" else None
        build = make_build(
            build_uuid or str(uuid.uuid4()),
            self.state.triggers[tag][0],
            status=status,
            outcome=outcome if status == "stopped" else None,
            phases=(created, initializing, started, stopped),
            branch=branch,
            commit_hash=commit_sha,
            message=commit_message,
            author=PUSH_AUTHOR,
            trigger_source=trigger_source,
        )
        with self._lock:
            uploads = None if status == "stopped" else "ok"
            self.state.record_build(build, uploads=uploads)
            self.state.record_log(build["build_uuid"], [[_ms(created), _FIRST_LINE]])
            if status == "stopped" and outcome == "success":
                self._upload_version(build, stopped, "ok")
        return build

    def finish_build(
        self,
        build_uuid: str,
        outcome: str,
        stopped_on: datetime | None = None,
        *,
        failure: str | None = None,
    ) -> dict:
        """Stop a queued or running build with ``outcome``; returns the build object.

        A build of ``push`` or ``add_build`` that succeeds uploads its version now.
        With ``failure`` (a kind of ``buildlogs.FAILURES``: dependency, typescript,
        test, deploy, memory; or ``flaky``, a failure nothing in the commit caused)
        a failed build's log ends with that step's error output instead of a bare
        ``Build fail``.
        """
        _check_choice("finish_build", "outcome", outcome, BUILD_OUTCOMES)
        if failure is not None:
            _check_choice("finish_build", "failure", failure, (*KINDS, FLAKY_KIND))
        with self._lock:
            build = self.state.builds.get(build_uuid)
            if build is None:
                raise KeyError(f"finish_build: no build {build_uuid!r} in the emulator state")
            running = build["running_on"] and datetime.fromisoformat(build["running_on"])
            stopped = stopped_on or max(self.now(), (running or self.now()) + timedelta(seconds=1))
            build["running_on"] = build["running_on"] or iso_ms(stopped - timedelta(seconds=60))
            build["initializing_on"] = build["initializing_on"] or build["created_on"]
            build.update(status="stopped", build_outcome=outcome, stopped_on=iso_ms(stopped))
            build["modified_on"] = build["stopped_on"]
            lines = []
            serves = self.state.uploads.get(build_uuid)
            if outcome == "success" and serves is not None:
                version = self._upload_version(build, stopped, serves)
                command = build["build_trigger_metadata"]["deploy_command"]
                lines.append([_ms(stopped), f"Executing user deploy command: {command}"])
                lines.append([_ms(stopped), f"Worker Version ID: {version['id']}"])
            closing = [
                [
                    _ms(stopped),
                    "Success: Build completed" if outcome == "success" else f"Build {outcome}",
                ]
            ]
            if outcome == "fail" and failure is not None:
                script = self.state.scripts[build["trigger"]["external_script_id"]]
                closing = failing_lines(build, failure, stopped, worker=script)
            self.state.record_build(build)
            self.state.record_log(build_uuid, lines + closing)
            return build

    def push(
        self,
        branch: str,
        commit_sha: str,
        message: str,
        *,
        author_email: str = PUSH_AUTHOR,
        outcome: str | None = "success",
        serves: str | Mapping[str, str] = "ok",
        wrangler: str | None = None,
        failure: str | None = None,
    ) -> list[dict]:
        """A push of ``commit_sha`` to ``branch``: one build per script of the account.

        ``wrangler`` is the commit's wrangler file: each uploaded version takes its
        bindings and settings for its environment from it (secrets carry over from
        the latest version). Without it an upload copies the latest version's.
        ``failure`` is passed to ``finish_build`` (the kind a failed build shows).

        With ``outcome`` the builds stop with it now (``success`` uploads one
        new version per script); with None they keep running until
        ``finish_build``. ``serves`` is what the uploaded versions answer at
        ``/health`` once deployed: ``ok`` (200) or ``error`` (500), for every
        script, or per script name (``{"moltworker": "error"}``: a change that
        breaks production only; a script not named serves ``ok``).
        """
        _check_push(branch, commit_sha, message, author_email)
        if outcome is not None:
            _check_choice("push", "outcome", outcome, BUILD_OUTCOMES)
        health = self._health_by_script(serves)
        with self._lock:
            now = self.now()
            created = self._push_created(now)
            phases = (
                created,
                min(created + timedelta(seconds=1), now),
                min(created + timedelta(seconds=12), now),
            )
            builds = []
            for tag in self.state.scripts:
                trigger = self._upload_trigger(tag, now)
                build = make_build(
                    str(uuid.uuid4()),
                    trigger,
                    status="running",
                    outcome=None,
                    phases=(*phases, None),
                    branch=branch,
                    commit_hash=commit_sha,
                    message=message,
                    author=author_email,
                    trigger_source="push",
                )
                self.state.record_build(
                    build, uploads=health[self.state.scripts[tag]], wrangler=wrangler
                )
                self.state.record_log(build["build_uuid"], _started_lines(build, phases))
                if outcome is not None:
                    build = self.finish_build(
                        build["build_uuid"], outcome, stopped_on=now, failure=failure
                    )
                builds.append(build)
            return builds

    def _health_by_script(self, serves) -> dict[str, str]:
        """``serves`` of ``push`` as script name -> ok | error, checked."""
        scripts = list(self.state.scripts.values())
        if isinstance(serves, Mapping):
            unknown = sorted(set(serves) - set(scripts))
            if unknown:
                known = ", ".join(scripts)
                raise ValueError(f"push: serves names no script {unknown[0]!r}; known: {known}")
            for script, value in serves.items():
                _check_choice("push", f"serves[{script!r}]", value, HEALTH)
            return {script: serves.get(script, "ok") for script in scripts}
        _check_choice("push", "serves", serves, HEALTH)
        return dict.fromkeys(scripts, serves)

    def _push_created(self, now: datetime) -> datetime:
        """When a pushed build started: about ``PUSH_BUILD_SECONDS`` ago, yet after every
        build the account has, so the push's builds are listed (and found) as the newest."""
        created = now - timedelta(seconds=PUSH_BUILD_SECONDS)
        newest = max((b["created_on"] for b in self.state.builds.values()), default=None)
        if newest is not None:
            created = max(created, datetime.fromisoformat(newest) + timedelta(milliseconds=1))
        return min(created, now)

    def _upload_trigger(self, tag: str, now: datetime) -> dict:
        """The script's trigger, switched to upload versions only (journaled once)."""
        trigger = self.state.triggers[tag][0]
        if "versions upload" in trigger["deploy_command"]:
            return trigger
        command = trigger["deploy_command"].replace("wrangler deploy", "wrangler versions upload")
        if "versions upload" not in command:
            command = UPLOAD_COMMAND
        changed = {**trigger, "deploy_command": command, "modified_on": iso_ms(now)}
        self.state.record_trigger(tag, changed)
        return changed

    def _upload_version(self, build: dict, when: datetime, serves: str) -> dict:
        """The next version of the build's script, uploaded by ``build`` at ``when``."""
        script = self.state.scripts[build["trigger"]["external_script_id"]]
        meta = build["build_trigger_metadata"]
        numbers = [v["number"] for v in self.state.versions.get(script, [])]
        first_line = meta["commit_message"].strip().splitlines()[0]
        version = version_object(
            SimVersion(
                str(uuid.uuid4()),
                script,
                max(numbers, default=0) + 1,
                when,
                build["build_uuid"],
                first_line,
                meta["author"],
            )
        )
        version["annotations"]["workers/triggered_by"] = "version_upload"
        latest = self.state.latest_version(script)  # an upload inherits bindings and secrets
        resources = copy.deepcopy(self.state.resources.get(latest["id"])) if latest else None
        digests = dict(self.state.secret_digests.get(latest["id"], {})) if latest else None
        text = self.state.upload_configs.get(build["build_uuid"])
        environment = next((e for e, s in self.state.environments.items() if s == script), None)
        if text is not None and environment is not None:
            secrets = secret_names(resources) if resources else []
            resources = from_wrangler(text, environment, secrets)
        self.state.record_version(
            script, version, build["build_uuid"], serves, resources=resources, digests=digests
        )
        return version


_FIRST_LINE = "Initializing build environment..."


def _started_lines(build: dict, phases: tuple[datetime, ...]) -> list[list]:
    """What a pushed build printed up to now: set-up, clone and the build command."""
    meta, (created, initializing, running) = build["build_trigger_metadata"], phases
    head = meta["commit_message"].strip().splitlines()[0]
    return [
        [_ms(created), _FIRST_LINE],
        [_ms(initializing), "Success: Finished initializing build environment"],
        [_ms(running), "Cloning repository..."],
        [_ms(running), f"HEAD is now at {meta['commit_hash'][:7]} {head}"],
        [_ms(running), f"Executing user build command: {meta['build_command']}"],
    ]


def _check_push(branch: str, commit_sha: str, message: str, author_email: str) -> None:
    if not isinstance(branch, str) or not re.fullmatch(r"[^\s~^:?*\[\\]+", branch):
        raise ValueError(f"push: branch must be a git branch name, got {branch!r}")
    if not isinstance(commit_sha, str) or not re.fullmatch(r"[0-9a-f]{40}", commit_sha):
        raise ValueError(f"push: commit_sha must be 40 lowercase hex digits, got {commit_sha!r}")
    if not isinstance(message, str) or not message.strip():
        raise ValueError(f"push: message must be a non-empty commit message, got {message!r}")
    if not isinstance(author_email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", author_email):
        raise ValueError(f"push: author_email must be an email address, got {author_email!r}")


def _check_choice(method: str, name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{method}: {name} must be one of {', '.join(choices)}, got {value!r}")


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)
