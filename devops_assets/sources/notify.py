"""Notifications of deploy events: a Slack-compatible webhook, or a file.

A Slack incoming-webhook URL is itself a secret (whoever holds it can post),
so it is read from an environment variable when a notice is sent and never
written to a message, log line or error: a failed post says which variable
named the hook and what went wrong, nothing more. The demo writes notices to a
file instead, one JSON object per line, in the same shape it would post.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from devops_assets.sources._deadline import DeadlineExceeded, within

DEADLINE_SECONDS = 15.0  # the whole post, however slowly the hook answers
EVENTS = (
    "deploy_started",
    "deploy_refused",
    "deployed",
    "deploy_failed",
    "promoted",
    "rolled_back",
    "build_failed",
    "secret_rotation_requested",
    "secret_rotation_refused",
    "secret_rotated",
    "secret_rotation_failed",
    "migrations_refused",
    "migrations_applied",
    "migrations_failed",
    "sync_refused",
    "sync_started",
    "synced",
    "sync_failed",
)
_ICONS = {
    "deploy_started": ":rocket:",
    "deploy_refused": ":no_entry:",
    "deployed": ":package:",
    "deploy_failed": ":warning:",
    "promoted": ":white_check_mark:",
    "rolled_back": ":rewind:",
    "build_failed": ":x:",
    "secret_rotation_requested": ":key:",
    "secret_rotation_refused": ":no_entry:",
    "secret_rotated": ":closed_lock_with_key:",
    "secret_rotation_failed": ":warning:",
    "migrations_refused": ":no_entry:",
    "migrations_applied": ":card_file_box:",
    "migrations_failed": ":warning:",
    "sync_refused": ":no_entry:",
    "sync_started": ":arrows_counterclockwise:",
    "synced": ":white_check_mark:",
    "sync_failed": ":warning:",
}


class NotifyError(RuntimeError):
    """A notice could not be delivered; the message never holds the webhook URL."""


@dataclass(frozen=True)
class Notice:
    event: str
    environment: str
    subject: str  # a commit, a version, a run
    text: str
    at: datetime

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"notice event: one of {', '.join(EVENTS)}, got {self.event!r}")


def _short(subject: str) -> str:
    """A commit sha as its first 12 characters; any other subject (a rotation
    request id, a version id) whole, up to 80, for the reader must act on it."""
    if len(subject) == 40 and all(c in "0123456789abcdef" for c in subject):
        return subject[:12]
    return subject[:80]


def _escaped(text: str) -> str:
    """Text as Slack shows it literally: ``&``, ``<`` and ``>`` are its control
    characters (``<!channel>`` would ping everyone, ``<url|label>`` disguise a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(notice: Notice) -> dict:
    """The Slack incoming-webhook body: a fallback ``text`` and one section block."""
    headline = f"{_ICONS[notice.event]} *{notice.event.replace('_', ' ')}* · {notice.environment}"
    subject, text = _escaped(_short(notice.subject)), _escaped(notice.text)
    line = f"{headline} · `{subject}`\n{text}"
    return {
        "text": f"{notice.event} {notice.environment} {subject}: {text}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": line}}],
        "metadata": {
            "event_type": notice.event,
            "event_payload": {
                "environment": notice.environment,
                "subject": notice.subject,
                "at": notice.at.isoformat(),
            },
        },
    }


def to_file(path: str | Path, notice: Notice) -> None:
    """Append the notice's payload to ``path`` as one JSON line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_file():  # a FIFO would block, a folder cannot be written
        raise NotifyError(f"{path}: not a regular file; notices are appended to a file")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(payload(notice), ensure_ascii=False) + "\n")


def to_webhook(url_env: str, notice: Notice, client: httpx.Client | None = None) -> None:
    """POST the payload to the webhook URL held by environment variable ``url_env``."""
    url = os.environ.get(url_env, "")
    if not url.startswith(("https://", "http://")):
        raise NotifyError(f"${url_env} must hold the webhook's http(s) URL; it is unset or not one")
    own = client is None
    client = client or httpx.Client(timeout=10.0, follow_redirects=False)
    failure = None
    try:
        answer = within(DEADLINE_SECONDS, lambda: client.post(url, json=payload(notice)), client)
    except DeadlineExceeded:
        failure = f"no answer within {DEADLINE_SECONDS:g} s"
    except Exception as exc:  # noqa: BLE001 - its text may hold the URL: keep only its kind
        failure = type(exc).__name__
    finally:
        if own:
            client.close()
    if failure is not None:  # raised outside the handler, so nothing chains the URL
        raise NotifyError(f"posting to the webhook in ${url_env} failed ({failure})")
    if answer.status_code >= 300:
        raise NotifyError(f"the webhook in ${url_env} answered HTTP {answer.status_code}")
