"""The demo's secret-rotation story on a seeded workspace: due → request → refused
without approval → second person approves → rotation → inventory shows the new age."""

from __future__ import annotations

import dagster as dg

from devops_assets.defs import build_definitions
from devops_assets.demo import secrets_story


def test_the_story_rotates_the_gateway_token_and_shows_its_new_age(world, capsys):
    with dg.instance_for_test() as instance:
        lines = secrets_story.play(world.config, build_definitions(world.config), instance)
    text = "\n".join(lines)
    assert "4 request(s)" in text
    assert "Refused (approval)" in text
    assert "promoted" in text and "at 0.01 %" in text
    assert "staging MOLTBOT_GATEWAY_TOKEN: ok; 0.0 days old (rotated" in text
    assert "staging ANTHROPIC_API_KEY: unknown_age; age unknown" in text
    assert capsys.readouterr().out.count("\n") >= len(lines)
    rotated = world.warehouse.secrets.requests("rotated")
    assert [r.secret for r in rotated] == ["MOLTBOT_GATEWAY_TOKEN"]
