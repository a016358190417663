"""The emulator's account: the API objects it serves, kept as JSON in a folder.

``api.json`` holds builds, triggers, versions, deployments and services as the
API shows them; ``logs.json`` the build logs. Deployments created through the
API while the demo runs are appended to ``journal.jsonl`` (one JSON object a
line), so the next process that loads the folder sees them too; the seeded
files themselves are never rewritten by a request.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

API_FILE = "api.json"
LOGS_FILE = "logs.json"
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
    history stops: the emulator's clock starts there.
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
    journal: Path | None = field(default=None, compare=False)

    def tag_of(self, script: str) -> str | None:
        return next((tag for tag, name in self.scripts.items() if name == script), None)

    def version(self, script: str, version_id: str) -> dict | None:
        return next((v for v in self.versions.get(script, []) if v["id"] == version_id), None)

    def record_deployment(self, script: str, deployment: dict) -> None:
        """Add a deployment created through the API, and journal it when persisting."""
        self.deployments.setdefault(script, []).append(deployment)
        if self.journal is not None:
            line = json.dumps({"deployment": deployment, "script": script}, sort_keys=True)
            with _JOURNAL_LOCK, self.journal.open("a", encoding="utf-8") as out:
                out.write(line + "\n")

    def save(self, state_dir: Path) -> None:
        """Write the seeded state; a fresh save starts an empty journal."""
        state_dir.mkdir(parents=True, exist_ok=True)
        body = asdict(self)
        logs = body.pop("logs")
        body.pop("journal")
        body["end"] = iso_us(self.end)
        _write_json(state_dir / API_FILE, body)
        _write_json(state_dir / LOGS_FILE, logs)
        (state_dir / JOURNAL_FILE).unlink(missing_ok=True)

    @classmethod
    def load(cls, state_dir: Path | str, *, persist: bool = False) -> EmulatorState:
        """Read a state folder and replay its journal.

        With ``persist`` the deployments created later are journaled too, so
        they outlive this process.
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
        state = cls(**body, logs=logs)
        journal = state_dir / JOURNAL_FILE
        if journal.exists():
            for line in journal.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                state.deployments.setdefault(entry["script"], []).append(entry["deployment"])
        state.journal = journal if persist else None
        return state


def _write_json(path: Path, body) -> None:
    """Write through a temporary file so a crash never leaves half a file."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(body, separators=(",", ":"), sort_keys=True), encoding="utf-8")
    partial.replace(path)
