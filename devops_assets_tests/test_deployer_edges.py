"""Deploy edges found by trying to break it: locks of unknown runs, staging taken
back, rollbacks that fail their smoke test, facts that cannot be read, notices that
cannot be written, odd requesters, refs and release tags."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from devops_assets.config import load_config
from devops_assets.delivery import deployer, rollback
from devops_assets.sources.git import GitError
from devops_assets.sources.git_refs import resolve_commit
from devops_assets.store.ledger import UNKNOWN_HOLDER_STALE
from devops_assets_tests.deploy_fixtures import BAD, GOOD, World

OPS = "ops@moltworker.example"


def staged(world, change=GOOD, serves="ok") -> str:
    sha = world.push(change, serves)
    deployer.deploy(world.runtime("run-staging"), "staging", sha, OPS, "try")
    world.gate(sha)
    return sha


def test_a_lock_of_a_run_this_instance_does_not_know_holds_for_an_hour(world):
    sha = staged(world)
    ledger, now = world.warehouse.deploys, world.app().now()
    assert ledger.acquire("production", "elsewhere", OPS, sha, now, lambda r: True) is None
    unknown = lambda run_id: None  # noqa: E731 - another instance's run: cannot tell

    assert ledger.acquire("production", "mine", OPS, sha, now, unknown) == "elsewhere"
    later = now + UNKNOWN_HOLDER_STALE + timedelta(seconds=1)
    assert ledger.acquire("production", "mine", OPS, sha, later, unknown) is None
    assert ledger.holder("production") == "mine"


def test_a_commit_staging_was_rolled_back_from_is_not_proven_any_more(world):
    sha = staged(world)
    rollback.rollback(world.runtime("run-rb"), "staging", None, OPS, "breaks checkout")
    with pytest.raises(deployer.DeployRefused) as caught:
        deployer.deploy(world.runtime(), "production", sha, OPS, "go")
    [refusal] = caught.value.decision.refusals
    assert refusal.rule == "staging_verified" and "failed" in refusal.evidence


def test_a_rollback_whose_smoke_test_fails_is_a_failed_run_not_a_success(world):
    good = staged(world)
    deployer.deploy(world.runtime("run-1"), "production", good, OPS, "promote")
    bad = staged(world, BAD, {"moltworker": "error"})
    with pytest.raises(deployer.DeployFailed):
        deployer.deploy(world.runtime("run-2"), "production", bad, OPS, "ship")
    bad_version = world.warehouse.deploys.smoke_runs("production")[-2].version_id

    with pytest.raises(deployer.DeployFailed, match="fails its smoke test: health: expected"):
        rollback.rollback(world.runtime("run-3"), "production", bad_version, OPS, "on purpose")

    row = world.warehouse.audit_log("production")[-1]
    assert (row.action, row.outcome) == ("rollback", "failed")
    assert world.notices()[-1] == "deploy_failed"


def with_platform(world: World, tmp_path: Path, old: str, new: str) -> World:
    text = world.config.path.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "platform.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return World(load_config(path), world.home)


def test_an_incident_feed_that_cannot_be_read_refuses_production_but_not_staging(world, tmp_path):
    closed = with_platform(
        world, tmp_path, 'statuspage = "emulator:"', 'statuspage = "http://127.0.0.1:9"'
    )
    sha = closed.push(GOOD)
    assert deployer.deploy(closed.runtime("run-s"), "staging", sha, OPS, "try").steps == [100.0]
    closed.gate(sha)

    with pytest.raises(deployer.DeployRefused) as caught:
        deployer.deploy(closed.runtime(), "production", sha, OPS, "go")

    [refusal] = caught.value.decision.refusals
    assert refusal.rule == "facts" and "http://127.0.0.1:9" in refusal.evidence
    row = closed.warehouse.audit_log("production")[-1]
    assert (row.outcome, row.detail["refusals"][0]["rule"]) == ("refused", "facts")


def test_a_notices_file_that_cannot_be_written_changes_no_outcome(world, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    broken = with_platform(
        world, tmp_path, 'notify_file = "{home}/notifications.jsonl"', f'notify_file = "{folder}"'
    )
    sha = broken.push(GOOD)
    out = deployer.deploy(broken.runtime(), "staging", sha, OPS, "try")
    assert out.smoke[0].passed
    assert broken.warehouse.audit_log()[-1].outcome == "succeeded"


def test_any_requester_name_gets_a_release_tagged_by_the_platform(world):
    sha = staged(world)
    release = deployer.deploy(world.runtime(), "production", sha, ".", "promote").release
    assert release.tag == "v2.30.0"
    assert world.git("tag", "-l", "--format=%(taggername) %(taggeremail)", "v2.30.0") == (
        "devops-assets <devops-assets@localhost>"
    )
    assert world.warehouse.audit_log("production")[-1].actor == "."


def test_only_plain_release_tags_count_and_a_tag_on_the_commit_is_its_release(world):
    world.git("tag", "v9.0.0-rc.1", "main")  # a pre-release: not a release
    world.git("tag", "vendor/left-pad-100.0.0", "main")  # not ours at all
    sha = staged(world)
    world.git("tag", "v2.31.0", sha)  # cut by hand before the deploy

    release = deployer.deploy(world.runtime(), "production", sha, OPS, "promote").release

    assert (release.tag, release.previous_tag, release.bump) == ("v2.31.0", "v2.29.1", "existing")
    assert world.git("tag", "--points-at", sha) == "v2.31.0"


def test_a_ref_is_a_plain_name_and_an_ambiguous_one_is_refused(world):
    shas = world.git("rev-list", "--all").split()
    by_prefix: dict[str, list[str]] = {}
    for sha in shas:
        by_prefix.setdefault(sha[:4], []).append(sha)
    shared = next(p for p, found in by_prefix.items() if len(found) > 1)
    with pytest.raises(GitError, match="ambiguous"):
        resolve_commit(world.repo, shared)
    target = shas[5]
    world.git("branch", shas[0][:8], target)  # a branch named like another commit's sha
    with pytest.raises(GitError, match="ambiguous"):
        resolve_commit(world.repo, shas[0][:8])
    for expression in ("^main", "main~1", "HEAD:README.md", "main..hardshell"):
        with pytest.raises(GitError, match="a sha, branch or tag name"):
            resolve_commit(world.repo, expression)
    assert resolve_commit(world.repo, shas[3][:12]) == shas[3]


def test_a_rollback_may_name_a_release_tag(world):
    first = staged(world)
    one = deployer.deploy(world.runtime("run-1"), "production", first, OPS, "one").release
    second = staged(world, BAD)  # fine everywhere here: served ok
    two = deployer.deploy(world.runtime("run-2"), "production", second, OPS, "two").release
    assert (one.tag, two.tag) == ("v2.30.0", "v2.30.1")

    out = rollback.rollback(world.runtime("run-3"), "production", "v2.30.0", OPS, "back")

    assert out.rolled_back_to == one.version_id
    with pytest.raises(deployer.DeployInputError, match="no release v9.9.9 of production"):
        rollback.rollback(world.runtime("run-4"), "production", "v9.9.9", OPS, "back")


def test_a_played_demo_workspace_is_seeded_again_with_nothing_of_the_story_left(world):
    from devops_assets.demo.commands import reset_played_workspace
    from devops_assets.emulator import seed_workspace

    seeded_head = world.git("rev-parse", "hardshell")
    sha = world.push(GOOD)
    deployer.deploy(world.runtime(), "staging", sha, OPS, "try")
    state = Path(world.config.cloudflare.emulator_state)
    assert (state / "journal.jsonl").stat().st_size > 0

    reset_played_workspace(world.config)
    seed_workspace(world.config)

    assert not (state / "journal.jsonl").exists()
    assert world.git("rev-parse", "hardshell") == seeded_head
    assert world.warehouse.audit_log() == [] and world.notices() == []


def test_deploying_the_head_again_after_a_failed_rotation_serves_its_upload_not_the_staged(world):
    """A failed rotation's staged version keeps the build's mapping (a secret change
    does) and is the newest such version: it is never the one a deploy picks."""
    from devops_assets_tests.test_secrets_rotation import GATEWAY, STAGING, fail_rotation, serving

    sha = staged(world)
    upload = serving(world)
    old = world.app().secret_digest(STAGING, upload, GATEWAY)
    _, abandoned = fail_rotation(world)

    out = deployer.deploy(world.runtime("run-again"), "staging", sha, OPS, "again")

    assert out.version_id == upload != abandoned
    assert serving(world) == upload
    assert world.app().secret_digest(STAGING, serving(world), GATEWAY) == old
    assert not [e for e in world.warehouse.audit_log("staging") if e.outcome == "warning"]
