"""The workers-sdk history, rebuilt into a temporary bare repository to measure.

The rebuild reuses the tests' fast-import helper, so the benchmark and the
real-history tests read the same repository: every commit's parents, times and
message, with empty trees, and the tags reachable from the head.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from devops_assets_tests.git_fixtures import SHARED_DATA, rebuild_history

HISTORY = "workers-sdk"
DEFAULT_DATA = SHARED_DATA
_FILES = ("commits.jsonl", "tags.csv")


class DataMissing(RuntimeError):
    """The shared history files the benchmark reads are not there."""


def history_folder(data_dir: Path) -> Path:
    """``<data_dir>/git-histories/workers-sdk``, checked to hold commits and tags."""
    folder = Path(data_dir) / "git-histories" / HISTORY
    for name in _FILES:
        if not (folder / name).is_file():
            raise DataMissing(
                f"{folder / name} not found: the benchmark needs the {HISTORY} history "
                f"from ../shared/data (or give --data DIR)"
            )
    return folder


def slice_history(folder: Path, limit: int, dest: Path) -> Path:
    """A copy of ``folder`` holding its ``limit`` oldest commits and the tags on them.

    commits.jsonl lists every commit before its parents, so its last ``limit``
    lines form a history whose parents are all inside it.
    """
    lines = (folder / "commits.jsonl").read_bytes().split(b"\n")
    kept = [line for line in lines if line.strip()][-limit:]
    shas = {json.loads(line)["sha"] for line in kept}
    dest.mkdir(parents=True)
    (dest / "commits.jsonl").write_bytes(b"\n".join(kept) + b"\n")
    with (folder / "tags.csv").open(encoding="utf-8", newline="") as source:
        reader = csv.DictReader(source)
        with (dest / "tags.csv").open("w", encoding="utf-8", newline="") as target:
            writer = csv.DictWriter(target, fieldnames=reader.fieldnames or [])
            writer.writeheader()
            writer.writerows(row for row in reader if row["target_sha"] in shas)
    return dest


def rebuild(folder: Path, dest: Path) -> int:
    """Rebuild the history in ``folder`` as a bare repository at ``dest``; commits written."""
    # rebuild_history takes a name under shared/data/git-histories; pathlib drops that
    # base when the name is an absolute path, which lets it read a sliced copy too.
    return len(rebuild_history(str(folder.resolve()), dest))


def prepare_repository(folder: Path, workdir: Path, limit: int | None) -> Path:
    """The rebuilt repository (of the ``limit`` oldest commits when given) in ``workdir``."""
    source = slice_history(folder, limit, workdir / "slice") if limit else folder
    repo = workdir / f"{HISTORY}.git"
    rebuild(source, repo)
    return repo
