"""A short, stable name for a failure: the same failure in two builds → the same signature.

The evidence lines, already masked (a secret rotating between builds must neither split
a failure in two nor be hashed), are normalised (times, durations, ids, temporary paths,
progress and long counters replaced; see :mod:`devops_assets.triage.normalise`), blank
lines dropped, and hashed with the category. Twelve hex digits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from devops_assets.triage.normalise import normalise


def signature(category: str, evidence: Iterable[str]) -> str:
    """Twelve hex digits over ``category`` and the masked, normalised ``evidence``."""
    lines = [normalise(line) for line in evidence]
    body = "\n".join(line for line in lines if line)
    return hashlib.sha256(f"{category}\n{body}".encode(errors="replace")).hexdigest()[:12]
