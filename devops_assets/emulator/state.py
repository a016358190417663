"""The emulator's account: the API objects it serves, kept as JSON in a folder.

``api.json`` holds builds, triggers, versions, deployments and services as the
API shows them; ``logs.json`` the build logs; ``incidents.json`` the team's
incident feed. What changes while the demo runs (deployments and secret
versions created through the API; builds, log lines, versions, triggers,
refused secrets and incidents changed by the test controls) is appended to
``journal.jsonl``, one JSON object a line, so the next process that loads the
folder sees it too. A build is journaled whole each time it changes, so
replaying the lines in order leaves its latest state, even when another
process finished it. The seeded files are never rewritten.
D1 databases are SQLite files in ``d1/`` (see ``d1_api.py``); the journal
never holds a secret value, only sha256 digests.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

API_FILE = "api.json"
LOGS_FILE = "logs.json"
INCIDENTS_FILE = "incidents.json"
JOURNAL_FILE = "journal.jsonl"
_JOURNAL_LOCK = threading.Lock()


def iso_ms(when: datetime) -> str:
    """The Builds API's timestamp style: UTC, milliseconds, ``Z``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def iso_us(when: datetime) -> str:
    """The Workers API's timestamp style: UTC, microseconds, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class EmulatorState:
    """Everything the emulator serves for one account.

    Lists are kept oldest first (the order things happened); the app serves
    them newest first, as the API does. ``end`` is the instant the simulated
    history stops: the emulator's clock starts there. ``environments`` maps an
    environment name to the script that serves it; ``serves`` says what a
    pushed version answers at ``/health`` (``ok`` or ``error``; absent means
    ``ok``); ``uploads`` holds the builds that upload a version once they stop
    with success, and what that version will serve.
    """

    account_id: str
    end: datetime
    scripts: dict[str, str]  # worker tag (external_script_id) -> script name
    services: dict[str, dict]  # script name -> service record
    triggers: dict[str, list[dict]]  # worker tag -> trigger objects
    builds: dict[str, dict]  # build uuid -> build object, in creation order
    logs: dict[str, list[list]]  # build uuid -> [[epoch_ms, text], ...]
    versions: dict[str, list[dict]]  # script name -> version objects
    deployments: dict[str, list[dict]]  # script name -> deployment objects
    version_builds: dict[str, str]  # version id -> build uuid
    environments: dict[str, str] = field(default_factory=dict)  # environment -> script
    serves: dict[str, str] = field(default_factory=dict)  # version id -> ok | error
    uploads: dict[str, str] = field(default_factory=dict)  # build uuid -> ok | error
    # build uuid -> the wrangler file of the pushed commit, whose settings its upload takes
    upload_configs: dict[str, str] = field(default_factory=dict)
    incidents: dict[str, dict] = field(default_factory=dict)  # id -> incidents.json item
    # version id -> {"bindings", "script_runtime", "settings"} (see resources.py)
    resources: dict[str, dict] = field(default_factory=dict)
    # version id -> {secret name: sha256 hex digest of its value}; values are never kept
    secret_digests: dict[str, dict[str, str]] = field(default_factory=dict)
    # script -> {secret name: the only digest its versions may have and answer /health}
    refusals: dict[str, dict[str, str | None]] = field(default_factory=dict)
    databases: dict[str, dict] = field(default_factory=dict)  # D1 uuid -> database object
    journal: Path | None = field(default=None, compare=False)
    folder: Path | None = field(default=None, compare=False)  # the state folder, once loaded

    def tag_of(self, script: str) -> str | None:
        return next((tag for tag, name in self.scripts.items() if name == script), None)

    def version(self, script: str, version_id: str) -> dict | None:
        return next((v for v in self.versions.get(script, []) if v["id"] == version_id), None)

    def script_of_version(self, version_id: str) -> str | None:
        return next(
            (s for s, vs in self.versions.items() if any(v["id"] == version_id for v in vs)), None
        )

    # -- changes, each applied here and journaled when persisting --------------

    def record_deployment(self, script: str, deployment: dict) -> None:
        """Add a deployment created through the API."""
        self._apply_and_journal({"deployment": deployment, "script": script})

    def record_build(
        self, build: dict, uploads: str | None = None, wrangler: str | None = None
    ) -> None:
        """Add or replace a build; ``uploads`` marks one that uploads a version on success,
        ``wrangler`` the wrangler file its commit holds (the upload's settings)."""
        entry = {"build": build} if uploads is None else {"build": build, "uploads": uploads}
        if wrangler is not None:
            entry["wrangler"] = wrangler
        self._apply_and_journal(entry)

    def record_log(self, build_uuid: str, lines: list[list]) -> None:
        """Append log lines to a build's log."""
        self._apply_and_journal({"log": {"build_uuid": build_uuid, "lines": lines}})

    def record_version(
        self,
        script: str,
        version: dict,
        build_uuid: str,
        serves: str,
        resources: dict | None = None,
        digests: dict[str, str] | None = None,
    ) -> None:
        """Add a version a build uploaded (or a secret change made from another version:
        ``build_uuid`` is then the build of that version); it answers ``serves`` at
        /health once deployed. ``digests`` are sha256 digests, never secret values."""
        entry = {"version": version, "script": script, "build_uuid": build_uuid}
        if resources is not None:
            entry["resources"] = resources
        if digests is not None:
            entry["digests"] = digests
        self._apply_and_journal({**entry, "serves": serves})

    def record_refusal(self, script: str, name: str, accepted: str | None) -> None:
        """From now on versions of ``script`` whose ``name`` digest is not ``accepted``
        answer /health with 500 (the credential is rejected)."""
        self._apply_and_journal({"refusal": {"script": script, "name": name, "digest": accepted}})

    def latest_version(self, script: str) -> dict | None:
        versions = self.versions.get(script) or []
        return versions[-1] if versions else None

    def serving_version(self, script: str) -> dict | None:
        """The version serving the largest share of the latest deployment (the newer on a tie)."""
        deployments = self.deployments.get(script) or []
        if not deployments:
            return None
        shares = deployments[-1]["versions"]
        numbers = {v["version_id"]: (self.version(script, v["version_id"]) or {}) for v in shares}
        best = max(
            shares,
            key=lambda v: (v["percentage"], numbers[v["version_id"]].get("number", 0)),
        )
        return self.version(script, best["version_id"])

    def record_trigger(self, tag: str, trigger: dict) -> None:
        """Replace the trigger of ``tag`` that has the same uuid."""
        self._apply_and_journal({"trigger": trigger, "tag": tag})

    def record_incident(self, incident: dict) -> None:
        """Add or replace an incident of the feed (the ``incidents.json`` item form)."""
        self._apply_and_journal({"incident": incident})

    def _apply_and_journal(self, entry: dict) -> None:
        _apply(self, entry)
        if self.journal is not None:
            line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
            with _JOURNAL_LOCK, self.journal.open("a", encoding="utf-8") as out:
                out.write(line)  # one write per line: lines of two processes never mix

    # -- the folder -------------------------------------------------------------

    def save(self, state_dir: Path) -> None:
        """Write the seeded state; a fresh save starts an empty journal.

        Incidents are not written here: the simulator writes ``incidents.json``.
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        body = asdict(self)
        logs = body.pop("logs")
        for name in ("journal", "incidents", "folder"):
            body.pop(name)
        body["end"] = iso_us(self.end)
        _write_json(state_dir / API_FILE, body)
        _write_json(state_dir / LOGS_FILE, logs)
        (state_dir / JOURNAL_FILE).unlink(missing_ok=True)

    @classmethod
    def load(cls, state_dir: Path | str, *, persist: bool = False) -> EmulatorState:
        """Read a state folder and replay its journal.

        With ``persist`` later changes are journaled too, so they outlive
        this process.
        """
        state_dir = Path(state_dir)
        try:
            body = json.loads((state_dir / API_FILE).read_text(encoding="utf-8"))
            logs = json.loads((state_dir / LOGS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{state_dir}: no emulator state ({Path(exc.filename).name} is missing); seed it "
                "with devops_assets.emulator.seed_workspace (or serve --seed-config)"
            ) from None
        body["end"] = datetime.fromisoformat(body["end"])
        state = cls(**body, logs=logs, incidents=_read_incidents(state_dir / INCIDENTS_FILE))
        journal = state_dir / JOURNAL_FILE
        if journal.exists():
            for line in journal.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    _apply(state, json.loads(line))
        state.journal = journal if persist else None
        state.folder = state_dir
        return state


def _apply(state: EmulatorState, entry: dict) -> None:
    """Apply one journal entry; replaying a journal applies each in order."""
    if "deployment" in entry:
        state.deployments.setdefault(entry["script"], []).append(entry["deployment"])
    elif "build" in entry:
        build = entry["build"]
        state.builds[build["build_uuid"]] = build
        state.uploads.pop(build["build_uuid"], None)
        if entry.get("uploads") is not None:
            state.uploads[build["build_uuid"]] = entry["uploads"]
        if entry.get("wrangler") is not None:
            state.upload_configs[build["build_uuid"]] = entry["wrangler"]
    elif "log" in entry:
        state.logs.setdefault(entry["log"]["build_uuid"], []).extend(entry["log"]["lines"])
    elif "version" in entry:
        version = entry["version"]
        mine = state.versions.setdefault(entry["script"], [])
        if all(v["id"] != version["id"] for v in mine):
            mine.append(version)
        state.version_builds[version["id"]] = entry["build_uuid"]
        state.serves[version["id"]] = entry["serves"]
        state.uploads.pop(entry["build_uuid"], None)
        if "resources" in entry:
            state.resources[version["id"]] = entry["resources"]
        if "digests" in entry:
            state.secret_digests[version["id"]] = entry["digests"]
    elif "refusal" in entry:
        refusal = entry["refusal"]
        state.refusals.setdefault(refusal["script"], {})[refusal["name"]] = refusal["digest"]
    elif "trigger" in entry:
        triggers = state.triggers.setdefault(entry["tag"], [])
        uuid = entry["trigger"]["trigger_uuid"]
        same = [i for i, t in enumerate(triggers) if t["trigger_uuid"] == uuid]
        if same:
            triggers[same[0]] = entry["trigger"]
        else:
            triggers.append(entry["trigger"])
    elif "incident" in entry:
        state.incidents[entry["incident"]["id"]] = entry["incident"]


def _read_incidents(path: Path) -> dict[str, dict]:
    """The seeded incident feed by id; a folder without one has no incidents."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of incidents")
    return {item["id"]: item for item in items if isinstance(item, dict) and "id" in item}


def _write_json(path: Path, body) -> None:
    """Write through a temporary file so a crash never leaves half a file."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(body, separators=(",", ":"), sort_keys=True), encoding="utf-8")
    partial.replace(path)
