"""Secrets: the inventory asset, the daily rotation check, approvals and rotations."""
