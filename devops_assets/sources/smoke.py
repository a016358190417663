"""Smoke tests: a few HTTP checks against an environment's URL after a deploy.

Each check asks one path and expects a status and, optionally, a piece of
text in the body, within a time limit. A check that cannot connect, times out,
answers another status or lacks the text fails with a one-line reason; no
check raises. Redirects are not followed: a deploy that starts redirecting
its health page has changed something worth seeing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

BODY_LIMIT = 1_000_000  # bytes read from an answer: a smoke page is small


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    path: str
    status: int = 200
    contains: str | None = None
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(
                f"smoke check {self.name!r}: path must start with '/', got {self.path!r}"
            )
        if not 100 <= self.status <= 599:
            raise ValueError(f"smoke check {self.name!r}: status 100-599, got {self.status!r}")
        if not 0 < self.timeout_s <= 120:
            raise ValueError(
                f"smoke check {self.name!r}: timeout from 0 to 120 s, got {self.timeout_s!r}"
            )


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str  # "ok", or what went wrong
    seconds: float
    status: int | None = None


def run_smoke(
    base_url: str, checks: Sequence[SmokeCheck], client: httpx.Client | None = None
) -> list[CheckResult]:
    """Run every check against ``base_url`` (each is run, whatever the others did)."""
    own = client is None
    client = client or httpx.Client(follow_redirects=False)
    try:
        return [_one(client, base_url.rstrip("/"), check) for check in checks]
    finally:
        if own:
            client.close()


def _one(client: httpx.Client, base: str, check: SmokeCheck) -> CheckResult:
    started = time.monotonic()

    def result(passed: bool, reason: str, status: int | None = None) -> CheckResult:
        return CheckResult(check.name, passed, reason, time.monotonic() - started, status)

    try:
        with client.stream("GET", base + check.path, timeout=check.timeout_s) as answer:
            body = b""
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) >= BODY_LIMIT or time.monotonic() - started > check.timeout_s:
                    break
    except httpx.TimeoutException:
        return result(False, f"no answer within {check.timeout_s:g} s")
    except httpx.HTTPError as exc:
        return result(False, f"request failed ({type(exc).__name__})")
    if time.monotonic() - started > check.timeout_s:
        return result(False, f"answer took longer than {check.timeout_s:g} s", answer.status_code)
    if answer.status_code != check.status:
        return result(
            False, f"expected HTTP {check.status}, got {answer.status_code}", answer.status_code
        )
    if check.contains is not None and check.contains not in body.decode("utf-8", "replace"):
        return result(False, f"body lacks {check.contains!r}", answer.status_code)
    return result(True, "ok", answer.status_code)
