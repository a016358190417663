"""The ``[secrets]`` table: who approves rotations, how long requests and
approvals live, and each secret's maximum age and where its new value comes from.

``approvers`` lists the people (plain ASCII e-mail addresses, as the audit log
records actors) who may approve a rotation; the requester never approves their
own. They are kept in identity normal form (``domain.secrets.identity``: NFKC,
trimmed, case-folded), and one address spelled twice is refused.
``request_ttl_hours`` is how long a request waits for an approval,
``approval_ttl_hours`` how long an approval waits for its rotation.
``max_age_days`` is the default maximum age; ``generator_length`` and
``generator_charset`` shape generated values. Each ``[[secrets.policy]]``
names one secret with its own ``max_age_days`` and ``source``:
``"generate"`` (the generator), ``"env:VAR"`` (the variable's value when the
rotation runs) or ``"file:PATH"`` (the file's content when the rotation runs;
a relative path is taken from the platform file's folder). A value is never
written in this file.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from devops_assets.domain.secrets import SCHEDULER, Refused, identity
from devops_assets.toml_reader import TableReader

# Named alphabets for generated values (a literal alphabet in TOML is too easy to get
# subtly wrong: a missing letter weakens every value without anyone noticing).
CHARSETS = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "urlsafe": string.ascii_letters + string.digits + "-_",
}
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SecretPolicy:
    name: str
    max_age_days: int
    source: str  # "generate" | "env:VAR" | "file:/absolute/path"

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]


@dataclass(frozen=True)
class SecretsSettings:
    approvers: tuple[str, ...] = ()
    request_ttl_hours: int = 72
    approval_ttl_hours: int = 24
    max_age_days: int = 90
    generator_length: int = 48
    generator_charset: str = "alphanumeric"
    policies: tuple[SecretPolicy, ...] = ()

    def policy(self, name: str) -> SecretPolicy:
        """The secret's own policy, else the defaults (generated values)."""
        for policy in self.policies:
            if policy.name == name:
                return policy
        return SecretPolicy(name, self.max_age_days, "generate")

    @property
    def alphabet(self) -> str:
        return CHARSETS[self.generator_charset]


def parse_secrets(root: TableReader, local_path: Callable[[str], str]) -> SecretsSettings:
    table = root.table("secrets", {}).only(
        "approvers",
        "request_ttl_hours",
        "approval_ttl_hours",
        "max_age_days",
        "generator_length",
        "generator_charset",
        "policy",
    )
    approvers = _approvers(table)
    if table.data and len(approvers) < 1:
        raise table.fail("approvers", "at least one approver")
    charset = table.text("generator_charset", "alphanumeric")
    if charset not in CHARSETS:
        raise table.fail("generator_charset", f"one of {', '.join(CHARSETS)}, got {charset!r}")
    default_age = _whole(table, "max_age_days", 90, 1, 3650)
    items = table.get("policy", list, "an array of [[secrets.policy]] tables", [])
    policies: list[SecretPolicy] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise table.fail(f"policy[{i}]", "a table with name, max_age_days and source")
        entry = TableReader(table.path, item, f"secrets.policy[{i}].").only(
            "name", "max_age_days", "source"
        )
        name = entry.text("name")
        if not SECRET_NAME.fullmatch(name):
            raise entry.fail("name", f"a secret name of letters, digits and '_', got {name!r}")
        if name in {p.name for p in policies}:
            raise entry.fail("name", f"a secret no other [[secrets.policy]] names, got {name!r}")
        max_age = _whole(entry, "max_age_days", default_age, 1, 3650)
        policies.append(SecretPolicy(name, max_age, _source(entry, local_path)))
    return SecretsSettings(
        approvers=approvers,
        request_ttl_hours=_whole(table, "request_ttl_hours", 72, 1, 720),
        approval_ttl_hours=_whole(table, "approval_ttl_hours", 24, 1, 168),
        max_age_days=default_age,
        generator_length=_whole(table, "generator_length", 48, 16, 256),
        generator_charset=charset,
        policies=tuple(policies),
    )


def _approvers(table: TableReader) -> tuple[str, ...]:
    """The approvers in identity normal form (NFKC, trimmed, case-folded): each a
    plain ASCII e-mail address, and each once however it is spelled."""
    seen: dict[str, str] = {}
    for person in table.strings("approvers", ()):
        try:
            form = identity(person, "approver")
        except Refused:
            raise table.fail("approvers", f"plain e-mail addresses, got {person!r}") from None
        if form == SCHEDULER:
            raise table.fail("approvers", f"people's e-mail addresses, got {person!r}")
        if form in seen:
            raise table.fail(
                "approvers",
                f"each approver once (case and spacing do not make another person), "
                f"got {seen[form]!r} and {person!r}",
            )
        seen[form] = person
    return tuple(seen)


def _source(entry: TableReader, local_path: Callable[[str], str]) -> str:
    source = entry.text("source", "generate")
    kind, _, rest = source.partition(":")
    if source == "generate":
        return source
    if kind == "env" and ENV_NAME.fullmatch(rest):
        return source
    if kind == "file" and rest and "\0" not in rest:
        return f"file:{local_path(rest)}"
    raise entry.fail("source", f'"generate", "env:VARIABLE_NAME" or "file:PATH", got {source!r}')


def _whole(table: TableReader, key: str, default: int, least: int, most: int) -> int:
    value = table.get(key, int, f"a whole number from {least} to {most}", default)
    if not least <= value <= most:
        raise table.fail(key, f"a whole number from {least} to {most}, got {value!r}")
    return value
