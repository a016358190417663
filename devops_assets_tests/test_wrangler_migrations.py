"""D1 migration files against hand-made ledgers with known answers."""

from __future__ import annotations

import hashlib

from devops_assets.wrangler.migrations import (
    Ledger,
    MigrationFile,
    classify,
    discover,
    order_key,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


FILES = [
    MigrationFile("0001_users.sql", sha("create users")),
    MigrationFile("0002_sessions.sql", sha("create sessions")),
    MigrationFile("0003_index.sql", sha("create index")),
]
RECORDED = {f.name: f.checksum for f in FILES}


def test_wrangler_orders_by_number_then_text_unnumbered_last():
    names = ["10_b.sql", "9_a.sql", "0010_a.sql", "x.sql", "0002_z/migration.sql", "0002_a.sql"]
    assert sorted(names, key=order_key) == [
        "0002_a.sql",
        "0002_z/migration.sql",
        "9_a.sql",
        "0010_a.sql",
        "10_b.sql",
        "x.sql",
    ]


def test_pending_files_after_the_applied_ones():
    status = classify(FILES, Ledger(("0001_users.sql",)), RECORDED)
    assert status.applied == ["0001_users.sql"]
    assert status.pending == ["0002_sessions.sql", "0003_index.sql"]
    assert status.clean


def test_a_lower_numbered_file_merged_after_higher_ones_ran_is_out_of_order():
    status = classify(FILES, Ledger(("0001_users.sql", "0003_index.sql")), RECORDED)
    assert status.out_of_order == ["0002_sessions.sql"] and status.pending == []
    assert not status.clean


def test_an_applied_file_edited_afterwards_is_found_by_its_recorded_checksum():
    edited = [FILES[0], MigrationFile("0002_sessions.sql", sha("create sessions v2")), FILES[2]]
    status = classify(edited, Ledger(("0001_users.sql", "0002_sessions.sql")), RECORDED)
    assert status.edited == ["0002_sessions.sql"] and status.applied == ["0001_users.sql"]
    assert status.pending == ["0003_index.sql"]
    # without a recorded checksum (applied outside the platform) an edit cannot be seen
    assert classify(edited, Ledger(("0002_sessions.sql",)), {}).edited == []


def test_a_renamed_applied_file_would_run_again_and_a_deleted_one_is_missing():
    renamed = [FILES[0], MigrationFile("0002_user_sessions.sql", FILES[1].checksum), FILES[2]]
    status = classify(renamed, Ledger(("0001_users.sql", "0002_sessions.sql")), RECORDED)
    assert status.renamed == [("0002_sessions.sql", "0002_user_sessions.sql")]
    assert status.pending == ["0003_index.sql"] and status.missing == []
    gone = classify([FILES[0]], Ledger(("0001_users.sql", "0002_sessions.sql")), RECORDED)
    assert gone.missing == ["0002_sessions.sql"] and not gone.clean


def test_files_are_discovered_with_their_checksums_in_wrangler_order(tmp_path):
    (tmp_path / "10_later.sql").write_text("b", encoding="utf-8")
    (tmp_path / "0002_first.sql").write_text("a", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a migration", encoding="utf-8")
    found = discover(tmp_path)
    assert [(f.name, f.checksum) for f in found] == [
        ("0002_first.sql", sha("a")),
        ("10_later.sql", sha("b")),
    ]
