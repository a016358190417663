"""The rotation rules on their own: generator, value rule, request hash, approval and
rotation checks, and how the inventory reads ages and changes made elsewhere."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devops_assets.config_secrets import CHARSETS
from devops_assets.domain import secrets as d

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
APPROVERS = ("ciso@moltworker.example", "security-lead@moltworker.example")


def request(**changes) -> d.RotationRequest:
    base = d.RotationRequest(
        request_id="rot-staging-moltbot-gateway-token-20261201T090000Z",
        environment="staging",
        worker="moltworker-staging",
        secret="MOLTBOT_GATEWAY_TOKEN",
        source="generate",
        max_age_days=30,
        generator="48:alphanumeric",
        requested_by="secret_rotation_check (schedule)",
        reason="age unknown",
        requested_at=NOW,
        expires_at=NOW + timedelta(hours=72),
    )
    base = replace(base, **changes)
    return replace(base, request_hash=base.digest())


def approval(req: d.RotationRequest, **changes) -> d.Approval:
    base = d.Approval(
        "apr-1", req.request_id, req.request_hash, APPROVERS[0], NOW, NOW + timedelta(hours=24)
    )
    return replace(base, **changes)


@pytest.mark.parametrize("charset", sorted(CHARSETS))
@pytest.mark.parametrize("length", [16, 48, 256])
def test_generated_values_have_the_policys_length_and_charset(length, charset):
    values = {d.generate(length, CHARSETS[charset]) for _ in range(20)}
    assert len(values) == 20  # never repeats
    for value in values:
        assert len(value) == length
        assert set(value) <= set(CHARSETS[charset])


def test_values_read_from_a_source_follow_one_rule():
    assert d.normalise("abc123\n", "file x") == "abc123"
    assert d.normalise("  lead space  \t\r\n", "file x") == "  lead space"
    with pytest.raises(d.Refused, match="file x is empty"):
        d.normalise(" \n", "file x")
    with pytest.raises(d.Refused, match="control character") as caught:
        d.normalise("two\nlines", "variable V")
    assert "two" not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        "line\u2028break",  # LINE SEPARATOR
        "para\u2029graph",  # PARAGRAPH SEPARATOR
        "next\x85line",  # NEL (C1)
        "csi\x9bcontrol",  # C1 control
        "group\x1dsep",  # splitlines splits on it
        "vertical\x0btab",
        "nul\x00inside",
        "del\x7finside",
        "\u2028leading-and-trailing\u2028",  # a Unicode break is not trimmed away
    ],
)
def test_a_value_is_one_line_whatever_the_line_break(value):
    with pytest.raises(d.Refused) as caught:
        d.normalise(value, "file /keys/x")
    assert caught.value.rule == "source"
    assert "file /keys/x" in str(caught.value) and "line break" in str(caught.value)
    assert value.strip("\u2028") not in str(caught.value)


def test_a_value_is_at_most_cloudflares_secret_size_and_valid_text():
    assert d.MAX_SECRET_BYTES == 5 * 1024
    at_limit = "a" * (d.MAX_SECRET_BYTES - 2) + "é"  # 2 bytes in UTF-8
    assert d.normalise(at_limit + "\r\n", "variable V") == at_limit
    with pytest.raises(d.Refused, match=f"variable V is larger than {d.MAX_SECRET_BYTES} bytes"):
        d.normalise(at_limit + "b", "variable V")
    with pytest.raises(d.Refused, match="variable V is not UTF-8 text"):
        d.normalise("ok\udcff\udcfe", "variable V")  # bytes a variable held that were not UTF-8
    assert d.normalise("ünïcödé-ok\n", "file x") == "ünïcödé-ok"


@pytest.mark.parametrize(
    "spelling",
    [
        "ciso@moltworker.example",
        "CISO@moltworker.example",
        " ciso@moltworker.example",
        "ciso@moltworker.example \t",
        "Ciso@Moltworker.Example",
        "ｃｉｓｏ@moltworker.example",  # full-width letters: NFKC makes them ASCII
    ],
)
def test_one_person_has_one_identity_however_spelled(spelling):
    assert d.identity(spelling, "approver") == "ciso@moltworker.example"
    assert d.identity_form(spelling) == "ciso@moltworker.example"


@pytest.mark.parametrize(
    ("spelling", "says"),
    [
        ("ciso@moltworker.example.", "ends with a dot"),
        ("\u0441iso@moltworker.example", "plain e-mail"),  # Cyrillic es
        ("ciso@moltworker.example\u200b", "plain e-mail"),  # zero-width space
        ("ciso\u00a0x@moltworker.example", "plain e-mail"),  # no-break space inside
        ("ciso@moltworker", "plain e-mail"),
        ("ciso", "plain e-mail"),
        ("", "plain e-mail"),
        ("a@b@moltworker.example", "plain e-mail"),
        ("ciso@moltworker..example", "plain e-mail"),
        ("ciso\n@moltworker.example", "plain e-mail"),
    ],
)
def test_an_identity_that_is_not_a_plain_address_is_refused(spelling, says):
    with pytest.raises(d.Refused) as caught:
        d.identity(spelling, "approver")
    assert caught.value.rule == "identity" and says in str(caught.value)
    assert "\n" not in str(caught.value)  # shown escaped, never as a raw line break


def test_the_schedule_is_an_identity_of_its_own():
    assert d.identity(d.SCHEDULER, "requested_by") == d.SCHEDULER


@pytest.mark.parametrize(
    "requester",
    ["CISO@moltworker.example", " ciso@moltworker.example", "Ciso@Moltworker.Example "],
)
def test_two_person_rules_compare_identities_in_normal_form(requester):
    req = request(requested_by=requester)
    with pytest.raises(d.Refused) as caught:
        d.check_approval(req, req.request_id, APPROVERS[0], APPROVERS, NOW)
    assert caught.value.rule == "two_person"
    with pytest.raises(d.Refused) as caught:
        d.check_approval(req, req.request_id, "ciso@moltworker.example.", APPROVERS, NOW)
    assert caught.value.rule == "identity"
    # a request stored under another spelling, approved by the same person: refused again
    approved = replace(req, state="approved")
    later = NOW + timedelta(hours=1)
    with pytest.raises(d.Refused) as caught:
        d.check_rotation(
            approved,
            approved.request_id,
            approval(approved, approver=APPROVERS[0]),
            "apr-1",
            APPROVERS,
            approved,
            later,
        )
    assert caught.value.rule == "two_person"
    # an approver listed in another spelling is still that approver
    other = request(requested_by="ops@moltworker.example")
    assert d.check_approval(other, other.request_id, "CISO@moltworker.example", APPROVERS, NOW)


def test_the_request_hash_covers_every_frozen_field():
    base = request()
    for change in (
        {"secret": "ANTHROPIC_API_KEY"},
        {"environment": "production"},
        {"source": "env:OTHER"},
        {"generator": "16:hex"},
        {"max_age_days": 31},
        {"requested_by": "someone@x.example"},
        {"expires_at": NOW + timedelta(hours=73)},
    ):
        assert replace(base, **change).digest() != base.request_hash, change


def test_approval_rules():
    req = request(requested_by=APPROVERS[0])
    ok = d.check_approval(req, req.request_id, APPROVERS[1], APPROVERS, NOW)
    assert ok is req
    cases = [
        ((None, "rot-x", APPROVERS[1], NOW), "request"),
        ((req, req.request_id, "dev@moltworker.example", NOW), "approver"),
        ((req, req.request_id, APPROVERS[0], NOW), "two_person"),
        ((req, req.request_id, APPROVERS[1], NOW + timedelta(hours=72)), "request_expired"),
        ((replace(req, state="rotated"), req.request_id, APPROVERS[1], NOW), "state"),
        ((replace(req, reason="edited"), req.request_id, APPROVERS[1], NOW), "request_hash"),
    ]
    for (r, rid, who, when), rule in cases:
        with pytest.raises(d.Refused) as caught:
            d.check_approval(r, rid, who, APPROVERS, when)
        assert caught.value.rule == rule


def test_rotation_rules():
    req = replace(request(), state="approved")
    good = approval(req)
    later = NOW + timedelta(hours=1)
    assert d.check_rotation(req, req.request_id, good, "apr-1", APPROVERS, req, later)
    other = request(secret="ANTHROPIC_API_KEY", request_id="rot-other")
    cases = [
        ((req, "", None), "approval"),
        ((req, "apr-none", None), "approval"),
        ((req, "apr-1", approval(other)), "approval_binding"),
        ((req, "apr-1", replace(good, request_hash="0" * 64)), "approval_binding"),
        ((req, "apr-1", replace(good, used_by_run="run-0")), "approval_used"),
        ((req, "apr-1", replace(good, expires_at=later)), "approval_expired"),
        ((req, "apr-1", replace(good, approver=req.requested_by)), "two_person"),
        ((req, "apr-1", replace(good, approver="ex@moltworker.example")), "approver"),
        ((replace(req, state="requested"), "apr-1", good), "state"),
    ]
    for (r, aid, a), rule in cases:
        with pytest.raises(d.Refused) as caught:
            d.check_rotation(r, r.request_id, a, aid, APPROVERS, r, later)
        assert caught.value.rule == rule, (rule, caught.value)
    with pytest.raises(d.Refused) as caught:
        d.check_rotation(
            req, req.request_id, good, "apr-1", APPROVERS, replace(req, source="env:NEW"), later
        )
    assert caught.value.rule == "policy_changed"


def version(vid, when, triggered, message=""):
    notes = {d.TRIGGERED_BY: triggered, d.MESSAGE: message}
    return {"id": vid, "number": int(vid[1:]), "created_on": when, "annotations": notes}


def test_inventory_ages_outside_changes_and_missing_required():
    t0 = NOW - timedelta(days=100)
    versions = [
        version("v1", t0, "secret", 'Updated secret "A"'),
        version("v2", t0 + timedelta(days=1), "secret", ""),  # names nothing: all secrets
        version("v3", t0 + timedelta(days=50), "secret", ""),  # ours (the rotation of A)
        version("v4", t0 + timedelta(days=60), "deployment"),
        version("v5", t0 + timedelta(days=70), "secret", 'Updated secret "B"'),  # outside
        version("v6", t0 + timedelta(days=80), "secret", ""),  # ours, abandoned
    ]
    ours = [
        d.VersionMade("w", "v3", "v2", ("A",), "rot-a", t0 + timedelta(days=50), "promoted"),
        d.VersionMade("w", "v6", "v5", ("C",), "rot-c", t0 + timedelta(days=80), "abandoned"),
    ]
    rows = d.inventory(
        "staging",
        "w",
        {"A", "B", "C"},
        ("A", "D"),
        versions,
        ours,
        {"A": 30, "": 90},
        {"C": "rot-c"},
    )
    by = {r.secret: r for r in rows}
    a, b, c, missing = by["A"], by["B"], by["C"], by["D"]
    assert a.last_rotated_at == t0 + timedelta(days=50) and not a.changed_outside
    assert a.due_at == a.last_rotated_at + timedelta(days=30)
    assert d.with_status(a, NOW).status == "due"  # 50 days old, max 30
    assert d.is_due(a, NOW)
    assert b.changed_outside and b.changed_outside_at == t0 + timedelta(days=70)
    assert b.status == "unknown_age" and b.due_at is None and d.is_due(b, NOW)
    assert c.changed_outside and c.changed_outside_at == t0 + timedelta(days=1)
    assert c.open_request == "rot-c" and c.age_days(NOW) is None
    assert (missing.present, missing.status) == (False, "missing")
    assert not d.is_due(missing, NOW)
